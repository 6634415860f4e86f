"""Nomogram arithmetic and figure, likelihood-ratio tests, held-out evaluation, decision curves against the
textbook formula, SHAP additivity per explainer, and the SHAP and decision-curve figures."""

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import chi2
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ovfkit import clinical, explain, fusion, models, plots
from tests.test_models import SETTINGS, _cohort

matplotlib.use("Agg")


def _rows(n=300, seed=0, b_dlr=1.4, b_age=0.03, b_male=-0.4, dlr_sd=1.0):
    rng = np.random.default_rng(seed)
    age = rng.normal(72, 8, n)
    male = (rng.random(n) < 0.3).astype(float)
    dlr = rng.normal(scale=dlr_sd, size=n)
    lp = -0.5 + b_dlr * dlr + b_age * (age - 72) + b_male * male
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return pd.DataFrame({"dlr_score": dlr, "age": age, "male": male, "y": y, "patient_id": [f"P{i}" for i in range(n)]})


def _beyond_the_axes(nom):
    """Rows on, inside and beyond every axis end: ages 30 and 110 years, DLR scores +-20 logits, both sexes."""
    (d_lo, d_hi), (a_lo, a_hi) = nom.ranges["dlr_score"], nom.ranges["age"]
    grid = itertools.product([-20.0, d_lo, 0.0, d_hi, 20.0], [30.0, a_lo, 72.0, a_hi, 110.0], [0.0, 1.0])
    return pd.DataFrame(list(grid), columns=["dlr_score", "age", "male"])


def test_nomogram_points_read_back_to_the_models_probability_inside_and_beyond_the_axes():
    rows = _rows()
    nom = clinical.Nomogram.fit_on(rows, k=2)
    probe = pd.concat([rows[list(clinical.PREDICTORS)], _beyond_the_axes(nom)], ignore_index=True)
    total = nom.total_points(probe)
    X = sm.add_constant(rows[list(clinical.PREDICTORS)])
    reference = sm.Logit(rows["y"], X).fit(disp=0).predict(sm.add_constant(probe, has_constant="add"))
    np.testing.assert_allclose(nom.probability_from_points(total), reference, rtol=1e-8, atol=1e-12)
    sk = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(rows[list(clinical.PREDICTORS)], rows["y"])
    np.testing.assert_allclose(nom.probability_from_points(total), sk.predict_proba(probe)[:, 1], atol=1e-4)
    assert total.min() < 0 and total.max() > nom.max_total_points()  # the probe does leave the axes
    assert nom.points()["span_points"].max() == pytest.approx(100.0)


def test_dlr_axis_spans_the_stated_quantiles_not_the_clipped_scores():
    rows = _rows(n=900, seed=5)
    rows.loc[:5, "dlr_score"] = np.log(1e6 - 1)  # DLR probabilities clipped at 1 - 1e-6 ...
    rows.loc[6:11, "dlr_score"] = -np.log(1e6 - 1)  # ... and at 1e-6: 0.7% of the rows each
    nom = clinical.Nomogram.fit_on(rows, k=1)
    lo, hi = nom.ranges["dlr_score"]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(rows["dlr_score"], [0.01, 0.99])))
    assert clinical.DLR_AXIS_QUANTILES == (0.01, 0.99) and -5 < lo < hi < 5
    assert nom.ranges["age"] == (rows["age"].min(), rows["age"].max())


