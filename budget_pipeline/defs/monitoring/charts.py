"""The monitoring reports' chart: one bar per pool against its healthy band."""

from __future__ import annotations

from pathlib import Path

from budget_pipeline.defs.charts import chart_metadata


def pool_bars(
    pools: list[str],
    values: list[float],
    *,
    band: tuple[float, float] | None,
    ylabel: str,
    title: str,
    directory: Path,
    stem: str,
    flagged: list[bool] | None = None,
) -> dict:
    """A bar per pool (red where ``flagged`` or outside ``band``), the band shaded green."""

    def draw(fig) -> None:
        ax = fig.subplots()
        if band is not None:
            ax.axhspan(band[0], band[1], color="#55a868", alpha=0.15, label="healthy")
        bad = flagged or [band is not None and not (band[0] <= v <= band[1]) for v in values]
        ax.bar(pools, values, color=["#c44e52" if b else "#4c72b0" for b in bad])
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        if band is not None:
            ax.legend(fontsize=7, loc="upper right")

    return chart_metadata(draw, directory=directory, stem=stem, title=title, size=(6.0, 2.8))
