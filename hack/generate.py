#!/usr/bin/env python3
"""Write the files generated from the models.

- crds/*.yaml: the CRDs;
- helm/orchestrator-operator/files/crds/*.yaml: the same files, which the chart's templates
  read (Helm cannot read files outside the chart, and a symlink does not survive packaging);
- docs/reference.md: the reference of every field;
- manifests/install.yaml: the chart rendered with its defaults (hack/render_install.py), when
  helm is at hand.

Tests fail when any of these is stale, and name this script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator_operator.models.manifests import crd_files
from orchestrator_operator.models.reference import reference_markdown

ROOT = Path(__file__).resolve().parent.parent
CHART_CRDS = ROOT / "helm" / "orchestrator-operator" / "files" / "crds"


def write_folder(folder: Path, files: dict[str, str]) -> None:
    """Write `files` into `folder`, and remove the YAML files it no longer holds."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in sorted({p.name for p in folder.glob("*.yaml")} - set(files)):
        (folder / stale).unlink()
        print(f"removed {(folder / stale).relative_to(ROOT)}")
    for name, text in files.items():
        (folder / name).write_text(text)
        print(f"wrote {(folder / name).relative_to(ROOT)} ({len(text.encode())} bytes)")


def main() -> int:
    crds = crd_files()
    write_folder(ROOT / "crds", crds)
    write_folder(CHART_CRDS, crds)

    reference = ROOT / "docs" / "reference.md"
    reference.parent.mkdir(exist_ok=True)
    reference.write_text(reference_markdown())
    print(f"wrote {reference.relative_to(ROOT)}")

    # The install manifest needs helm; render_install.py says how to get it when it is missing.
    completed = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "render_install.py")], check=False
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
