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
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ovfkit import calibration, fusion, metrics, stats
from ovfkit.tables import estimate_ci

#: The four models, in the paper's order, with the paper's names.
MODELS = ("HCR", "DTL", "fusion", "nomogram")
PAPER_NAMES = {"HCR": "Radiomics", "DTL": "DLR", "fusion": "Features Fusion", "nomogram": "DLRN"}
#: The paper's feature counts at each step of its selection (Results, "Features selection"; the abstract
#: says 77 fused features, the Results 74 = 30 hand-crafted + 44 deep).
PAPER_COUNTS = {
    ("HCR", "extracted"): 1648, ("HCR", "ICC >= 0.8"): 1589, ("HCR", "Spearman |rho| <= 0.9"): 224,
    ("HCR", "|rho| <= 0.5 after LASSO"): 41,
    ("DTL", "extracted"): 2048, ("DTL", "PCA"): 100, ("DTL", "LASSO"): 50,
    ("fused", "LASSO"): 74,
}
STEP_NAMES = {"variance": "non-constant", "icc": "ICC >= 0.8", "spearman": "Spearman |rho| <= 0.9", "pca": "PCA",
              "lasso": "LASSO", "decorrelate": "|rho| <= 0.5 after LASSO"}


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

    Age (patients): Welch's t-test, which needs neither equal variances nor, with groups of this size,
    normal ages, and is chosen without a normality pre-test (the paper gives mean ± SD (range) and a p-value
    without naming its test). Sex (patients) and thoracic/lumbar level (fractures): Pearson's chi-square
    (Fisher's exact test when an expected count is below 5); the level test counts fractures, several of
    which can belong to one patient, so its p-value is somewhat too small. A row counts the patients with
    fractures of both kinds (grouped as acute).

    Returns
    -------
    DataFrame, one row per variable: ``acute``, ``chronic``, ``statistical test``, ``p`` (this cohort) and ``paper acute``,
    ``paper chronic``, ``paper p`` (zhang2023's Table 1).
    """
    group = patient_acuity(manifest)
    first = manifest.groupby("patient_id")[["age", "sex"]].first().join(group)
    ages = [first.loc[first["acuity"] == g, "age"].astype(float) for g in ("acute", "chronic")]
    age_test, age_p = "Welch t-test", sps.ttest_ind(*ages, equal_var=False).pvalue
    mixed = int((manifest.groupby("patient_id")["acuity"].nunique() > 1).sum())
    sex = pd.crosstab(first["acuity"], first["sex"].astype(str).str.upper().str[0]).reindex(
        index=["acute", "chronic"], columns=["F", "M"], fill_value=0)
    region = np.where(manifest["level"].astype(str).str.startswith("T"), "thoracic", "lumbar")
    level = pd.crosstab(manifest["acuity"].astype(str).str.lower(), region).reindex(
        index=["acute", "chronic"], columns=["thoracic", "lumbar"], fill_value=0)
    rows = [
        {"variable": "Patients", "acute": str(int((group == "acute").sum())),
         "chronic": str(int((group == "chronic").sum())), "statistical test": "", "p": np.nan,
         "paper acute": "253", "paper chronic": "112", "paper p": np.nan},
        {"variable": "Patients with acute and chronic fractures", "acute": str(mixed), "chronic": "–", "statistical test": "",
         "p": np.nan, "paper acute": "–", "paper chronic": "–", "paper p": np.nan},
        {"variable": "Age, years: mean ± SD (range)", "acute": _mean_sd(ages[0]), "chronic": _mean_sd(ages[1]),
         "statistical test": age_test, "p": float(age_p), "paper acute": "59.3 ± 18.1 (17-95)",
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
        return {"statistical test": "not testable (an empty row or column)", "p": np.nan}
    chi2, p, _, expected = sps.chi2_contingency(observed, correction=False)
    if expected.min() < 5:
        return {"statistical test": "Fisher's exact", "p": float(sps.fisher_exact(observed).pvalue)}
    return {"statistical test": "chi-square", "p": float(p)}


def cascade_counts(pipeline, n_extracted: dict) -> pd.DataFrame:
    """Features left after each step of the fusion pipeline's selection, fitted on all training rows.

    The fusion pipeline of this study selects each source on its own (``select_sources_first``: the same
    steps, rows and seeds as the HCR-only and DTL-only models, so their counts are these), then fuses and
    selects again.

    Parameters
    ----------
    pipeline : sklearn Pipeline
        The fitted fusion pipeline (``ModelResult.fitted``): a ``prepare`` step with one chain per source,
        then ``scale``, ``lasso`` and, with a post-LASSO filter, ``decorrelate``.
    n_extracted : dict
        Source -> columns extracted (radiomics features, 2048 deep features).

    Returns
    -------
    DataFrame, one row per step: ``set`` (HCR, DTL, fused), ``step``, ``features`` (this cohort), ``by source``
    (fused rows) and ``paper`` (zhang2023, where it reports the step).
    """
    prepare = pipeline.named_steps["prepare"]
    rows = []
    for source, chain, _ in prepare.transformers_:
        if source == "remainder":
            continue
        name = "HCR" if source == fusion.RADIOMICS else "DTL"
        rows.append((name, "extracted", n_extracted[source], ""))
        rows += [(name, STEP_NAMES.get(step_name, step_name), len(step.get_feature_names_out()), "")
                 for step_name, step in chain.steps if step_name != "scale"]
    names = pipeline.named_steps["scale"].get_feature_names_out()
    kept = names[pipeline.named_steps["lasso"].support_]
    rows.append(("fused", "LASSO", len(kept), fusion.count_by_source(kept)))
    if "decorrelate" in pipeline.named_steps:
        final = pipeline.named_steps["decorrelate"].get_feature_names_out()
        rows.append(("fused", STEP_NAMES["decorrelate"], len(final), fusion.count_by_source(final)))
    out = pd.DataFrame(rows, columns=["set", "step", "features", "by source"])
    out["paper"] = pd.array([PAPER_COUNTS.get((s, st)) for s, st in zip(out["set"], out["step"])], dtype="Int64")
    return out


def paper_table2() -> pd.DataFrame:
    """zhang2023's Table 2: AUC (95% CI), accuracy, sensitivity, specificity and F1 of the four models."""
    return pd.read_csv(Path(__file__).parent / "data" / "zhang2023_table2.csv")


def delong_pairs(scores: dict, y, groups, *, cohort: str, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired DeLong tests between every two models on the same vertebrae, Holm-corrected, with a paired
    patient-bootstrap check.

    DeLong's variance is Obuchowski's (1997) clustered form, ``groups`` the clusters: a patient's fractures
    are not independent. Each pair also gets the paired patient bootstrap of the AUC difference
    (:func:`ovfkit.stats.auc_difference`: the same resampled patients score both models), a second estimate
    that respects the clustering without DeLong's normal approximation.

    Parameters
    ----------
    scores : dict
        Model name -> P(acute) of each vertebra, all aligned with ``y``.
    y : array-like of 0/1
    groups : array-like
        Patient of each vertebra.
    cohort : str
        Written in the table.

    Returns
    -------
    DataFrame, one row per pair: ``a``, ``b``, ``AUC a``, ``AUC b``, ``difference``, ``95% CI`` and ``p``
    (DeLong), ``p (Holm)`` (over the pairs of this cohort), ``bootstrap 95% CI`` and ``bootstrap p``.
    """
    rows = []
    for a, b in itertools.combinations(scores, 2):
        t = stats.delong_test(y, scores[a], scores[b], groups=groups)
        boot = stats.auc_difference(y, metrics.binary_proba(scores[a]), metrics.binary_proba(scores[b]), groups,
                                    n_boot=n_boot, seed=seed, classes=(0, 1))
        rows.append({"cohort": cohort, "a": a, "b": b, "AUC a": t.auc_a, "AUC b": t.auc_b, "difference": t.diff,
                     "95% CI": f"{t.ci[0]:.3f} to {t.ci[1]:.3f}", "p": t.p,
                     "bootstrap 95% CI": f"{boot['ci_low']:.3f} to {boot['ci_high']:.3f}", "bootstrap p": boot["p"]})
    columns = ["cohort", "a", "b", "AUC a", "AUC b", "difference", "95% CI", "p", "p (Holm)", "bootstrap 95% CI",
               "bootstrap p"]
    if not rows:  # fewer than two models: no pair to test
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("p") + 1, "p (Holm)", stats.adjust(out["p"], "holm"))
    return out[columns]


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


SIGNS = ("condensation band", "vacuum cleft (gas)", "fluid cleft", "none")


def _truth(manifest_path) -> pd.DataFrame | None:
    """The synthetic generator's ``truth.csv`` beside a manifest, indexed by vertebra; None for real data."""
    truth = Path(manifest_path).parent / "truth.csv"
    return pd.read_csv(truth).set_index("vertebra_id") if truth.is_file() else None


def _signs(truth: pd.DataFrame) -> pd.Series:
    """The CT sign drawn in each fracture of a truth table, one of :data:`SIGNS`."""
    sign = np.select([truth["condensation_band"].astype(bool), truth["mri_finding"] == "vacuum_cleft",
                      truth["mri_finding"] == "fluid"], list(SIGNS[:3]), SIGNS[3])
    return pd.Series(sign, index=truth.index, name="CT sign drawn")


def phantom_sign_of(manifest_path) -> pd.Series | None:
    """The CT sign the synthetic phantom drew in each fracture (its ``truth.csv``), one of :data:`SIGNS`;
    a fracture with a band and a cleft counts as ``condensation band``. None for real data (no truth file)."""
    truth = _truth(manifest_path)
    return None if truth is None else _signs(truth)


def phantom_signs(manifest_path) -> pd.DataFrame | None:
    """Share of each CT sign the phantom drew (:func:`phantom_sign_of`) among acute and among chronic
    fractures. None for real data."""
    truth = _truth(manifest_path)
    if truth is None:
        return None
    acuity = pd.Series(np.where(truth["mri_finding"] == "edema", "acute", "chronic"), index=truth.index,
                       name="acuity")
    return pd.crosstab(acuity, _signs(truth), normalize="index").reindex(columns=list(SIGNS), fill_value=0.0).round(3)


def sign_auc(manifest: pd.DataFrame, manifest_path) -> pd.DataFrame | None:
    """How easy each set is by the phantom's truth: the AUC, per cohort, of a reader who sees the drawn signs
    perfectly and calls a band acute, a cleft chronic and nothing in between (score 1, 0, 0.5). None for
    real data."""
    from sklearn.metrics import roc_auc_score

    sign = phantom_sign_of(manifest_path)
    if sign is None:
        return None
    score = sign.map({SIGNS[0]: 1.0, SIGNS[1]: 0.0, SIGNS[2]: 0.0, SIGNS[3]: 0.5})
    rows = []
    for cohort, g in manifest.groupby("cohort", sort=False):
        y = g["acuity"].astype(str).str.lower().eq("acute").to_numpy()
        rows.append({"set": "test" if cohort == "internal" else "training" if cohort == "train" else cohort,
                     "fractures": len(g), "acute share": float(y.mean()),
                     "AUC of the drawn signs": roc_auc_score(y, score.loc[g.index])})
    return pd.DataFrame(rows)


#: Threshold metrics in reading order, with their names in the book.
METRIC_NAMES = {"sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV",
                "accuracy": "accuracy", "f1": "F1"}


def youden_metrics(aligned: dict, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Threshold metrics of each model at the Youden threshold of its training predictions, on every cohort.

    Parameters
    ----------
    aligned : dict
        Cohort label -> ``(y, {model: P(acute)}, patient ids)``; the first cohort is the training one, whose
        predictions choose each model's threshold (:func:`ovfkit.calibration.youden_threshold`), applied
        unchanged to the others.

    Returns
    -------
    DataFrame, long: ``model``, ``cohort``, ``threshold``, ``metric`` (book names, in the order of
    :data:`METRIC_NAMES`), ``estimate``, ``ci_low``, ``ci_high`` (patient bootstrap).
    """
    y_train, train_scores, _ = next(iter(aligned.values()))
    parts = []
    for name, p_train in train_scores.items():
        threshold = calibration.youden_threshold(y_train, p_train)
        for label, (y, scores, groups) in aligned.items():
            t = calibration.threshold_metrics(y, scores[name], threshold, groups, n_boot=n_boot, seed=seed)
            parts.append(t.assign(model=name, cohort=label, threshold=threshold))
    out = pd.concat(parts, ignore_index=True)  # models, cohorts and metrics in the order given
    out["metric"] = out["metric"].map(METRIC_NAMES)
    return out[["model", "cohort", "threshold", "metric", "estimate", "ci_low", "ci_high"]]


def metrics_beside_paper(youden: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 accuracy, sensitivity, specificity and F1 beside this study's (Youden threshold
    from training data), per model and cohort. Paper percentages are shown as proportions."""
    paper = paper_table2().set_index(["model", "cohort"])
    rows = []
    for _, r in youden[youden["metric"].isin(["accuracy", "sensitivity", "specificity", "F1"])].iterrows():
        p = paper.loc[(PAPER_NAMES[r["model"]], r["cohort"])]
        rows.append({"model": r["model"], "cohort": r["cohort"], "metric": str(r["metric"]),
                     "paper": float(p[str(r["metric"]).lower()]),
                     "this study (95% CI)": estimate_ci(r["estimate"], r["ci_low"], r["ci_high"])})
    return pd.DataFrame(rows)


#: The paper's DeLong P values (Results): fusion vs nomogram 0.794 (training) and 0.668 (test); every other
#: pair "P < 0.05" in both cohorts.
PAPER_DELONG = {("training", frozenset({"fusion", "nomogram"})): "0.794",
                ("test", frozenset({"fusion", "nomogram"})): "0.668"}


def paper_delong(delong: pd.DataFrame) -> list:
    """The paper's DeLong P value for each row of :func:`delong_pairs` (a string, as the paper gives it)."""
    return [PAPER_DELONG.get((c, frozenset({a, b})), "< 0.05") for c, a, b in
            zip(delong["cohort"], delong["a"], delong["b"])]


#: The cohorts of this study as the book names them (the manifest's held-out cohort is ``internal``).
COHORT_LABELS = {"train": "training", "internal": "test"}


def aligned_scores(result, nomogram=None, design: pd.DataFrame | None = None) -> dict:
    """Each model's P(acute) on the same vertebrae, per cohort: the chosen HCR, DTL and fusion classifiers
    (training rows: nested-CV out-of-fold) and, given a fitted nomogram and its design rows, the nomogram.

    Parameters
    ----------
    result : ovfkit.study.ModelResult
        Of :func:`ovfkit.study.model_comparison` with :func:`sources`.
    nomogram : ovfkit.clinical.Nomogram, optional
    design : DataFrame, optional
        :func:`ovfkit.clinical.design` rows of the fusion predictions (every cohort), for the nomogram.

    Returns
    -------
    dict
        ``"training"`` and ``"test"`` -> ``(y, {model: P(acute)}, patient ids)``, arrays aligned by vertebra.
    """
    preds = {v: result.chosen_predictions(v).set_index("vertebra_id") for v in ("HCR", "DTL", "fusion")}
    out = {}
    for cohort, label in COHORT_LABELS.items():
        rows = preds["fusion"][preds["fusion"]["cohort"] == cohort]
        scores = {v: p.loc[rows.index, "p1"].to_numpy(dtype=float) for v, p in preds.items()}
        if nomogram is not None:
            scores["nomogram"] = nomogram.predict(design.set_index("vertebra_id").loc[rows.index])
        out[label] = (rows["y"].to_numpy(), scores, rows["patient_id"].to_numpy())
    return out


def model_aucs(aligned: dict, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """AUC of P(acute) with a 95% patient-bootstrap CI for every model and cohort of :func:`aligned_scores`,
    with how it was obtained and the paper's AUC beside it."""
    how = {"training": "nested CV (out-of-fold)", "test": "held-out 20% of patients"}
    paper = paper_table2().set_index(["model", "cohort"])["auc"]
    rows = []
    for label, (y, scores, groups) in aligned.items():
        for name, p in scores.items():
            est, lo, hi = metrics.patient_bootstrap_ci(y, metrics.binary_proba(p), groups, n_boot=n_boot, seed=seed,
                                                       classes=(0, 1))
            rows.append({"model": name, "cohort": label, "auc": est, "ci_low": lo, "ci_high": hi,
                         "how": "in-sample nomogram on out-of-fold scores" if (name, label) == ("nomogram", "training")
                         else how[label], "paper_auc": float(paper[(PAPER_NAMES[name], label)])})
    return pd.DataFrame(rows)
