"""A long pull is extracted and merged a few days at a time (memory stays that of one chunk,
issue 11), yet lands exactly as in one piece, and a chunk that fails validation writes
nothing."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import dagster as dg
import duckdb
import pytest
from dagster_helpers import ALL_KEYS, resources

from budget_pipeline.definitions import defs
from budget_pipeline.defs import windows
from budget_pipeline.defs.extraction import assets as extraction

KEYS = ALL_KEYS[-6:-1]
COLUMNS = "date, hour, campaign_id, adset_id, spend, impressions, reach, clicks, conversions"


def test_chunks_cover_the_window_once_in_order():
    start, end = date(2026, 9, 1), date(2026, 10, 30)
    got = windows.chunks(start, end, 10_000, rows=1_000_000)
    assert [(b - a).days + 1 for a, b in got] == [4] * 15
    assert got[0][0] == start and got[-1][1] == end
    assert all(b + timedelta(days=1) == a for (_, b), (a, _) in pairwise(got))
    assert windows.chunks(start, end, 40) == [(start, end)]  # a small account: one piece
    assert windows.chunks(start, start, 10**9) == [(start, start)]  # at least a day


def _pull(db_path, monkeypatch, rows: int | None):
    monkeypatch.setattr(windows, "CHUNK_ROWS", rows or windows.CHUNK_ROWS)
    return dg.materialize(
        [*defs.assets],
        selection=["ad_entities", "raw_insights", "insights"],
        resources=resources(db_path),
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": KEYS[0],
            "dagster/asset_partition_range_end": KEYS[-1],
        },
        raise_on_error=False,
    )


def _rows(db_path, table: str, columns: str = COLUMNS) -> list[tuple]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_a_pull_in_chunks_lands_as_in_one_piece_and_a_bad_chunk_writes_nothing(
    tmp_path, monkeypatch
):
    whole, chunked = tmp_path / "whole.duckdb", tmp_path / "chunked.duckdb"
    assert _pull(whole, monkeypatch, None).success
    result = _pull(chunked, monkeypatch, 2 * 40 * 24)  # two days of 40 ad sets per chunk
    assert result.success
    assert len(_rows(whole, "raw_insights")) > 40 * 24 * 5
    for table in ("raw_insights", "insights"):
        assert _rows(chunked, table) == _rows(whole, table)
    est = "adset_id, ts, conversions_est, purchase_value_est"
    assert _rows(chunked, "insights", est) == _rows(whole, "insights", est)
    meta = result.asset_materializations_for_node("raw_insights")[-1].metadata
    assert meta["pulled_rows"].value == len(_rows(whole, "raw_insights"))

    # a re-pull whose third chunk fails validation leaves the last good pull untouched
    before = _rows(chunked, "raw_insights", "*")
    real_validate, seen = extraction.validate_insights, []

    def failing(frame):
        seen.append(frame.height)
        if len(seen) == 3:
            raise ValueError("spend: -1.0 in row 7 (a bad chunk)")
        return real_validate(frame)

    monkeypatch.setattr(extraction, "validate_insights", failing)
    failed = _pull(chunked, monkeypatch, 2 * 40 * 24)
    assert not failed.success
    assert "a bad chunk" in str(failed.get_step_failure_events()[0].event_specific_data.error)
    assert len(seen) == 3
    assert _rows(chunked, "raw_insights", "*") == before
    tables = _rows(chunked, "duckdb_tables()", "table_name")
    assert ("raw_insights_pull",) not in tables
