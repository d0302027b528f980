"""Fixtures for tests that need a Kubernetes API: the cluster, a client, a namespace per test.

The local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)
starts once per session, and only when a test asks for it, so a unit-only run never pays for it.

Environment:
  USE_EXISTING_CLUSTER=1  use the cluster of the current kubeconfig (KUBECONFIG, else
                          ~/.kube/config) instead; tests of the local control plane skip.
  ORCHESTRATOR_OPERATOR_KEEP_CONTROLPLANE=1  keep the control plane's folder (component logs,
                          audit log) after the session, for a post-mortem.
  KUBEBUILDER_ASSETS      a folder of ready binaries to use instead of building them.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.kube import TEST_LABEL, Cluster, api_client, apply_crds, crd_manifests, unique_name
from orchestrator_operator.localcluster import LocalControlPlane, ensure_binaries

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = REPO / "crds"
INTEGRATION_DIR = REPO / "tests" / "integration"
CLUSTER_FIXTURES = {"control_plane", "k8s", "namespace"}
SESSION_ID = uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that reaches for the cluster is an integration test, marked or not, so that
    # `-m "not integration"` is always a run without a control plane.
    for item in items:
        needs_cluster = bool(CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())))
        if needs_cluster or item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    # A first build takes minutes: done here, before any test starts, it does not count against
    # the per-test timeout as it would inside the first integration test's fixture.
    if os.environ.get("USE_EXISTING_CLUSTER") == "1" or session.config.option.collectonly:
        return
    if any(item.get_closest_marker("integration") for item in session.items):
        ensure_binaries(report=lambda line: print(f"\n{line}", flush=True))


def _existing_kubeconfig() -> Path:
    configured = os.environ.get("KUBECONFIG", "")
    path = Path(configured.split(os.pathsep)[0]) if configured else Path.home() / ".kube/config"
    if not path.is_file():
        pytest.exit(f"USE_EXISTING_CLUSTER=1 but there is no kubeconfig at {path}", returncode=2)
    return path


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Cluster]:
    """The cluster under test, with the project's CRDs (crds/*.yaml) installed and Established.

    KUBECONFIG points at it for the whole session, so code under test finds it as it would in
    production. `cluster.local` is the LocalControlPlane (None for an existing cluster).
    """
    crd_files = sorted(CRD_DIR.glob("*.yaml"))
    previous = os.environ.get("KUBECONFIG")
    plane: LocalControlPlane | None = None

    if os.environ.get("USE_EXISTING_CLUSTER") == "1":
        cluster = Cluster(kubeconfig=_existing_kubeconfig(), local=None)
        with api_client(cluster.kubeconfig) as api:
            cluster.crds = apply_crds(api, crd_manifests(crd_files))
    else:
        keep = os.environ.get("ORCHESTRATOR_OPERATOR_KEEP_CONTROLPLANE") == "1"
        plane = LocalControlPlane(crds=crd_files, keep_dir=keep).start()
        cluster = Cluster(kubeconfig=plane.kubeconfig, local=plane)
        cluster.crds = [manifest["metadata"]["name"] for manifest in crd_manifests(crd_files)]

    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        if plane is not None:
            plane.stop()


@pytest.fixture(scope="session")
def k8s(control_plane: Cluster) -> Iterator[ApiClient]:
    """An admin `kubernetes.client.ApiClient` on the cluster under test."""
    with api_client(control_plane.kubeconfig) as api:
        yield api


@pytest.fixture(scope="session")
def _namespaces_deleted(k8s: ApiClient) -> Iterator[list[str]]:
    """Namespaces the tests deleted; the session ends by checking, for 30 s, that they went."""
    deleted: list[str] = []
    yield deleted
    if not deleted:
        return
    core = client.CoreV1Api(k8s)
    selector = f"{TEST_LABEL}={SESSION_ID}"
    deadline = time.monotonic() + 30
    while True:
        listed = core.list_namespace(label_selector=selector).items
        remaining = sorted(str(item.metadata.name) for item in listed if item.metadata)
        if not remaining:
            return
        if time.monotonic() >= deadline:
            warnings.warn(
                f"namespaces still there at the end of the session: {remaining}", stacklevel=1
            )
            return
        time.sleep(0.2)


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, k8s: ApiClient, _namespaces_deleted: list[str]
) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards without waiting for it to go."""
    core = client.CoreV1Api(k8s)
    name = unique_name(f"t-{request.node.name}", max_length=50)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_LABEL: SESSION_ID}))
    )
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise
    _namespaces_deleted.append(name)
