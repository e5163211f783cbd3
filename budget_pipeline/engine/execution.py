"""Execution: turn a validated plan into steps and apply them at most once per plan id.

``observe`` pools (the default) and the global kill switch log every step that would be taken
and call nothing. ``live`` pools call the source: the ledger row is written before the call
and after it, the current budget is re-read first (a budget someone else moved since the plan
was made is skipped, not forced), donors go before recipients and an increase is sent only
once applied decreases have freed its money, and every attempt lands in the append-only
``action_log``.
After a crash between two calls, a rerun of the same plan id applies only what was not yet
applied: a step left ``started`` is resolved by re-reading the budget.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.sources.base import AdSource
from budget_pipeline.sql import load_sql

# Ledger states after which a step is not tried again; 'failed' and 'deferred' are retried.
FINISHED = ("applied", "observed", "skipped")

STEPS: dict[str, pl.DataType] = {
    "plan_id": pl.Utf8(),
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "pool": pl.Utf8(),
    "step": pl.Utf8(),  # "budget" | "pause"
    "before_budget": pl.Int64(),
    "after_budget": pl.Int64(),
    "mode": pl.Utf8(),  # "observe" | "live"
}

LOG: dict[str, pl.DataType] = {
    "log_id": pl.Utf8(),
    "plan_id": pl.Utf8(),
    "run_id": pl.Utf8(),
    "entity_id": pl.Utf8(),
    "entity_type": pl.Utf8(),
    "pool": pl.Utf8(),
    "mode": pl.Utf8(),
    "step": pl.Utf8(),
    "before_budget": pl.Int64(),
    "after_budget": pl.Int64(),
    "before_status": pl.Utf8(),
    "after_status": pl.Utf8(),
    "status": pl.Utf8(),
    "message": pl.Utf8(),
    "effective_at": pl.Datetime("us"),
    "logged_at": pl.Datetime("us"),
}


def execution_steps(plan: pl.DataFrame, config: PoolsConfig) -> pl.DataFrame:
    """The calls a plan needs: a budget step per moved entity, a pause step per paused one.

    ``mode`` is the pool's mode, forced to ``observe`` by the kill switch.
    """
    modes = pl.DataFrame(
        {"pool": [p.name for p in config.pools], "mode": [p.mode for p in config.pools]}
    )
    if config.settings.kill_switch:
        modes = modes.with_columns(mode=pl.lit("observe"))
    budget = plan.filter(pl.col("new_budget") != pl.col("old_budget")).with_columns(
        step=pl.lit("budget")
    )
    pause = plan.filter(pl.col("pause")).with_columns(
        step=pl.lit("pause"), new_budget=pl.col("old_budget")
    )
    steps = pl.concat([budget, pause]).rename(
        {"old_budget": "before_budget", "new_budget": "after_budget"}
    )
    steps = steps.join(modes, on="pool", how="left").with_columns(
        mode=pl.col("mode").fill_null("observe")
    )
    return steps.select([pl.col(c).cast(t) for c, t in STEPS.items()]).sort("step", "entity_id")


@dataclass(frozen=True)
class ExecutionResult:
    log: pl.DataFrame  # rows appended to action_log by this call
    already_done: int  # steps a previous run of the same plan had finished

    def counts(self) -> dict[str, int]:  # status -> steps
        return dict(self.log.group_by("status").len().iter_rows()) if self.log.height else {}


def source_clock(source: AdSource | None, tz: str | None = None) -> datetime:
    """The account's clock, naive account-local (the simulated account keeps its own)."""
    now = getattr(source, "now", None)
    if isinstance(now, datetime):
        return now.replace(tzinfo=None)
    zone = ZoneInfo(tz or getattr(source, "timezone", "UTC"))
    return datetime.now(zone).replace(tzinfo=None, microsecond=0)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _set_ledger(con, plan_id: str, entity_id: str, step: str, state: str) -> None:
    con.execute(
        load_sql("upsert_execution_ledger"),
        {
            "plan_id": plan_id,
            "entity_id": entity_id,
            "step": step,
            "state": state,
            "updated_at": _utcnow(),
        },
    )


