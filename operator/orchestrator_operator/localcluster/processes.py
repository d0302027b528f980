"""Child processes of the control plane: starting, watching and stopping them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orchestrator_operator.localcluster import reaper

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether nothing listens on a loopback port.

    SO_REUSEADDR makes connections of a process that has gone (TIME_WAIT) not count: they hold
    the port for a minute, but they do not stop a new server from listening on it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGTERM the child when its parent dies.

    The kernel ties this to the thread that forked the child, not to the process, so it is only
    asked for from the main thread, whose end is the end of the process. The reaper covers the
    other cases.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


class Component:
    """One running process of the control plane, its output going to a log file.

    `process_group` is the reaper's, so that the process never outlives the control plane's
    owner; 0 makes a group of its own, for a process with no control plane to go with, which
    then only has the parent-death signal.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        process_group: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                process_group=process_group,
                preexec_fn=_die_with_parent(),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)


def stop_all(components: Sequence[Component], grace: float) -> None:
    """SIGTERM every component, wait up to `grace` seconds for all, SIGKILL the rest."""
    for component in components:
        if component.running():
            component.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for component in components:
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for component in components:
        if component.running():
            component.signal(signal.SIGKILL)
            component.process.wait()


class Reaper:
    """The watchdog process that stops the components if their owner dies (see `reaper`)."""

    def __init__(self, folder: Path, *, grace: float, keep_folder: bool) -> None:
        read_end, self._write_end = os.pipe()
        argv = [sys.executable, "-I", reaper.__file__, "--dir", str(folder), "--grace", str(grace)]
        if keep_folder:
            argv.append("--keep-dir")
        try:
            with (folder / "reaper.log").open("ab") as log:
                self.process = subprocess.Popen(
                    argv,
                    stdin=read_end,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own process group, which the components then join, so that one sweep
                    # finds them all, and so that a Ctrl-C in a terminal does not reach it.
                    process_group=0,
                )
        finally:
            os.close(read_end)

    @property
    def process_group(self) -> int:
        return self.process.pid

    def release(self, timeout: float) -> None:
        """Let the reaper do its final sweep and exit; waits for it up to `timeout`."""
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
