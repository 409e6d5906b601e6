"""Check downloaded zoo checkpoints against the sha256 prefix in their names.

``mim download`` does not check what it downloads; run this on its ``--dest`` (loading the
file through mmengine checks it again). Exit status 1 if any file fails, or none carries a hash to verify.

Example:
    mim download mmdet_compconv --config retinanet_r18_fpn_shapes --dest ckpts
    python tools/model_converters/verify_checkpoint.py ckpts
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from mmdet_compconv.checkpoint import ChecksumError, verify_checkpoint


CHECKPOINT_SUFFIXES = ('.pth', '.pth.tar')


def checkpoints(paths: Sequence[Path]) -> List[Path]:
    """The checkpoint files among ``paths``: ``.pth`` / ``.pth.tar`` in any case (folders are
    searched, not recursively)."""
    found: List[Path] = []
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f'{p} does not exist')
        found += sorted(f for f in p.iterdir() if f.is_file() and
                        f.name.lower().endswith(CHECKPOINT_SUFFIXES)) if p.is_dir() else [p]
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('paths', nargs='+', type=Path, help='checkpoint files or folders')
    args = parser.parse_args(argv)
    found = checkpoints(args.paths)
    if not found:
        print(f'no .pth file in {", ".join(map(str, args.paths))}')
        return 1
    failed = verified = 0
    for path in found:
        try:
            prefix = verify_checkpoint(str(path))
        except ChecksumError as e:
            print(f'FAILED: {e}')
            failed += 1
            continue
        verified += prefix is not None
        print(f'ok {prefix}: {path}' if prefix else
              f'skipped (no _<YYYYMMDD>-<sha256[:8]>.pth in the name): {path}')
    if not verified and not failed:
        print(f'nothing verified: none of the {len(found)} files carries a hash in its name')
        return 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
