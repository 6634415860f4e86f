"""DeLong's test against a brute-force O(n^2) version, pROC's reference values and the known traps."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from ovfkit import stats

FIXTURES = Path(__file__).parent / "fixtures"


def brute_force_delong(y, scores):
    """DeLong (1988) as written: psi kernel over every positive-negative pair, O(n^2)."""
    y = np.asarray(y)
    S = np.atleast_2d(scores)
    X, Y = S[:, y == 1], S[:, y == 0]
    m, n = X.shape[1], Y.shape[1]
    psi = (X[:, :, None] > Y[:, None, :]) + 0.5 * (X[:, :, None] == Y[:, None, :])
    auc = psi.mean(axis=(1, 2))
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    s10 = np.array([[((v10[r] - auc[r]) * (v10[s] - auc[s])).sum() / (m - 1) for s in range(len(S))]
                    for r in range(len(S))])
    s01 = np.array([[((v01[r] - auc[r]) * (v01[s] - auc[s])).sum() / (n - 1) for s in range(len(S))]
                    for r in range(len(S))])
    return auc, s10 / m + s01 / n


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_equals_brute_force(ties):
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.35).astype(int)
    S = np.vstack([rng.normal(size=200) + y, rng.normal(size=200) + 0.5 * y, rng.normal(size=200)])
    if ties:
        S = np.round(S, 0)
    auc, cov = stats.delong_components(y, S)
    ref_auc, ref_cov = brute_force_delong(y, S)
    np.testing.assert_allclose(auc, ref_auc, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)
    for r in range(3):
        assert auc[r] == pytest.approx(roc_auc_score(y, S[r]), abs=1e-12)


def test_paired_test_equals_proc_roc_test():
    """Reference values computed by pROC 1.18.0 (R 4.2.2) ``roc.test(method="delong")``, ``var``, ``cov``
    and ``ci.auc`` on the cases in delong_cases.csv (ratings with many ties)."""
    cases = pd.read_csv(FIXTURES / "delong_cases.csv")
    ref = pd.read_csv(FIXTURES / "delong_proc_reference.csv")
    for row in ref.itertuples():
        r = stats.delong_test(cases["y"], cases[row.a], cases[row.b])
        assert (r.auc_a, r.auc_b) == pytest.approx((row.auc_a, row.auc_b), abs=1e-12)
        assert r.z == pytest.approx(row.z, rel=1e-9)
        assert r.p == pytest.approx(row.p, rel=1e-9)
        assert r.se ** 2 == pytest.approx(row.var_a + row.var_b - 2 * row.cov_ab, rel=1e-9)
        auc, lo, hi = stats.auc_ci(cases["y"], cases[row.a])
        assert (lo, hi) == pytest.approx((row.ci_a_low, row.ci_a_high), abs=1e-9)


def test_sign_of_z_follows_a_minus_b_and_p_is_a_probability():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.5).astype(int)
    good, poor = rng.normal(size=300) + 1.5 * y, rng.normal(size=300) + 0.3 * y
    ab, ba = stats.delong_test(y, good, poor), stats.delong_test(y, poor, good)
    assert ab.diff > 0 and ab.z > 0 and ba.z == pytest.approx(-ab.z)
    assert 0 <= ab.p <= 1 and ab.p == pytest.approx(2 * norm.sf(abs(ab.z)))
    assert ab.ci[0] < ab.diff < ab.ci[1]


def test_identical_scores_give_z_zero_and_p_one():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    r = stats.delong_test(y, s, s)
    assert (r.diff, r.z, r.p) == (0.0, 0.0, 1.0)


def test_cis_are_clipped_to_the_unit_interval():
    """Cases whose Wald intervals (brute-force DeLong variance) cross the bounds: the crossing end sits on
    the bound, the other end is the unclipped one."""
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    good = np.array([1.0, 2, 3, 5, 4, 6, 7, 8])  # one discordant pair: AUC 15/16
    q = norm.ppf(0.975)
    auc, cov = brute_force_delong(y, np.vstack([good, -good]))
    se_auc, se_diff = np.sqrt(cov[0, 0]), np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc[0] - auc[1]
    assert auc[0] + q * se_auc > 1 and auc[1] - q * se_auc < 0 and diff + q * se_diff > 1  # the bounds are crossed
    assert stats.auc_ci(y, good) == pytest.approx((auc[0], auc[0] - q * se_auc, 1.0), abs=1e-12)
    assert stats.auc_ci(y, -good) == pytest.approx((auc[1], 0.0, auc[1] + q * se_auc), abs=1e-12)
    assert stats.delong_test(y, good, -good).ci == pytest.approx((diff - q * se_diff, 1.0), abs=1e-12)
    assert stats.delong_test(y, -good, good).ci == pytest.approx((-1.0, -diff + q * se_diff), abs=1e-12)
    assert stats.auc_ci(y, np.arange(8.0)) == (1.0, 1.0, 1.0)  # perfect separation: zero variance


@pytest.mark.parametrize("y, a, b, message", [
    ([0, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3], "at least 2 positive and 2 negative"),
    ([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3], "at least 2 positive and 2 negative"),
    ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3], "exactly two classes"),
    ([0, 1, 0, 1], [0.1, 0.2, 0.3], [0.2, 0.1, 0.4], "same cases"),
    ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4], "paired test needs both scores"),
    ([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3], "NaN"),
])
def test_degenerate_input_gets_a_clear_error(y, a, b, message):
    with pytest.raises(ValueError, match=message):
        stats.delong_test(np.array(y), np.array(a), np.array(b))


def test_omnibus_with_two_scores_equals_the_squared_paired_z():
    cases = pd.read_csv(FIXTURES / "delong_cases.csv")
    pair = stats.delong_test(cases["y"], cases["score_a"], cases["score_c"])
    omni = stats.delong_omnibus(cases["y"], {"a": cases["score_a"], "c": cases["score_c"]})
    assert omni["df"] == 1
    assert omni["chi2"] == pytest.approx(pair.z ** 2, rel=1e-10)
    assert omni["p"] == pytest.approx(pair.p, rel=1e-8)


def test_omnibus_holds_its_size_under_the_null():
    """Three equally good but different scores: the k-AUC test rejects about 5% of the time."""
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(300):
        y = (rng.random(150) < 0.4).astype(int)
        base = rng.normal(size=150)
        S = np.vstack([base + rng.normal(size=150) + y for _ in range(3)])
        rejections += stats.delong_omnibus(y, S)["p"] < 0.05
    assert 0.02 <= rejections / 300 <= 0.09


def test_unpaired_variance_is_the_sum_of_the_two_variances():
    cases = pd.read_csv(FIXTURES / "delong_cases.csv")
    half = len(cases) // 2
    a, b = cases.iloc[:half], cases.iloc[half:]
    r = stats.delong_test_unpaired(a["y"], a["score_a"], b["y"], b["score_b"])
    va = stats.delong_components(a["y"], a["score_a"])[1][0, 0]
    vb = stats.delong_components(b["y"], b["score_b"])[1][0, 0]
    assert r.se ** 2 == pytest.approx(va + vb) and not r.paired


def test_bootstrap_auc_ci_brackets_the_delong_interval_roughly():
    cases = pd.read_csv(FIXTURES / "delong_cases.csv")
    d = stats.auc_ci(cases["y"], cases["score_a"])
    b = stats.auc_ci(cases["y"], cases["score_a"], method="bootstrap", n_boot=2000, seed=1)
    assert b[0] == pytest.approx(d[0])
    assert abs(b[1] - d[1]) < 0.02 and abs(b[2] - d[2]) < 0.02


def test_holm_and_benjamini_hochberg_adjustments_match_the_textbook():
    p = [0.01, 0.04, 0.03]
    np.testing.assert_allclose(stats.adjust(p, "holm"), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.adjust(p, "fdr_bh"), [0.03, 0.04, 0.04])


def test_multiclass_comparisons_per_class_and_macro():
    rng = np.random.default_rng(3)
    y = rng.choice([0, 1, 2], 240)
    logits = rng.normal(size=(240, 3)) + 1.5 * np.eye(3)[y]
    pa = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    table = stats.per_class_delong(y, pa, pa)
    assert list(table["class"]) == [0, 1, 2] and (table["p"] == 1.0).all()
    same = stats.auc_difference(y, pa, pa, np.arange(240) // 2, n_boot=300)
    assert same["diff"] == 0 and same["p"] == 1.0
    flat = np.full_like(pa, 1 / 3)
    better = stats.auc_difference(y, pa, flat, np.arange(240) // 2, n_boot=300)
    assert better["diff"] > 0.3 and better["ci_low"] > 0 and better["p"] < 0.01


def test_untestable_class_gives_nan_and_stays_out_of_the_adjusted_family():
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    p = np.tile([0.5, 0.3, 0.2], (7, 1))
    table = stats.per_class_delong(y, p, p)
    assert np.isnan(table.loc[2, "p"]) and table.loc[0, "p"] == 1.0
    np.testing.assert_allclose(stats.adjust([0.01, np.nan, 0.04], "holm"), [0.02, np.nan, 0.04])


def test_ci_width_statement_reports_range_median_and_untestable_rows():
    tests = pd.DataFrame({"ci_low": [-0.1, -0.05, np.nan, 0.0], "ci_high": [0.1, 0.05, np.nan, 0.3]})
    text = stats.ci_width_statement(tests)
    assert "The 95% CIs of the 3 AUC differences tested in this chapter (1 more could not be tested) are " \
           "0.100 to 0.300 wide (median 0.200)." == text


# ---- Clustered cases (Obuchowski 1997) ----

def brute_force_clustered(y, scores, groups):
    """Obuchowski (1997) as written: psi over every positive-negative pair of the whole cohort, then the
    placements summed cluster by cluster in a plain loop."""
    y, g = np.asarray(y), np.asarray(groups)
    S = np.atleast_2d(scores)
    X, Y = S[:, y == 1], S[:, y == 0]
    gx, gy = g[y == 1], g[y == 0]
    M, N = X.shape[1], Y.shape[1]
    psi = (X[:, :, None] > Y[:, None, :]) + 0.5 * (X[:, :, None] == Y[:, None, :])
    auc = psi.mean(axis=(1, 2))
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    clusters = list(dict.fromkeys(g.tolist()))
    I, k = len(clusters), len(S)
    s10, s01, s11 = np.zeros((k, k)), np.zeros((k, k)), np.zeros((k, k))
    for c in clusters:
        a = [v10[r][gx == c].sum() - (gx == c).sum() * auc[r] for r in range(k)]
        b = [v01[r][gy == c].sum() - (gy == c).sum() * auc[r] for r in range(k)]
        for r in range(k):
            for s in range(k):
                s10[r, s] += a[r] * a[s]
                s01[r, s] += b[r] * b[s]
                s11[r, s] += a[r] * b[s]
    i10, i01 = len(set(gx.tolist())), len(set(gy.tolist()))  # clusters with a positive, with a negative
    s10, s01, s11 = i10 / (i10 - 1) * s10 / M, i01 / (i01 - 1) * s01 / N, I / (I - 1) * s11
    return auc, s10 / M + s01 / N + (s11 + s11.T) / (M * N)


def clustered_cases(n_patients=60, seed=0):
    """Patients with 2-6 vertebrae each; how plainly a patient's fractures show (per score) is shared by
    all of them, as with bone density or habitus."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, n_patients)
    groups = np.repeat(np.arange(n_patients), sizes)
    y = (rng.random(len(groups)) < 0.4).astype(int)
    shown = rng.normal(scale=1.5, size=(2, n_patients))[:, groups]
    S = (np.array([[1.0], [0.6]]) + shown) * y + rng.normal(size=(2, len(groups)))
    return y, S, groups


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied"])
def test_clustered_covariance_equals_brute_force(ties):
    y, S, groups = clustered_cases()
    if ties:
        S = np.round(S, 0)
    auc, cov = stats.delong_components(y, S, groups=groups)
    ref_auc, ref_cov = brute_force_clustered(y, S, groups)
    np.testing.assert_allclose(auc, ref_auc, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)


