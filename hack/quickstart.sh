#!/usr/bin/env bash
# The quick start in one command: prepare the checkout (the first run builds the control plane
# from the Go module proxy, about ten minutes on two cores), then run hack/quickstart.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/setup.sh >&2
exec .venv/bin/python hack/quickstart.py "$@"
