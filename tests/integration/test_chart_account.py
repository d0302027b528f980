"""The operator does its whole job under the chart's own account, and uses what the chart grants.

The chart's ServiceAccount, roles and bindings are applied to a control plane of their own,
with the chart's CRDs and nothing else on it: no other operator can do the work in its place.
The operator then runs under a token of that ServiceAccount (TokenRequest) and takes an
installation with a Data Index, a Jobs Service, NetworkPolicies and a git source, a Workflow
linked to it, a broken one and one naming no installation, to their end states, and deletes
what a change leaves behind; restarted, it reads what it made. The API server's audit log then
says what it did: no request refused (the grants are enough), and every right the chart grants
used (they are no more).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client import ApiClient

from helpers.helm import grants, template
from helpers.kube import api_client, unique_name, wait_for
from helpers.operator_process import running_operator
from orchestrator_operator.localcluster import AuditEvent, LocalControlPlane
from orchestrator_operator.localcluster.git_server import commit_all, create_repository
from standins.data_index import StandIn

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
GROUP, VERSION = "orchestrator.dev", "v1alpha1"
RELEASE_NAMESPACE = "orchestrator-system"
INSTALLATION = "orch"
SYNC_NOW = "orchestrator.dev/sync-now"
# The kinds the operator's account is made of; the Deployment and Service of the operator
# itself are left out, since the operator runs here as a local process.
ACCOUNT_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

Rights = set[tuple[str, str, str]]

# Requests a namespaced operator makes knowing they may be refused: (verb, group, resource).
# The git mirror's sweep of objects left behind asks across the cluster first and, refused,
# sweeps the namespaces it knows of.
REFUSED_WHEN_NAMESPACED = {("list", GROUP, "workflows")}


@pytest.fixture(scope="module")
def plane() -> Iterator[LocalControlPlane]:
    """A control plane holding only what the chart installs."""
    if os.environ.get("USE_EXISTING_CLUSTER") == "1":
        pytest.skip("needs a control plane of its own, where no other operator runs")
    with LocalControlPlane() as started:
        yield started


@pytest.fixture(scope="module")
def admin(plane: LocalControlPlane) -> Iterator[ApiClient]:
    with api_client(plane.kubeconfig) as api:
        yield api


@dataclass
class Account:
    """The chart's ServiceAccount, applied with its roles and bindings, and a kubeconfig that
    authenticates as it with a token from the TokenRequest API."""

    user: str
    kubeconfig: Path
    documents: list[dict[str, Any]]

    def granted(self) -> Rights:
        """Every (group, resource, verb) the chart's roles grant."""
        return {
            (group, resource, verb)
            for document in self.documents
            if document["kind"] in {"ClusterRole", "Role"}
            for (group, resource), verbs in grants(document["rules"]).items()
            for verb in verbs
        }


def install_chart_account(
    plane: LocalControlPlane,
    admin: ApiClient,
    tmp_path: Path,
    release: str,
    values: dict[str, Any],
) -> Account:
    documents = template(tmp_path, values, release=release, namespace=RELEASE_NAMESPACE)
    apply_crds(plane, tmp_path, documents)
    account = [doc for doc in documents if doc["kind"] in ACCOUNT_KINDS]
    for document in account:
        apply(admin, document)
    (service_account,) = [doc for doc in account if doc["kind"] == "ServiceAccount"]
    name = service_account["metadata"]["name"]

    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        name, RELEASE_NAMESPACE, request
    )
    kubeconfig = tmp_path / f"kubeconfig-{release}"
    kubeconfig.write_text(token_kubeconfig(plane, token.status.token))
    kubeconfig.chmod(0o600)
    return Account(f"system:serviceaccount:{RELEASE_NAMESPACE}:{name}", kubeconfig, account)


