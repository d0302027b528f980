"""The local control plane is a real Kubernetes: these tests hold it to that.

They check what the operator's tests rely on (CRDs with a status subresource, garbage
collection, namespace deletion, Deployments that become Available, RBAC for other identities,
the audit log) and that the control plane never outlives its owner, even one killed with
SIGKILL.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.kube import (
    Cluster,
    api_client,
    apply_crds,
    condition_status,
    gone,
    unique_name,
    wait_for,
)
from orchestrator_operator.localcluster import (
    ADMIN_USER,
    KUBERNETES_VERSION,
    READ_VERBS,
    ControlPlaneError,
    LocalControlPlane,
    ensure_binaries,
)
from orchestrator_operator.localcluster.binaries import cached_path
from orchestrator_operator.localcluster.kwok import NODE_NAME
from orchestrator_operator.localcluster.processes import port_is_free

pytestmark = pytest.mark.integration

MERGE_PATCH = "application/merge-patch+json"
local_only = pytest.mark.skipif(
    os.environ.get("USE_EXISTING_CLUSTER") == "1",
    reason="tests the local control plane itself",
)


def test_apiserver_reports_the_version_it_was_built_as(control_plane: Cluster, k8s: ApiClient):
    control_plane.require_local()

    info = client.VersionApi(k8s).get_code()

    assert info.git_version == KUBERNETES_VERSION
    assert (info.major, info.minor) == ("1", KUBERNETES_VERSION.split(".")[1])


@dataclass(frozen=True)
class Gadget:
    """A throwaway namespaced kind with a status subresource and a validated spec."""

    group: str
    kind: str
    plural: str

    @classmethod
    def unique(cls) -> Gadget:
        suffix = uuid.uuid4().hex[:6]
        return cls("probe.test.orchestrator.dev", f"Gadget{suffix}", f"gadget{suffix}s")

    def crd(self) -> dict[str, Any]:
        schema = {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "minimum": 1}},
                },
                "status": {
                    "type": "object",
                    "properties": {
                        "phase": {"type": "string"},
                        "observedGeneration": {"type": "integer"},
                    },
                },
            },
        }
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": {
                "group": self.group,
                "scope": "Namespaced",
                "names": {"kind": self.kind, "plural": self.plural},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": schema},
                    }
                ],
            },
        }

    def body(self, name: str, size: int, **extra: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{self.group}/v1",
            "kind": self.kind,
            "metadata": {"name": name},
            "spec": {"size": size},
            **extra,
        }

    def where(self, namespace: str) -> dict[str, str]:
        """The path arguments of CustomObjectsApi's namespaced calls."""
        return {"group": self.group, "version": "v1", "namespace": namespace, "plural": self.plural}


@pytest.fixture
def gadget(k8s: ApiClient) -> Iterator[Gadget]:
    """A kind of its own for one test, its CRD installed and removed afterwards."""
    kind = Gadget.unique()
    (name,) = apply_crds(k8s, [kind.crd()])
    yield kind
    client.ApiextensionsV1Api(k8s).delete_custom_resource_definition(name)


def test_custom_resource_status_is_written_only_through_the_status_subresource(
    k8s: ApiClient, namespace: str, gadget: Gadget
):
    objects = client.CustomObjectsApi(k8s)
    where = gadget.where(namespace)

    objects.create_namespaced_custom_object(
        body=gadget.body("first", 3, status={"phase": "ignored-on-create"}), **where
    )
    created = objects.get_namespaced_custom_object(name="first", **where)
    objects.patch_namespaced_custom_object_status(
        name="first",
        body={"status": {"phase": "Ready", "observedGeneration": 1}},
        _content_type=MERGE_PATCH,
        **where,
    )
    objects.patch_namespaced_custom_object(
        name="first",
        body={"status": {"phase": "ignored-on-main"}},
        _content_type=MERGE_PATCH,
        **where,
    )
    after = objects.get_namespaced_custom_object(name="first", **where)

    assert created["spec"] == {"size": 3}
    assert "status" not in created
    assert after["status"] == {"phase": "Ready", "observedGeneration": 1}
    assert after["metadata"]["generation"] == 1


