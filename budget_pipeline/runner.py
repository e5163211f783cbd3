"""Run the pipeline in process through the real Dagster machinery: the CLI, the benchmark and
the tests all go through here. Every run carries this host and process
(:func:`~budget_pipeline.defs.run_health.host_tags`), so a run whose process died before or
after it started is recognised as dead and its plan finished by the next one, and its ad
account (``budget_pipeline/account``), so accounts sharing one instance keep apart.

``defs`` (an account's code location, :func:`budget_pipeline.defs.accounts.account_definitions`)
replaces the single account's definitions; ``resources`` rebinds the single account's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

CYCLE_GROUPS = ("extraction", "warehouse", "decisions")


def _tags(
    tags: Mapping[str, str] | None, resources: Mapping[str, object] | None = None
) -> dict[str, str]:
    from budget_pipeline.defs.run_health import host_tags
    from budget_pipeline.defs.scope import resources_scope

    scope = resources_scope(resources)
    return {**host_tags(), **(scope.tags if scope else {}), **(tags or {})}


def _definitions(defs: dg.Definitions | None = None) -> dg.Definitions:
    if defs is not None:
        return defs
    from budget_pipeline.definitions import defs

    return defs


def partition_keys(days: int = 0, defs: dg.Definitions | None = None) -> list[str]:
    """The daily partition keys (of ``defs``' account), or the newest ``days`` of them."""
    from budget_pipeline.defs.jobs import CYCLE_JOB

    keys = _definitions(defs).resolve_job_def(CYCLE_JOB).partitions_def.get_partition_keys()
    return keys[-days:] if days else keys


def _scope(defs: dg.Definitions | None, resources: Mapping[str, object] | None):
    from budget_pipeline.defs.scope import resources_scope

    return resources_scope(resources if resources is not None else _definitions(defs).resources)


def _plan_checks(defs, resources) -> dg.AssetSelection:
    from budget_pipeline.defs.scope import plan_key

    return dg.AssetSelection.checks_for_assets(plan_key(_scope(defs, resources)))


def _materialize(
    instance: dg.DagsterInstance,
    selection: dg.AssetSelection,
    *,
    resources: Mapping[str, object] | None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping | None = None,
    defs: dg.Definitions | None = None,
) -> dg.ExecuteInProcessResult:
    defs = _definitions(defs)
    resources = dict(resources) if resources is not None else dict(defs.resources)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        instance=instance,
        resources=resources,
        selection=selection,
        tags=_tags(tags, resources),
        run_config=dict(run_config) if run_config else None,
        raise_on_error=False,
    )


def _job(
    name: str, resources: Mapping[str, object] | None, defs: dg.Definitions | None = None
) -> dg.JobDefinition:
    from budget_pipeline.definitions import build_defs

    if defs is None and resources is not None:
        defs = build_defs(resources)
    return _definitions(defs).resolve_job_def(name)


def run_cycle(
    instance: dg.DagsterInstance,
    keys: Sequence[str] | None = None,
    *,
    resources: Mapping[str, object] | None = None,
    with_checks: bool = True,
    tags: Mapping[str, str] | None = None,
    defs: dg.Definitions | None = None,
) -> dg.ExecuteInProcessResult:
    """``budget_cycle_job`` (extraction → plan + blocking checks) over ``keys`` (default: all)
    as ONE run, as the UI launches a backfill of a range."""
    keys = list(keys or partition_keys(defs=defs))
    range_tags = {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
        **(tags or {}),
    }
    if not with_checks:
        selection = dg.AssetSelection.groups(*CYCLE_GROUPS).without_checks()
        return _materialize(instance, selection, resources=resources, tags=range_tags, defs=defs)
    return _job("budget_cycle_job", resources, defs).execute_in_process(
        instance=instance, tags=_tags(range_tags), raise_on_error=False
    )


def run_execution(
    instance: dg.DagsterInstance,
    *,
    resources: Mapping[str, object] | None = None,
    run_config: Mapping | None = None,
    tags: Mapping[str, str] | None = None,
    with_checks: bool = False,
    defs: dg.Definitions | None = None,
) -> dg.ExecuteInProcessResult:
    """``budget_execution_job`` (budget_execution and action_log); with the plan's checks
    first when ``with_checks`` (an ad-hoc selection, not the job)."""
    if with_checks:
        selection = dg.AssetSelection.groups("execution") | _plan_checks(defs, resources)
        return _materialize(
            instance, selection, resources=resources, tags=tags, run_config=run_config, defs=defs
        )
    return _job("budget_execution_job", resources, defs).execute_in_process(
        instance=instance,
        tags=_tags(tags),
        run_config=dict(run_config) if run_config else None,
        raise_on_error=False,
    )


def run_plan_checks(
    instance: dg.DagsterInstance,
    *,
    resources: Mapping[str, object] | None = None,
    defs: dg.Definitions | None = None,
) -> dg.ExecuteInProcessResult:
    """Only the blocking checks of the account's newest rebalance_plan."""
    return _materialize(instance, _plan_checks(defs, resources), resources=resources, defs=defs)
