"""A Workflow on a real API server becomes a running runtime, and the status tells the truth."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.kube import Cluster, gone, wait_for
from helpers.operator_process import OperatorProcess
from integration.conftest import OPERATOR_USER, RESYNC_SECONDS
from orchestrator_operator.definition.folder import load_workflow_folder
from orchestrator_operator.render.folder import workflow_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
GROUP, VERSION, PLURAL = "orchestrator.dev", "v1alpha1", "workflows"
CHECKSUM = "orchestrator.dev/checksum"

pytestmark = pytest.mark.usefixtures("operator")


def fixture_workflow(folder: str, namespace: str) -> dict[str, Any]:
    return workflow_manifest(load_workflow_folder(FIXTURES / folder), namespace=namespace)


def create(k8s: ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    namespace = manifest["metadata"]["namespace"]
    created: dict[str, Any] = client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, manifest
    )
    return created


def read(k8s: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return found


def patch_spec(k8s: ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(k8s).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


def condition(workflow: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (workflow.get("status") or {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def wait_for_condition(
    k8s: ApiClient,
    namespace: str,
    name: str,
    kind: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        workflow = read(k8s, namespace, name)
        found = condition(workflow, kind)
        observed = (workflow.get("status") or {}).get("observedGeneration")
        if (
            found.get("status") == status
            and (reason is None or found.get("reason") == reason)
            and observed == workflow["metadata"]["generation"]
        ):
            return workflow
        return None

    return wait_for(
        matches, timeout=timeout, message=f"{kind}={status} ({reason}) on Workflow {name}"
    )


def deployment(k8s: ApiClient, namespace: str, name: str) -> Any:
    return client.AppsV1Api(k8s).read_namespaced_deployment(name, namespace)


def checksum_of(k8s: ApiClient, namespace: str, name: str) -> str:
    annotations = deployment(k8s, namespace, name).spec.template.metadata.annotations
    return str(annotations[CHECKSUM])


def events_for(k8s: ApiClient, namespace: str, name: str) -> list[Any]:
    listed = client.CoreV1Api(k8s).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Workflow"
    )
    return list(listed.items)


def ready_event_posted(k8s: ApiClient, namespace: str, name: str) -> bool:
    """Whether the Normal Event of a Ready runtime is there: it follows the last status write."""
    return any(
        (e.type, e.reason) == ("Normal", "RuntimeAvailable")
        for e in events_for(k8s, namespace, name)
    )


def test_greeting_becomes_a_runtime_with_its_files_mounted(k8s: ApiClient, namespace: str) -> None:
    create(k8s, fixture_workflow("greeting", namespace))

    workflow = wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
    assert workflow["status"]["workflowId"] == "greeting"
    assert workflow["status"]["workflowVersion"] == "1.0"
    assert workflow["status"]["url"] == f"http://greeting.{namespace}"
    assert condition(workflow, "DefinitionValid")["reason"] == "Valid"
    assert condition(workflow, "Available")["observedGeneration"] == 1

    core = client.CoreV1Api(k8s)
    definition = core.read_namespaced_config_map("greeting-definition", namespace)
    assert json.loads(definition.data["greeting.sw.json"])["start"] == "ChooseOnLanguage"
    schemas = core.read_namespaced_config_map("greeting-files-schemas", namespace)
    assert "greeting.sw.input-schema.json" in schemas.data
    props = core.read_namespaced_config_map("greeting-props", namespace)
    original = (FIXTURES / "greeting" / "application.properties").read_text()
    assert props.data["application.properties"] == original

    pod = deployment(k8s, namespace, "greeting").spec.template.spec
    mount = pod.containers[0].volume_mounts[0]
    assert mount.mount_path == "/home/kogito/serverless-workflow-project/src/main/resources"
    mounted = {
        item.path for source in pod.volumes[0].projected.sources for item in source.config_map.items
    }
    assert {
        "greeting.sw.json",
        "application.properties",
        "application-dev.properties",
        "schemas/greeting.sw.input-schema.json",
        "schemas/workflow-output-schema.json",
        "shared/schemas/workflow-result-schema.json",
    } <= mounted

    service = core.read_namespaced_service("greeting", namespace)
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(80, 8080)]
    owner = service.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Workflow", "greeting", True)


def test_properties_edit_rolls_the_runtime_out(k8s: ApiClient, namespace: str) -> None:
    create(k8s, fixture_workflow("greeting", namespace))
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True")
    before = checksum_of(k8s, namespace, "greeting")

    patch_spec(k8s, namespace, "greeting", {"properties": "quarkus.log.level=DEBUG\n"})

    wait_for(
        lambda: checksum_of(k8s, namespace, "greeting") != before,
        message="a new pod-template checksum after the properties changed",
    )
    props = client.CoreV1Api(k8s).read_namespaced_config_map("greeting-props", namespace)
    assert props.data["application.properties"] == "quarkus.log.level=DEBUG\n"
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")


def test_secret_keys_become_env_and_a_secret_edit_rolls_out(k8s: ApiClient, namespace: str) -> None:
    manifest = fixture_workflow("create-ocp-project", namespace)
    (secret_ref,) = manifest["spec"]["secrets"]
    create(k8s, manifest)
    missing = wait_for_condition(
        k8s, namespace, "create-ocp-project", "Ready", "False", "SecretNotFound"
    )
    assert secret_ref["secretName"] in condition(missing, "DependenciesResolved")["message"]
    assert not deployment_exists(k8s, namespace, "create-ocp-project")

    core = client.CoreV1Api(k8s)
    values = {
        key: base64.b64encode(b"value-" + key.encode()).decode() for key in secret_ref["keys"]
    }
    partial = dict(list(values.items())[:-1])
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=secret_ref["secretName"]), data=partial),
    )
    lacking = wait_for_condition(
        k8s, namespace, "create-ocp-project", "Ready", "False", "SecretKeyMissing"
    )
    assert secret_ref["keys"][-1] in condition(lacking, "DependenciesResolved")["message"]

    core.patch_namespaced_secret(secret_ref["secretName"], namespace, {"data": values})
    wait_for_condition(k8s, namespace, "create-ocp-project", "Ready", "True")
    env = deployment(k8s, namespace, "create-ocp-project").spec.template.spec.containers[0].env
    assert {e.name: e.value_from.secret_key_ref.name for e in env} == dict.fromkeys(
        secret_ref["keys"], secret_ref["secretName"]
    )
    before = checksum_of(k8s, namespace, "create-ocp-project")

    core.patch_namespaced_secret(
        secret_ref["secretName"],
        namespace,
        {"data": {secret_ref["keys"][0]: base64.b64encode(b"rotated").decode()}},
    )
    wait_for(
        lambda: checksum_of(k8s, namespace, "create-ocp-project") != before,
        message="a rollout after the Secret changed",
    )
    # The values themselves never reach a ConfigMap, the status or an Event.
    workflow_text = json.dumps(read(k8s, namespace, "create-ocp-project"))
    config_maps = core.list_namespaced_config_map(namespace).items
    texts = [workflow_text, *(json.dumps(cm.data) for cm in config_maps)]
    texts += [event.message or "" for event in events_for(k8s, namespace, "create-ocp-project")]
    for key in secret_ref["keys"]:
        assert not any(f"value-{key}" in text for text in texts)
    assert not any("rotated" in text for text in texts)


def deployment_exists(k8s: ApiClient, namespace: str, name: str) -> bool:
    try:
        deployment(k8s, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_children_deleted_or_edited_by_hand_are_put_back(k8s: ApiClient, namespace: str) -> None:
    create(k8s, fixture_workflow("greeting", namespace))
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True")
    core = client.CoreV1Api(k8s)

    first_uid = deployment(k8s, namespace, "greeting").metadata.uid
    core.delete_namespaced_config_map("greeting-definition", namespace)
    core.delete_namespaced_service("greeting", namespace)
    client.AppsV1Api(k8s).delete_namespaced_deployment("greeting", namespace)
    wait_for(
        lambda: core.read_namespaced_config_map("greeting-definition", namespace),
        ignore=(ApiException,),
        message="the definition ConfigMap to be restored",
    )
    wait_for(
        lambda: core.read_namespaced_service("greeting", namespace),
        ignore=(ApiException,),
        message="the Service to be restored",
    )
    restored = wait_for(
        lambda: deployment(k8s, namespace, "greeting"),
        ignore=(ApiException,),
        message="the Deployment to be restored",
    )
    assert restored.metadata.uid != first_uid
    assert restored.spec.template.metadata.annotations[CHECKSUM]
    assert restored.metadata.owner_references[0].name == "greeting"

    core.patch_namespaced_config_map(
        "greeting-props", namespace, {"data": {"application.properties": "edited=by hand\n"}}
    )
    original = (FIXTURES / "greeting" / "application.properties").read_text()
    wait_for(
        lambda: (
            core.read_namespaced_config_map("greeting-props", namespace).data[
                "application.properties"
            ]
            == original
        ),
        message="the properties ConfigMap edited by hand to be put back",
    )


def test_deleting_the_workflow_collects_its_children(k8s: ApiClient, namespace: str) -> None:
    create(k8s, fixture_workflow("greeting", namespace))
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True")
    core = client.CoreV1Api(k8s)

    client.CustomObjectsApi(k8s).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "greeting"
    )

    for name in ("greeting-definition", "greeting-props", "greeting-managed-props"):
        wait_for(
            lambda name=name: gone(lambda: core.read_namespaced_config_map(name, namespace)),
            message=f"ConfigMap {name} to be collected",
        )
    wait_for(
        lambda: gone(lambda: deployment(k8s, namespace, "greeting")),
        message="the Deployment to be collected",
    )
    wait_for(
        lambda: gone(lambda: core.read_namespaced_service("greeting", namespace)),
        message="the Service to be collected",
    )


def test_an_invalid_edit_is_reported_and_the_last_good_runtime_keeps_running(
    k8s: ApiClient, namespace: str
) -> None:
    manifest = fixture_workflow("greeting", namespace)
    create(k8s, manifest)
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True")
    before = checksum_of(k8s, namespace, "greeting")
    core = client.CoreV1Api(k8s)
    definition_before = core.read_namespaced_config_map("greeting-definition", namespace).data

    broken = json.loads(json.dumps(manifest["spec"]["definition"]))
    broken["states"][1]["transition"] = "NoSuchState"
    patch_spec(k8s, namespace, "greeting", {"definition": broken})

    workflow = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "InvalidStateGraph")
    message = condition(workflow, "DefinitionValid")["message"]
    assert "NoSuchState" in message
    assert "GreetInEnglish" in message
    assert condition(workflow, "Available")["status"] == "True"
    assert "keeps running" in condition(workflow, "Ready")["message"]
    wait_for(
        lambda: any(
            e.reason == "InvalidStateGraph" and e.type == "Warning"
            for e in events_for(k8s, namespace, "greeting")
        ),
        message="a Warning Event with the condition's reason",
    )
    assert checksum_of(k8s, namespace, "greeting") == before
    after = core.read_namespaced_config_map("greeting-definition", namespace).data
    assert after == definition_before


def test_a_user_setting_a_managed_key_gets_a_warning_even_before_the_runtime_renders(
    k8s: ApiClient, namespace: str
) -> None:
    manifest = fixture_workflow("greeting", namespace)
    manifest["spec"]["properties"] = "quarkus.http.port=9999\nmy.own=kept\n"
    manifest["spec"]["podTemplate"] = {
        "env": [
            {"name": "QUARKUS_HTTP_HOST", "value": "127.0.0.1"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        ]
    }
    create(k8s, manifest)
    # The Secret is missing: nothing renders, and the Warning comes all the same.
    waiting = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "SecretNotFound")
    assert waiting["status"]["overriddenManagedKeys"] == [
        {"key": "quarkus.http.port", "source": "spec.properties"},
        {"key": "QUARKUS_HTTP_HOST", "source": "spec.podTemplate.env"},
    ]
    (warning,) = wait_for(
        lambda: [
            e
            for e in events_for(k8s, namespace, "greeting")
            if e.reason == "ManagedPropertyOverridden"
        ],
        message="a ManagedPropertyOverridden Event",
    )
    assert warning.type == "Warning"
    assert "quarkus.http.port (set in spec.properties)" in warning.message
    assert "QUARKUS_HTTP_HOST (set in spec.podTemplate.env)" in warning.message

    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="api"), string_data={"token": "t"}),
    )
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
    managed = core.read_namespaced_config_map("greeting-managed-props", namespace)
    assert "quarkus.http.port=8080\n" in managed.data["application-dev.properties"]
    assert "quarkus.http.host=0.0.0.0\n" in managed.data["application-dev.properties"]
    props = core.read_namespaced_config_map("greeting-props", namespace)
    assert props.data["application.properties"] == "quarkus.http.port=9999\nmy.own=kept\n"
    env = deployment(k8s, namespace, "greeting").spec.template.spec.containers[0].env
    assert [e.name for e in env] == ["TOKEN"]
    # Told once: the status remembers it, through the generation that could not render.
    overridden = [
        e for e in events_for(k8s, namespace, "greeting") if e.reason == "ManagedPropertyOverridden"
    ]
    assert len(overridden) == 1


def test_an_idle_resync_makes_no_write(
    k8s: ApiClient, namespace: str, control_plane: Cluster, operator: OperatorProcess
) -> None:
    plane = control_plane.require_local()
    for folder in ("greeting", "escalation", "modify-vm-resources"):
        manifest = fixture_workflow(folder, namespace)
        manifest["spec"].pop("secrets", None)
        create(k8s, manifest)
    names = ("greeting", "ticketescalation", "modify-vm-resources")
    for name in names:
        wait_for_condition(k8s, namespace, name, "Ready", "True", timeout=90)
    wait_for(
        lambda: all(ready_event_posted(k8s, namespace, name) for name in names),
        message="the RuntimeAvailable Events, the last writes of a rollout",
    )
    plane.sync_audit()
    mark = plane.audit.mark()
    resyncs = operator.log().count("Resync:")
    reconciles = operator.metric(
        "controller_runtime_reconcile_total", controller="workflow", result="success"
    )

    operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4, count=resyncs + 2)
    writes = plane.count_requests(
        since=mark,
        namespace=namespace,
        user=OPERATOR_USER,
        verbs=("create", "update", "patch", "delete"),
    )
    assert writes == 0
    after = operator.metric(
        "controller_runtime_reconcile_total", controller="workflow", result="success"
    )
    assert after - reconciles >= 3, "the resyncs did not reconcile the workflows"


def test_the_api_server_refuses_what_the_schema_can_say(k8s: ApiClient, namespace: str) -> None:
    too_long = fixture_workflow("greeting", namespace)
    too_long["metadata"]["name"] = "g" * 50
    with pytest.raises(ApiException) as refused:
        create(k8s, too_long)
    assert refused.value.status == 422
    assert "at most 49 characters" in refused.value.body

    gitops = fixture_workflow("greeting", namespace)
    gitops["spec"]["profile"] = "gitops"
    with pytest.raises(ApiException) as refused:
        create(k8s, gitops)
    assert "set spec.image" in refused.value.body

    no_states = fixture_workflow("greeting", namespace)
    no_states["spec"]["definition"]["states"] = []
    with pytest.raises(ApiException) as refused:
        create(k8s, no_states)
    assert "states" in refused.value.body

    for bad_id in ("team/greeting", "..greeting"):
        not_a_file = fixture_workflow("greeting", namespace)
        not_a_file["spec"]["definition"]["id"] = bad_id
        with pytest.raises(ApiException) as refused:
            create(k8s, not_a_file)
        assert refused.value.status == 422
        causes = json.loads(refused.value.body)["details"]["causes"]
        assert {
            "field": "spec.definition.id",
            "message": f"Invalid value: {json.dumps(bad_id)}: the id names the definition's file"
            " <id>.sw.json: no '/', and not starting with '..'",
        } in [{k: c.get(k) for k in ("field", "message")} for c in causes]


def test_an_object_someone_else_made_is_never_taken_over(k8s: ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="greeting-props"), data={"important": "userdata"}
        ),
    )
    create(k8s, fixture_workflow("greeting", namespace))

    workflow = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "ObjectNameTaken")
    assert "ConfigMap" in condition(workflow, "Ready")["message"]
    assert "greeting-props" in condition(workflow, "Ready")["message"]
    mine = core.read_namespaced_config_map("greeting-props", namespace)
    assert mine.data == {"important": "userdata"}
    assert not mine.metadata.owner_references
    assert not deployment_exists(k8s, namespace, "greeting")

    core.delete_namespaced_config_map("greeting-props", namespace)
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", timeout=90)


def test_a_child_of_another_workflow_is_never_taken_over(k8s: ApiClient, namespace: str) -> None:
    # "greeting" owns greeting-managed-props; the user properties of a Workflow named
    # "greeting-managed" would go to a ConfigMap of that same name.
    create(k8s, fixture_workflow("greeting", namespace))
    wait_for_condition(k8s, namespace, "greeting", "DefinitionValid", "True")
    core = client.CoreV1Api(k8s)
    held = core.read_namespaced_config_map("greeting-managed-props", namespace)
    create(
        k8s,
        workflow_manifest(
            load_workflow_folder(FIXTURES / "greeting"),
            namespace=namespace,
            name="greeting-managed",
        ),
    )

    workflow = wait_for_condition(
        k8s, namespace, "greeting-managed", "Ready", "False", "ObjectNameTaken"
    )
    message = condition(workflow, "Ready")["message"]
    assert "ConfigMap" in message
    assert "greeting-managed-props" in message
    assert "belongs to Workflow greeting" in message
    kept = core.read_namespaced_config_map("greeting-managed-props", namespace)
    assert kept.data == held.data
    assert [ref.name for ref in kept.metadata.owner_references] == ["greeting"]


def test_two_files_at_one_path_are_a_definition_error(k8s: ApiClient, namespace: str) -> None:
    manifest = fixture_workflow("greeting", namespace)
    manifest["spec"]["files"].append({"path": "application.properties", "content": "a=b\n"})
    create(k8s, manifest)

    workflow = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "DuplicateFilePath")
    assert (
        "'application.properties' would be mounted twice"
        in condition(workflow, "DefinitionValid")["message"]
    )
    assert not deployment_exists(k8s, namespace, "greeting")


def test_a_definition_no_config_map_can_hold_is_refused_without_a_retry_loop(
    k8s: ApiClient, namespace: str, control_plane: Cluster, operator: OperatorProcess
) -> None:
    plane = control_plane.require_local()
    plane.sync_audit()
    mark = plane.audit.mark()
    manifest = fixture_workflow("greeting", namespace)
    # About 1.05 MB as compact JSON: the Workflow fits etcd, its definition no ConfigMap.
    manifest["spec"]["definition"]["constants"] = {"rows": [{"a": [1]}] * 105_000}
    create(k8s, manifest)

    workflow = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "FileTooLarge")
    valid = condition(workflow, "DefinitionValid")
    assert (valid["status"], valid["reason"]) == ("False", "FileTooLarge")
    assert "file 'greeting.sw.json' (spec.definition, as JSON) holds" in valid["message"]
    wait_for(
        lambda: any(e.reason == "FileTooLarge" for e in events_for(k8s, namespace, "greeting")),
        message="a FileTooLarge Event",
    )

    resyncs = operator.log().count("Resync:")
    operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4, count=resyncs + 2)
    # Refused before anything was sent: no child applied, no refusal, no retry.
    assert not deployment_exists(k8s, namespace, "greeting")
    assert all(e.reason != "ApplyFailed" for e in events_for(k8s, namespace, "greeting"))
    writes = [
        (event.verb, event.resource, event.subresource)
        for event in plane.audit_events(mark)
        if event.user == OPERATOR_USER and event.namespace == namespace and event.is_write
    ]
    assert writes == [("patch", "workflows", "status"), ("create", "events", None)]


def test_a_secret_read_by_pod_template_env_is_awaited_and_its_edit_rolls_out(
    k8s: ApiClient, namespace: str
) -> None:
    manifest = fixture_workflow("greeting", namespace)
    manifest["spec"]["podTemplate"] = {
        "env": [
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
        ]
    }
    create(k8s, manifest)
    missing = wait_for_condition(k8s, namespace, "greeting", "Ready", "False", "SecretNotFound")
    message = condition(missing, "DependenciesResolved")["message"]
    assert "Secret 'api', read by spec.podTemplate.env 'API_TOKEN'" in message

    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="api"), string_data={"token": "one"}),
    )
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
    before = checksum_of(k8s, namespace, "greeting")

    core.patch_namespaced_secret("api", namespace, {"stringData": {"token": "two"}})
    wait_for(
        lambda: checksum_of(k8s, namespace, "greeting") != before,
        message="a rollout after the Secret read by env changed",
    )
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")


def test_an_edit_of_a_config_map_of_files_rolls_out(k8s: ApiClient, namespace: str) -> None:
    manifest = fixture_workflow("greeting", namespace)
    schemas = {
        f["path"].removeprefix("schemas/"): f["content"]
        for f in manifest["spec"]["files"]
        if f["path"].startswith("schemas/")
    }
    manifest["spec"]["files"] = [
        f for f in manifest["spec"]["files"] if not f["path"].startswith("schemas/")
    ]
    manifest["spec"]["configMapFiles"] = [{"configMap": "greeting-schemas", "path": "schemas"}]
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="greeting-schemas"), data=schemas),
    )
    create(k8s, manifest)
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
    pod = deployment(k8s, namespace, "greeting").spec.template.spec
    mounted = {
        item.path
        for source in pod.volumes[0].projected.sources
        if source.config_map.name == "greeting-schemas"
        for item in source.config_map.items
    }
    assert mounted == {f"schemas/{key}" for key in schemas}
    before = checksum_of(k8s, namespace, "greeting")

    edited = json.loads(schemas["workflow-output-schema.json"])
    edited["description"] = "edited in its ConfigMap"
    core.patch_namespaced_config_map(
        "greeting-schemas",
        namespace,
        {"data": {"workflow-output-schema.json": json.dumps(edited)}},
    )
    wait_for(
        lambda: checksum_of(k8s, namespace, "greeting") != before,
        message="a rollout after a ConfigMap of files changed",
    )
    wait_for_condition(k8s, namespace, "greeting", "Ready", "True", "RuntimeAvailable")
