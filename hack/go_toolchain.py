#!/usr/bin/env python3
"""Print the folder of a `go` new enough to build the control plane, fetching one if needed.

A `go` on PATH of version GO_MINIMUM or newer is used as it is.
Otherwise the Go toolchain is fetched from the Go module proxy, where each release is itself a
module (golang.org/toolchain@v0.0.1-go<version>.<os>-<arch>, the zip `go` fetches when a module
asks for a newer Go), checked against the checksum pinned here, and unpacked once into the
project's cache (~/.cache/orchestrator-operator/go-<version>, or $ORCHESTRATOR_OPERATOR_CACHE).
The proxy is the first one $GOPROXY names, https://proxy.golang.org by default.

Debian's golang-go is too old, and the builds run with GOTOOLCHAIN=local (a module asking for
a newer Go fails instead of fetching one), so this is what gets a fresh machine its Go.

Standard library only: it runs before the virtualenv exists. Usage, from .ci/run:
    PATH="$(python3 hack/go_toolchain.py):$PATH"
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

GO_VERSION = "1.26.8"
# The `go` directive of hack/controlplane/*/go.mod.
GO_MINIMUM = (1, 26)
DEFAULT_PROXY = "https://proxy.golang.org"
# The module sums of the toolchain zips (the h1: dirhash that go.sum holds), as the checksum
# database sum.golang.org records them.
SUMS = {
    "linux-amd64": "h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM=",
    "linux-arm64": "h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc=",
}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class ToolchainError(RuntimeError):
    pass


def parse_version(text: str) -> tuple[int, ...] | None:
    """(1, 26, 8) from `go1.26.8`, `go1.26rc1` or `go version go1.26.8 linux/amd64`."""
    found = re.search(r"go(\d+)\.(\d+)(?:\.(\d+))?", text)
    if found is None:
        return None
    return tuple(int(part) for part in found.groups(default="0"))


def usable_go(candidates: Iterable[str]) -> Path | None:
    """The folder of the first `go` among `candidates` that is new enough."""
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        environment = {**os.environ, "GOTOOLCHAIN": "local"}
        try:
            completed = subprocess.run(
                [candidate, "env", "GOVERSION"],
                capture_output=True,
                text=True,
                timeout=60,
                env=environment,
                check=False,
            )
        except OSError:
            continue
        version = parse_version(completed.stdout)
        if completed.returncode == 0 and version is not None and version[:2] >= GO_MINIMUM:
            return Path(candidate).resolve().parent
    return None


def proxy_url(goproxy: str | None) -> str:
    """The first proxy of a GOPROXY list ("," or "|" separated); `direct` serves no toolchain."""
    for entry in re.split(r"[,|]", goproxy or DEFAULT_PROXY):
        entry = entry.strip()
        if entry == "off":
            break
        if entry.startswith(("https://", "http://", "file://")):
            return entry.rstrip("/")
    raise ToolchainError(
        f"GOPROXY={goproxy!r} names no proxy to fetch the Go toolchain from; install Go"
        f" {GO_VERSION} or set GOPROXY to a module proxy"
    )


def module_version(target: str) -> str:
    return f"v0.0.1-go{GO_VERSION}.{target}"


def zip_url(proxy: str, target: str) -> str:
    return f"{proxy}/golang.org/toolchain/@v/{module_version(target)}.zip"


def module_sum(archive: Path) -> str:
    """The h1: sum of a module zip: SHA-256 over the sorted `sha256  name` lines of its files."""
    summary = hashlib.sha256()
    with zipfile.ZipFile(archive) as opened:
        for name in sorted(opened.namelist()):
            if "\n" in name:
                raise ToolchainError(f"a file name with a newline in {archive}")
            digest = hashlib.sha256()
            with opened.open(name) as member:
                for block in iter(lambda: member.read(1 << 20), b""):
                    digest.update(block)
            summary.update(f"{digest.hexdigest()}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def target_platform() -> str:
    system = platform.system().lower()
    arch = _ARCHES.get(platform.machine().lower())
    if system != "linux" or arch is None:
        raise ToolchainError(f"no Go toolchain is pinned for {system}/{platform.machine()}")
    return f"{system}-{arch}"


def cache_root() -> Path:
    configured = os.environ.get("ORCHESTRATOR_OPERATOR_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "orchestrator-operator"


def unpack(archive: Path, target: str, destination: Path) -> None:
    """The zip's files under destination, without the module@version/ prefix of their names.

    Module zips keep no file modes, so the commands (bin/, pkg/tool/) are made executable here,
    as `go` does for the toolchains it fetches.
    """
    prefix = f"golang.org/toolchain@{module_version(target)}/"
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                raise ToolchainError(f"unexpected entry {info.filename!r} in {archive}")
            relative = info.filename[len(prefix) :]
            path = destination / relative
            if ".." in Path(relative).parts:
                raise ToolchainError(f"unexpected entry {info.filename!r} in {archive}")
            path.parent.mkdir(parents=True, exist_ok=True)
            with opened.open(info) as member, path.open("wb") as out:
                shutil.copyfileobj(member, out)
            if relative.startswith(("bin/", "pkg/tool/")):
                path.chmod(0o755)


def fetch(proxy: str, target: str, folder: Path) -> None:
    """Download, check and unpack the toolchain into `folder`, which appears whole or not at all."""
    url = zip_url(proxy, target)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".go-", dir=folder.parent) as scratch_name:
        scratch = Path(scratch_name)
        archive = scratch / "toolchain.zip"
        print(f"fetching Go {GO_VERSION} from {url}", file=sys.stderr)
        try:
            # The scheme is one proxy_url admits: https, http or file (a proxy on disk).
            with (
                urllib.request.urlopen(url, timeout=600) as response,  # noqa: S310
                archive.open("wb") as out,
            ):
                shutil.copyfileobj(response, out)
        except OSError as error:
            raise ToolchainError(f"cannot fetch {url}: {error}") from None
        found = module_sum(archive)
        if found != SUMS[target]:
            raise ToolchainError(f"{url} has sum {found}, expected {SUMS[target]}")
        unpacked = scratch / "go"
        unpack(archive, target, unpacked)
        unpacked.rename(folder)


def main() -> int:
    on_path = usable_go([shutil.which("go") or ""])
    if on_path is not None:
        print(on_path)
        return 0
    try:
        target = target_platform()
        folder = cache_root() / f"go-{GO_VERSION}"
        if not (folder / "bin" / "go").is_file():
            fetch(proxy_url(os.environ.get("GOPROXY")), target, folder)
        found = usable_go([str(folder / "bin" / "go")])
        if found is None:
            raise ToolchainError(f"{folder / 'bin' / 'go'} does not run")
    except ToolchainError as error:
        print(f"go_toolchain: {error}", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
