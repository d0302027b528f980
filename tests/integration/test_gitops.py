"""What Argo CD relies on: the operator never changes a resource's spec, and the objects it
creates do not carry the resource's tracking label or annotation, which would make Argo CD take
them for its own and prune them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from helpers.kube import wait_for
from helpers.operator_process import OperatorProcess
from integration.conftest import RESYNC_SECONDS

GROUP, VERSION = "orchestrator.dev", "v1alpha1"
APP = "team-workflows"
TRACKING_LABELS = ("app.kubernetes.io/instance", "argocd.argoproj.io/instance")
TRACKING_ANNOTATIONS = (
    "argocd.argoproj.io/tracking-id",
    "kubectl.kubernetes.io/last-applied-configuration",
)
OPERATOR_MANAGER = "orchestrator-operator"

pytestmark = pytest.mark.usefixtures("operator")


def tracked(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as Argo CD leaves it in the cluster, with label and annotation tracking."""
    metadata = manifest["metadata"]
    kind, namespace, name = manifest["kind"], metadata["namespace"], metadata["name"]
    metadata["labels"] = dict.fromkeys(TRACKING_LABELS, APP)
    metadata["annotations"] = {
        "argocd.argoproj.io/tracking-id": f"{APP}:{GROUP}/{kind}:{namespace}/{name}",
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest),
    }
    return manifest


def workflow(namespace: str) -> dict[str, Any]:
    return tracked(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": {"name": "tracked", "namespace": namespace},
            "spec": {
                "definition": {
                    "id": "tracked",
                    "version": "1.0",
                    "specVersion": "0.8",
                    "start": "Greet",
                    "states": [{"name": "Greet", "type": "inject", "data": {}, "end": True}],
                },
                "podTemplate": {"labels": {"team": "payments"}},
            },
        }
    )


def installation(namespace: str) -> dict[str, Any]:
    return tracked(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "OrchestratorInstance",
            "metadata": {"name": "tracked", "namespace": namespace},
            "spec": {"dataIndex": {}, "jobsService": {}},
        }
    )


def create(k8s: ApiClient, manifest: dict[str, Any], plural: str) -> dict[str, Any]:
    created: dict[str, Any] = client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, manifest["metadata"]["namespace"], plural, manifest
    )
    return created


def read(k8s: ApiClient, namespace: str, plural: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, "tracked"
    )
    return found


def children(k8s: ApiClient, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
    """Every object in the namespace that the resource with `owner_uid` owns."""
    api = k8s.sanitize_for_serialization
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    listed = [
        *(("ConfigMap", i) for i in core.list_namespaced_config_map(namespace).items),
        *(("Service", i) for i in core.list_namespaced_service(namespace).items),
        *(("Deployment", i) for i in apps.list_namespaced_deployment(namespace).items),
        *(
            ("NetworkPolicy", i)
            for i in client.NetworkingV1Api(k8s).list_namespaced_network_policy(namespace).items
        ),
    ]
    owned = []
    for kind, item in listed:
        body: dict[str, Any] = {"kind": kind, **api(item)}
        owners = body["metadata"].get("ownerReferences") or []
        if any(owner["uid"] == owner_uid for owner in owners):
            owned.append(body)
    return owned


def assert_untracked(child: dict[str, Any], owner: dict[str, Any]) -> None:
    """No label or annotation of Argo CD's, no `app.kubernetes.io/instance` (Argo CD's
    default tracking label), and none of the owner's tracking values."""
    where = f"{child['kind']} {child['metadata']['name']}"
    tracking_values = {APP, *owner["metadata"]["annotations"].values()}
    metadatas = [child["metadata"]]
    template = child.get("spec", {}).get("template")
    if template:
        metadatas.append(template["metadata"])
    for metadata in metadatas:
        for key, value in {
            **(metadata.get("labels") or {}),
            **(metadata.get("annotations") or {}),
        }.items():
            assert not key.startswith("argocd.argoproj.io/"), f"{where} carries {key}"
            assert key not in TRACKING_LABELS, f"{where} carries {key}"
            assert key not in TRACKING_ANNOTATIONS, f"{where} carries {key}"
            assert value not in tracking_values, f"{where} carries {key}={value}"
    (controller,) = [ref for ref in child["metadata"]["ownerReferences"] if ref.get("controller")]
    assert controller["uid"] == owner["metadata"]["uid"]
    assert controller["kind"] == owner["kind"]


def spec_managers(resource: dict[str, Any]) -> set[str]:
    """Field managers that own any field of spec, labels or annotations."""
    managers = set()
    for entry in resource["metadata"].get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        metadata = fields.get("f:metadata") or {}
        if "f:spec" in fields or "f:labels" in metadata or "f:annotations" in metadata:
            managers.add(entry["manager"])
    return managers


@pytest.mark.parametrize(
    ("make", "plural", "min_children"),
    [(workflow, "workflows", 3), (installation, "orchestratorinstances", 4)],
    ids=["Workflow", "OrchestratorInstance"],
)
def test_reconciling_never_changes_the_spec_nor_leaks_tracking_metadata(
    k8s: ApiClient,
    namespace: str,
    operator: OperatorProcess,
    make: Any,
    plural: str,
    min_children: int,
) -> None:
    created = create(k8s, make(namespace), plural)
    generation = created["metadata"]["generation"]
    creators = spec_managers(created)

    def reconciled_with_children() -> list[dict[str, Any]] | None:
        resource = read(k8s, namespace, plural)
        if (resource.get("status") or {}).get("observedGeneration") != generation:
            return None
        owned = children(k8s, namespace, created["metadata"]["uid"])
        return owned if len(owned) >= min_children else None

    owned = wait_for(
        reconciled_with_children,
        timeout=60,
        message=f"{plural}/tracked to be reconciled, with at least {min_children} children",
    )
    # Let the operator resync a few times: nothing it does then may touch the spec either.
    resyncs = operator.log().count("Resync:")
    operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4, count=resyncs + 2)

    resource = read(k8s, namespace, plural)
    assert resource["metadata"]["generation"] == generation
    assert spec_managers(resource) == creators
    for entry in resource["metadata"]["managedFields"]:
        if entry["manager"] == OPERATOR_MANAGER:
            assert entry.get("subresource") == "status", entry
    # The children read again after the resyncs: none gone, none tracked.
    after_resyncs = children(k8s, namespace, created["metadata"]["uid"])
    names = {(child["kind"], child["metadata"]["name"]) for child in after_resyncs}
    assert {(child["kind"], child["metadata"]["name"]) for child in owned} <= names
    for child in after_resyncs:
        assert_untracked(child, resource)
