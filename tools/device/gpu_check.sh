#!/usr/bin/env bash
# The GPU check: every CUDA-only path of pcae-mm in one time-boxed run (issue 23), for a short
# GPU window on a bare machine (Python 3.12, torch + CUDA, no network, no OpenMMLab package:
# the wheels carried in .whl/, made by tools/device/prepare_wheels.sh). Under 9 minutes.
#
#   0. packages + environment (tools/device/env.sh); in the background, on the CPU: an
#      ImageNet-layout set of generated JPEGs (4,000 x 256 px), the memory predictions
#      (tools/analysis/memory_estimate.py) of every configuration measured below, and the
#      PCAE / MAE ViT-B checkpoint size and save / load time (checkpoint_size.py);
#   1. bench     the benchmark table: mmpretrain's stock MAE vs every method, ViT-B/16, bf16
#                autocast, batch 256 (tools/analysis/benchmark.py, no PTR section);
#   2. pcae      the REAL Runner, tools/train.py on the shipped PCAE ViT-B recipe unchanged
#                except size: AmpOptimWrapper (fp16, dynamic loss scale), batch 256, 12
#                workers, 2 epochs on the JPEG set; then --resume to epoch 3;
#   3. mae       the same for our MAE ViT-B recipe (configs/pr_mim/mae_vit-base-p16_...);
#   4. fsdp      the ViT-L FSDP recipe (FlexibleRunner, bf16) through torch.distributed.run on
#                the one GPU (NCCL), batch 512 per GPU as shipped, 1 epoch;
#   5. data      the input pipeline alone (benchmark.py --data-only), when the flag exists;
#   6. compile   torch.compile on vs off for MAE and PCAE (benchmark.py --compile), if time
#                is left;
#   7. summary.md + check.json (tools/device/check_report.py): per step its status and
#      figures, the log's time vs data_time per iteration, predicted vs measured peak memory,
#      checkpoint sizes and save times, the loss scale; the logs in logs.tar.gz.
# Every step has its own time cap, is skipped when too little of the budget is left, and a
# failed or cut step never stops the others; the summary is always written.
#
# Usage:
#   bash tools/device/gpu_check.sh OUTDIR [--device cuda|cpu] [--tiny] [--budget SECONDS]
#                                         [--no-compile] [--steps bench,pcae,...]
#   --tiny       tiny configs, tiny data, CPU-sized: the CPU dry run CI runs
#                (bash tools/device/gpu_check.sh /tmp/out --device cpu --tiny); on a CPU the
#                Runner steps pass --amp, i.e. CPU fp16 autocast + a real loss scaler
#                (DeviceAmpOptimWrapper), and FSDP runs with gloo
#   --budget S   wall-clock seconds for everything (default 500)
#   --steps L    only these steps (comma-separated names from the list above)
# Environment: PYTHON (default python3), PCAE_MM_WHEELS (default <repo>/.whl).
# Files in OUTDIR (5; a device call returns 8): gpu_check.log, summary.md, check.json,
# benchmark.json, logs.tar.gz (every step's log, the Runner logs and scalars, the memory
# predictions, compile / data-only results; no checkpoints).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
usage() { sed -n '2,37p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
[[ $# -ge 1 && "$1" != -* ]] || usage
OUT="$1"; shift
DEVICE=cuda TINY=0 BUDGET=500 COMPILE=1 ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --no-compile) COMPILE=0; shift ;;
    --steps) ONLY="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; usage ;;
  esac
done
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d -t pcae_mm_check.XXXXXX)"
LOGS="$WORK/logs"
mkdir -p "$LOGS"
exec > >(tee "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
# shellcheck source=tools/device/env.sh
source "$ROOT/tools/device/env.sh"
BG_PIDS=()
cleanup() {
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  kit_cleanup
  rm -rf "$WORK"
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true
}
trap cleanup EXIT
START=$SECONDS
RESERVE=25  # seconds kept for the summary and the tarball
log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }
left() { echo $((BUDGET - RESERVE - (SECONDS - START))); }
wanted() { [[ -z "$ONLY" || ",$ONLY," == *",$1,"* ]]; }
STEPS="$WORK/steps.jsonl"
: >"$STEPS"
record() {  # record NAME STATUS RC SECONDS CAP NOTE
  printf '{"name": "%s", "status": "%s", "rc": %s, "seconds": %s, "cap": %s, "note": "%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "${6//\"/\'}" >>"$STEPS"
}

