"""helm for the chart's tests: from the project's binary cache (built from the Go module proxy
when missing), or from PATH."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.localcluster.binaries import HELM, BinaryError, ensure_binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "orchestrator-operator"
RELEASE = "orchestrator-operator"
NAMESPACE = "orchestrator-system"
# The oldest Kubernetes the chart supports; hack/render_install.py renders with it too.
KUBE_VERSION = "1.29.0"


@functools.cache
def helm_binary() -> str:
    try:
        return str(ensure_binaries([HELM], build=True)[HELM])
    except BinaryError as error:
        found = shutil.which("helm")
        if found:
            return found
        pytest.fail(f"helm is needed for the chart's tests and could not be had: {error}")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and completed.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{completed.stderr}")
    return completed


def template_text(
    tmp_path: Path,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    extra: Sequence[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    args += ["--kube-version", KUBE_VERSION]
    if values is not None:
        values_file = tmp_path / f"values-{len(list(tmp_path.glob('values-*.yaml')))}.yaml"
        values_file.write_text(yaml.safe_dump(dict(values)))
        args += ["--values", str(values_file)]
    return helm(*args, *extra, check=check)


def template(
    tmp_path: Path,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    text = template_text(tmp_path, values, release=release, namespace=namespace).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def grants(rules: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], frozenset[str]]:
    """The rights a list of RBAC rules gives, refusing wildcards and narrower rule forms."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for value in (*rule["apiGroups"], *rule["resources"], *rule["verbs"]):
            assert "*" not in value, f"wildcard in {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in granted.items()}
