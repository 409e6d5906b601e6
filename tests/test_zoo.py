"""The model zoo, end to end: train -> test -> publish -> serve -> download -> verify -> test.

A tiny shapes RetinaNet (the CompConv shapes config at 1/4 width, 64x64 images) is trained for
a few iterations on 4 generated images and tested on them by ``tools/test.py``; its checkpoint
is published by ``tools/model_converters/publish_model.py`` into a folder served on 127.0.0.1
and entered in a temporary package's metafile. ``mim download`` (openmim's own code, pointed at
that package) and ``mmengine.hub`` fetch it; ``tools/test.py`` on the download must reproduce
the metafile's box AP. A tampered or truncated download must be refused before it is loaded.
Also: the repository's model-index.yml parses with openmim's ``modelindex``, every Config in it
exists, and the committed metafiles hold what the metafile tool computes.
"""
import hashlib
import importlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from mmengine.runner import CheckpointLoader

from mmdet_compconv import patches
from mmdet_compconv.checkpoint import ChecksumError, hash_in_name, sha256_of, verify_checkpoint
from mmdet_compconv.datasets.shapes import make_dataset
from mmdet_compconv.apis import run_mmdet_tool

REPO = Path(__file__).resolve().parents[1]
NAME = 'retinanet_tiny_shapes'
TINY = '''
_base_ = {base!r}
data_root = {root!r}
model = dict(
    backbone=dict(base_channels=16, compconv_cfg=dict(type='CompConv', c0=16)),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=1,
                   norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# the 4 training images are the test set: a few iterations must give a non-zero box AP
split = dict(data_root=data_root, ann_file='annotations/instances_train.json',
             data_prefix=dict(img='train/'))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(split, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(split, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_train.json')
test_evaluator = val_evaluator
max_epochs = {epochs}
train_cfg = dict(max_epochs=max_epochs, val_interval=1000)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=3e-3))
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=10))
'''


