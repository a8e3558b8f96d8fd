#!/usr/bin/env bash
# Create (or re-use) the project's virtual environment in .venv and install the OpenMMLab stack.
#
# Idempotent: when .venv already holds a verified install made by this exact script, it returns in
# about a second. Self-healing: a half-made .venv (no working python or pip), a left-over
# `*.tmp` wheel folder or a corrupt cached wheel from an interrupted run is detected and redone.
# Traps handled (see docs/INSTALL.md):
#   * mmcv 2.1.0 is the only release mmdet 3.3.0 and mmseg 1.2.2 both accept; PyPI has only its
#     source. It is built WITH compiled ops (MMCV_WITH_OPS=1, --no-build-isolation) against the
#     torch installed here, with ninja (MAX_JOBS parallel compiles), and the wheel is cached under
#     a key naming that torch, the Python and the ops flavour (cpu, or cuda + arch list), so a
#     wheel built for another torch, or a CPU-only wheel on a GPU machine, is never re-used.
#   * setuptools must still ship pkg_resources (mmcv's setup.py, mmengine's `pkg::` configs) while
#     torch 2.14 asks for >= 77.0.3: pinned to [77.0.3, 81).
#   * torch 2.14 headers need C++20 while mmcv hard-codes -std=c++17: a tiny compiler wrapper
#     appends -std=c++20 (the last -std wins).
#   * torch and torchvision come as one matching pair of the same release and flavour.
# Environment: PCAE_MM_VENV (default .venv), PCAE_MM_CACHE (default ~/.cache/pcae_mm),
# PCAE_MM_TORCH (torch spec), PCAE_MM_MMCV_CUDA (auto | 0 | 1), TORCH_CUDA_ARCH_LIST, MAX_JOBS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCAE_MM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="${PCAE_MM_TORCH:-torch==2.14.1 torchvision==0.29.1}"
STACK="mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2"
CACHE="${PCAE_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pcae_mm}"
STAMP="$VENV/.pcae_mm_env"
MMCV_VERSION=2.1.0

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- pure rules (sourced and tested by tests/test_tools/test_setup_env.py) ------------------

# What the stamp must hold for the env to count as current: the script, setup.py, the torch
# spec and the flavour overrides. Any change makes the next run reinstall.
want_stamp() {
  printf '%s %s cuda=%s arch=%s\n' \
    "$(cat "${BASH_SOURCE[0]}" "$ROOT/setup.py" 2>/dev/null | sha1sum | cut -c1-16)" \
    "$TORCH_SPEC" "${PCAE_MM_MMCV_CUDA:-auto}" "${TORCH_CUDA_ARCH_LIST:-}"
}

# decide_flavour FORCE HAS_NVCC TORCH_CUDA ARCHS -> prints "cpu" or "cuda"; fails (status 2)
# when FORCE=1 cannot be honoured.
#   FORCE: auto | 0 | 1;  HAS_NVCC: 0 | 1;  TORCH_CUDA: torch.version.cuda or "";
#   ARCHS: the CUDA arch list to build for ("" when no GPU is visible and none is given).
decide_flavour() {
  local force="$1" has_nvcc="$2" torch_cuda="$3" archs="$4"
  case "$force" in
    0) echo cpu; return 0 ;;
    1) if [[ "$has_nvcc" == 1 && -n "$torch_cuda" && -n "$archs" ]]; then echo cuda; return 0; fi
       return 2 ;;
    auto|"") if [[ "$has_nvcc" == 1 && -n "$torch_cuda" && -n "$archs" ]]; then echo cuda
             else echo cpu; fi ;;
    *) return 2 ;;
  esac
}

# cache_key TORCH_VER PYTAG FLAVOUR TORCH_CUDA ARCHS -> the wheel-cache folder name.
cache_key() {
  local torch_ver="$1" pytag="$2" flavour="$3" torch_cuda="$4" archs="$5"
  local key="mmcv-$MMCV_VERSION-torch-$torch_ver-py$pytag-$flavour"
  if [[ "$flavour" == cuda ]]; then
    # "8.0;9.0+PTX" or "8.0 9.0" -> "sm80_sm90+PTX"
    archs="$(printf '%s' "$archs" | tr ' ;,' '\n\n\n' | sed '/^$/d' | sort -u | tr -d '.' | sed 's/^/sm/' | paste -sd_)"
    key+="$torch_cuda-$archs"
  fi
  printf '%s\n' "$key"
}

# progress_from_log LOG -> "N/M" from the last ninja "[N/M]" line of a build log, or "".
progress_from_log() {
  grep -oE '^[[:space:]]*\[[0-9]+/[0-9]+\]' "$1" 2>/dev/null | tail -n 1 | tr -d '[] \t' || true
}

# venv_healthy VENV -> success when its python runs and has pip (a venv interrupted while being
# created has neither or only the first).
venv_healthy() {
  [[ -x "$1/bin/python" ]] && "$1/bin/python" -c 'import pip' >/dev/null 2>&1
}

# wheel_ok WHEEL -> success when the file is a complete zip archive.
wheel_ok() {
  [[ -s "$1" ]] && "$PY" -m zipfile -t "$1" >/dev/null 2>&1
}

