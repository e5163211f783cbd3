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


INT64_MAX = 2**63 - 1
# Bounds on amounts a person writes (pools file, scenario) or Meta sends. One amount is at most
# 10^15 minor units (10^13 EUR a day): exactly representable as a float64 (< 2^53), so any
# float step on it stays to the minor unit. A file's total (the sum of its budgets, of its
# pools' ceilings) is at most 2^62, so a sum the engine forms from two such totals still fits
# int64 — budgets are int64 minor units in every frame and table.
MAX_AMOUNT_MINOR = 10**15
MAX_TOTAL_MINOR = 2**62


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

    Each part gets the floor of its exact share ``total × w_i / Σw``; the units left over go one
    each to the parts with the largest remainders (ties to the earlier part). Zero total weight
    splits evenly. Every step is integer arithmetic on the weights' exact values (a float64 is a
    binary fraction), so a share is exact whatever the size of ``total`` (up to int64) — no
    float rounding, no part off by more than the one unit the rule hands out. Returns an int64
    array the length of ``weights``.
    """
    w = np.asarray(weights)
    if w.ndim != 1 or w.size == 0:
        raise MoneyError("largest_remainder_split needs a non-empty 1-d list of weights")
    if w.dtype.kind not in "biuf":
        raise MoneyError(f"weights must be numbers, got {w.dtype} values")
    if w.dtype.kind == "f" and not np.all(np.isfinite(w)):
        raise MoneyError(f"weights must be finite and non-negative, got {w.tolist()}")
    if np.any(w < 0):
        raise MoneyError(f"weights must be finite and non-negative, got {w.tolist()}")
    if isinstance(total, bool) or int(total) != total:
        raise MoneyError(f"total must be an integer number of minor units, got {total!r}")
    total = int(total)
    if abs(total) > INT64_MAX:
        raise MoneyError(f"total {total} does not fit a 64-bit integer of minor units")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    ints = _exact_integer_weights(w)
    weight_sum = int(ints.sum())
    if weight_sum == 0:
        ints, weight_sum = np.ones(w.size, dtype=np.int64), int(w.size)
    if ints.dtype == np.int64 and magnitude * int(ints.max()) <= INT64_MAX:
        products = ints * magnitude
    else:  # exact products beyond int64: Python integers, element-wise in numpy's object loop
        products = ints.astype(object) * magnitude
    quotient, remainder = products // weight_sum, products % weight_sum
    parts = quotient.astype(np.int64)
    left = magnitude - int(quotient.sum())
    if left > 0:
        order = np.argsort(-remainder, kind="stable")
        parts[order[:left]] += 1
    return sign * parts


def _exact_integer_weights(w: np.ndarray) -> np.ndarray:
    """Integers in exactly the proportions of ``w``: int64 when they and their sum fit, else
    Python ints (an object array).

    A finite float64 is ``odd × 2**k``; dividing every weight by 2 to the smallest ``k`` gives
    integers with the same ratios, small ones for integral or short binary weights (1.0, 2.5).
    """
    if w.dtype.kind in "biu":
        ints = w.astype(object) if w.dtype.kind == "u" else w.astype(np.int64)
    elif np.all(w == np.floor(w)) and float(w.max()) < 2.0**53:
        ints = w.astype(np.int64)
    else:
        ints = _binary_fraction_numerators(w)
    if ints.dtype == np.int64 and int(ints.max()) * ints.size > INT64_MAX:
        return ints.astype(object)  # their sum would not fit int64
    return ints


def _binary_fraction_numerators(w: np.ndarray) -> np.ndarray:
    nonzero = w > 0
    if not nonzero.any():
        return np.zeros(w.size, dtype=np.int64)
    mantissa, exponent = np.frexp(w)
    odd = (mantissa * 2.0**53).astype(np.int64)  # exact: a float64 has 53 significant bits
    exponent = exponent.astype(np.int64) - 53
    low_bit = odd & -odd
    zeros = np.zeros(w.size, dtype=np.int64)
    zeros[nonzero] = np.log2(low_bit[nonzero]).astype(np.int64)  # trailing zero bits
    odd = np.where(nonzero, odd >> zeros, 0)
    exponent = exponent + zeros
    shift = np.where(nonzero, exponent - exponent[nonzero].min(), 0)
    if int(shift.max()) + int(odd.max()).bit_length() < 62:
        return odd << shift
    return odd.astype(object) << shift.astype(object)
