"""``budget-pipeline simulate`` and ``budget-pipeline bench decisions``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from budget_pipeline.config.loading import ConfigError


def resolve_scenario(value: str) -> Path:
    """A scenario file, or the name of a bundled one (``default``, ``misallocated``, …)."""
    from budget_pipeline.sources.simulated.library import SCENARIO_DIR

    path = Path(value)
    if path.is_file():
        return path.resolve()
    bundled = SCENARIO_DIR / f"{value}.yaml"
    if "/" not in value and bundled.is_file():
        return bundled
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    raise ConfigError(
        f"--scenario {value!r}: no such file, nor a bundled scenario ({', '.join(names)})"
    )


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def check_out(out: Path | None) -> None:
    """``--out`` must be a directory, or a path one can be made at."""
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")


def check_pair(scenario_path: Path, pools_path: Path):
    """The scenario and the pools file, loaded, and fit for each other: the same currency, and
    at least one of the scenario's campaigns in a pool. Returns both."""
    from budget_pipeline.config.pools import load_pools
    from budget_pipeline.sources.simulated import load_scenario

    scenario = load_scenario(scenario_path)
    config = load_pools(pools_path)
    if scenario.currency != config.currency:
        raise ConfigError(
            f"pools file {pools_path}: currency {config.currency!r} does not match scenario "
            f"{scenario_path}'s {scenario.currency!r}; floors and ceilings would be read with the "
            "wrong minor-unit factor. Set `currency:` in the pools file."
        )
    if not any(config.pool_for_campaign(c.id, c.name) for c in scenario.campaigns):
        raise ConfigError(
            f"scenario {scenario_path}: none of its {len(scenario.campaigns)} campaigns is in a "
            f"pool of {pools_path} (pools match campaigns by id or name pattern): nothing to plan"
        )
    return scenario, config


