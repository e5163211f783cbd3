"""Live execution: the calls of a plan's ``live`` steps, their reconciliation after a dead run,
and the rollback of a plan that cannot be completed (see :mod:`~budget_pipeline.engine.execution`).

One API call per step (I/O bound, in the ledger's order), so a Python loop over steps is right
here; everything that can be read in one query is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.engine.execution import (
    LOG,
    OPEN,
    log_frame,
    source_clock,
    utcnow,
)
from budget_pipeline.sources.base import AdSource

_DECREASE, _PAUSE, _INCREASE = 0, 1, 2


@dataclass(frozen=True)
class Settled:
    log: pl.DataFrame
    count: int  # 'started' calls settled by reading back


@dataclass(frozen=True)
class Pass:
    log: pl.DataFrame
    outcome: str  # "complete" | "incomplete" | "rolled_back"
    open_steps: int


def _set_ledger(
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


def _row(step: dict, run_id: str | None, status: str, message: str, **extra) -> dict:
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


def _write(con, rows: list[dict]) -> pl.DataFrame:
    frame = log_frame(rows)
    if frame.height:
        with db.staged(con, "staged_action_log", frame):
            db.run(con, "insert_action_log")
    return frame


# --- after a dead run ---------------------------------------------------------------------


def reconcile_started(con: duckdb.DuckDBPyConnection, source: AdSource, run_id: str | None):
    """Settle every call a dead run left ``started`` (any plan) by reading the budget back:
    landed → ``applied`` and logged (with the account time of the call), so the interval guards
    see it; not landed → ``pending`` again (the plan's next pass sends it); moved by someone
    else → ``skipped``."""
    started = db.read(con, "select_started_steps")
    rows: list[dict] = []
    for step in started.iter_rows(named=True):
        key = (step["plan_id"], step["entity_id"], step["step"])
        try:
            current = source.read_budget(step["entity_id"])
        except Exception as exc:  # left 'started': the next run tries again
            rows.append(
                _row(step, run_id, "failed", f"could not read back after restart: {exc}",
                     effective_at=source_clock(source))
            )  # fmt: skip
            continue
        when = step["effective_at"] or source_clock(source)
        if step["step"] == "pause":
            landed, moved = current.get("status") == "PAUSED", False
        else:
            have = current.get("daily_budget")
            landed = have == step["after_budget"]
            moved = not landed and have != step["before_budget"]
        if landed:
            _set_ledger(con, *key, "applied", when)
            rows.append(
                _row(step, run_id, "applied",
                     "confirmed after restart: the call went through before the run died",
                     effective_at=when, before_status=current.get("status"),
                     after_status=current.get("status"))
            )  # fmt: skip
        elif moved:
            _set_ledger(con, *key, "skipped", when)
            rows.append(
                _row(step, run_id, "skipped",
                     f"after restart: daily_budget is {current.get('daily_budget')}, neither "
                     f"the planned {step['before_budget']} nor {step['after_budget']}; not forced",
                     effective_at=when)
            )  # fmt: skip
        else:
            _set_ledger(con, *key, "pending", None)
    return Settled(_write(con, rows), started.height)


# --- one pass over a plan -----------------------------------------------------------------


def run_live_pass(
    con: duckdb.DuckDBPyConnection,
    steps: pl.DataFrame,
    source: AdSource,
    run_id: str | None,
    *,
    last_attempt: bool,
    roll_back: str | None = None,
) -> Pass:
    """Send the plan's open live steps; then complete, leave for a later run, or roll back.

    ``roll_back`` (a reason) rolls the plan back without sending anything more.
    """
    plan_id = steps["plan_id"][0]
    ledger = _ledger(con, plan_id)
    rows: list[dict] = []
    if not (ledger["state"] == "abandoned").any():
        why = roll_back
        if why is None:
            rows += _send(con, steps, ledger, source, run_id)
            ledger = _ledger(con, plan_id)
            states = steps.join(ledger, on=["entity_id", "step"], how="left")
            skipped = states.filter((pl.col("step") == "budget") & (pl.col("state") == "skipped"))
            still_open = int(states["state"].is_in(list(OPEN)).sum())
            if still_open == 0 and skipped.height == 0:
                return Pass(_write(con, rows), "complete", 0)
            if skipped.height == 0 and not last_attempt:
                return Pass(_write(con, rows), "incomplete", still_open)
            why = (
                f"{skipped.height} move(s) skipped because someone else changed the budget"
                if skipped.height
                else f"{still_open} step(s) still unfinished after the last attempt"
            )
        db.run(con, "update_execution_ledger_abandon", {"plan_id": plan_id, "updated_at": utcnow()})
        rows.append(
            _row(
                {"plan_id": plan_id, "entity_id": "*", "entity_type": "plan", "step": "rollback"},
                run_id,
                "rolling_back",
                f"plan cannot be completed ({why}): rolling back every move it applied",
                effective_at=source_clock(source),
            )
        )
    rows += rollback_applied(con, steps, _ledger(con, plan_id), source, run_id)
    ledger = _ledger(con, plan_id)
    left = ledger.filter(pl.col("state") == "applied").height
    return Pass(_write(con, rows), "incomplete" if left else "rolled_back", left)


def _ledger(con, plan_id: str) -> pl.DataFrame:
    return db.read(con, "select_execution_ledger", {"plan_id": plan_id}).select(
        "entity_id", "step", "state"
    )


def _freed(steps: pl.DataFrame, ledger: pl.DataFrame) -> int:
    """Money the plan's applied steps have freed so far: decreases and pauses (a paused
    holder's budget goes to active ones) minus increases."""
    applied = steps.join(ledger.filter(pl.col("state") == "applied"), on=["entity_id", "step"])
    freed = (
        pl.when(pl.col("step") == "pause")
        .then(pl.col("before_budget"))
        .otherwise(pl.col("before_budget") - pl.col("after_budget"))
    )
    return int(applied.select(freed.sum()).item() or 0)


def _send(con, steps, ledger, source: AdSource, run_id) -> list[dict]:
    """Decreases, then pauses, then the increases the freed money covers; the rest deferred."""
    budget = pl.col("step") == "budget"
    freed = _freed(steps, ledger)
    todo = (
        steps.join(ledger, on=["entity_id", "step"], how="left")
        .filter(pl.col("state").is_in(list(OPEN)) | pl.col("state").is_null())
        .with_columns(
            _order=pl.when(budget & (pl.col("after_budget") < pl.col("before_budget")))
            .then(_DECREASE)
            .when(~budget)
            .then(_PAUSE)
            .otherwise(_INCREASE)
        )
        .sort("_order", "pool", "entity_id")
    )
    rows: list[dict] = []
    for step in todo.iter_rows(named=True):
        key = (step["plan_id"], step["entity_id"], step["step"])
        increase = step["after_budget"] - step["before_budget"] if step["step"] == "budget" else 0
        if increase > freed:
            _set_ledger(con, *key, "deferred", None)
            rows.append(
                _row(step, run_id, "deferred",
                     f"not sent: the plan's applied decreases have freed {freed} so far, this "
                     f"increase needs {increase}; sending it would create money. A later run "
                     "sends it once its donors are applied.",
                     effective_at=source_clock(source))
            )  # fmt: skip
            continue
        before_status = None
        try:
            current = source.read_budget(step["entity_id"])
            before_status = current.get("status")
            status, message = _live_one(con, source, step, current)
        except Exception as exc:  # recorded, never dropped; the run reports it
            _set_ledger(con, *key, "failed", source_clock(source))
            status, message = "failed", f"{type(exc).__name__}: {exc}"
        if status == "applied":
            freed -= increase  # a decrease has a negative increase: it frees money
        after_status = before_status
        if step["step"] == "pause" and status == "applied":
            after_status = "PAUSED"
        rows.append(
            _row(step, run_id, status, message, effective_at=source_clock(source),
                 before_status=before_status, after_status=after_status)
        )  # fmt: skip
    return rows


def _live_one(con, source: AdSource, step: dict, current: dict) -> tuple[str, str]:
    key = (step["plan_id"], step["entity_id"], step["step"])
    before, after = step["before_budget"], step["after_budget"]
    have = current.get("daily_budget")
    if step["step"] == "pause":
        if current.get("status") == "PAUSED":
            _set_ledger(con, *key, "applied", source_clock(source))
            return "applied", "already paused"
        _set_ledger(con, *key, "started", source_clock(source))
        source.set_status(step["entity_id"], "PAUSED")
        _set_ledger(con, *key, "applied", source_clock(source))
        return "applied", "paused"
    if have == after:
        # The call went through before (a lost reply, a run that died after it): confirm it.
        _set_ledger(con, *key, "applied", source_clock(source))
        return "applied", f"daily_budget {before} -> {after} (confirmed: already at {after})"
    if have != before:
        _set_ledger(con, *key, "skipped", source_clock(source))
        return "skipped", (
            f"daily_budget moved since the plan was made: planned from {before}, found {have}; "
            "not forced"
        )
    _set_ledger(con, *key, "started", source_clock(source))
    source.write_budget(step["entity_id"], daily_budget=after)
    _set_ledger(con, *key, "applied", source_clock(source))
    return "applied", f"daily_budget {before} -> {after}"


# --- rollback -----------------------------------------------------------------------------


def rollback_applied(con, steps, ledger, source: AdSource, run_id) -> list[dict]:
    """Set every applied move back: increases first (take money back), then decreases and
    pauses (return it: a paused holder is made ACTIVE again), so no moment holds more money
    than the plan's before."""
    applied = (
        steps.join(ledger.filter(pl.col("state") == "applied"), on=["entity_id", "step"])
        .with_columns(_up=pl.col("after_budget") > pl.col("before_budget"))
        .sort("_up", "step", "entity_id", descending=[True, False, False])
    )
    rows: list[dict] = []
    for step in applied.filter(pl.col("step") == "pause").iter_rows(named=True):
        rows.append(_unpause(con, step, source, run_id))
    for step in applied.filter(pl.col("step") == "budget").iter_rows(named=True):
        key = (step["plan_id"], step["entity_id"], step["step"])
        before, after = step["before_budget"], step["after_budget"]
        back = {**step, "before_budget": after, "after_budget": before}
        try:
            have = source.read_budget(step["entity_id"]).get("daily_budget")
            if have == before:
                _set_ledger(con, *key, "rolled_back", source_clock(source))
                status, message = "rolled_back", f"daily_budget already back at {before}"
            elif have != after:
                _set_ledger(con, *key, "rollback_skipped", source_clock(source))
                status, message = (
                    "skipped",
                    (
                        f"not rolled back: daily_budget moved since by someone else (found {have}, "
                        f"the plan set {after}); not forced"
                    ),
                )
            else:
                source.write_budget(step["entity_id"], daily_budget=before)
                _set_ledger(con, *key, "rolled_back", source_clock(source))
                status, message = "rolled_back", f"rolled back: daily_budget {after} -> {before}"
        except Exception as exc:  # stays 'applied': the next run rolls it back
            status, message = "failed", f"rollback failed: {type(exc).__name__}: {exc}"
        rows.append(_row(back, run_id, status, message, effective_at=source_clock(source)))
    return rows


def _unpause(con, step: dict, source: AdSource, run_id) -> dict:
    """Reactivate what the plan paused, read back first: ``PAUSED`` → ``ACTIVE``; already
    active → recorded without a call; anything else (deleted, archived) → skipped."""
    key = (step["plan_id"], step["entity_id"], "pause")
    status = None
    try:
        status = source.read_budget(step["entity_id"]).get("status")
        if status == "ACTIVE":
            state, result, message = "rolled_back", "rolled_back", "already active again"
        elif status == "PAUSED":
            source.set_status(step["entity_id"], "ACTIVE")
            state, result, message = "rolled_back", "rolled_back", "rolled back: reactivated"
        else:
            state, result = "rollback_skipped", "skipped"
            message = f"not reactivated: its status is {status} now; not forced"
        _set_ledger(con, *key, state, source_clock(source))
    except Exception as exc:  # stays 'applied': the next run tries again
        result, message = "failed", f"rollback failed: {type(exc).__name__}: {exc}"
    after = "ACTIVE" if result == "rolled_back" else status
    return _row(step, run_id, result, message, effective_at=source_clock(source),
                before_status=status, after_status=after)  # fmt: skip
