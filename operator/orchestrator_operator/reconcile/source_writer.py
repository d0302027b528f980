"""What the source controller reads and writes in the cluster for a source: its mirrored
Workflows and ConfigMaps, and the Secret of its credentials.

An object is applied only when what we render differs from what we applied last (the hash of
the rendered manifest is its `orchestrator.dev/applied-hash` annotation) or when someone
changed it since; see `reconcile.children`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator_operator.adapters import git, kube
from orchestrator_operator.models.source import GitSource
from orchestrator_operator.reconcile.children import (
    APPLIED_HASH_ANNOTATION,
    AppliedContent,
    Verdict,
    observe,
)
from orchestrator_operator.reconcile.source import APPLY_FAILED, Desired
from orchestrator_operator.render.discovered import RepositoryProblem
from orchestrator_operator.render.mirror import (
    SOURCE_COMMIT_ANNOTATION,
    SOURCE_LABEL,
    MirrorTarget,
    source_selector,
)

logger = logging.getLogger(__name__)

# Objects applied at once during one sync.
APPLY_CONCURRENCY: Final = 8

ObjectKey = tuple[str, str, str]  # kind, namespace, name


class CredentialsError(Exception):
    """The credentials Secret of a source is missing or holds nothing usable."""


@dataclass(frozen=True)
class Existing:
    """What a source's target namespace holds: every Workflow, and this source's ConfigMaps."""

    workflows: list[dict[str, Any]]
    config_maps: list[dict[str, Any]]

    def by_key(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {("Workflow", w["metadata"]["name"]): w for w in self.workflows} | {
            ("ConfigMap", c["metadata"]["name"]): c for c in self.config_maps
        }


@dataclass
class MirrorWriter:
    api: kube.KubeApi
    applied: AppliedContent = field(default_factory=AppliedContent)
    # Objects deleted here, so that their watch events are not taken for a user's deletion.
    _deleted: set[ObjectKey] = field(default_factory=set)

    def deleted_by_us(self, key: ObjectKey) -> bool:
        """Whether we deleted this object; each deletion is recognised once."""
        if key in self._deleted:
            self._deleted.discard(key)
            return True
        self.applied.forget_owner(key[1], {key[2]})
        return False

    async def existing(self, target: MirrorTarget) -> Existing:
        workflows, config_maps = await asyncio.gather(
            self.api.list(kube.WORKFLOW, target.namespace),
            self.api.list(
                kube.CONFIG_MAP, target.namespace, label_selector=source_selector(target)
            ),
        )
        return Existing(workflows, config_maps)

    async def apply(
        self, desired: list[Desired], existing: Existing, target: MirrorTarget, commit: str
    ) -> tuple[int, list[RepositoryProblem]]:
        """Apply what changed, ConfigMaps first; the count applied, and what the server refused.

        A Workflow the server refuses (or one of its ConfigMaps) is reported and skipped; the
        others are applied all the same.
        """
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)
        current = existing.by_key()
        refused: list[RepositoryProblem] = []
        failed: set[str] = set()

        async def apply_one(item: Desired) -> int:
            key = (item.kind, target.namespace, item.name)
            body = current.get((item.kind, item.name))
            observed = observe({**body, "kind": item.kind}) if body else None
            if item.workflow in failed:
                return 0
            verdict = self.applied.verdict(key, item.applied_hash, observed)
            if verdict is Verdict.CURRENT:
                return 0
            # First look since the start: the listed object itself says whether someone
            # edited it. The commit annotation is left out, as a new commit alone is no change.
            if verdict is Verdict.UNVERIFIED and self.applied.verify(
                key, _annotated(item, commit=None), body
            ):
                return 0
            async with slots:
                try:
                    response = await self.api.apply(_annotated(item, commit))
                except kube.ApiError as error:
                    if error.status not in (400, 403, 422):
                        raise
                    failed.add(item.workflow)
                    refused.append(_refused(item, error))
                    return 0
            self.applied.remember(key, response)
            return 1

        count = 0
        for kind in ("ConfigMap", "Workflow"):
            batch = [item for item in desired if item.kind == kind]
            count += sum(await asyncio.gather(*(apply_one(item) for item in batch)))
        return count, refused

    async def delete(self, namespace: str, workflows: list[str], config_maps: list[str]) -> int:
        count = 0
        for kind, names in ((kube.WORKFLOW, workflows), (kube.CONFIG_MAP, config_maps)):
            for name in names:
                if await self._delete(kind, namespace, name):
                    count += 1
                    logger.info(
                        "Deleted %s %s/%s: its folder left the source", kind.kind, namespace, name
                    )
        return count

    async def delete_labelled(
        self, namespace: str | None, selector: str, keep: Mapping[str, str] | None
    ) -> None:
        """Delete objects matching `selector`, except those of a kept source in its namespace.

        `keep` maps source names to their target namespace; None keeps nothing.
        """
        for kind in (kube.WORKFLOW, kube.CONFIG_MAP):
            for body in await self.api.list(kind, namespace, label_selector=selector):
                metadata = body["metadata"]
                source = (metadata.get("labels") or {}).get(SOURCE_LABEL) or ""
                if keep is not None and keep.get(source) == metadata["namespace"]:
                    continue
                if await self._delete(kind, metadata["namespace"], metadata["name"]):
                    logger.info(
                        "Deleted %s %s/%s: its source %s is no longer mirrored there",
                        kind.kind,
                        metadata["namespace"],
                        metadata["name"],
                        source,
                    )

    async def credentials(
        self, namespace: str, spec: GitSource, transport: str
    ) -> git.GitAuth | None:
        """The source's credentials for a URL of `transport`, read from its Secret; None when
        it names none.

        The values leave this function only inside a GitAuth, which never shows them.
        """
        if spec.credentials is None:
            return None
        name = spec.credentials.secret_name
        secret = await self.api.get(kube.SECRET, namespace, name)
        if secret is None:
            raise CredentialsError(
                f"the credentials Secret {name!r} does not exist in namespace {namespace!r}"
            )
        data: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(value).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialsError(
                    f"the key {key!r} of Secret {name!r} is not UTF-8 text"
                ) from None
        auth = git.GitAuth.from_secret(data)
        if not (auth.password or auth.ssh_private_key or auth.known_hosts):
            raise CredentialsError(
                f"the Secret {name!r} holds none of the keys token, password, ssh-privatekey"
                " and known_hosts"
            )
        missing = auth.missing(transport)
        if missing:
            raise CredentialsError(f"the Secret {name!r} {missing}")
        return auth

    async def _delete(self, kind: kube.ResourceKind, namespace: str, name: str) -> bool:
        key = (kind.kind, namespace, name)
        self._deleted.add(key)
        self.applied.forget_owner(namespace, {name})
        if await self.api.delete(kind, namespace, name):
            return True
        self._deleted.discard(key)
        return False


def _annotated(item: Desired, commit: str | None) -> dict[str, Any]:
    """The manifest as sent: with the hash it was rendered with, and for a Workflow the commit."""
    metadata = dict(item.manifest["metadata"])
    annotations = {**metadata.get("annotations", {}), APPLIED_HASH_ANNOTATION: item.applied_hash}
    if item.kind == "Workflow" and commit is not None:
        annotations[SOURCE_COMMIT_ANNOTATION] = commit
    metadata["annotations"] = annotations
    return {**item.manifest, "metadata": metadata}


def _refused(item: Desired, error: kube.ApiError) -> RepositoryProblem:
    return RepositoryProblem(
        APPLY_FAILED,
        item.folder,
        f"the API server refused {item.kind} {item.name!r}: {error.api_message}",
        name=item.workflow,
    )
