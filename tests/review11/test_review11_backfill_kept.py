"""Review 11: history backfilled at the same evaluation point is never read until the next one.

`budget-pipeline run --days 2` (the newest two days: "try it first") then `budget-pipeline run`
(the whole history) is the same evaluation point: the newest hour did not move, and the
fingerprint of the decisions' inputs leaves the Insights out, so the second run keeps the
baselines, scores and plan made from two days of data (every ad set ``insufficient_data``, no
move) until the next midnight, while the same data in a fresh warehouse moves money. Through
the real Dagster cycle on the default simulated account."""

from __future__ import annotations

import dagster as dg
import duckdb
from dagster_helpers import ALL_KEYS, run_cycle


def _scored(db_path) -> int:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(
            "SELECT count(*) FROM composite_scores "
            "WHERE status = 'scored' AND as_of = (SELECT max(as_of) FROM composite_scores)"
        ).fetchone()[0]
    finally:
        con.close()


def _plan(instance, db_path, keys):
    result = run_cycle(instance, db_path, keys)
    return result.asset_materializations_for_node("rebalance_plan")[-1].metadata


def test_a_backfill_after_a_short_first_run_is_decided_on(tmp_path):
    fresh_db = tmp_path / "fresh.duckdb"
    fresh = _plan(dg.DagsterInstance.ephemeral(), fresh_db, ALL_KEYS[-36:])
    assert fresh["moves"].value > 0 and _scored(fresh_db) > 0

    db_path = tmp_path / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    short = _plan(instance, db_path, ALL_KEYS[-2:])  # two days: nothing can be scored yet
    assert short["moves"].value == 0 and _scored(db_path) == 0
    backfilled = _plan(instance, db_path, ALL_KEYS[-36:])  # the history, same newest hour
    assert str(backfilled["as_of"].value) == str(fresh["as_of"].value)
    assert _scored(db_path) == _scored(fresh_db), "scores kept from the two-day warehouse"
    assert backfilled["moves"].value == fresh["moves"].value, (
        f"plan {backfilled['plan_id'].value} (recomputed: {backfilled['recomputed'].value}) "
        f"moves {backfilled['moves'].value}; the same data decided afresh moves "
        f"{fresh['moves'].value}"
    )
