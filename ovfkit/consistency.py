"""Checks of reported statistics: can the numbers a paper prints be true together?

Each check takes numbers as the paper prints them and says whether some set of exact values, each within
the rounding of its printed digits, satisfies the relation the check states (``consistent``), whether none
does (``inconsistent``), or whether the check cannot decide (``not checkable``, with the reason). A
printed ``0.946`` stands for any value in [0.9455, 0.9465]; ``87.5%`` for [0.8745, 0.8755].

The checks (:data:`CHECKS`), each named for the relation it tests:

* ``p_range``: a p-value lies in [0, 1].
* ``ci_contains``: an interval holds its estimate, and its lower end is not above its upper end.
* ``wald_ci_symmetric``: a Wald interval (DeLong's for an AUC, for example) is symmetric about its estimate,
  unless clipped at a bound of the scale.
* ``ci_vs_p``: an interval excludes the null value exactly when the test's p is below 0.05 (the interval and
  the test from the same standard error).
* ``paired_auc_p``: two AUCs of the same cases with their 95% Wald intervals bound the paired DeLong p from
  above whenever the two AUCs are not negatively correlated (the usual case on the same cases):
  ``var(a - b) = var a + var b - 2 cov <= var a + var b``, so ``p <= 2 Phi(-|a - b| / sqrt(var a + var b))``.
  Intervals that do not overlap therefore mean ``p < 0.05``.
* ``counts_sum``: parts add up to the total.
* ``percent``: a percentage is ``count / n``.
* ``proportion_of_n``: a proportion (sensitivity, accuracy, ...) is ``k / n`` for a whole ``k``.
* ``grim``: a mean of ``n`` whole numbers (age in years, for example) is ``S / n`` for a whole ``S``
  (Brown and Heathers 2017).
* ``grimmer``: the SD of ``n`` whole numbers with that mean is possible (Anaya 2016): the sum of squares
  ``(n - 1) SD^2 + n mean^2`` is a whole number of the parity of the sum.
* ``sd_bounds``: an SD of ``n`` values confined to [lower, upper] with that mean is at most
  ``sqrt(n / (n - 1) (upper - mean) (mean - lower))``.
* ``accuracy``: accuracy is ``(sens n_pos + spec n_neg) / (n_pos + n_neg)``.
* ``auc_bounds``: an ROC curve through the operating point (1 - spec, sens) has
  ``sens spec <= AUC <= 1 - (1 - sens)(1 - spec)`` (the curve is monotone).
* ``f1``: F1 is the harmonic mean of precision and recall.
* ``ppv``: the positive predictive value is ``sens n_pos / (sens n_pos + (1 - spec) n_neg)``.
* ``f1_of_averages``: a mean of per-fold F1 scores is at most the F1 of the mean precision and recall.
* ``two_sample_p``: a two-sample t test's p (Student or Welch) from the printed means, SDs and sizes.
* ``two_by_two_p``: a 2 x 2 table's p (chi-square with or without Yates' correction, or Fisher's exact test).
* ``pooled_mean``: two groups' means pool to the overall mean.
* ``values_mean_sd``: a mean and SD recomputed from the printed values (the SD with divisor n - 1).

:func:`check` runs one check; :func:`check_table` runs a table of them, one row each, as kept in
``ovfkit/data/reported_checks.csv`` for the seed papers (:func:`paper_checks`).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

DATA = Path(__file__).parent / "data"
CONSISTENT, INCONSISTENT, UNCHECKABLE = "consistent", "inconsistent", "not checkable"
#: the outcome of an inconsistent row whose ``premise`` (how the paper computed the numbers) is an assumption
CONDITIONAL = "inconsistent if the premise holds"
Z95 = norm.ppf(0.975)
_NUMBER = re.compile(r"^\s*([<>]?)\s*([+-]?)(\d*)(?:\.(\d*))?\s*(%?)\s*$")


@dataclass(frozen=True)
class Printed:
    """A number as printed: its value and the half-width of its rounding (both on the proportion scale
    when printed as a percentage); ``bound`` "<" or ">" for a number printed as a bound (``P<0.05``),
    which then stands for everything below (above) it."""

    text: str
    value: float
    half: float
    bound: str = ""

    @property
    def lo(self) -> float:
        return -math.inf if self.bound == "<" else self.value + 1e-12 if self.bound == ">" else self.value - self.half

    @property
    def hi(self) -> float:
        return math.inf if self.bound == ">" else self.value - 1e-12 if self.bound == "<" else self.value + self.half


def printed(text) -> Printed:
    """Parse a printed number: ``"0.946"`` -> 0.946 +- 0.0005, ``"87.5%"`` -> 0.875 +- 0.0005, ``"12"`` -> 12 +- 0.5,
    ``"<0.05"`` -> anything below 0.05.

    Raises
    ------
    ValueError
        When ``text`` is not a plain decimal number (optionally ending in ``%``).
    """
    if isinstance(text, (int, np.integer)):
        text = str(int(text))
    elif not isinstance(text, str):
        raise TypeError(f"a printed number must be given as text (its digits carry its rounding), got {text!r}")
    m = _NUMBER.match(text)
    if not m or not (m.group(3) or m.group(4)):
        raise ValueError(f"{text!r} is not a printed number; write it as the paper prints it, e.g. 0.946 or 87.5%")
    bound, sign, whole, frac, pct = m.groups()
    decimals = len(frac or "")
    value = float(f"{sign}{whole or '0'}.{frac or '0'}")
    half = 0.5 * 10.0 ** -decimals
    if pct:
        value, half = value / 100.0, half / 100.0
    return Printed(text.strip(), value, half, bound)


@dataclass(frozen=True)
class Outcome:
    """What a check found: ``status`` (consistent, inconsistent, not checkable) and ``detail`` in words."""

    status: str
    detail: str


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _whole(p: Printed, name: str) -> int:
    if p.half < 0.5 or p.value != int(p.value):
        raise ValueError(f"{name}={p.text} must be a whole number (a count)")
    return int(p.value)


def p_range(p: Printed) -> Outcome:
    if 0.0 <= p.value <= 1.0 and not (p.bound == ">" and p.value == 1.0):
        return Outcome(CONSISTENT, f"p = {p.text} lies in [0, 1]")
    return Outcome(INCONSISTENT, f"p = {p.text} lies outside [0, 1]; no test gives it (a statistic printed as p?)")


def ci_contains(estimate: Printed, low: Printed, high: Printed) -> Outcome:
    if low.lo > high.hi:
        return Outcome(INCONSISTENT, f"the interval's lower end {low.text} is above its upper end {high.text}")
    if low.lo <= estimate.hi and estimate.lo <= high.hi:  # some values that round to these agree
        return Outcome(CONSISTENT, f"{estimate.text} lies in [{low.text}, {high.text}]")
    return Outcome(INCONSISTENT, f"{estimate.text} lies outside its own interval [{low.text}, {high.text}]")


def wald_ci_symmetric(estimate: Printed, low: Printed, high: Printed, lower: Printed | None = None,
                      upper: Printed | None = None) -> Outcome:
    lower_v = lower.value if lower else -math.inf
    upper_v = upper.value if upper else math.inf
    if low.value <= lower_v or high.value >= upper_v:
        return Outcome(UNCHECKABLE, "the interval is clipped at a bound of the scale, where a Wald interval loses symmetry")
    below, above = estimate.value - low.value, high.value - estimate.value
    slack = low.half + high.half + 2 * estimate.half
    if abs(above - below) <= slack + 1e-12:
        return Outcome(CONSISTENT, f"arms {_fmt(below)} below and {_fmt(above)} above agree within rounding")
    return Outcome(INCONSISTENT, f"arms {_fmt(below)} below and {_fmt(above)} above differ by more than rounding "
                                 f"allows ({_fmt(slack)}); a Wald interval is symmetric")


def ci_vs_p(estimate: Printed, low: Printed, high: Printed, p: Printed, null: Printed | None = None) -> Outcome:
    """``null`` 0 by default (a difference); ``null=1`` for an odds or hazard ratio, read on the log scale."""
    null_v = null.value if null else 0.0
    excludes_surely = low.lo > null_v or high.hi < null_v
    includes_surely = low.hi < null_v < high.lo
    if not (excludes_surely or includes_surely):
        return Outcome(UNCHECKABLE, f"the null value {_fmt(null_v)} sits on a bound of the interval within rounding")
    tr = math.log if null_v == 1.0 else (lambda x: x)
    try:
        se = (tr(high.value) - tr(low.value)) / (2 * Z95)
        implied = float(2 * norm.sf(abs(tr(estimate.value) - tr(null_v)) / se)) if se > 0 else 0.0
    except ValueError:
        implied = float("nan")
    said = f"(the interval implies p about {implied:.2g})" if np.isfinite(implied) else ""
    if excludes_surely and p.lo >= 0.05:
        return Outcome(INCONSISTENT, f"the 95% interval excludes {_fmt(null_v)} but p = {p.text} {said}".strip())
    if includes_surely and p.hi < 0.05:
        return Outcome(INCONSISTENT, f"the 95% interval includes {_fmt(null_v)} but p = {p.text} {said}".strip())
    return Outcome(CONSISTENT, f"interval and p = {p.text} agree on significance at 0.05 {said}".strip())


def paired_auc_p(auc_a: Printed, low_a: Printed, high_a: Printed, auc_b: Printed, low_b: Printed,
                 high_b: Printed, p: Printed) -> Outcome:
    """The SEs are read off the intervals as Wald intervals (width / 3.92); an interval clipped at 0 or 1
    cannot be read so. A p printed as a bound below (``<0.05``) is never inconsistent here: a strong
    positive correlation can make any difference significant."""
    if min(low_a.value, low_b.value) <= 0 or max(high_a.value, high_b.value) >= 1:
        return Outcome(UNCHECKABLE, "an interval reaches 0 or 1, where it is no longer a Wald interval")
    diff = max(abs(auc_a.value - auc_b.value) - auc_a.half - auc_b.half, 0.0)
    se_a = (high_a.hi - low_a.lo) / (2 * Z95)
    se_b = (high_b.hi - low_b.lo) / (2 * Z95)
    if se_a <= 0 or se_b <= 0:
        return Outcome(UNCHECKABLE, "an interval has no width")
    p_max = float(2 * norm.sf(diff / math.hypot(se_a, se_b)))
    if p.lo > p_max:
        return Outcome(INCONSISTENT, f"p = {p.text}, but the two intervals bound the paired p by {p_max:.3g} unless "
                                     "the AUCs of the same cases are negatively correlated")
    return Outcome(CONSISTENT, f"p = {p.text} is at most the bound {p_max:.3g} from the two intervals")


def counts_sum(parts: str, total: Printed) -> Outcome:
    values = [printed(x) for x in str(parts).split("+")]
    counts = [_whole(v, "parts") for v in values]
    t = _whole(total, "total")
    if sum(counts) == t:
        return Outcome(CONSISTENT, f"{' + '.join(map(str, counts))} = {t}")
    return Outcome(INCONSISTENT, f"{' + '.join(map(str, counts))} = {sum(counts)}, not {t}")


def percent(count: Printed, n: Printed, percent: Printed) -> Outcome:
    c, total = _whole(count, "count"), _whole(n, "n")
    if total <= 0:
        return Outcome(UNCHECKABLE, "n is 0")
    exact = c / total
    if percent.lo - 1e-12 <= exact <= percent.hi + 1e-12:
        return Outcome(CONSISTENT, f"{c}/{total} = {100 * exact:.4g}%, printed {percent.text}")
    return Outcome(INCONSISTENT, f"{c}/{total} = {100 * exact:.4g}%, printed {percent.text}")


def proportion_of_n(value: Printed, n: Printed) -> Outcome:
    total = _whole(n, "n")
    if total <= 0:
        return Outcome(UNCHECKABLE, "n is 0")
    ks = range(max(0, math.floor(value.lo * total) - 1), min(total, math.ceil(value.hi * total) + 1) + 1)
    hits = [k for k in ks if value.lo - 1e-12 <= k / total <= value.hi + 1e-12]
    if hits:
        return Outcome(CONSISTENT, f"{value.text} = {hits[0]}/{total}" + (" (or more)" if len(hits) > 1 else ""))
    near = min(ks, key=lambda k: abs(k / total - value.value))
    return Outcome(INCONSISTENT, f"no k/{total} rounds to {value.text} (nearest {near}/{total} = {near / total:.4g})")


def _grim_sums(mean: Printed, total: int) -> list[int]:
    return [s for s in range(math.floor(mean.lo * total) - 1, math.ceil(mean.hi * total) + 2)
            if mean.lo - 1e-12 <= s / total <= mean.hi + 1e-12]


def grim(mean: Printed, n: Printed) -> Outcome:
    total = _whole(n, "n")
    if 2 * mean.half * total >= 1:
        return Outcome(UNCHECKABLE, f"with n = {total}, every mean printed to this precision is possible")
    sums = _grim_sums(mean, total)
    if sums:
        return Outcome(CONSISTENT, f"{mean.text} = {sums[0]}/{total}")
    return Outcome(INCONSISTENT, f"no whole-number sum over n = {total} gives a mean of {mean.text}")


def grimmer(mean: Printed, sd: Printed, n: Printed) -> Outcome:
    total = _whole(n, "n")
    if total < 2:
        return Outcome(UNCHECKABLE, "an SD needs n >= 2")
    sums = _grim_sums(mean, total)
    if not sums:
        return Outcome(INCONSISTENT, f"the mean {mean.text} is impossible for n = {total} (GRIM), so is the SD")
    for s in sums:
        m = s / total
        q_lo = (total - 1) * max(sd.lo, 0.0) ** 2 + total * m * m
        q_hi = (total - 1) * sd.hi ** 2 + total * m * m
        for q in range(math.ceil(q_lo - 1e-9), math.floor(q_hi + 1e-9) + 1):
            if (q - s) % 2 == 0:
                return Outcome(CONSISTENT, f"sum {s} and sum of squares {q} give mean {mean.text}, SD {sd.text}")
    return Outcome(INCONSISTENT, f"no {total} whole numbers have mean {mean.text} and SD {sd.text}")


def sd_bounds(mean: Printed, sd: Printed, n: Printed, lower: Printed, upper: Printed) -> Outcome:
    total = _whole(n, "n")
    if total < 2:
        return Outcome(UNCHECKABLE, "an SD needs n >= 2")
    if not (lower.value <= mean.hi and mean.lo <= upper.value):
        return Outcome(INCONSISTENT, f"the mean {mean.text} lies outside [{lower.text}, {upper.text}]")
    m = min(max((lower.value + upper.value) / 2, mean.lo), mean.hi)  # the mean in range that allows most spread
    s_max = math.sqrt(total / (total - 1) * (upper.value - m) * (m - lower.value))
    if sd.lo <= s_max + 1e-12:
        return Outcome(CONSISTENT, f"SD {sd.text} is at most {s_max:.3g}, the largest for {total} values in "
                                   f"[{lower.text}, {upper.text}] with mean {mean.text}")
    return Outcome(INCONSISTENT, f"SD {sd.text} exceeds {s_max:.3g}, the largest possible for {total} values in "
                                 f"[{lower.text}, {upper.text}] with mean {mean.text}")


def _overlap(lo: float, hi: float, target: Printed) -> bool:
    return lo - 1e-12 <= target.hi and target.lo <= hi + 1e-12


def _within(lo: float, hi: float, target: Printed, consistent: str, inconsistent: str) -> Outcome:
    """Consistent (with the first message) when ``target``'s rounding meets [lo, hi], else inconsistent."""
    if _overlap(lo, hi, target):
        return Outcome(CONSISTENT, consistent)
    return Outcome(INCONSISTENT, inconsistent)


