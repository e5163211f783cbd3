"""Speed benchmarks (``budget-pipeline bench``): the scale curve of the whole pipeline, the
decision steps against their one-pass floor and a naive pandas reference, and the planner
alone at 100k ad sets. Decision quality has its own bench (``bench decisions``)."""

from budget_pipeline.bench.curve import DEFAULT_SIZES, run_curve
from budget_pipeline.bench.inputs import planning_inputs, scaled_inputs

__all__ = ["DEFAULT_SIZES", "planning_inputs", "run_curve", "scaled_inputs"]