def test_clustered_with_one_case_per_cluster_is_exactly_delong():
    """One case per cluster: S11 = 0, I10 = M and I01 = N, so Obuchowski's estimate is DeLong's."""
    rng = np.random.default_rng(3)
    for n_cases, share in ((60, 0.3), (51, 0.1), (2000, 0.02)):
        y = (rng.random(n_cases) < share).astype(int)
        y[:2], y[2:4] = 1, 0
        S = np.vstack([rng.normal(size=n_cases) + y, rng.normal(size=n_cases) + 0.3 * y])
        _, cov_c = stats.delong_components(y, S, groups=np.arange(n_cases))
        _, cov_d = stats.delong_components(y, S)
        np.testing.assert_allclose(cov_c, cov_d, rtol=1e-12)


def test_a_rare_class_in_few_patients_widens_the_interval():
    """Positives in only 3 of 80 patients (3 vertebrae each): their term carries I10 / (I10 - 1) = 3/2, and the
    clustered SE of each AUC is above the independent one (a patient's vertebrae resemble each other)."""
    rng = np.random.default_rng(8)
    groups = np.repeat(np.arange(80), 3)
    y = np.isin(groups, [3, 40, 77]).astype(int)
    shared = rng.normal(size=80)[groups]
    a, b = shared + rng.normal(size=240) + 1.5 * y, shared + rng.normal(size=240) + 0.8 * y
    clustered, plain = stats.delong_test(y, a, b, groups=groups), stats.delong_test(y, a, b)
    ref = brute_force_clustered(y, np.vstack([a, b]), groups)[1]
    assert clustered.se == pytest.approx(np.sqrt(ref[0, 0] + ref[1, 1] - 2 * ref[0, 1]), rel=1e-10)
    assert clustered.se != pytest.approx(plain.se, rel=0.05)
    var_c = stats.delong_components(y, np.vstack([a, b]), groups=groups)[1]
    var_d = stats.delong_components(y, np.vstack([a, b]))[1]
    assert (np.diag(var_c) > 1.5 * np.diag(var_d)).all()


