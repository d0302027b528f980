"""The source controller's decisions over time, against an API and a git server that only
record what they are asked: what each poll writes, and how it waits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator_operator.adapters import git, kube
from orchestrator_operator.reconcile.source_controller import (
    FIRST_RETRY_SECONDS,
    MAX_BACKOFF_SECONDS,
    SourceController,
    duration_seconds,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
FIRST = "1" * 40
SECOND = "2" * 40


class FakeApi:
    """Objects by (kind, namespace, name), and every write made."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str]] = []
        self.status: dict[str, Any] = {}

    async def list(
        self, kind: kube.ResourceKind, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        return [
            body for (k, ns, _), body in self.objects.items() if k == kind.kind and ns == namespace
        ]

    async def get(
        self, kind: kube.ResourceKind, namespace: str, name: str
    ) -> dict[str, Any] | None:
        return self.objects.get((kind.kind, namespace, name))

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        key = (manifest["kind"], metadata["namespace"], metadata["name"])
        self.writes.append(("apply", *key[::2]))
        self.objects[key] = manifest
        return manifest

    async def delete(self, kind: kube.ResourceKind, namespace: str, name: str) -> bool:
        self.writes.append(("delete", kind.kind, name))
        return self.objects.pop((kind.kind, namespace, name), None) is not None

    async def patch_status(
        self, kind: kube.ResourceKind, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.writes.append(("status", kind.kind, name))
        self.status.update(status)
        return {"status": dict(self.status)}

    async def post_event(self, regarding: dict[str, Any], **event: Any) -> None:
        self.events.append((event["event_type"], event["reason"]))


class FakeGit:
    """A repository whose commits are folders, and a switch to make it unreachable."""

    allow_file = False

    def __init__(self, commits: dict[str, Path]) -> None:
        self.commits = commits
        self.head = FIRST
        self.down = False
        self.fetches = 0
        self.auths: list[git.GitAuth | None] = []

    async def resolve(self, url: str, ref: git.RefSpec, auth: git.GitAuth | None = None) -> str:
        self.auths.append(auth)
        if self.down:
            raise git.GitError(git.REPOSITORY_UNREACHABLE, "Connection refused")
        return self.head

    @contextlib.asynccontextmanager
    async def checkout(self, url: str, ref: git.RefSpec, **_: Any) -> AsyncIterator[git.Checkout]:
        self.fetches += 1
        yield git.Checkout(self.commits[self.head], self.head, 0)


@pytest.fixture
def commits(tmp_path: Path) -> dict[str, Path]:
    first = tmp_path / "first"
    shutil.copytree(FIXTURES, first)
    second = tmp_path / "second"
    shutil.copytree(FIXTURES, second)
    schema = second / "greeting" / "schemas" / "greeting.sw.input-schema.json"
    schema.write_text(schema.read_text().replace("language", "language ", 1))
    return {FIRST: first, SECOND: second}


def installation(source: dict[str, Any] | None = None, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "OrchestratorInstance",
        "metadata": {
            "name": "orchestrator",
            "namespace": "team-a",
            "uid": "uid-1",
            "generation": 1,
            "annotations": annotations,
        },
        "spec": {
            "sources": [source or {"name": "main", "url": "https://git.example.com/workflows"}]
        },
    }


def controller(api: FakeApi, repository: FakeGit, **settings: Any) -> SourceController:
    return SourceController(
        api=cast(kube.KubeApi, api),
        git_client=cast(git.GitClient, repository),
        rng=random.Random(0),
        **settings,
    )


def stopped_source(sources: SourceController, body: dict[str, Any]) -> Any:
    """The source of an installation, its own task stopped so that the test syncs it."""
    sources.installation_changed(body)
    [source] = sources._sources.values()
    assert source.task is not None
    source.task.cancel()
    return source


async def first_sync(
    api: FakeApi, repository: FakeGit, **settings: Any
) -> tuple[SourceController, Any]:
    sources = controller(api, repository, **settings)
    source = stopped_source(sources, installation())
    assert await sources.sync(source, force=True)
    return sources, source


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"metadata": {"name": name, "namespace": "team-a"}, "data": encoded}


def test_a_first_sync_writes_every_object_then_the_status_once(commits: dict[str, Path]) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        await first_sync(api, repository)

        applied = [write for write in api.writes if write[0] == "apply"]
        assert len([w for w in applied if w[1] == "Workflow"]) == 9
        assert [w for w in applied if w[1] == "ConfigMap"] == [
            ("apply", "ConfigMap", "modify-vm-resources-source-specs")
        ]
        assert api.writes[-1] == ("status", "OrchestratorInstance", "orchestrator")
        assert [w for w in api.writes if w[0] == "status"] == [api.writes[-1]]
        assert api.events == [("Normal", "Synced")]

    asyncio.run(run())


def test_a_poll_of_the_same_commit_writes_nothing_and_fetches_nothing(
    commits: dict[str, Path],
) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository)
        writes, fetches = len(api.writes), repository.fetches

        for _ in range(3):
            assert await sources.sync(source, force=False)

        assert api.writes[writes:] == []
        assert repository.fetches == fetches
        assert len(api.events) == 1

    asyncio.run(run())


def test_a_commit_that_changes_one_file_applies_one_workflow(commits: dict[str, Path]) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository)
        writes = len(api.writes)

        repository.head = SECOND
        assert await sources.sync(source, force=False)

        assert api.writes[writes:] == [
            ("apply", "Workflow", "greeting"),
            ("status", "OrchestratorInstance", "orchestrator"),
        ]
        assert source.discovered.read == 1
        assert source.discovered.reused == 8
        assert api.status["sources"][0]["commit"] == SECOND

    asyncio.run(run())


