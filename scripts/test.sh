#!/usr/bin/env bash
# Installs what is missing (Debian packages, venv, Python packages), then runs the whole test suite.
# Extra arguments go to pytest (e.g. -m "not browser" or -k tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
# pytest exits 5 when it collected no test: that is a failure here, as is any other non-zero code.
.venv/bin/python -m pytest -q -rs --durations=15 "$@"
