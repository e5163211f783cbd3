"""Read one kind of alert-worthy event from the Dagster event log, after a storage id.

Each :class:`Source` answers two questions: where the newest event of its kind is (to keep
the cursor current while alerts are off) and which alerts the events after the cursor make.
Nothing here opens the warehouse; see :mod:`budget_pipeline.alerts.events` for the contract.

Only the events of the sensor's ad account count (``Scope.account``): its assets' keys, and runs
tagged with its account, so accounts sharing one instance each alert on their own news once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg

from budget_pipeline.alerts import events
from budget_pipeline.alerts.messages import (
    Alert,
    FailedCheck,
    check_alert,
    drift_alert,
    execution_alert,
    pause_alert,
    run_failure_alert,
)
from budget_pipeline.defs.constants import PLAN_ID_TAG
from budget_pipeline.defs.scope import AccountScope, asset_key, owns_record, owns_run

LIMIT = 25  # events read per tick; a backlog drains over the following ticks
RUN_ENDS = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)


@dataclass(frozen=True)
class Scope:
    ui_url: str
    currency: str | None  # of the pools file, for budgets given in minor units
    events: frozenset[str]  # kinds that alert (a run failure told by another kind is skipped)
    check_descriptions: Mapping[str, str]
    account: AccountScope | None = None  # None: every event of the instance


@dataclass(frozen=True)
class Batch:
    alerts: list[Alert]
    after: int | None  # the cursor once these events are handled


@dataclass(frozen=True)
class Source:
    latest: Callable[[dg.DagsterInstance, AccountScope | None], int | None]
    collect: Callable[[dg.DagsterInstance, int | None, float | None, Scope], Batch]


def _values(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, object]:
    return {k: v.value for k, v in metadata.items()}


def _materializations(instance, asset: str, after: int | None, since: float | None, scope: Scope):
    """The account's materializations of ``asset`` after the cursor; the last record read
    (the cursor's next value) comes second."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key(scope.account, asset),
        after_storage_id=after,
        after_timestamp=since if after is None else None,
    )
    records = instance.fetch_materializations(records_filter, limit=LIMIT, ascending=True).records
    last = records[-1].storage_id if records else after
    return [r for r in records if owns_record(scope.account, r)], last


def _latest_materialization(
    asset: str,
) -> Callable[[dg.DagsterInstance, AccountScope | None], int | None]:
    def latest(instance: dg.DagsterInstance, account: AccountScope | None) -> int | None:
        records = instance.fetch_materializations(asset_key(account, asset), limit=1).records
        return records[0].storage_id if records else None

    return latest


def _owned(instance, scope: Scope, run_id: str, cache: dict[str, bool]) -> bool:
    """Is ``run_id`` a run of the sensor's account?"""
    if scope.account is None:
        return True
    if run_id not in cache:
        cache[run_id] = owns_run(scope.account, instance.get_run_by_id(run_id))
    return cache[run_id]


def _run_status(instance, event_type, after: int | None, since: float | None, limit=LIMIT):
    records_filter = dg.RunStatusChangeRecordsFilter(
        event_type=event_type,
        after_storage_id=after,
        after_timestamp=since if after is None else None,
    )
    return instance.fetch_run_status_changes(records_filter, limit=limit, ascending=True).records


def _run_records(instance, run_id: str, *types: dg.DagsterEventType):
    return instance.get_records_for_run(run_id, of_type=set(types)).records


