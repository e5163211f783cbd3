"""A JPY account (minor-unit factor 1) through the whole cycle, and a currency mismatch."""

from __future__ import annotations

import dagster as dg
import duckdb
import yaml
from dagster_helpers import ALL_KEYS, run_cycle

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH


def _jpy_scenario(tmp_path):
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    raw["currency"] = "JPY"
    path = tmp_path / "jpy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _pools(tmp_path, currency):
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text()) | {"currency": currency}
    path = tmp_path / f"pools_{currency}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_jpy_account_plans_in_whole_yen(tmp_path):
    db_path = tmp_path / "jpy.duckdb"
    result = run_cycle(
        dg.DagsterInstance.ephemeral(),
        db_path,
        ALL_KEYS[-35:],
        pools_path=_pools(tmp_path, "JPY"),
        scenario_path=_jpy_scenario(tmp_path),
    )
    assert all(e.passed for e in result.get_asset_check_evaluations())
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        budgets = con.execute(
            "SELECT entity_id, daily_budget FROM ad_entities WHERE entity_id = '120210000001001'"
        ).fetchall()
        totals = con.execute(
            "SELECT sum(old_budget), sum(new_budget) FROM rebalance_plans"
        ).fetchall()[0]
    finally:
        con.close()
    # the scenario's budget (major units) is the same number of yen, not 100x it
    scenario = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    daily = next(
        a["daily_budget"]
        for c in scenario["campaigns"]
        for a in c["adsets"]
        if a["id"] == "120210000001001"
    )
    assert budgets == [("120210000001001", int(daily))]
    assert totals[0] == totals[1]
    meta = result.asset_materializations_for_node("ad_entities")[-1].metadata
    assert "JPY" in meta["pools"].value and "EUR" not in meta["pools"].value


def test_pools_in_another_currency_than_the_account_are_refused(tmp_path):
    result = run_cycle(
        dg.DagsterInstance.ephemeral(),
        tmp_path / "mismatch.duckdb",
        ALL_KEYS[-35:],
        pools_path=_pools(tmp_path, "EUR"),
        scenario_path=_jpy_scenario(tmp_path),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    message = failure.cause.message if failure.cause else failure.message
    assert "currency 'EUR' does not match the ad account's JPY" in message
    assert result.asset_materializations_for_node("rebalance_plan") == []