def _append_log(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    if rows.height:
        with db.staged(con, "staged_action_log", rows):
            db.run(con, "insert_action_log")


def apply_steps(
    con: duckdb.DuckDBPyConnection,
    steps: pl.DataFrame,
    *,
    source: AdSource | None,
    run_id: str | None = None,
    effective_at: datetime | None = None,
) -> ExecutionResult:
    """Apply ``steps`` (from :func:`execution_steps`) once; see the module docstring."""
    if steps.height == 0:
        return ExecutionResult(pl.DataFrame(schema=LOG), 0)
    plan_ids = steps["plan_id"].unique().to_list()
    if len(plan_ids) != 1:
        raise ValueError(f"apply_steps takes the steps of one plan, got plan ids {plan_ids}")
    plan_id = plan_ids[0]
    effective_at = effective_at or source_clock(source)
    ledger = db.read(con, "select_execution_ledger", {"plan_id": plan_id})
    finished = ledger.filter(pl.col("state").is_in(list(FINISHED)))
    todo = steps.join(finished.select("entity_id", "step"), on=["entity_id", "step"], how="anti")
    already = steps.height - todo.height
    done = {
        (e, st): state for e, st, state in ledger.select("entity_id", "step", "state").iter_rows()
    }

    observe = todo.filter(pl.col("mode") == "observe")
    live = todo.filter(pl.col("mode") == "live")
    logs: list[pl.DataFrame] = []
    if observe.height:
        # Observe mode calls nothing: the whole log is one vectorised insert.
        rows = _observe_log(observe, run_id, effective_at)
        with db.transaction(con), db.staged(con, "staged_action_log", rows):
            db.run(con, "insert_action_log")
            db.run(con, "insert_execution_ledger_observed")
        logs.append(rows)
    if live.height:
        if source is None:
            raise ValueError(f"plan {plan_id} has live steps but no source to call")
        applied = steps.join(
            ledger.filter(pl.col("state") == "applied").select("entity_id", "step"),
            on=["entity_id", "step"],
        )
        logs.append(_apply_live(con, live, source, run_id, effective_at, done, applied))
    log = pl.concat(logs) if logs else pl.DataFrame(schema=LOG)
    return ExecutionResult(log, already)


def _observe_log(steps: pl.DataFrame, run_id: str | None, effective_at: datetime) -> pl.DataFrame:
    now = _utcnow()
    is_pause = pl.col("step") == "pause"
    return steps.with_columns(
        log_id=pl.Series([uuid.uuid4().hex for _ in range(steps.height)], dtype=pl.Utf8),
        run_id=pl.lit(run_id, dtype=pl.Utf8),
        before_status=pl.lit("ACTIVE"),
        after_status=pl.when(is_pause).then(pl.lit("PAUSED")).otherwise(pl.lit("ACTIVE")),
        status=pl.lit("observed"),
        message=pl.when(is_pause)
        .then(pl.lit("observe mode: would pause"))
        .otherwise(
            pl.format(
                "observe mode: would set daily_budget {} -> {}", "before_budget", "after_budget"
            )
        ),
        effective_at=pl.lit(effective_at, dtype=pl.Datetime("us")),
        logged_at=pl.lit(now, dtype=pl.Datetime("us")),
    ).select([pl.col(c).cast(t) for c, t in LOG.items()])


def _apply_live(
    con,
    steps: pl.DataFrame,
    source: AdSource,
    run_id: str | None,
    effective_at: datetime,
    done: dict[tuple[str, str], str],
    applied_before: pl.DataFrame,
) -> pl.DataFrame:
    """One API call per step (I/O bound; the ledger brackets every call).

    Donors go first, and an increase is sent only while the plan's applied decreases (this
    run's and earlier runs') have freed enough money for it: a decrease that was skipped or
    failed must never leave its recipients funded from nowhere. An increase that does not fit
    is deferred (logged, not finished), so a rerun sends it once its donors are applied.
    """
    budget = pl.col("step") == "budget"
    freed = int(
        applied_before.filter(budget)
        .select((pl.col("before_budget") - pl.col("after_budget")).sum())
        .item()
        or 0
    )
    ordered = steps.with_columns(
        _order=pl.when(budget & (pl.col("after_budget") < pl.col("before_budget")))
        .then(0)
        .when(~budget)
        .then(1)
        .otherwise(2)
    ).sort("_order", "pool", "entity_id")
    out: list[dict] = []
    for step in ordered.drop("_order").iter_rows(named=True):
        key = (step["entity_id"], step["step"])
        row = {c: step.get(c) for c in LOG if c in step}
        row.update(run_id=run_id, effective_at=effective_at, before_status=None, after_status=None)
        increase = step["after_budget"] - step["before_budget"] if step["step"] == "budget" else 0
        if increase > freed:
            _set_ledger(con, step["plan_id"], *key, "deferred")
            status, message = (
                "deferred",
                (
                    f"not sent: the plan's applied decreases have freed {freed} so far, this "
                    f"increase needs {increase}; sending it would create money. A rerun of the "
                    "plan sends it once its donors are applied."
                ),
            )
        else:
            try:
                current = source.read_budget(step["entity_id"])
                row["before_status"] = current.get("status")
                status, message = _live_one(con, source, step, current, done.get(key))
            except Exception as exc:  # recorded, never dropped; the asset fails afterwards
                _set_ledger(con, step["plan_id"], *key, "failed")
                status, message = "failed", f"{type(exc).__name__}: {exc}"
            if status == "applied":
                freed -= increase  # a decrease has a negative increase: it frees money
        row.update(status=status, message=message, log_id=uuid.uuid4().hex, logged_at=_utcnow())
        if step["step"] == "pause":
            row["after_status"] = "PAUSED" if status == "applied" else row["before_status"]
        else:
            row["after_status"] = row["before_status"]
        _append_log(con, pl.DataFrame([row], schema=LOG))
        out.append(row)
    return pl.DataFrame(out, schema=LOG)


def _live_one(con, source: AdSource, step: dict, current: dict, prior: str | None):
    plan_id, entity_id, kind = step["plan_id"], step["entity_id"], step["step"]
    before, after = step["before_budget"], step["after_budget"]
    have = current.get("daily_budget")
    if kind == "pause":
        if current.get("status") == "PAUSED":
            _set_ledger(con, plan_id, entity_id, kind, "applied")
            return "applied", "already paused" + (" (confirmed after restart)" if prior else "")
        _set_ledger(con, plan_id, entity_id, kind, "started")
        source.set_status(entity_id, "PAUSED")
        _set_ledger(con, plan_id, entity_id, kind, "applied")
        return "applied", "paused"
    if prior == "started" and have == after:
        # The call went through before a crash; only the ledger's second write was lost.
        _set_ledger(con, plan_id, entity_id, kind, "applied")
        return "applied", f"daily_budget {before} -> {after} (confirmed after restart)"
    if have != before:
        _set_ledger(con, plan_id, entity_id, kind, "skipped")
        return "skipped", (
            f"daily_budget moved since the plan was made: planned from {before}, found {have}; "
            "not forced"
        )
    _set_ledger(con, plan_id, entity_id, kind, "started")
    source.write_budget(entity_id, daily_budget=after)
    _set_ledger(con, plan_id, entity_id, kind, "applied")
    return "applied", f"daily_budget {before} -> {after}"
