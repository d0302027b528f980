#!/usr/bin/env bash
# Prepares a checkout for development and tests: the virtualenv with the package installed
# editable (test and dev tools included), then the control-plane binaries, built from the Go
# module proxy on first use and cached under ~/.cache/orchestrator-operator afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step_started=$SECONDS
took() { echo "== $1 took $((SECONDS - step_started))s"; step_started=$SECONDS; }

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Reinstalling costs seconds even when nothing changed; pyproject.toml and requirements.lock
# are what would change it. The lock constrains the runtime dependencies to the versions the
# image ships (docs/container.md), so that the tests run against those.
stamp=.venv/.installed-pyproject.sha256
wanted=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet -e '.[dev]' --constraint requirements.lock
    echo "$wanted" > "$stamp"
fi
took "python environment (.venv)"

.venv/bin/python -m orchestrator_operator.localcluster build --all
took "control-plane binaries"
