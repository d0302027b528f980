"""`orchestrator-operator run`: the operator process."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

LOG_FORMATS = ("plain", "full", "json")


@contextlib.contextmanager
def _without_kubernetes_client() -> Iterator[None]:
    """kopf imports the Kubernetes client library, when it is installed, to recognise its model
    objects and to offer its login, neither of which the operator uses; that import alone costs
    the process about 20 MB. The library stays importable afterwards: the login falls back on
    it for kubeconfigs whose credentials only it can obtain (exec plugins)."""
    blocked = [name for name in ("kubernetes", "kubernetes_asyncio") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


@click.command()
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable; globs such as team-* work). Default: all.",
)
@click.option(
    "--liveness",
    "liveness_endpoint",
    default=None,
    metavar="URL",
    help="Serve health at this URL, for example http://0.0.0.0:8081/healthz.",
)
@click.option(
    "--metrics-addr",
    "metrics_address",
    default="0.0.0.0:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at /metrics and readiness at /readyz here; 0 disables.",
)
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="full", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.option(
    "--peering",
    "peering_name",
    default=None,
    help="Coordinate with other replicas through this KopfPeering object (default: standalone).",
)
def run(
    namespaces: tuple[str, ...],
    liveness_endpoint: str | None,
    metrics_address: str,
    log_format: str,
    verbose: bool,
    peering_name: str | None,
) -> None:
    """Run the operator against the cluster of the current kubeconfig or service account."""
    with _without_kubernetes_client():
        import kopf

        import orchestrator_operator.handlers  # noqa: F401  (registers the handlers)
    from orchestrator_operator.config import OperatorConfig
    from orchestrator_operator.metrics import parse_address

    try:
        metrics_at = parse_address(metrics_address)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--metrics-addr") from None
    try:
        # Read here once so that a wrong setting stops the operator with its name, instead of
        # a startup handler that kopf retries every minute.
        OperatorConfig.from_environment()
    except ValueError as error:
        raise click.ClickException(f"invalid setting: {error}") from None

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()])
    kopf.run(
        standalone=peering_name is None,
        peering_name=peering_name,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness_endpoint,
        # The startup handler that starts the controllers reads it from there.
        memo=kopf.Memo(metrics_address=metrics_at),
    )
