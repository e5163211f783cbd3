"""Review 19: ``daily_performance`` (ids as Categorical from integer keys) feeding the response
curves and the counterfactual's curve estimate, over five months merged one month at a time
into a real DuckDB warehouse (tests/hourly_insights.py): generations of ad sets come and go,
so a two-month window uses a sparse, non-contiguous few of the keys (the staged read) and the
whole history all of them (the dense read). Everything computed from the Categorical frame
equals what the same rows give with string ids (``.cast(pl.String)``) to 1e-12 relative, and
the rows equal the hours read straight as strings."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from hourly_insights import START, adset_hours, as_insights, daily_from_the_hours

from budget_pipeline import insights_rollup
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine import entity_keys
from budget_pipeline.engine.counterfactual_value import curve_outcomes
from budget_pipeline.engine.response_curves import daily_performance, holder_curves
from budget_pipeline.warehouse_schema import ensure_schema

DAYS = 150
GENERATIONS = 5  # each lives 30 days; two ad sets of the first live throughout
AS_OF = START + timedelta(days=DAYS, hours=5)
CONFIG = PoolsConfig(
    pools=[{"name": p, "tier": 1, "floor": 0, "ceiling": 10_000} for p in ("p0", "p1")]
)


def _adset(g: int, i: int) -> str:
    return f"{chr(ord('z') - g)}-{i:02d}"  # later generations sort first: keys not in id order


def _campaign(g: int, i: int) -> str:
    return f"c{(7 * g) % 5}-{i % 3}"


def _history(path) -> duckdb.DuckDBPyConnection:
    rng = np.random.default_rng(19)
    con = duckdb.connect(str(path))
    ensure_schema(con)
    hours = pl.datetime_range(START, START + timedelta(days=DAYS + 1), "1h", eager=True)
    frames = []
    for g in range(GENERATIONS):
        for i in range(12):
            lo = START + timedelta(days=30 * g)
            hi = START + timedelta(days=DAYS + 1 if (g, i) in {(0, 0), (0, 1)} else 30 * (g + 1))
            ts = hours.filter(
                (hours >= lo) & (hours < hi) & pl.Series(rng.random(hours.len()) > 0.3)
            )
            n = ts.len()
            spend = rng.uniform(0, 40, n) * (1 + i / 6)
            conversions = spend**0.6 * rng.uniform(0.0, 0.2, n)
            frames.append(
                adset_hours(
                    rng, ts, _campaign(g, i), _adset(g, i), spend, conversions, rng.random(n) > 0.4
                )
            )
    hourly = as_insights(frames)
    for month in range(0, DAYS + 1, 30):  # merged a month at a time, as the merge keys them
        lo, hi = (START + timedelta(days=d) for d in (month, month + 30))
        chunk = hourly.filter(pl.col("ts") >= lo, pl.col("ts") < hi)
        con.execute("BEGIN")
        con.register("chunk", chunk.to_arrow())
        con.execute("INSERT INTO insights BY NAME SELECT * FROM chunk")
        con.unregister("chunk")
        insights_rollup.refresh(con, lo.date(), (hi - timedelta(days=1)).date())
        con.execute("COMMIT")
    return con


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = _history(tmp_path_factory.mktemp("r19") / "w.duckdb")
    yield con
    con.close()


def _holders() -> pl.DataFrame:
    rows = []
    for g in range(GENERATIONS):
        pool = f"p{g % 2}"
        rows += [(_adset(g, i), "adset", pool) for i in range(6)]
        rows.append((_campaign(g, 2), "campaign", pool))  # a CBO campaign: its ad sets summed
    holders = pl.DataFrame(rows, schema=["holder_id", "entity_type", "pool"], orient="row")
    return holders.unique("holder_id", keep="first", maintain_order=True)


def _close(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns and got.height == want.height
    for name in got.columns:
        a, b = got[name], want[name]
        if a.dtype.is_float():
            x, y = a.to_numpy(), b.to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            ok = ~np.isnan(x)
            assert np.allclose(x[ok], y[ok], rtol=1e-12, atol=0.0), name
        else:
            assert a.cast(pl.String).to_list() == b.cast(pl.String).to_list(), name


@pytest.mark.parametrize(
    ("days", "read"), [(56, "select_entity_keys_staged"), (DAYS, "select_entity_keys")]
)
def test_curves_and_counterfactual_from_keys_equal_those_from_strings(con, monkeypatch, days, read):
    seen: list[str] = []
    real = entity_keys.load_sql
    monkeypatch.setattr(entity_keys, "load_sql", lambda name: seen.append(name) or real(name))
    daily = daily_performance(con, AS_OF, days)
    assert seen == [read]
    assert daily.schema["adset_id"] == daily.schema["campaign_id"] == pl.Categorical
    plain = daily.with_columns(pl.col("adset_id", "campaign_id").cast(pl.String))
    key = ["adset_id", "date"]
    assert plain.sort(key).equals(daily_from_the_hours(con, AS_OF, days).sort(key))
    used = plain["adset_id"].unique()
    assert used.is_in([_adset(0, 0), _adset(0, 1)]).sum() == 2 and used.len() >= 26

    holders = _holders()
    for as_of in (AS_OF, AS_OF - timedelta(days=9)):
        _close(
            holder_curves(daily, holders, as_of=as_of).sort("holder_id"),
            holder_curves(plain, holders, as_of=as_of).sort("holder_id"),
        )
    last = AS_OF.date() - timedelta(days=1)
    live = holders.filter(pl.col("holder_id").is_in(plain["adset_id"].implode())
                          | pl.col("holder_id").is_in(plain["campaign_id"].implode()))  # fmt: skip
    assert live.height >= 10
    budgets = pl.DataFrame(
        [
            {"entity_id": h, "date": last - timedelta(days=k), "pool": p, "real": 10_000,
             "budget": 12_000 if n % 3 else 7_000}
            for n, (h, p) in enumerate(live.select("holder_id", "pool").iter_rows())
            for k in range(7)
        ]
    )  # fmt: skip
    coded = curve_outcomes(budgets, daily, holders, CONFIG, draws=300, seed=3)
    strings = curve_outcomes(budgets, plain, holders, CONFIG, draws=300, seed=3)
    for got, want in zip(coded, strings, strict=True):
        _close(got.sort(got.columns[:2]), want.sort(want.columns[:2]))
