"""Summary statistics of the harness."""

from __future__ import annotations

import pytest

from experiments.stats import percentile, summarize


def test_percentile_interpolates_linearly_between_ranks():
    values = [float(v) for v in range(10, 0, -1)]  # order must not matter
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 5.5
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 100) == 10.0
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_outside_0_100_is_refused(q):
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_summary_of_samples_and_of_none():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean, s.median) == (4, 2.5, 2.5)
    assert s.stdev == pytest.approx(1.2909944)
    assert s.p95 == pytest.approx(3.85) and s.p99 == pytest.approx(3.97)
    assert summarize([5.0]).stdev == 0.0
    assert summarize([]) is None
    with pytest.raises(ValueError):
        percentile([], 50)
