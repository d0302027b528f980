"""An OrchestratorInstance on a real API server: its services, its persistence, the Workflows
linked to it, and the run figures its Data Index reports.

No pod serves in this cluster (kwok runs none), so the operator's calls to in-cluster services
reach the session's stand-in instead (`standin` fixture): one Data Index and one runtime per
namespace and Service name, seeded here with the runs each test needs.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.kube import TEST_LABEL, Cluster, gone, wait_for
from helpers.operator_process import OperatorProcess
from integration.conftest import DATA_INDEX_POLL_SECONDS, OPERATOR_USER
from orchestrator_operator.definition.folder import load_workflow_folder
from orchestrator_operator.render.folder import workflow_manifest
from standins.data_index import DataIndex, StandIn

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
GROUP, VERSION = "orchestrator.dev", "v1alpha1"
INSTALLATIONS, WORKFLOWS = "orchestratorinstances", "workflows"
NAME = "orch"
DATA_INDEX_SERVICE = "orch-data-index-service"
CHECKSUM = "orchestrator.dev/checksum"
POSTGRES = {"postgresql": {"serviceRef": {"name": "pg"}, "secretRef": {"name": "pg-credentials"}}}

pytestmark = pytest.mark.usefixtures("operator")


# -- helpers -------------------------------------------------------------------------------------


def objects(k8s: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s)


def create_installation(k8s: ApiClient, namespace: str, **spec: Any) -> None:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": spec,
    }
    objects(k8s).create_namespaced_custom_object(GROUP, VERSION, namespace, INSTALLATIONS, manifest)


def installation(k8s: ApiClient, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = objects(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, INSTALLATIONS, NAME
    )
    return found


def create_workflow(
    k8s: ApiClient, namespace: str, installation_namespace: str | None = None
) -> dict[str, Any]:
    manifest = workflow_manifest(load_workflow_folder(FIXTURES / "greeting"), namespace=namespace)
    manifest["spec"]["installationRef"] = {"name": NAME}
    if installation_namespace:
        manifest["spec"]["installationRef"]["namespace"] = installation_namespace
    created: dict[str, Any] = objects(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, WORKFLOWS, manifest
    )
    return created


def workflow(k8s: ApiClient, namespace: str, name: str = "greeting") -> dict[str, Any]:
    found: dict[str, Any] = objects(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, WORKFLOWS, name
    )
    return found


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (resource.get("status") or {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def wait_condition(
    read: Any, kind: str, status: str, reason: str | None = None, timeout: float = 90
) -> dict[str, Any]:
    """Wait until the object `read()` returns has condition `kind` at `status` (and `reason`)
    for its current generation."""

    def matches() -> dict[str, Any] | None:
        resource: dict[str, Any] = read()
        found = condition(resource, kind)
        if (
            found.get("status") == status
            and (reason is None or found.get("reason") == reason)
            and (resource.get("status") or {}).get("observedGeneration")
            == resource["metadata"]["generation"]
        ):
            return resource
        return None

    return wait_for(matches, timeout=timeout, message=f"{kind}={status} ({reason})")


def managed_properties(k8s: ApiClient, namespace: str) -> str:
    config_map = client.CoreV1Api(k8s).read_namespaced_config_map(
        "greeting-managed-props", namespace
    )
    return str(config_map.data["application-dev.properties"])


def checksum_of(k8s: ApiClient, namespace: str, name: str) -> str:
    deployment = client.AppsV1Api(k8s).read_namespaced_deployment(name, namespace)
    return str(deployment.spec.template.metadata.annotations[CHECKSUM])


def seeded_data_index(standin: StandIn, namespace: str) -> DataIndex:
    """The namespace's Data Index with runs of `greeting`, and a runtime that serves it."""
    index = standin.data_index(namespace, DATA_INDEX_SERVICE)
    index.register("greeting", f"http://greeting.{namespace}")
    day = datetime(2026, 6, 1, tzinfo=UTC)
    index.add_runs("greeting", "ACTIVE", 2, start=day)
    index.add_runs("greeting", "COMPLETED", 3, start=day + timedelta(hours=1))
    index.add_runs("greeting", "ERROR", 1, start=day + timedelta(hours=2))
    standin.runtime(namespace, "greeting").workflow_ids.add("greeting")
    return index


