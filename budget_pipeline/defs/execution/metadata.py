"""The action log as a marketer reads it: names next to ids, budgets as money.

The column names ``entity_id``, ``status``, ``before_budget``, ``after_budget`` and ``message``
are the alert sensors' contract (``budget_pipeline/alerts/events.py``); their values are the
same rows, only formatted.
"""

from __future__ import annotations

import polars as pl

from budget_pipeline.defs.display import money_columns, readable_message, with_names
from budget_pipeline.engine.report import markdown_table

MAX_ROWS = 60


def action_log_entries(log: pl.DataFrame, labels: pl.DataFrame, currency: str) -> str:
    """Markdown: one row per action-log entry this run appended."""
    shown = log.select(
        "entity_id", "pool", "mode", "step", "before_budget", "after_budget", "status", "message"
    )
    shown = money_columns(
        with_names(shown, labels, campaign=False), ["before_budget", "after_budget"], currency
    ).with_columns(
        message=pl.Series(
            [readable_message(m, currency) for m in shown["message"].to_list()], dtype=pl.Utf8
        )
    )
    return markdown_table(shown, max_rows=MAX_ROWS)
