"""Train a detector: mmdet's tools/train.py with the CompConv plugin imported.

Every flag of mmdet's train.py works, e.g.::

    python tools/train.py configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py \\
        --work-dir work_dirs/x [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
from mmdet_compconv.apis import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('train')
