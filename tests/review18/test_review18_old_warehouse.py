"""Review 18: a warehouse the code before the integer keys (12a662a) built, opened by this code.

The claim of the keys (entity_keys, insights_daily.adset_key/campaign_key) is that nothing
decided changes, to the bit. Here the earlier code itself (its source taken from git) runs
``budget-pipeline run`` on a fresh folder in its own process; then the curves' days, the
curves and the plan are read by the earlier code and by this one from copies of that same
file (this one migrating it: keys given, the rollup rebuilt), and compared bit for bit; and
this code's ``budget-pipeline run`` on the earlier code's folder decides the same plan id and
finds it already executed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hourly_insights import rollup_keys_disagreeing

REPO = Path(__file__).resolve().parents[2]
BEFORE_KEYS = "12a662a"  # the last commit whose curves read the ids as strings
DAYS = "12"

# Run by both versions, each with its own package first on sys.path: the curves' ad-set days
# (ids as text, sorted), the holders' curves and the plan at the newest evaluation point, as
# the decision assets compute them (bench/decisions.decision_steps), written as parquet.
DECIDE = r"""
import sys, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import duckdb, polars as pl
from budget_pipeline import db
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.contracts import ACTIONS, AD_ENTITIES, LAST_CHANGES, conform
from budget_pipeline.defs.decisions.assets import CURVE_DAYS, min_budgets, score_inputs
from budget_pipeline.defs.evaluation_point import evaluation_point
from budget_pipeline.engine.cycle import cycle_as_of
from budget_pipeline.engine.holders import budget_holders
from budget_pipeline.engine.policy import plan_with_policies
from budget_pipeline.engine.response_curves import daily_performance, holder_curves
from budget_pipeline.engine.scoring import score_entities
from budget_pipeline.engine.triggers import evaluate_triggers
from budget_pipeline.warehouse_schema import ensure_schema

path, out = Path(sys.argv[1]), Path(sys.argv[2])
config = load_pools(DEFAULT_POOLS_PATH)
con = duckdb.connect(str(path))
print("migrated" if ensure_schema(con) else "up to date")
as_of = evaluation_point(cycle_as_of(con), config.settings.interval_hours)
entities = conform(db.read(con, "select_ad_entities"), AD_ENTITIES)
windows, baselines = score_inputs(con, [as_of], config, entities)
scores = score_entities(windows, baselines, entities, config)
_, actions = evaluate_triggers(scores, windows, db.read(con, "select_trigger_states").clear(), config)
last = conform(db.read(con, "select_last_changes", {"as_of": as_of, "plan_id": None}), LAST_CHANGES)
daily = daily_performance(con, as_of, CURVE_DAYS)
holders = budget_holders(entities, config).select(
    pl.col("entity_id").alias("holder_id"), "entity_type", "pool"
)
curves = holder_curves(daily, holders, as_of=as_of)
plan = plan_with_policies(
    entities, scores, conform(actions, ACTIONS), config, as_of=as_of, daily=daily,
    last_changes=last, min_budgets=min_budgets(con, config, entities),
)
daily.with_columns(pl.col("adset_id", "campaign_id").cast(pl.String)).sort(
    "adset_id", "date"
).write_parquet(out / "daily.parquet")
curves.write_parquet(out / "curves.parquet")
plan.drop("created_at", strict=False).write_parquet(out / "plan.parquet")
"""


def _env(pythonpath: Path, db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env |= {
        "PYTHONPATH": str(pythonpath),
        "BUDGET_PIPELINE_DB": str(db_path),
        "BUDGET_PIPELINE_CACHE_DIR": str(db_path.parent / ".cache"),
    }
    return env


def _python(pythonpath: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(pythonpath, cwd / "warehouse.duckdb"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def before_keys(tmp_path_factory) -> Path:
    """The source tree of the earlier commit (skipped where the checkout has no history)."""
    tree = tmp_path_factory.mktemp("before_keys")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BEFORE_KEYS], capture_output=True, timeout=60
    )
    if archive.returncode != 0:
        pytest.skip(f"git history without {BEFORE_KEYS}: {archive.stderr[-300:]!r}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    assert not (tree / "sql" / "create_entity_keys.sql").exists()
    return tree


def _same_curves(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The fit is not bit-stable from one call to the next on the same frame (polars' sums:
    about 1e-15, seen with either code and with POLARS_MAX_THREADS=1), so the curves are
    compared as tests/engine/test_holder_days.py does: within 1e-12 relative, the rest
    exactly."""
    assert got.schema == want.schema and got["holder_id"].equals(want["holder_id"])
    for column, dtype in got.schema.items():
        a, b = got[column], want[column]
        if dtype != pl.Float64:
            assert a.equals(b), column
            continue
        assert (a.is_null() == b.is_null()).all() and (a.is_nan() == b.is_nan()).all(), column
        x, y = a.drop_nulls().drop_nans().to_numpy(), b.drop_nulls().drop_nans().to_numpy()
        assert (abs(x - y) <= 1e-12 * np.maximum(abs(y), 1.0)).all(), (column, x - y)


def _decide(code: Path, warehouse: Path, out: Path) -> tuple[str, dict[str, pl.DataFrame]]:
    out.mkdir()
    script = out / "decide.py"
    script.write_text(DECIDE)
    done = _python(code, out, str(script), str(warehouse), str(out))
    frames = {
        name: pl.read_parquet(out / f"{name}.parquet") for name in ("daily", "curves", "plan")
    }
    return done.stdout.strip(), frames


