"""Planning a CompConv model to a budget: per-layer candidates, their latency and error, the
solver's choice, and the planned config."""
from __future__ import annotations

import copy
import json
import os
import os.path as osp
import re
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..cnn import CompConv, count_macs
from ..models import DenseDetector, compconv_like, load_compconv_plan
from ..deployment import model_form, vanilla_twin
from ..deployment.benchmark import calibrated_model, interleaved
from .latency import (LatencyCache, check_runtime, compiled_call, environment, time_layers,
                      torch_call)
from .sensitivity import fit_error, load_images, random_inputs, record_inputs
from .solver import Solution, check_ratio, solve_knapsack

__all__ = ['DEFAULT_LAYERS', 'Option', 'LayerChoices', 'check_budget', 'planning_backbone',
           'candidate_layers', 'fill_latency', 'fill_errors', 'plan_from_choices',
           'fastest_choices', 'calibrate_in_model', 'check_reachable', 'solve_plan',
           'whole_latency', 'part_macs', 'planned_model', 'write_planned_config', 'plan_table',
           'options_report', 'plan_to_budget']

#: The convs planned by default: every conv of every residual block.
DEFAULT_LAYERS = r'layer\d+\.\d+\.conv\d'
#: Backbones a plan can be given to, from the vanilla type to its CompConv twin.
PLANNABLE_BACKBONES = {'ResNet': 'CompConvResNet', 'ResNetV1d': 'CompConvResNetV1d'}


@dataclass
class Option:
    """One candidate of a layer.

    A dataclass; each argument is kept as the attribute of the same name.

    Args:
        label (str): ``'dense'`` or ``'c0=64'``.
        cfg (dict, optional): its plan entry (None: dense).
        depth (int): the CompConv's depth (0: dense).
        prim_channels (int): its C_p (0: dense).
        macs (int): MACs for one image at the planned size.
        ms (float, optional): measured milliseconds of its runtime form, alone.
            Default: None.
        error (float): the fitting error (0 for dense). Default: 0.0.
        model_ms (float, optional): its predicted milliseconds inside the model
            (:func:`calibrate_in_model`); None: ``ms``. Default: None.
    """

    label: str
    cfg: Optional[dict]
    depth: int
    prim_channels: int
    macs: int
    ms: Optional[float] = None
    error: float = 0.0
    model_ms: Optional[float] = None


@dataclass
class LayerChoices:
    """A planned layer and its candidates.

    A dataclass; each argument is kept as the attribute of the same name.

    Args:
        name (str): the module name in the backbone, e.g. ``'layer3.1.conv2'``.
        in_shape (tuple[int, ...]): the input it sees, (1, C, H, W).
        conv (nn.Module): a dense ``nn.Conv2d`` of its geometry (CPU, random weights).
        options (list[Option]): dense first, then distinct CompConvs. Default: [].
    """

    name: str
    in_shape: Tuple[int, ...]
    conv: nn.Module
    options: List[Option] = field(default_factory=list)

    def build(self, option: Option) -> nn.Module:
        """The conv of ``option``, with this layer's geometry, on the CPU.

        Args:
            option (Option): one of :attr:`options`.

        Returns:
            nn.Module: an ``nn.Conv2d`` or a CompConv.
        """
        return self.conv if option.cfg is None else compconv_like(self.conv, option.cfg)


def check_budget(latency_ratio: Optional[float], macs_ratio: Optional[float]) -> Tuple[str, float]:
    """Which budget was given, checked: exactly one ratio in (0, 1].

    Args:
        latency_ratio (float, optional): the planned over the dense latency.
        macs_ratio (float, optional): the planned over the dense MACs.

    Returns:
        tuple[str, float]: ``('latency', r)`` or ``('macs', r)``.

    Raises:
        ValueError: both or neither given, or a ratio outside (0, 1]; the message names the
            values.

    Example:
        >>> check_budget(None, 0.5)
        ('macs', 0.5)
        >>> check_budget(0.7, 0.5)
        Traceback (most recent call last):
        ...
        ValueError: give exactly one of --latency-ratio and --macs-ratio, got --latency-ratio 0.7 and --macs-ratio 0.5
    """
    if (latency_ratio is None) == (macs_ratio is None):
        raise ValueError(f'give exactly one of --latency-ratio and --macs-ratio, got '
                         f'--latency-ratio {latency_ratio} and --macs-ratio {macs_ratio}')
    if latency_ratio is not None:
        return 'latency', check_ratio(latency_ratio, '--latency-ratio')
    return 'macs', check_ratio(macs_ratio, '--macs-ratio')


