"""Draw a config's training data: mmdet's analysis_tools/browse_dataset.py with the plugin::

    python tools/analysis_tools/browse_dataset.py CONFIG --not-show --output-dir DIR
"""
from mmdet_compconv.apis import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/browse_dataset')
