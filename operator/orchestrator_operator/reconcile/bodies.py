"""The latest body of every Workflow the watch has shown, kept compressed.

A reconcile needs the Workflow's body, and most reconciles follow a change of a child, not of
the Workflow: reading the body again from the API server each time would cost the server more
than the rest of the reconcile (definitions and their files reach hundreds of KB). Kept as
parsed objects, a thousand such bodies would be most of the operator's memory. Compressed JSON
keeps them at a small fraction of that, for the cost of one decompression per reconcile.

Limitation: every Workflow's body is held, however large: about 17 KB each, compressed, for
the benchmark's fixture Workflows (72 KB of JSON on average). Ten thousand Workflows with large
inline definitions would hold a few hundred MB.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Hashable, Mapping
from typing import Any

# zlib's fastest level: the bodies repeat themselves (definitions, schemas) enough that the
# slower levels save little more.
_LEVEL = 1


class BodyStore:
    def __init__(self) -> None:
        self._bodies: dict[Hashable, bytes] = {}

    def put(self, key: Hashable, body: Mapping[str, Any]) -> None:
        # managedFields mirror the shape of the whole spec, definition included, and no
        # reconcile reads them.
        metadata = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
        encoded = json.dumps({**body, "metadata": metadata}, separators=(",", ":")).encode()
        self._bodies[key] = zlib.compress(encoded, _LEVEL)

    def get(self, key: Hashable) -> dict[str, Any] | None:
        compressed = self._bodies.get(key)
        if compressed is None:
            return None
        body: dict[str, Any] = json.loads(zlib.decompress(compressed))
        return body

    def pop(self, key: Hashable) -> None:
        self._bodies.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._bodies

    def __len__(self) -> int:
        return len(self._bodies)

    def size(self) -> int:
        """The bytes held, compressed."""
        return sum(len(body) for body in self._bodies.values())
