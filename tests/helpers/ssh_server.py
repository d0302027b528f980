"""An ssh server on loopback for git's tests: Debian's sshd, run by the current user with a
host key and an authorized key made for the test, serving repositories by their path."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class KeyPair:
    private_key: str
    public_key: str


def make_key(folder: Path, name: str) -> KeyPair:
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return KeyPair(path.read_text(), path.with_suffix(".pub").read_text().strip())


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    host_key: KeyPair
    client_key: KeyPair

    def url(self, repository: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repository}"

    def known_hosts(self, key: KeyPair | None = None) -> str:
        """A known_hosts line for this server, with its host key or another."""
        kind, blob = (key or self.host_key).public_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """sshd on a free loopback port, letting in the current user with the client key only."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None:
        pytest.fail("the ssh tests need sshd and ssh: apt-get install openssh-server")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_key = make_key(folder, "host_key")
    client_key = make_key(folder, "client_key")
    (folder / "authorized_keys").write_text(client_key.public_key + "\n")
    if os.geteuid() == 0:
        # sshd run by root separates privileges into this empty folder.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    user = getpass.getuser()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\n"
        f"AllowUsers {user}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "LogLevel ERROR\n"
    )
    log = (folder / "sshd.log").open("wb")
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, process, folder / "sshd.log")
        yield SshServer(port, user, host_key, client_key)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"sshd did not listen on port {port} within 10 s: {log.read_text()}")
