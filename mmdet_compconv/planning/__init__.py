"""Planning a CompConv model to a latency or MAC budget, layer by layer.

* :mod:`.solver`: the exact multiple-choice knapsack (dynamic programming on a cost grid);
* :mod:`.latency`: each candidate layer's latency on a runtime, at a precision, cached;
* :mod:`.sensitivity`: each candidate's error after a short fit to the vanilla layer;
* :mod:`.planner`: candidates, the plan, the planned config
  (``tools/analysis_tools/plan_compconv.py`` is its command line).
"""
from .latency import (PLAN_RUNTIMES, PRECISIONS, LatencyCache, check_runtime, environment,
                      layer_key, time_layers)
from .planner import (DEFAULT_LAYERS, LayerChoices, Option, calibrate_in_model,
                      candidate_layers, check_budget, fastest_choices, fill_errors, fill_latency,
                      plan_from_choices, plan_table, plan_to_budget, solve_plan,
                      write_planned_config)
from .sensitivity import affine_free_error, fit_error
from .solver import Solution, check_ratio, solve_knapsack

__all__ = [
    'PLAN_RUNTIMES', 'PRECISIONS', 'LatencyCache', 'check_runtime', 'environment', 'layer_key',
    'time_layers', 'DEFAULT_LAYERS', 'LayerChoices', 'Option', 'candidate_layers',
    'check_budget', 'calibrate_in_model', 'fastest_choices', 'fill_errors', 'fill_latency', 'plan_from_choices', 'plan_table',
    'plan_to_budget', 'solve_plan', 'write_planned_config', 'affine_free_error', 'fit_error',
    'Solution', 'check_ratio', 'solve_knapsack'
]
