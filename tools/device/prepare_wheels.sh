#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels the GPU machine lacks (tools/device/
# wheels.txt: mmengine, mmpretrain, mmcv-lite and their small pure-Python dependencies) into a
# git-ignored folder, default .whl/ at the repository root, then check them (one wheel per
# listed package, CPython 3.12 / manylinux x86_64, 64 MiB at most; about 3 MB).
#
#   bash tools/device/prepare_wheels.sh [WHEEL_DIR]
#
# Then on the GPU machine, with WHEEL_DIR carried along:  bash tools/device/gpu_bench.sh OUTDIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${1:-$ROOT/.whl}"
PY="${PYTHON:-python3}"
LIST="$ROOT/tools/device/wheels.txt"
mapfile -t SPECS < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
mkdir -p "$DEST"
echo "[prepare_wheels] ${#SPECS[@]} wheels -> $DEST"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$DEST" "${SPECS[@]}" 2>&1 |
  grep -v "^WARNING: Location" || true
"$PY" "$ROOT/tools/device/install_wheels.py" "$DEST" --prune --check
du -sh "$DEST"