def _text_boxes(fig):
    """(gid, text, window extent) of every drawn text: the figure's and its axes' (not their hidden tick labels)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = fig.texts + [c for ax in fig.axes for c in ax.get_children() if isinstance(c, matplotlib.text.Text)]
    return [(t.get_gid(), t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text()]


@pytest.mark.parametrize("case", ["hard", "ordinary"])
def test_nomogram_labels_never_overlap(case, tmp_path):
    """Hard case: a large DLR coefficient over a wide score range, age and sex with next to no effect."""
    rows = _rows(n=600, seed=5, b_dlr=1.5, b_age=0.0, b_male=0.0, dlr_sd=3.0) if case == "hard" else _rows()
    nom = clinical.Nomogram.fit_on(rows, k=2)
    fig, data = plots.nomogram(nom)
    for dpi in (fig.dpi, 150):  # as laid out, and as plots.save_figure writes it
        fig.set_dpi(dpi)
        for (g1, t1, b1), (g2, t2, b2) in itertools.combinations(_text_boxes(fig), 2):
            assert not b1.overlaps(b2), f"{g1} {t1!r} overlaps {g2} {t2!r} at {dpi} dpi"
    plots.save_figure(fig, data, f"nomogram_{case}", tmp_path, caption="A nomogram for the test.",
                      alt="Nomogram axes stacked vertically.")
    by_axis = data.groupby("axis")["label"].apply(list)
    assert set(by_axis.index) == {"Points", "dlr_score", "age", "male", "Total points", "Linear predictor",
                                  "Probability"}
    assert by_axis.map(len).min() >= 2 and by_axis["male"] == ["female", "male"]
    ticks = data[data["axis"].isin(clinical.PREDICTORS)]
    for c, g in ticks.groupby("axis"):
        np.testing.assert_allclose(g["points"], nom.points_of(c, g["value"]))
    probs = data[data["axis"] == "Probability"]
    np.testing.assert_allclose(nom.probability_from_points(probs["points"]), probs["value"])
    if case == "hard":
        assert nom.points().loc[["age", "male"], "span_points"].max() < 5  # the case is as hard as claimed
    matplotlib.pyplot.close(fig)


def test_likelihood_ratio_tests_equal_a_hand_computation():
    rows = _rows(seed=6)
    nom = clinical.Nomogram.fit_on(rows, k=2)
    table = nom.likelihood_ratio_tests().set_index("dropped")

    def llf(cols):
        return sm.Logit(rows["y"], sm.add_constant(rows[cols]) if cols else np.ones(len(rows))).fit(disp=0).llf

    full = llf(list(clinical.PREDICTORS))
    for dropped, df in (("dlr_score", 1), ("age", 1), ("male", 1), ("dlr_score + age + male", 3)):
        kept = [c for c in clinical.PREDICTORS if c not in dropped.split(" + ")]
        stat = 2 * (full - llf(kept))
        assert table.loc[dropped, "LR chi2"] == pytest.approx(stat, rel=1e-8)
        assert table.loc[dropped, "df"] == df
        assert table.loc[dropped, "p"] == pytest.approx(chi2.sf(stat, df), rel=1e-8)
    assert table.loc["dlr_score", "reduced model"] == "const + age + male"
    assert table.loc["dlr_score + age + male", "LR chi2"] == pytest.approx(nom.fit.llr, rel=1e-8)
    assert table.loc["dlr_score", "p"] < 1e-6


def _designs():
    """Designs with predictions for two classes over train, internal and external cohorts."""
    designs = {}
    for k in (0, 2):
        d = _rows(n=400, seed=10 + k).assign(cohort=np.repeat(["train", "internal", "external", "train"], 100))
        nom = clinical.Nomogram.fit_on(d[d["cohort"] == "train"], k)
        designs[k] = clinical.with_predictions(d, nom)
    designs[2].loc[designs[2]["cohort"] == "external", "y"] = [1] + [0] * 99  # one case: untestable
    return designs


def test_held_out_discrimination_is_per_class_and_cohort_with_holm_over_the_table():
    designs = _designs()
    table = clinical.held_out_discrimination(designs)
    assert list(zip(table["class"], table["cohort"])) == [(0, "internal"), (0, "external"), (2, "internal")]
    for _, row in table.iterrows():
        g = designs[row["class"]][designs[row["class"]]["cohort"] == row["cohort"]]
        assert row["n"] == 100
        assert row["AUC DLR"] == pytest.approx(roc_auc_score(g["y"], g["dlr_score"]), abs=1e-12)
        assert row["AUC combined"] == pytest.approx(roc_auc_score(g["y"], g["combined"]), abs=1e-12)
        assert row["difference"] == pytest.approx(row["AUC combined"] - row["AUC DLR"], abs=1e-12)
        lo, hi = map(float, row["combined 95% CI"].split("-"))
        assert lo <= row["AUC combined"] <= hi
    p = table["DeLong p"].to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    np.testing.assert_allclose(table["p_holm"].to_numpy()[order], holm)


def test_held_out_calibration_uses_the_held_out_rows_only():
    designs = _designs()
    cal = clinical.held_out_calibration(designs, n_bins=4)
    assert sorted(cal["class"].unique()) == [0, 2] and (cal.groupby("class").size() == 4).all()
    for k, d in designs.items():
        held = d[d["cohort"] != "train"]
        brier = ((held["combined"] - held["y"]) ** 2).mean()
        assert cal.loc[cal["class"] == k, "brier"].iloc[0] == pytest.approx(brier)


def test_nomogram_coefficients_are_statsmodels_logit():
    import statsmodels.api as sm

    rows = _rows(seed=1)
    nom = clinical.Nomogram.fit_on(rows, k=0)
    ref = sm.Logit(rows["y"], sm.add_constant(rows[["dlr_score", "age", "male"]])).fit(disp=0)
    np.testing.assert_allclose(nom.coefficients()["coef"], ref.params.drop("const"), rtol=1e-8)


def test_clustered_nomogram_errors_equal_a_hand_computed_sandwich():
    """Cluster-robust Wald errors: (X'WX)^-1 (sum over patients of s_g s_g') (X'WX)^-1, with statsmodels'
    small-sample factor G/(G-1) (N-1)/(N-K), computed here from the score contributions by hand."""
    rows = _rows(seed=2).assign(patient_id=[f"P{i // 2}" for i in range(300)])  # two rows per patient
    nom = clinical.Nomogram.fit_on(rows, k=1)  # clustered by default
    plain = clinical.Nomogram.fit_on(rows, k=1, cluster=False)
    np.testing.assert_allclose(nom.fit.params, plain.fit.params, rtol=1e-10)  # same coefficients
    X = sm.add_constant(rows[["dlr_score", "age", "male"]]).to_numpy()
    y = rows["y"].to_numpy()
    p = 1 / (1 + np.exp(-X @ nom.fit.params.to_numpy()))
    bread = np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]))
    scores = pd.DataFrame(X * (y - p)[:, None]).groupby(rows["patient_id"].to_numpy()).sum().to_numpy()
    n, k, g = X.shape[0], X.shape[1], scores.shape[0]
    cov = bread @ (scores.T @ scores) @ bread * g / (g - 1) * (n - 1) / (n - k)
    np.testing.assert_allclose(nom.fit.bse.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-6)


def test_clustered_nomogram_asks_for_patient_ids():
    rows = _rows().drop(columns="patient_id")
    with pytest.raises(ValueError, match="patient_id"):
        clinical.Nomogram.fit_on(rows, k=1)
    assert clinical.Nomogram.fit_on(rows, k=1, cluster=False).fit.params.shape == (4,)


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


@pytest.mark.parametrize("name, explainer", [("LR", "PermutationExplainer"), ("RF", "TreeExplainer"),
                                             ("XGBoost", "PermutationExplainer"),
                                             ("LightGBM", "PermutationExplainer"), ("KNN", "KernelExplainer")])
def test_every_model_family_is_explained_in_probability_and_adds_up_to_predict_proba(name, explainer):
    """One unit for every family, so that the two modalities' chosen models read alike: SHAP values plus the
    base value give the model's predicted probability of each class."""
    X, y, manifest, icc = _cohort(n=160, seed=3)
    ctx = fusion.Context.from_manifest(manifest, icc)
    pipe = fusion.early_fusion([fusion.RADIOMICS, "netA"], X, models.classifier(name, 0), ctx, SETTINGS).fit(X, y)
    expl = explain.explain(pipe, X.iloc[:120], X.iloc[120:140], max_kernel_cases=10)
    assert expl.explainer == explainer and expl.output == "probability"
    Z = pipe[:-1].transform(X.iloc[120:140]).iloc[: len(expl.data)]
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_values, pipe[-1].predict_proba(Z), atol=1e-6)
    assert expl.axis_label(2) == "SHAP value (change in predicted probability of class 2)"


