"""The operator process as the chart runs it: kopf's liveness endpoint, JSON log lines, and one
watch per kind of object however many controllers read that kind."""

from __future__ import annotations

import itertools
import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from helpers.kube import Cluster, wait_for
from helpers.operator_process import free_port, running_operator
from orchestrator_operator.localcluster import AuditEvent

GROUP, VERSION = "orchestrator.dev", "v1alpha1"
# Kinds that several controllers watch: Secrets (Workflows and installations), ConfigMaps
# (Workflows, installations, the git mirror), Workflows (their controller, the installations'
# links, the git mirror).
SHARED_WATCHES = [("", "secrets"), ("", "configmaps"), (GROUP, "workflows")]


def hello_workflow(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": "hello", "namespace": namespace},
        "spec": {
            "definition": {
                "id": "hello",
                "version": "1.0",
                "specVersion": "0.8",
                "start": "Greet",
                "states": [{"name": "Greet", "type": "inject", "data": {}, "end": True}],
            }
        },
    }


def test_liveness_answers_with_the_queues_and_every_log_line_is_json(
    control_plane: Cluster, k8s: ApiClient, namespace: str, tmp_path: Path
) -> None:
    health = free_port()
    with running_operator(
        control_plane.kubeconfig,
        tmp_path / "operator.log",
        process_group=control_plane.process_group,
        namespaces=[namespace],
        extra_args=[f"--liveness=http://127.0.0.1:{health}/healthz", "--log-format=json"],
    ) as operator:
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5) as answer:
            assert answer.status == 200
            body = json.loads(answer.read())
        # The operator's own probe, beside kopf's: how much each controller has waiting.
        assert set(body["workqueue"]) == {"workflowsWaiting", "installationsWaiting"}

        client.CustomObjectsApi(k8s).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "workflows", hello_workflow(namespace)
        )
        operator.wait_for_log(
            f"Applied Deployment {namespace}/hello for Workflow hello", timeout=120
        )
        lines = operator.log().splitlines()

    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in records)
    for record in records:
        assert {"message", "severity", "timestamp"} <= set(record), record
        assert record["severity"] in {"debug", "info", "warn", "error", "fatal"}
    applied = [r for r in records if r["message"].startswith(f"Applied Deployment {namespace}/")]
    assert applied[0]["severity"] == "info"


def test_each_kind_has_one_watch_whatever_the_number_of_handlers(
    control_plane: Cluster, k8s: ApiClient, namespace: str, tmp_path: Path
) -> None:
    plane = control_plane.require_local()
    # A user of its own, so that the audit log tells this operator's requests from others'.
    user = f"watch-count-{uuid.uuid4().hex[:8]}"
    kubeconfig = plane.mint_kubeconfig(user, ["system:masters"])
    since = plane.audit.mark()
    workflow = hello_workflow(namespace)
    workflow["spec"]["secrets"] = [{"secretName": "hello-secrets", "keys": ["TOKEN"]}]

    with running_operator(
        kubeconfig,
        tmp_path / "operator.log",
        process_group=plane.process_group,
        namespaces=[namespace],
    ):
        client.CustomObjectsApi(k8s).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "workflows", workflow
        )
        wait_for_condition(k8s, namespace, "DependenciesResolved", "False", "SecretNotFound")
        client.CoreV1Api(k8s).create_namespaced_secret(
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name="hello-secrets"), data={"TOKEN": ""}),
        )
        # Seen through the watch of Secrets, which is therefore open.
        wait_for_condition(k8s, namespace, "DependenciesResolved", "True")

    def requests(verb: str, group: str, resource: str) -> list[AuditEvent]:
        return [
            event
            for event in plane.audit_events(since)
            if event.user == user
            and event.verb == verb
            and event.api_group == group
            and event.resource == resource
            and event.namespace == namespace
        ]

    # A watch is written to the audit log when it ends, here when the operator stopped.
    for group, resource in SHARED_WATCHES:
        watches = wait_for(
            lambda group=group, resource=resource: requests("watch", group, resource),
            timeout=15,
            message=f"the watch of {resource} to end in the audit log",
        )
        assert len(requests("list", group, resource)) == 1, resource
        # A watch the server ended is opened again; never two at once.
        spans = sorted((event.received, event.completed or event.received) for event in watches)
        for (_, ended), (began, _) in itertools.pairwise(spans):
            assert began >= ended, f"two watches of {resource} open at once"


def wait_for_condition(
    k8s: ApiClient, namespace: str, kind: str, status: str, reason: str | None = None
) -> None:
    def reached() -> bool:
        found = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "workflows", "hello"
        )
        return any(
            condition["type"] == kind
            and condition["status"] == status
            and reason in (None, condition["reason"])
            for condition in (found.get("status") or {}).get("conditions", [])
        )

    wait_for(reached, timeout=60, message=f"{kind}={status} ({reason}) on Workflow hello")
