"""The operator under test, running as its own process against the session's cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.kube import Cluster
from helpers.operator_process import OperatorProcess, running_operator

OPERATOR_USER = "orchestrator-operator"
# Short enough that a test sees several resyncs; the default in production is ten minutes.
RESYNC_SECONDS = 3


@pytest.fixture(scope="session")
def operator(
    control_plane: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator watching every namespace, as its own user so that the audit log tells its
    requests from the tests' own."""
    kubeconfig: Path = control_plane.kubeconfig
    if control_plane.local is not None:
        kubeconfig = control_plane.local.mint_kubeconfig(OPERATOR_USER, ["system:masters"])
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(
        kubeconfig,
        log,
        env={"ORCHESTRATOR_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS)},
    ) as process:
        yield process