@pytest.mark.parametrize("name, explainer", [("LR", "LinearExplainer"), ("RF", "TreeExplainer"),
                                             ("LightGBM", "TreeExplainer"), ("KNN", "KernelExplainer")])
def test_shap_values_add_up_to_the_explained_output(name, explainer):
    X, y, manifest, icc = _cohort(n=160, seed=3)
    ctx = fusion.Context.from_manifest(manifest, icc)
    pipe = fusion.early_fusion([fusion.RADIOMICS, "netA"], X, models.classifier(name, 0), ctx, SETTINGS).fit(X, y)
    expl = explain.explain(pipe, X.iloc[:120], X.iloc[120:140], max_kernel_cases=10, units="log-odds")
    assert expl.explainer == explainer
    assert expl.output == ("log-odds" if name in ("LR", "LightGBM") else "probability")
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


def test_decision_curve_figure_draws_every_model_of_every_class():
    rows = _rows(seed=2)
    p = 1 / (1 + np.exp(-rows["dlr_score"]))
    curves = {k: clinical.decision_curve(rows, {"model": p}, thresholds=[0.1, 0.2, 0.3]) for k in (0, 1)}
    fig, data = plots.decision_curves(curves)
    assert len(fig.axes) == 2 and set(data["cls"]) == {0, 1}
    for ax, dc in zip(fig.axes, curves.values()):
        drawn = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
        for name, g in dc.groupby("model"):
            np.testing.assert_allclose(drawn[name], g["net_benefit"])
    matplotlib.pyplot.close(fig)


def _explanation(n_features=20, n_cases=6, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"original_glcm_F{j}" for j in range(n_features)]
    data = pd.DataFrame(rng.normal(size=(n_cases, n_features)), columns=names)
    return explain.Explanation(rng.normal(size=(n_cases, n_features, 3)), rng.normal(size=(n_cases, 3)), data,
                               "test", "log-odds")


