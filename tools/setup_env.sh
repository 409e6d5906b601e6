#!/usr/bin/env bash
# Create or complete the project's virtual environment at $VENV (default: .venv at the repo
# root) with the pinned stack, then install this package in editable mode.
# Each step is skipped when what it installs is already importable at the right version,
# so a second run takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac  # later steps run from /
py=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_env] creating $venv"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
pip() { "$vpy" -m pip --disable-pip-version-check "$@"; }

have() {  # have MODULE VERSION: is MODULE importable with __version__ == VERSION?
  "$vpy" - "$1" "$2" <<'PY' 2>/dev/null
import importlib, sys
m = importlib.import_module(sys.argv[1])
sys.exit(0 if m.__version__.split('+')[0] == sys.argv[2] else 1)
PY
}

have torch 2.13.0 || pip install -q torch==2.13.0
pip install -q 'setuptools<82' wheel ninja psutil numpy
have mmengine 0.10.7 || pip install -q mmengine==0.10.7
if ! "$vpy" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  echo "[setup_env] building mmcv 2.1.0 with ops (about 10 minutes on 2 cores; cached by pip afterwards)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} pip install --no-build-isolation mmcv==2.1.0
fi
have mmdet 3.3.0 || pip install -q mmdet==3.3.0
# ONNX export and its tests, at the verified versions (requirements/tests.txt gives the ranges).
pip install -q onnx==1.23.2 onnxruntime==1.31.1 onnxscript==0.7.2
pip install -q pycocotools shapely scipy matplotlib terminaltables six tqdm -r "$root/requirements/tests.txt"
# OpenVINO and NNCF are optional (pip install .[deploy]); their tests are skipped without them.
if [ "${WITH_OPENVINO:-0}" = 1 ]; then pip install -q openvino==2026.4.1 nncf==3.4.0; fi
# openmim (mim download / search) without its dependency opendatalab, which only `mim download
# --dataset` uses and which pins old setuptools and requests; requirements/tests.txt lists what
# the rest of mim needs.
pip install -q --no-deps openmim==0.3.9
# Checked from / so that the repo itself is not on sys.path. The editable install also links
# configs, tools and model-index.yml into mmdet_compconv/.mim (setup.py), which mim and
# mmengine.hub read: a checkout without them is installed again.
if ! (cd / && "$vpy" -c 'import mmdet_compconv, os; assert os.path.isdir(os.path.join(mmdet_compconv.__path__[0], ".mim", "configs"))' 2>/dev/null); then
  pip install -q --no-build-isolation --no-deps -e "$root"
fi
cd / && "$vpy" -c 'import torch, mmcv, mmengine, mmdet, mmcv.ops, mmdet_compconv; print("[setup_env] ok: torch", torch.__version__, "mmcv", mmcv.__version__, "mmengine", mmengine.__version__, "mmdet", mmdet.__version__)'