def _weighted(a: Printed, wa: int, b: Printed, wb: int) -> tuple[float, float]:
    """The range of ``(a wa + b wb) / (wa + wb)`` over the rounding of ``a`` and ``b``."""
    return (a.lo * wa + b.lo * wb) / (wa + wb), (a.hi * wa + b.hi * wb) / (wa + wb)


def accuracy(sens: Printed, spec: Printed, accuracy: Printed, n_pos: Printed, n_neg: Printed) -> Outcome:
    P, N = _whole(n_pos, "n_pos"), _whole(n_neg, "n_neg")
    lo, hi = _weighted(sens, P, spec, N)
    return _within(lo, hi, accuracy,
                   f"sensitivity and specificity give accuracy {lo:.4g}-{hi:.4g}; printed {accuracy.text}",
                   f"sensitivity {sens.text} on {P} and specificity {spec.text} on {N} give accuracy "
                   f"{lo:.4g}-{hi:.4g}, not {accuracy.text}")


def auc_bounds(auc: Printed, sens: Printed, spec: Printed) -> Outcome:
    lo = sens.lo * spec.lo
    hi = 1 - (1 - sens.hi) * (1 - spec.hi)
    return _within(lo, hi, auc, f"an ROC curve through sensitivity {sens.text}, specificity {spec.text} has an "
                                   f"AUC in [{lo:.3f}, {hi:.3f}]; printed {auc.text}",
                   f"no ROC curve through sensitivity {sens.text}, specificity {spec.text} has "
                   f"AUC {auc.text}: it must lie in [{lo:.3f}, {hi:.3f}]")


