"""Safe checkpoint loading for mmengine 0.10.7 on torch >= 2.6.

mmengine 0.10.7 loads local checkpoints with a bare ``torch.load``, which on torch >= 2.6 means
``weights_only=True`` with no allow-list, so the checkpoints its own Runner writes
(``epoch_N.pth`` / ``iter_N.pth``: they pickle the message hub's ``HistoryBuffer`` and numpy
values) fail in ``tools/test.py``, ``load_from`` and ``--resume``. Its http(s) loader goes
through ``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to False, so a
checkpoint URL can run arbitrary code when unpickled.

``import mmdet_compconv`` fixes both without trusting anyone (:mod:`mmdet_compconv.patches`):

* the local-path loader (mmengine scheme ``''``) becomes :func:`load_from_local`;
* every URL loader (``http(s)://``, and ``torchvision://``, ``open-mmlab://``, ``mmcls://``,
  which resolve to URLs) downloads through :func:`load_url`;

and both unpickle with ``weights_only=True`` plus exactly the globals of
:data:`RUNNER_CHECKPOINT_GLOBALS`, what an mmengine/mmdet Runner checkpoint needs. Anything else
(a class whose ``__reduce__`` calls ``os.system``, say) is refused with
``pickle.UnpicklingError`` before it runs. ``weights_only=True`` is passed explicitly, so even
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` does not switch the checks off for these loaders.

Scripts that call ``torch.load`` themselves (mmdet's ``publish_model.py``) accept Runner
checkpoints inside :func:`allow_runner_checkpoints`, which ``mmdet_compconv.apis`` uses.

A file that cannot be loaded gets an error that names it and says why: damaged (empty,
truncated, broken stream: :class:`CorruptCheckpointError`), not a checkpoint at all
(:class:`NotACheckpointError`), or refused for the object it pickles
(``pickle.UnpicklingError``). A trusted file refused for what it pickles can be converted
once by hand (see the error's hint).
"""
from __future__ import annotations

import io
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from typing import Any, Callable, ContextManager, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .checksum import download_checkpoint, verify_checkpoint

__all__ = [
    'RUNNER_CHECKPOINT_GLOBALS', 'allow_runner_checkpoints', 'safe_load', 'load_from_local',
    'load_url', 'diagnose', 'CheckpointFileError', 'CorruptCheckpointError', 'NotACheckpointError'
]


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The numpy objects of the message hub's scalars and arrays.

    Arrays and scalars of bool, integer and float dtypes only (a dtype is rebuilt through its
    class, e.g. ``numpy.dtypes.Float64DType``); object arrays are not allowed. numpy 2 moved
    ``numpy.core`` to ``numpy._core``; a checkpoint names the module of the numpy that saved
    it, so both names are allowed.
    """
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['Float']
    dtypes = list(dict.fromkeys(type(np.dtype(c)) for c in codes))
    functions = [(f, f'{module}.multiarray.{f.__name__}') for f in (_reconstruct, scalar)
                 for module in ('numpy.core', 'numpy._core')]
    return [np.ndarray, np.dtype, *dtypes, *functions]


#: The statistics methods a HistoryBuffer refers to (its ``_statistics_methods``).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    A HistoryBuffer pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``;
    a general ``getattr`` would let a pickle reach any attribute (``__globals__``, modules...),
    so only these lookups are answered.
    """
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint; only HistoryBuffer '
        f'statistics methods {HISTORY_BUFFER_STATISTICS} are')


