"""Decisions only at a new evaluation point.

Every cycle runs the decision assets, the intraday ticks between two evaluation points
included (a 30-minute schedule with the default 24-hour interval ticks 47 times a day with
nothing new to decide). Each of ``entity_baselines``, ``composite_scores`` and
``rebalance_plan`` records in the warehouse what it last computed: the evaluation point and a
fingerprint of its inputs (the pools file, the ad sets' names, budgets and statuses, the scores
and actions it read..., and how many hours of Insights lie before the point). When neither
changed it keeps what it computed (the same baselines, scores and plan id, the same metadata)
instead of recomputing it; a new evaluation point, an edited pools file, a budget changed by an
execution or by hand, an ad set renamed, history backfilled before the point all compute afresh.

Late conversions that restate the hours before an evaluation point are read at the next
point, not by re-deciding the last one (its triggers have already fired on it).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import cache
from pathlib import Path

import duckdb
import polars as pl
from pydantic import BaseModel

import budget_pipeline
from budget_pipeline import db
from budget_pipeline.engine.triggers import pending_evaluation_points
from budget_pipeline.sql import sql_dir

# What the baselines and scores read of the ad sets besides the Insights: which ad sets, named
# what (a Meta rule filters on names), of which campaign, in which pool.
SCORE_ENTITY_COLUMNS = (
    "entity_id",
    "entity_type",
    "campaign_id",
    "name",
    "status",
    "budget_type",
    "pool",
)
# What a plan reads of them: that and their budgets and locks. The budget left of a lifetime
# budget is not in it (it falls every hour the ad set spends; a lifetime budget is never moved).
PLAN_ENTITY_COLUMNS = (
    *SCORE_ENTITY_COLUMNS,
    "daily_budget",
    "lifetime_budget",
    "end_date",
    "locked",
)


def evaluation_point(now: datetime, interval_hours: int) -> datetime:
    """The newest evaluation boundary at or before ``now`` (see pending_evaluation_points)."""
    return pending_evaluation_points(now, None, interval_hours, 1)[-1]


def _text(part: object) -> str:
    if isinstance(part, pl.DataFrame):
        flat = [c for c, t in part.schema.items() if not t.is_nested()]
        return part.sort(flat, nulls_last=True).write_ndjson()
    if isinstance(part, BaseModel):
        return part.model_dump_json()
    return json.dumps(part, sort_keys=True, default=repr)


def fingerprint(*parts: object) -> str:
    """A digest of ``parts`` (frames in any row order, pydantic models, JSON-able values)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(_text(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


@cache
def code_version() -> str:
    """The package version and a digest of its code (every module: the engine, and the money,
    config and wiring it runs with) and SQL: a fix deployed between two evaluation points
    decides again at the next tick, not at the next point. Read once per process."""
    digest = hashlib.sha256(budget_pipeline.__version__.encode())
    package = Path(budget_pipeline.__file__).resolve().parent
    sources = [(f"{p.relative_to(package)}", p) for p in package.rglob("*.py")]
    sources += [(f"sql/{p.name}", p) for p in sql_dir().glob("*.sql")]
    for name, source in sorted(sources):
        try:
            digest.update(name.encode() + b"\x00" + source.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()


def decision_inputs(con: duckdb.DuckDBPyConnection, as_of: datetime, *parts: object) -> str:
    """The fingerprint of ``parts``, of this code (:func:`code_version`) and of the Insights'
    coverage before ``as_of`` (row count and first hour: a backfill of earlier days, or hours
    that arrived late, change it; late conversions restating hours already there do not)."""
    rows, first = db.one(con, "select_insights_coverage", {"as_of": as_of}) or (0, None)
    coverage = {"insights_before": rows, "first_hour": str(first), "code": code_version()}
    return fingerprint(coverage, *parts)


def _key(asset: str) -> str:
    return f"decided:{asset}"


def decided(con: duckdb.DuckDBPyConnection, asset: str) -> dict | None:
    """What ``asset`` last recorded: ``{"as_of", "inputs", "result"}`` (as_of ISO text), or
    None."""
    value = db.scalar(con, "select_warehouse_info", {"key": _key(asset)})
    return json.loads(value) if value is not None else None


def already_decided(
    con: duckdb.DuckDBPyConnection, asset: str, as_of: datetime, inputs: str
) -> str | None:
    """What ``asset`` recorded (e.g. its plan id; "" if nothing) if it last computed at
    ``as_of`` from inputs with fingerprint ``inputs``; None if it must compute."""
    stored = decided(con, asset)
    if stored is None:
        return None
    if stored.get("as_of") != as_of.isoformat() or stored.get("inputs") != inputs:
        return None
    return str(stored.get("result") or "")


def record_decided(
    con: duckdb.DuckDBPyConnection, asset: str, as_of: datetime, inputs: str, result: str = ""
) -> None:
    """Remember that ``asset`` computed at ``as_of`` from ``inputs`` (and what: ``result``)."""
    value = json.dumps({"as_of": as_of.isoformat(), "inputs": inputs, "result": result})
    db.run(con, "upsert_warehouse_info", {"key": _key(asset), "value": value})