def f1(f1: Printed, precision: Printed, recall: Printed) -> Outcome:
    def h(p, r):
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    lo, hi = h(max(precision.lo, 0), max(recall.lo, 0)), h(precision.hi, recall.hi)
    return _within(lo, hi, f1, f"precision {precision.text} and recall {recall.text} give F1 {lo:.4g}-{hi:.4g}",
                   f"precision {precision.text} and recall {recall.text} give F1 {lo:.4g}-{hi:.4g}, "
                   f"not {f1.text} (F1 is their harmonic mean)")


def ppv(ppv: Printed, sens: Printed, spec: Printed, n_pos: Printed, n_neg: Printed) -> Outcome:
    P, N = _whole(n_pos, "n_pos"), _whole(n_neg, "n_neg")

    def f(se, sp):
        tp, fp = se * P, (1 - sp) * N
        return tp / (tp + fp) if tp + fp > 0 else float("nan")

    lo, hi = f(sens.lo, spec.lo), f(sens.hi, spec.hi)
    return _within(lo, hi, ppv, f"sensitivity, specificity and the class sizes give PPV {lo:.4g}-{hi:.4g}",
                   f"sensitivity {sens.text}, specificity {spec.text} on {P} positive and {N} negative "
                   f"cases give PPV {lo:.4g}-{hi:.4g}, not {ppv.text}")


