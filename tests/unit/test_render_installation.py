"""What an OrchestratorInstance becomes, read like the manifests themselves."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orchestrator_operator.models.installation import Installation, InstallationSpec
from orchestrator_operator.render.installation import (
    BACKSTAGE_FILE,
    InstallationInput,
    RenderedInstallation,
    render_installation,
)
from orchestrator_operator.render.names import CHECKSUM_ANNOTATION
from orchestrator_operator.render.workflow import ConsumedSecret

POSTGRES = {
    "postgresql": {
        "serviceRef": {"name": "pg", "namespace": "databases", "database": "flows"},
        "secretRef": {"name": "pg-credentials", "userKey": "user", "passwordKey": "password"},
    }
}


def make(name: str = "orch", namespace: str = "sonataflow", **spec: Any) -> Installation:
    return Installation(
        name=name,
        namespace=namespace,
        uid="7d1c0a4e-0000-4000-8000-000000000001",
        generation=2,
        spec=InstallationSpec.model_validate(spec),
    )


def render(installation: Installation, **given: Any) -> RenderedInstallation:
    return render_installation(InstallationInput(installation=installation, **given))


def by_name(rendered: RenderedInstallation) -> dict[str, dict[str, Any]]:
    return {f"{c['kind']}/{c['metadata']['name']}": c for c in rendered.children}


def container(rendered: RenderedInstallation, deployment: str) -> dict[str, Any]:
    pod = by_name(rendered)[f"Deployment/{deployment}"]["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def env_of(rendered: RenderedInstallation, deployment: str) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom"))
        for item in container(rendered, deployment)["env"]
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {},
            [
                "ConfigMap/orch-backstage",
                "ConfigMap/orch-data-index-service-props",
                "ConfigMap/orch-jobs-service-props",
                "Deployment/orch-data-index-service",
                "Deployment/orch-jobs-service",
                "Service/orch-data-index-service",
                "Service/orch-jobs-service",
            ],
        ),
        (
            {"jobsService": {"enabled": False}, "backstage": {"configMapName": "rhdh-orch"}},
            [
                "ConfigMap/orch-data-index-service-props",
                "ConfigMap/rhdh-orch",
                "Deployment/orch-data-index-service",
                "Service/orch-data-index-service",
            ],
        ),
        (
            {
                "dataIndex": {"enabled": False, "externalUrl": "http://di.shared:8080/"},
                "jobsService": {"enabled": False},
            },
            ["ConfigMap/orch-backstage"],
        ),
        ({"dataIndex": {"enabled": False}, "jobsService": {"enabled": False}}, []),
        (
            {"networkPolicies": {"enabled": True, "backstageNamespace": "rhdh"}},
            [
                "ConfigMap/orch-backstage",
                "ConfigMap/orch-data-index-service-props",
                "ConfigMap/orch-jobs-service-props",
                "Deployment/orch-data-index-service",
                "Deployment/orch-jobs-service",
                "NetworkPolicy/orch-data-index-service",
                "NetworkPolicy/orch-jobs-service",
                "Service/orch-data-index-service",
                "Service/orch-jobs-service",
            ],
        ),
    ],
    ids=["defaults", "no-jobs-service", "external-data-index", "nothing", "network-policies"],
)
def test_children_follow_the_spec(spec: dict[str, Any], expected: list[str]) -> None:
    assert sorted(by_name(render(make(**spec)))) == expected


def test_endpoints_are_in_cluster_services_or_the_external_url() -> None:
    deployed = render(make()).endpoints
    assert deployed.data_index_url == "http://orch-data-index-service.sonataflow"
    assert deployed.jobs_service_url == "http://orch-jobs-service.sonataflow"
    external = render(
        make(dataIndex={"enabled": False, "externalUrl": "http://di.shared:8080/"})
    ).endpoints
    assert external.data_index_url == "http://di.shared:8080"


def test_service_maps_port_80_to_8080_and_selects_its_own_installation() -> None:
    service = by_name(render(make()))["Service/orch-data-index-service"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {
        "orchestrator.dev/installation": "orch",
        "app.kubernetes.io/component": "data-index",
    }


def test_two_installations_in_one_namespace_do_not_share_names_or_selectors() -> None:
    first, second = by_name(render(make("a"))), by_name(render(make("b")))
    assert not set(first) & set(second)
    assert (
        first["Service/a-data-index-service"]["spec"]["selector"]
        != second["Service/b-data-index-service"]["spec"]["selector"]
    )


@pytest.mark.parametrize(
    ("spec", "data_index_image", "jobs_service_image"),
    [
        (
            {},
            "docker.io/apache/incubator-kie-kogito-data-index-ephemeral:10.1.0",
            "docker.io/apache/incubator-kie-kogito-jobs-service-ephemeral:10.1.0",
        ),
        (
            {"dataIndex": {"persistence": POSTGRES}, "jobsService": {"persistence": POSTGRES}},
            "docker.io/apache/incubator-kie-kogito-data-index-postgresql:10.1.0",
            "docker.io/apache/incubator-kie-kogito-jobs-service-postgresql:10.1.0",
        ),
        (
            {"dataIndex": {"image": "registry.example/di:1"}},
            "registry.example/di:1",
            "docker.io/apache/incubator-kie-kogito-jobs-service-ephemeral:10.1.0",
        ),
    ],
    ids=["ephemeral", "postgresql", "own-image"],
)
def test_images_are_pinned_and_match_persistence(
    spec: dict[str, Any], data_index_image: str, jobs_service_image: str
) -> None:
    rendered = render(make(**spec))
    assert container(rendered, "orch-data-index-service")["image"] == data_index_image
    assert container(rendered, "orch-jobs-service")["image"] == jobs_service_image


def test_postgresql_credentials_are_secret_references_only() -> None:
    rendered = render(
        make(dataIndex={"persistence": POSTGRES}, jobsService={"persistence": POSTGRES})
    )
    env = env_of(rendered, "orch-data-index-service")
    assert env["QUARKUS_DATASOURCE_USERNAME"] == {
        "secretKeyRef": {"name": "pg-credentials", "key": "user"}
    }
    assert env["QUARKUS_DATASOURCE_PASSWORD"] == {
        "secretKeyRef": {"name": "pg-credentials", "key": "password"}
    }
    assert env["QUARKUS_DATASOURCE_JDBC_URL"] == (
        "jdbc:postgresql://pg.databases:5432/flows?currentSchema=orch-data-index-service"
    )
    assert env["KOGITO_DATA_INDEX_QUARKUS_PROFILE"] == "http-events-support"
    jobs = env_of(rendered, "orch-jobs-service")
    assert jobs["QUARKUS_DATASOURCE_PASSWORD"] == {
        "secretKeyRef": {"name": "pg-credentials", "key": "password"}
    }
    properties = by_name(rendered)["ConfigMap/orch-jobs-service-props"]["data"][
        "application.properties"
    ]
    assert (
        "quarkus.datasource.reactive.url=postgresql://pg.databases:5432/flows"
        "?search_path=orch-jobs-service\n" in properties
    )
    # The Secret is only ever named, and only by the Deployments' env.
    for child in rendered.children:
        if child["kind"] != "Deployment":
            assert "pg-credentials" not in yaml.safe_dump(child), child["metadata"]["name"]


def test_jobs_service_reports_to_the_data_index_and_runs_alone() -> None:
    rendered = render(make(dataIndex={"replicas": 3}))
    properties = by_name(rendered)["ConfigMap/orch-jobs-service-props"]["data"][
        "application.properties"
    ]
    assert (
        "mp.messaging.outgoing.kogito-job-service-job-status-events-http.url="
        "http://orch-data-index-service.sonataflow/jobs\n" in properties
    )
    assert "kogito.service.url=http://orch-jobs-service.sonataflow\n" in properties
    jobs = by_name(rendered)["Deployment/orch-jobs-service"]["spec"]
    assert jobs["replicas"] == 1
    assert jobs["strategy"] == {"type": "Recreate"}
    assert by_name(rendered)["Deployment/orch-data-index-service"]["spec"]["replicas"] == 3


def test_deployments_are_restricted_probed_and_mount_their_properties() -> None:
    rendered = render(make())
    for name in ("orch-data-index-service", "orch-jobs-service"):
        deployment = by_name(rendered)[f"Deployment/{name}"]
        pod = deployment["spec"]["template"]["spec"]
        main = pod["containers"][0]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        }
        assert main["readinessProbe"]["httpGet"]["path"] == "/q/health/ready"
        assert main["livenessProbe"]["httpGet"]["path"] == "/q/health/live"
        assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert main["volumeMounts"] == [
            {"name": "config", "mountPath": "/home/kogito/config", "readOnly": True}
        ]
        assert pod["volumes"][0]["configMap"]["name"] == f"{name}-props"
        assert main["resources"] == {
            "requests": {"cpu": "100m", "memory": "1Gi"},
            "limits": {"cpu": "200m", "memory": "1Gi"},
        }


def test_resources_given_in_the_spec_replace_the_defaults() -> None:
    given = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    rendered = render(make(dataIndex={"resources": given}))
    main = by_name(rendered)["Deployment/orch-data-index-service"]["spec"]["template"]["spec"]
    assert main["containers"][0]["resources"] == given
    jobs = by_name(rendered)["Deployment/orch-jobs-service"]["spec"]["template"]["spec"]
    assert jobs["containers"][0]["resources"]["limits"] == {"cpu": "200m", "memory": "1Gi"}


def test_every_child_is_owned_by_the_installation() -> None:
    installation = make(networkPolicies={"enabled": True, "backstageNamespace": "rhdh"})
    for child in render(installation).children:
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["kind"] == "OrchestratorInstance"
        assert owner["uid"] == installation.uid
        assert owner["controller"] is True
        assert child["metadata"]["labels"]["orchestrator.dev/installation"] == "orch"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
            "orchestrator-operator"
        )


def test_checksum_follows_the_properties_and_the_secret_version() -> None:
    installation = make(dataIndex={"persistence": POSTGRES})

    def checksum(installation: Installation, version: str = "1") -> str:
        secret = ConsumedSecret("pg-credentials", frozenset({"user", "password"}), version)
        rendered = render(installation, secrets={"pg-credentials": secret})
        template = by_name(rendered)["Deployment/orch-data-index-service"]["spec"]["template"]
        return str(template["metadata"]["annotations"][CHECKSUM_ANNOTATION])

    original = checksum(installation)
    assert checksum(installation) == original
    assert checksum(installation, version="2") != original
    renamed = make(name="orch", namespace="elsewhere", dataIndex={"persistence": POSTGRES})
    assert checksum(renamed) != original


def test_backstage_config_map_points_the_plugin_at_the_data_index() -> None:
    config_map = by_name(render(make()))["ConfigMap/orch-backstage"]
    app_config = yaml.safe_load(config_map["data"][BACKSTAGE_FILE])
    # The plugin's one required key; it reads each runtime's URL from the Data Index, and its
    # sonataFlowService section would start a dev-mode runtime inside Backstage.
    assert app_config == {
        "orchestrator": {"dataIndexService": {"url": "http://orch-data-index-service.sonataflow"}}
    }
    external = make(dataIndex={"enabled": False, "externalUrl": "http://di.example: 8080/a#b"})
    # A URL the schema would refuse still renders as one YAML string, not as YAML structure.
    text = by_name(render(external))["ConfigMap/orch-backstage"]["data"][BACKSTAGE_FILE]
    assert yaml.safe_load(text)["orchestrator"]["dataIndexService"]["url"] == (
        "http://di.example: 8080/a#b"
    )


@pytest.mark.parametrize(
    ("spec", "operator_namespace", "data_index", "jobs_service"),
    [
        (
            {"networkPolicies": {"enabled": True, "backstageNamespace": "rhdh"}},
            None,
            ["rhdh", "sonataflow"],
            ["sonataflow"],
        ),
        (
            {
                "workflowNamespaces": ["team-b", "team-a"],
                "networkPolicies": {
                    "enabled": True,
                    "backstageNamespace": "rhdh",
                    "extraNamespaces": ["monitoring"],
                },
            },
            "operators",
            ["monitoring", "operators", "rhdh", "sonataflow", "team-a", "team-b"],
            ["monitoring", "sonataflow", "team-a", "team-b"],
        ),
        (
            {
                "workflowNamespaces": ["*"],
                "networkPolicies": {"enabled": True, "backstageNamespace": "rhdh"},
            },
            None,
            None,
            None,
        ),
    ],
    ids=["own-and-backstage", "workflows-extra-operator", "every-namespace"],
)
def test_network_policies_admit_the_expected_namespaces_to_port_8080(
    spec: dict[str, Any],
    operator_namespace: str | None,
    data_index: list[str] | None,
    jobs_service: list[str] | None,
) -> None:
    rendered = by_name(render(make(**spec), operator_namespace=operator_namespace))
    for name, admitted in (
        ("orch-data-index-service", data_index),
        ("orch-jobs-service", jobs_service),
    ):
        policy = rendered[f"NetworkPolicy/{name}"]["spec"]
        (rule,) = policy["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
        (peer,) = rule["from"]
        if admitted is None:
            assert peer == {"namespaceSelector": {}}
        else:
            (expression,) = peer["namespaceSelector"]["matchExpressions"]
            assert expression["key"] == "kubernetes.io/metadata.name"
            assert expression["values"] == admitted
        assert policy["podSelector"]["matchLabels"]["orchestrator.dev/installation"] == "orch"


def test_every_child_name_fits_63_characters_at_the_longest_installation_name() -> None:
    longest = "a" + "b" * 37
    for child in render(make(name=longest)).children:
        assert len(child["metadata"]["name"]) <= 63, child["metadata"]["name"]