# run_step NAME CAP MIN CMD...: run CMD (log in $LOGS/NAME.log) for at most CAP seconds, cut
# at the budget; skipped when less than MIN seconds are left. Never fails the script.
run_step() {
  local name="$1" cap="$2" min="$3"; shift 3
  local avail t0 rc=0 status=ok
  avail=$(left)
  if (( avail < min )); then
    log "$name: skipped ($avail s of the budget left, needs $min)"
    record "$name" skipped null 0 "$cap" "$avail s left, needs $min"
    return 0
  fi
  (( cap < avail )) || cap=$avail
  log "$name: start (cap $cap s): $*"
  t0=$SECONDS
  timeout --signal=TERM --kill-after=15 "$cap" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  if [[ $rc == 124 || $rc == 137 ]]; then status=cut; elif [[ $rc != 0 ]]; then status=failed; fi
  log "$name: $status (rc $rc) in $((SECONDS - t0)) s"
  if [[ $status != ok ]]; then
    tail -n 25 "$LOGS/$name.log" | sed 's/^/    | /'
  fi
  record "$name" "$status" "$rc" "$((SECONDS - t0))" "$cap" ""
  return 0
}

# ------------------------------------------------------------------ sizes per mode
if [[ "$TINY" == 1 ]]; then
  PCAE_CFG="$ROOT/configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
  MAE_CFG="$ROOT/configs/pr_mim/mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py"
  # MAE + PCAE: the wiring (gpu_bench.sh's dry run covers every method's benchmark step)
  BENCH_CONFIGS=("$PCAE_CFG")
  BENCH_ARGS=(--baseline "$MAE_CFG" --batch-size 2 --warmup 0 --steps 1 --no-ptr --no-flops
              --no-census)
  FSDP_CFG="$WORK/fsdp_tiny.py"  # the tiny PCAE with the ViT-L recipe's strategy
  printf "_base_ = ['%s', '%s']\n" "$PCAE_CFG" "$ROOT/configs/_base_/strategies/fsdp_bf16.py" \
    >"$FSDP_CFG"
  NUM_IMG=16 IMG_PX=128 BS=8 FSDP_BS=8 WORKERS=1 CAP_BENCH=120 CAP_RUN=120 CAP_RESUME=90
  CAP_FSDP=120 CAP_COMPILE=0
  COMPILE=0
  AMP_FLAG=(--amp)  # on a CPU: DeviceAmpOptimWrapper, fp16 autocast + a real loss scaler
else
  PCAE_CFG="$ROOT/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py"
  MAE_CFG="$ROOT/configs/pr_mim/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py"
  BENCH_CONFIGS=()  # benchmark.py's defaults: the ViT-B/16 configs of every method
  BENCH_ARGS=(--batch-size 256 --warmup 3 --steps 8 --no-ptr)
  FSDP_CFG="$ROOT/configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py"
  NUM_IMG=4000 IMG_PX=256 BS=256 FSDP_BS=512 WORKERS=12 CAP_BENCH=150 CAP_RUN=110
  CAP_RESUME=75 CAP_FSDP=130 CAP_COMPILE=170
  AMP_FLAG=()  # the recipes' own AmpOptimWrapper
fi
[[ "$DEVICE" == cuda* ]] || AMP_FLAG=(--amp)
[[ "$COMPILE" == 1 ]] || CAP_COMPILE=0
DATA="$WORK/imagenet"
RUNS="$WORK/runs"
cat >"$WORK/meta.json" <<EOF
{"device": "$DEVICE", "tiny": $TINY, "budget": $BUDGET, "batch_size": $BS, "fsdp_batch_size": $FSDP_BS,
 "workers": $WORKERS, "images": $NUM_IMG, "image_px": $IMG_PX, "amp_flag": "${AMP_FLAG[*]:-}",
 "pcae_config": "${PCAE_CFG#$ROOT/}", "mae_config": "${MAE_CFG#$ROOT/}", "fsdp_config": "${FSDP_CFG#$ROOT/}"}
