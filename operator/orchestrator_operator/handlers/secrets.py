"""The one watch of Secrets, for every controller that consumes them.

A Workflow reads the key names of the Secrets its properties list, an installation those of its
database credentials; a change to such a Secret rolls the consumer out again. Each controller
knows which Secrets it consumes and ignores the rest.

Limitation: Secrets are watched in every namespace the operator serves (all of them by
default), whatever their labels, because users name their own Secrets; each event carries the
whole Secret, data included, though only its namespace and name are used. An operator serving
a cluster with many or large Secrets spends memory and bandwidth on them, and its account may
read every Secret it serves. `watchNamespaces` narrows both.
"""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.handlers.state import OperatorState


@kopf.on.event("secrets")
async def secret_event(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if not namespace:
        return
    if state.workflows:
        state.workflows.secret_changed(namespace, name)
    if state.installations:
        state.installations.secret_changed(namespace, name)
