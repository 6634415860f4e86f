"""Classifiers, fusion pipelines and the leakage guarantees of nested cross-validation."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid, PredefinedSplit, check_cv, cross_val_predict

from ovfkit import fusion, metrics, models, study
from ovfkit.settings import settings as run_settings


def _cohort(n=240, p_rad=40, p_deep=60, signal=1.0, seed=0):
    """Synthetic feature table with radiomics- and deep-named columns, two vertebrae per patient."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"v{i:04d}" for i in range(n)], name="vertebra_id")
    y = rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15])
    rad = pd.DataFrame(rng.normal(size=(n, p_rad)), index=ids,
                       columns=[f"original_glcm_F{i}" for i in range(p_rad)])
    rad.iloc[:, :4] += signal * y[:, None]
    deep = pd.DataFrame(rng.normal(size=(n, p_deep)), index=ids, columns=[f"f{i:04d}" for i in range(p_deep)])
    deep.iloc[:, :6] += 0.7 * signal * y[:, None]
    X = fusion.feature_table(rad, {"netA": deep})
    manifest = pd.DataFrame({"center": "I", "age": rng.normal(70, 8, n), "sex": rng.choice(["F", "M"], n),
                             "patient_id": [f"p{i // 2}" for i in range(n)], "astlof_class": y,
                             "cohort": np.where(np.arange(n) < 0.7 * n, "train", "internal")}, index=ids)
    icc = pd.Series(0.95, index=rad.columns)
    return X, y, manifest, icc


SETTINGS = fusion.FusionSettings(deep_components=5, lasso_cv=3, seed=0)


def _pipeline(X, manifest, icc, clf=None):
    ctx = fusion.Context.from_manifest(manifest, icc)
    return fusion.early_fusion([fusion.RADIOMICS, "netA"], X, models.classifier("LR") if clf is None else clf, ctx,
                               SETTINGS)


def test_patient_kfold_never_splits_a_patient():
    X, y, manifest, _ = _cohort()
    for train, test in models.PatientKFold(manifest["patient_id"], 5).split(X, y):
        assert not set(manifest["patient_id"].iloc[train]) & set(manifest["patient_id"].iloc[test])
    with pytest.raises(TypeError, match="DataFrame indexed by vertebra id"):
        next(models.PatientKFold(manifest["patient_id"]).split(X.to_numpy(), y))


def test_nested_cv_on_pure_noise_is_at_chance_where_selection_before_splitting_is_not():
    """The leakage guard: features carry no signal at all (n=120, p=800). Selecting features on all rows
    and then cross-validating (the classic error) reports a clearly positive AUC; the ovfkit pipeline, whose
    selection is refitted inside every fold, reports chance."""
    rng = np.random.default_rng(3)
    n, p = 120, 800
    X, _, manifest, icc = _cohort(n=n, p_rad=p, p_deep=20, signal=0.0, seed=3)
    y = rng.integers(0, 3, n)
    manifest["astlof_class"] = y
    rad = X[[c for c in X.columns if fusion.source_of(c) == fusion.RADIOMICS]]
    leaky_rows = SelectKBest(f_classif, k=20).fit_transform(rad, y)  # sees every row's label
    leaky = cross_val_predict(LogisticRegression(max_iter=2000), leaky_rows, y, cv=5, method="predict_proba")
    leaky_auc = metrics.macro_auc(y, leaky)
    search = models.tuned(_pipeline(X, manifest, icc), {"clf__C": [0.1, 1.0]},
                          models.PatientKFold(manifest["patient_id"], 3))
    oof, _, _ = models.nested_cv(search, X, y, models.PatientKFold(manifest["patient_id"], 5, 1))
    honest_auc = metrics.macro_auc(y, oof)
    assert leaky_auc > 0.7
    assert abs(honest_auc - 0.5) < 0.15


def test_permuted_training_labels_give_chance_on_held_out_rows():
    X, y, manifest, icc = _cohort(n=400, signal=1.2, seed=5)
    train = manifest.index[manifest["cohort"] == "train"]
    test = manifest.index.difference(train)
    pipe = _pipeline(X, manifest, icc)
    y_s = pd.Series(y, index=X.index)
    real = pipe.fit(X.loc[train], y_s.loc[train]).predict_proba(X.loc[test])
    permuted = np.random.default_rng(0).permutation(y_s.loc[train].to_numpy())
    null = _pipeline(X, manifest, icc).fit(X.loc[train], permuted).predict_proba(X.loc[test])
    assert metrics.macro_auc(y_s.loc[test], real) > 0.85
    assert abs(metrics.macro_auc(y_s.loc[test], null) - 0.5) < 0.12


