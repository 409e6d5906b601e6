"""Distilling a vanilla model (teacher) into its CompConv twin (student) under mmengine."""
from __future__ import annotations

import logging
from functools import partial
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType

from ...cnn import CompConv
from .structure import backbone_of, check_student_fits_teacher, compconv_modules, residual_blocks
from .teacher_checkpoint import load_teacher_checkpoint

LossDict = Dict[str, Union[torch.Tensor, List[torch.Tensor]]]
#: Module names whose state stays under the distiller; every other key is the student's.
OWN_MODULES = ('student', 'data_preprocessor', 'distill_loss', 'neck_distill_loss', 'head_distill')


def model_config(model: Union[str, ConfigType]) -> ConfigType:
    """``model`` itself, or the ``model`` of the config file it names (``mmdet::`` works).

    Example:
        >>> model_config(dict(type='ResNet', depth=18))
        {'type': 'ResNet', 'depth': 18}
    """
    if isinstance(model, str):
        return (get_config(model) if '::' in model else Config.fromfile(model)).model
    return model


def _record(store: dict, name: str, module: nn.Module, args: tuple, output) -> None:
    store[name] = (args[0], output)


def _record_args(store: dict, name: str, module: nn.Module, args: tuple, output) -> None:
    store[name] = (args, output)


#: the heads ``head_distill`` may name: a dense head's classification (RPN objectness or a
#: single-stage detector's classes) and a two-stage detector's RoI classification / regression
HEAD_DISTILL_KEYS = ('dense_cls', 'roi_cls', 'roi_reg')


def _scaled(value, weight: float):
    if weight == 1:
        return value
    return [v * weight for v in value] if isinstance(value, list) else value * weight


