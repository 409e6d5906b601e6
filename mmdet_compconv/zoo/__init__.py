"""The model zoo: metafile entries in OpenMMLab's schema and published checkpoints.

:mod:`.metafile` computes what a config decides (FLOPs, Parameters, Epochs, Training Data),
what a trained checkpoint adds (the published, sha256-named file; Results) and reads and
writes metafiles. Loading zoo checkpoints (hash check, safe unpickling) is
:mod:`mmdet_compconv.checkpoint`'s; ``mmengine.hub`` finds this package's model index through
:mod:`mmdet_compconv.patches`.
"""
from .metafile import (check_state_fits, dump_metafile, header_of, inference_size,
                       published_entry, load_metafile, model_complexity,
                       model_metadata, publish_checkpoint, results_from_metrics, update_entry)

__all__ = ['check_state_fits', 'published_entry', 'dump_metafile', 'header_of', 'inference_size', 'load_metafile', 'model_complexity',
           'model_metadata', 'publish_checkpoint', 'results_from_metrics', 'update_entry']