def planning_backbone(backbone: dict) -> dict:
    """The backbone config a plan is applied to: a vanilla ResNet(V1d) becomes its CompConv
    twin with no CompConv of its own (``compconv_cfg=None``).

    Args:
        backbone (dict): the ``model.backbone`` config.

    Returns:
        dict: a copy, of a type that takes ``compconv_plan``.

    Raises:
        ValueError: a backbone that takes no plan.

    Example:
        >>> planning_backbone(dict(type='ResNet', depth=18))
        {'type': 'CompConvResNet', 'depth': 18, 'compconv_cfg': None}
    """
    cfg = copy.deepcopy(dict(backbone))
    kind = str(cfg.get('type', '')).split('.')[-1]
    if kind in PLANNABLE_BACKBONES:
        cfg.update(type=PLANNABLE_BACKBONES[kind], compconv_cfg=None)
    elif kind not in PLANNABLE_BACKBONES.values():
        raise ValueError(f'the backbone {cfg.get("type")!r} takes no compconv_plan: plan a '
                         f'config whose backbone is one of {sorted(PLANNABLE_BACKBONES)} or '
                         f'their CompConv twins')
    return cfg


def _base_compconv_cfg(backbone: dict) -> dict:
    """The options the candidates share (the config's compconv_cfg, less c0 and depth)."""
    base = backbone.get('compconv_cfg') or {}
    if str(base.get('type', 'CompConv')).split('.')[-1] != 'CompConv':
        base = {}
    base = {k: v for k, v in dict(base).items() if k not in ('c0', 'depth')}
    base['type'] = 'CompConv'
    return base


def candidate_layers(backbone: dict, size: Tuple[int, int], c0s: Sequence[float],
                     pattern: str = DEFAULT_LAYERS) -> List[LayerChoices]:
    """The layers a plan chooses for, with their dense and CompConv candidates.

    Args:
        backbone (dict): the backbone config (see :func:`planning_backbone`).
        size (tuple[int, int]): the input (H, W) planned for.
        c0s (Sequence[float]): the C_0 of the CompConv candidates; those giving the same
            structure (depth, C_p) in a layer are one candidate (the first C_0).
        pattern (str): a regular expression the layer names must match in full.
            Default: :data:`DEFAULT_LAYERS` (every conv of every residual block).

    Returns:
        list[LayerChoices]: in module order.

    Raises:
        ValueError: no plannable conv matches ``pattern``.
    """
    from mmdet.registry import MODELS
    cfg = planning_backbone(backbone)
    with torch.device('meta'):
        probe = MODELS.build(cfg)
    names = [n for n in probe.plannable_convs() if re.fullmatch(pattern, n)]
    if not names:
        raise ValueError(f'--layers {pattern!r} matches none of the backbone\'s convs '
                         f'(e.g. {list(probe.plannable_convs())[:4]})')
    own = load_compconv_plan(cfg.get('compconv_plan')) or {}
    with torch.device('meta'):
        dense = MODELS.build(dict(cfg, compconv_plan=dict(own, **{n: None for n in names})))
    dense.eval()
    shapes: Dict[str, Tuple[tuple, tuple]] = {}
    hooks = [dense.get_submodule(n).register_forward_hook(
        lambda m, a, o, n=n: shapes.__setitem__(n, (tuple(a[0].shape), tuple(o.shape[-2:]))))
        for n in names]
    with torch.no_grad():
        dense(torch.empty(1, 3, *size, device='meta'))
    for h in hooks:
        h.remove()
    base = _base_compconv_cfg(cfg)
    layers = []
    for name in names:
        m = dense.get_submodule(name)
        conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         m.dilation, bias=False)
        in_shape, (h, w) = shapes[name]
        options = [Option('dense', None, 0, 0, h * w * m.in_channels * m.out_channels *
                          m.kernel_size[0] * m.kernel_size[1])]
        seen = set()
        for c0 in c0s:
            option_cfg = dict(base, c0=c0)
            with torch.device('meta'):
                cc = compconv_like(conv, option_cfg)
            structure = (cc.depth, cc.prim_channels)
            if cc.depth == 0 or structure in seen:
                continue
            seen.add(structure)
            options.append(Option(f'c0={c0:g}', option_cfg, cc.depth, cc.prim_channels,
                                  h * w * cc.plan.macs_per_pixel(cc.kernel_size[0],
                                                                 cc.tail_type)))
        layers.append(LayerChoices(name, in_shape, conv, options))
    return layers


