"""The words of a plan, reworked for speed (each case's words built on its own rows, money's
minor digits looked up, the plan id joined in polars), against the words as they were
(tests/plan_text_oracle.py, commit e29447a) on random allocator frames: every case (held,
crumb, pause, waiting pause, donor, recipient, hold, unknown role), every clause, nulls, both
kinds of currency; and plan ids of random plans in any row order."""

from __future__ import annotations

from datetime import datetime

import plan_text_oracle as oracle
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_pipeline.engine.flows import DONOR, HOLD, PAUSE, RECIPIENT
from budget_pipeline.engine.plan_text import allocation_reasons, money_text, plan_id_for

MONEY = st.integers(0, 10**9) | st.sampled_from([0, 1, 99, 100, 101, 10**15])


@st.composite
def allocator_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 30))
    role = st.sampled_from([HOLD, PAUSE, DONOR, RECIPIENT, 7])
    rows = []
    for _ in range(n):
        old = draw(MONEY)
        given, taken = (
            draw(st.sampled_from([0, 0, 1]) | MONEY),
            draw(st.sampled_from([0, 1]) | MONEY),
        )
        rows.append(
            {
                "role": draw(role),
                "old_budget": old,
                "new_budget": draw(MONEY),
                "given": given,
                "taken": taken,
                "offer": draw(st.sampled_from([0, given, given + 1]) | MONEY),
                "want": draw(st.sampled_from([0, taken, taken + 1]) | MONEY),
                "route": draw(st.integers(0, 7)),
                "target_budget": draw(st.none() | MONEY),
                "cap_minor": draw(MONEY),
                "room_min": draw(MONEY),
                "min_budget": draw(MONEY),
                "min_move": draw(MONEY),
                "pool_floor": draw(MONEY),
                "pool_ceiling": draw(MONEY),
                "floor_hit": draw(st.booleans()),
                "ceiling_hit": draw(st.booleans()),
                "margin_blocked": draw(st.booleans()),
                "crumb": draw(st.integers(0, 5)) == 0,
                "pause_waits": draw(st.integers(0, 5)) == 0,
                "block": draw(st.none() | st.none() | st.sampled_from(["locked", "status PAUSED"])),
                "why": draw(st.none() | st.sampled_from(["score 0.91", "marginal return | 1.2"])),
            }
        )
    ints = [
        "role", "old_budget", "new_budget", "given", "taken", "offer", "want", "route",
        "target_budget", "cap_minor", "room_min", "min_budget", "min_move", "pool_floor",
        "pool_ceiling",
    ]  # fmt: skip
    schema = {c: pl.Int64 for c in ints}
    schema |= {c: pl.Boolean for c in ("floor_hit", "ceiling_hit", "margin_blocked")}
    schema |= {"crumb": pl.Boolean, "pause_waits": pl.Boolean, "block": pl.Utf8, "why": pl.Utf8}
    return pl.DataFrame(rows, schema=schema)


@settings(max_examples=150, deadline=None)
@given(
    allocator_frames(),
    st.sampled_from(["EUR", "JPY"]),
    st.sampled_from(["15", "12.5"]),
    st.sampled_from([0.0, 0.1]),
)
def test_reasons_match_every_case_built_for_every_row(frame, currency, cap, margin):
    got = allocation_reasons(frame, currency, cap, margin)
    want = frame.select(oracle.allocation_reason(currency, cap, margin)).to_series()
    assert got.dtype == pl.Utf8 and got.len() == frame.height
    assert got.to_list() == want.to_list()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.none() | st.integers(-(2**62), 2**62) | st.integers(-1000, 1000), max_size=40),
    st.sampled_from(["EUR", "JPY", "usd"]),
)
def test_money_text_matches_printing_and_padding(values, currency):
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Int64})
    got = frame.select(money_text(pl.col("x"), currency)).to_series()
    want = frame.select(oracle.money_text(pl.col("x"), currency)).to_series()
    assert got.to_list() == want.to_list()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=6), MONEY, MONEY, st.booleans()),
        max_size=30,
        unique_by=lambda r: r[0],
    ),
    st.sampled_from(["", "warehouse-a"]),
    st.randoms(use_true_random=False),
)
def test_plan_ids_match_the_old_ones(rows, scope, rnd):
    rnd.shuffle(rows)
    plan = pl.DataFrame(
        rows,
        schema={
            "entity_id": pl.Utf8,
            "old_budget": pl.Int64,
            "new_budget": pl.Int64,
            "pause": pl.Boolean,
        },
        orient="row",
    )
    as_of = datetime(2026, 10, 30, 12, 0)
    assert plan_id_for(plan, as_of, scope) == oracle.plan_id_for(plan, as_of, scope)


def test_plan_id_of_a_plan_with_a_null_budget_is_refused():
    plan = pl.DataFrame(
        {"entity_id": ["a", "b"], "old_budget": [100, None], "new_budget": [100, 90]},
        schema={"entity_id": pl.Utf8, "old_budget": pl.Int64, "new_budget": pl.Int64},
    ).with_columns(pause=pl.lit(False))
    with pytest.raises(ValueError, match="null"):
        plan_id_for(plan, datetime(2026, 10, 30))
