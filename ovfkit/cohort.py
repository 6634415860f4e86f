"""Cohort description: Table 1 by cohort and the class mix per cohort and center."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ovfkit.manifest import COHORTS

PATIENT_COLUMNS = ("age", "sex", "bmd_tscore", "n_vertebrae")


def patients(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: cohort, center, age, sex, T-score and the number of vertebrae."""
    agg = {"cohort": "first", "center": "first", "age": "first", "sex": "first", "vertebra_id": "count"}
    if "bmd_tscore" in manifest.columns:
        agg["bmd_tscore"] = "first"
    out = manifest.groupby("patient_id", sort=True).agg(agg).rename(columns={"vertebra_id": "n_vertebrae"})
    return out


def _is_normal(df: pd.DataFrame, col: str, group: str, alpha: float = 0.05) -> bool:
    """Shapiro-Wilk in every group (3 <= n <= 5000); normal if no group rejects at ``alpha``."""
    for _, g in df.groupby(group, observed=True):
        x = pd.to_numeric(g[col], errors="coerce").dropna().to_numpy(dtype=float)
        if len(x) < 3 or np.ptp(x) == 0:
            continue
        if stats.shapiro(x[:5000]).pvalue < alpha:
            return False
    return True


def table_one(manifest: pd.DataFrame) -> pd.DataFrame:
    """Table 1 by cohort, with tests chosen per variable.

    Patient-level variables (age, sex, T-score, vertebrae per patient) count each patient once;
    vertebra-level variables (level, ASTLOF components, class, acuity) count vertebrae. Continuous
    variables: one-way ANOVA if Shapiro-Wilk accepts normality in every cohort, else Kruskal-Wallis
    (shown as median [Q1, Q3]). Categorical: chi-square, or Fisher's exact test for 2x2 tables with an
    expected count below 5 (tableone's rule). The test used is named in the table.
    """
    import warnings

    from tableone import TableOne

    with warnings.catch_warnings():  # tableone 0.9 trips pandas' observed= deprecation
        warnings.simplefilter("ignore", FutureWarning)
        return _table_one(manifest, TableOne)


def _table_one(manifest: pd.DataFrame, TableOne) -> pd.DataFrame:
    order = {"cohort": [c for c in COHORTS if c in set(manifest["cohort"])]}
    pat = patients(manifest).reset_index()
    pat["cohort"] = pd.Categorical(pat["cohort"], categories=order["cohort"])
    cont = [c for c in ("age", "bmd_tscore", "n_vertebrae") if c in pat.columns]
    nonnormal = [c for c in cont if not _is_normal(pat, c, "cohort")]
    t_pat = TableOne(pat, columns=cont + ["sex"], categorical=["sex"], continuous=cont, groupby="cohort",
                     nonnormal=nonnormal, pval=True, htest_name=True, missing=False, order=order,
                     rename={"age": "Age, years", "bmd_tscore": "T-score", "n_vertebrae": "Vertebrae per patient",
                             "sex": "Sex"})
    vert = manifest.copy()
    vert["cohort"] = pd.Categorical(vert["cohort"], categories=order["cohort"])
    cat = [c for c in ("level", "morphology", "mri", "bmd", "clinical", "astlof_class", "acuity") if c in vert]
    for c in cat:
        vert[c] = vert[c].astype(str)
    t_vert = TableOne(vert, columns=cat, categorical=cat, groupby="cohort", pval=True, htest_name=True,
                      missing=False, order={**order, "level": sorted(vert["level"].unique(), key=_level_key)},
                      rename={"level": "Level", "morphology": "ASTLOF morphology", "mri": "ASTLOF MRI",
                              "bmd": "ASTLOF BMD", "clinical": "ASTLOF clinical", "astlof_class": "ASTLOF class",
                              "acuity": "Acuity"})
    a, b = t_pat.tableone, t_vert.tableone
    n_row = b.loc[[b.index[0]]].copy()
    n_row.index = pd.MultiIndex.from_tuples([("n (vertebrae)", "")])
    a_n = a.loc[[a.index[0]]].copy()
    a_n.index = pd.MultiIndex.from_tuples([("n (patients)", "")])
    table = pd.concat([a_n, a.iloc[1:], n_row, b.iloc[1:]])
    table.columns = [col[1] if isinstance(col, tuple) else col for col in table.columns]
    return table


