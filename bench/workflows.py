#!/usr/bin/env python3
"""How fast and how frugally the operator turns N Workflows into runtimes.

On one local control plane, in one run:
1. the baseline: a minimal async client applies the same child objects with server-side apply,
   no operator in between: the floor this machine allows;
2. the operator: N Workflows (the fixture folders, repeated under new names) are created, and
   the clock runs until every one has a status for its generation;
3. an idle period long enough for two resyncs, during which the operator should write nothing.

Prints the times, the API requests by verb as kube-apiserver counts them, the operator's writes
per Workflow (from the audit log, by the operator's own user), and the operator's peak memory.
Nothing here is asserted: the machines are shared, so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.operator_process import OperatorProcess, running_operator  # noqa: E402
from orchestrator_operator.adapters.kube import Credentials, KubeApi  # noqa: E402
from orchestrator_operator.definition.folder import load_workflow_folder  # noqa: E402
from orchestrator_operator.handlers.operator import API_CONNECTIONS  # noqa: E402
from orchestrator_operator.localcluster import LocalControlPlane  # noqa: E402
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec  # noqa: E402
from orchestrator_operator.reconcile.workflow import Observed, plan_workflow  # noqa: E402
from orchestrator_operator.render.folder import workflow_manifest  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "rhdh-serverless-workflows"
FOLDERS = [
    "greeting",
    "create-ocp-project",
    "escalation",
    "modify-vm-resources",
    "list-users",
    "azure",
    "patch-k8s-resource",
    "fail-switch",
    "bulk-import-git-repos",
]
GROUP, VERSION, PLURAL = "orchestrator.dev", "v1alpha1", "workflows"
OPERATOR_USER = "orchestrator-operator"
WRITE_VERBS = ("create", "update", "patch", "delete")
RESYNC_SECONDS = 15


def workflows(count: int, namespace: str) -> list[dict[str, Any]]:
    folders = [load_workflow_folder(FIXTURES / name) for name in FOLDERS]
    manifests = []
    for index in range(count):
        manifest = workflow_manifest(
            folders[index % len(folders)], namespace=namespace, name=f"wf-{index:04d}"
        )
        manifest["spec"].pop("secrets", None)
        manifests.append(manifest)
    return manifests


def children_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    workflow = Workflow(
        name=manifest["metadata"]["name"],
        namespace=manifest["metadata"]["namespace"],
        uid="",
        generation=1,
        spec=WorkflowSpec.model_validate(manifest["spec"]),
    )
    plan = plan_workflow(workflow, Observed(), _now())
    assert plan.children is not None, plan.status
    for child in plan.children:
        child["metadata"].pop("ownerReferences")
    return plan.children


def _now() -> Any:
    return datetime.now(UTC)


def apiserver_requests(api: client.ApiClient) -> Counter[str]:
    """kube-apiserver's own count of requests by verb (apiserver_request_total)."""
    response = api.call_api("GET", f"{api.configuration.host}/metrics")
    response.read()
    text = response.data.decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            verb = re.search(r'verb="([A-Z]+)"', line)
            if verb:
                counts[verb.group(1)] += int(float(line.rsplit(" ", 1)[1]))
    return counts


async def create_workflows(
    plane: LocalControlPlane, manifests: list[dict[str, Any]], workers: int
) -> None:
    """Create the Workflows as a GitOps tool would, `workers` at a time, so that the clock
    measures the operator rather than a client creating 330 KB objects one by one."""
    api = KubeApi(_credentials(plane), field_manager="bench-user", max_connections=workers)
    limit = asyncio.Semaphore(workers)

    async def create(manifest: dict[str, Any]) -> None:
        async with limit:
            await api.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workflow", **manifest})

    await asyncio.gather(*(create(manifest) for manifest in manifests))
    await api.close()


async def baseline(
    plane: LocalControlPlane, manifests: list[dict[str, Any]], workers: int
) -> float:
    credentials = _credentials(plane)
    api = KubeApi(credentials, field_manager="bench-baseline", max_connections=workers)
    objects = [child for manifest in manifests for child in children_of(manifest)]
    limit = asyncio.Semaphore(workers)

    async def apply(child: dict[str, Any]) -> None:
        async with limit:
            await api.apply(child)

    started = time.monotonic()
    await asyncio.gather(*(apply(child) for child in objects))
    elapsed = time.monotonic() - started
    await api.close()
    return elapsed


