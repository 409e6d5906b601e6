"""The model zoo: metafile entries in mmdet's schema and published checkpoints.

A metafile (``configs/<dir>/metafile.yml``, imported by the root ``model-index.yml``) lists
``Collections`` and ``Models`` as mmdet 3.3's do. This module computes what a config decides
(:func:`model_metadata`: FLOPs, Parameters, Epochs, Training Data) and what a trained
checkpoint adds (:func:`publish_checkpoint`: the published file;
:func:`results_from_metrics`: ``Results``), and merges them into an entry
(:func:`update_entry`) without touching what it does not compute (Training Resources,
inference time). ``tools/model_converters/publish_model.py`` and ``metafile.py`` are its
command lines.

FLOPs are multiply-accumulates (torch's ``FlopCounterMode`` / 2, as the OpenMMLab counters
report "FLOPs") of one image at the config's test size, padded as the data preprocessor pads
it, through the backbone, the neck and the dense head (RetinaNet's head; the RPN head of a
two-stage detector, whose RoI head costs what its proposals make it cost). Parameters counts
every parameter of the detector.
"""
from __future__ import annotations

import datetime
import math
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import torch
import yaml

from ..checkpoint import safe_load, sha256_of
from ..cnn import count_macs
from ..datasets.shapes import CLASSES as SHAPES_CLASSES
from ..models import DenseDetector

__all__ = ['inference_size', 'model_complexity', 'model_metadata', 'check_state_fits',
           'publish_checkpoint', 'published_entry',
           'results_from_metrics', 'update_entry', 'load_metafile', 'header_of', 'dump_metafile']


def inference_size(cfg) -> Tuple[int, int]:
    """(H, W) the model sees at test time: the test ``Resize`` scale, padded.

    ``scale=(1333, 800)`` bounds the long and the short side; the figure is that bounding
    box, padded to the data preprocessor's ``pad_size_divisor``.

    Args:
        cfg (mmengine.Config): a config with ``test_dataloader`` (whose dataset's
            ``pipeline``, or else ``test_pipeline``, is read) and ``model``.

    Returns:
        tuple[int, int]: (H, W): the short and the long side of the first test ``Resize``
        scale (a single number: both), each rounded up to a multiple of
        ``pad_size_divisor``.

    Raises:
        ValueError: the test pipeline has no ``Resize`` with a ``scale``.

    Example:
        >>> from mmengine.config import Config
        >>> inference_size(Config.fromfile('configs/shapes/retinanet_r18_fpn_shapes.py'))
        (256, 256)
        >>> cfg = Config.fromfile('configs/compconv/retinanet_compconv128-r50_fpn_1x_coco.py')
        >>> inference_size(cfg)
        (800, 1344)
    """
    pipeline = cfg.test_dataloader.dataset.get('pipeline', cfg.get('test_pipeline', []))
    scales = [t['scale'] for t in pipeline if t['type'] == 'Resize' and 'scale' in t]
    if not scales:
        raise ValueError(f'no Resize with a scale in the test pipeline: {pipeline}')
    scale = scales[0] if isinstance(scales[0], (tuple, list)) else (scales[0], scales[0])
    h, w = min(scale), max(scale)
    pad = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    return math.ceil(h / pad) * pad, math.ceil(w / pad) * pad


