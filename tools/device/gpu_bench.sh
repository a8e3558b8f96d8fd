#!/usr/bin/env bash
# One-shot GPU benchmark for a short GPU window (about 6-8 minutes, a second try still fits a
# 15-minute window). On a bare machine with torch + CUDA and no network:
#   1. unpacks the carried wheels (.whl/, made by tools/device/prepare_wheels.sh) into a temporary
#      site folder (about a second) and puts it and this checkout on PYTHONPATH;
#   2. prints the environment (GPU, driver, torch, CUDA, cuDNN, SDPA backends enabled);
#   3. runs tools/analysis/benchmark.py: mmpretrain's stock MAE and every method's ViT-B/16
#      training step (224 px, bf16 autocast, one process, batch 256), median step time, img/s,
#      peak CUDA memory, counted train FLOPs, MFU against the GPU's dense bf16 peak, host syncs
#      per step and the SDPA kernel that ran; each SDPA backend tried alone; PTR fine-tune and
#      inference throughput at drop 0 .. 0.4;
#   4. if time is left, the same for MAE and PCAE under torch.compile;
#   5. writes OUTDIR/summary.md (README-ready tables) next to the raw JSON / Markdown and a log.
#
# Usage:
#   bash tools/device/gpu_bench.sh OUTDIR [--device cuda|cpu] [--tiny] [--batch-size N]
#                                         [--no-compile] [--budget SECONDS]
#   --tiny            tiny configs, batch 2, one step each: the CPU dry run CI runs
#                     (bash tools/device/gpu_bench.sh /tmp/out --device cpu --tiny)
#   --budget S        wall-clock seconds for everything (default 480); the compile phase only
#                     starts with enough left, and each phase is cut at the budget
# Environment: PYTHON (default python3), PCAE_MM_WHEELS (default <repo>/.whl).
# Files in OUTDIR (at most 7: a device call returns 8): gpu_bench.log, benchmark.{json,md},
# compile.{json,md}, summary.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
[[ $# -ge 1 && "$1" != -* ]] || usage
OUT="$1"; shift
DEVICE=cuda TINY=0 BS=256 COMPILE=1 BUDGET=480
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --batch-size) BS="$2"; shift 2 ;;
    --no-compile) COMPILE=0; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "gpu_bench: unknown argument $1" >&2; usage ;;
  esac
done
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee "$OUT/gpu_bench.log") 2>&1
TEE_PID=$!
# shellcheck source=tools/device/env.sh
source "$ROOT/tools/device/env.sh"
cleanup() {  # the temporary site folder; then let tee write the end of the log
  kit_cleanup
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true
}
trap cleanup EXIT
START=$SECONDS
log() { printf '[gpu_bench %4ds] %s\n' "$((SECONDS - START))" "$*"; }
left() { local t=$((BUDGET - (SECONDS - START))); echo $((t > 1 ? t : 1)); }

# 1. packages: the carried wheels, else whatever this Python already has (a dev venv)
kit_packages

# 2. environment (one interpreter start: it also checks that the packages import)
log "environment"
env_rc=0
kit_env "$DEVICE" || env_rc=$?
[[ $env_rc == 0 ]] || exit 1

# 3. the benchmark (the training table is on disk before PTR starts)
BENCH=("$PY" "$ROOT/tools/analysis/benchmark.py" --device "$DEVICE" --amp bf16 --out-dir "$OUT")
if [[ "$TINY" == 1 ]]; then
  TINY_MAE="$ROOT/configs/pr_mim/mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
  CONFIGS=(
    "$ROOT/configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
    "$ROOT/configs/pr_mim/pr-mim_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
    "$ROOT/configs/sdae/sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
    "$ROOT/configs/mr_mae/mr-mae_vit-tiny-p16_1xb8-coslr-2e_tiny-in1k.py"
  )
  BS=2
  ARGS=("${CONFIGS[@]}" --baseline "$TINY_MAE" --batch-size "$BS" --warmup 0 --steps 1
        --ptr-base "$ROOT/tools/device/tiny_finetune.py" --ptr-drop-ratios 0 0.4
        --ptr-locations 0 1 --ptr-batch-size "$BS" --ptr-train)
  COMPILE=0
else
  # mmpretrain's MAE (baseline) + the ViT-B/16 configs of PCAE, PR-MIM, SdAE, MR-MAE; PTR drop
  # 0 .. 0.4 (configs/pcae/benchmarks)
  ARGS=(--batch-size "$BS" --warmup 3 --steps 10 --ptr-batch-size "$BS" --ptr-train)
fi
log "benchmark: ${ARGS[*]} (budget $(left) s)"
rc=0
timeout --signal=TERM --kill-after=10 "$(left)" "${BENCH[@]}" "${ARGS[@]}" --stem benchmark ||
  rc=$?
[[ $rc == 0 ]] || log "benchmark exited with $rc (124: cut at the time budget)"

# 4. torch.compile on vs off (MAE baseline + PCAE), if enough time is left
if [[ "$COMPILE" == 1 && $rc == 0 ]]; then
  if (( $(left) >= 150 )); then
    log "torch.compile: MAE + PCAE (budget $(left) s)"
    timeout --signal=TERM --kill-after=10 "$(left)" "${BENCH[@]}" \
      "$ROOT/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py" --compile --no-ptr \
      --no-flops --no-census --no-sdpa-probe --batch-size "$BS" --warmup 3 --steps 10 \
      --stem compile || log "torch.compile phase exited with $? (124: cut at the time budget)"
  else
    log "torch.compile phase skipped: $(left) s left"
  fi
fi

# 5. README-ready summary
"$PY" "$ROOT/tools/device/summarize.py" "$OUT" || log "summary failed"
log "done in $((SECONDS - START)) s; files in $OUT:"
ls -l "$OUT"
exit "$rc"