def fill_latency(layers: Sequence[LayerChoices], runtime: str, precision: str, threads: int,
                 cache: LatencyCache, collapse_above: Optional[float], warmup: int = 2,
                 repeats: int = 7, progress: Optional[Callable[[int], None]] = None) -> None:
    """Set :attr:`Option.ms` of every candidate (:func:`~.latency.time_layers`).

    Args:
        layers (Sequence[LayerChoices]): the layers.
        runtime (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'fp32'`` or ``'bf16'``.
        threads (int): the runtime's threads.
        cache (LatencyCache): the cache of this environment.
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`.
        warmup (int): untimed rounds. Default: 2.
        repeats (int): timed rounds. Default: 7.
        progress (Callable[[int], None], optional): a progress bar's ``update``.
            Default: None.
    """
    convs = {f'{layer.name}|{o.label}': (layer.build(o), layer.in_shape)
             for layer in layers for o in layer.options}
    ms = time_layers(convs, runtime, precision, threads, cache, collapse_above, warmup, repeats,
                     progress)
    for layer in layers:
        for o in layer.options:
            o.ms = ms[f'{layer.name}|{o.label}']


def fill_errors(layers: Sequence[LayerChoices], teacher: Optional[nn.Module] = None,
                images: Optional[torch.Tensor] = None, steps: int = 100, crop: int = 32,
                per_image: int = 4, progress: Optional[Callable[[int], None]] = None) -> None:
    """Set :attr:`Option.error` of every CompConv candidate by a short fit
    (:func:`~.sensitivity.fit_error`).

    With ``teacher`` (the trained vanilla backbone) and ``images``, each candidate is fitted
    to the teacher's layer on crops of the inputs the teacher computes from the images.
    Without, the proxy: the fit is to this layer's randomly initialised dense conv on
    Gaussian inputs (a measure of the candidate's capacity, not of what the trained layer
    needs; weaker).

    Args:
        layers (Sequence[LayerChoices]): the layers.
        teacher (nn.Module, optional): the vanilla backbone with trained weights.
            Default: None (the proxy).
        images (torch.Tensor, optional): (N, 3, H, W) normalised images, N >= 2, with
            ``teacher``. Default: None.
        steps (int): optimizer steps per fit. Default: 100.
        crop (int): the side of the input crops (at most the layer's input size).
            Default: 32.
        per_image (int): crops per image and layer (the proxy draws ``8 * per_image``
            Gaussian inputs). Default: 4.
        progress (Callable[[int], None], optional): a progress bar's ``update``.
            Default: None.
    """
    names = [layer.name for layer in layers]
    inputs = record_inputs(teacher, images, names, crop, per_image) if teacher is not None \
        else None
    for i, layer in enumerate(layers):
        if teacher is not None:
            target, x = teacher.get_submodule(layer.name), inputs[layer.name]
        else:
            torch.manual_seed(i)
            target = copy.deepcopy(layer.conv)
            nn.init.kaiming_normal_(target.weight, mode='fan_out', nonlinearity='relu')
            side = min(crop, *layer.in_shape[-2:])  # no larger than the layer's own maps
            x = random_inputs(layer.conv.in_channels, 8 * per_image, side, seed=i)
        for o in layer.options:
            if o.cfg is not None:
                o.error = fit_error(target, o.cfg, x, steps)
            if progress:
                progress(1)


def plan_from_choices(layers: Sequence[LayerChoices], choices: Sequence[int]) -> dict:
    """The ``compconv_plan`` of one option index per layer (every planned layer named).

    Args:
        layers (Sequence[LayerChoices]): the layers.
        choices (Sequence[int]): an option index per layer.

    Returns:
        dict[str, dict | None]: layer name -> None or the CompConv config.
    """
    return {layer.name: copy.deepcopy(layer.options[j].cfg) for layer, j in zip(layers, choices)}


def _costs(layers: Sequence[LayerChoices], budget: str) -> List[List[float]]:
    if budget == 'latency':
        return [[float(o.ms if o.model_ms is None else o.model_ms) for o in layer.options]
                for layer in layers]
    return [[float(o.macs) for o in layer.options] for layer in layers]


def fastest_choices(layers: Sequence[LayerChoices]) -> List[int]:
    """The option of each layer with the least measured latency (alone).

    Args:
        layers (Sequence[LayerChoices]): the layers, with ``ms`` filled in.

    Returns:
        list[int]: an option index per layer (0, dense, on ties).
    """
    return [min(range(len(lay.options)), key=lambda j: (lay.options[j].ms, j)) for lay in layers]