def counts_are(expected: dict[str, int]) -> Any:
    def check(resource: dict[str, Any]) -> bool:
        runs = (resource.get("status") or {}).get("runs") or {}
        return bool(runs.get("counts") == expected)

    return check


EXPECTED = {"pending": 0, "active": 2, "completed": 3, "aborted": 0, "suspended": 0, "error": 1}


# -- tests ---------------------------------------------------------------------------------------


def test_database_credentials_reach_the_services_only_as_secret_references(
    k8s: ApiClient, namespace: str, standin: StandIn, operator: OperatorProcess
) -> None:
    user, password = f"user-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pg-credentials"),
            string_data={"POSTGRESQL_USER": user, "POSTGRESQL_PASSWORD": password},
        ),
    )
    standin.data_index(namespace, DATA_INDEX_SERVICE)
    create_installation(
        k8s, namespace, dataIndex={"persistence": POSTGRES}, jobsService={"persistence": POSTGRES}
    )

    ready = wait_condition(lambda: installation(k8s, namespace), "Ready", "True")
    assert condition(ready, "PersistenceReady")["reason"] == "CredentialsFound"
    assert ready["status"]["endpoints"]["dataIndex"] == f"http://{DATA_INDEX_SERVICE}.{namespace}"

    apps = client.AppsV1Api(k8s)
    for name in (DATA_INDEX_SERVICE, "orch-jobs-service"):
        container = apps.read_namespaced_deployment(name, namespace).spec.template.spec.containers[
            0
        ]
        env = {item.name: item for item in container.env}
        for variable, key in (
            ("QUARKUS_DATASOURCE_USERNAME", "POSTGRESQL_USER"),
            ("QUARKUS_DATASOURCE_PASSWORD", "POSTGRESQL_PASSWORD"),
        ):
            reference = env[variable].value_from.secret_key_ref
            assert (reference.name, reference.key) == ("pg-credentials", key)
            assert env[variable].value is None
        assert env["QUARKUS_DATASOURCE_JDBC_URL"].value.startswith(
            f"jdbc:postgresql://pg.{namespace}:5432/sonataflow?currentSchema="
        )

    # Nothing the operator wrote or said holds a credential: ConfigMaps, annotations and
    # labels, Deployments, the installation and its status, Events, the operator's log.
    secrets = [user, password, base64.b64encode(password.encode()).decode()]
    texts = [json.dumps(installation(k8s, namespace)), operator.log()]
    for config_map in core.list_namespaced_config_map(namespace).items:
        texts.append(json.dumps(config_map.data))
        texts.append(json.dumps(config_map.metadata.annotations))
        texts.append(json.dumps(config_map.metadata.labels))
    for deployment in apps.list_namespaced_deployment(namespace).items:
        texts.append(json.dumps(k8s.sanitize_for_serialization(deployment)))
    texts += [event.message or "" for event in core.list_namespaced_event(namespace).items]
    for secret in secrets:
        assert not any(secret in text for text in texts)


def test_a_missing_secret_then_a_missing_key_are_named_and_hold_the_deployment(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    standin.data_index(namespace, DATA_INDEX_SERVICE)
    create_installation(
        k8s, namespace, dataIndex={"persistence": POSTGRES}, jobsService={"enabled": False}
    )
    read = lambda: installation(k8s, namespace)  # noqa: E731
    missing = wait_condition(read, "PersistenceReady", "False", "SecretNotFound")
    assert "Secret 'pg-credentials'" in condition(missing, "PersistenceReady")["message"]
    assert condition(missing, "Ready")["reason"] == "SecretNotFound"
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    assert gone(lambda: apps.read_namespaced_deployment(DATA_INDEX_SERVICE, namespace))
    assert core.read_namespaced_service(DATA_INDEX_SERVICE, namespace)

    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="pg-credentials"),
            string_data={"POSTGRESQL_USER": "flows"},
        ),
    )
    lacking = wait_condition(read, "PersistenceReady", "False", "SecretKeyMissing")
    assert "has no key 'POSTGRESQL_PASSWORD'" in condition(lacking, "PersistenceReady")["message"]

    core.patch_namespaced_secret(
        "pg-credentials", namespace, {"stringData": {"POSTGRESQL_PASSWORD": "secret"}}
    )
    wait_condition(read, "PersistenceReady", "True", "CredentialsFound")
    wait_for(
        lambda: apps.read_namespaced_deployment(DATA_INDEX_SERVICE, namespace),
        ignore=(ApiException,),
        message="the Data Index Deployment once its credentials exist",
    )
    wait_condition(read, "Ready", "True")