def f1_from_rates(f1: Printed, sens: Printed, spec: Printed, n_pos: Printed, n_neg: Printed) -> Outcome:
    """F1 = 2 TP / (2 TP + FP + FN) from sensitivity, specificity and the class sizes (TP = sens P,
    FP = (1 - spec) N, FN = (1 - sens) P); it grows with both rates, so the rounding box's corners bound it."""
    P, N = _whole(n_pos, "n_pos"), _whole(n_neg, "n_neg")

    def g(se, sp):
        tp = se * P
        return 2 * tp / (2 * tp + (1 - sp) * N + (1 - se) * P) if tp > 0 else 0.0

    lo, hi = g(max(sens.lo, 0), max(spec.lo, 0)), g(min(sens.hi, 1), min(spec.hi, 1))
    return _within(lo, hi, f1, f"sensitivity, specificity and the class sizes give F1 {lo:.4g}-{hi:.4g}",
                   f"sensitivity {sens.text}, specificity {spec.text} on {P} positive and {N} negative cases "
                   f"give F1 {lo:.4g}-{hi:.4g}, not {f1.text}")


def f1_of_averages(f1: Printed, precision: Printed, recall: Printed) -> Outcome:
    """Averages over folds: the harmonic mean is concave, so the mean of per-fold F1 scores is at most the
    harmonic mean of the mean precision and the mean recall (Jensen); it may be lower."""
    p, r = precision.hi, recall.hi
    ceiling = 2 * p * r / (p + r) if p + r > 0 else 0.0
    if f1.lo <= ceiling + 1e-12:
        return Outcome(CONSISTENT, f"mean F1 {f1.text} is at most {ceiling:.4g}, the F1 of the mean precision and recall")
    return Outcome(INCONSISTENT, f"mean F1 {f1.text} exceeds {ceiling:.4g}, the most that folds with mean precision "
                                 f"{precision.text} and mean recall {recall.text} allow")