def test_held_out_cohorts_poisoned_leave_every_training_result_bitwise_unchanged(tmp_path):
    """The study is handed the whole table and must fit on the training cohort only: with every held-out
    row poisoned (features 1e6, every label changed), the nested-CV out-of-fold predictions, the tuned
    parameters, the final model's selected features and its predictions on training rows are identical."""
    X, y, manifest, icc = _cohort(n=120, p_rad=20, p_deep=20, seed=7)
    settings = dataclasses.replace(run_settings("quick", "xray", seed=0), classifiers=("LR",))
    held = manifest.index[manifest["cohort"] != "train"]
    X_bad, m_bad = X.copy(), manifest.copy()
    X_bad.loc[held] = 1e6
    m_bad.loc[held, "astlof_class"] = (m_bad.loc[held, "astlof_class"] + 1) % 3
    runs = [study.model_comparison(study.Features(x, icc, ["netA"], m), settings, tmp_path / name, progress=False)
            for x, m, name in ((X, manifest, "clean"), (X_bad, m_bad, "poisoned"))]
    clean, poisoned = [r.predictions[r.predictions["cohort"] == "train"].reset_index(drop=True) for r in runs]
    assert len(clean) == (manifest["cohort"] == "train").sum()
    pd.testing.assert_frame_equal(clean, poisoned, check_exact=True)
    key = ("early netA", "LR")
    assert runs[0].chosen[key] == runs[1].chosen[key]
    a, b = runs[0].fitted[key], runs[1].fitted[key]
    assert list(a[:-1].get_feature_names_out()) == list(b[:-1].get_feature_names_out())
    train = manifest.index[manifest["cohort"] == "train"]
    np.testing.assert_array_equal(a.predict_proba(X.loc[train]), b.predict_proba(X.loc[train]))


def test_out_of_fold_predictions_ignore_the_labels_of_their_own_outer_fold():
    """nested_cv predicts each outer fold with a search fitted without it: changing every label of one
    fold leaves that fold's out-of-fold probabilities bitwise unchanged (the other folds' may change)."""
    X, y, manifest, icc = _cohort(n=120, p_rad=12, p_deep=12, seed=8)
    patient_no = manifest["patient_id"].str[1:].astype(int).to_numpy()
    outer = PredefinedSplit(patient_no % 3)  # by patient and blind to the labels, so poisoning keeps the folds
    fold = patient_no % 3 == 0
    y_bad = np.where(fold, (y + 1) % 3, y)
    search = models.tuned(_pipeline(X, manifest, icc), {"clf__C": [0.1, 1.0]},
                          models.PatientKFold(manifest["patient_id"], 3))
    clean, _, _ = models.nested_cv(search, X, y, outer)
    poisoned, _, _ = models.nested_cv(search, X, y_bad, outer)
    pd.testing.assert_frame_equal(clean[fold], poisoned[fold], check_exact=True)
    assert not np.array_equal(clean[~fold].to_numpy(), poisoned[~fold].to_numpy())  # the poison did reach fits


