"""The operator's /metrics tells reconciles that failed from reconciles that reported a problem.

A Workflow with an invalid definition is a reconcile that succeeded: the operator did its job
and the status says what is wrong. A Workflow whose Deployment the API server refuses is a
reconcile that failed: it is retried, and it is what controller_runtime_reconcile_errors_total
counts.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from helpers.kube import Cluster, wait_for
from helpers.operator_process import OperatorProcess, running_operator
from orchestrator_operator import __version__

GROUP, VERSION, PLURAL = "orchestrator.dev", "v1alpha1", "workflows"


@dataclass
class Scraped:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


@dataclass
class MetricsOperator:
    process: OperatorProcess
    url: str

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def scrape(self) -> Scraped:
        code, text = self.get("/metrics")
        assert code == 200, text
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return Scraped(samples)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def operator_with_metrics(
    control_plane: Cluster, namespace: str, tmp_path: Path
) -> Iterator[MetricsOperator]:
    port = free_port()
    with running_operator(
        control_plane.kubeconfig,
        tmp_path / "operator.log",
        process_group=control_plane.process_group,
        namespaces=[namespace],
        extra_args=["--metrics-addr", f"127.0.0.1:{port}"],
    ) as process:
        yield MetricsOperator(process, f"http://127.0.0.1:{port}")


def workflow(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "definition": {
                "id": name,
                "version": "1.0",
                "specVersion": "0.8",
                "start": "Greet",
                "states": [
                    {"name": "Greet", "type": "inject", "data": {"hello": "world"}, "end": True}
                ],
            },
            **spec,
        },
    }


def create(k8s: ApiClient, manifest: dict[str, Any]) -> None:
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, manifest["metadata"]["namespace"], PLURAL, manifest
    )


def wait_for_ready(
    k8s: ApiClient, namespace: str, name: str, status: str, reason: str | None = None
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        for condition in (found.get("status") or {}).get("conditions", []):
            if (
                condition["type"] == "Ready"
                and condition["status"] == status
                and (reason is None or condition["reason"] == reason)
            ):
                return dict(condition)
        return None

    return wait_for(ready, timeout=60, message=f"Ready={status} ({reason}) on Workflow {name}")


def test_reconcile_errors_count_only_reconciles_that_failed(
    k8s: ApiClient, namespace: str, operator_with_metrics: MetricsOperator
) -> None:
    operator = operator_with_metrics
    total = "controller_runtime_reconcile_total"
    errors = "controller_runtime_reconcile_errors_total"
    assert operator.get("/readyz") == (200, "ok\n")
    assert operator.scrape().value(errors, controller="workflow") == 0

    broken = workflow("broken", namespace)
    broken["spec"]["definition"]["states"][0]["transition"] = "Nowhere"
    del broken["spec"]["definition"]["states"][0]["end"]
    create(k8s, broken)
    wait_for_ready(k8s, namespace, "broken", "False", "InvalidStateGraph")
    create(k8s, workflow("hello", namespace))
    wait_for_ready(k8s, namespace, "hello", "True")

    after_problems = operator.scrape()
    assert after_problems.value(total, controller="workflow", result="success") >= 2
    assert after_problems.value(errors, controller="workflow") == 0
    assert after_problems.value(total, controller="workflow", result="error") == 0

    # A label key with a space: the CRD lets it through, the Deployment's validation does not.
    refused = workflow("refused", namespace, podTemplate={"nodeSelector": {"bad key": "x"}})
    create(k8s, refused)
    message = wait_for_ready(k8s, namespace, "refused", "False", "ApplyFailed")["message"]
    assert "nodeSelector" in message

    after_failure = wait_for(
        lambda: (
            (scraped := operator.scrape()).value(errors, controller="workflow") >= 1 and scraped
        ),
        timeout=30,
        message="controller_runtime_reconcile_errors_total to count the refused Deployment",
    )
    failed = after_failure.value(total, controller="workflow", result="error")
    succeeded = after_failure.value(total, controller="workflow", result="success")
    assert failed == after_failure.value(errors, controller="workflow")
    timed = after_failure.value(
        "controller_runtime_reconcile_time_seconds_count", controller="workflow"
    )
    assert timed == failed + succeeded
    assert after_failure.value("rest_client_requests_total", code="422", method="PATCH") >= 1
    detail = "orchestrator_api_requests_total"
    assert after_failure.value(detail, verb="apply", kind="Deployment", code="422") >= 1


def test_metrics_describe_the_running_operator(
    namespace: str, operator_with_metrics: MetricsOperator
) -> None:
    scraped = operator_with_metrics.scrape()

    info = [
        labels for name, labels in scraped.samples if name == "orchestrator_operator_build_info"
    ]
    assert [dict(labels)["version"] for labels in info] == [__version__]
    for controller in ("workflow", "installation"):
        assert (
            scraped.value("controller_runtime_max_concurrent_reconciles", controller=controller)
            >= 1
        )
        assert (
            "workqueue_depth",
            frozenset({("name", controller), ("controller", controller)}),
        ) in (scraped.samples)
    assert "process_resident_memory_bytes" in scraped.names()
    assert operator_with_metrics.get("/nothing")[0] == 404
