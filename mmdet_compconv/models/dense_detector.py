"""The dense part of a detector as one module with a flat tuple of tensors as output."""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn

__all__ = ['PARTS', 'DenseDetector']

#: The parts :class:`DenseDetector` can take, from the smallest.
PARTS = ('backbone', 'backbone+neck', 'tensor')


class DenseDetector(nn.Module):
    """The exportable part of an mmdet detector, with a flat tuple of tensors as output.

    The modules are shared with ``detector``, not copied. The output is the backbone's
    stages, the neck's levels, or the head's outputs per kind then per level (``cls_score``
    of every level, then ``bbox_pred``...; see :meth:`output_names`).

    Args:
        detector (nn.Module): an mmdet detector (its ``backbone``, ``neck`` and ``rpn_head``
            or ``bbox_head`` are used).
        part (str): ``'backbone'``, ``'backbone+neck'`` or ``'tensor'`` (backbone, neck and
            the dense head: the RPN head of a two-stage detector, the box head of a
            one-stage one). Default: 'tensor'.

    Raises:
        ValueError: an unknown part, or a part the detector does not have.

    Example:
        >>> from mmdet.models.backbones import ResNet
        >>> det = nn.Module(); det.backbone = ResNet(18, base_channels=8)
        >>> outs = DenseDetector(det, 'backbone').eval()(torch.rand(1, 3, 32, 32))
        >>> [tuple(t.shape) for t in outs]
        [(1, 8, 8, 8), (1, 16, 4, 4), (1, 32, 2, 2), (1, 64, 1, 1)]
    """

    def __init__(self, detector: nn.Module, part: str = 'tensor') -> None:
        super().__init__()
        if part not in PARTS:
            raise ValueError(f'part must be one of {PARTS}, got {part!r}')
        self.part = part
        self.backbone = detector.backbone
        need_neck = part != 'backbone'
        if need_neck and getattr(detector, 'neck', None) is None:
            raise ValueError(f'part={part!r} needs a neck, but {type(detector).__name__} has none')
        self.neck = detector.neck if need_neck else None
        self.head = None
        if part == 'tensor':
            self.head = getattr(detector, 'rpn_head', None) or getattr(detector, 'bbox_head', None)
            if self.head is None:
                raise ValueError(f'part="tensor" needs a dense head (rpn_head or bbox_head), but '
                                 f'{type(detector).__name__} has neither')

    def output_names(self, x: torch.Tensor) -> List[str]:
        """Names of the flat outputs for input ``x`` (e.g. ``cls_score_0, ..., bbox_pred_4``).

        Args:
            x (torch.Tensor): an example input; one forward is run under ``torch.no_grad()``.

        Returns:
            list[str]: ``stage_<i>`` (backbone), ``feat_<i>`` (neck), or ``cls_score_<i>``,
            ``bbox_pred_<i>`` and ``extra<k>_<i>`` (head) for each level ``i``.
        """
        with torch.no_grad():
            outs = self._nested(x)
        if self.head is None:
            return [f'{"feat" if self.neck is not None else "stage"}_{i}' for i in range(len(outs))]
        kinds = ('cls_score', 'bbox_pred', 'extra')
        return [f'{kinds[min(k, 2)]}{"" if k < 2 else k}_{i}' for k, level in enumerate(outs)
                for i in range(len(level))]

    def _nested(self, x: torch.Tensor):
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats) if self.head is None else self.head(feats)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = self._nested(x)
        if self.head is None:
            return tuple(outs)
        return tuple(t for level in outs for t in level)
