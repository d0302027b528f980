"""A git server on loopback, for tests and the quick start: `git http-backend` behind HTTPS.

Serves every repository under one folder at https://127.0.0.1:<port>/<name>, with a
certificate from a throwaway certificate authority (its PEM file is `ca_file`, which the
operator takes as ORCHESTRATOR_OPERATOR_GIT_CA_FILE), and optionally HTTP basic
authentication with a token as the password, the way GitHub and GitLab take a token.

    with GitServer(repositories) as server:
        url = server.url("workflows")
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.server
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestrator_operator.localcluster.certs import CertificateAuthority

LOOPBACK = "127.0.0.1"
_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "Workflow Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Workflow Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


@dataclass(frozen=True)
class Request:
    """One request the server answered, for tests that check what a client sent."""

    method: str
    path: str
    status: int
    authorized: bool


class GitServer:
    """git's smart HTTP protocol over HTTPS on a free loopback port, in a background thread."""

    def __init__(
        self,
        root: Path,
        *,
        token: str | None = None,
        authority: CertificateAuthority | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """Serve the repositories under `root`; with `token`, only to clients that send it.

        Servers given one `authority` can share one `ca_file` for their clients to trust.
        """
        self.root = root
        self.token = token
        self.requests: list[Request] = []
        self._authority = authority or CertificateAuthority("orchestrator git server CA")
        self._folder = Path(tempfile.mkdtemp(prefix="orchestrator-git-server-"))
        self.ca_file = ca_file or self._folder / "ca.crt"
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, repository: str) -> str:
        return f"https://{LOOPBACK}:{self.port}/{repository}"

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    def start(self) -> GitServer:
        pair = self._authority.issue_server("git-server", ips=[LOOPBACK], dns=["localhost"])
        self.ca_file.write_bytes(self._authority.cert_pem)
        cert, key = self._folder / "server.crt", self._folder / "server.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        key.chmod(0o600)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _handler(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="git-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def authorized(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password, self.token)


def _handler(server: GitServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            # The requests are recorded in `server.requests`; stderr stays quiet.
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            if not server.authorized(self.headers.get("Authorization")):
                server.requests.append(Request(self.command, path, 401, False))
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, headers, content = _backend(server.root, self, path, query, body)
            server.requests.append(Request(self.command, path, status, True))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    return Handler


def _backend(
    root: Path,
    request: http.server.BaseHTTPRequestHandler,
    path: str,
    query: str,
    body: bytes,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run git http-backend as a CGI program for one request."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "REQUEST_METHOD": request.command,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": LOOPBACK,
        "REMOTE_USER": "git",
        "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
    }
    result = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60, check=False
    )
    head, _, content = result.stdout.partition(b"\r\n\r\n")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name, value.strip()))
    return status, headers, content


# -- repositories for tests and the quick start --------------------------------------------------


def git(repository: Path, *args: str) -> str:
    """Run git in a repository with a fixed author and no user configuration."""
    result = subprocess.run(
        ["git", "-C", str(repository), *args],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(repository), **_COMMIT_ENV},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def create_repository(path: Path, files_from: Path | None = None, branch: str = "main") -> str:
    """A new repository at `path` (work tree and all), with one commit of `files_from`.

    Returns the commit. Serve its parent folder with GitServer and it answers at
    `server.url(path.name)`.
    """
    if files_from is not None:
        shutil.copytree(files_from, path, symlinks=True, dirs_exist_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", f"--initial-branch={branch}")
    # http-backend serves a repository with a work tree as long as it may read it; pushing is
    # never needed here, commits are made in place.
    git(path, "config", "http.receivepack", "false")
    return commit_all(path, "Initial workflows")


def commit_all(path: Path, message: str) -> str:
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


@contextlib.contextmanager
def serve_fixture_repository(
    fixtures: Path, work_dir: Path, *, name: str = "workflows", token: str | None = None
) -> Iterator[tuple[GitServer, str]]:
    """For the quick start: copy a folder of workflows into a new repository and serve it.

    with serve_fixture_repository(FIXTURES, work) as (server, url):
        ...  # a source with this url, and the operator run with
             # ORCHESTRATOR_OPERATOR_GIT_CA_FILE=server.ca_file
    """
    create_repository(work_dir / name, fixtures)
    with GitServer(work_dir, token=token) as server:
        yield server, server.url(name)