#: What the Runner checkpoints of mmengine 0.10.7 + mmdet 3.3 pickle beyond tensors and
#: builtin containers (found by saving them and reading ``torch.serialization``'s errors):
#: ``meta.message_hub.log_scalars`` holds ``HistoryBuffer`` objects whose values are numpy
#: arrays and scalars and which refer to their statistics methods through ``getattr``.
#: ``collections.OrderedDict`` (state dicts) and ``_codecs.encode`` (bytes) torch allows itself.
RUNNER_CHECKPOINT_GLOBALS: List[Union[Callable, Tuple[Callable, str]]] = [
    HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'), *_numpy_globals()]

_HINT = ('mmdet_compconv loads checkpoints with torch.load(weights_only=True) and allows only '
         'tensors, builtin containers and the objects an mmengine Runner checkpoint holds '
         '(mmdet_compconv.checkpoint.RUNNER_CHECKPOINT_GLOBALS), so that a checkpoint cannot '
         'run code. If you trust this file, keep its weights once: c = torch.load(path, '
         "weights_only=False); torch.save({'state_dict': c.get('state_dict', c)}, new_path).")


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be loaded for what it is, not for what it pickles."""


class CorruptCheckpointError(CheckpointFileError):
    """A PyTorch checkpoint file that is damaged: empty, truncated or with a broken stream."""


class NotACheckpointError(CheckpointFileError):
    """A file that is not a PyTorch checkpoint at all (text, a foreign pickle, ...)."""


def diagnose(path: str) -> Optional[CheckpointFileError]:
    """What is wrong with the file at ``path`` as a ``torch.save`` file, without unpickling.

    Reads the container (zip archive or legacy pickle) and walks its pickle stream with
    :mod:`pickletools`, which decodes opcodes and runs nothing.

    Args:
        path (str): the file (it must exist).

    Returns:
        CheckpointFileError or None: a :class:`CorruptCheckpointError` or
        :class:`NotACheckpointError` describing the problem (returned, not raised), or None
        when the file is structurally sound (a refusal then comes from what it pickles).

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile('w', suffix='.pth', delete=False) as f:
        ...     _ = f.write('not a checkpoint')
        >>> type(diagnose(f.name)).__name__
        'NotACheckpointError'
        >>> os.remove(f.name)
    """
    size = osp.getsize(path)
    if size == 0:
        return CorruptCheckpointError('it is empty (0 bytes): an interrupted save or download?')
    with open(path, 'rb') as f:
        head = f.read(8)
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                pkl = [n for n in archive.namelist() if n == 'data.pkl' or n.endswith('/data.pkl')]
                if not pkl:
                    return NotACheckpointError('it is a zip archive without data.pkl, not a '
                                               'file written by torch.save')
                stream = archive.read(pkl[0])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            return CorruptCheckpointError(f'its zip archive is damaged ({e})')
    elif head.startswith(b'PK\x03\x04'):
        return CorruptCheckpointError(f'it is a truncated or damaged zip archive ({size} bytes, '
                                      f'no central directory)')
    elif head[:1] == b'\x80':  # pickle protocol >= 2: torch.save's legacy format or a pickle
        with open(path, 'rb') as f:
            stream = f.read()
    else:
        return NotACheckpointError(f'it is neither a zip archive nor a pickle (it starts with '
                                   f'{head!r})')
    # a zip archive's data.pkl is one pickle; the legacy format is five (magic number,
    # protocol, system info, the object, storage keys), then raw storage bytes
    buffer = io.BytesIO(stream)
    try:
        for _ in range(1 if is_zip else 5):
            for _ in pickletools.genops(buffer):
                pass
            if buffer.tell() == len(stream):
                break  # a single plain pickle
    except Exception as e:  # pickletools raises ValueError, but a damaged stream may do more
        return CorruptCheckpointError(f'its pickle stream is damaged ({e})')
    return None


def _load_or_explain(source: str, path: Optional[str], load: Callable[[], Any]) -> Any:
    """Run ``load``; on failure, raise an error that names ``source`` and says whether the file
    at ``path`` is damaged, not a checkpoint, or refused for what it pickles."""
    with allow_runner_checkpoints():
        try:
            return load()
        except Exception as e:
            read = path is not None and osp.isfile(path)  # not so after a failed download
            problem = diagnose(path) if read else None
            if problem is not None:
                where = '' if path == source else f' (downloaded to {path}; delete it to retry)'
                raise type(problem)(f'{source}{where} cannot be loaded: {problem}') from e
            message = str(e)
            if isinstance(e, pickle.UnpicklingError) and 'Unsupported operand' in message:
                raise NotACheckpointError(
                    f'{source} cannot be loaded: it is a pickle that torch.save did not write '
                    f'({message.split("WeightsUnpickler error:")[-1].strip()})') from e
            if isinstance(e, pickle.UnpicklingError):
                found = re.search(r'GLOBAL (\S+)', message)
                what = found.group(1) if found else 'an object'
                raise pickle.UnpicklingError(f'Refused to unpickle {source}: it pickles {what}, '
                                             f'which is not allowed. {_HINT}\n{message}') from e
            if not read:
                raise
            raise CheckpointFileError(f'{source} cannot be loaded: {type(e).__name__}: {e}') from e


def allow_runner_checkpoints() -> ContextManager[None]:
    """A context in which ``weights_only`` loads accept :data:`RUNNER_CHECKPOINT_GLOBALS`.

    Only the globals not allowed yet are added, and only those are removed on exit, so it
    nests and keeps what the user allowed with ``torch.serialization.add_safe_globals``.

    Returns:
        ContextManager[None]: ``torch.serialization.safe_globals`` of the missing globals.

    Example:
        >>> import io
        >>> from mmengine.logging import HistoryBuffer
        >>> buf = io.BytesIO()
        >>> torch.save({'loss': HistoryBuffer([1.0, 2.0], [1, 1])}, buf)
        >>> with allow_runner_checkpoints():
        ...     _ = buf.seek(0)
        ...     float(torch.load(buf)['loss'].mean())
        1.5
    """
    allowed = torch.serialization.get_safe_globals()
    return torch.serialization.safe_globals(
        [g for g in RUNNER_CHECKPOINT_GLOBALS if g not in allowed])


def safe_load(f: Any, map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and :data:`RUNNER_CHECKPOINT_GLOBALS`.

    Args:
        f (str | os.PathLike | IO[bytes]): a path or file-like object, as for ``torch.load``.
        map_location (Any): as for ``torch.load`` (a device, a string, a dict or a
            callable). Default: None (where the tensors were saved).

    Returns:
        Any: the unpickled object, e.g. a dict with ``state_dict`` and ``meta``.

    Raises:
        pickle.UnpicklingError: when ``f`` pickles anything not allowed; nothing of it runs.
        CorruptCheckpointError: the file is empty, truncated or damaged.
        NotACheckpointError: the file is not a PyTorch checkpoint.

    Example:
        >>> import io, collections
        >>> buf = io.BytesIO()
        >>> torch.save({'meta': {'epoch': 1}, 'state_dict': collections.OrderedDict(
        ...     w=torch.zeros(2))}, buf)
        >>> _ = buf.seek(0)
        >>> safe_load(buf)['state_dict']['w'].tolist()
        [0.0, 0.0]
    """
    path = f if isinstance(f, (str, os.PathLike)) else None
    return _load_or_explain(str(f) if path is not None else repr(f), path,
                            lambda: torch.load(f, map_location=map_location, weights_only=True))


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-path checkpoint loader, unpickling with :func:`safe_load`.

    A file whose name carries the zoo's hash is verified first
    (:func:`~mmdet_compconv.checkpoint.verify_checkpoint`).

    Args:
        filename (str): the checkpoint's path (``~`` is expanded).
        map_location (Any): as for ``torch.load``. Default: None (where the tensors were
            saved).

    Returns:
        Any: the unpickled checkpoint.

    Raises:
        FileNotFoundError: ``filename`` does not exist (the message names the absolute path).
        IsADirectoryError: ``filename`` is a directory.
        pickle.UnpicklingError: the file pickles something not allowed.
        CheckpointFileError: the file is damaged or not a checkpoint (see :func:`safe_load`).
        mmdet_compconv.checkpoint.ChecksumError: the name ends in
            ``_<YYYYMMDD>-<sha256[:8]>.pth`` and the file does not match it.
    """
    filename = osp.expanduser(filename)
    if osp.isdir(filename):
        raise IsADirectoryError(f'{filename} is a directory, not a checkpoint file '
                                f'({osp.abspath(filename)!r})')
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'{filename} can not be found (looked for {osp.abspath(filename)!r}).')
    verify_checkpoint(filename)
    return safe_load(filename, map_location)


def load_url(url: str,
             model_dir: Optional[str] = None,
             map_location: Any = None,
             progress: bool = True,
             check_hash: bool = False,
             file_name: Optional[str] = None) -> Any:
    """A cached download (torch.hub's cache) unpickled with :func:`safe_load`.

    Same signature as mmengine's ``load_url``, which it replaces for every URL scheme. A name
    ending in ``_<YYYYMMDD>-<sha256[:8]>.pth`` is verified whatever ``check_hash`` says
    (:func:`mmdet_compconv.checkpoint.download_checkpoint`).

    Args:
        url (str): the checkpoint's URL.
        model_dir (str, optional): the cache folder. Default: None
            (``<torch hub dir>/checkpoints``).
        map_location (Any): as for ``torch.load``. Default: None (where the tensors were
            saved).
        progress (bool): show a progress bar while downloading. Default: True.
        check_hash (bool): kept for mmengine's signature and ignored: a name carrying the
            zoo's hash is always verified, any other name never is. Default: False.
        file_name (str, optional): the cached file's name, from which the hash is then read.
            Default: None (the URL's file name).

    Returns:
        Any: the unpickled checkpoint.

    Raises:
        pickle.UnpicklingError: the downloaded file pickles something not allowed.
        CheckpointFileError: the downloaded file is damaged or not a checkpoint.
        mmdet_compconv.checkpoint.ChecksumError: the file does not match the hash in its name.
    """
    path = download_checkpoint(url, model_dir, progress, file_name)
    return _load_or_explain(url, path, lambda: torch.load(path, map_location=map_location,
                                                          weights_only=True))
