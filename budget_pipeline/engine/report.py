"""Small renderers for metadata a person reads in the Dagster UI."""

from __future__ import annotations

import polars as pl


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, *, max_rows: int = 50) -> str:
    """A markdown table of ``frame`` (first ``max_rows`` rows, with a note if cut)."""
    if frame.width == 0:
        return "_(no columns)_"
    shown = frame.head(max_rows)
    lines = [
        "| " + " | ".join(shown.columns) + " |",
        "|" + "---|" * shown.width,
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.iter_rows()]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows} more rows not shown_")
    if frame.height == 0:
        lines.append("\n_(no rows)_")
    return "\n".join(lines)