def calibrate_in_model(layers: Sequence[LayerChoices], dense_ms: float,
                       fastest_ms: float) -> float:
    """Scale the per-layer savings measured alone to what they save inside the model.

    A layer timed alone pays for what the model amortises (its input and output crossing
    the runtime's boundary, layout reorders, cold caches), so the savings measured alone
    overstate, or understate, what the same choice saves in the model. Two whole-model
    measurements fix the scale: every planned layer dense (``dense_ms``) and every layer at
    its fastest candidate (``fastest_ms``, :func:`fastest_choices`). With ``k = (dense_ms -
    fastest_ms) / (sum of the fastest candidates' savings alone)``, each option's
    in-model time is ``dense + k * (ms - dense)`` (:attr:`Option.model_ms`), so the two
    measured plans are predicted exactly and the others by their share of the savings.

    Args:
        layers (Sequence[LayerChoices]): the layers, with ``ms`` filled in; ``model_ms``
            is set.
        dense_ms (float): the part's measured latency, every planned layer dense.
        fastest_ms (float): its measured latency, every layer at its fastest candidate.

    Returns:
        float: ``k`` (0 when no candidate is faster alone, or when the fastest choice is
        not faster in the model: then every option costs its dense time).

    Example:
        >>> lay = LayerChoices('l', (1, 8, 4, 4), nn.Conv2d(8, 8, 1), [
        ...     Option('dense', None, 0, 0, 64, ms=4.0), Option('c0=2', {}, 1, 2, 16, ms=2.0)])
        >>> calibrate_in_model([lay], dense_ms=10.0, fastest_ms=9.0)
        0.5
        >>> lay.options[1].model_ms
        3.0
    """
    fastest = fastest_choices(layers)
    saved_alone = sum(lay.options[0].ms - lay.options[j].ms for lay, j in zip(layers, fastest))
    k = (dense_ms - fastest_ms) / saved_alone if saved_alone > 0 else 0.0
    k = max(k, 0.0)
    for lay in layers:
        dense = lay.options[0].ms
        for o in lay.options:
            o.model_ms = dense + k * (o.ms - dense)
    return k


def check_reachable(layers: Sequence[LayerChoices], budget: str, ratio: float,
                    baseline: float) -> float:
    """Raise unless some choice predicts a cost within ``ratio`` of ``baseline``.

    Args:
        layers (Sequence[LayerChoices]): the layers, with ``ms`` (latency) filled in.
        budget (str): ``'latency'`` or ``'macs'``.
        ratio (float): the budget ratio.
        baseline (float): the part's cost with every planned layer dense.

    Returns:
        float: the lowest reachable ratio (every layer at its cheapest candidate).

    Raises:
        ValueError: ``ratio`` is below it; the message names both.
    """
    costs = _costs(layers, budget)
    lowest = (baseline - sum(c[0] - min(c) for c in costs)) / baseline
    if lowest > ratio:
        flag = '--latency-ratio' if budget == 'latency' else '--macs-ratio'
        raise ValueError(f'{flag} {ratio:g} is unreachable: the lowest predicted ratio of '
                         f'these candidates is {lowest:.3f} (every layer at its cheapest)')
    return lowest


def solve_plan(layers: Sequence[LayerChoices], budget: str, ratio: float, baseline: float,
               bins: int = 4000) -> Tuple[Solution, float]:
    """Choose one option per layer: least total error with the part's predicted cost
    within ``ratio`` of ``baseline``.

    The predicted cost of a choice is ``baseline + sum(option - dense)`` over the layers,
    in milliseconds (``budget='latency'``, from :attr:`Option.ms`) or MACs
    (``budget='macs'``).

    Args:
        layers (Sequence[LayerChoices]): the layers, with ``ms`` (latency) and ``error``
            filled in.
        budget (str): ``'latency'`` or ``'macs'``.
        ratio (float): the largest planned / baseline cost, in (0, 1].
        baseline (float): the cost of the part with every planned layer dense.
        bins (int): the solver's grid (see :func:`solve_knapsack`). Default: 4000.

    Returns:
        tuple[Solution, float]: the solution, and its predicted cost of the whole part.

    Raises:
        ValueError: an unreachable ratio (:func:`check_reachable`).
    """
    check_reachable(layers, budget, ratio, baseline)
    costs = _costs(layers, budget)
    errors = [[o.error for o in layer.options] for layer in layers]
    fixed = baseline - sum(c[0] for c in costs)
    solution = solve_knapsack(costs, errors, ratio * baseline - fixed, bins)
    return solution, fixed + solution.cost


