"""The trigger state machine: persistence, cooldown, idempotence, restarts, compound rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import ACTIONS, SCORES, TRIGGER_STATE, conform, empty
from budget_pipeline.engine.signals import WINDOW_METRICS
from budget_pipeline.engine.triggers import (
    evaluate_triggers,
    pending_evaluation_points,
    trigger_windows,
    warmup_intervals,
)
from budget_pipeline.sql import load_sql

T0 = datetime(2024, 5, 1)
DAY = timedelta(days=1)


def _config(interval_hours: int = 24, thresholds=None, triggers=None, **pool) -> PoolsConfig:
    return PoolsConfig.model_validate(
        {
            "settings": {"interval_hours": interval_hours},
            "pools": [
                {
                    "name": "testing",
                    "tier": 3,
                    "floor": 100,
                    "ceiling": 300,
                    "thresholds": thresholds or {},
                    "triggers": triggers or [],
                    **pool,
                }
            ],
        }
    )


def _scores(
    points: list[datetime], values: list[float | None], entity="a1", credible=None
) -> pl.DataFrame:
    """One entity's scores; None = insufficient_data. Unless ``credible`` is given, every
    score is a credible deviation in its direction (a well-measured ad set): above 0.5 up,
    at or below 0.5 down."""
    n = len(points)
    if credible is None:
        credible = [0 if v is None else (1 if v > 0.5 else -1) for v in values]
    evidence = [3.0 * c for c in credible]  # 3 sds: well beyond the default credible_z
    return conform(
        pl.DataFrame(
            {
                "entity_id": [entity] * n,
                "entity_type": ["adset"] * n,
                "campaign_id": ["c1"] * n,
                "pool": ["testing"] * n,
                "as_of": points,
                "status": ["scored" if v is not None else "insufficient_data" for v in values],
                "score": values,
                **{c: [0.5] * n for c in ("s_roas", "s_cpa", "s_frequency", "s_engagement")},
                "s_velocity": [0.5] * n,
                **{c: [1.0] * n for c in ("spend", "roas", "cpa", "frequency", "ctr")},
                **{c: [1.0] * n for c in ("baseline_roas", "baseline_cpa", "baseline_ctr")},
                "evidence_z": evidence,
                "reason": ["test"] * n,
            },
            schema_overrides={"score": pl.Float64, "evidence_z": pl.Float64},
        ),
        SCORES,
    )


def _run(config, scores, state=None, windows=None):
    state = empty(TRIGGER_STATE) if state is None else state
    windows = empty(WINDOW_METRICS) if windows is None else windows
    new_state, actions = evaluate_triggers(scores, windows, state, config)
    assert new_state.schema == pl.Schema(TRIGGER_STATE)
    assert actions.schema == pl.Schema(ACTIONS)
    return new_state, actions


def _row(state: pl.DataFrame, trigger: str, entity="a1") -> dict:
    return state.filter((pl.col("entity_id") == entity) & (pl.col("trigger") == trigger)).row(
        0, named=True
    )


# --- evaluation points ---------------------------------------------------------------------


def test_pending_points_are_interval_boundaries_from_midnight():
    now = datetime(2024, 5, 3, 13, 20)
    # no state: the last `warmup` boundaries, so persistence is judged from history
    assert pending_evaluation_points(now, None, 24, 3) == [
        datetime(2024, 5, 1),
        datetime(2024, 5, 2),
        datetime(2024, 5, 3),
    ]
    assert pending_evaluation_points(now, None, 6, 2) == [
        datetime(2024, 5, 3, 6),
        datetime(2024, 5, 3, 12),
    ]
    # with state: every boundary after the last evaluation, up to now
    assert pending_evaluation_points(now, datetime(2024, 5, 2, 12), 6, 3) == [
        datetime(2024, 5, 2, 18),
        datetime(2024, 5, 3),
        datetime(2024, 5, 3, 6),
        datetime(2024, 5, 3, 12),
    ]
    # a rerun at the same time finds nothing new
    assert pending_evaluation_points(now, datetime(2024, 5, 3, 12), 6, 3) == []
    assert pending_evaluation_points(datetime(2024, 5, 3, 12), datetime(2024, 5, 3, 12), 6, 3) == []


def test_warmup_is_the_longest_persistence_and_windows_are_listed():
    assert warmup_intervals(_config()) == 3
    slow = _config(
        triggers=[
            {
                "name": "slow",
                "any": [{"metric": "roas", "window_hours": 96, "op": "<", "value": 1}],
                "persistence": 5,
                "action": "alert",
            }
        ]
    )
    assert warmup_intervals(slow) == 5
    assert trigger_windows(slow) == [96]


# --- score triggers ------------------------------------------------------------------------


def test_a_single_dip_does_not_fire_but_a_sustained_one_does():
    config = _config()
    points = [T0, T0 + DAY, T0 + 2 * DAY]
    state, actions = _run(config, _scores(points, [0.6, 0.5, 0.6]))
    assert actions.height == 0
    assert _row(state, "score_below_0.55")["streak"] == 0

    state, actions = _run(config, _scores(points, [0.6, 0.5, 0.5]))
    assert actions.select("entity_id", "action", "pct", "trigger", "score").rows() == [
        ("a1", "decrease", 25.0, "score_below_0.55", 0.5)
    ]
    assert actions["as_of"].to_list() == [points[-1]]
    fired = _row(state, "score_below_0.55")
    assert (fired["streak"], fired["condition_met"]) == (0, True)  # reset on firing
    assert fired["last_fired_at"] == points[-1]
    assert fired["cooldown_until"] == points[-1] + timedelta(hours=6)


def test_increase_needs_three_in_a_row():
    config = _config()
    points = [T0 + i * DAY for i in range(6)]
    _, actions = _run(config, _scores(points[:5], [0.9, 0.9, 0.8, 0.9, 0.9]))
    assert actions.height == 0
    _, actions = _run(config, _scores(points, [0.9, 0.9, 0.8, 0.9, 0.9, 0.9]))
    assert actions.select("action", "pct", "trigger").rows() == [
        ("increase", 15.0, "score_above_0.85")
    ]


def test_pause_fires_at_once_with_an_alert():
    _, actions = _run(_config(), _scores([T0], [0.2]))
    assert actions.select("action", "pct", "trigger").rows() == [
        ("pause", None, "score_below_0.35"),
        ("alert", None, "score_below_0.35"),
    ]


def test_cooldown_blocks_a_second_fire_within_six_hours_but_not_after():
    config = _config(interval_hours=2, thresholds={"decrease_persistence": 1})
    points = [T0 + timedelta(hours=2 * i) for i in range(5)]  # 0, 2, 4, 6, 8 h
    state = empty(TRIGGER_STATE)
    fired_at = []
    for point in points:  # one run per interval, as the schedule would
        state, actions = _run(config, _scores([point], [0.5]), state)
        fired_at += actions.filter(pl.col("action") == "decrease")["as_of"].to_list()
    assert fired_at == [points[0], points[3]]  # 2 h and 4 h are inside the 6 h cooldown


def test_trigger_cooldown_overrides_the_default():
    config = _config(
        interval_hours=1,
        triggers=[
            {
                "name": "any_spend",
                "any": [{"metric": "spend", "window_hours": 24, "op": ">", "value": 0}],
                "cooldown_hours": 1,
                "action": "alert",
            }
        ],
    )
    points = [T0, T0 + timedelta(hours=1)]
    windows = _windows(points, {24: {"spend": 10.0}})
    state, actions = _run(config, _scores(points[:1], [0.6]), windows=windows)
    assert actions["trigger"].to_list() == ["any_spend"]
    state, actions = _run(config, _scores(points[1:], [0.6]), state, windows)
    assert actions["trigger"].to_list() == ["any_spend"]


def test_rerunning_the_same_points_changes_nothing():
    config = _config()
    points = [T0, T0 + DAY]
    scores = _scores(points, [0.5, 0.5])
    state, actions = _run(config, scores)
    assert actions.height == 1
    again, actions_again = _run(config, scores, state)
    assert again.equals(state)
    assert actions_again.height == 0


def test_insufficient_data_never_fires_and_resets_the_streak():
    config = _config()
    points = [T0, T0 + DAY, T0 + 2 * DAY]
    state, actions = _run(config, _scores(points, [0.5, None, 0.5]))
    assert actions.height == 0
    assert _row(state, "score_below_0.55")["streak"] == 1
    state, actions = _run(config, _scores([T0], [None]))
    assert actions.height == 0 and _row(state, "score_below_0.35")["streak"] == 0


def test_a_missing_interval_breaks_the_streak():
    config = _config()
    state, _ = _run(config, _scores([T0], [0.5]))
    # the entity was not scored at T0 + 1 day (no delivery), so T0 + 2 days starts afresh
    state, actions = _run(config, _scores([T0 + 2 * DAY], [0.5]), state)
    assert actions.height == 0 and _row(state, "score_below_0.55")["streak"] == 1


def test_only_the_latest_point_emits_actions():
    config = _config()
    points = [T0, T0 + DAY, T0 + 2 * DAY]
    state, actions = _run(config, _scores(points, [0.5, 0.5, 0.6]))
    assert actions.height == 0  # fired at T0 + 1 day: state only
    assert _row(state, "score_below_0.55")["last_fired_at"] == points[1]


def test_state_survives_a_duckdb_round_trip_and_a_restart_continues_the_streak(tmp_path):
    config = _config()
    path = str(tmp_path / "warehouse.duckdb")
    state, actions = _run(config, _scores([T0], [0.5]))
    assert actions.height == 0 and _row(state, "score_below_0.55")["streak"] == 1

    with duckdb.connect(path) as con:
        con.execute(load_sql("create_trigger_states"))
        columns = ", ".join(state.columns)
        marks = ", ".join("?" * state.width)
        con.executemany(f"INSERT INTO trigger_states ({columns}) VALUES ({marks})", state.rows())

    with duckdb.connect(path) as con:  # a new process would do the same
        result = con.execute(load_sql("select_trigger_states"))
        names = [d[0] for d in result.description]
        rows = result.fetchall()
    restored = conform(
        pl.DataFrame(rows, schema={n: TRIGGER_STATE[n] for n in names}, orient="row"),
        TRIGGER_STATE,
    ).sort("entity_id", "trigger")
    assert restored.equals(state)

    state, actions = _run(config, _scores([T0 + DAY], [0.5]), restored)
    assert actions.select("action", "trigger").rows() == [("decrease", "score_below_0.55")]


# --- compound triggers ---------------------------------------------------------------------


def _windows(points, by_window: dict[int, dict], entity="a1") -> pl.DataFrame:
    """Window metrics for one ad set: {window_hours: {spend, purchase_value, conversions}}."""
    rows = []
    for point in points:
        for hours, metrics in by_window.items():
            row = dict.fromkeys(WINDOW_METRICS, 0)
            row |= {"adset_id": entity, "campaign_id": "c1", "as_of": point}
            row |= {"window_hours": hours, "impressions": 1000, "reach": 500, **metrics}
            rows.append(row)
    return pl.DataFrame(rows, schema=WINDOW_METRICS)


def _compound_config(kind: str, min_spend: float = 0.0) -> PoolsConfig:
    return _config(
        cpa_target=20.0,
        triggers=[
            {
                "name": "losing",
                kind: [
                    {"metric": "roas", "window_hours": 72, "op": "<", "value": 1.6},
                    {"metric": "cpa", "window_hours": 48, "op": ">", "target_multiple": 1.35},
                ],
                "min_spend": min_spend,
                "action": "decrease",
                "pct": 30,
                "flag_creative_review": True,
            }
        ],
    )


# roas(72h) < 1.6 holds at value 150 on spend 100; cpa(48h) > 20 × 1.35 = 27 holds at 2 conv
ROAS_BAD = {"spend": 100.0, "purchase_value": 150.0, "conversions": 10.0}
ROAS_OK = {"spend": 100.0, "purchase_value": 200.0, "conversions": 10.0}
CPA_BAD = {"spend": 60.0, "purchase_value": 200.0, "conversions": 2.0}  # cpa 30
CPA_OK = {"spend": 60.0, "purchase_value": 200.0, "conversions": 3.0}  # cpa 20


@pytest.mark.parametrize(
    ("kind", "roas", "cpa", "fires"),
    [
        ("all", ROAS_BAD, CPA_BAD, True),
        ("all", ROAS_BAD, CPA_OK, False),
        ("all", ROAS_OK, CPA_BAD, False),
        ("any", ROAS_OK, CPA_BAD, True),
        ("any", ROAS_BAD, CPA_OK, True),
        ("any", ROAS_OK, CPA_OK, False),
    ],
)
def test_compound_trigger_all_and_any(kind, roas, cpa, fires):
    windows = _windows([T0], {72: roas, 48: cpa})
    _, actions = _run(_compound_config(kind), _scores([T0], [0.6]), windows=windows)
    got = actions.filter(pl.col("trigger") == "losing")
    if fires:
        assert got.select("action", "pct").rows() == [("decrease", 30.0), ("flag_creative", None)]
    else:
        assert got.height == 0


def test_compound_cpa_is_infinite_without_conversions():
    windows = _windows([T0], {72: ROAS_BAD, 48: {"spend": 60.0, "conversions": 0.0}})
    _, actions = _run(_compound_config("all"), _scores([T0], [0.6]), windows=windows)
    assert "losing" in actions["trigger"].to_list()


def test_min_spend_blocks_firing_on_thin_data():
    windows = _windows([T0], {72: ROAS_BAD, 48: CPA_BAD})
    # spend over the longest condition window (72 h) is 100
    _, actions = _run(_compound_config("all", min_spend=150), _scores([T0], [0.6]), windows=windows)
    assert actions.height == 0
    _, actions = _run(_compound_config("all", min_spend=100), _scores([T0], [0.6]), windows=windows)
    assert actions.filter(pl.col("trigger") == "losing").height == 2


def test_compound_trigger_on_a_cbo_campaign_reads_its_adsets_sums():
    config = _compound_config("all")
    # the ad sets return 2.0 and 1.0; the campaign 150 / 100 = 1.5 (< 1.6); cpa 30
    windows = pl.concat(
        [
            _windows([T0], {72: {"spend": 50.0, "purchase_value": 100.0}, 48: CPA_BAD}, "x1"),
            _windows([T0], {72: {"spend": 50.0, "purchase_value": 50.0}, 48: CPA_BAD}, "x2"),
        ]
    ).with_columns(campaign_id=pl.lit("cbo"))
    scores = _scores([T0], [0.6], entity="cbo").with_columns(
        entity_type=pl.lit("campaign"), campaign_id=pl.lit("cbo")
    )
    _, actions = _run(config, scores, windows=windows)
    assert actions.select("entity_id", "action").rows() == [
        ("cbo", "decrease"),
        ("cbo", "flag_creative"),
    ]


def test_an_entity_on_its_own_baseline_holds_however_the_score_wobbles():
    """Issue 9, failure mode 2 ("neutral is a decrease"): scores of 0.48–0.54 around an
    unchanged baseline fired score_below_0.55 again and again. A deviation must be credible
    given the purchase count before a threshold acts on it."""
    points = [T0 + timedelta(days=i) for i in range(10)]
    wobble = [0.50, 0.52, 0.48, 0.54, 0.49, 0.51, 0.47, 0.53, 0.50, 0.46]
    _, actions = _run(_config(), _scores(points, wobble, credible=[0] * 10))
    assert actions.height == 0
    # the same scores with a credibly lower ROAS are a real dip: the decrease fires
    _, actions = _run(_config(), _scores(points, wobble, credible=[-1] * 10))
    assert "decrease" in actions["action"].to_list()


def test_a_first_evaluation_equals_one_carrying_an_unrelated_state():
    """With no state the first point skips the state join: its streaks, fires and actions
    are those of the joined path (a state holding only another entity's row), point after
    point, score and compound triggers alike."""
    points = [T0 + i * DAY for i in range(6)]
    scores = pl.concat(
        [
            _scores(points, [0.9, 0.95, 0.92, 0.2, 0.3, None], entity="a1"),
            _scores(points, [0.3, 0.2, 0.1, 0.9, 0.91, 0.92], entity="a2"),
            _scores(points, [0.6] * 6, entity="a3", credible=[0] * 6),
        ]
    )
    windows = pl.concat(
        [_windows(points, {72: ROAS_BAD, 48: CPA_BAD}, e) for e in ("a1", "a2", "a3")]
    )
    other = conform(
        pl.DataFrame(
            {
                "entity_id": ["zz"],
                "trigger": ["losing"],
                "streak": [1],
                "condition_met": [True],
                "last_eval_at": [T0 - DAY],
                "last_fired_at": [None],
                "cooldown_until": [None],
            },
            schema_overrides={
                "last_fired_at": pl.Datetime("us"),
                "cooldown_until": pl.Datetime("us"),
            },
        ),
        TRIGGER_STATE,
    )
    config = _compound_config("all")
    first, fired_first = _run(config, scores, windows=windows)
    joined, fired_joined = _run(config, scores, other, windows=windows)
    assert first.height == 3 * 4  # three entities, three score triggers and one compound
    assert joined.equals(pl.concat([first, other]).sort("entity_id", "trigger"))
    assert fired_first.equals(fired_joined) and fired_first.height > 0
