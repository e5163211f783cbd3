"""Execution: turn a validated plan into steps and apply them at most once per plan id.

``observe`` pools (the default) and the global kill switch log every step that would be taken
and call nothing. ``live`` pools call the source (:mod:`~budget_pipeline.engine.live_execution`):

- before the first call every live step is written to the ledger as ``pending``, so a plan cut
  short (a crash, ``kill -9``, a failed call) is known to be unfinished;
- each call is bracketed by the ledger (``started`` → ``applied``); the budget is read back
  first, so a write that already landed (a lost reply, a crash after the call) is confirmed,
  never sent twice, and a budget someone else moved is skipped, never forced. A call sent
  whose outcome is unknown (its reply lost, the read-back failed) stays ``started`` until a
  read-back settles it;
- donors go before recipients, and an increase is sent only once applied decreases have freed
  its money (read back first when an earlier pass applied them), so a partly applied plan
  never creates money;
- a plan that cannot be completed (a step skipped because someone else moved the budget, a
  donor put back since, or still unfinished after :data:`MAX_ATTEMPTS` passes) is rolled back:
  it is marked rolling back (listed as unfinished until done), every call in doubt is read
  back, and every move it applied is set back to its before-value. So after any sequence of
  crashes, failures and reruns each pool's total of budgets equals the plan's, or the plan's
  before-values.

Every attempt lands in the append-only ``action_log`` with the account's clock (the API
server's ``Date`` of the call itself, or the simulated account's clock), in the same
transaction as the ledger update it reports.
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

# Ledger states after which a step is not sent again, and those a later run still sends.
FINISHED = ("applied", "observed", "skipped", "abandoned", "rolled_back", "rollback_skipped")
OPEN = ("pending", "started", "failed", "deferred")
# Passes over a live plan (execution runs) before a plan that is still unfinished is rolled back.
MAX_ATTEMPTS = 3

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
    # "nothing" | "observed" | "complete" | "incomplete" (a later run finishes it)
    # | "rolled_back" | "held" (live steps left open while the pools are in observe mode)
    outcome: str = "nothing"
    attempt: int = 0  # this pass's number over the plan (live plans)
    open_steps: int = 0  # live steps still to send after this pass
    reconciled: int = 0  # calls left 'started' by a dead run, settled by reading back
    held_pools: tuple[str, ...] = ()  # "held": the pools of the steps left waiting

    def counts(self) -> dict[str, int]:  # status -> steps
        return dict(self.log.group_by("status").len().iter_rows()) if self.log.height else {}


def source_clock(source: AdSource | None, tz: str | None = None) -> datetime:
    """The account's clock, naive account-local: the simulated account keeps its own, the
    Marketing API source reports the ``Date`` of its last response (the call just made)."""
    now = getattr(source, "now", None)
    if isinstance(now, datetime):
        return now.replace(tzinfo=None)
    zone = ZoneInfo(tz or getattr(source, "timezone", "UTC"))
    return datetime.now(zone).replace(tzinfo=None, microsecond=0)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def log_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LOG) if rows else pl.DataFrame(schema=LOG)


def append_log(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    if rows.height:
        with db.staged(con, "staged_action_log", rows):
            db.run(con, "insert_action_log")


def execute_plan(
    con: duckdb.DuckDBPyConnection,
    steps: pl.DataFrame,
    *,
    source: AdSource | None,
    run_id: str | None = None,
    as_of: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    roll_back: str | None = None,
) -> ExecutionResult:
    """Apply ``steps`` (from :func:`execution_steps`, one plan) once; see the module docstring.

    ``as_of`` (the plan's data clock) stamps observe-mode rows, which call nothing.
    ``roll_back`` (a reason) rolls a started plan back instead of sending more of it.
    """
    from budget_pipeline.engine import live_execution, read_back

    if steps.height == 0:
        return ExecutionResult(log_frame([]), 0)
    plan_ids = steps["plan_id"].unique().to_list()
    if len(plan_ids) != 1:
        raise ValueError(f"execute_plan takes the steps of one plan, got plan ids {plan_ids}")
    plan_id = plan_ids[0]
    ledger = db.read(con, "select_execution_ledger", {"plan_id": plan_id})
    finished = ledger.filter(pl.col("state").is_in(list(FINISHED)))
    already = steps.join(finished.select("entity_id", "step"), on=["entity_id", "step"]).height

    logs: list[pl.DataFrame] = []
    observe = steps.filter(pl.col("mode") == "observe").join(
        ledger.select("entity_id", "step"), on=["entity_id", "step"], how="anti"
    )
    if observe.height:
        # Observe mode calls nothing: the whole log is one vectorised insert.
        rows = _observe_log(observe, run_id, as_of or source_clock(source))
        with db.transaction(con), db.staged(con, "staged_action_log", rows):
            db.run(con, "insert_action_log")
            db.run(con, "insert_execution_ledger_observed")
        logs.append(rows)

    live = steps.filter(pl.col("mode") == "live")
    if live.height == 0:
        # Nothing may be called (observe mode, the kill switch): a started plan waits, held.
        waiting = _waiting(con, steps, ledger, plan_id)
        held = tuple(sorted(waiting["pool"].drop_nulls().unique().to_list()))
        outcome = "held" if waiting.height else ("observed" if observe.height else "nothing")
        return ExecutionResult(
            _concat(logs), already, outcome, open_steps=waiting.height, held_pools=held
        )
    if source is None:
        raise ValueError(f"plan {plan_id} has live steps but no source to call")
    settled = read_back.reconcile_started(con, source, run_id)
    logs.append(settled.log)
    attempt = int(
        db.scalar(
            con,
            "insert_execution_attempts",
            {"plan_id": plan_id, "run_id": run_id, "started_at": utcnow()},
        )
    )
    with db.staged(con, "staged_execution_steps", live):
        db.run(con, "insert_execution_ledger_pending", {"updated_at": utcnow()})
    passed = live_execution.run_live_pass(
        con, live, source, run_id, last_attempt=attempt >= max_attempts, roll_back=roll_back
    )
    logs.append(passed.log)
    return ExecutionResult(
        _concat(logs),
        already,
        passed.outcome,
        attempt=attempt,
        open_steps=passed.open_steps,
        reconciled=settled.count,
    )


def _waiting(
    con: duckdb.DuckDBPyConnection, steps: pl.DataFrame, ledger: pl.DataFrame, plan_id: str
) -> pl.DataFrame:
    """The plan's live steps still to send, or still to set back while it rolls back, with
    their pool."""
    from budget_pipeline.engine.ledger import rollback_state

    wanted = list(OPEN) + (["applied"] if rollback_state(con, plan_id)[1] else [])
    return ledger.filter(pl.col("state").is_in(wanted)).join(
        steps.select("entity_id", "step", "pool"), on=["entity_id", "step"], how="left"
    )


def _concat(logs: list[pl.DataFrame]) -> pl.DataFrame:
    logs = [frame for frame in logs if frame.height]
    return pl.concat(logs) if logs else log_frame([])


def _observe_log(steps: pl.DataFrame, run_id: str | None, effective_at: datetime) -> pl.DataFrame:
    now = utcnow()
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
