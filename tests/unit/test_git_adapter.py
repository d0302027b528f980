"""The git adapter against real git: over file://, and over HTTPS on loopback with a token."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.ssh_server import SshServer, make_key, ssh_server
from orchestrator_operator.adapters import git as git_adapter
from orchestrator_operator.adapters.git import (
    AUTHENTICATION_FAILED,
    HOST_KEY_NOT_TRUSTED,
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
                "links on disk": [link for link in tree.symlinks if (tree.root / link).exists()]
                + [link for link in tree.symlinks if (tree.root / link).is_symlink()],
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
    # Neither the links nor the files git writes in their place with core.symlinks=false.
    assert seen["links on disk"] == []


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
    # The Secret holds an ssh key as well: an https URL leaves it unused.
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nunused\n-----END OPENSSH PRIVATE KEY-----"
    checkout(
        https_client(server, scratch),
        server.url("workflows"),
        RefSpec(branch="main"),
        auth=GitAuth.from_secret({"token": TOKEN, "ssh-privatekey": key, "known_hosts": "h"}),
    )

    assert started
    for args, env in started:
        assert not any(TOKEN in arg for arg in args), args
        holding = {name for name, value in env.items() if TOKEN in value}
        assert holding <= {"ORCHESTRATOR_GIT_PASSWORD"}
        assert "GIT_SSH_COMMAND" not in env
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_ALLOW_PROTOCOL"] == "https"
        assert "KUBECONFIG" not in env
    assert os.listdir(scratch) == []


def credential_files(folder: Path) -> list[str]:
    return [
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and (path.name == "askpass.sh" or TOKEN.encode() in path.read_bytes())
    ]


def test_no_credential_is_left_on_disk_or_in_the_environment_once_fetched(
    server: GitServer, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[tuple[str, ...], dict[str, str]]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> Any:
        started.append((tuple(args), dict(kwargs["env"])))
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    client = https_client(server, scratch)

    async def run() -> list[str]:
        auth = GitAuth.from_secret({"token": TOKEN})
        url = server.url("workflows")
        async with client.checkout(url, RefSpec(branch="main"), max_bytes=10**8, auth=auth):
            # While the commit is read: every file of the scratch folder, the checkout's too.
            return await asyncio.to_thread(credential_files, scratch)

    assert asyncio.run(run()) == []
    fetch = next(n for n, (args, _) in enumerate(started) if "fetch" in args)
    assert "ORCHESTRATOR_GIT_PASSWORD" in started[fetch][1]
    after = [env for _, env in started[fetch + 1 :]]
    assert len(after) == 3  # rev-parse, ls-tree, checkout
    for env in after:
        assert not {"GIT_ASKPASS", "ORCHESTRATOR_GIT_PASSWORD", "GIT_SSH_COMMAND"} & set(env)
        assert not any(TOKEN in value for value in env.values())


def test_scratch_folders_of_processes_that_are_gone_are_removed(scratch: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    ours, alive = os.getpid(), os.getppid()
    for name in (
        f"orchestrator-git-{gone.pid}-killed",
        f"orchestrator-git-{ours}-earlier",
        f"orchestrator-git-{ours}-running",
        f"orchestrator-git-{alive}-running",
        "orchestrator-git-unknown",
        "someone-else",
    ):
        (scratch / name / "private" / "credentials").mkdir(parents=True)
        (scratch / name / "private" / "credentials" / "id_key").write_text("KEY")
    # A folder with our process id made before this process started: a restarted container.
    an_hour_ago = time.time() - 3600
    os.utime(scratch / f"orchestrator-git-{ours}-earlier", (an_hour_ago, an_hour_ago))

    file_client(scratch)

    assert sorted(os.listdir(scratch)) == sorted(
        [
            f"orchestrator-git-{ours}-running",
            f"orchestrator-git-{alive}-running",
            "orchestrator-git-unknown",
            "someone-else",
        ]
    )


def test_output_that_only_goes_into_messages_is_kept_only_at_its_end(
    tmp_path: Path, scratch: Path
) -> None:
    chatty = tmp_path / "chatty-git"
    chatty.write_text(
        "#!/bin/sh\n"
        "head -c 3000000 /dev/zero | tr '\\0' x\n"
        "echo ' the end of stdout'\n"
        "head -c 3000000 /dev/zero | tr '\\0' y >&2\n"
        "echo ' the end of stderr' >&2\n"
    )
    chatty.chmod(0o755)
    client = GitClient(timeout=30, work_dir=str(scratch), git=str(chatty))
    env = {"PATH": os.environ["PATH"]}

    kept = asyncio.run(client._git(["fetch"], env=env, cwd=tmp_path))
    whole = asyncio.run(client._git(["ls-tree"], env=env, cwd=tmp_path, whole_output=True))

    assert len(kept.stdout) == 64 * 1024
    assert kept.stdout.endswith("x the end of stdout\n")
    assert len(kept.stderr) == 64 * 1024
    assert kept.stderr.endswith("y the end of stderr\n")
    assert len(whole.stdout) == 3_000_000 + len(" the end of stdout\n")
    assert len(whole.stderr) == 64 * 1024


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
    hosts = "127.0.0.1 ssh-ed25519 AAAA"
    # The Secret holds a token as well: an ssh URL leaves it unused.
    auth = GitAuth.from_secret({"ssh-privatekey": key, "known_hosts": hosts, "token": TOKEN})
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
        seen["token in env"] = any(TOKEN in value for value in kwargs["env"].values())
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
    assert seen["token in env"] is False
    assert os.listdir(scratch) == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    with ssh_server(tmp_path / "sshd") as running:
        yield running


def ssh_auth(server: SshServer, known_hosts: str | None = None) -> GitAuth:
    return GitAuth.from_secret(
        {
            "ssh-privatekey": server.client_key.private_key,
            "known_hosts": known_hosts or server.known_hosts(),
        }
    )


def test_a_key_opens_a_repository_over_ssh_and_never_reaches_an_argument(
    sshd: SshServer, repository: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[tuple[str, ...], dict[str, str]]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> Any:
        started.append((tuple(args), dict(kwargs["env"])))
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    client = GitClient(timeout=30, work_dir=str(scratch))
    url, auth = sshd.url(repository), ssh_auth(sshd)

    async def run() -> tuple[str, Checkout, list[str], str]:
        commit = await client.resolve(url, RefSpec(branch="main"), auth)
        async with client.checkout(url, RefSpec(branch="main"), max_bytes=10**8, auth=auth) as tree:
            keys = await asyncio.to_thread(lambda: [p.name for p in scratch.rglob("id_key")])
            greeting = (tree.root / "greeting" / "greeting.sw.yaml").read_text()
            return commit, tree, keys, greeting

    commit, tree, keys_while_read, greeting = asyncio.run(run())

    head = git(repository, "rev-parse", "HEAD")
    assert commit == tree.commit == head
    assert greeting == (repository / "greeting" / "greeting.sw.yaml").read_text()
    assert keys_while_read == []
    secret_line = sshd.client_key.private_key.splitlines()[1]
    ssh_commands = [env["GIT_SSH_COMMAND"] for _, env in started if "GIT_SSH_COMMAND" in env]
    assert len(ssh_commands) == 3  # ls-remote, init, fetch
    for args, env in started:
        assert not any(secret_line in arg for arg in args)
        assert not any(secret_line in value for value in env.values())
    assert os.listdir(scratch) == []


def test_a_host_key_not_in_known_hosts_is_not_trusted_over_ssh(
    sshd: SshServer, repository: Path, scratch: Path, tmp_path: Path
) -> None:
    impostor = make_key(tmp_path, "other_host_key")
    client = GitClient(timeout=30, work_dir=str(scratch))

    error = failure(
        client.resolve(sshd.url(repository), RefSpec(), ssh_auth(sshd, sshd.known_hosts(impostor)))
    )

    assert error.reason == HOST_KEY_NOT_TRUSTED
    assert os.listdir(scratch) == []


def test_a_key_the_server_does_not_know_fails_authentication_over_ssh(
    sshd: SshServer, repository: Path, scratch: Path, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path, "stranger_key")
    auth = GitAuth.from_secret(
        {"ssh-privatekey": stranger.private_key, "known_hosts": sshd.known_hosts()}
    )
    client = GitClient(timeout=30, work_dir=str(scratch))

    error = failure(client.resolve(sshd.url(repository), RefSpec(), auth))

    assert error.reason == AUTHENTICATION_FAILED
    assert stranger.private_key.splitlines()[1] not in error.message


def test_the_quick_start_serves_the_fixture_repository(tmp_path: Path, scratch: Path) -> None:
    with serve_fixture_repository(FIXTURES, tmp_path / "served") as (server, url):
        client = https_client(server, scratch)
        commit = asyncio.run(client.resolve(url, RefSpec()))

    assert commit == git(tmp_path / "served" / "workflows", "rev-parse", "HEAD")
