"""Test helpers around a real cluster: waiting with a deadline, namespaces, CRDs."""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from orchestrator_operator.localcluster import LocalControlPlane

T = TypeVar("T")

TEST_LABEL = "test.orchestrator.dev/session"
FIELD_MANAGER = "orchestrator-tests"


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    message: str | Callable[[], str],
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    Fails the test with `message` (and the last value or ignored error seen) after `timeout`
    seconds; a callable message is asked for then, to describe the state at the deadline.
    Exceptions propagate unless listed in `ignore`, e.g. `ignore=(ApiException,)` to wait for
    an object that does not exist yet.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as error:
            last = error
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout:g}s: {text} (last seen: {last!r})")
        time.sleep(interval)


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, ApiException) and error.status == 404


def gone(read: Callable[[], Any]) -> bool:
    """True once `read()` answers 404; for `wait_for(lambda: gone(...))`."""
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def api_client(kubeconfig: Path) -> ApiClient:
    api: ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def condition_status(obj: Any, kind: str) -> str | None:
    """The status ("True", "False", "Unknown") of condition `kind` on a client model or dict."""
    status = obj.get("status") if isinstance(obj, dict) else obj.status
    if status is None:
        return None
    conditions = status.get("conditions") if isinstance(status, dict) else status.conditions
    for condition in conditions or []:
        if isinstance(condition, dict):
            if condition.get("type") == kind:
                return str(condition.get("status"))
        elif condition.type == kind:
            return str(condition.status)
    return None


def unique_name(prefix: str, max_length: int = 63) -> str:
    """A DNS-1123 label starting with a readable prefix and ending with a random suffix."""
    readable = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")
    suffix = uuid.uuid4().hex[:6]
    return f"{readable[: max_length - len(suffix) - 1].rstrip('-')}-{suffix}"


def crd_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                if (
                    isinstance(document, dict)
                    and document.get("kind") == "CustomResourceDefinition"
                ):
                    manifests.append(document)
    return manifests


def apply_crds(
    api: ApiClient, manifests: Iterable[dict[str, Any]], timeout: float = 60
) -> list[str]:
    """Server-side apply CRDs and wait until each is Established; returns their names."""
    extensions = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        extensions.patch_custom_resource_definition(
            name,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        names.append(name)

    def established(name: str) -> bool:
        crd = extensions.read_custom_resource_definition(name)
        return condition_status(crd, "Established") == "True"

    for name in names:
        wait_for(
            functools.partial(established, name),
            timeout=timeout,
            message=f"CustomResourceDefinition {name} to be Established",
        )
    return names


@dataclass
class Cluster:
    """The cluster the tests run against: a local control plane, or an existing cluster."""

    kubeconfig: Path
    local: LocalControlPlane | None
    crds: list[str] = field(default_factory=list)

    @property
    def process_group(self) -> int | None:
        """Where processes that must go with the cluster run: the local control plane's
        process group, None for an existing cluster."""
        return None if self.local is None else self.local.process_group

    def require_local(self) -> LocalControlPlane:
        """The local control plane; skips the test when running against an existing cluster."""
        if self.local is None:
            pytest.skip("needs the local control plane (USE_EXISTING_CLUSTER is set)")
        return self.local
