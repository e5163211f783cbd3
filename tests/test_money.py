"""The conserving split is exact integer money, whatever the size of the total."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_pipeline.money import INT64_MAX, MoneyError, largest_remainder_split


def reference_split(total: int, weights: list[float | int]) -> list[int]:
    """Largest remainder in exact fractions, written out the slow, obvious way."""
    exact = [Fraction(w) for w in weights]
    if sum(exact) == 0:
        exact = [Fraction(1)] * len(weights)
    magnitude = abs(total)
    shares = [magnitude * w / sum(exact) for w in exact]
    parts = [int(s) for s in shares]  # floor: shares are non-negative
    left = magnitude - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: -(shares[i] - parts[i]))  # stable
    for i in by_remainder[:left]:
        parts[i] += 1
    return [-p if total < 0 else p for p in parts]


def test_an_even_split_of_an_18_digit_total_is_exact():
    # Float shares put each part 20 minor units low and lost 60 of the total.
    assert (
        largest_remainder_split(999_999_999_999_999_999, [1.0, 1.0, 1.0]).tolist()
        == [333_333_333_333_333_333] * 3
    )
    assert largest_remainder_split(10**18 + 1, [1, 1]).tolist() == [
        500_000_000_000_000_001,
        500_000_000_000_000_000,
    ]


def test_float_weights_split_by_their_exact_values():
    # 0.1 is 3602879701896397 / 2**55 exactly, a hair above 1/10: its part gets the spare unit.
    parts = largest_remainder_split(INT64_MAX, [0.1, 0.9])
    assert parts.tolist() == reference_split(INT64_MAX, [0.1, 0.9])
    assert int(parts.sum()) == INT64_MAX


huge_totals = st.integers(min_value=-INT64_MAX, max_value=INT64_MAX)
float_weights = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, 1.0, 0.1, 2.5, 5e-324, 1e-300]),
    ),
    min_size=1,
    max_size=12,
)
int_weights = st.lists(st.integers(min_value=0, max_value=INT64_MAX), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    total=st.one_of(huge_totals, st.integers(-(10**6), 10**6)),
    raw=st.one_of(float_weights, int_weights),
)
def test_split_is_exact_and_conserves_to_the_minor_unit(total, raw):
    dtype = np.float64 if isinstance(raw[0], float) else np.int64
    parts = largest_remainder_split(total, np.array(raw, dtype=dtype))
    assert parts.dtype == np.int64
    assert sum(int(p) for p in parts) == total  # Python ints: no wrap-around hides a loss
    assert parts.tolist() == reference_split(total, raw)


@settings(max_examples=100, deadline=None)
@given(total=huge_totals, n=st.integers(1, 40))
def test_even_parts_differ_by_at_most_one_unit_earliest_first(total, n):
    parts = largest_remainder_split(total, np.ones(n)).tolist()
    base, extra = divmod(abs(total), n)
    sign = -1 if total < 0 else 1
    assert parts == [sign * (base + (i < extra)) for i in range(n)]


def test_bad_inputs_are_named():
    with pytest.raises(MoneyError, match="64-bit"):
        largest_remainder_split(INT64_MAX + 1, [1, 1])
    with pytest.raises(MoneyError, match="finite"):
        largest_remainder_split(10, [1.0, float("inf")])
    with pytest.raises(MoneyError, match="integer"):
        largest_remainder_split(10.5, [1.0])
