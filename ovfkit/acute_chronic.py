"""zhang2023's study, acute vs chronic vertebral compression fracture on CT: what its chapters compute.

The pipeline is the task-generic one (:mod:`ovfkit.study`) with the settings of
``settings(profile, "ct", study="acute-chronic")``; this module adds what is particular to the paper:

* Table 1 by acuity, beside the paper's (:func:`table_one`);
* the feature counts of the selection cascade at every step, beside the paper's 1648 -> 1589 -> 224 -> 41
  hand-crafted, 2048 -> 100 -> 50 deep and 74 fused features (:func:`cascade_counts`);
* the three feature sets the paper compares, hand-crafted radiomics (HCR), deep transfer learning (DTL, the
  paper's "DLR" model) and their early fusion (:func:`sources`), and the chosen classifier of each
  (``ModelResult.chosen_predictions``);
* the four models side by side with the paper's Table 2 (:func:`side_by_side`) and their paired DeLong
  tests (:func:`delong_pairs`).

Patients: a patient counts as acute in Table 1 when any of their fractures is acute (the paper's Table 1
has 253 acute and 112 chronic patients, 365 in all, so it, too, puts each patient in one group).
"""

from __future__ import annotations

import itertools
from importlib import resources

import numpy as np
import pandas as pd
from scipy import stats as sps

from ovfkit import fusion, stats
from ovfkit.tables import estimate_ci

#: The four models, in the paper's order, with the paper's names.
MODELS = ("HCR", "DTL", "fusion", "nomogram")
PAPER_NAMES = {"HCR": "Radiomics", "DTL": "DLR", "fusion": "Features Fusion", "nomogram": "DLRN"}
#: The paper's feature counts at each step of its selection (Results, "Features selection").
PAPER_COUNTS = {
    ("HCR", "extracted"): 1648, ("HCR", "ICC >= 0.8"): 1589, ("HCR", "Spearman |rho| <= 0.9"): 224,
    ("HCR", "LASSO (+ |rho| <= 0.5)"): 41,
    ("DTL", "extracted"): 2048, ("DTL", "PCA"): 100, ("DTL", "LASSO (+ |rho| <= 0.5)"): 50,
    ("fusion", "LASSO (+ |rho| <= 0.5)"): 74,
}


def sources(backbone: str) -> dict:
    """The three feature sets: variant name -> sources of :func:`ovfkit.study.model_comparison`."""
    return {"HCR": [fusion.RADIOMICS], "DTL": [backbone], "fusion": [fusion.RADIOMICS, backbone]}


def patient_acuity(manifest: pd.DataFrame) -> pd.Series:
    """``acute`` for a patient with any acute fracture, else ``chronic``; indexed by patient id."""
    acute = manifest["acuity"].astype(str).str.lower().eq("acute").groupby(manifest["patient_id"]).any()
    return acute.map({True: "acute", False: "chronic"}).rename("acuity")


def _mean_sd(x: pd.Series) -> str:
    return f"{x.mean():.1f} ± {x.std(ddof=1):.1f} ({x.min():.0f}-{x.max():.0f})"


