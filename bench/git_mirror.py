#!/usr/bin/env python3
"""How fast and how frugally the operator mirrors a git repository of many workflows.

On one local control plane, in one run:
1. a repository of N workflow folders (the fixture folders, repeated under new ids) is
   mirrored from scratch through a file:// source; the clock runs from the installation's
   creation until its status shows the commit with N workflows;
2. a commit changes one schema of one workflow; the clock runs until the status shows the new
   commit, and the audit log says how many Workflows were written (the target is one);
3. several polls of the unchanged repository, during which the source controller should write
   nothing at all.

Prints the times, the writes by resource (from the audit log, by the operator's own user), what
the operator logged of each sync, and the operator's peak memory with its discovery processes.
Nothing here is asserted: the machines are shared, so read the figures with that in mind.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.operator_process import OperatorProcess, running_operator  # noqa: E402
from orchestrator_operator.localcluster import LocalControlPlane  # noqa: E402
from orchestrator_operator.localcluster.git_server import (  # noqa: E402
    commit_all,
    create_repository,
)

FIXTURES = ROOT / "tests" / "fixtures" / "rhdh-serverless-workflows"
GROUP, VERSION = "orchestrator.dev", "v1alpha1"
OPERATOR_USER = "orchestrator-operator"
WRITE_VERBS = ("create", "update", "patch", "delete")
NAMESPACE = "bench-git"
POLL_SECONDS = 2
_TOP_LEVEL_ID = re.compile(r"^id:\s*\"?([A-Za-z0-9_-]+)\"?\s*$", re.MULTILINE)


def build_repository(path: Path, count: int) -> str:
    """A repository of `count` workflow folders made from the fixtures, each with its own id."""
    path.mkdir(parents=True)
    shutil.copytree(FIXTURES / "shared", path / "shared")
    folders = sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "shared")
    for index in range(count):
        source = folders[index % len(folders)]
        target = path / f"{source.name}-{index:03d}"
        shutil.copytree(source, target)
        for definition in [*target.glob("*.sw.yaml"), *target.glob("src/main/resources/*.sw.yaml")]:
            text = definition.read_text()
            suffix = f"-n{index:03d}"
            renamed = _TOP_LEVEL_ID.sub(lambda m: f"id: {m.group(1)}{suffix}", text, count=1)
            definition.write_text(renamed)
    return create_repository(path)


def installation(namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrchestratorInstance",
        "metadata": {"name": "bench", "namespace": namespace},
        "spec": {
            "dataIndex": {"enabled": False},
            "jobsService": {"enabled": False},
            "sources": [{"name": "main", "url": url, "pollInterval": f"{POLL_SECONDS}s"}],
        },
    }


def source_entry(api: client.ApiClient) -> dict[str, Any]:
    body = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "orchestratorinstances", "bench"
    )
    entries = (body.get("status") or {}).get("sources") or []
    return dict(entries[0]) if entries else {}


def wait_for_commit(api: client.ApiClient, commit: str, workflows: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        entry = source_entry(api)
        if entry.get("commit") == commit and entry.get("workflows") == workflows:
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"the source did not reach {commit[:12]} within {timeout:.0f}s: {entry}")


def mirror_writes(plane: LocalControlPlane, mark: Any) -> Counter[str]:
    """The source controller's writes since `mark`: Workflow specs and its own ConfigMaps."""
    plane.sync_audit()
    writes: Counter[str] = Counter()
    for event in plane.audit.select(since=mark, namespace=NAMESPACE, user=OPERATOR_USER):
        if event.verb not in WRITE_VERBS:
            continue
        if event.resource == "workflows" and event.subresource is None:
            writes[f"{event.verb} workflows"] += 1
        elif event.resource == "configmaps" and "-source-" in (event.name or ""):
            writes[f"{event.verb} configmaps"] += 1
        elif event.resource == "orchestratorinstances":
            writes[f"{event.verb} orchestratorinstances/{event.subresource or ''}"] += 1
    return writes


def peak_memory_mib(operator: OperatorProcess) -> tuple[float, float]:
    """Peak resident memory of the operator process, and of its child processes together."""

    def peak(pid: int) -> int:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    pid = operator.process.pid
    children: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children.extend(int(child) for child in text)
    return peak(pid) / 1024, sum(peak(child) for child in children) / 1024


