"""What the tools call: building a detector from a config, and running mmdet's own tools.

* :mod:`.inference`: :func:`init_model`, ``mmdet.apis.init_detector`` with a strict checkpoint
  load;
* :mod:`.mmdet_tools`: :func:`run_mmdet_tool`, mmdet's ``tools/*.py`` run unchanged with this
  package imported (``python -m mmdet_compconv.apis.mmdet_tools TOOL ARGS``).
"""
from .inference import init_model
from .mmdet_tools import mmdet_tool_path, mmdet_tools_dir, run_mmdet_tool

__all__ = ['init_model', 'mmdet_tool_path', 'mmdet_tools_dir', 'run_mmdet_tool']
