"""The OrchestratorInstance controller: read what an installation consumes, plan, then write only
what changed; and tell the Workflow controller what an installation offers its Workflows.

It is the single writer of installation status, as the Workflow controller is of Workflow
status: the poller only records figures in `LiveStatus` and asks each controller to look again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError

from orchestrator_operator.adapters import kube
from orchestrator_operator.models.installation import Installation, InstallationSpec
from orchestrator_operator.models.workflow import Workflow
from orchestrator_operator.reconcile.apply import (
    OBJECT_NAME_TAKEN,
    NameTaken,
    ReportedFailure,
    apply_children,
    post_events,
    read_secret_keys,
    spec_errors,
)
from orchestrator_operator.reconcile.children import (
    AppliedContent,
    ChildObservation,
    HolderLookup,
)
from orchestrator_operator.reconcile.conditions import (
    FALSE,
    READY,
    TRUE,
    Finding,
    find,
    merge_conditions,
)
from orchestrator_operator.reconcile.installation import (
    DATA_INDEX_READY,
    OWNED_STATUS_FIELDS,
    InstallationObserved,
    InstallationPlan,
    plan_installation,
)
from orchestrator_operator.reconcile.live import (
    InstallationKey,
    LinkedWorkflow,
    LiveStatus,
    WorkflowKey,
    runs_of_status,
)
from orchestrator_operator.reconcile.poller import PollTarget, RunsPoller
from orchestrator_operator.reconcile.queue import WorkQueue
from orchestrator_operator.reconcile.workflow import (
    DEPENDENCIES_RESOLVED,
    DeploymentState,
    EventToPost,
    InstallationLink,
)
from orchestrator_operator.render.installation import (
    COMPONENTS,
    ServiceImages,
    endpoints,
    service_name,
    settings_of,
)
from orchestrator_operator.render.properties import ServiceEndpoints

logger = logging.getLogger(__name__)

INVALID_SPEC = "InvalidSpec"
APPLY_FAILED = "ApplyFailed"
INSTALLATION_NOT_FOUND = "InstallationNotFound"
INSTALLATION_NOT_ALLOWED = "InstallationNotAllowed"
INSTALLATION_NOT_READY = "InstallationNotReady"
# How long an installation waits after its children changed before it is looked at again.
SETTLE_SECONDS = 0.5

ChildLookup = Callable[[str, str], Iterable[ChildObservation]]
LinkLookup = Callable[[str, str], Iterable[LinkedWorkflow]]

_KINDS = {
    kind.kind: kind
    for kind in (kube.CONFIG_MAP, kube.SERVICE, kube.DEPLOYMENT, kube.NETWORK_POLICY)
}


@dataclass
class InstallationController:
    api: kube.KubeApi
    children: ChildLookup
    # Who holds the name of a child not created yet: another owner's object is never taken.
    holders: HolderLookup
    # Workflows whose installationRef names an installation, from the Workflows' watch.
    linked_workflows: LinkLookup
    store: LiveStatus = field(default_factory=LiveStatus)
    enqueue_workflow: Callable[[WorkflowKey], None] = lambda key: None
    poller: RunsPoller | None = None
    operator_namespace: str | None = None
    images: ServiceImages = field(default_factory=ServiceImages)
    component: str = "orchestrator-operator"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    queue: WorkQueue = field(default_factory=WorkQueue)
    applied: AppliedContent = field(default_factory=AppliedContent)
    # The latest body of each installation, from the watch; installations are few.
    _bodies: dict[InstallationKey, dict[str, Any]] = field(default_factory=dict)
    # The status each installation was last given here, ahead of the watch that reports it.
    _published: dict[InstallationKey, dict[str, Any]] = field(default_factory=dict)
    _secrets: dict[InstallationKey, frozenset[str]] = field(default_factory=dict)
    # What linked workflows were last told, and which workflow ids were last polled.
    _offers: dict[InstallationKey, str] = field(default_factory=dict)
    _polled_ids: dict[InstallationKey, frozenset[str]] = field(default_factory=dict)
    # What each Workflow's watch last said of its link: the installation, its id, readiness.
    _links: dict[WorkflowKey, tuple[InstallationKey, LinkedWorkflow]] = field(default_factory=dict)

    # -- what the handlers and the poller tell us ----------------------------------------------

    def installation_changed(self, body: Mapping[str, Any], deleted: bool = False) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if deleted:
            self._forget(key)
            return
        if _newer(body, self._bodies.get(key)):
            self._bodies[key] = dict(body)
        self.queue.add(key)

    def owner_changed(self, namespace: str, installation_name: str) -> None:
        # A rollout sends a burst of events; one look after the burst writes the status once.
        if (namespace, installation_name) in self._bodies:
            self.queue.add_after((namespace, installation_name), SETTLE_SECONDS)

    def secret_changed(self, namespace: str, name: str) -> None:
        for key, secrets in self._secrets.items():
            if key[0] == namespace and name in secrets:
                self.queue.add(key)

    def workflow_changed(self, body: Mapping[str, Any], deleted: bool = False) -> None:
        """A Workflow changed: when its link did (the installation it names, its id, whether it
        is ready), the installations it names, now and before, count it again. Other changes,
        such as its run figures, leave the installations alone.

        Limitation: a Workflow that moves to another installation shows the figures of the
        first until the Data Index of the second answers (marked stale if it fails).
        """
        metadata = body["metadata"]
        workflow_key = (metadata["namespace"], metadata["name"])
        before = self._links.pop(workflow_key, None)
        now = None if deleted else linked_workflow_of(body)
        if now is not None:
            self._links[workflow_key] = now
        else:
            self.store.forget_workflow(workflow_key)
        if before == now:
            return
        for key in {link[0] for link in (before, now) if link is not None}:
            if key in self._bodies:
                self.queue.add(key)

    def workflows_changed(self, keys: set[WorkflowKey]) -> None:
        """The poller found new figures or a new probe outcome for these workflows."""
        for key in keys:
            self.enqueue_workflow(key)

    def resync(self) -> None:
        for key in list(self._bodies):
            self.queue.add(key)

    def known(self) -> list[InstallationKey]:
        return list(self._bodies)

    # -- what linked Workflows are offered -----------------------------------------------------

    async def resolve(self, workflow: Workflow) -> InstallationLink | None:
        """The InstallationLink of a Workflow with spec.installationRef, or why there is none."""
        ref = workflow.spec.installation_ref
        if ref is None:
            return None
        key = (ref.namespace or workflow.namespace, ref.name)
        workflow_key = (workflow.namespace, workflow.name)
        body = self._bodies.get(key)
        if body is None:
            # Not listed yet, or in a namespace the operator does not serve.
            # Limitation: an installation in a namespace the operator does not serve is read
            # at every reconcile of its Workflows and is not polled, so they show no run figures.
            body = await self.api.get(kube.INSTALLATION, key[0], key[1])
        where = f"OrchestratorInstance {key[1]!r} in namespace {key[0]!r}"
        if body is None or body["metadata"].get("deletionTimestamp"):
            return self._refused(
                key,
                workflow_key,
                INSTALLATION_NOT_FOUND,
                f"{where}, named in spec.installationRef, does not exist",
            )
        try:
            installation = _parse(body)
        except ValidationError:
            return self._refused(
                key, workflow_key, INSTALLATION_NOT_READY, f"{where} has an invalid spec"
            )
        if not installation.admits(workflow.namespace):
            return self._refused(
                key,
                workflow_key,
                INSTALLATION_NOT_ALLOWED,
                f"{where} does not admit Workflows of namespace {workflow.namespace!r}: add it"
                " to the installation's spec.workflowNamespaces",
            )
        status = self._published.get(key) or body.get("status") or {}
        if "observedGeneration" not in status:
            return self._refused(
                key, workflow_key, INSTALLATION_NOT_READY, f"{where} has not been reconciled yet"
            )
        published = status.get("endpoints") or {}
        return InstallationLink(
            endpoints=ServiceEndpoints(
                data_index_url=published.get("dataIndex"),
                jobs_service_url=published.get("jobsService"),
            ),
            defaults=installation.spec.workflow_defaults,
            runs=self.store.runs.get(workflow_key),
            probe=self.store.probes.get(workflow_key),
        )

    def _refused(
        self, key: InstallationKey, workflow_key: WorkflowKey, reason: str, message: str
    ) -> InstallationLink:
        """A link that cannot be served. The figures the Workflow showed stay, marked stale:
        this installation no longer asks its Data Index about it."""
        known = self._links.get(workflow_key)
        if known is not None and known[0] == key:
            self.store.seed([known[1]])
        else:
            self.store.seed(w for w in self.linked_workflows(*key) if w.key == workflow_key)
        self.store.mark_stale([workflow_key])
        return InstallationLink(
            problem=Finding(DEPENDENCIES_RESOLVED, FALSE, reason, message),
            runs=self.store.runs.get(workflow_key),
        )

    def poll_target(self, key: InstallationKey) -> PollTarget | None:
        """What the poller asks about for one installation, as it stands now."""
        body = self._bodies.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        try:
            installation = _parse(body)
        except ValidationError:
            return None
        url = endpoints(installation).data_index_url
        if url is None:
            return None
        admitted = self._admitted(installation)
        # Figures the statuses show are what a failing first poll marks stale.
        self.store.seed(admitted)
        return PollTarget(
            data_index_url=url,
            in_cluster=installation.spec.data_index.enabled,
            workflows=admitted,
        )

    # -- reconcile -----------------------------------------------------------------------------

    async def process(self, key: Hashable) -> None:
        body = self._bodies.get(cast(InstallationKey, key))
        if body is None:
            return
        await self.reconcile(body)

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if metadata.get("deletionTimestamp"):
            return
        try:
            installation = _parse(body)
        except ValidationError as error:
            await self._report_invalid_spec(body, error)
            return

        self._secrets[key] = _secret_names(installation)
        observed = await self._observe(installation, body)
        plan = plan_installation(
            installation,
            observed,
            self.clock(),
            operator_namespace=self.operator_namespace,
            images=self.images,
        )

        try:
            changed = await apply_children(
                self.api,
                self.applied,
                owner=f"OrchestratorInstance {installation.name}",
                namespace=installation.namespace,
                children=plan.children,
                holders=self.holders,
                observed=self.children(installation.namespace, installation.name),
            )
            changed += await self._prune(installation, plan)
        except kube.ApiError as error:
            if error.status not in (400, 403, 422):
                raise
            # The server refuses what we render: say so, and let the queue retry with backoff.
            await self._report(
                body, APPLY_FAILED, f"the API server refused a child object: {error.api_message}"
            )
            raise ReportedFailure(error.api_message) from error
        except NameTaken as taken:
            await self._report(body, OBJECT_NAME_TAKEN, taken.message)
            raise ReportedFailure(taken.message) from taken
        self._published[key] = {**(body.get("status") or {}), **plan.status}
        self._tell_linked_workflows(key, installation, plan)
        self._tell_poller(key, installation, plan, body.get("status") or {})
        if changed:
            # What was just applied changes what the status will say (a rollout starts); the
            # status is written once the children have settled, not before.
            self.queue.add_after(key, SETTLE_SECONDS * 2)
            return

        await self._write_status(body, plan.status)
        await self._post_events(body, plan.events)

    async def _observe(
        self, installation: Installation, body: Mapping[str, Any]
    ) -> InstallationObserved:
        key = (installation.namespace, installation.name)
        names = sorted(self._secrets.get(key, frozenset()))
        secrets = await asyncio.gather(
            *(read_secret_keys(self.api, installation.namespace, name) for name in names)
        )
        deployments: dict[str, DeploymentState] = {}
        for child in self.children(installation.namespace, installation.name):
            for component in COMPONENTS:
                if (
                    child.kind == "Deployment"
                    and child.name == service_name(installation.name, component)
                    and child.rollout
                ):
                    deployments[component] = _deployment_state(child.rollout)
        linked = list(self.linked_workflows(installation.namespace, installation.name))
        # After a start, the figures on the Workflows stand for those not asked again yet.
        self.store.seed(linked)
        return InstallationObserved(
            status=body.get("status") or {},
            secrets=dict(zip(names, secrets, strict=True)),
            deployments=deployments,
            reachability=self.store.reachability.get(key),
            linked=linked,
            runs={w.key: self.store.runs[w.key] for w in linked if w.key in self.store.runs},
        )

    async def _prune(self, installation: Installation, plan: InstallationPlan) -> int:
        """Delete children the installation no longer has: a service disabled, policies turned
        off, a renamed Backstage ConfigMap. Children held back by the plan stay."""
        desired = {(c["kind"], c["metadata"]["name"]) for c in plan.children} | plan.held
        obsolete = [
            child
            for child in self.children(installation.namespace, installation.name)
            if (child.kind, child.name) not in desired and child.kind in _KINDS
        ]
        for child in obsolete:
            await self.api.delete(_KINDS[child.kind], installation.namespace, child.name)
            logger.info(
                "Deleted %s %s/%s, which OrchestratorInstance %s no longer has",
                child.kind,
                installation.namespace,
                child.name,
                installation.name,
            )
        if obsolete:
            self.applied.forget_owner(installation.namespace, {child.name for child in obsolete})
        return len(obsolete)

    def _tell_linked_workflows(
        self, key: InstallationKey, installation: Installation, plan: InstallationPlan
    ) -> None:
        """Look again at every linked Workflow when what it is offered (endpoints, defaults,
        admitted namespaces) changed."""
        offer = json.dumps(
            {
                "endpoints": plan.status.get("endpoints"),
                "defaults": installation.spec.workflow_defaults.model_dump(mode="json")
                if installation.spec.workflow_defaults
                else None,
                "namespaces": sorted(installation.spec.workflow_namespaces),
            },
            sort_keys=True,
        )
        if self._offers.get(key) != offer:
            self._offers[key] = offer
            for workflow in self.linked_workflows(*key):
                self.enqueue_workflow(workflow.key)

    def _tell_poller(
        self,
        key: InstallationKey,
        installation: Installation,
        plan: InstallationPlan,
        previous: Mapping[str, Any],
    ) -> None:
        """Start or stop polling; poll soon when the linked workflows changed, and at once when
        the Data Index has just become ready (earlier failures only said it was starting)."""
        if self.poller is None:
            return
        if plan.endpoints.data_index_url is None:
            self.poller.stop(key)
            self._polled_ids.pop(key, None)
            # No Data Index confirms the figures of its workflows any more: they stay, stale.
            # Limitation: the last probe of each runtime stays in its Workflow's Available
            # message, with its time, as nothing probes the runtimes of such an installation.
            self.workflows_changed(
                self.store.mark_stale(w.key for w in self._admitted(installation))
            )
            return
        ids = frozenset(w.workflow_id for w in self._admitted(installation))
        self.poller.ensure(key)
        if _became_true(previous, plan.status, DATA_INDEX_READY):
            self.poller.retry(key)
        elif self._polled_ids.get(key) not in (None, ids):
            self.poller.poke(key)
        self._polled_ids[key] = ids

    def _admitted(self, installation: Installation) -> list[LinkedWorkflow]:
        linked = self.linked_workflows(installation.namespace, installation.name)
        return [workflow for workflow in linked if installation.admits(workflow.namespace)]

    def _forget(self, key: InstallationKey) -> None:
        self._bodies.pop(key, None)
        self._published.pop(key, None)
        self._secrets.pop(key, None)
        self._offers.pop(key, None)
        self._polled_ids.pop(key, None)
        if self.poller is not None:
            self.poller.stop(key)
        # Their installation is gone: they say so in their own status.
        for workflow in self.linked_workflows(*key):
            self.enqueue_workflow(workflow.key)

    # -- writing -------------------------------------------------------------------------------

    async def _write_status(self, body: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
        patch = status_patch(body.get("status") or {}, desired)
        if not patch:
            return
        metadata = body["metadata"]
        updated = await self.api.patch_status(
            kube.INSTALLATION, metadata["namespace"], metadata["name"], patch
        )
        # The next reconcile must see this status even if the watch has not delivered it yet,
        # or it would find the old status and write (and announce) the same change again.
        key = (metadata["namespace"], metadata["name"])
        if key in self._bodies and _newer(updated, self._bodies[key]):
            self._bodies[key] = updated

    async def _post_events(self, body: Mapping[str, Any], events: Iterable[EventToPost]) -> None:
        await post_events(self.api, body, events, component=self.component)

    async def _report_invalid_spec(self, body: Mapping[str, Any], error: ValidationError) -> None:
        message = spec_errors(error)
        await self._report(body, INVALID_SPEC, message)

    async def _report(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        """Ready=False with `reason`, the other conditions left as they are."""
        generation = body["metadata"].get("generation", 0)
        current = body.get("status") or {}
        ready = merge_conditions(
            current.get("conditions") or [],
            [Finding(READY, FALSE, reason, message)],
            generation,
            self.clock(),
        )
        others = [c for c in current.get("conditions") or [] if c.get("type") != READY]
        await self._write_status(
            body, {**current, "observedGeneration": generation, "conditions": [*ready, *others]}
        )
        previous = next((c for c in current.get("conditions") or [] if c["type"] == READY), None)
        if previous is None or previous.get("reason") != reason:
            await self._post_events(body, [EventToPost("Warning", reason, message)])


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that turns the fields we own in `current` into `desired`.

    Nested keys we no longer mean are set to None, which a merge patch removes; fields owned by
    others (the git sources' status) are never in the patch.
    """
    patch: dict[str, Any] = {}
    for name in OWNED_STATUS_FIELDS:
        before, after = current.get(name), desired.get(name)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            patch[name] = {**dict.fromkeys(before), **after}
        else:
            patch[name] = after
    return patch


