"""Both sides of mmdet_compconv.checkpoint's allow-list.

Our own Runner checkpoints load (resume included) with ``weights_only=True``; a checkpoint that
pickles anything else is refused before any of it runs, from a local path or a URL.
"""
import os
import pickle
import re
import shlex
from pathlib import Path

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from mmengine.testing.runner_test_case import ToyDataset, ToyMetric, ToyModel

from mmdet_compconv import patches
from mmdet_compconv.checkpoint import loading as safe_checkpoint


class Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(str(self.marker))}', )


class EvilGetattr:
    """Unpickling this calls ``getattr(HistoryBuffer, '__init__')``: not a statistics method."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.fixture(scope='module', autouse=True)
def restore_default_scope():
    """The Runners below make their scope the current one; undo that for other tests."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


@pytest.fixture
def evil(tmp_path):
    """(checkpoint path, marker path) of a checkpoint that runs code when unpickled."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'meta': {'x': Evil(marker)}, 'state_dict': {}}, path)
    return path, marker


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A real mmengine Runner checkpoint: momentum SGD, lr schedule, validation, best ckpt."""
    work_dir = tmp_path_factory.mktemp('runner')
    loader = dict(dataset=dict(type=ToyDataset), sampler=dict(type='DefaultSampler'),
                  batch_size=3, num_workers=0)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=dict(type=ToyMetric),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=1),
        val_cfg=dict(),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, save_best='acc')),
        experiment_name='test_checkpoint_runner')
    runner.train()
    return work_dir / 'epoch_1.pth'


def test_local_loader_is_installed():
    patches.install()  # idempotent
    assert CheckpointLoader._get_checkpoint_loader('epoch_1.pth') is safe_checkpoint.load_from_local
    assert mmengine_checkpoint.load_url is safe_checkpoint.load_url


def test_allow_list_context_nests_and_keeps_user_globals():
    before = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([HistoryBuffer])
    try:
        with safe_checkpoint.allow_runner_checkpoints():
            with safe_checkpoint.allow_runner_checkpoints():
                pass
            assert set(safe_checkpoint.RUNNER_CHECKPOINT_GLOBALS) <= set(
                torch.serialization.get_safe_globals())
        assert set(torch.serialization.get_safe_globals()) == {*before, HistoryBuffer}
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def test_runner_checkpoint_needs_the_allow_list(runner_checkpoint):
    # Without it, torch >= 2.6 refuses our own checkpoint (the mmengine 0.10.7 bug)...
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(runner_checkpoint)
    # ...with it, the checkpoint loads, history buffers and numpy values included.
    ckpt = _load_checkpoint(str(runner_checkpoint))
    assert {'meta', 'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(ckpt)
    assert ckpt['meta']['epoch'] == 1
    buffers = ckpt['message_hub']['log_scalars']
    assert isinstance(buffers['train/lr'], HistoryBuffer)
    assert buffers['train/lr'].current() == pytest.approx(0.1)
    assert ckpt['optimizer']['state'][0]['momentum_buffer'].shape == (2, 2)


def test_runner_resumes_from_its_checkpoint(runner_checkpoint, tmp_path):
    """Resuming restores model, optimizer and progress (nothing is left to train)."""
    loader = dict(dataset=dict(type=ToyDataset), sampler=dict(type='DefaultSampler'),
                  batch_size=3, num_workers=0)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        load_from=str(runner_checkpoint),
        resume=True,
        experiment_name='test_checkpoint_resume')
    runner.train()
    saved = _load_checkpoint(str(runner_checkpoint))
    assert (runner.epoch, runner.iter) == (1, 4)
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved['state_dict'][key])
    momentum = runner.optim_wrapper.optimizer.state_dict()['state'][0]['momentum_buffer']
    torch.testing.assert_close(momentum, saved['optimizer']['state'][0]['momentum_buffer'])
    assert runner.param_schedulers[0].state_dict() == saved['param_schedulers'][0]


def test_fixture_evil_payload_runs_when_trusted(evil):
    """A check of the fixture, not of the package: trusting the file (weights_only=False)
    does run its code, so the refusals below are refusals of a live payload."""
    path, marker = evil
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_local_evil_checkpoint_is_refused(evil, monkeypatch):
    path, marker = evil
    # Even the environment switch that turns weights_only off for plain torch.load calls.
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(pickle.UnpicklingError, match=r'(?s)Refused to unpickle .*\.system'):
        _load_checkpoint(str(path))
    with pytest.raises(pickle.UnpicklingError, match='Refused to unpickle'):
        mmengine_checkpoint.load_checkpoint(ToyModel(), str(path))
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'state_dict': {}, 'x': EvilGetattr()}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"getattr\(.*HistoryBuffer.*'__init__'\)"):
        _load_checkpoint(str(path))


def test_missing_local_file_is_a_clear_error(tmp_path):
    missing = tmp_path / 'nope' / 'compconv128-r50_imagenet.pth'
    with pytest.raises(FileNotFoundError, match=r"compconv128-r50_imagenet\.pth can not be found"):
        _load_checkpoint(str(missing))