def _student_keys_only(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict post-hook: ``student.x`` -> ``x``, so a checkpoint is the student's own."""
    student = prefix + 'student.'
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        state_dict[prefix + key[len(student):] if key.startswith(student) else key] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in [k for k in metadata if k == student[:-1] or k.startswith(student)]:
            metadata[prefix + key[len(student):] if key != student[:-1] else prefix[:-1]] = \
                metadata.pop(key)


def _to_distiller_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook, the inverse of :func:`_student_keys_only`.

    A student checkpoint (ours, or an ordinary mmdet checkpoint of the student model, e.g. a
    ``load_from``) loads into the distiller; ``teacher.`` keys (a checkpoint that kept its
    teacher) are dropped, since the teacher comes from ``teacher_ckpt``.
    """
    own = tuple(f'{prefix}{name}.' for name in OWN_MODULES)
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(own)]:
        value = state_dict.pop(key)
        if not key.startswith(prefix + 'teacher.'):
            state_dict[f'{prefix}student.{key[len(prefix):]}'] = value


def _normalisation(preprocessor: nn.Module) -> dict:
    """What an mmengine ``ImgDataPreprocessor`` does to pixel values."""
    normalize = getattr(preprocessor, '_enable_normalize', False)
    values = {k: [round(v, 4) for v in getattr(preprocessor, k).flatten().tolist()]
              if normalize else None for k in ('mean', 'std')}
    return dict(values, swap_rgb_bgr=getattr(preprocessor, '_channel_conversion', False))


def check_same_normalisation(teacher: Optional[nn.Module], distiller: nn.Module) -> None:
    """Raise if a teacher detector's data preprocessor normalises its input otherwise than the
    distiller's, which feeds teacher and student the same tensors.

    Args:
        teacher (nn.Module, optional): the teacher's ``data_preprocessor`` (None for a
            backbone teacher: nothing to compare).
        distiller (nn.Module): the distiller's ``data_preprocessor``.

    Raises:
        ValueError: naming both normalisations (mean, std, RGB/BGR swap).
    """
    if teacher is None:
        return
    t, d = _normalisation(teacher), _normalisation(distiller)
    if t != d:
        raise ValueError(f"the teacher detector's data_preprocessor normalises its input as "
                         f"{t}, but the distiller feeds it tensors normalised as {d} (the "
                         f"distiller's data_preprocessor, by default the student's): give the "
                         f"distiller the teacher's normalisation")


@MODELS.register_module()
class CompConvDistiller(BaseModel):
    """A CompConv student learning from its frozen vanilla twin, trained by mmengine's Runner.

    Teacher and student are both backbones (e.g. ``ResNet`` / ``CompConvResNet``) or both
    detectors with the same residual blocks and stage outputs. The teacher is frozen, always in
    eval mode, and deliberately *not* a submodule: it is in no optimizer, no DDP bucket and no
    checkpoint (it moves with the distiller between devices). A checkpoint of the distiller holds
    the student's own keys only (``backbone.layer1...`` for a detector, ``layer1...`` for a
    backbone), so ``load_from`` / ``init_cfg=dict(type='Pretrained', ...)`` take it as an ordinary
    checkpoint, and ``--resume`` / ``load_from`` map those keys back.

    ``init_weights`` (the Runner calls it before training) loads ``teacher_ckpt`` into the
    teacher and copies into the student every parameter and buffer whose name and shape match
    (for a detector: stem, shortcuts, norms, neck and heads), logging what is left to learn.

    Training, by iteration (mmengine's ``iter``, so a resumed run continues in its phase):

    * ``iter < blockwise_iters`` (phase 1, block-wise): every student residual block holding a
      CompConv gets its teacher block's input, recorded by forward hooks in one teacher
      forward, and learns to reproduce the teacher block's output; all blocks at once. Losses
      ``loss_block_<layerX_Y>``.
    * afterwards (phase 2, chained): the student runs end to end;
      ``stage_loss_weight`` matches the backbone outputs the neck reads
      (``loss_distill_stage<i>``), ``neck_loss_weight`` the neck outputs of a detector
      (``loss_distill_neck<i>``), and ``task_loss_weight`` adds the student detector's own loss
      (labels needed). ``blockwise_iters=0, task_loss_weight=1, neck_loss_weight>0`` is a
      fine-tune with neck-feature distillation.

    Args:
        teacher (str | dict): config of the vanilla model (a backbone or a whole detector),
            or the path of a config file whose ``model`` it is (e.g.
            ``'mmdet::faster_rcnn/...py'``). Its own init_cfg is never run: the weights come
            from ``teacher_ckpt``.
        student (str | dict): the CompConv model, of the same kind, given the same way.
        teacher_ckpt (str, optional): the teacher's weights (see
            :func:`load_teacher_checkpoint`), loaded by ``init_weights``; None (to be given
            explicitly) keeps the teacher as built (tests only: a warning is logged).
        blockwise_iters (int): the number of iterations of phase 1 (block-wise); 0 starts in
            phase 2. Default: 0.
        stage_loss_weight (float): phase-2 weight (>= 0) of the loss between the student's
            and the teacher's backbone outputs. Default: 1.0.
        neck_loss_weight (float): phase-2 weight (>= 0) of the loss between the neck
            outputs (a detector with a neck only). Default: 0.0.
        task_loss_weight (float): phase-2 weight (>= 0) of the student detector's own loss
            (a detector only; the data needs labels). Default: 0.0.
        distill_loss (dict): config of the feature loss, called as ``loss(student,
            teacher)`` per block, stage and neck level.
            Default: ``dict(type='ChannelNormMSELoss')``.
        neck_distill_loss (dict, optional): config of the loss between the neck outputs,
            e.g. ``dict(type='PKDLoss')``. Default: None (``distill_loss``).
        head_distill (dict, optional): losses matching the teacher's head outputs during a
            fine-tune (``task_loss_weight > 0``), by head: ``dense_cls`` (the classification
            logits of the RPN or a single-stage head, e.g. :class:`SigmoidKDLoss`, called with
            student and teacher logits of all levels), ``roi_cls`` (the RoI head's class
            logits for the student's own sampled RoIs, run through the teacher's RoI head on
            the teacher's FPN outputs, e.g. mmdet's ``KnowledgeDistillationKLDivLoss``),
            ``roi_reg`` (the box deltas of the teacher's most likely foreground class,
            weighted by its probability, e.g. mmdet's ``L1Loss``). Logged as
            ``loss_distill_<key>``. Default: None (no head loss).
        data_preprocessor (dict, optional): the distiller's data preprocessor, which feeds
            teacher and student; a teacher detector's own must normalise alike.
            Default: None (the student detector's; required for a backbone student).
        init_cfg (dict, optional): the distiller's own init_cfg (the student's are in
            ``student``). Default: None.

    Raises:
        ValueError: a student that is not the teacher's block-for-block twin, a teacher with
            CompConv layers, bad loss weights, or, without task loss (pure distillation),
            frozen student CompConvs (``frozen_stages``) or ``norm_eval=True``.

    Example:
        >>> import torch
        >>> distiller = CompConvDistiller(
        ...     teacher=dict(type='ResNet', depth=18, norm_eval=False),
        ...     student=dict(type='CompConvResNet', depth=18, norm_eval=False),
        ...     teacher_ckpt=None, blockwise_iters=10,
        ...     data_preprocessor=dict(type='mmdet.DetDataPreprocessor'))
        >>> losses = distiller(torch.rand(2, 3, 32, 32), mode='loss')
        >>> sorted(losses)[:3]
        ['loss_block_layer1_0', 'loss_block_layer1_1', 'loss_block_layer2_0']
        >>> sorted(distiller.state_dict())[:2]
        ['bn1.bias', 'bn1.num_batches_tracked']
    """

    def __init__(self,
                 teacher: Union[str, ConfigType],
                 student: Union[str, ConfigType],
                 teacher_ckpt: Optional[str],
                 blockwise_iters: int = 0,
                 stage_loss_weight: float = 1.0,
                 neck_loss_weight: float = 0.0,
                 task_loss_weight: float = 0.0,
                 distill_loss: ConfigType = dict(type='ChannelNormMSELoss'),
                 neck_distill_loss: OptConfigType = None,
                 head_distill: Optional[Dict[str, ConfigType]] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        student_model = MODELS.build(model_config(student))
        if data_preprocessor is None:
            data_preprocessor = getattr(student_model, 'data_preprocessor', None)
        if data_preprocessor is None:
            raise ValueError(
                f'data_preprocessor is required for a backbone student '
                f'({type(student_model).__name__} has none): set the normalisation the teacher '
                f"was trained with, e.g. dict(type='DetDataPreprocessor', mean=[123.675, "
                f'116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True) for '
                f'torchvision weights')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = student_model
        teacher_model = MODELS.build(model_config(teacher))
        check_student_fits_teacher(teacher_model, self.student)
        check_same_normalisation(getattr(teacher_model, 'data_preprocessor', None),
                                 self.data_preprocessor)
        teacher_model.requires_grad_(False)
        teacher_model.eval()  # (mmdet's ResNet.train returns None, so no chaining)
        self._teacher = (teacher_model, )  # a tuple: not a submodule (see class doc)
        self.teacher_ckpt = teacher_ckpt
        self._check_schedule(blockwise_iters, stage_loss_weight, neck_loss_weight,
                             task_loss_weight)
        self.blockwise_iters = blockwise_iters
        self.stage_loss_weight = stage_loss_weight
        self.neck_loss_weight = neck_loss_weight
        self.task_loss_weight = task_loss_weight
        self.distill_loss = MODELS.build(distill_loss)
        self.neck_distill_loss = (self.distill_loss if neck_distill_loss is None
                                  else MODELS.build(neck_distill_loss))
        self._check_head_distill(head_distill or {})
        self.head_distill = nn.ModuleDict(
            {k: MODELS.build(v) for k, v in (head_distill or {}).items()})
        s_blocks = residual_blocks(backbone_of(self.student))
        #: the student blocks phase 1 trains: those holding a CompConv
        self.distilled_blocks = [n for n, b in s_blocks.items()
                                 if any(isinstance(m, CompConv) for m in b.modules())]
        self._check_student_trainable()
        self.register_state_dict_post_hook(_student_keys_only)
        self.register_load_state_dict_pre_hook(_to_distiller_keys)

    def _check_schedule(self, blockwise_iters, stage_w, neck_w, task_w) -> None:
        if not isinstance(blockwise_iters, int) or blockwise_iters < 0:
            raise ValueError(f'blockwise_iters must be an int >= 0, got {blockwise_iters!r}')
        for name, w in dict(stage_loss_weight=stage_w, neck_loss_weight=neck_w,
                            task_loss_weight=task_w).items():
            if not isinstance(w, (int, float)) or w < 0:
                raise ValueError(f'{name} must be a number >= 0, got {w!r}')
        if stage_w == neck_w == task_w == 0:
            raise ValueError('stage_loss_weight, neck_loss_weight and task_loss_weight are all 0: '
                             'phase 2 would have no loss')
        is_detector = hasattr(self.student, 'backbone')
        if not is_detector and (neck_w or task_w):
            raise ValueError(f'neck_loss_weight={neck_w} / task_loss_weight={task_w} need a '
                             f'detector student, got the backbone {type(self.student).__name__}')
        if is_detector and neck_w and getattr(self.student, 'neck', None) is None:
            raise ValueError(f'neck_loss_weight={neck_w}, but the student has no neck')

    def _check_head_distill(self, head_distill: dict) -> None:
        unknown = [k for k in head_distill if k not in HEAD_DISTILL_KEYS]
        if unknown:
            raise ValueError(f'head_distill keys must be among {HEAD_DISTILL_KEYS}, got {unknown}')
        if head_distill and not self.task_loss_weight:
            raise ValueError('head_distill needs task_loss_weight > 0 (labelled data): the '
                             "student's own forward gives the head outputs (and RoIs) to match")
        if 'dense_cls' in head_distill:
            head = self._dense_head(self.student)
            if not getattr(head, 'use_sigmoid_cls', False):
                raise ValueError(f'head_distill["dense_cls"] needs a dense head with sigmoid '
                                 f'classification, got {type(head).__name__}')
        if any(k.startswith('roi_') for k in head_distill) and \
                getattr(self.student, 'roi_head', None) is None:
            raise ValueError(f'head_distill {sorted(head_distill)} needs a two-stage student '
                             f'(with a roi_head), got {type(self.student).__name__}')

    @staticmethod
    def _dense_head(detector: nn.Module) -> Optional[nn.Module]:
        """The RPN head of a two-stage detector, the bbox head of a single-stage one."""
        return getattr(detector, 'rpn_head', None) or getattr(detector, 'bbox_head', None)

    def _check_student_trainable(self) -> None:
        unreached = self._compconvs_no_loss_reaches()
        if unreached:
            raise ValueError(
                f'{len(unreached)} student CompConvs are reached by no loss and would keep their '
                f'random initialisation: {unreached[:5]} (neck_loss_weight='
                f'{self.neck_loss_weight}, task_loss_weight={self.task_loss_weight}): set '
                f'neck_loss_weight > 0 to train the neck, task_loss_weight > 0 (labelled data) '
                f'to train the heads, or build those layers as plain convs')
        if self.task_loss_weight:  # a fine-tune: frozen stages and norm_eval are the user's call
            return
        frozen = [n for n in compconv_modules(self.student)
                  if not any(p.requires_grad
                             for p in self.student.get_submodule(n).parameters())]
        if frozen:
            raise ValueError(f'{len(frozen)} student CompConvs are frozen and could not learn '
                             f'(frozen_stages? set frozen_stages=-1 in the student backbone): '
                             f'{frozen[:5]}')
        if getattr(backbone_of(self.student), 'norm_eval', False):
            raise ValueError(
                f'the student backbone has norm_eval=True: its BatchNorms would keep the '
                f"teacher's statistics, which a CompConv does not reproduce; set "
                f'norm_eval=False for distillation')

    def _compconvs_no_loss_reaches(self) -> List[str]:
        """The student's CompConvs outside the backbone that no weighted loss reaches.

        The block and stage losses reach the backbone; the neck loss the backbone and the
        neck; only the task loss reaches the heads.
        """
        if self.task_loss_weight or not hasattr(self.student, 'backbone'):
            return []
        reached = ('backbone.', 'neck.') if self.neck_loss_weight else ('backbone.', )
        return [n for n in compconv_modules(self.student) if not n.startswith(reached)]

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (eval mode, no gradients, not a submodule)."""
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)  # .to(device), .half()... move it along
        return self

    def init_weights(self) -> None:
        """The student's own init, then the teacher's weights, then copy what fits."""
        super().init_weights()
        if self.teacher_ckpt is None:
            print_log('CompConvDistiller: teacher_ckpt=None, the teacher keeps its random '
                      'initialisation', logger='current', level=logging.WARNING)
        else:
            load_teacher_checkpoint(self.teacher, self.teacher_ckpt)
        self.copy_from_teacher()

    def copy_from_teacher(self) -> Tuple[List[str], List[str]]:
        """Copy every teacher tensor whose name and shape the student shares; log a report.

        Returns:
            tuple[list[str], list[str]]: the copied student keys, and the student modules
            (names) with state left to learn.
        """
        own = self.student.state_dict()
        fit = {k: v for k, v in self.teacher.state_dict().items()
               if k in own and own[k].shape == v.shape}
        self.student.load_state_dict(fit, strict=False)
        left = list(dict.fromkeys(k.rsplit('.', 1)[0] for k in own if k not in fit))
        compconvs = set(compconv_modules(self.student))
        inside = [m for m in left if any(m == c or m.startswith(c + '.') for c in compconvs)]
        others = [m for m in left if m not in inside]
        print_log(
            f'CompConvDistiller: copied {len(fit)}/{len(own)} student tensors '
            f'({sum(v.numel() for v in fit.values()):,} values) from the teacher; left to learn: '
            f'{len(compconvs)} CompConvs ({len(inside)} modules)'
            + (f' and {len(others)} other modules: {others}' if others else ''),
            logger='current', level=logging.INFO)
        return list(fit), left

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``loss``: the distillation losses; ``predict`` / ``tensor``: the student's."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            if not hasattr(self.student, 'backbone'):
                raise ValueError(f'mode="predict" needs a detector student, this one is the '
                                 f'backbone {type(self.student).__name__}')
            return self.student(inputs, data_samples, mode='predict')
        if mode == 'tensor':
            if hasattr(self.student, 'backbone'):
                return self.student(inputs, data_samples, mode='tensor')
            return self.student(inputs)
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')

    def loss(self, inputs: torch.Tensor, data_samples=None) -> LossDict:
        """Phase 1 or phase 2 losses, by the Runner's current iteration."""
        hub = MessageHub.get_current_instance()
        if hub.get_info('iter', 0) < self.blockwise_iters:
            return self.blockwise_loss(inputs)
        # Phase 2 computes no block loss: without this the log would repeat phase 1's last
        # block losses (the LoggerHook reports every scalar the hub holds) as if current.
        for key in [k for k in hub.log_scalars if k.startswith('train/loss_block_')]:
            hub.log_scalars.pop(key)
        return self.chained_loss(inputs, data_samples)

    def blockwise_loss(self, inputs: torch.Tensor) -> LossDict:
        """Each CompConv block, fed its teacher block's input, matches that block's output."""
        t_blocks = residual_blocks(backbone_of(self.teacher))
        s_blocks = residual_blocks(backbone_of(self.student))
        records: dict = {}
        handles = [t_blocks[n].register_forward_hook(partial(_record, records, n))
                   for n in self.distilled_blocks]
        try:
            with torch.no_grad():
                backbone_of(self.teacher)(inputs)
        finally:
            for handle in handles:
                handle.remove()
        return {f'loss_block_{n.replace(".", "_")}':
                self.distill_loss(s_blocks[n](records[n][0]), records[n][1])
                for n in self.distilled_blocks}

    def chained_loss(self, inputs: torch.Tensor, data_samples=None) -> LossDict:
        """Stage (and neck) outputs of the end-to-end student against the teacher's,
        plus the student's own task loss when ``task_loss_weight > 0``."""
        use_neck = bool(self.neck_loss_weight)
        t_stages, t_neck = (), ()
        if self.stage_loss_weight or use_neck or self.head_distill:  # else a plain fine-tune
            with torch.no_grad():
                t_stages = backbone_of(self.teacher)(inputs)
                t_neck = self.teacher.neck(t_stages) if use_neck or self.head_distill else ()
        losses: LossDict = {}
        if self.task_loss_weight:
            records: dict = {}
            handles = [backbone_of(self.student).register_forward_hook(
                partial(_record, records, 'stages'))]
            if use_neck:
                handles.append(self.student.neck.register_forward_hook(
                    partial(_record, records, 'neck')))
            handles += self._head_hooks(records)
            try:
                task = self.student.loss(inputs, data_samples)
            finally:
                for handle in handles:
                    handle.remove()
            losses.update({k: _scaled(v, self.task_loss_weight) if 'loss' in k else v
                           for k, v in task.items()})  # not the logged 'acc'
            s_stages = records['stages'][1]
            s_neck = records['neck'][1] if use_neck else ()
            losses.update(self.head_losses(records, t_neck))
        else:
            s_stages = backbone_of(self.student)(inputs)
            s_neck = self.student.neck(s_stages) if use_neck else ()
        if self.stage_loss_weight:
            indices = getattr(backbone_of(self.student), 'out_indices', range(len(s_stages)))
            for i, s, t in zip(indices, s_stages, t_stages):
                losses[f'loss_distill_stage{i}'] = \
                    self.stage_loss_weight * self.distill_loss(s, t)
        for i, (s, t) in enumerate(zip(s_neck, t_neck)):
            losses[f'loss_distill_neck{i}'] = self.neck_loss_weight * self.neck_distill_loss(s, t)
        return losses

    def _head_hooks(self, records: dict) -> list:
        """Forward hooks recording the student head outputs ``head_distill`` needs."""
        handles = []
        if 'dense_cls' in self.head_distill:
            handles.append(self._dense_head(self.student).register_forward_hook(
                partial(_record_args, records, 'dense')))
        if any(k.startswith('roi_') for k in self.head_distill):
            roi_head = self.student.roi_head
            handles.append(roi_head.bbox_roi_extractor.register_forward_hook(
                partial(_record_args, records, 'rois')))
            handles.append(roi_head.bbox_head.register_forward_hook(
                partial(_record_args, records, 'roi_out')))
        return handles

    def head_losses(self, records: dict, t_neck) -> LossDict:
        """``head_distill``'s losses: the student's recorded head outputs against the
        teacher's heads run on the teacher's neck outputs (and the student's RoIs)."""
        losses: LossDict = {}
        if 'dense_cls' in self.head_distill:
            with torch.no_grad():
                t_cls = self._dense_head(self.teacher)(t_neck)[0]
            s_cls = records['dense'][1][0]
            losses['loss_distill_dense_cls'] = self.head_distill['dense_cls'](
                torch.cat([s.flatten(1) for s in s_cls], 1),
                torch.cat([t.flatten(1) for t in t_cls], 1))
        if 'rois' not in records:
            return losses
        rois = records['rois'][0][1]
        s_score, s_deltas = records['roi_out'][1]
        with torch.no_grad():
            t_out = self.teacher.roi_head._bbox_forward(t_neck, rois)
        t_score, t_deltas = t_out['cls_score'], t_out['bbox_pred']
        if 'roi_cls' in self.head_distill:
            losses['loss_distill_roi_cls'] = self.head_distill['roi_cls'](s_score, t_score)
        if 'roi_reg' in self.head_distill:
            foreground = t_score.softmax(-1)[:, :-1]  # mmdet: background is the last class
            weight, label = foreground.max(1)
            rows = torch.arange(len(rois), device=rois.device)
            per_class = s_deltas.size(1) // 4 > 1  # else class-agnostic
            pick = (lambda d: d.view(len(rois), -1, 4)[rows, label]) if per_class \
                else (lambda d: d)
            losses['loss_distill_roi_reg'] = self.head_distill['roi_reg'](
                pick(s_deltas), pick(t_deltas), weight=weight[:, None].expand(-1, 4),
                avg_factor=weight.sum().clamp(min=1.0))
        return losses
