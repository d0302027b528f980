"""Git sources on a real API server: a repository's workflow folders become Workflows, and stay
what the repository says, through edits, renames, deletions, force-pushes and failures.

The repository is the real workflow repository of the fixtures, committed into a fresh git
repository per test and served over file:// and over HTTPS on loopback (git http-backend),
with and without a token.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.kube import Cluster, wait_for
from helpers.operator_process import OperatorProcess
from integration.conftest import OPERATOR_USER
from orchestrator_operator.localcluster.certs import CertificateAuthority
from orchestrator_operator.localcluster.git_server import (
    GitServer,
    commit_all,
    create_repository,
    git,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
GROUP, VERSION = "orchestrator.dev", "v1alpha1"
INSTALLATION = "orchestrator"
TOKEN = "ghp_T0kenThatMustNeverLeak4242"
SYNC_NOW = "orchestrator.dev/sync-now"
COMMIT_ANNOTATION = "orchestrator.dev/source-commit"
PATH_ANNOTATION = "orchestrator.dev/source-path"
FIXTURE_NAMES = {
    "azure",
    "universal-pr",
    "create-ocp-project",
    "ticketescalation",
    "failswitch",
    "greeting",
    "list-users",
    "modify-vm-resources",
    "patch-k8s-resource",
}

pytestmark = pytest.mark.usefixtures("operator")


@dataclass
class Servers:
    root: Path
    open: GitServer
    private: GitServer


@pytest.fixture(scope="session")
def git_servers(git_ca_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Two HTTPS git servers over one folder of repositories, one of them asking for TOKEN."""
    root = tmp_path_factory.mktemp("repositories")
    authority = CertificateAuthority("test git CA")
    with (
        GitServer(root, authority=authority, ca_file=git_ca_file) as open_server,
        GitServer(root, token=TOKEN, authority=authority, ca_file=git_ca_file) as private,
    ):
        yield Servers(root, open_server, private)


@dataclass
class Repository:
    path: Path
    servers: Servers

    @property
    def file_url(self) -> str:
        return f"file://{self.path}"

    @property
    def https_url(self) -> str:
        return self.servers.open.url(self.path.name)

    @property
    def private_url(self) -> str:
        return self.servers.private.url(self.path.name)

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def commit(self, message: str) -> str:
        return commit_all(self.path, message)

    def polls(self) -> int:
        """Requests the open server has answered for this repository."""
        prefix = f"/{self.path.name}/"
        return sum(1 for r in self.servers.open.requests if r.path.startswith(prefix))


@pytest.fixture
def repository(git_servers: Servers, namespace: str) -> Repository:
    path = git_servers.root / f"{namespace}.git"
    create_repository(path, FIXTURES)
    return Repository(path, git_servers)


# -- helpers --------------------------------------------------------------------------------


def custom(k8s: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s)


def create_installation(
    k8s: ApiClient, namespace: str, *sources: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": INSTALLATION, "namespace": namespace},
        "spec": {
            "dataIndex": {"enabled": False},
            "jobsService": {"enabled": False},
            "sources": list(sources),
            **spec,
        },
    }
    created: dict[str, Any] = custom(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", body
    )
    return created


def source(url: str, name: str = "main", **fields: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "pollInterval": "1h", **fields}


def installation(k8s: ApiClient, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = custom(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", INSTALLATION
    )
    return found


def patch_installation(k8s: ApiClient, namespace: str, patch: dict[str, Any]) -> None:
    custom(k8s).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", INSTALLATION, patch
    )


def set_sources(k8s: ApiClient, namespace: str, *sources: dict[str, Any]) -> None:
    patch_installation(k8s, namespace, {"spec": {"sources": list(sources)}})


def sync_now(k8s: ApiClient, namespace: str) -> None:
    patch_installation(k8s, namespace, {"metadata": {"annotations": {SYNC_NOW: uuid.uuid4().hex}}})


def source_entry(k8s: ApiClient, namespace: str, name: str = "main") -> dict[str, Any]:
    entries = (installation(k8s, namespace).get("status") or {}).get("sources") or []
    return next((dict(e) for e in entries if e.get("name") == name), {})


