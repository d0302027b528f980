"""Operator-wide handlers: settings, login, the controllers' lifetime, probes."""

from __future__ import annotations

import asyncio
import base64
import logging
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import kopf
import yaml

from orchestrator_operator import __version__
from orchestrator_operator.adapters import git, kube
from orchestrator_operator.adapters.dataindex import DataIndexClient
from orchestrator_operator.adapters.runtime import RuntimeProbe
from orchestrator_operator.adapters.serviceurls import ServiceUrls
from orchestrator_operator.config import OperatorConfig
from orchestrator_operator.handlers import caches
from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.metrics import OperatorMetrics
from orchestrator_operator.reconcile.installation_controller import InstallationController
from orchestrator_operator.reconcile.live import LiveStatus
from orchestrator_operator.reconcile.poller import RunsPoller
from orchestrator_operator.reconcile.queue import WorkQueue
from orchestrator_operator.reconcile.source_controller import SourceController
from orchestrator_operator.reconcile.workflow_controller import WorkflowController
from orchestrator_operator.render.folder_loader import warm_up
from orchestrator_operator.render.workflow import RuntimeDefaults

DOMAIN = "orchestrator.dev"
# Requests the operator keeps in flight to the API server at most, over every controller.
API_CONNECTIONS = 8
# Installations are few and their reconciles short; two workers keep one slow API call from
# holding up the others.
INSTALLATION_WORKERS = 2


# A watch request asks the API server to end it after this long; kopf then reconnects from the
# last resource version it saw. Without it the server picks 30 to 60 minutes, and a stream that
# a proxy or load balancer silently dropped goes unnoticed for as long. Whole seconds: kopf
# passes it on as timeoutSeconds, which the API server refuses with a fraction ("300.0").
WATCH_SERVER_TIMEOUT = 300
# The client gives up on a watch request a little after the server should have ended it, for
# the servers and proxies that never do.
WATCH_CLIENT_TIMEOUT = WATCH_SERVER_TIMEOUT + 30.0
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0


