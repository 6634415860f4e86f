"""The radiomics sensitivity study (ovfkit.transport) and the shipped defaults it chose."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ovfkit import findings, radiomics, transport
from ovfkit.manifest import load_manifest
from ovfkit.task import get_task


@pytest.fixture(scope="module")
def ct_manifest(tiny_cohorts):
    return load_manifest(tiny_cohorts["ct"])


def _changed_keys(a: dict, b: dict, prefix: str = "") -> set:
    keys = set()
    for k in set(a) | set(b):
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            keys |= _changed_keys(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k, "<absent>") != b.get(k, "<absent>"):
            keys.add(f"{prefix}{k}")
    return keys


@pytest.mark.parametrize("modality", ["xray", "ct"])
def test_every_variant_changes_one_choice_of_the_reference(modality):
    base = radiomics.default_params(modality)
    variants = transport.variants(modality, base)
    assert [v.choice for v in variants[:2]] == ["shipped", "reference"]
    assert transport.variant_params(base, variants[0]) == radiomics.load_settings(base)
    ref = transport.variant_params(base, variants[1])
    assert ref["imageType"] == {"Original": {}}
    labels = [v.label for v in variants]
    assert len(labels) == len(set(labels)), labels
    allowed = {"resampling": {"setting.resampledPixelSpacing"}, "interpolator": {"setting.interpolator"},
               "discretization": {"setting.binWidth", "setting.binCount"},
               "normalization": {"setting.normalize", "setting.normalizeScale", "setting.resegmentRange"},
               "resegmentation": {"setting.resegmentRange"}, "filter": {"imageType.LoG", "imageType.Wavelet"},
               "ROI": {"ovfkit.roi", "setting.resampledPixelSpacing", "featureClass.shape", "featureClass.shape2D"}}
    for v in variants[2:]:
        params = transport.variant_params(base, v)
        changed = _changed_keys(ref, params)
        if v.choice == "file":
            assert params == radiomics.load_settings(radiomics.PAPER_PARAMS[modality])
            continue
        assert changed and changed <= allowed[v.choice], (v.label, changed)
        if v.choice == "normalization" and params["setting"].get("normalize"):  # PyRadiomics z-scores before it
            assert "resegmentRange" not in params["setting"]  # resegments: an HU range must not meet z-scores
        radiomics._extractor({k: val for k, val in params.items() if k != "ovfkit"})  # PyRadiomics accepts it


def test_variant_merge_removes_replaces_and_keeps_none():
    base = {"setting": {"binWidth": 25, "label": 1}, "imageType": {"Original": {}, "Wavelet": {}},
            "featureClass": {"shape2D": None}}
    v = transport.Variant("x", "x", {"setting": {"binWidth": transport.REMOVE, "binCount": 32},
                                     "featureClass": {"shape2D": transport.REMOVE, "shape": None}},
                          {"Original": {}})
    out = transport.variant_params(base, v)
    assert out == {"setting": {"label": 1, "binCount": 32}, "imageType": {"Original": {}},
                   "featureClass": {"shape": None}}
    assert base["setting"]["binWidth"] == 25  # the base is not changed
    with pytest.raises(TypeError, match="transport.Variant"):
        transport.variant_params(base, {"setting": {}})


def test_center_shift_is_zero_for_case_mix_and_the_offset_for_acquisition():
    rng = np.random.default_rng(0)
    n = 4000
    y = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    feature = rng.normal(0, 1, n) + 3.0 * y  # the class moves the feature by 3 SD
    cohort = np.array(["train"] * n)
    # same acquisition, other case mix: 90% class 1
    y_mix = (rng.random(n) < 0.9).astype(int)
    mix = rng.normal(0, 1, n) + 3.0 * y_mix
    # other acquisition: +0.5 SD offset, same case mix as training
    acq = rng.normal(0, 1, n) + 3.0 * y + 0.5
    X = pd.DataFrame({"original_firstorder_Mean": np.r_[feature, mix, acq]})
    coh = pd.Series(np.r_[cohort, ["mix"] * n, ["acq"] * n], index=X.index)
    lab = pd.Series(np.r_[y, y_mix, y], index=X.index)
    shift = transport.center_shift(X, coh, lab)
    assert shift.loc["original_firstorder_Mean", "mix"] == pytest.approx(0.0, abs=0.06)
    assert shift.loc["original_firstorder_Mean", "acq"] == pytest.approx(0.5, abs=0.06)
    naive = abs(mix.mean() - feature.mean()) / feature.std()
    assert naive > 0.5  # a plain (not within-class) comparison would call case mix a shift


def test_center_shift_equals_the_brute_force_formula():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    coh = pd.Series(["train"] * 24 + ["ext"] * 16)
    lab = pd.Series(rng.integers(0, 2, 40))
    got = transport.center_shift(X, coh, lab)["ext"]
    for f in X.columns:
        num = den = 0.0
        for k in (0, 1):
            a = X.loc[(coh == "ext") & (lab == k), f]
            b = X.loc[(coh == "train") & (lab == k), f]
            num += len(a) * abs(a.mean() - b.mean()) / b.std(ddof=1)
            den += len(a)
        assert got[f] == pytest.approx(num / den, rel=1e-12)


def test_subsample_keeps_each_cohorts_class_mix_and_is_deterministic():
    m = pd.DataFrame({"cohort": ["train"] * 100 + ["external"] * 30},
                     index=[f"v{i}" for i in range(130)])
    lab = pd.Series([0] * 70 + [1] * 30 + [0] * 10 + [1] * 20, index=m.index)
    ids = transport.subsample(m, lab, {"train": 50, "external": 60, "prospective": 5}, seed=3)
    assert ids.equals(transport.subsample(m, lab, {"train": 50, "external": 60, "prospective": 5}, seed=3))
    train = ids[m.loc[ids, "cohort"] == "train"]
    assert len(train) == 50 and lab[train].sum() == 15  # 30% class 1, as in the cohort
    assert (m.loc[ids, "cohort"] == "external").sum() == 30  # fewer than asked: all kept
    rare = pd.Series([0] + [1] * 2 + [2] * 27, index=m.index[:30])  # shares 0.13, 0.27, 3.6 of 4
    small = transport.subsample(m.iloc[:30], rare, {"train": 4}, seed=0)
    assert len(small) == 4 and set(rare[small]) == {0, 1, 2}  # largest remainders, every class kept
    assert list(ids) == [i for i in m.index if i in set(ids)]  # manifest order
    with pytest.raises(ValueError, match="sizes must map"):
        transport.subsample(m, lab, {})


def _toy(n_per: int = 30, seed: int = 0, separation: float = 3.0):
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, center in [("train", "I"), ("internal", "I"), ("external", "II")]:
        for i in range(n_per):
            acute = i % 2
            rows.append({"vertebra_id": f"{cohort}{i}", "patient_id": f"{cohort}P{i // 2}", "cohort": cohort,
                         "center": center, "acuity": "acute" if acute else "chronic",
                         "original_firstorder_Mean": separation * acute + rng.normal(),
                         "original_glcm_Contrast": rng.normal()})
    df = pd.DataFrame(rows).set_index("vertebra_id")
    return df[["patient_id", "cohort", "center", "acuity"]], df[["original_firstorder_Mean", "original_glcm_Contrast"]]


def test_center_auc_scores_each_cohort_and_the_pool_like_scikit_learn():
    m, X = _toy()
    auc = transport.center_auc(X, m, "acuity", n_boot=200)
    model = transport.fixed_model().fit(X[m["cohort"] == "train"], get_task("acuity").labels(m)[m["cohort"] == "train"])
    y = (m["acuity"] == "acute").astype(int)
    for c in ("internal", "external"):
        rows = m["cohort"] == c
        assert auc[c] == pytest.approx(roc_auc_score(y[rows], model.predict_proba(X[rows])[:, 1]))
    rows = m["cohort"] != "train"
    assert auc["pooled"] == pytest.approx(roc_auc_score(y[rows], model.predict_proba(X[rows])[:, 1]))
    assert auc["pooled low"] <= auc["pooled"] <= auc["pooled high"]
    m.loc[m["cohort"] == "external", "acuity"] = "acute"
    assert np.isnan(transport.center_auc(X, m, "acuity", n_boot=50)["external"])  # one class: no AUC
    m["acuity"] = "acute"
    assert transport.center_auc(X, m, "acuity", n_boot=50).isna().all()  # one training class: nothing to fit


def test_per_center_counts_auc_and_calibration():
    from ovfkit import calibration

    rng = np.random.default_rng(2)
    n = 300
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(int)
    cohort = np.where(np.arange(n) < 200, "internal", "external")
    groups = np.arange(n) // 2
    table = transport.per_center(y, p, cohort, groups, n_boot=200)
    assert list(table.index) == ["internal", "external", "pooled"]
    r = cohort == "external"
    assert table.loc["external", "n"] == 100 and table.loc["external", "events"] == y[r].sum()
    assert table.loc["external", "AUC"] == pytest.approx(roc_auc_score(y[r], p[r]))
    cal = calibration.calibration_slope_intercept(y, p)
    assert table.loc["pooled", "slope"] == pytest.approx(cal["slope"])
    assert table.loc["pooled", "intercept"] == pytest.approx(cal["intercept"])
    with pytest.raises(ValueError, match="one value per case"):
        transport.per_center(y, p[:-1], cohort, groups)


def test_sensitivity_on_a_tiny_cohort_counts_every_variant(ct_manifest, tmp_path):
    task = get_task("astlof")
    variants = [v for v in transport.variants("ct", "ct_volume") if v.choice in ("shipped", "reference", "filter")]
    table, families = transport.sensitivity(ct_manifest, "ct_volume", variants, task, cache_dir=tmp_path, n_jobs=1,
                                            n_boot=50)
    assert list(table["variant"]) == [v.label for v in variants]
    assert (table["failed"] == 0).all() and (table["features"] > 0).all()
    assert {"shift internal", "shift external", "AUC pooled", "AUC pooled, ComBat"} <= set(table.columns)
    assert set(families["variant"]) == set(table["variant"])
    sentences = findings.transport_findings(table, families, "ct_volume.yaml")
    assert sentences and "nan" not in " ".join(sentences).lower()  # a tiny cohort leaves AUCs undefined, not "nan"


def test_applicable_needs_a_held_out_center():
    m = pd.DataFrame({"cohort": ["train", "internal"], "center": ["I", "I"]})
    assert "no other center" in transport.applicable(m)
    assert transport.applicable(m.assign(cohort=["internal", "internal"])).startswith("no training cohort")
    assert transport.applicable(pd.DataFrame({"cohort": ["train", "external"], "center": ["I", "II"]})) == ""


def test_shipped_defaults_are_the_transporting_files():
    assert radiomics.default_params("ct") == "ct_volume"
    assert radiomics.default_params("ct", paper=True) == "ct_sagittal"
    ct = radiomics.load_settings("ct_volume")["setting"]
    assert ct["resampledPixelSpacing"] == [2.0, 2.0, 2.0] and ct["interpolator"] == "sitkLinear"
    assert radiomics.load_settings("ct_volume_1mm")["setting"]["resampledPixelSpacing"] == [1.0, 1.0, 1.0]


def test_peer_parameter_file_is_autoradiomics_ct_baessler():
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "params" / "ct_baessler.yaml"
    params = radiomics.load_settings(path)
    s = params["setting"]
    assert s["resampledPixelSpacing"] == [2, 2, 0] and s["interpolator"] == "sitkLinear"
    assert s["binWidth"] == 25 and s["voxelArrayShift"] == 1000 and not s["normalize"]
    assert params["imageType"] == {"Original": {}, "LoG": {"sigma": [3.0, 5.0]}, "Wavelet": {}}
    assert "SumAverage" not in params["featureClass"]["glcm"] and len(params["featureClass"]["glcm"]) == 22
    assert "Apache\n# License 2.0" in path.read_text() and "Baessler_CT.yaml" in path.read_text()
    radiomics._extractor({k: v for k, v in params.items() if k != "ovfkit"})


def test_radiomics_help_says_what_the_defaults_assume_and_when_to_harmonize():
    from typer.testing import CliRunner

    from ovfkit.cli import app

    out = CliRunner().invoke(app, ["features", "radiomics", "--help"], env={"COLUMNS": "200"}).output
    for phrase in ("calibrated HU", "2 mm isotropic", "uncalibrated grey values", "harmonize (ComBat",
                   "ct_volume_1mm"):
        assert phrase in out, phrase


def test_findings_state_the_numbers_and_never_print_nan():
    nan = float("nan")
    table = pd.DataFrame([
        {"choice": "shipped", "variant": "as shipped", "shift internal": 0.1, "shift external": 0.8,
         "AUC internal": 0.9, "AUC external": 0.7, "AUC pooled": 0.75, "AUC pooled low": 0.7, "AUC pooled high": 0.8,
         "AUC pooled, ComBat": 0.8},
        {"choice": "reference", "variant": "original image only", "shift internal": 0.1, "shift external": 0.5,
         "AUC internal": 0.85, "AUC external": nan, "AUC pooled": 0.72, "AUC pooled low": nan,
         "AUC pooled high": nan, "AUC pooled, ComBat": nan},
        {"choice": "resampling", "variant": "2 mm pixels", "shift internal": nan, "shift external": 0.3,
         "AUC internal": nan, "AUC external": nan, "AUC pooled": 0.8, "AUC pooled low": nan, "AUC pooled high": nan,
         "AUC pooled, ComBat": 0.81}])
    table = pd.concat([table, pd.DataFrame([
        {"choice": "file", "variant": "the papers' file (ct_sagittal)", "shift internal": 0.1, "shift external": 2.0,
         "AUC internal": 0.8, "AUC external": 0.5, "AUC pooled": 0.6, "AUC pooled low": nan, "AUC pooled high": nan,
         "AUC pooled, ComBat": 0.65}])], ignore_index=True)
    families = pd.DataFrame([{"choice": "shipped", "variant": "as shipped", "image": "original",
                              "feature_class": "glcm", "cohort": "external", "shift": 0.9, "features": 22}])
    text = " ".join(findings.transport_findings(table, families, "ct_volume.yaml"))
    assert "nan" not in text.lower()
    for phrase in ("internal 0.900, external 0.700", "0.750 (95% CI 0.700-0.800)", "0.800 with it",
                   "external cohort sit a median 0.80", "original glcm (0.90", "from 0.800 (resampling: 2 mm pixels)",
                   "3 of 3 variants", "0.10 wide", "The papers' file (ct_sagittal): pooled AUC 0.600",
                   "shift 2.00 at the external cohort", "smallest with resampling: 2 mm pixels (0.30)"):
        assert phrase in text, phrase
    assert "(file:" not in text  # the whole-file row is not one of the one-at-a-time changes


def test_plots_show_one_row_per_variant_and_the_cohorts_only():
    import matplotlib

    matplotlib.use("Agg")
    from ovfkit import plots

    table = pd.DataFrame({"choice": ["shipped", "filter"], "variant": ["as shipped", "+ LoG (3, 5 mm)"],
                          "AUC internal": [0.8, 0.7], "AUC external": [0.7, 0.6], "AUC pooled": [0.75, 0.65],
                          "AUC pooled low": [0.7, 0.6], "AUC pooled high": [0.8, 0.7],
                          "AUC internal, ComBat": [0.8, 0.7], "AUC external, ComBat": [0.72, 0.62],
                          "AUC pooled, ComBat": [0.76, 0.66], "AUC pooled low, ComBat": [0.7, 0.6],
                          "AUC pooled high, ComBat": [0.8, 0.7]})
    fig, data = plots.transport_auc(table)
    assert set(data["cohort"]) == {"internal", "external", "pooled"} and len(data) == 6
    families = pd.DataFrame({"choice": "shipped", "variant": ["as shipped"] * 4, "image": ["original", "LoG"] * 2,
                             "feature_class": ["glcm", "glcm", "shape2D", "shape"],
                             "cohort": ["external"] * 4, "shift": [0.2, 0.4, 0.1, 0.1], "features": 5})
    fig, data = plots.transport_shift(families)
    assert set(data["feature_class"]) == {"glcm", "shape"}  # 2-D and 3-D shape share a column
    assert data.loc[data["feature_class"] == "glcm", "shift"].item() == pytest.approx(0.3)
