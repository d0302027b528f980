"""The metrics carry controller-runtime's names, count what they say, and are served over HTTP."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from orchestrator_operator.cli import main
from orchestrator_operator.metrics import OperatorMetrics, parse_address
from orchestrator_operator.reconcile.queue import Backoff, WorkQueue


def sample(metrics: OperatorMetrics, metric: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(metric, labels)


def test_a_failed_reconcile_counts_as_an_error_and_a_successful_one_does_not() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)

    metrics.reconcile_finished("workflow", 0.05, failed=False)
    metrics.reconcile_finished("workflow", 0.05, failed=False)
    metrics.reconcile_finished("workflow", 2.0, failed=True)

    total = "controller_runtime_reconcile_total"
    assert sample(metrics, total, controller="workflow", result="success") == 2
    assert sample(metrics, total, controller="workflow", result="error") == 1
    errors = "controller_runtime_reconcile_errors_total"
    assert sample(metrics, errors, controller="workflow") == 1
    time = "controller_runtime_reconcile_time_seconds"
    assert sample(metrics, f"{time}_count", controller="workflow") == 3
    assert sample(metrics, f"{time}_sum", controller="workflow") == pytest.approx(2.1)
    assert sample(metrics, f"{time}_bucket", controller="workflow", le="0.05") == 2


def test_a_started_controller_shows_zero_errors_and_its_queue_depth() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)
    depth = [0]

    metrics.controller_started("workflow", workers=8, depth=lambda: depth[0])
    depth[0] = 5

    assert sample(metrics, "controller_runtime_reconcile_errors_total", controller="workflow") == 0
    assert (
        sample(metrics, "controller_runtime_reconcile_total", controller="workflow", result="error")
        == 0
    )
    assert sample(metrics, "workqueue_depth", name="workflow", controller="workflow") == 5
    assert (
        sample(metrics, "controller_runtime_max_concurrent_reconciles", controller="workflow") == 8
    )


def test_the_work_queue_reports_each_reconcile_through_the_observer() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)
    observe = metrics.reconcile_observer("workflow")
    seen: list[object] = []

    async def process(key: object) -> None:
        if key == "broken":
            raise RuntimeError("the API server refused a child")

    async def run() -> None:
        both_done = asyncio.Event()

        def observe_and_count(key: object, seconds: float, failed: bool) -> None:
            observe(key, seconds, failed)
            seen.append(key)
            if len(seen) == 2:
                both_done.set()

        queue = WorkQueue(backoff=Backoff(first=60), observe=observe_and_count)
        worker = asyncio.create_task(queue.work(process))
        queue.add("fine")
        queue.add("broken")
        await both_done.wait()
        worker.cancel()
        queue.close()

    asyncio.run(asyncio.wait_for(run(), timeout=10))

    total = "controller_runtime_reconcile_total"
    assert sample(metrics, total, controller="workflow", result="success") == 1
    assert sample(metrics, total, controller="workflow", result="error") == 1


def test_api_requests_are_counted_by_code_and_method_and_in_detail() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)

    metrics.api_request("apply", "Deployment", 200)
    metrics.api_request("apply", "ConfigMap", 200)
    metrics.api_request("apply", "Deployment", 422)
    metrics.api_request("get", "Secret", 404)

    assert sample(metrics, "rest_client_requests_total", code="200", method="PATCH") == 2
    assert sample(metrics, "rest_client_requests_total", code="422", method="PATCH") == 1
    assert sample(metrics, "rest_client_requests_total", code="404", method="GET") == 1
    detail = "orchestrator_api_requests_total"
    assert sample(metrics, detail, verb="apply", kind="Deployment", code="422") == 1


def test_git_syncs_and_data_index_polls_count_results_and_durations() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)

    metrics.git_sync("team-a/main/flows", "success", 1.5)
    metrics.git_sync("team-a/main/flows", "error", 0.2)
    metrics.data_index_poll("team-a/main", "success", 0.02)

    assert (
        sample(metrics, "orchestrator_git_sync_total", source="team-a/main/flows", result="error")
        == 1
    )
    duration = "orchestrator_git_sync_duration_seconds_count"
    assert sample(metrics, duration, source="team-a/main/flows") == 2
    polls = "orchestrator_data_index_poll_total"
    assert sample(metrics, polls, installation="team-a/main", result="success") == 1


def test_build_info_names_the_version() -> None:
    metrics = OperatorMetrics("1.2.3", process_metrics=False)

    families = {
        family.name: family
        for family in text_string_to_metric_families(metrics.exposition()[0].decode())
    }

    (info,) = families["orchestrator_operator_build_info"].samples
    assert info.labels["version"] == "1.2.3"
    assert info.value == 1
    # Counters have no *_created twin, as in controller-runtime.
    assert not any(name.endswith("_created") for name in families)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_answers_metrics_and_turns_ready_when_told() -> None:
    metrics = OperatorMetrics("1.2.3")
    server = metrics.serve("127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(f"{base}/readyz")[0] == 503
        metrics.mark_ready()
        assert _get(f"{base}/readyz") == (200, "ok\n")

        metrics.reconcile_finished("workflow", 0.1, failed=True)
        code, text = _get(f"{base}/metrics")
        assert code == 200
        assert 'controller_runtime_reconcile_errors_total{controller="workflow"} 1.0' in text
        assert "process_resident_memory_bytes" in text

        assert _get(f"{base}/other")[0] == 404
    finally:
        metrics.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":8080", ("0.0.0.0", 8080)),
        ("[::]:8443", ("::", 8443)),
        ("0", None),
        ("", None),
    ],
)
def test_metrics_address_forms(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "host:70000"])
def test_malformed_metrics_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_the_run_command_refuses_a_malformed_metrics_address_before_starting() -> None:
    result = CliRunner().invoke(main, ["run", "--metrics-addr", "localhost"])

    assert result.exit_code == 2
    assert "--metrics-addr" in result.output
    assert "expected host:port or 0" in result.output
