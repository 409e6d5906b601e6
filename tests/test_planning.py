"""The planner (mmdet_compconv.planning, tools/analysis_tools/plan_compconv.py): the solver
against brute force, budgets and refusals, the latency cache, candidates, errors, and the
command line end to end on tiny inputs."""
import itertools
import json
import math
import random
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict

from mmdet_compconv import CompConv
from mmdet_compconv.planning import (LatencyCache, candidate_layers, check_budget,
                                     check_ratio, check_runtime, environment, fill_errors,
                                     layer_key, plan_from_choices, solve_knapsack, solve_plan,
                                     time_layers)
from mmdet_compconv.planning.planner import (calibrate_in_model, check_reachable, fastest_choices,
                                             part_macs, planned_model, whole_latency)

pytestmark = pytest.mark.usefixtures('mmdet_scope_one_thread')  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / 'configs/shapes/faster-rcnn_compconv128-r18_fpn_shapes.py')
VANILLA = str(ROOT / 'configs/shapes/faster-rcnn_r18_fpn_shapes.py')


# ---------------------------------------------------------------- solver

def brute_force(costs, errors, budget):
    best = math.inf
    for choice in itertools.product(*[range(len(c)) for c in costs]):
        if sum(c[j] for c, j in zip(costs, choice)) <= budget:
            best = min(best, sum(e[j] for e, j in zip(errors, choice)))
    return best


@pytest.mark.parametrize('seed', range(40))
def test_solver_is_optimal_on_small_integer_cases(seed):
    rng = random.Random(seed)
    groups = rng.randint(1, 5)
    costs = [[rng.randint(0, 9) for _ in range(rng.randint(1, 4))] for _ in range(groups)]
    errors = [[round(rng.random(), 3) for _ in c] for c in costs]
    cheapest = sum(min(c) for c in costs)
    budget = rng.randint(max(cheapest, 1), max(cheapest, 1) + 15)
    slack = budget - cheapest
    s = solve_knapsack(costs, errors, budget, bins=max(slack, 1))  # one bin per unit: exact
    assert s.cost <= budget
    assert s.error == pytest.approx(brute_force(costs, errors, budget))
    assert s.cost == sum(c[j] for c, j in zip(costs, s.choices))


@pytest.mark.parametrize('seed', range(10))
def test_solver_respects_real_budgets_on_a_grid(seed):
    rng = random.Random(seed)
    costs = [[rng.uniform(0, 5) for _ in range(3)] for _ in range(6)]
    errors = [[rng.random() for _ in range(3)] for _ in range(6)]
    budget = sum(min(c) for c in costs) + rng.uniform(0.1, 5)
    s = solve_knapsack(costs, errors, budget, bins=2000)
    assert s.cost <= budget
    # the grid rounds costs up by < budget / bins each: optimal for a budget that much lower
    assert s.error <= brute_force(costs, errors, budget - 6 * budget / 2000) + 1e-9
    assert s.error >= brute_force(costs, errors, budget) - 1e-9


def test_solver_ties_go_to_the_cheapest_choice():
    s = solve_knapsack([[5, 3], [2, 1]], [[0, 0], [0, 0]], budget=10, bins=10)
    assert s.choices == (1, 1) and s.cost == 4
    s = solve_knapsack([[5, 3], [2, 1]], [[1, 0], [0, 0]], budget=4, bins=10)
    assert s.choices == (1, 1) and s.cost == 4


def test_solver_takes_the_least_errors_when_they_fit_at_the_budget():
    costs = [[0.3 + 1e-3 * i, 0.1] for i in range(7)]  # dense first, not on any grid step
    s = solve_knapsack(costs, [[0, 1]] * 7, sum(c[0] for c in costs), bins=13)
    assert s.choices == (0, ) * 7 and s.error == 0


def test_solver_reaches_a_budget_equal_to_the_cheapest_choice():
    costs = [[0.1 + 0.2, 0.7], [0.565, 0.9]] * 3
    cheapest = sum(min(c) for c in costs)
    s = solve_knapsack(costs, [[1, 0], [1, 0]] * 3, cheapest, bins=7)
    assert s.choices == (0, 0) * 3 and s.error == 6


@pytest.mark.parametrize('args, match', [
    (([[1]], [[0]], 0), r'budget must be > 0, got 0'),
    (([[1]], [[0]], -2.5), r'budget must be > 0, got -2.5'),
    (([[3, 4], [2]], [[0, 0], [0]], 4), r'the budget 4 is unreachable: the cheapest choice '
                                        r'costs 5'),
    (([[1, 2]], [[0]], 4), 'same, non-empty groups'),
    (([[-1]], [[0]], 4), 'costs must be >= 0'),
])
def test_solver_refusals_name_the_value(args, match):
    with pytest.raises(ValueError, match=match):
        solve_knapsack(*args)