def test_copies_within_a_cluster_add_no_information():
    """Every case copied three times inside its own cluster: the AUC and the clustered variance are those of
    the original cases, while the unclustered DeLong variance shrinks about threefold."""
    rng = np.random.default_rng(5)
    y = (rng.random(80) < 0.4).astype(int)
    S = np.vstack([rng.normal(size=80) + y, rng.normal(size=80) + 0.4 * y])
    auc, cov = stats.delong_components(y, S, groups=np.arange(80))
    y3, S3, g3 = np.repeat(y, 3), np.repeat(S, 3, axis=1), np.repeat(np.arange(80), 3)
    auc3, cov3 = stats.delong_components(y3, S3, groups=g3)
    np.testing.assert_allclose(auc3, auc, atol=1e-12)
    np.testing.assert_allclose(cov3, cov, rtol=1e-10)
    naive = stats.delong_components(y3, S3)[1]
    assert naive[0, 0] < 0.4 * cov3[0, 0]


def test_clustered_standard_error_matches_the_spread_over_repeated_cohorts():
    """Monte Carlo: over 400 cohorts of 60 patients with correlated vertebrae, the mean clustered SE of the
    AUC difference is within 12% of its empirical SD; the unclustered SE is too small."""
    diffs, se_c, se_d = [], [], []
    for seed in range(400):
        y, S, groups = clustered_cases(seed=seed)
        diffs.append(stats.delong_test(y, S[0], S[1]).diff)
        se_c.append(stats.delong_test(y, S[0], S[1], groups=groups).se)
        se_d.append(stats.delong_test(y, S[0], S[1]).se)
    sd = np.std(diffs, ddof=1)
    assert np.mean(se_c) == pytest.approx(sd, rel=0.12)
    assert np.mean(se_d) < 0.85 * np.mean(se_c)