def test_custom_resource_schema_is_enforced(k8s: ApiClient, namespace: str, gadget: Gadget):
    objects = client.CustomObjectsApi(k8s)

    with pytest.raises(ApiException) as rejected:
        objects.create_namespaced_custom_object(
            body=gadget.body("too-small", 0), **gadget.where(namespace)
        )

    assert rejected.value.status == 422
    assert "spec.size" in str(rejected.value.body)


def _config_map(name: str, owner: dict[str, Any] | None = None) -> client.V1ConfigMap:
    owners = None
    if owner is not None:
        owners = [
            client.V1OwnerReference(
                api_version=owner["apiVersion"],
                kind=owner["kind"],
                name=owner["metadata"]["name"],
                uid=owner["metadata"]["uid"],
            )
        ]
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, owner_references=owners), data={"k": "v"}
    )


def test_garbage_collector_deletes_what_a_deleted_owner_owned(k8s: ApiClient, namespace: str):
    core = client.CoreV1Api(k8s)
    owner = core.create_namespaced_config_map(namespace, _config_map("owner"))
    owner_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": owner.metadata.name, "uid": owner.metadata.uid},
    }
    core.create_namespaced_config_map(namespace, _config_map("owned", owner_ref))
    core.create_namespaced_config_map(namespace, _config_map("bystander"))

    core.delete_namespaced_config_map("owner", namespace)

    wait_for(
        lambda: gone(lambda: core.read_namespaced_config_map("owned", namespace)),
        timeout=30,
        message="the garbage collector to delete the owned ConfigMap",
    )
    assert core.read_namespaced_config_map("bystander", namespace).data == {"k": "v"}


@local_only
def test_garbage_collector_knows_the_kinds_installed_at_start(tmp_path: Path):
    # CRDs given to the control plane are installed before the controller manager starts, so
    # its garbage collector watches them from the start. A kind created later is only picked up
    # by the collector's periodic discovery, every 30 s or so.
    gadget = Gadget.unique()
    crd_file = tmp_path / "gadget.yaml"
    crd_file.write_text(yaml.safe_dump(gadget.crd()))
    with (
        LocalControlPlane(simulate_pods=False, crds=[crd_file], parent_dir=tmp_path) as plane,
        api_client(plane.kubeconfig) as api,
    ):
        objects = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        owner = objects.create_namespaced_custom_object(
            body=gadget.body("owner", 1), **gadget.where("default")
        )
        core.create_namespaced_config_map("default", _config_map("owned", owner))

        objects.delete_namespaced_custom_object(name="owner", **gadget.where("default"))

        wait_for(
            lambda: gone(lambda: core.read_namespaced_config_map("owned", "default")),
            timeout=15,
            message="the garbage collector to delete a ConfigMap owned by a custom resource",
        )


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(name="app", image="registry.invalid/never-pulled:1")
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def test_deployment_becomes_available_on_the_simulated_node(
    control_plane: Cluster, k8s: ApiClient, namespace: str
):
    control_plane.require_local()
    apps = client.AppsV1Api(k8s)
    core = client.CoreV1Api(k8s)

    apps.create_namespaced_deployment(namespace, _deployment("web", replicas=2))

    def available() -> client.V1Deployment | None:
        found = apps.read_namespaced_deployment("web", namespace)
        ready = condition_status(found, "Available") == "True"
        return found if ready and found.status.available_replicas == 2 else None

    deployment = wait_for(
        available, timeout=60, message="Deployment web to report 2 available replicas"
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert deployment.status.ready_replicas == 2
    assert sorted((pod.spec.node_name, pod.status.phase) for pod in pods) == [
        (NODE_NAME, "Running"),
        (NODE_NAME, "Running"),
    ]


def test_deleted_namespace_disappears_with_its_content(control_plane: Cluster, k8s: ApiClient):
    core = client.CoreV1Api(k8s)
    apps = client.AppsV1Api(k8s)
    name = unique_name("t-deleted-namespace")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, _config_map("content"))
    apps.create_namespaced_deployment(name, _deployment("web", replicas=1))
    # A pod bound to a node is only removed once its kubelet (here, kwok) lets it go, which is
    # what would keep a namespace terminating forever without one.
    wanted_phase = "Running" if control_plane.local else "Pending"
    wait_for(
        lambda: any(
            pod.status.phase == wanted_phase for pod in core.list_namespaced_pod(name).items
        ),
        timeout=60,
        message=f"the Deployment's pod to be {wanted_phase}",
    )

    core.delete_namespace(name)

    wait_for(
        lambda: gone(lambda: core.read_namespace(name)),
        timeout=60,
        message=f"namespace {name} to be deleted",
    )


