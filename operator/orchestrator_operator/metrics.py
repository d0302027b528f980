"""Prometheus metrics of the operator, and the small HTTP server that exposes them.

Reconcile and work queue metrics carry controller-runtime's names and labels, so that the
dashboards and alerts people already run for Go operators work for this one unchanged. What
only this operator does (git sources, the Data Index) gets an `orchestrator_` prefix.

The server runs in a thread of its own rather than on kopf's event loop: a scrape never waits
behind a reconcile, and a scrape that hangs never holds up the operator. Liveness stays with
kopf's own endpoint; this server answers readiness, which turns true once the controllers run.

Limitation: the API requests counted are the operator's own (apply, get, status, Events); the
requests of kopf's watches are not counted, because kopf offers no hook for them.
"""

from __future__ import annotations

import platform
import socket
import threading
from collections.abc import Callable, Hashable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

SUCCESS = "success"
ERROR = "error"

# controller-runtime's buckets for controller_runtime_reconcile_time_seconds.
RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
    15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip
# A fetch of a repository takes from a fraction of a second to minutes for a large one.
GIT_SYNC_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# A Data Index query answers in milliseconds when healthy; the top buckets catch timeouts.
POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The HTTP method behind each verb that the KubeApi adapter reports, so that
# rest_client_requests_total reads as it does for client-go.
_HTTP_METHODS = {
    "apply": "PATCH",
    "patch": "PATCH",
    "patch-status": "PATCH",
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "delete": "DELETE",
}

ReconcileObserver = Callable[[Hashable, float, bool], None]
DepthReader = Callable[[], int]


class _QueueDepths:
    """workqueue_depth, read from the queues themselves at scrape time."""

    def __init__(self) -> None:
        self._readers: dict[str, DepthReader] = {}
        self._lock = threading.Lock()

    def track(self, name: str, depth: DepthReader) -> None:
        with self._lock:
            self._readers[name] = depth

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "workqueue_depth", "Current depth of the work queue.", labels=["name", "controller"]
        )
        with self._lock:
            readers = dict(self._readers)
        for name, depth in sorted(readers.items()):
            family.add_metric([name, name], float(depth()))
        return [family]


