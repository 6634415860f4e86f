import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from ovfkit.reliability import ICC_FORMS, ICCFilter, feature_icc, icc, training_icc

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