def synced_condition(entry: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in entry.get("conditions", []) if c["type"] == "SourceSynced"), {})


def wait_for_source(
    k8s: ApiClient,
    namespace: str,
    *,
    commit: str | None = None,
    reason: str = "Synced",
    name: str = "main",
    timeout: float = 90,
) -> dict[str, Any]:
    def arrived() -> dict[str, Any] | None:
        entry = source_entry(k8s, namespace, name)
        condition = synced_condition(entry)
        if condition.get("reason") != reason:
            return None
        if commit is not None and entry.get("commit") != commit:
            return None
        return entry

    message = f"source {name} to report {reason}" + (f" at {commit[:12]}" if commit else "")
    return wait_for(arrived, timeout=timeout, message=message)


def workflows(k8s: ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    listed = custom(k8s).list_namespaced_custom_object(GROUP, VERSION, namespace, "workflows")
    return {item["metadata"]["name"]: item for item in listed["items"]}


def wait_for_workflows(
    k8s: ApiClient, namespace: str, names: set[str], timeout: float = 60
) -> dict[str, dict[str, Any]]:
    def matching() -> tuple[dict[str, dict[str, Any]]] | None:
        found = workflows(k8s, namespace)
        # In a tuple, so that finding no Workflow at all, when none is wanted, counts.
        return (found,) if set(found) == names else None

    message = f"exactly the Workflows {sorted(names)} in {namespace}"
    return wait_for(matching, timeout=timeout, message=message)[0]


def files_of(workflow: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in workflow["spec"].get("files", [])}


def write_token_secret(k8s: ApiClient, namespace: str, token: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="git-token"),
        data={"token": base64.b64encode(token.encode()).decode()},
    )
    core = client.CoreV1Api(k8s)
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        core.replace_namespaced_secret("git-token", namespace, body)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- tests ------------------------------------------------------------------------------------


