#!/usr/bin/env python3
"""The quick start: a local control plane, the operator, and real workflows on it.

Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback
(kwok stands in for kubelets: pods are marked Running, no container is pulled or run), starts
the operator as its own process, applies an installation (OrchestratorInstance) and Workflows
made from the real workflow folders in tests/fixtures, linked to it, prints their status as
`kubectl get` would, and stops everything again (or keeps it running with --keep-running).

No Data Index runs in this cluster, so a stand-in answers in its place: a small GraphQL server
on the real Data Index schema (tests/standins/data_index.py), seeded with a few runs. The
operator is told to send its calls to in-cluster services there.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from orchestrator_operator.definition.folder import load_workflow_folder
from orchestrator_operator.localcluster import LocalControlPlane
from orchestrator_operator.localcluster.git_server import serve_fixture_repository
from orchestrator_operator.localcluster.processes import Component
from orchestrator_operator.render.folder import workflow_manifest
from standins.data_index import StandIn

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rhdh-serverless-workflows"
NAMESPACE = "quickstart"
INSTALLATION = "orchestrator"
MIRROR_NAMESPACE = "quickstart-git"
MIRROR_INSTALLATION = "mirror"
GROUP, VERSION, PLURAL = "orchestrator.dev", "v1alpha1", "workflows"
INSTALLATIONS = "orchestratorinstances"
# Runs the stand-in Data Index reports, by workflow id: state -> count.
SEEDED_RUNS = {
    "greeting": {"COMPLETED": 3, "ERROR": 1, "ACTIVE": 1},
    "create-ocp-project": {"COMPLETED": 2, "ABORTED": 1},
    "ticketEscalation": {"ACTIVE": 2},
}
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
    try:
        run(work, args.keep_running, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("Stopped.")
    return 0


def run(work: Path, keep_running: bool, timeout: float) -> None:
    print("Starting the local control plane (first run builds it from the Go module proxy)...")
    with (
        LocalControlPlane(crds=sorted((ROOT / "crds").glob("*.yaml"))) as plane,
        StandIn() as standin,
        serve_fixture_repository(FIXTURES, work / "git") as (git_server, repository_url),
    ):
        print(f"  ready in {plane.started_in:.1f}s; kubeconfig {plane.kubeconfig}")
        seed_data_index(standin)
        print(
            f"  stand-in Data Index (not the real service) at {standin.url}; it also answers"
            " each runtime's management endpoint in the runtime's place"
        )
        print("  kwok stands in for the kubelets: pods are marked Running, no container runs")
        print(f"  the fixture repository, served over HTTPS at {repository_url}")
        operator_kubeconfig = plane.mint_kubeconfig("orchestrator-operator", ["system:masters"])
        env = {
            "ORCHESTRATOR_OPERATOR_SERVICE_URL_OVERRIDE": standin.override_template,
            "ORCHESTRATOR_OPERATOR_DATA_INDEX_POLL_SECONDS": "2",
            "ORCHESTRATOR_OPERATOR_GIT_CA_FILE": str(git_server.ca_file),
        }
        with running_operator(operator_kubeconfig, work / "operator.log", env, plane.process_group):
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            apply_installation(api)
            names = apply_workflows(api, standin)
            apply_mirror(api, repository_url)
            wait_until_settled(api, names, timeout)
            print_table(api)
            print_installation(api)
            wait_until_mirrored(api, timeout)
            print_mirror(api)
            if keep_running:
                print(f"\nexport KUBECONFIG={plane.kubeconfig}")
                print(f"Operator log: {work / 'operator.log'}. Ctrl-C stops everything.")
                print(
                    "The stand-in knows only what the quick start applied: an installation or a"
                    " linked Workflow of your own shows DataIndexError or ProcessNotServed here."
                )
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path, log_path: Path, settings: dict[str, str], process_group: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator, in the control plane's process group: it goes with the control plane,
    also when this script is killed."""
    print("Starting the operator...")
    env = {**os.environ, **settings, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    log_path.write_bytes(b"")
    operator = Component(
        "operator",
        [sys.executable, "-m", "orchestrator_operator", "run", "--metrics-addr", "0"],
        log_path,
        process_group=process_group,
        env=env,
    )
    process = operator.process
    try:
        deadline = time.monotonic() + 60
        while "Controllers started" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the operator did not start; see {log_path}")
            time.sleep(0.2)
        print(f"  running (log: {log_path})")
        yield process
    finally:
        operator.signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.signal(signal.SIGKILL)
            process.wait()


def seed_data_index(standin: StandIn) -> None:
    data_index = standin.data_index(NAMESPACE, f"{INSTALLATION}-data-index-service")
    for workflow_id, runs in SEEDED_RUNS.items():
        data_index.register(workflow_id)
        for state, count in runs.items():
            data_index.add_runs(workflow_id, state, count)


def apply_installation(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    installation = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": INSTALLATION, "namespace": NAMESPACE},
        "spec": {"dataIndex": {}, "jobsService": {}},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, INSTALLATIONS, installation
    )
    print(f"  applied OrchestratorInstance {INSTALLATION}: Data Index and Jobs Service")


def apply_workflows(api: client.ApiClient, standin: StandIn) -> list[str]:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    names: list[str] = []
    for folder in FOLDERS:
        manifest = workflow_manifest(
            load_workflow_folder(FIXTURES / folder),
            namespace=NAMESPACE,
            installation={"name": INSTALLATION},
        )
        for secret in manifest["spec"].get("secrets", []):
            data = {key: base64.b64encode(PLACEHOLDER).decode() for key in secret["keys"]}
            core.create_namespaced_secret(
                NAMESPACE,
                client.V1Secret(metadata=client.V1ObjectMeta(name=secret["secretName"]), data=data),
            )
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest)
        names.append(manifest["metadata"]["name"])
        # The runtime's management endpoint, which the operator probes, answers here too.
        runtime = standin.runtime(NAMESPACE, manifest["metadata"]["name"])
        runtime.workflow_ids.add(manifest["spec"]["definition"]["id"])
        print(f"  applied Workflow {manifest['metadata']['name']} from {folder}/")

    broken = workflow_manifest(
        load_workflow_folder(FIXTURES / "greeting"),
        namespace=NAMESPACE,
        installation={"name": INSTALLATION},
    )
    broken["metadata"]["name"] = "greeting-broken"
    # An id of its own: runs are counted by workflow id, and this copy has none.
    broken["spec"]["definition"] = {**broken["spec"]["definition"], "id": "greeting-broken"}
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
            if (_ready(item).get("status") == "True" and _has_runs_if_seeded(item))
            or _ready(item).get("reason") in {"InvalidStateGraph", "InvalidDefinition"}
        ]
        if set(names) <= set(settled):
            return
        time.sleep(1)
    print(f"  not all settled within {timeout:.0f}s")


