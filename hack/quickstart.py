#!/usr/bin/env python3
"""The quick start: a local control plane, the operator, and real workflows on it.

Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback
(kwok stands in for kubelets: pods are marked Running, no container is pulled or run), starts
the operator as its own process, applies Workflows made from the real workflow folders in
tests/fixtures, prints their status as `kubectl get swf` would, and stops everything again
(or keeps it running with --keep-running).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from orchestrator_operator.definition.folder import load_workflow_folder
from orchestrator_operator.localcluster import LocalControlPlane
from orchestrator_operator.render.folder import workflow_manifest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rhdh-serverless-workflows"
NAMESPACE = "quickstart"
GROUP, VERSION, PLURAL = "orchestrator.dev", "v1alpha1", "workflows"
FOLDERS = ["greeting", "create-ocp-project", "escalation", "modify-vm-resources", "list-users"]
# Placeholder values for the keys the workflows' secret.properties list. Real ones would come
# from the team's secret store; these only let the runtimes start.
PLACEHOLDER = b"quickstart-placeholder"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep-running", action="store_true", help="leave everything up until Ctrl-C"
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for Ready")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="orchestrator-quickstart-"))
    print("Starting the local control plane (first run builds it from the Go module proxy)...")
    with LocalControlPlane(crds=sorted((ROOT / "crds").glob("*.yaml"))) as plane:
        print(f"  ready in {plane.started_in:.1f}s; kubeconfig {plane.kubeconfig}")
        operator_kubeconfig = plane.mint_kubeconfig("orchestrator-operator", ["system:masters"])
        with running_operator(operator_kubeconfig, work / "operator.log"):
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            names = apply_workflows(api)
            wait_until_settled(api, names, args.timeout)
            print_table(api)
            if args.keep_running:
                print(f"\nexport KUBECONFIG={plane.kubeconfig}")
                print(f"Operator log: {work / 'operator.log'}. Ctrl-C stops everything.")
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
    print("Stopped.")
    return 0


@contextlib.contextmanager
def running_operator(kubeconfig: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    print("Starting the operator...")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_operator", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Controllers started" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the operator did not start; see {log_path}")
            time.sleep(0.2)
        print(f"  running (log: {log_path})")
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def apply_workflows(api: client.ApiClient) -> list[str]:
    core = client.CoreV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    custom = client.CustomObjectsApi(api)
    names: list[str] = []
    for folder in FOLDERS:
        manifest = workflow_manifest(load_workflow_folder(FIXTURES / folder), namespace=NAMESPACE)
        for secret in manifest["spec"].get("secrets", []):
            data = {key: base64.b64encode(PLACEHOLDER).decode() for key in secret["keys"]}
            core.create_namespaced_secret(
                NAMESPACE,
                client.V1Secret(metadata=client.V1ObjectMeta(name=secret["secretName"]), data=data),
            )
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest)
        names.append(manifest["metadata"]["name"])
        print(f"  applied Workflow {manifest['metadata']['name']} from {folder}/")

    broken = workflow_manifest(load_workflow_folder(FIXTURES / "greeting"), namespace=NAMESPACE)
    broken["metadata"]["name"] = "greeting-broken"
    broken["spec"]["definition"] = json.loads(json.dumps(broken["spec"]["definition"]))
    broken["spec"]["definition"]["states"][1]["transition"] = "GreetInKlingon"
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, broken)
    names.append("greeting-broken")
    print("  applied Workflow greeting-broken: greeting with a transition to a missing state")
    return names


def wait_until_settled(api: client.ApiClient, names: list[str], timeout: float) -> None:
    print("Waiting for every Workflow to report Ready...")
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        settled = [
            item["metadata"]["name"]
            for item in items
            if _ready(item).get("status") == "True"
            or _ready(item).get("reason") in {"InvalidStateGraph", "InvalidDefinition"}
        ]
        if set(names) <= set(settled):
            return
        time.sleep(1)
    print(f"  not all settled within {timeout:.0f}s")


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    for condition in (item.get("status") or {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def print_table(api: client.ApiClient) -> None:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL
    )["items"]
    rows = [("NAME", "READY", "REASON", "PROFILE", "URL")]
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        ready = _ready(item)
        rows.append(
            (
                item["metadata"]["name"],
                ready.get("status", ""),
                ready.get("reason", ""),
                item["spec"].get("profile", ""),
                (item.get("status") or {}).get("url", ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n$ kubectl get swf -n {NAMESPACE}")
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for item in items:
        ready = _ready(item)
        if ready.get("status") != "True":
            print(f"\n{item['metadata']['name']}: {ready.get('reason')}: {ready.get('message')}")


if __name__ == "__main__":
    sys.exit(main())