def test_every_folder_is_mirrored_with_its_files_over_a_file_url(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    created = create_installation(k8s, namespace, source(repository.file_url))

    entry = wait_for_source(k8s, namespace, commit=repository.head())
    found = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)

    assert entry["workflows"] == len(FIXTURE_NAMES)
    escalation = found["ticketescalation"]
    assert escalation["metadata"]["annotations"][PATH_ANNOTATION] == "escalation"
    assert escalation["metadata"]["annotations"][COMMIT_ANNOTATION] == repository.head()
    assert escalation["metadata"]["labels"]["orchestrator.dev/source"] == "main"
    assert escalation["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert escalation["spec"]["installationRef"] == {"name": INSTALLATION}
    assert "subflows/jiraSwf.sw.yaml" in files_of(escalation)
    assert escalation["spec"]["secrets"] == [
        {"secretName": "ticketescalation-secrets", "keys": ["NOTIFICATIONS_BEARER_TOKEN"]}
    ]
    greeting = files_of(found["greeting"])
    shared = (FIXTURES / "shared/schemas/workflow-result-schema.json").read_text()
    assert greeting["shared/schemas/workflow-result-schema.json"] == shared
    # The 330 KB OpenAPI file lives in a ConfigMap owned by the installation.
    modify = found["modify-vm-resources"]
    assert modify["spec"]["configMapFiles"] == [
        {"configMap": "modify-vm-resources-source-specs", "path": "specs"}
    ]
    specs = client.CoreV1Api(k8s).read_namespaced_config_map(
        "modify-vm-resources-source-specs", namespace
    )
    assert (
        specs.data["kubevirt-openapi.yaml"]
        == (FIXTURES / "modify-vm-resources/specs/kubevirt-openapi.yaml").read_text()
    )
    assert specs.metadata.owner_references[0].uid == created["metadata"]["uid"]


def test_an_edit_rewrites_one_workflow_and_renames_deletions_and_force_pushes_follow(
    k8s: ApiClient, namespace: str, repository: Repository, control_plane: Cluster
) -> None:
    create_installation(k8s, namespace, source(repository.https_url))
    wait_for_source(k8s, namespace, commit=repository.head())
    before = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)
    plane = control_plane.local
    mark = plane.audit.mark() if plane else None

    # One schema of one workflow changes: that Workflow alone is written.
    schema = repository.path / "greeting/schemas/greeting.sw.input-schema.json"
    schema.write_text(schema.read_text().replace("language", "language ", 1))
    edited = repository.commit("Edit the greeting input schema")
    sync_now(k8s, namespace)
    wait_for_source(k8s, namespace, commit=edited)
    after = workflows(k8s, namespace)

    changed = {
        name
        for name in FIXTURE_NAMES
        if after[name]["metadata"]["generation"] != before[name]["metadata"]["generation"]
    }
    assert changed == {"greeting"}
    assert files_of(after["greeting"])["schemas/greeting.sw.input-schema.json"] == (
        schema.read_text()
    )
    assert after["greeting"]["metadata"]["annotations"][COMMIT_ANNOTATION] == edited
    # Unchanged Workflows keep the commit they were last written at.
    assert after["azure"]["metadata"]["annotations"][COMMIT_ANNOTATION] != edited
    if plane is not None:
        plane.sync_audit()
        spec_writes = [
            event.name
            for event in plane.audit.select(
                since=mark, namespace=namespace, user=OPERATOR_USER, resource="workflows"
            )
            if event.subresource is None
        ]
        assert spec_writes == ["greeting"]

    # A folder renamed with its id changed: the old Workflow goes, the new one comes.
    shutil.move(repository.path / "list-users", repository.path / "users")
    definition = repository.path / "users/list-users.sw.yaml"
    definition.write_text(definition.read_text().replace("id: list-users", "id: users", 1))
    # A folder deleted.
    shutil.rmtree(repository.path / "patch-k8s-resource")
    renamed = repository.commit("Rename list-users to users, drop patch-k8s-resource")
    sync_now(k8s, namespace)
    wait_for_source(k8s, namespace, commit=renamed)
    expected = FIXTURE_NAMES - {"list-users", "patch-k8s-resource"} | {"users"}
    found = wait_for_workflows(k8s, namespace, expected)
    assert found["users"]["metadata"]["annotations"][PATH_ANNOTATION] == "users"

    # History rewritten: back before the rename and deletion, with another change on top.
    git(repository.path, "reset", "--quiet", "--hard", edited)
    azure = repository.path / "azure/azure.sw.yaml"
    azure.write_text(azure.read_text().replace('version: "0.1"', 'version: "0.2"', 1))
    pushed = repository.commit("Force-pushed history")
    sync_now(k8s, namespace)
    entry = wait_for_source(k8s, namespace, commit=pushed)
    found = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)
    assert entry["workflows"] == len(FIXTURE_NAMES)
    assert found["azure"]["metadata"]["annotations"][COMMIT_ANNOTATION] == pushed
    assert found["azure"]["spec"]["definition"]["version"] == "0.2"
    assert found["greeting"]["metadata"]["annotations"][COMMIT_ANNOTATION] == edited


def test_switching_between_a_branch_a_tag_and_a_commit(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    first = repository.head()
    git(repository.path, "tag", "-a", "v1", "-m", "First release")
    git(repository.path, "checkout", "--quiet", "-b", "feature")
    shutil.rmtree(repository.path / "azure")
    feature = repository.commit("Feature: no azure")
    git(repository.path, "checkout", "--quiet", "main")
    shutil.rmtree(repository.path / "greeting")
    main = repository.commit("Main: no greeting")

    create_installation(k8s, namespace, source(repository.file_url, ref={"branch": "feature"}))
    wait_for_source(k8s, namespace, commit=feature)
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES - {"azure"})

    set_sources(k8s, namespace, source(repository.file_url, ref={"tag": "v1"}))
    wait_for_source(k8s, namespace, commit=first)
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES)

    set_sources(k8s, namespace, source(repository.file_url, ref={"commit": main}))
    wait_for_source(k8s, namespace, commit=main)
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES - {"greeting"})

    set_sources(k8s, namespace, source(repository.file_url, ref={"branch": "nope"}))
    entry = wait_for_source(k8s, namespace, reason="RefNotFound")
    assert entry["commit"] == main
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES - {"greeting"})


