"""Calibration and decision-threshold tools for a binary outcome.

Every function takes the outcome ``y`` (shape (n,), 0 = no event, 1 = event) and a predicted probability
of the event ``p`` (shape (n,), in [0, 1]) per case (vertebra). Where a confidence interval or band is
given it comes from the project's patient bootstrap (:func:`ovfkit.metrics.patient_blocks`): patients are
drawn with replacement, as many as there are, and a vertebra counts as often as its patient was drawn, so
correlated vertebrae of one patient stay together. Intervals are 2.5th-97.5th percentiles over the
resamples (95% percentile intervals); a resample in which a statistic is undefined (a zero denominator)
is left out of its percentiles.

Calibration is reported as three complementary pieces, as in the TRIPOD guidance:

* the calibration slope and calibration-in-the-large (:func:`calibration_slope_intercept`),
* the calibration curve with bootstrap bands (:func:`calibration_curve_ci`),
* the Hosmer-Lemeshow test (:func:`hosmer_lemeshow`), beside the two above and never instead of them,

and the overall accuracy of the probabilities by the Brier score (:func:`brier`). A probability is turned
into a decision by a threshold (a case is called positive when ``p >= threshold``): chosen on the
training (out-of-fold) predictions by :func:`youden_threshold`, described at that threshold by
:func:`threshold_metrics`, and judged across all thresholds by decision curves
(:func:`net_benefit_bands`, around :func:`ovfkit.clinical.decision_curve`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2
from sklearn.metrics import roc_curve

from ovfkit import clinical, metrics

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before their logit
ALPHA = 0.05  # 1 - confidence level of every interval here
DEFAULT_THRESHOLDS = np.round(np.arange(0.01, 0.81, 0.01), 2)  # as clinical.decision_curve


def _check_outcome(y) -> np.ndarray:
    """``y`` as a 1-D int array of 0/1; ``ValueError`` naming the problem if it is not one.

    Parameters
    ----------
    y : array-like of {0, 1} or bool, shape (n,)
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y must be 1-D with at least one case, got shape {y.shape}; pass one outcome per case")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"y holds {sorted(labels - {0, 1})}; code the outcome as 0 (no event) and 1 (event)")
    return y.astype(int)


def _check_proba(p, n: int, name: str = "p") -> np.ndarray:
    """``p`` as a float array of ``n`` probabilities; ``ValueError`` naming the problem if it is not.

    Parameters
    ----------
    p : array-like of float, shape (n,)
        Probabilities in [0, 1].
    n : int
        Number of cases (the length of ``y``).
    name : str
        What ``p`` is called in the messages (a model's name).
    """
    p = np.asarray(p, dtype=float)
    if p.shape != (n,):
        raise ValueError(f"y has {n} values but {name} has shape {p.shape}; pass one probability per case")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} value(s) outside [0, 1] or not finite (first: "
                         f"{p[bad][0]}); pass predicted probabilities, not scores or logits")
    return p


def _check_binary(y, p) -> tuple[np.ndarray, np.ndarray]:
    """``(y, p)`` checked by :func:`_check_outcome` and :func:`_check_proba`."""
    y = _check_outcome(y)
    return y, _check_proba(p, len(y))


def _require_both_classes(y: np.ndarray, what: str) -> None:
    """``ValueError`` if ``y`` holds events only or non-events only, which leaves ``what`` undefined."""
    if y.min() == y.max():
        raise ValueError(f"y has one class only (all {y[0]}, n={len(y)}); {what} needs events and non-events")


def _check_groups(groups_id, n: int) -> np.ndarray:
    """Patient of every case as an array; ``ValueError`` if its length is not ``n``."""
    g = np.asarray(groups_id)
    if g.shape != (n,):
        raise ValueError(f"groups_id has shape {g.shape} for {n} cases; pass the patient of every case")
    return g


