"""Simulated days shared by the accounts a process opens on one scenario.

Every step of a run opens the simulated account afresh from the warehouse (its clock and the
budget changes applied so far), and any report past the first day needs every day before it
simulated (reach, drift, pacing and spend carry over). ``ad_entities`` simulated the whole
history for the lifetime budgets' spend and ``raw_insights`` simulated it again; a closed-loop
simulation re-simulated everything at each step. At 10k ad sets that is seconds each time.

A day is a function of the scenario, the noise setting and the changes that took effect before
it ended, and :class:`~budget_pipeline.sources.simulated.account.SimulatedAccount` never
mutates a simulated day. So the last account's days are kept here, and a new account on the
same scenario object (the process keeps one per file, see ``scenario_cache``) with the same
noise takes every day that ends before the first change in which the two change lists differ.
Only one account's days are kept (the latest), so memory stays that of one account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from budget_pipeline.sources.simulated.day import HOURS_PER_DAY, Day

if TYPE_CHECKING:
    from budget_pipeline.sources.simulated.account import SimulatedAccount


@dataclass(frozen=True)
class _Kept:
    scenario: object  # held, so its id() is never reused while kept
    noise: str
    changes: tuple
    days: tuple[Day, ...]


_kept: _Kept | None = None


def _days_in_common(kept: _Kept, changes: tuple) -> int:
    """How many leading days ``kept`` shares with an account whose changes are ``changes``."""
    common = 0
    for a, b in zip(kept.changes, changes, strict=False):
        if a != b:
            break
        common += 1
    first_difference = [c[common].hour for c in (kept.changes, changes) if common < len(c)]
    if not first_difference:
        return len(kept.days)
    return min(len(kept.days), min(first_difference) // HOURS_PER_DAY)


def adopt(account: SimulatedAccount, n_days: int) -> None:
    """Give ``account`` the kept days it shares (up to ``n_days``) that it has not simulated."""
    kept = _kept
    if kept is None or kept.scenario is not account.scenario or kept.noise != account.noise:
        return
    have = len(account._days)
    usable = min(n_days, _days_in_common(kept, tuple(account._changes)))
    if usable > have:
        account._days.extend(kept.days[have:usable])
        account._sim_settings = None  # the next day to simulate starts from the changes again


def keep(account: SimulatedAccount) -> None:
    """Keep ``account``'s days (replacing the last account's) for the next account opened."""
    global _kept
    _kept = _Kept(account.scenario, account.noise, tuple(account._changes), tuple(account._days))


def forget() -> None:
    global _kept
    _kept = None