@pytest.mark.parametrize('latency, macs, match', [
    (None, None, 'exactly one of --latency-ratio and --macs-ratio, got --latency-ratio None '
                 'and --macs-ratio None'),
    (0.7, 0.5, 'got --latency-ratio 0.7 and --macs-ratio 0.5'),
    (0.0, None, r'--latency-ratio must be a fraction in \(0, 1\], got 0.0'),
    (-0.5, None, r'--latency-ratio must be a fraction in \(0, 1\], got -0.5'),
    (None, 1.2, r'--macs-ratio must be a fraction in \(0, 1\], got 1.2'),
    (None, float('nan'), r'--macs-ratio must be a fraction in \(0, 1\], got nan'),
])
def test_bad_budgets_are_refused_naming_the_value(latency, macs, match):
    with pytest.raises(ValueError, match=match):
        check_budget(latency, macs)


def test_good_budgets():
    assert check_budget(1.0, None) == ('latency', 1.0)
    assert check_ratio(1) == 1.0


@pytest.mark.parametrize('runtime, precision, match', [
    ('onnxruntime', 'bf16', "'bf16' is not available with onnxruntime"),
    ('torch', 'int8', "--precision must be one of .* got 'int8'"),
    ('tensorrt', 'fp32', "--runtime must be one of .* got 'tensorrt'"),
])
def test_runtime_and_precision_refusals(runtime, precision, match):
    with pytest.raises(ValueError, match=match):
        check_runtime(runtime, precision)


# ---------------------------------------------------------------- candidates and plans

def test_candidates_of_a_resnet18():
    layers = candidate_layers(Config.fromfile(SHAPES).model.backbone, (64, 64), (64, 128, 256))
    assert [lay.name for lay in layers][:3] == ['layer1.0.conv1', 'layer1.0.conv2',
                                                'layer1.1.conv1']
    assert len(layers) == 16
    first = layers[0]
    assert first.in_shape == (1, 64, 16, 16)
    assert [o.label for o in first.options] == ['dense', 'c0=64']  # c0 128, 256: same d=1
    last = layers[-1]
    assert [(o.label, o.depth) for o in last.options] == [('dense', 0), ('c0=64', 3),
                                                          ('c0=128', 3), ('c0=256', 2)] or \
        len({(o.depth, o.prim_channels) for o in last.options}) == len(last.options)
    assert all(o.macs < last.options[0].macs for o in last.options[1:])
    plan = plan_from_choices(layers, [1] * len(layers))
    model = MODELS.build(ConfigDict(planned_model(Config.fromfile(VANILLA).model.to_dict(),
                                                 plan)))
    assert type(model.backbone).__name__ == 'CompConvResNet'
    assert model.backbone.effective_compconv_plan()['layer4.1.conv2']['c0'] == 64
    with pytest.raises(ValueError, match=r"--layers 'nothing' matches none"):
        candidate_layers(Config.fromfile(SHAPES).model.backbone, (64, 64), (64, ), 'nothing')


def test_a_plan_goes_over_the_configs_own_plan():
    model_cfg = Config.fromfile(SHAPES).model.to_dict()
    model_cfg['backbone']['compconv_plan'] = {'conv1': dict(c0=64), 'layer1.0.conv1': None}
    out = planned_model(model_cfg, {'layer1.0.conv1': dict(c0=64), 'layer2.0.conv1': None})
    assert out['backbone']['compconv_plan'] == {
        'conv1': dict(type='CompConv', c0=64), 'layer1.0.conv1': dict(c0=64),
        'layer2.0.conv1': None}
    layers = candidate_layers(model_cfg['backbone'], (64, 64), (64, ), r'layer1\.0\.conv1')
    assert [lay.name for lay in layers] == ['layer1.0.conv1']


def test_solve_plan_over_layers_and_unreachable_budgets():
    layers = candidate_layers(Config.fromfile(SHAPES).model.backbone, (64, 64), (64, 256),
                              r'layer4\..*')
    for lay in layers:
        for k, o in enumerate(lay.options):
            o.ms, o.error = 10.0 - 3 * k, float(k)
    baseline = 100.0
    solution, predicted = solve_plan(layers, 'latency', 0.9, baseline)
    assert predicted <= 90.0 + 1e-9 and predicted == baseline - sum(
        lay.options[0].ms - lay.options[j].ms for lay, j in zip(layers, solution.choices))
    assert solution.error == pytest.approx(brute_force(
        [[o.ms for o in lay.options] for lay in layers],
        [[o.error for o in lay.options] for lay in layers], 90.0 - (baseline - 10 * len(layers))))
    with pytest.raises(ValueError, match=r'--latency-ratio 0.5 is unreachable: the lowest '
                                         r'predicted ratio of these candidates is 0.70'):
        solve_plan(layers, 'latency', 0.5, baseline)


