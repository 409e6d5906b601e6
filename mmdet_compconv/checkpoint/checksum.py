"""Checkpoints whose file name carries a hash are verified before they are unpickled.

Model-zoo checkpoints are named ``{config}_{YYYYMMDD}-{sha256[:8]}.pth``
(``tools/model_converters/publish_model.py`` writes them so). mmdet's chain never checks that
hash: ``mim download`` has a TODO for it, and mmengine's URL loader passes
``check_hash=False`` to torch, which would check only fresh downloads anyway, never a cached
file. So a truncated or tampered download would be loaded and run as if it were the zoo's.

:func:`verify_checkpoint` recomputes the sha256 of a file whose name ends in the zoo's
``_{YYYYMMDD}-{8 hex digits}.pth`` (any case; ``.pth.tar`` too) and raises
:class:`ChecksumError` naming the file, the expected and the actual hash when they differ.
``mmdet_compconv.checkpoint`` calls it in mmengine's local loader
and downloads URLs through :func:`download_checkpoint`, which verifies before a file enters the
cache and again whenever a cached file is reused. Files without such a suffix
(``epoch_12.pth``, and mmengine's ``CheckpointHook(published_keys=...)`` output
``epoch_12-{8 hex}.pth``, whose hash is of the pickle, not the file) load as before.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> good = os.path.join(d, 'model_20260101-ca978112.pth')  # sha256(b'a') = ca978112...
    >>> with open(good, 'wb') as f:
    ...     _ = f.write(b'a')
    >>> verify_checkpoint(good)
    'ca978112'
    >>> bad = os.path.join(d, 'model_20260101-00000000.pth')
    >>> os.rename(good, bad)
    >>> verify_checkpoint(bad)  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    mmdet_compconv.checkpoint.checksum.ChecksumError: ...model_20260101-00000000.pth: its name
    says sha256 00000000..., the file's sha256 is ca978112ca1b... ...
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import re
import sys
from typing import Optional
from urllib.parse import urlparse

import torch

__all__ = ['HASH_SUFFIX', 'ChecksumError', 'hash_in_name', 'sha256_of', 'verify_checkpoint',
           'download_checkpoint']

#: The zoo's ``_YYYYMMDD-`` then the first 8 hex digits of the sha256, then ``.pth`` (or
#: ``.pth.tar``), at the end of the name (as publish_model.py, and mmdet's, write it); any case.
HASH_SUFFIX = re.compile(r'_\d{8}-([0-9a-f]{8})\.pth(?:\.tar)?$', re.IGNORECASE)


class ChecksumError(ValueError):
    """A checkpoint's content does not match the hash its file name carries."""


def hash_in_name(name: str) -> Optional[str]:
    """The hash prefix a checkpoint's file name (or URL) carries, or None.

    Args:
        name (str): a file name, path or URL (of a URL only the last component of its path
            is read, not the query).

    Returns:
        str or None: the 8 hex digits in lower case, or None when the name does not end in
        the zoo's ``_<YYYYMMDD>-<8 hex digits>.pth`` (or ``.pth.tar``, any case).

    Example:
        >>> hash_in_name('https://host/retinanet_r18_fpn_shapes_20261129-0a1b2c3d.pth')
        '0a1b2c3d'
        >>> hash_in_name('MODEL_20261129-0A1B2C3D.PTH'), hash_in_name('m_20261129-0a1b2c3d.pth.tar')
        ('0a1b2c3d', '0a1b2c3d')
        >>> hash_in_name('work_dirs/x/epoch_20.pth'), hash_in_name('epoch_20-0a1b2c3d.pth')
        (None, None)
    """
    match = HASH_SUFFIX.search(osp.basename(urlparse(name).path if '://' in name else name))
    return match.group(1).lower() if match else None


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks.

    Args:
        path (str): the file.
        chunk (int): the number of bytes read at a time. Default: 1048576 (``1 << 20``).

    Returns:
        str: the 64 lower-case hex digits of its sha256.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'a.txt')
        >>> with open(path, 'wb') as f:
        ...     _ = f.write(b'a')
        >>> sha256_of(path, chunk=1)[:8]
        'ca978112'
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def verify_checkpoint(path: str, name: Optional[str] = None) -> Optional[str]:
    """Check the sha256 of ``path`` against the hash in its name (:func:`hash_in_name`).

    Args:
        path (str): the file.
        name (str, optional): the name carrying the hash, if not ``path`` (a URL whose file
            was cached under another name). Default: None (the hash is read from ``path``).

    Returns:
        str or None: the verified hash prefix, or None when the name carries no hash
        (nothing checked, the file is not read).

    Raises:
        ChecksumError: the file's sha256 does not start with the name's hash.
    """
    expected = hash_in_name(name or path)
    if expected is None:
        return None
    actual = sha256_of(path)
    if not actual.startswith(expected):
        size = osp.getsize(path)
        source = f'{path} (from {name})' if name and name != path else path
        raise ChecksumError(
            f'Refusing to load {source}: its name says sha256 {expected}..., the file\'s '
            f'sha256 is {actual} ({size} bytes). The file is truncated, corrupted or not the '
            'published checkpoint; delete it and download it again (a file that is not a '
            'zoo checkpoint must not end in _<YYYYMMDD>-<8 hex digits>.pth).')
    return expected


def download_checkpoint(url: str, model_dir: Optional[str] = None, progress: bool = True,
                        file_name: Optional[str] = None) -> str:
    """Download ``url`` into torch's hub cache (as ``torch.hub`` would) and verify it.

    Same cache layout as ``torch.hub.load_state_dict_from_url``: ``model_dir`` (default
    ``<torch hub dir>/checkpoints``), file name ``file_name`` or the URL's. A fresh download is
    ``torch.hub.download_url_to_file`` with the name's hash as ``hash_prefix``: it writes a
    temporary file of its own (so processes downloading the same URL at once do not collide),
    checks the sha256 and renames the file into the cache only when it matches. A cached file is
    verified each time it is used.

    Args:
        url (str): the checkpoint's URL.
        model_dir (str, optional): the cache folder. Default: None (torch's).
        progress (bool): show a progress bar. Default: True.
        file_name (str, optional): the cached file's name. Default: None (the URL's).

    Returns:
        str: the path of the verified file.

    Raises:
        ChecksumError: the file does not match the hash in its name (a failed fresh download
            leaves nothing in the cache; a bad cached file is named in the message).
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = file_name or url
    cached = osp.join(model_dir, file_name or osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        sys.stdout.write(f'Downloading: "{url}" to {cached}\n')
        expected = hash_in_name(name)
        try:
            torch.hub.download_url_to_file(url, cached, hash_prefix=expected, progress=progress)
        except RuntimeError as e:
            if expected is None or 'invalid hash value' not in str(e):
                raise
            got = re.search(r'got "([0-9a-f]+)"', str(e))
            raise ChecksumError(
                f'Refusing {url}: its name says sha256 {expected}..., the downloaded file\'s '
                f'sha256 is {got.group(1) if got else "different"}; nothing was cached. The '
                'download was cut short or the server holds another file than the published '
                'one; download it again.') from e
        return cached
    verify_checkpoint(cached, name)
    return cached
