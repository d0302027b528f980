"""Conditions in the metav1.Condition shape, and the summary that `Ready` gives of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

READY = "Ready"
TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Finding:
    """The state of one condition as a reconcile found it."""

    type: str
    status: str
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == TRUE


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    findings: Iterable[Finding],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """New conditions from findings, keeping lastTransitionTime where the status did not change.

    Conditions the findings do not mention are dropped: each reconcile states them all.
    """
    by_type = {condition.get("type"): condition for condition in previous}
    merged: list[dict[str, Any]] = []
    for finding in findings:
        before = by_type.get(finding.type)
        transitioned = before is None or before.get("status") != finding.status
        merged.append(
            {
                "type": finding.type,
                "status": finding.status,
                "observedGeneration": generation,
                "lastTransitionTime": timestamp(now)
                if transitioned
                else before.get("lastTransitionTime", timestamp(now)),  # type: ignore[union-attr]
                "reason": finding.reason,
                "message": finding.message[:32768],
            }
        )
    return merged


def summarize(findings: Sequence[Finding], ready_reason: str, ready_message: str) -> Finding:
    """`Ready` is True when every finding is; otherwise it carries the first failing one."""
    for finding in findings:
        if not finding.ok:
            return Finding(READY, FALSE, finding.reason, finding.message)
    return Finding(READY, TRUE, ready_reason, ready_message)


def find(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> Mapping[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == condition_type:
            return condition
    return None