def test_in_model_calibration_predicts_both_measured_plans_exactly():
    layers = candidate_layers(Config.fromfile(SHAPES).model.backbone, (64, 64), (64, 256),
                              r'layer4\..*')
    for i, lay in enumerate(layers):
        for k, o in enumerate(lay.options):
            o.ms, o.error = 10.0 - (2 + i) * k, float(k)
    fastest = fastest_choices(layers)
    assert fastest == [len(lay.options) - 1 for lay in layers]
    saved_alone = sum(lay.options[0].ms - lay.options[j].ms for lay, j in zip(layers, fastest))
    dense_ms, fastest_ms = 100.0, 100.0 - 0.4 * saved_alone
    assert calibrate_in_model(layers, dense_ms, fastest_ms) == pytest.approx(0.4)
    # every layer dense and every layer at its fastest: the two measured latencies
    _, predicted = solve_plan(layers, 'latency', 1.0, dense_ms)
    assert predicted == pytest.approx(dense_ms)
    lowest = check_reachable(layers, 'latency', 1.0, dense_ms)
    assert lowest * dense_ms == pytest.approx(fastest_ms)
    # the solver plans with the in-model costs: a ratio reachable alone is not in the model
    with pytest.raises(ValueError, match='is unreachable'):
        solve_plan(layers, 'latency', (dense_ms - 0.5 * saved_alone) / dense_ms, dense_ms)
    # the fastest candidates not faster in the model: nothing is saved, only dense fits
    assert calibrate_in_model(layers, dense_ms, dense_ms + 1.0) == 0.0
    assert all(o.model_ms == lay.options[0].ms for lay in layers for o in lay.options)


# ---------------------------------------------------------------- latency and cache

def test_cache_is_keyed_by_environment_and_layer(tmp_path):
    path = str(tmp_path / 'cache.json')
    env = dict(runtime='torch', version='2', precision='fp32', cpu='X', threads=1)
    cache = LatencyCache(path, env)
    cache.put('dense 8x4x4->8 k3 s1 d1', 1.25)
    cache.save()
    assert LatencyCache(path, env).get('dense 8x4x4->8 k3 s1 d1') == 1.25
    for change in (dict(runtime='openvino'), dict(version='3'), dict(precision='bf16'),
                   dict(cpu='Y'), dict(threads=2)):
        other = LatencyCache(path, dict(env, **change))
        assert other.get('dense 8x4x4->8 k3 s1 d1') is None and other.misses == 1
    assert LatencyCache(path, env).get('dense 8x4x4->8 k3 s1 d2') is None
    assert set(environment('torch', 'fp32', 2)) == {'runtime', 'version', 'precision', 'cpu',
                                                   'threads'}


def test_layer_keys():
    conv = nn.Conv2d(64, 64, 3, padding=1)
    a = CompConv(64, 64, 3, padding=1, c0=64)
    b = CompConv(64, 64, 3, padding=1, depth=2)
    keys = {layer_key(m, (1, 64, 8, 8), 0.15) for m in (conv, a, b)}
    assert len(keys) == 3
    assert layer_key(conv, (1, 64, 8, 8), 0.15) != layer_key(conv, (1, 64, 8, 16), 0.15)
    expanding = CompConv(64, 256, 1)  # collapses at deploy: costs what the dense conv costs
    assert layer_key(expanding, (64, 8, 8), 0.15) == layer_key(nn.Conv2d(64, 256, 1),
                                                               (64, 8, 8), 0.15)
    assert layer_key(expanding, (64, 8, 8), None).startswith('compconv')


