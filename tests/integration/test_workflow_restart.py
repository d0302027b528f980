"""What a restarted operator finds: drift made while it was down is undone, and nothing else is
written."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from helpers.kube import Cluster, wait_for
from helpers.operator_process import OperatorProcess
from integration.conftest import OPERATOR_USER, RESYNC_SECONDS
from integration.test_workflow_controller import (
    FIXTURES,
    create,
    fixture_workflow,
    ready_event_posted,
    wait_for_condition,
)
from orchestrator_operator.localcluster import LocalControlPlane
from orchestrator_operator.localcluster.audit import AuditMark

pytestmark = pytest.mark.usefixtures("operator")


def operator_writes(
    plane: LocalControlPlane, since: AuditMark, namespace: str
) -> list[tuple[str, str | None, str | None]]:
    plane.sync_audit()
    return [
        (event.verb, event.resource, event.name)
        for event in plane.audit.select(since=since, namespace=namespace, user=OPERATOR_USER)
    ]


def operator_reads(plane: LocalControlPlane, since: AuditMark, namespace: str, kind: str) -> int:
    return plane.count_requests(
        since=since, namespace=namespace, user=OPERATOR_USER, verbs=("get",), resource=kind
    )


def test_drift_made_while_the_operator_was_down_is_undone_and_nothing_else_is_written(
    k8s: ApiClient, namespace: str, control_plane: Cluster, operator: OperatorProcess
) -> None:
    plane = control_plane.require_local()
    core = client.CoreV1Api(k8s)
    create(k8s, fixture_workflow("greeting", namespace))
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
    original = (FIXTURES / "greeting" / "application.properties").read_text()

    with operator.stopped():
        # Nothing of the operator's is in flight once it has exited.
        plane.sync_audit()
        mark = plane.audit.mark()
        core.patch_namespaced_config_map(
            "greeting-props", namespace, {"data": {"application.properties": "edited=down\n"}}
        )

    wait_for(
        lambda: (
            core.read_namespaced_config_map("greeting-props", namespace).data[
                "application.properties"
            ]
            == original
        ),
        timeout=60,
        message="the properties edited while the operator was down to be put back",
    )
    # The other children were looked at too, and found as they should be.
    wait_for(
        lambda: operator_reads(plane, mark, namespace, "deployments") >= 1,
        message="the restarted operator to read the Deployment once",
    )
    operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4)
    assert operator_writes(plane, mark, namespace) == [("patch", "configmaps", "greeting-props")]


def test_an_idle_restart_makes_no_write(
    k8s: ApiClient, namespace: str, control_plane: Cluster, operator: OperatorProcess
) -> None:
    plane = control_plane.require_local()
    for folder in ("greeting", "escalation"):
        manifest = fixture_workflow(folder, namespace)
        manifest["spec"].pop("secrets", None)
        create(k8s, manifest)
    for name in ("greeting", "ticketescalation"):
        wait_for_condition(k8s, namespace, name, "Ready", "True", "RuntimeAvailable", timeout=90)
    wait_for(
        lambda: all(
            ready_event_posted(k8s, namespace, n) for n in ("greeting", "ticketescalation")
        ),
        message="the RuntimeAvailable Events, the last writes of a rollout",
    )

    with operator.stopped():
        plane.sync_audit()
        mark = plane.audit.mark()
    resyncs = operator.log().count("Resync:")

    # Each child is read once after the start, compared with what would be applied, and left.
    wait_for(
        lambda: operator_reads(plane, mark, namespace, "deployments") >= 2,
        message="the restarted operator to read both Deployments",
    )
    operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4, count=resyncs + 2)
    assert operator_writes(plane, mark, namespace) == []
    config_map_reads = operator_reads(plane, mark, namespace, "configmaps")
    assert config_map_reads >= len(children_config_maps(k8s, namespace))


def children_config_maps(k8s: ApiClient, namespace: str) -> list[str]:
    listed = client.CoreV1Api(k8s).list_namespaced_config_map(
        namespace, label_selector="app.kubernetes.io/managed-by=orchestrator-operator"
    )
    return [str(item.metadata.name) for item in listed.items]