def whole_latency(cfg, model_cfgs: Dict[str, dict], part: str, size: Tuple[int, int],
                  runtime: str, precision: str, threads: int, collapse_above: Optional[float],
                  warmup: int = 2, repeats: int = 7) -> Dict[str, float]:
    """Milliseconds of a part of each detector, in the form the runtime runs, interleaved.

    Each model has random weights with calibrated BatchNorm statistics
    (:func:`~mmdet_compconv.deployment.benchmark.calibrated_model`); torch runs the deploy
    form in channels_last, ONNX Runtime and OpenVINO the export form.

    Args:
        cfg (mmengine.Config): the config (its data settings build the models).
        model_cfgs (dict[str, dict]): name -> ``model`` config.
        part (str): ``'backbone'``, ``'backbone+neck'`` or ``'tensor'``.
        size (tuple[int, int]): the input (H, W).
        runtime (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'fp32'`` or ``'bf16'``.
        threads (int): the runtime's threads.
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`.
        warmup (int): untimed rounds. Default: 2.
        repeats (int): timed rounds. Default: 7.

    Returns:
        dict[str, float]: name -> median milliseconds.
    """
    if runtime == 'torch':
        torch.set_num_threads(threads)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model_cfg) in enumerate(model_cfgs.items()):
            model = calibrated_model(cfg, model_cfg)
            form = model_form(model, 'deploy' if runtime == 'torch' else 'export',
                              collapse_above)
            net = DenseDetector(form, part).eval()
            fns[name] = (torch_call(net, x, precision) if runtime == 'torch' else
                         compiled_call(net, x, runtime, precision, threads,
                                       osp.join(tmp, f'model{i}.onnx')))
        return {k: 1000 * v for k, v in interleaved(fns, warmup, repeats).items()}


def part_macs(model_cfg: dict, part: str, size: Tuple[int, int]) -> int:
    """MACs of one image through a part of a detector (meta device, no arithmetic).

    Args:
        model_cfg (dict): the detector's config.
        part (str): ``'backbone'``, ``'backbone+neck'`` or ``'tensor'``.
        size (tuple[int, int]): the input (H, W).

    Returns:
        int: :func:`~mmdet_compconv.cnn.count_macs`.
    """
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    with torch.device('meta'):
        detector = MODELS.build(ConfigDict(model_cfg))  # mmdet reads train_cfg.rpn
    detector.eval()
    return count_macs(DenseDetector(detector, part), torch.empty(1, 3, *size, device='meta'))


def planned_model(model_cfg: dict, plan: dict) -> dict:
    """``model_cfg`` with ``plan`` given to its backbone (see :func:`planning_backbone`),
    over the backbone's own ``compconv_plan`` if it has one.

    Args:
        model_cfg (dict): the detector's config.
        plan (dict): the entries of the backbone's ``compconv_plan`` to set.

    Returns:
        dict: a copy.
    """
    out = copy.deepcopy(dict(model_cfg))
    backbone = planning_backbone(out['backbone'])
    merged = dict(load_compconv_plan(backbone.get('compconv_plan')) or {}, **plan)
    out['backbone'] = dict(backbone, compconv_plan=merged)
    return out


def write_planned_config(config: str, plan: dict, out_dir: str, stem: str,
                         backbone: dict) -> Tuple[str, str]:
    """Write ``{stem}.json`` (the plan) and ``{stem}.py`` (a config inheriting ``config``
    whose ``model.backbone.compconv_plan`` reads that file) into ``out_dir``.

    Args:
        config (str): the planned config file.
        plan (dict): the ``compconv_plan``.
        out_dir (str): the folder (created).
        stem (str): the file names' stem.
        backbone (dict): the config's ``model.backbone`` (a vanilla ResNet gets its
            CompConv type in the new config).

    Returns:
        tuple[str, str]: the paths of the plan and the config.
    """
    os.makedirs(out_dir, exist_ok=True)
    plan_path = osp.join(out_dir, f'{stem}.json')
    with open(plan_path, 'w') as f:
        json.dump(plan, f, indent=1)
    base = osp.relpath(osp.abspath(config), osp.abspath(out_dir))
    extra = ''
    planning = planning_backbone(backbone)
    if planning['type'] != backbone.get('type'):
        extra = f"type='{planning['type']}', compconv_cfg=None, "
    cfg_path = osp.join(out_dir, f'{stem}.py')
    with open(cfg_path, 'w') as f:
        f.write(f"# Written by tools/analysis_tools/plan_compconv.py: {osp.basename(config)} "
                f"with a per-layer\n# CompConv plan ({stem}.json, next to this file).\n"
                f"_base_ = '{base}'\n\n"
                f"model = dict(backbone=dict({extra}compconv_plan='{{{{fileDirname}}}}/"
                f"{stem}.json'))\n")
    return plan_path, cfg_path


