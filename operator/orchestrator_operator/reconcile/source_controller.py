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
import contextlib
import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
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
from orchestrator_operator.reconcile.conditions import FALSE, Finding
from orchestrator_operator.reconcile.source import (
    APPLY_FAILED,
    CREDENTIALS_NOT_FOUND,
    PATH_NOT_FOUND,
    SOURCE_SYNCED,
    WORKFLOW_CONFLICT,
    SyncOutcome,
    plan_sync,
    source_status,
)
from orchestrator_operator.reconcile.source_discovery import DiscoveryCache, discover_checkout
from orchestrator_operator.reconcile.source_writer import CredentialsError, MirrorWriter
from orchestrator_operator.render.discovered import (
    SYMLINK_IGNORED,
    DiscoveryError,
    RepositoryProblem,
)
from orchestrator_operator.render.mirror import (
    INSTALLATION_NAMESPACE_LABEL,
    SOURCE_LABEL,
    MirrorTarget,
    render_discovery,
)
from orchestrator_operator.render.names import INSTALLATION_LABEL

logger = logging.getLogger(__name__)

InstallationKey = tuple[str, str]  # namespace, name
SourceKey = tuple[str, str, str]  # namespace, installation, source

# The first retry of a failing source comes soon; later ones wait twice as long each time, up
# to the longer of the poll interval and this.
FIRST_RETRY_SECONDS: Final = 10.0
MAX_BACKOFF_SECONDS: Final = 600.0
JITTER: Final = 0.1

_DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600}

# How a sync ended, as the observer is told: a commit mirrored (with or without problems in
# single folders), the same commit as last time, or a failure.
SYNC_SUCCESS: Final = "success"
SYNC_UNCHANGED: Final = "unchanged"
SYNC_ERROR: Final = "error"

# Told of the end of every sync: the source as namespace/installation/source, how it ended,
# and how long it took in seconds.
SyncObserver = Callable[[str, str, float], None]


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
    discovered: DiscoveryCache = field(default_factory=DiscoveryCache)


