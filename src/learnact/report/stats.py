"""Statistics for comparing activations, in plain numpy and math (no SciPy needed).

- :func:`mean_ci`: mean, sample std and a two-sided 95% Student-t interval;
- :func:`wilcoxon_signed_rank`: paired test, exact for small samples, ties included;
- :func:`friedman`: the Friedman test over tasks (Demšar 2006, section 3.2.2);
- :func:`average_ranks` and :func:`nemenyi_cd`: average ranks and the Nemenyi
  critical difference for a critical-difference diagram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "average_ranks",
    "chi2_sf",
    "friedman",
    "mean_ci",
    "nemenyi_cd",
    "studentized_range_q",
    "t_quantile_975",
    "wilcoxon_signed_rank",
]

# the most non-zero differences whose Wilcoxon p-value is computed exactly
WILCOXON_EXACT_MAX = 25


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _t_cdf(t: float, df: int) -> float:
    # regularized incomplete beta via its continued fraction (Numerical Recipes' betacf form)
    x = df / (df + t * t)
    ib = _betainc(df / 2, 0.5, x)
    return 1 - 0.5 * ib if t > 0 else 0.5 * ib


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1 - x)
    # Lentz's continued fraction
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = tiny if abs(d) < tiny else d
        d = 1.0 / d
        c = 1.0 + num / c
        c = tiny if abs(c) < tiny else c
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0) / a


@lru_cache(maxsize=256)
def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (bisection)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < 0.975:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_ci(values: Sequence[float]) -> tuple[float, float, float, float]:
    """``(mean, std, ci_low, ci_high)``: sample std and a 95% t interval.

    With one value the std and interval are NaN: one seed says nothing about spread.
    """
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return (math.nan,) * 4
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(arr.std(ddof=1))
    half = t_quantile_975(arr.size - 1) * std / math.sqrt(arr.size)
    return mean, std, mean - half, mean + half


def _rank(values: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def wilcoxon_signed_rank(diffs: Sequence[float]) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test on paired differences.

    Zero differences are dropped. Returns ``(W+, p_value, n_used)``. For up to
    :data:`WILCOXON_EXACT_MAX` non-zero differences the p-value is exact: the
    sign-flip distribution of W+ over the observed ranks, tied values sharing
    their average rank, is counted by dynamic programming (ranks doubled to
    integers). This matters for accuracies, which tie often (a test set of
    10,000 images moves them in steps of 1e-4): with 5 pairs no p-value can
    be below 2/32 = 0.0625, and the normal approximation would say otherwise.
    Beyond that, the normal approximation with a tie correction. With
    ``n_used == 0`` the p-value is 1.
    """
    d = np.asarray([x for x in diffs if x != 0 and np.isfinite(x)], dtype=float)
    n = d.size
    if n == 0:
        return 0.0, 1.0, 0
    ranks = _rank(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    total = n * (n + 1) / 2
    if n <= WILCOXON_EXACT_MAX:
        doubled = np.rint(2 * ranks).astype(int)  # average ranks are multiples of 1/2
        # counts[s] = number of sign patterns whose positive doubled ranks sum to s
        counts = np.zeros(int(doubled.sum()) + 1, dtype=float)
        counts[0] = 1
        for r in doubled:
            counts[r:] += counts[:-r].copy()
        counts /= 2.0**n
        w2 = round(2 * min(w_plus, total - w_plus))
        return w_plus, min(1.0, 2 * float(counts[: w2 + 1].sum())), n
    mean = total / 2
    _, tie_counts = np.unique(ranks, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - float((tie_counts**3 - tie_counts).sum()) / 48
    z = (w_plus - mean) / math.sqrt(var) if var > 0 else 0.0
    return w_plus, min(1.0, 2 * (1 - _norm_cdf(abs(z)))), n


def average_ranks(scores: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Average rank of each column over the rows of a (tasks x methods) matrix; 1 is best."""
    scores = np.asarray(scores, dtype=float)
    signed = -scores if higher_is_better else scores
    return np.mean([_rank(row) for row in signed], axis=0)


def _gammainc_upper(s: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(s, x)."""
    if x <= 0:
        return 1.0
    if x < s + 1:  # series for P
        term = total = 1.0 / s
        a = s
        for _ in range(1000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return 1.0 - total * math.exp(-x + s * math.log(x) - math.lgamma(s))
    tiny = 1e-300  # continued fraction for Q
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(-x + s * math.log(x) - math.lgamma(s)) * h


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-squared distribution."""
    return _gammainc_upper(df / 2, x / 2)


def friedman(scores: np.ndarray, higher_is_better: bool = True) -> tuple[float, float]:
    """Friedman test on a (N tasks x k methods) matrix: ``(chi2_F, p_value)``."""
    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    if n < 2 or k < 2:
        raise ValueError("the Friedman test needs at least 2 tasks and 2 methods")
    r = average_ranks(scores, higher_is_better)
    chi2 = 12 * n / (k * (k + 1)) * (float((r**2).sum()) - k * (k + 1) ** 2 / 4)
    return chi2, chi2_sf(chi2, k - 1)


@lru_cache(maxsize=128)
def studentized_range_q(k: int, alpha: float = 0.05) -> float:
    """Upper ``alpha`` quantile of the range of ``k`` standard normals, divided by sqrt(2).

    This is Demšar's :math:`q_\\alpha` for the Nemenyi test (infinite degrees
    of freedom), e.g. 2.343 for k = 3 and 3.164 for k = 10 at alpha = 0.05.
    """
    if k < 2:
        raise ValueError("k must be >= 2")
    z = np.linspace(-9, 9, 6001)
    dz = z[1] - z[0]
    pdf = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = np.array([_norm_cdf(v) for v in z])

    def range_cdf(w: float) -> float:
        shifted = np.interp(z - w, z, cdf, left=0.0, right=1.0)
        return float(k * np.sum(pdf * (cdf - shifted) ** (k - 1)) * dz)

    lo, hi = 0.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if range_cdf(mid) < 1 - alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2 / math.sqrt(2)


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference for ``k`` methods over ``n`` tasks (Demšar 2006, eq. 5)."""
    return studentized_range_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))