def table_one(manifest: pd.DataFrame) -> pd.DataFrame:
    """Table 1 by acuity beside the paper's, with the test each variable calls for.

    Age (patients): Welch's t-test when Shapiro-Wilk accepts normality in both groups, else Mann-Whitney U
    (the paper gives mean ± SD (range) and a p-value without naming its test). Sex (patients) and
    thoracic/lumbar level (fractures): Pearson's chi-square (Fisher's exact test when an expected count is
    below 5).

    Returns
    -------
    DataFrame, one row per variable: ``acute``, ``chronic``, ``test``, ``p`` (this cohort) and ``paper acute``,
    ``paper chronic``, ``paper p`` (zhang2023's Table 1).
    """
    group = patient_acuity(manifest)
    first = manifest.groupby("patient_id")[["age", "sex"]].first().join(group)
    ages = [first.loc[first["acuity"] == g, "age"].astype(float) for g in ("acute", "chronic")]
    normal = all(len(a) >= 3 and sps.shapiro(a).pvalue > 0.05 for a in ages)
    if normal:
        age_test, age_p = "Welch t-test", sps.ttest_ind(*ages, equal_var=False).pvalue
    else:
        age_test, age_p = "Mann-Whitney U", sps.mannwhitneyu(*ages).pvalue
    sex = pd.crosstab(first["acuity"], first["sex"].astype(str).str.upper().str[0]).reindex(
        index=["acute", "chronic"], columns=["F", "M"], fill_value=0)
    region = np.where(manifest["level"].astype(str).str.startswith("T"), "thoracic", "lumbar")
    level = pd.crosstab(manifest["acuity"].astype(str).str.lower(), region).reindex(
        index=["acute", "chronic"], columns=["thoracic", "lumbar"], fill_value=0)
    rows = [
        {"variable": "Patients", "acute": str(int((group == "acute").sum())),
         "chronic": str(int((group == "chronic").sum())), "test": "", "p": np.nan,
         "paper acute": "253", "paper chronic": "112", "paper p": np.nan},
        {"variable": "Age, years: mean ± SD (range)", "acute": _mean_sd(ages[0]), "chronic": _mean_sd(ages[1]),
         "test": age_test, "p": float(age_p), "paper acute": "59.3 ± 18.1 (17-95)",
         "paper chronic": "71.1 ± 11.9 (39-95)", "paper p": 0.225},
        {"variable": "Females/males", "acute": f"{sex.loc['acute', 'F']}/{sex.loc['acute', 'M']}",
         "chronic": f"{sex.loc['chronic', 'F']}/{sex.loc['chronic', 'M']}", **_categorical(sex),
         "paper acute": "164/89", "paper chronic": "78/34", "paper p": 0.812},
        {"variable": "Fractures (thoracic, lumbar)",
         "acute": f"{level.loc['acute'].sum()} ({level.loc['acute', 'thoracic']}, {level.loc['acute', 'lumbar']})",
         "chronic": f"{level.loc['chronic'].sum()} ({level.loc['chronic', 'thoracic']}, "
                    f"{level.loc['chronic', 'lumbar']})", **_categorical(level),
         "paper acute": "315 (111, 204)", "paper chronic": "205 (88, 117)", "paper p": 0.956},
    ]
    return pd.DataFrame(rows).set_index("variable")


def _categorical(table: pd.DataFrame) -> dict:
    """The test and p-value of a 2x2 table: chi-square, or Fisher's exact test for a small expected count."""
    observed = table.to_numpy()
    if observed.sum(axis=0).min() == 0 or observed.sum(axis=1).min() == 0:
        return {"test": "not testable (an empty row or column)", "p": np.nan}
    chi2, p, _, expected = sps.chi2_contingency(observed, correction=False)
    if expected.min() < 5:
        return {"test": "Fisher's exact", "p": float(sps.fisher_exact(observed).pvalue)}
    return {"test": "chi-square", "p": float(p)}


def cascade_counts(variant: str, pipeline, n_extracted: dict) -> pd.DataFrame:
    """Features left after each step of one variant's selection, fitted on all training rows.

    Parameters
    ----------
    variant : {"HCR", "DTL", "fusion"}
    pipeline : sklearn Pipeline
        The variant's fitted pipeline (``ModelResult.fitted``): a ``prepare`` step with one chain per
        source, then ``scale``, ``lasso`` and ``decorrelate``.
    n_extracted : dict
        Source -> columns extracted (radiomics features, 2048 deep features).

    Returns
    -------
    DataFrame, one row per step: ``step``, ``features`` (this cohort), ``paper`` (zhang2023, where it says).
    """
    prepare = pipeline.named_steps["prepare"]
    rows = []
    for source, chain, _ in prepare.transformers_:
        if source == "remainder":
            continue
        name = "HCR" if source == fusion.RADIOMICS else "DTL"
        rows.append((name, "extracted", n_extracted[source]))
        steps = {"variance": "non-constant", "icc": "ICC >= 0.8", "spearman": "Spearman |rho| <= 0.9",
                 "pca": "PCA"}
        for step_name, step in chain.steps:
            rows.append((name, steps.get(step_name, step_name), len(step.get_feature_names_out())))
    lasso = pipeline.named_steps["lasso"]
    rows.append((variant, "LASSO", int(lasso.support_.sum())))
    rows.append((variant, "LASSO (+ |rho| <= 0.5)", len(pipeline.named_steps["decorrelate"].get_feature_names_out())))
    out = pd.DataFrame(rows, columns=["set", "step", "features"])
    out["paper"] = [PAPER_COUNTS.get((s, st), np.nan) for s, st in zip(out["set"], out["step"])]
    return out