def _tool(path: str):
    """A script under tools/ as a module (its ``main`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """mmdet's train.py / test.py run in this process (no second start-up of mmdet)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_test_py(config: Path, checkpoint: Path, work_dir: Path) -> float:
    """box AP (percent) that tools/test.py measures and writes under ``work_dir``."""
    run_mmdet_tool('test', [str(config), str(checkpoint), '--work-dir', str(work_dir)])
    metrics, _ = _tool('tools/demo_summary.py').read_metrics(str(work_dir))
    return 100 * metrics['coco/bbox_mAP']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(package dir with .mim, config, checkpoint, metrics JSON) of the tiny trained model."""
    tmp = tmp_path_factory.mktemp('zoo')
    data = tmp / 'data'
    make_dataset(str(data), num_train=4, num_val=1, size=64, min_size=16, max_objects=2,
                 verbose=False)
    package = tmp / 'package'
    config_dir = package / '.mim' / 'configs' / 'tiny'
    config_dir.mkdir(parents=True)
    config = config_dir / f'{NAME}.py'
    config.write_text(TINY.format(
        base=str(REPO / 'configs' / 'shapes' / 'retinanet_compconv128-r18_fpn_shapes.py'),
        root=f'{data}/', epochs=12))
    collections = yaml.safe_load((REPO / 'configs/shapes/metafile.yml').read_text())['Collections']
    (config_dir / 'metafile.yml').write_text(yaml.safe_dump({'Collections': collections, 'Models': [
        {'Name': NAME, 'In Collection': 'CompConv shapes', 'Config': f'configs/tiny/{NAME}.py'}]},
        sort_keys=False))
    (package / '.mim' / 'model-index.yml').write_text('Import:\n  - configs/tiny/metafile.yml\n')
    work = tmp / 'work'
    run_mmdet_tool('train', [str(config), '--work-dir', str(work)])
    checkpoint = work / 'epoch_12.pth'
    box_ap = run_test_py(config, checkpoint, work / 'test')
    _, metrics = _tool('tools/demo_summary.py').read_metrics(str(work / 'test'))
    return package, config, checkpoint, metrics, box_ap


@pytest.fixture
def published(trained, http_root, monkeypatch):
    """The tiny model published into the served folder, its metafile entry written."""
    package, config, checkpoint, metrics, box_ap = trained
    served, url = http_root
    metafile = config.parent / 'metafile.yml'
    assert _tool('tools/model_converters/publish_model.py').main([
        str(config), str(checkpoint), '--metrics', metrics, '--out-dir', str(served),
        '--url-base', url, '--metafile', str(metafile), '--date', '20260101',
        '--training-resources', '1x CPU', '--write']) == 0
    entry = yaml.safe_load(metafile.read_text())['Models'][0]
    monkeypatch.setattr(patches, 'PACKAGE_DIR', str(package))  # mmengine.hub reads this package
    for module in ('mim.commands.download', 'mim.commands.search'):  # and so does mim
        monkeypatch.setattr(importlib.import_module(module), 'get_installed_path',
                            lambda pkg: str(package))
    return entry, served, url, box_ap


def test_publish_download_verify_and_reproduce(published, tmp_path):
    entry, served, url, box_ap = published
    assert box_ap > 0, 'the tiny model should detect something on its training images'
    name = Path(entry['Weights']).name
    assert entry['Weights'] == f'{url}/{name}'
    assert name.startswith(f'{NAME}_20260101-') and hash_in_name(name) is not None
    assert entry['Results'][0]['Metrics']['box AP'] == pytest.approx(box_ap, abs=0.05)
    assert {'FLOPs', 'Parameters', 'Epochs', 'Training Data', 'Training Resources'} <= set(
        entry['Metadata'])
    published_ckpt = torch.load(served / name, weights_only=True)
    assert set(published_ckpt) == {'meta', 'state_dict'}

    from mim.commands.download import download
    dest = tmp_path / 'dest'
    assert download('mmdet_compconv', [NAME], dest_root=str(dest)) == [name]
    assert verify_checkpoint(str(dest / name)) == hash_in_name(name)
    reproduced = run_test_py(dest / f'{NAME}.py', dest / name, tmp_path / 'retest')
    assert abs(reproduced - entry['Results'][0]['Metrics']['box AP']) <= 0.5  # 0.005 mAP

    from mmengine.hub import get_config, get_model
    assert get_config(f'mmdet_compconv::tiny/{NAME}.py', pretrained=True).model_path == \
        entry['Weights']
    model = get_model(f'mmdet_compconv::tiny/{NAME}.py', pretrained=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, published_ckpt['state_dict'][key]), key


def test_tampered_and_truncated_downloads_are_refused(published, tmp_path):
    entry, served, url, _ = published
    name = Path(entry['Weights']).name
    good = (served / name).read_bytes()
    (served / name).write_bytes(good[:len(good) // 2])  # truncated on the server
    from mim.commands.download import download
    download('mmdet_compconv', [NAME], dest_root=str(tmp_path))  # mim itself checks nothing
    with pytest.raises(ChecksumError, match=rf'{name}: its name says sha256 {name[-12:-4]}'):
        CheckpointLoader.load_checkpoint(str(tmp_path / name))
    assert _tool('tools/model_converters/verify_checkpoint.py').main([str(tmp_path)]) == 1
    with pytest.raises(ChecksumError, match='nothing was cached'):
        CheckpointLoader.load_checkpoint(entry['Weights'])  # over http
    cache = Path(os.environ['TORCH_HOME']) / 'hub' / 'checkpoints'
    assert not (cache / name).exists() and not list(cache.glob('*.partial'))

    tampered = bytearray(good)
    tampered[-100] ^= 1
    (served / name).write_bytes(bytes(tampered))
    with pytest.raises(ChecksumError, match=sha256_of(str(served / name))):
        CheckpointLoader.load_checkpoint(entry['Weights'])
    # a good file cached and later damaged is refused too, naming the cached file
    (served / name).write_bytes(good)
    CheckpointLoader.load_checkpoint(entry['Weights'])
    (cache / name).write_bytes(bytes(tampered))
    with pytest.raises(ChecksumError, match=str(cache / name)):
        CheckpointLoader.load_checkpoint(entry['Weights'])


README = (REPO / 'README.md').read_text()


def test_model_index_parses_and_every_config_exists():
    from modelindex.load_model_index import load
    index = load(str(REPO / 'model-index.yml'))
    models = index.models
    assert len(models) == len({m.name for m in models}) >= 13
    for model in models:
        assert (REPO / model.config).is_file(), model.config
        assert (REPO / model.config).stem == model.name
        # no Weights without measured Results; Results without Weights: published, not hosted
        assert model.results or not model.weights, model.name
        if model.results:  # the README table quotes the metafile's box AP
            ap = model.results[0].metrics['box AP']
            assert f'[{model.name}]({model.config}) ' in README and f' | {ap} | ' in next(
                line for line in README.splitlines() if f'[{model.name}]({model.config})' in line)


def test_metafiles_hold_what_the_tool_computes():
    tool = _tool('tools/model_converters/metafile.py')
    assert tool.main(['--check', *map(str, sorted(REPO.glob('configs/*/metafile.yml')))]) == 0


def test_mim_files_are_packaged(tmp_path):
    """setup.py links configs, tools and model-index.yml into mmdet_compconv/.mim (editable)."""
    mim = REPO / 'mmdet_compconv' / '.mim'  # made by `pip install -e .`, which make env runs
    assert mim.is_dir(), 'mmdet_compconv/.mim is missing: run `make env` (pip install -e .)'
    for name in ('configs', 'tools', 'model-index.yml'):
        assert (mim / name).resolve() == (REPO / name).resolve()


def test_checksum_errors_name_the_file_and_both_hashes(tmp_path):
    path = tmp_path / 'm_20260101-abcdef12.pth'
    torch.save({'state_dict': {}}, path)
    with pytest.raises(ChecksumError, match=rf'm_20260101-abcdef12\.pth: its name says sha256 '
                       rf'abcdef12\.\.\., the file\'s sha256 is {sha256_of(str(path))}'):
        CheckpointLoader.load_checkpoint(str(path))
    plain = tmp_path / 'epoch_1.pth'
    shutil.copy(path, plain)  # no hash in the name: loads as before
    assert CheckpointLoader.load_checkpoint(str(plain)) == {'state_dict': {}}
    # mmengine's CheckpointHook(published_keys=...) names epoch_N-<hash of the pickle>.pth:
    # not the zoo's form, not a file hash, so not checked
    hooked = tmp_path / 'epoch_1-abcdef12.pth'
    shutil.copy(path, hooked)
    assert CheckpointLoader.load_checkpoint(str(hooked)) == {'state_dict': {}}


def test_readme_table_params_and_flops_are_the_metafiles():
    tool = _tool('tools/model_converters/metafile.py')
    computed = {}
    for row in tool.table(sorted(REPO.glob('configs/*/metafile.yml')))[2:]:
        cells = [c.strip() for c in row.strip('|').split('|')]
        computed[cells[0]] = (cells[1], cells[3], cells[4])  # schedule, params, FLOPs
    readme = (REPO / 'README.md').read_text().split('## Results and models')[1]
    rows = [r for r in readme.split('\n\n')[1].splitlines()[2:]]
    assert len(rows) == len(computed)
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        link = re.match(r'\[[^\]]+\]\([^)]+\)', cells[0]).group()  # less any '(note)'
        assert computed[link] == (cells[1], cells[3], cells[4]), link


def test_publish_and_verify_refuse_bad_input(tmp_path):
    from mmdet_compconv.zoo import publish_checkpoint, results_from_metrics
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'w': torch.zeros(1), 'teacher.w': torch.ones(1)},
                'optimizer': {}}, ckpt)
    with pytest.raises(ValueError, match="date must be YYYYMMDD, got '2026-01-01'"):
        publish_checkpoint(str(ckpt), str(tmp_path / 'out'), 'm', '2026-01-01')
    out = Path(publish_checkpoint(str(ckpt), str(tmp_path / 'out'), 'm', '20260101'))
    assert out.name == f'm_20260101-{sha256_of(str(out))[:8]}.pth'
    assert list(torch.load(out, weights_only=True)['state_dict']) == ['w']  # no teacher
    torch.save({'w': torch.zeros(1)}, tmp_path / 'bare.pth')
    with pytest.raises(ValueError, match=r"bare\.pth holds no state_dict \(it holds \['w'\]\)"):
        publish_checkpoint(str(tmp_path / 'bare.pth'), str(tmp_path / 'out'), 'm')
    with pytest.raises(KeyError, match='no coco/bbox_mAP in the metrics'):
        results_from_metrics({'coco/segm_mAP': 0.1}, 'shapes')
    publish = _tool('tools/model_converters/publish_model.py')
    config = REPO / 'configs' / 'shapes' / 'retinanet_r18_fpn_shapes.py'
    (tmp_path / 'metafile.yml').write_text('Models: []\n')
    with pytest.raises(SystemExit, match="lists no model named 'retinanet_r18_fpn_shapes'"):
        publish.main([str(config), str(ckpt), '--out-dir', str(tmp_path),
                      '--metafile', str(tmp_path / 'metafile.yml')])
    verify = _tool('tools/model_converters/verify_checkpoint.py')
    (tmp_path / 'empty').mkdir()
    assert verify.main([str(tmp_path / 'empty')]) == 1
    assert verify.main([str(out)]) == 0
    with pytest.raises(FileNotFoundError, match='nothing.pth does not exist'):
        verify.main([str(tmp_path / 'nothing.pth')])
    from mmengine.config import Config
    from mmdet_compconv.zoo import inference_size, model_metadata
    cfg = Config.fromfile(str(config))
    cfg.test_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile')]
    with pytest.raises(ValueError, match='no Resize with a scale in the test pipeline'):
        inference_size(cfg)
    cfg = Config.fromfile(str(config))
    cfg.train_dataloader.dataset.metainfo = dict(classes=('a', ))
    with pytest.raises(ValueError, match=r"training data of CocoDataset with classes \('a',\)"):
        model_metadata(cfg)


def test_publish_refuses_weights_that_do_not_fit_the_config(trained, tmp_path):
    """Review item 5: a vanilla R-18 checkpoint was published under a CompConv config."""
    _, config, checkpoint, _, _ = trained
    ckpt = torch.load(checkpoint, weights_only=False)
    state = ckpt['state_dict']
    state['backbone.layer1.0.conv1.weight'] = state.pop('backbone.layer1.0.conv1.convs.0.weight')
    torch.save(ckpt, tmp_path / 'vanilla_like.pth')
    metafile = tmp_path / 'metafile.yml'
    shutil.copy(config.parent / 'metafile.yml', metafile)
    with pytest.raises(SystemExit, match=r'(?s)not published: .*vanilla_like.pth does not fit '
                       r'the model of .*unexpected key in source state_dict: '
                       r'backbone.layer1.0.conv1.weight.*missing keys in source state_dict: '
                       r'backbone.layer1.0.conv1.convs.0.weight'):
        _tool('tools/model_converters/publish_model.py').main([
            str(config), str(tmp_path / 'vanilla_like.pth'), '--out-dir', str(tmp_path / 'out'),
            '--metafile', str(metafile)])
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').iterdir())


def test_publish_drops_stale_results_and_never_writes_its_input(trained, tmp_path):
    """Review items 5 and 7: without --metrics the previous entry's box AP stayed beside the
    new Weights; an input named {config}_{date}.pth in --out-dir was overwritten by the
    published file (a Runner checkpoint that could no longer resume)."""
    _, config, checkpoint, _, _ = trained
    out = tmp_path / 'out'
    out.mkdir()
    runner_ckpt = out / f'{NAME}_20260101.pth'
    shutil.copy(checkpoint, runner_ckpt)
    digest = sha256_of(str(runner_ckpt))
    metafile = tmp_path / 'metafile.yml'
    meta = yaml.safe_load((config.parent / 'metafile.yml').read_text())
    meta['Models'][0].update(Results=[{'Task': 'Object Detection', 'Dataset': 'shapes',
                                       'Metrics': {'box AP': 60.5}}],
                             Weights='http://old/host/old_20250101-0a1b2c3d.pth')
    metafile.write_text(yaml.safe_dump(meta, sort_keys=False))
    assert _tool('tools/model_converters/publish_model.py').main([
        str(config), str(runner_ckpt), '--out-dir', str(out), '--date', '20260101',
        '--metafile', str(metafile), '--write']) == 0
    entry = yaml.safe_load(metafile.read_text())['Models'][0]
    assert 'Results' not in entry and 'Weights' not in entry
    assert sha256_of(str(runner_ckpt)) == digest  # the input is untouched
    assert 'optimizer' in torch.load(runner_ckpt, weights_only=False)
    assert len(list(out.glob(f'{NAME}_20260101-*.pth'))) == 1
    assert not list(out.glob('*.partial'))


def _download(args):
    from mmdet_compconv.checkpoint import download_checkpoint
    return download_checkpoint(*args, progress=False)


def test_parallel_downloads_of_one_url_all_succeed(http_root, tmp_path):
    """Review item 8: 3 of 4 processes failed on a shared .partial file."""
    import multiprocessing
    served, url = http_root
    data = os.urandom(4 << 20)
    name = f'model_20260101-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    (served / name).write_bytes(data)
    cache = tmp_path / 'cache'
    with multiprocessing.get_context('spawn').Pool(4) as pool:
        paths = pool.map(_download, [(f'{url}/{name}', str(cache))] * 4)
    assert paths == [str(cache / name)] * 4
    assert (cache / name).read_bytes() == data and not list(cache.glob('*.partial'))


def test_hash_names_any_case_and_pth_tar(tmp_path):
    """Review item 13: upper-case hex, .PTH and .pth.tar names were not checked, and
    verify_checkpoint.py exited 0 having verified nothing."""
    data = b'checkpoint bytes'
    digest = hashlib.sha256(data).hexdigest()[:8]
    verify = _tool('tools/model_converters/verify_checkpoint.py')
    for name in (f'm_20260101-{digest.upper()}.pth', f'm_20260101-{digest}.PTH',
                 f'm_20260101-{digest}.pth.tar'):
        path = tmp_path / name
        path.write_bytes(data)
        assert verify_checkpoint(str(path)) == digest
        path.write_bytes(data + b'!')
        with pytest.raises(ChecksumError, match=name):
            verify_checkpoint(str(path))
        assert verify.main([str(path)]) == 1
        path.unlink()
    (tmp_path / 'epoch_1.pth').write_bytes(data)
    assert verify.main([str(tmp_path)]) == 1  # nothing carries a hash: nothing verified
