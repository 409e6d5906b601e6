"""FLOPs and parameters of a detector: mmdet's analysis_tools/get_flops.py with the plugin.

It runs the model on images of the config's val_dataloader::

    python tools/analysis_tools/get_flops.py CONFIG [--num-images N] [--cfg-options k=v ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, when not pip-installed
from mmdet_compconv.tools_runner import run_mmdet_tool  # noqa: E402

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/get_flops')
