"""Git, as the source controller uses it: find the commit a ref names, and check one commit out.

Every command runs the git CLI in an environment built from nothing: no system or user
configuration, no credential helpers, no terminal prompts, only the transports a source may
use, and a deadline after which the command and its children are killed. Credentials reach git
through the environment of the one command that needs them (an askpass script that prints an
environment variable, a key file readable only by us), never through its arguments, a URL or a
configuration file, and every file they were written to is removed as soon as the network is
done with: before a checkout is written and read. Scratch folders that a process killed
mid-sync left behind are removed when the next client is made.

A checkout is a fresh repository per sync, fetched shallowly by ref: nothing is ever merged,
so a force-push is followed like any other change. Symbolic links are checked out as nothing
at all, and the size of what is fetched is watched while it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

logger = logging.getLogger(__name__)

HTTPS = "https"
SSH = "ssh"
FILE = "file"

# Reasons, as they appear on a source's SourceSynced condition.
INVALID_SOURCE = "InvalidSource"
REPOSITORY_UNREACHABLE = "RepositoryUnreachable"
REPOSITORY_NOT_FOUND = "RepositoryNotFound"
AUTHENTICATION_FAILED = "AuthenticationFailed"
HOST_KEY_NOT_TRUSTED = "HostKeyNotTrusted"
REF_NOT_FOUND = "RefNotFound"
SOURCE_TOO_LARGE = "SourceTooLarge"
GIT_FAILED = "GitFailed"

# The user name sent with a bare token: GitHub wants this one, and GitLab, Gitea and
# Bitbucket accept any user name with a token.
TOKEN_USERNAME = "x-access-token"

# Limitation: repositories in git's SHA-256 object format cannot be mirrored: each checkout
# is a new SHA-1 repository, and git refuses to fetch into it from a SHA-256 one.
FULL_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._~-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>.+)$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]*)?$")
_FORBIDDEN_REF_CHARACTERS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_FETCHED_REF = "refs/mirror/fetched"
_SIZE_CHECK_SECONDS = 0.2
# A transfer slower than this many bytes per second for this long is abandoned.
_LOW_SPEED_BYTES = 1000
_LOW_SPEED_SECONDS = 30
_MAX_MESSAGE = 1000
# What is kept of an output that only goes into messages: its end, where git says what failed.
_KEPT_OUTPUT_BYTES = 64 * 1024
SCRATCH_PREFIX = "orchestrator-git-"
# Scratch folders of this process are made after this moment; older ones that carry its
# process id come from an earlier process that had the same id (a restarted container).
_PROCESS_STARTED = time.time()
# The variables through which credentials reach git.
_CREDENTIAL_VARIABLES = frozenset(
    {"GIT_ASKPASS", "ORCHESTRATOR_GIT_USERNAME", "ORCHESTRATOR_GIT_PASSWORD", "GIT_SSH_COMMAND"}
)


class GitError(Exception):
    """Git could not do what was asked; `reason` is the condition reason, `message` for people.

    Messages are built from git's own words with every URL's user information removed, and
    never hold a credential.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RepositoryUrl:
    """A URL that passed `check_url`, with the transport git will use for it."""

    url: str
    transport: str


@dataclass(frozen=True)
class GitAuth:
    """Credentials of one repository. The values never appear in `repr` or in messages."""

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, data: Mapping[str, str]) -> GitAuth:
        """Credentials from the decoded keys of a Secret (see GitCredentials for the keys).

        A token wins over a password. A Secret may hold both HTTPS and SSH credentials: the
        URL's transport picks which are used.
        """
        token = data.get("token")
        return cls(
            username=data.get("username") or (TOKEN_USERNAME if token else None),
            password=token or data.get("password") or None,
            ssh_private_key=data.get("ssh-privatekey") or None,
            known_hosts=data.get("known_hosts") or None,
        )

    def missing(self, transport: str) -> str | None:
        """What these credentials lack for a URL of `transport`, said for a person; None when
        they will do."""
        if transport == SSH and self.ssh_private_key and not self.known_hosts:
            return (
                "holds ssh-privatekey but no known_hosts: host keys are always checked, so add"
                " the server's host keys (as ssh-keyscan prints them) under the key known_hosts"
            )
        if transport == SSH and not self.known_hosts:
            return "holds neither ssh-privatekey nor known_hosts, which an ssh URL needs"
        if transport == HTTPS and not self.password:
            return "holds neither token nor password, which an https URL needs"
        return None

    def secrets(self) -> list[str]:
        return [value for value in (self.password, self.ssh_private_key) if value]


