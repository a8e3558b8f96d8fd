#!/usr/bin/env bash
# Create (or re-use) the project's virtual environment in .venv and install the OpenMMLab stack,
# in two stages, so that the first results come in minutes instead of after the mmcv compile:
#
#   core  everything except mmcv's compiled ops: torch, mmengine, mmcv-lite 2.1.0 (the same
#         mmcv 2.1.0 code, without the compiled `mmcv._ext`), mmpretrain, mmdet,
#         mmsegmentation, pcae_mm. Pre-training, fine-tuning, the kNN check and the tests that
#         need no compiled ops run on it.
#   full  mmcv 2.1.0 WITH its compiled ops (mmdet / mmseg models: Mask R-CNN, UperNet). A wheel
#         already in the cache is installed at once. Otherwise, once `core` is marked, a
#         background job (own session, niced; it outlives this command) compiles it, installs
#         it next to the same code and marks the env `full`. tools/setup_state.py
#         (`wait_for_mmcv_ops`) waits for it: the demo's Mask R-CNN / UperNet stages and the
#         second half of tools/run_tests.sh do.
#
# Usage: bash tools/setup_env.sh [--wait | --stop | --status]
#   --wait    also wait (with progress) until the compiled ops are installed; status 1 if
#             their build fails
#   --stop    stop a running background build (the next set-up starts it again)
#   --status  one line: where the env stands
#
# State, in files that tools/setup_state.py reads:
#   $VENV/.pcae_mm_env         full (its content: the stamp below)
#   $VENV/.pcae_mm_core        core (the same stamp)
#   $VENV/.pcae_mm_ops         what the job builds (key, flavour, wheel folder, logs)
#   $VENV/.pcae_mm_ops.lock    flock-ed by the job (and its children) while it lives
#   $VENV/.pcae_mm_ops.failed  why the last job failed; .pid: its process group; .log: its log
#   $VENV.lock                 flock-ed by a set-up, and by the job while it installs
#
# Idempotent: when the env holds a verified install made by this exact script, it returns in
# well under a second (the stamp names this script, setup.py, the torch spec and the flavour
# overrides). Self-healing: a half-made venv (no working python or pip), a left-over `*.tmp`
# wheel folder, a corrupt cached wheel, a background build that failed, was stopped or killed,
# or one that finished while nobody installed it: the next run detects it and redoes, retries
# or finishes it. Two set-ups of one env take turns on `$VENV.lock`; two envs sharing the
# cache build a wheel once (`<wheel folder>.build.lock`).
# Traps handled (see docs/INSTALL.md):
#   * mmcv 2.1.0 is the only release mmdet 3.3.0 and mmseg 1.2.2 both accept; PyPI has only its
#     source. It is built WITH compiled ops (MMCV_WITH_OPS=1, --no-build-isolation) against the
#     torch installed here, with ninja (MAX_JOBS parallel compiles), and the wheel is cached under
#     a key naming that torch, the Python and the ops flavour (cpu, or cuda + arch list), so a
#     wheel built for another torch, or a CPU-only wheel on a GPU machine, is never re-used.
#   * mmcv-lite 2.1.0's files are byte for byte those of mmcv 2.1.0 without `_ext`: the compiled
#     wheel is moved in file by file (atomic renames, the extension first), so a process that
#     imported mmcv meanwhile keeps working and can import `mmcv.ops` afterwards.
#   * setuptools must still ship pkg_resources (mmcv's setup.py, mmengine's `pkg::` configs) while
#     torch 2.14 asks for >= 77.0.3: pinned to [77.0.3, 81).
#   * torch 2.14 headers need C++20 while mmcv hard-codes -std=c++17: a tiny compiler wrapper
#     appends -std=c++20 (the last -std wins).
#   * torch and torchvision come as one matching pair of the same release and flavour.
# Environment: PCAE_MM_VENV (default .venv), PCAE_MM_CACHE (default ~/.cache/pcae_mm),
# PCAE_MM_TORCH (torch spec), PCAE_MM_MMCV_CUDA (auto | 0 | 1), TORCH_CUDA_ARCH_LIST, MAX_JOBS,
# PCAE_MM_NICE (the background build's niceness, default 10), PYTHON (creates the venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/tools/$(basename "${BASH_SOURCE[0]}")"
VENV="${PCAE_MM_VENV:-$ROOT/.venv}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
PY="${PYTHON:-python3}"
TORCH_SPEC="${PCAE_MM_TORCH:-torch==2.14.1 torchvision==0.29.1}"
STACK="mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2"
CACHE="${PCAE_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pcae_mm}"
[[ "$CACHE" == /* ]] || CACHE="$PWD/$CACHE"
STAMP="$VENV/.pcae_mm_env"
CORE="$VENV/.pcae_mm_core"
OPS="$VENV/.pcae_mm_ops"
MMCV_VERSION=2.1.0
LAST_ERROR=""
STEP=""

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { LAST_ERROR="$*"; printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

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

# valid_cached_wheel FOLDER -> the path of a complete cached mmcv wheel, or nothing (a corrupt
# one is removed, so that it gets rebuilt).
valid_cached_wheel() {
  local whl
  whl="$(ls "$1"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  [[ -z "$whl" ]] && return 0
  if wheel_ok "$whl"; then
    printf '%s\n' "$whl"
  else
    log "  the cached wheel $whl is corrupt: removing it (it gets rebuilt)"
    rm -f "$whl"
  fi
}

# stamp_is FILE WANT -> success when FILE holds exactly WANT.
stamp_is() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# ops_get NAME -> a value of $OPS (what the background job builds), or "".
ops_get() { sed -n "s/^$1=//p" "$OPS" 2>/dev/null | head -n 1; }

# ops_job_alive -> success while the env's background job (or a child of it) lives: they hold
# $OPS.lock. The probe takes a shared lock, so probes never mistake each other for a job.
ops_job_alive() { [[ -e "$OPS.lock" ]] && ! flock -n -s "$OPS.lock" true; }

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
  LAST_ERROR="the build was stopped by a signal (bash tools/setup_env.sh --stop, or a kill); the partial build was removed"
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
    printf '#!/bin/sh\nexec %s "$@" -std=c++20\n' "${CXX:-c++}" > "$wrap/c++.tmp.$$"
    chmod +x "$wrap/c++.tmp.$$" && mv "$wrap/c++.tmp.$$" "$wrap/c++"
    benv+=(CXX="$wrap/c++")
    log "  torch headers need C++20: compiling through $wrap/c++"
  fi
  log "  full compiler log: $buildlog"
  # Own process group (setsid), so Ctrl-C can stop the whole compiler tree; in the background
  # job, the new session's autogroup gets the job's niceness first (see ops_job).
  # shellcheck disable=SC2016
  setsid bash -c '[[ -n "$0" && -w /proc/$$/autogroup ]] && { printf "%s\n" "$0" > /proc/$$/autogroup; } 2>/dev/null
    exec "$@"' "${GROUP_NICE:-}" env "${benv[@]}" "$VPY" -m pip --disable-pip-version-check wheel -v --no-build-isolation \
      --no-deps --no-cache-dir --no-binary mmcv -w "$tmp" "mmcv==$MMCV_VERSION" >"$buildlog" 2>&1 &
  BUILD_PID=$!
  BUILD_TMP="$tmp"
  local traps; traps="$(trap -p INT TERM)"
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
  eval "$traps"  # the caller's handlers (the background job's) again
  BUILD_PID=""
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

# ---- installing the compiled wheel next to mmcv-lite, and verifying -------------------------

# promote_mmcv WHEEL PIPLOG -> the compiled mmcv installed into $VENV, replacing mmcv-lite (or
# a compiled mmcv for another torch) file by file; see the header for why this is safe while
# other processes use mmcv. Idempotent: an interrupted install is redone by calling it again.
promote_mmcv() {
  local whl="$1" plog="$2" site stage
  site="$("$VPY" - <<'PY'
# setup_env: site
import importlib.util, os, sysconfig
spec = importlib.util.find_spec('mmcv')
print(os.path.dirname(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations
      else sysconfig.get_paths()['purelib'])
PY
)" || die "the python of $VENV does not run"
  rm -rf "$site"/.pcae_mm_mmcv_stage.*   # left by an interrupted install
  stage="$site/.pcae_mm_mmcv_stage.$$"
  run_logged "unpacking the mmcv wheel $whl" "$plog" "$VPY" -m pip --disable-pip-version-check \
    install --no-deps --no-compile --target "$stage" "$whl"
  "$VPY" - "$stage" "$site" <<'PY' || die "moving the compiled mmcv into $site failed (see above)"
# setup_env: promote
import csv, os, shutil, sys
stage, site = sys.argv[1:3]
files = [os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs]
top = lambda rel: rel.split(os.sep)[0]  # noqa: E731
meta = sorted({top(r) for r in files if top(r).endswith('.dist-info')})
code = [r for r in files if not top(r).endswith('.dist-info')]
# the compiled extension first: once any new file is visible, the ops it needs are there
for rel in sorted(code, key=lambda r: (not r.endswith(('.so', '.pyd')), r)):
    dst = os.path.join(site, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    os.replace(os.path.join(stage, rel), dst)
# the old metadata (mmcv-lite, or mmcv for another torch) goes; files only it listed go too
old = [n for n in os.listdir(site) if n.endswith('.dist-info')
       and n.lower().replace('-', '_').split('_')[0] == 'mmcv' and n not in meta]
old += [n for n in meta if os.path.isdir(os.path.join(site, n))]
new_code = set(code)
for name in old:
    record = os.path.join(site, name, 'RECORD')
    if os.path.exists(record) and name not in meta:
        with open(record, newline='') as f:
            for row in csv.reader(f):
                rel = os.path.normpath(row[0]) if row else ''
                if (rel.startswith('mmcv' + os.sep) and rel not in new_code
                        and '__pycache__' not in rel and os.path.isfile(os.path.join(site, rel))):
                    os.remove(os.path.join(site, rel))
    gone = os.path.join(site, f'.{name}.old.{os.getpid()}')
    os.replace(os.path.join(site, name), gone)
    shutil.rmtree(gone)
for name in meta:
    os.replace(os.path.join(stage, name), os.path.join(site, name))
print(f'[setup_env]   moved {len(code)} files of mmcv into {site} (was: {", ".join(old) or "none"})')
PY
  rm -rf "$stage"
  "$VPY" -m compileall -q "$site/mmcv" >/dev/null 2>&1 || true
}

verify_core() {
  "$VPY" - <<'PY'
# setup_env: verify core
import warnings
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
import torch, torchvision  # noqa: E401
import mmengine, mmcv, mmpretrain, mmdet, mmseg  # noqa: E401
import pcae_mm  # noqa: F401
print(f'[setup_env] ok (core): torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (compiled ops not installed yet), mmengine {mmengine.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}')
PY
}

verify_full() {
  PCAE_MM_FLAVOUR="$1" "$VPY" - <<'PY'
# setup_env: verify full
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
import mmdet.models, mmseg.models  # noqa: F401  (they import mmcv.ops)
import pcae_mm  # noqa: F401
print(f'[setup_env] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (ops ok on {"+".join(devices)}), mmengine {mmengine.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}')
PY
}

# mark_full -> the env is full for the stamp its core was made with.
mark_full() { cp "$CORE" "$STAMP.tmp.$$" && mv "$STAMP.tmp.$$" "$STAMP"; }

has_ops() { "$VPY" -c 'import mmcv, mmcv._ext' >/dev/null 2>&1; }

# ---- the background job: compile, then install ----------------------------------------------

ops_line() {
  local p; p="$(progress_from_log "$(ops_get build_log)")"
  printf 'mmcv ops: compiling in the background%s (log: %s; bash tools/setup_env.sh --wait waits for them)' \
    "${p:+, compiled ${p/\// of }}" "$(ops_get build_log)"
}

# start_ops_job -> a background job builds and installs the wheel $OPS names (none is started
# when one runs for it already; one for another key, i.e. a replaced torch, is stopped).
start_ops_job() {
  local key pid="" jkey=""
  key="$(ops_get key)"
  if ops_job_alive; then
    read -r pid jkey _ <"$OPS.pid" 2>/dev/null || true
    if [[ -z "$jkey" || "$jkey" == "$key" ]]; then  # (no .pid yet: it has just started)
      log "$(ops_line)"
      return 0
    fi
    log "stopping the background mmcv build for $jkey (this env now needs $key)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && (( pid > 1 )); then kill -TERM -- "-$pid" 2>/dev/null || true; fi
  fi
  exec 8>"$OPS.lock"
  flock -w 60 8 || die "another background mmcv build holds $OPS.lock and does not stop (fuser $OPS.lock names it): kill it, then run again."
  rm -f "$OPS.failed"
  # Own session (survives this command, the terminal's Ctrl-C and its closing), niced so the
  # demo and the tests keep the CPU; it inherits fd 8 (the lock) but not 9 (the set-up lock),
  # and none of our output pipes (a caller reading our output must not wait for the compile).
  PCAE_MM_VENV="$VENV" PCAE_MM_CACHE="$CACHE" PYTHON="$PY" \
    setsid nice -n "${PCAE_MM_NICE:-10}" bash "$SELF" --ops-job </dev/null >"$OPS.log" 2>&1 9>&- &
  exec 8>&-
  log "mmcv's compiled ops (Mask R-CNN, UperNet, mmdet / mmseg models) now compile in the background"
  log "  (about 10-30 minutes on 2 cores; it goes on when this command ends). Progress and log:"
  log "  $(ops_get build_log); bash tools/setup_env.sh --wait waits for them, --stop stops them."
}

JOB_DONE=""
ops_job_exit() {
  local rc="$1"
  if [[ -z "$JOB_DONE" ]]; then
    printf '%s\n' "${LAST_ERROR:-the background job ended with status $rc (see $OPS.log)}" > "$OPS.failed.tmp"
    mv "$OPS.failed.tmp" "$OPS.failed"
  fi
  rm -f "$OPS.pid"
}

# ops_job -> (run by start_ops_job, in the background) build the wheel $OPS names unless it is
# cached, then install it and mark the env full. On any failure, $OPS.failed says why.
ops_job() {
  VPY="$VENV/bin/python"
  local key flavour archs cxx20 wheels buildlog start=$SECONDS
  key="$(ops_get key)"; flavour="$(ops_get flavour)"; archs="$(ops_get archs)"
  cxx20="$(ops_get cxx20)"; wheels="$(ops_get wheels)"; buildlog="$(ops_get build_log)"
  printf '%s %s %s\n' "$$" "$key" "$(date +%s)" > "$OPS.pid"
  trap 'ops_job_exit $?' EXIT
  trap 'LAST_ERROR="stopped by a signal (bash tools/setup_env.sh --stop, or a kill)"; exit 143' INT TERM HUP
  [[ -n "$key" ]] || die "$OPS names no build: run bash tools/setup_env.sh"
  log "background mmcv build for $VENV started $(date '+%F %T'): $key"
  # Linux's autogroup scheduler (kernel.sched_autogroup_enabled, on in most distributions) first
  # shares the CPU between sessions, and only then by niceness inside each: our own session
  # (setsid) would take half of a 2-core machine whatever `nice` says (measured: the demo's kNN
  # stage 426 s instead of 78 s). Giving the session's group the same niceness makes it yield
  # (the same stage: 81 s while the build runs); build_mmcv does the same for the compiler's
  # session (GROUP_NICE). The groups are ours alone; raising their niceness needs no privilege.
  GROUP_NICE="${PCAE_MM_NICE:-10}"
  if [[ -w "/proc/$$/autogroup" ]]; then
    printf '%s\n' "$GROUP_NICE" 2>/dev/null > "/proc/$$/autogroup" || true
  fi
  mkdir -p "$(dirname "$wheels")" "$(dirname "$buildlog")"
  exec 7>"$wheels.build.lock"
  if ! flock -n 7; then
    log "  another set-up sharing $CACHE builds $key: waiting for it"
    flock 7
  fi
  local whl
  whl="$(valid_cached_wheel "$wheels")"
  if [[ -z "$whl" ]]; then
    build_mmcv "$wheels" "$flavour" "$archs" "$cxx20" "$buildlog"
    whl="$(valid_cached_wheel "$wheels")"
    [[ -n "$whl" ]] || die "the mmcv build left no valid wheel in $wheels; full log: $buildlog"
  fi
  exec 7>&-
  exec 9>"$VENV.lock"
  flock 9   # no set-up changes the env meanwhile
  if [[ "$(ops_get key)" != "$key" || ! -f "$CORE" ]]; then
    JOB_DONE=1
    log "the env changed meanwhile (a new set-up, now needing $(ops_get key)): not installing $key"
    exit 0
  fi
  log "installing $whl into $VENV"
  promote_mmcv "$whl" "$VENV/.pcae_mm_ops.pip.log"
  verify_full "$flavour" || die "the compiled mmcv does not work (see $OPS.log)"
  mark_full
  JOB_DONE=1
  log "done: mmcv's compiled ops are installed in $VENV ($(fmt_elapsed $((SECONDS - start))))"
}

stop_ops_job() {
  if ! ops_job_alive; then
    log "no background mmcv build runs for $VENV"
    return 0
  fi
  local pid=""
  read -r pid _ <"$OPS.pid" 2>/dev/null || true
  [[ "$pid" =~ ^[0-9]+$ ]] && (( pid > 1 )) \
    || die "a background mmcv build holds $OPS.lock but $OPS.pid does not name it: find it with fuser $OPS.lock"
  kill -TERM -- "-$pid" 2>/dev/null || true
  local i
  for i in $(seq 60); do ops_job_alive || break; sleep 0.5; done
  ops_job_alive && die "the background mmcv build (process group $pid) is still running"
  log "stopped the background mmcv build; the next bash tools/setup_env.sh starts it again"
}

wait_full() { "$VENV/bin/python" "$ROOT/tools/setup_state.py" --wait --venv "$VENV"; }

# ---- the set-up ------------------------------------------------------------------------------

on_setup_interrupt() {
  trap - INT TERM
  local more=""
  ops_job_alive && more=" The background mmcv build goes on (bash tools/setup_env.sh --stop stops it)."
  printf '\n[setup_env] ERROR: interrupted%s: nothing new is marked done; run the same command again to continue (what pip installed is kept).%s\n' \
    "${STEP:+ during $STEP}" "$more" >&2
  exit 130
}

# ensure_ops -> (env core, set-up lock held) the compiled ops installed, or being built.
ensure_ops() {
  VPY="$VENV/bin/python"
  local flavour whl
  flavour="$(ops_get flavour)"
  if ops_job_alive; then start_ops_job; return 0; fi
  if [[ -f "$OPS.failed" ]]; then
    log "the last background mmcv build failed: $(head -n 1 "$OPS.failed")"
    log "  (its log: $OPS.log): trying again"
  fi
  whl="$(valid_cached_wheel "$(ops_get wheels)")"
  if has_ops || [[ -n "$whl" ]]; then
    STEP="installing the compiled mmcv"
    if ! has_ops; then
      log "installing the compiled mmcv built meanwhile: $whl"
      promote_mmcv "$whl" "$CACHE/logs/pip.log"
    fi
    verify_full "$flavour" || die "verification failed: the compiled mmcv ops or a toolbox do not work (see above)."
    mark_full
    rm -f "$OPS.failed"
    return 0
  fi
  start_ops_job
}

main() {
  local mode="${1:-}"
  case "$mode" in
    --ops-job) ops_job; return ;;
    --stop) stop_ops_job; return ;;
    --status)
      if [[ -x "$VENV/bin/python" ]]; then "$VENV/bin/python" "$ROOT/tools/setup_state.py" --venv "$VENV"
      else echo "no environment at $VENV: run bash tools/setup_env.sh"; fi
      return ;;
    --wait|"") ;;
    *) die "unknown option '$mode' (usage: bash tools/setup_env.sh [--wait | --stop | --status])" ;;
  esac
  local want
  want="$(want_stamp)"
  if stamp_is "$STAMP" "$want" && venv_healthy "$VENV"; then
    return 0
  fi
  if stamp_is "$CORE" "$want" && ops_job_alive && venv_healthy "$VENV"; then
    log "$(ops_line)"
    if [[ "$mode" == --wait ]]; then wait_full; fi
    return 0
  fi
  local t0=$SECONDS
  command -v "$PY" >/dev/null || die "no '$PY' on PATH: install Python 3.8-3.12 (3.11 tested)."
  mkdir -p "$CACHE/logs" "$(dirname "$VENV")"
  trap on_setup_interrupt INT TERM
  # One set-up at a time per env (run_demo.sh and run_tests.sh started together).
  exec 9>"$VENV.lock"
  if ! flock -w 1 9; then
    STEP="the wait for another set-up"
    log "another set-up of $VENV is running: waiting for it to finish"
    flock 9
    STEP=""
  fi
  if stamp_is "$STAMP" "$want" && venv_healthy "$VENV"; then
    exec 9>&-
    trap - INT TERM
    return 0
  fi
  if stamp_is "$CORE" "$want" && venv_healthy "$VENV" && [[ -n "$(ops_get key)" ]]; then
    ensure_ops
    exec 9>&-
    trap - INT TERM
    if [[ "$mode" == --wait && ! -f "$STAMP" ]]; then wait_full; fi
    return 0
  fi
  rm -f "$STAMP" "$CORE"   # from here until the end, the env is not verified
  if [[ -e "$VENV" ]] && ! venv_healthy "$VENV"; then
    log "removing the incomplete virtual environment $VENV (left by an interrupted set-up)"
    rm -rf "$VENV"
  fi
  if [[ ! -e "$VENV" ]]; then
    STEP="creating the virtual environment"
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)."
  fi
  VPY="$VENV/bin/python"
  local -a pip=("$VPY" -m pip --disable-pip-version-check)
  local plog="$CACHE/logs/pip.log"

  STEP="step 1/5"
  log "step 1/5: build tools and torch ($TORCH_SPEC)"
  # shellcheck disable=SC2086
  run_logged "installing torch" "$plog" "${pip[@]}" install 'setuptools>=77.0.3,<81' wheel ninja 'numpy<2' $TORCH_SPEC

  local probe torch_ver pytag torch_cuda cxx20 devarchs
  probe="$("$VPY" - <<'PY'
# setup_env: probe
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

  STEP="step 2/5"
  log "step 2/5: mmengine and pure-Python dependencies"
  run_logged "installing mmengine" "$plog" "${pip[@]}" install mmengine==0.10.7 addict yapf 'opencv-python<4.11' pytest

  local key wheels whl
  key="$(cache_key "$torch_ver" "$pytag" "$flavour" "$torch_cuda" "$archs")"
  wheels="$CACHE/wheels/$key"
  STEP="step 3/5"
  log "step 3/5: mmcv $MMCV_VERSION, flavour $flavour${archs:+ (arch $archs)} (compiled once, cached in $wheels)"
  whl="$(valid_cached_wheel "$wheels")"
  if has_ops; then
    log "  its compiled ops are installed already"
  elif [[ -n "$whl" ]]; then
    log "  installing the cached wheel with compiled ops"
    promote_mmcv "$whl" "$plog"
  else
    if "${pip[@]}" show -q mmcv >/dev/null 2>&1; then  # compiled for another torch
      run_logged "removing the mmcv compiled for another torch" "$plog" "${pip[@]}" uninstall -y mmcv
    fi
    log "  no cached wheel with compiled ops for $key yet: mmcv-lite $MMCV_VERSION now (the same code"
    log "  without the compiled ops); the ops compile in the background once the rest is ready"
    run_logged "installing mmcv-lite" "$plog" "${pip[@]}" install "mmcv-lite==$MMCV_VERSION"
  fi

  STEP="step 4/5"
  log "step 4/5: mmpretrain, mmdet, mmsegmentation and pcae_mm (editable)"
  # shellcheck disable=SC2086
  run_logged "installing the OpenMMLab toolboxes" "$plog" "${pip[@]}" install $STACK \
    'opencv-python<4.11' 'numpy<2' \
    ftfy regex pycocotools shapely scipy terminaltables tensorboard scikit-image scikit-learn matplotlib
  run_logged "installing pcae_mm" "$plog" "${pip[@]}" install --no-deps --no-build-isolation -e "$ROOT"

  {
    printf 'key=%s\nflavour=%s\narchs=%s\ncxx20=%s\nwheels=%s\n' "$key" "$flavour" "$archs" "$cxx20" "$wheels"
    printf 'build_log=%s\njob_log=%s\n' "$CACHE/logs/$key.build.log" "$OPS.log"
  } > "$OPS.tmp" && mv "$OPS.tmp" "$OPS"
  STEP="step 5/5"
  if has_ops; then
    log "step 5/5: verifying the compiled ops and the toolboxes"
    verify_full "$flavour" || die "verification failed: mmcv ops or a toolbox does not work (see above)."
    echo "$want" > "$CORE.tmp" && mv "$CORE.tmp" "$CORE"
    mark_full
    rm -f "$OPS.failed"
    log "done in $(fmt_elapsed $((SECONDS - t0))) (pip log: $plog)"
  else
    log "step 5/5: verifying the toolboxes (mmcv's compiled ops come later)"
    verify_core || die "verification failed: a toolbox does not import (see above)."
    echo "$want" > "$CORE.tmp" && mv "$CORE.tmp" "$CORE"
    log "core ready in $(fmt_elapsed $((SECONDS - t0))): pre-training, fine-tuning, the kNN check and the"
    log "  tests that need no compiled ops can run now (pip log: $plog)"
    start_ops_job
  fi
  exec 9>&-
  trap - INT TERM
  if [[ "$mode" == --wait && ! -f "$STAMP" ]]; then wait_full; fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
