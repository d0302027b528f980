"""kube-apiserver's audit log: the policy we run it with and a reader for tests.

Tests use the log to count the requests a piece of code made (writes per namespace, per user),
which is how an operator's API cost is held to a budget.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRITE_VERBS: frozenset[str] = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS: frozenset[str] = frozenset({"get", "list", "watch"})

# Requests to this path (answered 404) only mark a point in the log; readers skip them.
SYNC_PATH = "/audit-sync/"

# Metadata level for every request, minus what would drown the interesting lines: health and
# discovery probes, and the lease renewals the apiserver and the simulated node make every few
# seconds. One event per request: the received stage is dropped, and so is a watch's "started".
POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {
            "level": "None",
            "nonResourceURLs": [
                "/healthz*",
                "/livez*",
                "/readyz*",
                "/version",
                "/openapi*",
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
            ],
        },
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "Metadata"},
    ],
}


@dataclass(frozen=True)
class AuditEvent:
    """One finished request, as the audit log records it."""

    verb: str
    user: str
    groups: tuple[str, ...]
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    api_group: str
    status: int | None
    user_agent: str
    received: datetime.datetime
    # When the response ended: for a watch, when the stream closed.
    completed: datetime.datetime | None
    uri: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AuditEvent:
        ref = raw.get("objectRef") or {}
        user = raw.get("user") or {}
        status = (raw.get("responseStatus") or {}).get("code")
        received = datetime.datetime.fromisoformat(raw["requestReceivedTimestamp"])
        stage = raw.get("stageTimestamp")
        completed = datetime.datetime.fromisoformat(stage) if stage else None
        return cls(
            verb=raw.get("verb", ""),
            user=user.get("username", ""),
            groups=tuple(user.get("groups") or ()),
            resource=ref.get("resource"),
            subresource=ref.get("subresource"),
            namespace=ref.get("namespace"),
            name=ref.get("name"),
            api_group=ref.get("apiGroup", ""),
            status=status,
            user_agent=raw.get("userAgent", ""),
            received=received,
            completed=completed,
            uri=raw.get("requestURI", ""),
        )

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


@dataclass(frozen=True)
class AuditMark:
    """A point in the audit log; events after it are the ones written since it was taken."""

    offset: int


class AuditLog:
    """Reads the JSON-lines audit log kube-apiserver writes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> AuditMark:
        """The end of the log now, for counting only what happens next."""
        try:
            return AuditMark(self.path.stat().st_size)
        except FileNotFoundError:
            return AuditMark(0)

    def events(self, since: AuditMark | None = None) -> list[AuditEvent]:
        return list(self._read(since))

    def select(
        self,
        *,
        since: AuditMark | None = None,
        namespace: str | None = None,
        verbs: Collection[str] | None = WRITE_VERBS,
        user: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
    ) -> list[AuditEvent]:
        """Events matching every filter given; `verbs=None` keeps every verb."""
        return [
            event
            for event in self._read(since)
            if (namespace is None or event.namespace == namespace)
            and (verbs is None or event.verb in verbs)
            and (user is None or event.user == user)
            and (resource is None or event.resource == resource)
            and (subresource is None or event.subresource == subresource)
        ]

    def count(
        self,
        *,
        since: AuditMark | None = None,
        namespace: str | None = None,
        verbs: Collection[str] | None = WRITE_VERBS,
        user: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
    ) -> int:
        """How many requests match; by default, writes (create, update, patch, delete)."""
        return len(
            self.select(
                since=since,
                namespace=namespace,
                verbs=verbs,
                user=user,
                resource=resource,
                subresource=subresource,
            )
        )

    def has_marker(self, uri: str, since: AuditMark | None = None) -> bool:
        return any(raw.get("requestURI") == uri for raw in self._raw(since))

    def _read(self, since: AuditMark | None) -> Iterator[AuditEvent]:
        for raw in self._raw(since):
            if not raw.get("requestURI", "").startswith(SYNC_PATH):
                yield AuditEvent.from_json(raw)

    def _raw(self, since: AuditMark | None) -> Iterator[dict[str, Any]]:
        try:
            with self.path.open("rb") as log:
                log.seek(since.offset if since else 0)
                for line in log:
                    # A line without its newline is still being written; it is read next time.
                    if line.endswith(b"\n") and line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            return