def _level_key(level: str) -> tuple[int, int]:
    return (0 if level.startswith("T") else 1, int(level[1:]))


def class_mix(manifest: pd.DataFrame, by: str = "cohort") -> pd.DataFrame:
    """Counts and row percentages of ASTLOF classes per ``by`` (cohort or center)."""
    counts = pd.crosstab(manifest[by], manifest["astlof_class"]).reindex(columns=[0, 1, 2], fill_value=0)
    if by == "cohort":
        counts = counts.reindex([c for c in COHORTS if c in counts.index])
    pct = counts.div(counts.sum(axis=1), axis=0) * 100
    out = counts.astype(str) + " (" + pct.round(1).astype(str) + "%)"
    out.columns = [f"class {c}" for c in out.columns]
    out["n"] = counts.sum(axis=1)
    return out


def paper_class_treatment(paper: str | None = None) -> pd.DataFrame:
    """The papers' ASTLOF class x treatment counts (zhang2024's and liu2025's Table 2), as printed.

    Columns ``paper``, ``astlof_class``, ``treatment``, ``n``, ``source``; one paper's rows if ``paper``.
    """
    from importlib.resources import files

    table = pd.read_csv(files("ovfkit") / "data" / "paper_class_treatment.csv")
    if paper is not None:
        if paper not in set(table["paper"]):
            raise ValueError(f"paper {paper!r} has no class x treatment table; known: {', '.join(table['paper'].unique())}")
        table = table[table["paper"] == paper].reset_index(drop=True)
    return table


def class_mix_statement(manifest: pd.DataFrame, paper: str | None = None) -> str:
    """One Markdown sentence: each ASTLOF class's share of all vertebrae and the rarest class per cohort;
    with ``paper``, that paper's class shares (its class x treatment table) and the largest difference."""
    counts = manifest["astlof_class"].value_counts().reindex([0, 1, 2], fill_value=0)
    shares = ", ".join(f"class {k} {100 * n / counts.sum():.1f}% ({n})" for k, n in counts.items())
    per = pd.crosstab(manifest["cohort"], manifest["astlof_class"]).reindex(columns=[0, 1, 2], fill_value=0)
    per = per.reindex([c for c in COHORTS if c in per.index])
    rarest = "; ".join(f"{c}: class {int(r.idxmin())} (n = {int(r.min())})" for c, r in per.iterrows())
    text = (f"All vertebrae: {shares}. The rarest class per cohort, the one whose one-vs-rest AUC rests on the "
            f"fewest cases: {rarest}.")
    if paper is not None:
        theirs = paper_class_treatment(paper).groupby("astlof_class")["n"].sum().reindex([0, 1, 2], fill_value=0)
        gap = (100 * counts / counts.sum() - 100 * theirs / theirs.sum())
        worst = int(gap.abs().idxmax())
        text += (f" {paper}'s class x treatment table: " +
                 ", ".join(f"class {k} {100 * n / theirs.sum():.1f}%" for k, n in theirs.items()) +
                 f" (n = {int(theirs.sum())}); the largest difference is class {worst}, {gap[worst]:+.1f} "
                 "percentage points here.")
    return text


def acquisition_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per center: image dimensionality, median voxel spacing (mm) and median image size, from headers."""
    import SimpleITK as sitk

    rows = []
    for _, r in manifest.iterrows():
        reader = sitk.ImageFileReader()
        reader.SetFileName(r["image"])
        reader.ReadImageInformation()
        sp, size = reader.GetSpacing(), reader.GetSize()
        rows.append({"center": r["center"], "dim": len(sp), "spacing": sp, "size": size})
    df = pd.DataFrame(rows)
    out = []
    for center, g in df.groupby("center"):
        sp = np.median(np.vstack(g["spacing"].to_numpy()), axis=0)
        size = np.median(np.vstack(g["size"].to_numpy()), axis=0)
        rec = {"center": center, "n": len(g), "dimensions": int(g["dim"].iloc[0])}
        rec["pixel spacing (mm)"] = " x ".join(f"{s:.3g}" for s in sp[:2])
        if len(sp) == 3:
            rec["slice thickness (mm)"] = f"{sp[2]:.3g}"
        rec["size (voxels)"] = " x ".join(f"{int(s)}" for s in size)
        out.append(rec)
    return pd.DataFrame(out).set_index("center")