def installation_key_of(workflow_body: Mapping[str, Any]) -> InstallationKey | None:
    """The installation a Workflow's spec.installationRef names, if any."""
    ref = (workflow_body.get("spec") or {}).get("installationRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return (ref.get("namespace") or workflow_body["metadata"]["namespace"], ref["name"])


def linked_workflow_of(
    workflow_body: Mapping[str, Any],
) -> tuple[InstallationKey, LinkedWorkflow] | None:
    """The installation a Workflow links to and what the poller and the counts need of it."""
    key = installation_key_of(workflow_body)
    if key is None:
        return None
    metadata = workflow_body["metadata"]
    definition = (workflow_body.get("spec") or {}).get("definition")
    status = workflow_body.get("status") or {}
    workflow_id = definition.get("id") if isinstance(definition, Mapping) else None
    ready = find(status.get("conditions") or [], READY)
    return key, LinkedWorkflow(
        namespace=metadata["namespace"],
        name=metadata["name"],
        workflow_id=str(workflow_id or status.get("workflowId") or ""),
        ready=ready is not None and ready.get("status") == TRUE,
        reported=runs_of_status(status.get("runs")),
    )


def _became_true(before: Mapping[str, Any], after: Mapping[str, Any], kind: str) -> bool:
    was = find(before.get("conditions") or [], kind)
    now = find(after.get("conditions") or [], kind)
    return now is not None and now.get("status") == TRUE and (was or {}).get("status") != TRUE


def _newer(body: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    """Whether `body` is at least as recent as `than`, so that a watch event that was already on
    its way does not replace the answer to our own later write.

    resourceVersions are opaque strings; the API server's are etcd revisions, which compare as
    numbers, and anything else is taken as newer.
    """
    if than is None:
        return True
    mine = str(body["metadata"].get("resourceVersion", ""))
    theirs = str(than["metadata"].get("resourceVersion", ""))
    if mine.isdigit() and theirs.isdigit():
        return int(mine) >= int(theirs)
    return True


def _parse(body: Mapping[str, Any]) -> Installation:
    metadata = body["metadata"]
    return Installation(
        name=metadata["name"],
        namespace=metadata["namespace"],
        uid=metadata["uid"],
        generation=metadata.get("generation", 1),
        spec=InstallationSpec.model_validate(body.get("spec") or {}),
    )


def _secret_names(installation: Installation) -> frozenset[str]:
    return frozenset(
        settings.persistence.postgresql.secret_ref.name
        for settings in (settings_of(installation, c) for c in COMPONENTS)
        if settings.enabled and settings.persistence
    )


def _deployment_state(rollout: Mapping[str, Any]) -> DeploymentState:
    return DeploymentState(
        generation=rollout["generation"],
        observed_generation=rollout["observedGeneration"],
        desired=rollout["desired"],
        updated=rollout["updated"],
        ready=rollout["ready"],
        available=rollout["available"],
        checksum=rollout["checksum"],
        progress_deadline_exceeded=rollout["progressDeadlineExceeded"],
    )