def _credentials(plane: LocalControlPlane) -> Credentials:
    import base64

    import yaml

    kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
    user = kubeconfig["users"][0]["user"]
    cluster = kubeconfig["clusters"][0]["cluster"]
    return Credentials(
        server=cluster["server"],
        ca_data=base64.b64decode(cluster["certificate-authority-data"]),
        certificate_data=base64.b64decode(user["client-certificate-data"]),
        private_key_data=base64.b64decode(user["client-key-data"]),
    )


def wait_reconciled(
    plane: LocalControlPlane, namespace: str, count: int, since: Any, timeout: float
) -> float:
    """Until the operator has written a status for every Workflow, as the audit log tells.

    Listing the Workflows instead would have the API server serialise every definition (some
    of 330 KB) twice a second, and slow down the operator it measures.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        plane.sync_audit()
        written = {
            event.name
            for event in plane.audit.select(
                since=since,
                namespace=namespace,
                user=OPERATOR_USER,
                resource=PLURAL,
                subresource="status",
            )
        }
        if len(written) >= count:
            return time.monotonic() - started
        time.sleep(1)
    raise SystemExit(f"not all {count} Workflows were reconciled within {timeout:.0f}s")


def wait_quiet(
    plane: LocalControlPlane, namespace: str, quiet_seconds: float, timeout: float
) -> None:
    """Until the operator has written nothing in the namespace for `quiet_seconds`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        plane.sync_audit()
        mark = plane.audit.mark()
        time.sleep(quiet_seconds)
        if plane.count_requests(since=mark, namespace=namespace) == 0:
            return
    raise SystemExit(f"the namespace kept changing for {timeout:.0f}s")


