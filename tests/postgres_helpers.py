"""Helpers for the tests that run Dagster on a real PostgreSQL (tests/deploy)."""

from __future__ import annotations

import dagster as dg


def query(pg, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``sql`` on the test server ``pg`` (the ``postgres`` fixture)."""
    con = pg.connect()
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def plan_ids_checked(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The plan ids the run's blocking checks say they evaluated."""
    return {
        str(e.dagster_event.asset_check_evaluation_data.metadata["plan_id"].value)
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    }
