"""The layers of the package stay as drawn: handlers > reconcile > render > definition > models
> adapters, kopf only in the handlers and the command line, no I/O in the pure layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--config",
            str(ROOT / "pyproject.toml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_there_is_no_package_named_operator() -> None:
    # A package called `operator` would shadow the standard library module of that name.
    assert not (ROOT / "operator" / "__init__.py").exists()
