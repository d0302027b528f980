"""The chart, applied to a real API server: its objects are accepted, its pod passes the
restricted Pod Security Standard, its bindings give its ServiceAccount the rights its roles
list, where they should and nowhere else, and none of the rights an operator must never hold,
as the API server's own authorizer answers (SubjectAccessReview).

That the roles hold exactly what the operator uses is shown by running it under this account
(test_chart_account.py).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from helpers.helm import grants, template
from helpers.kube import TEST_LABEL, unique_name, wait_for

FIELD_MANAGER = "chart-test"
Rights = dict[tuple[str, str], frozenset[str]]
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

# Rights the operator does not need, in a namespace it serves: (group, resource, verb).
NEVER_IN_A_NAMESPACE = [
    # Wildcards, which a rule with "*" would answer yes to.
    ("*", "*", "*"),
    ("", "*", "get"),
    ("orchestrator.dev", "*", "delete"),
    ("", "configmaps", "*"),
    # Secrets are only read.
    ("", "secrets", "create"),
    ("", "secrets", "update"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
    ("", "secrets", "deletecollection"),
    # The installations belong to their users; only their status is written.
    ("orchestrator.dev", "orchestratorinstances", "create"),
    ("orchestrator.dev", "orchestratorinstances", "update"),
    ("orchestrator.dev", "orchestratorinstances", "patch"),
    ("orchestrator.dev", "orchestratorinstances", "delete"),
    ("orchestrator.dev", "orchestratorinstances", "deletecollection"),
    # Every write is a server-side apply, a status merge patch, a delete or a new Event.
    ("orchestrator.dev", "workflows", "update"),
    ("orchestrator.dev", "workflows/status", "update"),
    ("orchestrator.dev", "orchestratorinstances/status", "update"),
    ("", "configmaps", "update"),
    ("apps", "deployments", "update"),
    ("", "events", "patch"),
    ("events.k8s.io", "events", "create"),
    ("", "configmaps", "deletecollection"),
    ("", "pods", "create"),
    ("", "pods", "delete"),
    ("", "pods/exec", "create"),
    ("", "pods/log", "get"),
    ("", "serviceaccounts", "create"),
    ("", "serviceaccounts/token", "create"),
    ("", "persistentvolumeclaims", "create"),
    ("apps", "deployments/scale", "update"),
    ("apps", "statefulsets", "create"),
    ("batch", "jobs", "create"),
    ("coordination.k8s.io", "leases", "create"),
    ("rbac.authorization.k8s.io", "roles", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
]
# Rights the operator does not need across the cluster.
NEVER_IN_THE_CLUSTER = [
    ("*", "*", "*"),
    ("", "*", "list"),
    ("", "secrets", "patch"),
    ("", "namespaces", "create"),
    ("", "namespaces", "delete"),
    ("", "namespaces", "patch"),
    ("", "nodes", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "update"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "delete"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("rbac.authorization.k8s.io", "clusterroles", "escalate"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "create"),
]


class ServiceAccount:
    """Asks the API server what one ServiceAccount may do."""

    def __init__(self, k8s: ApiClient, namespace: str, name: str) -> None:
        self.api = client.AuthorizationV1Api(k8s)
        self.user = f"system:serviceaccount:{namespace}:{name}"
        self.groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]

    def can(self, verb: str, group: str, resource: str, namespace: str | None = None) -> bool:
        name, _, subresource = resource.partition("/")
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=self.user,
                groups=[*self.groups, "system:authenticated"],
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb,
                    group=group,
                    resource=name,
                    subresource=subresource or None,
                    namespace=namespace,
                ),
            )
        )
        answer = self.api.create_subject_access_review(review)
        return bool(answer.status.allowed)

    def refusals(self, rights: Rights, namespace: str | None) -> list[str]:
        """What of `rights` the account cannot do, as readable strings."""
        return [
            f"{verb} {group or 'core'}/{resource} in {namespace or 'the cluster'}"
            for (group, resource), verbs in sorted(rights.items())
            for verb in sorted(verbs)
            if not self.can(verb, group, resource, namespace)
        ]

    def grants(self, checks: list[tuple[str, str, str]], namespace: str | None) -> list[str]:
        """Which of the (group, resource, verb) checks the account can do."""
        return [
            f"{verb} {group or 'core'}/{resource} in {namespace or 'the cluster'}"
            for group, resource, verb in checks
            if self.can(verb, group, resource, namespace)
        ]


def rights_of(documents: list[dict[str, Any]], kind: str, name: str) -> Rights:
    """What the chart's roles of this kind and name grant (one Role per namespace, all alike)."""
    found = {
        frozenset(grants(doc["rules"]).items())
        for doc in documents
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    }
    (rights,) = found
    return dict(rights)