def paper_table2() -> pd.DataFrame:
    """zhang2023's Table 2: AUC (95% CI), accuracy, sensitivity, specificity and F1 of the four models."""
    path = resources.files("ovfkit.data").joinpath("zhang2023_table2.csv")
    with path.open(encoding="utf-8") as fh:
        return pd.read_csv(fh)


def delong_pairs(scores: dict, y, *, cohort: str) -> pd.DataFrame:
    """Paired DeLong tests between every two of the four models on the same vertebrae, Holm-corrected.

    Parameters
    ----------
    scores : dict
        Model name -> P(acute) of each vertebra, all aligned with ``y``.
    y : array-like of 0/1
    cohort : str
        Written in the table.

    Returns
    -------
    DataFrame, one row per pair: ``a``, ``b``, ``AUC a``, ``AUC b``, ``difference``, ``95% CI`` (DeLong),
    ``p`` and ``p (Holm)`` (over the pairs of this cohort).
    """
    rows = []
    for a, b in itertools.combinations(scores, 2):
        t = stats.delong_test(y, scores[a], scores[b])
        rows.append({"cohort": cohort, "a": a, "b": b, "AUC a": t.auc_a, "AUC b": t.auc_b, "difference": t.diff,
                     "95% CI": f"{t.ci[0]:.3f} to {t.ci[1]:.3f}", "p": t.p})
    out = pd.DataFrame(rows)
    out["p (Holm)"] = stats.adjust(out["p"], "holm")
    return out


def side_by_side(aucs: pd.DataFrame) -> pd.DataFrame:
    """The paper's AUCs beside this study's, per model and cohort.

    Parameters
    ----------
    aucs : DataFrame
        Columns ``model`` (one of :data:`MODELS`), ``cohort`` (``training`` or ``test``), ``auc``, ``ci_low``,
        ``ci_high`` and ``how`` (how this study obtained it).
    """
    paper = paper_table2().set_index(["model", "cohort"])
    rows = []
    for _, r in aucs.iterrows():
        p = paper.loc[(PAPER_NAMES[r["model"]], r["cohort"])]
        rows.append({"model": r["model"], "paper's name": PAPER_NAMES[r["model"]], "cohort": r["cohort"],
                     "paper AUC (95% CI)": estimate_ci(p["auc"], p["ci_low"], p["ci_high"]),
                     "this study AUC (95% CI)": estimate_ci(r["auc"], r["ci_low"], r["ci_high"]),
                     "this study: how": r["how"]})
    return pd.DataFrame(rows)


def phantom_signs(manifest_path) -> pd.DataFrame | None:
    """What the synthetic phantom drew in each acute and chronic fracture (its ``truth.csv``): the share
    with a condensation band, a vacuum cleft, fluid, or none of these. None for a cohort without a truth file
    (real data)."""
    from pathlib import Path

    truth = Path(manifest_path).parent / "truth.csv"
    if not truth.is_file():
        return None
    t = pd.read_csv(truth).set_index("vertebra_id")
    acuity = np.where(t["mri_finding"] == "edema", "acute", "chronic")
    sign = np.select([t["condensation_band"].astype(bool), t["mri_finding"] == "vacuum_cleft",
                      t["mri_finding"] == "fluid"], ["condensation band", "vacuum cleft (gas)", "fluid cleft"],
                     "no sign (healed or band-free)")
    return pd.crosstab(pd.Series(acuity, name="acuity"), pd.Series(sign, name="CT sign drawn"), normalize="index"
                       ).round(3)
