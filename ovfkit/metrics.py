"""Classification metrics of a task's classes, with patient-level bootstrap confidence intervals.

Three or more classes (ASTLOF): every metric is one-vs-rest per class (class k positive, the others
negative) plus macro and micro averages, as the papers report them; predicted labels are the class of
highest probability. Two classes (acute vs chronic): the AUC of the positive class's probability
(``auc``), and sensitivity, specificity, PPV, NPV and F1 of calling a case positive when its probability
is at least ``threshold`` (0.5 unless stated); the Brier score is the binary one (mean squared error of
the positive probability). The headline discrimination of a task is :func:`auc_score` (``macro_auc`` or
``auc``, :func:`headline`).

The bootstrap resamples **patients** with replacement (vertebrae of one patient are correlated) and is
vectorized: a resample is a vector of integer weights (how often each vertebra was drawn), and each
statistic is computed for a block of resamples at once. The AUC of a weighted resample uses one sort
of the scores per class and cumulative sums of the negatives' weights (Mann-Whitney with mid-ranks for
ties), so it equals :func:`sklearn.metrics.roc_auc_score` on the expanded resample exactly (tested).
Resamples in which a class is absent give no AUC for that class and are left out of the percentile
interval (``n_valid`` says how many counted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import roc_auc_score, roc_curve

from ovfkit.manifest import HELD_OUT
from ovfkit.task import get_task

CLASSES = (0, 1, 2)


def binary_proba(p) -> np.ndarray:
    """P(positive), shape (n,), as the (n, 2) probability table of a binary task (columns: negative, positive)."""
    p = np.asarray(p, dtype=float)
    return np.column_stack([1 - p, p])


def check_proba(y_true, proba, classes=CLASSES):
    """``(y, proba)`` as arrays; ``ValueError`` naming the problem if the shapes or labels do not fit ``classes``."""
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(classes):
        raise ValueError(f"proba must have shape (n, {len(classes)}) for classes {list(classes)}, got {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} values but proba has {len(p)} rows; pass the same cases")
    unknown = set(np.unique(y).tolist()) - set(classes)
    if unknown:
        raise ValueError(f"y_true holds label(s) {sorted(unknown)} outside classes {list(classes)}")
    return y, p


def headline(classes=CLASSES) -> str:
    """Name of a task's headline discrimination metric: ``"auc"`` for two classes, else ``"macro_auc"``."""
    return "auc" if len(classes) == 2 else "macro_auc"


def predicted(proba, classes=CLASSES, threshold: float = 0.5) -> np.ndarray:
    """Predicted class of each row: the positive class at ``threshold`` (two classes) or the most probable."""
    p = np.asarray(proba, dtype=float)
    if len(classes) == 2:
        return np.where(p[:, 1] >= threshold, classes[1], classes[0])
    return np.asarray(classes)[p.argmax(axis=1)]


def auc_score(y_true, proba, classes=CLASSES) -> float:
    """The task's headline AUC: of the positive class (two classes) or one-vs-rest macro (more).

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    proba : array-like of float, shape (n, n_classes)
    """
    y, p = check_proba(y_true, proba, classes)
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], p[:, 1]))
    return macro_auc(y, p, classes)


def macro_auc(y_true, proba, classes=CLASSES) -> float:
    """One-vs-rest macro-averaged ROC AUC.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    proba : array-like of float, shape (n, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    """
    y, p = check_proba(y_true, proba, classes)
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(classes)))


def patient_blocks(groups, n_boot: int, seed: int, block: int = 250):
    """Patient-level bootstrap resamples as per-patient draw counts, ``block`` resamples at a time.

    Returns
    -------
    index : ndarray of int, shape (n,)
        The column of the counts that holds case ``i``'s patient.
    blocks : generator of ndarray of int32, shape (<= block, n_patients)
        How often each patient was drawn in each resample (as many draws as patients); use with
        :func:`weighted_auc`'s ``index`` to score without expanding to cases.
    """
    _, inv = np.unique(np.asarray(groups), return_inverse=True)
    n_pat = int(inv.max()) + 1

    def blocks():
        rng = np.random.default_rng(seed)
        for start in range(0, n_boot, block):
            b = min(block, n_boot - start)
            draws = rng.integers(0, n_pat, size=(b, n_pat))
            draws += (n_pat * np.arange(b))[:, None]
            yield np.bincount(draws.ravel(), minlength=b * n_pat).reshape(b, n_pat).astype(np.int32)

    return inv, blocks()


