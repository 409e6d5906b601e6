"""Fill (or check) the computed Metadata of the models of model-zoo metafiles.

For every model of each metafile, FLOPs, Parameters, Epochs and Training Data are computed from
its config (``mmdet_compconv.zoo.model_metadata``); every other key (Training Resources,
inference time, Results, Weights) is kept as it is. The leading comment lines stay.

Example:
    python tools/model_converters/metafile.py configs/shapes/metafile.yml configs/compconv/metafile.yml
    python tools/model_converters/metafile.py --check configs/*/metafile.yml   # exit 1 if stale
    python tools/model_converters/metafile.py --table configs/*/metafile.yml   # README table
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from mmengine.config import Config

from mmdet_compconv.zoo import dump_metafile, load_metafile, model_metadata, update_entry

REPO = Path(__file__).resolve().parents[2]


def filled(path: Path) -> dict:
    """The metafile at ``path`` with each model's computed Metadata recomputed."""
    metafile = load_metafile(str(path))
    metafile['Models'] = [
        update_entry(m, model_metadata(Config.fromfile(str(REPO / m['Config']))))
        for m in metafile['Models']]
    return metafile


def table(metafiles: Sequence[Path]) -> List[str]:
    """Markdown rows of the README's "Results and models" table, read with openmim's
    ``modelindex`` (what ``mim search`` reads)."""
    from modelindex import load
    lines = ['| Config | Schedule | box AP | Params (M) | FLOPs (G) | Download |',
             '|---|---|---|---|---|---|']
    for path in metafiles:
        for m in load(str(path)).models:
            meta = m.metadata.data
            schedule = (f"{meta['Epochs']} ep" if 'Epochs' in meta else
                        f"{meta['Iterations']} it")
            ap = m.results[0].metrics['box AP'] if m.results else '-'
            weights = f'[model]({m.weights})' if m.weights else '-'
            lines.append(f'| [{m.name}]({m.config}) | {schedule} | {ap} | '
                         f"{meta['Parameters'] / 1e6:.2f} | {meta['FLOPs'] / 1e9:.2f} | "
                         f'{weights} |')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('metafiles', nargs='+', type=Path)
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if a metafile differs from its computation')
    parser.add_argument('--table', action='store_true',
                        help='only print the Markdown table of the models (README)')
    args = parser.parse_args(argv)
    if args.table:
        print('\n'.join(table(args.metafiles)))
        return 0
    stale = []
    for path in args.metafiles:
        new = filled(path)
        if new != load_metafile(str(path)):
            stale.append(str(path))
            if not args.check:
                dump_metafile(new, str(path))
                print(f'updated {path}')
        else:
            print(f'up to date: {path}')
    if args.check and stale:
        print(f'stale (run without --check): {", ".join(stale)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
