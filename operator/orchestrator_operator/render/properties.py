"""The runtime's properties: the user's file kept verbatim, and the file of managed keys.

SonataFlow reads `application.properties` and then the profile's file
(`application-dev.properties` in dev mode, `application-prod.properties` in a built image),
whose keys win. The managed keys go into the profile's file, so a user who sets one cannot
change it; the user's file is mounted exactly as written, comments included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jinja2

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("orchestrator_operator", "templates"),
    autoescape=False,  # a properties file, not HTML  # noqa: S701
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

# A logical line of a .properties file: `key = value`, `key: value` or `key value`.
_KEY_PATTERN = re.compile(r"^\s*((?:\\.|[^\s:=\\])+)")


_OUTGOING = "mp.messaging.outgoing"


@dataclass(frozen=True)
class ServiceEndpoints:
    """Where the installation's services answer, as seen from the workflow's runtime."""

    data_index_url: str | None = None
    jobs_service_url: str | None = None


def managed_properties(
    service_url: str,
    endpoints: ServiceEndpoints | None,
    uses_timers: bool,
) -> dict[str, str]:
    """The keys the operator sets, in the order they are written."""
    properties = {
        "quarkus.http.port": "8080",
        "quarkus.http.host": "0.0.0.0",  # noqa: S104 - the container's port must be reachable
        "kogito.service.url": service_url,
        "quarkus.devservices.enabled": "false",
        "quarkus.kogito.devservices.enabled": "false",
    }
    if endpoints and endpoints.data_index_url:
        data_index = endpoints.data_index_url.rstrip("/")
        properties |= {
            "kogito.data-index.url": data_index,
            "kogito.data-index.health-enabled": "true",
            "kogito.events.processdefinitions.enabled": "true",
            # A definition event the runtime cannot send is raised as an error rather than only
            # logged, as the SonataFlow operator has it: a workflow the Data Index never lists
            # is one Backstage cannot show.
            "kogito.events.processdefinitions.errors.propagate": "true",
            "kogito.events.processinstances.enabled": "true",
            # Events go to the Data Index over HTTP (its http-events-support profile), not
            # through Kafka or a Knative sink.
            **_http_channel("kogito-processdefinitions-events", f"{data_index}/definitions"),
            **_http_channel("kogito-processinstances-events", f"{data_index}/processes"),
        }
    if endpoints and endpoints.jobs_service_url:
        jobs_service = endpoints.jobs_service_url.rstrip("/")
        properties |= {
            "kogito.jobs-service.url": jobs_service,
            f"{_OUTGOING}.kogito-job-service-job-request-events.connector": "quarkus-http",
            f"{_OUTGOING}.kogito-job-service-job-request-events.url": (
                f"{jobs_service}/v2/jobs/events"
            ),
            # The runtime only talks to the Jobs Service for timers; waiting on its health when
            # the definition has none would tie the workflow's readiness to a service it never
            # calls.
            "kogito.jobs-service.health-enabled": "true" if uses_timers else "false",
        }
    return properties


def _http_channel(channel: str, url: str) -> dict[str, str]:
    return {
        f"{_OUTGOING}.{channel}.connector": "quarkus-http",
        f"{_OUTGOING}.{channel}.url": url,
        f"{_OUTGOING}.{channel}.method": "POST",
    }


def render_managed_file(properties: Mapping[str, str]) -> str:
    template = _TEMPLATES.get_template("managed.properties.j2")
    return template.render(
        properties=[(escape_key(key), escape_value(value)) for key, value in properties.items()]
    )


def layered(inherited: str | None, own: str | None) -> str:
    """The user's application.properties: the installation's lines, then the Workflow's.

    Where a key appears in both, the later line, the Workflow's, is the one the runtime keeps.
    Without inherited lines the Workflow's text is kept exactly as written.
    """
    if not inherited:
        return own or ""
    head = inherited.rstrip("\n")
    # The blank line ends a dangling continuation (a trailing backslash) of the inherited text,
    # so that it cannot swallow the first line of the Workflow's.
    return (
        "# From the installation (spec.workflowDefaults.properties):\n"
        f"{head}\n\n"
        "# From the Workflow (spec.properties), which wins over the lines above:\n"
        f"{own or ''}"
    )


def user_keys(text: str) -> list[str]:
    """Keys set in a properties file, in order, with `%profile.` prefixes removed."""
    keys: list[str] = []
    for line in _logical_lines(text):
        match = _KEY_PATTERN.match(line)
        if not match:
            continue
        key = re.sub(r"\\(.)", r"\1", match.group(1))
        if key.startswith("%") and "." in key:
            key = key.split(".", 1)[1]
        keys.append(key)
    return keys


def overridden_keys(user_text: str | None, managed: Iterable[str]) -> list[str]:
    """Managed keys that the user's properties also set, which keep the managed value."""
    if not user_text:
        return []
    managed_set = set(managed)
    seen: list[str] = []
    for key in user_keys(user_text):
        if key in managed_set and key not in seen:
            seen.append(key)
    return seen


def managed_env_key(name: str, managed: Iterable[str]) -> str | None:
    """The managed key that an environment variable of this name would set, or None.

    Quarkus reads a property from the environment too, and environment variables win over
    every properties file. It matches a variable to a property by their names upper-cased with
    everything but letters and digits turned into `_`: QUARKUS_HTTP_PORT sets
    quarkus.http.port, and _DEV_QUARKUS_HTTP_PORT sets it for the dev profile only.
    """
    variable = env_name(name)
    for key in managed:
        wanted = env_name(key)
        if variable == wanted or (variable.startswith("_") and variable.endswith("_" + wanted)):
            return key
    return None


def env_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _logical_lines(text: str) -> Iterable[str]:
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip() if pending else raw
        if not pending and line.lstrip().startswith(("#", "!")):
            continue
        if _ends_with_continuation(line):
            pending = line[:-1]
            continue
        pending = ""
        if line.strip():
            yield line
    if pending.strip():
        yield pending


def _ends_with_continuation(line: str) -> bool:
    backslashes = len(line) - len(line.rstrip("\\"))
    return backslashes % 2 == 1


def escape_key(key: str) -> str:
    return re.sub(r"([\s:=#!\\])", r"\\\1", key)


def escape_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n")
    if escaped.startswith(" "):
        escaped = "\\" + escaped
    return escaped