def apply_crds(plane: LocalControlPlane, tmp_path: Path, documents: list[dict[str, Any]]) -> None:
    crds = [doc for doc in documents if doc["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2
    path = tmp_path / "crds.yaml"
    path.write_text(yaml.safe_dump_all(crds))
    plane.apply_crds([path])


def apply(admin: ApiClient, document: dict[str, Any]) -> None:
    """Server-side apply of one object, as `kubectl apply --server-side` would."""
    resource = dynamic.DynamicClient(admin).resources.get(
        api_version=document["apiVersion"], kind=document["kind"]
    )
    resource.server_side_apply(
        body=document, field_manager="chart-account-test", force_conflicts=True
    )


def token_kubeconfig(plane: LocalControlPlane, token: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": plane.server,
                        "certificate-authority-data": base64.b64encode(plane.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "operator", "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
            "current-context": "operator",
        }
    )


# -- what the operator is given to do -----------------------------------------------------------


def create_namespace(admin: ApiClient, name: str) -> None:
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(admin).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )


def git_source(tmp_path: Path) -> Path:
    """A repository holding one workflow folder, greeting, and the schemas it shares."""
    files = tmp_path / "source-files"
    for folder in ("greeting", "shared"):
        shutil.copytree(FIXTURES / folder, files / folder)
    repository = tmp_path / "source.git"
    create_repository(repository, files)
    return repository


def inline_workflow(
    namespace: str, name: str, *, broken: bool = False, installation: str = INSTALLATION
) -> dict[str, Any]:
    state: dict[str, Any] = {"name": "Greet", "type": "inject", "data": {}, "end": True}
    if broken:
        del state["end"]
        state["transition"] = "Nowhere"
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
                "states": [state],
            },
            "secrets": [{"secretName": f"{name}-secrets", "keys": ["TOKEN"]}],
            "installationRef": {"name": installation},
        },
    }


def installation_manifest(namespace: str, repository: Path) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": INSTALLATION, "namespace": namespace},
        "spec": {
            "dataIndex": {},
            "jobsService": {},
            "networkPolicies": {"enabled": True, "backstageNamespace": "backstage"},
            "sources": [{"name": "main", "url": f"file://{repository}", "pollInterval": "1h"}],
        },
    }


def read(admin: ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name
    )
    return found


def condition_of(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in (resource.get("status") or {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return {}


def wait_ready(
    admin: ApiClient, namespace: str, plural: str, name: str, status: str = "True"
) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        try:
            resource = read(admin, namespace, plural, name)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        observed = (resource.get("status") or {}).get("observedGeneration")
        ready = condition_of(resource, "Ready").get("status") == status
        return resource if ready and observed == resource["metadata"]["generation"] else None

    return wait_for(current, timeout=120, message=f"Ready={status} on {plural}/{name}")


def missing(read_object: Callable[[], Any]) -> bool:
    try:
        read_object()
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def drive(
    admin: ApiClient, namespace: str, standin: StandIn, tmp_path: Path
) -> dict[str, dict[str, Any]]:
    """Everything the operator is there for, to its end state; returns the end states."""
    core = client.CoreV1Api(admin)
    custom = client.CustomObjectsApi(admin)
    apps = client.AppsV1Api(admin)
    data_index = standin.data_index(namespace, f"{INSTALLATION}-data-index-service")
    for workflow_id in ("hello", "greeting"):
        data_index.register(workflow_id, f"http://{workflow_id}.{namespace}")
        standin.runtime(namespace, workflow_id).workflow_ids.add(workflow_id)
    data_index.add_runs("hello", "COMPLETED", 2)

    repository = git_source(tmp_path)
    for name in ("hello", "broken", "orphan"):
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"{name}-secrets"),
                string_data={"TOKEN": uuid.uuid4().hex},
            ),
        )
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "orchestratorinstances",
        installation_manifest(namespace, repository),
    )
    workflows = [
        inline_workflow(namespace, "hello"),
        inline_workflow(namespace, "broken", broken=True),
        # Names an installation the watches do not know, which is then read directly.
        inline_workflow(namespace, "orphan", installation="nowhere"),
    ]
    for manifest in workflows:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", manifest)

    ends = {
        "installation": wait_ready(admin, namespace, "orchestratorinstances", INSTALLATION),
        "hello": wait_ready(admin, namespace, "workflows", "hello"),
        "mirrored": wait_ready(admin, namespace, "workflows", "greeting"),
        "broken": wait_ready(admin, namespace, "workflows", "broken", status="False"),
        "orphan": wait_ready(admin, namespace, "workflows", "orphan", status="False"),
    }

    # Changes that make the operator delete: the Jobs Service is no longer wanted, and the
    # mirrored folder leaves the source.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", INSTALLATION,
        {"spec": {"jobsService": {"enabled": False}}},
    )  # fmt: skip
    shutil.rmtree(repository / "greeting")
    commit_all(repository, "greeting leaves")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", INSTALLATION,
        {"metadata": {"annotations": {SYNC_NOW: uuid.uuid4().hex}}},
    )  # fmt: skip
    jobs_service = f"{INSTALLATION}-jobs-service"
    wait_for(
        lambda: (
            missing(lambda: apps.read_namespaced_deployment(jobs_service, namespace))
            and missing(lambda: read(admin, namespace, "workflows", "greeting"))
        ),
        timeout=90,
        message="the Jobs Service's Deployment and the mirrored Workflow to be deleted",
    )
    return ends