def test_a_token_opens_a_private_repository_and_a_wrong_one_leaks_nowhere(
    k8s: ApiClient,
    namespace: str,
    repository: Repository,
    operator: OperatorProcess,
) -> None:
    write_token_secret(k8s, namespace, TOKEN)
    private = source(repository.private_url, credentials={"secretName": "git-token"})
    create_installation(k8s, namespace, private)
    wait_for_source(k8s, namespace, commit=repository.head())
    before = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)

    wrong = "ghp_WrongTokenAlsoSecret0000"
    write_token_secret(k8s, namespace, wrong)
    sync_now(k8s, namespace)
    entry = wait_for_source(k8s, namespace, reason="AuthenticationFailed")

    assert synced_condition(entry)["status"] == "False"
    after = workflows(k8s, namespace)
    assert {n: w["metadata"]["uid"] for n, w in after.items()} == {
        n: w["metadata"]["uid"] for n, w in before.items()
    }
    # The Event follows the status write.
    events = wait_for(
        lambda: [
            e
            for e in client.CoreV1Api(k8s).list_namespaced_event(namespace).items
            if e.reason == "AuthenticationFailed"
        ],
        timeout=30,
        message="an AuthenticationFailed Event",
    )
    events = client.CoreV1Api(k8s).list_namespaced_event(namespace).items
    places = {
        "operator log": operator.log(),
        "events": json.dumps([e.to_dict() for e in events], default=str),
        "status": json.dumps(installation(k8s, namespace).get("status")),
        "workflows": json.dumps(after),
    }
    for secret in (TOKEN, wrong):
        for place, text in places.items():
            assert secret not in text, f"the token leaked into the {place}"
            assert base64.b64encode(secret.encode()).decode() not in text, place


def test_an_unreachable_server_keeps_every_workflow(
    k8s: ApiClient, namespace: str, repository: Repository, operator: OperatorProcess
) -> None:
    syncs = "orchestrator_git_sync_total"
    timed = "orchestrator_git_sync_duration_seconds_count"
    main = f"{namespace}/{INSTALLATION}/main"
    create_installation(k8s, namespace, source(repository.file_url))
    good = wait_for_source(k8s, namespace, commit=repository.head())
    before = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)
    # The status is written before the sync's end is counted.
    wait_for(
        lambda: operator.metric(syncs, source=main, result="success") == 1,
        timeout=10,
        message="the mirrored commit to be counted",
    )
    assert operator.metric(syncs, source=main, result="error") == 0

    set_sources(k8s, namespace, source(f"https://127.0.0.1:{closed_port()}/workflows.git"))
    entry = wait_for_source(k8s, namespace, reason="RepositoryUnreachable")

    assert entry["commit"] == good["commit"]
    assert entry["lastSyncTime"] == good["lastSyncTime"]
    after = workflows(k8s, namespace)
    assert {n: w["metadata"]["uid"] for n, w in after.items()} == {
        n: w["metadata"]["uid"] for n, w in before.items()
    }
    failed = wait_for(
        lambda: operator.metric(syncs, source=main, result="error"),
        timeout=10,
        message="the failed sync to be counted",
    )
    assert failed >= 1
    assert operator.metric(syncs, source=main, result="success") == 1
    assert operator.metric(timed, source=main) == operator.metric(
        syncs, source=main, result="success"
    ) + operator.metric(syncs, source=main, result="error") + operator.metric(
        syncs, source=main, result="unchanged"
    )


def test_a_definition_at_the_root_is_one_more_workflow_and_takes_none_away(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    create_installation(k8s, namespace, source(repository.file_url))
    wait_for_source(k8s, namespace, commit=repository.head())
    before = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)

    greeting = (FIXTURES / "greeting" / "greeting.sw.yaml").read_text()
    stray = greeting.replace("id: greeting", "id: stray", 1)
    (repository.path / "stray.sw.yaml").write_text(stray)
    added = repository.commit("A definition at the root of the repository")
    sync_now(k8s, namespace)
    entry = wait_for_source(k8s, namespace, commit=added)

    after = wait_for_workflows(k8s, namespace, FIXTURE_NAMES | {"stray"})
    assert entry["workflows"] == len(FIXTURE_NAMES) + 1
    assert {n: after[n]["metadata"]["uid"] for n in FIXTURE_NAMES} == {
        n: w["metadata"]["uid"] for n, w in before.items()
    }
    assert after["stray"]["metadata"]["annotations"][PATH_ANNOTATION] == ""
    assert not any(path.startswith("greeting/") for path in files_of(after["stray"]))