@dataclass
class SourceController:
    api: kube.KubeApi
    git_client: git.GitClient
    component: str = "orchestrator-operator"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    _installations: dict[InstallationKey, _Installation] = field(default_factory=dict)
    _sources: dict[SourceKey, _Source] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    # Where folders are loaded: a process pool, owned by the controller from here on, or
    # threads when None.
    executor: Executor | None = None
    observe: SyncObserver | None = None
    writer: MirrorWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = MirrorWriter(self.api)

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
            self._spawn(lambda: self._write_status(known))
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
        if self.writer.deleted_by_us((kind, namespace, name)):
            return
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
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def known(self) -> list[SourceKey]:
        return list(self._sources)

    def tracks(self, namespace: str, name: str) -> bool:
        """Whether this installation has sources running or being cleaned up here."""
        return (namespace, name) in self._installations

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
        # Limitation: an installation deleted while the operator is not running leaves its
        # Workflows in other namespaces behind; delete them by their installation label.
        namespace, name = key
        selector = _installation_selector(key)
        targets = {spec.target_namespace or namespace for spec in installation.model.spec.sources}
        for target in sorted(targets - {namespace}):
            self._spawn(functools.partial(self.writer.delete_labelled, target, selector, None))
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
        started = time.monotonic()
        try:
            return await self.sync(source, force)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Source %s of OrchestratorInstance %s/%s failed", *_who(source))
            self._observed(source, SYNC_ERROR, started)
            return False

    def _observed(self, source: _Source, result: str, started: float) -> None:
        if self.observe is not None:
            self.observe("/".join(source.key), result, time.monotonic() - started)

    # -- one sync ------------------------------------------------------------------------------

    async def sync(self, source: _Source, force: bool) -> bool:
        """One poll of a source; True when it ended with the commit mirrored.

        Limitation: a poll that finds the commit unchanged looks no further, so a mirrored
        Workflow or ConfigMap edited by hand keeps the edit until the next commit or sync-now
        (one deleted by hand comes back at once: its deletion is watched). A source pinned to
        a commit is not asked for again at all while that commit is mirrored.
        """
        installation = self._installations.get(source.key[:2])
        if installation is None:
            return True
        started = time.monotonic()
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
            url = git.check_url(spec.url, allow_file=self.git_client.allow_file)
            git.check_ref(ref)
            auth = await self.writer.credentials(installation.key[0], spec, url.transport)
            commit = await self.git_client.resolve(spec.url, ref, auth)
            last = source.last
            if not force and last and commit == source.commit and not _conflicts(last):
                logger.debug("Source %s of OrchestratorInstance %s/%s: unchanged", *_who(source))
                await self._report(installation, source, last)
                self._observed(source, SYNC_UNCHANGED, started)
                return True
            outcome = await self._mirror(source, target, ref, auth, fresh=force)
        except git.GitError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, error.reason, error.message)
        except DiscoveryError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, PATH_NOT_FOUND, str(error))
        except CredentialsError as error:
            failure = Finding(SOURCE_SYNCED, FALSE, CREDENTIALS_NOT_FOUND, str(error))
        except kube.ApiError as error:
            if error.status >= 500 or error.status == 429:
                raise
            failure = Finding(SOURCE_SYNCED, FALSE, APPLY_FAILED, error.api_message)
        else:
            source.commit = outcome.commit
            source.last = replace(outcome, applied=0, deleted=0)
            await self._report(installation, source, outcome)
            self._observed(source, SYNC_SUCCESS, started)
            return True

        logger.warning(
            "Source %s of OrchestratorInstance %s/%s not synced: %s: %s",
            *_who(source),
            failure.reason,
            failure.message,
        )
        await self._report(installation, source, SyncOutcome(failure=failure))
        self._observed(source, SYNC_ERROR, started)
        return False

    async def _mirror(
        self,
        source: _Source,
        target: MirrorTarget,
        ref: git.RefSpec,
        auth: git.GitAuth | None,
        fresh: bool,
    ) -> SyncOutcome:
        spec = source.spec
        started = time.monotonic()
        if fresh:
            # A forced sync (sync-now, other settings, an object deleted) reads every folder.
            source.discovered.clear()
        async with self.git_client.checkout(
            spec.url, ref, max_bytes=spec.max_size_bytes, auth=auth
        ) as tree:
            discovery = await discover_checkout(
                tree.root, spec.path, source.discovered, self.executor
            )
            commit = tree.commit
            links = _ignored_links(tree.symlinks, spec.path)

        read = time.monotonic()
        mirrored, problems = await asyncio.to_thread(render_discovery, discovery, target)
        existing = await self.writer.existing(target)
        plan = await asyncio.to_thread(
            plan_sync,
            mirrored,
            [*problems, *links],
            existing.workflows,
            existing.config_maps,
            target,
        )
        applied, refused = await self.writer.apply(plan.apply, existing, target, commit)
        deleted = await self.writer.delete(
            target.namespace, plan.delete_workflows, plan.delete_config_maps
        )
        logger.info(
            "Source %s of OrchestratorInstance %s/%s: commit %s, %d workflows, %d objects"
            " applied, %d deleted, %d problems; %d folders read, %d unchanged; fetched and"
            " read in %.1f s, applied in %.1f s",
            *_who(source),
            commit[:12],
            plan.workflows,
            applied,
            deleted,
            len(plan.problems) + len(refused),
            source.discovered.read,
            source.discovered.reused,
            read - started,
            time.monotonic() - read,
        )
        return SyncOutcome(
            commit=commit,
            problems=(*plan.problems, *refused),
            workflows=plan.workflows - len({p.name for p in refused}),
            applied=applied,
            deleted=deleted,
        )

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
        self._spawn(lambda: self._sweep(selector, targets, namespaces))

    async def _sweep(self, selector: str, keep: Mapping[str, str], namespaces: list[str]) -> None:
        try:
            await self.writer.delete_labelled(None, selector, keep)
        except kube.ApiError as error:
            if error.status != 403:
                raise
            # An operator allowed only some namespaces sweeps those it knows of.
            # Limitation: such an operator is refused the first request of every sweep, which
            # the API server's audit log shows as a 403 of the operator's account.
            for namespace in namespaces:
                await self.writer.delete_labelled(namespace, selector, keep)

    def _spawn(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run work beside the source tasks; it starts inside the task, so that a task cancelled
        before it ran leaves no coroutine behind."""
        task: asyncio.Task[None] = asyncio.create_task(self._guarded(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Cleaning up mirrored objects failed")


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


def _installation_selector(key: InstallationKey) -> str:
    namespace, name = key
    return f"{INSTALLATION_LABEL}={name},{INSTALLATION_NAMESPACE_LABEL}={namespace},{SOURCE_LABEL}"


def _who(source: _Source) -> tuple[str, str, str]:
    namespace, installation, name = source.key
    return name, namespace, installation
