"""Review 19: ``entity_keys.with_entity_ids`` on hand-built ``entity_keys`` tables (real DuckDB
files), the sparse path above all: keys shuffled and far apart, the two columns on disjoint and
overlapping keys, the dense/sparse boundary (exactly half) giving the same frame as either side,
key 0 alone, no rows, a read-only connection, an explicit transaction, two cursors of one
connection in two threads, and a ``wanted_keys`` already on the connection or in the warehouse.
Each result is checked id by id against the key -> id map the table was built from."""

from __future__ import annotations

import threading
import tracemalloc

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from budget_pipeline.engine import entity_keys
from budget_pipeline.engine.entity_keys import with_entity_ids
from budget_pipeline.engine.insight_pieces import StaleRollupError

COLUMNS = {"adset_key": "adset_id", "campaign_key": "campaign_id"}


def _table(
    path, keys: np.ndarray, seed: int = 0, ids: dict | None = None
) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """A DuckDB file whose entity_keys holds ``keys`` (inserted in random order) with ids that
    do not sort like their keys; returns the connection and the key -> id map."""
    rng = np.random.default_rng(seed)
    ids = ids or {int(k): f"id-{rng.integers(1 << 40):x}-{k}" for k in keys}
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE entity_keys (entity_id VARCHAR NOT NULL PRIMARY KEY, "
        "entity_key INTEGER NOT NULL UNIQUE)"
    )
    order = rng.permutation(len(keys))
    frame = pl.DataFrame(
        {
            "entity_id": [ids[int(keys[i])] for i in order],
            "entity_key": np.asarray(keys)[order].astype(np.int32),
        }
    )
    con.register("hand", frame)
    con.execute("INSERT INTO entity_keys SELECT * FROM hand")
    con.unregister("hand")
    return con, ids


def _keyed(adset: np.ndarray, campaign: np.ndarray) -> pa.Table:
    n = len(adset)
    return pa.table(
        {
            "adset_key": pa.array(adset, pa.int32()),
            "campaign_key": pa.array(campaign, pa.int32()),
            "spend": pa.array(np.arange(n, dtype=float)),
        }
    )


def _check(got: pl.DataFrame, ids: dict, adset, campaign) -> None:
    assert got.columns == ["adset_id", "campaign_id", "spend"]
    assert got.schema["adset_id"] == got.schema["campaign_id"] == pl.Categorical
    assert got["adset_id"].cast(pl.String).to_list() == [ids[int(k)] for k in adset]
    assert got["campaign_id"].cast(pl.String).to_list() == [ids[int(k)] for k in campaign]
    assert got["spend"].to_list() == list(np.arange(len(adset), dtype=float))


def _statements(monkeypatch) -> list[str]:
    """The sql/ statements with_entity_ids loads (the real load_sql, recorded)."""
    seen: list[str] = []
    real = entity_keys.load_sql

    def recording(name):
        seen.append(name)
        return real(name)

    monkeypatch.setattr(entity_keys, "load_sql", recording)
    return seen


@pytest.mark.parametrize("overlap", ["disjoint", "overlapping"])
def test_sparse_shuffled_keys_map_to_their_own_ids(tmp_path, monkeypatch, overlap):
    rng = np.random.default_rng(7)
    keys = rng.choice(200_000, 3_000, replace=False)  # far apart, no order
    con, ids = _table(tmp_path / "w.duckdb", keys)
    if overlap == "disjoint":
        adset = rng.choice(keys[:40], 5_000)
        campaign = rng.choice(keys[40:55], 5_000)
    else:
        adset = rng.choice(keys[:40], 5_000)
        campaign = rng.choice(keys[25:55], 5_000)
    seen = _statements(monkeypatch)
    got = with_entity_ids(con, _keyed(adset, campaign), COLUMNS)
    assert seen == ["select_entity_keys_staged"]  # 55 of ~200k: the sparse read
    _check(got, ids, adset, campaign)
    # each distinct id once in the frame's categories, whatever the key order
    assert got["adset_id"].n_unique() == len(set(adset.tolist()))


