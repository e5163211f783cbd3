"""Issue 12: daily_performance no longer sorts its half million rows by ad set id; the curves
group them per holder on integer keys (holder_runs.holder_days), and the marginal policy's
equilibrium works its curve terms out once. Each must give the old code's numbers: the
per-holder days and the equilibrium to the bit, the curves within the old fit's own jitter."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import marginal_oracle
import numpy as np
import polars as pl
import pytest
import response_curves_oracle as oracle
from hourly_insights import START, adset_hours, as_insights, warehouse

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.holder_runs import (
    HOLDER_DAYS,
    _by_holder_and_day,
    _kahan_sums,
    _numbers,
    holder_days,
    run_starts,
)
from budget_pipeline.engine.marginal_policy import _equal_marginal_targets
from budget_pipeline.engine.response_curves import (
    DAILY,
    daily_performance,
    fit_response_curves,
    holder_curves,
    holder_daily,
)

AS_OF = datetime(2026, 10, 30)
ELASTICITY = {"p": 0.6, "q": 0.45}


def _days(seed: int, *, days: int = 30, adsets: int = 30, cbo_sizes=(3, 1, 24)) -> tuple:
    """Random ad-set days (adset_id, campaign_id, date, spend, conversions, purchase_value) in
    random order, and holders (holder_id, entity_type, pool): own-budget ad sets, CBO campaigns
    of ``cbo_sizes`` ad sets (one of 24: a long compensated sum), an ad set of no holder, a
    holder without any row, missing days and nulls in the CBO ad sets' counts."""
    rng = np.random.default_rng(seed)
    own = [f"a{i:03d}" for i in rng.permutation(adsets)]
    cbo = {f"k{c}": [f"k{c}s{j:02d}" for j in rng.permutation(n)] for c, n in enumerate(cbo_sizes)}
    campaign_of = {a: f"c_{a}" for a in [*own, "stray"]}
    campaign_of |= {s: k for k, sets in cbo.items() for s in sets}
    rows = [
        {"adset_id": adset, "campaign_id": campaign, "date": AS_OF.date() - timedelta(days=d + 1)}
        for adset, campaign in campaign_of.items()
        for d in range(days)
        if rng.random() > 0.1
    ]
    n = len(rows)
    scale = rng.choice([1e-6, 1.0, 1e6], n)  # sums that round differently in another order
    frame = pl.DataFrame(rows).with_columns(
        spend=pl.Series(rng.lognormal(3, 2, n) * scale * (rng.random(n) > 0.1)),
        conversions=pl.Series(rng.poisson(3.0, n).astype(float) * scale),
        purchase_value=pl.Series(rng.lognormal(4, 1, n) * scale),
    )
    in_cbo = pl.col("campaign_id").is_in(list(cbo))
    frame = frame.with_columns(  # missing counts only where summed (an ad set's would fail the fit)
        pl.when(in_cbo & pl.lit(rng.random(n) < 0.1)).then(None).otherwise(c).alias(c)
        for c in ("conversions", "purchase_value")
    )
    holders = pl.DataFrame(
        [{"holder_id": a, "entity_type": "adset", "pool": "pq"[i % 2]}
         for i, a in enumerate([*own, "missing"])]
        + [{"holder_id": k, "entity_type": "campaign", "pool": "q"} for k in cbo]
    )  # fmt: skip
    return frame.sample(fraction=1.0, shuffle=True, seed=seed), holders


def _old_holder_daily(daily: pl.DataFrame, holders: pl.DataFrame) -> pl.DataFrame:
    """The old holder_daily on the rows in the old query's order (ad set, then date)."""
    return oracle.holder_daily(daily.sort("adset_id", "date", maintain_order=True), holders)


def _assert_same_days(daily: pl.DataFrame, holders: pl.DataFrame) -> None:
    """holder_daily gives the old rows to the bit (CBO sums included), grouped by holder with
    the oldest day first, the ad sets by id, then the campaigns by id."""
    got = holder_daily(daily, holders)
    assert got.schema == pl.Schema(DAILY)
    everything = list(DAILY)  # two rows of one day: compared as a set
    assert got.sort(everything).equals(_old_holder_daily(daily, holders).sort(everything))
    runs = got["holder_id"].rle_id().to_numpy()
    ids = got["holder_id"].gather(run_starts(runs))
    assert ids.n_unique() == ids.len()  # each holder's rows together
    kinds = ids.is_in(holders.filter(pl.col("entity_type") == "campaign")["holder_id"].implode())
    ad_sets, campaigns = ids.filter(~kinds), ids.filter(kinds)
    assert ids.equals(pl.concat([ad_sets.sort(), campaigns.sort()]))
    day = got["date"].to_physical().fill_null(-(10**6)).to_numpy()
    assert not np.any((runs[1:] == runs[:-1]) & (day[1:] < day[:-1]))  # oldest first


