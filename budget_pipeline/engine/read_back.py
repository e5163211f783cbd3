"""Reading budgets back before trusting the ledger.

A call whose outcome is unknown (a run died during it, its reply was lost and the read-back
failed) stays ``started``; :func:`reconcile_started` settles it from the budget as it is now.
Money an earlier pass freed is spent only if its decreases and pauses still hold
(:func:`donors_hold`): someone may have put a donor back since.

One API read per entity (I/O bound), so a Python loop over rows is right here.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.engine.execution import OPEN, log_frame, source_clock
from budget_pipeline.engine.ledger import log_row, record
from budget_pipeline.sources.base import AdSource


@dataclass(frozen=True)
class Settled:
    log: pl.DataFrame
    count: int  # 'started' calls settled by reading back


def reconcile_started(
    con: duckdb.DuckDBPyConnection,
    source: AdSource,
    run_id: str | None,
    *,
    plan_id: str | None = None,
) -> Settled:
    """Settle every call left ``started`` (of any plan, or of ``plan_id`` only): a run died
    during it, or its reply was lost and the read-back failed. The budget is read back:
    landed → ``applied`` and logged (with the account time of the call), so the interval
    guards see it; not landed → ``pending`` again (the plan's next pass sends it, or its
    rollback abandons it); moved by someone else → ``skipped``; unreadable → stays
    ``started`` (the next run reads it again)."""
    started = db.read(con, "select_started_steps")
    after = "after restart" if plan_id is None else "before the rollback"
    if plan_id is not None:
        started = started.filter(pl.col("plan_id") == plan_id)
    rows: list[dict] = []
    for step in started.iter_rows(named=True):
        key = (step["plan_id"], step["entity_id"], step["step"])
        try:
            current = source.read_budget(step["entity_id"])
        except Exception as exc:  # left 'started': the next run tries again
            message = f"could not read back a sent call: {exc}"
            row = log_row(step, run_id, "failed", message, effective_at=source_clock(source))
            rows.append(record(con, key, None, None, row))
            continue
        when = step["effective_at"] or source_clock(source)
        status = current.get("status")
        if step["step"] == "pause":
            landed, moved = status == "PAUSED", False
        else:
            have = current.get("daily_budget")
            landed = have == step["after_budget"]
            moved = not landed and have != step["before_budget"]
        if landed:
            message = (
                f"confirmed {after}: read back, the call went through (its run died or its "
                "reply was lost)"
            )
            row = log_row(step, run_id, "applied", message, effective_at=when,
                          before_status=status, after_status=status)  # fmt: skip
            rows.append(record(con, key, "applied", when, row))
        elif moved:
            message = (
                f"{after}: daily_budget is {current.get('daily_budget')}, neither the planned "
                f"{step['before_budget']} nor {step['after_budget']}; not forced"
            )
            row = log_row(step, run_id, "skipped", message, effective_at=when)
            rows.append(record(con, key, "skipped", when, row))
        else:
            record(con, key, "pending", None, None)
    return Settled(log_frame(rows), started.height)


def donors_hold(
    steps: pl.DataFrame, ledger: pl.DataFrame, source: AdSource
) -> tuple[str | None, bool]:
    """Before an increase spends money an earlier pass freed, read back each applied decrease
    and pause: someone may have put a donor back since. Returns (a reason to roll back, or
    None; True when a donor could not be read, so no increase is sent this pass)."""
    joined = steps.join(ledger, on=["entity_id", "step"], how="left")
    budget = pl.col("step") == "budget"
    waiting = joined.filter(
        budget
        & (pl.col("after_budget") > pl.col("before_budget"))
        & (pl.col("state").is_in(list(OPEN)) | pl.col("state").is_null())
    )
    donors = joined.filter(
        (pl.col("state") == "applied")
        & (~budget | (pl.col("after_budget") < pl.col("before_budget")))
    )
    if waiting.height == 0 or donors.height == 0:
        return None, False
    moved: list[str] = []
    for donor in donors.iter_rows(named=True):
        try:
            current = source.read_budget(donor["entity_id"])
        except Exception:  # cannot confirm the money is still free: spend none of it now
            return None, True
        if donor["step"] == "pause":
            holds = current.get("status") == "PAUSED"
        else:
            holds = current.get("daily_budget") == donor["after_budget"]
        if not holds:
            moved.append(donor["entity_id"])
    if moved:
        return (
            f"{len(moved)} applied decrease(s)/pause(s) moved since by someone else "
            f"({', '.join(moved)}): the money they freed is gone",
            False,
        )
    return None, False