def test_a_failing_repository_keeps_every_workflow_and_reports_once(
    commits: dict[str, Path],
) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository)
        objects, writes = dict(api.objects), len(api.writes)

        repository.down = True
        assert not await sources.sync(source, force=False)
        assert not await sources.sync(source, force=True)

        assert api.objects == objects
        assert api.writes[writes:] == [("status", "OrchestratorInstance", "orchestrator")]
        [entry] = api.status["sources"]
        assert entry["commit"] == FIRST
        assert entry["conditions"][0]["reason"] == "RepositoryUnreachable"
        assert api.events[-1] == ("Warning", "RepositoryUnreachable")

        repository.down = False
        assert await sources.sync(source, force=False)
        assert api.status["sources"][0]["conditions"][0]["reason"] == "Synced"

    asyncio.run(run())


def test_a_folder_gone_from_git_loses_its_workflow(commits: dict[str, Path]) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository)

        shutil.rmtree(commits[SECOND] / "modify-vm-resources")
        repository.head = SECOND
        assert await sources.sync(source, force=False)

        deleted = [w for w in api.writes if w[0] == "delete"]
        assert deleted == [
            ("delete", "Workflow", "modify-vm-resources"),
            ("delete", "ConfigMap", "modify-vm-resources-source-specs"),
        ]

    asyncio.run(run())


def test_sync_now_is_a_change_of_the_annotation(commits: dict[str, Path]) -> None:
    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository)
        source.force = False

        sources.installation_changed(installation())
        assert not source.force
        sources.installation_changed(installation(**{"orchestrator.dev/sync-now": "1"}))
        assert source.force
        await sources.close()

    asyncio.run(run())


def test_every_sync_tells_the_observer_how_it_ended(commits: dict[str, Path]) -> None:
    seen: list[tuple[str, str, float]] = []

    async def run() -> None:
        api, repository = FakeApi(), FakeGit(commits)
        sources, source = await first_sync(api, repository, observe=lambda *a: seen.append(a))
        assert await sources._sync_safely(source, force=False)
        repository.down = True
        assert not await sources._sync_safely(source, force=False)

    asyncio.run(run())

    main = "team-a/orchestrator/main"
    assert [(name, result) for name, result, _ in seen] == [
        (main, "success"),
        (main, "unchanged"),
        (main, "error"),
    ]
    assert all(seconds >= 0 for _, _, seconds in seen)


SSH_SOURCE = {
    "name": "main",
    "url": "ssh://git@git.example.com/workflows.git",
    "credentials": {"secretName": "git"},
}


@pytest.mark.parametrize(
    ("url", "keys", "named"),
    [
        ("ssh://git@git.example.com/w.git", {"ssh-privatekey": "KEY"}, "no known_hosts"),
        ("ssh://git@git.example.com/w.git", {"token": "ghp_x"}, "neither ssh-privatekey"),
        ("https://git.example.com/w.git", {"ssh-privatekey": "K", "known_hosts": "h"}, "token"),
    ],
)
def test_credentials_the_url_cannot_use_are_refused_before_git_runs(
    commits: dict[str, Path], url: str, keys: dict[str, str], named: str
) -> None:
    async def run() -> tuple[bool, FakeApi, FakeGit]:
        api, repository = FakeApi(), FakeGit(commits)
        api.objects[("Secret", "team-a", "git")] = secret("git", **keys)
        sources = controller(api, repository)
        source = stopped_source(sources, installation({**SSH_SOURCE, "url": url}))
        return await sources.sync(source, force=True), api, repository

    synced, api, repository = asyncio.run(run())

    assert not synced
    assert repository.auths == []
    [condition] = api.status["sources"][0]["conditions"]
    assert condition["reason"] == "CredentialsNotFound"
    assert named in condition["message"]
    assert "KEY" not in condition["message"]


@pytest.mark.parametrize(
    "url", ["https://git.example.com/w.git", "ssh://git@git.example.com/w.git"]
)
def test_a_secret_with_a_token_and_a_key_serves_both_transports(
    commits: dict[str, Path], url: str
) -> None:
    async def run() -> FakeGit:
        api, repository = FakeApi(), FakeGit(commits)
        keys = {"token": "ghp_x", "ssh-privatekey": "KEY", "known_hosts": "host ssh-ed25519 A"}
        api.objects[("Secret", "team-a", "git")] = secret("git", **keys)
        sources = controller(api, repository)
        source = stopped_source(sources, installation({**SSH_SOURCE, "url": url}))
        assert await sources.sync(source, force=True)
        return repository

    [auth] = asyncio.run(run()).auths

    # The transport picks what it uses (see the git adapter's tests): both are handed on.
    assert auth is not None
    assert (auth.password, auth.ssh_private_key) == ("ghp_x", "KEY")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("0s", 1)]
)
def test_poll_intervals(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def test_failures_back_off_from_seconds_to_the_ceiling(commits: dict[str, Path]) -> None:
    async def run() -> list[float]:
        sources = controller(FakeApi(), FakeGit(commits))
        sources.installation_changed(installation())
        [source] = sources._sources.values()
        delays = []
        for failures in range(1, 10):
            source.failures = failures
            delays.append(sources._backoff(source))
        await sources.close()
        return delays

    delays = asyncio.run(run())

    assert FIRST_RETRY_SECONDS * 0.9 <= delays[0] <= FIRST_RETRY_SECONDS * 1.1
    assert all(later >= earlier * 0.8 for earlier, later in itertools.pairwise(delays))
    assert max(delays) <= MAX_BACKOFF_SECONDS * 1.1
