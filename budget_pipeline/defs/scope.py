"""Which ad account a run, a materialization or a lookup belongs to.

Several ad accounts share one Dagster instance (one storage, one UI, one daemon): each account
is its own code location (:mod:`budget_pipeline.defs.accounts`), its assets under a key prefix
(``shop_de/rebalance_plan``), its runs tagged :data:`ACCOUNT_TAG` with its ad account id. Every
lookup of "the newest plan" (the blocking checks, the execution gate, execution itself), of an
account's execution runs (unfinished plans, held pools), of alert events and of dead runs takes
an :class:`AccountScope`, so one account never reads, executes or reaps another's.

The scope comes from the code location's ``account`` resource (:meth:`AdAccount.scope
<budget_pipeline.defs.resources.AdAccount.scope>`), so a sensor, a check and the CLI of one
account agree on it. The single-account setup is the scope with no name: unprefixed keys and
the ``duckdb_write`` pool, as before; its plans and runs still carry the ad account id, so two
single-account deployments sharing one storage keep apart too.

A materialization or run that names no account (made before accounts existed) belongs to every
scope. A scope of ``None`` is the whole instance: only callers that look at an instance holding
one account (tests, a sensor evaluated without its code location) pass it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from budget_pipeline.defs.constants import ACCOUNT_TAG, DUCKDB_POOL

# The materialization metadata naming the ad account (rebalance_plan, budget_execution).
ACCOUNT_METADATA = "account_id"
CODE_LOCATION_TAG = "dagster/code_location"  # set by Dagster on runs launched from a location
PLAN_ASSET = "rebalance_plan"


@dataclass(frozen=True)
class AccountScope:
    account_id: str  # the ad account, act_…
    name: str = ""  # its name in the accounts file; "" = the single account

    @property
    def prefix(self) -> tuple[str, ...]:
        return (self.name,) if self.name else ()

    def key(self, asset: str) -> dg.AssetKey:
        """The account's key of ``asset`` (``rebalance_plan`` → ``shop_de/rebalance_plan``)."""
        return dg.AssetKey([*self.prefix, asset])

    @property
    def plan_key(self) -> dg.AssetKey:
        return self.key(PLAN_ASSET)

    @property
    def pool(self) -> str:
        """The pool its DuckDB steps take turns on: one per warehouse, so accounts never wait
        on each other's writer (each pool gets dagster.yaml's default limit of 1)."""
        return f"{DUCKDB_POOL}.{self.name}" if self.name else DUCKDB_POOL

    @property
    def tags(self) -> dict[str, str]:
        return {ACCOUNT_TAG: self.account_id} if self.account_id else {}

    def owns_run(self, run: dg.DagsterRun) -> bool:
        tag = run.tags.get(ACCOUNT_TAG)
        if tag is not None:
            return tag == self.account_id
        # A run launched from the UI outside a job (an ad-hoc materialization) carries its
        # code location, which is the account's name.
        location = run.tags.get(CODE_LOCATION_TAG)
        if self.name and location is not None:
            return location == self.name
        return True  # a run from before accounts: nobody else's

    def owns_metadata(self, metadata: Mapping[str, dg.MetadataValue]) -> bool:
        value = metadata.get(ACCOUNT_METADATA)
        return value is None or str(value.value) == self.account_id


def owns_run(scope: AccountScope | None, run: dg.DagsterRun | None) -> bool:
    return run is not None and (scope is None or scope.owns_run(run))


def owns_record(scope: AccountScope | None, record: dg.EventLogRecord) -> bool:
    """A materialization record of the scope's account (by its metadata)."""
    if scope is None:
        return True
    materialization = record.asset_materialization
    return materialization is None or scope.owns_metadata(materialization.metadata)


def plan_key(scope: AccountScope | None) -> dg.AssetKey:
    return scope.plan_key if scope is not None else dg.AssetKey(PLAN_ASSET)


def asset_key(scope: AccountScope | None, asset: str) -> dg.AssetKey:
    return scope.key(asset) if scope is not None else dg.AssetKey(asset)


def run_filter(scope: AccountScope | None, **kwargs) -> dg.RunsFilter:
    """A runs filter restricted to the scope's account tag (when it has one)."""
    tags = dict(kwargs.pop("tags", None) or {})
    if scope is not None:
        tags.update(scope.tags)
    return dg.RunsFilter(tags=tags or None, **kwargs)


def resources_scope(resources: Mapping[str, object] | None) -> AccountScope | None:
    """The scope of the ``account`` resource among ``resources`` (None without one)."""
    account = (resources or {}).get("account")
    scope = getattr(account, "scope", None)
    return scope() if callable(scope) else None


def repository_resource(context, key: str):
    """The code location's resource ``key``, built as a run builds it (its top-level resources
    are resource definitions, not the configured objects); None when the sensor or schedule is
    evaluated without its definitions, or the location has no such resource."""
    repo = getattr(context, "repository_def", None)
    if repo is None:
        return None
    definition = repo.get_top_level_resources().get(key)
    if definition is None:
        return None
    with dg.build_resources({key: definition}) as built:
        return getattr(built, key)


def repository_scope(context) -> AccountScope | None:
    """A sensor's or schedule's account: its code location's ``account`` resource; None when it
    is evaluated without its definitions (then it sees the whole instance)."""
    return resources_scope({"account": repository_resource(context, "account")})
