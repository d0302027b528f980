"""Finding, and when needed building, the control-plane binaries.

No package registry we can reach ships kube-apiserver, so the binaries are built with `go build`
from the Go module proxy (modules under `hack/controlplane/`) or `go install module@version`,
and kept in a versioned cache folder. The envtest conventions (`KUBEBUILDER_ASSETS`,
`TEST_ASSET_<NAME>`) are honoured, so a folder of ready binaries can be used instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.17"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.21.4"

ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
KWOK = "kwok"
HELM = "helm"

CACHE_ENV = "ORCHESTRATOR_OPERATOR_CACHE"
ASSETS_ENV = "KUBEBUILDER_ASSETS"

Reporter = Callable[[str], None]


class BinaryError(RuntimeError):
    """A binary could not be found or built."""


@dataclass(frozen=True)
class Bundle:
    """Binaries that one Go command builds together, cached under one versioned folder."""

    key: str
    version: str
    binaries: tuple[str, ...]
    packages: tuple[str, ...]
    # A folder under hack/controlplane holding a wrapper module, or None for `go install`.
    module_dir: str | None
    ldflags: str

    @property
    def folder(self) -> str:
        return f"{self.key}-{self.version}"


def _kubernetes_ldflags(version: str) -> str:
    # Without these stamps the servers report v0.0.0-master, which breaks version checks in
    # clients (Helm's kubeVersion constraints among them).
    major, minor = version.removeprefix("v").split(".")[:2]
    stamps = [
        f"-X k8s.io/component-base/version.gitVersion={version}",
        f"-X k8s.io/component-base/version.gitMajor={major}",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion={version}",
    ]
    return " ".join(["-s -w", *stamps])


BUNDLES: tuple[Bundle, ...] = (
    Bundle(
        key="etcd",
        version=ETCD_VERSION,
        binaries=(ETCD,),
        packages=(".",),
        module_dir="etcd",
        ldflags="-s -w",
    ),
    Bundle(
        key="k8s",
        version=KUBERNETES_VERSION,
        binaries=(KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER),
        packages=tuple(
            f"k8s.io/kubernetes/cmd/{name}"
            for name in (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)
        ),
        module_dir="kubernetes",
        ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
    ),
    Bundle(
        key="kwok",
        version=KWOK_VERSION,
        binaries=(KWOK,),
        packages=(f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}",),
        module_dir=None,
        ldflags="-s -w",
    ),
    Bundle(
        key="helm",
        version=HELM_VERSION,
        binaries=(HELM,),
        packages=(f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",),
        module_dir=None,
        ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    ),
)

ALL_BINARIES: tuple[str, ...] = tuple(name for bundle in BUNDLES for name in bundle.binaries)
CONTROL_PLANE_BINARIES: tuple[str, ...] = (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    KWOK,
)


def bundle_of(name: str) -> Bundle:
    for bundle in BUNDLES:
        if name in bundle.binaries:
            return bundle
    raise BinaryError(f"unknown binary {name!r}; known: {', '.join(ALL_BINARIES)}")


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "orchestrator-operator"


def cached_path(name: str) -> Path:
    return cache_root() / bundle_of(name).folder / "bin" / name


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(name: str) -> Path | None:
    """Where `name` already is, in envtest's order of precedence, then our cache."""
    explicit = os.environ.get("TEST_ASSET_" + name.upper().replace("-", "_"))
    if explicit and _is_executable(Path(explicit)):
        return Path(explicit)

    assets = os.environ.get(ASSETS_ENV)
    if assets and _is_executable(Path(assets) / name):
        return Path(assets) / name

    cached = cached_path(name)
    return cached if _is_executable(cached) else None


