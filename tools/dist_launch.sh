#!/usr/bin/env bash
# torchrun over one of this repo's tools: NPROC processes per node, `--launcher pytorch`.
# Works on CPU too (gloo; see mmdet_compconv/apis/mmdet_tools.py). Used by dist_train.sh and
# dist_test.sh:   bash tools/dist_launch.sh TOOL.py NPROC [TOOL.py args...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1),
# PYTHON (python).
set -euo pipefail
TOOL=$1
NPROC=$2
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$here/$TOOL" "${@:3}" --launcher pytorch
