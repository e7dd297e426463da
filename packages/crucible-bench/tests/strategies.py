"""Hypothesis strategies for crucible-bench's property tests (imported through conftest fixtures)."""

from __future__ import annotations

from hypothesis import strategies as st

# Moderate magnitudes on a 1/64 grid: exact in float64, ties possible, variances not degenerate.
values = st.integers(min_value=-4000, max_value=4000).map(lambda i: i / 64)


def samples(min_size: int = 3, max_size: int = 30) -> st.SearchStrategy[list[float]]:
    """A sample with at least two distinct values."""
    return st.lists(values, min_size=min_size, max_size=max_size).filter(
        lambda xs: len(set(xs)) > 1
    )


pvalue_lists = st.lists(
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=40
)
