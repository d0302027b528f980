"""Resource files packed into ConfigMaps, one or more per folder.

A ConfigMap key may hold only letters, digits, `-`, `_` and `.`, so a file whose name has
anything else (a space, or the `/` of a folder) is stored under a mapped key and mounted back
under its real path through the projected volume's items. A ConfigMap holds at most 1 MiB, so
a folder larger than that is split over several ConfigMaps; a single file larger than that
cannot be mounted from a ConfigMap at all and is refused.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator_operator.render.names import child_name, folder_suffix, short_hash, split_suffix

# What the files of one ConfigMap may weigh: the object limit is 1 MiB, and its metadata
# (labels, owner reference, managed fields) needs a few kilobytes of it.
CONFIG_MAP_BUDGET = 1_000_000

_VALID_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_KEY = 253


@dataclass(frozen=True)
class PackedConfigMap:
    name: str
    folder: str
    data: dict[str, str]
    # key -> path of the file relative to the resources folder
    paths: dict[str, str]


@dataclass(frozen=True)
class FileTooLarge:
    path: str
    size: int
    # Where the file's content comes from, when that is not plain from its path.
    source: str | None = None

    @property
    def message(self) -> str:
        source = f" ({self.source})" if self.source else ""
        return (
            f"file {self.path!r}{source} holds {self.size} bytes; a ConfigMap holds at most"
            f" {CONFIG_MAP_BUDGET} bytes of files. Keep it in the image (profile gitops) or"
            " make it smaller"
        )


def data_size(data: Mapping[str, str]) -> int:
    """What the API server counts against a ConfigMap's limit: the bytes of keys and values."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in data.items())


@dataclass
class _Bin:
    data: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    size: int = 0


def config_map_key(path: str) -> str:
    """The key of a file in its folder's ConfigMap: the file's name when that is a valid key."""
    name = posixpath.basename(path)
    if _VALID_KEY.match(name) and len(name) <= _MAX_KEY:
        return name
    readable = re.sub(r"[^-._a-zA-Z0-9]+", "_", name)[: _MAX_KEY - 9].strip("._") or "file"
    return f"{readable}.{short_hash(path)}"


def pack_files(
    workflow_name: str, files: Mapping[str, str]
) -> list[PackedConfigMap] | FileTooLarge:
    """Files grouped by folder into ConfigMaps named `<workflow>-files-<folder>[-N]`."""
    by_folder: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        by_folder.setdefault(posixpath.dirname(path), {})[path] = files[path]

    packed: list[PackedConfigMap] = []
    for folder, folder_files in by_folder.items():
        bins = _fill_bins(folder_files)
        if isinstance(bins, FileTooLarge):
            return bins
        for index, bin_ in enumerate(bins, start=1):
            suffixes = ["files", *folder_suffix(folder)]
            if index > 1:
                suffixes.extend(split_suffix(folder, index))
            packed.append(
                PackedConfigMap(
                    name=child_name(workflow_name, *suffixes),
                    folder=folder,
                    data=bin_.data,
                    paths=bin_.paths,
                )
            )
    return packed


def _fill_bins(files: Mapping[str, str]) -> list[_Bin] | FileTooLarge:
    # Paths are taken in sorted order and a new ConfigMap is opened when one is full, so the
    # split is stable: adding a file to the end of a folder does not move the others.
    bins: list[_Bin] = [_Bin()]
    for path, content in files.items():
        key = config_map_key(path)
        size = len(content.encode()) + len(key)
        if size > CONFIG_MAP_BUDGET:
            return FileTooLarge(path, len(content.encode()))
        if bins[-1].size + size > CONFIG_MAP_BUDGET:
            bins.append(_Bin())
        bins[-1].data[key] = content
        bins[-1].paths[key] = path
        bins[-1].size += size
    return bins
