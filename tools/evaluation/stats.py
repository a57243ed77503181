"""The statistics an exam report needs so that a sceptic can read it: percentile-bootstrap intervals of a
mean, the paired test of tuned against base on the same questions, and one-sided tests for a subset that
scores below the rest.

Tests are exact where the data allow it: McNemar's exact test is the two-sided binomial test on the
discordant pairs (tuned right where base was wrong against the reverse); graded scores use the sign test,
its analogue on the questions whose scores differ. Resampling is seeded, so a report is reproducible to
the last digit. Everything here is plain numbers in, plain numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
ALPHA = 0.05
# Two scores closer than this are the same score (graded scores are rounded to 4 digits).
TIE = 1e-9


def mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if len(values) else None


def bootstrap_interval(values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0,
                       level: float = LEVEL) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of the mean of `values`: (None, None) for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None, None
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _binomial_log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(math.exp(_binomial_log_pmf(i, n, p)) for i in range(k + 1)))


def binomial_two_sided(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test: the probability of an outcome no likelier than `k` (1.0 for n = 0)."""
    if n == 0:
        return 1.0
    observed = _binomial_log_pmf(k, n, p)
    # Outcomes as likely as the observed one count too (relative tolerance as in the usual implementations).
    threshold = observed + math.log1p(1e-7)
    total = sum(math.exp(value) for i in range(n + 1) if (value := _binomial_log_pmf(i, n, p)) <= threshold)
    return min(1.0, total)


@dataclass
class Paired:
    """Tuned against base on the same questions."""

    test: str
    n: int
    better: int
    worse: int
    gain: float | None
    gain_low: float | None
    gain_high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def paired_test(base: Sequence[float], tuned: Sequence[float], binary: bool, resamples: int = RESAMPLES,
                seed: int = 0) -> Paired:
    """McNemar's exact test (`binary`: scores are 1/0) or the sign test (graded scores) of tuned vs base,
    with the mean gain and its paired-bootstrap interval. The two lists are aligned by question."""
    if len(base) != len(tuned):
        raise ValueError("base and tuned scores must be aligned by question")
    b = np.asarray(base, dtype=float)
    t = np.asarray(tuned, dtype=float)
    n = int(b.size)
    if n == 0:
        return Paired("mcnemar-exact" if binary else "sign-test", 0, 0, 0, None, None, None, None)
    difference = t - b
    better = int((difference > TIE).sum())
    worse = int((difference < -TIE).sum())
    low, high = bootstrap_interval(difference, resamples, seed)
    return Paired("mcnemar-exact" if binary else "sign-test", n, better, worse, float(difference.mean()), low, high,
                  binomial_two_sided(min(better, worse), better + worse, 0.5))


def below_rest_p(subset: Sequence[float], rest: Sequence[float], binary: bool, resamples: int = 5000,
                 seed: int = 0) -> float | None:
    """One-sided p-value that `subset` scores below `rest` (the other questions of the same run).

    Right/wrong scores: the exact binomial tail of the subset's correct count at the rest's rate (a rest
    with every answer right or wrong is moved half a question inward, so one wrong answer is not
    "impossible"). Graded scores: a permutation test of the difference of means."""
    if not len(subset) or not len(rest):
        return None
    if binary:
        k, n = int(round(sum(subset))), len(subset)
        rate = (sum(rest) + 0.5) / (len(rest) + 1.0)
        return binomial_cdf(k, n, rate)
    pooled = np.asarray(list(subset) + list(rest), dtype=float)
    size = len(subset)
    observed = pooled[:size].mean() - pooled[size:].mean()
    rng = np.random.default_rng(seed)
    draws = np.argsort(rng.random((resamples, pooled.size)), axis=1)[:, :size]
    picked = pooled[draws].sum(axis=1)
    differences = picked / size - (pooled.sum() - picked) / (pooled.size - size)
    # The observed split counts as one of the permutations, so p is never 0.
    return float((np.count_nonzero(differences <= observed + TIE) + 1) / (resamples + 1))
