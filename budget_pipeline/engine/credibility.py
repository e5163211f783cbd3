"""How credible is a deviation from the entity's own baseline, given its purchase count?

A window's conversions are Poisson: with ``c`` of them the rate is known to a relative
standard deviation of about ``1 / √(c + ½)`` (the Gamma(c + ½) posterior of Jeffreys' prior,
on the log scale), and a purchase's value varies too (coefficient of variation ``VALUE_CV``).
The window's ROAS against its baseline's, ``r``, is then credible to

    evidence_z = ln(r) / √((1 + VALUE_CV²) / (c + ½))

standard deviations: |z| ≥ 1.645 means a 90 % interval of ``r`` excludes 1. The score triggers
act on a deviation only when ``|z|`` reaches the pool's ``credible_z`` in the trigger's
direction (issue 9: "act on a deviation only when it is credible given the conversion
counts"); calibration may lower it to reach a healthy fire rate.
"""

from __future__ import annotations

import polars as pl

VALUE_CV = 0.55
Z_90 = 1.6448536269514722  # two-sided 90 %


def evidence_z(conversions: pl.Expr, ratio: pl.Expr) -> pl.Expr:
    """Standard deviations by which ``ratio`` (window ROAS ÷ baseline ROAS) differs from 1,
    given ``conversions`` in the window; 0 without a ratio (no spend, no baseline), and a
    window with spend but no purchase counts as half of one."""
    c = conversions.fill_null(0.0).clip(0.0, None) + 0.5
    log_ratio = pl.when(ratio > 0).then(ratio.log()).otherwise(None)
    sd = ((1.0 + VALUE_CV**2) / c).sqrt()
    floor = (0.5 / c).log()  # no purchase at all: at most as low as half of one
    z = pl.when(ratio == 0).then(floor / sd).otherwise(log_ratio / sd)
    return z.fill_null(0.0).fill_nan(0.0)
