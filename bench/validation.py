#!/usr/bin/env python3
"""How long validation takes: each fixture workflow, and the refusal of hostile documents.

The tests check that the work done is bounded (each file parsed once, a document over the size
limit never parsed, an alias bomb stopped at its budget); this says what that costs in time on
this machine. Nothing here is asserted: the machines are shared, so read the figures, not a
verdict.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rhdh-serverless-workflows"
sys.path.insert(0, str(ROOT / "operator"))

from orchestrator_operator.definition import (  # noqa: E402
    DefinitionError,
    load_workflow_folder,
    parse_definition,
    validate_definition,
)


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    return "\n".join(lines)


HOSTILE = {
    "10 MB of nested brackets": ("junk.sw.yaml", "[" * 5_000_000 + "]" * 5_000_000),
    "deep flow sequences": ("junk.sw.yaml", "a: " + "[" * 100_000 + "]" * 100_000),
    "deep flow mappings": ("junk.sw.yaml", "a: " + "{b: " * 50_000 + "1" + "}" * 50_000),
    "deep block mappings": ("junk.sw.yaml", "".join(" " * n + "a:\n" for n in range(1_400))),
    "deep JSON": ("junk.sw.json", '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}"),
    "YAML alias bomb": ("bomb.sw.yaml", _alias_bomb()),
}


def timed(work: Callable[[], object], rounds: int) -> float:
    """The median of `rounds` runs, in milliseconds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def refuse(filename: str, content: str) -> None:
    try:
        parse_definition(content, filename)
    except DefinitionError:
        return
    raise SystemExit(f"{filename}: not refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"{'validation of':<40} {'ms (median)':>12}")
    for folder in sorted(path for path in FIXTURES.iterdir() if path.is_dir()):
        try:
            workflow = load_workflow_folder(folder)
        except DefinitionError:
            continue
        size = sum(len(content) for content in workflow.files.values())
        label = f"{folder.name} ({size // 1000} kB of files)"
        millis = timed(lambda w=workflow: validate_definition(w.definition, w.files), args.rounds)
        print(f"{label:<40} {millis:>12.1f}")

    print(f"\n{'refusal of':<40} {'ms (median)':>12}")
    for label, (filename, content) in HOSTILE.items():
        millis = timed(lambda f=filename, c=content: refuse(f, c), args.rounds)
        print(f"{label:<40} {millis:>12.1f}")


if __name__ == "__main__":
    main()
