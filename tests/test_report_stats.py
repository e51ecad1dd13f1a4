"""The report's two-sample statistics on values whose answers are known by hand."""

import itertools
import math
import statistics

import pytest

from mimdarts.stats import MAX_EXACT, bootstrap_diff, compare, permutation_p, smallest_p


def test_permutation_p_by_hand():
    # {1,2,3} vs {4,5,6}: only the observed split and its mirror are as extreme: 2 of C(6,3)
    assert permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 / 20)
    assert permutation_p([5, 6, 7, 8, 9], [0, 1, 2, 3, 4]) == pytest.approx(2 / 252)
    assert permutation_p([2, 2, 2], [2, 2, 2]) == 1.0  # identical: every split as extreme
    # unequal sizes: count the splits by brute force on the |difference of means|
    a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0, 6.0, 1.0]
    pooled, obs = a + b, abs(statistics.fmean(a) - statistics.fmean(b))
    hits = sum(abs(statistics.fmean(c) - statistics.fmean([x for i, x in enumerate(pooled)
                                                            if i not in idx])) >= obs - 1e-12
               for idx in itertools.combinations(range(9), 3)
               for c in [[pooled[i] for i in idx]])
    assert permutation_p(a, b) == pytest.approx(hits / math.comb(9, 3))


def test_permutation_p_matches_scipy_for_equal_groups():
    np = pytest.importorskip("numpy")
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [94.37, 93.9, 93.5, 94.1, 91.8], [88.2, 92.1, 89.0, 90.5, 93.8]
    def diff(x, y, axis):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    ref = scipy_stats.permutation_test((a, b), diff, vectorized=True, n_resamples=10**6).pvalue
    assert permutation_p(a, b) == pytest.approx(ref)


def test_permutation_p_monte_carlo_beyond_exact():
    a, b = [10.0 + i for i in range(12)], [float(i) for i in range(12)]
    assert math.comb(24, 12) > MAX_EXACT
    p = permutation_p(a, b)
    assert 0 < p < 1e-3 and p == permutation_p(a, b)  # seeded: the same every time


def test_bootstrap_interval():
    assert bootstrap_diff([1.0, 1.0, 1.0], [0.0, 0.0]) == (1.0, 1.0, 1.0)  # no spread, no width
    diff, lo, hi = bootstrap_diff([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert diff == pytest.approx(2.0) and lo < diff < hi
    assert (lo, hi) == bootstrap_diff([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])[1:]  # seeded
    # resampled means stay within each group's range: the interval within [1 - 3, 5 - 1]
    assert -2.0 <= lo and hi <= 4.0
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_diff([], [1.0])


def test_compare_says_when_seeds_cannot_separate():
    assert smallest_p(5, 5) == pytest.approx(2 / 252) and smallest_p(2, 5) == pytest.approx(1 / 21)
    clear = compare([5, 6, 7, 8, 9], [0, 1, 2, 3, 4])
    assert clear.verdict.startswith("higher than the baseline") and clear.low > 0
    assert compare([0, 1, 2, 3, 4], [5, 6, 7, 8, 9]).verdict.startswith("lower")
    mixed = compare([1, 5, 2, 8, 3], [2, 4, 3, 7, 1])
    assert mixed.verdict.startswith("not separated by these seeds") and mixed.low < 0 < mixed.high
    few = compare([9.0, 9.5], [1.0, 1.5])
    assert few.p_min == pytest.approx(1 / 3) and few.verdict.startswith("cannot be separated: with 2 and 2")


def test_s4_compares_the_noise_count_beside_skips():
    # RobustDARTS's S4 collapses onto noise, not skips: its noise count is compared too; in a
    # space without the op (no values) the figure is left out
    from mimdarts.report import compare_methods

    table = {"space": "darts-s4", "raw": [
        {"method": "darts", "skips normal": [0, 0, 0], "noise normal": [5, 6, 7]},
        {"method": "mim", "skips normal": [0, 0, 0], "noise normal": [1, 2, 3]}]}
    rows = {r["figure"]: r["result"] for r in compare_methods(table, "darts")}
    assert set(rows) == {"skips normal", "noise normal"}
    assert rows["noise normal"].diff == -4.0
    table["space"] = "darts"
    for r in table["raw"]:
        r["noise normal"] = []
    assert {r["figure"] for r in compare_methods(table, "darts")} == {"skips normal"}
