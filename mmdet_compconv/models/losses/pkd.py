"""Distillation losses for detectors: FPN features (PKD) and dense-head classification."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS


def _channel_standardized(feat: torch.Tensor, eps: float) -> torch.Tensor:
    """Each channel of ``feat`` (``N, C, ...``) minus its mean, over its standard deviation,
    both over the batch and positions."""
    flat = feat.transpose(0, 1).flatten(1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, unbiased=False, keepdim=True)
    return ((flat - mean) / (std + eps)).view(feat.size(1), feat.size(0),
                                              *feat.shape[2:]).transpose(0, 1)


@MODELS.register_module()
class PKDLoss(nn.Module):
    """PKD (Cao et al., NeurIPS 2022): MSE of per-channel standardised features, halved.

    Student and teacher channels are each standardised (zero mean, unit variance over the
    batch and positions), so the loss, ``mean((z_s - z_t) ** 2) / 2``, is ``1 - r`` averaged
    over channels, with ``r`` the Pearson correlation of the student's and the teacher's
    channel: it ignores the scale and offset of each channel and only asks the student to
    vary where the teacher does. The form of mmrazor's ``PKDLoss`` (FPN outputs, no adapter).

    Args:
        loss_weight (float): Multiplies the loss. Default: 1.0.
        eps (float): Added to each channel's standard deviation. Default: 1e-6.

    Raises:
        ValueError: student and teacher shapes differ (at call time).

    Example:
        >>> import torch
        >>> t = torch.randn(2, 3, 4, 4)
        >>> round(float(PKDLoss()(3 * t + 1, t)), 6)  # same up to scale and offset
        0.0
        >>> round(float(PKDLoss()(-t, t)), 4)  # r = -1
        2.0
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of ``student`` against ``teacher`` (both ``N, C, ...``)."""
        if student.shape != teacher.shape:
            raise ValueError(f'student feature shape {tuple(student.shape)} != teacher '
                             f'feature shape {tuple(teacher.shape)}')
        z_s = _channel_standardized(student, self.eps)
        z_t = _channel_standardized(teacher.detach(), self.eps)
        return self.loss_weight * F.mse_loss(z_s, z_t) / 2


@MODELS.register_module()
class SigmoidKDLoss(nn.Module):
    """Sigmoid classification distillation: BCE of the student's logits against the
    teacher's probabilities, focal-weighted by their gap and averaged per soft positive.

    ``sum(BCE(s, sigmoid(t)) * |sigmoid(s) - sigmoid(t)| ** gamma) / max(sum(sigmoid(t)), 1)``:
    zero when the student gives the teacher's probabilities; the weight keeps the many easy
    background anchors of a dense head (RPN objectness, RetinaNet classes) from drowning the
    few that matter, as the focal loss does for labels, and the normaliser, the teacher's
    expected number of positives, plays the part of the focal loss's ``avg_factor``.

    Args:
        gamma (float): Exponent of the gap weight. Default: 2.0.
        loss_weight (float): Multiplies the loss. Default: 1.0.

    Example:
        >>> import torch
        >>> t = torch.randn(2, 9, 4, 4)
        >>> float(SigmoidKDLoss()(t, t))
        0.0
        >>> bool(SigmoidKDLoss()(t + 1, t) > 0)
        True
    """

    def __init__(self, gamma: float = 2.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of the student's logits against the teacher's (same shape)."""
        if student.shape != teacher.shape:
            raise ValueError(f'student logits shape {tuple(student.shape)} != teacher '
                             f'logits shape {tuple(teacher.shape)}')
        target = teacher.detach().sigmoid()
        weight = (student.sigmoid() - target).abs().pow(self.gamma)
        bce = F.binary_cross_entropy_with_logits(student, target, reduction='none')
        return self.loss_weight * (bce * weight).sum() / target.sum().clamp(min=1.0)
