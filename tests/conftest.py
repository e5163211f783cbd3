"""Shared set-up. Tests never touch the user's warehouse or DAGSTER_HOME."""

from __future__ import annotations

import os
from pathlib import Path

# Definitions read these at import; point them at throwaway places before anything imports.
os.environ.setdefault("BUDGET_PIPELINE_DB", str(Path("/tmp/budget_pipeline_tests_unused.duckdb")))
os.environ.pop("META_ACCESS_TOKEN", None)
# The validated-scenario cache (sources/simulated/scenario_cache.py): not the user's ~/.cache.
os.environ.setdefault("BUDGET_PIPELINE_CACHE_DIR", "/tmp/budget_pipeline_tests_cache")