@dataclass(frozen=True)
class RefSpec:
    """Which revision to take: exactly one of these, or none for the default branch."""

    branch: str | None = None
    tag: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        if self.branch:
            return f"branch {self.branch!r}"
        if self.tag:
            return f"tag {self.tag!r}"
        if self.commit:
            return f"commit {self.commit}"
        return "the default branch"

    def remote_ref(self) -> str:
        """The name the fetch asks the server for."""
        if self.branch:
            return f"refs/heads/{self.branch}"
        if self.tag:
            return f"refs/tags/{self.tag}"
        if self.commit:
            return self.commit
        return "HEAD"


@dataclass(frozen=True)
class Checkout:
    """One commit's files on disk, in a folder that the context manager removes."""

    root: Path
    commit: str
    size_bytes: int
    # Paths of the symbolic links in the commit, which were not written to disk.
    symlinks: tuple[str, ...] = ()
    # Paths of submodules, which are not fetched.
    submodules: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


def check_url(url: str, *, allow_file: bool) -> RepositoryUrl:
    """The transport of a repository URL, or GitError(InvalidSource) saying why it is refused.

    Accepted: https://host/path, ssh://[user@]host[:port]/path, user@host:path, and file://
    only when `allow_file`. Refused: anything that git could read as an option, a transport
    helper (`ext::`, `fd::`), other schemes, local paths, a password inside the URL, and any
    user information in an https URL (a token there would reach git's arguments and the
    checkout's FETCH_HEAD; it belongs in the credentials Secret, where it is not shown to every
    reader of the resource).
    """
    if not url or url != url.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise GitError(INVALID_SOURCE, "the URL is empty or holds spaces or control characters")
    if url.startswith("-"):
        raise GitError(INVALID_SOURCE, "the URL must not start with '-'")
    if "::" in url:
        raise GitError(INVALID_SOURCE, "git transport helpers (such as ext::) are not allowed")

    scheme = _SCHEME.match(url)
    if scheme is None:
        return _check_scp_like(url)
    transport = scheme.group(1).lower()
    if transport == FILE:
        if not allow_file:
            raise GitError(
                INVALID_SOURCE,
                "file:// URLs are disabled; the operator allows them only with"
                " ORCHESTRATOR_OPERATOR_ALLOW_FILE_SOURCES=true",
            )
        if not url[len("file://") :].startswith("/"):
            raise GitError(INVALID_SOURCE, "a file:// URL needs an absolute path")
        return RepositoryUrl(url, FILE)
    if transport not in (HTTPS, SSH):
        raise GitError(
            INVALID_SOURCE, f"the URL scheme {transport!r} is not allowed: use https or ssh"
        )
    _check_network_url(urlsplit(url), transport)
    return RepositoryUrl(url, transport)


def _check_network_url(parts: SplitResult, transport: str) -> None:
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise GitError(INVALID_SOURCE, "the URL's port is not a number") from None
    written_host = parts.netloc.rsplit("@", 1)[-1]
    if not written_host.startswith("["):
        written_host = written_host.split(":", 1)[0]
    if not host or not _HOST.match(written_host):
        raise GitError(INVALID_SOURCE, "the URL has no valid host name")
    if transport == HTTPS and "@" in parts.netloc:
        raise GitError(
            INVALID_SOURCE,
            "the https URL holds a user, password or token before '@': put the credentials in"
            " the Secret of credentials instead",
        )
    if parts.password is not None:
        raise GitError(
            INVALID_SOURCE, "the URL holds a password: put it in the credentials Secret instead"
        )
    if parts.username is not None and parts.username.startswith("-"):
        raise GitError(INVALID_SOURCE, "the user name in the URL must not start with '-'")
    if not parts.path.strip("/"):
        raise GitError(INVALID_SOURCE, "the URL names no repository path")
    if port is not None and not 0 < port < 65536:
        raise GitError(INVALID_SOURCE, "the URL's port is out of range")


