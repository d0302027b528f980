"""Deciding whether a child object needs a write, asking the API server as little as we can.

Each child we apply carries the hash of the manifest we meant (an annotation), and we remember
the content the server answered with. A child whose annotation matches what we mean now, and
whose content is still what the server gave us, needs nothing: that is how a resync of
unchanged objects makes no write at all. A child edited by hand no longer has the content we
remember, and one deleted by hand is no longer observed: both are applied again.

After a restart nothing is remembered, and a matching annotation says only what was applied
once, not that nobody edited the object since. So the first look at each child reads it whole,
once, and compares it with what we would send: every field we set must hold the value we set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

APPLIED_HASH_ANNOTATION = "orchestrator.dev/applied-hash"

ChildKey = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class NameHolder:
    """The object that holds a name one of our children needs, as the watches last saw it."""

    controller_uid: str | None
    # Who controls it, in words: "Workflow hello", or that nothing does.
    description: str


# The holder of a name, by kind, namespace and name; None when no object has that name.
HolderLookup = Callable[[str, str, str], "NameHolder | None"]


def holder_of(body: Mapping[str, Any]) -> NameHolder:
    controller = next(
        (ref for ref in body["metadata"].get("ownerReferences") or [] if ref.get("controller")),
        None,
    )
    if controller is None:
        return NameHolder(None, "no controller (someone else made it)")
    return NameHolder(controller.get("uid"), f"{controller.get('kind')} {controller.get('name')}")


@dataclass(frozen=True)
class ChildObservation:
    """What the watch last showed of a child: small enough to keep for thousands of them."""

    kind: str
    name: str
    applied_hash: str | None
    content_hash: str
    # Only Deployments: the fields that tell whether the runtime serves.
    rollout: Mapping[str, Any] | None = None


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def with_applied_hash(manifest: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The manifest to send, annotated with the hash of the manifest as rendered."""
    applied_hash = manifest_hash(manifest)
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {
        **metadata.get("annotations", {}),
        APPLIED_HASH_ANNOTATION: applied_hash,
    }
    return {**manifest, "metadata": metadata}, applied_hash


def content_hash(body: Mapping[str, Any]) -> str:
    """A digest of the parts of an object that we set and that others should not change.

    Annotations are left out on purpose: controllers write their own there (a Deployment's
    revision), and a hash that moved with them would see drift where there is none.
    """
    metadata = body.get("metadata", {})
    content = {
        "labels": metadata.get("labels"),
        "ownerReferences": metadata.get("ownerReferences"),
        "data": body.get("data"),
        "binaryData": body.get("binaryData"),
        "spec": body.get("spec"),
    }
    return manifest_hash(content)


def observe(body: Mapping[str, Any]) -> ChildObservation:
    metadata = body["metadata"]
    rollout = None
    if body.get("kind") == "Deployment":
        rollout = _rollout(body)
    return ChildObservation(
        kind=str(body.get("kind")),
        name=metadata["name"],
        applied_hash=(metadata.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION),
        content_hash=content_hash(body),
        rollout=rollout,
    )


def _rollout(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec", {})
    status = body.get("status", {})
    template_annotations = spec.get("template", {}).get("metadata", {}).get("annotations") or {}
    conditions = status.get("conditions") or []
    deadline_exceeded = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in conditions
    )
    return {
        "generation": body["metadata"].get("generation", 0),
        "observedGeneration": status.get("observedGeneration", 0),
        "desired": spec.get("replicas", 1),
        "updated": status.get("updatedReplicas", 0),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "checksum": template_annotations.get("orchestrator.dev/checksum"),
        "progressDeadlineExceeded": deadline_exceeded,
    }


class Verdict(Enum):
    CURRENT = "current"  # what we applied, and nobody changed it since
    STALE = "stale"  # to apply
    UNVERIFIED = "unverified"  # first look since the start: to compare with the object itself


class AppliedContent:
    """The content the API server answered our last apply of each child with."""

    def __init__(self) -> None:
        self._content: dict[ChildKey, str] = {}

    def verdict(
        self, key: ChildKey, applied_hash: str, observed: ChildObservation | None
    ) -> Verdict:
        if observed is None or observed.applied_hash != applied_hash:
            return Verdict.STALE
        remembered = self._content.get(key)
        if remembered is None:
            return Verdict.UNVERIFIED
        return Verdict.CURRENT if remembered == observed.content_hash else Verdict.STALE

    def verify(
        self, key: ChildKey, sent: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> bool:
        """Whether the object as the server holds it still has every field we send; if so, it
        is remembered as it is, so that later looks need only the watch."""
        if live is None or not holds(live, sent):
            return False
        self._content[key] = content_hash(live)
        return True

    def remember(self, key: ChildKey, response: Mapping[str, Any]) -> None:
        self._content[key] = content_hash(response)

    def forget_owner(self, namespace: str, names: set[str]) -> None:
        for key in [k for k in self._content if k[1] == namespace and k[2] in names]:
            del self._content[key]


def holds(live: Any, sent: Any) -> bool:
    """Whether `live` has every field of `sent` with the same value: a deep subset.

    Fields the server or other controllers add (defaults, status, their annotations) do not
    count; lists must match item by item, as an apply would make them. An empty list or
    mapping we send matches one the server left out, as it does for empty fields.

    Limitation: a value the server writes in another form than ours (a quantity such as 0.5
    CPU, stored as 500m) looks changed; after a restart that costs one apply that changes
    nothing.
    """
    if isinstance(sent, Mapping):
        if live is None:
            return not sent
        if not isinstance(live, Mapping):
            return False
        return all(
            holds(live[field], value) if field in live else _empty(value)
            for field, value in sent.items()
        )
    if isinstance(sent, list):
        if live is None:
            return not sent
        return (
            isinstance(live, list)
            and len(live) == len(sent)
            and all(holds(have, want) for have, want in zip(live, sent, strict=True))
        )
    return bool(live == sent)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping | list) and not value)
