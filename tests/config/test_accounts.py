"""The accounts file: every account resolved to its own files, every mistake named with its
field and value, and the ad account id read without loading a whole scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from budget_pipeline.config.accounts import load_accounts, scenario_account_id
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH
from budget_pipeline.settings import DEFAULT_SCENARIO_PATH
from budget_pipeline.sources.simulated import load_scenario
from budget_pipeline.sources.simulated.library import bundled_scenarios, scenario_yaml

SECOND = Path(__file__).resolve().parents[2] / "examples" / "accounts" / "shop_at.yaml"


def _write(tmp_path: Path, accounts: list[dict]) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump({"accounts": accounts}, sort_keys=False))
    return path


def test_paths_are_read_from_the_files_folder_and_each_account_gets_its_own_warehouse(tmp_path):
    (tmp_path / "pools").mkdir()
    path = _write(
        tmp_path,
        [
            {"name": "shop_de", "pools": "pools/de.yaml"},
            {"name": "shop_at", "pools": str(DEFAULT_POOLS_PATH), "scenario": str(SECOND),
             "warehouse": "/srv/warehouses/at.duckdb"},
        ],
    )  # fmt: skip
    accounts = load_accounts(path, env={})
    assert list(accounts) == ["shop_de", "shop_at"]  # file order
    de, at = accounts["shop_de"], accounts["shop_at"]
    assert de.pools_path == tmp_path / "pools" / "de.yaml"
    assert de.db_path == tmp_path / "data" / "shop_de.duckdb"
    assert de.scenario == DEFAULT_SCENARIO_PATH and at.scenario == SECOND
    assert at.db_path == Path("/srv/warehouses/at.duckdb")
    # what the single-account code reads, as this account sets it
    env = at.env({"BUDGET_PIPELINE_DB": "elsewhere.duckdb", "BUDGET_PIPELINE_TIMEZONE": "UTC"})
    assert env["BUDGET_PIPELINE_DB"] == "/srv/warehouses/at.duckdb"
    assert env["BUDGET_PIPELINE_POOLS"] == str(DEFAULT_POOLS_PATH)
    assert env["BUDGET_PIPELINE_SCENARIO"] == str(SECOND)
    assert env["BUDGET_PIPELINE_TIMEZONE"] == "UTC"  # not the account's: inherited


def test_an_api_account_sets_its_own_account_and_partitions(tmp_path):
    path = _write(
        tmp_path,
        [{"name": "shop", "pools": "p.yaml", "ad_account_id": "act_42",
          "start_date": "2026-01-01", "end_date": "2026-01-31", "timezone": "America/New_York"}],
    )  # fmt: skip
    (shop,) = load_accounts(path, env={"META_ACCESS_TOKEN": "t"}).values()
    env = shop.env({"META_AD_ACCOUNT_ID": "act_1", "META_ACCESS_TOKEN": "t"})
    assert env["META_AD_ACCOUNT_ID"] == "act_42"
    assert (env["BUDGET_PIPELINE_START_DATE"], env["BUDGET_PIPELINE_END_DATE"]) == (
        "2026-01-01",
        "2026-01-31",
    )
    assert env["BUDGET_PIPELINE_TIMEZONE"] == "America/New_York"


@pytest.mark.parametrize(
    ("accounts", "env", "expected"),
    [
        ([{"name": "Shop-DE", "pools": "p.yaml"}], {}, ["accounts[0].name", "'Shop-DE'"]),
        ([{"name": "a", "pools": "p.yaml", "colour": "red"}], {}, ["accounts[0].colour", "'red'"]),
        ([{"name": "a", "pools": "p.yaml", "timezone": "Mars/Base"}], {},
         ["accounts[0].timezone", "Mars/Base"]),
        ([{"name": "a", "pools": "p.yaml", "ad_account_id": "1234"}], {},
         ["accounts[0].ad_account_id", "'1234'"]),
        ([], {}, ["accounts", "at least 1"]),
        ([{"name": "a", "pools": "p.yaml", "scenario": str(SECOND)},
          {"name": "a", "pools": "q.yaml"}], {}, ["accounts[1].name 'a' is given twice"]),
        ([{"name": "a", "pools": "p.yaml", "warehouse": "w.duckdb"},
          {"name": "b", "pools": "p.yaml", "scenario": str(SECOND), "warehouse": "./w.duckdb"}],
         {}, ["accounts[1].warehouse", "w.duckdb", "account 'a'"]),
        # both on the default scenario: one simulated ad account run twice
        ([{"name": "a", "pools": "p.yaml"}, {"name": "b", "pools": "p.yaml"}], {},
         ["accounts[1].scenario", "act_1029384756", "account 'a'"]),
        ([{"name": "a", "pools": "p.yaml", "ad_account_id": "act_1"},
          {"name": "b", "pools": "p.yaml", "ad_account_id": "act_1"}],
         {"META_ACCESS_TOKEN": "t"}, ["accounts[1].ad_account_id", "act_1", "account 'a'"]),
        ([{"name": "a", "pools": "p.yaml", "scenario": str(SECOND)}], {"META_ACCESS_TOKEN": "t"},
         ["accounts[0].ad_account_id is required", "META_ACCESS_TOKEN"]),
        ([{"name": "a", "pools": "p.yaml", "start_date": "2026-02-01", "end_date": "2026-01-01"}],
         {}, ["accounts[0].end_date 2026-01-01", "start_date 2026-02-01"]),
        # the account tag is the pipeline's: a file must not point it at another account
        ([{"name": "a", "pools": "p.yaml", "run_tags": {"budget_pipeline/account": "act_9"}}],
         {}, ["accounts[0].run_tags", "budget_pipeline/account"]),
        ([{"name": "a", "pools": "p.yaml", "run_tags": {"team": 7}}], {},
         ["accounts[0].run_tags.team", "7"]),
    ],
)  # fmt: skip
def test_a_bad_accounts_file_names_the_field_and_the_value(tmp_path, accounts, env, expected):
    path = _write(tmp_path, accounts)
    with pytest.raises(ConfigError) as error:
        load_accounts(path, env=env)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_the_ad_account_id_is_read_as_a_full_load_reads_it(tmp_path):
    for path in [DEFAULT_SCENARIO_PATH, SECOND]:
        assert scenario_account_id(path) == load_scenario(path).account_id
    for kind in bundled_scenarios():
        # a generated scenario, its account_id after three lines and with the key last
        text = scenario_yaml(kind, seed=3)
        data = yaml.safe_load(text)
        moved = tmp_path / f"{kind}.yaml"
        account = data.pop("account_id")
        moved.write_text(yaml.safe_dump({**data, "account_id": account}, sort_keys=False))
        assert scenario_account_id(moved) == account == load_scenario(moved).account_id
    # no account_id: the scenario's default, as the model reads it
    data = yaml.safe_load(DEFAULT_SCENARIO_PATH.read_text())
    data.pop("account_id")
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(data))
    assert scenario_account_id(bare) == load_scenario(bare).account_id == "act_1029384756"
    # a nested account_id (a campaign's field, say) is not the account's
    data["campaigns"][0]["account_id"] = "act_999"
    bare.write_text(yaml.safe_dump(data))
    assert scenario_account_id(bare) == "act_1029384756"
