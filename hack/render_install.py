#!/usr/bin/env python3
"""Write manifests/install.yaml: the Helm chart rendered with its default values.

The objects carry the chart's labels except `app.kubernetes.io/managed-by: Helm`: Helm does
not manage what is applied from this file.

For clusters where Helm is not used: `kubectl apply --server-side -f manifests/install.yaml`
installs the CRDs and the operator in the namespace orchestrator-system. `--check` compares
instead of writing, and exits 1 when the file is stale.

helm comes from the project's binary cache (python -m orchestrator_operator.localcluster build
--all builds it), or from PATH.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "orchestrator-operator"
INSTALL = ROOT / "manifests" / "install.yaml"
RELEASE = "orchestrator-operator"
NAMESPACE = "orchestrator-system"
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion). Passed explicitly, because
# a helm built with `go install` assumes v1.20 when not told, and the output must not depend
# on how helm was built.
KUBE_VERSION = "1.29.0"

# The label says Helm manages the objects, which is untrue of a file applied with kubectl and
# misleads the tools and people that group resources by it.
HELM_MANAGED = re.compile(r"^ *app\.kubernetes\.io/managed-by: Helm\n", re.MULTILINE)

HEADER = f"""\
# Generated from helm/orchestrator-operator with its default values by hack/render_install.py;
# do not edit by hand. Install: kubectl apply --server-side -f manifests/install.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    # The operator's pod passes the restricted Pod Security Standard.
    pod-security.kubernetes.io/enforce: restricted
"""


def find_helm() -> str | None:
    try:
        from orchestrator_operator.localcluster import binaries
    except ImportError:
        binaries = None
    if binaries is not None:
        cached = binaries.find_binary(binaries.HELM)
        if cached is not None:
            return str(cached)
    return shutil.which("helm")


def render(helm: str) -> str:
    completed = subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return HEADER + HELM_MANAGED.sub("", completed.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args()

    helm = find_helm()
    if helm is None:
        print(
            "helm not found: run `python -m orchestrator_operator.localcluster build --all`"
            " or put helm on PATH, then run hack/render_install.py",
            file=sys.stderr,
        )
        return 2
    rendered = render(helm)

    if args.check:
        current = INSTALL.read_text() if INSTALL.exists() else ""
        if current == rendered:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            "manifests/install.yaml",
            "helm template",
        )
        sys.stdout.writelines(list(diff)[:200])
        print("\nmanifests/install.yaml is stale: run hack/render_install.py", file=sys.stderr)
        return 1

    INSTALL.parent.mkdir(exist_ok=True)
    INSTALL.write_text(rendered)
    print(f"wrote {INSTALL.relative_to(ROOT)} ({len(rendered.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