fmt_elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run_logged WHAT LOGFILE CMD... -> runs CMD with its output in LOGFILE; on failure prints the
# log's path and its last lines, then stops.
run_logged() {
  local what="$1" logfile="$2"; shift 2
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    die "$what failed; full log: $logfile (last lines above)."
  fi
}

# ---- the mmcv build, with progress ---------------------------------------------------------

BUILD_PID=""
BUILD_TMP=""
# Ctrl-C / kill during the compile: stop the compiler's process group, delete the partial wheel
# folder, and say how to recover.
on_build_interrupt() {
  trap - INT TERM
  set +e  # the killed build's status must not end the clean-up
  if [[ -n "$BUILD_PID" ]]; then
    kill -- "-$BUILD_PID" 2>/dev/null
    wait "$BUILD_PID" 2>/dev/null
  fi
  [[ -n "$BUILD_TMP" ]] && rm -rf "$BUILD_TMP"
  printf '\n[setup_env] ERROR: interrupted: the partial mmcv build was removed; run again to redo it.\n' >&2
  exit 130
}

build_mmcv() {
  local wheels="$1" flavour="$2" archs="$3" cxx20="$4" buildlog="$5"
  local tmp="$wheels.tmp"
  rm -rf "$tmp"   # left over by an interrupted build: never reused
  mkdir -p "$tmp" "$(dirname "$buildlog")"
  local -a benv=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" PATH="$VENV/bin:$PATH")
  if [[ "$flavour" == cuda ]]; then
    benv+=(FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$archs")
  else
    benv+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  fi
  if [[ "$cxx20" == 1 ]]; then
    local wrap="$CACHE/cxx20"
    mkdir -p "$wrap"
    printf '#!/bin/sh\nexec %s "$@" -std=c++20\n' "${CXX:-c++}" > "$wrap/c++.tmp"
    chmod +x "$wrap/c++.tmp" && mv "$wrap/c++.tmp" "$wrap/c++"
    benv+=(CXX="$wrap/c++")
    log "  torch headers need C++20: compiling through $wrap/c++"
  fi
  log "  full compiler log: $buildlog"
  # Own process group (setsid), so Ctrl-C can stop the whole compiler tree.
  setsid env "${benv[@]}" "$VPY" -m pip --disable-pip-version-check wheel -v --no-build-isolation \
      --no-deps --no-cache-dir --no-binary mmcv -w "$tmp" "mmcv==$MMCV_VERSION" >"$buildlog" 2>&1 &
  BUILD_PID=$!
  BUILD_TMP="$tmp"
  trap on_build_interrupt INT TERM
  local start=$SECONDS every="${PCAE_MM_PROGRESS_EVERY:-30}" tty=0 line last done_total
  last=$((-every))
  [[ -t 2 ]] && tty=1
  while kill -0 "$BUILD_PID" 2>/dev/null; do
    sleep 1 || true  # a Ctrl-C kills the sleep too: let the trap handle it
    if (( tty == 1 || SECONDS - last >= every )); then
      last=$SECONDS
      done_total="$(progress_from_log "$buildlog")"
      done_total="${done_total:-0/?}"
      line="  mmcv: compiled ${done_total/\// of } objects, $(fmt_elapsed $((SECONDS - start))) elapsed"
      if (( tty == 1 )); then printf '\r[setup_env] %s   ' "$line" >&2; else log "$line"; fi
    fi
  done
  local rc=0
  wait "$BUILD_PID" || rc=$?
  trap - INT TERM
  (( tty == 1 )) && printf '\n' >&2
  if (( rc != 0 )); then
    tail -n 40 "$buildlog" >&2
    rm -rf "$tmp"
    die "building mmcv $MMCV_VERSION failed after $(fmt_elapsed $((SECONDS - start))); full log: $buildlog (last lines above)."
  fi
  local whl
  whl="$(ls "$tmp"/mmcv-"$MMCV_VERSION"-*.whl)"
  wheel_ok "$whl" || die "the mmcv build produced no valid wheel; full log: $buildlog"
  mkdir -p "$wheels"
  mv "$whl" "$wheels"/ && rm -rf "$tmp"
  log "  mmcv built in $(fmt_elapsed $((SECONDS - start)))"
}

main() {
  local want
  want="$(want_stamp)"
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && venv_healthy "$VENV"; then
    return 0
  fi
  local t0=$SECONDS
  command -v "$PY" >/dev/null || die "no '$PY' on PATH: install Python 3.8-3.12 (3.11 tested)."
  mkdir -p "$CACHE/logs"
  # One set-up at a time per env (run_demo.sh and run_tests.sh started together).
  exec 9>"$VENV.lock"
  flock 9
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && venv_healthy "$VENV"; then
    return 0
  fi
  rm -f "$STAMP"   # from here until the end, the env is not verified
  if [[ -e "$VENV" ]] && ! venv_healthy "$VENV"; then
    log "removing the incomplete virtual environment $VENV (left by an interrupted set-up)"
    rm -rf "$VENV"
  fi
  if [[ ! -e "$VENV" ]]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)."
  fi
  VPY="$VENV/bin/python"
  local -a pip=("$VPY" -m pip --disable-pip-version-check)
  local plog="$CACHE/logs/pip.log"

  log "step 1/5: build tools and torch ($TORCH_SPEC)"
  # shellcheck disable=SC2086
  run_logged "installing torch" "$plog" "${pip[@]}" install 'setuptools>=77.0.3,<81' wheel ninja 'numpy<2' $TORCH_SPEC

  local probe torch_ver pytag torch_cuda cxx20 devarchs
  probe="$("$VPY" - <<'PY'
import sys, torch
major, minor = (int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
archs = ''
if torch.version.cuda and torch.cuda.is_available():
    archs = ';'.join(sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                             for i in range(torch.cuda.device_count())}))
