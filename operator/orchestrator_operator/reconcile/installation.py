"""What to do about an OrchestratorInstance: the children to apply, the status to show, the
Events to post.

Pure: the caller reads the cluster and the live figures, this module decides, the caller
writes. A service whose database Secret is missing (or lacks a key) keeps the Deployment it has:
the operator does not roll out a pod that could only fail to start, and the status names what
is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator_operator.adapters.dataindex import RUN_STATES
from orchestrator_operator.models.installation import Installation
from orchestrator_operator.reconcile.conditions import (
    FALSE,
    READY,
    TRUE,
    UNKNOWN,
    Finding,
    find,
    merge_conditions,
    summarize,
    timestamp,
)
from orchestrator_operator.reconcile.live import (
    LinkedWorkflow,
    Reachability,
    RunsReport,
    WorkflowKey,
)
from orchestrator_operator.reconcile.workflow import DeploymentState, EventToPost
from orchestrator_operator.render import names
from orchestrator_operator.render.installation import (
    COMPONENTS,
    DATA_INDEX,
    TITLES,
    InstallationInput,
    ServiceImages,
    render_installation,
    service_name,
    settings_of,
)
from orchestrator_operator.render.properties import ServiceEndpoints
from orchestrator_operator.render.workflow import ConsumedSecret

PERSISTENCE_READY = "PersistenceReady"
DATA_INDEX_READY = "DataIndexReady"
JOBS_SERVICE_READY = "JobsServiceReady"
SOURCES_SYNCED = "SourcesSynced"
DATA_INDEX_REACHABLE = "DataIndexReachable"
CONDITION_TYPES = frozenset(
    {
        READY,
        PERSISTENCE_READY,
        DATA_INDEX_READY,
        JOBS_SERVICE_READY,
        DATA_INDEX_REACHABLE,
        SOURCES_SYNCED,
    }
)
READY_TYPE = {DATA_INDEX: DATA_INDEX_READY, "jobs-service": JOBS_SERVICE_READY}
SPEC_FIELD = {DATA_INDEX: "dataIndex", "jobs-service": "jobsService"}

EPHEMERAL = "Ephemeral"
CREDENTIALS_FOUND = "CredentialsFound"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_MISSING = "SecretKeyMissing"
DISABLED = "Disabled"
EXTERNAL = "External"
PERSISTENCE_NOT_READY = "PersistenceNotReady"
NOT_ROLLED_OUT = "NotRolledOut"
ROLLING_OUT = "RollingOut"
ROLLOUT_FAILED = "RolloutFailed"
SCALED_TO_ZERO = "ScaledToZero"
UNAVAILABLE = "Unavailable"
AVAILABLE = "Available"
NOT_POLLED = "NotPolledYet"
NOT_SYNCED_YET = "NotSyncedYet"
SYNCED = "Synced"
INSTALLATION_READY = "InstallationReady"

# Fields of the status this controller writes; the rest belongs to others: `sources` is the
# source controller's (reconcile/source_controller.py), which merge-patches that key alone.
OWNED_STATUS_FIELDS = (
    "observedGeneration",
    "conditions",
    "endpoints",
    "backstageConfigMap",
    "workflows",
    "runs",
    "runsChangedAt",
)


@dataclass(frozen=True)
class InstallationObserved:
    """What the cluster and the last polls hold that the installation consumes or owns."""

    status: Mapping[str, Any] = field(default_factory=dict)
    # Secrets named by persistence settings: key names and version, None when missing.
    secrets: Mapping[str, ConsumedSecret | None] = field(default_factory=dict)
    deployments: Mapping[str, DeploymentState] = field(default_factory=dict)
    reachability: Reachability | None = None
    # Workflows whose installationRef names this installation, admitted or not.
    linked: Sequence[LinkedWorkflow] = ()
    runs: Mapping[WorkflowKey, RunsReport] = field(default_factory=dict)


@dataclass(frozen=True)
class InstallationPlan:
    children: list[dict[str, Any]]
    # Children left as they are in the cluster, neither applied nor removed: (kind, name).
    held: frozenset[tuple[str, str]]
    status: dict[str, Any]
    events: list[EventToPost]
    endpoints: ServiceEndpoints


def plan_installation(
    installation: Installation,
    observed: InstallationObserved,
    now: datetime,
    *,
    operator_namespace: str | None = None,
    images: ServiceImages | None = None,
) -> InstallationPlan:
    rendered = render_installation(
        InstallationInput(
            installation=installation,
            secrets={name: s for name, s in observed.secrets.items() if s is not None},
            operator_namespace=operator_namespace,
            images=images or ServiceImages(),
        )
    )
    persistence = {c: _check_persistence(installation, c, observed) for c in COMPONENTS}
    held = frozenset(
        ("Deployment", service_name(installation.name, component))
        for component, problem in persistence.items()
        if problem is not None
    )
    children = [c for c in rendered.children if (c["kind"], c["metadata"]["name"]) not in held]

    findings = [
        _persistence_finding(installation, persistence),
        *(
            _check_service(installation, c, observed, persistence[c], rendered.children)
            for c in COMPONENTS
        ),
    ]
    if rendered.endpoints.data_index_url:
        findings.append(_check_reachability(observed.reachability))
    if installation.spec.sources:
        findings.append(_check_sources(installation, observed.status))
    ready = summarize(findings, INSTALLATION_READY, _ready_message(rendered.endpoints))

    admitted = [w for w in observed.linked if installation.admits(w.namespace)]
    status = {
        "observedGeneration": installation.generation,
        "conditions": _conditions(observed.status, [ready, *findings], installation, now),
        "endpoints": _without_none(
            {
                "dataIndex": rendered.endpoints.data_index_url,
                "jobsService": rendered.endpoints.jobs_service_url,
            }
        ),
        "backstageConfigMap": rendered.backstage_config_map,
        "workflows": _workflow_counts(admitted, observed.runs),
        **_run_totals(
            admitted,
            observed.runs,
            observed.status,
            confirmed=_confirmed(rendered.endpoints, observed.reachability),
        ),
    }
    return InstallationPlan(
        children=children,
        held=held,
        status=_without_none(status),
        events=_events(installation, observed.status, ready),
        endpoints=rendered.endpoints,
    )


# -- persistence -------------------------------------------------------------------------------


def _check_persistence(
    installation: Installation, component: str, observed: InstallationObserved
) -> Finding | None:
    """Why the component's database credentials cannot be read, or None when they can.

    Limitation: only the Secret is checked; a PostgreSQL Service that does not exist or does not
    answer shows as a service that never becomes ready, not as a PersistenceReady reason.
    """
    settings = settings_of(installation, component)
    if not settings.enabled or settings.persistence is None:
        return None
    reference = settings.persistence.postgresql.secret_ref
    where = f"spec.{SPEC_FIELD[component]}.persistence.postgresql.secretRef"
    secret = observed.secrets.get(reference.name)
    if secret is None:
        return Finding(
            PERSISTENCE_READY,
            FALSE,
            SECRET_NOT_FOUND,
            f"Secret {reference.name!r}, named in {where}, does not exist in namespace"
            f" {installation.namespace!r}",
        )
    missing = [
        key for key in (reference.user_key, reference.password_key) if key not in secret.keys
    ]
    if missing:
        return Finding(
            PERSISTENCE_READY,
            FALSE,
            SECRET_KEY_MISSING,
            f"Secret {reference.name!r}, named in {where}, has no key"
            f" {', '.join(map(repr, dict.fromkeys(missing)))}",
        )
    return None


def _persistence_finding(
    installation: Installation, problems: Mapping[str, Finding | None]
) -> Finding:
    for problem in problems.values():
        if problem is not None:
            return problem
    secrets = sorted(
        {
            settings.persistence.postgresql.secret_ref.name
            for settings in (settings_of(installation, c) for c in COMPONENTS)
            if settings.enabled and settings.persistence
        }
    )
    if not secrets:
        return Finding(
            PERSISTENCE_READY,
            TRUE,
            EPHEMERAL,
            "the services keep their data in memory, which a restart loses",
        )
    return Finding(
        PERSISTENCE_READY,
        TRUE,
        CREDENTIALS_FOUND,
        f"the database credentials are in Secret {', '.join(map(repr, secrets))}",
    )


# -- services ----------------------------------------------------------------------------------


def _check_service(
    installation: Installation,
    component: str,
    observed: InstallationObserved,
    persistence: Finding | None,
    rendered: Sequence[Mapping[str, Any]],
) -> Finding:
    condition = READY_TYPE[component]
    title = TITLES[component]
    settings = settings_of(installation, component)
    if not settings.enabled:
        if settings.external_url:
            return Finding(condition, TRUE, EXTERNAL, f"the {title} at {settings.external_url}")
        return Finding(condition, TRUE, DISABLED, f"no {title} in this installation")
    if persistence is not None:
        return Finding(
            condition, FALSE, PERSISTENCE_NOT_READY, f"the {title} waits for its database"
        )

    deployment = observed.deployments.get(component)
    if deployment is None:
        return Finding(condition, FALSE, NOT_ROLLED_OUT, f"the {title} Deployment does not exist")
    if deployment.desired == 0:
        return Finding(condition, FALSE, SCALED_TO_ZERO, f"the {title} runs no replica")
    counts = f"{deployment.available} of {deployment.desired} replicas available"
    if deployment.progress_deadline_exceeded:
        return Finding(
            condition, FALSE, ROLLOUT_FAILED, f"the {title} rollout stopped progressing; {counts}"
        )
    rolled_out = (
        deployment.observed_generation >= deployment.generation
        and deployment.updated >= deployment.desired
        and deployment.checksum == _desired_checksum(installation, component, rendered)
    )
    serving = TRUE if deployment.available > 0 else FALSE
    if not rolled_out:
        return Finding(
            condition,
            serving,
            ROLLING_OUT,
            f"the {title} is rolling out: {deployment.updated} of {deployment.desired} replicas"
            f" updated, {counts}",
        )
    if deployment.available < deployment.desired:
        return Finding(condition, serving, UNAVAILABLE, f"the {title}: {counts}")
    return Finding(condition, TRUE, AVAILABLE, f"the {title}: {counts}")


def _desired_checksum(
    installation: Installation, component: str, rendered: Sequence[Mapping[str, Any]]
) -> str | None:
    name = service_name(installation.name, component)
    for child in rendered:
        if child["kind"] == "Deployment" and child["metadata"]["name"] == name:
            annotations = child["spec"]["template"]["metadata"]["annotations"]
            return str(annotations[names.CHECKSUM_ANNOTATION])
    return None


def _check_reachability(reachability: Reachability | None) -> Finding:
    if reachability is None:
        return Finding(
            DATA_INDEX_REACHABLE, UNKNOWN, NOT_POLLED, "the operator has not asked it yet"
        )
    if reachability.reachable:
        return Finding(DATA_INDEX_REACHABLE, TRUE, reachability.reason, reachability.message)
    return Finding(
        DATA_INDEX_REACHABLE,
        FALSE,
        reachability.reason,
        f"{reachability.message} (since {timestamp(reachability.since)}); the run figures of"
        " linked workflows are the last known and marked stale",
    )


def _check_sources(installation: Installation, status: Mapping[str, Any]) -> Finding:
    """Whether every git source is mirrored, read from what the source controller wrote in
    `status.sources`: a source that fails makes the installation not Ready, so that GitOps
    tools (Argo CD's health check reads Ready) show it, and not only the source's entry."""
    entries = {entry.get("name"): entry for entry in status.get("sources") or []}
    for source in installation.spec.sources:
        synced = find((entries.get(source.name) or {}).get("conditions") or [], "SourceSynced")
        if synced is None:
            return Finding(
                SOURCES_SYNCED, FALSE, NOT_SYNCED_YET, f"source {source.name!r} is not synced yet"
            )
        if synced.get("status") != TRUE:
            return Finding(
                SOURCES_SYNCED,
                FALSE,
                str(synced.get("reason") or NOT_SYNCED_YET),
                f"source {source.name!r}: {synced.get('message', '')}",
            )
    return Finding(SOURCES_SYNCED, TRUE, SYNCED, "every git source is mirrored at its commit")


def _ready_message(endpoints: ServiceEndpoints) -> str:
    if endpoints.data_index_url:
        return f"the Data Index answers at {endpoints.data_index_url}"
    return "the installation's services are ready"


# -- workflows and runs ------------------------------------------------------------------------


def _workflow_counts(
    admitted: Sequence[LinkedWorkflow], runs: Mapping[WorkflowKey, RunsReport]
) -> dict[str, Any]:
    ready = sum(1 for workflow in admitted if workflow.ready)
    registered = sum(
        1 for workflow in admitted if workflow.key in runs and runs[workflow.key].figures.registered
    )
    return {
        "linked": len(admitted),
        "ready": ready,
        "registered": registered,
        "summary": f"{ready}/{len(admitted)}",
    }


def _confirmed(endpoints: ServiceEndpoints, reachability: Reachability | None) -> bool:
    """Whether figures can stand as fresh: there is a Data Index, and it did not fail at the
    last try (before the first poll since a start, the figures the statuses show stand)."""
    if endpoints.data_index_url is None:
        return False
    return reachability is None or reachability.reachable


def _run_totals(
    admitted: Sequence[LinkedWorkflow],
    runs: Mapping[WorkflowKey, RunsReport],
    previous: Mapping[str, Any],
    *,
    confirmed: bool,
) -> dict[str, Any]:
    """The runs of the admitted workflows by state, and when the totals last changed.

    With no figures known for any of them (the operator has just started and nothing seeded
    them), the totals the status shows are kept: they are the last known, not zero.
    """
    if not admitted:
        return {}
    reports = [runs[workflow.key] for workflow in admitted if workflow.key in runs]
    if not reports:
        return _kept_totals(previous, confirmed=confirmed)
    totals: dict[str, Any] = {
        state.lower(): sum(report.figures.counts.get(state, 0) for report in reports)
        for state in RUN_STATES
    }
    totals["stale"] = not confirmed or any(report.stale for report in reports)
    return {
        "runs": totals,
        "runsChangedAt": timestamp(max(report.changed_at for report in reports)),
    }


def _kept_totals(previous: Mapping[str, Any], *, confirmed: bool) -> dict[str, Any]:
    totals = previous.get("runs")
    if not isinstance(totals, Mapping):
        return {}
    kept: dict[str, Any] = {"runs": {**totals, "stale": bool(totals.get("stale")) or not confirmed}}
    if previous.get("runsChangedAt"):
        kept["runsChangedAt"] = previous["runsChangedAt"]
    return kept


# -- conditions and events ---------------------------------------------------------------------


def _conditions(
    previous: Mapping[str, Any],
    findings: Sequence[Finding],
    installation: Installation,
    now: datetime,
) -> list[dict[str, Any]]:
    """Ours from the findings; conditions of other types that others wrote are kept."""
    conditions = list(previous.get("conditions") or [])
    ours = merge_conditions(conditions, findings, installation.generation, now)
    theirs = [c for c in conditions if c.get("type") not in CONDITION_TYPES]
    return [*ours, *theirs]


def _events(
    installation: Installation, previous_status: Mapping[str, Any], ready: Finding
) -> list[EventToPost]:
    """An Event when the Ready reason changes, or on a new generation that is not ready."""
    previous_ready = find(previous_status.get("conditions") or [], READY)
    new_generation = previous_status.get("observedGeneration") != installation.generation
    if (
        previous_ready is None
        or previous_ready.get("reason") != ready.reason
        or (new_generation and ready.status != TRUE)
    ):
        event_type = "Normal" if ready.status == TRUE else "Warning"
        return [EventToPost(event_type, ready.reason, ready.message)]
    return []


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
