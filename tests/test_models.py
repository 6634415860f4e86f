"""Classifiers, fusion pipelines and the leakage guarantees of nested cross-validation."""

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from ovfkit import fusion, metrics, models, study


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


def test_held_out_rows_do_not_change_the_fitted_selection():
    """Fitting on the training rows gives the same selected features whatever the held-out rows hold."""
    X, y, manifest, icc = _cohort(seed=7)
    train = manifest.index[manifest["cohort"] == "train"]
    a = _pipeline(X, manifest, icc).fit(X.loc[train], y[: len(train)])
    X2 = X.copy()
    X2.loc[X2.index.difference(train)] = 1e6  # poison every held-out value
    b = _pipeline(X2, manifest, icc).fit(X2.loc[train], y[: len(train)])
    assert list(a[:-1].get_feature_names_out()) == list(b[:-1].get_feature_names_out())


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_every_classifier_fits_in_the_fusion_pipeline_and_tunes_its_grid(name):
    X, y, manifest, icc = _cohort(n=160, seed=1)
    search = models.tuned(_pipeline(X, manifest, icc, models.classifier(name, 0)), models.param_grid(name),
                          models.PatientKFold(manifest["patient_id"], 3))
    search.fit(X, y)
    proba = search.predict_proba(X)
    assert proba.shape == (160, 3) and np.allclose(proba.sum(axis=1), 1)
    assert set(search.best_params_) == set(models.param_grid(name))


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
    model = fusion.late_fusion([fusion.RADIOMICS, "netA"], X, ctx, SETTINGS, cv_splits=3).fit(X, y)
    assert [name for name, _ in model.estimators] == [fusion.RADIOMICS, "netA"]
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
    rng = np.random.default_rng(0)
    y = np.tile([0, 1, 2], 20)
    good = np.eye(3)[y] * 0.7 + 0.1
    rows = []
    for model, train_p, test_p in (("LR", good, np.full((60, 3), 1 / 3)), ("RF", np.full((60, 3), 1 / 3), good)):
        for cohort, p in (("train", train_p), ("external", test_p)):
            noisy = p + rng.uniform(0, 1e-3, p.shape)
            rows.append(pd.DataFrame(noisy / noisy.sum(axis=1, keepdims=True), columns=["p0", "p1", "p2"]).assign(
                y=y, patient_id=np.arange(60), cohort=cohort, variant="early x", model=model))
    result = study.ModelResult(pd.concat(rows, ignore_index=True), {}, {}, {})
    assert result.best("early x") == "LR"  # although RF is better on the external cohort


def test_paper_results_hold_both_papers_headlines():
    table = study.paper_results()
    assert set(table["paper"]) == {"zhang2024", "liu2025"}
    row = table[(table["paper"] == "zhang2024") & (table["pretraining"] == "RadImageNet") &
                (table["cohort"] == "external")]
    assert row["macro_auc"].item() == pytest.approx(0.940)
