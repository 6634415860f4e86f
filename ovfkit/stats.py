"""Comparing ROC AUCs: DeLong's test (fast algorithm), its omnibus form, CIs, multi-class comparisons.

DeLong, DeLong and Clarke-Pearson (1988) estimate the covariance of correlated AUCs from the
"structural components" of the Mann-Whitney statistic. Sun and Xu (2014) compute them from mid-ranks
in O(n log n): for ``m`` positive and ``n`` negative cases and each score,

* ``tz``: mid-ranks of all ``m + n`` scores; ``tx``: mid-ranks of the positives among themselves;
  ``ty``: of the negatives among themselves (ties share the average rank);
* ``AUC = (sum(tz[positives]) / m - (m + 1) / 2) / n``;
* ``V10 = (tz[positives] - tx) / n`` and ``V01 = 1 - (tz[negatives] - ty) / m``;
* ``S = cov(V10) / m + cov(V01) / n`` (sample covariances across cases, one row per score).

A paired difference ``a - b`` then has variance ``S_aa + S_bb - 2 S_ab``; ``z = diff / se`` and the
two-sided p-value is ``2 * (1 - Phi(|z|))`` (a probability, never its logarithm). Ties count one half,
as in the Mann-Whitney statistic. Confidence intervals are Wald intervals, clipped to [0, 1] for an
AUC and to [-1, 1] for a difference.

The placements are read off one sort per score: in sorted order, ``V10`` of a positive is the share of
negatives below it plus half the negatives tied with it, ``V01`` of a negative the share of positives above it
plus half those tied (the same numbers as the mid-rank formulas, without ranking each group apart).

**Clustered cases** (``groups``: a patient's vertebrae). Obuchowski (1997, "Nonparametric analysis of clustered
ROC curve data", Biometrics 53:567-578) sums the placements per cluster: with ``I`` clusters, of which ``I10``
hold at least one positive and ``I01`` at least one negative, cluster ``i`` holding ``m_i`` positives and ``n_i``
negatives (``M``, ``N`` in all), ``A_i = sum V10 - m_i AUC`` and ``B_i = sum V01 - n_i AUC`` (one entry per score),

* ``S10 = I10 / ((I10 - 1) M) sum_i A_i A_i'``, ``S01 = I01 / ((I01 - 1) N) sum_i B_i B_i'``,
  ``S11 = I / (I - 1) sum_i A_i B_i'``;
* ``cov = S10 / M + S01 / N + (S11 + S11') / (M N)``.

A cluster may hold positives, negatives or both. With one case per cluster ``S11 = 0``, ``I10 = M``,
``I01 = N``, and the estimate is DeLong's exactly. The clustered form needs positives in at least two clusters
and negatives in at least two (with all positives in one patient, their term would vanish).

Conventions where the variance is degenerate: fewer than two positive or two negative cases leave the
structural-component covariance undefined, and the functions refuse with a message; a zero variance
(for example two identical scores) gives ``z = 0, p = 1`` when the AUCs are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from ovfkit import metrics


@dataclass(frozen=True)
class DeLongResult:
    """Result of a DeLong comparison of two AUCs (``diff`` = a minus b)."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p: float
    ci: tuple
    paired: bool = True

    def as_dict(self) -> dict:
        return {"auc_a": self.auc_a, "auc_b": self.auc_b, "diff": self.diff, "se": self.se, "z": self.z,
                "p": self.p, "ci_low": self.ci[0], "ci_high": self.ci[1]}


def _binary(y_true, scores, what="y_true"):
    y = np.asarray(y_true)
    S = np.atleast_2d(np.asarray(scores, dtype=float))
    if S.shape[1] != len(y):
        raise ValueError(f"{what} has {len(y)} cases but a score has {S.shape[1]}; pass scores of the same cases")
    labels = np.unique(y)
    if len(labels) != 2:
        raise ValueError(f"{what} must hold exactly two classes (positive = the larger), got {labels.tolist()}")
    if not np.all(np.isfinite(S)):
        raise ValueError("scores contain NaN or infinite values; drop those cases first")
    pos = y == labels[1]
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 positive and 2 negative cases (got {m} and {n})")
    return pos, S


