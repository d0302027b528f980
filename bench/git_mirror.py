#!/usr/bin/env python3
"""How fast and how frugally the operator mirrors a git repository of many workflows.

On one local control plane, in one run:
1. a repository of N workflow folders (the fixture folders, repeated under new ids) is
   mirrored from scratch through a file:// source; the clock runs from the installation's
   creation until its status shows the commit with N workflows;
2. a commit changes one schema of one workflow; the clock runs until the status shows the new
   commit, and the audit log says how many Workflows were written (the target is one);
3. several polls of the unchanged repository, during which the source controller should write
   nothing at all; then a sync-now, which reads every folder again and writes nothing either.

By default the source controller runs alone in this process, so that the figures are the git
mirror's own; with --operator the whole operator runs as its own process, and the Workflow
controller turns each mirrored Workflow into a runtime at the same time, on the same cores.

Prints the times, the writes by resource (from the audit log, by the operator's own user), what
the controller logged of each sync, and peak memory. Nothing here is asserted: the machines
are shared, so read the figures with that in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.operator_process import OperatorProcess, running_operator  # noqa: E402
from orchestrator_operator.adapters.git import GitClient  # noqa: E402
from orchestrator_operator.adapters.kube import Credentials, KubeApi  # noqa: E402
from orchestrator_operator.localcluster import LocalControlPlane  # noqa: E402
from orchestrator_operator.localcluster.git_server import (  # noqa: E402
    commit_all,
    create_repository,
    git,
)
from orchestrator_operator.reconcile.source_controller import SourceController  # noqa: E402
from orchestrator_operator.render.folder_loader import warm_up  # noqa: E402

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
            renamed = _TOP_LEVEL_ID.sub(
                lambda m, suffix=suffix: f"id: {m.group(1)}{suffix}", text, count=1
            )
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


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class InProcess:
    """The source controller alone, in this process, fed the installation as a watch would."""

    def __init__(self, plane: LocalControlPlane, processes: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.lines: list[str] = []
        logging.getLogger("orchestrator_operator").addHandler(_Lines(self.lines))
        logging.getLogger("orchestrator_operator").setLevel(logging.INFO)
        kubeconfig = plane.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
        self.api = KubeApi(_credentials(kubeconfig), field_manager="orchestrator-operator")
        pool = None
        if processes > 0:
            # As the operator starts it: the workers start and import ahead of the first sync.
            pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            for future in [pool.submit(warm_up) for _ in range(processes)]:
                future.result()
        self.controller = SourceController(
            api=self.api, git_client=GitClient(allow_file=True), executor=pool
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def changed(self, body: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.controller.installation_changed, body)

    def sync_lines(self) -> list[str]:
        return [line for line in self.lines if "folders read" in line]

    def memory(self) -> tuple[float, float]:
        return peak_memory_mib(os.getpid())

    def close(self) -> None:
        async def stop() -> None:
            await self.controller.close()
            await self.api.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class OwnProcess:
    """The whole operator as its own process, watching the installation itself."""

    def __init__(self, operator: OperatorProcess) -> None:
        self.operator = operator

    def changed(self, body: dict[str, Any]) -> None:
        del body  # the operator's watch sees the change

    def sync_lines(self) -> list[str]:
        return [line for line in self.operator.log().splitlines() if "folders read" in line]

    def memory(self) -> tuple[float, float]:
        return peak_memory_mib(self.operator.process.pid)


def _credentials(kubeconfig: Path) -> Credentials:
    parsed = yaml.safe_load(kubeconfig.read_text())
    user = parsed["users"][0]["user"]
    cluster = parsed["clusters"][0]["cluster"]
    return Credentials(
        server=cluster["server"],
        ca_data=base64.b64decode(cluster["certificate-authority-data"]),
        certificate_data=base64.b64decode(user["client-certificate-data"]),
        private_key_data=base64.b64decode(user["client-key-data"]),
    )


def peak_memory_mib(pid: int) -> tuple[float, float]:
    """Peak resident memory of a process, and of its discovery processes together."""

    def peak(process: int) -> int:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def is_worker(process: int) -> bool:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            return b"multiprocessing" in Path(f"/proc/{process}/cmdline").read_bytes()
        return False

    children: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children.extend(int(child) for child in (task / "children").read_text().split())
    workers = [child for child in children if is_worker(child)]
    return peak(pid) / 1024, sum(peak(worker) for worker in workers) / 1024


def measure(
    plane: LocalControlPlane, driver: InProcess | OwnProcess, repository: Path
) -> dict[str, Any]:
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    custom = client.CustomObjectsApi(api)
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
    )
    count = sum(1 for p in repository.iterdir() if p.is_dir() and p.name not in ("shared", ".git"))
    first = git(repository, "rev-parse", "HEAD")
    figures: dict[str, Any] = {"count": count}

    plane.sync_audit()
    mark = plane.audit.mark()
    body = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        "orchestratorinstances",
        installation(NAMESPACE, f"file://{repository}"),
    )
    driver.changed(body)
    figures["scratch"] = wait_for_commit(api, first, count, timeout=600)
    figures["scratch writes"] = mirror_writes(plane, mark)

    schema = repository / "greeting-005" / "schemas" / "greeting.sw.input-schema.json"
    schema.write_text(schema.read_text().replace("language", "language ", 1))
    second = commit_all(repository, "Edit one schema")
    plane.sync_audit()
    mark = plane.audit.mark()
    figures["changed"] = wait_for_commit(api, second, count, timeout=120)
    figures["changed writes"] = mirror_writes(plane, mark)

    # Let the follow-ups of the change settle, then count over several polls.
    time.sleep(POLL_SECONDS)
    entry = source_entry(api)
    plane.sync_audit()
    mark = plane.audit.mark()
    time.sleep(POLL_SECONDS * 4)
    figures["idle writes"] = mirror_writes(plane, mark)
    figures["idle entry unchanged"] = source_entry(api) == entry

    patch = {"metadata": {"annotations": {"orchestrator.dev/sync-now": uuid.uuid4().hex}}}
    plane.sync_audit()
    mark = plane.audit.mark()
    before = len(driver.sync_lines())
    body = custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "orchestratorinstances", "bench", patch
    )
    driver.changed(body)
    deadline = time.monotonic() + 120
    while len(driver.sync_lines()) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    figures["forced writes"] = mirror_writes(plane, mark)
    figures["memory"] = driver.memory()
    figures["lines"] = driver.sync_lines()
    return figures


def report(figures: dict[str, Any], processes: int, mode: str) -> None:
    def workflows_written(writes: Counter[str]) -> int:
        return sum(n for key, n in writes.items() if key.endswith(" workflows"))

    memory, children = figures["memory"]
    print()
    print(f"{'mode':<52}{mode}")
    print(f"{'workflow folders':<52}{figures['count']}")
    print(f"{'discovery processes':<52}{processes}")
    print(f"{'from scratch: mirrored, seconds (target < 10)':<52}{figures['scratch']:.1f}")
    print(f"{'from scratch: Workflows written':<52}{workflows_written(figures['scratch writes'])}")
    print(f"{'one file changed: mirrored, seconds':<52}{figures['changed']:.1f}")
    print(
        f"{'one file changed: Workflows written (target 1)':<52}"
        f"{workflows_written(figures['changed writes'])}"
    )
    print(f"{'unchanged polls: writes (target 0)':<52}{sum(figures['idle writes'].values())}")
    print(f"{'unchanged polls: status entry unchanged':<52}{figures['idle entry unchanged']}")
    print(f"{'sync now, nothing changed: writes':<52}{sum(figures['forced writes'].values())}")
    print(f"{'peak memory, MiB':<52}{memory:.0f}")
    print(f"{'discovery processes, peak memory together, MiB':<52}{children:.0f}")
    print("\nWrites by the source controller (audit log):")
    for title, key in (
        ("from scratch", "scratch writes"),
        ("one file changed", "changed writes"),
        ("unchanged polls", "idle writes"),
        ("sync now", "forced writes"),
    ):
        print(f"  {title:<18} {dict(sorted(figures[key].items()))}")
    print("\nWhat the controller logged of each sync:")
    for line in figures["lines"]:
        print("  " + line.split("] ", 1)[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the git mirror.")
    parser.add_argument("--count", type=int, default=100, help="workflow folders")
    parser.add_argument(
        "--discovery-processes", type=int, default=2, help="0 reads folders in threads"
    )
    parser.add_argument(
        "--operator", action="store_true", help="run the whole operator as its own process"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="orchestrator-bench-git-"))
    repository = work / "workflows"
    build_repository(repository, args.count)
    try:
        with LocalControlPlane(
            crds=sorted((ROOT / "crds").glob("*.yaml")), simulate_pods=False
        ) as plane:
            print(f"control plane ready in {plane.started_in:.1f}s; {args.count} workflow folders")
            if args.operator:
                kubeconfig = plane.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
                env = {
                    "ORCHESTRATOR_OPERATOR_ALLOW_FILE_SOURCES": "true",
                    "ORCHESTRATOR_OPERATOR_DISCOVERY_PROCESSES": str(args.discovery_processes),
                }
                with running_operator(
                    kubeconfig, work / "operator.log", env=env, process_group=plane.process_group
                ) as operator:
                    figures = measure(plane, OwnProcess(operator), repository)
            else:
                driver = InProcess(plane, args.discovery_processes)
                try:
                    figures = measure(plane, driver, repository)
                finally:
                    driver.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(figures, args.discovery_processes, "operator process" if args.operator else "in process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
