"""Money: integer minor units, currency factors and a conserving split.

Budgets are stored, planned and sent as integer minor units (cents for EUR, yen for JPY).
Meta sends budgets as strings of minor units and Insights spend as decimal strings in major
units; the helpers here convert between the two without floats where a budget is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np

# Currencies whose minor unit equals the major unit (Meta's "offset 1" currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"JPY", "KRW", "CLP", "COP", "CRC", "HUF", "ISK", "IDR", "PYG", "TWD", "VND"}
)
# Currencies the product knows; anything else is rejected rather than guessed.
KNOWN_CURRENCIES = ZERO_DECIMAL_CURRENCIES | frozenset(
    {
        "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "RON", "BGN",
        "CAD", "AUD", "NZD", "BRL", "MXN", "ARS", "PEN", "INR", "SGD", "HKD", "MYR",
        "PHP", "THB", "ZAR", "TRY", "ILS", "AED", "SAR", "QAR", "EGP", "NGN", "KES",
        "CNY", "UAH",
    }
)  # fmt: skip


class MoneyError(ValueError):
    """A money value or currency that cannot be used."""


def minor_factor(currency: str) -> int:
    """How many minor units make one major unit of ``currency`` (100, or 1 for JPY & co)."""
    code = currency.upper()
    if code not in KNOWN_CURRENCIES:
        raise MoneyError(f"unknown currency {currency!r}: expected an ISO 4217 code Meta supports")
    return 1 if code in ZERO_DECIMAL_CURRENCIES else 100


def to_minor(major: float | int | str | Decimal, currency: str) -> int:
    """Convert a major-unit amount (``"50.00"``, ``50``) to integer minor units, rounding half up."""
    try:
        value = Decimal(str(major))
    except InvalidOperation as exc:
        raise MoneyError(f"amount {major!r} is not a number") from exc
    if not value.is_finite():
        raise MoneyError(f"amount {major!r} is not finite")
    return int((value * minor_factor(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_major(minor: int, currency: str) -> float:
    """Minor units back to a major-unit float, for display only."""
    return minor / minor_factor(currency)


def format_money(minor: int, currency: str) -> str:
    """``12345, "EUR"`` → ``"123.45 EUR"``; ``500, "JPY"`` → ``"500 JPY"``."""
    factor = minor_factor(currency)
    if factor == 1:
        return f"{minor:,} {currency}"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), factor)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def largest_remainder_split(total: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Split integer ``total`` in proportion to ``weights`` so the parts sum exactly to ``total``.

    Each part gets the floor of its exact share; the units left over go one each to the parts
    with the largest fractional remainders (ties to the earlier part). Zero total weight splits
    evenly. Returns an int64 array the length of ``weights``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise MoneyError("largest_remainder_split needs a non-empty 1-d list of weights")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise MoneyError(f"weights must be finite and non-negative, got {w.tolist()}")
    if int(total) != total:
        raise MoneyError(f"total must be an integer number of minor units, got {total!r}")
    total = int(total)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    if w.sum() == 0:
        w = np.ones_like(w)
    exact = w / w.sum() * magnitude
    parts = np.floor(exact).astype(np.int64)
    left = magnitude - int(parts.sum())
    if left > 0:
        order = np.argsort(-(exact - parts), kind="stable")
        parts[order[:left]] += 1
    return sign * parts
