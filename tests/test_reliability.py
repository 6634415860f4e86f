from dataclasses import replace

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from ovfkit.reliability import ICC_FORMS, ICCFilter, feature_icc, icc, reader_icc, training_icc

from .conftest import FIXTURES


def test_icc_matches_the_shrout_fleiss_textbook_example():
    data = pd.read_csv(FIXTURES / "shrout_fleiss_1979.csv", comment="#").set_index("target").to_numpy()
    ref = pd.read_csv(FIXTURES / "shrout_fleiss_1979_icc.csv", comment="#").set_index("form")["icc"]
    got = icc(data).iloc[0]
    for form in ICC_FORMS:
        assert got[form] == pytest.approx(ref[form], abs=0.005), form


@pytest.mark.parametrize("n, k", [(30, 2), (12, 3), (5, 4)])
def test_icc_equals_pingouin_per_feature(n, k):
    rng = np.random.default_rng(n * k)
    subject = rng.normal(size=(n, 1, 6))
    x = subject * rng.uniform(0.2, 3, 6) + rng.normal(scale=0.7, size=(n, k, 6)) + rng.normal(size=(1, k, 6))
    ours = icc(x)
    for f in range(x.shape[2]):
        long = pd.DataFrame([(i, j, x[i, j, f]) for i in range(n) for j in range(k)], columns=["t", "r", "y"])
        ref = pg.intraclass_corr(long, targets="t", raters="r", ratings="y")["ICC"].to_numpy()
        # pingouin's rows are ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k whatever it names them
        np.testing.assert_allclose(ours.iloc[f].to_numpy(), ref, atol=1e-10, rtol=0)


def test_constant_feature_has_undefined_icc():
    x = np.ones((10, 2, 1))
    assert icc(x).isna().all(axis=None)


@pytest.mark.parametrize("bad, msg", [(np.ones((1, 2)), "at least 2 subjects"), (np.ones(5), "shape"),
                                      (np.array([[1.0, np.nan], [2, 3]]), "NaN")])
def test_icc_rejects_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        icc(bad)


def test_feature_icc_aligns_cases_and_features():
    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(size=(20, 3)), columns=["f1", "f2", "f3"], index=[f"v{i}" for i in range(20)])
    b = a + rng.normal(scale=0.1, size=a.shape)
    b = b.iloc[::-1].drop(columns="f3")  # other order, one feature missing
    out = feature_icc(a, b)
    assert list(out.index) == ["f1", "f2"] and (out > 0.95).all()


def test_icc_filter_keeps_reliable_features_by_name():
    X = pd.DataFrame(np.random.default_rng(1).normal(size=(8, 3)), columns=["a", "b", "c"])
    f = ICCFilter(icc={"a": 0.95, "b": 0.5, "c": np.nan}, threshold=0.8).fit(X)
    assert list(f.get_feature_names_out()) == ["a"]
    assert f.transform(X).shape == (8, 1)


def test_icc_filter_needs_scores():
    X = pd.DataFrame(np.zeros((3, 2)), columns=["a", "b"])
    with pytest.raises(ValueError, match="needs icc="):
        ICCFilter().fit(X)


def test_icc_filter_on_an_array_uses_scikit_learns_default_names():
    X = np.random.default_rng(2).normal(size=(5, 3))
    f = ICCFilter(icc={"x0": 0.9, "x1": 0.2, "x2": 0.85}).fit(X)
    assert list(f.get_feature_names_out()) == ["x0", "x2"]
    assert f.transform(X).shape == (5, 2)


def test_training_icc_ignores_held_out_vertebrae_outlined_twice():
    """The ICC filter is a selection step: a held-out second outline, however discordant, changes nothing."""
    rng = np.random.default_rng(4)
    ids = [f"v{i}" for i in range(12)]
    r1 = pd.DataFrame(rng.normal(size=(12, 3)), index=ids, columns=["a", "b", "c"])
    r2 = r1 + rng.normal(scale=0.2, size=r1.shape)
    cohort = pd.Series(["train"] * 9 + ["internal", "external", "prospective"], index=ids)
    r2.iloc[9:] = -50.0  # discordant outlines on held-out vertebrae
    got, used, ignored = training_icc(r1, r2, cohort)
    pd.testing.assert_series_equal(got, feature_icc(r1.iloc[:9], r2.iloc[:9]))
    assert list(used) == ids[:9] and list(ignored) == ids[9:]


