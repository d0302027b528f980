"""Cleans up after a control plane whose owner died without stopping it.

Run as a script (`python -I reaper.py --dir DIR --grace SECONDS`), standard library only, so it
starts in milliseconds. It leads the process group that every control-plane component joins,
and its standard input is the read end of a pipe whose only write end the owner holds. When
the owner exits, however it exits (SIGKILL included), the kernel closes that end; the reaper
reads end-of-file, stops every process left in its group (SIGTERM, then SIGKILL after the grace
period) and removes the control plane's folder. A normal stop closes the pipe too, after the
owner has stopped the components itself, so the reaper's sweep then finds nothing to stop.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path


def _members_of_group(pgid: int) -> list[int]:
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def sweep(folder: Path | None, grace: float, keep_folder: bool) -> None:
    pgid = os.getpgrp()
    _signal_all(_members_of_group(pgid), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _members_of_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_all(_members_of_group(pgid), signal.SIGKILL)
    if folder is not None and not keep_folder:
        shutil.rmtree(folder, ignore_errors=True)


def _owner_is_gone(owner: int) -> bool:
    # Re-parenting changes our parent id, which also catches an owner that forked the pipe's
    # write end into a long-lived child of its own.
    if os.getppid() != owner:
        return True
    ready, _, _ = select.select([sys.stdin.buffer], [], [], 1.0)
    return bool(ready) and not os.read(sys.stdin.fileno(), 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--keep-dir", action="store_true")
    args = parser.parse_args()

    owner = os.getppid()
    # A Ctrl-C meant for the owner must not take the reaper down before it has done its job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGHUP, request_stop)

    while not stop_requested and not _owner_is_gone(owner):
        pass
    sweep(args.dir, args.grace, args.keep_dir)


if __name__ == "__main__":
    main()
