"""Command line: `python -m orchestrator_operator.localcluster {up,build}`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from orchestrator_operator.localcluster import binaries as bins
from orchestrator_operator.localcluster.controlplane import ControlPlaneError, LocalControlPlane


def _build(args: argparse.Namespace) -> int:
    names = bins.ALL_BINARIES if args.all else bins.CONTROL_PLANE_BINARIES
    started = time.monotonic()
    try:
        found = bins.ensure_binaries(names, build=True, report=print)
    except bins.BinaryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, path in found.paths.items():
        print(f"{name:<24} {path}")
    print(f"binaries ready in {time.monotonic() - started:.1f}s (cache: {bins.cache_root()})")
    return 0


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Turned into an exception so that the `with` block stops the control plane on the way out.
    raise SystemExit(128 + signum)


def _up(args: argparse.Namespace) -> int:
    # Set explicitly: a shell starting us in the background would otherwise leave SIGINT
    # ignored, and Ctrl-C could not stop the control plane.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    crds = sorted(path for folder in args.crds for path in Path(folder).glob("*.yaml"))
    plane = LocalControlPlane(simulate_pods=not args.no_pods, crds=crds, keep_dir=args.keep_dir)
    try:
        with plane:
            if args.json:
                state = {
                    "kubeconfig": str(plane.kubeconfig),
                    "dir": str(plane.dir),
                    "server": plane.server,
                    "pids": plane.pids(),
                    "ports": list(plane.ports.all()),
                    "started_in": plane.started_in,
                }
                print(json.dumps(state), flush=True)
            else:
                print(f"control plane ready in {plane.started_in:.1f}s; logs in {plane.dir}")
                print(f"kubeconfig: {plane.kubeconfig}")
                print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
                print("Ctrl-C stops it.", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        return 0
    except (ControlPlaneError, bins.BinaryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator_operator.localcluster")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build or locate the binaries, print where")
    build.add_argument("--all", action="store_true", help="helm too, not only the control plane")
    build.set_defaults(run=_build)

    up = commands.add_parser("up", help="start a control plane and keep it until Ctrl-C")
    up.add_argument("--crds", action="append", default=[], help="folder of CRD YAML files")
    up.add_argument("--no-pods", action="store_true", help="no scheduler, no simulated pods")
    up.add_argument("--keep-dir", action="store_true", help="keep the folder (logs) on exit")
    up.add_argument("--json", action="store_true", help="print the state as one JSON line")
    up.set_defaults(run=_up)

    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