def test_a_linked_workflow_rolls_out_when_the_data_index_url_changes(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    seeded_data_index(standin, namespace)
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)

    wait_condition(lambda: workflow(k8s, namespace), "Ready", "True", timeout=120)
    in_cluster = f"http://{DATA_INDEX_SERVICE}.{namespace}"
    text = managed_properties(k8s, namespace)
    assert f"kogito.data-index.url={in_cluster}\n" in text
    assert (
        f"mp.messaging.outgoing.kogito-processinstances-events.url={in_cluster}/processes\n" in text
    )
    assert (
        f"mp.messaging.outgoing.kogito-processdefinitions-events.url={in_cluster}/definitions\n"
        in text
    )
    assert f"kogito.jobs-service.url=http://orch-jobs-service.{namespace}\n" in text
    backstage = client.CoreV1Api(k8s).read_namespaced_config_map("orch-backstage", namespace)
    assert in_cluster in backstage.data["app-config.orchestrator.yaml"]
    before = checksum_of(k8s, namespace, "greeting")

    external = f"{standin.url}/{namespace}/external-data-index"
    standin.data_index(namespace, "external-data-index").register("greeting")
    objects(k8s).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        INSTALLATIONS,
        NAME,
        {"spec": {"dataIndex": {"enabled": False, "externalUrl": external}}},
    )

    wait_for(
        lambda: f"kogito.data-index.url={external}\n" in managed_properties(k8s, namespace),
        message="the workflow's managed properties to name the new Data Index",
    )
    wait_for(
        lambda: checksum_of(k8s, namespace, "greeting") != before,
        message="a rollout of the linked workflow after the Data Index moved",
    )
    moved = wait_condition(lambda: installation(k8s, namespace), "Ready", "True")
    assert moved["status"]["endpoints"]["dataIndex"] == external
    assert condition(moved, "DataIndexReady")["reason"] == "External"
    apps = client.AppsV1Api(k8s)
    wait_for(
        lambda: gone(lambda: apps.read_namespaced_deployment(DATA_INDEX_SERVICE, namespace)),
        message="the Data Index it no longer deploys to be removed",
    )


def test_run_counts_last_run_and_availability_appear_on_the_workflow(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    index = seeded_data_index(standin, namespace)
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)

    linked = wait_for(
        lambda: counts_are(EXPECTED)(found := workflow(k8s, namespace)) and found,
        timeout=120,
        message="the run counts on the Workflow",
    )
    runs = linked["status"]["runs"]
    assert runs["registered"] is True
    assert runs["stale"] is False
    assert runs["lastRun"] == {
        "id": "greeting-error-5",
        "state": "ERROR",
        "start": "2026-06-01T02:00:00Z",
    }
    ready = wait_condition(lambda: workflow(k8s, namespace), "Ready", "True", timeout=120)
    assert (
        f"GET http://greeting.{namespace}/management/processes/greeting answered HTTP 200"
        in condition(ready, "Available")["message"]
    )

    totals = wait_for(
        lambda: (
            (installation(k8s, namespace)["status"].get("workflows") or {}).get("summary") == "1/1"
            and installation(k8s, namespace)
        ),
        message="the installation to count its linked, ready workflow",
    )
    assert totals["status"]["workflows"]["registered"] == 1
    assert totals["status"]["runs"]["completed"] == 3

    index.add_runs("greeting", "COMPLETED", 1, start=datetime(2026, 7, 1, tzinfo=UTC))
    moved_on = wait_for(
        lambda: (
            counts_are({**EXPECTED, "completed": 4})(found := workflow(k8s, namespace)) and found
        ),
        message="a new run to be counted",
    )
    assert moved_on["status"]["runs"]["lastRun"]["state"] == "COMPLETED"

    standin.runtime(namespace, "greeting").workflow_ids.clear()
    unavailable = wait_condition(
        lambda: workflow(k8s, namespace), "Available", "False", "ProcessNotServed"
    )
    assert "answered HTTP 404" in condition(unavailable, "Available")["message"]


