# Shared by the GPU-window scripts (gpu_bench.sh, gpu_check.sh): source it, then call
#   kit_packages   unpack the carried wheels ($PCAE_MM_WHEELS, default <repo>/.whl) into a
#                  temporary site folder ($KIT_SITE, removed by kit_cleanup) and put it and the
#                  checkout on PYTHONPATH; without wheels, use $PY's own packages
#   kit_env DEV    print GPU / driver / torch / CUDA / cuDNN / SDPA backends and check that
#                  mmengine, mmcv, mmpretrain import; returns 3 when they do not (with advice),
#                  4 when DEV is cuda and torch sees no GPU
# Needs: ROOT (the checkout), PY (the interpreter), a log function `log`.
KIT_SITE=""

kit_packages() {
  local wheels="${PCAE_MM_WHEELS:-$ROOT/.whl}"
  if compgen -G "$wheels/*.whl" >/dev/null; then
    KIT_SITE="$(mktemp -d -t pcae_mm_site.XXXXXX)"
    # a failed check (a stray or missing wheel) is reported, not fatal: the window is precious
    "$PY" "$ROOT/tools/device/install_wheels.py" "$wheels" --check ||
      log "the wheel check failed (above): unpacking what is there"
    "$PY" "$ROOT/tools/device/install_wheels.py" "$wheels" --target "$KIT_SITE"
    export PYTHONPATH="$KIT_SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  else
    log "no wheels in $wheels: using $PY's own packages"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONUNBUFFERED=1
}

kit_cleanup() {
  [[ -z "$KIT_SITE" ]] || rm -rf "$KIT_SITE"
}

kit_env() {
  local dev="$1" rc=0
  if [[ "$dev" == cuda* ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
      --format=csv || true
  fi
  "$PY" - "$dev" <<'PYEOF' || rc=$?
import platform, sys
try:
    import torch, mmengine, mmcv, mmpretrain, numpy
except ImportError as e:
    print(f'{type(e).__name__}: {e}')
    sys.exit(3)
dev = sys.argv[1]
print(f'python {platform.python_version()} | torch {torch.__version__} | numpy {numpy.__version__}'
      f' | mmengine {mmengine.__version__} | mmcv {mmcv.__version__} | mmpretrain '
      f'{mmpretrain.__version__} | CPU threads {torch.get_num_threads()}')
if dev.startswith('cuda'):
    if not torch.cuda.is_available():
        print('torch sees no CUDA device')
        sys.exit(4)
    p = torch.cuda.get_device_properties(dev)
    b = torch.backends
    print(f'GPU {p.name} | sm_{p.major}{p.minor} | {p.total_memory / 2**30:.0f} GiB | '
          f'{p.multi_processor_count} SMs | CUDA {torch.version.cuda} | cuDNN '
          f'{b.cudnn.version()} | bf16 {torch.cuda.is_bf16_supported()}')
    print(f'SDPA enabled: flash {b.cuda.flash_sdp_enabled()}, mem_efficient '
          f'{b.cuda.mem_efficient_sdp_enabled()}, cudnn '
          f'{getattr(b.cuda, "cudnn_sdp_enabled", lambda: None)()}, math '
          f'{b.cuda.math_sdp_enabled()} | TF32 matmul {b.cuda.matmul.allow_tf32}')
PYEOF
  if [[ $rc == 3 ]]; then
    log "mmengine / mmcv / mmpretrain do not import with $PY."
    log "Prepare the wheels where PyPI is reachable (bash tools/device/prepare_wheels.sh) and"
    log "carry the folder along (device run: carry ['.whl'])."
  fi
  return $rc
}
