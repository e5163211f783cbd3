"""Roll an executed plan back to its before-values, on an operator's request.

The same path as execution (:mod:`~budget_pipeline.engine.execution`,
:mod:`~budget_pipeline.engine.live_execution`), so a rollback is applied at most once however
often it is rerun or wherever it dies:

- only steps the ledger says were applied *live* are set back (observe mode called nothing);
- calls a dead run left ``started`` are settled first by reading the budget back;
- the plan's unsent steps are abandoned, so nothing more of it is ever sent;
- each budget is read back before it is written: already at its before-value → recorded
  ``rolled_back`` without a call (a rerun after a crash sends nothing twice); moved since by
  someone else → ``rollback_skipped`` and reported, never forced; increases are taken back
  before decreases are returned, so no moment holds more money than the plan's before;
- a pause the plan applied is undone the same way (``PAUSED`` → ``ACTIVE``);
- every call lands in the append-only ``action_log``.

Before anything is sent, the guards run on the rollback as a plan (from the budgets the plan
left to its before-values): pool floors and ceilings, the learning *limit* (20 %; undoing a
move capped at 15 % is up to 17.6 % of the budget it left), the account's minimum budget,
locked entities, Meta's edits per hour, and the pools' modes (a pool now observed, or the kill
switch, calls nothing). Any violation refuses the whole rollback with nothing sent: half a
rollback could create money. The minimum interval between changes is not applied: undoing a
move the operator judged wrong should not wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from budget_pipeline import db
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.contracts import LAST_CHANGES, conform
from budget_pipeline.engine import guards
from budget_pipeline.engine.execution import execution_steps, log_frame, source_clock, utcnow
from budget_pipeline.engine.ledger import start_rollback
from budget_pipeline.engine.live_execution import reconcile_started, rollback_applied
from budget_pipeline.sources.base import AdSource

# Ledger states of a step that was (or may have been) sent live; 'observed' never was.
_LIVE_STATES = (
    "pending", "started", "failed", "deferred", "applied", "abandoned", "rolled_back",
    "rollback_skipped", "skipped",
)  # fmt: skip


class RollbackRefusedError(RuntimeError):
    """The guards refuse the rollback; nothing was sent."""


@dataclass(frozen=True)
class RollbackResult:
    log: pl.DataFrame  # rows appended to action_log by this call
    # "nothing" (no live step applied, or all already set back) | "rolled_back" | "partly"
    # (some skipped: moved since by someone else) | "incomplete" (calls failed: rerun it)
    outcome: str
    rolled_back: int = 0
    skipped: int = 0
    failed: int = 0
    already: int = 0  # steps an earlier rollback run had already set back

    def summary(self) -> str:
        return (
            f"{self.outcome}: {self.rolled_back} set back, {self.skipped} skipped (changed "
            f"since by someone else), {self.failed} failed, {self.already} already set back"
        )


def live_ledger(con: duckdb.DuckDBPyConnection, plan_id: str) -> pl.DataFrame:
    """The plan's ledger rows of live steps: ``entity_id, step, state``."""
    ledger = db.read(con, "select_execution_ledger", {"plan_id": plan_id})
    return ledger.filter(pl.col("state").is_in(_LIVE_STATES)).select("entity_id", "step", "state")


def rollback_frame(plan: pl.DataFrame, ledger: pl.DataFrame) -> pl.DataFrame:
    """The rollback as a plan (contracts.PLAN columns): every row of the stored plan, from the
    budget the plan left it at (its new budget where the ledger says applied) back to the
    plan's before-value; the rows nothing was applied to do not move."""
    applied = ledger.filter(pl.col("step") == "budget", pl.col("state") == "applied").select(
        "entity_id", pl.lit(True).alias("_applied")
    )
    frame = plan.join(applied, on="entity_id", how="left").with_columns(
        pl.col("_applied").fill_null(False)
    )
    now = pl.when(pl.col("_applied")).then(pl.col("new_budget")).otherwise(pl.col("old_budget"))
    return (
        frame.with_columns(
            new_budget=pl.col("old_budget"),
            old_budget=now,
        )
        .with_columns(
            delta=pl.col("new_budget") - pl.col("old_budget"),
            target_budget=pl.col("new_budget"),
            pause=pl.lit(False),
            action=pl.when(pl.col("new_budget") > pl.col("old_budget"))
            .then(pl.lit("increase"))
            .when(pl.col("new_budget") < pl.col("old_budget"))
            .then(pl.lit("decrease"))
            .otherwise(pl.lit("hold")),
        )
        .drop("_applied")
    )


