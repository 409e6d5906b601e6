"""Argument types shared by the command-line tools (``argparse`` ``type=`` callables)."""
from __future__ import annotations

import argparse
from typing import Optional, Tuple

__all__ = ['parse_size', 'parse_fraction']


def parse_size(text: str) -> Tuple[int, int]:
    """An image size: ``'800x1216'`` -> (800, 1216), ``'224'`` -> (224, 224).

    Args:
        text (str): ``HxW`` or ``S``.

    Returns:
        tuple[int, int]: (H, W).

    Raises:
        argparse.ArgumentTypeError: not a size of positive integers; the message names it.

    Example:
        >>> parse_size('800x1216'), parse_size('224')
        ((800, 1216), (224, 224))
        >>> parse_size('64x0')  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: a size is HxW or S with positive integers, e.g. 800x1216,
        got '64x0'
    """
    try:
        parts = [int(v) for v in text.lower().split('x')]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f'a size is HxW or S with positive integers, e.g. 800x1216, got {text!r}')
    return (parts[0], parts[-1])


def parse_fraction(text: str) -> Optional[float]:
    """A fraction, or None for ``'none'`` (e.g. ``--collapse-above``).

    Args:
        text (str): a number or ``none`` (any case).

    Returns:
        float or None: the value.

    Raises:
        argparse.ArgumentTypeError: not a number; the message names it.

    Example:
        >>> parse_fraction('0.15'), parse_fraction('None')
        (0.15, None)
    """
    if text.lower() == 'none':
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a fraction or "none", got {text!r}') from None
