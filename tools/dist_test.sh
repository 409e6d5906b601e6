#!/usr/bin/env bash
# Distributed testing with torchrun: tools/test.py (mmdet's test.py + this plugin) on
# NPROC processes per node; the environment of tools/dist_launch.sh applies.
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py args...]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$3" "$1" "$2" "${@:4}"
