"""Every launched run (and every code-server load) imports the definitions, so libraries only a
few steps use are imported by those steps (issue 11: a launched run's import ≤ 2 s). matplotlib
with PIL, pandera with pandas, and httpx with rich were about 1.3 s of a 3.1 s import on a slow
two-core machine. These tests hold the line, and show that each library still loads, and works,
where it is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import polars as pl
import pytest

DEFERRED = ("matplotlib", "PIL", "pandera", "pandas", "httpx", "rich")


def _loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=None if env is None else os.environ | env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_definitions_leaves_the_step_only_libraries_unloaded():
    loaded = _loaded_after("import budget_pipeline.definitions")
    assert "dagster" in loaded and "budget_pipeline.definitions" in loaded
    assert sorted(set(DEFERRED) & loaded) == []


def test_a_chart_loads_matplotlib_headless_and_draws(tmp_path):
    code = (
        "from pathlib import Path\n"
        "from budget_pipeline.defs.charts import chart_metadata\n"
        f"meta = chart_metadata(lambda fig: fig.add_subplot().plot([1, 2], [3, 4]), "
        f"directory=Path({str(tmp_path)!r}), stem='c', title='T')\n"
        "import matplotlib\n"
        "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()\n"
        "assert meta['chart'].value.startswith('**T**')"
    )
    # a user's MPLBACKEND names another backend: charts are still drawn with Agg
    assert "matplotlib" in _loaded_after(code, {"MPLBACKEND": "svg"})
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_insights_validation_still_names_the_bad_value():
    from budget_pipeline.defs.extraction.assets import validate_insights
    from budget_pipeline.schemas import InsightsValidationError

    frame = pl.DataFrame(
        {
            "date": [date(2026, 1, 1)],
            "hour": pl.Series([25], dtype=pl.Int8),
            "campaign_id": ["1"],
            "adset_id": ["2"],
            "spend": [1.0],
            "impressions": [1],
            "reach": [1],
            "clicks": [1],
            "conversions": [0.0],
            "purchase_value": [0.0],
        }
    )
    with pytest.raises(
        InsightsValidationError,
        match=r"column 'hour': value '25' fails less_than_or_equal_to\(23\)",
    ):
        validate_insights(frame)
