"""Review 9: bad input to `simulate` / `bench decisions` still gives tracebacks (exit 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from budget_pipeline.sources.simulated.library import scenario_path

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def test_simulate_out_naming_an_existing_file_is_refused_up_front(tmp_path):
    """Scenario: ``budget-pipeline simulate --scenario default --days 2 --policy static --out
    taken`` where ``taken`` is an existing regular file.

    Expected: exit 2, "error: --out ...", no traceback, before any simulation runs.

    Observed: the whole simulation runs, then ``write_report`` calls ``mkdir`` on the file:
    exit 1 with a rich traceback ending ``FileExistsError: [Errno 17] File exists: 'taken'``.

    Fix: validate ``--out`` (a directory or creatable) with the other inputs in
    cli_simulate.simulate and _fail() with its path.
    """
    (tmp_path / "taken").write_text("mine\n")
    done = _cli(
        tmp_path, "simulate", "--scenario", "default", "--days", "2", "--policy", "static",
        "--out", "taken",
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 2 and "taken" in done.stderr
    assert (tmp_path / "taken").read_text() == "mine\n"


def test_simulate_with_a_scenario_no_pool_matches_is_a_clear_error(tmp_path):
    """Scenario: the bundled ``thin_data`` scenario with every campaign renamed "ZZ <name>", so
    no pool of the default pools file ("RT | *", "PR | *", "TS | *") matches any campaign;
    ``simulate --scenario unmatched.yaml --days 2 --policy static``.

    Expected: exit 2 naming the mismatch (no campaign of the scenario is in a pool), no
    traceback.

    Observed: exit 1, traceback from ``oracle_schedule`` → ``_grid`` →
    ``ValueError: zero-size array to reduction operation maximum which has no identity``.

    Fix: in evaluate.simulate (or the CLI), refuse a scenario/pools pair with no budget holder
    before running, naming both files.
    """
    raw = yaml.safe_load(scenario_path("thin_data").read_text())
    for campaign in raw["campaigns"]:
        campaign["name"] = "ZZ " + campaign["name"]
    (tmp_path / "unmatched.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    done = _cli(
        tmp_path, "simulate", "--scenario", "unmatched.yaml", "--days", "2", "--policy", "static"
    )
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 2


def test_bench_decisions_with_an_invalid_scenario_file_is_a_clear_error(tmp_path):
    """Scenario: ``bench decisions --scenarios bad.yaml --days 2 --seeds 1 --workers 1 --out
    bench`` where ``bad.yaml`` is not valid YAML (``days: [`` unterminated).

    Expected: exit 2 with "error: scenario .../bad.yaml is not valid YAML ..." as ``simulate``
    gives for the same file, no traceback, nothing written under ``bench``.

    Observed: ``resolve_scenario`` only checks the file exists; the YAML is loaded in a worker
    process: exit 1 with three tracebacks (the worker's, the re-raise in the parent, typer's)
    ending ``ConfigError: scenario .../bad.yaml is not valid YAML, line 4, column 1``.

    Fix: load_scenario() every path in bench_decisions before starting workers, inside the
    existing ``except ConfigError`` block.
    """
    (tmp_path / "bad.yaml").write_text("seed: 1\nstart: 2026-01-01\ndays: [\n")
    done = _cli(
        tmp_path, "bench", "decisions", "--scenarios", "bad.yaml", "--days", "2", "--seeds", "1",
        "--workers", "1", "--out", "bench",
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 2 and "bad.yaml" in done.stderr
    assert not (tmp_path / "bench").exists()


def test_simulate_with_a_scenario_in_another_currency_than_the_pools_is_a_clear_error(tmp_path):
    """Scenario: the bundled ``misallocated`` scenario with ``currency: JPY``, the default pools
    file (EUR); ``simulate --scenario jpy.yaml --days 2 --json``.

    Expected: exit 2, "error: ... currency ..." naming both files, no traceback (the cycle
    itself knows: its ``ad_entities`` step raises ConfigError "currency 'EUR' does ... set
    `currency:` in the pools file").

    Observed: exit 1 with a rich traceback: ``RuntimeError: simulated day 0: the cycle failed:
    [RunFailureEvent ... DagsterExecutionStepExecutionError ...]`` wrapping the ConfigError, and
    nothing on stdout. (The oracle and static paths do not check at all: ``oracle_schedule``
    on this pair claims a +43.9 % uplift over 7 days (noise off), because the EUR floors and
    ceilings — 20,000..60,000 minor units for retargeting — are read against JPY budgets of
    ~380 minor units.)

    Fix: compare the scenario's and the pools file's currencies in cli_simulate.simulate (and
    bench decisions) with the other input checks and _fail() naming both.
    """
    raw = yaml.safe_load(scenario_path("misallocated").read_text())
    raw["currency"] = "JPY"
    (tmp_path / "jpy.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    done = _cli(tmp_path, "simulate", "--scenario", "jpy.yaml", "--days", "2", "--json")
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert done.returncode == 2 and "currency" in done.stderr
