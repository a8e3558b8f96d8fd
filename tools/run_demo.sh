#!/usr/bin/env bash
# The README's main command: set up the environment if needed, then run the demo (tools/demo.py,
# as the module tools.demo) on its small built-in default. Extra arguments go to the demo (see
# python -m tools.demo --help). On a new machine the set-up returns once everything but mmcv's
# compiled ops is installed and compiles those in the background: the demo's stages run
# meanwhile, and its Mask R-CNN / UperNet stages wait for them ("waiting for mmcv ops: compiled
# N of 77"). PCAE_MM_VENV: the environment to use (default .venv), as for tools/setup_env.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCAE_MM_VENV:-$ROOT/.venv}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m tools.demo "$@"
