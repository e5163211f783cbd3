"""Runs whose process died are found and their warehouse slot freed, on a real SQLite
instance: a run killed before RUN_START (only its launcher's pid tells), and a slot held by a
run that has already ended."""

from __future__ import annotations

import subprocess

import dagster as dg
import pytest

from budget_pipeline.defs.constants import DUCKDB_POOL
from budget_pipeline.defs.run_health import (
    HOST_TAG,
    PID_TAG,
    free_dead_holders,
    host_tags,
    pool_holders,
    reap_dead_runs,
)


@dg.op
def noop():
    pass


@dg.job
def some_job():
    noop()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def test_a_run_whose_launcher_died_before_run_start_is_reaped(instance):
    dead = instance.create_run_for_job(
        some_job, tags={**host_tags(), PID_TAG: str(_dead_pid())}
    )  # created (NOT_STARTED), its process killed before RUN_START
    ours = instance.create_run_for_job(some_job, tags=host_tags())  # this live process
    untagged = instance.create_run_for_job(some_job, tags={HOST_TAG: host_tags()[HOST_TAG]})
    assert {r.status for r in (dead, ours, untagged)} == {dg.DagsterRunStatus.NOT_STARTED}

    reaped = reap_dead_runs(instance)
    assert [r.run_id for r in reaped] == [dead.run_id]
    status = {r.run_id: instance.get_run_by_id(r.run_id).status for r in (dead, ours, untagged)}
    assert status == {
        dead.run_id: dg.DagsterRunStatus.FAILURE,
        ours.run_id: dg.DagsterRunStatus.NOT_STARTED,  # alive
        untagged.run_id: dg.DagsterRunStatus.NOT_STARTED,  # cannot be judged: left alone
    }


def test_a_slot_held_by_an_ended_run_or_a_dead_process_is_freed(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots(DUCKDB_POOL, 1)
    # a run force-terminated from the UI keeps its slot (its process, here pid 1, lives on)
    ended = instance.create_run_for_job(some_job, tags={**host_tags(), PID_TAG: "1"})
    storage.claim_concurrency_slot(DUCKDB_POOL, ended.run_id, "noop")
    instance.report_run_canceled(ended, "marked canceled from the UI")
    (holder,) = pool_holders(instance)
    assert holder.run_id == ended.run_id and holder.alive and holder.ended
    assert [h.run_id for h in free_dead_holders(instance)] == [ended.run_id]
    assert storage.get_concurrency_info(DUCKDB_POOL).active_run_ids == set()

    dead = instance.create_run_for_job(some_job, tags={**host_tags(), PID_TAG: str(_dead_pid())})
    storage.claim_concurrency_slot(DUCKDB_POOL, dead.run_id, "noop")
    assert [h.run_id for h in free_dead_holders(instance)] == [dead.run_id]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert storage.get_concurrency_info(DUCKDB_POOL).active_run_ids == set()
