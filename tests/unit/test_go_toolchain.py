"""hack/go_toolchain.py gets a fresh machine the Go it needs: the one on PATH when new enough,
otherwise the toolchain module from the configured Go module proxy, checked and unpacked once.

Offline: the proxy here is a file:// folder laid out as a module proxy lays out its files, and
the toolchain in it is a stand-in whose `go` is a shell script.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "go_toolchain.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("go_toolchain", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


toolchain = load()


def fake_go(version: str) -> str:
    return f'#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go{version}\n'


def write_toolchain_zip(path: Path, target: str, go_script: str) -> None:
    prefix = f"golang.org/toolchain@{toolchain.module_version(target)}/"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(prefix + "bin/go", go_script)
        archive.writestr(prefix + "pkg/tool/linux_amd64/compile", "#!/bin/sh\n")
        archive.writestr(prefix + "src/fmt/print.go", "package fmt\n")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("go1.26.8", (1, 26, 8)),
        ("go version go1.27.0 linux/amd64", (1, 27, 0)),
        ("go1.26rc1", (1, 26, 0)),
        ("devel", None),
    ],
)
def test_versions_are_read_as_go_reports_them(text: str, version: tuple[int, ...] | None) -> None:
    assert toolchain.parse_version(text) == version


@pytest.mark.parametrize(
    ("goproxy", "url"),
    [
        (None, "https://proxy.golang.org"),
        ("https://proxy.golang.org,direct", "https://proxy.golang.org"),
        ("https://goproxy.corp.example/|https://proxy.golang.org", "https://goproxy.corp.example"),
        ("direct,https://mirror.example", "https://mirror.example"),
    ],
)
def test_the_first_proxy_of_goproxy_is_used(goproxy: str | None, url: str) -> None:
    assert toolchain.proxy_url(goproxy) == url


@pytest.mark.parametrize("goproxy", ["direct", "off", "off,https://proxy.golang.org"])
def test_no_proxy_to_fetch_from_is_said_so(goproxy: str) -> None:
    with pytest.raises(toolchain.ToolchainError, match="names no proxy"):
        toolchain.proxy_url(goproxy)


def test_the_module_sum_is_gos_h1_dirhash(tmp_path: Path) -> None:
    # What golang.org/x/mod/sumdb/dirhash.HashZip gives: the SHA-256 of the lines
    # "<sha256 of file>  <name>\n", sorted by name, in base64 (worked out with sha256sum).
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("example.com/m@v1.0.0/go.mod", "module example.com/m\n")
        opened.writestr("example.com/m@v1.0.0/m.go", "package m\n")

    assert toolchain.module_sum(archive) == "h1:fCHMqo5ggHEQvwcrsN81zr5orRk5lClR36KRHpfUjKg="


def _proxy_serving_go(tmp_path: Path, target: str) -> tuple[Path, Path]:
    """A module proxy folder holding a toolchain zip for `target`, and that zip."""
    proxy = tmp_path / "proxy"
    archive = proxy / "golang.org" / "toolchain" / "@v" / f"{toolchain.module_version(target)}.zip"
    write_toolchain_zip(archive, target, fake_go(toolchain.GO_VERSION))
    return proxy, archive


def test_the_toolchain_is_fetched_from_the_proxy_checked_and_unpacked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = "linux-amd64"
    proxy, archive = _proxy_serving_go(tmp_path, target)
    monkeypatch.setitem(toolchain.SUMS, target, toolchain.module_sum(archive))
    folder = tmp_path / "cache" / f"go-{toolchain.GO_VERSION}"

    toolchain.fetch(f"file://{proxy}", target, folder)

    go = folder / "bin" / "go"
    assert go.stat().st_mode & stat.S_IXUSR
    assert (folder / "pkg" / "tool" / "linux_amd64" / "compile").stat().st_mode & stat.S_IXUSR
    assert not (folder / "src" / "fmt" / "print.go").stat().st_mode & stat.S_IXUSR
    assert toolchain.usable_go([str(go)]) == folder / "bin"
    assert [path.name for path in folder.parent.iterdir()] == [folder.name]


def test_a_zip_that_does_not_match_the_pinned_sum_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = "linux-amd64"
    proxy, _ = _proxy_serving_go(tmp_path, target)
    folder = tmp_path / "cache" / "go"

    with pytest.raises(toolchain.ToolchainError, match="expected h1:"):
        toolchain.fetch(f"file://{proxy}", target, folder)
    assert not folder.exists()
    assert list(folder.parent.iterdir()) == []


def test_a_go_on_path_that_is_too_old_is_passed_over(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "go", tmp_path / "new" / "go"
    for path, version in ((old, "1.24.2"), (new, "1.26.0")):
        path.parent.mkdir()
        path.write_text(fake_go(version))
        path.chmod(0o755)

    assert toolchain.usable_go([str(old)]) is None
    assert toolchain.usable_go([str(old), str(new)]) == new.parent


def test_the_script_prints_the_folder_of_a_go_on_path(tmp_path: Path) -> None:
    go = tmp_path / "bin" / "go"
    go.parent.mkdir()
    go.write_text(fake_go("1.26.8"))
    go.chmod(0o755)
    environment = {**os.environ, "PATH": f"{go.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}

    completed = subprocess.run(
        [sys.executable, str(SCRIPT)], env=environment, capture_output=True, text=True, check=True
    )

    assert completed.stdout.strip() == str(go.parent)
