#!/usr/bin/env bash
# The README's main command: set up the environment if needed, then run the demo (tools/demo.py,
# as the module tools.demo) on its small built-in default. Extra arguments go to the demo (see
# python -m tools.demo --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m tools.demo "$@"
