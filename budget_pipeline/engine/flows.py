"""How the allocator moves money: greedy takes per pool in merit order, the largest-remainder
split of a partly served tier, and the three stages (within a pool, across pools of one tier,
across tiers under the margin), vectorised over holders and grouped by pool — the only Python
loops run over tiers, tier pairs and markets, never over pools or holders, so 100k ad sets in
1,000 pools cost what 3 pools do per holder. :mod:`~budget_pipeline.engine.allocator` decides
who offers and wants what; this module moves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budget_pipeline.money import INT64_MAX, largest_remainder_split

HOLD, PAUSE, DONOR, RECIPIENT = 0, 1, 2, 3  # a holder's role in a pass
SAME_POOL, SAME_TIER, CROSS_TIER = 1, 2, 4
MERIT_EPS = 1e-9


@dataclass
class Flows:
    given: np.ndarray
    taken: np.ndarray
    route: np.ndarray
    room_down: np.ndarray  # per pool: what it may still give before its floor
    room_up: np.ndarray  # per pool: what it may still take before its ceiling


@dataclass
class Orders:
    """What stays the same from one allocation pass to the next: each holder's tier and
    market, the tier groups and pairs, and the stable (pool, key) sort orders of givers and
    takers (re-sorted only when a pause turns into a cut and so changes its key)."""

    row_tier: np.ndarray
    row_market: np.ndarray
    tier_markets: list[tuple[int, int]]
    tier_pairs: list[tuple[int, int, int, int]]
    give_key: np.ndarray
    take_key: np.ndarray
    give: np.ndarray
    take: np.ndarray

    @classmethod
    def of(cls, pool, tier, market, role, merit) -> Orders:
        pairs = sorted(
            (abs(a - b), b, a, mk)
            for mk in np.unique(market).tolist()
            for a in np.unique(tier[market == mk]).tolist()
            for b in np.unique(tier[market == mk]).tolist()
            if a != b
        )
        take_key = -merit
        return cls(
            row_tier=tier[pool],
            row_market=market[pool],
            tier_markets=sorted({(int(a), int(b)) for a, b in zip(tier, market, strict=True)}),
            tier_pairs=pairs,
            give_key=np.array([]),
            take_key=take_key,
            give=np.array([], dtype=np.int64),
            take=np.lexsort((take_key, pool)),  # stable: ties keep row order
        ).with_roles(pool, role, merit)

    def with_roles(self, pool, role, merit) -> Orders:
        """Pauses give first; donors from the lowest merit up; recipients from the highest
        down."""
        give_key = np.where(role == PAUSE, -np.inf, merit)
        if self.give_key.size and np.array_equal(give_key, self.give_key):
            return self
        self.give_key, self.give = give_key, np.lexsort((give_key, pool))
        return self


def _greedy(
    group: np.ndarray,
    amount: np.ndarray,
    key: np.ndarray,
    totals: np.ndarray,
    by_key: np.ndarray | None = None,
):
    """Per group, take ``totals[g]`` from its rows in ascending ``key`` order (each row at most
    its ``amount``); rows of equal key share in proportion to their amounts (largest
    remainder), so the result does not depend on row order. Returns each row's part.
    ``by_key``: every row's index stably sorted by (group, key), if the caller has it (one sort
    per pass instead of one per call; its rows with an amount are in the same order)."""
    parts = np.zeros(len(amount), dtype=np.int64)
    if by_key is not None:
        order = by_key[amount[by_key] > 0]
        if order.size == 0:
            return parts
    else:
        rows = np.flatnonzero(amount > 0)
        if rows.size == 0:
            return parts
        order = rows[np.lexsort((key[rows], group[rows]))]
    g, k, a = group[order], key[order], amount[order]
    # tiers: runs of equal (group, key); each tier is served whole or not at all, but one
    new_tier = np.r_[True, (g[1:] != g[:-1]) | (k[1:] != k[:-1])]
    tier = np.cumsum(new_tier) - 1
    tier_sum = np.bincount(tier, weights=a).astype(np.int64)
    tier_group = g[new_tier]
    cum = np.cumsum(tier_sum)
    first_of_group = np.r_[True, tier_group[1:] != tier_group[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_group, np.arange(len(cum)), 0))
    before = cum - tier_sum - (cum[group_start] - tier_sum[group_start])
    tier_alloc = np.clip(totals[tier_group] - before, 0, tier_sum)
    share = np.where(tier_alloc[tier] == tier_sum[tier], a, 0)
    partial = (tier_alloc > 0) & (tier_alloc < tier_sum)  # ≤ one per group
    if partial.any():
        _split_partial_tiers(share, tier, partial, tier_alloc, a)
    parts[order] = share
    return parts


def _split_partial_tiers(
    share: np.ndarray, tier: np.ndarray, partial: np.ndarray, alloc: np.ndarray, a: np.ndarray
) -> None:
    """Into ``share``: each partial tier's ``alloc`` split over its rows in proportion to
    ``a`` — :func:`_capped_split` of every tier at once (the same largest remainders, ties to
    the earlier row), grouped instead of looped, so 1,000 pools cost one pass, not 1,000."""
    rows = np.flatnonzero(partial[tier])  # a tier's rows are contiguous (sorted by group, key)
    t, w = tier[rows], a[rows]
    total = alloc[t]
    if np.any(w > INT64_MAX // total):  # exact products beyond int64: the scalar path
        for k in np.unique(t):
            members = rows[t == k]
            share[members] = _capped_split(int(alloc[k]), a[members])
        return
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    weight_sum = np.add.reduceat(w, starts)
    group = np.cumsum(np.r_[False, t[1:] != t[:-1]])  # 0.. per tier, row by row
    products = w * total
    quotient, remainder = products // weight_sum[group], products % weight_sum[group]
    left = alloc[t[starts]] - np.add.reduceat(quotient, starts)
    order = np.lexsort((np.arange(rows.size), -remainder, group))
    rank = np.empty(rows.size, dtype=np.int64)
    rank[order] = np.arange(rows.size) - starts[group[order]]
    parts = quotient + (rank < left[group])
    if np.any(parts > w):  # never with integer amounts; the scalar path re-caps if it were
        for k in np.unique(t):
            members = rows[t == k]
            share[members] = _capped_split(int(alloc[k]), a[members])
        return
    share[rows] = parts


def _sums(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, group, values.astype(np.int64))
    return out


def move_money(
    pool, tier, market, role, merit, offer, want, before, floors, ceilings, margin, orders
) -> Flows:
    """Move ``offer`` to ``want`` in the allocator's three stages (see the allocator's module
    docstring); ``orders``: :class:`Orders` of these roles and merits."""
    n_pools = len(tier)
    row_tier, row_market = orders.row_tier, orders.row_market
    given = np.zeros(len(role), dtype=np.int64)
    taken = np.zeros(len(role), dtype=np.int64)
    route = np.zeros(len(role), dtype=np.int64)
    give_key, take_key = orders.give_key, orders.take_key
    give_order, take_order = orders.give, orders.take
    room_down = np.maximum(before - floors, 0)
    room_up = np.maximum(ceilings - before, 0)

    def left_offer() -> np.ndarray:
        return offer - given

    def left_want() -> np.ndarray:
        return want - taken

    # 1. within each pool: its total does not change
    total = np.minimum(_sums(pool, offer, n_pools), _sums(pool, want, n_pools))
    g = _greedy(pool, offer, give_key, total, give_order)
    t = _greedy(pool, want, take_key, total, take_order)
    given += g
    taken += t
    route[(g > 0) | (t > 0)] |= SAME_POOL
    # 2. across pools of one tier and market, within each pool's room
    for level, mk in orders.tier_markets:
        in_group = (tier == level) & (market == mk)
        supply = np.where(in_group, np.minimum(_sums(pool, left_offer(), n_pools), room_down), 0)
        demand = np.where(in_group, np.minimum(_sums(pool, left_want(), n_pools), room_up), 0)
        flow = int(min(supply.sum(), demand.sum()))
        if flow <= 0:
            continue
        out = _capped_split(flow, supply)
        inn = _capped_split(flow, demand)
        g = _greedy(pool, left_offer(), give_key, out, give_order)
        t = _greedy(pool, left_want(), take_key, inn, take_order)
        given += g
        taken += t
        route[(g > 0) | (t > 0)] |= SAME_TIER
        room_down -= out
        room_up -= inn
    # 3. across tiers of one market: only to a recipient clearly better than its donor
    for _, to_tier, from_tier, mk in orders.tier_pairs:
        in_market = row_market == mk
        donors = np.flatnonzero((row_tier == from_tier) & (left_offer() > 0) & in_market)
        takers = np.flatnonzero((row_tier == to_tier) & (left_want() > 0) & in_market)
        if not donors.size or not takers.size:
            continue
        d_left = _within_room(pool, donors, left_offer(), give_key, give_order, room_down)
        r_left = _within_room(pool, takers, left_want(), take_key, take_order, room_up)
        gives, takes = _nested_flow(merit[donors], d_left, merit[takers], r_left, margin)
        given[donors] += gives
        taken[takers] += takes
        route[donors[gives > 0]] |= CROSS_TIER
        route[takers[takes > 0]] |= CROSS_TIER
        room_down -= _sums(pool[donors], gives, n_pools)
        room_up -= _sums(pool[takers], takes, n_pools)
    return Flows(given, taken, route, room_down, room_up)


def explain(moved: Flows, pool, tier, market, merit, offer, want, margin, orders) -> dict:
    """Per holder, what held the final flows back (for the reasons): its pool kept offers
    back at its floor (``floor_hit``) or wants at its ceiling (``ceiling_hit``), or no donor of
    another tier was ``margin`` worse than it (``margin_blocked``)."""
    n_pools = len(tier)
    row_tier, row_market = orders.row_tier, orders.row_market
    left_offer, left_want = offer - moved.given, want - moved.taken
    room_down, room_up = moved.room_down, moved.room_up
    offers_left, wants_left = _sums(pool, left_offer, n_pools), _sums(pool, left_want, n_pools)
    floor_hit = (offers_left > 0) & (room_down == 0) & (wants_left.sum() - wants_left > 0)
    ceiling_hit = (wants_left > 0) & (room_up == 0) & (offers_left.sum() - offers_left > 0)
    blocked = np.zeros(len(merit), dtype=bool)
    short = left_want > 0
    if short.any() and (left_offer > 0).any():
        for level in np.unique(tier):
            for mk in np.unique(market).tolist():
                others = (
                    (row_tier != level)
                    & (left_offer > 0)
                    & (room_down[pool] > 0)
                    & (row_market == mk)
                )
                if others.any():
                    lowest = merit[others].min()
                    mine = short & (row_tier == level) & (row_market == mk)
                    blocked |= mine & (merit - lowest < margin - MERIT_EPS)
    return {
        "floor_hit": floor_hit[pool],
        "ceiling_hit": ceiling_hit[pool],
        "margin_blocked": blocked,
    }


def _capped_split(total: int, caps: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` (≤ caps.sum()) in proportion to ``caps``."""
    if total <= 0 or caps.sum() <= 0:
        return np.zeros(len(caps), dtype=np.int64)
    parts = largest_remainder_split(total, caps)
    over = np.maximum(parts - caps, 0)
    if over.any():  # float shares may put one unit over a cap: give it to rows with room
        parts = parts - over
        room = np.cumsum(caps - parts)
        parts = parts + np.diff(np.r_[0, np.minimum(room, int(over.sum()))])
    return parts


