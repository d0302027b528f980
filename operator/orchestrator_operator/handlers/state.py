"""What the operator holds between handler calls: its settings, clients, controllers and the
in-memory indexes kopf keeps of the objects we own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator.adapters import kube
from orchestrator_operator.config import OperatorConfig
from orchestrator_operator.handlers.holders import HOLDER_INDEXES
from orchestrator_operator.metrics import OperatorMetrics
from orchestrator_operator.reconcile.children import ChildObservation, NameHolder
from orchestrator_operator.reconcile.installation_controller import InstallationController
from orchestrator_operator.reconcile.live import LinkedWorkflow
from orchestrator_operator.reconcile.source_controller import SourceController
from orchestrator_operator.reconcile.workflow_controller import WorkflowController

# kopf's index objects: key -> a collection of the values indexed under it.
IndexView = Mapping[Any, Iterable[Any]]


@dataclass
class OperatorState:
    config: OperatorConfig
    api: kube.KubeApi | None = None
    workflows: WorkflowController | None = None
    installations: InstallationController | None = None
    sources: SourceController | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    indexes: dict[str, IndexView] = field(default_factory=dict)
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    metrics: OperatorMetrics | None = None

    def attach_indexes(self, **indexes: IndexView) -> None:
        """kopf hands its indexes only to handlers; the controllers read them through here."""
        self.indexes.update(indexes)

    def workflow_children(self, namespace: str, workflow_name: str) -> list[ChildObservation]:
        key = (namespace, workflow_name)
        found: list[ChildObservation] = []
        for name in ("workflow_config_maps", "workflow_services", "workflow_deployments"):
            index = self.indexes.get(name)
            if index is not None and key in index:
                found.extend(index[key])
        return found

    def installation_children(
        self, namespace: str, installation_name: str
    ) -> list[ChildObservation]:
        key = (namespace, installation_name)
        found: list[ChildObservation] = []
        for name in (
            "installation_config_maps",
            "installation_services",
            "installation_deployments",
            "installation_network_policies",
        ):
            index = self.indexes.get(name)
            if index is not None and key in index:
                found.extend(index[key])
        return found

    def linked_workflows(self, namespace: str, installation_name: str) -> list[LinkedWorkflow]:
        index = self.indexes.get("installation_links")
        if index is None or (namespace, installation_name) not in index:
            return []
        return list(index[(namespace, installation_name)])

    def name_holder(self, kind: str, namespace: str, name: str) -> NameHolder | None:
        index = self.indexes.get(HOLDER_INDEXES.get(kind, ""))
        if index is None or (namespace, name) not in index:
            return None
        return next(iter(index[(namespace, name)]), None)

    def workflow_pod_problems(self, namespace: str, workflow_name: str) -> list[str]:
        index = self.indexes.get("workflow_pod_problems")
        if index is None or (namespace, workflow_name) not in index:
            return []
        return [problem for problem in index[(namespace, workflow_name)] if problem]

    def observe_request(self, verb: str, kind: str, status: int) -> None:
        key = (verb, kind, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if self.metrics:
            self.metrics.api_request(verb, kind, status)