def test_nested_cv_gives_a_class_absent_from_an_outer_training_part_probability_zero():
    """Every class-2 vertebra in one outer fold: that fold's model never saw class 2, so its column is 0 and
    the other two columns hold that model's probabilities (not shifted into the wrong classes)."""
    X, y, manifest, icc = _cohort(n=120, p_rad=12, p_deep=12, seed=9)
    patient_no = manifest["patient_id"].str[1:].astype(int).to_numpy()
    fold = np.where(y == 2, 0, 1 + patient_no % 2)
    for p in np.unique(patient_no[y == 2]):  # keep patients whole
        fold[patient_no == p] = 0
    outer = PredefinedSplit(fold)
    search = models.tuned(_pipeline(X, manifest, icc), {"clf__C": [1.0]}, models.PatientKFold(manifest["patient_id"], 3))
    proba, _, _ = models.nested_cv(search, X, y, outer, classes=(0, 1, 2))
    first = fold == 0
    assert (proba.loc[first, "p2"] == 0).all() and np.allclose(proba.loc[first, ["p0", "p1"]].sum(axis=1), 1)
    two_class = models.tuned(_pipeline(X, manifest, icc), {"clf__C": [1.0]},
                             models.PatientKFold(manifest["patient_id"], 3)).fit(X[~first], y[~first])
    np.testing.assert_allclose(proba.loc[first, ["p0", "p1"]], two_class.predict_proba(X[first]), atol=1e-10)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_every_classifier_fits_in_the_fusion_pipeline_and_tunes_its_grid(name):
    X, y, manifest, icc = _cohort(n=160, seed=1)
    search = models.tuned(_pipeline(X, manifest, icc, models.classifier(name, 0, manifest["patient_id"])),
                          models.param_grid(name), models.PatientKFold(manifest["patient_id"], 3))
    search.fit(X, y)
    proba = search.predict_proba(X)
    assert proba.shape == (160, 3) and np.allclose(proba.sum(axis=1), 1)
    assert set(search.best_params_) == set(models.param_grid(name))


