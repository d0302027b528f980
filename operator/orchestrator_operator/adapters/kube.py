"""The Kubernetes API, as the operator's reconcilers use it: apply, read, write status, post Events.

kopf watches with its own client; this one makes the operator's own requests. It is
asynchronous so that one reconcile waiting on the API server never holds up the others, and it
is made once at startup from the credentials kopf logged in with, never at import time.

It speaks through aiohttp, as kopf does: with thousands of objects applied at once, the
HTTP client is most of the operator's CPU, and aiohttp parses responses in C.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        suffix = f"/{name}" if name else ""
        return f"{prefix}{scope}/{self.plural}{suffix}"


CONFIG_MAP = ResourceKind("v1", "ConfigMap", "configmaps")
SECRET = ResourceKind("v1", "Secret", "secrets")
SERVICE = ResourceKind("v1", "Service", "services")
POD = ResourceKind("v1", "Pod", "pods")
EVENT = ResourceKind("v1", "Event", "events")
DEPLOYMENT = ResourceKind("apps/v1", "Deployment", "deployments")
NETWORK_POLICY = ResourceKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
WORKFLOW = ResourceKind("orchestrator.dev/v1alpha1", "Workflow", "workflows")
INSTALLATION = ResourceKind(
    "orchestrator.dev/v1alpha1", "OrchestratorInstance", "orchestratorinstances"
)

KINDS = {
    (kind.api_version, kind.kind): kind
    for kind in (
        CONFIG_MAP,
        SECRET,
        SERVICE,
        POD,
        EVENT,
        DEPLOYMENT,
        NETWORK_POLICY,
        WORKFLOW,
        INSTALLATION,
    )
}


def kind_of(manifest: dict[str, Any]) -> ResourceKind:
    return KINDS[(manifest["apiVersion"], manifest["kind"])]


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to the API server; any of the optional parts may be set."""

    server: str
    ca_path: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    certificate_path: str | None = None
    certificate_data: bytes | None = None
    private_key_path: str | None = None
    private_key_data: bytes | None = None
    default_namespace: str | None = None


class ApiError(Exception):
    """The API server refused a request. The message never carries a request body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.api_message = message


RequestObserver = Callable[[str, str, int], None]


class KubeApi:
    def __init__(
        self,
        credentials: Credentials,
        *,
        field_manager: str,
        timeout: float = 30.0,
        observe: RequestObserver | None = None,
        max_connections: int = 8,
    ) -> None:
        self.field_manager = field_manager
        self._observe = observe
        self._server = credentials.server.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if credentials.token:
            self._headers["Authorization"] = f"Bearer {credentials.token}"
        self._ssl = _ssl_context(credentials)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made at the first request: aiohttp ties its client to the event loop it runs in.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def apply(self, manifest: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply of one object under our field manager."""
        kind = kind_of(manifest)
        metadata = manifest["metadata"]
        path = kind.path(metadata.get("namespace"), metadata["name"])
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return await self._request(
            "PATCH",
            path,
            verb="apply",
            kind=kind.kind,
            params=params,
            content=json.dumps(manifest).encode(),
            content_type=APPLY_CONTENT_TYPE,
        )

    async def get(
        self, kind: ResourceKind, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return await self._request(
                "GET", kind.path(namespace, name), verb="get", kind=kind.kind
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        body = await self._request(
            "GET", kind.path(namespace), verb="list", kind=kind.kind, params=params
        )
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    async def patch_status(
        self, kind: ResourceKind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; fields set to None are removed."""
        return await self._request(
            "PATCH",
            kind.path(namespace, name) + "/status",
            verb="patch-status",
            kind=kind.kind,
            content=json.dumps({"status": status}).encode(),
            content_type=MERGE_PATCH_CONTENT_TYPE,
        )

    async def delete(self, kind: ResourceKind, namespace: str | None, name: str) -> bool:
        try:
            await self._request("DELETE", kind.path(namespace, name), verb="delete", kind=kind.kind)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def post_event(
        self,
        regarding: dict[str, Any],
        *,
        event_type: str,
        reason: str,
        message: str,
        component: str,
    ) -> None:
        """A core/v1 Event about an object, as `kubectl describe` shows them."""
        metadata = regarding["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": regarding["apiVersion"],
                "kind": regarding["kind"],
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._request(
            "POST",
            EVENT.path(metadata["namespace"]),
            verb="create",
            kind="Event",
            content=json.dumps(event).encode(),
            content_type="application/json",
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        kind: str,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if content_type else None
        async with self._client().request(
            method, self._server + path, params=params, data=content, headers=headers
        ) as response:
            status = response.status
            raw = await response.read()
        if self._observe:
            self._observe(verb, kind, status)
        if status >= 400:
            raise _api_error(status, raw)
        body: dict[str, Any] = json.loads(raw)
        return body


def _api_error(status_code: int, raw: bytes) -> ApiError:
    try:
        status = json.loads(raw)
    except ValueError:
        return ApiError(status_code, "Unknown", raw[:512].decode(errors="replace"))
    if not isinstance(status, dict):
        return ApiError(status_code, "Unknown", str(status)[:512])
    return ApiError(
        status_code,
        str(status.get("reason", "Unknown")),
        str(status.get("message", ""))[:2048],
    )


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    """The context that verifies the server and presents our certificate; False: no TLS
    checks, as a kubeconfig with insecure-skip-tls-verify asks."""
    if credentials.insecure:
        return False
    # The cluster's own authority, when it names one, is the only one trusted, as kubectl does;
    # the system's authorities only otherwise.
    context = ssl.create_default_context(
        cafile=credentials.ca_path,
        cadata=None
        if credentials.ca_path or not credentials.ca_data
        else credentials.ca_data.decode(),
    )
    with _client_certificate_files(credentials) as (cert, key):
        if cert and key:
            context.load_cert_chain(cert, key)
    return context


@contextlib.contextmanager
def _client_certificate_files(credentials: Credentials) -> Iterator[tuple[str | None, str | None]]:
    """Paths of the client certificate and key; data is written to private files for the moment
    the SSL context reads them, because Python's ssl module loads certificates only from files."""
    if not (credentials.certificate_data or credentials.private_key_data):
        yield credentials.certificate_path, credentials.private_key_path
        return
    with tempfile.TemporaryDirectory(prefix="orchestrator-operator-") as directory:
        cert = credentials.certificate_path
        key = credentials.private_key_path
        if credentials.certificate_data:
            cert = os.path.join(directory, "client.crt")
            _write_private(cert, credentials.certificate_data)
        if credentials.private_key_data:
            key = os.path.join(directory, "client.key")
            _write_private(key, credentials.private_key_data)
        yield cert, key


def _write_private(path: str, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