def test_shap_importance_figure_stacks_the_class_columns_of_the_top_features():
    expl = _explanation()
    imp, fam = explain.importance(expl), explain.family_importance(expl)
    fig, data = plots.shap_importance(imp, fam, top=15)
    left = fig.axes[0]
    widths = np.array([bar.get_width() for bar in left.patches]).reshape(3, 15)  # class-major, bottom-up rows
    np.testing.assert_allclose(widths.T[::-1], imp.head(15)[["class 0", "class 1", "class 2"]].to_numpy())
    assert [t.get_text() for t in left.get_yticklabels()][::-1] == list(imp.index[:15])
    assert list(data["feature"]) == list(imp.index)
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("output, unit", [("probability", "change in predicted probability"),
                                          ("log-odds", "change in log-odds")])
def test_shap_figures_name_the_explained_output_on_their_axes(output, unit):
    expl = _explanation()
    expl.output = output
    imp, fam = explain.importance(expl), explain.family_importance(expl)
    fig, _ = plots.shap_importance(imp, fam, top=15)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert len(labels) == 2 and all("mean |SHAP value|" in lab and f"({unit})" in lab for lab in labels)
    assert not any(ax.get_legend() for ax in fig.axes) and len(fig.legends) == 1  # legend off the bars
    matplotlib.pyplot.close(fig)
    fig, _ = plots.shap_beeswarm(expl, 1)
    assert fig.axes[0].get_xlabel() == f"SHAP value ({unit} of class 1)"
    matplotlib.pyplot.close(fig)
    fig, _ = plots.shap_waterfall(expl, 2, 0, "case 2")
    assert f"SHAP values, {unit} of class 0" in fig.axes[0].get_xlabel()
    assert f"model output: {unit.replace('change in ', '')} of class 0" in fig.axes[0].get_xlabel()
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="output unit is unknown"):
        plots.shap_importance(pd.DataFrame(imp.to_numpy(), index=imp.index, columns=imp.columns), fam)


def test_shap_beeswarm_and_waterfall_return_their_values():
    expl = _explanation()
    fig, values = plots.shap_beeswarm(expl, 1)
    np.testing.assert_array_equal(values.to_numpy(), expl.values[:, :, 1])
    assert fig._suptitle.get_text() == "class 1"
    matplotlib.pyplot.close(fig)
    fig, row = plots.shap_waterfall(expl, 2, 0, "case 2")
    np.testing.assert_array_equal(row["shap"], expl.values[2, :, 0])
    np.testing.assert_array_equal(row["value"], expl.data.iloc[2])
    matplotlib.pyplot.close(fig)


def test_radscore_figure_lists_every_nonzero_lasso_coefficient_largest_first_and_marks_the_dropped():
    record = {"prepared": ["original_a", "original_b", "original_c", "netA/pc001"],
              "coef": np.array([0.5, 0.0, -1.2, 0.3]), "selected": ["original_c", "netA/pc001"]}
    fig, data = plots.radscore_coefficients(record)
    assert list(data["feature"]) == ["original_c", "original_a", "netA/pc001"]
    np.testing.assert_allclose(data["coefficient"], [-1.2, 0.5, 0.3])
    assert list(data["kept"]) == [True, False, True]
    assert "coefficient" in fig.axes[0].get_xlabel()
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.mark.parametrize("name", ["LR", "RF"])
def test_explaining_one_case_transforms_it_with_its_cohort_and_equals_its_row_of_the_whole(name):
    """A single vertebra of a center training never saw cannot be harmonized alone (ComBat estimates the
    center from the batch): ``only`` explains it as the model predicted it, with its cohort."""
    X, y, manifest, icc = _cohort(n=160, seed=3)
    ctx = fusion.Context.from_manifest(manifest, icc)
    pipe = fusion.early_fusion([fusion.RADIOMICS, "netA"], X, models.classifier(name, 0), ctx, SETTINGS).fit(X, y)
    cohort = X.iloc[120:140]
    whole = explain.explain(pipe, X.iloc[:120], cohort)
    case = cohort.index[7]
    one = explain.explain(pipe, X.iloc[:120], cohort, only=[case])
    assert one.values.shape[0] == 1
    np.testing.assert_allclose(one.values[0], whole.values[7], atol=1e-10)
    np.testing.assert_allclose(one.data.iloc[0], whole.data.iloc[7])
    with pytest.raises(ValueError, match="not rows of X_explain"):
        explain.explain(pipe, X.iloc[:120], cohort, only=["no-such-vertebra"])