def _logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of ``p`` clipped to [:data:`EPS`, 1 - :data:`EPS`] (a logit of at most 13.8 in size)."""
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q / (1 - q))


def calibration_slope_intercept(y, p, *, groups=None) -> dict:
    """Calibration slope and calibration-in-the-large, with Wald 95% confidence intervals.

    The slope is ``b`` of the logistic regression ``logit P(y=1) = a + b * logit(p)`` (statsmodels
    ``Logit``): 1 if the predictions are as spread as the outcomes warrant, below 1 if they are too
    extreme (over-fitting, overconfidence), above 1 if too modest. The intercept (calibration-in-the-large)
    is ``a`` of ``logit P(y=1) = a + logit(p)``, the slope fixed at 1 by an offset (statsmodels ``GLM``,
    binomial family): 0 if the mean prediction matches the event rate, negative if risks are
    over-estimated, positive if under-estimated. ``p`` is clipped to [1e-6, 1 - 1e-6] before its logit.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
        Observed outcome; both classes must occur.
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1]; not all equal.
    groups : array-like, shape (n,), optional
        Cluster of each case (the patient of each vertebra): the CIs use statsmodels' cluster-robust
        (sandwich) covariance; the estimates are unchanged. Absent, cases are independent.

    Returns
    -------
    dict
        ``slope``, ``slope_low``, ``slope_high``, ``intercept``, ``intercept_low``, ``intercept_high``
        (floats, log-odds scale for the intercept), ``n`` (cases) and ``events`` (cases with ``y = 1``).
    """
    y, p = _check_binary(y, p)
    _require_both_classes(y, "a calibration slope")
    lp = _logit(p)
    if lp.min() == lp.max():
        raise ValueError(f"p takes one value only ({p[0]}) after clipping; a slope needs varying predictions")
    robust = {}
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != y.shape:
            raise ValueError(f"groups has shape {g.shape} but there are {len(y)} cases; pass one patient id per case")
        robust = {"cov_type": "cluster", "cov_kwds": {"groups": pd.factorize(g)[0]}}
    slope = sm.Logit(y, sm.add_constant(lp, has_constant="add")).fit(disp=0, **robust)
    large = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit(**robust)
    (s_low, s_high), (i_low, i_high) = slope.conf_int(ALPHA)[1], large.conf_int(ALPHA)[0]
    return {"slope": float(slope.params[1]), "slope_low": float(s_low), "slope_high": float(s_high),
            "intercept": float(large.params[0]), "intercept_low": float(i_low), "intercept_high": float(i_high),
            "n": len(y), "events": int(y.sum())}


def hosmer_lemeshow(y, p, groups: int = 10, *, validation: bool = False) -> dict:
    """The Hosmer-Lemeshow goodness-of-fit test (C-hat, groups by deciles of risk).

    Cases are sorted by ``p`` (a stable sort: tied probabilities keep their input order) and the sorted
    order is cut into ``groups`` consecutive groups of (near) equal size by :func:`numpy.array_split` (the
    first ``n % groups`` groups hold one case more). Tied probabilities may therefore fall on both sides of
    a cut. With ``O1``, ``E1`` the observed and expected (sum of ``p``) events of a group and ``O0``,
    ``E0`` its observed and expected non-events,

    ``C = sum over groups of (O1 - E1)**2 / E1 + (O0 - E0)**2 / E0``

    is referred to a chi-squared distribution with ``groups - 2`` degrees of freedom on the data the model
    was fitted to, and with ``groups`` degrees of freedom on independent validation data (``validation=True``:
    no parameter was estimated from these rows; Hosmer, Lemeshow and Sturdivant, Applied Logistic
    Regression, 3rd ed., section 5.2.2); a small p-value is evidence of miscalibration.

    Known weaknesses, why it is reported beside the calibration slope and intercept
    (:func:`calibration_slope_intercept`) and the calibration curve (:func:`calibration_curve_ci`), never
    instead of them:

    * the statistic and its p-value depend on the number of groups and on how tied probabilities are split
      between groups: another grouping of the same data can move the p-value across 0.05;
    * it has little power in small samples (few events per group), so a large p-value is no proof of good
      calibration;
    * in large samples it flags deviations too small to matter clinically;
    * it says nothing about the direction or the kind of miscalibration (too high, too low, too extreme);
    * it treats rows as independent: several fractures of one patient are not.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1].
    groups : int, default 10
        Number of groups, at least 3 (for at least 1 degree of freedom) and at most ``n``.
    validation : bool, default False
        True when the model was fitted on other rows: ``df = groups``.

    Returns
    -------
    dict
        ``statistic`` (C-hat), ``df`` (``groups - 2``, or ``groups`` for validation data), ``p``
        (chi-squared upper tail), ``groups`` and
        ``table``: a DataFrame indexed by group (1 = lowest risk), columns ``n``, ``observed`` (events),
        ``expected`` (sum of ``p``) and ``mean_predicted``.
    """
    y, p = _check_binary(y, p)
    if not 3 <= groups <= len(y):
        raise ValueError(f"groups={groups} must be between 3 (for one degree of freedom) and n={len(y)}")
    parts = np.array_split(np.argsort(p, kind="stable"), groups)
    table = pd.DataFrame({"n": [len(g) for g in parts], "observed": [int(y[g].sum()) for g in parts],
                          "expected": [float(p[g].sum()) for g in parts]},
                         index=pd.RangeIndex(1, groups + 1, name="group"))
    table["mean_predicted"] = table["expected"] / table["n"]
    e1, e0 = table["expected"], table["n"] - table["expected"]
    if (e1 == 0).any() or (e0 == 0).any():
        raise ValueError(f"a group expects 0 events or 0 non-events (all its p are 0 or 1) with groups={groups}; "
                         "the statistic is undefined: use fewer groups")
    o1, o0 = table["observed"], table["n"] - table["observed"]
    stat = float(((o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0).sum())
    df = groups if validation else groups - 2
    return {"statistic": stat, "df": df, "p": float(chi2.sf(stat, df)), "groups": groups, "table": table}


def brier(y, p) -> float:
    """Brier score: the mean squared difference between ``p`` and ``y`` (0 perfect; 0.25 for p = 0.5).

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1].
    """
    y, p = _check_binary(y, p)
    return float(np.mean((p - y) ** 2))


def _bootstrap_sums(values: np.ndarray, groups_id: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Weighted column sums of ``values`` over patient-bootstrap resamples.

    Parameters
    ----------
    values : ndarray of float, shape (n, k)
    groups_id : ndarray, shape (n,)
        Patient of every case.
    n_boot, seed : int
        As :func:`ovfkit.metrics.patient_blocks`; the same ``groups_id``, ``n_boot`` and ``seed`` give the
        same resamples (and the same as :func:`ovfkit.metrics.bootstrap_weights`).

    Returns
    -------
    ndarray of float, shape (n_boot, k)
        ``out[b] = W[b] @ values`` with ``W`` the case weights of :func:`ovfkit.metrics.bootstrap_weights`,
        computed from per-patient sums without expanding the weights to cases.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot}; pass a positive number of bootstrap resamples")
    index, blocks = metrics.patient_blocks(groups_id, n_boot, seed)
    per_patient = np.zeros((int(index.max()) + 1, values.shape[1]))
    np.add.at(per_patient, index, values)
    return np.vstack([counts @ per_patient for counts in blocks])


def _percentiles(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5th and 97.5th percentiles of each column of ``samples`` (shape (B, k)), ignoring NaN.

    A column with no finite value gives NaN.
    """
    samples = np.atleast_2d(samples)
    lo, hi = np.full(samples.shape[1], np.nan), np.full(samples.shape[1], np.nan)
    ok = np.isfinite(samples).any(axis=0)
    lo[ok], hi[ok] = np.nanquantile(samples[:, ok], [ALPHA / 2, 1 - ALPHA / 2], axis=0)
    return lo, hi


