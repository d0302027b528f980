"""When the Workflow controller may write a status from what a Deployment reports."""

from __future__ import annotations

import pytest

from orchestrator_operator.reconcile.workflow import DeploymentState
from orchestrator_operator.reconcile.workflow_controller import _taken_up


def deployment(generation: int, observed: int, desired: int, updated: int) -> DeploymentState:
    return DeploymentState(
        generation=generation,
        observed_generation=observed,
        desired=desired,
        updated=updated,
        ready=0,
        available=0,
        checksum=None,
    )


@pytest.mark.parametrize(
    ("state", "taken_up"),
    [
        # The deployment controller has not seen the spec yet: its status is about the old one.
        (deployment(generation=1, observed=0, desired=1, updated=0), False),
        (deployment(generation=3, observed=2, desired=1, updated=1), False),
        # First rollout: seen, but the ReplicaSet's pods are not created yet.
        (deployment(generation=1, observed=1, desired=2, updated=1), False),
        # First rollout with every pod created, started or not.
        (deployment(generation=1, observed=1, desired=2, updated=2), True),
        (deployment(generation=1, observed=1, desired=0, updated=0), True),
        # A later rollout replaces pods step by step: seen is all there is to wait for.
        (deployment(generation=2, observed=2, desired=3, updated=1), True),
    ],
)
def test_a_status_waits_only_for_what_the_controllers_do_at_once(
    state: DeploymentState, taken_up: bool
) -> None:
    assert _taken_up(state) is taken_up
