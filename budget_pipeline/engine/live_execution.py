"""Live execution: the calls of a plan's ``live`` steps and the rollback of a plan that cannot
be completed (see :mod:`~budget_pipeline.engine.execution`).

Each ledger update is written with its ``action_log`` row (:mod:`~budget_pipeline.engine.ledger`).
A call that was sent but whose outcome is unknown (a lost reply, a read-back that failed) stays
``started`` until a read-back settles it (:mod:`~budget_pipeline.engine.read_back`); a rollback
reads back every such call first and undoes the ones that landed.

One API call per step (I/O bound, in the ledger's order), so a Python loop over steps is right
here; everything that can be read in one query is.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.engine.execution import OPEN, log_frame, source_clock, utcnow
from budget_pipeline.engine.ledger import log_row as _row
from budget_pipeline.engine.ledger import record as _record
from budget_pipeline.engine.ledger import rollback_state, start_rollback
from budget_pipeline.engine.ledger import set_ledger as _set_ledger
from budget_pipeline.engine.read_back import donors_hold, reconcile_started
from budget_pipeline.sources.base import AdSource

_DECREASE, _PAUSE, _INCREASE = 0, 1, 2


@dataclass(frozen=True)
class Pass:
    log: pl.DataFrame
    outcome: str  # "complete" | "incomplete" | "rolled_back"
    open_steps: int


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

    ``roll_back`` (a reason) rolls the plan back without sending anything more. Money freed
    by an earlier pass is spent only once its decreases and pauses read back as applied; if
    one was moved since, the plan is rolled back.
    """
    plan_id = steps["plan_id"][0]
    ledger = _ledger(con, plan_id)
    rows: list[dict] = []
    if not rollback_state(con, plan_id)[0]:
        why, unconfirmed = roll_back, False
        if why is None:
            why, unconfirmed = donors_hold(steps, ledger, source)
        if why is None:
            rows += _send(con, steps, ledger, source, run_id, hold_increases=unconfirmed)
            ledger = _ledger(con, plan_id)
            states = steps.join(ledger, on=["entity_id", "step"], how="left")
            skipped = states.filter((pl.col("step") == "budget") & (pl.col("state") == "skipped"))
            still_open = int(states["state"].is_in(list(OPEN)).sum())
            if still_open == 0 and skipped.height == 0:
                return Pass(log_frame(rows), "complete", 0)
            if skipped.height == 0 and not last_attempt:
                return Pass(log_frame(rows), "incomplete", still_open)
            why = (
                f"{skipped.height} move(s) skipped because someone else changed the budget"
                if skipped.height
                else f"{still_open} step(s) still unfinished after the last attempt"
            )
        rows.append(start_rollback(con, plan_id, why, source, run_id))
    # Calls sent whose outcome is unknown: read back, so the rollback undoes those that landed.
    rows += reconcile_started(con, source, run_id, plan_id=plan_id).log.to_dicts()
    db.run(con, "update_execution_ledger_abandon", {"plan_id": plan_id, "updated_at": utcnow()})
    rows += rollback_applied(con, steps, _ledger(con, plan_id), source, run_id)
    ledger = _ledger(con, plan_id)
    left = ledger.filter(
        (pl.col("state") == "applied")  # a move or a pause not yet set back
        | (pl.col("state") == "started")  # sent, outcome still unknown: read back next run
    ).height
    if left == 0:
        db.run(con, "update_execution_rollback_ended", {"plan_id": plan_id, "ended_at": utcnow()})
    return Pass(log_frame(rows), "incomplete" if left else "rolled_back", left)


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


class _Sent(Exception):
    """The call was sent and then failed (a lost reply, a read-back that failed): its outcome
    is unknown, so the step stays ``started`` until a read-back settles it."""


def _in_doubt(steps: pl.DataFrame, ledger: pl.DataFrame) -> int:
    """Increases sent whose outcome is unknown (``started``): they may have landed, so the
    money they would take counts as spent."""
    started = steps.join(ledger.filter(pl.col("state") == "started"), on=["entity_id", "step"])
    up = started.filter(pl.col("step") == "budget").select(
        (pl.col("after_budget") - pl.col("before_budget")).clip(lower_bound=0).sum()
    )
    return int(up.item() or 0)


