"""FLOPs and parameters of a detector: mmdet's analysis_tools/get_flops.py with the plugin.

It runs the model on images of the config's val_dataloader::

    python tools/analysis_tools/get_flops.py CONFIG [--num-images N] [--cfg-options k=v ...]
"""
from mmdet_compconv.apis import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/get_flops')
