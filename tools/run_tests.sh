#!/usr/bin/env bash
# The README's test command: set up the environment if needed (tools/setup_env.sh, cached), then
# run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
