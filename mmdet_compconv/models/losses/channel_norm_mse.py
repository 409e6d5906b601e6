"""Feature-matching loss for distillation: MSE normalised per teacher channel."""
from __future__ import annotations

import torch
import torch.nn as nn
from mmdet.registry import MODELS


@MODELS.register_module()
class ChannelNormMSELoss(nn.Module):
    """Mean squared error between feature maps, each channel scaled by the teacher's spread.

    ``mean((student - teacher) ** 2 / (var_c + eps * mean_c(var_c)))``, with ``var_c`` the
    variance of the teacher's channel ``c`` over the batch and spatial positions (no gradient).

    Why normalise: ResNet activations grow with depth, so a plain MSE summed over blocks is
    dominated by the deepest blocks and barely trains the shallow ones; and within a block,
    channels with a small spread matter as much to the next BatchNorm as loud ones. After the
    scaling, a loss of about 1.0 means "as wrong as predicting the teacher's channel means" in
    every block, which also makes the logged per-block losses comparable. The ``eps`` term,
    relative to the layer's mean variance, bounds the weight of channels that are (nearly)
    constant in the teacher, e.g. dead ReLU outputs, which would otherwise get an unbounded
    weight.

    Args:
        loss_weight (float): multiplies the loss. Default: 1.0.
        eps (float): added to each channel's variance, as a fraction of the mean channel
            variance of the teacher's layer; it bounds the weight of (nearly) constant
            channels. 0 divides by the variance alone. Default: 0.01.

    Raises:
        ValueError: eps < 0; student and teacher shapes differ (at call time).

    Example:
        >>> import torch
        >>> t = torch.randn(2, 3, 4, 4)
        >>> loss = ChannelNormMSELoss(eps=0.0)
        >>> float(loss(t, t))
        0.0
        >>> mean = t.mean(dim=(0, 2, 3), keepdim=True).expand_as(t)
        >>> round(float(loss(mean, t)), 4)  # predicting the channel means
        1.0
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 0.01) -> None:
        super().__init__()
        if eps < 0:
            raise ValueError(f'eps must be >= 0, got {eps!r}')
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss of ``student`` against ``teacher``.

        Args:
            student (torch.Tensor): the student's features (N, C, ...).
            teacher (torch.Tensor): the teacher's features, of the same shape (no gradient
                flows into them).

        Returns:
            torch.Tensor: the scalar loss, times ``loss_weight``.
        """
        if student.shape != teacher.shape:
            raise ValueError(f'student feature shape {tuple(student.shape)} != teacher '
                             f'feature shape {tuple(teacher.shape)}')
        teacher = teacher.detach()
        var = teacher.transpose(0, 1).flatten(1).var(dim=1, unbiased=False)
        var = var + self.eps * var.mean()
        scale = var.view(1, -1, *([1] * (teacher.dim() - 2)))
        return self.loss_weight * ((student - teacher)**2 / scale).mean()