def plan_table(layers: Sequence[LayerChoices], choices: Sequence[int], budget: str) -> str:
    """A Markdown table: layer, choice, depth / C_p, saving (ms or MACs) and error.

    Args:
        layers (Sequence[LayerChoices]): the layers.
        choices (Sequence[int]): the chosen option per layer.
        budget (str): ``'latency'`` (ms saved in the model: :attr:`Option.model_ms` once
            calibrated) or ``'macs'`` (MACs saved).

    Returns:
        str: the table, with a total row.
    """
    saved_head = 'ms saved' if budget == 'latency' else 'MMACs saved'
    lines = [f'| layer | choice | d / C_p | {saved_head} | error |', '|---|---|---|---|---|']
    total_saved = total_error = 0.0
    for layer, j in zip(layers, choices):
        o, dense = layer.options[j], layer.options[0]
        if budget == 'latency':  # in the model, once calibrated (calibrate_in_model)
            saved = ((dense.ms if dense.model_ms is None else dense.model_ms) -
                     (o.ms if o.model_ms is None else o.model_ms))
        else:
            saved = (dense.macs - o.macs) / 1e6
        total_saved += saved
        total_error += o.error
        shape = f'{o.depth} / {o.prim_channels}' if o.depth else '-'
        lines.append(f'| {layer.name} | {o.label} | {shape} | {saved:.3f} | {o.error:.4f} |')
    lines.append(f'| total | | | {total_saved:.3f} | {total_error:.4f} |')
    return '\n'.join(lines)


def options_report(layers: Sequence[LayerChoices]) -> List[dict]:
    """Every layer's candidates as JSON-ready dicts (for the report file).

    Args:
        layers (Sequence[LayerChoices]): the layers.

    Returns:
        list[dict]: ``{'name', 'in_shape', 'options': [...]}`` per layer.
    """
    return [dict(name=layer.name, in_shape=list(layer.in_shape),
                 options=[asdict(o) for o in layer.options]) for layer in layers]


def _load_teacher(backbone: dict, checkpoint: str) -> nn.Module:
    from mmdet.registry import MODELS
    from ..models.distillers import load_teacher_checkpoint
    cfg = vanilla_twin(planning_backbone(backbone))
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    teacher = MODELS.build(cfg)
    load_teacher_checkpoint(teacher, checkpoint)
    teacher.eval()  # (mmdet's ResNet.train returns None: no chaining)
    return teacher


