"""Run mmdet's own command-line tools with mmdet_compconv imported.

mmdet's wheel ships its scripts under ``<mmdet>/.mim/tools`` (``train.py``, ``test.py``,
``analysis_tools/get_flops.py``, ...). :func:`run_mmdet_tool` runs one of them unchanged, as
``python <script> ARGS`` would, after importing this package, which registers the CompConv
modules and makes checkpoint loading safe (:mod:`mmdet_compconv.checkpoint`); a tool that calls
``torch.load`` itself (``model_converters/publish_model``) runs inside
:func:`~mmdet_compconv.checkpoint.allow_runner_checkpoints`. So every flag of mmdet's tools
works: ``--work-dir``, ``--resume``, ``--amp`` (on GPUs: mmengine's AMP wrapper refuses the
CPU), ``--cfg-options``, ``--launcher pytorch``...

On a machine without CUDA, ``--launcher pytorch`` (e.g. ``tools/dist_train.sh`` under
``torchrun``) also works: mmengine 0.10.7 would call ``torch.cuda.set_device`` and wrap the model
in a DDP with ``device_ids=[LOCAL_RANK]``, both of which fail on CPU. Here the gloo process group
is initialised first (mmengine then skips its own ``init_dist``), and
``model_wrapper_cfg.device_ids=None`` is added to ``--cfg-options`` unless it is given.

Command line: ``python -m mmdet_compconv.apis.mmdet_tools TOOL [ARGS...]``, with TOOL a path under
``<mmdet>/.mim/tools`` without ``.py``, e.g. ``analysis_tools/browse_dataset``.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..checkpoint import allow_runner_checkpoints

__all__ = ['mmdet_tools_dir', 'mmdet_tool_path', 'cpu_distributed_args', 'run_mmdet_tool', 'main']


def mmdet_tools_dir() -> Path:
    """``<mmdet>/.mim/tools`` of the installed mmdet.

    Returns:
        Path: the folder (resolved).

    Example:
        >>> (mmdet_tools_dir() / 'train.py').is_file()
        True
    """
    import mmdet
    return Path(mmdet.__file__).resolve().parent / '.mim' / 'tools'


def mmdet_tool_path(name: str) -> Path:
    """The script of mmdet's tool ``name`` (``'train'``, ``'analysis_tools/get_flops'``...).

    Args:
        name (str): the tool's path under ``<mmdet>/.mim/tools``, with or without ``.py``.

    Returns:
        Path: the script.

    Raises:
        FileNotFoundError: mmdet ships no such script.

    Example:
        >>> mmdet_tool_path('analysis_tools/get_flops').name
        'get_flops.py'
    """
    root = mmdet_tools_dir()
    path = root / f'{name[:-3] if name.endswith(".py") else name}.py'
    if not path.is_file():
        found = sorted(str(p.relative_to(root).with_suffix('')) for p in root.rglob('*.py'))
        raise FileNotFoundError(f'mmdet has no tool {name!r} ({path} does not exist); '
                                f'its tools are: {", ".join(found)}')
    return path


def _launcher(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == '--launcher' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('--launcher='):
            return arg.split('=', 1)[1]
    return 'none'


def cpu_distributed_args(argv: List[str]) -> List[str]:
    """Make ``--launcher pytorch`` work without CUDA (see the module docstring).

    Initialises the gloo process group if needed (a side effect) when the tool is launched
    with ``--launcher pytorch`` and CUDA is not available.

    Args:
        argv (list[str]): the tool's arguments.

    Returns:
        list[str]: ``argv``, with ``--cfg-options model_wrapper_cfg.device_ids=None`` added
        in that case unless ``argv`` sets it.
    """
    import torch
    import torch.distributed as dist
    if _launcher(argv) != 'pytorch' or torch.cuda.is_available():
        return argv
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')  # env:// from torchrun: RANK, WORLD_SIZE...
    if any(a.startswith('model_wrapper_cfg.device_ids=') for a in argv):
        return argv
    return [*argv, '--cfg-options', 'model_wrapper_cfg.device_ids=None']


def run_mmdet_tool(name: str, argv: Optional[Sequence[str]] = None) -> None:
    """Run mmdet's tool ``name`` as ``__main__`` with ``argv`` and mmdet_compconv imported.

    ``sys.argv`` and ``sys.path`` are restored afterwards. With ``--launcher pytorch`` on a
    machine without CUDA, :func:`cpu_distributed_args` adapts the arguments.

    Args:
        name (str): the script under ``<mmdet>/.mim/tools``, without ``.py`` (or with it),
            e.g. ``'train'`` or ``'analysis_tools/get_flops'``.
        argv (Sequence[str], optional): the tool's arguments. Default: None
            (``sys.argv[1:]``).

    Raises:
        FileNotFoundError: mmdet ships no such tool.
        SystemExit: whatever the tool exits with (argparse errors, ``--help``).
    """
    path = mmdet_tool_path(name)
    args = cpu_distributed_args(list(sys.argv[1:] if argv is None else argv))
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *args]
    sys.path.insert(0, str(path.parent))  # as `python path` would
    try:
        with allow_runner_checkpoints():  # for tools calling torch.load themselves
            runpy.run_path(str(path), run_name='__main__')
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m mmdet_compconv.apis.mmdet_tools TOOL [ARGS...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__)
        print('usage: python -m mmdet_compconv.apis.mmdet_tools TOOL [ARGS...]')
        raise SystemExit(0 if argv else 2)
    run_mmdet_tool(argv[0], argv[1:])


if __name__ == '__main__':
    main()