def test_a_failing_data_index_keeps_the_last_figures_marked_stale(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    index = seeded_data_index(standin, namespace)
    runtime = standin.runtime(namespace, "greeting")
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)
    fresh = wait_for(
        lambda: counts_are(EXPECTED)(found := workflow(k8s, namespace)) and found,
        timeout=120,
        message="the run counts on the Workflow",
    )
    totals = wait_for(
        lambda: (found := installation(k8s, namespace))["status"].get("runs") and found,
        message="the installation's run totals",
    )

    index.failing = 503
    down = wait_condition(
        lambda: installation(k8s, namespace), "DataIndexReachable", "False", "DataIndexError"
    )
    assert "HTTP 503" in condition(down, "DataIndexReachable")["message"]
    stale = wait_for(
        lambda: (found := workflow(k8s, namespace))["status"]["runs"]["stale"] and found,
        message="the Workflow's figures to be marked stale",
    )
    assert stale["status"]["runs"] == {**fresh["status"]["runs"], "stale": True}
    stale_totals = wait_for(
        lambda: (found := installation(k8s, namespace))["status"]["runs"]["stale"] and found,
        message="the installation's totals to be marked stale",
    )
    assert stale_totals["status"]["runs"] == {**totals["status"]["runs"], "stale": True}
    assert stale_totals["status"]["runsChangedAt"] == totals["status"]["runsChangedAt"]

    # No hot loop: the runtime is probed every poll interval all through the outage, while the
    # Data Index is asked after a doubling delay, a few times only.
    requests, probes = index.requests, runtime.probes
    wait_for(
        lambda: runtime.probes >= probes + 8,
        timeout=8 * DATA_INDEX_POLL_SECONDS * 6,
        message="eight more probes of the runtime during the outage",
    )
    assert index.requests - requests <= 4, index.requests - requests

    index.failing = None
    wait_condition(lambda: installation(k8s, namespace), "DataIndexReachable", "True")
    wait_for(
        lambda: workflow(k8s, namespace)["status"]["runs"] == fresh["status"]["runs"],
        timeout=120,
        message="the same figures, fresh, once the Data Index answers again",
    )


def test_figures_stay_stale_when_the_installation_stops_deploying_its_data_index(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    seeded_data_index(standin, namespace)
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)
    fresh = wait_for(
        lambda: counts_are(EXPECTED)(found := workflow(k8s, namespace)) and found,
        timeout=120,
        message="the run counts on the Workflow",
    )
    wait_for(
        lambda: installation(k8s, namespace)["status"].get("runs"),
        message="the installation's run totals",
    )

    objects(k8s).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, INSTALLATIONS, NAME, {"spec": {"dataIndex": {"enabled": False}}}
    )
    stale = wait_for(
        lambda: (found := workflow(k8s, namespace))["status"]["runs"]["stale"] and found,
        message="the Workflow's figures to be marked stale",
    )
    assert stale["status"]["runs"] == {**fresh["status"]["runs"], "stale": True}
    totals = wait_for(
        lambda: (found := installation(k8s, namespace))["status"]["runs"]["stale"] and found,
        message="the installation's totals to be marked stale",
    )
    assert totals["status"]["runs"]["completed"] == 3
    assert "dataIndex" not in totals["status"]["endpoints"]


