"""What the Workflow controller decides, for real fixture workflows and for bad input."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition.folder import (
    WorkflowFolder,
    load_definition_file,
    load_workflow_folder,
)
from orchestrator_operator.models.installation import WorkflowDefaults
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.workflow import (
    DeploymentState,
    InstallationLink,
    Observed,
    WorkflowPlan,
    consumed_names,
    plan_workflow,
    resource_files,
)
from orchestrator_operator.render.folder import workflow_manifest
from orchestrator_operator.render.properties import ServiceEndpoints
from orchestrator_operator.render.workflow import DEV_RESOURCES_DIR, ConsumedSecret

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
KOGITO = Path(__file__).resolve().parents[1] / "fixtures" / "kogito-serverless-examples"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FOLDERS = [
    "greeting",
    "create-ocp-project",
    "escalation",
    "modify-vm-resources",
    "list-users",
    "azure",
    "patch-k8s-resource",
    "fail-switch",
    "bulk-import-git-repos",
]


def workflow_from(folder: str, generation: int = 1, **changes: Any) -> Workflow:
    manifest = workflow_manifest(load_workflow_folder(FIXTURES / folder), namespace="team-a")
    spec = {**manifest["spec"], **changes}
    return Workflow(
        name=manifest["metadata"]["name"],
        namespace="team-a",
        uid="uid-1",
        generation=generation,
        spec=WorkflowSpec.model_validate(spec),
    )


def secrets_for(workflow: Workflow) -> dict[str, ConsumedSecret | None]:
    return {
        ref.secret_name: ConsumedSecret(ref.secret_name, frozenset(ref.keys or ()), "1")
        for ref in workflow.spec.secrets
    }


def available(desired: int = 1, checksum: str | None = None) -> DeploymentState:
    return DeploymentState(
        generation=1,
        observed_generation=1,
        desired=desired,
        updated=desired,
        ready=desired,
        available=desired,
        checksum=checksum,
    )


def condition(plan: WorkflowPlan, kind: str) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == kind)


def kogito_folder(path: Path) -> WorkflowFolder:
    """A Kogito example definition, with the other definitions of its folder as its files, as
    the runtime would find them beside it."""
    lone = load_definition_file(path)
    others = {
        other.name: other.read_bytes()
        for other in sorted(path.parent.glob("*.sw.json"))
        if other != path
    }
    return replace(lone, files=others)


FIXTURE_FOLDERS = [
    *(
        (folder, lambda folder=folder: load_workflow_folder(FIXTURES / folder))
        for folder in FOLDERS
    ),
    *(
        (path.name, lambda path=path: kogito_folder(path))
        for path in sorted(KOGITO.glob("*/*.sw.json"))
    ),
]


def mounted_content(plan: WorkflowPlan, name: str) -> dict[str, str]:
    """Mounted path -> content, read through the projected volume's items."""
    assert plan.children is not None
    config_maps = {c["metadata"]["name"]: c for c in plan.children if c["kind"] == "ConfigMap"}
    (deployment,) = [c for c in plan.children if c["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == name
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == DEV_RESOURCES_DIR
    (volume,) = pod["volumes"]
    return {
        item["path"]: config_maps[source["configMap"]["name"]]["data"][item["key"]]
        for source in volume["projected"]["sources"]
        for item in source["configMap"]["items"]
    }


@pytest.mark.parametrize(("label", "load"), FIXTURE_FOLDERS, ids=[f[0] for f in FIXTURE_FOLDERS])
def test_every_fixture_workflow_is_valid_and_renders(
    label: str, load: Callable[[], WorkflowFolder]
) -> None:
    folder = load()
    name = re.sub(r"[^a-z0-9]+", "-", str(folder.definition["id"]).lower()).strip("-")
    manifest = workflow_manifest(folder, namespace="team-a", name=name)
    workflow = Workflow(
        name=name,
        namespace="team-a",
        uid="uid-1",
        generation=1,
        spec=WorkflowSpec.model_validate(manifest["spec"]),
    )
    plan = plan_workflow(workflow, Observed(secrets=secrets_for(workflow)), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True", condition(
        plan, "DefinitionValid"
    )["message"]
    assert condition(plan, "DependenciesResolved")["status"] == "True"
    assert plan.children is not None
    kinds = sorted(child["kind"] for child in plan.children)
    assert kinds.count("Deployment") == 1
    assert kinds.count("Service") == 1

    # Every file at its path under the resources folder, with its content; nothing else.
    mounted = mounted_content(plan, name)
    definition_file = f"{folder.definition['id']}.sw.json"
    assert set(mounted) == {
        definition_file,
        "application.properties",
        "application-dev.properties",
        *folder.files,
    }
    for path, content in folder.files.items():
        assert mounted[path] == content.decode(), path
    assert json.loads(mounted[definition_file]) == folder.definition
    assert mounted["application.properties"] == (folder.properties or "")
    managed = mounted["application-dev.properties"].splitlines()
    assert "quarkus.http.port=8080" in managed
    assert "quarkus.http.host=0.0.0.0" in managed
    assert f"kogito.service.url=http://{name}.team-a" in managed
    assert condition(plan, "Ready") == {
        "type": "Ready",
        "status": "False",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-12-01T12:00:00Z",
        "reason": "NotRolledOut",
        "message": "the runtime's Deployment does not exist yet",
    }


def test_the_330_kb_openapi_spec_is_mounted_whole() -> None:
    workflow = workflow_from("modify-vm-resources")
    plan = plan_workflow(workflow, Observed(secrets=secrets_for(workflow)), NOW)
    spec = mounted_content(plan, "modify-vm-resources")["specs/kubevirt-openapi.yaml"]
    original = (FIXTURES / "modify-vm-resources" / "specs" / "kubevirt-openapi.yaml").read_text()
    assert len(spec.encode()) > 300_000
    assert spec == original


def test_a_rolled_out_runtime_is_ready() -> None:
    workflow = workflow_from("greeting")
    first = plan_workflow(workflow, Observed(), NOW)
    assert first.children is not None
    checksum = first.children[-1]["spec"]["template"]["metadata"]["annotations"][
        "orchestrator.dev/checksum"
    ]
    plan = plan_workflow(workflow, Observed(deployment=available(checksum=checksum)), NOW)
    assert condition(plan, "Ready")["status"] == "True"
    assert condition(plan, "Ready")["reason"] == "RuntimeAvailable"
    assert plan.status["replicas"] == {"desired": 1, "updated": 1, "available": 1}
    assert plan.status["url"] == "http://greeting.team-a"
    assert [e.reason for e in plan.events] == ["RuntimeAvailable"]


def test_a_deployment_with_an_older_checksum_is_rolling_out() -> None:
    plan = plan_workflow(
        workflow_from("greeting"), Observed(deployment=available(checksum="old")), NOW
    )
    assert condition(plan, "Available")["reason"] == "RollingOut"
    assert condition(plan, "Ready")["status"] == "False"
    assert plan.events == []


def test_pod_problems_are_named_in_the_available_condition() -> None:
    deployment = DeploymentState(1, 1, 1, 1, 0, 0, None)
    plan = plan_workflow(
        workflow_from("greeting"),
        Observed(
            deployment=deployment,
            pod_problems=["pod greeting-abc: ImagePullBackOff: Back-off pulling image"],
        ),
        NOW,
    )
    available_condition = condition(plan, "Available")
    assert available_condition["status"] == "False"
    assert available_condition["reason"] == "RuntimeUnavailable"
    assert "ImagePullBackOff" in available_condition["message"]
    assert "0 of 1 replicas available" in available_condition["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RuntimeUnavailable")]


def test_last_transition_time_is_kept_while_the_status_does_not_change() -> None:
    workflow = workflow_from("greeting")
    first = plan_workflow(workflow, Observed(), NOW)
    later = plan_workflow(workflow, Observed(status=first.status), NOW + timedelta(minutes=5))
    assert later.status == first.status
    assert later.events == []


def break_definition(edit: Any) -> Workflow:
    workflow = workflow_from("greeting")
    definition = copy.deepcopy(workflow.spec.definition)
    edit(definition)
    return workflow.model_copy(
        update={"spec": workflow.spec.model_copy(update={"definition": definition})}
    )


def test_an_invalid_definition_rolls_nothing_out_and_keeps_the_old_runtime() -> None:
    workflow = break_definition(lambda d: d["states"][1].update(transition="Nowhere"))
    plan = plan_workflow(
        workflow, Observed(deployment=available(checksum="previous"), status={}), NOW
    )
    assert plan.children is None
    valid = condition(plan, "DefinitionValid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidStateGraph")
    assert "Nowhere" in valid["message"]
    assert condition(plan, "Available")["status"] == "True"
    ready = condition(plan, "Ready")
    assert ready["reason"] == "InvalidStateGraph"
    assert ready["message"].endswith("the runtime of the last valid version keeps running")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidStateGraph")]


def test_a_missing_secret_key_is_named() -> None:
    workflow = workflow_from("create-ocp-project")
    (reference,) = workflow.spec.secrets
    keys = frozenset((reference.keys or [])[1:])
    plan = plan_workflow(
        workflow,
        Observed(secrets={reference.secret_name: ConsumedSecret(reference.secret_name, keys, "1")}),
        NOW,
    )
    assert plan.children is None
    resolved = condition(plan, "DependenciesResolved")
    assert resolved["reason"] == "SecretKeyMissing"
    assert repr((reference.keys or [])[0]) in resolved["message"]
    assert reference.secret_name in resolved["message"]


def test_a_missing_config_map_of_files_is_named() -> None:
    workflow = workflow_from(
        "greeting", configMapFiles=[{"configMap": "vendor-specs", "path": "specs"}]
    )
    plan = plan_workflow(workflow, Observed(config_maps={"vendor-specs": None}), NOW)
    assert plan.children is None
    for kind in ("DefinitionValid", "DependenciesResolved"):
        assert condition(plan, kind)["status"] == "False"
        assert condition(plan, kind)["reason"] == "ConfigMapNotFound"
        assert "vendor-specs" in condition(plan, kind)["message"]


def test_files_from_config_maps_count_for_validation() -> None:
    folder = load_workflow_folder(FIXTURES / "greeting")
    schemas = {
        path.removeprefix("schemas/"): content.decode()
        for path, content in folder.files.items()
        if path.startswith("schemas/")
    }
    workflow = workflow_from("greeting")
    without_schemas = [f for f in workflow.spec.files if not f.path.startswith("schemas/")]
    workflow = workflow.model_copy(
        update={
            "spec": workflow.spec.model_copy(
                update={
                    "files": without_schemas,
                    "config_map_files": WorkflowSpec.model_validate(
                        {
                            "definition": {"id": "x", "states": [{}]},
                            "configMapFiles": [{"configMap": "schemas", "path": "schemas"}],
                        }
                    ).config_map_files,
                }
            )
        }
    )
    plan = plan_workflow(workflow, Observed(config_maps={"schemas": schemas}), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True"
    missing = plan_workflow(workflow, Observed(config_maps={"schemas": {}}), NOW)
    assert condition(missing, "DefinitionValid")["reason"] == "MissingResourceFile"


def overridden_warnings(plan: WorkflowPlan) -> list[str]:
    return [
        e.message
        for e in plan.events
        if (e.type, e.reason) == ("Warning", "ManagedPropertyOverridden")
    ]


def test_a_managed_key_set_by_the_user_is_warned_about_once_as_the_status_remembers() -> None:
    workflow = workflow_from("greeting", properties="quarkus.http.port=1234\nmy.own=kept\n")
    plan = plan_workflow(workflow, Observed(), NOW)
    assert plan.status["overriddenManagedKeys"] == [
        {"key": "quarkus.http.port", "source": "spec.properties"}
    ]
    assert overridden_warnings(plan) == [
        "the operator manages quarkus.http.port (set in spec.properties); the managed values"
        " are used, not these"
    ]
    # A resync, a new generation, or an operator that restarted: the status says it was told.
    again = plan_workflow(workflow, Observed(status=plan.status), NOW)
    assert overridden_warnings(again) == []
    newer = workflow.model_copy(update={"generation": 2})
    assert overridden_warnings(plan_workflow(newer, Observed(status=plan.status), NOW)) == []


def test_the_warning_is_not_lost_when_the_first_reconcile_cannot_render() -> None:
    workflow = workflow_from(
        "create-ocp-project", properties="quarkus.http.host=127.0.0.1\n"
    )  # its Secret is missing
    plan = plan_workflow(workflow, Observed(), NOW)
    assert plan.children is None
    assert condition(plan, "DependenciesResolved")["reason"] == "SecretNotFound"
    assert len(overridden_warnings(plan)) == 1
    assert "quarkus.http.host (set in spec.properties)" in overridden_warnings(plan)[0]

    resolved = plan_workflow(
        workflow, Observed(status=plan.status, secrets=secrets_for(workflow)), NOW
    )
    assert resolved.children is not None
    assert overridden_warnings(resolved) == []


def test_only_new_overrides_are_announced_and_gone_ones_leave_the_status() -> None:
    first = workflow_from("greeting", properties="quarkus.http.port=1\n")
    plan = plan_workflow(first, Observed(), NOW)
    second = workflow_from(
        "greeting",
        generation=2,
        properties="quarkus.http.port=1\n",
        podTemplate={"env": [{"name": "KOGITO_SERVICE_URL", "value": "http://elsewhere"}]},
    )
    added = plan_workflow(second, Observed(status=plan.status), NOW)
    assert overridden_warnings(added) == [
        "the operator manages KOGITO_SERVICE_URL (set in spec.podTemplate.env); the managed"
        " values are used, not these"
    ]
    assert added.children is not None
    env = added.children[-1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "KOGITO_SERVICE_URL" not in {entry["name"] for entry in env}

    clean = workflow_from("greeting", generation=3)
    cleared = plan_workflow(clean, Observed(status=added.status), NOW)
    assert "overriddenManagedKeys" not in cleared.status
    assert overridden_warnings(cleared) == []


def test_managed_keys_in_the_installation_defaults_are_warned_about() -> None:
    link = InstallationLink(
        endpoints=ServiceEndpoints("http://di.orchestrator"),
        defaults=WorkflowDefaults(properties="kogito.data-index.url=http://mine\nteam=a\n"),
    )
    workflow = workflow_from(
        "greeting", installationRef={"name": "orchestrator"}, properties="x=y\n"
    )
    plan = plan_workflow(workflow, Observed(installation=link), NOW)
    installation = "the installation's spec.workflowDefaults.properties"
    assert plan.status["overriddenManagedKeys"] == [
        {"key": "kogito.data-index.url", "source": installation}
    ]
    (message,) = overridden_warnings(plan)
    assert f"kogito.data-index.url (set in {installation})" in message


def test_gitops_does_not_ask_for_files_baked_into_the_image() -> None:
    workflow = workflow_from("greeting", profile="gitops", image="registry.example/greeting:1")
    stripped = workflow.model_copy(update={"spec": workflow.spec.model_copy(update={"files": []})})
    plan = plan_workflow(stripped, Observed(), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True"
    assert plan.children is not None
    assert {c["metadata"]["name"] for c in plan.children if c["kind"] == "ConfigMap"} == {
        "greeting-props",
        "greeting-managed-props",
    }


@pytest.mark.parametrize(
    ("changes", "config_maps", "path", "other"),
    [
        (
            {
                "files": [{"path": "specs/x.yaml", "content": "a"}],
                "configMapFiles": [{"configMap": "ovl", "path": "specs"}],
            },
            {"ovl": {"x.yaml": "b"}},
            "specs/x.yaml",
            "ConfigMap 'ovl'",
        ),
        (
            {"files": [{"path": "application.properties", "content": "a=b"}]},
            {},
            "application.properties",
            "spec.properties",
        ),
        (
            {"files": [{"path": "greeting.sw.json", "content": "{}"}]},
            {},
            "greeting.sw.json",
            "the definition",
        ),
    ],
)
def test_two_files_at_one_path_are_refused_before_the_api_server_sees_the_pod(
    changes: dict[str, Any], config_maps: dict[str, Any], path: str, other: str
) -> None:
    base = workflow_from("greeting")
    files = [f.model_dump(by_alias=True) for f in base.spec.files]
    workflow = workflow_from("greeting", **{**changes, "files": files + changes["files"]})
    plan = plan_workflow(workflow, Observed(config_maps=config_maps), NOW)
    assert plan.children is None
    valid = condition(plan, "DefinitionValid")
    assert valid["reason"] == "DuplicateFilePath"
    assert repr(path) in valid["message"]
    assert other in valid["message"]


def big_definition(workflow: Workflow) -> Workflow:
    definition = copy.deepcopy(workflow.spec.definition)
    definition["constants"] = {"rows": [{"a": [1]} for _ in range(130_000)]}
    return workflow.model_copy(
        update={"spec": workflow.spec.model_copy(update={"definition": definition})}
    )


@pytest.mark.parametrize(
    ("workflow", "link", "named"),
    [
        (big_definition(workflow_from("greeting")), None, "'greeting.sw.json'"),
        (workflow_from("greeting", properties="k=" + "ü" * 510_000), None, "(spec.properties)"),
        # Each fits alone; the installation's lines come first, and together they do not.
        (
            workflow_from(
                "greeting", properties="k=" + "v" * 800_000, installationRef={"name": "o"}
            ),
            InstallationLink(defaults=WorkflowDefaults(properties="i=" + "w" * 250_000)),
            "after the installation's spec.workflowDefaults.properties",
        ),
    ],
    ids=["definition", "multibyte properties", "with installation properties"],
)
def test_what_no_config_map_can_hold_is_refused_with_file_too_large(
    workflow: Workflow, link: InstallationLink | None, named: str
) -> None:
    plan = plan_workflow(workflow, Observed(installation=link), NOW)
    assert plan.children is None
    valid = condition(plan, "DefinitionValid")
    assert (valid["status"], valid["reason"]) == ("False", "FileTooLarge")
    assert named in valid["message"]
    assert condition(plan, "Ready")["reason"] == "FileTooLarge"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "FileTooLarge")]


ENV_FROM_OBJECTS = {
    "env": [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        {
            "name": "REGION",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}},
        },
        {
            "name": "EXTRA",
            "valueFrom": {"secretKeyRef": {"name": "extra", "key": "x", "optional": True}},
        },
    ]
}


