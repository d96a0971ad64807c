#!/usr/bin/env bash
# Installs what is missing, then runs Convene in one process on the embedded default.
# Extra arguments go to `convene serve` (e.g. --port 9000 --data-dir /var/lib/convene).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/convene serve "$@"
