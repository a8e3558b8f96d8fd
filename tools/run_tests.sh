#!/usr/bin/env bash
# The README's test command: set up the environment if needed (tools/setup_env.sh, cached), then
# run the test suite in two halves (which test is in which: tests/ops_split.py):
#   1/2  the tests that need no compiled mmcv ops, with the ops hidden (as with mmcv-lite), so
#        that they run while a first set-up still compiles the ops in the background, and a test
#        that needs them without saying so fails here on every machine, not only on a new one;
#   2/2  the tests that need them (mmdet / mmseg models); pytest first waits for the background
#        build, printing "waiting for mmcv ops: compiled N of 77".
# Extra arguments go to both pytest calls. The exit status is the first failing half's; a half
# that selects no test counts as passed, unless neither selects any (pytest's 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCAE_MM_VENV:-$ROOT/.venv}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
# The optional NVIDIA DALI backend (DALIDataPreprocessor; training never needs it) is tested
# too: installed into the env once (a 0.4 GB download, 1 GB on disk). Once it imports, its tests
# must run (PCAE_MM_REQUIRE_DALI=1); where it cannot be installed they skip, saying so.
DALI_SPEC="${PCAE_MM_DALI:-nvidia-dali-cuda120==2.4.0}"
has_dali() { "$VENV/bin/python" -c 'import nvidia.dali' >/dev/null 2>&1; }
if ! has_dali; then
  echo "[run_tests] installing NVIDIA DALI for its tests ($DALI_SPEC; optional for training)" >&2
  # (pip's note that mmcv-lite is not "mmcv" while the ops compile is expected: dropped)
  flock "$VENV.lock" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "$DALI_SPEC" 2>&1 | grep -v -e "pip's dependency resolver" -e 'requires mmcv<' >&2 || true
fi
if has_dali; then
  export PCAE_MM_REQUIRE_DALI=1
else
  echo "[run_tests] WARNING: NVIDIA DALI could not be installed: its tests skip" >&2
fi
trap 'echo "[run_tests] interrupted" >&2; exit 130' INT TERM
rc1=0
rc2=0
echo "[run_tests] 1/2: the tests that need no compiled mmcv ops" >&2
# (hidden from the interpreter's start: tests/no_ops/sitecustomize.py, for every Python started)
PCAE_MM_HIDE_MMCV_OPS=1 PYTHONPATH="$ROOT/tests/no_ops${PYTHONPATH:+:$PYTHONPATH}" \
  "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --mmcv-ops=without "$@" || rc1=$?
echo "[run_tests] 2/2: the tests that need mmcv's compiled ops" >&2
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --mmcv-ops=only "$@" || rc2=$?
echo "[run_tests] status: $rc1 without compiled ops, $rc2 with them (5: no test selected)" >&2
if (( rc1 == 5 && rc2 == 5 )); then exit 5; fi
(( rc1 == 5 )) && rc1=0
(( rc2 == 5 )) && rc2=0
if (( rc1 != 0 )); then exit "$rc1"; fi
exit "$rc2"