def _t_p(m1, s1, n1, m2, s2, n2, welch: bool) -> float:
    from scipy.stats import ttest_ind_from_stats

    return float(ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=not welch).pvalue)


def two_sample_p(mean_a: Printed, sd_a: Printed, n_a: Printed, mean_b: Printed, sd_b: Printed, n_b: Printed,
                 p: Printed) -> Outcome:
    """The p of a two-sample t test (Student's or Welch's) from the printed means, SDs and group sizes, at the
    corners of the rounding box (p grows as the means approach and the SDs grow; Welch's degrees of freedom
    move a little with the SDs, so the corners are near-bounds, not exact ones)."""
    na, nb = _whole(n_a, "n_a"), _whole(n_b, "n_b")
    gap_lo = max(abs(mean_a.value - mean_b.value) - mean_a.half - mean_b.half, 0.0)
    gap_hi = abs(mean_a.value - mean_b.value) + mean_a.half + mean_b.half
    lows, highs = [], []
    for welch in (False, True):
        lows.append(_t_p(gap_hi, max(sd_a.lo, 1e-12), na, 0.0, max(sd_b.lo, 1e-12), nb, welch))
        highs.append(_t_p(gap_lo, sd_a.hi, na, 0.0, sd_b.hi, nb, welch))
    lo, hi = min(lows), max(highs)
    return _within(lo, hi, p, f"a t test on these means and SDs gives p {lo:.3g}-{hi:.3g}; printed {p.text}",
                   f"a t test (Student or Welch) on these means and SDs gives p {lo:.3g}-{hi:.3g}, not "
                   f"{p.text} (a rank test could differ, but rarely by so much)")


