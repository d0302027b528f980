"""Discovery of a checked-out commit, reading again only the folders whose files changed.

Loading a workflow folder parses its definition and resource files (OpenAPI files of several
hundred kilobytes), which is most of a sync's work. Each source keeps what its last discovery
loaded, by a digest of the files each loading may read; a commit that changes one folder loads
that folder alone. Loadings that are needed run in a process pool when the operator has one,
so that a first sync of many folders uses more than one core, and otherwise in a thread.

Limitation: what the cache keeps is the content of every workflow of the source, so the
operator holds about the size of each repository's workflow folders in memory between polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_operator.render.discovered import Candidate, Discovery, Loaded
from orchestrator_operator.render.repository import (
    assemble,
    candidate_digests,
    find_candidates,
    load_candidate,
)

logger = logging.getLogger(__name__)


@dataclass
class DiscoveryCache:
    """What one source's last discovery loaded, by digest of each candidate's files."""

    loaded: dict[str, Loaded] = field(default_factory=dict)
    # Figures of the last discovery, for logs and the benchmark.
    reused: int = 0
    read: int = 0

    def clear(self) -> None:
        self.loaded.clear()


async def discover_checkout(
    root: Path, path: str, cache: DiscoveryCache, executor: Executor | None = None
) -> Discovery:
    """The discovery of a checkout, loading only the candidates the cache does not hold.

    Raises DiscoveryError when `path` is not a folder of the checkout. Missing resource files
    are not reported here: the Workflow's own status reports them.
    """
    root = await asyncio.to_thread(root.resolve)
    layout = await asyncio.to_thread(find_candidates, root, path)
    digests = await asyncio.to_thread(candidate_digests, root, layout)
    needed = [c for c in layout.candidates if digests[c] not in cache.loaded]
    try:
        results = await asyncio.gather(*(_load(root, c, executor) for c in needed))
    except BrokenProcessPool:
        # A worker died (killed for its memory, most likely): this discovery reads in threads.
        logger.warning(
            "The discovery process pool broke; reading %d folders in threads", len(needed)
        )
        results = await asyncio.gather(*(_load(root, c, None) for c in needed))

    fresh: Mapping[str, Loaded] = {
        **{digests[c]: cache.loaded[digests[c]] for c in layout.candidates if c not in needed},
        **{digests[c]: result for c, result in zip(needed, results, strict=True)},
    }
    # Only the candidates of this commit stay, so the cache never outgrows the repository.
    cache.loaded = dict(fresh)
    cache.read, cache.reused = len(needed), len(layout.candidates) - len(needed)
    return assemble(layout, [fresh[digests[c]] for c in layout.candidates])


async def _load(root: Path, candidate: Candidate, executor: Executor | None) -> Loaded:
    if executor is not None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, load_candidate, root, candidate, False)
    return await asyncio.to_thread(load_candidate, root, candidate, False)