def test_svm_calibration_folds_never_split_a_patient_at_any_depth_of_nested_cv(monkeypatch):
    """Every SVM fit inside nested_cv (inner folds, outer folds, refits) calibrates on folds of exactly the
    rows it was handed, and no fold has a patient's vertebrae on both sides. Recorded where
    CalibratedClassifierCV receives its folds, whatever splitter produced them."""
    calibrations = []

    class Recording(CalibratedClassifierCV):
        def fit(self, X, y, **params):
            calibrations.append((X.index, list(check_cv(self.cv, y, classifier=True).split(X, y))))
            return super().fit(X, y, **params)

    monkeypatch.setattr(models, "CalibratedClassifierCV", Recording)
    X, y, manifest, icc = _cohort(n=120, p_rad=12, p_deep=12, seed=6)
    patient = manifest["patient_id"]
    grid = models.param_grid("SVM")
    search = models.tuned(_pipeline(X, manifest, icc, models.classifier("SVM", 0, patient)), grid,
                          models.PatientKFold(patient, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated SVC(probability=...) is left
        oof, _, _ = models.nested_cv(search, X, y, models.PatientKFold(patient, 3, 1))
    assert np.allclose(oof.sum(axis=1), 1)
    assert len(calibrations) == (3 + 1) * (3 * len(ParameterGrid(grid)) + 1)  # every fit of every search
    assert {len(rows) for rows, _ in calibrations} >= {len(X)}  # the final refit's rows among the subsets
    for rows, folds in calibrations:
        assert rows.isin(X.index).all() and rows.is_unique
        assert len(folds) == 5
        np.testing.assert_array_equal(np.sort(np.concatenate([test for _, test in folds])), np.arange(len(rows)))
        for train, test in folds:
            assert not set(patient[rows[train]]) & set(patient[rows[test]])


def test_svm_fits_when_a_class_has_a_single_patient_and_refuses_missing_groups():
    """The quick cohorts' nested training parts can hold one patient of class 2; the SVM still gives
    probabilities, and without groups it says what to pass."""
    X, y, manifest, _ = _cohort(n=60, seed=9)
    Z = X.iloc[:, :6]
    y = np.where(y == 2, 1, y)
    y[[10, 11]] = 2  # patient p5's two vertebrae
    svm = models.classifier("SVM", 0, manifest["patient_id"]).fit(Z, y)
    proba = svm.predict_proba(Z)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1) and (proba[:, 2] > 0).all()
    assert list(svm.classes_) == [0, 1, 2] and list(svm.feature_names_in_) == list(Z.columns)
    with pytest.raises(ValueError, match="groups=None: pass the patient of every vertebra"):
        models.classifier("SVM", 0).fit(Z, y)


def test_balanced_sample_weight_equals_fitting_with_balanced_weights():
    from sklearn.utils.class_weight import compute_sample_weight

    X, y, *_ = _cohort(n=150, seed=2)
    Xn = X.iloc[:, :10].to_numpy()
    wrapped = models.BalancedSampleWeight(LogisticRegression(max_iter=2000)).fit(Xn, y)
    direct = LogisticRegression(max_iter=2000).fit(Xn, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(wrapped.predict_proba(Xn), direct.predict_proba(Xn))


def test_late_fusion_stacks_one_model_per_source():
    X, y, manifest, icc = _cohort(n=200, seed=4)
    ctx = fusion.Context.from_manifest(manifest, icc)
    sources = [fusion.RADIOMICS, "netA"]
    model = fusion.late_fusion(sources, X, ctx, SETTINGS, cv_splits=3).fit(X, y)
    assert [name for name, _ in model.estimators] == sources
    for source, base in zip(sources, model.estimators_):  # each fitted base model prepares its own source only
        assert {fusion.source_of(f) for f in base.named_steps["prepare"].get_feature_names_out()} == {source}
    assert model.final_estimator_.n_features_in_ == len(sources) * 3  # three class probabilities per source
    assert metrics.macro_auc(y, model.predict_proba(X)) > 0.8


@pytest.mark.parametrize("names, expected", [
    (["original_glcm_Contrast", "netA/pc001", "wavelet-LL_firstorder_Mean"], "2 radiomics + 1 netA"),
    (["b/pc1", "a/pc2"], "1 a + 1 b"),
    ([], "0 features"),
])
def test_selected_features_are_counted_by_source_like_the_papers(names, expected):
    assert fusion.count_by_source(names) == expected


def test_family_of_names_pyradiomics_classes_and_backbones():
    assert fusion.family_of("log-sigma-1-0-mm-3D_glszm_SmallAreaEmphasis") == "glszm"
    assert fusion.family_of("netA/pc003") == "deep netA"


def test_feature_table_refuses_a_backbone_name_that_breaks_the_naming():
    with pytest.raises(ValueError, match="may not contain"):
        fusion.feature_table(pd.DataFrame(index=["a"]), {"bad/name": pd.DataFrame(index=["a"])})


def test_best_model_is_chosen_on_training_rows_only():
    """RF beats LR on the training cohort, LR is perfect on every held-out cohort: RF must be chosen. A
    rule that consulted any held-out cohort, or fell back to the tie-break order (LR first), picks LR."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1, 2], 20)

    def proba(signal):
        p = signal * np.eye(3)[y] + rng.uniform(0, 1, (len(y), 3))
        return pd.DataFrame(p / p.sum(axis=1, keepdims=True), columns=["p0", "p1", "p2"])

    rows = [proba(signal).assign(y=y, patient_id=np.arange(60), cohort=cohort, variant="early x", model=model)
            for cohort in ("train", "internal", "external", "prospective")
            for model, signal in ({"LR": 0.0, "RF": 0.4} if cohort == "train" else {"LR": 5.0, "RF": 0.0}).items()]
    result = study.ModelResult(pd.concat(rows, ignore_index=True), {}, {}, {})
    train = result.predictions[result.predictions["cohort"] == "train"]
    auc = {m: metrics.macro_auc(g["y"], g[["p0", "p1", "p2"]]) for m, g in train.groupby("model")}
    assert auc["RF"] > auc["LR"] + 0.05
    assert result.best("early x") == "RF"


def test_paper_results_hold_both_papers_headlines():
    table = study.paper_results()
    assert set(table["paper"]) == {"zhang2024", "liu2025"}
    row = table[(table["paper"] == "zhang2024") & (table["pretraining"] == "RadImageNet") &
                (table["cohort"] == "external")]
    assert row["macro_auc"].item() == pytest.approx(0.940)


@pytest.mark.parametrize("modality, expected", [
    ("ct", "0.348 (liu2025's LightGBM on ImageNet features: training macro AUC 0.996, internal 0.648, whose 95% CI "
           "0.553-0.735 lies entirely below the training AUC), has the signature"),
    ("xray", "gap the paper reports is 0.005 (zhang2024's LR on ImageNet features: training macro AUC 0.831, "
             "internal 0.826); the paper gives no CI"),
])
def test_paper_gap_statement_is_computed_from_the_papers_table(modality, expected):
    gaps = study.paper_training_gaps(modality)
    assert (gaps["gap"] == gaps["train"] - gaps["internal"]).all() and gaps["gap"].is_monotonic_decreasing
    assert expected in study.paper_gap_statement(modality)


def _two_domain_result():
    """Two variants, one model each, on every cohort; y and probabilities set by hand."""
    y = np.array([0, 1, 2, 2, 1, 0])
    # a: right on all but the last vertebra; b: right on the first three only
    pa = np.eye(3)[[0, 1, 2, 2, 1, 1]] * 0.7 + 0.1
    pb = np.eye(3)[[0, 1, 2, 0, 0, 2]] * 0.7 + 0.1
    rows = []
    for cohort in ("train", "internal", "prospective"):
        for variant, model, p in (("early a", "RF", pa), ("early b", "LR", pb)):
            rows.append(pd.DataFrame(p, columns=["p0", "p1", "p2"]).assign(
                vertebra_id=[f"{cohort}-{i}" for i in range(6)], y=y, patient_id=np.arange(6), cohort=cohort,
                variant=variant, model=model))
    return study.ModelResult(pd.concat(rows, ignore_index=True), {}, {}, {})


def test_discordant_cases_put_a_right_b_wrong_first_prospective_first_and_skip_training():
    cases = study.discordant_cases(_two_domain_result(), "early a", "early b")
    assert "train" not in set(cases["cohort"])
    assert list(cases.index[:2]) == ["prospective-3", "prospective-4"]  # a right, b wrong; prospective first
    assert list(cases["outcome"]) == ["a right, b wrong"] * 4 + ["both wrong"] * 2
    both = cases[cases["outcome"] == "both wrong"]
    assert set(both.index) == {"prospective-5", "internal-5"} and (both["pred_a"] == 1).all()
    assert (cases["pred_a"] != cases["pred_b"]).all()
    assert cases.attrs["n_compared"] == 12  # internal and prospective, 6 each; never training
    np.testing.assert_allclose(cases.loc["prospective-3", ["p_true_a", "p_true_b"]].to_numpy(float), [0.8, 0.1])


def test_discordant_cases_are_empty_when_the_models_agree():
    result = _two_domain_result()
    p = result.predictions
    same = p[p["variant"] == "early a"].assign(variant="early c")
    result = study.ModelResult(pd.concat([p, same], ignore_index=True), {}, {}, {})
    assert study.discordant_cases(result, "early a", "early c").empty


def test_threshold_scores_equal_scikit_learn_accuracy_and_macro_f1():
    from sklearn.metrics import accuracy_score, f1_score

    result = _two_domain_result()
    scores = study.threshold_scores(result.predictions).set_index(["variant", "cohort"])
    for variant, g in result.predictions[result.predictions["cohort"] == "internal"].groupby("variant"):
        pred = g[["p0", "p1", "p2"]].to_numpy().argmax(1)
        assert scores.loc[(variant, "internal"), "accuracy"] == pytest.approx(accuracy_score(g["y"], pred))
        assert scores.loc[(variant, "internal"), "macro_f1"] == pytest.approx(f1_score(g["y"], pred, average="macro"))


def test_chosen_metrics_hold_every_metric_of_each_variants_chosen_model_per_cohort():
    result = _two_domain_result()
    detail = study.chosen_metrics(result, ["early a", "early b"], n_boot=20, seed=0)
    assert set(detail["model"]) == {"RF", "LR"}
    assert len(detail.groupby(["variant", "cohort"])) == 6
    one = detail[(detail["variant"] == "early a") & (detail["cohort"] == "internal")].set_index("metric")
    assert one.loc["accuracy_class_2", "estimate"] == pytest.approx(1.0)  # a never confuses class 2
    assert one.loc["accuracy", "estimate"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("backbone, label, short", [
    ("proxy-medical", "RadImageNet stand-in (proxy-medical)", "RadImageNet stand-in"),
    ("proxy-natural", "ImageNet stand-in (proxy-natural)", "ImageNet stand-in"),
    ("radimagenet", "RadImageNet (radimagenet)", "RadImageNet"),
    ("imagenet", "ImageNet (imagenet)", "ImageNet"),
])
def test_backbone_label_says_stand_in_only_for_the_offline_proxies(backbone, label, short):
    assert study.backbone_label(backbone) == label
    assert study.backbone_label(backbone, with_name=False) == short
