"""The Containerfile builds what the docs and the chart expect, and its install step works.

No container can be built here, so the Containerfile is read as text, and the one step that
does the real work (hack/install-runtime.sh) is run as the build stage runs it: on a copy of
exactly the files the stage copies, into a fresh virtual environment, offline from a folder of
wheels.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from orchestrator_operator.localcluster.binaries import cache_root

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
CHART = ROOT / "helm" / "orchestrator-operator"
COMPILERS = {"gcc", "g++", "cc", "clang", "make", "build-essential", "cargo", "rustc"}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]


def parse_containerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            words = argument.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages and keyword == "ARG":
            key, _, default = argument.partition("=")
            arguments[key] = default
        else:
            stages[-1].instructions.append((keyword, argument))
    return arguments, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_containerfile(CONTAINERFILE.read_text())[1]


def exec_form(argument: str) -> list[str]:
    value = json.loads(argument)
    assert isinstance(value, list), f"not in exec form: {argument}"
    return [str(item) for item in value]


def test_two_stages_on_one_slim_python_311_pinned_by_version(stages: list[Stage]) -> None:
    assert len(stages) == 2
    for stage in stages:
        assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", stage.base)
    assert stages[0].base == stages[1].base, "the venv is built for the final stage's Python"


def test_the_final_stage_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    user, _, group = stages[-1].last("USER").partition(":")
    assert user.isdigit()
    assert group.isdigit()
    assert int(user) != 0
    assert int(group) != 0


def test_no_compiler_is_installed_in_any_stage(stages: list[Stage]) -> None:
    for stage in stages:
        for command in stage.all("RUN"):
            for install in re.findall(r"apt-get install ([^&;|]*)", command):
                packages = {word for word in install.split() if not word.startswith("-")}
                assert not packages & COMPILERS, command
                assert not any(p.endswith("-dev") for p in packages), command
    build_step = " ".join(stages[0].all("RUN"))
    assert "hack/install-runtime.sh" in build_step


def test_the_install_script_takes_only_binary_wheels_and_exactly_the_lock() -> None:
    script = (ROOT / "hack" / "install-runtime.sh").read_text()
    runtime_install = next(
        line
        for line in script.splitlines()
        if line.startswith('"$venv/bin/pip" install') and "requirements.lock" in line
    )
    assert "--only-binary=:all:" in runtime_install
    assert "--no-deps" in runtime_install
    assert '"$venv/bin/pip" check' in script


def test_entry_point_and_user_are_what_the_docs_say(stages: list[Stage]) -> None:
    final = stages[-1]
    command = exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))
    docs = (ROOT / "docs" / "container.md").read_text()

    assert f"`{shlex.join(command)}`" in docs
    assert f"`{final.last('USER')}`" in docs
    assert command[:2] == ["orchestrator-operator", "run"]
    assert "--log-format=json" in command


def test_the_chart_starts_the_image_as_the_image_starts_itself(stages: list[Stage]) -> None:
    final = stages[-1]
    image_command = exec_form(final.last("CMD"))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rendered = (ROOT / "manifests" / "install.yaml").read_text()
    deployment = next(
        doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]

    assert container["args"] == image_command
    user, _, group = final.last("USER").partition(":")
    assert values["podSecurityContext"]["runAsUser"] == int(user)
    assert values["podSecurityContext"]["runAsGroup"] == int(group)
    ports = {port.split("/")[0] for port in final.last("EXPOSE").split()}
    assert {str(port["containerPort"]) for port in container["ports"]} == ports


def test_image_chart_and_package_agree_on_the_version(stages: list[Stage]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    label = next(a for w, a in stages[-1].instructions if w == "ARG" and a.startswith("VERSION="))

    assert label == f"VERSION={project}"
    assert chart == project


def test_requirements_lock_matches_the_development_environment() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def _copied_paths(stage: Stage) -> list[str]:
    sources: list[str] = []
    for argument in stage.all("COPY"):
        words = [word for word in argument.split() if not word.startswith("--")]
        sources.extend(words[:-1])
    return sources


def _locked() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return dict(pins)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """A folder holding a wheel of every pinned package; filled from PyPI once, then reused."""
    folder = cache_root() / "wheelhouse"
    folder.mkdir(parents=True, exist_ok=True)
    present = {
        (_normalized(wheel.name.split("-")[0]), wheel.name.split("-")[1])
        for wheel in folder.glob("*.whl")
    }
    build_pins = (ROOT / "requirements-build.lock").read_text().splitlines()
    wanted = {**_locked(), **dict(line.split("==") for line in build_pins if "==" in line)}
    if not all((_normalized(n), v) in present for n, v in wanted.items()):
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                "--dest", str(folder),
                "-r", str(ROOT / "requirements.lock"),
                "-r", str(ROOT / "requirements-build.lock"),
            ],
            check=True,
        )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def installed(
    stages: list[Stage], wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The image's virtual environment, made by the build stage's own script."""
    context = tmp_path_factory.mktemp("context")
    for source in _copied_paths(stages[0]):
        origin = ROOT / source
        assert origin.exists(), f"the Containerfile copies {source}, which does not exist"
        if origin.is_dir():
            shutil.copytree(
                origin, context / source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
            )
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, context / source)
    venv = tmp_path_factory.mktemp("image") / "venv"
    environment = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHON": sys.executable,
    }
    completed = subprocess.run(
        ["sh", str(context / "hack" / "install-runtime.sh"), str(context), str(venv)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return venv


def _run(venv: Path, *args: str) -> str:
    completed = subprocess.run(
        [str(venv / "bin" / "orchestrator-operator"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(venv)},
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_the_installed_command_reports_its_version_and_help(installed: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    assert _run(installed, "--version").strip() == f"orchestrator-operator, version {version}"
    assert "run" in _run(installed, "--help")
    run_help = _run(installed, "run", "--help")
    assert "--metrics-addr" in run_help
    assert "--liveness" in run_help


def test_the_installed_package_loads_the_operator_itself(installed: Path) -> None:
    # `run` imports kopf and every handler module only once it starts; --help does not, so a
    # dependency missing from the lock would show first in a cluster.
    completed = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import kopf, orchestrator_operator.handlers as h;"
            "from orchestrator_operator.cli.run import run;"
            "print(kopf.__version__, ' '.join(sorted(h.__all__)))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(installed)},
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    version, handlers = completed.stdout.split(" ", 1)
    assert version == _locked()["kopf"]
    assert handlers.split() == [
        "caches",
        "installation",
        "operator",
        "secrets",
        "sources",
    ]


def test_the_installed_package_renders_the_example_workflow(installed: Path) -> None:
    # Rendering reads the package's templates and models: a wheel missing package data fails.
    output = _run(installed, "render", "-f", str(ROOT / "examples" / "workflow.yaml"))

    kinds = [doc["kind"] for doc in yaml.safe_load_all(output) if doc]
    assert "Deployment" in kinds
    assert "ConfigMap" in kinds


def test_the_environment_holds_exactly_the_locked_packages(installed: Path) -> None:
    listing = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, json;"
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {_normalized(name): version for name, version in json.loads(listing.stdout).items()}
    expected = {_normalized(name): version for name, version in _locked().items()}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    expected["orchestrator-operator"] = version

    assert found == expected
