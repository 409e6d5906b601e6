"""How much a CompConv loses against the dense conv it replaces: a short layer-wise fit.

With a teacher (the trained vanilla model) and unlabeled images, each candidate CompConv is
fitted to its teacher layer's output on that layer's real inputs (crops of the feature maps
the teacher computes from the images), and its error is the
:class:`~mmdet_compconv.models.ChannelNormMSELoss` left on held-out crops (the distiller's
loss, about 1.0 for "as wrong as the teacher's channel means") after the best per-channel
affine map, which the BatchNorm after the conv provides for free. Without a teacher the same fit
runs against the randomly initialised dense layer on Gaussian inputs: a proxy for the
candidate's capacity, weaker because trained layers are far from random ones.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..models import ChannelNormMSELoss, compconv_like

__all__ = ['record_inputs', 'random_inputs', 'fit_error', 'affine_free_error', 'load_images']


def load_images(folder: str, size: Tuple[int, int], count: int, mean: Sequence[float],
                std: Sequence[float], bgr_to_rgb: bool) -> torch.Tensor:
    """Up to ``count`` images of ``folder`` (searched recursively), resized to ``size`` and
    normalised as a data preprocessor would.

    Args:
        folder (str): the image folder.
        size (tuple[int, int]): (H, W).
        count (int): how many images (the first in name order).
        mean (Sequence[float]): per channel, subtracted.
        std (Sequence[float]): per channel, divided by.
        bgr_to_rgb (bool): swap mmcv's BGR to RGB first.

    Returns:
        torch.Tensor: (N, 3, H, W) float32.

    Raises:
        ValueError: no image was found.
    """
    import mmcv
    from ..datasets.unlabeled_image_dataset import IMG_EXTENSIONS, image_files
    files = image_files(folder, IMG_EXTENSIONS)[:count]
    if not files:
        raise ValueError(f'--images {folder!r}: no image found ({IMG_EXTENSIONS})')
    h, w = size
    images = []
    for path in files:
        img = mmcv.imresize(mmcv.imread(path), (w, h)).astype(np.float32)
        if bgr_to_rgb:
            img = img[..., ::-1]
        img = (img - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        images.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))
    return torch.stack(images)


def _crops(x: torch.Tensor, crop: int, per_image: int, stride: int,
           generator: torch.Generator) -> torch.Tensor:
    """``per_image`` random crops of ``crop`` x ``crop`` (stride-aligned) of each map."""
    n, _, h, w = x.shape
    ch, cw = min(crop, h), min(crop, w)
    out = []
    for i in range(n):
        for _ in range(per_image):
            y0 = int(torch.randint(0, (h - ch) // stride + 1, (1, ), generator=generator)) * stride
            x0 = int(torch.randint(0, (w - cw) // stride + 1, (1, ), generator=generator)) * stride
            out.append(x[i, :, y0:y0 + ch, x0:x0 + cw])
    return torch.stack(out)


def record_inputs(model: nn.Module, images: torch.Tensor, names: Sequence[str],
                  crop: int = 32, per_image: int = 4, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random crops of the input each named conv of ``model`` sees on ``images``.

    Args:
        model (nn.Module): the teacher (a backbone), run in eval mode one image at a time.
        images (torch.Tensor): (N, 3, H, W), normalised.
        names (Sequence[str]): module names of convs of ``model``.
        crop (int): the side of the crops, in the layer's input pixels. Default: 32.
        per_image (int): crops per image and layer. Default: 4.
        seed (int): the crops' random seed. Default: 0.

    Returns:
        dict[str, torch.Tensor]: name -> (N * per_image, C, crop, crop) crops.
    """
    g = torch.Generator().manual_seed(seed)
    found: Dict[str, List[torch.Tensor]] = {n: [] for n in names}
    handles = []
    for name in names:
        conv = model.get_submodule(name)

        def hook(module, args, output, name=name, stride=conv.stride[0]):
            found[name].append(_crops(args[0].detach(), crop, per_image, stride, g))
        handles.append(conv.register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            for image in images:
                model(image[None])
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in found.items()}


def random_inputs(channels: int, count: int, crop: int = 32, seed: int = 0) -> torch.Tensor:
    """Gaussian inputs for the proxy fit without a teacher.

    Args:
        channels (int): the layer's input channels.
        count (int): how many crops.
        crop (int): their side. Default: 32.
        seed (int): the random seed. Default: 0.

    Returns:
        torch.Tensor: (count, channels, crop, crop).
    """
    g = torch.Generator().manual_seed(seed)
    return torch.randn(count, channels, crop, crop, generator=g)


