"""The scenario cache: a big scenario is parsed once, and the cache never hands out a stale or
invalid scenario (issue 11: the YAML was parsed twice per run and again in every launched run
process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.sources.simulated import DEFAULT_SCENARIO_PATH, scenario_cache
from budget_pipeline.sources.simulated.scenario import (
    load_scenario,
    parse_scenario,
    scenario_summary,
)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(DEFAULT_SCENARIO_PATH.read_bytes())
    return path


def _no_yaml(monkeypatch) -> None:
    def refuse(path):
        raise AssertionError(f"parsed the YAML of {path} although the cache holds it")

    monkeypatch.setattr(
        "budget_pipeline.sources.simulated.scenario.parse_scenario", refuse, raising=True
    )


def test_a_new_process_reads_the_validated_scenario_from_the_cache(cache, scenario_file):
    first = load_scenario(scenario_file)
    assert first == parse_scenario(scenario_file)
    [cached] = (cache / "scenarios").glob("*.json")
    code = (
        "import sys\n"
        "import budget_pipeline.sources.simulated.scenario as s\n"
        "s.parse_scenario = lambda p: sys.exit('parsed the YAML again')\n"
        f"sc = s.load_scenario({str(scenario_file)!r})\n"
        "print(sc.model_dump_json())\n"
    )
    env = dict(os.environ) | {scenario_cache.CACHE_ENV: str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == json.loads(first.model_dump_json())
    assert cached.is_file()


def test_in_a_process_every_step_shares_one_load(cache, scenario_file, monkeypatch):
    first = load_scenario(scenario_file)
    _no_yaml(monkeypatch)
    assert load_scenario(scenario_file) is first  # the run's second step: no parse, no copy


def test_an_edit_is_seen_at_once_even_within_one_clock_tick(cache, scenario_file):
    before = load_scenario(scenario_file)
    stat = scenario_file.stat()
    text = scenario_file.read_text().replace("seed: 7\n", "seed: 8\n")
    assert len(text.encode()) == stat.st_size and text != scenario_file.read_text()
    scenario_file.write_text(text)
    os.utime(scenario_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime
    after = load_scenario(scenario_file)
    assert (before.seed, after.seed) == (7, 8)
    assert len(list((cache / "scenarios").glob("*.json"))) == 1  # the old version is gone


def test_a_damaged_or_foreign_cache_file_is_ignored(cache, scenario_file):
    expected = load_scenario(scenario_file)
    [cached] = (cache / "scenarios").glob("*.json")
    for garbage in (b"{not json", json.dumps({"key": "other"}).encode()):
        cached.write_bytes(garbage)
        scenario_cache.clear_memory()
        assert load_scenario(scenario_file) == expected
    # valid JSON with a value the model refuses (a cache from another version): re-parsed
    data = json.loads(cached.read_text())
    data["scenario"]["days"] = -5
    cached.write_text(json.dumps(data))
    scenario_cache.clear_memory()
    assert load_scenario(scenario_file) == expected


def test_a_broken_scenario_is_never_cached_and_names_its_field(cache, scenario_file):
    raw = yaml.safe_load(scenario_file.read_text())
    raw["campaigns"][0]["adsets"][0]["response"]["elasticity"] = 1.5
    scenario_file.write_text(yaml.safe_dump(raw))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"campaigns\[0\]\.adsets\[0\]\.response\.elasticity"):
            load_scenario(scenario_file)
    assert not list(cache.glob("**/*.json"))


def test_only_what_the_file_sets_is_cached_so_defaults_follow_the_code(cache, scenario_file):
    load_scenario(scenario_file)
    [cached] = (cache / "scenarios").glob("*.json")
    adset = json.loads(cached.read_text())["scenario"]["campaigns"][0]["adsets"][0]
    assert "start_day" not in adset and "shifts" not in adset  # unset: not frozen here
    assert adset["cpm"] == 14  # set in the file


def test_the_partitions_header_comes_from_the_cache_without_building_the_model(
    cache, scenario_file, monkeypatch
):
    expected = load_scenario(scenario_file)
    scenario_cache.clear_memory()
    _no_yaml(monkeypatch)
    monkeypatch.setattr(
        "budget_pipeline.sources.simulated.scenario.Scenario.model_validate",
        lambda *a, **k: pytest.fail("built the model for the header"),
    )
    assert scenario_summary(scenario_file) == (expected.start, expected.days, expected.timezone)


def test_a_cache_folder_that_cannot_be_written_is_skipped(tmp_path, scenario_file, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(scenario_cache.CACHE_ENV, str(blocker))
    scenario_cache.clear_memory()
    assert load_scenario(scenario_file) == parse_scenario(scenario_file)
    assert blocker.read_text() == "not a folder"
