"""A minimal HTTPS client for the few calls the control plane makes to itself.

The control plane must come up before anything else is trusted, and it only needs readiness
probes, a handful of creates and a server-side apply, so it talks to kube-apiserver with the
standard library instead of depending on a Kubernetes client library.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APPLY_PATCH = "application/apply-patch+yaml"


class ApiError(RuntimeError):
    """kube-apiserver answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RestClient:
    """Calls kube-apiserver at `https://host:port` with a client certificate."""

    def __init__(
        self, host: str, port: int, *, ca_file: Path, cert_file: Path, key_file: Path
    ) -> None:
        self._host = host
        self._port = port
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._context.load_cert_chain(str(cert_file), str(key_file))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> Response:
        connection = http.client.HTTPSConnection(
            self._host, self._port, context=self._context, timeout=timeout
        )
        try:
            headers = {"Accept": "application/json"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            connection.request(method, path, body=payload, headers=headers)
            answer = connection.getresponse()
            return Response(answer.status, answer.read())
        finally:
            connection.close()

    def get(self, path: str, *, timeout: float = 10.0) -> Response:
        return self.request("GET", path, timeout=timeout)

    def expect(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        content_type: str = "application/json",
    ) -> Any:
        """Send a request and return its JSON body, raising `ApiError` on any other status."""
        response = self.request(method, path, body, content_type=content_type)
        if response.status not in ok:
            raise ApiError(method, path, response.status, response.body.decode(errors="replace"))
        return response.json() if response.body else None

    def apply(self, path: str, manifest: dict[str, Any], *, field_manager: str) -> Any:
        """Server-side apply; JSON is valid YAML, so the apply content type accepts it."""
        query = f"?fieldManager={field_manager}&force=true"
        return self.expect("PATCH", path + query, manifest, content_type=APPLY_PATCH)