def _has_runs_if_seeded(item: dict[str, Any]) -> bool:
    workflow_id = (item.get("status") or {}).get("workflowId")
    return workflow_id not in SEEDED_RUNS or bool((item["status"].get("runs") or {}).get("counts"))


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    for condition in (item.get("status") or {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def print_table(api: client.ApiClient) -> None:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL
    )["items"]
    rows = [("NAME", "READY", "REASON", "PROFILE", "URL", "RUNS (done/active/error)", "LAST RUN")]
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        ready = _ready(item)
        runs = (item.get("status") or {}).get("runs") or {}
        counts = runs.get("counts") or {}
        last = runs.get("lastRun") or {}
        rows.append(
            (
                item["metadata"]["name"],
                ready.get("status", ""),
                ready.get("reason", ""),
                item["spec"].get("profile", ""),
                (item.get("status") or {}).get("url", ""),
                f"{counts.get('completed', 0)}/{counts.get('active', 0)}/{counts.get('error', 0)}"
                if counts
                else "-",
                f"{last.get('state', '')} {last.get('start', '')}".strip() or "-",
            )
        )
    print(
        f"\nWorkflows in namespace {NAMESPACE} (their runs as the stand-in Data Index counts them):"
    )
    print_rows(rows)
    for item in items:
        ready = _ready(item)
        if ready.get("status") != "True":
            print(f"\n{item['metadata']['name']}: {ready.get('reason')}: {ready.get('message')}")


def apply_mirror(api: client.ApiClient, repository_url: str) -> None:
    with contextlib.suppress(ApiException):
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=MIRROR_NAMESPACE))
        )
    installation = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": MIRROR_INSTALLATION, "namespace": MIRROR_NAMESPACE},
        "spec": {
            "dataIndex": {"enabled": False},
            "jobsService": {"enabled": False},
            "sources": [
                {
                    "name": "rhdh",
                    "url": repository_url,
                    "ref": {"branch": "main"},
                    "pollInterval": "30s",
                }
            ],
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, MIRROR_NAMESPACE, INSTALLATIONS, installation
    )
    print(f"  applied OrchestratorInstance {MIRROR_NAMESPACE}/{MIRROR_INSTALLATION}: git source")


