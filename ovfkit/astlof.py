"""ASTLOF scoring: components from raw findings, total, class, reader consensus and agreement.

ASTLOF (Assessment System of Thoracolumbar Osteoporotic Fracture) sums four components,
each scored 0, 1 or 2:

============  ==========================  ==================================  ============================
component     0                           1                                   2
============  ==========================  ==================================  ============================
morphology    normal                      compression (wedge or biconcave)    burst (posterior wall)
MRI           normal                      high signal on fat suppression      vacuum cleft or fluid
BMD T-score   T > -2.5                    -3.5 < T <= -2.5                    T <= -3.5
clinical      no pain                     pain on position change             persistent pain or deficit
============  ==========================  ==================================  ============================

The total (0-8) maps to a treatment class: total <= 3 -> 0 (conservative), total = 4 -> 1
(augmentation or conservative), total >= 5 -> 2 (augmentation or surgery).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

COMPONENTS: tuple[str, ...] = ("morphology", "mri", "bmd", "clinical")
CLASSES: tuple[int, ...] = (0, 1, 2)
CLASS_LABELS: dict[int, str] = {
    0: "0: conservative (total <= 3)",
    1: "1: augmentation or conservative (total = 4)",
    2: "2: augmentation or surgery (total >= 5)",
}

MORPHOLOGY_SCORES: dict[str, int] = {
    "normal": 0,
    "wedge": 1,
    "biconcave": 1,
    "compression": 1,
    "burst": 2,
}
MRI_SCORES: dict[str, int] = {"normal": 0, "edema": 1, "vacuum_cleft": 2, "fluid": 2}
CLINICAL_SCORES: dict[str, int] = {
    "none": 0,
    "positional": 1,
    "persistent": 2,
    "neurological": 2,
}

#: T-score thresholds of the BMD component (inclusive upper bounds of the worse category).
BMD_OSTEOPOROSIS = -2.5
BMD_SEVERE = -3.5


def _score_categorical(findings, table: dict[str, int], what: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(findings, dtype=object))
    out = np.empty(values.shape, dtype=np.int64)
    for i, value in enumerate(values.ravel()):
        key = str(value).strip().lower()
        if key not in table:
            allowed = ", ".join(sorted(table))
            raise ValueError(f"{what} finding {value!r} is not recognised; use one of: {allowed}")
        out.ravel()[i] = table[key]
    return out


def score_morphology(findings) -> np.ndarray:
    """Score the morphology component from CT/X-ray findings.

    Parameters
    ----------
    findings : str or array-like of str, shape (n,)
        One of ``normal``, ``wedge``, ``biconcave``, ``compression`` or ``burst``.

    Returns
    -------
    scores : ndarray of int, shape (n,)
    """
    return _score_categorical(findings, MORPHOLOGY_SCORES, "morphology")


def score_mri(findings) -> np.ndarray:
    """Score the MRI component: ``normal`` 0, ``edema`` 1, ``vacuum_cleft`` or ``fluid`` 2."""
    return _score_categorical(findings, MRI_SCORES, "MRI")


def score_clinical(findings) -> np.ndarray:
    """Score the clinical component: ``none`` 0, ``positional`` 1, ``persistent`` or ``neurological`` 2."""
    return _score_categorical(findings, CLINICAL_SCORES, "clinical")


def score_bmd(t_scores) -> np.ndarray:
    """Score the BMD component from DXA T-scores.

    Parameters
    ----------
    t_scores : float or array-like of float, shape (n,)
        T-scores in standard deviations.

    Returns
    -------
    scores : ndarray of int, shape (n,)
        0 if T > -2.5, 1 if -3.5 < T <= -2.5, 2 if T <= -3.5 (both boundaries belong to the worse
        category, as in the ASTLOF table).
    """
    t = np.atleast_1d(np.asarray(t_scores, dtype=float))
    if not np.all(np.isfinite(t)):
        bad = float(t[~np.isfinite(t)][0])
        raise ValueError(f"T-score {bad!r} is not a finite number; give a measured T-score")
    return np.where(t <= BMD_SEVERE, 2, np.where(t <= BMD_OSTEOPOROSIS, 1, 0)).astype(np.int64)


def _check_components(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer scores 0, 1 or 2, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 2):
        bad = arr[(arr < 0) | (arr > 2)].ravel()[0]
        raise ValueError(f"{name} holds the score {bad}; ASTLOF components are 0, 1 or 2")
    return arr.astype(np.int64)


def total(morphology, mri, bmd, clinical) -> np.ndarray:
    """Sum the four component scores (each 0-2) into the ASTLOF total (0-8)."""
    parts = [_check_components(v, n) for v, n in zip((morphology, mri, bmd, clinical), COMPONENTS)]
    return parts[0] + parts[1] + parts[2] + parts[3]


def astlof_class(totals) -> np.ndarray:
    """Map ASTLOF totals to the treatment class: <= 3 -> 0, 4 -> 1, >= 5 -> 2.

    Parameters
    ----------
    totals : int or array-like of int, shape (n,)
        Totals between 0 and 8.
    """
    t = np.atleast_1d(np.asarray(totals))
    if t.dtype.kind not in "iu":
        raise TypeError(f"ASTLOF totals must be integers, got dtype {t.dtype}")
    if t.size and (t.min() < 0 or t.max() > 8):
        bad = t[(t < 0) | (t > 8)][0]
        raise ValueError(f"ASTLOF total {bad} is outside 0-8; check the component scores")
    return np.where(t <= 3, 0, np.where(t == 4, 1, 2)).astype(np.int64)


def consensus(reader1, reader2, adjudicated) -> np.ndarray:
    """Consensus of two readers: their score where they agree, the adjudicated score where not.

    Parameters
    ----------
    reader1, reader2 : array-like of int, shape (n,)
        Independent component scores of the two readers.
    adjudicated : array-like of int, shape (n,)
        The score agreed at the consensus meeting (used only where the readers disagree).
    """
    r1 = _check_components(reader1, "reader1")
    r2 = _check_components(reader2, "reader2")
    adj = _check_components(adjudicated, "adjudicated")
    if not (r1.shape == r2.shape == adj.shape):
        raise ValueError(
            f"reader1, reader2 and adjudicated have shapes {r1.shape}, {r2.shape}, {adj.shape}; "
            "give one score per vertebra in each"
        )
    return np.where(r1 == r2, r1, adj)


@dataclass(frozen=True)
class Agreement:
    """Weighted Cohen's kappa between two readers with its asymptotic confidence interval."""

    component: str
    n: int
    observed_agreement: float
    kappa: float
    se: float
    ci_low: float
    ci_high: float
    weights: str


