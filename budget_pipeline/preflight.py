"""Check everything a run needs before anything runs.

:func:`preflight` reads the environment and validates, in order, without writing anything:

1. the pools file (``BUDGET_PIPELINE_POOLS``): readable UTF-8 YAML, no key given twice, every
   field valid, every amount within int64 minor units;
2. the ad account: with ``META_ACCESS_TOKEN`` set, the ``META_*`` settings
   (``META_AD_ACCOUNT_ID``, ``META_GRAPH_URL``, ``META_API_VERSION``,
   ``META_ASYNC_POLL_SECONDS``) and the partition settings ``BUDGET_PIPELINE_START_DATE``,
   ``BUDGET_PIPELINE_END_DATE`` and ``BUDGET_PIPELINE_TIMEZONE``; without it, the scenario file
   (``BUDGET_PIPELINE_SCENARIO``) like the pools file, in the pools file's currency;
3. each pool's Meta rule file (``meta_rule:``, relative to the pools file): readable, a valid
   rule;
4. the warehouse path (``BUDGET_PIPELINE_DB``): a DuckDB file, or a path one can be created at;
5. ``DAGSTER_HOME`` (default ``./.dagster_home``): a writable folder (or one that can be made),
   whose ``dagster.yaml``, if it is the user's own, is valid YAML and a valid Dagster
   instance configuration.

With an accounts file (``BUDGET_PIPELINE_ACCOUNTS``), :func:`select_account` picks the account a
command names (``--account``) and :func:`preflight_account` validates it exactly so, on the
variables the account sets (:meth:`~budget_pipeline.config.accounts.Account.env`).

The first problem raises :class:`~budget_pipeline.config.loading.ConfigError`, whose message
names the environment variable, the file, the field and the value. The CLI prints it and exits
with code 2 (:func:`preflight_or_exit`); Dagster resources can call :func:`preflight` and let
the error fail the run before any asset writes. The token is never part of a message.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budget_pipeline import settings
from budget_pipeline.config.accounts import (
    ACCOUNTS_ENV,
    Account,
    account_named,
    accounts_path,
    load_accounts,
)
from budget_pipeline.config.loading import ConfigError, load_yaml_model
from budget_pipeline.config.pools import PoolsConfig

if TYPE_CHECKING:
    from budget_pipeline.sources.simulated.scenario import Scenario

__all__ = ["ConfigError", "RunInputs", "dagster_home", "preflight", "preflight_or_exit"]

DAGSTER_HOME_ENV = "DAGSTER_HOME"
DEFAULT_DAGSTER_HOME = ".dagster_home"  # relative to the working directory
# The first line of the dagster.yaml this project ships: a copy of it is refreshed by the CLI
# (so its content is the project's), a dagster.yaml of the user's own is used as it is.
DAGSTER_YAML_HEADER = "# Dagster instance settings for budget_pipeline."


@dataclass(frozen=True)
class RunInputs:
    """What a run will use, every part already validated."""

    db_path: Path
    pools_path: Path
    pools: PoolsConfig
    scenario_path: Path | None  # None: the Marketing API is the account
    scenario: Scenario | None
    meta_account_id: str | None
    account: Account | None = None  # the account of the accounts file, if any

    def describe(self) -> str:
        account = (
            f"Marketing API, account {self.meta_account_id}"
            if self.meta_account_id
            else f"simulated account, scenario {self.scenario_path}"
        )
        named = [f"account {self.account.name!r} ({self.account.where()})"] if self.account else []
        return "\n".join(
            [
                *named,
                f"pools: {self.pools_path} ({len(self.pools.pools)} pools, {self.pools.currency})",
                f"account: {account}",
                f"warehouse: {self.db_path}",
            ]
        )


def preflight(env: Mapping[str, str] | None = None) -> RunInputs:
    """Validate the pools file, the account settings and the warehouse path; write nothing.

    ``env`` defaults to ``os.environ``. Raises :class:`ConfigError` on the first problem.
    """
    pools_path = settings.pools_path(env)
    pools = load_yaml_model(
        PoolsConfig, pools_path, what=f"pools file ({settings.source_of(settings.POOLS_ENV, env)})"
    )
    scenario_path, scenario, account_id = None, None, None
    if settings.meta_token_set(env):
        account_id = _check_meta(env)
        _check_partitions(env)
    else:
        scenario_path, scenario = _check_scenario(env, pools, pools_path)
    _check_rules(pools, pools_path)
    db_path = settings.check_db_path(env=env)
    _check_dagster_home(env)
    return RunInputs(db_path, pools_path, pools, scenario_path, scenario, account_id)


def select_account(name: str | None, env: Mapping[str, str] | None = None) -> Account | None:
    """The account ``--account NAME`` picks from the accounts file; None without an accounts
    file (the single account). :class:`ConfigError` when the name is missing, unknown (the
    message lists the known ones) or given without an accounts file."""
    path = accounts_path(env)
    if path is None:
        if name is None:
            return None
        raise ConfigError(
            f"--account {name!r}: {ACCOUNTS_ENV} is not set; it names the accounts file that "
            "lists the ad accounts (without it there is one account, from BUDGET_PIPELINE_* "
            "and META_*)"
        )
    accounts = load_accounts(path, env)
    if name is None:
        raise ConfigError(
            f"{ACCOUNTS_ENV}={path} lists {len(accounts)} account(s): name one with --account "
            f"(known: {', '.join(accounts)})"
        )
    return account_named(accounts, name, path)


def preflight_account(account: Account, env: Mapping[str, str] | None = None) -> RunInputs:
    """:func:`preflight` of one account of the accounts file; its message names the account."""
    try:
        inputs = preflight(account.env(env))
    except ConfigError as exc:
        raise ConfigError(f"account {account.name!r} ({account.where()}): {exc}") from None
    return dataclasses.replace(inputs, account=account)


def preflight_accounts(env: Mapping[str, str] | None = None) -> list[RunInputs]:
    """Every account of the accounts file, validated in file order (empty without one)."""
    path = accounts_path(env)
    if path is None:
        return []
    return [preflight_account(a, env) for a in load_accounts(path, env).values()]


def dagster_home(env: Mapping[str, str] | None = None) -> Path:
    """``$DAGSTER_HOME``, default ``./.dagster_home``, absolute."""
    raw = settings._env(env).get(DAGSTER_HOME_ENV, "").strip()
    return Path(raw or Path.cwd() / DEFAULT_DAGSTER_HOME).expanduser().absolute()


def _check_rules(pools: PoolsConfig, pools_path: Path) -> None:
    """Each ``policy: meta_rule`` pool's rule file, read as the planner reads it (a relative
    path is next to the pools file)."""
    from budget_pipeline.engine.meta_rules import RuleError, load_rule

    for pool in pools.pools:
        if pool.policy != "meta_rule" or not pool.meta_rule:
            continue
        path = Path(pool.meta_rule).expanduser()
        if not path.is_absolute():
            path = pools_path.parent / path
        try:
            load_rule(path)
        except RuleError as exc:
            raise ConfigError(
                f"pools file {pools_path}: pool {pool.name!r}: meta_rule {pool.meta_rule!r}: {exc}"
            ) from None


def _check_dagster_home(env) -> None:
    """DAGSTER_HOME must be a folder the CLI can write (or create), and a dagster.yaml of the
    user's own in it must be one Dagster accepts. Writes nothing."""
    home = dagster_home(env)
    where = (
        f"{DAGSTER_HOME_ENV}={home}"
        if settings._env(env).get(DAGSTER_HOME_ENV, "").strip()
        else f"{DAGSTER_HOME_ENV} (unset; default {home})"
    )
    if home.exists():
        if not home.is_dir():
            raise ConfigError(f"{where}: not a folder (Dagster keeps its runs and logs there)")
        if not os.access(home, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: the folder is not writable")
    else:
        parent = next(p for p in home.parents if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: cannot be created ({parent} is not a writable folder)")
        return
    config = home / "dagster.yaml"
    if not config.exists():
        return
    if not config.is_file():
        raise ConfigError(f"{where}: {config} is not a file")
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {config}: {exc}") from None
    if text.startswith(DAGSTER_YAML_HEADER):
        return  # the project's own copy: the CLI refreshes it
    try:
        import yaml

        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            problem = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        raise ConfigError(f"{where}: {config} is not valid YAML: {problem}") from None
    _check_instance_config(where, home, config)


def _check_instance_config(where: str, home: Path, config: Path) -> None:
    """Dagster's own validation of dagster.yaml (reads it, writes nothing)."""
    try:
        from dagster._core.instance.config import dagster_instance_config
    except ImportError:  # another Dagster version: it reports the problem itself
        return
    try:
        dagster_instance_config(str(home))
    except Exception as exc:
        problem = " ".join(str(exc).split())
        raise ConfigError(
            f"{where}: {config} is not a valid Dagster configuration: {problem}"
        ) from None


def preflight_or_exit(
    env: Mapping[str, str] | None = None, *, account: str | None = None
) -> RunInputs:
    """:func:`preflight` for a CLI command (of the account ``--account`` names, with an
    accounts file): on a problem print ``error: ...`` to stderr and exit with code 2 (no
    traceback)."""
    import typer

    try:
        chosen = select_account(account, env)
        return preflight(env) if chosen is None else preflight_account(chosen, env)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _check_scenario(env, pools: PoolsConfig, pools_path: Path) -> tuple[Path, Scenario]:
    from budget_pipeline.sources.simulated.scenario import Scenario

    path = settings.scenario_path(env)
    what = f"scenario ({settings.source_of(settings.SCENARIO_ENV, env)})"
    scenario = load_yaml_model(Scenario, path, what=what)
    if scenario.currency != pools.currency:
        raise ConfigError(
            f"pools file {pools_path}: currency {pools.currency!r} does not match the simulated "
            f"account's {scenario.currency!r} ({what} {path}); floors and ceilings would be read "
            "with the wrong minor-unit factor. Set `currency:` in the pools file."
        )
    return path, scenario


def _check_meta(env) -> str:
    from budget_pipeline.sources.meta_api import ConfigError as MetaConfigError
    from budget_pipeline.sources.meta_api import MetaApiSettings

    source = settings._env(env)
    try:
        meta = MetaApiSettings.from_env(source)
    except MetaConfigError as exc:  # names the variable, never the token
        raise ConfigError(f"Marketing API settings: {exc}") from None
    assert meta is not None  # the token is set
    poll = source.get("META_ASYNC_POLL_SECONDS", "").strip()
    if poll:
        try:
            seconds = float(poll)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 < seconds <= 3600):
            raise ConfigError(
                f"META_ASYNC_POLL_SECONDS={poll!r}: expected seconds between polls, a number "
                "above 0 and at most 3600"
            )
    return meta.ad_account_id


def _check_partitions(env) -> None:
    source = settings._env(env)
    days = {}
    for name in ("BUDGET_PIPELINE_START_DATE", "BUDGET_PIPELINE_END_DATE"):
        raw = source.get(name, "").strip()
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r}: expected a date YYYY-MM-DD") from None
    start, end = days.get("BUDGET_PIPELINE_START_DATE"), days.get("BUDGET_PIPELINE_END_DATE")
    if start and end and end < start:
        raise ConfigError(
            f"BUDGET_PIPELINE_END_DATE={end} is before BUDGET_PIPELINE_START_DATE={start}"
        )
    zone = source.get("BUDGET_PIPELINE_TIMEZONE", "").strip()
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"BUDGET_PIPELINE_TIMEZONE={zone!r}: not an IANA timezone (e.g. Europe/Berlin)"
            ) from None