def _quantile_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of every case: quantile bins of ``p`` as :func:`sklearn.calibration.calibration_curve` makes them.

    Edges are the ``0, 1/n_bins, ..., 1`` quantiles of ``p``; a value on an inner edge falls in the lower
    bin. Tied quantiles can leave a bin empty.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins}; pass at least 1 bin")
    edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    return np.searchsorted(edges[1:-1], p)


def calibration_curve_ci(y, p, groups_id, *, n_bins: int = 5, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Calibration curve by quantile bins of ``p``, with patient-bootstrap 95% bands of the observed rate.

    The bins are fixed on the full sample (the same bins as
    ``sklearn.calibration.calibration_curve(y, p, n_bins=n_bins, strategy="quantile")``); each bootstrap
    resample recounts the event rate of the cases in each bin. Empty bins (tied quantiles) are left out.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1].
    groups_id : array-like, shape (n,)
        Patient of every case; whole patients are resampled.
    n_bins : int, default 5
    n_boot : int, default 1000
    seed : int, default 0

    Returns
    -------
    DataFrame, one row per non-empty bin, columns ``bin`` (0 = lowest risk), ``n`` (cases),
    ``mean_predicted``, ``observed`` (event rate) and ``low``, ``high`` (2.5th and 97.5th percentiles of
    the observed rate over resamples in which the bin holds a case).
    """
    y, p = _check_binary(y, p)
    groups_id = _check_groups(groups_id, len(y))
    bins = _quantile_bins(p, n_bins)
    used = np.unique(bins)
    member = (bins[:, None] == used[None, :]).astype(float)  # (n, n_used)
    boot = _bootstrap_sums(np.hstack([member, member * y[:, None]]), groups_id, n_boot, seed)
    cases, events = boot[:, :len(used)], boot[:, len(used):]
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = _percentiles(events / cases)
    n = member.sum(axis=0)
    return pd.DataFrame({"bin": used, "n": n.astype(int), "mean_predicted": p @ member / n,
                         "observed": y @ member / n, "low": low, "high": high})


def youden_threshold(y, p) -> float:
    """The probability threshold that maximizes Youden's J = sensitivity + specificity - 1.

    A case is called positive when ``p >= threshold``; the candidates are the thresholds of
    :func:`sklearn.metrics.roc_curve` (every distinct ``p``), and among thresholds of equal J the highest
    is returned. If no threshold beats calling nobody positive (J = 0, ``roc_curve``'s infinite threshold)
    the result is 1.0.

    Choose the threshold on the training data's out-of-fold predictions, then apply it unchanged to the
    test cohorts: a threshold tuned on the test set makes its sensitivity and specificity optimistic.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
        Both classes must occur.
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1].

    Returns
    -------
    float
        The threshold, in [0, 1].
    """
    y, p = _check_binary(y, p)
    _require_both_classes(y, "Youden's J")
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)  # thresholds decreasing
    j = tpr - fpr
    best = int(np.flatnonzero(j >= j.max() - 1e-12)[0])  # first = highest threshold among (rounding) ties
    return float(min(thresholds[best], 1.0))


def _confusion_rates(counts: np.ndarray) -> dict:
    """Threshold metrics from confusion counts; NaN where a denominator is 0.

    Parameters
    ----------
    counts : ndarray of float, shape (B, 4)
        Columns TP, FP, FN, TN (weighted counts).

    Returns
    -------
    dict
        Metric name -> ndarray of float, shape (B,).
    """
    tp, fp, fn, tn = counts.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp), "ppv": tp / (tp + fp),
                "npv": tn / (tn + fn), "accuracy": (tp + tn) / (tp + fp + fn + tn),
                "f1": 2 * tp / (2 * tp + fp + fn)}


def threshold_metrics(y, p, threshold: float, groups_id, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Sensitivity, specificity, PPV, NPV, accuracy and F1 of calling ``p >= threshold`` positive.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    p : array-like of float, shape (n,)
        Predicted probability of ``y = 1``, in [0, 1].
    threshold : float
        In [0, 1], e.g. :func:`youden_threshold` of the training predictions.
    groups_id : array-like, shape (n,)
        Patient of every case; whole patients are resampled.
    n_boot : int, default 1000
    seed : int, default 0

    Returns
    -------
    DataFrame, one row per metric (``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``accuracy``,
    ``f1``), columns ``metric``, ``estimate``, ``ci_low``, ``ci_high`` (95% patient-bootstrap percentile
    interval, over the resamples where the metric is defined). A metric whose denominator is 0 (no
    events, no positive calls, ...) is NaN.
    """
    y, p = _check_binary(y, p)
    groups_id = _check_groups(groups_id, len(y))
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold={threshold} is outside [0, 1]; pass a probability threshold")
    pos, event = p >= threshold, y == 1
    cells = np.column_stack([pos & event, pos & ~event, ~pos & event, ~pos & ~event]).astype(float)
    estimate = _confusion_rates(cells.sum(axis=0, keepdims=True))
    boot = _confusion_rates(_bootstrap_sums(cells, groups_id, n_boot, seed))
    low, high = _percentiles(np.column_stack(list(boot.values())))
    return pd.DataFrame({"metric": list(estimate), "estimate": [float(v[0]) for v in estimate.values()],
                         "ci_low": low, "ci_high": high})


