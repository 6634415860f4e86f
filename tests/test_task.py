"""The task as a parameter: a binary label (acute vs chronic) through metrics, tuning, DeLong, SHAP,
the nomogram and decision curves, checked against scikit-learn and brute-force references."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

from ovfkit import clinical, explain, fusion, metrics, stats, study
from ovfkit.settings import settings as run_settings
from ovfkit.task import TASKS, get_task

ACUITY = get_task("acuity")


def _binary_cohort(n=160, seed=0, signal=1.2):
    """Feature table with radiomics- and deep-named columns and an acuity label, two vertebrae per patient."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"v{i:04d}" for i in range(n)], name="vertebra_id")
    y = (rng.random(n) < 0.4).astype(int)
    rad = pd.DataFrame(rng.normal(size=(n, 16)), index=ids, columns=[f"original_glcm_F{i}" for i in range(16)])
    rad.iloc[:, :3] += signal * y[:, None]
    deep = pd.DataFrame(rng.normal(size=(n, 20)), index=ids, columns=[f"f{i:04d}" for i in range(20)])
    deep.iloc[:, :3] += 0.8 * signal * y[:, None]
    X = fusion.feature_table(rad, {"netA": deep})
    cohort = np.where(np.arange(n) < 0.6 * n, "train", np.where(np.arange(n) < 0.8 * n, "internal", "external"))
    manifest = pd.DataFrame({"center": np.where(cohort == "external", "E", "I"), "age": rng.normal(70, 8, n),
                             "sex": rng.choice(["F", "M"], n), "patient_id": [f"p{i // 2}" for i in range(n)],
                             "acuity": np.where(y == 1, "acute", "chronic"), "cohort": cohort}, index=ids)
    return X, y, manifest, pd.Series(0.95, index=rad.columns)


