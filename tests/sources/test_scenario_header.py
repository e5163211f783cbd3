"""A big scenario's header (first day, days, timezone) comes from its top-level keys alone, so a
launched run imports the code location in under 2 s at any size (issue 11: a 10k-ad-set
scenario took 4.0 s to parse and validate on a cold cache). The header is what the full load
would give; the rest of the file is still validated, with the usual error, when the account is
opened; anything the walk cannot judge falls back to the full load."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from budget_pipeline.bench.inputs import scaled_inputs
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.sources.simulated import DEFAULT_SCENARIO_PATH, scenario_cache
from budget_pipeline.sources.simulated import scenario_header as header_module
from budget_pipeline.sources.simulated.scenario import (
    load_scenario,
    parse_scenario,
    scenario_summary,
)
from budget_pipeline.sources.simulated.scenario_header import QUICK_HEADER_BYTES, quick_header

LIBRARY = sorted((DEFAULT_SCENARIO_PATH.parent).glob("*.yaml"))
DEFAULT_TEXT = DEFAULT_SCENARIO_PATH.read_text()


@pytest.fixture
def every_size(monkeypatch):
    """The quick path for files of any size (the bundled scenarios are a few KB)."""
    monkeypatch.setattr(header_module, "QUICK_HEADER_BYTES", 0)


def _header(scenario) -> tuple:
    return scenario.start, scenario.days, scenario.timezone


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_the_quick_header_is_the_full_loads_for_every_bundled_scenario(path, every_size):
    assert quick_header(path) == _header(parse_scenario(path))


def test_a_small_file_is_loaded_whole_so_its_mistakes_fail_the_code_location(tmp_path, cache):
    assert DEFAULT_SCENARIO_PATH.stat().st_size < QUICK_HEADER_BYTES
    assert quick_header(DEFAULT_SCENARIO_PATH) is None
    broken = tmp_path / "s.yaml"
    broken.write_text(DEFAULT_TEXT.replace("elasticity: 0.55", "elasticity: 1.5", 1))
    with pytest.raises(ConfigError, match=r"response\.elasticity"):
        scenario_summary(broken)


def test_a_big_scenario_gives_its_header_without_building_the_model(tmp_path, cache, monkeypatch):
    scenario, _ = scaled_inputs(130, tmp_path / "big")  # 5,200 ad sets
    assert scenario.stat().st_size >= QUICK_HEADER_BYTES
    expected = _header(parse_scenario(scenario))
    scenario_cache.clear_memory()
    monkeypatch.setattr(
        "budget_pipeline.sources.simulated.scenario.parse_scenario",
        lambda path: pytest.fail(f"loaded {path} whole for its header"),
    )
    started = time.perf_counter()
    assert scenario_summary(scenario) == expected
    assert time.perf_counter() - started < 1.0  # the whole file takes about 1 s to load


def test_a_mistake_in_a_big_scenarios_body_is_named_when_the_account_opens(tmp_path, cache):
    scenario, _ = scaled_inputs(130, tmp_path / "big")
    text = scenario.read_text()
    scenario.write_text(text.replace("elasticity: 0.55", "elasticity: 1.5", 1))
    assert scenario_summary(scenario)[1] == 60  # the partitions load
    with pytest.raises(ConfigError, match=r"campaigns\[0\]\.adsets\[0\]\.response\.elasticity"):
        load_scenario(scenario)  # the first step that opens the account stops here


def test_a_launched_run_imports_the_definitions_without_loading_a_big_scenario(tmp_path):
    scenario, pools = scaled_inputs(25, tmp_path / "big")  # 1,000 ad sets: 220 KB
    assert scenario.stat().st_size >= QUICK_HEADER_BYTES
    code = (
        "import sys, budget_pipeline.sources.simulated.scenario as s\n"
        "s.parse_scenario = lambda path: sys.exit(f'loaded {path} whole at import')\n"
        "import budget_pipeline.definitions as d\n"
        "print(d.daily_partitions.start.date(), len(d.daily_partitions.get_partition_keys()))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BUDGET_PIPELINE_SCENARIO": str(scenario),
        "BUDGET_PIPELINE_POOLS": str(pools),
        "BUDGET_PIPELINE_CACHE_DIR": str(tmp_path / "cold-cache"),  # as after an edit
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2026-09-01", "60"]  # (the seconds: budget-pipeline bench)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda t: t.replace("days: 60", "days: *d").replace("seed: 7", "seed: &d 7"), "alias"),
        (lambda t: t.replace("start: 2026-09-01", "start: !!str 2026-09-01"), "explicit tag"),
        (lambda t: t.replace("days: 60", "days: 60\ndays: 61"), "key given twice"),
        (lambda t: "- " + t.replace("\n", "\n  "), "not a mapping"),
        (lambda t: t.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus"), "bad timezone"),
        (lambda t: t.replace("timezone: Europe/Berlin\n", ""), "missing timezone"),
        (lambda t: t.replace("seed: 7", "seed: [7"), "not YAML"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_what_the_walk_cannot_judge_goes_to_the_full_load(tmp_path, cache, every_size, change, why):
    path = tmp_path / "s.yaml"
    path.write_text(change(DEFAULT_TEXT))
    assert quick_header(path) is None, why
    try:
        full = _header(parse_scenario(path))
    except ConfigError as exc:
        with pytest.raises(ConfigError) as again:
            scenario_summary(path)
        assert str(again.value) == str(exc)  # the full load's error, naming the problem
    else:
        assert scenario_summary(path) == full  # e.g. an alias the full load resolves


def test_flow_style_and_quoted_values_read_as_the_full_load_reads_them(tmp_path, every_size):
    raw = yaml.safe_load(DEFAULT_TEXT)
    path = tmp_path / "flow.yaml"
    text = yaml.safe_dump(raw, default_flow_style=True).replace("2026-09-01", "'2026-09-01'", 1)
    path.write_text(text)
    assert quick_header(path) == _header(parse_scenario(path))
