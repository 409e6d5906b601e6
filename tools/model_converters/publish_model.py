"""Publish a trained checkpoint to the model zoo and print (or write) its metafile entry.

Loads a Runner checkpoint with the safe unpickler, keeps ``meta`` and ``state_dict`` (no
optimizer, message hub, schedulers or distillation teacher), saves it as
``{config}_{YYYYMMDD}-{sha256[:8]}.pth`` in ``--out-dir``, and prints the entry of the
config's model: the computed Metadata, the ``Results`` that ``tools/test.py`` measured (the
metrics JSON it writes under its ``--work-dir``) and ``Weights``: ``--url-base`` (where you
will host ``--out-dir``: an http(s) URL, or a local directory) joined with the file name.
Loading that file by path or URL later checks its sha256 against the name.

Example (a trained work dir, tested with ``tools/test.py CFG CKPT --work-dir WORK_DIR/test``)::

    python tools/model_converters/publish_model.py configs/shapes/retinanet_r18_fpn_shapes.py \\
        WORK_DIR/epoch_20.pth --metrics WORK_DIR/test/20261129_101112/20261129_101112.json \\
        --out-dir zoo --url-base https://my.host/zoo \\
        --training-resources '1x CPU (2 cores)' --write
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

import yaml

from mmengine.config import Config

from mmdet_compconv.zoo import (dump_metafile, load_metafile, model_metadata, publish_checkpoint,
                                published_entry, results_from_metrics)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='a Runner checkpoint (epoch_N.pth)')
    parser.add_argument('--out-dir', required=True, help='where to write the published file')
    parser.add_argument('--date', help='YYYYMMDD in the file name (default: today, UTC)')
    parser.add_argument('--metrics', help="tools/test.py's metrics JSON (coco/bbox_mAP) for "
                        'Results; without it the entry has no Results')
    parser.add_argument('--url-base', help='where --out-dir will be served (http(s)://... or a '
                        'directory); without it the entry gets no Weights (the file is '
                        'published but hosted nowhere yet)')
    parser.add_argument('--metafile', type=Path, help='the metafile listing the config '
                        '(default: metafile.yml next to the config)')
    parser.add_argument('--training-resources', help="e.g. '1x CPU (2 cores)', '8x V100 GPUs'")
    parser.add_argument('--write', action='store_true', help='update the metafile in place')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    stem = Path(args.config).stem
    metafile_path = args.metafile or Path(args.config).parent / 'metafile.yml'
    metafile = load_metafile(str(metafile_path))
    matches = [i for i, m in enumerate(metafile['Models']) if m['Name'] == stem]
    if not matches:
        raise SystemExit(f'{metafile_path} lists no model named {stem!r}; add its Name, '
                         'In Collection and Config first')
    index = matches[0]
    cfg = Config.fromfile(args.config)
    try:
        published = publish_checkpoint(args.checkpoint, args.out_dir, stem, args.date, cfg)
    except ValueError as e:
        raise SystemExit(f'not published: {e}')
    print(f'published {published}')
    metadata = model_metadata(cfg)
    if args.training_resources:
        metadata['Training Resources'] = args.training_resources
    results = None
    if args.metrics:
        with open(args.metrics) as f:
            results = results_from_metrics(json.load(f), metadata['Training Data'])
    weights = None
    if args.url_base:
        weights = f'{args.url_base.rstrip("/")}/{osp.basename(published)}'
    else:
        print(f'no --url-base: the entry gets no Weights; host {published} and publish again '
              f'with --url-base to add them')
    if results is None and 'Results' in metafile['Models'][index]:
        print('no --metrics: the entry\'s previous Results, measured on another file, are dropped')
    entry = published_entry(metafile['Models'][index], metadata, results, weights)
    print(yaml.safe_dump([entry], sort_keys=False, width=100), end='')
    if args.write:
        metafile['Models'][index] = entry
        dump_metafile(metafile, str(metafile_path))
        print(f'updated {metafile_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