# --- inter- and intra-observer ICC: the filter uses the smaller ----------------------------------

def _readers(n=12, noise_r2=(0.1, 0.8, 0.1), noise_repeat=(0.1, 0.1, 0.8), seed=5):
    """Reader 1's features, reader 2's and reader 1's repeat: feature b disagrees between readers,
    feature c within reader 1."""
    rng = np.random.default_rng(seed)
    ids = [f"v{i}" for i in range(n)]
    r1 = pd.DataFrame(rng.normal(size=(n, 3)), index=ids, columns=["a", "b", "c"])
    r2 = r1 + rng.normal(size=r1.shape) * np.array(noise_r2)
    repeat = r1 + rng.normal(size=r1.shape) * np.array(noise_repeat)
    cohort = pd.Series(["train"] * (n - 2) + ["internal", "external"], index=ids)
    return r1, r2, repeat, cohort


@pytest.mark.parametrize("noise_r2, noise_repeat, weaker", [
    ((0.1, 0.8, 0.1), (0.1, 0.1, 0.8), {"a": "either", "b": "inter", "c": "intra"}),
    ((0.8, 0.8, 0.1), (0.1, 0.1, 0.8), {"a": "inter", "b": "inter", "c": "intra"}),
])
def test_filter_icc_is_the_minimum_of_inter_and_intra_observer(noise_r2, noise_repeat, weaker):
    r1, r2, repeat, cohort = _readers(noise_r2=noise_r2, noise_repeat=noise_repeat)
    got = reader_icc(r1, r2, cohort, repeat=repeat)
    train = cohort.index[cohort == "train"]
    inter, intra = feature_icc(r1.loc[train], r2.loc[train]), feature_icc(r1.loc[train], repeat.loc[train])
    assert got.comparisons == ("inter", "intra") and list(got.table.columns) == ["inter", "intra", "used"]
    pd.testing.assert_series_equal(got.table["inter"], inter, check_names=False)
    pd.testing.assert_series_equal(got.table["intra"], intra, check_names=False)
    pd.testing.assert_series_equal(got.used, np.minimum(inter, intra).rename("ICC(2,1)"))
    other = {"inter": "intra", "intra": "inter"}
    for feature, which in weaker.items():
        if which != "either":
            assert got.used[feature] == got.table.loc[feature, which] < got.table.loc[feature, other[which]], feature
    assert r1.columns.name is None and r2.columns.name is None, "the callers' tables are left as they were"
    kept = ICCFilter(icc=got.used, threshold=0.8).fit(r1).get_feature_names_out()
    assert "c" not in kept and "b" not in kept, "a feature must be reproducible by both comparisons"


def test_filter_icc_falls_back_to_inter_observer_without_repeat_masks():
    r1, r2, repeat, cohort = _readers()
    got = reader_icc(r1, r2, cohort, repeat=None)
    expected, used, ignored = training_icc(r1, r2, cohort)
    pd.testing.assert_series_equal(got.used, expected)
    assert got.comparisons == ("inter",) and got.table["intra"].isna().all()
    assert list(got.rows["inter"]) == list(used) and list(got.ignored["inter"]) == list(ignored)
    text = got.statement(0.8)
    assert "uses the inter-observer ICC(2,1) alone" in text and "`mask_reader1_repeat`" in text


def test_intra_observer_icc_ignores_held_out_repeat_outlines():
    r1, r2, repeat, cohort = _readers()
    clean = reader_icc(r1, r2, cohort, repeat=repeat)
    repeat.loc[cohort != "train"] = -50.0  # discordant repeats on held-out vertebrae
    got = reader_icc(r1, r2, cohort, repeat=repeat)
    pd.testing.assert_frame_equal(got.table, clean.table)
    assert list(got.ignored["intra"]) == ["v10", "v11"] and len(got.rows["intra"]) == 10


