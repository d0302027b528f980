#!/bin/sh
# Build the operator's wheel and install it, with exactly the pinned runtime dependencies, into
# a new virtual environment. The Containerfile's build stage runs this script, and so does
# tests/unit/test_container.py (offline, from a local folder of wheels), so the install step
# of the image is tested where the image itself cannot be built.
#
# usage: hack/install-runtime.sh SOURCE_DIR VENV_DIR   (PYTHON picks the interpreter)
set -eu

source_dir=$1
venv=$2
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The build backend, pinned, in a throwaway environment: nothing of it reaches the runtime.
"$python" -m venv "$work/build"
"$work/build/bin/pip" install --quiet --only-binary=:all: -r "$source_dir/requirements-build.lock"
"$work/build/bin/pip" wheel --quiet --no-build-isolation --no-deps \
    --wheel-dir "$work/dist" "$source_dir"

# The runtime: binary wheels only, so that no compiler is needed, and exactly the pins: with
# --no-deps nothing outside requirements.lock can slip in, and `pip check` fails when the lock
# misses a dependency.
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --only-binary=:all: --no-deps -r "$source_dir/requirements.lock"
"$venv/bin/pip" install --quiet --no-deps "$work"/dist/orchestrator_operator-*.whl
"$venv/bin/pip" check

# pip and setuptools are of no use to the operator at run time.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools
"$venv/bin/orchestrator-operator" --version