def test_only_key_zero_and_no_rows(tmp_path):
    con, ids = _table(tmp_path / "w.duckdb", np.array([5, 0, 9_000, 77]))
    zeros = np.zeros(4, dtype=np.int32)
    _check(with_entity_ids(con, _keyed(zeros, zeros), COLUMNS), ids, zeros, zeros)
    empty = np.zeros(0, dtype=np.int32)
    none = with_entity_ids(con, _keyed(empty, empty), COLUMNS)
    assert none.height == 0
    assert list(none.schema.items()) == [
        ("adset_id", pl.Categorical()),
        ("campaign_id", pl.Categorical()),
        ("spend", pl.Float64()),
    ]


@pytest.mark.parametrize("used", [50, 49, 51])  # of keys 0..99 with 99 used: half, under, over
def test_the_dense_sparse_boundary_reads_the_same_frame_either_way(tmp_path, monkeypatch, used):
    """The same rows and ids read once with keys 0..99 (``used`` of them: dense from half up)
    and once with every key moved up by 1,000 (sparse): the same frame, categories and all."""
    rng = np.random.default_rng(used)
    con, ids = _table(tmp_path / "a.duckdb", np.arange(100))
    wanted = np.concatenate([[99], rng.choice(99, used - 1, replace=False)])
    adset, campaign = rng.choice(wanted, 2_000), rng.choice(wanted, 2_000)
    adset[:used] = wanted  # every wanted key used
    seen = _statements(monkeypatch)
    dense_or_not = with_entity_ids(con, _keyed(adset, campaign), COLUMNS)
    assert seen == ["select_entity_keys" if 2 * used >= 100 else "select_entity_keys_staged"]
    _check(dense_or_not, ids, adset, campaign)
    moved, _ = _table(
        tmp_path / "b.duckdb", np.arange(100) + 1_000, ids={k + 1_000: i for k, i in ids.items()}
    )
    seen.clear()
    sparse = with_entity_ids(moved, _keyed(adset + 1_000, campaign + 1_000), COLUMNS)
    assert seen == ["select_entity_keys_staged"]
    assert sparse.equals(dense_or_not)
    assert sparse.with_columns(pl.all().cast(pl.String)).equals(
        dense_or_not.with_columns(pl.all().cast(pl.String))
    )


def test_a_key_the_table_lost_is_a_stale_rollup_on_both_paths(tmp_path):
    keys = np.arange(0, 1_000, 7)
    con, _ = _table(tmp_path / "w.duckdb", keys)
    for adset in (np.array([0, 7, 14, 21]), np.array([0, 994])):  # dense, then sparse
        lost = np.array([3] + [0] * (adset.size - 1))  # 3 was never keyed
        with pytest.raises(StaleRollupError, match=r"\[3\]"):
            with_entity_ids(con, _keyed(adset, lost), COLUMNS)


