"""The accounts file: many ad accounts, each with its own pools file and DuckDB warehouse.

An agency runs dozens of ad accounts. ``BUDGET_PIPELINE_ACCOUNTS`` names a YAML file that lists
them; without it the pipeline runs the one account the ``BUDGET_PIPELINE_*`` and ``META_*``
variables describe, exactly as before. ::

    accounts:
      - name: shop_de                       # code location, asset key prefix, run queue
        pools: pools/shop_de.yaml           # required: the account's own pools file
        warehouse: data/shop_de.duckdb      # default data/<name>.duckdb
        scenario: scenarios/shop_de.yaml    # the simulated account (no META_ACCESS_TOKEN)
        ad_account_id: act_1029384756       # the Marketing API account (META_ACCESS_TOKEN set)
        start_date: 2026-09-01              # Marketing API: first partition, last, timezone
        end_date: 2026-10-30
        timezone: Europe/Berlin
        run_tags:                           # added to every run of the account's jobs, e.g.
          dagster-k8s/config: {...}         # its warehouse volume on Kubernetes (deploy/README.md)

Relative paths are read from the accounts file's folder. Each account becomes a set of the
variables the single-account setup reads (:meth:`Account.env`), so one account is validated,
partitioned and run exactly as the single account is. Every problem is a
:class:`~budget_pipeline.config.loading.ConfigError` naming the file, the field
(``accounts[1].name``) and the value.

:func:`scenario_account_id` reads a scenario's ``account_id`` without validating the whole
file (a 10,000-ad-set scenario takes seconds to load): runs and plans are attributed to their
ad account by it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from budget_pipeline.config.loading import ConfigError, _SafeLoader, load_yaml_model

ACCOUNTS_ENV = "BUDGET_PIPELINE_ACCOUNTS"
# Dagster names: an asset key prefix, a code location and a pool suffix must all accept it.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
AD_ACCOUNT_PATTERN = r"^act_[0-9]+$"
DEFAULT_AD_ACCOUNT_ID = "act_1029384756"  # the simulated scenario's default (Scenario.account_id)


class AccountEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    pools: Annotated[str, Field(min_length=1)]
    warehouse: Annotated[str, Field(min_length=1)] | None = None
    scenario: Annotated[str, Field(min_length=1)] | None = None
    ad_account_id: Annotated[str, Field(pattern=AD_ACCOUNT_PATTERN)] | None = None
    start_date: date | None = None
    end_date: date | None = None
    timezone: str | None = None
    # a mapping value (dagster-k8s/config) is given as YAML and stored as the JSON Dagster reads
    run_tags: dict[Annotated[str, Field(min_length=1)], str | dict] = Field(default_factory=dict)

    @field_validator("run_tags")
    @classmethod
    def _run_tags(cls, value: dict[str, str | dict]) -> dict[str, str | dict]:
        for key in value:
            if key.startswith("budget_pipeline/"):
                raise ValueError(f"{key!r}: budget_pipeline/ tags are set by the pipeline")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Berlin)") from None
        return value


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: Annotated[list[AccountEntry], Field(min_length=1)]


@dataclass(frozen=True)
class Account:
    """One ad account of the accounts file, its paths absolute."""

    name: str
    index: int  # its position in the file, for messages (accounts[index])
    pools_path: Path
    db_path: Path
    scenario_path: Path | None
    ad_account_id: str | None
    start_date: date | None = None
    end_date: date | None = None
    timezone: str | None = None
    run_tags: Mapping[str, str] = field(default_factory=dict)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables of the single-account setup, as this account sets them, over ``base``
        (default ``os.environ``): settings, preflight and the partitions read them."""
        env = dict(os.environ if base is None else base)
        env["BUDGET_PIPELINE_DB"] = str(self.db_path)
        env["BUDGET_PIPELINE_POOLS"] = str(self.pools_path)
        env["BUDGET_PIPELINE_SCENARIO"] = str(self.scenario)
        if self.ad_account_id:
            env["META_AD_ACCOUNT_ID"] = self.ad_account_id
        for key, value in (
            ("BUDGET_PIPELINE_START_DATE", self.start_date),
            ("BUDGET_PIPELINE_END_DATE", self.end_date),
            ("BUDGET_PIPELINE_TIMEZONE", self.timezone),
        ):
            if value is not None:
                env[key] = str(value)
        return env

    @property
    def scenario(self) -> Path:
        """The simulated account's scenario (the default one when the entry names none)."""
        from budget_pipeline.settings import DEFAULT_SCENARIO_PATH

        return self.scenario_path or DEFAULT_SCENARIO_PATH

    def where(self) -> str:
        return f"accounts[{self.index}]"