def apply_all(k8s: ApiClient, documents: list[dict[str, Any]]) -> None:
    """Server-side apply, as `kubectl apply --server-side` would. CRDs only in a dry run: the
    session's CRDs are already installed, and this test must not take them over."""
    resources = dynamic.DynamicClient(k8s).resources
    for document in documents:
        resource = resources.get(api_version=document["apiVersion"], kind=document["kind"])
        dry_run = "All" if document["kind"] == "CustomResourceDefinition" else None
        resource.server_side_apply(
            body=document,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            dry_run=dry_run,
        )


def delete_cluster_scoped(k8s: ApiClient, documents: list[dict[str, Any]]) -> None:
    resources = dynamic.DynamicClient(k8s).resources
    for document in documents:
        if document["kind"] in CLUSTER_SCOPED - {"CustomResourceDefinition"}:
            resource = resources.get(api_version=document["apiVersion"], kind=document["kind"])
            with contextlib.suppress(ApiException):
                resource.delete(name=document["metadata"]["name"])


@contextlib.contextmanager
def installed(k8s: ApiClient, documents: list[dict[str, Any]]) -> Iterator[None]:
    try:
        apply_all(k8s, documents)
        yield
    finally:
        delete_cluster_scoped(k8s, documents)


@pytest.fixture
def extra_namespaces(k8s: ApiClient, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    core = client.CoreV1Api(k8s)
    names = [unique_name(f"t-{prefix}", max_length=30) for prefix in ("team-a", "team-b", "other")]
    for name in names:
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=name, labels={TEST_LABEL: "chart-tests"})
            )
        )
    yield names
    for name in names:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name)


def wait_until_bound(account: ServiceAccount, namespace: str | None) -> None:
    # The authorizer reads bindings from a cache that trails the writes by a moment.
    wait_for(
        lambda: account.can("list", "", "configmaps", namespace),
        timeout=15,
        message="the operator's bindings to take effect",
    )


def test_cluster_mode_grants_the_roles_rights_everywhere_and_nothing_forbidden(
    k8s: ApiClient, namespace: str, tmp_path: Path
) -> None:
    release = unique_name("rbac-cluster", max_length=30)
    documents = template(tmp_path, release=release, namespace=namespace)
    fullname = f"{release}-orchestrator-operator"
    account = ServiceAccount(k8s, namespace, fullname)
    namespaced = rights_of(documents, "ClusterRole", fullname)
    discovery = rights_of(documents, "ClusterRole", f"{fullname}-discovery")

    with installed(k8s, documents):
        wait_until_bound(account, "any-namespace")

        assert account.refusals(namespaced, "any-namespace") == []
        assert account.refusals(namespaced, None) == []
        assert account.refusals(discovery, None) == []
        assert account.grants(NEVER_IN_A_NAMESPACE, "any-namespace") == []
        assert account.grants(NEVER_IN_THE_CLUSTER, None) == []
        # Serving every namespace, kopf has no namespaces to look for.
        assert account.grants([("", "namespaces", "list")], None) == []


def test_namespaced_mode_grants_rights_in_the_watched_namespaces_only(
    k8s: ApiClient, namespace: str, extra_namespaces: list[str], tmp_path: Path
) -> None:
    team_a, team_b, other = extra_namespaces
    release = unique_name("rbac-ns", max_length=30)
    documents = template(
        tmp_path, {"watchNamespaces": [team_a, team_b]}, release=release, namespace=namespace
    )
    fullname = f"{release}-orchestrator-operator"
    account = ServiceAccount(k8s, namespace, fullname)
    namespaced = rights_of(documents, "Role", fullname)
    discovery = rights_of(documents, "ClusterRole", f"{fullname}-discovery")

    with installed(k8s, documents):
        wait_until_bound(account, team_b)

        for watched in (team_a, team_b):
            assert account.refusals(namespaced, watched) == []
            assert account.grants(NEVER_IN_A_NAMESPACE, watched) == []
        assert account.refusals(discovery, None) == []
        assert ("", "namespaces") in discovery
        assert account.grants(NEVER_IN_THE_CLUSTER, None) == []

        # Not one of the operator's rights anywhere else: not in kube-system, not in its own
        # namespace, not in an unlisted one, not across the cluster.
        everything = [
            (group, resource, verb)
            for (group, resource), verbs in sorted(namespaced.items())
            for verb in sorted(verbs)
        ]
        for elsewhere in ("kube-system", namespace, other, None):
            assert account.grants(everything, elsewhere) == []


def test_the_operators_pod_passes_the_restricted_pod_security_standard(
    k8s: ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(k8s)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    documents = template(tmp_path, namespace=namespace)
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    # The pod names the chart's ServiceAccount, which admission looks up.
    apply_all(k8s, [doc for doc in documents if doc["kind"] == "ServiceAccount"])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-pod-check", "namespace": namespace},
        "spec": deployment["spec"]["template"]["spec"],
    }

    core.create_namespaced_pod(namespace, pod, dry_run="All")

    # The same check refuses a pod that runs as root, so the acceptance above means something.
    privileged = copy.deepcopy(pod)
    privileged["spec"]["securityContext"] = {"runAsNonRoot": False}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, privileged, dry_run="All")
    assert refused.value.status == 403
    assert "restricted" in refused.value.body