def _check_scp_like(url: str) -> RepositoryUrl:
    match = _SCP_LIKE.match(url)
    # git reads `host:path` as ssh only when no slash comes before the first colon.
    if match is None or "/" in url.split(":", 1)[0]:
        raise GitError(
            INVALID_SOURCE,
            "the URL is neither https://, ssh:// nor user@host:path (local paths are refused;"
            " file:// is for development only)",
        )
    if match.group("host").startswith("-") or match.group("path").startswith("-"):
        raise GitError(INVALID_SOURCE, "the host and path must not start with '-'")
    if not _HOST.match(match.group("host")):
        raise GitError(INVALID_SOURCE, "the URL has no valid host name")
    return RepositoryUrl(url, SSH)


def check_ref(ref: RefSpec) -> None:
    """GitError(InvalidSource) unless the ref is one git itself would accept as a name.

    The rules are those of `git check-ref-format`, so no ref can be read as an option or
    climb out of refs/.
    """
    chosen = [value for value in (ref.branch, ref.tag, ref.commit) if value is not None]
    if len(chosen) > 1:
        raise GitError(INVALID_SOURCE, "set at most one of branch, tag and commit")
    if ref.commit is not None and not FULL_COMMIT.match(ref.commit):
        raise GitError(
            INVALID_SOURCE,
            "a commit must be its full 40-character id: git servers fetch no abbreviated id",
        )
    name = ref.branch if ref.branch is not None else ref.tag
    if name is None:
        return
    problem = _ref_name_problem(name)
    if problem:
        raise GitError(INVALID_SOURCE, f"{ref.describe()} is not a valid git ref name: {problem}")


def _ref_name_problem(name: str) -> str | None:
    if not name or len(name) > 255:
        return "it must hold 1 to 255 characters"
    if name.startswith("-"):
        return "it must not start with '-'"
    if _FORBIDDEN_REF_CHARACTERS.search(name):
        return "it holds a space, a control character or one of ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name or "//" in name or name == "@":
        return "it holds '..', '@{' or '//', or is '@'"
    if name.startswith("/") or name.endswith(("/", ".", ".lock")):
        return "it starts with '/' or ends with '/', '.' or '.lock'"
    if any(part.startswith(".") for part in name.split("/")):
        return "a part of it starts with '.'"
    return None


def redact(text: str, auth: GitAuth | None = None) -> str:
    """Text from git made safe to show: no URL user information, no credential values."""
    text = _USERINFO.sub("", text)
    for secret in auth.secrets() if auth else ():
        text = text.replace(secret, "***")
    return text


