"""Export form of CompConv models: what ONNX Runtime and OpenVINO should run.

:func:`to_export_form` is a model transform built for runtimes. Each CompConv becomes an
:class:`ExportCompConv` that assembles its pieces with a single Concat and **does not
shuffle**: its output stays in a known channel permutation, which is folded into the
weights of the consumers (the next convolution's input channels; BatchNorm and ReLU pass it
through). Inside mmdet's residual blocks every permutation ends at a dense convolution (a
plain conv, a depth-0 CompConv, or a 1x1 CompConv collapsed as in
:func:`~mmdet_compconv.switch_to_deploy`), whose output rows can be put back in the logical
order, so the block hands the next one a tensor in the usual order and the graph has no
Transpose or Gather for the shuffle. Where the permutation cannot travel (the block's last
conv is an uncollapsed CompConv, or a CompConv outside a block or RPN head) the module
materialises the logical order with one Gather, which is still one op fewer than the train
form's Reshape-Transpose-Reshape.

BatchNorm folding: the BN after a CompConv is a per-channel affine of the concatenation.
Every piece but the tail A_0 is also read raw by a later sub-convolution, so the affine cannot
go into the sub-convolutions without dividing by gamma (unsafe for near-zero gammas); it stays
one BatchNormalization op (mean 0, variance 1) after the Concat, which ONNX Runtime keeps in its
blocked NCHWc layout and fuses with the ReLU (Mul + Add cost 14 more layout reorders in a
ResNet-50). BN after plain convolutions is folded into their weights.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from ..cnn import (COLLAPSE_ABOVE, CompConv, DeployedCompConv, collapse_pointwise, collapses,
                   foldable, norm_affine)
from ..cnn.fusion import check_collapse_above, take_consuming_norm
from ..cnn.functional import cat, compconv_recursion, strided_identity
from ..cnn.plan import index_runs, invert_permutation

__all__ = ['ExportCompConv', 'dense_export_conv', 'to_export_form']


class ExportCompConv(nn.Module):
    """A CompConv (and the BatchNorm after it) as one Concat, its output left unshuffled.

    Permutations are given as ``perm[logical channel] = physical channel``: a tensor ``t``
    whose logical channels are in the order ``perm`` holds logical channel ``i`` at
    ``t[:, perm[i]]``.

    Args:
        conv (CompConv): a CompConv of depth >= 1 in its train form (not switched to deploy).
        norm (_BatchNorm, optional): an eval-foldable BatchNorm consuming its output; its
            affine (and the CompConv's bias) becomes one BatchNormalization op after the
            Concat. Default: None.
        in_perm (torch.Tensor, optional): the physical order of the input channels (a
            permutation of ``in_channels``: logical input channel ``i`` is ``x[:, in_perm[i]]``),
            folded into the first sub-convolution and the identity slices. Default: None
            (the logical order).
        materialize (bool): put the output in the logical order (one Gather) instead of
            leaving it in :attr:`out_perm`. Default: False.

    Attributes:
        out_perm (torch.Tensor or None): the physical order of the output (None when
            materialised).

    Raises:
        TypeError: ``conv`` is not a CompConv in its train form.
        ValueError: ``conv`` has depth 0 (export it as a dense conv), ``in_perm`` is not a
            permutation of its input channels, or ``norm`` does not fold.

    Example:
        >>> from mmdet_compconv import CompConv
        >>> conv = CompConv(256, 256, 3, padding=1).eval()
        >>> m = ExportCompConv(conv, materialize=True).eval()
        >>> x = torch.rand(1, 256, 5, 5)
        >>> with torch.no_grad():
        ...     torch.allclose(m(x), conv(x), atol=1e-5)
        True
        >>> m = ExportCompConv(conv).eval()  # unshuffled: out_perm says where each channel is
        >>> with torch.no_grad():
        ...     torch.allclose(m(x)[:, m.out_perm], conv(x), atol=1e-5)
        True
    """

    def __init__(self,
                 conv: CompConv,
                 norm: Optional[_BatchNorm] = None,
                 in_perm: Optional[torch.Tensor] = None,
                 materialize: bool = False) -> None:
        super().__init__()
        if not isinstance(conv, CompConv) or conv.deployed is not None:
            raise TypeError('ExportCompConv needs a CompConv in its train form (build the '
                            'export form before switch_to_deploy), got '
                            f'{type(conv).__name__}' + (' switched to deploy'
                                                        if isinstance(conv, CompConv) else ''))
        plan = conv.plan
        if plan.depth == 0:
            raise ValueError('a depth-0 CompConv is a plain convolution: export it as a '
                             'dense conv (to_export_form does)')
        c_in, c_out = conv.in_channels, conv.out_channels
        if in_perm is not None and sorted(in_perm.tolist()) != list(range(c_in)):
            raise ValueError(f'in_perm must be a permutation of {c_in} channels, '
                             f'got {in_perm.tolist()}')
        ref = next(conv.parameters())
        in_perm = torch.arange(c_in) if in_perm is None else in_perm.cpu()
        self.plan, self.stride, self.padding, self.dilation = (plan, conv.stride, conv.padding,
                                                               conv.dilation)
        self.in_channels, self.out_channels = c_in, c_out
        d, n = plan.depth, plan.tail_channels

        # conv0 reads the whole input: its input channels follow in_perm.
        w0 = conv.convs[0].weight.detach()
        weights = [w0[:, invert_permutation(in_perm)].clone()]
        # Identity slices: logical input channels [s, s + width) sit at physical in_perm[s:..];
        # read them in physical order as runs of consecutive channels (slices, no gather).
        self.slice_runs: List[List[Tuple[int, int]]] = []
        raw_to_phys = torch.arange(c_out)
        raw_start, start = 0, 0
        widths = plan.units[:-1]
        for j in range(1, d):
            width = widths[2 * j - 2]
            raw_a = raw_start + width  # the raw position of A_{d-j} in cat(...)
            phys = in_perm[start:start + width]
            sorted_phys, k = torch.sort(phys)  # piece position p holds logical k[p]
            self.slice_runs.append([(lo, lo + j - i) for i, j, lo, _ in
                                    index_runs(sorted_phys.tolist(), unit_step=True)])
            raw_to_phys[raw_a + k] = raw_a + torch.arange(width)
            wj = conv.convs[j].weight.detach()
            # conv j reads cat(B, A): A's channels arrive in the sorted physical order.
            weights.append(torch.cat((wj[:, :width], wj[:, width:][:, k]), 1).clone())
            raw_start, start = raw_a + width, start + width
        tail = conv.tail
        self.tail_groups, self.tail_padding, self.tail_dilation = (tail.groups, tail.padding,
                                                                   tail.dilation)
        self.trim_tail_input = n if tail.groups > 1 and tail.in_channels < 2**(d - 1) * plan.prim_channels else None
        tail_w = tail.weight.detach()
        if tail.groups == 1 and plan.overflow:  # a full tail reads all of B_0, zeros for e
            tail_w = torch.cat((tail_w, tail_w.new_zeros((n, plan.overflow) + tail_w.shape[2:])), 1)
        weights.append(tail_w.clone())
        self.weights = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in weights])

        order = conv.shuffle_index if conv.with_shuffle else torch.arange(c_out)
        perm = raw_to_phys[order.cpu()]  # logical output o -> physical position
        scale, shift = norm_affine(conv, norm)
        inv = invert_permutation(perm)  # physical position -> logical channel
        self.with_affine = norm is not None or conv.bias is not None
        self.register_buffer('scale', scale[inv].to(ref.dtype).clone())
        self.register_buffer('shift', shift[inv].to(ref.dtype).clone())
        self.materialize = materialize
        # the affine as an inference BatchNorm: mean 0, variance 1, eps 0
        self.register_buffer('zero', torch.zeros_like(self.scale), persistent=False)
        self.register_buffer('one', torch.ones_like(self.scale), persistent=False)
        self.register_buffer('gather', perm.to(ref.device), persistent=False)
        self.out_perm = None if materialize else perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, s = self.weights, self.stride[0]

        def conv(j: int, tensors) -> torch.Tensor:
            return F.conv2d(cat(tensors), w[j], None, s if j == 0 else 1, self.padding,
                            self.dilation)

        def identity(j: int, start: int, b: torch.Tensor) -> List[torch.Tensor]:
            return [strided_identity(x, lo, hi - lo, s) for lo, hi in self.slice_runs[j - 1]]

        pieces = compconv_recursion(x, self.plan.depth, conv, identity)
        t = pieces[-1] if self.trim_tail_input is None else pieces[-1][:, :self.trim_tail_input]
        pieces.append(F.conv2d(t, w[-1], None, 1, self.tail_padding, self.tail_dilation,
                               self.tail_groups))
        y = torch.cat(pieces, 1)
        if self.with_affine:  # one BatchNormalization op: runtimes keep it in blocked layouts
            y = F.batch_norm(y, self.zero, self.one, self.scale, self.shift, False, 0.0, 0.0)
        if self.materialize:
            y = y.index_select(1, self.gather)
        return y

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, depth={self.plan.depth}, '
                f'slices={[len(r) for r in self.slice_runs]}, materialize={self.materialize}')


def dense_export_conv(conv: nn.Module,
                      norm: Optional[_BatchNorm] = None,
                      in_perm: Optional[torch.Tensor] = None,
                      out_perm: Optional[torch.Tensor] = None) -> nn.Conv2d:
    """A plain (or collapsed, or depth-0 CompConv) convolution with BN folded, reading an input
    in the physical order ``in_perm`` and writing its output in the order ``out_perm`` (None:
    the logical order).

    Permutations are given as in :class:`ExportCompConv`: ``perm[logical channel] =
    physical channel``.

    Args:
        conv (nn.Module): an ``nn.Conv2d`` (groups 1, zero padding), or a CompConv in its
            train form that is of depth 0 or 1x1 with stride 1 (collapsed with
            :func:`~mmdet_compconv.cnn.collapse_pointwise`).
        norm (_BatchNorm, optional): a foldable BatchNorm consuming its output.
            Default: None.
        in_perm (torch.Tensor, optional): the physical order of the input channels.
            Default: None (the logical order).
        out_perm (torch.Tensor, optional): the physical order to write the output in:
            logical output channel ``o`` lands at ``out_perm[o]``. Default: None (the
            logical order).

    Returns:
        nn.Conv2d: a new conv with bias, not requiring grad (``conv`` is not changed).

    Raises:
        TypeError: ``conv`` is a switched CompConv, or not a plain ``nn.Conv2d`` with groups
            1 and zero padding.
        ValueError: a CompConv of depth >= 1 that is not 1x1 with stride 1, or a ``norm``
            that does not fold.

    Example:
        >>> conv, bn = nn.Conv2d(4, 3, 1), nn.BatchNorm2d(3).eval()
        >>> perm = torch.tensor([2, 0, 3, 1])
        >>> x = torch.rand(1, 4, 2, 2)
        >>> y = torch.empty_like(x); y[:, perm] = x  # x in the physical order perm
        >>> with torch.no_grad():
        ...     torch.allclose(dense_export_conv(conv, bn, perm)(y), bn(conv(x)), atol=1e-6)
        True
    """
    if isinstance(conv, CompConv):
        if conv.deployed is not None:
            raise TypeError('build the export form before switch_to_deploy')
        if conv.plan.depth == 0:
            c = conv.convs[0]
            plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, bias=conv.bias is not None)
            plain.weight.data.copy_(c.weight.detach())
            if conv.bias is not None:
                plain.bias.data.copy_(conv.bias.detach())
            plain.to(c.weight.device)
            conv = plain
        else:
            conv, norm = collapse_pointwise(conv, norm), None
    permuted = in_perm is not None or out_perm is not None
    if type(conv) is not nn.Conv2d or conv.padding_mode != 'zeros' or (permuted and
                                                                      conv.groups != 1):
        raise TypeError(f'cannot fold a channel permutation into {conv!r}' if permuted else
                        f'cannot fold a norm into {conv!r}')
    scale, b = norm_affine(conv, norm)
    w = conv.weight.detach() * scale.view(-1, 1, 1, 1)
    if in_perm is not None:
        w = w[:, invert_permutation(in_perm.to(w.device))]
    if out_perm is not None:
        inv = invert_permutation(out_perm.to(w.device))
        w, b = w[inv], b[inv]
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=True).to(w.device, w.dtype)
    out.weight.data.copy_(w)
    out.bias.data.copy_(b)
    return out.requires_grad_(False)


def _export_chain(parent: nn.Module, pairs: Sequence[Tuple[str, str]],
                  collapse_above: Optional[float]) -> None:
    """Rewrite conv/norm pairs that run in sequence (only ReLUs between them), so that every
    permutation a CompConv leaves is folded into the next conv and the last one writes the
    logical order."""
    perm = None
    convs = [getattr(parent, cname) for cname, _ in pairs]
    for i, (cname, nname) in enumerate(pairs):
        # the last conv writes the logical order, and so does one whose consumer cannot take
        # a permutation of its input channels (a grouped conv: ResNeXt's conv2)
        materialize = i == len(pairs) - 1 or not _takes_permutation(convs[i + 1])
        new, perm = _export_conv(convs[i], getattr(parent, nname), perm, None, materialize,
                                 collapse_above)
        setattr(parent, cname, new)
        setattr(parent, nname, nn.Identity())


def _takes_permutation(conv: nn.Module) -> bool:
    """Whether a permutation of ``conv``'s input channels can be folded into its weights."""
    return isinstance(conv, CompConv) or (isinstance(conv, nn.Conv2d) and conv.groups == 1)


def _block_pairs(block: nn.Module) -> Optional[List[Tuple[str, str]]]:
    """The conv/norm chain of an mmdet ResNet block whose forward only has ReLUs between them,
    or None when the block is something else (plugins, DCN, non-BN norms)."""
    from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
    if isinstance(block, Bottleneck):
        if block.with_plugins or block.with_dcn:
            return None
        pairs = [('conv1', block.norm1_name), ('conv2', block.norm2_name),
                 ('conv3', block.norm3_name)]
    elif isinstance(block, BasicBlock):
        if getattr(block, 'with_plugins', False) or getattr(block, 'with_dcn', False):
            return None
        pairs = [('conv1', block.norm1_name), ('conv2', block.norm2_name)]
    else:
        return None
    ok = all(isinstance(getattr(block, c), (nn.Conv2d, CompConv)) and
             foldable(getattr(block, n), getattr(block, c).out_channels) for c, n in pairs)
    return pairs if ok else None


def _conv_module_ok(cm: nn.Module) -> bool:
    """A ConvModule whose conv and BN this module can rewrite (any activation passes a
    channel permutation through)."""
    from mmcv.cnn import ConvModule
    return (isinstance(cm, ConvModule) and tuple(cm.order) == ('conv', 'norm', 'act')
            and type(cm.conv) in (nn.Conv2d, CompConv) and cm.conv.groups == 1
            and (not cm.with_norm or foldable(cm.norm, cm.conv.out_channels)))


def _stays_split(conv: nn.Module, collapse_above: Optional[float]) -> bool:
    """Whether ``conv`` is a CompConv that the export form keeps split (not dense)."""
    return (isinstance(conv, CompConv) and conv.plan.depth > 0
            and not collapses(conv, collapse_above))


def _export_conv(conv: nn.Module, norm: Optional[nn.Module], in_perm: Optional[torch.Tensor],
                 out_perm: Optional[torch.Tensor], materialize: bool,
                 collapse_above: Optional[float]) -> Tuple[nn.Module, Optional[torch.Tensor]]:
    """(new module, its output order): an ExportCompConv (order its own unless materialised)
    or a dense conv (order ``out_perm``, which it can write at no cost)."""
    if _stays_split(conv, collapse_above):
        new = ExportCompConv(conv, norm, in_perm, materialize)
        return new, new.out_perm
    return dense_export_conv(conv, norm, in_perm, out_perm), out_perm


def _rewrite_conv_module(cm: nn.Module, in_perm, out_perm, materialize, collapse_above):
    norm = cm.norm if cm.with_norm else None
    new, perm = _export_conv(cm.conv, norm, in_perm, out_perm, materialize, collapse_above)
    cm.conv = new
    if norm is not None:
        setattr(cm, cm.norm_name, nn.Identity())
    return perm


def _export_fpn(neck: nn.Module, carry: bool,
                collapse_above: Optional[float]) -> Tuple[bool, Optional[torch.Tensor]]:
    """Rewrite an mmdet FPN (without extra convs) so that its laterals share one order (the
    top-down sums and resizes are per channel) and, when ``carry``, its outputs are left in the
    order of its output convs. Returns (rewritten, output order)."""
    from mmdet.models.necks import FPN
    from ..models.necks import CompConvFPN
    if type(neck) not in (FPN, CompConvFPN) or neck.add_extra_convs:
        return False, None
    laterals, outputs = list(neck.lateral_convs), list(neck.fpn_convs)
    if not all(_conv_module_ok(cm) for cm in laterals + outputs):
        return False, None

    def own_perm(cm, in_perm):  # the order a module imposes (None: it can write any)
        if _stays_split(cm.conv, collapse_above):
            return ExportCompConv(cm.conv, None, in_perm).out_perm
        return None

    def common(perms):
        perms = [p for p in perms if p is not None]
        if any(not torch.equal(p, perms[0]) for p in perms):
            return False, None
        return True, (perms[0] if perms else None)

    ok, lat = common([own_perm(cm, None) for cm in laterals])
    if not ok:
        return False, None
    ok, out = common([own_perm(cm, lat) for cm in outputs])
    if not ok:
        return False, None
    for cm in laterals:
        _rewrite_conv_module(cm, None, lat, False, collapse_above)
    for cm in outputs:
        _rewrite_conv_module(cm, lat, out if carry else None, not carry, collapse_above)
    return True, out if carry else None


def _foldable_rpn_head(head: Optional[nn.Module]) -> bool:
    from mmdet.models.dense_heads import RPNHead
    return (isinstance(head, RPNHead) and type(head.rpn_conv) in (nn.Conv2d, CompConv)
            and _takes_permutation(head.rpn_conv)
            and type(head.rpn_cls) is nn.Conv2d and type(head.rpn_reg) is nn.Conv2d)


def _export_rpn_head(head: nn.Module, in_perm: Optional[torch.Tensor],
                     collapse_above: Optional[float]) -> None:
    """RPNHead.forward_single: rpn_conv, ReLU, then rpn_cls and rpn_reg read the same tensor."""
    head.rpn_conv, perm = _export_conv(head.rpn_conv, None, in_perm, None, False,
                                       collapse_above)
    if perm is not None:
        head.rpn_cls = dense_export_conv(head.rpn_cls, None, perm)
        head.rpn_reg = dense_export_conv(head.rpn_reg, None, perm)


def to_export_form(model: nn.Module,
                   collapse_above: Optional[float] = COLLAPSE_ABOVE) -> nn.Module:
    """Turn a CompConv model (train form, eval mode) into its export form, in place.

    * mmdet ResNet blocks (CompConv ones included): every conv + BN becomes an
      :class:`ExportCompConv` or a BN-folded dense conv (1x1 CompConvs that
      :func:`~mmdet_compconv.cnn.collapses` says cost more split than dense become dense),
      the shuffle permutations folded into the next conv's input channels.
    * mmdet's ``RPNHead`` with one CompConv ``rpn_conv``: its permutation goes into
      ``rpn_cls`` and ``rpn_reg``.
    * Any other CompConv: an :class:`ExportCompConv` that writes the logical order (one
      Gather), or a dense conv when it is of depth 0 or collapses; the BatchNorm that
      consumes it (:func:`~mmdet_compconv.cnn.consuming_norm`: a ConvModule's, an
      ``nn.Sequential``'s next child, a ResNet block's or stem's) is folded into it when it
      can be, as :func:`~mmdet_compconv.switch_to_deploy` does; any other norm is left as
      it is.
    * The remaining plain conv + BN pairs are folded with mmcv's ``fuse_conv_bn``.

    The result is for inference and export only (no parameter requires grad).

    Args:
        model (nn.Module): a model in eval mode, not switched to deploy (and not a bare
            CompConv: the children are replaced in place).
        collapse_above (float, optional): as in :func:`~mmdet_compconv.switch_to_deploy`:
            stride-1 1x1 CompConvs whose MACs exceed this fraction of the dense conv's become
            dense convs; None keeps every CompConv of depth >= 1 split.
            Default: 0.15 (:data:`~mmdet_compconv.cnn.COLLAPSE_ABOVE`).

    Returns:
        nn.Module: the same model.

    Raises:
        TypeError: the model holds a DeployedCompConv (build the export form from the train
            form) or is a bare CompConv.
        ValueError: a model in training mode, or a bad collapse_above.

    Example:
        >>> from mmdet_compconv.models import CompConvResNet
        >>> model = CompConvResNet(depth=18, base_channels=16).eval()
        >>> x = torch.rand(1, 3, 32, 32)
        >>> with torch.no_grad():
        ...     y = model(x)
        ...     z = to_export_form(model)(x)
        >>> all(torch.allclose(a, b, atol=1e-4) for a, b in zip(y, z))
        True
    """
    from mmcv.cnn import fuse_conv_bn
    if isinstance(model, CompConv):
        raise TypeError('to_export_form rewrites children in place; wrap a bare CompConv as '
                        'ExportCompConv(conv, materialize=True)')
    if model.training:
        raise ValueError('to_export_form folds BatchNorm statistics: call model.eval() first')
    check_collapse_above(collapse_above)
    deployed = [n for n, m in model.named_modules() if isinstance(m, DeployedCompConv)]
    if deployed:
        raise TypeError(f'to_export_form needs the train form, but {deployed[0]!r} is a '
                        'DeployedCompConv: build the export form before switch_to_deploy')
    for module in list(model.modules()):
        pairs = _block_pairs(module)
        if pairs is not None:
            _export_chain(module, pairs, collapse_above)
    neck, head = getattr(model, 'neck', None), getattr(model, 'rpn_head', None)
    perm = None
    if isinstance(neck, nn.Module):
        # the neck's output order may travel into the RPN head only when nothing else (a RoI
        # head) reads the neck's outputs
        readers = [n for n, m in model.named_children()
                   if n not in ('backbone', 'neck', 'data_preprocessor')]
        carry = _foldable_rpn_head(head) and readers == ['rpn_head']
        perm = _export_fpn(neck, carry, collapse_above)[1]
    if _foldable_rpn_head(head):
        _export_rpn_head(head, perm, collapse_above)
    # The rest write the logical order, with the norm that consumes them folded in as
    # switch_to_deploy does (fuse_conv_bn below would fold it into an earlier plain conv).
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, CompConv):
                continue
            parent._modules[name] = _export_conv(child, take_consuming_norm(parent, name),
                                                 None, None, True, collapse_above)[0]
    fuse_conv_bn(model)
    return model.requires_grad_(False)

