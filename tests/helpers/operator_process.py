"""The operator as a separate process, the way it runs in a cluster: `orchestrator-operator run`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from orchestrator_operator.localcluster.processes import Component

OPERATOR = [sys.executable, "-m", "orchestrator_operator", "run"]
CONTROLLERS_STARTED = "Controllers started"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    component: Component
    log_path: Path
    metrics_port: int | None = None
    # How to start the same operator again, for tests of what a restart finds.
    launch: Callable[[], Component] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.component.process

    def stop(self) -> None:
        """Stop the operator as a pod is stopped: SIGTERM, then SIGKILL after a grace period.

        Only the operator itself is signalled: its process group may be the control plane's.
        """
        self.component.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.component.signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def start(self) -> None:
        """Start the stopped operator again, with the same arguments and log, and wait until its
        controllers run."""
        assert self.launch is not None, "this operator cannot be started again"
        assert self.process.poll() is not None, "the operator is still running"
        started = self.log().count(CONTROLLERS_STARTED)
        self.component = self.launch()
        self.wait_for_log(CONTROLLERS_STARTED, timeout=60, count=started + 1)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The operator stopped for the block, running again after it, even when it fails."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the operator's /metrics, 0 when it is not there."""
        assert self.metrics_port, "the operator was started without metrics"
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"operator exited with {self.process.returncode}:\n{self.tail()}"
                )
            time.sleep(0.2)
        raise AssertionError(f"operator did not log {text!r} {count} time(s):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path,
    log_path: Path,
    *,
    process_group: int | None,
    namespaces: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    metrics_port: int | None = None,
) -> Iterator[OperatorProcess]:
    """Start the operator, wait until it has started its controllers, stop it on the way out.

    `process_group` is the local control plane's (`LocalControlPlane.process_group`): the
    operator then goes with it, also when the test run is killed. None (an existing cluster)
    leaves it only the signal the kernel sends when the test process dies.

    Without a metrics port the operator serves no metrics, so that operators started side by
    side never compete for one port.
    """
    metrics = f"127.0.0.1:{metrics_port}" if metrics_port else "0"
    args = [
        *OPERATOR,
        *(f"--namespace={namespace}" for namespace in namespaces),
        f"--metrics-addr={metrics}",
        *extra_args,
    ]
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }

    def launch() -> Component:
        # Appended to, so that a restarted operator's lines follow the first one's.
        return Component(
            "operator",
            args,
            log_path,
            process_group=0 if process_group is None else process_group,
            env=environment,
        )

    log_path.write_bytes(b"")
    operator = OperatorProcess(launch(), log_path, metrics_port, launch)
    try:
        operator.wait_for_log(CONTROLLERS_STARTED, timeout=60)
        yield operator
    finally:
        operator.stop()
