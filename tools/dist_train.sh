#!/usr/bin/env bash
# Distributed training with torchrun: tools/train.py (mmdet's train.py + this plugin) on
# NPROC processes per node; the environment of tools/dist_launch.sh applies.
#   bash tools/dist_train.sh CONFIG NPROC [train.py args...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NPROC [train.py args...]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
