"""Settings come from ORCHESTRATOR_OPERATOR_* variables; a wrong one stops the operator at once,
naming the variable, instead of leaving it half started."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestrator_operator.config import OperatorConfig


def test_settings_are_read_from_the_environment() -> None:
    config = OperatorConfig.from_environment(
        {"ORCHESTRATOR_OPERATOR_WORKERS": "3", "ORCHESTRATOR_OPERATOR_RESYNC_SECONDS": "90"}
    )
    assert (config.workers, config.resync_seconds) == (3, 90.0)
    assert OperatorConfig.from_environment({}) == OperatorConfig()


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("WORKERS", "abc", "is not an integer"),
        ("WORKERS", "0", "must be at least 1"),
        ("RESYNC_SECONDS", "soon", "is not a number"),
        ("GIT_CONCURRENCY", "-1", "must be at least 1"),
    ],
)
def test_a_wrong_setting_is_named(variable: str, value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        OperatorConfig.from_environment({f"ORCHESTRATOR_OPERATOR_{variable}": value})
    assert f"ORCHESTRATOR_OPERATOR_{variable}" in str(raised.value)


def test_the_operator_refuses_to_start_with_a_wrong_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator", "run"],
        env={**os.environ, "ORCHESTRATOR_OPERATOR_WORKERS": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "ORCHESTRATOR_OPERATOR_WORKERS='abc' is not an integer" in result.stderr