def memory_mib(operator: OperatorProcess) -> tuple[float, float]:
    """The operator's peak and current resident memory (VmHWM, VmRSS)."""
    fields = {}
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{operator.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmHWM", 0.0), fields.get("VmRSS", 0.0)


@contextlib.contextmanager
def namespace(api: client.ApiClient, name: str) -> Iterator[str]:
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    yield name


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the Workflow controller.")
    parser.add_argument("--count", type=int, default=200, help="Workflows (up to 1000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=API_CONNECTIONS,
        help="requests the baseline and the Workflows' creator keep in flight (default: as"
        " many as the operator's connections to the API server)",
    )
    parser.add_argument(
        "--operator-workers", type=int, default=None, help="operator workers (default: its own)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="orchestrator-bench-"))
    with LocalControlPlane(
        crds=sorted((ROOT / "crds").glob("*.yaml")), simulate_pods=False
    ) as plane:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        print(f"control plane ready in {plane.started_in:.1f}s; {args.count} Workflows")

        with namespace(api, "bench-baseline") as ns:
            manifests = workflows(args.count, ns)
            children = sum(len(children_of(m)) for m in manifests)
            before = apiserver_requests(api)
            baseline_seconds = asyncio.run(baseline(plane, manifests, args.workers))
            baseline_requests = apiserver_requests(api) - before
        print(f"baseline: {children} child objects applied in {baseline_seconds:.1f}s")

        kubeconfig = plane.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
        env = {"ORCHESTRATOR_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS)}
        if args.operator_workers:
            env["ORCHESTRATOR_OPERATOR_WORKERS"] = str(args.operator_workers)
        with (
            running_operator(
                kubeconfig, work / "operator.log", env=env, process_group=plane.process_group
            ) as operator,
            namespace(api, "bench-operator") as ns,
        ):
            manifests = workflows(args.count, ns)
            # The clock starts with a running operator, as the baseline's starts with a client:
            # its start (listing what the baseline left) is measured apart.
            operator.wait_for_log("Watches listed in", timeout=600)
            listed = re.search(r"Watches listed in ([0-9.]+) s: (\d+) objects", operator.log())
            plane.sync_audit()
            mark = plane.audit.mark()
            before = apiserver_requests(api)
            started = time.monotonic()
            started_at = datetime.now(UTC)
            asyncio.run(create_workflows(plane, manifests, args.workers))
            created = time.monotonic() - started
            reconciled = created + wait_reconciled(plane, ns, args.count, mark, timeout=1800)
            # The follow-ups of the last rollouts (status once a Deployment settled) still land
            # after every Workflow has a status; the idle window starts once they stopped.
            wait_quiet(plane, ns, quiet_seconds=5, timeout=300)
            operator_requests = apiserver_requests(api) - before
            operator_events = [
                event for event in plane.audit_events(mark) if event.user == OPERATOR_USER
            ]
            operator_writes = [
                event
                for event in operator_events
                if event.namespace == ns and event.verb in WRITE_VERBS
            ]
            reads = Counter(
                (event.verb, event.resource or "")
                for event in operator_events
                if event.verb in ("get", "list")
            )
            writes = Counter(
                (event.verb, event.resource, event.subresource or "") for event in operator_writes
            )

            plane.sync_audit()
            idle_mark = plane.audit.mark()
            resyncs = operator.log().count("Resync:")
            operator.wait_for_log("Resync:", timeout=RESYNC_SECONDS * 4, count=resyncs + 2)
            idle = Counter(
                (event.verb, event.resource, event.subresource or "")
                for event in plane.audit_events(idle_mark)
                if event.user == OPERATOR_USER
                and event.namespace == ns
                and event.verb in WRITE_VERBS
            )
            idle_writes = sum(idle.values())
            memory, settled_memory = memory_mib(operator)

    total_writes = sum(writes.values())
    status_writes = sum(n for (verb, res, sub), n in writes.items() if sub == "status")
    event_writes = sum(n for (verb, res, sub), n in writes.items() if res == "events")
    child_writes = total_writes - status_writes - event_writes
    print()
    print(f"{'Workflows':<44}{args.count}")
    print(f"{'child objects per Workflow (average)':<44}{children / args.count:.2f}")
    print(f"{'baseline: children applied, seconds':<44}{baseline_seconds:.1f}")
    print(
        f"{'operator: all reconciled, seconds':<44}{reconciled:.1f}"
        f"  (creating them took {created:.1f})"
    )
    print(f"{'ratio operator / baseline (target <= 1.5)':<44}{reconciled / baseline_seconds:.2f}")
    if listed:
        print(
            f"{'operator start: watches listed, seconds':<44}{float(listed.group(1)):.1f}"
            f"  ({listed.group(2)} objects cached)"
        )
    print(f"{'operator writes per Workflow: children':<44}{child_writes / args.count:.2f}")
    print(
        f"{'operator writes per Workflow: status':<44}{status_writes / args.count:.2f}  (target 1)"
    )
    print(f"{'operator writes per Workflow: Events':<44}{event_writes / args.count:.2f}")
    print(f"{'writes during an idle resync (target 0)':<44}{idle_writes}  {dict(idle)}")
    print(f"{'operator peak memory, MiB (target < 150)':<44}{memory:.0f}")
    print(f"{'operator memory once settled, MiB':<44}{settled_memory:.0f}")
    print("\nAPI requests by verb (kube-apiserver's apiserver_request_total, all clients):")
    for verb in sorted(set(baseline_requests) | set(operator_requests)):
        print(
            f"  {verb:<10} baseline {baseline_requests[verb]:>7}"
            f"   operator run {operator_requests[verb]:>7}"
        )
    print("\nWhen the operator's writes landed, seconds after the first Workflow was created:")
    for label, selected in (
        ("children", [e for e in operator_writes if e.resource != "events" and not e.subresource]),
        ("statuses", [e for e in operator_writes if e.subresource == "status"]),
    ):
        times = sorted((e.received - started_at).total_seconds() for e in selected)
        if times:
            marks = "  ".join(
                f"{int(share * 100)}% {times[min(len(times) - 1, int(share * len(times)))]:.1f}"
                for share in (0.1, 0.5, 0.9)
            )
            print(f"  {label:<9} first {times[0]:.1f}  {marks}  last {times[-1]:.1f}")
    print("\nOperator reads by verb, resource (audit log):")
    for (verb, resource), n in sorted(reads.items()):
        print(f"  {verb:<7} {resource:<22} {n}")
    print("\nOperator writes by verb, resource (audit log):")
    for (verb, resource, sub), n in sorted(writes.items()):
        print(f"  {verb:<7} {resource + ('/' + sub if sub else ''):<22} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
