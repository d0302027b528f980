"""The git adapter against real git: over file://, and over HTTPS on loopback with a token."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.adapters import git as git_adapter
from orchestrator_operator.adapters.git import (
    AUTHENTICATION_FAILED,
    INVALID_SOURCE,
    REF_NOT_FOUND,
    REPOSITORY_NOT_FOUND,
    REPOSITORY_UNREACHABLE,
    SOURCE_TOO_LARGE,
    Checkout,
    GitAuth,
    GitClient,
    GitError,
    RefSpec,
)
from orchestrator_operator.localcluster.git_server import (
    GitServer,
    commit_all,
    create_repository,
    git,
    serve_fixture_repository,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
TOKEN = "glpat-Zq8vN3xK2mW7pR4tY6uB"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    path = tmp_path / "served" / "workflows"
    create_repository(path, FIXTURES)
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "scratch"
    folder.mkdir()
    return folder


@pytest.fixture
def server(repository: Path) -> Iterator[GitServer]:
    with GitServer(repository.parent, token=TOKEN) as running:
        yield running


def file_client(scratch: Path, **settings: Any) -> GitClient:
    return GitClient(allow_file=True, timeout=30, work_dir=str(scratch), **settings)


def checkout(client: GitClient, url: str, ref: RefSpec, **kwargs: Any) -> dict[str, Any]:
    """Check out, and return what the checkout looked like while it existed."""

    async def run() -> dict[str, Any]:
        async with client.checkout(
            url, ref, max_bytes=kwargs.pop("max_bytes", 10**8), **kwargs
        ) as tree:
            return {
                "tree": tree,
                "files": sorted(os.listdir(tree.root)),
                "config": (tree.root / ".git" / "config").read_text(),
                "greeting": (tree.root / "greeting" / "greeting.sw.yaml").read_text()
                if (tree.root / "greeting").is_dir()
                else None,
            }

    return asyncio.run(run())


def failure(coroutine: Any) -> GitError:
    with pytest.raises(GitError) as raised:
        asyncio.run(coroutine)
    return raised.value


# -- file:// ----------------------------------------------------------------------------------


def test_refs_resolve_to_the_commits_they_name(repository: Path, scratch: Path) -> None:
    head = git(repository, "rev-parse", "HEAD")
    git(repository, "tag", "-a", "v1", "-m", "release 1")
    git(repository, "tag", "light")
    git(repository, "checkout", "--quiet", "-b", "feature")
    feature = commit_all(repository, "Feature work")
    client = file_client(scratch)
    url = f"file://{repository}"

    assert asyncio.run(client.resolve(url, RefSpec(branch="main"))) == head
    assert asyncio.run(client.resolve(url, RefSpec(branch="feature"))) == feature
    assert asyncio.run(client.resolve(url, RefSpec(tag="v1"))) == head
    assert asyncio.run(client.resolve(url, RefSpec(tag="light"))) == head
    # HEAD of the served repository is the feature branch now.
    assert asyncio.run(client.resolve(url, RefSpec())) == feature


def test_a_checkout_holds_the_commits_files_and_no_url_in_its_config(
    repository: Path, scratch: Path
) -> None:
    head = git(repository, "rev-parse", "HEAD")

    seen = checkout(file_client(scratch), f"file://{repository}", RefSpec(branch="main"))

    assert seen["tree"].commit == head
    assert "greeting" in seen["files"]
    assert str(repository) not in seen["config"]
    assert os.listdir(scratch) == [], "the checkout is removed when the context ends"


def test_a_tag_and_a_commit_can_be_checked_out(repository: Path, scratch: Path) -> None:
    first = git(repository, "rev-parse", "HEAD")
    git(repository, "tag", "-a", "v1", "-m", "release 1")
    (repository / "greeting" / "greeting.sw.yaml").write_text("id: changed\n")
    commit_all(repository, "Change greeting")
    client = file_client(scratch)
    url = f"file://{repository}"

    by_tag = checkout(client, url, RefSpec(tag="v1"))
    by_commit = checkout(client, url, RefSpec(commit=first))

    assert by_tag["tree"].commit == first
    assert by_commit["tree"].commit == first
    assert "id: greeting" in by_commit["greeting"]


def test_a_force_push_is_followed_not_merged(repository: Path, scratch: Path) -> None:
    client = file_client(scratch)
    url = f"file://{repository}"
    (repository / "greeting" / "greeting.sw.yaml").write_text("id: before\n")
    before = commit_all(repository, "Before the rewrite")
    assert checkout(client, url, RefSpec(branch="main"))["tree"].commit == before

    git(repository, "reset", "--quiet", "--hard", "HEAD~1")
    (repository / "greeting" / "greeting.sw.yaml").write_text("id: rewritten\n")
    rewritten = commit_all(repository, "Rewritten history")
    seen = checkout(client, url, RefSpec(branch="main"))

    assert seen["tree"].commit == rewritten
    assert seen["greeting"] == "id: rewritten\n"


def test_symbolic_links_are_listed_and_not_written(repository: Path, scratch: Path) -> None:
    os.symlink("/etc/passwd", repository / "greeting" / "passwd.json")
    os.symlink("../shared", repository / "greeting" / "shared")
    commit_all(repository, "Links")

    seen = checkout(file_client(scratch), f"file://{repository}", RefSpec(branch="main"))
    tree: Checkout = seen["tree"]

    assert set(tree.symlinks) == {"greeting/passwd.json", "greeting/shared"}


def test_a_branch_that_does_not_exist(repository: Path, scratch: Path) -> None:
    client = file_client(scratch)
    url = f"file://{repository}"

    assert failure(client.resolve(url, RefSpec(branch="nope"))).reason == REF_NOT_FOUND
    missing = RefSpec(commit="0" * 40)

    async def fetch_missing_commit() -> None:
        async with client.checkout(url, missing, max_bytes=10**8):
            pass

    assert failure(fetch_missing_commit()).reason == REF_NOT_FOUND
    assert os.listdir(scratch) == []


def test_a_repository_larger_than_allowed_is_refused(repository: Path, scratch: Path) -> None:
    async def fetch() -> None:
        async with file_client(scratch).checkout(
            f"file://{repository}", RefSpec(), max_bytes=100_000
        ):
            pass

    error = failure(fetch())

    assert error.reason == SOURCE_TOO_LARGE
    assert "100,000" in error.message
    assert os.listdir(scratch) == []


def test_a_repository_that_does_not_exist(scratch: Path, tmp_path: Path) -> None:
    error = failure(file_client(scratch).resolve(f"file://{tmp_path}/nothing", RefSpec()))

    assert error.reason == REPOSITORY_NOT_FOUND


def test_file_urls_are_refused_unless_allowed(repository: Path, scratch: Path) -> None:
    client = GitClient(timeout=30, work_dir=str(scratch))

    assert failure(client.resolve(f"file://{repository}", RefSpec())).reason == INVALID_SOURCE


def test_a_url_that_is_an_option_never_reaches_git(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"git was started: {args}")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_process)
    client = file_client(scratch)

    for url in ("--upload-pack=touch /tmp/x", "-c core.sshCommand=x", "ext::sh -c x"):
        assert failure(client.resolve(url, RefSpec())).reason == INVALID_SOURCE
    assert failure(client.resolve("https://h/x", RefSpec(branch="--all"))).reason == INVALID_SOURCE


# -- HTTPS on loopback ------------------------------------------------------------------------


def https_client(server: GitServer, scratch: Path) -> GitClient:
    return GitClient(ca_file=str(server.ca_file), timeout=30, work_dir=str(scratch))


def test_a_token_opens_the_repository(server: GitServer, repository: Path, scratch: Path) -> None:
    seen = checkout(
        https_client(server, scratch),
        server.url("workflows"),
        RefSpec(branch="main"),
        auth=GitAuth.from_secret({"token": TOKEN}),
    )

    assert seen["tree"].commit == git(repository, "rev-parse", "HEAD")
    assert TOKEN not in seen["config"]
    assert any(request.authorized and request.status == 200 for request in server.requests)


@pytest.mark.parametrize("auth", [None, GitAuth.from_secret({"token": "wrong-token"})])
def test_a_missing_or_wrong_token_is_an_authentication_failure(
    server: GitServer, scratch: Path, auth: GitAuth | None
) -> None:
    client = https_client(server, scratch)

    error = failure(client.resolve(server.url("workflows"), RefSpec(), auth))

    assert error.reason == AUTHENTICATION_FAILED
    assert os.listdir(scratch) == []


def test_an_unknown_certificate_authority_is_refused(server: GitServer, scratch: Path) -> None:
    client = GitClient(timeout=30, work_dir=str(scratch))

    error = failure(client.resolve(server.url("workflows"), RefSpec(), GitAuth(password=TOKEN)))

    assert error.reason == REPOSITORY_UNREACHABLE
    assert "certificate" in error.message


def test_the_token_is_never_an_argument_and_only_in_the_askpass_variable(
    server: GitServer, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[tuple[str, ...], dict[str, str]]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> Any:
        started.append((tuple(args), dict(kwargs["env"])))
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    checkout(
        https_client(server, scratch),
        server.url("workflows"),
        RefSpec(branch="main"),
        auth=GitAuth.from_secret({"token": TOKEN}),
    )

    assert started
    for args, env in started:
        assert not any(TOKEN in arg for arg in args), args
        holding = {name for name, value in env.items() if TOKEN in value}
        assert holding <= {"ORCHESTRATOR_GIT_PASSWORD"}
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_ALLOW_PROTOCOL"] == "https"
        assert "KUBECONFIG" not in env
    assert os.listdir(scratch) == []


def test_a_closed_port_is_unreachable(scratch: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = GitClient(timeout=30, work_dir=str(scratch))

    error = failure(client.resolve(f"https://127.0.0.1:{port}/workflows", RefSpec()))

    assert error.reason == REPOSITORY_UNREACHABLE


def test_a_server_that_never_answers_is_given_up_on(scratch: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = GitClient(timeout=2, work_dir=str(scratch))

        error = failure(client.resolve(f"https://127.0.0.1:{port}/workflows", RefSpec()))

    # The message comes from the timeout's own path: the fetch was given up, not finished.
    assert error.reason == REPOSITORY_UNREACHABLE
    assert "did not finish within 2 s" in error.message
    assert os.listdir(scratch) == []


def test_the_size_is_watched_while_the_fetch_runs(
    repository: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the listing check out of the way, only the watch on the arriving objects can stop
    # the fetch.
    monkeypatch.setattr(git_adapter, "_tree_summary", lambda listing: (0, [], []))

    async def fetch() -> None:
        async with file_client(scratch).checkout(
            f"file://{repository}", RefSpec(), max_bytes=50_000
        ):
            pass

    error = failure(fetch())

    assert error.reason == SOURCE_TOO_LARGE
    assert "stopped" in error.message


# -- ssh ----------------------------------------------------------------------------------------


def test_ssh_checks_host_keys_and_offers_only_the_given_key(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
    auth = GitAuth.from_secret({"ssh-privatekey": key, "known_hosts": "127.0.0.1 ssh-ed25519 AAAA"})
    seen: dict[str, Any] = {}
    real = asyncio.create_subprocess_exec

    def look(args: tuple[Any, ...], command: str) -> None:
        key_file = Path(command.split(" -i ", 1)[1].split()[0])
        seen.update(
            args=args,
            command=command,
            key_mode=key_file.stat().st_mode & 0o777,
            key=key_file.read_text(),
            key_file=key_file,
        )

    async def recording(*args: Any, **kwargs: Any) -> Any:
        look(args, kwargs["env"]["GIT_SSH_COMMAND"])
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    client = GitClient(timeout=20, work_dir=str(scratch))

    error = failure(
        client.resolve(f"ssh://git@127.0.0.1:{closed_port()}/workflows.git", RefSpec(), auth)
    )

    assert error.reason == REPOSITORY_UNREACHABLE
    command = seen["command"]
    for option in (
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "PasswordAuthentication=no",
    ):
        assert option in command
    assert "UserKnownHostsFile=" in command
    assert seen["key_mode"] == 0o600
    assert "not-a-real-key" in seen["key"]
    assert not any("not-a-real-key" in arg for arg in seen["args"])
    assert not seen["key_file"].exists()
    assert os.listdir(scratch) == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_quick_start_serves_the_fixture_repository(tmp_path: Path, scratch: Path) -> None:
    with serve_fixture_repository(FIXTURES, tmp_path / "served") as (server, url):
        client = https_client(server, scratch)
        commit = asyncio.run(client.resolve(url, RefSpec()))

    assert commit == git(tmp_path / "served" / "workflows", "rev-parse", "HEAD")
