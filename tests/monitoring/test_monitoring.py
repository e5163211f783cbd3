"""The weekly monitoring reports through the real machinery: the schedule's run request, the
assets over a real warehouse, their WARN checks, and what they hand the drift alert."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_helpers import ALL_KEYS, definitions, launch, run_cycle, run_execution, tick_schedule

from budget_pipeline.alerts.messages import drift_alert, flagged_pools
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.engine import monitoring

REPORTS = (
    "budget_utilisation",
    "trigger_fire_rate",
    "learning_resets",
    "score_drift",
    "go_live_order",
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A cycle over the whole history (60 days: score drift compares with 30 days ago) and its
    (observe-mode) execution."""
    tmp = tmp_path_factory.mktemp("monitoring")
    instance = dg.DagsterInstance.ephemeral()
    db_path = tmp / "warehouse.duckdb"
    run_cycle(instance, db_path, ALL_KEYS)
    assert run_execution(instance, db_path).success
    return db_path


def _copy(warehouse, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, path)
    return path


def _monitor(db_path, pools_path=DEFAULT_POOLS_PATH):
    """The weekly schedule's tick, launched as the daemon launches it."""
    defs = definitions(db_path, pools_path)
    instance = dg.DagsterInstance.ephemeral()
    monday = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    tick = tick_schedule(defs, instance, "weekly_monitoring_schedule", monday)
    (request,) = tick.run_requests
    result = launch(defs, instance, request, "monitoring_job")
    assert result.success  # warnings never fail the run
    metas = {
        node: {
            k: v.value for k, v in result.asset_materializations_for_node(node)[-1].metadata.items()
        }
        for node in REPORTS
    }
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return metas, checks


def _query(db_path, sql, params=None):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def test_every_report_runs_weekly_with_a_warning_check_that_matches_the_warehouse(
    warehouse, tmp_path
):
    db_path = _copy(warehouse, tmp_path)
    metas, checks = _monitor(db_path)
    assert set(checks) == {
        "budget_utilisation_healthy", "trigger_fire_rate_healthy", "learning_resets_none",
        "score_drift_within_threshold", "go_live_order_kept", "score_calibration_fire_rate_healthy",
    }  # fmt: skip
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    as_of = datetime.fromisoformat(metas["budget_utilisation"]["as_of"])

    # utilisation: the week's spend of each pool against 7 daily budgets
    spend = _query(
        db_path,
        "SELECT sum(i.spend) AS s FROM insights i JOIN ad_entities a ON a.entity_id = i.adset_id "
        "LEFT JOIN ad_entities c ON c.entity_id = a.campaign_id AND c.entity_type = 'campaign' "
        "WHERE a.pool = 'retargeting' AND (a.budget_type = 'daily' OR (a.budget_type IS NULL AND "
        "c.budget_type = 'daily')) AND i.ts >= ? AND i.ts < ?",
        [as_of - timedelta(days=7), as_of],
    )["s"][0]
    budget = _query(
        db_path,
        "SELECT sum(daily_budget) AS b FROM ad_entities WHERE pool = 'retargeting' "
        "AND budget_type = 'daily'",
    )["b"][0]
    assert metas["budget_utilisation"]["retargeting/utilisation_pct"] == pytest.approx(
        spend * 100 * 100 / (float(budget) * 7), abs=0.1
    )
    assert "200.00 EUR" in metas["budget_utilisation"]["utilisation"]  # the floor, as money

    # fire rate: the budget actions of the week in trigger_actions, per pool
    fires = _query(
        db_path,
        "SELECT e.pool, count(*) AS n FROM trigger_actions t JOIN ad_entities e USING (entity_id) "
        "WHERE t.action IN ('increase', 'decrease', 'pause') AND t.as_of > ? AND t.as_of <= ? "
        "GROUP BY e.pool",
        [as_of - timedelta(days=7), as_of],
    )
    counts = dict(fires.iter_rows())
    for pool in ("retargeting", "prospecting", "testing"):
        assert metas["trigger_fire_rate"][f"{pool}/fires"] == counts.get(pool, 0)
    healthy = (
        all(monitoring.HEALTHY_FIRES[0] <= counts.get(p, 0) <= 7 for p in counts)
        and len(counts) == 3
    )
    assert checks["trigger_fire_rate_healthy"].passed == healthy

    # no learning reset by the capped planner; go-live order kept with every pool observed
    assert metas["learning_resets"]["resets"] == 0 and checks["learning_resets_none"].passed
    assert metas["go_live_order"]["order"] == "testing → prospecting → retargeting"
    assert checks["go_live_order_kept"].passed
    assert "next: observing" in metas["go_live_order"]["go_live"]
    # each report carries a chart, inline
    assert all("data:image/png;base64," in m["chart"] for m in metas.values())