def test_five_thousand_runs_cost_one_query_per_poll(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    index = standin.data_index(namespace, DATA_INDEX_SERVICE)
    index.register("greeting")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for state, count in (("COMPLETED", 3000), ("ACTIVE", 1000), ("ERROR", 600), ("ABORTED", 400)):
        index.add_runs("greeting", state, count, start=start, step=timedelta(seconds=7))
    latest = index.add_runs("greeting", "SUSPENDED", 1, start=datetime(2027, 1, 1, tzinfo=UTC))
    standin.runtime(namespace, "greeting").workflow_ids.add("greeting")
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)

    expected = {
        "pending": 0,
        "active": 1000,
        "completed": 3000,
        "aborted": 400,
        "suspended": 1,
        "error": 600,
    }
    found = wait_for(
        lambda: counts_are(expected)(found := workflow(k8s, namespace)) and found,
        timeout=120,
        message="the counts of 5001 runs on the Workflow",
    )
    assert found["status"]["runs"]["lastRun"] == {
        "id": latest[0],
        "state": "SUSPENDED",
        "start": "2027-01-01T00:00:00Z",
    }

    polls = 5
    before = index.requests
    wait_for(
        lambda: index.requests >= before + polls,
        timeout=polls * DATA_INDEX_POLL_SECONDS * 6,
        message=f"{polls} more polls of the Data Index",
    )
    # One request per poll: requests arrive a poll interval apart, never in bursts.
    arrivals = index.arrivals[before : before + polls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= DATA_INDEX_POLL_SECONDS * 0.6, gaps
    assert index.rejected == 0
    assert all("pagination: {limit: 1}" in document for document in index.documents[-polls:])


def test_links_are_refused_until_the_installation_exists_and_admits_the_namespace(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    core = client.CoreV1Api(k8s)
    other = f"{namespace[:50]}-b"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=other, labels={TEST_LABEL: "installation-tests"})
        )
    )
    try:
        standin.data_index(namespace, DATA_INDEX_SERVICE).register("greeting")
        standin.runtime(other, "greeting").workflow_ids.add("greeting")
        create_workflow(k8s, other, installation_namespace=namespace)
        read = lambda: workflow(k8s, other)  # noqa: E731
        missing = wait_condition(read, "DependenciesResolved", "False", "InstallationNotFound")
        assert f"namespace {namespace!r}" in condition(missing, "DependenciesResolved")["message"]

        create_installation(k8s, namespace)
        refused = wait_condition(read, "DependenciesResolved", "False", "InstallationNotAllowed")
        assert "spec.workflowNamespaces" in condition(refused, "DependenciesResolved")["message"]

        objects(k8s).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            INSTALLATIONS,
            NAME,
            {"spec": {"workflowNamespaces": [other]}},
        )
        wait_condition(read, "Ready", "True", timeout=120)
        assert f"kogito.data-index.url=http://{DATA_INDEX_SERVICE}.{namespace}\n" in (
            managed_properties(k8s, other)
        )
    finally:
        core.delete_namespace(other)


def test_polling_an_unchanged_data_index_writes_nothing(
    k8s: ApiClient, namespace: str, standin: StandIn, control_plane: Cluster
) -> None:
    plane = control_plane.require_local()
    index = seeded_data_index(standin, namespace)
    create_installation(k8s, namespace)
    create_workflow(k8s, namespace)
    wait_condition(lambda: workflow(k8s, namespace), "Ready", "True", timeout=120)
    wait_for(
        lambda: (
            counts_are(EXPECTED)(workflow(k8s, namespace))
            and installation(k8s, namespace)["status"].get("workflows", {}).get("summary") == "1/1"
        ),
        message="the figures on the Workflow and the installation",
    )
    # Let the last status writes and watch events settle before counting.
    time.sleep(2)
    plane.sync_audit()
    mark = plane.audit.mark()
    before = index.requests

    wait_for(
        lambda: index.requests >= before + 4,
        timeout=4 * DATA_INDEX_POLL_SECONDS * 6,
        message="four more polls",
    )
    writes = plane.count_requests(
        since=mark,
        namespace=namespace,
        user=OPERATOR_USER,
        verbs=("create", "update", "patch", "delete"),
    )
    assert writes == 0


