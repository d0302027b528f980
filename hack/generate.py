#!/usr/bin/env python3
"""Write the files generated from the models: the CRDs in crds/."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator_operator.models.manifests import crd_files

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    crds = ROOT / "crds"
    crds.mkdir(exist_ok=True)
    for name, text in crd_files().items():
        (crds / name).write_text(text)
        print(f"wrote crds/{name} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