@pytest.mark.parametrize('runtime', ['torch', 'onnxruntime', 'openvino'])
def test_time_layers_measures_once_then_hits_the_cache(tmp_path, runtime):
    if runtime != 'torch':
        pytest.importorskip(runtime)
    convs = {'a|dense': (nn.Conv2d(16, 16, 3, padding=1, bias=False), (1, 16, 8, 8)),
             'a|c0=8': (CompConv(16, 16, 3, padding=1, c0=8, bias=False), (1, 16, 8, 8)),
             'b|dense': (nn.Conv2d(16, 16, 3, padding=1, bias=False), (1, 16, 8, 8)),
             'c|1x1': (CompConv(16, 64, 1, bias=False), (1, 16, 8, 8))}
    path = str(tmp_path / 'cache.json')
    env = environment(runtime, 'fp32', 1)
    cache = LatencyCache(path, env)
    done = []
    first = time_layers(convs, runtime, 'fp32', 1, cache, 0.15, 0, 1, done.append)
    assert sum(done) == 4 and cache.misses == 3  # 'b|dense' is 'a|dense' again
    assert first['a|dense'] == first['b|dense'] > 0
    cache.save()
    again = LatencyCache(path, env)
    assert time_layers(convs, runtime, 'fp32', 1, again, 0.15, 0, 1) == first
    assert (again.hits, again.misses) == (3, 0)


def test_bf16_torch_layers_run(tmp_path):
    convs = {'a': (CompConv(16, 16, 3, padding=1, c0=8, bias=False), (1, 16, 8, 8))}
    cache = LatencyCache(None, environment('torch', 'bf16', 1))
    assert time_layers(convs, 'torch', 'bf16', 1, cache, 0.15, 0, 1)['a'] > 0


def test_whole_latency_on_onnxruntime():
    pytest.importorskip('onnxruntime')
    cfg = Config.fromfile(SHAPES)
    ms = whole_latency(cfg, {'m': cfg.model.to_dict()}, 'backbone', (32, 32), 'onnxruntime',
                       'fp32', 1, 0.15, 0, 1)
    assert ms['m'] > 0
    assert part_macs(cfg.model.to_dict(), 'backbone', (32, 32)) < part_macs(
        Config.fromfile(VANILLA).model.to_dict(), 'backbone', (32, 32))


# ---------------------------------------------------------------- errors

def test_errors_with_a_teacher_and_with_the_proxy():
    backbone = Config.fromfile(SHAPES).model.backbone
    layers = candidate_layers(backbone, (64, 64), (64, 256), r'layer[34]\.1\.conv2')
    teacher = MODELS.build(dict(type='ResNet', depth=18))
    teacher.eval()
    images = torch.randn(4, 3, 64, 64)
    fill_errors(layers, teacher, images, steps=3, crop=4, per_image=2)
    for lay in layers:
        assert lay.options[0].error == 0
        assert all(0 < o.error < 2 for o in lay.options[1:])
    before = [o.error for lay in layers for o in lay.options]
    fill_errors(layers, None, None, steps=3, crop=4, per_image=2)  # the proxy
    assert [o.error for lay in layers for o in lay.options] != before
    assert all(o.error > 0 for lay in layers for o in lay.options[1:])


# ---------------------------------------------------------------- the command line