def weight_blocks(groups, n_boot: int, seed: int = 0, block: int = 250):
    """Patient-level bootstrap resamples as integer case weights, ``block`` resamples at a time.

    Parameters
    ----------
    groups : array-like, shape (n,)
        Patient of every case.
    n_boot : int
    seed : int
    block : int

    Yields
    ------
    ndarray of int32, shape (<= block, n)
        ``W[b, i]``: how often case ``i``'s patient was drawn in resample ``b`` (as many patients are drawn
        as there are). The blocks concatenate to :func:`bootstrap_weights` with the same seed.
    """
    inv, blocks = patient_blocks(groups, n_boot, seed, block)
    for counts in blocks:
        yield np.take(counts, inv, axis=1)


def bootstrap_weights(groups, n_boot: int, seed: int = 0) -> np.ndarray:
    """All ``n_boot`` resamples of :func:`weight_blocks` at once, shape (n_boot, n), int32."""
    return np.vstack(list(weight_blocks(groups, n_boot, seed)))


def weighted_auc(positive, score, W, index=None) -> np.ndarray:
    """ROC AUC of each weighted resample (rows of ``W``); NaN where a resample lacks a class.

    Parameters
    ----------
    positive : array-like of bool, shape (n,)
    score : array-like of float, shape (n,)
    W : array-like of int, shape (B, n), or (B, n_groups) with ``index``
        Case weights (integer counts): the AUC equals that of the data with case ``i`` repeated
        ``W[b, i]`` times.
    index : array-like of int, shape (n,), optional
        Column of ``W`` holding case ``i``'s weight (patient-level counts, not expanded to cases).

    Returns
    -------
    ndarray of float, shape (B,)
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=float)
    W = np.atleast_2d(np.asarray(W))
    col = np.arange(len(s)) if index is None else np.asarray(index)
    neg_idx = np.flatnonzero(~pos)
    neg_order = neg_idx[np.argsort(s[neg_idx], kind="mergesort")]
    neg_sorted = s[neg_order]
    pos_idx = np.flatnonzero(pos)
    left = np.searchsorted(neg_sorted, s[pos_idx], side="left")
    right = np.searchsorted(neg_sorted, s[pos_idx], side="right")
    cum = np.zeros((W.shape[0], len(neg_order) + 1), dtype=np.int64)
    np.cumsum(W[:, col[neg_order]], axis=1, dtype=np.int64, out=cum[:, 1:])
    wp = W[:, col[pos_idx]]
    if np.array_equal(left, right):  # no positive shares its score with a negative: one gather
        twice_u = 2 * (wp * cum[:, left]).sum(axis=1, dtype=np.int64)
    else:  # ties count one half: 2 U = sum of weights x (negatives below + negatives at or below)
        twice_u = (wp * (cum[:, left] + cum[:, right])).sum(axis=1, dtype=np.int64)
    n_pos, n_neg = wp.sum(axis=1, dtype=np.int64), cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), twice_u / (2.0 * n_pos * n_neg), np.nan)


def _auc_block(y, p, W, classes, micro: bool = True, index=None):
    """Per-class, macro (and micro) AUC for a block of resamples: dict name -> (B,) array.

    Two classes: ``auc``, the positive class's AUC, only (class 0's one-vs-rest AUC is the same number).
    """
    if len(classes) == 2:
        return {"auc": weighted_auc(y == classes[1], p[:, 1], W, index)}
    out = {f"auc_class_{k}": weighted_auc(y == k, p[:, j], W, index) for j, k in enumerate(classes)}
    per_class = np.column_stack([out[f"auc_class_{k}"] for k in classes])
    out["macro_auc"] = per_class.mean(axis=1)  # NaN if any class is absent from the resample
    if micro:
        onehot = (y[:, None] == np.asarray(classes)[None, :]).ravel()
        cols = np.arange(W.shape[1]) if index is None else np.asarray(index)
        out["micro_auc"] = weighted_auc(onehot, p.ravel(), W, np.repeat(cols, len(classes)))
    return out


def _count_block(y, pred, W, classes):
    """Threshold metrics (of :func:`predicted`'s classes) for a block of weights.

    Two classes: ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1`` of the positive class.
    """
    W = W.astype(float)
    total = W.sum(axis=1)
    out = {"accuracy": W @ (y == pred).astype(float) / total}
    f1s = []
    binary = len(classes) == 2
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in classes[1:] if binary else classes:
            t, q = (y == k), (pred == k)
            tp, fp = W @ (t & q), W @ (~t & q)
            fn, tn = W @ (t & ~q), W @ (~t & ~q)
            if not binary:  # one-vs-rest accuracy of class k (the papers' per-class ACC); binary: ``accuracy``
                out[f"accuracy_class_{k}"] = (tp + tn) / total
            out[f"sensitivity_class_{k}"] = tp / (tp + fn)
            out[f"specificity_class_{k}"] = tn / (tn + fp)
            out[f"ppv_class_{k}"] = tp / (tp + fp)
            out[f"npv_class_{k}"] = tn / (tn + fn)
            out[f"f1_class_{k}"] = 2 * tp / (2 * tp + fp + fn)
            f1s.append(out[f"f1_class_{k}"])
    if binary:
        return {name.replace(f"_class_{classes[1]}", ""): v for name, v in out.items()}
    out["macro_f1"] = np.mean(f1s, axis=0)
    return out


def point_metrics(y_true, proba, classes=CLASSES, threshold: float = 0.5) -> pd.Series:
    """Every metric of :func:`bootstrap_metrics` on the data as it is (no resampling).

    Returns
    -------
    Series. More than two classes: per-class and macro/micro AUC, accuracy, and per-class (one-vs-rest) accuracy, sensitivity,
    specificity, PPV, NPV, F1, macro F1, multi-class Brier score. Two classes: AUC, accuracy, sensitivity,
    specificity, PPV, NPV and F1 at ``threshold``, binary Brier score.
    """
    y, p = check_proba(y_true, proba, classes)
    W = np.ones((1, len(y)), dtype=np.int64)
    pred = predicted(p, classes, threshold)
    vals = {**_auc_block(y, p, W, classes), **_count_block(y, pred, W, classes)}
    s = pd.Series({k: float(v[0]) for k, v in vals.items()})
    s["brier"] = brier_score(y, p, classes)
    return s


def bootstrap_metrics(y_true, proba, groups, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                      classes=CLASSES, threshold: float = 0.5, block: int = 250) -> pd.DataFrame:
    """Point estimates and percentile patient-bootstrap CIs of every metric, vectorized.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    proba : array-like of float, shape (n, n_classes)
    groups : array-like, shape (n,)
        Patient of every case; whole patients are resampled.
    n_boot : int, default 1000
    alpha : float, default 0.05
        1 - confidence level.
    seed : int
    classes : tuple of int
        The task's class codes, in the order of ``proba``'s columns.
    threshold : float
        Two classes: a case is called positive when its probability is at least this.
    block : int
        Resamples computed at once (memory: about ``block * n * 8`` bytes per array).

    Returns
    -------
    DataFrame indexed by metric: ``estimate``, ``ci_low``, ``ci_high``, ``n_valid`` (resamples with a
    defined value).
    """
    y, p = check_proba(y_true, proba, classes)
    if len(np.asarray(groups)) != len(y):
        raise ValueError(f"groups has {len(np.asarray(groups))} values for {len(y)} cases; give each case's patient")
    pred = predicted(p, classes, threshold)
    parts = [{**_auc_block(y, p, Wb, classes), **_count_block(y, pred, Wb, classes)}
             for Wb in weight_blocks(groups, n_boot, seed, block)]
    est = point_metrics(y, p, classes, threshold)
    rows = {}
    for name in parts[0]:
        v = np.concatenate([part[name] for part in parts])
        ok = np.isfinite(v)
        lo, hi = np.quantile(v[ok], [alpha / 2, 1 - alpha / 2]) if ok.any() else (np.nan, np.nan)
        rows[name] = {"estimate": est[name], "ci_low": float(lo), "ci_high": float(hi), "n_valid": int(ok.sum())}
    rows["brier"] = {"estimate": est["brier"], "ci_low": np.nan, "ci_high": np.nan, "n_valid": 0}
    return pd.DataFrame(rows).T.astype({"n_valid": int})


def bootstrap_auc(y_true, proba, groups, *, n_boot: int = 1000, seed: int = 0, classes=CLASSES) -> np.ndarray:
    """The headline AUC (:func:`auc_score`) of each patient-bootstrap resample, shape (n_boot,).

    NaN where a class is absent from the resample. The resamples depend only on ``groups``, ``n_boot``
    and ``seed``: two models scored with the same arguments are scored on the same resamples (a paired
    bootstrap).
    """
    y, p = check_proba(y_true, proba, classes)
    inv, blocks = patient_blocks(groups, n_boot, seed, 250)
    return np.concatenate([_auc_block(y, p, counts, classes, micro=False, index=inv)[headline(classes)]
                           for counts in blocks])


def patient_bootstrap_ci(y_true, proba, groups, *, n_boot: int = 1000, alpha: float = 0.05,
                         seed: int = 0, classes=CLASSES) -> tuple[float, float, float]:
    """The headline AUC (:func:`auc_score`) and its percentile patient-bootstrap CI (vectorized).

    The AUC is undefined when a class is absent from the cases (a tiny cohort): then all three values
    are NaN, as scikit-learn's ``roc_auc_score`` gives NaN for such a class.

    Returns
    -------
    (estimate, low, high)
    """
    y, p = check_proba(y_true, proba, classes)
    stats = bootstrap_auc(y, p, groups, n_boot=n_boot, seed=seed, classes=classes)
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return float("nan"), float("nan"), float("nan")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return auc_score(y, p, classes), float(lo), float(hi)


def brier_score(y_true, proba, classes=CLASSES) -> float:
    """Brier score: mean over cases of the squared distance between ``proba`` and the one-hot truth.

    0 is perfect; always predicting the class frequencies gives ``1 - sum(freq**2)``. Two classes: the
    binary score, mean of ``(p_positive - y)**2`` (half the two-column distance), as
    :func:`sklearn.metrics.brier_score_loss`.
    """
    y, p = check_proba(y_true, proba, classes)
    if len(classes) == 2:
        return float(((p[:, 1] - (y == classes[1])) ** 2).mean())
    onehot = (y[:, None] == np.asarray(classes)[None, :]).astype(float)
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def roc_table(y_true, proba, classes=CLASSES) -> pd.DataFrame:
    """One-vs-rest ROC curve of each class (scikit-learn's ``roc_curve``) in long format.

    Two classes: the positive class's curve only (class 0's is its mirror image).

    Returns
    -------
    DataFrame with columns ``class``, ``fpr``, ``tpr``, ``threshold``, ``auc``. A class without cases, or
    with nothing but cases, has no curve: ``attrs["missing"]`` lists those classes (a tiny cohort).
    """
    y, p = check_proba(y_true, proba, classes)
    rows, missing = [], []
    for j, k in enumerate(classes):
        if len(classes) == 2 and j == 0:
            continue
        if (y == k).all() or not (y == k).any():
            missing.append(k)
            continue
        fpr, tpr, thr = roc_curve(y == k, p[:, j])
        rows.append(pd.DataFrame({"class": k, "fpr": fpr, "tpr": tpr, "threshold": thr,
                                  "auc": roc_auc_score(y == k, p[:, j])}))
    return _curves(rows, ["class", "fpr", "tpr", "threshold", "auc"], missing)


def _curves(rows: list, columns: list, missing: list) -> pd.DataFrame:
    """The per-class curves in one table (an empty one if none), the classes without a curve in attrs."""
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    out.attrs["missing"] = missing
    return out


def confusion(y_true, proba, classes=CLASSES, normalize: str | None = None, threshold: float = 0.5) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: :func:`predicted` class)."""
    y, p = check_proba(y_true, proba, classes)
    pred = predicted(p, classes, threshold)
    cm = _sk_confusion(y, pred, labels=list(classes), normalize=normalize)
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def calibration_table(y_true, proba, classes=CLASSES, n_bins: int = 5) -> pd.DataFrame:
    """One-vs-rest reliability curve per class (quantile bins) and its Brier score.

    Two classes: the positive class's curve only.

    Returns
    -------
    DataFrame with columns ``class``, ``mean_predicted``, ``observed``, ``brier``; ``attrs["missing"]``
    lists the classes without a curve (no cases, or nothing but cases).
    """
    y, p = check_proba(y_true, proba, classes)
    rows, missing = [], []
    for j, k in enumerate(classes):
        t = (y == k).astype(int)
        if len(classes) == 2 and j == 0:
            continue
        if t.min() == t.max():
            missing.append(k)
            continue
        obs, pred = calibration_curve(t, p[:, j], n_bins=n_bins, strategy="quantile")
        rows.append(pd.DataFrame({"class": k, "mean_predicted": pred, "observed": obs,
                                  "brier": float(((p[:, j] - t) ** 2).mean())}))
    return _curves(rows, ["class", "mean_predicted", "observed", "brier"], missing)


def auc_by_cohort(model, X: pd.DataFrame, manifest: pd.DataFrame, cohorts=HELD_OUT,
                  *, n_boot: int = 1000, seed: int = 0, task="astlof") -> pd.DataFrame:
    """The task's headline AUC (95% patient-bootstrap CI) of a fitted classifier on each held-out cohort.

    The AUC column is named by :func:`headline` (``macro_auc`` for ASTLOF, ``auc`` for a binary task).
    """
    task = get_task(task)
    name = headline(task.classes)
    labels = task.labels(manifest)
    rows = []
    for cohort in cohorts:
        ids = manifest.index[(manifest["cohort"] == cohort) & manifest.index.isin(X.index)]
        if len(ids) == 0:
            continue
        proba = model.predict_proba(X.loc[ids])
        est, lo, hi = patient_bootstrap_ci(labels.loc[ids].to_numpy(), proba, manifest.loc[ids, "patient_id"],
                                           n_boot=n_boot, seed=seed, classes=task.classes)
        rows.append({"cohort": cohort, "n_vertebrae": len(ids), "n_patients": manifest.loc[ids, "patient_id"].nunique(),
                     name: est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows).set_index("cohort")