def _within_room(pool, rows, left, key, by_key, room) -> np.ndarray:
    """``left`` of ``rows``, cut so that each pool's rows add up to at most its room (the
    rows earliest in ``key`` order keep theirs; ``by_key`` as in :func:`_greedy`)."""
    amounts = np.zeros(len(left), dtype=np.int64)
    amounts[rows] = left[rows]
    totals = np.minimum(_sums(pool, amounts, len(room)), np.maximum(room, 0))
    return _greedy(pool, amounts, key, totals, by_key)[rows]


def _nested_flow(d_merit, d_left, r_merit, r_left, margin) -> tuple[np.ndarray, np.ndarray]:
    """Cross-tier flow where donor i may fund recipient j only if ``merit_j − merit_i ≥ margin``.

    A recipient's eligible donors are a prefix of the donors sorted by merit, so serving
    recipients from the lowest merit up, each as much as its prefix still holds, is a maximum
    flow: cumulative takes ``T_j = min(T_{j−1} + w_j, P_j)``, in closed form; donors give from
    the lowest merit up, which keeps every take inside its eligible prefix.
    """
    do = np.argsort(d_merit, kind="stable")
    ro = np.argsort(r_merit, kind="stable")
    prefix = np.r_[0, np.cumsum(d_left[do])]
    reach = np.searchsorted(d_merit[do], r_merit[ro] - margin + MERIT_EPS, side="right")
    wants = np.cumsum(r_left[ro])
    cum_take = wants + np.minimum.accumulate(np.minimum(0, prefix[reach] - wants))
    placed = int(cum_take[-1]) if cum_take.size else 0
    takes = np.zeros(len(r_left), dtype=np.int64)
    takes[ro] = np.diff(np.r_[0, cum_take])
    gives = np.zeros(len(d_left), dtype=np.int64)
    gives[do] = np.diff(np.r_[0, np.minimum(prefix[1:], placed)])
    return gives, takes
