"""One plan for every pool: each pool's policy proposes, one allocator decides (SPEC §5, §7).

A pool's ``policy`` picks who proposes its holders' budgets: ``marginal_return`` (the default:
:mod:`~budget_pipeline.engine.marginal_policy`), ``composite`` (the seed's score thresholds and
triggers: :mod:`~budget_pipeline.engine.threshold_policy`) or ``meta_rule`` (a native Meta rule:
:mod:`~budget_pipeline.engine.rule_policy`). Every proposal goes through the same
:func:`~budget_pipeline.engine.allocator.allocate`, so the guards, the conservation of money and
the words of a reason are the same whoever proposed; money may cross pools of different
policies, except a Meta rule's pool, whose money stays in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import polars as pl

from budget_pipeline import contracts
from budget_pipeline.config.pools import PoolsConfig
from budget_pipeline.engine.allocator import PROPOSALS, allocate
from budget_pipeline.engine.holders import budget_holders
from budget_pipeline.engine.marginal_policy import propose_marginal
from budget_pipeline.engine.meta_rules import MetaRule, load_rule
from budget_pipeline.engine.rule_policy import propose_rule, rule_metrics
from budget_pipeline.engine.threshold_policy import propose_thresholds

POLICIES = ("marginal_return", "composite", "meta_rule")


def plan_with_policies(
    entities: pl.DataFrame,
    scores: pl.DataFrame,
    actions: pl.DataFrame,
    config: PoolsConfig,
    *,
    as_of: datetime,
    windows: pl.DataFrame | None = None,
    daily: pl.DataFrame | None = None,
    last_changes: pl.DataFrame | None = None,
    rules: Mapping[str, MetaRule] | None = None,
    min_budgets: pl.DataFrame | None = None,
    in_learning: pl.DataFrame | None = None,
    held_pools: Mapping[str, str] | None = None,
    scope: str = "",
) -> pl.DataFrame:
    """The plan (contracts.PLAN) of every pool.

    ``entities`` contracts.AD_ENTITIES; ``scores`` contracts.SCORES; ``actions``
    contracts.ACTIONS (fired this cycle, for ``composite`` pools); ``windows``
    (signals.WINDOW_METRICS, for ``meta_rule`` pools); ``daily`` (per ad set and day,
    response_curves.daily_performance, for ``marginal_return`` pools); ``rules`` a parsed rule
    per ``meta_rule`` pool (else ``pool.meta_rule`` is loaded). The rest: see
    :func:`~budget_pipeline.engine.allocator.allocate`.
    """
    by_policy: dict[str, list[str]] = {p: [] for p in POLICIES}
    for pool in config.pools:
        by_policy[pool.policy].append(pool.name)
    parts = [contracts.empty(PROPOSALS)]
    holders = budget_holders(entities, config)  # once: the marginal policy and the allocator
    if by_policy["composite"]:
        parts.append(
            propose_thresholds(entities, scores, actions, config, pools=by_policy["composite"])
        )
    if by_policy["marginal_return"]:
        if daily is None:
            raise ValueError("marginal_return pools need `daily` (response_curves data)")
        parts.append(
            propose_marginal(
                entities,
                scores,
                daily,
                config,
                as_of=as_of,
                pools=by_policy["marginal_return"],
                min_budgets=min_budgets,
                holders=holders,
            )
        )
    if by_policy["meta_rule"]:
        if windows is None:
            raise ValueError("meta_rule pools need `windows` (rule metrics)")
        metrics = rule_metrics(windows, as_of, currency=config.currency)
        given = dict(rules or {})
        for name in by_policy["meta_rule"]:
            pool = config.by_name[name]
            rule = given.get(name)
            if rule is None:
                assert pool.meta_rule is not None  # the config validates it
                rule = load_rule(pool.meta_rule)
            parts.append(
                propose_rule(
                    name, entities, metrics, rule, config, as_of=as_of, last_changes=last_changes
                )
            )
    return allocate(
        entities,
        pl.concat(parts),
        config,
        as_of=as_of,
        last_changes=last_changes,
        min_budgets=min_budgets,
        in_learning=in_learning,
        held_pools=held_pools,
        scores=scores,
        score_exempt_pools=tuple(by_policy["meta_rule"]),
        closed_pools=tuple(by_policy["meta_rule"]),
        scope=scope,
        holders=holders,
    )
