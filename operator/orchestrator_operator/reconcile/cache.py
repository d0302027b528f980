"""What the controllers read of the objects they watch, kept in memory from the watch streams.

Each watched resource has an indexer: it turns an object into entries `(index, key, value)`,
such as ("workflow_children", (namespace, workflow name), what the watch showed of the child).
The cache keeps, for each index and key, the values of every object that gave one, and replaces
an object's entries whole when it changes.

The controllers must not act on a cache that is still filling: a child they have not seen yet
would be applied again, and a name held by someone else would look free. So the cache follows
each watch stream's listing, and is `ready` once every watched resource has at least one stream
and every stream has been listed whole. It stays ready after that: a stream that lists again
(after its resource version expired) replaces its objects when its listing ends, dropping those
that are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# An object by namespace and name, within one resource.
ObjectRef = tuple[str | None, str]
# One entry an object gives: the index, the key within it, and the value kept.
Entry = tuple[str, Hashable, Any]
Indexer = Callable[[Mapping[str, Any]], Iterable[Entry]]
# A watch stream: the resource and the namespace it watches (None: every namespace).
StreamKey = tuple[str, str | None]


@dataclass(frozen=True)
class Change:
    """What one event changed: the entries the object gave before it and those it gives now."""

    resource: str
    ref: ObjectRef
    deleted: bool
    before: tuple[Entry, ...]
    after: tuple[Entry, ...]


@dataclass
class _Stream:
    # The objects listed so far while a listing is under way; None between listings.
    listing: set[ObjectRef] | None = None
    listed: bool = False


@dataclass
class WatchCache:
    indexers: Mapping[str, Indexer]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _entries: dict[str, dict[ObjectRef, tuple[Entry, ...]]] = field(default_factory=dict)
    _indexes: dict[str, dict[Hashable, dict[tuple[str, ObjectRef], Any]]] = field(
        default_factory=dict
    )
    _streams: dict[StreamKey, _Stream] = field(default_factory=dict)

    def watches(self, resource: str) -> bool:
        return resource in self.indexers

    def values(self, index: str, key: Hashable) -> list[Any]:
        return list(self._indexes.get(index, {}).get(key, {}).values())

    def stream_started(self, resource: str, namespace: str | None) -> None:
        self._streams[(resource, namespace)] = _Stream()

    def stream_ended(self, resource: str, namespace: str | None) -> None:
        self._streams.pop((resource, namespace), None)

    def event(
        self,
        resource: str,
        namespace: str | None,
        event_type: str | None,
        body: Mapping[str, Any],
    ) -> Change:
        """One watch event. `event_type` None is an object of a listing, as kopf marks them."""
        metadata = body.get("metadata") or {}
        ref: ObjectRef = (metadata.get("namespace"), metadata.get("name", ""))
        if event_type is None:
            stream = self._streams.setdefault((resource, namespace), _Stream())
            if stream.listing is None:
                stream.listing = set()
            stream.listing.add(ref)
        deleted = event_type == "DELETED"
        after = () if deleted else tuple(self.indexers[resource](body))
        return self._replace(resource, ref, after, deleted)

    def listed(self, resource: str, namespace: str | None) -> list[Change]:
        """A stream's listing is over: drop what it no longer holds, and say so."""
        stream = self._streams.setdefault((resource, namespace), _Stream())
        seen = stream.listing or set()
        stream.listing = None
        stream.listed = True
        gone = [
            ref
            for ref in self._entries.get(resource, {})
            if ref not in seen and (namespace is None or ref[0] == namespace)
        ]
        changes = [self._replace(resource, ref, (), True) for ref in gone]
        if not self.ready.is_set() and self._all_listed():
            self.ready.set()
        return changes

    def waiting_for(self) -> list[str]:
        """What keeps the cache from being ready, in words: kinds not watched yet, and streams
        whose listing is not over."""
        started = {resource for resource, _ in self._streams}
        missing = [
            f"{resource}: no watch yet" for resource in self.indexers if resource not in started
        ]
        listing = [
            f"{resource} in {namespace or 'every namespace'}: listing"
            for (resource, namespace), stream in self._streams.items()
            if not stream.listed
        ]
        return missing + listing

    def size(self) -> int:
        """Objects held, over every resource."""
        return sum(len(objects) for objects in self._entries.values())

    def _all_listed(self) -> bool:
        started = {resource for resource, _ in self._streams}
        return started >= set(self.indexers) and all(
            stream.listed for stream in self._streams.values()
        )

    def _replace(
        self, resource: str, ref: ObjectRef, after: tuple[Entry, ...], deleted: bool
    ) -> Change:
        objects = self._entries.setdefault(resource, {})
        before = objects.pop(ref, ())
        owner = (resource, ref)
        for index, key, _ in before:
            values = self._indexes[index][key]
            values.pop(owner, None)
            if not values:
                del self._indexes[index][key]
        for index, key, value in after:
            self._indexes.setdefault(index, {}).setdefault(key, {})[owner] = value
        if not deleted:
            # Kept even without entries, so that a listing without it can say it is gone.
            objects[ref] = after
        return Change(resource, ref, deleted, before, after)
