"""Test a detector: mmdet's tools/test.py with the CompConv plugin imported.

Every flag of mmdet's test.py works; Runner checkpoints (epoch_N.pth, iter_N.pth) load on
torch >= 2.6 through mmdet_compconv.checkpoint's allow-list::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR]
"""
from mmdet_compconv.apis import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('test')
