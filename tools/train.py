"""Train a detector: mmdet's tools/train.py with the CompConv plugin imported.

Every flag of mmdet's train.py works, e.g.::

    python tools/train.py configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py \\
        --work-dir work_dirs/x [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when not pip-installed
from mmdet_compconv.tools_runner import run_mmdet_tool  # noqa: E402

if __name__ == '__main__':
    run_mmdet_tool('train')