def agreement(reader1, reader2, *, component: str = "", weights: str = "linear",
              alpha: float = 0.05, categories: Sequence[int] = CLASSES) -> Agreement:
    """Cohen's kappa (weighted) between two readers' scores, with a confidence interval.

    Uses :func:`statsmodels.stats.inter_rater.cohens_kappa` on the full ``categories`` x
    ``categories`` table, so a category that neither reader used still counts in the weights.

    Parameters
    ----------
    reader1, reader2 : array-like of int, shape (n,)
    component : str
        Name to carry in the result.
    weights : {"linear", "quadratic", "none"}
        Disagreement weights; ``"none"`` gives the unweighted kappa.
    alpha : float
        1 - confidence level of the interval (asymptotic standard error under the alternative).
    """
    from scipy.stats import norm
    from statsmodels.stats.inter_rater import cohens_kappa

    if weights not in {"linear", "quadratic", "none"}:
        raise ValueError(f"weights={weights!r} is not supported; use 'linear', 'quadratic' or 'none'")
    r1 = np.asarray(reader1)
    r2 = np.asarray(reader2)
    if r1.shape != r2.shape or r1.ndim != 1:
        raise ValueError(f"reader1 and reader2 must be 1-D of equal length, got {r1.shape} and {r2.shape}")
    if r1.size < 2:
        raise ValueError(f"agreement needs at least 2 paired scores, got {r1.size}")
    cats = list(categories)
    table = pd.crosstab(pd.Categorical(r1, categories=cats), pd.Categorical(r2, categories=cats),
                        dropna=False).to_numpy(dtype=float)
    wt = None if weights == "none" else weights
    res = cohens_kappa(table, wt=wt, return_results=True)
    z = float(norm.ppf(1 - alpha / 2))
    return Agreement(
        component=component,
        n=int(r1.size),
        observed_agreement=float(np.trace(table) / table.sum()),
        kappa=float(res.kappa),
        se=float(res.std_kappa),
        ci_low=float(res.kappa - z * res.std_kappa),
        ci_high=float(res.kappa + z * res.std_kappa),
        weights=weights,
    )


def agreement_table(manifest: pd.DataFrame, *, weights: str = "linear") -> pd.DataFrame:
    """Kappa of reader 1 vs reader 2 for every component and the class, one row each.

    ``manifest`` needs the columns ``<component>_r1`` and ``<component>_r2``.
    """
    rows = []
    for comp in COMPONENTS:
        a = agreement(manifest[f"{comp}_r1"], manifest[f"{comp}_r2"], component=comp, weights=weights)
        rows.append(a.__dict__)
    cls1 = astlof_class(total(*(manifest[f"{c}_r1"] for c in COMPONENTS)))
    cls2 = astlof_class(total(*(manifest[f"{c}_r2"] for c in COMPONENTS)))
    rows.append(agreement(cls1, cls2, component="astlof_class", weights=weights).__dict__)
    return pd.DataFrame(rows).set_index("component")


def adjudication_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per component: readers' disagreements (sent to consensus) and consensus differing from each reader."""
    rows = []
    for comp in COMPONENTS:
        r1, r2, c = manifest[f"{comp}_r1"], manifest[f"{comp}_r2"], manifest[comp]
        rows.append({"component": comp, "n": len(manifest), "readers disagree": int((r1 != r2).sum()),
                     "consensus differs from reader 1": int((c != r1).sum()),
                     "consensus differs from reader 2": int((c != r2).sum())})
    return pd.DataFrame(rows).set_index("component")