def _placements(S: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Placement values of every case for every score, from one sort per score.

    Returns an array of the shape of ``S``: ``V10`` (share of negatives below, ties half) at the positives,
    ``V01`` (share of positives above, ties half) at the negatives.
    """
    n_all = S.shape[1]
    m = int(pos.sum())
    n = n_all - m
    out = np.empty_like(S)
    starts = np.empty(n_all, dtype=bool)
    starts[0] = True
    for row, x in enumerate(S):
        order = np.argsort(x)  # the order within a group of ties does not matter
        v = x[order]
        np.not_equal(v[1:], v[:-1], out=starts[1:])
        first = np.flatnonzero(starts)  # each group of tied scores, in ascending order
        group = np.cumsum(starts) - 1
        p = pos[order]
        pos_tied = np.add.reduceat(p.astype(np.int64), first)
        pos_before = np.cumsum(pos_tied) - pos_tied
        neg_tied = np.diff(first, append=n_all) - pos_tied
        neg_before = first - pos_before
        v10 = (neg_before + 0.5 * neg_tied) / n
        v01 = (m - pos_before - 0.5 * pos_tied) / m
        out[row, order] = np.where(p, v10[group], v01[group])
    return out


def _cluster_ids(groups, n_cases: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.shape != (n_cases,):
        raise ValueError(f"groups has shape {g.shape} but there are {n_cases} cases; pass one cluster id "
                         "(the patient) per case")
    if pd.isna(g).any():
        raise ValueError("groups contain missing values; give every case its patient id")
    return np.unique(g, return_inverse=True)[1].ravel()


def testable(y_true, groups=None) -> bool:
    """Whether a DeLong variance exists for these cases: at least 2 positives and 2 negatives (the larger
    label positive) and, with ``groups``, positives in at least 2 clusters and negatives in at least 2."""
    y = np.asarray(y_true)
    labels = np.unique(y)
    if len(labels) != 2:
        return False
    pos = y == labels[1]
    if min(pos.sum(), (~pos).sum()) < 2:
        return False
    if groups is None:
        return True
    g = np.asarray(groups)
    return min(len(np.unique(g[pos])), len(np.unique(g[~pos]))) >= 2


def delong_components(y_true, scores, groups=None):
    """AUCs and their DeLong covariance for one or more scores on the same cases (Sun and Xu, 2014).

    Parameters
    ----------
    y_true : array-like, shape (n_cases,)
        Two classes; the larger label is positive.
    scores : array-like, shape (k, n_cases) or (n_cases,)
        Higher score = more likely positive.
    groups : array-like, shape (n_cases,), optional
        Cluster of each case (the patient of each vertebra). Given, the covariance is Obuchowski's (1997)
        clustered estimate, which lets cases of one cluster be correlated; absent, cases are independent.

    Returns
    -------
    auc : ndarray, shape (k,)
    cov : ndarray, shape (k, k)
    """
    pos, S = _binary(y_true, scores)
    V = _placements(S, pos)
    v10, v01 = V[:, pos], V[:, ~pos]
    m, n = v10.shape[1], v01.shape[1]
    auc = v10.mean(axis=1)
    if groups is None:
        cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
        return auc, cov
    ids = _cluster_ids(groups, len(pos))
    I = int(ids.max()) + 1
    m_i = np.bincount(ids[pos], minlength=I)
    n_i = np.bincount(ids[~pos], minlength=I)
    i10, i01 = int((m_i > 0).sum()), int((n_i > 0).sum())
    if i10 < 2 or i01 < 2:
        raise ValueError(f"the clustered variance needs positives in at least 2 clusters and negatives in at least 2 "
                         f"(got {i10} and {i01}); with fewer, the patients cannot show how the AUC varies")
    A = np.stack([np.bincount(ids[pos], weights=row, minlength=I) for row in v10]) - np.outer(auc, m_i)
    B = np.stack([np.bincount(ids[~pos], weights=row, minlength=I) for row in v01]) - np.outer(auc, n_i)
    s10 = i10 / (i10 - 1) * (A @ A.T) / m
    s01 = i01 / (i01 - 1) * (B @ B.T) / n
    s11 = I / (I - 1) * (A @ B.T)
    return auc, s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def _z_test(diff: float, var: float, alpha: float, bound: float):
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0.0:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    else:
        z = diff / se
    p = float(2 * norm.sf(abs(z)))
    q = norm.ppf(1 - alpha / 2)
    ci = (float(max(diff - q * se, -bound)), float(min(diff + q * se, bound)))
    return se, float(z), p, ci


def delong_test(y_true, score_a, score_b, alpha: float = 0.05, *, groups=None) -> DeLongResult:
    """Paired DeLong test of two scores on the same cases.

    Parameters
    ----------
    y_true : array-like, shape (n,)
    score_a, score_b : array-like, shape (n,)
    alpha : float
        1 - confidence level of ``ci``, the interval of ``auc_a - auc_b``.
    groups : array-like, shape (n,), optional
        Patient of each case: the clustered variance (Obuchowski 1997; see the module's notes).
    """
    if len(np.asarray(score_a)) != len(np.asarray(score_b)):
        raise ValueError(f"score_a has {len(np.asarray(score_a))} cases and score_b {len(np.asarray(score_b))}; "
                         "a paired test needs both scores on the same cases (use delong_test_unpaired otherwise)")
    auc, cov = delong_components(y_true, np.vstack([score_a, score_b]), groups)
    diff = float(auc[0] - auc[1])
    se, z, p, ci = _z_test(diff, cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], alpha, 1.0)
    return DeLongResult(float(auc[0]), float(auc[1]), diff, se, z, p, ci, True)


def delong_test_unpaired(y_a, score_a, y_b, score_b, alpha: float = 0.05) -> DeLongResult:
    """DeLong test of two AUCs measured on different (independent) case sets: variances add."""
    auc_a, var_a = delong_components(y_a, score_a)
    auc_b, var_b = delong_components(y_b, score_b)
    diff = float(auc_a[0] - auc_b[0])
    se, z, p, ci = _z_test(diff, float(var_a[0, 0] + var_b[0, 0]), alpha, 1.0)
    return DeLongResult(float(auc_a[0]), float(auc_b[0]), diff, se, z, p, ci, False)


def delong_omnibus(y_true, scores, *, groups=None) -> dict:
    """Test that k correlated AUCs are all equal (DeLong 1988, contrast form).

    With ``L`` the (k-1) x k matrix of successive differences, ``chi2 = (L auc)' (L S L')^+ (L auc)``
    on ``rank(L S L')`` degrees of freedom (k - 1 unless scores are collinear).

    Parameters
    ----------
    y_true : array-like, shape (n,)
    scores : array-like, shape (k, n) or dict name -> scores
    groups : array-like, shape (n,), optional
        Patient of each case: the clustered covariance (Obuchowski 1997).

    Returns
    -------
    dict with ``auc`` (per score), ``chi2``, ``df``, ``p``.
    """
    names = list(scores) if isinstance(scores, dict) else None
    S = np.vstack([scores[k] for k in names]) if names else np.atleast_2d(np.asarray(scores, dtype=float))
    k = S.shape[0]
    if k < 2:
        raise ValueError("the omnibus test needs at least two scores")
    auc, cov = delong_components(y_true, S, groups)
    L = np.eye(k)[:-1] - np.eye(k, k=1)[:-1]
    d = L @ auc
    V = L @ cov @ L.T
    df = int(np.linalg.matrix_rank(V))
    stat = float(d @ np.linalg.pinv(V) @ d) if df else 0.0
    return {"auc": dict(zip(names, auc)) if names else auc, "chi2": stat, "df": df,
            "p": float(chi2.sf(stat, df)) if df else 1.0}


def auc_ci(y_true, score, alpha: float = 0.05, method: str = "delong", *, groups=None, n_boot: int = 2000,
           seed: int = 0) -> tuple[float, float, float]:
    """AUC and its confidence interval: ``(auc, low, high)``.

    Parameters
    ----------
    method : {"delong", "bootstrap"}
        ``delong``: Wald interval with DeLong's variance, clipped to [0, 1] (clustered by ``groups`` when
        given, Obuchowski 1997); ``bootstrap``: percentile interval over ``n_boot`` resamples of ``groups``
        (patients; each case its own group by default).
    """
    if method == "delong":
        auc, cov = delong_components(y_true, score, groups)
        _, _, _, ci = _z_test(float(auc[0]), float(cov[0, 0]), alpha, 1.0)
        return float(auc[0]), max(ci[0], 0.0), ci[1]
    if method != "bootstrap":
        raise ValueError(f"method={method!r} is not 'delong' or 'bootstrap'")
    pos, S = _binary(y_true, score)
    g = np.arange(len(pos)) if groups is None else np.asarray(groups)
    inv, blocks = metrics.patient_blocks(g, n_boot, seed, 250)
    boots = np.concatenate([metrics.weighted_auc(pos, S[0], counts, inv) for counts in blocks])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(metrics.weighted_auc(pos, S[0], np.ones((1, len(pos)), dtype=int))[0]), float(lo), float(hi)


def adjust(pvalues, method: str = "holm") -> np.ndarray:
    """Adjust a family of p-values: ``"holm"`` (family-wise error) or ``"fdr_bh"`` (Benjamini-Hochberg).

    NaN entries (comparisons that could not be made) stay NaN and do not count in the family.
    """
    from statsmodels.stats.multitest import multipletests

    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"method={method!r} is not 'holm' or 'fdr_bh'")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def per_class_delong(y_true, proba_a, proba_b, classes=metrics.CLASSES, alpha: float = 0.05, *,
                     groups=None) -> pd.DataFrame:
    """One-vs-rest paired DeLong test per class for two models' class probabilities on the same cases.

    ``groups`` (the patient of each case) makes each test's variance the clustered one (Obuchowski 1997).
    A class that :func:`testable` refuses (fewer than two cases or two others, or with ``groups`` fewer than two
    patients holding either) cannot be tested: its row holds NaN.
    Two classes: one row, the positive class (class 0's test is the same test).
    """
    y = np.asarray(y_true)
    pa, pb = np.asarray(proba_a, dtype=float), np.asarray(proba_b, dtype=float)
    rows = []
    for j, k in enumerate(classes):
        if len(classes) == 2 and j == 0:
            continue
        t = (y == k).astype(int)
        if not testable(t, groups):
            rows.append({"class": k, **dict.fromkeys(("auc_a", "auc_b", "diff", "se", "z", "p", "ci_low",
                                                      "ci_high"), np.nan)})
            continue
        r = delong_test(t, pa[:, j], pb[:, j], alpha, groups=groups)
        rows.append({"class": k, **r.as_dict()})
    return pd.DataFrame(rows)


def auc_difference(y_true, proba_a, proba_b, groups, *, n_boot: int = 2000, alpha: float = 0.05,
                   seed: int = 0, classes=metrics.CLASSES) -> dict:
    """Difference (a - b) of the task's headline AUC (:func:`ovfkit.metrics.auc_score`: macro for three
    classes, the positive class's for two) with a paired patient bootstrap: the same resamples score both.

    The two-sided p-value is the bootstrap's: twice the smaller share of resampled differences on either
    side of zero (at least 1 / n_valid).
    """
    y, pa = metrics.check_proba(y_true, proba_a, classes)
    _, pb = metrics.check_proba(y_true, proba_b, classes)
    da = metrics.bootstrap_auc(y, pa, groups, n_boot=n_boot, seed=seed, classes=classes)
    db = metrics.bootstrap_auc(y, pb, groups, n_boot=n_boot, seed=seed, classes=classes)
    d = (da - db)[np.isfinite(da - db)]
    diff = metrics.auc_score(y, pa, classes) - metrics.auc_score(y, pb, classes)
    if not len(d):
        return {"diff": diff, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "n_valid": 0}
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, max(2 * min((d <= 0).mean(), (d >= 0).mean()), 1.0 / len(d)))
    return {"diff": diff, "ci_low": float(lo), "ci_high": float(hi), "p": float(p), "n_valid": int(len(d))}


def ci_width_statement(tests: pd.DataFrame) -> str:
    """One Markdown sentence: how wide the 95% CIs of a table of AUC differences are (``ci_low``, ``ci_high``).

    Rows without a CI (a class too small to test) are counted and left out.
    """
    w = (tests["ci_high"] - tests["ci_low"]).astype(float)
    ok = w.dropna()
    if ok.empty:
        return "No difference in these tables could be given a confidence interval."
    missing = "" if len(ok) == len(w) else f" ({len(w) - len(ok)} more could not be tested)"
    return (f"The 95% CIs of the {len(ok)} AUC differences tested in this chapter{missing} are "
            f"{ok.min():.3f} to {ok.max():.3f} wide (median {ok.median():.3f}).")


def clustering_effect(y_true, scores: dict, groups) -> pd.DataFrame:
    """How much treating a patient's vertebrae as independent narrows DeLong's intervals.

    Parameters
    ----------
    y_true : array-like, shape (n,)
    scores : dict
        Name -> scores of the same n cases.
    groups : array-like, shape (n,)
        Patient of each case.

    Returns
    -------
    DataFrame, one row per score (its AUC) and per pair of scores (their difference): ``what``, ``estimate``,
    ``se_independent``, ``se_clustered`` and ``narrowing`` (1 - independent / clustered SE: the share by
    which the independent interval is too narrow; negative when clustering widens nothing).
    """
    names = list(scores)
    S = np.vstack([np.asarray(scores[k], dtype=float) for k in names])
    auc, cov_i = delong_components(y_true, S)
    _, cov_c = delong_components(y_true, S, groups)
    rows = []
    for i, a in enumerate(names):
        rows.append({"what": f"AUC {a}", "estimate": auc[i], "se_independent": np.sqrt(cov_i[i, i]),
                     "se_clustered": np.sqrt(cov_c[i, i])})
    for i, j in ((i, j) for i in range(len(names)) for j in range(i + 1, len(names))):
        d = np.array([1.0 if k == i else -1.0 if k == j else 0.0 for k in range(len(names))])
        rows.append({"what": f"{names[i]} - {names[j]}", "estimate": auc[i] - auc[j],
                     "se_independent": np.sqrt(max(d @ cov_i @ d, 0.0)), "se_clustered": np.sqrt(max(d @ cov_c @ d, 0.0))})
    out = pd.DataFrame(rows)
    out["narrowing"] = 1 - out["se_independent"] / out["se_clustered"]
    return out