def test_two_folders_with_one_id_are_reported_and_the_existing_workflow_is_kept(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    create_installation(k8s, namespace, source(repository.file_url))
    wait_for_source(k8s, namespace, commit=repository.head())
    greeting = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)["greeting"]

    shutil.copytree(repository.path / "greeting", repository.path / "greeting-copy")
    schema = repository.path / "greeting/schemas/greeting.sw.input-schema.json"
    schema.write_text(schema.read_text().replace("language", "language ", 1))
    duplicated = repository.commit("Copy greeting")
    sync_now(k8s, namespace)
    entry = wait_for_source(k8s, namespace, commit=duplicated, reason="DuplicateWorkflowId")

    message = synced_condition(entry)["message"]
    assert "greeting, greeting-copy" in message
    kept = workflows(k8s, namespace)["greeting"]
    assert kept["metadata"]["generation"] == greeting["metadata"]["generation"]
    assert kept["metadata"]["annotations"][COMMIT_ANNOTATION] != duplicated


def test_a_symlink_out_of_the_checkout_is_not_followed(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    schema = repository.path / "greeting/schemas/greeting.sw.input-schema.json"
    schema.unlink()
    os.symlink("/etc/passwd", schema)
    os.symlink("/etc", repository.path / "etc")
    linked = repository.commit("Links out of the repository")

    create_installation(k8s, namespace, source(repository.file_url))
    entry = wait_for_source(k8s, namespace, commit=linked)

    message = synced_condition(entry)["message"]
    assert "greeting/schemas/greeting.sw.input-schema.json is a symbolic link" in message
    greeting = wait_for_workflows(k8s, namespace, FIXTURE_NAMES)["greeting"]
    assert "schemas/greeting.sw.input-schema.json" not in files_of(greeting)
    assert "root:" not in json.dumps(workflows(k8s, namespace))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "--upload-pack=touch /tmp/pwned"}, "the URL must not start with '-'"),
        (
            {"url": "https://ghp_T0ken@github.com/team/workflows"},
            "put the credentials in the Secret of credentials",
        ),
        (
            {"url": "https://user:pass@github.com/team/workflows"},
            "put the credentials in the Secret of credentials",
        ),
        (
            {"url": "https://github.com/team/workflows", "ref": {"commit": "7bc6cd1"}},
            "a commit must be its full 40-character id",
        ),
    ],
)
def test_what_a_source_must_not_say_is_refused_by_the_api_server(
    k8s: ApiClient, namespace: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_installation(k8s, namespace, source(**fields))

    assert refused.value.status == 422
    assert message in str(refused.value.body)


def test_an_at_sign_in_the_path_and_a_full_commit_are_admitted(
    k8s: ApiClient, namespace: str
) -> None:
    commit = {"commit": "7bc6cd1d6ad16d045ca6ea27dd186bd448f145c8"}
    created = create_installation(
        k8s, namespace, source("https://127.0.0.1:1/team/at@sign.git", ref=commit)
    )

    assert created["spec"]["sources"][0]["ref"] == commit


def test_unchanged_polls_write_nothing(
    k8s: ApiClient, namespace: str, repository: Repository, control_plane: Cluster
) -> None:
    plane = control_plane.require_local()
    create_installation(k8s, namespace, source(repository.https_url, pollInterval="1s"))
    wait_for_source(k8s, namespace, commit=repository.head())
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES)
    # The first polls after the mirror settle; then nothing may be written while more come.
    wait_for(lambda: repository.polls() >= 6, timeout=30, message="a few polls")
    plane.sync_audit()
    mark = plane.audit.mark()
    entry = source_entry(k8s, namespace)
    events = installation_events(k8s, namespace)
    polls = repository.polls()

    wait_for(lambda: repository.polls() >= polls + 6, timeout=30, message="more polls")
    plane.sync_audit()
    writes = [
        (event.verb, event.resource, event.name)
        for event in plane.audit.select(since=mark, namespace=namespace, user=OPERATOR_USER)
        if (event.resource == "workflows" and event.subresource is None)
        or (event.resource == "configmaps" and "-source-" in (event.name or ""))
    ]
    assert writes == []
    assert source_entry(k8s, namespace) == entry
    assert installation_events(k8s, namespace) == events