def _assert_same_curves(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Same holders and day counts, floats within 1e-12 relative (the old fit's own jitter
    from polars' parallel sums is about 1e-15)."""
    assert got.schema == want.schema and got.height == want.height
    for column, dtype in got.schema.items():
        a, b = got[column], want[column]
        if dtype != pl.Float64:
            assert a.equals(b), column
            continue
        assert (a.is_null() == b.is_null()).all(), column
        x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
        assert (np.abs(x - y) <= 1e-12 * np.maximum(np.abs(y), 1.0)).all(), (column, x - y)


@pytest.mark.parametrize("seed", range(5))
def test_holder_days_are_the_old_ones_to_the_bit_from_any_row_order(seed):
    daily, holders = _days(seed)
    assert daily["conversions"].null_count() > 0
    _assert_same_days(daily, holders)
    _assert_same_days(daily.sort("date", "adset_id"), holders)  # the warehouse's usual order


def test_holder_days_of_odd_inputs_are_the_old_ones():
    daily, holders = _days(7, days=6, adsets=5)
    cases = {
        "no rows": daily.head(0),
        "one day": daily.filter(pl.col("date") == pl.col("date").max()),
        "one ad set": daily.filter(pl.col("adset_id") == "a003"),
        "only CBO": daily.filter(pl.col("campaign_id").str.starts_with("k")),
        "no CBO": daily.filter(~pl.col("campaign_id").str.starts_with("k")),
        "two rows a day": pl.concat([daily, daily.filter(pl.col("adset_id") == "a001")]),
        "days far apart": daily.with_columns(  # more cells than rows: sorted, not placed
            pl.when(pl.col("adset_id") == "a002")
            .then(pl.col("date") - timedelta(days=4000))
            .otherwise("date")
        ),
        "unknown days": daily.with_columns(
            pl.when(pl.int_range(pl.len()) % 9 == 0).then(None).otherwise("date").alias("date")
        ),
        "no campaign or ad set": daily.with_columns(
            pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(c).alias(c)
            for c in ("adset_id", "campaign_id")
        ),
    }
    for name, rows in cases.items():
        _assert_same_days(rows, holders), name
    # an ad set's id that is also a CBO campaign's: one holder, its rows still together
    clash = holders.with_columns(
        holder_id=pl.when(pl.col("holder_id") == "a004").then(pl.lit("k0")).otherwise("holder_id")
    )
    daily = daily.with_columns(
        adset_id=pl.when(pl.col("adset_id") == "a004").then(pl.lit("k0")).otherwise("adset_id")
    )
    days, ids = holder_days(daily, clash)
    assert days.schema == pl.Schema(HOLDER_DAYS) and ids.n_unique() == ids.len()
    got = days.with_columns(holder_id=ids.gather(days["run"])).select(list(DAILY))
    want = _old_holder_daily(daily, clash)
    assert got.sort(list(DAILY)).equals(want.sort(list(DAILY)))


@pytest.mark.parametrize("seed", range(4))
def test_dictionary_coded_ids_give_the_holder_days_of_the_strings(seed):
    """daily_performance hands the ids on dictionary-encoded (entity_keys): the same holder
    days, to the bit and in the same order, as from the strings, whatever the codes' order."""
    daily, holders = _days(seed, cbo_sizes=(3, 1, 70))  # a campaign past the compensated sums
    daily = daily.with_columns(  # rows without an id, and an ad set's id that is a campaign's
        pl.when(pl.int_range(pl.len()) % 11 == seed).then(None).otherwise(c).alias(c)
        for c in ("adset_id", "campaign_id")
    ).with_columns(pl.col("adset_id").replace({"a004": "k0"}))
    holders = holders.with_columns(pl.col("holder_id").replace({"a004": "k0"}))
    want_days, want_ids = holder_days(daily, holders)
    names = daily["adset_id"].drop_nulls().unique().append(daily["campaign_id"].drop_nulls())
    order = pl.concat([names.unique(), pl.Series(["never-used"])]).shuffle(seed)
    for dtype in (pl.Categorical, pl.Enum(order)):
        coded = daily.with_columns(pl.col("adset_id", "campaign_id").cast(dtype))
        got_days, got_ids = holder_days(coded, holders)
        assert got_days.equals(want_days) and got_ids.equals(want_ids), dtype


@pytest.mark.parametrize("seed", range(3))
def test_holder_curves_are_the_old_fits_within_its_jitter(seed):
    daily, holders = _days(seed + 20, days=40)
    daily = daily.with_columns(pl.col("conversions", "purchase_value").fill_null(0.0))
    want = oracle.fit_response_curves(
        _old_holder_daily(daily, holders), holders, as_of=AS_OF, half_life_days=10,
        elasticity=ELASTICITY,
    )  # fmt: skip
    assert want.filter(pl.col("days") == 0).height == 1  # the holder without rows
    got = holder_curves(daily, holders, as_of=AS_OF, half_life_days=10, elasticity=ELASTICITY)
    _assert_same_curves(got, want)
    frame = fit_response_curves(
        holder_daily(daily, holders), holders, as_of=AS_OF, half_life_days=10,
        elasticity=ELASTICITY,
    )  # fmt: skip
    _assert_same_curves(frame, want)


def test_daily_performance_rows_in_any_order_give_the_old_curves(tmp_path):
    """A real warehouse: the query's rows (in no particular order) are the ad set, date rows
    the old sorted query gave, and the curves from them the old fit's."""
    rng = np.random.default_rng(4)
    ts = pl.datetime_range(START, START + timedelta(days=30, hours=-1), "1h", eager=True)
    frames = []
    for i, (campaign, adset) in enumerate(
        [("c0", "a0"), ("c1", "a1"), ("k", "k_s1"), ("k", "k_s0"), ("c2", "a2")]
    ):
        keep = rng.random(ts.len()) > 0.2 * (i % 3)
        n = int(keep.sum())
        spend = rng.uniform(0.0, 30.0, n) * (rng.random(n) > 0.2)
        hours = ts.filter(pl.Series(keep))
        frames.append(
            adset_hours(
                rng, hours, campaign, adset, spend, rng.uniform(0, 2, n), rng.random(n) > 0.4
            )
        )
    con = warehouse(tmp_path / "w.duckdb", as_insights(frames))
    holders = pl.DataFrame(
        {"holder_id": ["a0", "a1", "a2", "k"], "entity_type": ["adset"] * 3 + ["campaign"],
         "pool": ["p", "q", "p", "q"]}
    )  # fmt: skip
    for as_of, days in ((START + timedelta(days=29, hours=13), 20), (START + timedelta(30), 28)):
        daily = daily_performance(con, as_of, days)
        assert daily.height > 100 and daily["adset_id"].n_unique() == 5
        assert daily.select("adset_id", "date").is_unique().all()
        _assert_same_days(daily, holders)
        want = oracle.fit_response_curves(
            _old_holder_daily(daily, holders), holders, as_of=as_of, half_life_days=10
        )
        _assert_same_curves(holder_curves(daily, holders, as_of=as_of, half_life_days=10), want)
    con.close()


def test_kahan_sums_are_compensated_sums_in_row_order_to_the_bit():
    """Kahan's sum of each run in row order, missing values skipped (what polars does for a
    group spread over a frame such as the CBO days, ad sets apart: holder_daily above gives
    the old sums to the bit); a plain running sum differs."""
    rng = np.random.default_rng(3)
    for size in (1, 2, 3, 7, 40, 300):
        groups = np.sort(rng.integers(0, 200, 200 * size))
        x = rng.lognormal(0, 3, groups.size) * rng.choice([1e-9, 1.0, 1e9], groups.size)
        values = pl.Series("x", x).scatter(rng.choice(x.size, x.size // 6, replace=False), None)
        first = run_starts(groups)
        want = []
        for run in np.split(values.to_list(), first[1:]):
            total = carry = 0.0
            for v in run:
                if v is not None:
                    y = v - carry
                    t = total + y
                    carry, total = (t - total) - y, t
            want.append(total)
        got = _kahan_sums(values, first)
        assert got.tolist() == want, size
        running = [
            sum(v for v in run if v is not None) for run in np.split(values.to_list(), first[1:])
        ]
        assert size < 7 or got.tolist() != running


@pytest.mark.parametrize("duplicates", [False, True])
def test_rows_by_holder_and_day_are_a_stable_sort(duplicates):
    rng = np.random.default_rng(int(duplicates))
    cells = rng.permutation(300 * 40)[:8000]  # 300 holders, 40 days, each cell at most once
    holder, day = cells // 40, cells % 40 + 19_000
    if duplicates:  # a few cells twice: the sorted path, equal keys in row order
        holder, day = np.r_[holder, holder[:50]], np.r_[day, day[:50]]
    keep = rng.random(holder.size) > 0.2
    number = pl.Series(np.where(keep, holder, -1)).cast(pl.Int64)
    rows, holders, run = _by_holder_and_day(number, pl.Series(day), pl.Series(keep), 300)
    want = np.flatnonzero(keep)
    want = want[np.lexsort((want, day[want], holder[want]))]
    assert (rows == want).all()
    assert (holders == np.unique(holder[keep])).all()
    assert (run == np.unique(holder[rows], return_inverse=True)[1]).all()


@pytest.mark.parametrize("seed", range(6))
def test_the_equilibrium_is_the_old_one_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    pools = ["p", "q", "r"][: int(rng.integers(1, 4))]
    config = PoolsConfig(
        pools=[{"name": p, "tier": 1, "floor": int(rng.integers(0, 5)) * 10_000,
                "ceiling": int(rng.integers(5, 40)) * 100_000, "policy": "marginal_return"}
               for p in pools]
    )  # fmt: skip
    frame = pl.DataFrame(
        {
            "pool": rng.choice(pools, n),
            "old_budget": rng.integers(100, 50_000, n),
            "movable": rng.random(n) > 0.3 * (seed % 3),
            "min_budget": rng.integers(50, 500, n),
        }
    )
    curves = pl.DataFrame(
        {"elasticity": rng.uniform(0.1, 0.95, n), "log_level": rng.normal(1.0, 1.5, n)}
    )
    got = _equal_marginal_targets(frame, curves, config)
    want = marginal_oracle._equal_marginal_targets(frame, curves, config)
    for a, b in zip(got[:4], want[:4], strict=True):
        assert np.array_equal(a, b, equal_nan=True)
    assert got[4] == want[4]


def test_no_row_of_a_day_with_spend_may_miss_its_counts():
    daily, holders = _days(2)
    own = daily.filter(pl.col("adset_id") == "a001", pl.col("spend") > 0)
    day = own["date"][0]
    broken = daily.with_columns(
        purchase_value=pl.when((pl.col("adset_id") == "a001") & (pl.col("date") == day))
        .then(None)
        .otherwise("purchase_value")
    )
    with pytest.raises(ValueError, match=r"daily purchase_value: null on a day with spend.*a001"):
        holder_curves(broken, holders, as_of=AS_OF)
    assert date(2020, 1, 1) < day < AS_OF.date()


@pytest.mark.parametrize("seed", range(4))
def test_numbers_are_positions_in_the_ids_null_for_any_other_value(seed):
    rng = np.random.default_rng(seed)
    ids = pl.Series([f"id{i:04d}" for i in rng.choice(5000, 300, replace=False)]).sort()
    pool = np.r_[ids.to_numpy(), [f"other{i}" for i in range(40)], ["", "id"]]
    values = pl.Series("adset_id", rng.choice(pool, 2000)).scatter(rng.choice(2000, 30), None)
    position = {v: i for i, v in enumerate(ids.to_list())}
    want = [position.get(v) for v in values.to_list()]
    got = _numbers(values, ids)
    assert got.dtype == pl.Int64 and got.to_list() == want
    assert _numbers(values, ids.head(0)).null_count() == values.len()  # no ids: none found
    assert _numbers(values.head(0), ids).len() == 0


@pytest.mark.parametrize("cbo_sizes", [(65,), (1500,), (3, 2100)])
def test_a_campaign_of_many_ad_sets_sums_in_any_row_order_to_the_same_bits(cbo_sizes):
    """Past KAHAN_RUNS ad sets on a day a campaign's days are plain sums in (campaign, day, ad
    set) order, not the numpy loop of one step per ad set (0.26 s for 10k ad sets in one
    campaign): within 1e-12 of the old code's polars sums, and the same bits whatever order the
    rows come in."""
    daily, holders = _days(11, days=3, adsets=5, cbo_sizes=cbo_sizes)
    got = holder_daily(daily, holders)
    want = _old_holder_daily(daily, holders)
    keys = ["holder_id", "date"]
    assert got.select(keys).sort(keys).equals(want.select(keys).sort(keys))
    _assert_same_curves(got.sort(keys), want.sort(keys))
    for seed in (1, 2):
        again = holder_daily(daily.sample(fraction=1.0, shuffle=True, seed=seed), holders)
        assert again.equals(got)


def test_the_order_is_lexsort_of_campaign_day_and_ad_set():
    rng = np.random.default_rng(5)
    from budget_pipeline.engine.holder_runs import _order

    for n, span in [(0, 1), (1, 1), (5_000, 40), (5_000, 110_000)]:
        campaign = rng.integers(0, 50, n)
        day = rng.integers(-span, span, n)
        adset = rng.integers(-1, 3_000, n)
        want = np.lexsort((adset, day, campaign))
        assert np.array_equal(_order(campaign, day, adset), want)
    # keys past 63 bits: the three-key sort itself
    big = np.array([2**40, 0, 2**40]), np.array([0, 2**30, 1]), np.array([2**35, 0, 1])
    assert np.array_equal(_order(*big), np.lexsort(big[::-1]))
