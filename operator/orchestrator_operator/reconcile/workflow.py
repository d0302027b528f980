"""What to do about a Workflow: the children to apply, the status to show, the Events to post.

Pure: the caller reads the cluster, this module decides, the caller writes. A Workflow that
fails validation gets no children at all, so the runtime of its last valid version keeps
running while the status says what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from orchestrator_operator.adapters.dataindex import RUN_STATES
from orchestrator_operator.definition import Problem, read_info, validate_definition
from orchestrator_operator.models.installation import WorkflowDefaults
from orchestrator_operator.models.workflow import Profile, Workflow
from orchestrator_operator.reconcile.conditions import (
    FALSE,
    READY,
    TRUE,
    Finding,
    find,
    merge_conditions,
    summarize,
    timestamp,
)
from orchestrator_operator.reconcile.live import ProbeReport, RunsReport
from orchestrator_operator.render.environment import (
    EnvReference,
    ManagedOverride,
    env_references,
)
from orchestrator_operator.render.files import FileTooLarge
from orchestrator_operator.render.properties import ServiceEndpoints
from orchestrator_operator.render.workflow import (
    MANAGED_PROPERTIES_FILE,
    USER_PROPERTIES_FILE,
    ConsumedConfigMap,
    ConsumedSecret,
    RenderInput,
    RuntimeDefaults,
    definition_path,
    managed_overrides,
    render_workflow,
    service_url,
)

DEFINITION_VALID = "DefinitionValid"
DEPENDENCIES_RESOLVED = "DependenciesResolved"
AVAILABLE = "Available"

# Reasons of our own; the validation reasons come from the definition package.
VALID = "Valid"
RESOLVED = "Resolved"
FILE_TOO_LARGE = "FileTooLarge"
CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
CONFIG_MAP_KEY_MISSING = "ConfigMapKeyMissing"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_MISSING = "SecretKeyMissing"
RUNTIME_AVAILABLE = "RuntimeAvailable"
ROLLING_OUT = "RollingOut"
RUNTIME_UNAVAILABLE = "RuntimeUnavailable"
ROLLOUT_FAILED = "RolloutFailed"
SCALED_TO_ZERO = "ScaledToZero"
NOT_ROLLED_OUT = "NotRolledOut"
MANAGED_PROPERTY_OVERRIDDEN = "ManagedPropertyOverridden"
DUPLICATE_FILE_PATH = "DuplicateFilePath"
PROCESS_NOT_SERVED = "ProcessNotServed"
# Reasons of a runtime on its way to serving: shown in the status, not worth an Event.
PROGRESS_REASONS = frozenset({NOT_ROLLED_OUT, ROLLING_OUT})

_MAX_PROBLEMS_IN_MESSAGE = 10
# The status field that lists the managed keys a user tries to set.
OVERRIDES_STATUS = "overriddenManagedKeys"


@dataclass(frozen=True)
class InstallationLink:
    """What the linked installation offers the workflow, or why it cannot: its endpoints, the
    defaults it gives linked workflows, and what its poller last learned of this workflow (run
    figures from the Data Index, the runtime's answer to the management probe)."""

    endpoints: ServiceEndpoints | None = None
    problem: Finding | None = None
    defaults: WorkflowDefaults | None = None
    runs: RunsReport | None = None
    probe: ProbeReport | None = None


@dataclass(frozen=True)
class DeploymentState:
    """The parts of the runtime's Deployment that say whether it serves."""

    generation: int
    observed_generation: int
    desired: int
    updated: int
    ready: int
    available: int
    checksum: str | None
    progress_deadline_exceeded: bool = False


# The files of a ConfigMap by key: text from its data, bytes from its binaryData.
ConfigMapContent = Mapping[str, str | bytes]


@dataclass(frozen=True)
class Observed:
    """What the cluster holds that the Workflow consumes or owns."""

    status: Mapping[str, Any] = field(default_factory=dict)
    config_maps: Mapping[str, ConfigMapContent | None] = field(default_factory=dict)
    secrets: Mapping[str, ConsumedSecret | None] = field(default_factory=dict)
    installation: InstallationLink | None = None
    deployment: DeploymentState | None = None
    pod_problems: Sequence[str] = ()


@dataclass(frozen=True)
class EventToPost:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class WorkflowPlan:
    children: list[dict[str, Any]] | None
    status: dict[str, Any]
    events: list[EventToPost]


def consumed_names(workflow: Workflow) -> tuple[list[str], list[str]]:
    """The ConfigMaps and the Secrets the runtime reads, by name: to mount, or for env."""
    env = env_references(workflow)
    config_maps = {ref.config_map for ref in workflow.spec.config_map_files}
    config_maps |= {ref.name for ref in env if ref.kind == "ConfigMap"}
    secrets = {ref.secret_name for ref in workflow.spec.secrets}
    secrets |= {ref.name for ref in env if ref.kind == "Secret"}
    return sorted(config_maps), sorted(secrets)


def plan_workflow(
    workflow: Workflow,
    observed: Observed,
    now: datetime,
    defaults: RuntimeDefaults | None = None,
) -> WorkflowPlan:
    profile = Profile(workflow.spec.profile)
    info = read_info(workflow.spec.definition)
    validity = _check_definition(workflow, observed, profile)
    dependencies = _check_dependencies(workflow, observed, profile)

    link = observed.installation
    given = RenderInput(
        workflow=workflow,
        workflow_id=info.id,
        uses_timers=uses_timers(workflow.spec.definition),
        config_maps=_consumed_config_maps(workflow, observed),
        secrets={name: s for name, s in observed.secrets.items() if s is not None},
        endpoints=link.endpoints if link else None,
        defaults=with_installation_defaults(defaults or RuntimeDefaults(), link),
        inherited_properties=link.defaults.properties if link and link.defaults else None,
    )
    # Known from the spec and what is linked, whether or not the rest renders.
    overrides = managed_overrides(given)
    children: list[dict[str, Any]] | None = None
    checksum: str | None = None
    if validity.ok and dependencies.ok:
        rendered = render_workflow(given)
        if isinstance(rendered, FileTooLarge):
            validity = Finding(DEFINITION_VALID, FALSE, FILE_TOO_LARGE, rendered.message)
        else:
            children = rendered.children
            checksum = rendered.checksum

    availability = _with_probe(_check_availability(workflow, observed, checksum), link)
    findings = [validity, dependencies, availability]
    ready = summarize(
        findings, RUNTIME_AVAILABLE, f"the workflow answers at {service_url(workflow)}"
    )
    if ready.ok and availability.reason != RUNTIME_AVAILABLE:
        # The previous version still serves, but this generation is not rolled out yet.
        ready = Finding(READY, FALSE, availability.reason, availability.message)
    if not validity.ok and availability.ok:
        ready = Finding(
            ready.type,
            ready.status,
            ready.reason,
            f"{ready.message}; the runtime of the last valid version keeps running",
        )

    previous_conditions = list(observed.status.get("conditions", []))
    status = {
        "observedGeneration": workflow.generation,
        "conditions": merge_conditions(
            previous_conditions, [ready, *findings], workflow.generation, now
        ),
        "workflowId": info.id,
        "workflowName": info.name,
        "workflowVersion": info.version,
        "profile": str(profile),
        "url": service_url(workflow) if observed.deployment or children else None,
        "replicas": _replica_counts(observed.deployment),
        OVERRIDES_STATUS: [{"key": o.key, "source": o.source} for o in overrides] or None,
    }
    runs = _runs_status(workflow, observed)
    if runs is not None:
        status["runs"] = runs
    events = _events(workflow, observed.status, ready, overrides)
    return WorkflowPlan(children=children, status=_without_none(status), events=events)


def _check_definition(workflow: Workflow, observed: Observed, profile: Profile) -> Finding:
    missing = _missing_file_config_map(workflow, observed, profile)
    if missing is not None:
        # Without its files the definition cannot be checked.
        return replace(missing, type=DEFINITION_VALID)
    if profile is Profile.DEV:
        clash = _duplicate_path(workflow, observed)
        if clash:
            return Finding(DEFINITION_VALID, FALSE, DUPLICATE_FILE_PATH, clash)
    problems = _validated(workflow.spec.definition, resource_files(workflow, observed))
    if profile is Profile.GITOPS:
        # A built image carries its own files, which the operator cannot see.
        problems = [problem for problem in problems if problem.reason != "MissingResourceFile"]
    if problems:
        return Finding(DEFINITION_VALID, FALSE, problems[0].reason, _problems_message(problems))
    return Finding(DEFINITION_VALID, TRUE, VALID, "the definition and its files are consistent")


def _duplicate_path(workflow: Workflow, observed: Observed) -> str | None:
    """The first path that two sources would mount at once, said with both sources; None when
    every file has a path of its own. The API server would refuse such a pod, after the fact."""
    info = read_info(workflow.spec.definition)
    sources: dict[str, str] = {
        definition_path(info.id): "the definition",
        USER_PROPERTIES_FILE: "spec.properties",
        MANAGED_PROPERTIES_FILE[Profile.DEV]: "the operator's managed properties",
    }
    mounted = [(inline.path, "spec.files") for inline in workflow.spec.files]
    for reference in workflow.spec.config_map_files:
        for key in observed.config_maps.get(reference.config_map) or {}:
            path = f"{reference.path}/{key}" if reference.path else key
            mounted.append((path, f"ConfigMap {reference.config_map!r}"))
    for path, source in mounted:
        if path in sources:
            return f"{path!r} would be mounted twice, from {sources[path]} and from {source}"
        sources[path] = source
    return None


_VALIDATION_CACHE_SIZE = 1024
_validation_cache: OrderedDict[str, tuple[Problem, ...]] = OrderedDict()


def _validated(definition: Mapping[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    """Validation is a pure function of the definition and its files; a resync or an event from
    a child brings the same inputs again, and parsing a large OpenAPI file once more would be
    most of the reconcile's time. The last results are kept by a digest of the inputs."""
    hasher = hashlib.sha256(json.dumps(definition, sort_keys=True).encode())
    for path in sorted(files):
        hasher.update(b"\0" + path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    key = hasher.hexdigest()
    if key in _validation_cache:
        _validation_cache.move_to_end(key)
        return list(_validation_cache[key])
    problems = tuple(validate_definition(definition, files))
    _validation_cache[key] = problems
    if len(_validation_cache) > _VALIDATION_CACHE_SIZE:
        _validation_cache.popitem(last=False)
    return list(problems)


def _problems_message(problems: Sequence[Problem]) -> str:
    shown = [problem.message for problem in problems[:_MAX_PROBLEMS_IN_MESSAGE]]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")


def resource_files(workflow: Workflow, observed: Observed) -> dict[str, bytes]:
    """Every file the runtime will find next to its definition, by path."""
    files = {inline.path: inline.content.encode() for inline in workflow.spec.files}
    for reference in workflow.spec.config_map_files:
        data = observed.config_maps.get(reference.config_map) or {}
        for key, content in data.items():
            path = f"{reference.path}/{key}" if reference.path else key
            files[path] = content.encode() if isinstance(content, str) else content
    return files


def _missing_file_config_map(
    workflow: Workflow, observed: Observed, profile: Profile
) -> Finding | None:
    """The first ConfigMap of spec.configMapFiles that does not exist, where it is mounted."""
    if profile is not Profile.DEV:
        return None
    for ref in workflow.spec.config_map_files:
        if observed.config_maps.get(ref.config_map) is None:
            return Finding(
                DEPENDENCIES_RESOLVED,
                FALSE,
                CONFIG_MAP_NOT_FOUND,
                f"ConfigMap {ref.config_map!r}, named in spec.configMapFiles, does not exist in"
                f" namespace {workflow.namespace!r}",
            )
    return None


def _check_dependencies(workflow: Workflow, observed: Observed, profile: Profile) -> Finding:
    missing = (
        _missing_file_config_map(workflow, observed, profile)
        or _missing_secret(workflow, observed)
        or _missing_env_value(workflow, observed)
    )
    if missing is not None:
        return missing
    if observed.installation and observed.installation.problem:
        return observed.installation.problem
    return Finding(DEPENDENCIES_RESOLVED, TRUE, RESOLVED, "every referenced object exists")


def _missing_env_value(workflow: Workflow, observed: Observed) -> Finding | None:
    """The first value that spec.podTemplate.env reads and the cluster lacks: the kubelet
    would not start the container (CreateContainerConfigError)."""
    for ref in env_references(workflow):
        if ref.optional:
            continue
        keys = _keys_of(ref, observed)
        where = f"read by spec.podTemplate.env {ref.variable!r}"
        if keys is None:
            reason = SECRET_NOT_FOUND if ref.kind == "Secret" else CONFIG_MAP_NOT_FOUND
            return Finding(
                DEPENDENCIES_RESOLVED,
                FALSE,
                reason,
                f"{ref.kind} {ref.name!r}, {where}, does not exist in namespace"
                f" {workflow.namespace!r}",
            )
        if ref.key not in keys:
            reason = SECRET_KEY_MISSING if ref.kind == "Secret" else CONFIG_MAP_KEY_MISSING
            return Finding(
                DEPENDENCIES_RESOLVED,
                FALSE,
                reason,
                f"{ref.kind} {ref.name!r} has no key {ref.key!r}, {where}",
            )
    return None


def _keys_of(ref: EnvReference, observed: Observed) -> Collection[str] | None:
    if ref.kind == "Secret":
        secret = observed.secrets.get(ref.name)
        return secret.keys if secret else None
    data = observed.config_maps.get(ref.name)
    return None if data is None else data.keys()


def _missing_secret(workflow: Workflow, observed: Observed) -> Finding | None:
    for reference in workflow.spec.secrets:
        secret = observed.secrets.get(reference.secret_name)
        if secret is None:
            return Finding(
                DEPENDENCIES_RESOLVED,
                FALSE,
                SECRET_NOT_FOUND,
                f"Secret {reference.secret_name!r} does not exist in namespace"
                f" {workflow.namespace!r}",
            )
        absent = [key for key in reference.keys or () if key not in secret.keys]
        if absent:
            return Finding(
                DEPENDENCIES_RESOLVED,
                FALSE,
                SECRET_KEY_MISSING,
                f"Secret {reference.secret_name!r} has no key {', '.join(map(repr, absent))}",
            )
    return None


def _check_availability(workflow: Workflow, observed: Observed, checksum: str | None) -> Finding:
    deployment = observed.deployment
    if deployment is None:
        return Finding(
            AVAILABLE, FALSE, NOT_ROLLED_OUT, "the runtime's Deployment does not exist yet"
        )
    if deployment.desired == 0:
        return Finding(AVAILABLE, FALSE, SCALED_TO_ZERO, "spec.replicas is 0")
    counts = f"{deployment.available} of {deployment.desired} replicas available"
    if deployment.progress_deadline_exceeded:
        return Finding(
            AVAILABLE,
            FALSE,
            ROLLOUT_FAILED,
            _with_pod_problems(f"the rollout stopped progressing; {counts}", observed),
        )
    rolled_out = (
        deployment.observed_generation >= deployment.generation
        and deployment.updated >= deployment.desired
        and (checksum is None or deployment.checksum == checksum)
    )
    if observed.pod_problems:
        return Finding(
            AVAILABLE,
            FALSE if deployment.available == 0 else TRUE,
            RUNTIME_UNAVAILABLE if deployment.available == 0 else ROLLING_OUT,
            _with_pod_problems(counts, observed),
        )
    if not rolled_out:
        status = TRUE if deployment.available > 0 else FALSE
        return Finding(
            AVAILABLE,
            status,
            ROLLING_OUT,
            f"rolling out: {deployment.updated} of {deployment.desired} replicas updated, {counts}",
        )
    if deployment.available < deployment.desired:
        status = TRUE if deployment.available > 0 else FALSE
        return Finding(AVAILABLE, status, RUNTIME_UNAVAILABLE, counts)
    return Finding(AVAILABLE, TRUE, RUNTIME_AVAILABLE, counts)


def _with_probe(availability: Finding, link: InstallationLink | None) -> Finding:
    """The availability, with what the runtime answered to the management probe.

    The probe is the question the Backstage plugin asks before it offers to run a workflow: a
    Deployment that looks available while the probe fails is not available to its users.

    Limitation: the probe runs once per poll interval, so a runtime that just became available
    may show the previous probe's failure for up to one interval.
    """
    probe = link.probe if link else None
    if probe is None:
        return availability
    if availability.reason == RUNTIME_AVAILABLE and not probe.ok:
        return Finding(
            AVAILABLE, FALSE, PROCESS_NOT_SERVED, f"{probe.describe()}; {availability.message}"
        )
    return replace(availability, message=f"{availability.message}; {probe.describe()}")


def with_installation_defaults(
    defaults: RuntimeDefaults, link: InstallationLink | None
) -> RuntimeDefaults:
    """The operator's defaults, with those of the linked installation over them."""
    given = link.defaults if link else None
    if given is None:
        return defaults
    if given.image:
        defaults = replace(defaults, dev_image=given.image)
    if given.resources:
        resources = given.resources.model_dump(by_alias=True, exclude_none=True)
        defaults = replace(defaults, dev_resources=resources, gitops_resources=resources)
    return defaults


def _runs_status(workflow: Workflow, observed: Observed) -> dict[str, Any] | None:
    """What the Data Index says of the workflow, as the status shows it.

    Unlinked, there is nothing to show. Linked but not polled yet (the operator just started,
    or the installation has no Data Index), the figures last written stay.
    """
    if workflow.spec.installation_ref is None:
        return None
    report = observed.installation.runs if observed.installation else None
    if report is None:
        previous = observed.status.get("runs")
        return dict(previous) if isinstance(previous, Mapping) else None
    figures = report.figures
    runs: dict[str, Any] = {
        "registered": figures.registered,
        "counts": {state.lower(): figures.counts.get(state, 0) for state in RUN_STATES},
        "observedAt": timestamp(report.changed_at),
        "stale": report.stale,
    }
    if figures.last_run is not None:
        last = figures.last_run
        runs["lastRun"] = _without_none(
            {
                "id": last.id,
                "state": last.state,
                "start": timestamp(last.start) if last.start else None,
                "end": timestamp(last.end) if last.end else None,
            }
        )
    return runs


def _with_pod_problems(message: str, observed: Observed) -> str:
    if not observed.pod_problems:
        return message
    return f"{message}; {'; '.join(observed.pod_problems[:3])}"


def _replica_counts(deployment: DeploymentState | None) -> dict[str, int] | None:
    if deployment is None:
        return None
    return {
        "desired": deployment.desired,
        "updated": deployment.updated,
        "available": deployment.available,
    }


def _events(
    workflow: Workflow,
    previous_status: Mapping[str, Any],
    ready: Finding,
    overrides: Sequence[ManagedOverride],
) -> list[EventToPost]:
    """Events for what changed: the Ready reason, and managed keys the user tried to set.

    Posting only on change keeps a resync silent; for the Ready reason, a new generation is a
    change. An override is announced once, when the status does not list it yet: the list, not
    the generation, remembers what was said, so the Warning comes whether or not the
    generation renders, and not again after the operator restarts.
    """
    events: list[EventToPost] = []
    previous_ready = find(previous_status.get("conditions", []), "Ready")
    new_generation = previous_status.get("observedGeneration") != workflow.generation
    changed = previous_ready is None or previous_ready.get("reason") != ready.reason
    if ready.status == TRUE and changed:
        events.append(EventToPost("Normal", ready.reason, ready.message))
    elif ready.reason not in PROGRESS_REASONS and (changed or new_generation):
        events.append(EventToPost("Warning", ready.reason, ready.message))
    announced = {
        (entry.get("key"), entry.get("source"))
        for entry in previous_status.get(OVERRIDES_STATUS) or []
        if isinstance(entry, Mapping)
    }
    new = [o for o in overrides if (o.key, o.source) not in announced]
    if new:
        events.append(
            EventToPost(
                "Warning",
                MANAGED_PROPERTY_OVERRIDDEN,
                "the operator manages "
                + ", ".join(f"{o.key} (set in {o.source})" for o in new)
                + "; the managed values are used, not these",
            )
        )
    return events


def _consumed_config_maps(workflow: Workflow, observed: Observed) -> dict[str, ConsumedConfigMap]:
    env_keys: dict[str, set[str]] = {}
    for ref in env_references(workflow):
        if ref.kind == "ConfigMap":
            env_keys.setdefault(ref.name, set()).add(ref.key)
    return {
        name: ConsumedConfigMap(
            name=name,
            keys=tuple(sorted(data)),
            digest=digest(data),
            key_digests={
                key: digest({key: data[key]}) for key in env_keys.get(name, ()) if key in data
            },
        )
        for name, data in observed.config_maps.items()
        if data is not None
    }


def digest(data: ConfigMapContent) -> str:
    # Text as it is, so that the digest of a ConfigMap of text stays what it always was.
    plain = {
        key: value if isinstance(value, str) else {"base64": base64.b64encode(value).decode()}
        for key, value in data.items()
    }
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def uses_timers(definition: Mapping[str, Any]) -> bool:
    """Whether the definition waits on time (sleep states, timeouts), which needs a Jobs Service."""
    return _mentions_time(definition)


def _mentions_time(node: Any) -> bool:
    if isinstance(node, Mapping):
        if node.get("type") == "sleep" or "timeouts" in node:
            return True
        return any(_mentions_time(value) for value in node.values())
    if isinstance(node, list):
        return any(_mentions_time(item) for item in node)
    return False


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