def wait_until_mirrored(api: client.ApiClient, timeout: float) -> None:
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = custom.get_namespaced_custom_object(
            GROUP, VERSION, MIRROR_NAMESPACE, INSTALLATIONS, MIRROR_INSTALLATION
        )
        sources = (item.get("status") or {}).get("sources") or []
        workflows = custom.list_namespaced_custom_object(GROUP, VERSION, MIRROR_NAMESPACE, PLURAL)
        reconciled = all(_ready(workflow) for workflow in workflows["items"])
        if sources and sources[0].get("commit") and workflows["items"] and reconciled:
            return
        time.sleep(1)
    print(f"  the git source did not sync within {timeout:.0f}s")


def print_mirror(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    item = custom.get_namespaced_custom_object(
        GROUP, VERSION, MIRROR_NAMESPACE, INSTALLATIONS, MIRROR_INSTALLATION
    )
    print(f"\nGit source of {MIRROR_NAMESPACE}/{MIRROR_INSTALLATION}:")
    for source in (item.get("status") or {}).get("sources") or []:
        synced = next((c for c in source.get("conditions", []) if c["type"] == "SourceSynced"), {})
        print(
            f"  {source['name']}: commit {str(source.get('commit'))[:12]},"
            f" {source.get('workflows', 0)} workflows, SourceSynced={synced.get('status')}"
            f" ({synced.get('reason')})"
        )
    workflows = custom.list_namespaced_custom_object(GROUP, VERSION, MIRROR_NAMESPACE, PLURAL)
    rows = [("NAME", "READY", "REASON", "SOURCE PATH", "REVISION")]
    for workflow in sorted(workflows["items"], key=lambda w: w["metadata"]["name"]):
        annotations = workflow["metadata"].get("annotations") or {}
        ready = _ready(workflow)
        rows.append(
            (
                workflow["metadata"]["name"],
                ready.get("status", ""),
                ready.get("reason", ""),
                annotations.get("orchestrator.dev/source-path", ""),
                annotations.get("orchestrator.dev/source-commit", "")[:12],
            )
        )
    print(f"\nWorkflows mirrored from git into namespace {MIRROR_NAMESPACE}:")
    print_rows(rows)
    print(
        "  (Workflows whose secret.properties lists keys wait for a Secret <name>-secrets"
        " holding them: SecretNotFound until one is created.)"
    )


def print_rows(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def print_installation(api: client.ApiClient) -> None:
    item = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, INSTALLATIONS, INSTALLATION
    )
    status = item.get("status") or {}
    print(f"\nConditions of the installation {NAMESPACE}/{INSTALLATION}:")
    rows = [("NAME", "CONDITION", "STATUS", "REASON")]
    for condition in status.get("conditions", []):
        rows.append(
            (INSTALLATION, condition["type"], condition["status"], condition.get("reason", ""))
        )
    print_rows(rows)
    endpoints = status.get("endpoints") or {}
    for name, url in endpoints.items():
        print(f"  endpoint {name}: {url}")


if __name__ == "__main__":
    sys.exit(main())
