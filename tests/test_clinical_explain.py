"""Nomogram arithmetic, decision curves against the textbook formula, SHAP additivity per explainer."""

import numpy as np
import pandas as pd
import pytest

from ovfkit import clinical, explain, fusion, models
from tests.test_models import SETTINGS, _cohort


def _rows(n=300, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(72, 8, n)
    male = (rng.random(n) < 0.3).astype(float)
    dlr = rng.normal(size=n)
    lp = -0.5 + 1.4 * dlr + 0.03 * (age - 72) - 0.4 * male
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return pd.DataFrame({"dlr_score": dlr, "age": age, "male": male, "y": y})


def test_nomogram_points_read_back_to_the_models_probability():
    rows = _rows()
    nom = clinical.Nomogram.fit_on(rows, k=2)
    np.testing.assert_allclose(nom.probability_from_points(nom.total_points(rows)), nom.predict(rows), atol=1e-10)
    pts = nom.points()
    widest = (pts["points_per_unit"] * (pts["high"] - pts["low"])).max()
    assert widest == pytest.approx(100.0)


def test_nomogram_coefficients_are_statsmodels_logit():
    import statsmodels.api as sm

    rows = _rows(seed=1)
    nom = clinical.Nomogram.fit_on(rows, k=0)
    ref = sm.Logit(rows["y"], sm.add_constant(rows[["dlr_score", "age", "male"]])).fit(disp=0)
    np.testing.assert_allclose(nom.coefficients()["coef"], ref.params.drop("const"), rtol=1e-8)


def test_nomogram_refuses_a_class_absent_from_training():
    rows = _rows().assign(y=0)
    with pytest.raises(ValueError, match="class 1 is absent"):
        clinical.Nomogram.fit_on(rows, k=1)


def test_treat_all_net_benefit_follows_the_textbook_formula():
    rows = _rows(seed=2)
    dc = clinical.decision_curve(rows, {"model": 1 / (1 + np.exp(-rows["dlr_score"]))}, thresholds=[0.1, 0.3])
    prev = rows["y"].mean()
    for t in (0.1, 0.3):
        nb = dc[(dc["model"] == "all") & np.isclose(dc["threshold"], t)]["net_benefit"].item()
        assert nb == pytest.approx(prev - (1 - prev) * t / (1 - t))
        p = 1 / (1 + np.exp(-rows["dlr_score"]))
        tp = ((p >= t) & (rows["y"] == 1)).mean()
        fp = ((p >= t) & (rows["y"] == 0)).mean()
        model_nb = dc[(dc["model"] == "model") & np.isclose(dc["threshold"], t)]["net_benefit"].item()
        assert model_nb == pytest.approx(tp - fp * t / (1 - t))


@pytest.mark.parametrize("name, explainer", [("LR", "LinearExplainer"), ("RF", "TreeExplainer"),
                                             ("LightGBM", "TreeExplainer"), ("KNN", "KernelExplainer")])
def test_shap_values_add_up_to_the_explained_output(name, explainer):
    X, y, manifest, icc = _cohort(n=160, seed=3)
    ctx = fusion.Context.from_manifest(manifest, icc)
    pipe = fusion.early_fusion([fusion.RADIOMICS, "netA"], X, models.classifier(name, 0), ctx, SETTINGS).fit(X, y)
    expl = explain.explain(pipe, X.iloc[:120], X.iloc[120:140], max_kernel_cases=10)
    assert expl.explainer == explainer
    Z = pipe[:-1].transform(X.iloc[120:140]).iloc[: len(expl.data)]
    total = expl.values.sum(axis=1) + expl.base_values
    clf = pipe[-1]
    if expl.output == "probability":
        target = clf.predict_proba(Z)
    elif name == "LR":
        target = clf.decision_function(Z)
    else:
        target = clf.predict_proba(Z, raw_score=True)
    np.testing.assert_allclose(total, target, atol=1e-5)
    imp = explain.importance(expl)
    assert list(imp.columns[:3]) == ["class 0", "class 1", "class 2"]
    assert set(explain.family_importance(expl).index) <= {"glcm", "deep netA"}


def test_paper_features_are_found_by_pyradiomics_name():
    values = np.zeros((4, 2, 3))
    values[:, 1, 0] = 1.0
    data = pd.DataFrame(np.zeros((4, 2)), columns=["original_glszm_LargeAreaLowGrayLevelEmphasis",
                                                   "wavelet-LH_gldm_SmallDependenceLowGrayLevelEmphasis"])
    expl = explain.Explanation(values, np.zeros((4, 3)), data, "test", "probability")
    table = explain.paper_features_table(expl, top=1).set_index("feature named")
    assert table.loc["SmallDependenceLowGrayLevelEmphasis", "best rank here"] == 1
    assert table.loc["LargeAreaLowGrayLevelEmphasis", "best rank here"] == 2
    assert table.loc["ClusterShade", "selected here as"] == "-"


def test_probability_axis_inverts_the_points_scale():
    nom = clinical.Nomogram.fit_on(_rows(seed=4), k=1)
    probs = np.array([0.05, 0.2, 0.5, 0.8])
    np.testing.assert_allclose(nom.probability_from_points(nom.points_for_probability(probs)), probs, atol=1e-12)