def _failed_plan_checks(instance, run_id: str, scope: Scope | None = None):
    """Failed check evaluations on the plan in one run, by plan id."""
    descriptions = scope.check_descriptions if scope else {}
    plan = asset_key(scope.account if scope else None, events.PLAN_ASSET)
    failed: dict[str, list[FailedCheck]] = defaultdict(list)
    for record in _run_records(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.asset_key == plan and not evaluation.passed:
            meta = _values(evaluation.metadata)
            violations = meta.get(events.VIOLATIONS)
            failed[str(meta.get(events.PLAN_ID) or "unknown plan")].append(
                FailedCheck(
                    evaluation.check_name,
                    int(violations) if violations is not None else None,
                    descriptions.get(evaluation.check_name),
                    str(meta.get(events.CHECK_DETAILS) or "") or None,
                )
            )
    return failed


def _execution_problems(meta: Mapping[str, object]) -> bool:
    return any(int(meta.get(k) or 0) > 0 for k in events.EXECUTION_PROBLEM_COUNTS)


# --- the five sources ---------------------------------------------------------------------


def _collect_pauses(instance, after, since, scope: Scope) -> Batch:
    records, last = _materializations(instance, events.PLAN_ASSET, after, since, scope)
    alerts = [
        pause_alert(_values(r.asset_materialization.metadata), run_id=r.run_id, ui_url=scope.ui_url)
        for r in records
    ]
    return Batch([a for a in alerts if a], last)


def _collect_executions(instance, after, since, scope: Scope) -> Batch:
    records, last = _materializations(instance, events.EXECUTION_ASSET, after, since, scope)
    action_log = asset_key(scope.account, events.ACTION_LOG_ASSET)
    alerts = []
    for record in records:
        meta = _values(record.asset_materialization.metadata)
        if not _execution_problems(meta):
            continue
        entries = None
        for other in _run_records(
            instance, record.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION
        ):
            materialization = other.event_log_entry.asset_materialization
            if materialization.asset_key == action_log:
                entries = _values(materialization.metadata).get(events.ACTION_LOG_ENTRIES)
        alerts.append(
            execution_alert(
                meta,
                str(entries) if entries else None,
                currency=scope.currency,
                run_id=record.run_id,
                ui_url=scope.ui_url,
            )
        )
    return Batch([a for a in alerts if a], last)


def _collect_drift(instance, after, since, scope: Scope) -> Batch:
    records, last = _materializations(instance, events.DRIFT_ASSET, after, since, scope)
    alerts = [
        drift_alert(
            _values(r.asset_materialization.metadata),
            partition=r.partition_key,
            run_id=r.run_id,
            ui_url=scope.ui_url,
        )
        for r in records
    ]
    return Batch([a for a in alerts if a], last)


def _run_ends(instance, after, since) -> list:
    """Runs that ended (success, failure, cancel) after the cursor, in event order. When one
    type fills its page, later events of the other types wait for the next tick."""
    merged, bound = [], None
    for event_type in RUN_ENDS:
        records = _run_status(instance, event_type, after, since)
        merged += records
        if len(records) == LIMIT:
            last = records[-1].storage_id
            bound = last if bound is None else min(bound, last)
    merged.sort(key=lambda r: r.storage_id)
    return [r for r in merged if bound is None or r.storage_id <= bound]


def _latest_run_end(instance, account: AccountScope | None = None) -> int | None:
    ids = [
        r.storage_id
        for t in RUN_ENDS
        for r in instance.fetch_run_status_changes(t, limit=1).records
    ]
    return max(ids, default=None)


def _collect_checks(instance, after, since, scope: Scope) -> Batch:
    ends = _run_ends(instance, after, since)
    alerts, owned = [], {}
    for end in ends:
        if not _owned(instance, scope, end.run_id, owned):
            continue
        for plan_id, failed in _failed_plan_checks(instance, end.run_id, scope).items():
            alerts.append(check_alert(plan_id, failed, run_id=end.run_id, ui_url=scope.ui_url))
    return Batch(alerts, ends[-1].storage_id if ends else after)


def _told_elsewhere(instance, run_id: str, scope: Scope) -> bool:
    """A failed check or a partly applied execution in this run has its own, fuller alert."""
    if "check_failed" in scope.events and _failed_plan_checks(instance, run_id, scope):
        return True
    if "execution_partial" in scope.events:
        execution = asset_key(scope.account, events.EXECUTION_ASSET)
        for record in _run_records(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = record.event_log_entry.asset_materialization
            if materialization.asset_key == execution and _execution_problems(
                _values(materialization.metadata)
            ):
                return True
    return False


def _error_text(error) -> str | None:
    """The user's exception when Dagster wrapped it, as ``Class: message``."""
    if error is None:
        return None
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    message = error.message.strip()
    head, sep, rest = message.partition(": ")
    if sep and " " not in head and "." in head:
        message = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return message


def _collect_failures(instance, after, since, scope: Scope) -> Batch:
    records = _run_status(instance, dg.DagsterEventType.RUN_FAILURE, after, since)
    alerts = []
    for record in records:
        entry = record.event_log_entry
        if entry.job_name not in events.WATCHED_JOBS:
            continue
        run = instance.get_run_by_id(entry.run_id)
        if run is not None and scope.account is not None and not scope.account.owns_run(run):
            continue  # another account's run
        if _told_elsewhere(instance, entry.run_id, scope):
            continue
        steps = _run_records(instance, entry.run_id, dg.DagsterEventType.STEP_FAILURE)
        if steps:
            first = steps[0].event_log_entry
            step, error = first.step_key, first.dagster_event.event_specific_data.error
        else:
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            step, error = None, getattr(data, "error", None)
        alerts.append(
            run_failure_alert(
                entry.job_name,
                run_id=entry.run_id,
                ui_url=scope.ui_url,
                step=step,
                error=_error_text(error) or entry.message,
                tags=dict(run.tags) if run else {},
                plan_tag=PLAN_ID_TAG,
            )
        )
    return Batch(alerts, records[-1].storage_id if records else after)


def _latest_failure(instance, account: AccountScope | None = None) -> int | None:
    records = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
    return records[0].storage_id if records else None


SOURCES: dict[str, Source] = {
    "pause": Source(_latest_materialization(events.PLAN_ASSET), _collect_pauses),
    "check_failed": Source(_latest_run_end, _collect_checks),
    "run_failed": Source(_latest_failure, _collect_failures),
    "execution_partial": Source(
        _latest_materialization(events.EXECUTION_ASSET), _collect_executions
    ),
    "score_drift": Source(_latest_materialization(events.DRIFT_ASSET), _collect_drift),
}