class OperatorMetrics:
    """Every metric of one operator process, in a registry of its own.

    A registry per object (not the global one) lets tests make as many as they like, and keeps
    metrics of libraries that register globally out of what the operator promises.
    """

    def __init__(
        self,
        version: str,
        *,
        registry: CollectorRegistry | None = None,
        process_metrics: bool = True,
    ) -> None:
        # The *_created series double every counter without telling an operator anything, and
        # controller-runtime has none; the switch is process-wide in prometheus-client.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        self._ready = threading.Event()
        self._server: MetricsServer | None = None
        self._queues = _QueueDepths()
        self.registry.register(self._queues)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

        self._reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller.",
            ["controller", "result"],
            registry=self.registry,
        )
        self._reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller.",
            ["controller"],
            registry=self.registry,
        )
        self._reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller.",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self._max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller.",
            ["controller"],
            registry=self.registry,
        )
        self._rest_requests = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests to the Kubernetes API, partitioned by status code and method.",
            ["code", "method"],
            registry=self.registry,
        )
        self._api_requests = Counter(
            "orchestrator_api_requests_total",
            "Requests of the operator's reconcilers to the Kubernetes API, by verb, kind and"
            " status code.",
            ["verb", "kind", "code"],
            registry=self.registry,
        )
        self._git_syncs = Counter(
            "orchestrator_git_sync_total",
            "Syncs of git sources, by source and result.",
            ["source", "result"],
            registry=self.registry,
        )
        self._git_sync_time = Histogram(
            "orchestrator_git_sync_duration_seconds",
            "How long one sync of a git source took.",
            ["source"],
            buckets=GIT_SYNC_BUCKETS,
            registry=self.registry,
        )
        self._data_index_polls = Counter(
            "orchestrator_data_index_poll_total",
            "Queries of an installation's Data Index for runs, by installation and result.",
            ["installation", "result"],
            registry=self.registry,
        )
        self._data_index_poll_time = Histogram(
            "orchestrator_data_index_poll_duration_seconds",
            "How long one query of an installation's Data Index took.",
            ["installation"],
            buckets=POLL_BUCKETS,
            registry=self.registry,
        )
        build_info = Gauge(
            "orchestrator_operator_build_info",
            "Always 1; the labels say which build of the operator runs.",
            ["version", "python_version"],
            registry=self.registry,
        )
        build_info.labels(version=version, python_version=platform.python_version()).set(1)

    # -- what the controllers and adapters report ------------------------------------------------

    def reconcile_finished(self, controller: str, seconds: float, failed: bool) -> None:
        """One reconcile ended; `failed` means it raised and will be tried again."""
        self._reconcile_total.labels(
            controller=controller, result=ERROR if failed else SUCCESS
        ).inc()
        if failed:
            self._reconcile_errors.labels(controller=controller).inc()
        self._reconcile_time.labels(controller=controller).observe(max(seconds, 0.0))

    def reconcile_observer(self, controller: str) -> ReconcileObserver:
        """The callback a WorkQueue takes as `observe`, for one controller."""

        def observe(key: Hashable, seconds: float, failed: bool) -> None:
            self.reconcile_finished(controller, seconds, failed)

        return observe

    def controller_started(self, controller: str, workers: int, depth: DepthReader) -> None:
        """A controller runs `workers` reconciles at most at once and queues keys in `depth`."""
        self._max_concurrent.labels(controller=controller).set(workers)
        self._queues.track(controller, depth)
        # Zero series exist from the start, so that rate() and alerts see the first error.
        for result in (SUCCESS, ERROR):
            self._reconcile_total.labels(controller=controller, result=result)
        self._reconcile_errors.labels(controller=controller)

    def api_request(self, verb: str, kind: str, status: int) -> None:
        """The callback KubeApi takes as `observe`."""
        code = str(status)
        method = _HTTP_METHODS.get(verb, verb.upper())
        self._rest_requests.labels(code=code, method=method).inc()
        self._api_requests.labels(verb=verb, kind=kind, code=code).inc()

    def git_sync(self, source: str, result: str, seconds: float) -> None:
        """One sync of a git source ended. `source` names it as namespace/installation/source;
        `result` is a short word such as success, unchanged or error."""
        self._git_syncs.labels(source=source, result=result).inc()
        self._git_sync_time.labels(source=source).observe(max(seconds, 0.0))

    def data_index_poll(self, installation: str, result: str, seconds: float) -> None:
        """One query of a Data Index ended. `installation` names it as namespace/name."""
        self._data_index_polls.labels(installation=installation, result=result).inc()
        self._data_index_poll_time.labels(installation=installation).observe(max(seconds, 0.0))

    # -- readiness and serving ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self, ready: bool = True) -> None:
        if ready:
            self._ready.set()
        else:
            self._ready.clear()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics as Prometheus scrapes them, in the format `accept` asks for."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def serve(self, address: str, port: int) -> MetricsServer:
        """Serve /metrics and /readyz on address:port (port 0 picks a free one) in a thread."""
        if self._server is not None:
            raise RuntimeError("the metrics server is already running")
        self._server = MetricsServer(self, address, port)
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    metrics: ClassVar[OperatorMetrics]
    server_version = "orchestrator-operator"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = self.metrics.exposition(self.headers.get("Accept", ""))
            self._answer(200, body, content_type)
        elif path == "/readyz":
            ready = self.metrics.ready
            self._answer(200 if ready else 503, b"ok\n" if ready else b"starting\n")
        else:
            self._answer(404, b"not found: try /metrics or /readyz\n")

    def _answer(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # A probe every few seconds would bury the operator's own log lines.
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """The running HTTP server; `port` is the bound one, also when 0 was asked for."""

    def __init__(self, metrics: OperatorMetrics, address: str, port: int) -> None:
        handler = type("MetricsHandler", (_Handler,), {"metrics": metrics})
        server_class = _Server6 if ":" in address else _Server
        self._httpd = server_class((address, port), handler)
        self.address = address
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def parse_address(text: str) -> tuple[str, int] | None:
    """`host:port` as the --metrics-addr option takes it; `0` (or an empty value) disables.

    `:8080` listens on every IPv4 address, `[::]:8080` on every IPv6 one.
    """
    text = text.strip()
    if text in ("", "0"):
        return None
    host, separator, port_text = text.rpartition(":")
    if not separator or not port_text.isdigit():
        raise ValueError(f"expected host:port or 0, got {text!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {text!r}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"  # noqa: S104
    return host, port