def _net_benefit_samples(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, groups_id: np.ndarray,
                         n_boot: int, seed: int) -> np.ndarray:
    """Net benefit ``TP/n - FP/n * t / (1 - t)`` of ``p >= t`` in each bootstrap resample, shape (n_boot, T)."""
    pos = p[:, None] >= thresholds[None, :]  # (n, T)
    event = y[:, None] == 1
    values = np.hstack([(pos & event), (pos & ~event), np.ones((len(y), 1))]).astype(float)
    sums = _bootstrap_sums(values, groups_id, n_boot, seed)
    t = len(thresholds)
    tp, fp, n = sums[:, :t], sums[:, t:2 * t], sums[:, -1:]
    return tp / n - fp / n * thresholds / (1 - thresholds)


def net_benefit_bands(y, models: dict, groups_id, thresholds=None, *, n_boot: int = 500,
                      seed: int = 0) -> pd.DataFrame:
    """Decision curves (net benefit by threshold probability) with patient-bootstrap 95% bands.

    Point estimates are :func:`ovfkit.clinical.decision_curve`'s (``dcurves``) for each model and for
    treating all and none. The bands are the 2.5th and 97.5th percentiles of the net benefit
    ``TP/n - FP/n * t / (1 - t)`` (a case is treated when ``p >= t``) over patient-bootstrap resamples;
    every model and "all" are scored on the same resamples (paired). Treating none has net benefit 0, band
    included.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
        Both classes must occur (``dcurves`` divides by the number of events).
    models : dict
        Model name -> predicted probabilities, array-like of float, shape (n,), in [0, 1]. The names
        ``"all"`` and ``"none"`` are taken by the reference strategies.
    groups_id : array-like, shape (n,)
        Patient of every case; whole patients are resampled.
    thresholds : array-like of float, shape (T,), optional
        Threshold probabilities in (0, 1); default 0.01, 0.02, ..., 0.80.
    n_boot : int, default 500
    seed : int, default 0

    Returns
    -------
    DataFrame, long: one row per model (the ``models`` in order, then ``all``, ``none``) and threshold
    (ascending), columns ``model``, ``threshold``, ``net_benefit``, ``low``, ``high``.
    """
    y = _check_outcome(y)
    _require_both_classes(y, "dcurves' decision curve")
    probs = {name: _check_proba(p, len(y), name=f"models[{name!r}]") for name, p in models.items()}
    groups_id = _check_groups(groups_id, len(y))
    taken = {"all", "none"} & set(probs)
    if taken:
        raise ValueError(f"model name(s) {sorted(taken)} are reserved for treat-all and treat-none; rename them")
    t = np.unique(np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=float))
    if t.min() <= 0 or t.max() >= 1:
        raise ValueError(f"thresholds span {t.min()}..{t.max()}; net benefit needs thresholds strictly in (0, 1)")
    point = clinical.decision_curve(pd.DataFrame({"y": y}), probs, thresholds=t)
    samples = {name: _net_benefit_samples(y, q, t, groups_id, n_boot, seed)
               for name, q in {**probs, "all": np.ones(len(y))}.items()}
    frames = []
    for name in [*probs, "all", "none"]:
        rows = point.loc[point["model"] == name, ["model", "threshold", "net_benefit"]].sort_values("threshold")
        low, high = _percentiles(samples[name]) if name in samples else (np.zeros(len(t)), np.zeros(len(t)))
        frames.append(rows.assign(low=low, high=high))
    return pd.concat(frames, ignore_index=True)