@pytest.mark.slow
def test_a_warehouse_of_the_code_before_the_keys_decides_the_same_to_the_bit(before_keys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    first = _python(before_keys, folder, "-m", "budget_pipeline.cli", "run", "--days", DAYS)
    plan_id = re.search(r"^plan (plan-\S+):", first.stdout, re.M).group(1)
    old_file = folder / "warehouse.duckdb"
    con = duckdb.connect(str(old_file), read_only=True)
    tables = {
        t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    con.close()
    assert "insights_daily" in tables and "entity_keys" not in tables  # the earlier layout

    for name in ("old", "new"):
        shutil.copy(old_file, tmp_path / f"{name}.duckdb")
    said_old, old = _decide(before_keys, tmp_path / "old.duckdb", tmp_path / "old_out")
    said_new, new = _decide(REPO, tmp_path / "new.duckdb", tmp_path / "new_out")
    assert (said_old, said_new) == ("up to date", "migrated")
    assert old["daily"].height > 0 and old["plan"].height > 0
    assert old["plan"]["delta"].abs().sum() > 0  # a plan that moves money, not an empty one
    for name in ("daily", "plan"):
        assert new[name].equals(old[name]), name  # equal to the bit, nulls and NaNs included
    _same_curves(new["curves"], old["curves"])

    # the migrated file: every id keyed 0, 1, ... in id order, the rollup's keys agree
    con = duckdb.connect(str(tmp_path / "new.duckdb"), read_only=True)
    ids = con.execute(
        "SELECT adset_id FROM insights UNION SELECT campaign_id FROM insights ORDER BY 1"
    ).fetchall()
    keys = con.execute("SELECT entity_id FROM entity_keys ORDER BY entity_key").fetchall()
    wrong = rollup_keys_disagreeing(con)
    rolled = con.execute("SELECT count(*) FROM insights_daily").fetchall()
    days = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT date, adset_id FROM insights)"
    ).fetchall()
    con.close()
    assert keys == ids and wrong == 0 and rolled == days

    # and this code's run on the earlier code's folder: migrated, the same plan, not sent twice
    second = _python(REPO, folder, "-m", "budget_pipeline.cli", "run", "--days", DAYS)
    assert f"plan {plan_id}:" in second.stdout
    assert "execution gate closed" in second.stdout and "already has execution run" in second.stdout


# The earlier code on a file this code keyed: its schema migration rebuilds the rollup its own
# way (entity_keys left as it is), then it writes a new ad set's hours and rolls them up.
EARLIER_WRITES = r"""
import sys
import duckdb
from budget_pipeline import insights_rollup
from budget_pipeline.warehouse_schema import ensure_schema

con = duckdb.connect(sys.argv[1])
assert ensure_schema(con)
con.execute("BEGIN")
day = con.execute(
    "INSERT INTO insights BY NAME SELECT * REPLACE ('a-late' AS adset_id, 'c-late' AS "
    "campaign_id, date + 1 AS date, ts + INTERVAL 1 DAY AS ts) FROM insights "
    "WHERE date = (SELECT max(date) FROM insights) AND adset_id = 'a0' RETURNING date"
).fetchall()[0][0]
insights_rollup.refresh(con, day, day)
con.execute("COMMIT")
"""


def test_a_downgrade_that_wrote_new_ids_then_this_code_again(before_keys, tmp_path):
    from datetime import timedelta

    from hourly_insights import START, random_hours, warehouse

    from budget_pipeline.engine.response_curves import daily_performance
    from budget_pipeline.warehouse_schema import ensure_schema

    path = tmp_path / "w.duckdb"
    con = warehouse(path, random_hours(9, 10))
    keys = dict(con.execute("SELECT entity_id, entity_key FROM entity_keys").fetchall())
    con.close()
    script = tmp_path / "earlier.py"
    script.write_text(EARLIER_WRITES)
    _python(before_keys, tmp_path, str(script), str(path))
    con = duckdb.connect(str(path))
    try:
        assert "adset_key" not in {
            c for (c, *_) in con.execute("DESCRIBE insights_daily").fetchall()
        }
        assert ensure_schema(con)  # this code again: the keyed rollup rebuilt
        after = dict(con.execute("SELECT entity_id, entity_key FROM entity_keys").fetchall())
        assert after == keys | {"a-late": len(keys), "c-late": len(keys) + 1}
        as_of = START + timedelta(days=11)
        got = daily_performance(con, as_of, 3).with_columns(
            pl.col("adset_id", "campaign_id").cast(pl.String)
        )
        want = con.sql(
            "SELECT adset_id, max(campaign_id) AS campaign_id, date, "
            "CAST(sum(CAST(spend AS DECIMAL(38, 10))) AS DOUBLE) AS spend "
            "FROM insights WHERE ts >= $lo AND ts < $hi GROUP BY adset_id, date",
            params={"lo": as_of - timedelta(days=3), "hi": as_of},
        ).pl()
        key = ["adset_id", "date"]
        assert got.select(want.columns).sort(key).equals(want.sort(key))
        assert ("a-late", "c-late") in set(zip(got["adset_id"], got["campaign_id"], strict=True))
    finally:
        con.close()