def simulate(
    scenario: str = typer.Option(
        "default", help="A scenario file, or a bundled scenario's name (e.g. misallocated)"
    ),
    pools: Path | None = typer.Option(
        None, help="The pools file (default: BUDGET_PIPELINE_POOLS or the bundled one)"
    ),
    days: int = typer.Option(21, min=1, max=365, help="Days to simulate after the history"),
    policy: str = typer.Option("engine", help="engine | static | oracle"),
    seeds: int = typer.Option(1, min=1, max=20, help="Average over this many seeds"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    out: Path | None = typer.Option(None, help="Write report.md and chart.png here"),
) -> None:
    """Run a policy in closed loop on the simulated account and measure the money it earns.

    Each simulated day advances the clock, runs the real cycle (assets, checks, gate) and
    applies its plan through the real execution path, every pool live. The value is compared
    on the same seeds with static budgets and the oracle.
    """
    from budget_pipeline import settings
    from budget_pipeline.simulation.environment import prepare_process
    from budget_pipeline.simulation.evaluate import POLICIES

    if policy not in POLICIES:
        _fail(f"--policy {policy!r}: expected one of {', '.join(POLICIES)}")
    try:
        check_out(out)
        scenario_path = resolve_scenario(scenario)
        pools_path = (pools or settings.pools_path()).resolve()
        scenario_model, config = check_pair(scenario_path, pools_path)
        currency = scenario_model.currency
    except ConfigError as exc:
        _fail(str(exc))
    prepare_process(scenario_path, days)
    from budget_pipeline.simulation.evaluate import simulate as run
    from budget_pipeline.simulation.report import to_json, write_report

    started = time.perf_counter()

    def progress(seed: int, day) -> None:
        if not as_json:
            typer.echo(
                f"  seed {seed} day {day.day:>2}: plan {day.plan_id}, {day.moves} change(s), "
                f"{day.pauses} pause(s), execution {', '.join(day.executions) or 'none'}"
            )

    sim = run(scenario_path, pools_path, days, policy, seeds=seeds, on_day=progress)
    data = to_json(sim, currency or config.currency)
    if out is not None:
        report = write_report(sim, out, data["currency"])
        if not as_json:
            typer.echo(f"report: {report} and {out / 'chart.png'}")
    if as_json:
        typer.echo(json.dumps(data))
        return
    share = data["oracle_share"]
    typer.echo(
        f"{data['scenario']} · {policy} · {days} days · seeds {data['seeds']}\n"
        f"  value {data['value']:,.2f} {data['currency']} vs static "
        f"{data['static_value']:,.2f} ({sim.uplift:+.2%}); oracle {data['oracle_value']:,.2f} "
        f"({sim.oracle_uplift:+.2%}); share of the oracle's uplift "
        f"{'n/a' if share is None else f'{share:.0%}'}\n"
        f"  edits {data['edits']:g}, learning resets {data['learning_resets']:g}, pauses "
        f"{data['pauses']:g}, guard breaches {data['guard_breaches']:g}\n"
        f"  in {time.perf_counter() - started:.1f} s"
    )


def _unseen_scenarios(seed: int, kinds: str, out: Path | None) -> list[Path]:
    """Every library kind (or the named ones) generated with ``seed``, written as scenario
    files (under ``out/scenarios``, else a temporary folder) named ``<kind>_seed<seed>``."""
    import tempfile

    from budget_pipeline.sources.simulated.library import KINDS, scenario_yaml

    chosen = list(KINDS) if kinds == "all" else [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if not chosen:
        raise ConfigError(f"--scenarios {kinds!r}: names no library kind ({', '.join(KINDS)})")
    if unknown:
        raise ConfigError(
            f"--scenarios {', '.join(unknown)}: with --unseen, name library kinds "
            f"({', '.join(KINDS)})"
        )
    folder = out / "scenarios" if out is not None else Path(tempfile.mkdtemp(prefix="unseen-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in chosen:
        path = folder / f"{kind}_seed{seed}.yaml"
        path.write_text(scenario_yaml(kind, seed), encoding="utf-8")
        paths.append(path)
    return paths


def bench_decisions(
    scenarios: str = typer.Option(
        "all", help="Comma-separated bundled scenario names or files (default: the library)"
    ),
    days: int = typer.Option(21, min=1, max=365, help="Days to simulate"),
    seeds: int = typer.Option(3, min=1, max=20, help="Seeds per scenario (common to policies)"),
    workers: int = typer.Option(2, min=1, max=16, help="Closed loops run in parallel"),
    unseen: int | None = typer.Option(
        None,
        min=1,
        help="Bench fresh variants of every library kind generated with this seed (new "
        "curves, budgets, names) instead of the bundled files: accounts the project does not ship",
    ),
    out: Path | None = typer.Option(None, help="Write decisions.md, decisions.json, chart"),
) -> None:
    """Static budgets, the engine, a native Meta rule and the oracle on the scenario library:
    value uplift vs static, share of the oracle's uplift, edits, learning resets, pauses and
    guard breaches, in one table."""
    from dataclasses import asdict

    from budget_pipeline.simulation.decisions_bench import (
        LOOP_POLICIES,
        run_decisions_bench,
        table_markdown,
        write_chart,
    )
    from budget_pipeline.sources.simulated.library import SCENARIO_DIR

    try:
        check_out(out)
        if unseen is not None:
            paths = _unseen_scenarios(unseen, scenarios, out)
        elif scenarios == "all":
            paths = sorted(SCENARIO_DIR.glob("*.yaml"))
        else:
            paths = [resolve_scenario(s.strip()) for s in scenarios.split(",") if s.strip()]
        if not paths:
            raise ConfigError(f"--scenarios {scenarios!r}: names no scenario")
        for path in paths:
            for pools_path in LOOP_POLICIES.values():
                check_pair(path, pools_path)
    except ConfigError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    typer.echo(f"{len(paths)} scenario(s) × engine, meta rule (+ static, oracle), {days} days")
    rows = run_decisions_bench(paths, days=days, seeds=seeds, workers=workers, progress=typer.echo)
    table = table_markdown(rows, days=days, seeds=seeds)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "decisions.md").write_text(table + "\n", encoding="utf-8")
        (out / "decisions.json").write_text(
            json.dumps([asdict(r) | {"uplift": r.uplift, "oracle_share": r.oracle_share}
                        for r in rows], indent=1),
            encoding="utf-8",
        )  # fmt: skip
        chart = write_chart(rows, out / "decisions.png")
        typer.echo(f"wrote {out / 'decisions.md'}, {out / 'decisions.json'}, {chart}")
    typer.echo(f"in {time.perf_counter() - started:.0f} s")
