"""Charts for the asset pages: a PNG file, and the same image inline in markdown metadata.

Dagster's UI (1.13) renders a markdown image whose source is a ``data:image/png;base64`` URI
(its sanitiser allows the ``data`` protocol), so the asset page shows the chart under
"[Show Markdown]" with nothing else to serve. The inline copy is bounded: a chart is drawn
small, redrawn at a lower resolution if it is still too large, and left out (the file path
stays) past :data:`MAX_INLINE_BYTES`, so one materialization's metadata stays small.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_INLINE_BYTES = 60_000  # base64 text of the inline image
_DPI = (72, 56, 42)


def _pyplot():
    """matplotlib on first use: importing it took about 0.6 s of every launched run's import of
    the definitions, and only the few assets that draw a chart need it."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or in CI
    import matplotlib.pyplot as plt

    return plt


def charts_dir(database: str | Path) -> Path:
    """Charts live next to the warehouse: ``<warehouse folder>/charts``."""
    return Path(database).absolute().parent / "charts"


def chart_metadata(
    draw: Callable[[Figure], None],
    *,
    directory: Path,
    stem: str,
    title: str,
    size: tuple[float, float] = (9.0, 3.4),
) -> dict[str, dg.MetadataValue]:
    """Draw a figure with ``draw(fig)``, save ``directory/stem.png`` and return ``chart`` (the
    image inline, markdown) and ``chart_path`` metadata."""
    plt = _pyplot()
    fig = plt.figure(figsize=size)
    try:
        draw(fig)
        fig.tight_layout()
        png = b""
        for dpi in _DPI:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi)
            png = buffer.getvalue()
            if len(base64.b64encode(png)) <= MAX_INLINE_BYTES:
                break
    finally:
        plt.close(fig)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.png"
    path.write_bytes(png)
    encoded = base64.b64encode(png).decode("ascii")
    if len(encoded) <= MAX_INLINE_BYTES:
        inline = f"![{title}](data:image/png;base64,{encoded})"
    else:
        inline = f"_{title}: too large to show inline; see chart_path_"
    return {
        "chart": dg.MetadataValue.md(f"**{title}**\n\n{inline}\n\nFile: `{path}`"),
        "chart_path": dg.MetadataValue.path(str(path)),
    }
