"""The execution ledger and its action log, written together.

Every state change of a live step (``upsert_execution_ledger``) is written in one transaction
with the ``action_log`` row that reports it (:func:`record`), so a run killed at any point
leaves neither a landed call unlogged (the min-interval guard reads the log) nor a log row
without its ledger state. A plan whose rollback is decided is marked in
``execution_rollbacks`` (:func:`start_rollback`) until every move it applied is back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import duckdb

from budget_pipeline import db
from budget_pipeline.engine.execution import LOG, log_frame, source_clock, utcnow
from budget_pipeline.sources.base import AdSource


def set_ledger(
    con, plan_id: str, entity_id: str, step: str, state: str, effective_at: datetime | None
) -> None:
    db.run(
        con,
        "upsert_execution_ledger",
        {
            "plan_id": plan_id,
            "entity_id": entity_id,
            "step": step,
            "state": state,
            "updated_at": utcnow(),
            "effective_at": effective_at,
        },
    )


def log_row(step: dict, run_id: str | None, status: str, message: str, **extra) -> dict:
    row = {c: step.get(c) for c in LOG if c in step}
    row.update(
        log_id=uuid.uuid4().hex,
        run_id=run_id,
        mode="live",
        status=status,
        message=message,
        logged_at=utcnow(),
    )
    row.update(extra)
    return row


def record(
    con, key: tuple[str, str, str], state: str | None, when: datetime | None, row: dict | None
) -> dict | None:
    """The ledger's new ``state`` for ``key`` and its ``action_log`` row, in one transaction:
    a run killed between the two can leave neither a landed call unlogged nor a log row
    without its ledger state. ``state=None`` logs only (the ledger keeps its state)."""
    with db.transaction(con):
        if state is not None:
            set_ledger(con, *key, state, when)
        if row is not None:
            with db.staged(con, "staged_action_log", log_frame([row])):
                db.run(con, "insert_action_log")
    return row


def rollback_state(con: duckdb.DuckDBPyConnection, plan_id: str) -> tuple[bool, bool]:
    """(a rollback of ``plan_id`` was decided: it never sends again, is it still under way)."""
    decided, under_way = db.one(con, "select_execution_rollback", {"plan_id": plan_id})
    return bool(decided), bool(under_way)


def start_rollback(
    con: duckdb.DuckDBPyConnection, plan_id: str, why: str, source: AdSource, run_id
) -> dict:
    """Mark the plan as rolling back (listed as unfinished until every move is back), with
    its action-log row, in one transaction."""
    row = log_row(
        {"plan_id": plan_id, "entity_id": "*", "entity_type": "plan", "step": "rollback"},
        run_id,
        "rolling_back",
        f"rolling back every move the plan applied: {why}",
        effective_at=source_clock(source),
    )
    with db.transaction(con):
        db.run(
            con,
            "insert_execution_rollback",
            {"plan_id": plan_id, "reason": why, "run_id": run_id, "started_at": utcnow()},
        )
        with db.staged(con, "staged_action_log", log_frame([row])):
            db.run(con, "insert_action_log")
    return row