class GitClient:
    """Runs git for the source controller. Made once at startup and shared by every source."""

    def __init__(
        self,
        *,
        allow_file: bool = False,
        ca_file: str | None = None,
        timeout: float = 120.0,
        concurrency: int = 4,
        work_dir: str | None = None,
        git: str = "git",
    ) -> None:
        self.allow_file = allow_file
        self.ca_file = ca_file
        self.timeout = timeout
        self.work_dir = work_dir
        self.git = git
        self._slots = asyncio.Semaphore(concurrency)
        self.remove_leftovers()

    def remove_leftovers(self) -> list[str]:
        """Remove the scratch folders that a process killed in the middle of a sync left in the
        work folder (which may hold a key file); the names of those removed.

        A folder is left alone while the process that made it runs: another operator on the
        same machine may be using it.
        """
        base = Path(self.work_dir or tempfile.gettempdir())
        removed: list[str] = []
        with contextlib.suppress(OSError), os.scandir(base) as entries:
            for entry in entries:
                if (
                    entry.name.startswith(SCRATCH_PREFIX)
                    and entry.is_dir(follow_symlinks=False)
                    and _abandoned(entry)
                ):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.name)
        if removed:
            logger.info("Removed %d scratch folders left by an earlier sync", len(removed))
        return removed

    async def resolve(self, url: str, ref: RefSpec, auth: GitAuth | None = None) -> str:
        """The commit that a branch, tag or the default branch names now, without fetching.

        A commit ref is returned as it is: the server cannot be asked whether it has it without
        fetching it.
        """
        checked = check_url(url, allow_file=self.allow_file)
        check_ref(ref)
        if ref.commit:
            return ref.commit
        patterns = [ref.remote_ref()]
        if ref.tag:
            patterns.append(f"{ref.remote_ref()}^{{}}")
        async with self._session(checked, auth) as (env, scratch):
            result = await self._git(
                ["ls-remote", "--end-of-options", checked.url, *patterns],
                env=env,
                cwd=scratch,
                auth=auth,
                whole_output=True,
            )
        found: dict[str, str] = {}
        for line in result.stdout.splitlines():
            object_id, _, name = line.partition("\t")
            found[name] = object_id
        # A peeled annotated tag names the commit; the tag object itself does not.
        commit = found.get(f"{ref.remote_ref()}^{{}}") or found.get(ref.remote_ref())
        if not commit:
            raise GitError(REF_NOT_FOUND, f"the repository has no {ref.describe()}")
        return commit

    @contextlib.asynccontextmanager
    async def checkout(
        self,
        url: str,
        ref: RefSpec,
        *,
        max_bytes: int,
        auth: GitAuth | None = None,
    ) -> AsyncIterator[Checkout]:
        """Fetch one commit shallowly into a fresh folder and write its files there.

        The folder is removed when the context ends. GitError(SourceTooLarge) when the fetched
        objects or the files of the commit pass `max_bytes`.
        """
        checked = check_url(url, allow_file=self.allow_file)
        check_ref(ref)
        async with self._session(checked, auth) as (env, scratch):
            # The checkout's parent holds nothing but the checkout: a reader that looks beside
            # a folder for the files it refers to finds nothing there, least of all a key.
            root = scratch / "tree" / "checkout"
            root.mkdir(mode=0o700, parents=True)
            await self._fetch(checked, ref, root, env, auth, max_bytes)
            # The network is done with: no file and no variable knows a credential while the
            # commit is written and read.
            env = await _without_credentials(env, scratch)
            yield await self._check_out(root, env, max_bytes)

    async def _fetch(
        self,
        checked: RepositoryUrl,
        ref: RefSpec,
        root: Path,
        env: dict[str, str],
        auth: GitAuth | None,
        max_bytes: int,
    ) -> None:
        # An empty template: no hooks and no sample files in the new repository.
        await self._git(["init", "--quiet", "--template=", str(root)], env=env, cwd=root)
        await self._git(
            [
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                "--no-recurse-submodules",
                "--end-of-options",
                checked.url,
                f"+{ref.remote_ref()}:{_FETCHED_REF}",
            ],
            env=env,
            cwd=root,
            auth=auth,
            watch_size=(root / ".git" / "objects", max_bytes),
        )

    async def _check_out(self, root: Path, env: dict[str, str], max_bytes: int) -> Checkout:
        result = await self._git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{_FETCHED_REF}^{{commit}}"],
            env=env,
            cwd=root,
            whole_output=True,
        )
        commit = result.stdout.strip()
        tree = await self._git(
            ["ls-tree", "-r", "-l", "-z", "--full-tree", commit],
            env=env,
            cwd=root,
            whole_output=True,
        )
        size, symlinks, submodules = _tree_summary(tree.stdout)
        if size > max_bytes:
            raise GitError(
                SOURCE_TOO_LARGE,
                f"the files of commit {commit[:12]} weigh {size:,} bytes, more than the"
                f" {max_bytes:,} of maxSizeBytes",
            )
        await self._git(["checkout", "--quiet", "--detach", commit], env=env, cwd=root)
        # With core.symlinks=false git wrote each link as a small file holding its target;
        # those files are removed so that nothing can mistake them for content.
        for link in symlinks:
            (root / link).unlink(missing_ok=True)
        return Checkout(root, commit, size, tuple(symlinks), tuple(submodules))

    @contextlib.asynccontextmanager
    async def _session(
        self, url: RepositoryUrl, auth: GitAuth | None
    ) -> AsyncIterator[tuple[dict[str, str], Path]]:
        """A private scratch folder and the environment of the commands of one operation."""
        async with self._slots:
            prefix = f"{SCRATCH_PREFIX}{os.getpid()}-"
            scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=self.work_dir))
            try:
                yield self._environment(url, auth, scratch), scratch
            finally:
                await asyncio.to_thread(shutil.rmtree, scratch, True)

    def _environment(
        self, url: RepositoryUrl, auth: GitAuth | None, scratch: Path
    ) -> dict[str, str]:
        private = scratch / "private"
        private.mkdir(mode=0o700)
        home = private / "home"
        home.mkdir(mode=0o700)
        credentials = private / "credentials"
        credentials.mkdir(mode=0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "LANG": "C",
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": url.transport,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_HTTP_LOW_SPEED_LIMIT": str(_LOW_SPEED_BYTES),
            "GIT_HTTP_LOW_SPEED_TIME": str(_LOW_SPEED_SECONDS),
            "GIT_OPTIONAL_LOCKS": "0",
            # No ssh-agent or askpass of the operator's environment may answer for a source.
            "SSH_ASKPASS": "",
            "GIT_SSH_VARIANT": "ssh",
        }
        if self.ca_file:
            env["GIT_SSL_CAINFO"] = self.ca_file
        if url.transport == HTTPS and auth and auth.password:
            env |= _askpass(credentials, auth)
        if url.transport == SSH:
            env["GIT_SSH_COMMAND"] = _ssh_command(credentials, auth, self.timeout)
        return env

    async def _git(
        self,
        args: Sequence[str],
        env: dict[str, str],
        cwd: Path,
        *,
        auth: GitAuth | None = None,
        watch_size: tuple[Path, int] | None = None,
        whole_output: bool = False,
    ) -> _Result:
        """Run one git command. Its output is kept whole only with `whole_output`; otherwise,
        and for its error output always, only the end of it is kept."""
        command = [self.git, *_CONFIG, *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            # Its own process group, so that a timeout also ends git-remote-https and ssh.
            start_new_session=True,
        )
        keep = None if whole_output else _KEPT_OUTPUT_BYTES
        communicate = asyncio.ensure_future(_collect(process, keep))
        try:
            async with asyncio.timeout(self.timeout):
                if watch_size is not None:
                    await _watch_size(communicate, *watch_size)
                stdout, stderr = await communicate
        except TimeoutError:
            _kill(process)
            await _reap(communicate)
            raise GitError(
                REPOSITORY_UNREACHABLE,
                f"git {args[0]} did not finish within {self.timeout:g} s",
            ) from None
        except GitError:
            _kill(process)
            await _reap(communicate)
            raise
        except asyncio.CancelledError:
            _kill(process)
            await _reap(communicate)
            raise
        result = _Result(
            process.returncode or 0,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )
        if result.returncode != 0:
            raise classify(args[0], result.stderr, auth)
        return result