def sync_lines(operator: OperatorProcess) -> list[str]:
    return [line for line in operator.log().splitlines() if "folders read" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the git mirror.")
    parser.add_argument("--count", type=int, default=100, help="workflow folders")
    parser.add_argument(
        "--discovery-processes", type=int, default=2, help="0 reads folders in threads"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="orchestrator-bench-git-"))
    repository = work / "workflows"
    first = build_repository(repository, args.count)
    with LocalControlPlane(
        crds=sorted((ROOT / "crds").glob("*.yaml")), simulate_pods=False
    ) as plane:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        print(f"control plane ready in {plane.started_in:.1f}s; {args.count} workflow folders")
        kubeconfig = plane.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
        env = {
            "ORCHESTRATOR_OPERATOR_ALLOW_FILE_SOURCES": "true",
            "ORCHESTRATOR_OPERATOR_DISCOVERY_PROCESSES": str(args.discovery_processes),
        }
        with running_operator(kubeconfig, work / "operator.log", env=env) as operator:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
            )
            custom = client.CustomObjectsApi(api)

            plane.sync_audit()
            mark = plane.audit.mark()
            started = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                "orchestratorinstances",
                installation(NAMESPACE, f"file://{repository}"),
            )
            scratch = wait_for_commit(api, first, args.count, timeout=600)
            scratch_writes = mirror_writes(plane, mark)
            del started

            schema = next(
                (repository / "greeting-005").glob("schemas/greeting.sw.input-schema.json")
            )
            schema.write_text(schema.read_text().replace("language", "language ", 1))
            second = commit_all(repository, "Edit one schema")
            plane.sync_audit()
            mark = plane.audit.mark()
            changed = wait_for_commit(api, second, args.count, timeout=120)
            changed_writes = mirror_writes(plane, mark)

            # Let the follow-ups of the change settle, then count over several polls.
            time.sleep(POLL_SECONDS)
            entry = source_entry(api)
            plane.sync_audit()
            mark = plane.audit.mark()
            time.sleep(POLL_SECONDS * 4)
            idle_writes = mirror_writes(plane, mark)
            entry_unchanged = source_entry(api) == entry

            sync_now = {
                "metadata": {"annotations": {"orchestrator.dev/sync-now": uuid.uuid4().hex}}
            }
            plane.sync_audit()
            mark = plane.audit.mark()
            before = len(sync_lines(operator))
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "orchestratorinstances", "bench", sync_now
            )
            deadline = time.monotonic() + 120
            while len(sync_lines(operator)) == before and time.monotonic() < deadline:
                time.sleep(0.1)
            forced_writes = mirror_writes(plane, mark)
            memory, children_memory = peak_memory_mib(operator)
            lines = sync_lines(operator)

    def workflows_written(writes: Counter[str]) -> int:
        return sum(n for key, n in writes.items() if key.endswith(" workflows"))

    print()
    print(f"{'workflow folders':<52}{args.count}")
    print(f"{'discovery processes':<52}{args.discovery_processes}")
    print(f"{'from scratch: mirrored, seconds (target < 10)':<52}{scratch:.1f}")
    print(f"{'from scratch: Workflows written':<52}{workflows_written(scratch_writes)}")
    print(f"{'one file changed: mirrored, seconds':<52}{changed:.1f}")
    print(
        f"{'one file changed: Workflows written (target 1)':<52}{workflows_written(changed_writes)}"
    )
    print(f"{'unchanged polls: writes (target 0)':<52}{sum(idle_writes.values())}")
    print(f"{'unchanged polls: status entry unchanged':<52}{entry_unchanged}")
    print(f"{'sync now, nothing changed: writes':<52}{sum(forced_writes.values())}")
    print(f"{'operator peak memory, MiB':<52}{memory:.0f}")
    print(f"{'discovery processes peak memory together, MiB':<52}{children_memory:.0f}")
    print("\nWrites by the source controller (audit log):")
    for title, writes in (
        ("from scratch", scratch_writes),
        ("one file changed", changed_writes),
        ("unchanged polls", idle_writes),
        ("sync now", forced_writes),
    ):
        print(f"  {title:<18} {dict(sorted(writes.items()))}")
    print("\nWhat the operator logged of each sync:")
    for line in lines:
        print("  " + line.split("] ", 1)[-1])
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