def test_a_change_above_the_learning_limit_warns_and_names_the_ad_set(warehouse, tmp_path):
    db_path = _copy(warehouse, tmp_path)
    con = duckdb.connect(str(db_path))
    try:
        as_of = con.execute("SELECT max(ts) + INTERVAL 1 HOUR FROM insights").fetchone()[0]
        con.execute(
            "INSERT INTO action_log VALUES (?, 'plan-x', 'run-x', '120210000010001', 'adset', "
            "'testing', 'live', 'budget', 2000, 2600, 'ACTIVE', 'ACTIVE', 'applied', "
            "'daily_budget 2000 -> 2600', ?, ?)",
            [uuid.uuid4().hex, as_of - timedelta(hours=5), as_of],
        )
    finally:
        con.close()
    metas, checks = _monitor(db_path)
    assert metas["learning_resets"]["resets"] == 1
    assert metas["learning_resets"]["testing/resets"] == 1
    assert "UGC hook A" in metas["learning_resets"]["resets_table"]
    assert "26.00 EUR" in metas["learning_resets"]["resets_table"]
    check = checks["learning_resets_none"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "UGC hook A" in check.metadata["details"].value


def test_a_pool_live_before_the_one_ahead_of_it_warns(warehouse, tmp_path):
    db_path = _copy(warehouse, tmp_path)
    data = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    next(p for p in data["pools"] if p["name"] == "retargeting")["mode"] = "live"
    pools_path = tmp_path / "pools.yaml"
    pools_path.write_text(yaml.safe_dump(data))
    metas, checks = _monitor(db_path, pools_path)
    assert metas["go_live_order"]["live_pools"] == ["retargeting"]
    assert "live out of order" in metas["go_live_order"]["go_live"]
    assert not checks["go_live_order_kept"].passed


def test_score_drift_flags_pools_in_the_shape_the_drift_alert_reads(
    warehouse, tmp_path, monkeypatch
):
    db_path = _copy(warehouse, tmp_path)
    metas, checks = _monitor(db_path)
    drift = metas["score_drift"]
    table = pl.DataFrame(
        [r.split(" | ") for r in drift["drift_table"].splitlines()[2:]], orient="row"
    )
    assert table.height == 3
    largest = max(abs(drift[f"{p}/drift"]) for p in ("retargeting", "prospecting", "testing"))
    assert largest > 0
    assert checks["score_drift_within_threshold"].passed == (largest < monitoring.DRIFT_THRESHOLD)

    # a tighter threshold flags the pools that moved more than it
    monkeypatch.setattr(monitoring, "DRIFT_THRESHOLD", largest / 2)
    metas, checks = _monitor(db_path)
    flagged = flagged_pools(metas["score_drift"]["flagged_pools"])
    expected = sorted(
        p for p in ("retargeting", "prospecting", "testing")
        if abs(metas["score_drift"][f"{p}/drift"]) >= largest / 2
    )  # fmt: skip
    assert sorted(flagged) == expected and flagged
    assert not checks["score_drift_within_threshold"].passed
    alert = drift_alert(metas["score_drift"], partition=None, run_id="r", ui_url="http://ui")
    assert alert is not None and all(p in alert.lines[0] for p in flagged)


def test_monitoring_engine_needs_no_dagster():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(monitoring))
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert not any(str(m).startswith(("dagster", "budget_pipeline.sources")) for m in imported)
    assert load_pools(DEFAULT_POOLS_PATH).pools  # the default pools file loads