def test_url_checkpoints_are_unpickled_safely(http_root, evil, runner_checkpoint, monkeypatch):
    root, url = http_root
    path, marker = evil
    (root / 'evil.pth').write_bytes(path.read_bytes())
    (root / 'ours.pth').write_bytes(runner_checkpoint.read_bytes())

    assert _load_checkpoint(f'{url}/ours.pth')['meta']['epoch'] == 1
    with pytest.raises(pickle.UnpicklingError, match='Refused to unpickle http://'):
        _load_checkpoint(f'{url}/evil.pth')
    # torchvision:// (like open-mmlab:// and mmcls://) resolves to a URL and goes the same way.
    monkeypatch.setattr(mmengine_checkpoint, 'get_torchvision_models',
                        lambda: {'evil': f'{url}/evil.pth'})
    with pytest.raises(pickle.UnpicklingError, match='Refused to unpickle'):
        _load_checkpoint('torchvision://evil')
    assert not marker.exists()


# Issue 12.6: broken files are told apart from unsafe ones, and the file is always named.
@pytest.fixture
def broken(tmp_path):
    """Files that are not loadable checkpoints, by kind."""
    import zipfile
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(3)}}, good)
    data = good.read_bytes()
    files = {}

    def damage_pickle(name, edit):
        path = tmp_path / name
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, 'w') as dst:
            for member in src.namelist():
                content = src.read(member)
                dst.writestr(member, edit(content) if member.endswith('data.pkl') else content)
        files[name] = path

    damage_pickle('bad_bytes.pth', lambda b: b[:10] + b'\xff\xfe' + b[12:])
    damage_pickle('cut_stream.pth', lambda b: b[:len(b) // 2])  # looked like a refused global
    files['truncated.pth'] = tmp_path / 'truncated.pth'
    files['truncated.pth'].write_bytes(data[:len(data) // 2])
    files['empty.pth'] = tmp_path / 'empty.pth'
    files['empty.pth'].write_bytes(b'')
    files['text.pth'] = tmp_path / 'text.pth'
    files['text.pth'].write_text('hello, not a checkpoint\n')
    files['pickle.pth'] = tmp_path / 'pickle.pth'
    files['pickle.pth'].write_bytes(pickle.dumps({'a': 1}, protocol=4))
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    files['legacy_cut.pth'] = tmp_path / 'legacy_cut.pth'
    files['legacy_cut.pth'].write_bytes(legacy.read_bytes()[:40])
    return files


@pytest.mark.parametrize('name,error,match', [
    ('bad_bytes.pth', safe_checkpoint.CorruptCheckpointError, 'pickle stream is damaged'),
    ('cut_stream.pth', safe_checkpoint.CorruptCheckpointError, 'pickle stream is damaged'),
    ('truncated.pth', safe_checkpoint.CorruptCheckpointError,
     r'truncated or damaged zip archive \(\d+ bytes, no central directory\)'),
    ('empty.pth', safe_checkpoint.CorruptCheckpointError, r'empty \(0 bytes\)'),
    ('legacy_cut.pth', safe_checkpoint.CorruptCheckpointError, 'pickle stream is damaged'),
    ('text.pth', safe_checkpoint.NotACheckpointError,
     r"neither a zip archive nor a pickle \(it starts with b'hello, n'\)"),
    ('pickle.pth', safe_checkpoint.NotACheckpointError, 'a pickle that torch.save did not write'),
])
def test_broken_files_are_named_and_told_apart(broken, name, error, match):
    path = broken[name]
    with pytest.raises(error, match=rf'{re.escape(str(path))} cannot be loaded: .*{match}') as e:
        _load_checkpoint(str(path))
    assert not isinstance(e.value, pickle.UnpicklingError)
    assert 'weights_only=False' not in str(e.value)  # corrupt is not unsafe: no such advice


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError, match=rf'{re.escape(str(tmp_path))} is a directory, '
                       'not a checkpoint file'):
        _load_checkpoint(str(tmp_path))


def test_refusal_names_the_file_and_what_it_pickles(evil):
    path, marker = evil
    with pytest.raises(pickle.UnpicklingError, match=rf'Refused to unpickle {re.escape(str(path))}'
                       r': it pickles posix\.system, which is not allowed\.') as e:
        _load_checkpoint(str(path))
    # the conversion hint works on bare state dicts as on Runner checkpoints
    assert "c.get('state_dict', c)" in str(e.value)
    assert not marker.exists()


def test_damaged_download_is_named_with_its_cached_copy(http_root, broken):
    root, url = http_root
    (root / 'bad.pth').write_bytes(broken['truncated.pth'].read_bytes())
    with pytest.raises(safe_checkpoint.CorruptCheckpointError,
                       match=rf'{re.escape(url)}/bad.pth \(downloaded to .*bad.pth; delete it to '
                       r'retry\) cannot be loaded: it is a truncated'):
        _load_checkpoint(f'{url}/bad.pth')