def source_root() -> Path:
    """The checkout holding hack/controlplane (the package is installed editable from it)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "hack" / "controlplane" / "kubernetes" / "go.mod").is_file():
            return parent
    raise BinaryError(
        "building the control plane needs the source checkout (hack/controlplane); "
        f"point {ASSETS_ENV} at a folder of ready binaries instead"
    )


def _go_command() -> str:
    found = shutil.which("go")
    if found:
        return found
    if _is_executable(Path("/usr/local/go/bin/go")):
        return "/usr/local/go/bin/go"
    raise BinaryError("the Go toolchain (go) is needed to build the control plane binaries")


def _go_environment(gobin: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    # A module asking for a newer Go must fail loudly here instead of fetching a toolchain.
    env["GOTOOLCHAIN"] = "local"
    # `go install module@version` refuses -mod; the wrapper modules carry a complete go.sum.
    flags = [flag for flag in env.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    env["GOFLAGS"] = " ".join([*flags, "-buildvcs=false"])
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def _run_go(argv: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        completed = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=False
        )
    if completed.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise BinaryError(
            f"{' '.join(argv[:2])} failed with exit code {completed.returncode}:\n"
            + "\n".join(tail)
        )


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    # Two test sessions starting at once must not both spend minutes building the same thing.
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_bundle(bundle: Bundle, report: Reporter = print) -> float:
    """Build every binary of `bundle` into the cache; returns the seconds it took.

    Binaries land in a scratch folder beside the cache folder and are renamed into place one by
    one, so an interrupted build never leaves a partial binary where it would be found.
    """
    target = cache_root() / bundle.folder / "bin"
    target.mkdir(parents=True, exist_ok=True)
    go = _go_command()
    started = time.monotonic()
    report(f"building {', '.join(bundle.binaries)} {bundle.version} (go build, may take minutes)")

    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as scratch_name:
        scratch = Path(scratch_name)
        log = scratch / "build.log"
        ldflags = ["-trimpath", "-ldflags", bundle.ldflags]
        if bundle.module_dir is None:
            env = _go_environment(gobin=scratch)
            _run_go([go, "install", *ldflags, *bundle.packages], scratch, env, log)
        else:
            # A wrapper module's main package is named after its folder (hack/controlplane/etcd
            # builds `etcd`), so `-o folder/` gives every binary its final name.
            module = source_root() / "hack" / "controlplane" / bundle.module_dir
            env = _go_environment(gobin=None)
            argv = [go, "build", *ldflags, "-o", str(scratch) + os.sep, *bundle.packages]
            _run_go(argv, module, env, log)

        for name in bundle.binaries:
            produced = scratch / name
            if not _is_executable(produced):
                raise BinaryError(f"go reported success but did not produce {name}")
            os.replace(produced, target / name)

    elapsed = time.monotonic() - started
    report(f"built {', '.join(bundle.binaries)} {bundle.version} in {elapsed:.0f}s")
    return elapsed


@dataclass(frozen=True)
class Binaries:
    """Paths of the binaries asked for, by name."""

    paths: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        try:
            return self.paths[name]
        except KeyError:
            raise BinaryError(f"{name} was not asked for when the binaries were located") from None

    def get(self, name: str) -> Path | None:
        return self.paths.get(name)


def ensure_binaries(
    names: Iterable[str] = CONTROL_PLANE_BINARIES,
    *,
    build: bool = True,
    report: Reporter = print,
) -> Binaries:
    """Locate each binary, building whatever is missing into the cache when `build` is true."""
    wanted = list(dict.fromkeys(names))
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in wanted:
        found = find_binary(name)
        if found is None:
            missing.append(name)
        else:
            paths[name] = found

    if missing and not build:
        raise BinaryError(
            f"missing {', '.join(missing)}: run `python -m orchestrator_operator.localcluster "
            f"build` or set {ASSETS_ENV}"
        )

    if missing:
        with _build_lock(cache_root()):
            for bundle in _bundles_for(missing):
                # Another process may have built it while this one waited for the lock.
                if not all(_is_executable(cached_path(name)) for name in bundle.binaries):
                    build_bundle(bundle, report)
            for name in missing:
                paths[name] = cached_path(name)

    return Binaries(paths={name: paths[name] for name in wanted})


def _bundles_for(names: Iterable[str]) -> list[Bundle]:
    return list(dict.fromkeys(bundle_of(name) for name in names))