def env_workflow() -> Workflow:
    return workflow_from("greeting", podTemplate=ENV_FROM_OBJECTS)


def test_secrets_and_config_maps_read_by_env_are_consumed() -> None:
    assert consumed_names(env_workflow()) == (["settings"], ["api", "extra"])


@pytest.mark.parametrize(
    ("secrets", "config_maps", "reason", "says"),
    [
        ({}, {"settings": {"region": "eu"}}, "SecretNotFound", "Secret 'api', read by"),
        (
            {"api": ConsumedSecret("api", frozenset({"other"}), "1")},
            {"settings": {"region": "eu"}},
            "SecretKeyMissing",
            "Secret 'api' has no key 'token', read by spec.podTemplate.env 'TOKEN'",
        ),
        (
            {"api": ConsumedSecret("api", frozenset({"token"}), "1")},
            {"settings": None},
            "ConfigMapNotFound",
            "ConfigMap 'settings', read by spec.podTemplate.env 'REGION', does not exist",
        ),
        (
            {"api": ConsumedSecret("api", frozenset({"token"}), "1")},
            {"settings": {"zone": "a"}},
            "ConfigMapKeyMissing",
            "ConfigMap 'settings' has no key 'region'",
        ),
    ],
)
def test_a_value_env_reads_that_is_missing_is_named(
    secrets: dict[str, ConsumedSecret | None],
    config_maps: dict[str, dict[str, str] | None],
    reason: str,
    says: str,
) -> None:
    plan = plan_workflow(env_workflow(), Observed(secrets=secrets, config_maps=config_maps), NOW)
    assert plan.children is None
    resolved = condition(plan, "DependenciesResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", reason)
    assert says in resolved["message"]


