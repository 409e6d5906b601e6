"""Loading weights: safely (no code runs on unpickling), hash-verified, with a coverage report.

* :mod:`.loading`: the loaders mmengine uses after ``import mmdet_compconv`` (local paths
  and URLs), unpickling with ``weights_only=True`` plus what a Runner checkpoint needs, and
  errors that say why a file does not load;
* :mod:`.checksum`: the sha256 prefix in zoo file names, checked before unpickling;
* :mod:`.report`: loading pretrained weights into a (CompConv) model with a report of what
  they covered, per CompConv.
"""
from .checksum import ChecksumError, download_checkpoint, hash_in_name, sha256_of, verify_checkpoint
from .report import LoadReport, ReportedPretrainedMixin, load_pretrained, load_state_dict_with_report
from .loading import (RUNNER_CHECKPOINT_GLOBALS, CheckpointFileError, CorruptCheckpointError,
                        NotACheckpointError, allow_runner_checkpoints, diagnose, load_from_local,
                        load_url, safe_load)

__all__ = [
    'ChecksumError', 'download_checkpoint', 'hash_in_name', 'sha256_of', 'verify_checkpoint',
    'LoadReport', 'ReportedPretrainedMixin', 'load_pretrained', 'load_state_dict_with_report',
    'RUNNER_CHECKPOINT_GLOBALS', 'CheckpointFileError', 'CorruptCheckpointError',
    'NotACheckpointError', 'allow_runner_checkpoints', 'diagnose', 'load_from_local', 'load_url',
    'safe_load'
]
