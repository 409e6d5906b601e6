"""Test a detector: mmdet's tools/test.py with the CompConv plugin imported.

Every flag of mmdet's test.py works; Runner checkpoints (epoch_N.pth, iter_N.pth) load on
torch >= 2.6 through mmdet_compconv.checkpoint's allow-list::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when not pip-installed
from mmdet_compconv.tools_runner import run_mmdet_tool  # noqa: E402

if __name__ == '__main__':
    run_mmdet_tool('test')
