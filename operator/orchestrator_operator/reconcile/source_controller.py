"""The source controller: mirror the git sources of installations into Workflows.

Each source has a task of its own that polls at the source's interval (with jitter, and with a
growing delay while it fails). A poll first asks the server which commit the ref names; when
that is the commit mirrored last and nothing else changed, the poll ends there, having written
nothing. Otherwise the commit is fetched into a fresh folder, discovered, rendered and compared
with what the cluster holds: only objects whose rendered content changed are applied, and
objects of folders gone from git are deleted, only after a fetch and discovery that succeeded.

Status: this controller owns `status.sources` of each OrchestratorInstance and nothing else of
it. It writes that key alone, with a merge patch of the whole list (a merge patch replaces a
list), and only when an entry changed. The installation controller never writes `sources`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Final

from pydantic import ValidationError

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.adapters import git, kube
from orchestrator_operator.models.installation import KIND as INSTALLATION_KIND
from orchestrator_operator.models.installation import Installation, InstallationSpec
from orchestrator_operator.models.source import SYNC_NOW_ANNOTATION, GitSource
from orchestrator_operator.reconcile.children import (
    APPLIED_HASH_ANNOTATION,
    AppliedContent,
    observe,
)
from orchestrator_operator.reconcile.conditions import FALSE, Finding
from orchestrator_operator.reconcile.source import (
    APPLY_FAILED,
    CREDENTIALS_NOT_FOUND,
    PATH_NOT_FOUND,
    SOURCE_SYNCED,
    WORKFLOW_CONFLICT,
    Desired,
    SyncOutcome,
    plan_sync,
    source_status,
)
from orchestrator_operator.render.mirror import (
    INSTALLATION_NAMESPACE_LABEL,
    SOURCE_COMMIT_ANNOTATION,
    SOURCE_LABEL,
    MirrorTarget,
    render_discovery,
    source_selector,
)
from orchestrator_operator.render.names import INSTALLATION_LABEL
from orchestrator_operator.render.repository import (
    SYMLINK_IGNORED,
    DiscoveryError,
    RepositoryProblem,
    discover,
)

logger = logging.getLogger(__name__)

InstallationKey = tuple[str, str]  # namespace, name
SourceKey = tuple[str, str, str]  # namespace, installation, source

# The first retry of a failing source comes soon; later ones wait twice as long each time, up
# to the longer of the poll interval and this.
FIRST_RETRY_SECONDS: Final = 10.0
MAX_BACKOFF_SECONDS: Final = 600.0
JITTER: Final = 0.1
# Objects applied at once during one sync.
APPLY_CONCURRENCY: Final = 8

_DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> float:
    """Seconds of a duration such as 30s, 5m or 1h30m (GitSource.poll_interval)."""
    total = 0.0
    number = ""
    for character in text:
        if character.isdigit():
            number += character
        else:
            total += int(number or 0) * _DURATION_UNITS[character]
            number = ""
    return max(total, 1.0)


@dataclass
class _Installation:
    key: InstallationKey
    model: Installation
    body: dict[str, Any]
    sync_now: str | None
    # Our latest entry of status.sources for each source, by source name.
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The entries as the cluster last showed them.
    written: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Target namespace of each source when orphans were last swept.
    swept: dict[str, str] | None = None


@dataclass
class _Source:
    key: SourceKey
    spec: GitSource
    fingerprint: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    # A full sync (fetch, discover, compare) is due whatever the ref resolves to.
    force: bool = True
    # The commit last mirrored in full, and what that sync found.
    commit: str | None = None
    last: SyncOutcome | None = None
    failures: int = 0


@dataclass
class SourceController:
    api: kube.KubeApi
    git_client: git.GitClient
    component: str = "orchestrator-operator"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    applied: AppliedContent = field(default_factory=AppliedContent)
    _installations: dict[InstallationKey, _Installation] = field(default_factory=dict)
    _sources: dict[SourceKey, _Source] = field(default_factory=dict)
    # Objects this controller deleted, so that their watch events do not look like a user's.
    _deleted: set[tuple[str, str, str]] = field(default_factory=set)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    # -- what the handlers tell us -------------------------------------------------------------

    def installation_changed(self, body: Mapping[str, Any], deleted: bool = False) -> None:
        metadata = body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if deleted or metadata.get("deletionTimestamp"):
            self._forget_installation(key)
            return
        try:
            model = _parse_installation(body)
        except ValidationError as error:
            # The installation controller reports an invalid spec; sources wait for a valid one.
            logger.warning("OrchestratorInstance %s/%s: spec not valid: %s", *key, error)
            return
        known = self._installations.get(key)
        if known is None and not model.spec.sources and not _status_sources(body):
            return

        sync_now = (metadata.get("annotations") or {}).get(SYNC_NOW_ANNOTATION)
        if known is None:
            known = _Installation(key, model, dict(body), sync_now, written=_status_sources(body))
            self._installations[key] = known
        sync_now_changed = known.sync_now != sync_now
        known.model, known.body, known.sync_now = model, dict(body), sync_now
        known.written = _status_sources(body)

        wanted = {source.name for source in model.spec.sources}
        removed = [k for k in self._sources if k[:2] == key and k[2] not in wanted]
        for source_key in removed:
            self._stop_source(source_key)
        for source in model.spec.sources:
            self._source_changed(known, source, force=sync_now_changed)
        self._sweep_if_needed(known)
        if removed or not wanted:
            # The entries of removed sources leave status.sources.
            self._spawn(self._write_status(known))
        if not wanted:
            self._installations.pop(key, None)

    def mirrored_object_deleted(
        self, kind: str, namespace: str, name: str, labels: Mapping[str, str]
    ) -> None:
        """A Workflow or ConfigMap of a source went away: put it back, unless we removed it.

        A source that could not mirror a Workflow of that name because it was taken tries again.
        """
        for waiting in self._sources.values():
            if (
                waiting.last
                and _conflicts(waiting.last)
                and _target_namespace(waiting) == namespace
            ):
                self._wake(waiting, force=True)
        if (kind, namespace, name) in self._deleted:
            self._deleted.discard((kind, namespace, name))
            return
        self.applied.forget_owner(namespace, {name})
        key = (
            labels.get(INSTALLATION_NAMESPACE_LABEL, ""),
            labels.get(INSTALLATION_LABEL, ""),
            labels.get(SOURCE_LABEL, ""),
        )
        source = self._sources.get(key)
        if source is not None:
            logger.info(
                "%s %s/%s of source %s was deleted; syncing the source again",
                kind,
                namespace,
                name,
                source.spec.name,
            )
            self._wake(source, force=True)

    async def close(self) -> None:
        tasks = [s.task for s in self._sources.values() if s.task] + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sources.clear()

    def known(self) -> list[SourceKey]:
        return list(self._sources)

    # -- source tasks --------------------------------------------------------------------------

    def _source_changed(self, installation: _Installation, spec: GitSource, force: bool) -> None:
        key = (*installation.key, spec.name)
        fingerprint = _fingerprint(installation.model, spec)
        source = self._sources.get(key)
        if source is None:
            source = _Source(key, spec, fingerprint)
            self._sources[key] = source
            source.task = asyncio.create_task(self._run(source), name=f"source {'/'.join(key)}")
            return
        if fingerprint != source.fingerprint:
            source.spec, source.fingerprint = spec, fingerprint
            force = True
        if force:
            self._wake(source, force=True)

    def _wake(self, source: _Source, *, force: bool) -> None:
        source.force = source.force or force
        source.wake.set()

    def _stop_source(self, key: SourceKey) -> None:
        source = self._sources.pop(key, None)
        if source and source.task:
            source.task.cancel()
        installation = self._installations.get(key[:2])
        if installation:
            installation.entries.pop(key[2], None)

    def _forget_installation(self, key: InstallationKey) -> None:
        installation = self._installations.pop(key, None)
        for source_key in [k for k in self._sources if k[:2] == key]:
            self._stop_source(source_key)
        if installation is None:
            return
        # Owner references take the Workflows of the installation's namespace with it; those
        # of other namespaces carry labels only, and are deleted here.
        namespace, name = key
        for spec in installation.model.spec.sources:
            target = spec.target_namespace or namespace
            if target != namespace:
                self._spawn(self._delete_labelled(target, _installation_selector(key), keep=None))
        logger.info("OrchestratorInstance %s/%s is gone; its sources stopped", namespace, name)

    async def _run(self, source: _Source) -> None:
        # Spread the first syncs of many sources a little, so that a restart does not fetch
        # every repository in the same second.
        await self._pause(source, self.rng.uniform(0, 1.0))
        while True:
            force, source.force = source.force, False
            ok = await self._sync_safely(source, force)
            if ok:
                source.failures = 0
                delay = duration_seconds(source.spec.poll_interval)
                delay *= self.rng.uniform(1 - JITTER, 1 + JITTER)
            else:
                source.force = source.force or force
                source.failures += 1
                delay = self._backoff(source)
            await self._pause(source, delay)

    def _backoff(self, source: _Source) -> float:
        interval = duration_seconds(source.spec.poll_interval)
        ceiling = max(interval, MAX_BACKOFF_SECONDS)
        delay = min(FIRST_RETRY_SECONDS * 2 ** (source.failures - 1), ceiling)
        return float(delay * self.rng.uniform(1 - JITTER, 1 + JITTER))

    async def _pause(self, source: _Source, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await source.wake.wait()
        source.wake.clear()

    async def _sync_safely(self, source: _Source, force: bool) -> bool:
        try:
            return await self.sync(source, force)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Source %s of OrchestratorInstance %s/%s failed", *_who(source))
            return False

    # -- one sync ------------------------------------------------------------------------------

    async def sync(self, source: _Source, force: bool) -> bool:
        """One poll of a source; True when it ended with the commit mirrored."""
        installation = self._installations.get(source.key[:2])
        if installation is None:
            return True
        spec = source.spec
        target = _target(installation.model, spec)
        try:
            if not installation.model.admits(target.namespace):
                raise git.GitError(
                    git.INVALID_SOURCE,
                    f"targetNamespace {target.namespace!r} is not among the installation's"
                    " workflowNamespaces",
                )
            ref = _ref(spec)
            git.check_url(spec.url, allow_file=self.git_client.allow_file)
            git.check_ref(ref)
            auth = await self._auth(installation, spec)
            commit = await self.git_client.resolve(spec.url, ref, auth)
            last = source.last
            if not force and last and commit == source.commit and not _conflicts(last):
                logger.debug("Source %s of OrchestratorInstance %s/%s: unchanged", *_who(source))
                await self._report(installation, source, last)
                return True
            outcome = await self._mirror(source, target, ref, auth)
        except git.GitError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, error.reason, error.message)
        except DiscoveryError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, PATH_NOT_FOUND, str(error))
        except _CredentialsError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, CREDENTIALS_NOT_FOUND, str(error))
        except kube.ApiError as error:
            if error.status >= 500 or error.status == 429:
                raise
            failure = Finding(SOURCE_SYNCED, FALSE, APPLY_FAILED, error.api_message)
        else:
            source.commit = outcome.commit
            source.last = replace(outcome, applied=0, deleted=0)
            await self._report(installation, source, outcome)
            return True

        logger.warning(
            "Source %s of OrchestratorInstance %s/%s not synced: %s: %s",
            *_who(source),
            failure.reason,
            failure.message,
        )
        await self._report(installation, source, SyncOutcome(failure=failure))
        return False

    async def _mirror(
        self, source: _Source, target: MirrorTarget, ref: git.RefSpec, auth: git.GitAuth | None
    ) -> SyncOutcome:
        spec = source.spec
        async with self.git_client.checkout(
            spec.url, ref, max_bytes=spec.max_size_bytes, auth=auth
        ) as tree:
            discovery = await asyncio.to_thread(discover, tree.root, spec.path)
            commit = tree.commit
            links = _ignored_links(tree.symlinks, spec.path)

        mirrored, problems = render_discovery(discovery, target)
        workflows, config_maps = await asyncio.gather(
            self.api.list(kube.WORKFLOW, target.namespace),
            self.api.list(
                kube.CONFIG_MAP, target.namespace, label_selector=source_selector(target)
            ),
        )
        plan = plan_sync(mirrored, [*problems, *links], workflows, config_maps, target)
        existing = {("Workflow", w["metadata"]["name"]): w for w in workflows} | {
            ("ConfigMap", c["metadata"]["name"]): c for c in config_maps
        }
        applied, refused = await self._apply(plan.apply, existing, target, commit)
        deleted = await self._delete(
            target.namespace, plan.delete_workflows, plan.delete_config_maps
        )
        logger.info(
            "Source %s of OrchestratorInstance %s/%s: commit %s, %d workflows, %d objects"
            " applied, %d deleted, %d problems",
            *_who(source),
            commit[:12],
            plan.workflows,
            applied,
            deleted,
            len(plan.problems) + len(refused),
        )
        return SyncOutcome(
            commit=commit,
            problems=(*plan.problems, *refused),
            workflows=plan.workflows - len({p.name for p in refused}),
            applied=applied,
            deleted=deleted,
        )

    async def _apply(
        self,
        desired: list[Desired],
        existing: Mapping[tuple[str, str], Mapping[str, Any]],
        target: MirrorTarget,
        commit: str,
    ) -> tuple[int, list[RepositoryProblem]]:
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)
        refused: list[RepositoryProblem] = []
        failed_workflows: set[str] = set()

        async def apply_one(item: Desired) -> int:
            key = (item.kind, target.namespace, item.name)
            body = existing.get((item.kind, item.name))
            observed = observe({**body, "kind": item.kind}) if body else None
            if item.workflow in failed_workflows:
                return 0
            if not self.applied.needs_apply(key, item.applied_hash, observed):
                return 0
            manifest = _annotated(item, commit)
            async with slots:
                try:
                    response = await self.api.apply(manifest)
                except kube.ApiError as error:
                    if error.status not in (400, 403, 422):
                        raise
                    failed_workflows.add(item.workflow)
                    refused.append(_refused(item, error))
                    return 0
            self.applied.remember(key, response)
            return 1

        # ConfigMaps first, all at once, then the Workflows that mount them.
        count = 0
        for kind in ("ConfigMap", "Workflow"):
            batch = [item for item in desired if item.kind == kind]
            count += sum(await asyncio.gather(*(apply_one(item) for item in batch)))
        return count, refused

    async def _delete(self, namespace: str, workflows: list[str], config_maps: list[str]) -> int:
        count = 0
        for kind, names in ((kube.WORKFLOW, workflows), (kube.CONFIG_MAP, config_maps)):
            for name in names:
                self._deleted.add((kind.kind, namespace, name))
                if await self.api.delete(kind, namespace, name):
                    count += 1
                    logger.info(
                        "Deleted %s %s/%s: its folder left the source", kind.kind, namespace, name
                    )
                else:
                    self._deleted.discard((kind.kind, namespace, name))
                self.applied.forget_owner(namespace, {name})
        return count

    async def _auth(self, installation: _Installation, spec: GitSource) -> git.GitAuth | None:
        if spec.credentials is None:
            return None
        namespace = installation.key[0]
        secret = await self.api.get(kube.SECRET, namespace, spec.credentials.secret_name)
        if secret is None:
            raise _CredentialsError(
                f"the credentials Secret {spec.credentials.secret_name!r} does not exist in"
                f" namespace {namespace!r}"
            )
        data: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(value).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise _CredentialsError(
                    f"the key {key!r} of Secret {spec.credentials.secret_name!r} is not UTF-8 text"
                ) from None
        auth = git.GitAuth.from_secret(data)
        if not (auth.password or auth.ssh_private_key or auth.known_hosts):
            raise _CredentialsError(
                f"the Secret {spec.credentials.secret_name!r} holds none of the keys token,"
                " password, ssh-privatekey and known_hosts"
            )
        return auth

    # -- status --------------------------------------------------------------------------------

    async def _report(
        self, installation: _Installation, source: _Source, outcome: SyncOutcome
    ) -> None:
        name = source.spec.name
        previous = installation.entries.get(name) or next(
            (entry for entry in installation.written if entry.get("name") == name), None
        )
        update = source_status(name, previous, outcome, installation.model.generation, self.clock())
        installation.entries[name] = update.entry
        if update.changed:
            await self._write_status(installation)
        if update.event:
            await self._post_event(installation, *update.event)

    async def _write_status(self, installation: _Installation) -> None:
        async with installation.lock:
            current = {entry.get("name"): entry for entry in installation.written}
            entries = []
            for source in installation.model.spec.sources:
                entry = installation.entries.get(source.name) or current.get(source.name)
                if entry is not None:
                    entries.append(entry)
            if entries == installation.written:
                return
            namespace, name = installation.key
            try:
                response = await self.api.patch_status(
                    kube.INSTALLATION, namespace, name, {"sources": entries or None}
                )
            except kube.ApiError as error:
                if error.status != 404:
                    raise
                return
            installation.written = _status_sources(response)

    async def _post_event(
        self, installation: _Installation, event_type: str, reason: str, message: str
    ) -> None:
        metadata = installation.body["metadata"]
        regarding = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": INSTALLATION_KIND,
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
        }
        try:
            await self.api.post_event(
                regarding,
                event_type=event_type,
                reason=reason,
                message=message,
                component=self.component,
            )
        except kube.ApiError as error:
            logger.warning(
                "Could not post Event %s on OrchestratorInstance %s/%s: %s",
                reason,
                metadata["namespace"],
                metadata["name"],
                error,
            )

    # -- orphans -------------------------------------------------------------------------------

    def _sweep_if_needed(self, installation: _Installation) -> None:
        """Delete mirrored objects of sources that left the spec or moved to another namespace.

        Runs when the installation is first seen and whenever its sources or their namespaces
        change, so that a change made while the operator was down is caught up.
        """
        namespace = installation.key[0]
        targets = {
            spec.name: spec.target_namespace or namespace
            for spec in installation.model.spec.sources
        }
        if installation.swept == targets:
            return
        installation.swept = targets
        selector = _installation_selector(installation.key)
        namespaces = sorted({namespace, *targets.values()})
        self._spawn(self._sweep(selector, targets, namespaces))

    async def _sweep(self, selector: str, keep: Mapping[str, str], namespaces: list[str]) -> None:
        try:
            await self._delete_labelled(None, selector, keep)
        except kube.ApiError as error:
            if error.status != 403:
                raise
            # An operator allowed only some namespaces sweeps those it knows of.
            for namespace in namespaces:
                await self._delete_labelled(namespace, selector, keep)

    async def _delete_labelled(
        self, namespace: str | None, selector: str, keep: Mapping[str, str] | None
    ) -> None:
        """Delete objects matching `selector`, except those of a kept source in its namespace."""
        for kind in (kube.WORKFLOW, kube.CONFIG_MAP):
            for body in await self.api.list(kind, namespace, label_selector=selector):
                metadata = body["metadata"]
                source = (metadata.get("labels") or {}).get(SOURCE_LABEL)
                if keep is not None and keep.get(source or "") == metadata["namespace"]:
                    continue
                self._deleted.add((kind.kind, metadata["namespace"], metadata["name"]))
                if await self.api.delete(kind, metadata["namespace"], metadata["name"]):
                    logger.info(
                        "Deleted %s %s/%s: its source %s is no longer mirrored there",
                        kind.kind,
                        metadata["namespace"],
                        metadata["name"],
                        source,
                    )

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Cleaning up mirrored objects failed")


class _CredentialsError(Exception):
    pass


def _parse_installation(body: Mapping[str, Any]) -> Installation:
    metadata = body["metadata"]
    return Installation(
        name=metadata["name"],
        namespace=metadata["namespace"],
        uid=metadata.get("uid", ""),
        generation=metadata.get("generation", 1),
        spec=InstallationSpec.model_validate(body.get("spec") or {}),
    )


def _status_sources(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    sources = (body.get("status") or {}).get("sources") or []
    return [dict(entry) for entry in sources if isinstance(entry, Mapping)]


def _fingerprint(installation: Installation, spec: GitSource) -> str:
    """What, besides the repository, decides a source's Workflows: a change forces a sync."""
    target = spec.target_namespace or installation.namespace
    settings = {
        "source": spec.model_dump(mode="json", by_alias=True),
        "uid": installation.uid,
        "admitted": installation.admits(target),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _conflicts(outcome: SyncOutcome | None) -> bool:
    """Whether the last sync left Workflows out for reasons that another try may not meet."""
    retried = (WORKFLOW_CONFLICT, APPLY_FAILED)
    return outcome is not None and any(p.reason in retried for p in outcome.problems)


def _target_namespace(source: _Source) -> str:
    return source.spec.target_namespace or source.key[0]


def _target(installation: Installation, spec: GitSource) -> MirrorTarget:
    return MirrorTarget(
        installation=installation.name,
        installation_namespace=installation.namespace,
        installation_uid=installation.uid,
        source=spec.name,
        namespace=spec.target_namespace or installation.namespace,
    )


def _ref(spec: GitSource) -> git.RefSpec:
    if spec.ref is None:
        return git.RefSpec()
    return git.RefSpec(branch=spec.ref.branch, tag=spec.ref.tag, commit=spec.ref.commit)


def _ignored_links(links: tuple[str, ...], path: str) -> list[RepositoryProblem]:
    base = PurePosixPath(path.strip("/")) if path.strip("/") else None
    return [
        RepositoryProblem(
            SYMLINK_IGNORED,
            link,
            f"{link} is a symbolic link; links are not checked out, so what it points to is"
            " not part of any workflow",
            blocking=False,
        )
        for link in links
        if base is None or PurePosixPath(link).is_relative_to(base)
    ]


def _annotated(item: Desired, commit: str) -> dict[str, Any]:
    """The manifest as sent: with the hash it was rendered with, and for a Workflow the commit."""
    metadata = dict(item.manifest["metadata"])
    annotations = {**metadata.get("annotations", {}), APPLIED_HASH_ANNOTATION: item.applied_hash}
    if item.kind == "Workflow":
        annotations[SOURCE_COMMIT_ANNOTATION] = commit
    metadata["annotations"] = annotations
    return {**item.manifest, "metadata": metadata}


def _refused(item: Desired, error: kube.ApiError) -> RepositoryProblem:
    folder = item.manifest["metadata"].get("annotations", {}).get("orchestrator.dev/source-path")
    return RepositoryProblem(
        APPLY_FAILED,
        folder or "",
        f"the API server refused {item.kind} {item.name!r}: {error.api_message}",
        name=item.workflow,
    )


def _installation_selector(key: InstallationKey) -> str:
    namespace, name = key
    return f"{INSTALLATION_LABEL}={name},{INSTALLATION_NAMESPACE_LABEL}={namespace},{SOURCE_LABEL}"


def _who(source: _Source) -> tuple[str, str, str]:
    namespace, installation, name = source.key
    return name, namespace, installation