def rollback_violations(
    frame: pl.DataFrame,
    config: PoolsConfig,
    *,
    last_changes: pl.DataFrame,
    now: datetime,
    min_budget: int,
    entities: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """The guards a rollback must pass (see the module docstring); empty frames = pass."""
    settings = config.settings
    moving = frame.filter(pl.col("delta") != 0)
    modes = {p.name: ("observe" if settings.kill_switch else p.mode) for p in config.pools}
    not_live = moving.filter(
        pl.col("pool").replace_strict(modes, default="observe", return_dtype=pl.Utf8) != "live"
    ).select(
        "entity_id",
        "pool",
        pl.format(
            "pool {} is in observe mode now{}: a rollback calls the API, so nothing is sent",
            "pool",
            pl.lit(" (kill switch on)" if settings.kill_switch else ""),
        ).alias("detail"),
    )
    return {
        "floors": guards.check_floors(frame, config),
        "ceilings": guards.check_ceilings(frame, config),
        "learning_limit": guards.check_learning_limit(frame, settings.learning_limit_pct),
        "min_budget": guards.check_min_budget(frame, min_budget),
        "locked": guards.check_locked(frame, config, entities=entities),
        "edits_per_hour": guards.check_min_interval(
            frame, last_changes, now, 0.0, settings.max_changes_per_hour
        ),
        "live_mode": not_live,
    }


def roll_back_plan(
    con: duckdb.DuckDBPyConnection,
    plan: pl.DataFrame,
    config: PoolsConfig,
    *,
    source: AdSource | None,
    run_id: str | None,
    min_budget: int,
    entities: pl.DataFrame | None = None,
    reason: str = "rollback requested by an operator",
) -> RollbackResult:
    """Set plan ``plan`` (its stored rows, contracts.PLAN) back to its before-values; see the
    module docstring. Raises :class:`RollbackRefusedError` (nothing sent) if a guard refuses."""
    plan_id = plan["plan_id"][0]
    ledger = live_ledger(con, plan_id)
    if ledger.height == 0:
        return RollbackResult(pl.DataFrame(), "nothing")
    if source is None:
        raise ValueError(f"plan {plan_id} was applied live: a rollback needs the ad account")
    settled = reconcile_started(con, source, run_id)
    ledger = live_ledger(con, plan_id)
    already = int((ledger["state"] == "rolled_back").sum())
    to_undo = ledger.filter(pl.col("state") == "applied")
    if to_undo.height == 0:
        return RollbackResult(settled.log, "nothing", already=already)

    now = source_clock(source)
    last_changes = conform(
        db.read(con, "select_last_changes", {"as_of": now, "plan_id": None}), LAST_CHANGES
    )
    frame = rollback_frame(plan, ledger)
    broken = {
        name: rows
        for name, rows in rollback_violations(
            frame, config, last_changes=last_changes, now=now, min_budget=min_budget,
            entities=entities,
        ).items()
        if rows.height
    }  # fmt: skip
    if broken:
        details = "; ".join(
            f"{name}: {', '.join(rows['detail'].head(3).to_list())}"
            for name, rows in broken.items()
        )
        raise RollbackRefusedError(
            f"plan {plan_id} is not rolled back, nothing was sent: the guards refuse it ({details})"
        )

    # Nothing more of the plan is ever sent (a plan being rolled back is finished); until every
    # move is back the plan is listed as unfinished and its pools are held.
    rows = [start_rollback(con, plan_id, reason, source, run_id)]
    db.run(con, "update_execution_ledger_abandon", {"plan_id": plan_id, "updated_at": utcnow()})
    steps = execution_steps(plan, config).drop("mode")
    rows += rollback_applied(con, steps, ledger, source, run_id)  # each row logged as it went
    log = log_frame(rows)
    left = db.read(con, "select_execution_ledger", {"plan_id": plan_id}).filter(
        pl.col("state").is_in(["applied", "started"])
    )
    if left.height == 0:
        db.run(con, "update_execution_rollback_ended", {"plan_id": plan_id, "ended_at": utcnow()})
    counts = dict(log.group_by("status").len().iter_rows()) if log.height else {}
    failed = counts.get("failed", 0)
    skipped = counts.get("skipped", 0)
    outcome = "incomplete" if failed else ("partly" if skipped else "rolled_back")
    return RollbackResult(
        pl.concat([settled.log, log]) if settled.log.height else log,
        outcome,
        rolled_back=counts.get("rolled_back", 0),
        skipped=skipped,
        failed=failed,
        already=already,
    )