def plan_to_budget(config: str,
                   out_dir: str,
                   runtime: str = 'torch',
                   precision: str = 'fp32',
                   size: Tuple[int, int] = (224, 224),
                   threads: int = 1,
                   latency_ratio: Optional[float] = None,
                   macs_ratio: Optional[float] = None,
                   teacher_ckpt: Optional[str] = None,
                   images: Optional[str] = None,
                   c0s: Sequence[float] = (64, 128, 256),
                   layers: str = DEFAULT_LAYERS,
                   part: str = 'backbone',
                   cache: Optional[str] = None,
                   collapse_above: Optional[float] = 0.15,
                   fit_steps: int = 100,
                   num_images: int = 8,
                   warmup: int = 2,
                   repeats: int = 7,
                   bins: int = 4000,
                   log: Callable[[str], None] = print) -> dict:
    """Plan ``config``'s backbone to a latency or MAC budget; write the plan and a config.

    Steps: the candidates of each layer (:func:`candidate_layers`); each candidate's latency
    alone (:func:`fill_latency`, with a cache; latency budgets only); the part's latency with
    every planned layer dense (the baseline) and with every layer at its fastest candidate,
    measured beside each other, which scale the savings measured alone to the model
    (:func:`calibrate_in_model`); each candidate's error
    (:func:`fill_errors`); the solver (:func:`solve_plan`); the table; ``{stem}.json``,
    ``{stem}.py`` and ``{stem}_report.json`` in ``out_dir``; then the planned part's latency,
    measured once beside the baseline, against the prediction.

    Args:
        config (str): a detector config whose backbone is a (CompConv)ResNet(V1d).
        out_dir (str): where the plan, the config and the report are written.
        runtime (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``. Default: 'torch'.
        precision (str): ``'fp32'`` or ``'bf16'`` (not ONNX Runtime). Default: 'fp32'.
        size (tuple[int, int]): the input (H, W) planned for. Default: (224, 224).
        threads (int): the runtime's threads. Default: 1.
        latency_ratio (float, optional): the budget: planned / dense latency of ``part``.
            Default: None.
        macs_ratio (float, optional): the budget: planned / dense MACs of ``part`` (give
            exactly one of the two). Default: None.
        teacher_ckpt (str, optional): the vanilla model's weights (a detector or backbone
            checkpoint) for the errors; None: the proxy (see :func:`fill_errors`).
            Default: None.
        images (str, optional): a folder of unlabeled images, with ``teacher_ckpt``.
            Default: None.
        c0s (Sequence[float]): the C_0 of the CompConv candidates. Default: (64, 128, 256).
        layers (str): the regular expression of the planned layers' names.
            Default: :data:`DEFAULT_LAYERS`.
        part (str): the part whose cost the budget bounds: ``'backbone'``,
            ``'backbone+neck'`` or ``'tensor'``. Default: 'backbone'.
        cache (str, optional): the latency cache file (JSON); None: no cache. Default: None.
        collapse_above (float, optional): see :func:`~mmdet_compconv.switch_to_deploy`.
            Default: 0.15.
        fit_steps (int): optimizer steps per error fit. Default: 100.
        num_images (int): images read from ``images``. Default: 8.
        warmup (int): untimed rounds of each timing. Default: 2.
        repeats (int): timed rounds of each timing. Default: 7.
        bins (int): the solver's grid. Default: 4000.
        log (Callable[[str], None]): where messages go. Default: print.

    Returns:
        dict: the report written to ``{stem}_report.json``.

    Raises:
        ValueError: a bad or unreachable budget, a runtime / precision not available,
            ``teacher_ckpt`` without ``images`` (or the reverse), or a config that cannot
            be planned; the message names the value.
    """
    from mmengine.config import Config
    from tqdm import tqdm
    from ..deployment.benchmark import cpu_name
    budget, ratio = check_budget(latency_ratio, macs_ratio)
    check_runtime(runtime, precision)
    if (teacher_ckpt is None) != (images is None):
        raise ValueError(f'--teacher-ckpt and --images go together, got --teacher-ckpt '
                         f'{teacher_ckpt} and --images {images}')
    cfg = Config.fromfile(config)
    model_cfg = cfg.model.to_dict()
    if 'backbone' not in model_cfg:
        raise ValueError(f'{config} has no model.backbone: plan the detector config (for a '
                         f'distillation config, the config its student names)')
    backbone = model_cfg['backbone']
    choices = candidate_layers(backbone, size, c0s, layers)
    dense_model = planned_model(model_cfg, plan_from_choices(choices, [0] * len(choices)))
    env = environment(runtime, precision, threads)
    log(f'# planning {osp.basename(config)} at {size[0]}x{size[1]}: {len(choices)} layers, '
        f'{sum(len(c.options) for c in choices)} candidates (c0 '
        f'{", ".join(f"{c:g}" for c in c0s)}); {runtime} '
        f'{env["version"]}, {precision}, {threads} threads, {cpu_name()}; budget: {budget} '
        f'ratio {ratio:g} of the {part}')

    k = fastest_ms = None
    if budget == 'latency':
        lat_cache = LatencyCache(cache, env)
        with tqdm(total=sum(len(c.options) for c in choices), desc='latency', unit='layer',
                  disable=None) as bar:
            fill_latency(choices, runtime, precision, threads, lat_cache, collapse_above,
                         warmup, repeats, bar.update)
        lat_cache.save()
        log(f'latency cache {cache}: {lat_cache.hits} hits, {lat_cache.misses} measured'
            if cache else f'latency: {lat_cache.misses} measured (no cache)')
        dense_sum = sum(c.options[0].ms for c in choices)
        log(f'the planned layers take {dense_sum:.3f} ms as dense convs, measured alone')
        fastest_model = planned_model(model_cfg, plan_from_choices(choices,
                                                                   fastest_choices(choices)))
        both = whole_latency(cfg, {'dense': dense_model, 'fastest': fastest_model}, part,
                             size, runtime, precision, threads, collapse_above, warmup, repeats)
        baseline, fastest_ms = both['dense'], both['fastest']
        k = calibrate_in_model(choices, baseline, fastest_ms)
        saved_alone = sum(c.options[0].ms - min(o.ms for o in c.options) for c in choices)
        log(f'{part}, measured beside each other: every planned layer dense {baseline:.3f} ms '
            f'(the baseline), every layer at its fastest candidate {fastest_ms:.3f} ms; '
            f'those candidates save {saved_alone:.3f} ms measured alone, so each saving '
            f'measured alone counts k = {k:.3f} times in the model')
        if dense_sum >= baseline:
            log(f'note: the planned layers alone take longer than the whole {part} '
                f'({dense_sum:.3f} >= {baseline:.3f} ms): what a layer alone pays at the '
                f'runtime\'s boundary is large here; k carries the savings over')
    else:
        baseline = float(part_macs(dense_model, part, size))
    lowest = check_reachable(choices, budget, ratio, baseline)
    log(f'lowest reachable {budget} ratio: {lowest:.3f}')

    teacher = image_batch = None
    if teacher_ckpt is not None:
        teacher = _load_teacher(backbone, teacher_ckpt)
        pre = model_cfg.get('data_preprocessor', {})
        image_batch = load_images(images, size, num_images, pre.get('mean', [0.0] * 3),
                                  pre.get('std', [1.0] * 3), pre.get('bgr_to_rgb', False))
        how = (f'error: ChannelNormMSE (after a free per-channel affine) of each candidate '
               f'fitted for {fit_steps} steps to the teacher layer on crops of '
               f'{len(image_batch)} images from {images}')
    else:
        how = (f'error: PROXY (no --teacher-ckpt): each candidate fitted for {fit_steps} steps '
               f'to the randomly initialised dense layer on Gaussian inputs; it measures the '
               f'candidate\'s capacity, not what the trained layer needs, and predicts '
               f'accuracy worse than a teacher')
    log(how)
    with tqdm(total=sum(len(c.options) for c in choices), desc='error', unit='candidate',
              disable=None) as bar:
        fill_errors(choices, teacher, image_batch, fit_steps, progress=bar.update)

    solution, predicted = solve_plan(choices, budget, ratio, baseline, bins)
    plan = planned_model(model_cfg, plan_from_choices(choices, solution.choices))[
        'backbone']['compconv_plan']  # over the config's own plan, if any
    log(plan_table(choices, solution.choices, budget))
    stem = (f'{osp.splitext(osp.basename(config))[0]}_plan-{runtime}-{precision}-'
            f'{size[0]}x{size[1]}-{budget}{ratio:g}')
    plan_path, cfg_path = write_planned_config(config, plan, out_dir, stem, backbone)
    log(f'wrote {plan_path} and {cfg_path}')

    measured = whole_latency(cfg, {'dense': dense_model,
                                   'planned': planned_model(model_cfg, plan)},
                             part, size, runtime, precision, threads, collapse_above, warmup,
                             repeats)
    report = dict(config=config, environment=env, size=list(size), part=part, budget=budget,
                  ratio=ratio, error_source='teacher' if teacher is not None else 'proxy',
                  plan=plan, total_error=solution.error, measured_ms=measured,
                  measured_ratio=measured['planned'] / measured['dense'],
                  layers=options_report(choices))
    if budget == 'latency':
        # The machine's speed drifts between the two measurements (a shared CPU, turbo):
        # the ratio to the dense model timed beside it is what compares, as in the benchmarks.
        report.update(baseline_ms=baseline, fastest_ms=fastest_ms, in_model_scale=k,
                      predicted_ms=predicted,
                      predicted_ratio=predicted / baseline,
                      relative_error=(predicted / baseline - report['measured_ratio']) /
                      report['measured_ratio'],
                      relative_error_ms=(predicted - measured['planned']) / measured['planned'])
        log(f'{part} latency: predicted {predicted:.3f} ms ({predicted / baseline:.3f} of the '
            f'dense {baseline:.3f} ms), measured {measured["planned"]:.3f} ms '
            f'({report["measured_ratio"]:.3f} of the dense {measured["dense"]:.3f} ms measured '
            f'beside it); relative error of the ratio {report["relative_error"]:+.1%} (of the '
            f'milliseconds {report["relative_error_ms"]:+.1%}, which includes the drift of the '
            f'machine between the two measurements)')
    else:
        report.update(baseline_macs=baseline, predicted_macs=predicted,
                      macs_ratio_planned=predicted / baseline)
        log(f'{part} MACs: {predicted / 1e9:.3f} G ({predicted / baseline:.3f} of '
            f'{baseline / 1e9:.3f} G); latency measured {measured["planned"]:.3f} ms '
            f'({report["measured_ratio"]:.3f} of the dense {measured["dense"]:.3f} ms)')
    with open(osp.join(out_dir, f'{stem}_report.json'), 'w') as f:
        json.dump(report, f, indent=1)
    return report
