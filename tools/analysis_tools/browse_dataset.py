"""Draw a config's training data: mmdet's analysis_tools/browse_dataset.py with the plugin::

    python tools/analysis_tools/browse_dataset.py CONFIG --not-show --output-dir DIR
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, when not pip-installed
from mmdet_compconv.tools_runner import run_mmdet_tool  # noqa: E402

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/browse_dataset')