# -- reading the audit log ----------------------------------------------------------------------


def used_rights(events: list[AuditEvent]) -> Rights:
    """The (group, resource, verb) rights these requests needed. A server-side apply that made
    the object (201) needed create as well as patch."""
    used: Rights = set()
    for event in events:
        if event.resource is None:
            continue
        resource = event.resource + (f"/{event.subresource}" if event.subresource else "")
        used.add((event.api_group, resource, event.verb))
        if event.verb == "patch" and event.status == 201:
            used.add((event.api_group, resource, "create"))
    return used


# The kinds of children an installation and a Workflow make, read once after a restart.
FIRST_LOOK_KINDS = {"configmaps", "services", "deployments", "networkpolicies"}


def first_looks(plane: LocalControlPlane, since: Any, user: str) -> set[str]:
    plane.sync_audit()
    return {
        str(event.resource)
        for event in plane.audit_events(since)
        if event.user == user and event.verb == "get" and event.resource in FIRST_LOOK_KINDS
    }


def describe(rights: Rights) -> list[str]:
    return sorted(f"{verb} {group or 'core'}/{resource}" for group, resource, verb in rights)


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_the_operator_does_its_job_under_the_charts_account_with_every_right_used(
    plane: LocalControlPlane, admin: ApiClient, standin: StandIn, tmp_path: Path, mode: str
) -> None:
    namespace = unique_name(f"served-{mode}", max_length=40)
    create_namespace(admin, RELEASE_NAMESPACE)
    create_namespace(admin, namespace)
    values = {"watchNamespaces": [namespace]} if mode == "namespaced" else {}
    account = install_chart_account(plane, admin, tmp_path, f"rbac-{mode}", values)
    since = plane.audit.mark()

    with running_operator(
        account.kubeconfig,
        tmp_path / "operator.log",
        process_group=plane.process_group,
        namespaces=[namespace] if mode == "namespaced" else [],
        env={
            "ORCHESTRATOR_OPERATOR_NAMESPACE": RELEASE_NAMESPACE,
            "ORCHESTRATOR_OPERATOR_ALLOW_FILE_SOURCES": "true",
            "ORCHESTRATOR_OPERATOR_DATA_INDEX_POLL_SECONDS": "1",
            "ORCHESTRATOR_OPERATOR_SERVICE_URL_OVERRIDE": standin.override_template,
        },
    ) as operator:
        ends = drive(admin, namespace, standin, tmp_path)
        # A restarted operator reads each child it made once, to see whether anyone changed it
        # while it was away: the reads it needs rights for and otherwise never makes.
        restarted = plane.audit.mark()
        with operator.stopped():
            pass
        wait_for(
            lambda: first_looks(plane, restarted, account.user) >= FIRST_LOOK_KINDS,
            timeout=60,
            message="the restarted operator to read its children once",
        )
        log = operator.log()

    assert condition_of(ends["installation"], "SourcesSynced")["status"] == "True"
    assert condition_of(ends["installation"], "DataIndexReachable")["status"] == "True"
    assert condition_of(ends["broken"], "Ready")["reason"] == "InvalidStateGraph"
    assert condition_of(ends["orphan"], "Ready")["reason"] == "InstallationNotFound"
    assert ends["mirrored"]["metadata"]["labels"]["orchestrator.dev/source"] == "main"

    events = [event for event in plane.audit_events(since) if event.user == account.user]
    refused = [
        event
        for event in events
        if event.status in (401, 403)
        and not (
            mode == "namespaced"
            and event.namespace is None
            and (event.verb, event.api_group, event.resource) in REFUSED_WHEN_NAMESPACED
        )
    ]
    assert [f"{e.verb} {e.uri} -> {e.status}" for e in refused] == []
    assert "Forbidden" not in log

    used = used_rights(events)
    granted = account.granted()
    assert describe(used - granted) == []
    assert describe(granted - used) == [], "granted but never used"