# Settings on every command: the safe choices, whatever a repository's own config says.
_CONFIG = [
    "-c",
    "protocol.allow=never",
    "-c",
    "core.symlinks=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.protectNTFS=true",
    "-c",
    "core.protectHFS=true",
    "-c",
    "credential.helper=",
    "-c",
    "transfer.fsckObjects=true",
    "-c",
    "submodule.recurse=false",
    "-c",
    "http.followRedirects=initial",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "init.defaultBranch=mirror",
]


async def _collect(
    process: asyncio.subprocess.Process, keep_stdout: int | None
) -> tuple[bytes, bytes]:
    """A process's output and error output, read to their ends, and its exit."""
    # Both are pipes: the process was started with stdout and stderr of PIPE.
    out, err = process.stdout, process.stderr
    if out is None or err is None:
        raise RuntimeError("git was started without pipes for its output")
    stdout, stderr = await asyncio.gather(_read(out, keep_stdout), _read(err, _KEPT_OUTPUT_BYTES))
    await process.wait()
    return stdout, stderr


async def _read(stream: asyncio.StreamReader, keep: int | None) -> bytes:
    """All that a stream says, or with `keep` only its last `keep` bytes."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        kept += chunk
        if keep is not None and len(kept) > keep:
            del kept[:-keep]
    return bytes(kept)


async def _without_credentials(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """The environment without the variables that carry credentials, and their files gone."""
    await asyncio.to_thread(shutil.rmtree, scratch / "private" / "credentials", True)
    return {name: value for name, value in env.items() if name not in _CREDENTIAL_VARIABLES}


def _abandoned(entry: os.DirEntry[str]) -> bool:
    """Whether no running process can be using a scratch folder."""
    pid = entry.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
    if not pid.isdigit():
        # Not named by a process of ours: left alone.
        return False
    if int(pid) == os.getpid():
        with contextlib.suppress(OSError):
            return entry.stat(follow_symlinks=False).st_mtime < _PROCESS_STARTED
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _askpass(scratch: Path, auth: GitAuth) -> dict[str, str]:
    """An askpass script that answers git's two questions from the command's environment."""
    script = scratch / "askpass.sh"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  Username*) printf "%s\\n" "$ORCHESTRATOR_GIT_USERNAME" ;;\n'
        '  *) printf "%s\\n" "$ORCHESTRATOR_GIT_PASSWORD" ;;\n'
        "esac\n"
    )
    script.chmod(stat.S_IRWXU)
    return {
        "GIT_ASKPASS": str(script),
        "ORCHESTRATOR_GIT_USERNAME": auth.username or TOKEN_USERNAME,
        "ORCHESTRATOR_GIT_PASSWORD": auth.password or "",
    }


def _ssh_command(scratch: Path, auth: GitAuth | None, timeout: float) -> str:
    """ssh that trusts only the given host keys and offers only the given private key."""
    known_hosts = scratch / "known_hosts"
    _write_private(known_hosts, (auth.known_hosts if auth else None) or "")
    options = [
        "ssh",
        "-F",
        os.devnull,
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        f"GlobalKnownHostsFile={os.devnull}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
        "-o",
        f"ConnectTimeout={max(1, int(min(timeout, 30)))}",
    ]
    if auth and auth.ssh_private_key:
        key = scratch / "id_key"
        # ssh refuses a key file that others may read, and wants a final newline.
        _write_private(key, auth.ssh_private_key.rstrip("\n") + "\n")
        options += ["-i", str(key)]
    else:
        options += ["-i", os.devnull]
    return " ".join(shlex.quote(option) for option in options)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _tree_summary(listing: str) -> tuple[int, list[str], list[str]]:
    """Total blob size, symbolic links and submodules of `git ls-tree -r -l -z` output."""
    size = 0
    symlinks: list[str] = []
    submodules: list[str] = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, _, blob_size = meta.split(maxsplit=3)
        if mode == "120000":
            symlinks.append(path)
        elif kind == "commit":
            submodules.append(path)
        elif blob_size.strip().isdigit():
            size += int(blob_size)
    return size, symlinks, submodules


async def _watch_size(
    communicate: asyncio.Future[tuple[bytes, bytes]], folder: Path, limit: int
) -> None:
    """Wait for the command, ending it as soon as the folder it fills passes `limit` bytes."""
    while not communicate.done():
        await asyncio.wait({communicate}, timeout=_SIZE_CHECK_SECONDS)
        size = await asyncio.to_thread(folder_size, folder)
        if size > limit:
            raise GitError(
                SOURCE_TOO_LARGE,
                f"the fetch passed {limit:,} bytes (maxSizeBytes) and was stopped",
            )


def folder_size(folder: Path) -> int:
    """Bytes of the regular files under a folder, links not followed."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _reap(communicate: asyncio.Future[tuple[bytes, bytes]]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(communicate), timeout=10)


