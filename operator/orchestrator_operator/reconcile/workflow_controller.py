"""The Workflow controller: read what a Workflow consumes, plan, then write only what changed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from orchestrator_operator.adapters import kube
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.apply import (
    OBJECT_NAME_TAKEN,
    NameTaken,
    ReportedFailure,
    apply_children,
    post_events,
    read_secret_keys,
    spec_errors,
)
from orchestrator_operator.reconcile.bodies import BodyStore
from orchestrator_operator.reconcile.children import (
    AppliedContent,
    ChildObservation,
    HolderLookup,
)
from orchestrator_operator.reconcile.conditions import FALSE, READY, Finding, merge_conditions
from orchestrator_operator.reconcile.queue import WorkQueue
from orchestrator_operator.reconcile.workflow import (
    OVERRIDES_STATUS,
    ConfigMapContent,
    DeploymentState,
    EventToPost,
    InstallationLink,
    Observed,
    consumed_names,
    plan_workflow,
)
from orchestrator_operator.render.workflow import RuntimeDefaults

logger = logging.getLogger(__name__)

INVALID_SPEC = "InvalidSpec"
# How long a Workflow waits after its children changed before it is looked at again.
SETTLE_SECONDS = 0.5
# How long the status waits for the deployment controller to take up a Deployment we applied.
# Past it the status is written anyway, saying the rollout has not started: a cluster whose
# controller manager is down or far behind still gets an answer.
DEPLOYMENT_CONTROLLER_GRACE_SECONDS = 10.0
APPLY_FAILED = "ApplyFailed"

WorkflowKey = tuple[str, str]  # namespace, name
ChildLookup = Callable[[str, str], Iterable[ChildObservation]]
PodProblemLookup = Callable[[str, str], Iterable[str]]
InstallationResolver = Callable[[Workflow], Awaitable[InstallationLink | None]]


@dataclass(frozen=True)
class References:
    """What one Workflow consumes, so that a change to any of it brings the Workflow back."""

    config_maps: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()


@dataclass
class WorkflowController:
    api: kube.KubeApi
    children: ChildLookup
    # Who holds the name of a child not created yet: another owner's object is never taken.
    holders: HolderLookup
    pod_problems: PodProblemLookup
    defaults: RuntimeDefaults = field(default_factory=RuntimeDefaults)
    resolve_installation: InstallationResolver | None = None
    component: str = "orchestrator-operator"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    queue: WorkQueue = field(default_factory=WorkQueue)
    applied: AppliedContent = field(default_factory=AppliedContent)
    # The latest body of each Workflow, as its watch or our last status write showed it.
    bodies: BodyStore = field(default_factory=BodyStore)
    _references: dict[WorkflowKey, References] = field(default_factory=dict)
    # When each Workflow began waiting for the deployment controller, while it waits.
    _awaiting_deployment_controller: dict[WorkflowKey, float] = field(default_factory=dict)

    # -- what the handlers tell us -------------------------------------------------------------

    def workflow_changed(self, body: Mapping[str, Any], deleted: bool = False) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if deleted:
            self.bodies.pop(key)
            self._references.pop(key, None)
            self._awaiting_deployment_controller.pop(key, None)
            return
        self.bodies.put(key, body)
        self.queue.add(key)

    def owner_changed(self, namespace: str, workflow_name: str) -> None:
        # A rollout sends a burst of events from the Deployment, its ReplicaSet and pods; one
        # look after the burst writes the status once instead of once per step.
        # Limitation: that look is a full reconcile (the body decompressed, every child rendered
        # and hashed) even when only the runtime's availability can have changed, a good part
        # of the operator's CPU when thousands of Workflows roll out at once.
        if (namespace, workflow_name) in self._references:
            self.queue.add_after((namespace, workflow_name), SETTLE_SECONDS)

    def config_map_changed(self, namespace: str, name: str) -> None:
        for key, references in self._references.items():
            if key[0] == namespace and name in references.config_maps:
                self.queue.add(key)

    def secret_changed(self, namespace: str, name: str) -> None:
        for key, references in self._references.items():
            if key[0] == namespace and name in references.secrets:
                self.queue.add(key)

    def resync(self) -> None:
        for key in list(self._references):
            self.queue.add(key)

    def known(self) -> list[WorkflowKey]:
        return list(self._references)

    # -- reconcile -----------------------------------------------------------------------------

    async def process(self, key: Hashable) -> None:
        namespace, name = _workflow_key(key)
        # The watch has shown every Workflow before a worker starts: one it has not, or no
        # longer, is gone.
        body = self.bodies.get((namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._references.pop((namespace, name), None)
            self._awaiting_deployment_controller.pop((namespace, name), None)
            return
        await self.reconcile(body)

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        try:
            workflow = _parse(body)
        except ValidationError as error:
            self._references.setdefault((namespace, name), References())
            await self._report_invalid_spec(body, error)
            return

        config_map_names, secret_names = consumed_names(workflow)
        self._references[(namespace, name)] = References(
            config_maps=frozenset(config_map_names), secrets=frozenset(secret_names)
        )
        observed = await self._observe(workflow, body)
        plan = plan_workflow(workflow, observed, self.clock(), self.defaults)

        if plan.children is not None:
            try:
                applied = await apply_children(
                    self.api,
                    self.applied,
                    owner=f"Workflow {workflow.name}",
                    namespace=workflow.namespace,
                    children=plan.children,
                    holders=self.holders,
                    observed=self.children(workflow.namespace, workflow.name),
                )
            except kube.ApiError as error:
                if error.status not in (400, 403, 422):
                    raise
                # The server refuses what we render: retrying at once would refuse it again.
                await self._report_apply_failure(body, plan.status, error)
                raise ReportedFailure(error.api_message) from error
            except NameTaken as taken:
                await self._report(body, Finding(READY, FALSE, OBJECT_NAME_TAKEN, taken.message))
                raise ReportedFailure(taken.message) from taken
            if applied:
                # What was just applied changes what the status will say (a rollout starts);
                # the status is written once the children have settled, not before.
                self.queue.add_after((namespace, name), SETTLE_SECONDS * 2)
                return
            wait = self._wait_for_deployment_controller((namespace, name), observed.deployment)
            if wait:
                # Until the deployment controller has looked at the new spec, the Deployment's
                # status describes the old one: written now, the Workflow's status would change
                # again a moment later. The controller's update brings the Workflow back through
                # the Deployment's watch; the timer only ends the wait when no update comes.
                self.queue.add_after((namespace, name), wait)
                return

        await self._write_status(body, plan.status)
        await self._post_events(body, plan.events)

    def _wait_for_deployment_controller(
        self, key: WorkflowKey, deployment: DeploymentState | None
    ) -> float:
        """How much longer the status waits for the controllers to take up the Deployment."""
        if deployment is None or _taken_up(deployment):
            self._awaiting_deployment_controller.pop(key, None)
            return 0.0
        since = self._awaiting_deployment_controller.setdefault(key, time.monotonic())
        return max(0.0, since + DEPLOYMENT_CONTROLLER_GRACE_SECONDS - time.monotonic())

    async def _observe(self, workflow: Workflow, body: Mapping[str, Any]) -> Observed:
        namespace = workflow.namespace
        config_map_names, secret_names = consumed_names(workflow)
        config_maps, secrets = await asyncio.gather(
            asyncio.gather(*(self._config_map_data(namespace, n) for n in config_map_names)),
            asyncio.gather(*(read_secret_keys(self.api, namespace, n) for n in secret_names)),
        )
        installation = None
        if workflow.spec.installation_ref and self.resolve_installation:
            installation = await self.resolve_installation(workflow)
        deployment = None
        for child in self.children(namespace, workflow.name):
            if child.kind == "Deployment" and child.name == workflow.name and child.rollout:
                deployment = _deployment_state(child.rollout)
        return Observed(
            status=body.get("status") or {},
            config_maps=dict(zip(config_map_names, config_maps, strict=True)),
            secrets=dict(zip(secret_names, secrets, strict=True)),
            installation=installation,
            deployment=deployment,
            pod_problems=sorted(self.pod_problems(namespace, workflow.name)),
        )

    async def _config_map_data(self, namespace: str, name: str) -> ConfigMapContent | None:
        """The ConfigMap's files: text from data, bytes from binaryData (mounted alike)."""
        body = await self.api.get(kube.CONFIG_MAP, namespace, name)
        if body is None:
            return None
        content: dict[str, str | bytes] = dict(body.get("data") or {})
        for key, encoded in (body.get("binaryData") or {}).items():
            try:
                content[key] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                # The API server stores binaryData as base64 and would not have taken this.
                logger.warning("ConfigMap %s/%s: key %s is not base64", namespace, name, key)
        return content

    async def _write_status(self, body: Mapping[str, Any], desired: dict[str, Any]) -> bool:
        """Patch what differs; return whether anything did."""
        current = body.get("status") or {}
        patch = {key: value for key, value in desired.items() if current.get(key) != value}
        # Fields we set before and no longer mean are removed; fields others own stay.
        for owned in (
            "url",
            "replicas",
            "workflowName",
            "workflowVersion",
            "runs",
            OVERRIDES_STATUS,
        ):
            if owned in current and owned not in desired:
                patch[owned] = None
        if isinstance(patch.get("runs"), dict) and isinstance(current.get("runs"), dict):
            # A merge patch keeps nested keys it does not name: a last run that is gone must be
            # named to be removed.
            patch["runs"] = {**dict.fromkeys(current["runs"]), **patch["runs"]}
        if not patch:
            return False
        metadata = body["metadata"]
        try:
            updated = await self.api.patch_status(
                kube.WORKFLOW, metadata["namespace"], metadata["name"], patch
            )
        except kube.ApiError as error:
            if error.status != 404:
                raise
            # Deleted while it was being reconciled: nothing is wrong, and nothing to write.
            logger.info("Workflow %s/%s is gone", metadata["namespace"], metadata["name"])
            return False
        # The next reconcile must see this status even if the watch has not delivered it yet,
        # or it would find the old status and write (and announce) the same change again.
        key = (metadata["namespace"], metadata["name"])
        if key in self.bodies:
            self.bodies.put(key, updated)
        return True

    async def _post_events(self, body: Mapping[str, Any], events: Iterable[EventToPost]) -> None:
        await post_events(self.api, body, events, component=self.component)

    async def _report_invalid_spec(self, body: Mapping[str, Any], error: ValidationError) -> None:
        message = spec_errors(error)
        finding = Finding("Ready", FALSE, INVALID_SPEC, message)
        await self._report(body, finding)

    async def _report_apply_failure(
        self, body: Mapping[str, Any], status: dict[str, Any], error: kube.ApiError
    ) -> None:
        finding = Finding(
            "Ready",
            FALSE,
            APPLY_FAILED,
            f"the API server refused a child object: {error.api_message}",
        )
        await self._report(body, finding)

    async def _report(self, body: Mapping[str, Any], finding: Finding) -> None:
        generation = body["metadata"].get("generation", 0)
        current = body.get("status") or {}
        conditions = [c for c in current.get("conditions", []) if c.get("type") != "Ready"]
        ready = merge_conditions(current.get("conditions", []), [finding], generation, self.clock())
        desired = {**current, "observedGeneration": generation, "conditions": [*ready, *conditions]}
        await self._write_status(body, desired)
        previous = next(
            (c for c in current.get("conditions", []) if c.get("type") == "Ready"), None
        )
        if previous is None or previous.get("reason") != finding.reason:
            await self._post_events(body, [EventToPost("Warning", finding.reason, finding.message)])


def _workflow_key(key: Hashable) -> WorkflowKey:
    if isinstance(key, tuple) and len(key) == 2:
        return str(key[0]), str(key[1])
    raise TypeError(f"not a Workflow key: {key!r}")


def _parse(body: Mapping[str, Any]) -> Workflow:
    metadata = body["metadata"]
    return Workflow(
        name=metadata["name"],
        namespace=metadata["namespace"],
        uid=metadata["uid"],
        generation=metadata.get("generation", 1),
        labels=metadata.get("labels") or {},
        spec=WorkflowSpec.model_validate(body.get("spec") or {}),
    )


def _taken_up(deployment: DeploymentState) -> bool:
    """Whether the controllers have done what they do at once with a Deployment we applied.

    The deployment controller first records that it saw the new spec, and a moment later the
    ReplicaSet's pods. On a first rollout there are no old pods to replace, so every replica is
    an updated one as soon as the ReplicaSet controller has created the pods: until then the
    Deployment's status is about to change again, whether or not the pods ever start.
    """
    if deployment.observed_generation < deployment.generation:
        return False
    first_rollout = deployment.generation == 1
    return not first_rollout or deployment.updated >= deployment.desired


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