def checksum_of(plan: WorkflowPlan) -> str:
    assert plan.children is not None, plan.status
    annotations = plan.children[-1]["spec"]["template"]["metadata"]["annotations"]
    return str(annotations["orchestrator.dev/checksum"])


def test_the_checksum_reads_only_the_keys_env_uses_and_every_secret_it_reads() -> None:
    def plan_with(region: str, zone: str, api_version: str, extra: bool) -> WorkflowPlan:
        secrets: dict[str, ConsumedSecret | None] = {
            "api": ConsumedSecret("api", frozenset({"token"}), api_version),
            "extra": ConsumedSecret("extra", frozenset({"x"}), "5") if extra else None,
        }
        config_maps = {"settings": {"region": region, "zone": zone}}
        return plan_workflow(
            env_workflow(), Observed(secrets=secrets, config_maps=config_maps), NOW
        )

    original = checksum_of(plan_with("eu", "a", "1", extra=False))
    assert checksum_of(plan_with("eu", "b", "1", extra=False)) == original
    assert checksum_of(plan_with("us", "a", "1", extra=False)) != original
    assert checksum_of(plan_with("eu", "a", "2", extra=False)) != original
    # An optional Secret that appears is read from then on.
    assert checksum_of(plan_with("eu", "a", "1", extra=True)) != original


def test_binary_files_of_a_config_map_are_mounted_validated_and_checksummed() -> None:
    workflow = workflow_from("greeting", configMapFiles=[{"configMap": "assets", "path": "img"}])
    logo = b"\x89PNG\r\n\x1a\n\x00\xff"
    plan = plan_workflow(
        workflow, Observed(config_maps={"assets": {"logo.png": logo, "a.txt": "t"}}), NOW
    )
    assert plan.children is not None
    pod = plan.children[-1]["spec"]["template"]["spec"]
    sources = pod["volumes"][0]["projected"]["sources"]
    assets = next(s["configMap"] for s in sources if s["configMap"]["name"] == "assets")
    assert assets["items"] == [
        {"key": "a.txt", "path": "img/a.txt"},
        {"key": "logo.png", "path": "img/logo.png"},
    ]
    other = plan_workflow(
        workflow, Observed(config_maps={"assets": {"logo.png": logo + b"!", "a.txt": "t"}}), NOW
    )
    assert checksum_of(other) != checksum_of(plan)
    assert (
        resource_files(workflow, Observed(config_maps={"assets": {"logo.png": logo}}))[
            "img/logo.png"
        ]
        == logo
    )