def load_tool(name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / 'analysis_tools' /
                                                  f'{name}.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture
def run_tool(capsys):
    """Run plan_compconv.py in this process: (exit code, stdout, stderr)."""
    tool = load_tool('plan_compconv')

    def run(*args):
        code = tool.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


def test_tool_latency_budget_writes_a_trainable_config_and_hits_its_cache(tmp_path, run_tool):
    args = [SHAPES, '--runtime', 'torch', '--size', '32x32', '--threads', '1',
            '--latency-ratio', '1.0', '--out-dir', str(tmp_path / 'out'), '--cache',
            str(tmp_path / 'cache.json'), '--fit-steps', '2', '--repeats', '1', '--warmup',
            '0', '--layers', r'layer4\.\d\.conv\d', '--c0', '64']
    code, first, err = run_tool(*args)
    assert code == 0, err
    assert '0 hits, 4 measured' in first
    assert 'PROXY' in first and '| layer | choice | d / C_p | ms saved | error |' in first
    assert 'relative error' in first
    code, second, err = run_tool(*args)
    assert code == 0, err
    assert '4 hits, 0 measured' in second
    stem = 'faster-rcnn_compconv128-r18_fpn_shapes_plan-torch-fp32-32x32-latency1'
    plan = json.loads((tmp_path / 'out' / f'{stem}.json').read_text())
    assert set(plan) == {f'layer4.{b}.conv{c}' for b in (0, 1) for c in (1, 2)}
    assert all(v is None for v in plan.values()), second  # ratio 1.0: all dense
    report = json.loads((tmp_path / 'out' / f'{stem}_report.json').read_text())
    assert report['error_source'] == 'proxy' and report['predicted_ratio'] <= 1.0
    cfg = Config.fromfile(str(tmp_path / 'out' / f'{stem}.py'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model.backbone.layer4[1].conv2) is nn.Conv2d
    assert isinstance(model.backbone.layer3[1].conv2, CompConv)  # unnamed: compconv_cfg


def test_tool_macs_budget_with_a_teacher(tmp_path, run_tool):
    teacher = MODELS.build(Config.fromfile(VANILLA).model)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    rng = np.random.default_rng(0)
    for i in range(3):
        mmcv.imwrite(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8),
                     str(tmp_path / 'images' / f'{i}.png'))
    out = tmp_path / 'out'
    code, stdout, err = run_tool(VANILLA, '--runtime', 'onnxruntime', '--size', '32x32',
                                 '--macs-ratio', '0.6', '--teacher-ckpt', ckpt, '--images',
                                 tmp_path / 'images', '--out-dir', out, '--cache', 'none',
                                 '--fit-steps', '2', '--repeats', '1', '--warmup', '0',
                                 '--num-images', '3')
    assert code == 0, err
    assert 'MMACs saved' in stdout and 'PROXY' not in stdout
    stem = 'faster-rcnn_r18_fpn_shapes_plan-onnxruntime-fp32-32x32-macs0.6'
    report = json.loads((out / f'{stem}_report.json').read_text())
    assert report['error_source'] == 'teacher' and report['macs_ratio_planned'] <= 0.6
    cfg = Config.fromfile(str(out / f'{stem}.py'))
    assert cfg.model.backbone.type == 'CompConvResNet' and cfg.model.backbone.compconv_cfg is None
    assert part_macs(cfg.model.to_dict(), 'backbone', (32, 32)) == report['predicted_macs']


@pytest.mark.parametrize('extra, message', [
    (['--latency-ratio', '0.7', '--macs-ratio', '0.5'],
     'got --latency-ratio 0.7 and --macs-ratio 0.5'),
    (['--macs-ratio', '0'], r'--macs-ratio must be a fraction in (0, 1], got 0.0'),
    (['--macs-ratio', '0.01'], '--macs-ratio 0.01 is unreachable: the lowest predicted ratio'),
    (['--macs-ratio', '0.5', '--teacher-ckpt', 'x.pth'],
     '--teacher-ckpt and --images go together, got --teacher-ckpt x.pth and --images None'),
    (['--macs-ratio', '0.5', '--precision', 'bf16', '--runtime', 'onnxruntime'],
     "'bf16' is not available with onnxruntime"),
])
def test_tool_refusals_name_the_value(tmp_path, run_tool, extra, message):
    args = [SHAPES, '--runtime', 'torch', '--size', '32x32', '--out-dir', str(tmp_path)]
    code, _, err = run_tool(*(args + extra))
    assert code == 2
    assert message in err


# ---------------------------------------------------------------- the Pareto plot

def test_plot_pareto_on_synthetic_runs(tmp_path, capsys):
    tool = load_tool('plot_pareto')
    rows = [('all-c0=128', 'preset', 0.80, 0.60, 0), ('all-c0=128', 'preset', 0.82, 0.62, 1),
            ('3x3-c0=128', 'preset', 0.90, 0.66, 0), ('plan-0.85', 'plan', 0.85, 0.66, 0),
            ('plan-0.75', 'plan', 0.75, 0.58, 0), ('dominated', 'plan', 0.95, 0.60, 0)]
    path = tmp_path / 'runs.csv'
    path.write_text('name,kind,latency_ratio,box_ap,seed\n' +
                    ''.join(','.join(map(str, r)) + '\n' for r in rows))
    points = tool.summarise(tool.read_runs(str(path)))
    preset = next(p for p in points if p['name'] == 'all-c0=128')
    assert preset['runs'] == 2 and preset['box_ap'] == pytest.approx(0.61)
    assert tool.pareto_front(points) == ['plan-0.75', 'all-c0=128', 'plan-0.85']
    out = tmp_path / 'pareto.png'
    json_path = tmp_path / 'runs.json'
    json_path.write_text(json.dumps([dict(name=r[0], kind=r[1], latency_ratio=r[2],
                                          box_ap=r[3]) for r in rows]))
    assert tool.main([str(json_path), '--out', str(out)]) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '| plan-0.85 | plan | 1 | 0.850 | 0.6600 | yes |' in capsys.readouterr().out
    bad = tmp_path / 'bad.csv'
    bad.write_text('name,ap\nx,1\n')
    with pytest.raises(ValueError, match=r"missing \['kind', 'latency_ratio', 'box_ap'\]"):
        tool.read_runs(str(bad))