def test_task_labels_map_the_column_and_name_the_rows_they_refuse():
    m = pd.DataFrame({"acuity": ["acute", "Chronic ", "acute"]}, index=["a", "b", "c"])
    assert ACUITY.labels(m).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match=r"row: value 'b': 'subacute'.*correct or remove"):
        ACUITY.labels(m.assign(acuity=["acute", "subacute", "chronic"]))
    with pytest.raises(ValueError, match="no column 'acuity'"):
        ACUITY.labels(m.rename(columns={"acuity": "x"}))
    assert TASKS["astlof"].labels(pd.DataFrame({"astlof_class": [2, 0]})).tolist() == [2, 0]
    with pytest.raises(ValueError, match="task 'fracture' is not one of astlof, acuity"):
        get_task("fracture")


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_metrics_equal_scikit_learn_at_the_stated_threshold(threshold):
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.35).astype(int)
    p1 = np.clip(0.35 + 0.3 * (y - 0.35) + rng.normal(0, 0.2, 200), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    pred = (p1 >= threshold).astype(int)
    got = metrics.point_metrics(y, proba, (0, 1), threshold)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
    assert got["sensitivity"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert got["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred), abs=1e-12)
    assert got["ppv"] == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert got["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p1), abs=1e-12)
    assert "macro_auc" not in got and "sensitivity_class_0" not in got
    boot = metrics.bootstrap_metrics(y, proba, np.arange(200) // 2, n_boot=200, classes=(0, 1), threshold=threshold)
    assert boot.loc["sensitivity", "estimate"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert boot.loc["auc", "ci_low"] < boot.loc["auc", "estimate"] < boot.loc["auc", "ci_high"]
    # the patient bootstrap CI of the AUC equals a brute-force loop over the same resamples
    W = metrics.bootstrap_weights(np.arange(200) // 2, 200, seed=0)
    brute = [roc_auc_score(np.repeat(y, w), np.repeat(p1, w)) for w in W]
    lo, hi = np.quantile(brute, [0.025, 0.975])
    est, b_lo, b_hi = metrics.patient_bootstrap_ci(y, proba, np.arange(200) // 2, n_boot=200, classes=(0, 1))
    assert (est, b_lo, b_hi) == pytest.approx((roc_auc_score(y, p1), lo, hi), abs=1e-12)


def test_binary_curves_and_delong_report_the_positive_class_only():
    rng = np.random.default_rng(4)
    y = (rng.random(120) < 0.5).astype(int)
    pa, pb = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, (2, 120)), 0, 1)
    A, B = np.column_stack([1 - pa, pa]), np.column_stack([1 - pb, pb])
    assert set(metrics.roc_table(y, A, (0, 1))["class"]) == {1}
    assert set(metrics.calibration_table(y, A, (0, 1))["class"]) == {1}
    per = stats.per_class_delong(y, A, B, (0, 1))
    ref = stats.delong_test(y, pa, pb)
    assert per["class"].tolist() == [1] and per["p"].iloc[0] == pytest.approx(ref.p, abs=1e-15)
    diff = stats.auc_difference(y, A, B, np.arange(120), n_boot=200, classes=(0, 1))
    assert diff["diff"] == pytest.approx(roc_auc_score(y, pa) - roc_auc_score(y, pb), abs=1e-12)


@pytest.fixture(scope="module")
def binary_study(tmp_path_factory):
    X, y, manifest, icc = _binary_cohort()
    settings = dataclasses.replace(run_settings("quick", "ct", seed=0, task="acuity"),
                                   classifiers=("LR", "RF", "XGBoost", "LightGBM", "KNN"))
    features = study.Features(X, icc, ["netA"], manifest, task=settings.task)
    cache = tmp_path_factory.mktemp("binary")
    return features, settings, study.model_comparison(features, settings, cache, progress=False)


def test_binary_study_predicts_two_columns_and_scores_the_positive_class(binary_study):
    features, settings, result = binary_study
    pred = result.predictions
    assert study.proba_columns(pred) == ["p0", "p1"]
    np.testing.assert_allclose(pred[["p0", "p1"]].sum(axis=1), 1.0)
    assert set(pred["y"]) == {0, 1} and (pred["y"] == features.y.loc[pred["vertebra_id"]].to_numpy()).all()
    scores = result.scores(n_boot=100)
    assert "auc" in scores.columns and "macro_auc" not in scores.columns
    for (variant, model, cohort), g in pred.groupby(["variant", "model", "cohort"]):
        row = scores[(scores["variant"] == variant) & (scores["model"] == model) & (scores["cohort"] == cohort)]
        assert row["auc"].iloc[0] == pytest.approx(roc_auc_score(g["y"], g["p1"]), abs=1e-12)
    assert scores.query("cohort == 'internal'")["auc"].min() > 0.75  # the signal is found on held-out rows
    best = result.best("early netA")
    train = pred[(pred["cohort"] == "train") & (pred["variant"] == "early netA")]
    aucs = {m: roc_auc_score(g["y"], g["p1"]) for m, g in train.groupby("model")}
    assert aucs[best] == max(aucs.values())


def test_binary_comparisons_and_omnibus(binary_study):
    _, _, result = binary_study
    table = study.compare(result.predictions, ("early netA", "LR"), ("early netA", "RF"), n_boot=100)
    assert table["class"].tolist() == ["auc", "auc"]  # one test per cohort: the paired patient bootstrap
    for cohort, g in result.predictions.groupby("cohort"):
        if cohort == "train":
            continue
        a = g[g["model"] == "LR"].set_index("vertebra_id").sort_index()
        b = g[g["model"] == "RF"].set_index("vertebra_id").sort_index()
        row = table.set_index("cohort").loc[cohort]
        assert row["diff"] == pytest.approx(roc_auc_score(a["y"], a["p1"]) - roc_auc_score(b["y"], b["p1"]), abs=1e-12)
    omni = study.omnibus(result.predictions, "early netA")
    assert set(omni["class"]) == {1} and (omni["df"] == 4).all()


@pytest.mark.parametrize("model", ["LR", "RF", "XGBoost", "LightGBM", "KNN"])
def test_binary_shap_explains_the_positive_class_and_adds_up(binary_study, model):
    features, _, result = binary_study
    fitted = result.fitted[("early netA", model)]
    train, internal = features.rows("train"), features.rows("internal")
    cols = list(fitted.feature_names_in_)
    expl = explain.explain(fitted, features.X.loc[train, cols], features.X.loc[internal, cols], max_kernel_cases=8)
    assert expl.classes == (1,) and expl.values.shape[2] == 1
    total = expl.values[:, :, 0].sum(axis=1) + expl.base_values[:, 0]
    p1 = fitted.predict_proba(features.X.loc[internal[: len(total)], cols])[:, 1]
    out = p1 if expl.output == "probability" else np.log(p1 / (1 - p1))
    np.testing.assert_allclose(total, out, atol=1e-5)
    assert list(explain.importance(expl).columns[:1]) == ["class 1"]


def test_binary_nomogram_and_decision_curve_model_the_positive_class(binary_study):
    features, _, result = binary_study
    pred = result.predictions[(result.predictions["variant"] == "early netA") & (result.predictions["model"] == "LR")]
    d = clinical.design(pred, features.manifest, 1)
    assert (d["y"] == (pred["y"].to_numpy() == 1)).all()
    nom = clinical.Nomogram.fit_on(d[d["cohort"] == "train"], 1)
    rows = d[d["cohort"] != "train"]
    np.testing.assert_allclose(nom.probability_from_points(nom.total_points(rows)), nom.predict(rows), atol=1e-10)
    designs = {1: clinical.with_predictions(d, nom)}
    table = clinical.held_out_discrimination(designs).set_index("cohort")
    assert set(table["class"]) == {1} and set(table.index) == {"internal", "external"}
    for cohort, g in pred.groupby("cohort"):  # the DLR score is the positive class's probability
        if cohort != "train":
            assert table.loc[cohort, "AUC DLR"] == pytest.approx(roc_auc_score(g["y"], g["p1"]), abs=1e-9)
    curve = clinical.decision_curve(rows, {"combined": nom.predict(rows)})
    assert {"combined", "all", "none"} <= set(curve["model"])
