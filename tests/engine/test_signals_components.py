"""``signals.relative_component`` as one arithmetic expression, against the when/then chain
of its rules it replaced (verbatim below), on values that hit every rule: zeros, nulls, NaN,
infinities, sub-normal and huge numbers, for several steepnesses."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_series_equal

from budget_pipeline.engine.signals import relative_component


def chain_component(current: pl.Expr, baseline: pl.Expr, k: float) -> pl.Expr:
    current = current.fill_nan(None)
    baseline = baseline.fill_nan(None)
    return (
        pl.when(current.is_null() | baseline.is_null())
        .then(0.5)
        .when((current == 0) & (baseline == 0))
        .then(0.5)
        .when(baseline == 0)
        .then(1.0)
        .when(current == 0)
        .then(0.0)
        .otherwise(1.0 / (1.0 + (current / baseline) ** (-k)))
        .fill_nan(0.5)
        .clip(0.0, 1.0)
    )


SPECIAL = [0.0, None, float("nan"), float("inf"), 5e-324, 1e-300, 1e300, 1.0, 2.5]


@pytest.mark.parametrize("k", [0.1, 1.0, 2.0, 3.0, 2.7, 10.0])
def test_relative_component_equals_the_rules(k):
    rng = np.random.default_rng(int(k * 10))
    special = [(a, b) for a in SPECIAL for b in SPECIAL]
    randoms = rng.lognormal(0.0, 3.0, size=(4000, 2))
    randoms[rng.random(randoms.shape) < 0.1] = 0.0
    pairs = special + [(float(a), float(b)) for a, b in randoms]
    frame = pl.DataFrame(
        {"c": [a for a, _ in pairs], "b": [b for _, b in pairs]},
        schema={"c": pl.Float64, "b": pl.Float64},
    )
    got = frame.select(s=relative_component(pl.col("c"), pl.col("b"), k))["s"]
    want = frame.select(s=chain_component(pl.col("c"), pl.col("b"), k))["s"]
    assert got.null_count() == 0 and not got.is_nan().any()
    assert_series_equal(got, want, check_exact=True)
    # the bits too (a -0.0 against a 0.0 would pass the comparison above)
    assert np.array_equal(got.to_numpy().view(np.int64), want.to_numpy().view(np.int64))