def test_read_only_connection_and_explicit_transaction(tmp_path):
    rng = np.random.default_rng(11)
    keys = rng.choice(50_000, 500, replace=False)
    path = tmp_path / "w.duckdb"
    con, ids = _table(path, keys)
    adset, campaign = rng.choice(keys[:20], 300), rng.choice(keys[10:30], 300)
    con.execute("BEGIN")
    con.execute("INSERT INTO entity_keys VALUES ('in-txn', 60000)")  # seen inside only
    inside = with_entity_ids(con, _keyed(np.append(adset, 60000), np.append(campaign, 60000)),
                             COLUMNS)  # fmt: skip
    _check(inside, {**ids, 60000: "in-txn"}, np.append(adset, 60000), np.append(campaign, 60000))
    con.execute("ROLLBACK")
    with pytest.raises(StaleRollupError):
        with_entity_ids(con, _keyed(np.append(adset, 60000), np.append(campaign, 60000)), COLUMNS)
    con.close()
    ro = duckdb.connect(str(path), read_only=True)
    _check(with_entity_ids(ro, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)
    ro.execute("BEGIN")
    _check(with_entity_ids(ro, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)
    ro.execute("COMMIT")


def test_two_cursors_of_one_connection_in_two_threads(tmp_path):
    """Each cursor stages its own ``wanted_keys``: different sparse key sets at once, many
    times, each read back as its own ids."""
    rng = np.random.default_rng(5)
    keys = rng.choice(400_000, 4_000, replace=False)
    con, ids = _table(tmp_path / "w.duckdb", keys)
    jobs = [
        (rng.choice(keys[:30], 20_000), rng.choice(keys[30:40], 20_000)),
        (rng.choice(keys[3_000:3_050], 20_000), rng.choice(keys[20:35], 20_000)),
    ]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(cursor, adset, campaign):
        try:
            start.wait()
            for _ in range(15):
                _check(with_entity_ids(cursor, _keyed(adset, campaign), COLUMNS), ids, adset,
                       campaign)  # fmt: skip
        except BaseException as error:
            errors.append(error)

    cursors = [con.cursor(), con.cursor()]
    threads = [
        threading.Thread(target=run, args=(c, *j)) for c, j in zip(cursors, jobs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_warehouse_table_named_wanted_keys_is_left_alone_and_not_read(tmp_path):
    rng = np.random.default_rng(2)
    keys = rng.choice(100_000, 300, replace=False)
    con, ids = _table(tmp_path / "w.duckdb", keys)
    # none of the rows' keys: the semi-join reading this table would find no id (stale)
    con.execute("CREATE TABLE wanted_keys (entity_key INTEGER)")
    con.execute("INSERT INTO wanted_keys VALUES (-1), (424242)")
    adset, campaign = rng.choice(keys[:5], 100), rng.choice(keys[5:9], 100)
    _check(with_entity_ids(con, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)
    assert con.execute("SELECT count(*) FROM wanted_keys").fetchall() == [(2,)]


def test_a_callers_registered_wanted_keys_survives(tmp_path):
    rng = np.random.default_rng(4)
    keys = rng.choice(100_000, 300, replace=False)
    con, ids = _table(tmp_path / "w.duckdb", keys)
    mine = pl.DataFrame({"entity_key": [1, 2, 3], "note": ["my", "own", "view"]})
    con.register("wanted_keys", mine)
    adset, campaign = rng.choice(keys[:5], 100), rng.choice(keys[5:9], 100)
    _check(with_entity_ids(con, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)
    assert con.sql("SELECT note FROM wanted_keys ORDER BY entity_key").fetchall() == [
        ("my",),
        ("own",),
        ("view",),
    ]


def test_a_temp_table_named_wanted_keys_does_not_break_the_sparse_read(tmp_path):
    rng = np.random.default_rng(6)
    keys = rng.choice(100_000, 300, replace=False)
    con, ids = _table(tmp_path / "w.duckdb", keys)
    con.execute("CREATE TEMP TABLE wanted_keys (entity_key INTEGER)")
    adset, campaign = rng.choice(keys[:5], 100), rng.choice(keys[5:9], 100)
    _check(with_entity_ids(con, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)


def test_a_far_key_beside_key_zero_reads_its_id(tmp_path):
    """A key far past every other, with key 0, on the sparse path (2**24 - 1 here: the INTEGER
    limit 2**31 - 1 reads right too, run by hand)."""
    top = 2**24 - 1
    con, ids = _table(tmp_path / "w.duckdb", np.array([0, top, 12]))
    adset, campaign = np.array([top, 0, top]), np.array([0, 0, top])
    _check(with_entity_ids(con, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)


def test_sparse_read_memory_is_bounded_by_the_rows_not_the_largest_key(tmp_path):
    con, ids = _table(tmp_path / "w.duckdb", np.array([0, 2**24 - 1]))
    adset = campaign = np.array([0, 2**24 - 1])
    tracemalloc.start()
    try:
        got = with_entity_ids(con, _keyed(adset, campaign), COLUMNS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _check(got, ids, adset, campaign)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.0f} MiB for two rows"


def test_a_negative_key_no_row_uses_is_not_read(tmp_path):
    con, ids = _table(tmp_path / "w.duckdb", np.array([0, 1, 2, -5]))
    adset, campaign = np.array([0, 1, 2]), np.array([2, 2, 0])
    _check(with_entity_ids(con, _keyed(adset, campaign), COLUMNS), ids, adset, campaign)
