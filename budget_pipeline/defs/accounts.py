"""One ad account of the accounts file as its own Dagster code location.

Why a code location per account, each with an asset key prefix (``shop_de/rebalance_plan``),
and not multi-partitions account × day or dynamic partitions per account:

- **Each account reports on its own clock.** The daily partitions are the account's local days
  (its timezone, its first day); a multi-partitions definition has one time dimension with one
  timezone for every account.
- **The plan is per account, not per partition.** ``rebalance_plan``, its nine blocking checks,
  the execution gate and the executor work on the newest plan of one warehouse; partitioning
  them by account would turn every "newest plan" into a partition lookup and the checks into
  partition-scoped checks, and the resources (warehouse, pools file, API account) would be
  picked inside every asset from the partition key. Here each location binds its own resources
  once, and the pipeline's code is the single account's, unchanged.
- **Accounts are isolated.** A broken pools file or scenario fails its own location only; the
  UI lists each account as a location (its jobs, schedules and sensors under their usual
  names) and its assets under its prefix; reloading one account leaves the others running.
- **One writer per warehouse, not one for all.** Each account's DuckDB steps take turns on its
  own pool (``duckdb_write.<name>``), so accounts never wait on each other's writer, and every
  run carries the ``budget_pipeline/account`` tag the run queue limits to one in-progress run
  per value (dagster.yaml): accounts run side by side, each account's runs one at a time.

The location is the single account's definitions with the keys prefixed, the pool renamed and
the partitions replaced (:func:`scoped`); everything that looks up a plan, a run or an event
takes the account from the location's ``account`` resource (:mod:`budget_pipeline.defs.scope`).
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from budget_pipeline.config.accounts import Account, accounts_path, load_accounts
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.defs.constants import DUCKDB_POOL
from budget_pipeline.defs.partitions import daily_partitions_for
from budget_pipeline.defs.resources import AdAccount, PoolsResource, Warehouse
from budget_pipeline.defs.scope import AccountScope


def account_resources(account: Account) -> dict[str, object]:
    return {
        "warehouse": Warehouse(database=str(account.db_path)),
        "pools": PoolsResource(path=str(account.pools_path)),
        "account": AdAccount(
            scenario_path=str(account.scenario),
            name=account.name,
            ad_account_id=account.ad_account_id or "",
        ),
    }


def _with_pool(assets_def: dg.AssetsDefinition, pool: str) -> dg.AssetsDefinition:
    """The same computation, its op taking turns on ``pool``. Dagster has no public way to
    rename an op's pool; this is what its own ``map_asset_specs`` does to swap the op."""
    op = assets_def.op
    if op.pool in (None, pool):
        return assets_def
    new_op = dg.OpDefinition(
        compute_fn=op.compute_fn,
        name=op.name,
        ins={i.name: dg.In.from_definition(i) for i in op.input_defs},
        outs={o.name: dg.Out.from_definition(o) for o in op.output_defs},
        description=op.description,
        config_schema=op.config_schema,
        required_resource_keys=op.required_resource_keys,
        tags=op.tags,
        retry_policy=op.retry_policy,
        code_version=op.version,
        pool=pool,
    )
    return assets_def.__class__.dagster_internal_init(
        **{**assets_def.get_attributes_dict(), "node_def": new_op}
    )


def scoped(
    definitions: list[dg.AssetsDefinition],
    scope: AccountScope,
    partitions_def: dg.PartitionsDefinition,
    keys: set[dg.AssetKey],
) -> list[dg.AssetsDefinition]:
    """``definitions`` (assets or checks) for one account: each of ``keys`` (every asset of the
    location) under its prefix, in deps and check targets too; every op on its pool; the
    partitioned assets on its partitions."""
    renamed = {key: dg.AssetKey([*scope.prefix, *key.path]) for key in keys}
    out = []
    for d in definitions:
        d = d.with_attributes(asset_key_replacements=renamed) if scope.prefix else d
        d = _with_pool(d, scope.pool) if scope.pool != DUCKDB_POOL else d
        if d.partitions_def is not None:
            d = d.map_asset_specs(
                lambda spec: spec.replace_attributes(partitions_def=partitions_def)
            )
        out.append(d)
    return out


def account_definitions(account: Account) -> dg.Definitions:
    """The code location of ``account``."""
    from budget_pipeline.definitions import ASSET_CHECKS, ASSETS, assemble

    resources = account_resources(account)
    scope = resources["account"].scope()
    partitions = daily_partitions_for(account.env())
    keys = {key for d in ASSETS for key in d.keys}
    return assemble(
        assets=scoped(ASSETS, scope, partitions, keys),
        asset_checks=scoped(ASSET_CHECKS, scope, partitions, keys),
        resources=resources,
        partitions_def=partitions,
        tags={**account.run_tags, **scope.tags},
        pool=scope.pool,
    )


@cache
def configured_accounts() -> dict[str, Account]:
    """The accounts of ``BUDGET_PIPELINE_ACCOUNTS`` (read once per process)."""
    path = accounts_path()
    if path is None:
        raise ConfigError(
            "BUDGET_PIPELINE_ACCOUNTS is not set: it names the accounts file that lists the ad "
            "accounts (see the README, 'Many accounts')"
        )
    return load_accounts(path)


@cache
def location(name: str) -> dg.Definitions:
    """The code location of the account called ``name`` in the accounts file."""
    return account_definitions(configured_accounts()[name])