EOF

# ------------------------------------------------------------------ 0. packages, environment
kit_packages
log "environment"
env_rc=0
kit_env "$DEVICE" 2>&1 | tee "$LOGS/environment.log" || env_rc=${PIPESTATUS[0]}
if [[ $env_rc != 0 ]]; then
  record environment failed "$env_rc" 0 0 "packages or device missing"
  "$PY" "$ROOT/tools/device/check_report.py" "$WORK" "$OUT" || log "summary failed"
  exit 1
fi
NPROC="$("$PY" -c 'import os; print(os.cpu_count() or 1)')"

# in the background, on the CPU: the JPEG set, then the memory predictions
(
  OMP_NUM_THREADS=2 "$PY" "$ROOT/tools/device/make_jpegs.py" "$DATA" --num "$NUM_IMG" \
    --size "$IMG_PX" --workers "$(( NPROC > 2 ? NPROC - 2 : 1 ))" >"$LOGS/make_jpegs.log" 2>&1
  echo "rc=$?" >>"$LOGS/make_jpegs.log"
) &
DATA_PID=$!
BG_PIDS+=("$DATA_PID")
KIND=cpu; [[ "$DEVICE" == cuda* ]] && KIND=cuda
if [[ "$TINY" == 1 ]]; then
  BENCH_PRED=("$MAE_CFG" "${BENCH_CONFIGS[@]}") BENCH_BS=2
else  # benchmark.py's baseline and default configs
  BENCH_PRED=('mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'
              "$ROOT/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py"
              "$ROOT/configs/pr_mim/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py"
              "$ROOT/configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py"
              "$ROOT/configs/mr_mae/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k.py")
  BENCH_BS=256
fi
(
  cd "$ROOT"
  export OMP_NUM_THREADS=2
  MEM=("$PY" -m tools.analysis.memory_estimate --device-kind "$KIND")
  # what the benchmark measures (bf16 autocast, plain optimizer), what the Runner runs (the
  # recipes' fp16 AMP), the FSDP recipe on this one GPU
  timeout 200 "${MEM[@]}" "${BENCH_PRED[@]}" --batch "$BENCH_BS" --amp bf16 --set bench \
    --autocast-scope step --json "$LOGS/memory_bench.json"
  timeout 120 "${MEM[@]}" "$PCAE_CFG" "$MAE_CFG" --batch "$BS" --amp fp16 --set runner \
    --json "$LOGS/memory_runner.json"
  timeout 120 "${MEM[@]}" "$FSDP_CFG" --batch "$FSDP_BS" --world-size 1 --set fsdp \
    --json "$LOGS/memory_fsdp.json"
) >"$LOGS/memory_predictions.log" 2>&1 &
PRED_PID=$!
BG_PIDS+=("$PRED_PID")
# and the checkpoint of PCAE / MAE with AdamW state: predicted, written (fsync) and read back
(
  cd "$ROOT"
  OMP_NUM_THREADS=2 timeout 150 "$PY" -m tools.analysis.checkpoint_size "$PCAE_CFG" "$MAE_CFG" \
    --save-dir "$WORK/ckpt" --json "$LOGS/checkpoint.json"
) >"$LOGS/checkpoint.log" 2>&1 &
CKPT_PID=$!
BG_PIDS+=("$CKPT_PID")

# ------------------------------------------------------------------ 1. the benchmark table
if wanted bench; then
  run_step bench "$CAP_BENCH" 40 "$PY" "$ROOT/tools/analysis/benchmark.py" "${BENCH_CONFIGS[@]}" \
    "${BENCH_ARGS[@]}" --device "$DEVICE" --amp bf16 --no-sdpa-probe --out-dir "$LOGS" \
    --stem benchmark --no-progress
  [[ ! -f "$LOGS/benchmark.json" ]] || cp "$LOGS/benchmark.json" "$OUT/benchmark.json"
fi

log "waiting for the JPEG set"
wait "$DATA_PID" || true
tail -n 2 "$LOGS/make_jpegs.log"