def test_audit_log_counts_the_writes_of_a_test(
    control_plane: Cluster, k8s: ApiClient, namespace: str
):
    plane = control_plane.require_local()
    core = client.CoreV1Api(k8s)
    mark = plane.audit.mark()

    for name in ("a", "b", "c"):
        core.create_namespaced_config_map(namespace, _config_map(name))
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("b", namespace)
    core.read_namespaced_config_map("c", namespace)
    core.list_namespaced_config_map(namespace)

    writes = plane.count_requests(since=mark, namespace=namespace, user=ADMIN_USER)
    creates = plane.count_requests(
        since=mark, namespace=namespace, user=ADMIN_USER, verbs={"create"}
    )
    reads = plane.count_requests(
        since=mark, namespace=namespace, user=ADMIN_USER, verbs=READ_VERBS, resource="configmaps"
    )
    elsewhere = plane.count_requests(since=mark, namespace="default", user=ADMIN_USER)

    assert (writes, creates, reads, elsewhere) == (5, 3, 2, 0)


def test_minted_identity_is_held_to_rbac(control_plane: Cluster, k8s: ApiClient, namespace: str):
    plane = control_plane.require_local()
    user = f"bob-{uuid.uuid4().hex[:6]}"
    mark = plane.audit.mark()

    with api_client(plane.mint_kubeconfig(user)) as bob:
        as_bob = client.CoreV1Api(bob)
        with pytest.raises(ApiException) as forbidden:
            as_bob.create_namespaced_config_map(namespace, _config_map("by-bob"))
        client.RbacAuthorizationV1Api(k8s).create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="bob-edits"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"
                ),
                subjects=[client.RbacV1Subject(kind="User", name=user)],
            ),
        )
        wait_for(
            lambda: as_bob.create_namespaced_config_map(namespace, _config_map("by-bob")),
            ignore=(ApiException,),
            message=f"{user} to be allowed to create ConfigMaps once bound to edit",
        )

    attempts = [
        event.status
        for event in plane.audit_events(since=mark)
        if event.user == user and event.verb == "create"
    ]
    assert forbidden.value.status == 403
    assert attempts[0] == 403
    assert attempts[-1] == 201
    assert client.CoreV1Api(k8s).read_namespaced_config_map("by-bob", namespace).data == {"k": "v"}


@local_only
def test_binaries_come_from_kubebuilder_assets_before_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assets = tmp_path / "assets"
    assets.mkdir()
    own_etcd = assets / "etcd"
    own_etcd.write_text("#!/bin/sh\n")
    own_etcd.chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))

    found = ensure_binaries(["etcd", "kube-apiserver"], build=False)

    assert found["etcd"] == own_etcd
    assert found["kube-apiserver"] == cached_path("kube-apiserver")
    assert cached_path("kube-apiserver").parent.parent.name == f"k8s-{KUBERNETES_VERSION}"


# The control plane's own lifecycle: these start planes of their own.


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # A zombie has exited; it only waits for a parent (or init) to collect its status.
    return stat[stat.rindex(")") + 2] not in "ZX"


