#!/usr/bin/env bash
# Create (or re-use) the project's virtual environment in .venv and install the OpenMMLab stack.
#
# Idempotent: when .venv already holds a verified install made by this exact script, it returns in
# about a second. Traps handled (see docs/INSTALL.md):
#   * mmcv 2.1.0 is the only release mmdet 3.3.0 and mmseg 1.2.2 both accept; PyPI has only its
#     source. It is built WITH compiled ops (MMCV_WITH_OPS=1, --no-build-isolation) against the
#     torch installed here, and the wheel is cached under a key that names that torch, so a wheel
#     built against another torch is never re-used.
#   * setuptools must still ship pkg_resources (mmcv's setup.py, mmengine's `pkg::` configs) while
#     torch 2.14 asks for >= 77.0.3: pinned to [77.0.3, 81).
#   * torch 2.14 headers need C++20 while mmcv hard-codes -std=c++17: a tiny compiler wrapper
#     appends -std=c++20 (the last -std wins).
#   * torch and torchvision come as one matching pair of the same release and flavour.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCAE_MM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="${PCAE_MM_TORCH:-torch==2.14.1 torchvision==0.29.1}"
STACK="mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2"
CACHE="${PCAE_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pcae_mm}"
STAMP="$VENV/.pcae_mm_env"
# Anything that changes what gets installed changes the stamp, so a stale env is rebuilt.
WANT="$(cat "$0" "$ROOT/setup.py" 2>/dev/null | sha1sum | cut -c1-16) $TORCH_SPEC"

log() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi

command -v "$PY" >/dev/null || die "no '$PY' on PATH: install Python 3.8-3.12 (3.11 tested)."
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)."
fi
VPY="$VENV/bin/python"
PIP=(pip_quiet "$VPY" -m pip --disable-pip-version-check)
# pip warns about every local index folder that lacks a package ("... is ignored"): hide that noise.
pip_quiet() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

log "step 1/5: build tools and torch ($TORCH_SPEC)"
"${PIP[@]}" install -q 'setuptools>=77.0.3,<81' wheel ninja 'numpy<2' $TORCH_SPEC

TORCH_VER="$("$VPY" -c 'import torch; print(torch.__version__)')"
CXX_STD_FIX=0
"$VPY" - <<'PY' || CXX_STD_FIX=1
import sys, torch
major, minor = (int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
sys.exit(1 if (major, minor) >= (2, 14) else 0)
PY

log "step 2/5: mmengine and pure-Python dependencies"
"${PIP[@]}" install -q mmengine==0.10.7 addict yapf 'opencv-python<4.11' pytest

log "step 3/5: mmcv 2.1.0 with compiled ops (built once per torch version, then cached)"
WHEELS="$CACHE/wheels/mmcv-2.1.0-torch-$TORCH_VER-py$("$VPY" -c 'import sys;print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "  no cached mmcv wheel for torch $TORCH_VER: building (about 10 minutes on 2 cores)"
  BUILD_ENV=(MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
  if [[ "$CXX_STD_FIX" == 1 ]]; then
    WRAP="$CACHE/cxx20"
    mkdir -p "$WRAP"
    printf '#!/bin/sh\nexec %s "$@" -std=c++20\n' "${CXX:-c++}" > "$WRAP/c++"
    chmod +x "$WRAP/c++"
    BUILD_ENV+=(CXX="$WRAP/c++")
    log "  torch $TORCH_VER headers need C++20: compiling through $WRAP/c++"
  fi
  env "${BUILD_ENV[@]}" "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir \
      --no-binary mmcv -w "$WHEELS.tmp" mmcv==2.1.0 \
    || die "building mmcv 2.1.0 failed (see the compiler output above)."
  mv "$WHEELS.tmp"/mmcv-2.1.0-*.whl "$WHEELS"/ && rm -rf "$WHEELS.tmp"
fi
# (Re)install when mmcv or its compiled ops do not import against this torch.
if ! "$VPY" -c 'import mmcv, mmcv._ext' >/dev/null 2>&1; then
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEELS"/mmcv-2.1.0-*.whl
fi

log "step 4/5: mmpretrain, mmdet, mmsegmentation and pcae_mm (editable)"
"${PIP[@]}" install -q $STACK 'mmcv==2.1.0' --find-links "$WHEELS" 'opencv-python<4.11' 'numpy<2' \
  ftfy regex pycocotools shapely scipy terminaltables tensorboard scikit-image
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

log "step 5/5: verifying the compiled ops and the toolboxes"
"$VPY" - <<'PY' || die "verification failed: mmcv ops or a toolbox does not work (see above)."
import torch
from mmcv.ops import RoIAlign, nms
feat = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
rois = torch.tensor([[0., 0., 0., 4., 4.]])
out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feat, rois)
assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all(), out
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
_, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
import mmengine, mmcv, mmpretrain, mmdet, mmseg, torchvision  # noqa: F401
import pcae_mm  # noqa: F401
print(f'[setup_env] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__} (ops ok), mmengine {mmengine.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}')
PY
echo "$WANT" > "$STAMP"