def accounts_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The accounts file ``BUDGET_PIPELINE_ACCOUNTS`` names (absolute), None when unset."""
    raw = (os.environ if env is None else env).get(ACCOUNTS_ENV, "").strip()
    return Path(raw).expanduser().absolute() if raw else None


def load_accounts(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Account]:
    """The accounts by name, in file order; :class:`ConfigError` naming field and value.

    Checked here: the file and each field; names, warehouses and ad account ids unique; with
    ``META_ACCESS_TOKEN`` set, every account names its ``ad_account_id``. The files an account
    points at are checked by :func:`budget_pipeline.preflight.preflight_account`.
    """
    env = os.environ if env is None else env
    path = Path(path).expanduser().absolute()
    source = f"accounts file ({ACCOUNTS_ENV}) {path}"
    model = load_yaml_model(AccountsFile, path, what=f"accounts file ({ACCOUNTS_ENV})")
    api = bool(env.get("META_ACCESS_TOKEN", "").strip())
    base = path.parent

    def resolve(raw: str) -> Path:
        p = Path(raw).expanduser()
        return (p if p.is_absolute() else base / p).absolute()

    accounts: dict[str, Account] = {}
    warehouses: dict[Path, str] = {}
    ids: dict[str, str] = {}
    for i, entry in enumerate(model.accounts):
        where = f"accounts[{i}]"
        if entry.name in accounts:
            first = accounts[entry.name].index
            raise ConfigError(
                f"{source}: {where}.name {entry.name!r} is given twice (first at accounts[{first}]); "
                "each account needs its own name"
            )
        db = resolve(entry.warehouse or f"data/{entry.name}.duckdb")
        if db in warehouses:
            raise ConfigError(
                f"{source}: {where}.warehouse {str(db)!r} is also the warehouse of account "
                f"{warehouses[db]!r}; each account needs its own DuckDB file"
            )
        if entry.end_date and entry.start_date and entry.end_date < entry.start_date:
            raise ConfigError(
                f"{source}: {where}.end_date {entry.end_date} is before start_date {entry.start_date}"
            )
        if api and not entry.ad_account_id:
            raise ConfigError(
                f"{source}: {where}.ad_account_id is required for account {entry.name!r}: "
                "META_ACCESS_TOKEN is set, so every account is a Marketing API account"
            )
        scenario = resolve(entry.scenario) if entry.scenario else None
        account = Account(
            entry.name, i, resolve(entry.pools), db, scenario, entry.ad_account_id,
            entry.start_date, entry.end_date, entry.timezone,
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in entry.run_tags.items()},
        )  # fmt: skip
        ad_id = entry.ad_account_id if api else _simulated_id(account, source)
        if ad_id in ids:
            field = "ad_account_id" if api else "scenario"
            raise ConfigError(
                f"{source}: {where}.{field}: ad account {ad_id} is also account {ids[ad_id]!r}; "
                "two entries would run one ad account twice"
            )
        ids[ad_id] = entry.name
        warehouses[db] = entry.name
        accounts[entry.name] = account
    return accounts


def _simulated_id(account: Account, source: str) -> str:
    try:
        return scenario_account_id(account.scenario)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {account.where()}.scenario: {exc}") from None


def account_named(
    accounts: Mapping[str, Account], name: str, path: str | Path | None = None
) -> Account:
    """The account called ``name``; :class:`ConfigError` listing the known names."""
    try:
        return accounts[name]
    except KeyError:
        where = f" in {path}" if path else ""
        raise ConfigError(
            f"--account {name!r}: no such account{where}; known: {', '.join(accounts)}"
        ) from None


def scenario_account_id(path: str | Path) -> str:
    """A scenario file's top-level ``account_id`` (the scenario's default when it has none).

    Reads the YAML event stream (C parser) up to that key, without building the file: at
    10,000 ad sets the whole load takes seconds, this takes milliseconds when the key comes
    before the campaigns. A broken file is reported where it is loaded for real.
    """
    p = Path(path).expanduser().absolute()
    try:
        stat = p.stat()
    except OSError as exc:
        raise ConfigError(f"scenario not found: {p} ({exc.strerror or exc})") from None
    return _scan_account_id(str(p), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _scan_account_id(path: str, mtime_ns: int, size: int) -> str:
    depth, key_next, key = 0, True, None
    try:
        with open(path, "rb") as handle:
            for event in yaml.parse(handle, Loader=_SafeLoader):
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
                    if depth == 1:  # a top-level value (a list or mapping) ended
                        key_next = True
                elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)) and depth == 1:
                    value = getattr(event, "value", None)
                    if key_next:
                        key = value
                    elif key == "account_id":
                        return str(value)
                    key_next = not key_next
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"scenario {path} cannot be read: {exc}") from None
    return DEFAULT_AD_ACCOUNT_ID
