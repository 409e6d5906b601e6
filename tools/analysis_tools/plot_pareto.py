"""Draw latency ratio vs box AP of trained models (presets and plans), with the Pareto front.

The input is a CSV (header ``name,kind,latency_ratio,box_ap``, an optional ``seed`` column)
or a JSON list of objects with those keys; ``kind`` is e.g. ``preset`` or ``plan``. Rows of
one name (several seeds) are averaged. A model is on the front when no other is at least as
fast and at least as accurate, and better on one of the two. The table is printed, the plot
written to ``--out``.

Example:
    python tools/analysis_tools/plot_pareto.py work_dirs/pareto_runs.csv --out pareto.png
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
from typing import Dict, List, Optional, Sequence


def read_runs(path: str) -> List[dict]:
    """Rows of a CSV or JSON file: name, kind, latency_ratio, box_ap (floats), optional seed."""
    if path.endswith('.json'):
        with open(path) as f:
            rows = json.load(f)
    else:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
    missing = [k for k in ('name', 'kind', 'latency_ratio', 'box_ap') if rows and k not in rows[0]]
    if not rows or missing:
        raise ValueError(f'{path}: needs rows with name, kind, latency_ratio, box_ap '
                         f'(missing {missing})')
    return [dict(r, latency_ratio=float(r['latency_ratio']), box_ap=float(r['box_ap']))
            for r in rows]


def summarise(rows: Sequence[dict]) -> List[dict]:
    """One point per name: its kind, the number of runs and the mean ratio and AP."""
    by_name: Dict[str, List[dict]] = {}
    for r in rows:
        by_name.setdefault(r['name'], []).append(r)
    return [dict(name=n, kind=rs[0]['kind'], runs=len(rs),
                 latency_ratio=statistics.mean(r['latency_ratio'] for r in rs),
                 box_ap=statistics.mean(r['box_ap'] for r in rs)) for n, rs in by_name.items()]


def pareto_front(points: Sequence[dict]) -> List[str]:
    """Names of the points no other point dominates (lower or equal ratio and higher or
    equal AP, strictly better in one), by increasing latency ratio."""
    def dominates(a: dict, b: dict) -> bool:
        return (a['latency_ratio'] <= b['latency_ratio'] and a['box_ap'] >= b['box_ap']
                and (a['latency_ratio'] < b['latency_ratio'] or a['box_ap'] > b['box_ap']))
    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return [p['name'] for p in sorted(front, key=lambda p: p['latency_ratio'])]


def plot(points: Sequence[dict], front: Sequence[str], out: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    markers = {'preset': 's', 'plan': 'o'}
    for kind in sorted({p['kind'] for p in points}):
        pts = [p for p in points if p['kind'] == kind]
        ax.scatter([p['latency_ratio'] for p in pts], [p['box_ap'] for p in pts],
                   marker=markers.get(kind, '^'), label=kind, zorder=3)
        for p in pts:
            ax.annotate(p['name'], (p['latency_ratio'], p['box_ap']), fontsize=7,
                        xytext=(4, 3), textcoords='offset points')
    by_name = {p['name']: p for p in points}
    ax.step([by_name[n]['latency_ratio'] for n in front], [by_name[n]['box_ap'] for n in front],
            where='post', color='grey', linestyle='--', label='Pareto front', zorder=2)
    ax.set_xlabel('latency ratio (CompConv / dense)')
    ax.set_ylabel('box AP')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', help='a CSV or JSON file of runs')
    parser.add_argument('--out', default='pareto.png', help='the image to write')
    parser.add_argument('--title', default='latency ratio vs box AP')
    args = parser.parse_args(argv)
    points = summarise(read_runs(args.runs))
    front = pareto_front(points)
    print('| name | kind | runs | latency ratio | box AP | Pareto |')
    print('|---|---|---|---|---|---|')
    for p in sorted(points, key=lambda p: p['latency_ratio']):
        print(f'| {p["name"]} | {p["kind"]} | {p["runs"]} | {p["latency_ratio"]:.3f} '
              f'| {p["box_ap"]:.4f} | {"yes" if p["name"] in front else ""} |')
    plot(points, front, args.out, args.title)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
