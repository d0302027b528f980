"""What the operator holds between handler calls: its settings, clients, controllers and the
cache of the objects its watches have shown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator.adapters import kube
from orchestrator_operator.config import OperatorConfig
from orchestrator_operator.metrics import OperatorMetrics
from orchestrator_operator.reconcile.cache import WatchCache
from orchestrator_operator.reconcile.children import ChildObservation, NameHolder
from orchestrator_operator.reconcile.installation_controller import InstallationController
from orchestrator_operator.reconcile.live import LinkedWorkflow
from orchestrator_operator.reconcile.source_controller import SourceController
from orchestrator_operator.reconcile.workflow_controller import WorkflowController

# The cache's index names, as handlers/caches.py fills them.
WORKFLOW_CHILDREN = "workflow_children"
INSTALLATION_CHILDREN = "installation_children"
POD_PROBLEMS = "workflow_pod_problems"
MIRRORED_CONFIG_MAPS = "mirrored_config_maps"
INSTALLATION_LINKS = "installation_links"


def holders_index(kind: str) -> str:
    """The index of who holds each name of a kind we create children of."""
    return f"holders:{kind}"


@dataclass
class OperatorState:
    config: OperatorConfig
    api: kube.KubeApi | None = None
    workflows: WorkflowController | None = None
    installations: InstallationController | None = None
    sources: SourceController | None = None
    cache: WatchCache | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    metrics: OperatorMetrics | None = None

    def _values(self, index: str, key: tuple[str, str]) -> list[Any]:
        return self.cache.values(index, key) if self.cache else []

    def workflow_children(self, namespace: str, workflow_name: str) -> list[ChildObservation]:
        return self._values(WORKFLOW_CHILDREN, (namespace, workflow_name))

    def installation_children(
        self, namespace: str, installation_name: str
    ) -> list[ChildObservation]:
        return self._values(INSTALLATION_CHILDREN, (namespace, installation_name))

    def linked_workflows(self, namespace: str, installation_name: str) -> list[LinkedWorkflow]:
        return self._values(INSTALLATION_LINKS, (namespace, installation_name))

    def name_holder(self, kind: str, namespace: str, name: str) -> NameHolder | None:
        holders = self._values(holders_index(kind), (namespace, name))
        return holders[0] if holders else None

    def workflow_pod_problems(self, namespace: str, workflow_name: str) -> list[str]:
        problems = self._values(POD_PROBLEMS, (namespace, workflow_name))
        return [str(problem) for problem in problems if problem]

    def observe_request(self, verb: str, kind: str, status: int) -> None:
        key = (verb, kind, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if self.metrics:
            self.metrics.api_request(verb, kind, status)
