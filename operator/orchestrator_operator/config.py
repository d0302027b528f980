"""Settings of the operator process, read once from the environment at startup.

Every variable starts with ORCHESTRATOR_OPERATOR_ so that the Helm chart can set them and a
developer can override them in a shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "ORCHESTRATOR_OPERATOR_"


@dataclass(frozen=True)
class OperatorConfig:
    field_manager: str = "orchestrator-operator"
    dev_image: str = "docker.io/apache/incubator-kie-sonataflow-devmode:10.1.0"
    # Reconciles spend most of their time waiting on the API server: twice as many workers as
    # the operator's connections to it keep those busy.
    workers: int = 16
    resync_seconds: float = 600.0
    request_timeout_seconds: float = 30.0
    data_index_poll_seconds: float = 30.0
    # Base URL that replaces in-cluster service URLs for the operator's own HTTP calls, for an
    # operator running outside the cluster (development, the quick start). `{name}` and
    # `{namespace}` in it stand for the Service's, so that it can point at `kubectl proxy`.
    service_url_override: str | None = None
    # In-cluster base URL -> base URL to call instead, per service, for the same purpose:
    # SERVICE_URLS="http://orch-data-index-service.ns=http://127.0.0.1:8180,...".
    service_urls: tuple[tuple[str, str], ...] = ()
    # Ask each linked runtime's /management/processes/<id> whether it serves its workflow.
    probe_runtimes: bool = True
    # Namespace the operator runs in; the installations' NetworkPolicies admit it to the Data
    # Index, which the operator polls.
    operator_namespace: str | None = None
    # Git sources: file:// URLs read the operator's own file system, so they are refused
    # unless this is set (development and tests only).
    allow_file_sources: bool = False
    # PEM bundle of certificate authorities that HTTPS git servers are checked against, for
    # servers with a private CA; the system's bundle when unset.
    git_ca_file: str | None = None
    # Longest a single git command (ls-remote, fetch, checkout) may run before it is killed.
    git_timeout_seconds: float = 120.0
    # Git commands running at once, over all sources.
    git_concurrency: int = 4
    # Processes that read workflow folders of git sources (0: threads of the operator's own
    # process). Reading parses every definition and OpenAPI file of a changed folder; each
    # process costs about 50 MB, so the default keeps the operator to one process and large
    # repositories can buy speed with memory.
    discovery_processes: int = 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        environ = os.environ if environ is None else environ
        defaults = cls()

        def read(name: str, default: str | None) -> str | None:
            return environ.get(PREFIX + name, default)

        def number(name: str, default: float, kind: type[int] | type[float], least: float) -> Any:
            text = read(name, None)
            if text is None or not text.strip():
                return default
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(
                    f"{PREFIX}{name}={text!r} is not a{'n integer' if kind is int else ' number'}"
                ) from None
            if value < least:
                raise ValueError(f"{PREFIX}{name}={text!r} must be at least {least:g}")
            return value

        return cls(
            field_manager=read("FIELD_MANAGER", defaults.field_manager) or defaults.field_manager,
            dev_image=read("DEV_IMAGE", defaults.dev_image) or defaults.dev_image,
            workers=number("WORKERS", defaults.workers, int, 1),
            resync_seconds=number("RESYNC_SECONDS", defaults.resync_seconds, float, 1),
            request_timeout_seconds=number(
                "REQUEST_TIMEOUT_SECONDS", defaults.request_timeout_seconds, float, 1
            ),
            data_index_poll_seconds=number(
                "DATA_INDEX_POLL_SECONDS", defaults.data_index_poll_seconds, float, 0.1
            ),
            service_url_override=read("SERVICE_URL_OVERRIDE", None) or None,
            service_urls=_pairs(read("SERVICE_URLS", None)),
            probe_runtimes=_flag(read("PROBE_RUNTIMES", "true")),
            operator_namespace=read("NAMESPACE", None) or environ.get("POD_NAMESPACE") or None,
            allow_file_sources=_flag(read("ALLOW_FILE_SOURCES", None)),
            git_ca_file=read("GIT_CA_FILE", None) or None,
            git_timeout_seconds=number(
                "GIT_TIMEOUT_SECONDS", defaults.git_timeout_seconds, float, 1
            ),
            git_concurrency=number("GIT_CONCURRENCY", defaults.git_concurrency, int, 1),
            discovery_processes=number("DISCOVERY_PROCESSES", defaults.discovery_processes, int, 0),
        )


def _pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """`from=to` pairs separated by commas."""
    pairs: list[tuple[str, str]] = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        source, separator, target = item.partition("=")
        if not separator or not source.strip() or not target.strip():
            raise ValueError(f"{PREFIX}SERVICE_URLS: expected from=to, got {item.strip()!r}")
        pairs.append((source.strip().rstrip("/"), target.strip()))
    return tuple(pairs)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
