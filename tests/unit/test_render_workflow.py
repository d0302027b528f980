"""What a Workflow becomes, read like the manifests themselves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.render.environment import ManagedOverride
from orchestrator_operator.render.files import (
    CONFIG_MAP_BUDGET,
    FileTooLarge,
    config_map_key,
    data_size,
)
from orchestrator_operator.render.names import CHECKSUM_ANNOTATION, child_name, short_hash
from orchestrator_operator.render.properties import ServiceEndpoints, managed_env_key
from orchestrator_operator.render.workflow import (
    DEV_RESOURCES_DIR,
    ConsumedConfigMap,
    ConsumedSecret,
    RenderedWorkflow,
    RenderInput,
    managed_overrides,
    render_workflow,
)

DEFINITION = {
    "id": "hello",
    "version": "1.0",
    "start": "Say",
    "states": [{"name": "Say", "type": "inject", "data": {"greeting": "hi"}, "end": True}],
}


def make_workflow(**spec: Any) -> Workflow:
    return Workflow(
        name="hello",
        namespace="team-a",
        uid="0b7c1d5e-0000-4000-8000-000000000001",
        generation=3,
        spec=WorkflowSpec.model_validate({"definition": DEFINITION, **spec}),
    )


def render(workflow: Workflow, **given: Any) -> RenderedWorkflow:
    rendered = render_workflow(RenderInput(workflow=workflow, workflow_id="hello", **given))
    assert isinstance(rendered, RenderedWorkflow)
    return rendered


def by_name(rendered: RenderedWorkflow) -> dict[str, dict[str, Any]]:
    return {f"{c['kind']}/{c['metadata']['name']}": c for c in rendered.children}


def deployment(rendered: RenderedWorkflow) -> dict[str, Any]:
    return by_name(rendered)["Deployment/hello"]


def mounted_paths(rendered: RenderedWorkflow) -> dict[str, tuple[str, str]]:
    """Mounted path -> (ConfigMap, key), from the projected volume."""
    volume = deployment(rendered)["spec"]["template"]["spec"]["volumes"][0]
    return {
        item["path"]: (source["configMap"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["configMap"]["items"]
    }


def test_dev_profile_children_and_mounts() -> None:
    rendered = render(
        make_workflow(
            properties="# mine\nquarkus.log.level=INFO\n",
            files=[{"path": "schemas/input.json", "content": "{}"}],
        )
    )
    assert sorted(by_name(rendered)) == [
        "ConfigMap/hello-definition",
        "ConfigMap/hello-files-schemas",
        "ConfigMap/hello-managed-props",
        "ConfigMap/hello-props",
        "Deployment/hello",
        "Service/hello",
    ]
    assert rendered.children[-1]["kind"] == "Deployment"
    container = deployment(rendered)["spec"]["template"]["spec"]["containers"][0]
    assert container["volumeMounts"][0]["mountPath"] == DEV_RESOURCES_DIR
    assert mounted_paths(rendered) == {
        "application.properties": ("hello-props", "application.properties"),
        "application-dev.properties": ("hello-managed-props", "application-dev.properties"),
        "hello.sw.json": ("hello-definition", "hello.sw.json"),
        "schemas/input.json": ("hello-files-schemas", "input.json"),
    }
    props = by_name(rendered)["ConfigMap/hello-props"]["data"]["application.properties"]
    assert props == "# mine\nquarkus.log.level=INFO\n"


def test_gitops_profile_mounts_only_properties_under_the_config_folder() -> None:
    rendered = render(
        make_workflow(
            profile="gitops",
            image="registry.example/hello:1.0",
            files=[{"path": "schemas/input.json", "content": "{}"}],
        )
    )
    assert sorted(by_name(rendered)) == [
        "ConfigMap/hello-managed-props",
        "ConfigMap/hello-props",
        "Deployment/hello",
        "Service/hello",
    ]
    container = deployment(rendered)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/hello:1.0"
    assert container["volumeMounts"][0]["mountPath"] == "/deployments/config"
    assert set(mounted_paths(rendered)) == {
        "application.properties",
        "application-prod.properties",
    }


PROPERTIES = "quarkus.http.port=9000\n%dev.kogito.service.url = http://x\nmy.own=kept\n"


def test_managed_properties_win_and_user_attempts_are_reported() -> None:
    rendered = render(
        make_workflow(properties=PROPERTIES),
        endpoints=ServiceEndpoints("http://di.orchestrator", "http://js.orchestrator"),
    )
    managed = by_name(rendered)["ConfigMap/hello-managed-props"]["data"]
    text = managed["application-dev.properties"]
    assert "quarkus.http.port=8080\n" in text
    assert "kogito.service.url=http://hello.team-a\n" in text
    assert "kogito.data-index.url=http://di.orchestrator\n" in text
    assert (
        "mp.messaging.outgoing.kogito-processinstances-events.url=http://di.orchestrator/processes"
        in text
    )
    assert (
        "mp.messaging.outgoing.kogito-processdefinitions-events.url"
        "=http://di.orchestrator/definitions" in text
    )
    assert "kogito.jobs-service.url=http://js.orchestrator\n" in text
    assert managed_overrides(
        RenderInput(workflow=make_workflow(properties=PROPERTIES), workflow_id="hello")
    ) == [
        ManagedOverride("quarkus.http.port", "spec.properties"),
        ManagedOverride("kogito.service.url", "spec.properties"),
    ]
    user = by_name(rendered)["ConfigMap/hello-props"]["data"]["application.properties"]
    assert user == PROPERTIES


def test_standalone_workflow_has_no_data_index_properties() -> None:
    text = by_name(render(make_workflow()))["ConfigMap/hello-managed-props"]["data"][
        "application-dev.properties"
    ]
    assert "data-index" not in text
    assert "jobs-service" not in text


def test_deployment_is_restricted_and_probed() -> None:
    pod = deployment(render(make_workflow()))["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/q/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/q/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/q/health/started"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "1Gi"}


def test_service_maps_port_80_to_8080() -> None:
    service = by_name(render(make_workflow()))["Service/hello"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {"orchestrator.dev/workflow": "hello"}


def test_every_child_is_owned_by_the_workflow_and_carries_no_user_labels() -> None:
    workflow = make_workflow().model_copy(
        update={"labels": {"argocd.argoproj.io/instance": "team-a"}}
    )
    for child in render(workflow).children:
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["kind"] == "Workflow"
        assert owner["uid"] == workflow.uid
        assert owner["controller"] is True
        assert "argocd.argoproj.io/instance" not in child["metadata"]["labels"]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
            "orchestrator-operator"
        )


def test_checksum_follows_every_consumed_input() -> None:
    base = make_workflow(
        secrets=[{"secretName": "tokens", "keys": ["TOKEN"]}],
        configMapFiles=[{"configMap": "specs", "path": "specs"}],
    )
    secret = ConsumedSecret("tokens", frozenset({"TOKEN"}), "100")
    specs = ConsumedConfigMap("specs", ("api.yaml",), "digest-1")

    def checksum(**given: Any) -> str:
        inputs = {"secrets": {"tokens": secret}, "config_maps": {"specs": specs}} | given
        rendered = render(inputs.pop("workflow", base), **inputs)
        annotations = deployment(rendered)["spec"]["template"]["metadata"]["annotations"]
        assert annotations[CHECKSUM_ANNOTATION] == rendered.checksum
        return rendered.checksum

    original = checksum()
    assert checksum() == original
    assert checksum(secrets={"tokens": ConsumedSecret("tokens", secret.keys, "101")}) != original
    assert checksum(config_maps={"specs": ConsumedConfigMap("specs", specs.keys, "d2")}) != original
    edited = make_workflow(
        properties="a=b\n",
        secrets=[{"secretName": "tokens", "keys": ["TOKEN"]}],
        configMapFiles=[{"configMap": "specs", "path": "specs"}],
    )
    assert checksum(workflow=edited) != original


def test_secret_values_never_enter_the_manifests() -> None:
    rendered = render(
        make_workflow(secrets=[{"secretName": "tokens", "keys": ["TOKEN"]}, {"secretName": "all"}]),
        secrets={
            "tokens": ConsumedSecret("tokens", frozenset({"TOKEN"}), "7"),
            "all": ConsumedSecret("all", frozenset({"A"}), "8"),
        },
    )
    container = deployment(rendered)["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "TOKEN"}}}
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "all"}}]


def test_user_config_maps_mount_each_key_under_their_folder() -> None:
    rendered = render(
        make_workflow(configMapFiles=[{"configMap": "big-specs", "path": "specs/vendor"}]),
        config_maps={"big-specs": ConsumedConfigMap("big-specs", ("b.yaml", "a.json"), "d")},
    )
    paths = mounted_paths(rendered)
    assert paths["specs/vendor/a.json"] == ("big-specs", "a.json")
    assert paths["specs/vendor/b.yaml"] == ("big-specs", "b.yaml")


def test_file_names_that_are_not_config_map_keys_are_mapped_and_mounted_by_real_name() -> None:
    rendered = render(make_workflow(files=[{"path": "specs/my api.yaml", "content": "x"}]))
    config_map, key = mounted_paths(rendered)["specs/my api.yaml"]
    assert config_map == "hello-files-specs"
    assert key == config_map_key("specs/my api.yaml")
    assert " " not in key
    assert by_name(rendered)[f"ConfigMap/{config_map}"]["data"][key] == "x"


def test_a_folder_over_one_mebibyte_is_split_over_config_maps() -> None:
    chunk = "x" * 400_000
    files = [{"path": f"specs/part-{i}.yaml", "content": chunk} for i in range(5)]
    rendered = render(make_workflow(files=files))
    spec_maps = [name for name in by_name(rendered) if "hello-files-specs" in name]
    assert spec_maps == [
        "ConfigMap/hello-files-specs",
        f"ConfigMap/hello-files-specs-2-{short_hash('specs#2', 6)}",
        f"ConfigMap/hello-files-specs-3-{short_hash('specs#3', 6)}",
    ]
    for name in spec_maps:
        data = by_name(rendered)[name]["data"]
        assert sum(len(v) + len(k) for k, v in data.items()) <= CONFIG_MAP_BUDGET
    assert {path for path in mounted_paths(rendered) if path.startswith("specs/")} == {
        f"specs/part-{i}.yaml" for i in range(5)
    }


def test_a_single_file_over_the_limit_is_refused_with_its_name() -> None:
    # The schema lets a file reach the budget; with its key it no longer fits one ConfigMap.
    workflow = make_workflow(files=[{"path": "specs/huge.json", "content": "x" * 999_999}])
    result = render_workflow(RenderInput(workflow=workflow, workflow_id="hello"))
    assert isinstance(result, FileTooLarge)
    assert "specs/huge.json" in result.message


@pytest.mark.parametrize(
    ("base", "suffixes", "expected"),
    [
        ("hello", ("props",), "hello-props"),
        ("a" * 49, ("managed-props",), "a" * 49 + "-managed-props"),
    ],
)
def test_child_names_fit_when_short(base: str, suffixes: tuple[str, ...], expected: str) -> None:
    assert child_name(base, *suffixes) == expected


def test_long_child_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    first = child_name("a" * 49, "files", "specs-with-a-very-long-folder-name-one")
    second = child_name("a" * 49, "files", "specs-with-a-very-long-folder-name-two")
    assert len(first) == len(second) == 63
    assert first != second


def test_folders_whose_names_slug_alike_get_config_maps_of_their_own() -> None:
    folders = ["a_b", "a-b", "A.B", "sub/deep", "sub-deep", "specs", "specs-2"]
    files = [{"path": f"{folder}/x.json", "content": folder} for folder in folders]
    files += [{"path": f"specs/big-{i}.yaml", "content": "y" * 400_000} for i in range(3)]
    rendered = render(make_workflow(files=files))
    names = [c["metadata"]["name"] for c in rendered.children if c["kind"] == "ConfigMap"]
    assert len(names) == len(set(names))
    paths = mounted_paths(rendered)
    for folder in folders:
        config_map, key = paths[f"{folder}/x.json"]
        assert by_name(rendered)[f"ConfigMap/{config_map}"]["data"][key] == folder


def test_rendering_is_deterministic() -> None:
    workflow = make_workflow(files=[{"path": f"s/{i}.json", "content": str(i)} for i in range(20)])
    assert render(workflow).children == render(workflow).children


# -- what a ConfigMap can hold -----------------------------------------------------------------


def big_definition(items: int) -> dict[str, Any]:
    """A valid definition whose indented JSON is about four times its compact JSON."""
    data = {"rows": [{"a": [1]} for _ in range(items)]}
    return {**DEFINITION, "states": [{**DEFINITION["states"][0], "data": data}]}


def with_definition(definition: dict[str, Any], **spec: Any) -> Workflow:
    workflow = make_workflow(**spec)
    return workflow.model_copy(
        update={"spec": workflow.spec.model_copy(update={"definition": definition})}
    )


def test_a_definition_is_indented_when_that_fits_and_compact_when_only_that_fits() -> None:
    small = by_name(render(make_workflow()))["ConfigMap/hello-definition"]["data"]
    assert small["hello.sw.json"] == json.dumps(DEFINITION, indent=2)

    definition = big_definition(60_000)
    assert len(json.dumps(definition, indent=2)) > CONFIG_MAP_BUDGET
    rendered = render(with_definition(definition))
    data = by_name(rendered)["ConfigMap/hello-definition"]["data"]
    assert data_size(data) <= CONFIG_MAP_BUDGET
    assert json.loads(data["hello.sw.json"]) == definition
    assert "\n" not in data["hello.sw.json"]


@pytest.mark.parametrize(
    ("workflow", "inherited", "path", "source"),
    [
        (
            with_definition(big_definition(130_000)),
            None,
            "hello.sw.json",
            "spec.definition, as JSON",
        ),
        # The schema bounds spec.properties in characters; the API server counts bytes.
        (
            make_workflow(properties="é" * 600_000),
            None,
            "application.properties",
            "spec.properties",
        ),
        (
            make_workflow(properties="a=" + "b" * 600_000),
            "c=" + "d" * 600_000,
            "application.properties",
            "spec.properties after the installation's spec.workflowDefaults.properties",
        ),
    ],
    ids=["definition", "multibyte properties", "inherited and own properties"],
)
def test_a_config_map_over_the_limit_is_refused_before_anything_is_applied(
    workflow: Workflow, inherited: str | None, path: str, source: str
) -> None:
    result = render_workflow(
        RenderInput(workflow=workflow, workflow_id="hello", inherited_properties=inherited)
    )
    assert isinstance(result, FileTooLarge)
    assert (result.path, result.source) == (path, source)
    assert result.size > CONFIG_MAP_BUDGET
    assert f"file {path!r} ({source}) holds {result.size} bytes" in result.message


def test_gitops_mounts_no_definition_so_a_large_one_is_no_problem() -> None:
    workflow = with_definition(
        big_definition(130_000), profile="gitops", image="registry.example/hello:1"
    )
    assert "ConfigMap/hello-definition" not in by_name(render(workflow))


# -- environment variables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("QUARKUS_HTTP_PORT", "quarkus.http.port"),
        ("quarkus_http_host", "quarkus.http.host"),
        ("quarkus.http.port", "quarkus.http.port"),
        ("Kogito_Service_Url", "kogito.service.url"),
        ("_DEV_QUARKUS_HTTP_PORT", "quarkus.http.port"),
        ("_PROD_KOGITO_SERVICE_URL", "kogito.service.url"),
        ("QUARKUS_DEVSERVICES_ENABLED", "quarkus.devservices.enabled"),
        ("QUARKUS_HTTP_PORTS", None),
        ("MY_QUARKUS_HTTP_PORT", None),
        ("QUARKUS_LOG_LEVEL", None),
    ],
)
def test_environment_variables_that_set_a_managed_key(variable: str, key: str | None) -> None:
    managed = ["quarkus.http.port", "quarkus.http.host", "kogito.service.url"]
    managed.append("quarkus.devservices.enabled")
    assert managed_env_key(variable, managed) == key


def test_environment_variables_cannot_set_a_managed_key() -> None:
    workflow = make_workflow(
        secrets=[
            {"secretName": "tokens", "keys": ["TOKEN", "QUARKUS_HTTP_HOST"]},
            {"secretName": "whole"},
        ],
        podTemplate={
            "env": [
                {"name": "QUARKUS_HTTP_PORT", "value": "9999"},
                {"name": "QUARKUS_LOG_LEVEL", "value": "DEBUG"},
            ]
        },
    )
    secrets = {
        "tokens": ConsumedSecret("tokens", frozenset({"TOKEN", "QUARKUS_HTTP_HOST"}), "1"),
        "whole": ConsumedSecret("whole", frozenset({"KOGITO_SERVICE_URL", "API_KEY"}), "2"),
    }
    container = deployment(render(workflow, secrets=secrets))["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["env"] == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "TOKEN"}}},
        {"name": "QUARKUS_LOG_LEVEL", "value": "DEBUG"},
        # The whole Secret still comes through envFrom; the container's own variable wins.
        {"name": "KOGITO_SERVICE_URL", "value": "http://hello.team-a"},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "whole"}}]
    assert managed_overrides(
        RenderInput(workflow=workflow, workflow_id="hello", secrets=secrets)
    ) == [
        ManagedOverride("QUARKUS_HTTP_PORT", "spec.podTemplate.env"),
        ManagedOverride("QUARKUS_HTTP_HOST", "Secret 'tokens' (spec.secrets)"),
        ManagedOverride("KOGITO_SERVICE_URL", "Secret 'whole' (spec.secrets)"),
    ]


def test_installation_properties_that_set_a_managed_key_are_named_with_their_source() -> None:
    given = RenderInput(
        workflow=make_workflow(properties="quarkus.http.host=127.0.0.1\n"),
        workflow_id="hello",
        inherited_properties="quarkus.http.host=10.0.0.1\nquarkus.http.port=1\nteam=a\n",
    )
    installation = "the installation's spec.workflowDefaults.properties"
    assert managed_overrides(given) == [
        ManagedOverride("quarkus.http.host", installation),
        ManagedOverride("quarkus.http.port", installation),
        ManagedOverride("quarkus.http.host", "spec.properties"),
    ]


def test_checksum_follows_values_that_env_reads() -> None:
    workflow = make_workflow(
        podTemplate={
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
                {
                    "name": "REGION",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}},
                },
            ]
        }
    )
    api = ConsumedSecret("api", frozenset({"token"}), "10")
    settings = ConsumedConfigMap("settings", ("region", "other"), "all-1", {"region": "r-1"})

    def checksum(secret: ConsumedSecret, config_map: ConsumedConfigMap) -> str:
        rendered = render(workflow, secrets={"api": secret}, config_maps={"settings": config_map})
        return rendered.checksum

    original = checksum(api, settings)
    assert checksum(ConsumedSecret("api", api.keys, "11"), settings) != original
    assert (
        checksum(api, ConsumedConfigMap("settings", settings.keys, "all-1", {"region": "r-2"}))
        != original
    )
    # The digest of the whole ConfigMap is for mounted files: env reads one key only.
    assert (
        checksum(api, ConsumedConfigMap("settings", settings.keys, "all-2", {"region": "r-1"}))
        == original
    )