def two_by_two_p(a1: Printed, a2: Printed, b1: Printed, b2: Printed, p: Printed) -> Outcome:
    """The p of a test of a 2 x 2 table (group a: a1 and a2 in the two categories; group b: b1, b2): Pearson's
    chi-square with and without Yates' correction, and Fisher's exact test."""
    from scipy.stats import chi2_contingency, fisher_exact

    table = np.array([[_whole(a1, "a1"), _whole(a2, "a2")], [_whole(b1, "b1"), _whole(b2, "b2")]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return Outcome(UNCHECKABLE, "a row or column of the table is empty")
    ps = {"chi-square": chi2_contingency(table, correction=False)[1],
          "chi-square with Yates' correction": chi2_contingency(table, correction=True)[1],
          "Fisher's exact test": fisher_exact(table)[1]}
    tol = 1e-9
    match = [k for k, v in ps.items() if p.lo - tol <= v <= p.hi + tol]
    said = ", ".join(f"{k} {v:.3g}" for k, v in ps.items())
    if match:
        return Outcome(CONSISTENT, f"{match[0]} gives p = {ps[match[0]]:.3g}, printed {p.text}")
    return Outcome(INCONSISTENT, f"the table {table.tolist()} gives {said}; printed {p.text}")


def pooled_mean(mean_a: Printed, n_a: Printed, mean_b: Printed, n_b: Printed, mean: Printed) -> Outcome:
    na, nb = _whole(n_a, "n_a"), _whole(n_b, "n_b")
    lo, hi = _weighted(mean_a, na, mean_b, nb)
    return _within(lo, hi, mean, f"the groups pool to {lo:.4g}-{hi:.4g}; printed {mean.text}",
                   f"means {mean_a.text} (n = {na}) and {mean_b.text} (n = {nb}) pool to "
                   f"{lo:.4g}-{hi:.4g}, not {mean.text}")


def values_mean_sd(values: str, mean: Printed, sd: Printed) -> Outcome:
    """Mean and SD recomputed from the printed values (per fold, say): the mean within rounding, the SD as
    the sample SD (n - 1), else said when only the population SD (n) matches."""
    xs = [printed(v) for v in str(values).split("+")]
    x = np.array([v.value for v in xs])
    k = len(x)
    # each value moves within its own rounding: the mean by at most the mean half-width, the SD by at most
    # sqrt(k / (k - 1)) times the largest (the SD is 1-Lipschitz in the values' Euclidean norm / sqrt(k - 1))
    m_slack = float(np.mean([v.half for v in xs]))
    s_slack = math.sqrt(k / (k - 1)) * max(v.half for v in xs) if k > 1 else 0.0
    m, sample, population = x.mean(), x.std(ddof=1), x.std(ddof=0)
    problems = []
    if not (mean.lo - m_slack <= m <= mean.hi + m_slack):
        problems.append(f"the {len(x)} values average {m:.4g}, not {mean.text}")
    if not (sd.lo - s_slack <= sample <= sd.hi + s_slack):
        if sd.lo - s_slack <= population <= sd.hi + s_slack:
            problems.append(f"SD {sd.text} is the population SD ({population:.4g}, divisor n) of the values; their "
                            f"sample SD is {sample:.4g}")
        else:
            problems.append(f"the values give SD {sample:.4g} (sample) or {population:.4g} (population), not {sd.text}")
    if problems:
        return Outcome(INCONSISTENT, "; ".join(problems))
    return Outcome(CONSISTENT, f"the values give mean {m:.4g} and sample SD {sample:.4g}")


def paired_t_p(values_a: str, values_b: str, p: Printed) -> Outcome:
    """The two-sided p of a paired t test of the printed pairs (``values_a`` and ``values_b``: the same items in
    the same order, joined by ``+``). Each difference moves within the rounding of its two values; the smallest and
    largest p over that box (bounded numerical search of |t| from the box's centre and corners) are compared with the
    printed p."""
    from scipy.optimize import minimize
    from scipy.stats import t as t_dist

    a = [printed(v) for v in str(values_a).split("+")]
    b = [printed(v) for v in str(values_b).split("+")]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_t_p needs two lists of the same length >= 2 joined by '+'; got {len(a)} and {len(b)}")
    n = len(a)
    lo = np.array([x.lo - y.hi for x, y in zip(a, b)])
    hi = np.array([x.hi - y.lo for x, y in zip(a, b)])

    def abs_t(d):
        sd = np.std(d, ddof=1)
        return abs(np.mean(d)) * math.sqrt(n) / sd if sd > 1e-12 else (np.inf if abs(np.mean(d)) > 1e-12 else 0.0)

    starts = [(lo + hi) / 2] + [np.where(np.array(bits), hi, lo) for bits in itertools.product((0, 1), repeat=n)][:64]
    best_hi, best_lo = 0.0, np.inf
    for x0 in starts:
        for sign in (-1, 1):  # -1: the largest |t| (smallest p); +1: the smallest |t| (largest p)
            res = minimize(lambda d: sign * min(abs_t(d), 1e6), x0, bounds=list(zip(lo, hi)), method="L-BFGS-B")
            value = abs_t(np.clip(res.x, lo, hi))
            best_hi, best_lo = max(best_hi, value, abs_t(x0)), min(best_lo, value, abs_t(x0))
    p_min, p_max = (2 * t_dist.sf(v, n - 1) for v in (best_hi, best_lo))
    return _within(p_min, p_max, p, f"the paired differences give p {p_min:.3g}-{p_max:.3g} (paired t, {n - 1} df)",
                   f"the {n} paired differences give p {p_min:.3g}-{p_max:.3g} by a paired t test, not {p.text}")


#: check name -> (function, required inputs, optional inputs)
CHECKS = {
    "p_range": (p_range, ("p",), ()),
    "ci_contains": (ci_contains, ("estimate", "low", "high"), ()),
    "wald_ci_symmetric": (wald_ci_symmetric, ("estimate", "low", "high"), ("lower", "upper")),
    "ci_vs_p": (ci_vs_p, ("estimate", "low", "high", "p"), ("null",)),
    "paired_auc_p": (paired_auc_p, ("auc_a", "low_a", "high_a", "auc_b", "low_b", "high_b", "p"), ()),
    "counts_sum": (counts_sum, ("parts", "total"), ()),
    "percent": (percent, ("count", "n", "percent"), ()),
    "proportion_of_n": (proportion_of_n, ("value", "n"), ()),
    "grim": (grim, ("mean", "n"), ()),
    "grimmer": (grimmer, ("mean", "sd", "n"), ()),
    "sd_bounds": (sd_bounds, ("mean", "sd", "n", "lower", "upper"), ()),
    "accuracy": (accuracy, ("sens", "spec", "accuracy", "n_pos", "n_neg"), ()),
    "auc_bounds": (auc_bounds, ("auc", "sens", "spec"), ()),
    "f1": (f1, ("f1", "precision", "recall"), ()),
    "ppv": (ppv, ("ppv", "sens", "spec", "n_pos", "n_neg"), ()),
    "f1_of_averages": (f1_of_averages, ("f1", "precision", "recall"), ()),
    "f1_from_rates": (f1_from_rates, ("f1", "sens", "spec", "n_pos", "n_neg"), ()),
    "two_sample_p": (two_sample_p, ("mean_a", "sd_a", "n_a", "mean_b", "sd_b", "n_b", "p"), ()),
    "two_by_two_p": (two_by_two_p, ("a1", "a2", "b1", "b2", "p"), ()),
    "pooled_mean": (pooled_mean, ("mean_a", "n_a", "mean_b", "n_b", "mean"), ()),
    "values_mean_sd": (values_mean_sd, ("values", "mean", "sd"), ()),
    "paired_t_p": (paired_t_p, ("values_a", "values_b", "p"), ()),
}


def parse_inputs(text: str, where: str = "inputs") -> dict:
    """``"auc=0.946; low=0.908; high=0.984"`` -> {name: text}. ``where`` names the row in errors."""
    out = {}
    for item in filter(None, (x.strip() for x in str(text).split(";"))):
        if "=" not in item:
            raise ValueError(f"{where}: {item!r} is not name=value; separate inputs with ';'")
        k, v = (s.strip() for s in item.split("=", 1))
        if k in out:
            raise ValueError(f"{where}: input {k!r} is given twice")
        out[k] = v
    return out


def check(name: str, inputs: dict, where: str = "check") -> Outcome:
    """Run the check ``name`` on printed inputs (name -> the number as printed, as text).

    Raises
    ------
    ValueError
        For an unknown check, a missing or unknown input, or an input that is not a printed number; the
        message starts with ``where``.
    """
    if name not in CHECKS:
        raise ValueError(f"{where}: unknown check {name!r}; use one of {', '.join(CHECKS)}")
    fn, required, optional = CHECKS[name]
    missing = [k for k in required if k not in inputs]
    unknown = [k for k in inputs if k not in required + optional]
    if missing or unknown:
        raise ValueError(f"{where}: check {name!r} needs {', '.join(required)}"
                         + (f" (optional {', '.join(optional)})" if optional else "")
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    try:
        args = {k: (v if k in ("parts", "values", "values_a", "values_b") else printed(v)) for k, v in inputs.items()}
        return fn(**args)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def check_table(table: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Run every row's check: columns ``check`` and ``inputs`` (:func:`parse_inputs`) in, ``outcome`` and
    ``detail`` added. ``source`` names the table in errors (with the row's number, counting from 2 as a
    spreadsheet does with a header)."""
    missing = [c for c in ("check", "inputs") if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: columns {missing} are missing; each row needs a check and its inputs")
    outcomes = []
    premises = table["premise"] if "premise" in table.columns else pd.Series("", index=table.index)
    for (i, row), premise in zip(enumerate(table.itertuples(index=False), start=2), premises):
        where = f"{source}, row {i}"
        o = check(row.check, parse_inputs(row.inputs, where), where)
        if o.status == INCONSISTENT and str(premise).strip():
            o = Outcome(CONDITIONAL, f"{o.detail} (if {premise})")
        outcomes.append(o)
    return table.assign(outcome=[o.status for o in outcomes], detail=[o.detail for o in outcomes])


COLUMNS = ("paper", "source", "quote", "what", "check", "inputs", "premise")


def paper_checks(folder: str | Path | None = None) -> pd.DataFrame:
    """The seed papers' printed numbers, one CSV per paper in ``ovfkit/data/reported_checks/`` (columns
    :data:`COLUMNS`: the paper's key, where in it (table, section), a verbatim quote holding the numbers,
    what they are, the check, its inputs, and the premise the check rests on when the paper leaves it open,
    empty otherwise), each row with its check's outcome (:data:`CONDITIONAL` for an inconsistency that rests on
    a premise) and detail."""
    folder = Path(folder) if folder else DATA / "reported_checks"
    frames = []
    for path in sorted(folder.glob("*.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{path.name}: columns {missing} are missing; the columns are {', '.join(COLUMNS)}")
        frames.append(check_table(table[list(COLUMNS)], path.name))
    if not frames:
        raise ValueError(f"no CSV of reported numbers in {folder}")
    return pd.concat(frames, ignore_index=True)


def paper_text(path: str | Path) -> str:
    """A paper's text as quotes are matched against it: XML tags (JATS) removed, entities decoded, every
    run of whitespace one space."""
    import html

    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".xml":
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return normalize(text)


def normalize(text: str) -> str:
    """Whitespace runs to one space, typographic minus and dashes kept as printed."""
    return re.sub(r"\s+", " ", text).strip()
