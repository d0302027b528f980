"""What both controllers do the same way with the API: read the keys of a consumed Secret, and
apply an owner's children, only those that need it, ConfigMaps and Services before Deployments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from orchestrator_operator.adapters import kube
from orchestrator_operator.reconcile.children import (
    AppliedContent,
    ChildObservation,
    HolderLookup,
    Verdict,
    with_applied_hash,
)
from orchestrator_operator.reconcile.workflow import EventToPost
from orchestrator_operator.render.workflow import ConsumedSecret

logger = logging.getLogger(__name__)

OBJECT_NAME_TAKEN = "ObjectNameTaken"


class ReportedFailure(Exception):
    """A reconcile that failed for a reason already written to the status and posted as an
    Event: the work queue retries it later, and logs one line rather than a traceback."""

    reported = True


class NameTaken(Exception):
    """A child's name is held by an object that its owner does not control."""

    def __init__(self, kind: str, namespace: str, name: str, holder: str) -> None:
        self.message = (
            f"{kind} {namespace}/{name} already exists and belongs to {holder}; rename or"
            f" remove it, or rename this resource"
        )
        super().__init__(self.message)


async def read_secret_keys(api: kube.KubeApi, namespace: str, name: str) -> ConsumedSecret | None:
    """The key names and version of a Secret, or None when it does not exist."""
    body = await api.get(kube.SECRET, namespace, name)
    if body is None:
        return None
    # Only the key names and the version leave this function; the values are dropped here.
    keys = frozenset((body.get("data") or {}).keys()) | frozenset(
        (body.get("stringData") or {}).keys()
    )
    return ConsumedSecret(
        name=name, keys=keys, resource_version=body["metadata"]["resourceVersion"]
    )


async def apply_children(
    api: kube.KubeApi,
    applied: AppliedContent,
    *,
    owner: str,
    namespace: str,
    children: list[dict[str, Any]],
    observed: Iterable[ChildObservation],
    holders: HolderLookup,
) -> int:
    """Apply the children that need it; return how many did. `owner` names the owner in logs.

    `holders` tells who holds a name, from the watches: a child not yet created is checked
    there, not with a read per child.
    """
    seen = {(child.kind, child.name): child for child in observed}
    # Everything else first, all at once; the Deployments last, so that a new pod never starts
    # before the files and properties it mounts exist.
    first = [child for child in children if child["kind"] != "Deployment"]
    last = [child for child in children if child["kind"] == "Deployment"]
    count = 0
    for batch in (first, last):
        results = await asyncio.gather(
            *(_apply_child(api, applied, holders, owner, namespace, child, seen) for child in batch)
        )
        count += sum(results)
    return count


async def _apply_child(
    api: kube.KubeApi,
    applied: AppliedContent,
    holders: HolderLookup,
    owner: str,
    namespace: str,
    manifest: dict[str, Any],
    seen: dict[tuple[str, str], ChildObservation],
) -> bool:
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    annotated, applied_hash = with_applied_hash(manifest)
    key = (kind, namespace, name)
    observed = seen.get((kind, name))
    verdict = applied.verdict(key, applied_hash, observed)
    if verdict is Verdict.CURRENT:
        return False
    if verdict is Verdict.UNVERIFIED:
        # The watch keeps digests only; whether someone edited the child while the operator
        # was away takes the object itself, read once per child after a start.
        live = await api.get(kube.kind_of(manifest), namespace, name)
        if applied.verify(key, annotated, live):
            return False
        logger.info("%s %s/%s of %s changed while unwatched", kind, namespace, name, owner)
    if observed is None:
        # Not this owner's as far as the watches know: an object of the same name made by
        # someone else, or by another owner of ours, must not be taken over, or deleting our
        # owner would delete it too (and two owners would rewrite it in turn).
        _refuse_foreign(holders, manifest, namespace)
    response = await api.apply(annotated)
    applied.remember(key, response)
    logger.info("Applied %s %s/%s for %s", kind, namespace, name, owner)
    return True


def _refuse_foreign(holders: HolderLookup, manifest: dict[str, Any], namespace: str) -> None:
    """Raise NameTaken when another object holds the child's name.

    Limitation: the watches are the judge, so an object of the same name created a moment
    before ours, and not yet seen by them, is taken over like one of ours.
    """
    owners = manifest["metadata"].get("ownerReferences") or []
    owner_uid = next((ref["uid"] for ref in owners if ref.get("controller")), None)
    if not owner_uid:
        return
    name = manifest["metadata"]["name"]
    holder = holders(manifest["kind"], namespace, name)
    if holder is None or holder.controller_uid == owner_uid:
        return
    raise NameTaken(manifest["kind"], namespace, name, holder.description)


async def post_events(
    api: kube.KubeApi,
    body: Mapping[str, Any],
    events: Iterable[EventToPost],
    *,
    component: str,
) -> None:
    """Post Events about an object; a failure to post one is logged, never raised."""
    for event in events:
        try:
            await api.post_event(
                dict(body),
                event_type=event.type,
                reason=event.reason,
                message=event.message,
                component=component,
            )
        except kube.ApiError as error:
            # An Event is a courtesy; failing to post one must not fail the reconcile.
            logger.warning(
                "Could not post Event %s on %s %s/%s: %s",
                event.reason,
                body.get("kind", "object"),
                body["metadata"]["namespace"],
                body["metadata"]["name"],
                error,
            )


def spec_errors(error: ValidationError) -> str:
    """pydantic's complaints about a spec, as one message with the path of each field."""
    return "; ".join(
        f"spec.{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
