"""`orchestrator-operator run --log-format=json` writes one JSON object per line from its first
line on, before it has reached any cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUN = [sys.executable, "-m", "orchestrator_operator", "run"]


def test_json_log_lines_from_the_first_one(tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    # No cluster: the operator starts, fails to log in, and waits to try again.
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")},
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*RUN, "--log-format=json", "--metrics-addr=0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + 60
        while "Cannot authenticate" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) >= 3
    for record in records:
        assert isinstance(record, dict)
        assert {"message", "severity", "timestamp"} <= set(record), record
    assert records[0]["message"].startswith("orchestrator-operator ")
    assert records[0]["severity"] == "info"
    failed = next(record for record in records if "Cannot authenticate" in record["message"])
    assert failed["severity"] == "error"
    assert "Traceback" in failed["exc_info"]