print(torch.__version__, f'{sys.version_info[0]}{sys.version_info[1]}',
      torch.version.cuda or '-', int((major, minor) >= (2, 14)), archs or '-')
PY
)" || die "torch does not import in $VENV (see $plog)."
  read -r torch_ver pytag torch_cuda cxx20 devarchs <<<"$probe"
  [[ "$torch_cuda" == - ]] && torch_cuda=""
  [[ "$devarchs" == - ]] && devarchs=""
  local archs="${TORCH_CUDA_ARCH_LIST:-$devarchs}" has_nvcc=0 flavour
  if command -v nvcc >/dev/null 2>&1 || [[ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]]; then has_nvcc=1; fi
  flavour="$(decide_flavour "${PCAE_MM_MMCV_CUDA:-auto}" "$has_nvcc" "$torch_cuda" "$archs")" \
    || die "PCAE_MM_MMCV_CUDA=${PCAE_MM_MMCV_CUDA} asks for CUDA ops, but nvcc=$has_nvcc, torch CUDA='${torch_cuda}', arch list='${archs}': install the CUDA toolkit matching torch, or set TORCH_CUDA_ARCH_LIST, or use PCAE_MM_MMCV_CUDA=auto."

  log "step 2/5: mmengine and pure-Python dependencies"
  run_logged "installing mmengine" "$plog" "${pip[@]}" install mmengine==0.10.7 addict yapf 'opencv-python<4.11' pytest

  local key wheels
  key="$(cache_key "$torch_ver" "$pytag" "$flavour" "$torch_cuda" "$archs")"
  wheels="$CACHE/wheels/$key"
  log "step 3/5: mmcv $MMCV_VERSION with compiled ops, flavour $flavour${archs:+ (arch $archs)} (built once, cached in $wheels)"
  local cached
  cached="$(ls "$wheels"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -n "$cached" ]] && ! wheel_ok "$cached"; then
    log "  the cached wheel $cached is corrupt: rebuilding"
    rm -f "$cached"; cached=""
  fi
  if [[ -z "$cached" ]]; then
    log "  no cached mmcv wheel for $key: compiling (about 20 minutes on 2 cores for cpu; progress every 30 s)"
    build_mmcv "$wheels" "$flavour" "$archs" "$cxx20" "$CACHE/logs/$key.build.log"
  fi
  # (Re)install when mmcv or its compiled ops do not import against this torch.
  if ! "$VPY" -c 'import mmcv, mmcv._ext' >/dev/null 2>&1; then
    run_logged "installing the mmcv wheel" "$plog" "${pip[@]}" install --no-deps --force-reinstall "$wheels"/mmcv-"$MMCV_VERSION"-*.whl
  fi

  log "step 4/5: mmpretrain, mmdet, mmsegmentation and pcae_mm (editable)"
  # shellcheck disable=SC2086
  run_logged "installing the OpenMMLab toolboxes" "$plog" "${pip[@]}" install $STACK "mmcv==$MMCV_VERSION" \
    --find-links "$wheels" 'opencv-python<4.11' 'numpy<2' \
    ftfy regex pycocotools shapely scipy terminaltables tensorboard scikit-image scikit-learn matplotlib
  run_logged "installing pcae_mm" "$plog" "${pip[@]}" install --no-deps --no-build-isolation -e "$ROOT"

  log "step 5/5: verifying the compiled ops and the toolboxes"
  PCAE_MM_FLAVOUR="$flavour" "$VPY" - <<'PY' || die "verification failed: mmcv ops or a toolbox does not work (see above)."
import os
import torch
from mmcv.ops import RoIAlign, nms
devices = ['cpu'] + (['cuda'] if os.environ['PCAE_MM_FLAVOUR'] == 'cuda' else [])
for dev in devices:
    feat = torch.arange(64, dtype=torch.float32, device=dev).reshape(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=dev)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feat, rois)
    assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all(), (dev, out)
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]], device=dev)
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev), iou_threshold=0.5)
    assert keep.tolist() == [0, 2], (dev, keep)
import mmengine, mmcv, mmpretrain, mmdet, mmseg, torchvision  # noqa: F401
import pcae_mm  # noqa: F401
print(f'[setup_env] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (ops ok on {"+".join(devices)}), mmengine {mmengine.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}')
PY
  echo "$want" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
  log "done in $(fmt_elapsed $((SECONDS - t0))) (pip log: $plog)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