def _send(con, steps, ledger, source: AdSource, run_id, *, hold_increases: bool = False):
    """Decreases, then pauses, then the increases the freed money covers; the rest deferred.

    ``hold_increases``: the money earlier passes freed could not be confirmed (a donor could
    not be read back): no increase is sent this pass."""
    budget = pl.col("step") == "budget"
    freed = 0 if hold_increases else _freed(steps, ledger) - _in_doubt(steps, ledger)
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
        # what the step adds to the active budget: a pause takes its whole budget out of it
        change = increase if step["step"] == "budget" else -step["before_budget"]
        # A call in doubt (sent before, outcome unknown) is read back before it may be deferred:
        # 'deferred' would forget that it may have landed.
        in_doubt = step["state"] == "started"
        if in_doubt:
            freed += max(increase, 0)  # its reservation (_in_doubt) is decided again below
        covered = increase <= 0 or increase <= freed  # decreases and pauses are never held back
        if not covered and not in_doubt:
            row = _row(step, run_id, "deferred", _deferred(freed, increase),
                       effective_at=source_clock(source))  # fmt: skip
            rows.append(_record(con, key, "deferred", None, row))
            continue
        before_status = None
        state: str | None
        try:
            current = source.read_budget(step["entity_id"])
            before_status = current.get("status")
            state, message = _live_one(step, current)
            if state == "unsent" and not covered:
                state, message = "deferred", _deferred(freed, increase)
            elif state == "unsent":
                state, message = _send_one(con, source, step)
        except _Sent as exc:  # stays 'started': read back before anything else
            state, message = None, f"outcome unknown, the call was sent: {exc}"
        except Exception as exc:  # nothing sent now; recorded, never dropped
            state = None if in_doubt else "failed"  # a call in doubt stays 'started'
            message = f"{type(exc).__name__}: {exc}"
        status = state or "failed"
        if state == "applied" or (state is None and increase > 0):
            # a decrease or a pause frees money; an increase that may have landed spends it
            freed -= change
        after_status = before_status
        if step["step"] == "pause" and status == "applied":
            after_status = "PAUSED"
        when = source_clock(source)
        row = _row(step, run_id, status, message, effective_at=when,
                   before_status=before_status, after_status=after_status)  # fmt: skip
        rows.append(_record(con, key, state, when, row))
    return rows


def _deferred(freed: int, increase: int) -> str:
    return (
        f"not sent: the plan's applied decreases have freed {freed} so far, this increase "
        f"needs {increase}; sending it would create money. A later run sends it once its "
        "donors are applied."
    )


def _live_one(step: dict, current: dict) -> tuple[str, str]:
    """The ledger state and message of one step from its read-back: ``applied`` (already
    there), ``skipped`` (moved by someone else) or ``unsent`` (still at its before-value)."""
    before, after = step["before_budget"], step["after_budget"]
    have = current.get("daily_budget")
    if step["step"] == "pause":
        if current.get("status") == "PAUSED":
            return "applied", "already paused"
        return "unsent", ""
    if have == after:
        # The call went through before (a lost reply, a run that died after it): confirm it.
        return "applied", f"daily_budget {before} -> {after} (confirmed: already at {after})"
    if have != before:
        return "skipped", (
            f"daily_budget moved since the plan was made: planned from {before}, found {have}; "
            "not forced"
        )
    return "unsent", ""


def _send_one(con, source: AdSource, step: dict) -> tuple[str, str]:
    """Send one step's call (``started`` is recorded before it; :class:`_Sent` when the call
    was sent and then failed)."""
    key = (step["plan_id"], step["entity_id"], step["step"])
    if step["step"] == "pause":
        _call(con, key, source, lambda: source.set_status(step["entity_id"], "PAUSED"))
        return "applied", "paused"
    before, after = step["before_budget"], step["after_budget"]
    _call(con, key, source, lambda: source.write_budget(step["entity_id"], daily_budget=after))
    return "applied", f"daily_budget {before} -> {after}"


def _call(con, key, source: AdSource, send) -> None:
    """``started`` in the ledger (committed), then the call; any error after it is sent is
    :class:`_Sent` (the call may have landed)."""
    _set_ledger(con, *key, "started", source_clock(source))
    try:
        send()
    except Exception as exc:
        raise _Sent(f"{type(exc).__name__}: {exc}") from exc


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
    budget = pl.col("step") == "budget"
    ups = applied.filter(budget & pl.col("_up"))
    downs = applied.filter(budget & ~pl.col("_up"))
    for step in ups.iter_rows(named=True):  # take money back first ...
        rows.append(_set_back(con, step, source, run_id))
    for step in applied.filter(~budget).iter_rows(named=True):  # ... then return it
        rows.append(_unpause(con, step, source, run_id))
    for step in downs.iter_rows(named=True):
        rows.append(_set_back(con, step, source, run_id))
    return rows


def _set_back(con, step: dict, source: AdSource, run_id) -> dict:
    """One applied budget move set back to its before-value, read back first."""
    key = (step["plan_id"], step["entity_id"], step["step"])
    before, after = step["before_budget"], step["after_budget"]
    back = {**step, "before_budget": after, "after_budget": before}
    state = None  # the ledger's new state, written with the log row (see _record)
    try:
        have = source.read_budget(step["entity_id"]).get("daily_budget")
        if have == before:
            state, status, message = (
                "rolled_back", "rolled_back", f"daily_budget already back at {before}"
            )  # fmt: skip
        elif have != after:
            state, status = "rollback_skipped", "skipped"
            message = (
                f"not rolled back: daily_budget moved since by someone else (found {have}, "
                f"the plan set {after}); not forced"
            )
        else:
            source.write_budget(step["entity_id"], daily_budget=before)
            state, status = "rolled_back", "rolled_back"
            message = f"rolled back: daily_budget {after} -> {before}"
    except Exception as exc:  # stays 'applied': the next run reads it back, rolls it back
        status, message = "failed", f"rollback failed: {type(exc).__name__}: {exc}"
    when = source_clock(source)
    return _record(con, key, state, when, _row(back, run_id, status, message, effective_at=when))


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
    except Exception as exc:  # stays 'applied': the next run tries again
        state, result, message = None, "failed", f"rollback failed: {type(exc).__name__}: {exc}"
    after = "ACTIVE" if result == "rolled_back" else status
    when = source_clock(source)
    row = _row(step, run_id, result, message, effective_at=when, before_status=status,
               after_status=after)  # fmt: skip
    return _record(con, key, state, when, row)