@pytest.mark.parametrize("groups, message", [
    (np.zeros(10), "at least 2 clusters"),
    (np.where(np.array([0, 1] * 5) == 1, 99, np.arange(10)), "positives in at least 2"),  # one patient has them all
    (np.arange(9), "one cluster id"),
    (np.array([1.0] * 9 + [np.nan]), "missing"),
], ids=["one-cluster", "positives-in-one-patient", "wrong-length", "missing-id"])
def test_clustered_variance_refuses_bad_groups(groups, message):
    y = np.array([0, 1] * 5)
    with pytest.raises(ValueError, match=message):
        stats.delong_test(y, np.arange(10.0), np.arange(10.0)[::-1], groups=groups)


def test_omnibus_and_auc_ci_take_the_clustered_variance():
    y, S, groups = clustered_cases(seed=2)
    auc, cov = stats.delong_components(y, S, groups=groups)
    _, lo, hi = stats.auc_ci(y, S[0], groups=groups)
    q = norm.ppf(0.975)
    assert (lo, hi) == pytest.approx((auc[0] - q * np.sqrt(cov[0, 0]), min(1.0, auc[0] + q * np.sqrt(cov[0, 0]))))
    omni = stats.delong_omnibus(y, S, groups=groups)
    pair = stats.delong_test(y, S[0], S[1], groups=groups)
    assert omni["chi2"] == pytest.approx(pair.z ** 2)


def test_clustering_effect_reports_both_standard_errors_of_every_auc_and_pair():
    y, S, groups = clustered_cases(seed=4)
    table = stats.clustering_effect(y, {"a": S[0], "b": S[1]}, groups).set_index("what")
    assert list(table.index) == ["AUC a", "AUC b", "a - b"]
    pair_i = stats.delong_test(y, S[0], S[1])
    pair_c = stats.delong_test(y, S[0], S[1], groups=groups)
    assert table.loc["a - b", "se_independent"] == pytest.approx(pair_i.se)
    assert table.loc["a - b", "se_clustered"] == pytest.approx(pair_c.se)
    assert table.loc["a - b", "narrowing"] == pytest.approx(1 - pair_i.se / pair_c.se)
    _, lo, hi = stats.auc_ci(y, S[0], groups=groups)
    assert (hi - lo) == pytest.approx(2 * norm.ppf(0.975) * table.loc["AUC a", "se_clustered"])
