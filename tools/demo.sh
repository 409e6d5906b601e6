#!/usr/bin/env bash
# `make demo`: generate the shapes dataset (if missing), train a CompConv128 Faster R-CNN-R18
# on it from scratch with mmdet's train.py, evaluate COCO bbox mAP (pycocotools) with mmdet's
# test.py, draw the predictions with mmdet's visualizer, and print a summary (mAP, params and
# MACs against the vanilla ResNet-18 twin). `make demo` runs tools/setup_env.sh first.
#
# Environment knobs (defaults in brackets):
#   VENV [.venv]  DEMO_WORK_DIR [work_dirs/demo]  SHAPES_ROOT [data/shapes]
#   DEMO_CONFIG [configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py]
#   DEMO_VANILLA_CONFIG [configs/shapes/faster-rcnn_r18_fpn_shapes.py]
#   OMP_NUM_THREADS [2]  OMP_WAIT_POLICY [PASSIVE: waiting threads sleep instead of spinning,
#   which keeps 2 threads fast on a CPU shared with other jobs]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}
py="$venv/bin/python"
work=${DEMO_WORK_DIR:-work_dirs/demo}
data=${SHAPES_ROOT:-data/shapes}
config=${DEMO_CONFIG:-configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py}
vanilla=${DEMO_VANILLA_CONFIG:-configs/shapes/faster-rcnn_r18_fpn_shapes.py}
# The dataset the shapes configs expect (configs/shapes/_base_/shapes_detection.py).
shapes_args=(--num-train 400 --num-val 100 --size 256 --seed 0)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

t0=$(date +%s)
now() { date +%s; }
say() { echo "[demo] $*"; }

# 1. data (regenerated when missing or made with other arguments)
stamp="$data/.make_shapes_args"
if [ ! -f "$data/annotations/instances_val.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${shapes_args[*]}" ]; then
  say "generating the shapes dataset in $data"
  "$py" tools/dataset_converters/make_shapes.py --out "$data" "${shapes_args[@]}"
  echo "${shapes_args[*]}" > "$stamp"
else
  say "shapes dataset found in $data"
fi
t1=$(now)

# 2. train (from scratch; progress as mmdet logs it)
data_opts=(train_dataloader.dataset.data_root="$data/" val_dataloader.dataset.data_root="$data/"
           test_dataloader.dataset.data_root="$data/"
           val_evaluator.ann_file="$data/annotations/instances_val.json"
           test_evaluator.ann_file="$data/annotations/instances_val.json")
rm -rf "$work/train" "$work/test"
say "training $config (OMP_NUM_THREADS=$OMP_NUM_THREADS)"
"$py" tools/train.py "$config" --work-dir "$work/train" --cfg-options "${data_opts[@]}"
t2=$(now)

# 3. test: COCO bbox mAP with pycocotools, predictions drawn by mmdet's visualizer
ckpt=$(cat "$work/train/last_checkpoint")
say "testing $ckpt"
"$py" tools/test.py "$config" "$ckpt" --work-dir "$work/test" --show-dir vis \
  --cfg-options "${data_opts[@]}"
t3=$(now)

# 4. summary
"$py" tools/demo_summary.py --config "$config" --vanilla-config "$vanilla" \
  --test-dir "$work/test" --times data=$((t1 - t0)) train=$((t2 - t1)) test=$((t3 - t2)) \
  --wall $(($(now) - t0)) --out "$work/summary.txt"
say "total wall time $(($(now) - t0)) s (data, train, test, summary)"