# git's messages (LC_ALL=C) -> reason; the first pattern that matches wins.
_CLASSIFICATION: list[tuple[str, re.Pattern[str]]] = [
    (
        HOST_KEY_NOT_TRUSTED,
        re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED"),
    ),
    (
        AUTHENTICATION_FAILED,
        re.compile(
            r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
            r"|Permission denied \(|returned error: 40[13]|HTTP Basic: Access denied"
            r"|Invalid username or password|bad credentials",
            re.IGNORECASE,
        ),
    ),
    (
        REF_NOT_FOUND,
        re.compile(
            r"couldn't find remote ref|not our ref|no such remote ref|unadvertised object"
            r"|Server does not allow request for unadvertised",
            re.IGNORECASE,
        ),
    ),
    (
        REPOSITORY_NOT_FOUND,
        re.compile(
            r"repository '.*' not found|does not appear to be a git repository"
            r"|returned error: 404|Repository not found|No such file or directory",
            re.IGNORECASE,
        ),
    ),
    (
        REPOSITORY_UNREACHABLE,
        re.compile(
            r"Could not resolve host|Connection refused|Failed to connect|timed out"
            r"|Connection reset|Network is unreachable|No route to host|SSL|certificate"
            r"|unable to access|Could not read from remote repository|early EOF"
            r"|remote end hung up|returned error: 5\d\d",
            re.IGNORECASE,
        ),
    ),
]


def classify(command: str, stderr: str, auth: GitAuth | None = None) -> GitError:
    """The GitError that a failed git command's message stands for."""
    message = redact(_last_lines(stderr), auth) or f"git {command} failed without a message"
    for reason, pattern in _CLASSIFICATION:
        if pattern.search(stderr):
            return GitError(reason, message)
    return GitError(GIT_FAILED, message)


def _last_lines(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # git says the same thing twice at times ("fatal: ...", then a hint); keep it short.
    text = "; ".join(dict.fromkeys(lines[-4:]))
    return text[:_MAX_MESSAGE]