@pytest.mark.parametrize("undefined", ["inter", "intra"])
def test_feature_with_undefined_icc_in_one_comparison_is_dropped(undefined):
    r1, r2, repeat, cohort = _readers()
    r1["d"] = np.linspace(-1, 1, len(r1))
    r2["d"], repeat["d"] = r1["d"] + 0.01, r1["d"] - 0.01
    other = {"inter": r2, "intra": repeat}[undefined]
    other["d"] = 5.0 - r1["d"]  # each vertebra's mean over the two outlines is 2.5: no spread, undefined ICC
    got = reader_icc(r1, r2, cohort, repeat=repeat)
    assert np.isnan(got.table.loc["d", undefined]) and got.table.loc["d"].drop([undefined, "used"]).item() > 0.99
    assert np.isnan(got.used["d"]) and got.used.drop("d").notna().all()
    assert "d" not in ICCFilter(icc=got.used).fit(r1).get_feature_names_out()


@pytest.mark.parametrize("training_repeats", [0, 1])
def test_too_few_training_repeats_name_the_column_and_the_remedy(training_repeats):
    r1, r2, repeat, cohort = _readers()
    keep = list(cohort.index[cohort == "train"][:training_repeats]) + ["v10", "v11"]
    with pytest.raises(ValueError, match=rf"only {training_repeats} training vertebra\(e\) .*mask_reader1_repeat\).*"
                                         r"leave mask_reader1_repeat empty"):
        reader_icc(r1, r2, cohort, repeat=repeat.loc[keep])


@pytest.mark.parametrize("repeat_masks", ["drawn", "empty column", "no column"])
def test_load_features_filter_icc_uses_both_readers_comparisons(tiny_cohorts, tmp_path, repeat_masks):
    """study.load_features gives the ICC filter min(inter, intra) per feature, or inter alone without repeats."""
    from ovfkit import radiomics, study
    from ovfkit.manifest import load_manifest
    from ovfkit.settings import settings

    params = {"ovfkit": {"roi": "volume"}, "setting": {"label": 1, "binWidth": 25, "normalize": True,
                                                       "normalizeScale": 100},
              "imageType": {"Original": {}}, "featureClass": {"firstorder": None, "shape2D": None, "glcm": None}}
    m = load_manifest(tiny_cohorts["xray"])
    if repeat_masks == "empty column":
        m["mask_reader1_repeat"] = ""
    elif repeat_masks == "no column":  # user data: a manifest written before the column existed
        m = m.drop(columns=["mask_reader1_repeat", "mask_reader1_repeat_sha256"])
    run = replace(settings("quick", "xray", 7), radiomics_params=params)  # a small extraction, same pipeline
    features = study.load_features(m, run, cache_dir=tmp_path, backbones=[])
    extract = {col: radiomics.extract_manifest(m, params, cache_dir=tmp_path / "radiomics", mask_column=col,
                                               progress=False) for col in ("mask", "mask_reader2")}
    inter, _, _ = training_icc(extract["mask"], extract["mask_reader2"], m["cohort"])
    if repeat_masks == "drawn":
        repeat = radiomics.extract_manifest(m, params, cache_dir=tmp_path / "radiomics",
                                            mask_column="mask_reader1_repeat", progress=False)
        intra, _, _ = training_icc(extract["mask"], repeat, m["cohort"])
        expected, comparisons = np.minimum(inter, intra), ("inter", "intra")
        assert (intra < inter).any(), "the minimum must differ from the inter-observer ICC somewhere"
    else:
        expected, comparisons = inter, ("inter",)
    pd.testing.assert_series_equal(features.icc, expected)
    assert features.reader_icc.comparisons == comparisons
    pd.testing.assert_series_equal(features.reader_icc.used, features.icc)
