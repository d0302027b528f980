"""The operator under test, running as its own process against the session's cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.kube import Cluster
from helpers.operator_process import OperatorProcess, free_port, running_operator
from standins.data_index import StandIn

OPERATOR_USER = "orchestrator-operator"
# Short enough that a test sees several resyncs; the default in production is ten minutes.
RESYNC_SECONDS = 3
# How often the operator asks each installation's Data Index; production polls every 30 s.
DATA_INDEX_POLL_SECONDS = 1


@pytest.fixture(scope="session")
def git_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests' HTTPS git servers write their certificate authority, which the
    operator trusts for git; it is read at each fetch, so it may be written after the start."""
    return tmp_path_factory.getbasetemp() / "git-ca.pem"


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """The Data Indexes and workflow runtimes of the tests: no pod serves in this cluster, so the
    operator's calls to in-cluster services come here instead, under /<namespace>/<service>."""
    with StandIn() as server:
        yield server


@pytest.fixture(scope="module")
def operator(
    control_plane: Cluster,
    tmp_path_factory: pytest.TempPathFactory,
    git_ca_file: Path,
    standin: StandIn,
) -> Iterator[OperatorProcess]:
    """One operator watching every namespace, as its own user so that the audit log tells its
    requests from the tests' own. Git sources may be file:// repositories of the tests.

    One per module, stopped at the module's end: the modules that start operators of their own
    must not have this one reconciling their Workflows first."""
    kubeconfig: Path = control_plane.kubeconfig
    if control_plane.local is not None:
        kubeconfig = control_plane.local.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(
        kubeconfig,
        log,
        process_group=control_plane.process_group,
        env={
            "ORCHESTRATOR_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "ORCHESTRATOR_OPERATOR_ALLOW_FILE_SOURCES": "true",
            "ORCHESTRATOR_OPERATOR_GIT_CA_FILE": str(git_ca_file),
            "ORCHESTRATOR_OPERATOR_DATA_INDEX_POLL_SECONDS": str(DATA_INDEX_POLL_SECONDS),
            "ORCHESTRATOR_OPERATOR_SERVICE_URL_OVERRIDE": standin.override_template,
        },
        metrics_port=free_port(),
    ) as process:
        yield process