def _leftovers(pids: list[int], ports: list[int], folder: Path) -> list[str]:
    left = [f"process {pid}" for pid in pids if _alive(pid)]
    left += [f"listener on port {port}" for port in ports if not port_is_free(port)]
    left += [f"folder {folder}"] if folder.exists() else []
    return left


@local_only
def test_stop_leaves_no_process_port_or_folder(tmp_path: Path):
    with LocalControlPlane(simulate_pods=False, parent_dir=tmp_path) as plane:
        pids = list(plane.pids().values())
        ports = list(plane.ports.all())
        folder = plane.dir
        assert all(_alive(pid) for pid in pids)
        assert not any(port_is_free(port) for port in ports)

    assert _leftovers(pids, ports, folder) == []


@local_only
def test_failed_start_reports_the_component_log_and_cleans_up(tmp_path: Path):
    plane = LocalControlPlane(
        simulate_pods=False,
        parent_dir=tmp_path,
        extra_args={"kube-apiserver": ["--no-such-flag"]},
    )

    with pytest.raises(ControlPlaneError) as failure:
        plane.start()

    assert "kube-apiserver exited" in str(failure.value)
    assert "unknown flag: --no-such-flag" in str(failure.value)
    assert list(tmp_path.iterdir()) == []


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no state line from `localcluster up` within {timeout}s")


@local_only
def test_sigkilled_owner_leaves_no_process_port_or_folder(tmp_path: Path):
    log = tmp_path / "up.log"
    with log.open("w") as stderr:
        owner = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_operator.localcluster", "up", "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        line = _first_line(owner, timeout=120)
        assert line, f"`localcluster up` exited: {log.read_text()}"
        state = json.loads(line)
        pids = list(state["pids"].values())
        ports = state["ports"]
        folder = Path(state["dir"])
        assert set(state["pids"]) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "reaper",
        }
        assert all(_alive(pid) for pid in pids)
        assert folder.is_dir()

        owner.send_signal(signal.SIGKILL)
        owner.wait()

        wait_for(
            lambda: not _leftovers(pids, ports, folder),
            timeout=20,
            message=lambda: f"still there: {_leftovers(pids, ports, folder)}",
        )
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


# What a test run does: a control plane, and the operator as its own process beside it.
_TEST_RUN = """
import json, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from helpers.operator_process import free_port, running_operator
from orchestrator_operator.localcluster import LocalControlPlane

folder = Path(sys.argv[2])
with LocalControlPlane(simulate_pods=False, parent_dir=folder) as plane:
    metrics = free_port()
    with running_operator(
        plane.kubeconfig,
        folder / "operator.log",
        process_group=plane.process_group,
        metrics_port=metrics,
    ) as operator:
        state = {
            "pids": {**plane.pids(), "operator": operator.process.pid},
            "ports": [*plane.ports.all(), metrics],
            "dir": str(plane.dir),
        }
        print(json.dumps(state), flush=True)
        time.sleep(600)
"""


@local_only
def test_a_sigkilled_test_run_leaves_no_operator_behind(tmp_path: Path):
    tests = Path(__file__).resolve().parents[1]
    log = tmp_path / "test-run.log"
    with log.open("w") as stderr:
        test_run = subprocess.Popen(
            [sys.executable, "-c", _TEST_RUN, str(tests), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        line = _first_line(test_run, timeout=180)
        assert line, f"the test run exited: {log.read_text()}"
        state = json.loads(line)
        pids = list(state["pids"].values())
        folder = Path(state["dir"])
        assert "operator" in state["pids"]
        assert all(_alive(pid) for pid in pids)

        test_run.send_signal(signal.SIGKILL)
        test_run.wait()

        wait_for(
            lambda: not _leftovers(pids, state["ports"], folder),
            timeout=30,
            message=lambda: f"still there: {_leftovers(pids, state['ports'], folder)}",
        )
    finally:
        if test_run.poll() is None:
            test_run.kill()
            test_run.wait()
