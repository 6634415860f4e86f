"""Tables as a reader sees them: rounded numbers, "–" for what could not be computed, p-values as
"< 0.001", and column names in words (``npv_class_2`` -> "NPV, class 2").

Chapters show every table through :func:`readable`; the CSV beside each figure keeps the raw names and
full precision.
"""

from __future__ import annotations

import math
import re

import pandas as pd

MISSING = "–"
P_COLUMNS = re.compile(r"^p(_(holm|bh|value|adjusted))?$|^p_|(^|\s)p$")
WORDS = {
    "auc": "AUC", "macro_auc": "macro AUC", "micro_auc": "micro AUC", "ci_low": "CI low", "ci_high": "CI high",
    "ppv": "PPV", "npv": "NPV", "f1": "F1", "brier": "Brier score", "icc": "ICC", "lr": "LR", "df": "df",
    "p": "p", "p_holm": "p (Holm)", "p_bh": "p (BH)", "diff": "difference", "n": "n", "sd": "SD", "or": "OR",
    "kappa": "kappa", "cls": "class", "auc_a": "AUC (A)", "auc_b": "AUC (B)", "a": "model A", "b": "model B",
}
TOKENS = {"auc": "AUC", "ppv": "PPV", "npv": "NPV", "f1": "F1", "ci": "CI", "icc": "ICC", "dlr": "DLR",
          "lasso": "LASSO", "pca": "PCA", "sd": "SD", "iqr": "IQR", "bmd": "BMD", "mri": "MRI", "ct": "CT"}


def format_p(p: float, digits: int = 3) -> str:
    """A p-value as journals print it: "< 0.001" below 0.001, else ``digits`` decimals; "–" when missing.

    Examples
    --------
    >>> format_p(0.00002), format_p(0.0312), format_p(float("nan"))
    ('< 0.001', '0.031', '–')
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return MISSING
    floor = 10.0 ** -digits
    return f"< {floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def estimate_ci(estimate, low=None, high=None, digits: int = 3) -> str:
    """An estimate with its interval, "0.812 (0.741-0.874)"; "–" when the estimate is missing and no
    interval part when the interval is.

    Examples
    --------
    >>> estimate_ci(0.8123, 0.7412, 0.8741), estimate_ci(0.8, float("nan"), float("nan")), estimate_ci(None)
    ('0.812 (0.741-0.874)', '0.800', '–')
    """
    if estimate is None or pd.isna(estimate):
        return MISSING
    text = f"{estimate:.{digits}f}"
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return text
    return f"{text} ({low:.{digits}f}-{high:.{digits}f})"


CLASS_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


def by_class(detail: pd.DataFrame, metrics=CLASS_METRICS, digits: int = 3) -> pd.DataFrame:
    """The papers' Table 3 layout: one row per cohort and class, one column per metric, "estimate (CI)".

    Parameters
    ----------
    detail : DataFrame
        Long table of one model (``cohort``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``), as
        :func:`ovfkit.study.chosen_metrics` writes it. Per-class metrics are named ``<metric>_class_<k>``;
        a row "all classes" carries the macro AUC and the accuracy. A binary task's metrics have no class
        suffix and give one row per cohort, for the positive class.
    metrics : sequence of str
    digits : int

    Returns
    -------
    DataFrame indexed by (cohort, class), columns ``metrics`` in words; "–" where a value is undefined.
    """
    rows = []
    for cohort, g in detail.groupby("cohort", sort=False):
        g = g.set_index("metric")

        def cell(name):
            if name not in g.index:
                return MISSING
            return estimate_ci(*g.loc[name, ["estimate", "ci_low", "ci_high"]], digits=digits)

        classes = [m[len("auc_class_"):] for m in g.index if m.startswith("auc_class_")]
        if not classes:  # binary
            rows.append({"cohort": cohort, "class": "positive", **{m: cell(m) for m in metrics}})
            continue
        for k in classes:
            rows.append({"cohort": cohort, "class": f"class {k}", **{m: cell(f"{m}_class_{k}") for m in metrics}})
        rows.append({"cohort": cohort, "class": "all classes",
                     **{m: cell({"auc": "macro_auc", "accuracy": "accuracy"}.get(m, "")) for m in metrics}})
    out = pd.DataFrame(rows).set_index(["cohort", "class"])
    return out.rename(columns=human)


def human(name) -> str:
    """A column name in words: known names from :data:`WORDS`, else underscores to spaces with
    abbreviations upper-cased and a trailing ``_class_k`` as ", class k"."""
    if not isinstance(name, str):
        return name
    if name in WORDS:
        return WORDS[name]
    m = re.fullmatch(r"(.+?)_class_(\w+)", name)
    if m:
        return f"{human(m.group(1))}, class {m.group(2)}"
    return " ".join(TOKENS.get(t, t) for t in name.split("_"))


def readable(df: pd.DataFrame, digits: int = 3, *, index: bool | None = None, names: bool = True):
    """A :class:`pandas.io.formats.style.Styler` that shows ``df`` to a reader.

    Parameters
    ----------
    df : DataFrame
    digits : int
        Decimals of every float column (p-value columns: "< 0.001" below 0.001, 3 decimals above).
    index : bool, optional
        Show the index; by default shown unless it holds unnamed row numbers (integers, no name).
    names : bool
        Column names in words (:func:`human`).

    Returns
    -------
    Styler
        Missing values (NaN, None) show as "–".
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"readable() takes a DataFrame, not {type(df).__name__}; wrap a Series with .to_frame()")
    shown = df.rename(columns=human) if names else df.copy()
    p_cols = [shown.columns[i] for i, c in enumerate(df.columns) if isinstance(c, str) and P_COLUMNS.search(c)]
    formatters = {c: (lambda v: format_p(v)) for c in p_cols}
    styler = shown.style.format(formatters, precision=digits, na_rep=MISSING)
    if index is None:
        index = not (df.index.nlevels == 1 and df.index.name is None and pd.api.types.is_integer_dtype(df.index))
    if not index:
        styler = styler.hide(axis="index")
    return styler