def test_network_policies_admit_the_expected_namespaces_to_each_service(
    k8s: ApiClient, namespace: str, standin: StandIn
) -> None:
    standin.data_index(namespace, DATA_INDEX_SERVICE)
    create_installation(
        k8s,
        namespace,
        workflowNamespaces=["team-a"],
        networkPolicies={
            "enabled": True,
            "backstageNamespace": "rhdh",
            "extraNamespaces": ["monitoring"],
        },
    )
    networking, apps = client.NetworkingV1Api(k8s), client.AppsV1Api(k8s)

    def policies() -> dict[str, Any] | None:
        found = {
            p.metadata.name: p for p in networking.list_namespaced_network_policy(namespace).items
        }
        return found if len(found) == 2 else None

    by_name = wait_for(policies, message="a NetworkPolicy for each service")
    # The operator's own namespace is admitted to the Data Index, which it polls; here it runs
    # outside the cluster, in no namespace, unless the environment names one.
    operator_namespace = os.environ.get("ORCHESTRATOR_OPERATOR_NAMESPACE") or os.environ.get(
        "POD_NAMESPACE"
    )
    admitted = {namespace, "team-a", "monitoring"}
    expected = {
        DATA_INDEX_SERVICE: sorted(admitted | {"rhdh"} | {operator_namespace} - {None}),
        "orch-jobs-service": sorted(admitted),
    }
    # The Deployments are applied after the objects they use, NetworkPolicies included.
    templates = {
        name: wait_for(
            lambda name=name: apps.read_namespaced_deployment(name, namespace),
            message=f"Deployment {name}",
            ignore=(ApiException,),
        ).spec.template.metadata.labels
        for name in expected
    }
    for name, namespaces in expected.items():
        policy = by_name[name]
        assert [(o.kind, o.name) for o in policy.metadata.owner_references] == [
            ("OrchestratorInstance", NAME)
        ]
        selector = policy.spec.pod_selector.match_labels
        # It selects the pods of its own service, and not those of the other one.
        for other, labels in templates.items():
            assert (selector.items() <= labels.items()) is (other == name), (name, other)
        assert policy.spec.policy_types == ["Ingress"]
        (rule,) = policy.spec.ingress
        assert [(port.protocol, port.port) for port in rule.ports] == [("TCP", 8080)]
        (peer,) = rule._from
        assert peer.pod_selector is None
        (expression,) = peer.namespace_selector.match_expressions
        assert (expression.key, expression.operator) == ("kubernetes.io/metadata.name", "In")
        assert expression.values == namespaces

    objects(k8s).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        INSTALLATIONS,
        NAME,
        {"spec": {"networkPolicies": {"enabled": False}}},
    )
    wait_for(
        lambda: not networking.list_namespaced_network_policy(namespace).items,
        message="the NetworkPolicies to be removed once turned off",
    )


def test_the_api_server_refuses_what_the_schema_can_say(k8s: ApiClient, namespace: str) -> None:
    def refused(name: str = NAME, **spec: Any) -> str:
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "OrchestratorInstance",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        with pytest.raises(ApiException) as error:
            objects(k8s).create_namespaced_custom_object(
                GROUP, VERSION, namespace, INSTALLATIONS, manifest
            )
        assert error.value.status == 422
        return str(error.value.body)

    assert "at most 38 characters" in refused(name="o" * 39)
    assert "set enabled to false" in refused(dataIndex={"externalUrl": "http://di.example"})
    assert "list it alone" in refused(workflowNamespaces=["*", "team-a"])
    assert "backstageNamespace" in refused(networkPolicies={"enabled": True})
    assert "http:// or https://" in refused(dataIndex={"enabled": False, "externalUrl": "ftp://di"})
    with_password = refused(
        jobsService={"enabled": False, "externalUrl": "https://operator:hunter2@js.example"}
    )
    assert "must not hold a user name or password" in with_password
