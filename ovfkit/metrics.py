"""Discrimination metrics with patient-level bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def macro_auc(y_true, proba, classes=(0, 1, 2)) -> float:
    """One-vs-rest macro-averaged ROC AUC.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    proba : array-like of float, shape (n, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    """
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=list(classes)))


def patient_bootstrap_ci(y_true, proba, groups, *, metric=macro_auc, n_boot: int = 1000, alpha: float = 0.05,
                         seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap CI of ``metric``, resampling patients (clusters).

    Vertebrae of one patient are correlated, so whole patients are drawn with replacement.
    Resamples in which a class is absent are skipped (so fewer than ``n_boot`` may count).

    Returns
    -------
    (estimate, low, high)
    """
    y = np.asarray(y_true)
    p = np.asarray(proba)
    g = np.asarray(groups)
    uniq, inv = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    stats = []
    n_classes = len(np.unique(y))
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[k] for k in pick])
        if len(np.unique(y[idx])) < n_classes:
            continue
        stats.append(metric(y[idx], p[idx]))
    if not stats:
        raise ValueError("no bootstrap resample held every class; the cohort is too small for a CI")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return metric(y, p), float(lo), float(hi)


def auc_by_cohort(model, X: pd.DataFrame, manifest: pd.DataFrame, cohorts=("internal", "external", "prospective"),
                  *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Macro AUC (95% patient-bootstrap CI) of a fitted classifier on each held-out cohort."""
    rows = []
    for cohort in cohorts:
        ids = manifest.index[(manifest["cohort"] == cohort) & manifest.index.isin(X.index)]
        if len(ids) == 0:
            continue
        y = manifest.loc[ids, "astlof_class"].to_numpy(dtype=int)
        proba = model.predict_proba(X.loc[ids])
        est, lo, hi = patient_bootstrap_ci(y, proba, manifest.loc[ids, "patient_id"], n_boot=n_boot, seed=seed)
        rows.append({"cohort": cohort, "n_vertebrae": len(ids), "n_patients": manifest.loc[ids, "patient_id"].nunique(),
                     "macro_auc": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows).set_index("cohort")
