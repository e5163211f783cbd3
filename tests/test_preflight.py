"""preflight(): everything a run needs is checked before anything runs, and nothing is written.

Each bad input is one ConfigError naming the environment variable or file, the field and the
value. Before, a YAML file as BUDGET_PIPELINE_DB said "in use by another process", a bad pools
file failed mid-run inside Dagster, and a bad scenario broke the import of the definitions.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import yaml

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.preflight import preflight
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "EAAB-preflight-secret-7731"
META = {"META_ACCESS_TOKEN": TOKEN, "META_AD_ACCOUNT_ID": "act_1029384756"}


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_good_inputs_pass_and_nothing_is_written(tmp_path):
    env = {"BUDGET_PIPELINE_DB": str(tmp_path / "data" / "warehouse.duckdb")}
    before = files(tmp_path)
    inputs = preflight(env)
    assert inputs.db_path == tmp_path / "data" / "warehouse.duckdb"
    assert inputs.pools_path == DEFAULT_POOLS_PATH
    assert inputs.scenario_path == DEFAULT_SCENARIO_PATH
    assert inputs.scenario.currency == inputs.pools.currency == "EUR"
    assert files(tmp_path) == before  # not even the data folder
    assert "simulated account" in inputs.describe()


def test_an_existing_duckdb_warehouse_passes(tmp_path):
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    assert preflight({"BUDGET_PIPELINE_DB": str(db)}).db_path == db


def _unwritable_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores modes; procfs folders refuse even root
        folder = Path("/proc/sys")
        if os.access(folder, os.W_OK):
            pytest.skip("no folder this user cannot write")
    return folder


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("a YAML file", "exists but is not a DuckDB database file"),
        ("a directory", "is a directory; BUDGET_PIPELINE_DB names the DuckDB file itself"),
        ("an empty file", "is an empty file, not a DuckDB database"),
        ("under a file", "cannot be created: {root}/pools.yaml is a file, not a folder"),
        ("an unwritable folder", "cannot be created: the folder {locked} is not writable"),
    ],
)
def test_an_unusable_warehouse_path_names_the_variable_and_the_path(tmp_path, case, expected):
    pools = write(tmp_path / "pools.yaml", DEFAULT_POOLS_PATH.read_text(encoding="utf-8"))
    locked = _unwritable_folder(tmp_path) if case == "an unwritable folder" else None
    db = {
        "a YAML file": pools,
        "a directory": tmp_path,
        "an empty file": write(tmp_path / "empty.duckdb", b""),
        "under a file": pools / "w.duckdb",
        "an unwritable folder": (locked or tmp_path) / "new" / "w.duckdb",
    }[case]
    before = files(tmp_path)
    with pytest.raises(ConfigError) as err:
        preflight({"BUDGET_PIPELINE_DB": str(db), "BUDGET_PIPELINE_POOLS": str(pools)})
    message = str(err.value)
    assert message.startswith(f"BUDGET_PIPELINE_DB={db}: ")
    assert expected.format(root=tmp_path, locked=locked) in message
    assert "in use by another process" not in message
    assert files(tmp_path) == before


def _scenario_text(**changes) -> str:
    raw = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8"))
    raw.update(changes)
    return yaml.safe_dump(raw, sort_keys=False)


POOLS_TEXT = DEFAULT_POOLS_PATH.read_text(encoding="utf-8")
CASES = {
    "duplicate key": (
        {"BUDGET_PIPELINE_POOLS": ("pools.yaml", POOLS_TEXT + "settings: {kill_switch: true}\n")},
        "pools file (BUDGET_PIPELINE_POOLS) {root}/pools.yaml: duplicate key 'settings' on line",
    ),
    "25-digit ceiling": (
        {
            "BUDGET_PIPELINE_POOLS": (
                "pools.yaml",
                POOLS_TEXT.replace("ceiling: 600", "ceiling: 6000000000000000000000000"),
            )
        },
        "pools[0].ceiling: 6e+24 is above the largest amount",
    ),
    "binary scenario": (
        {"BUDGET_PIPELINE_SCENARIO": ("s.yaml", b"\x00\x01\x02 binary")},
        "scenario (BUDGET_PIPELINE_SCENARIO) {root}/s.yaml is a binary file",
    ),
    "directory scenario": (
        {"BUDGET_PIPELINE_SCENARIO": ("folder/", None)},
        "scenario (BUDGET_PIPELINE_SCENARIO) {root}/folder is a directory, not a file",
    ),
    "scenario budget 1e25": (
        {
            "BUDGET_PIPELINE_SCENARIO": (
                "s.yaml",
                DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8").replace(
                    "daily_budget: 60", "daily_budget: 1e25", 1
                ),
            )
        },
        "campaigns[0].adsets[0].daily_budget: 1e+25 is above the largest amount",
    ),
    "currency mismatch": (
        {"BUDGET_PIPELINE_SCENARIO": ("s.yaml", _scenario_text(currency="USD"))},
        "currency 'EUR' does not match the simulated account's 'USD'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_pools_or_scenario_file_is_named_with_field_and_value(tmp_path, case):
    files_env, expected = CASES[case]
    env = {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb")}
    for name, (file_name, text) in files_env.items():
        path = tmp_path / file_name
        if text is None:
            path.mkdir()
        else:
            write(path, text)
        env[name] = str(path)
    before = files(tmp_path)
    with pytest.raises(ConfigError) as err:
        preflight(env)
    assert expected.format(root=tmp_path) in str(err.value)
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"META_AD_ACCOUNT_ID": ""}, "META_ACCESS_TOKEN is set but META_AD_ACCOUNT_ID is not"),
        ({"META_AD_ACCOUNT_ID": "acct-9"}, "META_AD_ACCOUNT_ID: expected 'act_<digits>'"),
        ({"META_GRAPH_URL": "ftp://graph"}, "META_GRAPH_URL: expected an http(s) base URL"),
        ({"META_API_VERSION": "25"}, "META_API_VERSION: expected a version like 'v25.0'"),
        ({"META_ASYNC_POLL_SECONDS": "soon"}, "META_ASYNC_POLL_SECONDS='soon': expected seconds"),
        ({"META_ASYNC_POLL_SECONDS": "-1"}, "META_ASYNC_POLL_SECONDS='-1'"),
        ({"BUDGET_PIPELINE_START_DATE": "01/09/2026"}, "BUDGET_PIPELINE_START_DATE='01/09/2026'"),
        (
            {"BUDGET_PIPELINE_START_DATE": "2026-09-01", "BUDGET_PIPELINE_END_DATE": "2026-08-01"},
            "BUDGET_PIPELINE_END_DATE=2026-08-01 is before BUDGET_PIPELINE_START_DATE=2026-09-01",
        ),
        ({"BUDGET_PIPELINE_TIMEZONE": "Mars/Base"}, "BUDGET_PIPELINE_TIMEZONE='Mars/Base'"),
    ],
)
def test_bad_meta_settings_are_named_and_the_token_never_shown(tmp_path, extra, expected):
    env = META | {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb")} | extra
    with pytest.raises(ConfigError) as err:
        preflight(env)
    assert expected in str(err.value)
    assert TOKEN not in str(err.value)


def test_with_a_token_the_scenario_is_not_read_but_the_warehouse_is(tmp_path):
    env = META | {
        "BUDGET_PIPELINE_SCENARIO": str(tmp_path),  # a directory: ignored against the API
        "BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb"),
    }
    inputs = preflight(env)
    assert inputs.scenario is None and inputs.meta_account_id == "act_1029384756"
    assert "Marketing API, account act_1029384756" in inputs.describe()
    env["BUDGET_PIPELINE_DB"] = str(DEFAULT_POOLS_PATH)
    with pytest.raises(ConfigError, match=r"BUDGET_PIPELINE_DB=.*not a DuckDB database"):
        preflight(env)


EXAMPLES = ROOT / "budget_pipeline" / "examples"


def test_meta_rule_files_are_read_next_to_the_pools_file_and_a_bad_one_is_named(tmp_path):
    env = {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path / "h")}
    good = EXAMPLES / "pools_meta_rule.yaml"
    assert preflight(env | {"BUDGET_PIPELINE_POOLS": str(good)}).pools_path == good

    copy = write(tmp_path / "pools.yaml", good.read_text())  # its rules/ folder is not there
    with pytest.raises(ConfigError, match=r"no_pause_proportional_roas\.json.*cannot read"):
        preflight(env | {"BUDGET_PIPELINE_POOLS": str(copy)})
    write(tmp_path / "rules" / "no_pause_proportional_roas.json", '{"name": "x", ')
    with pytest.raises(ConfigError, match=r"pool '.*': meta_rule .* not valid JSON"):
        preflight(env | {"BUDGET_PIPELINE_POOLS": str(copy)})


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("run_monitoring:\n  enabledd: true\n", r"not a valid Dagster configuration.*enabledd"),
        ("telemetry: [\n", r"not valid YAML: line 2, column 1"),
        (None, r"not a folder"),
    ],
)
def test_a_bad_dagster_home_is_named(tmp_path, config, expected):
    home = tmp_path / "home"
    if config is None:
        write(home, "")  # a file, not a folder
    else:
        write(home / "dagster.yaml", config)
    env = {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(home)}
    with pytest.raises(ConfigError, match=f"DAGSTER_HOME={home}: .*{expected}"):
        preflight(env)


def test_the_projects_own_dagster_yaml_or_none_passes(tmp_path):
    env = {"BUDGET_PIPELINE_DB": str(tmp_path / "w.duckdb")}
    assert preflight(env | {"DAGSTER_HOME": str(tmp_path / "new" / "home")})  # made by `run`
    home = write(tmp_path / "home" / "dagster.yaml", (ROOT / "dagster.yaml").read_text()).parent
    assert preflight(env | {"DAGSTER_HOME": str(home)})
    assert files(tmp_path) == ["home", "home/dagster.yaml"]  # nothing written