def model_complexity(cfg) -> Dict[str, int]:
    """Parameters and MACs (backbone + neck + dense head) of a config's detector.

    Built on the meta device: no memory, no arithmetic, a second even for R-101. The MACs
    are :func:`~mmdet_compconv.cnn.count_macs` of one image of :func:`inference_size`
    through the ``'tensor'`` part of :class:`~mmdet_compconv.models.DenseDetector`.

    Args:
        cfg (mmengine.Config): a config with ``model``, ``test_dataloader`` (or
            ``test_pipeline``).

    Returns:
        dict[str, int]: ``{'FLOPs': MACs, 'Parameters': every parameter of the detector}``.

    Example:
        >>> from mmengine.config import Config
        >>> c = model_complexity(Config.fromfile('configs/shapes/retinanet_r18_fpn_shapes.py'))
        >>> c['Parameters'], c['FLOPs'] > 0
        (11871441, True)
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with torch.device('meta'):
        detector = MODELS.build(cfg.model)
    detector.eval()
    h, w = inference_size(cfg)
    macs = count_macs(DenseDetector(detector, 'tensor'), torch.empty(1, 3, h, w, device='meta'))
    return {'FLOPs': macs, 'Parameters': sum(p.numel() for p in detector.parameters())}


def _training_data(cfg) -> str:
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # dataset wrappers
        dataset = dataset.dataset
    classes = tuple(dataset.get('metainfo', {}).get('classes', ()))
    if classes == SHAPES_CLASSES:
        return 'shapes'
    if dataset.type == 'CocoDataset' and not classes:
        return 'COCO'
    raise ValueError(f'cannot name the training data of {dataset.type} with classes {classes}')


def model_metadata(cfg) -> Dict[str, Any]:
    """The ``Metadata`` a config decides: FLOPs, Parameters, Epochs (or Iterations), Training Data.

    Args:
        cfg (mmengine.Config): a full detector config (``model``, ``test_dataloader`` or
            ``test_pipeline``, ``train_dataloader``, ``train_cfg``).

    Returns:
        dict[str, Any]: :func:`model_complexity`'s keys, ``Epochs`` (``train_cfg.max_epochs``)
        or ``Iterations`` (``train_cfg.max_iters``), and ``Training Data`` (``'shapes'`` or
        ``'COCO'``).

    Raises:
        ValueError: the training data is neither the shapes dataset nor COCO.

    Example:
        >>> from mmengine.config import Config
        >>> meta = model_metadata(Config.fromfile('configs/shapes/retinanet_r18_fpn_shapes.py'))
        >>> meta['Epochs'], meta['Training Data']
        (20, 'shapes')
    """
    meta = model_complexity(cfg)
    if 'max_epochs' in cfg.train_cfg:
        meta['Epochs'] = int(cfg.train_cfg.max_epochs)
    else:
        meta['Iterations'] = int(cfg.train_cfg.max_iters)
    meta['Training Data'] = _training_data(cfg)
    return meta


def check_state_fits(cfg, state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Raise unless ``state_dict`` is exactly the state of the model ``cfg`` builds.

    The model is built on the meta device (no memory, a second even for R-101) and the state
    loaded with mmengine's ``load_state_dict(strict=True)``, whose report names the missing,
    unexpected and mismatched keys.

    Args:
        cfg (Config): the config.
        state_dict (dict): the weights.
        source (str): where they come from, for the message.

    Raises:
        ValueError: they do not fit; the message names the config, the source and the keys.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_state_dict
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    try:
        load_state_dict(model, state_dict, strict=True)
    except RuntimeError as e:
        raise ValueError(f'{source} does not fit the model of {cfg.filename}: {e}') from e


def publish_checkpoint(in_file: str, out_dir: str, stem: str, date: Optional[str] = None,
                       cfg=None) -> str:
    """Write ``{out_dir}/{stem}_{date}-{sha256[:8]}.pth`` with ``meta`` and ``state_dict``.

    The input is loaded with the safe unpickler (:func:`mmdet_compconv.checkpoint.safe_load`);
    the optimizer, the message hub, the schedulers and, in ``state_dict``, a distillation
    teacher (keys under ``teacher.``) are left out. The input file is never written: the new
    file is saved under a name of its own first, then renamed.

    Args:
        in_file (str): a Runner checkpoint (``epoch_N.pth``), or any checkpoint file that
            is a dict with a ``state_dict``.
        out_dir (str): the folder to write into (created if needed).
        stem (str): the config's name without ``.py``.
        date (str, optional): ``YYYYMMDD``. Default: None (today, UTC).
        cfg (Config, optional): the config the weights must fit exactly
            (:func:`check_state_fits`). Default: None (not checked).

    Returns:
        str: the path of the published file.

    Raises:
        ValueError: ``date`` is not ``YYYYMMDD``, the file holds no ``state_dict``, or it
            does not fit ``cfg``'s model.
    """
    date = date or datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d')
    try:
        datetime.datetime.strptime(date, '%Y%m%d')
    except ValueError:
        raise ValueError(f'date must be YYYYMMDD, got {date!r}') from None
    ckpt = safe_load(in_file, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f'{in_file} holds no state_dict (it holds {keys})')
    state = {k: v for k, v in ckpt['state_dict'].items() if not k.startswith('teacher.')}
    if cfg is not None:
        check_state_fits(cfg, state, in_file)
    published = {'meta': ckpt.get('meta', {}), 'state_dict': state}
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_dir, prefix=f'.{stem}_', suffix='.partial',
                                     delete=False) as f:
        tmp = f.name
    try:
        torch.save(published, tmp)
        final = osp.join(out_dir, f'{stem}_{date}-{sha256_of(tmp)[:8]}.pth')
        if osp.exists(final) and osp.samefile(final, in_file):
            os.remove(tmp)  # republishing a published file: it is already this file
        else:
            os.replace(tmp, final)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return final


def results_from_metrics(metrics: Dict[str, float], dataset: str) -> List[Dict[str, Any]]:
    """mmdet's ``Results`` from the metrics ``tools/test.py`` writes (``coco/bbox_mAP``).

    The box AP is in percent with one decimal, as mmdet's metafiles give it.

    Args:
        metrics (dict[str, float]): the metrics, with ``coco/bbox_mAP`` as a fraction; the
            other keys are ignored.
        dataset (str): the ``Dataset`` written in the result, e.g. ``'COCO'`` or
            ``'shapes'``.

    Returns:
        list[dict[str, Any]]: one ``Object Detection`` result with its ``box AP``.

    Raises:
        KeyError: no ``coco/bbox_mAP`` in ``metrics``.

    Example:
        >>> results_from_metrics({'coco/bbox_mAP': 0.618, 'coco/bbox_mAP_50': 0.858}, 'shapes')
        [{'Task': 'Object Detection', 'Dataset': 'shapes', 'Metrics': {'box AP': 61.8}}]
    """
    if 'coco/bbox_mAP' not in metrics:
        raise KeyError(f'no coco/bbox_mAP in the metrics: {sorted(metrics)}')
    return [{'Task': 'Object Detection', 'Dataset': dataset,
             'Metrics': {'box AP': round(100 * float(metrics['coco/bbox_mAP']), 1)}}]


def published_entry(entry: Dict[str, Any], metadata: Dict[str, Any],
                    results: Optional[List[Dict[str, Any]]],
                    weights: Optional[str]) -> Dict[str, Any]:
    """``entry`` for a newly published checkpoint: its Results and Weights replace the old ones,
    and where it has none the old ones are dropped (they described another file).

    Args:
        entry (dict): the metafile entry.
        metadata (dict): the computed Metadata keys.
        results (list[dict], optional): the new Results, or None (none measured).
        weights (str, optional): the new Weights URL, or None (not hosted yet).

    Returns:
        dict: the new entry.

    Example:
        >>> published_entry({'Name': 'm', 'Results': [{'Metrics': {'box AP': 60.5}}],
        ...                  'Weights': 'http://host/m_20260101-0a1b2c3d.pth'}, {}, None, None)
        {'Name': 'm'}
    """
    entry = update_entry(entry, metadata, results, weights)
    for key, value in (('Results', results), ('Weights', weights)):
        if value is None:
            entry.pop(key, None)
    return entry


def update_entry(entry: Dict[str, Any], metadata: Optional[Dict[str, Any]] = None,
                 results: Optional[List[Dict[str, Any]]] = None,
                 weights: Optional[str] = None) -> Dict[str, Any]:
    """``entry`` with computed ``Metadata`` keys, ``Results`` and ``Weights`` set.

    Metadata keys not given (Training Resources, inference time) are kept.

    Args:
        entry (dict[str, Any]): a ``Models`` entry of a metafile (not changed: a shallow
            copy is returned).
        metadata (dict[str, Any], optional): ``Metadata`` keys to set, e.g.
            :func:`model_metadata`; None or empty changes nothing. Default: None.
        results (list[dict[str, Any]], optional): the ``Results`` to set (replaced whole),
            e.g. :func:`results_from_metrics`. Default: None (kept).
        weights (str, optional): the ``Weights`` URL or path to set. Default: None (kept).

    Returns:
        dict[str, Any]: the updated entry.

    Example:
        >>> update_entry({'Name': 'm', 'Metadata': {'Training Resources': '1x CPU'}},
        ...              {'Epochs': 8}, weights='http://host/m_20260101-0a1b2c3d.pth')
        ... # doctest: +NORMALIZE_WHITESPACE
        {'Name': 'm', 'Metadata': {'Training Resources': '1x CPU', 'Epochs': 8},
         'Weights': 'http://host/m_20260101-0a1b2c3d.pth'}
    """
    entry = dict(entry)
    if metadata:
        entry['Metadata'] = {**entry.get('Metadata', {}), **metadata}
    if results is not None:
        entry['Results'] = results
    if weights is not None:
        entry['Weights'] = weights
    return entry


def load_metafile(path: str) -> Dict[str, Any]:
    """A metafile as a dict (``Collections``, ``Models``).

    Args:
        path (str): the YAML file (read with ``yaml.safe_load``).

    Returns:
        dict[str, Any]: its content.
    """
    with open(path) as f:
        return yaml.safe_load(f)


def header_of(path: str) -> str:
    """The leading comment lines of a file ('' when it does not exist).

    Args:
        path (str): the file.

    Returns:
        str: the lines starting with ``#`` before the first other line, newlines included.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), 'metafile.yml')
        >>> with open(path, 'w') as f:
        ...     _ = f.write('# generated\\n# by hand\\nModels: []\\n# not this\\n')
        >>> header_of(path)
        '# generated\\n# by hand\\n'
        >>> header_of(path + '.missing')
        ''
    """
    if not osp.isfile(path):
        return ''
    lines = []
    with open(path) as f:
        for line in f:
            if not line.startswith('#'):
                break
            lines.append(line)
    return ''.join(lines)


def dump_metafile(metafile: Dict[str, Any], path: str, header: Optional[str] = None) -> None:
    """Write a metafile in mmdet's key order, ``header`` (comment lines) first.

    Args:
        metafile (dict): ``Collections`` and ``Models``.
        path (str): the file.
        header (str, optional): comment lines to start with. Default: None (keep the
            file's own, see :func:`header_of`).
    """
    header = header_of(path) if header is None else header
    with open(path, 'w') as f:
        f.write(header)
        yaml.safe_dump(metafile, f, sort_keys=False, width=100)
