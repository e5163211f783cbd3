"""A plan's shape, checked before any guard reads it (:func:`validate_plan`), and the
decorator that makes a guard's body a check (:func:`guard`): validate, then list the
violations in entity order. The guards themselves are in :mod:`~budget_pipeline.engine.guards`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import polars as pl

_BUDGETS = ("old_budget", "new_budget", "delta", "target_budget")


def guard(
    *required: str, by_entity: bool = True
) -> Callable[[Callable[..., pl.DataFrame]], Callable[..., pl.DataFrame]]:
    """A check of a plan: it validates the plan first (``required`` columns) and lists
    violations in entity order (``by_entity``), so reports and tests read the same every run.
    The unvalidated body stays as ``.on_valid`` for
    :func:`~budget_pipeline.engine.guards.plan_violations`, which validates
    once for every check instead of once per check."""

    def decorate(body: Callable[..., pl.DataFrame]) -> Callable[..., pl.DataFrame]:
        def on_valid(plan: pl.DataFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
            found = body(plan, *args, **kwargs)
            return found.sort("entity_id") if by_entity else found

        @functools.wraps(body)
        def check(plan: pl.DataFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
            validate_plan(plan, required)
            return on_valid(plan, *args, **kwargs)

        check.on_valid = on_valid  # type: ignore[attr-defined]
        return check

    return decorate


def validate_plan(plan: pl.DataFrame, required: tuple[str, ...] = ()) -> None:
    """Raise :class:`ValueError` if ``plan`` is malformed (what that is: see
    :mod:`~budget_pipeline.engine.guards`), naming the column and the value."""
    needed = {"entity_id", "old_budget", "new_budget", *required}
    missing = sorted(c for c in needed if c not in plan.columns)
    if missing:
        raise ValueError(f"plan is missing columns {missing}; has {plan.columns}")
    schema = plan.schema
    budgets = [c for c in _BUDGETS if c in schema]
    for col in budgets:
        if not schema[col].is_integer():
            raise ValueError(
                f"plan column {col!r} has dtype {schema[col]}; budgets must be integer minor units"
            )
    if "pause" in schema and schema["pause"] != pl.Boolean:
        raise ValueError(f"plan column 'pause' has dtype {schema['pause']}; expected Boolean")
    if "score" in schema and not (schema["score"].is_numeric() or schema["score"] == pl.Null):
        raise ValueError(f"plan column 'score' has dtype {schema['score']}; expected a float")

    # Row problems: (column, bad rows, what is wrong); all tested in one pass over the plan.
    problems: list[tuple[str, pl.Expr, str]] = [
        ("entity_id", pl.col("entity_id").is_null(), "is null"),
        ("entity_id", pl.col("entity_id").is_duplicated(), "has duplicate values"),
    ]
    nullable = [c for c in [*budgets, "pause", "pool"] if c in schema]
    problems += [(c, pl.col(c).is_null(), "is null") for c in nullable]
    problems += [(c, pl.col(c) < 0, "is negative") for c in budgets if c != "delta"]
    if "delta" in schema:
        new, old = pl.col("new_budget").cast(pl.Int64), pl.col("old_budget").cast(pl.Int64)
        problems.append(("delta", pl.col("delta").cast(pl.Int64) != new - old, "is not new − old"))
    if "score" in schema and schema["score"].is_float():
        problems.append(("score", pl.col("score").is_nan(), "is NaN"))
    found = plan.select(
        [bad.fill_null(False).any().alias(str(i)) for i, (_, bad, _) in enumerate(problems)]
    ).row(0)
    for (col, bad, what), hit in zip(problems, found, strict=True):
        if not hit:
            continue
        rows = plan.filter(bad.fill_null(False))
        if what == "has duplicate values":
            values = rows["entity_id"].unique().sort().to_list()
            raise ValueError(f"plan column 'entity_id' has duplicate values {values}")
        row = rows.row(0, named=True)
        raise ValueError(
            f"plan column {col!r} {what} ({row[col]!r}) for entity {row['entity_id']!r}"
        )
