"""The acute-vs-chronic study (zhang2023): its cohort design, settings, selection, Table 1, tests and parts."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from ovfkit import acute_chronic as ac
from ovfkit import runner, synth
from ovfkit.select import LassoSelector
from ovfkit.settings import ACUTE_CHRONIC_CLASSIFIERS, settings


@pytest.fixture(scope="module")
def design_table():
    return synth.cohort_table("ct", seed=42, design="zhang2023")


def test_zhang2023_design_has_the_papers_counts_one_center_and_an_8_to_2_patient_split(design_table):
    t = design_table
    assert t["patient_id"].nunique() == 365 and len(t) == 520
    assert set(t["center"]) == {"iCT"} and set(t["cohort"]) == {"train", "internal"}
    assert t.groupby("patient_id")["cohort"].nunique().max() == 1  # a patient's fractures stay on one side
    train_patients = t.loc[t["cohort"] == "train", "patient_id"].nunique()
    assert train_patients == round(0.8 * 365)
    assert (t["morphology_finding"] != "normal").all()  # every fracture visible on CT


def test_zhang2023_design_has_the_papers_acute_share_and_younger_acute_patients(design_table):
    t = design_table
    acute = (t["acuity"] == "acute").to_numpy()
    assert abs(acute.mean() - 315 / 520) < 0.05
    assert t.loc[acute, "age"].mean() < t.loc[~acute, "age"].mean() - 5  # the paper: 59.3 vs 71.1 years
    # acuity follows the MRI finding (edema), and the CT signs follow acuity without fixing it
    assert ((t["mri_finding"] == "edema") == acute).all()
    band = t["condensation_band"].astype(bool).to_numpy()
    assert 0.6 < band[acute].mean() < 0.95 and band[~acute].mean() < 0.15


@pytest.mark.parametrize("modality, design", [("xray", "zhang2023"), ("ct", "nonsense")])
def test_a_design_of_another_modality_or_unknown_is_refused_by_name(modality, design):
    with pytest.raises(ValueError, match=design):
        synth.cohort_table(modality, seed=1, n_patients=10, design=design)


def test_synth_cli_refuses_a_design_of_another_modality_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ovfkit", "synth", "--modality", "xray", "--design", "zhang2023",
                           "--out", str(tmp_path / "c"), "--n-patients", "10"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "zhang2023" in proc.stderr and "--modality ct" in proc.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("profile, components", [("quick", 8), ("default", 100), ("paper", 100)])
def test_acute_chronic_settings_follow_the_paper(profile, components):
    s = settings(profile, "ct", 42, study="acute-chronic")
    assert s.task.name == "acuity" and s.design == "zhang2023" and s.radiomics_params == "ct_volume_1mm"
    assert s.classifiers == ACUTE_CHRONIC_CLASSIFIERS and "LR" in s.classifiers and "MLP" not in s.classifiers
    assert s.fusion.deep_components == components
    assert not s.fusion.combat and s.fusion.lasso_method == "logistic" and s.fusion.post_lasso_threshold == 0.5


def test_acute_chronic_study_on_xray_is_refused():
    with pytest.raises(ValueError, match="CT"):
        settings("quick", "xray", study="acute-chronic")


def _logistic_data(seed: int, n: int = 300, p: int = 12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    lp = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 2]
    return X, (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)


@pytest.mark.parametrize("seed", [0, 3])
def test_logistic_lasso_equals_statsmodels_l1_logit_at_the_chosen_penalty(seed):
    """The selector's coefficients at its chosen lambda are the L1 logistic regression's, as statsmodels fits it
    (intercept unpenalized; liblinear penalizes it lightly, hence the tolerance)."""
    X, y = _logistic_data(seed)
    sel = LassoSelector(method="logistic", cv=5).fit(X, y)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    ref = sm.Logit(y, sm.add_constant(Z)).fit_regularized(method="l1", alpha=np.r_[0, np.full(X.shape[1], sel.alpha_)],
                                                         disp=0, trim_mode="size", qc_tol=1, acc=1e-10)
    np.testing.assert_allclose(sel.coef_, ref.params[1:], atol=0.01)
    strong = np.abs(ref.params[1:]) > 0.02
    assert (sel.support_[strong]).all()
    assert sel.support_[:3].all()  # the three true signals
    assert sel.coef_path_.shape == (X.shape[1], sel.n_alphas) and (sel.coef_path_[:, 0] == 0).all()


def test_logistic_lasso_refuses_more_than_two_classes():
    X, _ = _logistic_data(0)
    with pytest.raises(ValueError, match="binary"):
        LassoSelector(method="logistic", cv=3).fit(X, np.arange(len(X)) % 3)


def _manifest():
    rows = []
    for i in range(40):
        acute = i % 5 < 3
        rows.append({"patient_id": f"P{i:02d}", "vertebra_id": f"P{i:02d}_L1", "level": "T12" if i % 3 else "L2",
                     "acuity": "acute" if acute else "chronic", "age": 50 + (i * 7) % 40 + (0 if acute else 12),
                     "sex": "M" if i % 4 == 0 else "F"})
    rows.append({**rows[0], "vertebra_id": "P00_L3", "acuity": "chronic", "level": "L3"})  # mixed patient
    return pd.DataFrame(rows).set_index("vertebra_id")


def test_table_one_tests_equal_scipy_and_a_patient_with_any_acute_fracture_is_acute():
    m = _manifest()
    t = ac.table_one(m)
    assert t.loc["Patients", "acute"] == "24" and t.loc["Patients", "chronic"] == "16"
    first = m.groupby("patient_id")[["age", "sex"]].first().join(ac.patient_acuity(m))
    a, c = (first.loc[first["acuity"] == g, "age"] for g in ("acute", "chronic"))
    assert t.loc["Age, years: mean ± SD (range)", "statistical test"] == "Welch t-test"
    assert t.loc["Age, years: mean ± SD (range)", "p"] == pytest.approx(sps.ttest_ind(a, c, equal_var=False).pvalue)
    assert t.loc["Patients with acute and chronic fractures", "acute"] == "1"
    sex = pd.crosstab(first["acuity"], first["sex"]).to_numpy()
    row = t.loc["Females/males"]
    ref = sps.chi2_contingency(sex, correction=False)
    expected = sps.fisher_exact(sex).pvalue if ref[3].min() < 5 else ref[1]
    assert row["p"] == pytest.approx(expected)
    assert row["statistical test"] == ("Fisher's exact" if ref[3].min() < 5 else "chi-square")
    assert t.loc["Fractures (thoracic, lumbar)", "acute"].startswith("24 (")  # fractures, not patients
    assert t.loc["Age, years: mean ± SD (range)", "paper p"] == 0.225


def test_delong_pairs_cover_every_pair_with_holm_over_the_cohort():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    scores = {k: y * s + rng.normal(size=120) for k, s in zip(ac.MODELS, (0.5, 1.0, 1.5, 1.6))}
    groups = np.arange(120) // 2  # two fractures per patient
    table = ac.delong_pairs(scores, y, groups, cohort="test", n_boot=200)
    assert len(table) == 6 and set(table["cohort"]) == {"test"}
    np.testing.assert_allclose(table["p (Holm)"], multipletests(table["p"], method="holm")[1])
    for _, r in table.iterrows():  # the bootstrap check scores the same difference
        low, high = map(float, r["bootstrap 95% CI"].split(" to "))
        assert low <= r["difference"] <= high and 0 < r["bootstrap p"] <= 1


def test_side_by_side_sets_the_papers_table_2_beside_each_auc():
    aucs = pd.DataFrame([{"model": "fusion", "cohort": "test", "auc": 0.8, "ci_low": 0.7, "ci_high": 0.9,
                          "how": "held out"}])
    row = ac.side_by_side(aucs).iloc[0]
    assert row["paper's name"] == "Features Fusion"
    assert row["paper AUC (95% CI)"].startswith("0.915") and row["this study AUC (95% CI)"].startswith("0.800")


@pytest.mark.parametrize("modality, study, keys", [
    ("all", "all", ["xray", "ct", "acute-chronic", "fresh-old"]), ("ct", "all", ["ct", "acute-chronic"]),
    ("xray", "all", ["xray", "fresh-old"]), ("all", "astlof", ["xray", "ct"]),
    ("ct", "acute-chronic", ["acute-chronic"]), ("all", "fresh-old", ["fresh-old"])])
def test_run_selects_the_parts_of_the_book(modality, study, keys):
    assert [p.key for p in runner.select_parts(modality, study)] == keys


def test_a_study_without_the_chosen_modality_is_refused():
    with pytest.raises(ValueError, match="acute-chronic.*ct"):
        runner.select_parts("xray", "acute-chronic")
    with pytest.raises(ValueError, match="fresh-old.*xray"):
        runner.select_parts("ct", "fresh-old")


def test_youden_threshold_comes_from_training_and_is_applied_unchanged_to_test():
    from ovfkit import calibration

    rng = np.random.default_rng(1)
    y_tr, y_te = rng.integers(0, 2, 200), rng.integers(0, 2, 80)
    s_tr = {"fusion": np.clip(0.3 * y_tr + rng.random(200) * 0.7, 0, 1)}
    s_te = {"fusion": np.clip(0.3 * y_te + rng.random(80) * 0.7, 0, 1)}
    g_tr, g_te = np.arange(200), np.arange(80)
    table = ac.youden_metrics({"training": (y_tr, s_tr, g_tr), "test": (y_te, s_te, g_te)}, n_boot=100)
    threshold = calibration.youden_threshold(y_tr, s_tr["fusion"])
    assert (table["threshold"] == threshold).all()
    test = table[table["cohort"] == "test"].set_index("metric")
    sens = ((s_te["fusion"] >= threshold) & (y_te == 1)).sum() / (y_te == 1).sum()
    assert test.loc["sensitivity", "estimate"] == pytest.approx(sens)
    assert list(test.index) == list(ac.METRIC_NAMES.values())
    beside = ac.metrics_beside_paper(table)
    row = beside[(beside["cohort"] == "test") & (beside["metric"] == "F1")].iloc[0]
    assert row["paper"] == 0.914  # Table 2, Features Fusion, test


def test_paper_delong_p_values_are_the_papers():
    d = pd.DataFrame({"cohort": ["training", "test", "test"], "a": ["fusion", "nomogram", "HCR"],
                      "b": ["nomogram", "fusion", "DTL"]})
    assert ac.paper_delong(d) == ["0.794", "0.668", "< 0.05"]


def test_model_aucs_equal_sklearn_and_carry_the_papers_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 90)
    scores = {m: np.clip(0.2 * y + rng.random(90) * 0.8, 0, 1) for m in ac.MODELS}
    aligned = {"training": (y, scores, np.arange(90) // 2), "test": (y, scores, np.arange(90) // 2)}
    table = ac.model_aucs(aligned, n_boot=100).set_index(["model", "cohort"])
    assert table.loc[("fusion", "test"), "auc"] == pytest.approx(roc_auc_score(y, scores["fusion"]))
    assert table.loc[("nomogram", "test"), "paper_auc"] == 0.946
    assert table.loc[("nomogram", "training"), "how"].startswith("in-sample")
    assert (table["ci_low"] <= table["auc"]).all() and (table["auc"] <= table["ci_high"]).all()