# ------------------------------------------------------------------ 2-3. the real Runner
train_opts() {  # train_opts EPOCHS: the size changes, nothing else
  echo "train_dataloader.dataset.data_root=$DATA/ train_dataloader.batch_size=$BS" \
    "train_dataloader.num_workers=$WORKERS train_cfg.max_epochs=$1" \
    "default_hooks.logger.interval=1 log_processor.window_size=1"
}
for name in pcae mae; do
  wanted "$name" || continue
  cfg=$PCAE_CFG; [[ $name == pcae ]] || cfg=$MAE_CFG
  # shellcheck disable=SC2046
  run_step "$name" "$CAP_RUN" 45 "$PY" "$ROOT/tools/train.py" "$cfg" --work-dir "$RUNS/$name" \
    "${AMP_FLAG[@]}" --cfg-options $(train_opts 2)
  if [[ -f "$RUNS/$name/epoch_2.pth" ]]; then
    # shellcheck disable=SC2046
    run_step "${name}_resume" "$CAP_RESUME" 30 "$PY" "$ROOT/tools/train.py" "$cfg" \
      --work-dir "$RUNS/$name" --resume "${AMP_FLAG[@]}" --cfg-options $(train_opts 3)
  else
    record "${name}_resume" skipped null 0 "$CAP_RESUME" "no epoch_2.pth to resume from"
  fi
done

# ------------------------------------------------------------------ 4. FSDP ViT-L, one GPU
if wanted fsdp; then
  run_step fsdp "$CAP_FSDP" 60 "$PY" -m torch.distributed.run --nproc_per_node 1 \
    --master_port 29533 "$ROOT/tools/train.py" "$FSDP_CFG" --launcher pytorch \
    --work-dir "$RUNS/fsdp" --cfg-options "train_dataloader.dataset.data_root=$DATA/" \
    "train_dataloader.batch_size=$FSDP_BS" "train_dataloader.num_workers=$WORKERS" \
    train_cfg.max_epochs=1 default_hooks.logger.interval=1
fi

# ------------------------------------------------------------------ 5. the input pipeline alone
if wanted data; then
  if "$PY" "$ROOT/tools/analysis/benchmark.py" --help 2>/dev/null | grep -q -- '--data-only'; then
    DATA_ARGS=()
    [[ "$TINY" == 0 ]] || DATA_ARGS=(--data-images 8 --data-rounds 1 --data-files 4)
    if [[ "$DEVICE" == cuda* && -f "$LOGS/benchmark.json" ]]; then  # cores per GPU
      DATA_ARGS+=(--bench-json "$LOGS/benchmark.json")
    fi
    run_step data 60 20 "$PY" "$ROOT/tools/analysis/benchmark.py" --data-only --device "$DEVICE" \
      "${DATA_ARGS[@]}" --out-dir "$LOGS" --stem data_only --no-progress
  else
    record data skipped null 0 60 "benchmark.py has no --data-only flag in this checkout"
  fi
fi

# ------------------------------------------------------------------ 6. torch.compile on / off
if wanted compile && [[ "$CAP_COMPILE" -gt 0 ]]; then
  run_step compile "$CAP_COMPILE" 120 "$PY" "$ROOT/tools/analysis/benchmark.py" "$PCAE_CFG" \
    --compile --no-ptr --no-flops --no-census --no-sdpa-probe --batch-size "$BS" --warmup 3 \
    --steps 8 --device "$DEVICE" --amp bf16 --out-dir "$LOGS" --stem compile --no-progress
fi

# ------------------------------------------------------------------ 7. summary, logs
for pid in "$PRED_PID" "$CKPT_PID"; do
  if kill -0 "$pid" 2>/dev/null; then
    log "waiting (at most 20 s) for the background predictions"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
done
tail -n 3 "$LOGS/memory_predictions.log" "$LOGS/checkpoint.log" || true
rc=0
"$PY" "$ROOT/tools/device/check_report.py" "$WORK" "$OUT" || { rc=$?; log "summary failed"; }
# logs, Runner logs and scalars, configs; never the checkpoints
(cd "$WORK" && find logs runs steps.jsonl meta.json -type f ! -name '*.pth' 2>/dev/null |
  tar -czf "$OUT/logs.tar.gz" -T -) || log "tarball failed"
log "done in $((SECONDS - START)) s; files in $OUT:"
ls -l "$OUT"
exit "$rc"