def installation_events(k8s: ApiClient, namespace: str) -> list[tuple[str, str]]:
    listed = client.CoreV1Api(k8s).list_namespaced_event(namespace).items
    return sorted(
        (str(event.metadata.name), str(event.reason))
        for event in listed
        if event.involved_object.kind == "OrchestratorInstance"
    )


def test_a_source_removed_from_the_spec_takes_its_workflows_with_it(
    k8s: ApiClient, namespace: str, repository: Repository
) -> None:
    main = source(repository.file_url)
    greeting_only = source(repository.file_url, name="greeting-only", path="greeting")
    create_installation(k8s, namespace, main)
    wait_for_source(k8s, namespace, commit=repository.head())
    wait_for_workflows(k8s, namespace, FIXTURE_NAMES)
    set_sources(k8s, namespace, main, greeting_only)
    entry = wait_for_source(k8s, namespace, reason="WorkflowConflict", name="greeting-only")
    assert "belongs to the source 'main'" in synced_condition(entry)["message"]

    set_sources(k8s, namespace, greeting_only)

    found = wait_for_workflows(k8s, namespace, {"greeting"})
    assert found["greeting"]["metadata"]["labels"]["orchestrator.dev/source"] == "greeting-only"
    wait_for_source(k8s, namespace, name="greeting-only")
    entries = installation(k8s, namespace)["status"]["sources"]
    assert [e["name"] for e in entries] == ["greeting-only"]


@pytest.fixture
def other_namespace(k8s: ApiClient, namespace: str) -> Iterator[str]:
    """A second namespace, for Workflows mirrored away from their installation."""
    core = client.CoreV1Api(k8s)
    name = f"{namespace[:55]}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_workflows_in_another_namespace_are_labelled_and_cleaned_up_by_label(
    k8s: ApiClient, namespace: str, other_namespace: str, repository: Repository
) -> None:
    elsewhere = source(repository.file_url, path="greeting", targetNamespace=other_namespace)
    create_installation(k8s, namespace, elsewhere, workflowNamespaces=[other_namespace])
    wait_for_source(k8s, namespace, commit=repository.head())
    greeting = wait_for_workflows(k8s, other_namespace, {"greeting"})["greeting"]

    assert "ownerReferences" not in greeting["metadata"]
    assert greeting["metadata"]["labels"]["orchestrator.dev/installation"] == INSTALLATION
    assert greeting["metadata"]["labels"]["orchestrator.dev/installation-namespace"] == namespace
    assert greeting["spec"]["installationRef"] == {"name": INSTALLATION, "namespace": namespace}

    # The installation no longer serves that namespace: reported, and nothing is deleted.
    patch_installation(k8s, namespace, {"spec": {"workflowNamespaces": []}})
    wait_for_source(k8s, namespace, reason="InvalidSource")
    assert set(workflows(k8s, other_namespace)) == {"greeting"}

    # The source leaves the spec: its Workflows leave the other namespace.
    patch_installation(
        k8s, namespace, {"spec": {"workflowNamespaces": [other_namespace], "sources": []}}
    )
    wait_for_workflows(k8s, other_namespace, set())

    # Back again, then the installation is deleted: no owner reference can collect them there.
    set_sources(k8s, namespace, elsewhere)
    wait_for_workflows(k8s, other_namespace, {"greeting"})
    custom(k8s).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "orchestratorinstances", INSTALLATION
    )
    wait_for_workflows(k8s, other_namespace, set())
