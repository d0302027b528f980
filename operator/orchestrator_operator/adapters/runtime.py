"""The workflow runtimes, asked whether they serve their workflow.

`GET <runtime>/management/processes/<id>` is what the Backstage plugin calls to decide whether
a workflow can be run; asking the same question tells a user what the plugin will see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

_MAX_ERROR = 200


@dataclass(frozen=True)
class ProbeOutcome:
    """The answer of one probe: an HTTP code, or the error that kept it from coming."""

    url: str
    code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    def describe(self) -> str:
        if self.code is not None:
            return f"GET {self.url} answered HTTP {self.code}"
        return f"GET {self.url} failed: {self.error}"


def management_url(service_url: str, workflow_id: str) -> str:
    return f"{service_url.rstrip('/')}/management/processes/{quote(workflow_id, safe='')}"


class RuntimeProbe:
    def __init__(
        self,
        *,
        timeout: float = 5.0,
        reachable: Callable[[str], str] = lambda url: url,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._reachable = reachable
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def probe(self, service_url: str, workflow_id: str) -> ProbeOutcome:
        """Ask the runtime at `service_url` for its workflow; the outcome names the in-cluster
        URL, which is what a user can act on, whatever URL was called instead."""
        url = management_url(service_url, workflow_id)
        try:
            # Only the status code matters; the body (the definition) is never read.
            async with self._client.stream("GET", self._reachable(url)) as response:
                return ProbeOutcome(url=url, code=response.status_code)
        except httpx.TimeoutException:
            return ProbeOutcome(url=url, error="no answer in time")
        except httpx.HTTPError as error:
            return ProbeOutcome(url=url, error=f"{type(error).__name__}: {error}"[:_MAX_ERROR])
