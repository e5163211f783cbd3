"""Fixtures shared by the source tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from budget_pipeline.sources.simulated import scenario_cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty scenario cache folder for this test, and nothing kept in memory."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(scenario_cache.CACHE_ENV, str(folder))
    scenario_cache.clear_memory()
    yield folder
    scenario_cache.clear_memory()