def apply_settings(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator: where it keeps its marks, how it watches."""
    settings.persistence.finalizer = f"{DOMAIN}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=DOMAIN, key="last-handled-configuration"
    )
    # kopf posts its own failures as Events; our reconcilers post theirs with stable reasons.
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = REQUEST_TIMEOUT
    settings.networking.connect_timeout = CONNECT_TIMEOUT
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = CONNECT_TIMEOUT
    # Pages of the initial listing, so that thousands of objects do not arrive in one body.
    # Limitation: a listing that takes longer than the API server keeps its continue tokens
    # (about five minutes, until etcd compacts) ends in 410 Gone, which stops kopf and so the
    # operator; the pod restarts and lists again.
    settings.watching.chunk_size = 500


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any
) -> None:
    apply_settings(settings)
    logging.getLogger("kopf.objects").addFilter(_quiet_watch_handlers)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

    config = OperatorConfig.from_environment()
    memo.state = OperatorState(config=config)
    logger.info("orchestrator-operator %s starting", __version__)


def _quiet_watch_handlers(record: logging.LogRecord) -> bool:
    """Drop kopf's "Handler ... succeeded" lines for watch and index handlers.

    They run on every watch event and only hand a key to a controller; one line each would
    bury the lines that say what the operator decided.
    """
    return not (record.levelno <= logging.INFO and str(record.msg).startswith("Handler "))


def connection_info(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials serve kopf's watches and our own requests: the pod's service
    account, else the kubeconfig. A kubeconfig whose user has no token or certificate of its
    own (an exec plugin, an auth provider) is read by the Kubernetes client library, which
    alone can run those."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    if info is not None:
        return info
    try:
        info = kopf.login_with_kubeconfig(**kwargs)
    except (OSError, KeyError, yaml.YAMLError) as error:
        raise kopf.LoginError(
            f"Cannot authenticate: the kubeconfig cannot be read: {error}"
        ) from None
    if info is not None and (info.token or info.certificate_path or info.certificate_data):
        return info
    return kopf.login_via_client(**kwargs) or info


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return connection_info(**kwargs)


@kopf.on.startup()
async def start_controllers(memo: kopf.Memo, logger: Any, **kwargs: Any) -> None:
    state: OperatorState = memo.state
    info = connection_info(logger=logger, **kwargs)
    if info is None:
        raise kopf.PermanentError("no credentials for the Kubernetes API were found")
    metrics = state.metrics = _start_metrics(memo, logger)
    api = kube.KubeApi(
        _credentials(info),
        field_manager=state.config.field_manager,
        timeout=state.config.request_timeout_seconds,
        observe=state.observe_request,
        max_connections=API_CONNECTIONS,
    )
    state.api = api
    state.cache = caches.new_cache()
    state.workflows = WorkflowController(
        api=api,
        children=state.workflow_children,
        holders=state.name_holder,
        pod_problems=state.workflow_pod_problems,
        defaults=RuntimeDefaults(dev_image=state.config.dev_image),
        component=state.config.field_manager,
        queue=WorkQueue(observe=metrics.reconcile_observer("workflow")),
    )
    workflows = state.workflows
    state.tasks = [
        asyncio.create_task(_when_cache_ready(state, workflows.queue, workflows.process))
        for _ in range(state.config.workers)
    ]
    state.tasks.append(asyncio.create_task(_resync_forever(state)))
    state.tasks.append(asyncio.create_task(_report_cache(state)))
    state.sources = SourceController(
        api=api,
        git_client=git.GitClient(
            allow_file=state.config.allow_file_sources,
            ca_file=state.config.git_ca_file,
            timeout=state.config.git_timeout_seconds,
            concurrency=state.config.git_concurrency,
        ),
        component=state.config.field_manager,
        executor=_discovery_pool(state.config.discovery_processes),
        observe=metrics.git_sync,
    )
    metrics.controller_started("workflow", state.config.workers, state.workflows.queue.__len__)
    _start_installations(state, api, metrics)
    caches.attach(state)
    metrics.mark_ready()
    logger.info("Controllers started with %d workers", state.config.workers)


def _start_installations(state: OperatorState, api: kube.KubeApi, metrics: OperatorMetrics) -> None:
    """The installation controller, its poller, and the link from Workflows to installations."""
    config = state.config
    urls = ServiceUrls(mapping=dict(config.service_urls), template=config.service_url_override)
    installations = state.installations = InstallationController(
        api=api,
        children=state.installation_children,
        holders=state.name_holder,
        linked_workflows=state.linked_workflows,
        store=LiveStatus(),
        operator_namespace=config.operator_namespace,
        component=config.field_manager,
        queue=WorkQueue(observe=metrics.reconcile_observer("installation")),
    )
    if state.workflows:
        state.workflows.resolve_installation = installations.resolve
        installations.enqueue_workflow = state.workflows.queue.add
    timeout = min(config.request_timeout_seconds, 10.0)
    installations.poller = RunsPoller(
        client=DataIndexClient(timeout=timeout),
        probe=RuntimeProbe(timeout=timeout, reachable=urls.reachable)
        if config.probe_runtimes
        else None,
        store=installations.store,
        urls=urls,
        interval=config.data_index_poll_seconds,
        targets=installations.poll_target,
        workflows_changed=installations.workflows_changed,
        installation_changed=installations.queue.add,
        observe=metrics.data_index_poll,
    )
    state.tasks.extend(
        asyncio.create_task(_when_cache_ready(state, installations.queue, installations.process))
        for _ in range(INSTALLATION_WORKERS)
    )
    metrics.controller_started("installation", INSTALLATION_WORKERS, installations.queue.__len__)


async def _when_cache_ready(
    state: OperatorState, queue: WorkQueue, process: Callable[[Any], Awaitable[None]]
) -> None:
    """A worker that starts once every watched kind is listed into the cache: before that, a
    child not yet seen would be applied again, and a name someone holds would look free."""
    if state.cache:
        await state.cache.ready.wait()
    await queue.work(process)


async def _report_cache(state: OperatorState, patience: float = 60.0) -> None:
    """Say when the cache is filled, and what it still waits for while it takes long."""
    cache = state.cache
    if cache is None:
        return
    log = logging.getLogger(__name__)
    started = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(cache.ready.wait(), timeout=patience)
        except TimeoutError:
            log.warning(
                "The controllers still wait for the watches to list: %s",
                "; ".join(cache.waiting_for()),
            )
        else:
            log.info(
                "Watches listed in %.1f s: %d objects cached; controllers at work",
                time.monotonic() - started,
                cache.size(),
            )
            return


def _discovery_pool(processes: int) -> Executor | None:
    """Processes for reading workflow folders, started at the first read; None for threads."""
    if processes <= 0:
        return None
    # Spawned rather than forked: a fork of a process that runs threads and an event loop can
    # inherit a lock held by a thread that does not exist in the child.
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    # The workers start now, not during the first sync, which would wait for their imports.
    for _ in range(processes):
        pool.submit(warm_up)
    return pool


def _start_metrics(memo: kopf.Memo, logger: Any) -> OperatorMetrics:
    metrics = OperatorMetrics(__version__)
    address = memo.get("metrics_address")
    if address is None:
        return metrics
    host, port = address
    try:
        metrics.serve(host, port)
    except OSError as error:
        # Without metrics the operator still does its work; the readiness probe, served by the
        # same server, makes the missing port visible in a cluster.
        logger.error("Cannot serve metrics on %s:%d: %s", host, port, error)
    else:
        logger.info("Serving metrics on http://%s:%d/metrics", host, port)
    return metrics


async def _resync_forever(state: OperatorState) -> None:
    log = logging.getLogger(__name__)
    while True:
        await asyncio.sleep(state.config.resync_seconds)
        if state.workflows:
            state.workflows.resync()
            log.info("Resync: %d workflows queued", len(state.workflows.known()))
        if state.installations:
            state.installations.resync()


@kopf.on.cleanup()
async def stop_controllers(memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState = memo.state
    caches.detach()
    for task in state.tasks:
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    if state.sources:
        await state.sources.close()
    if state.workflows:
        state.workflows.queue.close()
    if state.installations:
        state.installations.queue.close()
        poller = state.installations.poller
        if poller:
            await poller.close()
            await poller.client.close()
            if poller.probe:
                await poller.probe.close()
    if state.api:
        await state.api.close()
    if state.metrics:
        state.metrics.close()


@kopf.on.probe(id="workqueue")
def report_queue(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    state: OperatorState = memo.state
    waiting: dict[str, int] = {}
    if state.workflows:
        waiting["workflowsWaiting"] = len(state.workflows.queue)
    if state.installations:
        waiting["installationsWaiting"] = len(state.installations.queue)
    return waiting


def _credentials(info: kopf.ConnectionInfo) -> kube.Credentials:
    def as_pem(value: str | bytes | None) -> bytes | None:
        """PEM, as the ssl module reads it: a kubeconfig holds it base64-encoded, and kopf
        hands it on as it found it."""
        if value is None:
            return None
        data = value.encode() if isinstance(value, str) else value
        return data if data.lstrip().startswith(b"-----BEGIN ") else base64.b64decode(data)

    def as_path(value: Any) -> str | None:
        return None if value is None else str(value)

    return kube.Credentials(
        server=info.server,
        ca_path=as_path(info.ca_path),
        ca_data=as_pem(info.ca_data),
        insecure=bool(info.insecure),
        token=info.token,
        certificate_path=as_path(info.certificate_path),
        certificate_data=as_pem(info.certificate_data),
        private_key_path=as_path(info.private_key_path),
        private_key_data=as_pem(info.private_key_data),
        default_namespace=info.default_namespace,
    )
