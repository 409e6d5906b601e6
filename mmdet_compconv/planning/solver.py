"""An exact multiple-choice knapsack solver: one option per layer, least total error within a
budget, by dynamic programming over a discretised cost grid."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

__all__ = ['Solution', 'check_ratio', 'solve_knapsack']


@dataclass(frozen=True)
class Solution:
    """What :func:`solve_knapsack` chose.

    A frozen dataclass; each argument is kept as the attribute of the same name.

    Args:
        choices (tuple[int, ...]): the option index chosen for each group (layer).
        cost (float): the total cost of the choices (exact, not discretised).
        error (float): their total error.
    """

    choices: tuple
    cost: float
    error: float


def check_ratio(ratio: float, name: str = 'ratio') -> float:
    """Raise unless ``ratio`` is a budget ratio in (0, 1].

    Args:
        ratio (float): the ratio.
        name (str): how the message names it, e.g. ``'--latency-ratio'``. Default: 'ratio'.

    Returns:
        float: ``ratio`` as a float.

    Raises:
        ValueError: not a finite number in (0, 1]; the message names the value.

    Example:
        >>> check_ratio(0.7)
        0.7
        >>> check_ratio(1.5, '--macs-ratio')
        Traceback (most recent call last):
        ...
        ValueError: --macs-ratio must be a fraction in (0, 1], got 1.5
    """
    if (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
            or not math.isfinite(ratio) or not 0 < ratio <= 1):
        raise ValueError(f'{name} must be a fraction in (0, 1], got {ratio!r}')
    return float(ratio)


def solve_knapsack(costs: Sequence[Sequence[float]],
                   errors: Sequence[Sequence[float]],
                   budget: float,
                   bins: int = 4000) -> Solution:
    """Pick one option per group minimising the total error with the total cost <= ``budget``.

    The multiple-choice knapsack, solved exactly by dynamic programming on a grid: the grid
    spans the slack between the cheapest choice and the budget in ``bins`` steps, and each
    option's cost above its group's cheapest is rounded *up* to a step, so every answer
    respects the budget exactly (and the cheapest choice is always feasible); a choice
    within ``groups * slack / bins`` below the budget may be passed over. With integer
    costs and ``bins`` equal to the slack nothing is rounded and the answer is optimal. When
    the least-error option of every group fits the budget together, that choice is returned
    (it is optimal; e.g. all dense at a ratio of 1).
    Among choices of equal error the cheapest (on the grid) wins. Time and memory are
    O(groups x bins) per option.

    Args:
        costs (Sequence[Sequence[float]]): per group, the cost of each option (>= 0).
        errors (Sequence[Sequence[float]]): per group, the error of each option.
        budget (float): the largest total cost allowed (> 0).
        bins (int): the number of grid steps the slack (budget minus the cheapest choice) is
            divided into. Default: 4000.

    Returns:
        Solution: the option index per group, the total cost and the total error.

    Raises:
        ValueError: mismatched or empty groups, a negative cost, a budget <= 0, or a
            budget below the cheapest choice (the message names both).

    Example:
        >>> s = solve_knapsack([[4, 2, 1], [3, 1]], [[0, 1, 5], [0, 2]], budget=5, bins=3)
        >>> s.choices, s.cost, s.error
        ((1, 0), 5.0, 1.0)
    """
    if len(costs) != len(errors) or any(len(c) != len(e) or not c
                                         for c, e in zip(costs, errors)):
        raise ValueError('costs and errors must have the same, non-empty groups')
    if not budget > 0:
        raise ValueError(f'the budget must be > 0, got {budget!r}')
    if any(c < 0 for group in costs for c in group):
        raise ValueError('costs must be >= 0')
    mins = [min(group) for group in costs]
    cheapest = sum(mins)
    slack = budget - cheapest
    if slack < -1e-9 * budget:
        raise ValueError(f'the budget {budget:g} is unreachable: the cheapest choice costs '
                         f'{cheapest:g}')
    # the least error of each group, cheapest among equals: optimal whenever it fits
    least = tuple(min(range(len(e)), key=lambda j, e=e, c=c: (e[j], c[j]))
                  for c, e in zip(costs, errors))
    if sum(c[j] for c, j in zip(costs, least)) <= budget:
        return Solution(least, float(sum(c[j] for c, j in zip(costs, least))),
                        float(sum(e[j] for e, j in zip(errors, least))))
    # the grid spans the slack above the cheapest choice, which is always on it (weight 0)
    unit = max(slack, 0.0) / bins
    weights = [[math.ceil((c - m) / unit - 1e-9) if unit > 0 else (0 if c == m else bins + 1)
                for c in group] for group, m in zip(costs, mins)]
    best = np.full(bins + 1, np.inf)  # best[b]: least error at total weight exactly b
    best[0] = 0.0
    picks = np.zeros((len(costs), bins + 1), dtype=np.int32)
    for i, (ws, es) in enumerate(zip(weights, errors)):
        new = np.full(bins + 1, np.inf)
        for j, (w, e) in enumerate(zip(ws, es)):
            if w > bins:
                continue
            cand = np.full(bins + 1, np.inf)
            cand[w:] = best[:bins + 1 - w] + e
            better = cand < new
            new[better] = cand[better]
            picks[i, better] = j
        best = new
    b = int(np.argmin(best))  # the first of the least errors: the cheapest
    choices: List[int] = []
    for i in range(len(costs) - 1, -1, -1):
        j = int(picks[i, b])
        choices.append(j)
        b -= weights[i][j]
    choices.reverse()
    return Solution(tuple(choices), float(sum(c[j] for c, j in zip(costs, choices))),
                    float(sum(e[j] for e, j in zip(errors, choices))))