class _ChannelAffine(nn.Module):
    """Per-channel scale and shift: what the BatchNorm after the conv re-fits anyway."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale.view(1, -1, 1, 1).clone())
        self.shift = nn.Parameter(shift.view(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def _channel_stats(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    flat = x.transpose(0, 1).flatten(1)
    return flat.mean(1), flat.std(1, unbiased=False)


def affine_free_error(student: torch.Tensor, teacher: torch.Tensor, eps: float = 0.01) -> float:
    """:class:`~mmdet_compconv.models.ChannelNormMSELoss` of ``student`` after the best
    per-channel affine map onto ``teacher`` (least squares, closed form).

    A BatchNorm follows each planned conv, so a channel's scale and shift cost nothing:
    per channel the residual is ``var_t * (1 - corr(s, t)^2)``.

    Args:
        student (torch.Tensor): (N, C, H, W).
        teacher (torch.Tensor): the same shape.
        eps (float): as in :class:`~mmdet_compconv.models.ChannelNormMSELoss`. Default: 0.01.

    Returns:
        float: the loss.

    Example:
        >>> t = torch.randn(2, 3, 4, 4)
        >>> round(affine_free_error(2 * t + 1, t), 6)
        0.0
    """
    s = student.transpose(0, 1).flatten(1).double()
    t = teacher.transpose(0, 1).flatten(1).double()
    s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    var_s, var_t = (s * s).mean(1), (t * t).mean(1)
    cov = (s * t).mean(1)
    resid = var_t - torch.where(var_s > 0, cov * cov / var_s.clamp_min(1e-30),
                                torch.zeros_like(var_t))
    return float((resid.clamp_min(0) / (var_t + eps * var_t.mean()).clamp_min(1e-30)).mean())


def fit_error(teacher: nn.Module, cfg: dict, inputs: torch.Tensor, steps: int = 100,
              lr: float = 1e-2, batch: int = 8, held_out: float = 0.25,
              seed: int = 0) -> float:
    """The error left after fitting a conv built from ``cfg`` to ``teacher`` on ``inputs``.

    The candidate (``compconv_like(teacher, cfg)``, followed by a per-channel affine that
    stands for the BatchNorm after it, initialised to match the teacher's channel means and
    spreads) is trained with Adam on :class:`~mmdet_compconv.models.ChannelNormMSELoss`
    against the teacher conv's outputs on the first inputs; the error is that loss on the
    held-out rest after the best per-channel affine (:func:`affine_free_error`).

    Args:
        teacher (nn.Module): the dense conv (eval, not changed).
        cfg (dict): the candidate's conv config, e.g. ``dict(type='CompConv', c0=64)``.
        inputs (torch.Tensor): (N, C, H, W) inputs of the layer (at least 2).
        steps (int): optimizer steps. Default: 100.
        lr (float): Adam's learning rate. Default: 1e-2.
        batch (int): inputs per step. Default: 8.
        held_out (float): the fraction of inputs kept for the error. Default: 0.25.
        seed (int): the random seed (initialisation and batches). Default: 0.

    Returns:
        float: the held-out loss, about 1.0 for "as wrong as the teacher's channel means",
        0 for a perfect fit.

    Example:
        >>> teacher = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        >>> x = torch.randn(8, 16, 8, 8)
        >>> err = fit_error(teacher, dict(type='CompConv', c0=4), x, steps=5)
        >>> 0 < err < 1
        True
    """
    torch.manual_seed(seed)
    conv = compconv_like(teacher, cfg).train()
    loss = ChannelNormMSELoss()
    n_eval = max(1, int(round(len(inputs) * held_out)))
    train_x, eval_x = inputs[:-n_eval], inputs[-n_eval:]
    with torch.no_grad():
        teacher.eval()
        train_y, eval_y = teacher(train_x), teacher(eval_x)
        s_mean, s_std = _channel_stats(conv(train_x[:batch]))
        t_mean, t_std = _channel_stats(train_y)
        scale = t_std / s_std.clamp_min(1e-6)
    student = nn.Sequential(conv, _ChannelAffine(scale, t_mean - s_mean * scale))
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train_x), (min(batch, len(train_x)), ), generator=g)
        opt.zero_grad(set_to_none=True)
        value = loss(student(train_x[idx]), train_y[idx])
        if torch.isfinite(value):  # a batch whose teacher channels are all constant: 0 / 0
            value.backward()
            opt.step()
    with torch.no_grad():
        return affine_free_error(student.eval()(eval_x), eval_y)
