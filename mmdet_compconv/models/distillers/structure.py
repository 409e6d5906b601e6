"""What a CompConv student must share with its vanilla teacher: residual blocks and stages."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn as nn
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck

from ...cnn import CompConv

BlockSignature = Tuple[Tuple[str, int, int, Tuple[int, ...]], ...]


def backbone_of(model: nn.Module) -> nn.Module:
    """The backbone of a detector, or ``model`` itself when it is a backbone."""
    return getattr(model, 'backbone', model)


def residual_blocks(backbone: nn.Module) -> Dict[str, nn.Module]:
    """The residual blocks (mmdet's ``BasicBlock`` / ``Bottleneck`` and subclasses) by name.

    Example:
        >>> from mmdet.models.backbones import ResNet
        >>> list(residual_blocks(ResNet(18)))[:3]
        ['layer1.0', 'layer1.1', 'layer2.0']
    """
    return {name: m for name, m in backbone.named_modules()
            if isinstance(m, (BasicBlock, Bottleneck))}


def compconv_modules(model: nn.Module) -> List[str]:
    """Names of the CompConv modules of ``model``."""
    return [name for name, m in model.named_modules() if isinstance(m, CompConv)]


def block_signature(block: nn.Module) -> BlockSignature:
    """(conv name, in channels, out channels, stride) of each conv of a residual block.

    A CompConv keeps these of the conv it replaces, so a student block and its teacher block
    have the same signature exactly when they are interchangeable.
    """
    names = ('conv1', 'conv2', 'conv3') if isinstance(block, Bottleneck) else ('conv1', 'conv2')
    convs = [(n, block.get_submodule(n)) for n in names]
    if block.downsample is not None:
        convs += [(f'downsample.{i}', m) for i, m in enumerate(block.downsample)
                  if hasattr(m, 'out_channels')]
    return tuple((n, c.in_channels, c.out_channels, tuple(c.stride)) for n, c in convs)


def stem_signature(backbone: nn.Module) -> Tuple[Tuple[str, int, int, Tuple[int, ...]], ...]:
    """(conv name, in channels, out channels, kernel size + stride) of each conv of a ResNet stem
    (the 7x7 ``conv1``, or the three 3x3 convs of a deep stem); empty for other backbones.

    Example:
        >>> from mmdet.models.backbones import ResNet, ResNetV1d
        >>> stem_signature(ResNet(18))
        (('conv1', 3, 64, (7, 7, 2, 2)),)
        >>> len(stem_signature(ResNetV1d(depth=18)))
        3
    """
    if getattr(backbone, 'deep_stem', False):
        convs = [(f'stem.{i}', m) for i, m in enumerate(backbone.stem) if hasattr(m, 'stride')]
    elif hasattr(backbone, 'conv1') and not isinstance(backbone, (BasicBlock, Bottleneck)):
        convs = [('conv1', backbone.conv1)]
    else:
        convs = []
    return tuple((n, c.in_channels, c.out_channels, tuple(c.kernel_size) + tuple(c.stride))
                 for n, c in convs)


def check_student_fits_teacher(teacher: nn.Module, student: nn.Module) -> None:
    """Raise if ``student`` is not a block-for-block twin of ``teacher``.

    Checks that the teacher has no CompConv, that both are detectors or both backbones, that
    they have the same stem and the same residual blocks with the same channels and strides,
    and the same ``out_indices`` (the stage outputs the neck reads).

    Raises:
        ValueError: naming the offending modules and values.

    Example:
        >>> from mmdet.models.backbones import ResNet
        >>> from mmdet_compconv.models import CompConvResNet
        >>> check_student_fits_teacher(ResNet(18), CompConvResNet(18))
        >>> check_student_fits_teacher(ResNet(18), CompConvResNet(34))
        Traceback (most recent call last):
        ...
        ValueError: student and teacher backbones differ in their residual blocks: ...
    """
    teacher_compconvs = compconv_modules(teacher)
    if teacher_compconvs:
        raise ValueError(f'the teacher must be a vanilla model, but it has '
                         f'{len(teacher_compconvs)} CompConv layers: '
                         f'{", ".join(teacher_compconvs[:5])}...')
    t_det, s_det = hasattr(teacher, 'backbone'), hasattr(student, 'backbone')
    if t_det != s_det:
        kinds = {True: 'a detector', False: 'a backbone'}
        raise ValueError(f'teacher ({type(teacher).__name__}) is {kinds[t_det]} but student '
                         f'({type(student).__name__}) is {kinds[s_det]}: give both as detectors '
                         f'or both as backbones')
    t_stem, s_stem = stem_signature(backbone_of(teacher)), stem_signature(backbone_of(student))
    if t_stem != s_stem:
        raise ValueError(f'student and teacher backbones differ in their stems (conv, in, out, '
                         f'kernel + stride): teacher {t_stem} vs student {s_stem}; a deep stem '
                         f'(ResNetV1d, deep_stem=True) needs a deep-stem twin')
    t_blocks = residual_blocks(backbone_of(teacher))
    s_blocks = residual_blocks(backbone_of(student))
    if not t_blocks:
        raise ValueError(f'the teacher backbone {type(backbone_of(teacher)).__name__} has no '
                         f'residual blocks (mmdet BasicBlock/Bottleneck) to distill')
    only_t = [n for n in t_blocks if n not in s_blocks]
    only_s = [n for n in s_blocks if n not in t_blocks]
    differ = [f'{n}: teacher {block_signature(b)} vs student {block_signature(s_blocks[n])}'
              for n, b in t_blocks.items()
              if n in s_blocks and block_signature(b) != block_signature(s_blocks[n])]
    if only_t or only_s or differ:
        raise ValueError('student and teacher backbones differ in their residual blocks: '
                         f'only in the teacher: {only_t}; only in the student: {only_s}; '
                         f'different (conv, in, out, stride): {differ[:3]}')
    t_out = getattr(backbone_of(teacher), 'out_indices', None)
    s_out = getattr(backbone_of(student), 'out_indices', None)
    if t_out is not None and tuple(t_out) != tuple(s_out or ()):
        raise ValueError(f'student backbone out_indices={s_out} differ from the teacher\'s '
                         f'out_indices={t_out}')
