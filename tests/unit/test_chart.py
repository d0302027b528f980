"""The Helm chart: lints clean, renders what a platform team expects, refuses what is wrong."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.helm import (
    CHART,
    KUBE_VERSION,
    ROOT,
    grants,
    helm,
    template,
    template_text,
)
from orchestrator_operator.config import OperatorConfig
from orchestrator_operator.models.manifests import crd_files

SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(documents, kind)
    return found


def operator_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(documents, "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


# -- lint and determinism ------------------------------------------------------------------------


def test_the_chart_lints_clean_in_strict_mode() -> None:
    completed = helm("lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.stem)
def test_the_chart_lints_clean_with_each_ci_values_file(values: Path) -> None:
    completed = helm(
        "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), "--values", str(values),
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    "values",
    [None, *(yaml.safe_load(path.read_text()) for path in CI_VALUES)],
    ids=["defaults", *(path.stem for path in CI_VALUES)],
)
def test_rendering_twice_gives_the_same_text(tmp_path: Path, values: dict[str, Any]) -> None:
    # Argo CD compares `helm template` output on every refresh; any randomness is drift.
    first = template_text(tmp_path, values).stdout
    second = template_text(tmp_path, values).stdout
    assert first == second


def test_the_plain_install_manifest_is_the_chart_rendered_with_defaults() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "render_install.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr


def test_the_plain_install_manifest_does_not_claim_helm_manages_it() -> None:
    documents = [
        doc for doc in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if doc
    ]
    labelled = [doc for doc in documents if doc["kind"] != "Namespace"]
    assert labelled
    for document in labelled:
        labels = document["metadata"]["labels"]
        assert "app.kubernetes.io/managed-by" not in labels, document["metadata"]["name"]
        assert labels["app.kubernetes.io/name"] == "orchestrator-operator"
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    assert (
        "app.kubernetes.io/managed-by" not in deployment["spec"]["template"]["metadata"]["labels"]
    )


# -- the values schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("imagee.tag=0.1.0", "imagee"),
        ("image.tagg=0.1.0", "tagg"),
        ("config.workerz=3", "workerz"),
        ("metrics.serviceMonitor.enable=true", "enable"),
        ("image.tag=latest", "/image/tag"),
        ("logFormat=yaml", "logFormat"),
        ("watchNamespaces[0]=Team_A", "watchNamespaces"),
        ("config.workers=0", "workers"),
    ],
)
def test_a_wrong_value_fails_the_rendering(tmp_path: Path, setting: str, complaint: str) -> None:
    completed = template_text(tmp_path, extra=["--set", setting], check=False)
    assert completed.returncode != 0, f"--set {setting} was accepted"
    assert complaint in completed.stderr


def _object_nodes(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            found.append((path, schema))
        for name, child in schema.get("properties", {}).items():
            found.extend(_object_nodes(child, f"{path}.{name}"))
        if isinstance(schema.get("items"), dict):
            found.extend(_object_nodes(schema["items"], f"{path}[]"))
    return found


def test_every_object_of_the_schema_refuses_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Kubernetes objects handed through to the pod spec as they are, and Helm's global.
    passed_through = {
        ".global",
        ".extraEnv[].valueFrom",
        ".extraVolumes[]",
        ".podSecurityContext.seccompProfile",
        ".podSecurityContext.seLinuxOptions",
        ".podSecurityContext.appArmorProfile",
        ".podSecurityContext.sysctls[]",
        ".podSecurityContext.windowsOptions",
        ".securityContext.seccompProfile",
        ".securityContext.seLinuxOptions",
        ".securityContext.appArmorProfile",
        ".securityContext.windowsOptions",
        ".affinity.nodeAffinity",
        ".affinity.podAffinity",
        ".affinity.podAntiAffinity",
    }
    loose = [
        path
        for path, node in _object_nodes(schema)
        if "additionalProperties" not in node and path not in passed_through
    ]
    assert loose == []
    assert schema["additionalProperties"] is False


def test_the_chart_defaults_are_the_operators_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    defaults = OperatorConfig()
    for key, value in values.items():
        field = "".join("_" + c.lower() if c.isupper() else c for c in key)
        expected = getattr(defaults, field)
        assert value == (expected if expected is not None else ""), key


def test_every_setting_of_the_operator_is_a_chart_value_or_known_to_be_left_out() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    in_chart = {"".join("_" + c.lower() if c.isupper() else c for c in key) for key in values}
    # For an operator running outside the cluster (development, the quick start, tests), or
    # set from the pod itself.
    left_out = {"service_url_override", "service_urls", "allow_file_sources", "operator_namespace"}
    fields = {f.name for f in dataclasses.fields(OperatorConfig)}
    assert fields - left_out == in_chart


# -- what the defaults render --------------------------------------------------------------------


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return template(tmp_path_factory.mktemp("defaults"))


def test_the_defaults_render_the_operator_its_rights_and_its_crds(
    defaults: list[dict[str, Any]],
) -> None:
    kinds = sorted(doc["kind"] for doc in defaults)
    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


def test_one_replica_replaced_by_recreate(defaults: list[dict[str, Any]]) -> None:
    spec = one(defaults, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_pod_meets_the_restricted_pod_security_standard(
    defaults: list[dict[str, Any]],
) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    container = operator_container(defaults)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_requests_and_a_memory_limit_are_set(defaults: list[dict[str, Any]]) -> None:
    resources = operator_container(defaults)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]


def test_probes_use_kopfs_liveness_and_the_metrics_servers_readiness(
    defaults: list[dict[str, Any]],
) -> None:
    container = operator_container(defaults)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert f"--liveness=http://0.0.0.0:{ports['http-health']}/healthz" in container["args"]
    assert f"--metrics-addr=0.0.0.0:{ports['http-metrics']}" in container["args"]
    assert "--log-format=json" in container["args"]


def test_the_image_is_the_app_version_never_latest(defaults: list[dict[str, Any]]) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(defaults)["image"] == f"orchestrator-operator:{app_version}"


def test_selectors_use_only_labels_that_never_change(defaults: list[dict[str, Any]]) -> None:
    deployment = one(defaults, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert set(selector) == SELECTOR_KEYS
    assert selector.items() <= pod_labels.items()
    assert one(defaults, "Service")["spec"]["selector"] == selector
    for document in defaults:
        labels = document["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/instance"] == "orchestrator-operator"


def test_the_metrics_service_points_at_the_metrics_port(defaults: list[dict[str, Any]]) -> None:
    (port,) = one(defaults, "Service")["spec"]["ports"]
    assert port["targetPort"] == "http-metrics"
    assert port["name"] == "http-metrics"


def test_every_namespaced_object_names_the_release_namespace(
    defaults: list[dict[str, Any]],
) -> None:
    for document in by_kind(defaults, "Deployment") + by_kind(defaults, "Service"):
        assert document["metadata"]["namespace"] == "orchestrator-system"
    assert one(defaults, "ServiceAccount")["metadata"]["namespace"] == "orchestrator-system"


def test_the_environment_carries_the_operators_settings(defaults: list[dict[str, Any]]) -> None:
    env = operator_container(defaults)["env"]
    environment = {e["name"]: e["value"] for e in env if "value" in e}
    from_pod = {e["name"]: e["valueFrom"] for e in env if "valueFrom" in e}

    assert OperatorConfig.from_environment(environment) == OperatorConfig()
    assert environment["HOME"] == "/tmp"
    assert from_pod == {
        "ORCHESTRATOR_OPERATOR_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}}
    }


def test_changed_settings_reach_the_operator(tmp_path: Path) -> None:
    config = {
        "fieldManager": "platform-operator",
        "devImage": "registry.example/sonataflow-devmode:10.1.0",
        "workers": 3,
        "resyncSeconds": 120,
        "requestTimeoutSeconds": 10,
        "dataIndexPollSeconds": 5,
        "gitTimeoutSeconds": 60,
        "gitConcurrency": 2,
        "gitCaFile": "/etc/git-ca/ca.crt",
        "probeRuntimes": False,
        "discoveryProcesses": 2,
    }
    documents = template(tmp_path, {"config": config})
    env = operator_container(documents)["env"]
    environment = {e["name"]: e["value"] for e in env if "value" in e}
    parsed = OperatorConfig.from_environment(environment)

    defaults = OperatorConfig()
    for key, value in config.items():
        field = "".join("_" + c.lower() if c.isupper() else c for c in key)
        assert getattr(parsed, field) == value, key
        assert getattr(defaults, field) != value, f"{key} is set to its default in this test"
    assert {f.name for f in dataclasses.fields(OperatorConfig)} >= {
        "".join("_" + c.lower() if c.isupper() else c for c in key) for key in config
    }


def test_an_image_digest_wins_over_the_tag(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    documents = template(
        tmp_path, {"image": {"repository": "registry.example/op", "digest": digest}}
    )
    assert operator_container(documents)["image"] == f"registry.example/op@{digest}"


# -- CRDs ----------------------------------------------------------------------------------------


def test_the_charts_copy_of_the_crds_is_the_generated_one() -> None:
    copies = {path.name: path.read_text() for path in (CHART / "files" / "crds").glob("*.yaml")}
    assert copies == crd_files(), "the chart's CRDs are stale: run hack/generate.py"


def test_the_rendered_crds_are_the_generated_ones_kept_on_uninstall(
    defaults: list[dict[str, Any]],
) -> None:
    generated = {crd["metadata"]["name"]: crd for crd in map(yaml.safe_load, crd_files().values())}
    rendered = {
        crd["metadata"]["name"]: crd for crd in by_kind(defaults, "CustomResourceDefinition")
    }

    assert rendered.keys() == generated.keys()
    for name, crd in rendered.items():
        assert crd["spec"] == generated[name]["spec"], name
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert generated[name]["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crds_can_be_left_out_or_not_kept_and_annotated(tmp_path: Path) -> None:
    without = template(tmp_path, {"crds": {"enabled": False, "keep": True}})
    assert by_kind(without, "CustomResourceDefinition") == []

    annotation = {"argocd.argoproj.io/sync-options": "ServerSideApply=true"}
    documents = template(
        tmp_path, {"crds": {"enabled": True, "keep": False, "annotations": annotation}}
    )
    for crd in by_kind(documents, "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"] == annotation


# -- RBAC ----------------------------------------------------------------------------------------


# What the rules must say whatever else they grant; that they grant what the operator uses, and
# nothing it does not, is shown by running it under them (tests/integration/test_chart_account.py).
DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): frozenset({"list", "watch"})}
NAMESPACES = {("", "namespaces"): frozenset({"list", "watch"})}


def check_namespaced_rules(rights: dict[tuple[str, str], frozenset[str]]) -> None:
    # Every write is a server-side apply (patch), a status merge patch, a delete or an Event.
    assert not any("update" in verbs for verbs in rights.values())
    assert rights[("", "secrets")] == frozenset({"get", "list", "watch"})
    assert rights[("orchestrator.dev", "orchestratorinstances")] <= {"get", "list", "watch"}
    assert rights[("", "events")] == frozenset({"create"})
    assert {group for group, _ in rights} <= {"", "apps", "networking.k8s.io", "orchestrator.dev"}


def test_cluster_mode_binds_the_same_rules_in_every_namespace(
    defaults: list[dict[str, Any]], tmp_path: Path
) -> None:
    roles = {role["metadata"]["name"]: role for role in by_kind(defaults, "ClusterRole")}
    rights = grants(roles["orchestrator-operator"]["rules"])
    check_namespaced_rules(rights)
    assert grants(roles["orchestrator-operator-discovery"]["rules"]) == DISCOVERY
    (namespaced_role,) = by_kind(template(tmp_path, {"watchNamespaces": ["team-a"]}), "Role")
    assert grants(namespaced_role["rules"]) == rights

    bindings = by_kind(defaults, "ClusterRoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == set(roles)
    for binding in bindings:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": "orchestrator-operator",
                "namespace": "orchestrator-system",
            }
        ]


def test_namespaced_mode_grants_rights_only_in_the_watched_namespaces(tmp_path: Path) -> None:
    documents = template(tmp_path, {"watchNamespaces": ["team-a", "team-b"]})

    (cluster_role,) = by_kind(documents, "ClusterRole")
    assert grants(cluster_role["rules"]) == {**DISCOVERY, **NAMESPACES}
    roles = by_kind(documents, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    for role in roles:
        check_namespaced_rules(grants(role["rules"]))
    bindings = by_kind(documents, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "orchestrator-operator",
        }
        assert binding["subjects"][0]["namespace"] == "orchestrator-system"

    args = operator_container(documents)["args"]
    assert [arg for arg in args if arg.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_rbac_can_be_left_to_the_platform_team(tmp_path: Path) -> None:
    documents = template(tmp_path, {"rbac": {"create": False}})
    kinds = {doc["kind"] for doc in documents}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


# -- metrics -------------------------------------------------------------------------------------


def test_no_service_monitor_unless_asked(defaults: list[dict[str, Any]]) -> None:
    assert by_kind(defaults, "ServiceMonitor") == []


def test_the_service_monitor_scrapes_the_metrics_service(tmp_path: Path) -> None:
    values = yaml.safe_load((CHART / "ci" / "service-monitor-values.yaml").read_text())
    documents = template(tmp_path, values)

    monitor = one(documents, "ServiceMonitor")
    service = one(documents, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["orchestrator-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_a_service_monitor_without_the_service_is_refused(tmp_path: Path) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    completed = template_text(tmp_path, values, check=False)
    assert completed.returncode != 0
    assert "metrics.service.enabled" in completed.stderr
