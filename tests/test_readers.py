"""Tests of ovfkit.readers: OR-MRMC analysis against published results and brute force, reader simulation,
per-reader summaries."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from ovfkit import readers

FIXTURES = Path(__file__).parent / "fixtures" / "readers"


@pytest.fixture(scope="module")
def vandyke() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "vandyke.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "vandyke_reference.csv", dtype={"value": str})


def _random_study(seed: int, n_tests: int = 2, n_readers: int = 3, n_cases: int = 16, levels: int = 5):
    """A small fully crossed study with tied ordinal ratings, in long form."""
    rng = np.random.default_rng(seed)
    n_diseased = n_cases // 3 + 1  # unequal classes, so that swapping m and n shows
    truth = np.r_[np.ones(n_diseased, int), np.zeros(n_cases - n_diseased, int)]
    rows = []
    for t in range(n_tests):
        for r in range(n_readers):
            latent = truth * (0.8 + 0.3 * t) + rng.normal(size=n_cases)
            rating = np.digitize(latent, np.linspace(-1, 1.5, levels - 1)) + 1
            rows.append(pd.DataFrame({"test": f"T{t}", "reader": f"R{r}", "case": np.arange(n_cases),
                                      "truth": truth, "rating": rating}))
    return pd.concat(rows, ignore_index=True)


def _ratings_matrix(long: pd.DataFrame):
    """(truth per case, ratings (t r, n_cases)) in the test-major order or_mrmc uses."""
    wide = long.pivot_table(index=["test", "reader"], columns="case", values="rating")
    truth = long.groupby("case")["truth"].first().reindex(wide.columns).to_numpy()
    return truth, wide.to_numpy(dtype=float)


def _quantity(res: readers.MRMCResult, name: str) -> float:
    """A number of the result named as in vandyke_reference.csv."""
    scalar = {"statistic": res.statistic, "df1": res.df1, "df2": res.df2, "p": res.p, **res.cov_params,
              **res.mean_squares}
    if name in scalar:
        return scalar[name]
    if name.startswith("diff_"):
        return float(res.differences.loc["1 - 2", name[len("diff_"):]])
    match = re.fullmatch(r"test_(\w+)\[(\d+)\]", name)
    if match:
        return float(res.test_aucs.loc[int(match[2]), match[1]])
    match = re.fullmatch(r"reader_(\w+)\[(\d+),(\d+)\]", name)
    if match:
        table = res.reader_aucs.set_index(["treatment", "reader"])
        return float(table.loc[(int(match[2]), int(match[3])), match[1]])
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------------
# Published values: Van Dyke et al. (1993) data
# ---------------------------------------------------------------------------------------------------

def test_vandyke_fixture_is_the_published_design(vandyke):
    assert len(vandyke) == 2 * 5 * 114
    per_case = vandyke.groupby("case")["truth"].agg(["nunique", "first"])
    assert (per_case["nunique"] == 1).all()
    assert per_case["first"].value_counts().to_dict() == {0: 69, 1: 45}
    assert set(vandyke["rating"]) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(("cov", "reader_factor"), [("jackknife", "random"), ("jackknife", "fixed"),
                                                     ("delong", "random"), ("delong", "fixed")])
def test_vandyke_reproduces_published_results(vandyke, reference, cov, reader_factor):
    rows = reference[(reference["cov"] == cov) & (reference["readers"] == reader_factor)]
    assert len(rows) >= 5
    res = readers.or_mrmc(vandyke, test="treatment", cov=cov, readers=reader_factor)
    for quantity, text, source in rows[["quantity", "value", "source"]].itertuples(index=False):
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10.0 ** -decimals + 1e-12
        ours = _quantity(res, quantity)
        assert abs(ours - float(text)) <= tolerance, f"{quantity}: {ours} vs {text} ({source[:40]})"


def test_vandyke_reader_aucs_match_sklearn(vandyke):
    res = readers.or_mrmc(vandyke, test="treatment")
    for row in res.reader_aucs.itertuples(index=False):
        sub = vandyke[(vandyke["treatment"] == row.treatment) & (vandyke["reader"] == row.reader)]
        assert row.auc == pytest.approx(roc_auc_score(sub["truth"], sub["rating"]), abs=1e-12)


# ---------------------------------------------------------------------------------------------------
# Brute-force checks of the AUC covariance
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_jackknife_covariance_equals_explicit_case_deletion(seed):
    long = _random_study(seed, n_tests=2, n_readers=3, n_cases=14)
    truth, scores = _ratings_matrix(long)
    n = len(truth)
    loo = np.array([[roc_auc_score(np.delete(truth, k), np.delete(row, k)) for row in scores] for k in range(n)])
    dev = loo - loo.mean(axis=0)
    expected = (n - 1) / n * dev.T @ dev
    res = readers.or_mrmc(long, cov="jackknife")
    np.testing.assert_allclose(res.cov_matrix.to_numpy(), expected, rtol=1e-10, atol=1e-15)


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


@pytest.mark.parametrize("seed", [0, 3])
def test_delong_covariance_equals_double_loop_structural_components(seed):
    long = _random_study(seed, n_tests=2, n_readers=2, n_cases=12)
    truth, scores = _ratings_matrix(long)
    pos, neg = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    m, n = len(pos), len(neg)
    v10 = np.array([[sum(_psi(s[i], s[j]) for j in neg) / n for i in pos] for s in scores])
    v01 = np.array([[sum(_psi(s[i], s[j]) for i in pos) / m for j in neg] for s in scores])
    auc = v10.mean(axis=1)
    k = len(scores)
    expected = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            s10 = sum((v10[a, i] - auc[a]) * (v10[b, i] - auc[b]) for i in range(m)) / (m - 1)
            s01 = sum((v01[a, j] - auc[a]) * (v01[b, j] - auc[b]) for j in range(n)) / (n - 1)
            expected[a, b] = s10 / m + s01 / n
    res = readers.or_mrmc(long, cov="delong")
    np.testing.assert_allclose(res.cov_matrix.to_numpy(), expected, rtol=1e-10, atol=1e-15)


def test_delong_variance_equals_two_sample_u_statistic_estimate():
    """Sen's (1960) estimate of the Mann-Whitney variance from kernel products, by triple loops."""
    rng = np.random.default_rng(5)
    x = rng.integers(1, 6, 9).astype(float) + 0.5   # diseased ratings (ties among themselves)
    z = rng.integers(1, 5, 7).astype(float)          # non-diseased ratings
    m, n = len(x), len(z)
    theta = sum(_psi(a, b) for a in x for b in z) / (m * n)
    # mean over i of V10_i^2 = (1/n^2) sum_j sum_k psi(x_i, z_j) psi(x_i, z_k), and likewise for V01
    xi10 = sum(_psi(x[i], z[j]) * _psi(x[i], z[k])
               for i in range(m) for j in range(n) for k in range(n)) / (m * n * n)
    xi01 = sum(_psi(x[i], z[j]) * _psi(x[h], z[j])
               for j in range(n) for i in range(m) for h in range(m)) / (n * m * m)
    variance = m / (m - 1) * (xi10 - theta ** 2) / m + n / (n - 1) * (xi01 - theta ** 2) / n
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    auc, cov = readers.auc_covariance(y, np.r_[x, z][None, :], "delong")
    assert auc[0] == pytest.approx(theta, abs=1e-12)
    assert cov[0, 0] == pytest.approx(variance, rel=1e-10)


@pytest.mark.parametrize("method", readers.COV_METHODS)
def test_auc_variance_is_close_to_monte_carlo_variance(method):
    rng = np.random.default_rng(11)
    m = n = 40
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    samples = np.r_[rng.normal(1.0, 1.0, (m, 4000)), rng.normal(0.0, 1.0, (n, 4000))].T
    chunks = [readers.auc_covariance(y, chunk, method) for chunk in np.split(samples, 20)]  # 200 x 200 blocks
    auc = np.concatenate([a for a, _ in chunks])
    variance = np.concatenate([np.diag(c) for _, c in chunks])
    assert np.mean(variance) == pytest.approx(np.var(auc, ddof=1), rel=0.1)


# ---------------------------------------------------------------------------------------------------
# OR analysis: structure and formulas
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reader_factor", readers.READER_FACTORS)
def test_differences_are_named_and_signed_in_sorted_test_order(reader_factor):
    long = _random_study(2, n_tests=3, n_readers=3, n_cases=20)
    long["test"] = long["test"].map({"T0": "C", "T1": "A", "T2": "B"})
    res = readers.or_mrmc(long, readers=reader_factor)
    assert res.differences.index.tolist() == ["A - B", "A - C", "B - C"]
    means = res.test_aucs["estimate"]
    assert res.differences.loc["A - C", "estimate"] == pytest.approx(means["A"] - means["C"])
    assert res.df1 == 2
    assert list(res.differences.columns) == ["estimate", "se", "df", "ci_low", "ci_high", "p"]


@pytest.mark.parametrize(("cov", "reader_factor"), [("jackknife", "random"), ("delong", "fixed")])
def test_two_test_difference_p_equals_global_p(vandyke, cov, reader_factor):
    res = readers.or_mrmc(vandyke, test="treatment", cov=cov, readers=reader_factor)
    assert res.differences["p"].iloc[0] == pytest.approx(res.p, rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_random_reader_denominator_truncates_cov2_minus_cov3_at_zero(seed):
    """Hillis: F = MS(T) / D, D = MS(T*R) + r max(Cov2 - Cov3, 0), ddf = D^2 / [MS(T*R)^2 / ((t - 1)(r - 1))]."""
    res = readers.or_mrmc(_random_study(seed, n_tests=3, n_readers=4, n_cases=20))
    p, ms, t, r = res.cov_params, res.mean_squares, 3, 4
    denominator = ms["ms_tr"] + r * max(p["cov2"] - p["cov3"], 0.0)
    assert res.statistic == pytest.approx(ms["ms_t"] / denominator, rel=1e-12)
    assert res.df2 == pytest.approx(denominator ** 2 / (ms["ms_tr"] ** 2 / ((t - 1) * (r - 1))), rel=1e-12)
    assert res.p == pytest.approx(stats.f.sf(res.statistic, t - 1, res.df2), rel=1e-12)
    assert res.differences["se"].iloc[0] == pytest.approx(math.sqrt(2 * denominator / r), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_fixed_reader_denominator_keeps_cov2_minus_cov3_untruncated(seed):
    """As MRMCaov and RJafroc: X2 = (t - 1) MS(T) / [Var - Cov1 + (r - 1)(Cov2 - Cov3)], negative gap kept."""
    res = readers.or_mrmc(_random_study(seed, n_tests=3, n_readers=4, n_cases=20), readers="fixed")
    p = res.cov_params
    denominator = p["var"] - p["cov1"] + 3 * (p["cov2"] - p["cov3"])
    assert res.statistic == pytest.approx(2 * res.mean_squares["ms_t"] / denominator, rel=1e-12)
    assert res.p == pytest.approx(stats.chi2.sf(res.statistic, 2), rel=1e-12)
    assert res.differences["se"].iloc[0] == pytest.approx(math.sqrt(2 * denominator / 4), rel=1e-12)
    assert math.isinf(res.df2)


@pytest.mark.parametrize("n_tests", [2, 3])
def test_some_random_studies_have_cov2_below_cov3(n_tests):
    """Keeps the truncation tests meaningful: their seeds include studies where the max(., 0) bites."""
    gaps = [readers.or_mrmc(_random_study(seed, n_tests=n_tests, n_readers=4, n_cases=20)).cov_params
            for seed in range(6)]
    assert any(g["cov2"] < g["cov3"] for g in gaps) and any(g["cov2"] > g["cov3"] for g in gaps)


def test_alpha_sets_the_interval_level(vandyke):
    narrow = readers.or_mrmc(vandyke, test="treatment", alpha=0.2).differences.iloc[0]
    wide = readers.or_mrmc(vandyke, test="treatment").differences.iloc[0]
    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]
    q = stats.t.ppf(0.9, narrow["df"])
    assert narrow["ci_high"] - narrow["estimate"] == pytest.approx(q * narrow["se"])


def test_result_is_frozen(vandyke):
    res = readers.or_mrmc(vandyke, test="treatment")
    with pytest.raises(AttributeError):
        res.p = 0.0
    assert res.statistic_name == "F"
    assert readers.or_mrmc(vandyke, test="treatment", readers="fixed").statistic_name == "X2"


# ---------------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------------

def _breakers():
    def drop_column(d):
        return d.drop(columns="rating")

    def three_valued_truth(d):
        d.loc[0, "truth"] = 2
        return d

    def truth_differs_within_case(d):
        d.loc[(d["case"] == 0) & (d["reader"] == "R1"), "truth"] = 0
        return d

    def missing_row(d):
        return d.drop(index=5)

    def duplicate_row(d):
        return pd.concat([d, d.iloc[[3]]], ignore_index=True)

    def one_test(d):
        return d[d["test"] == "T0"]

    def one_reader(d):
        return d[d["reader"] == "R0"]

    def nan_rating(d):
        d["rating"] = d["rating"].astype(float)
        d.loc[7, "rating"] = np.nan
        return d

    def one_diseased(d):
        keep = (d["truth"] == 0) | (d["case"] == 0)
        return d[keep]

    return [(drop_column, "no column for rating='rating'"), (three_valued_truth, "must hold 0/1"),
            (truth_differs_within_case, "has both truth values"), (missing_row, "fully crossed"),
            (duplicate_row, "repeat a test x reader x case"), (one_test, "at least 2 tests"),
            (one_reader, "at least 2 readers"), (nan_rating, "missing or non-numeric"),
            (one_diseased, "at least 2 of each")]


@pytest.mark.parametrize(("breaker", "message"), _breakers(), ids=[b.__name__ for b, _ in _breakers()])
def test_or_mrmc_rejects_unusable_data_with_a_named_reason(breaker, message):
    data = breaker(_random_study(0, n_tests=2, n_readers=2, n_cases=10))
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        readers.or_mrmc(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("kwargs", "message"), [({"cov": "bootstrap"}, "cov='bootstrap'"),
                                                 ({"readers": "mixed"}, "readers='mixed'"),
                                                 ({"alpha": 1.5}, "alpha=1.5")])
def test_or_mrmc_rejects_unknown_options(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        readers.or_mrmc(_random_study(0), **kwargs)


# ---------------------------------------------------------------------------------------------------
# Reader simulation
# ---------------------------------------------------------------------------------------------------

def _cases(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"case": [f"c{i:03d}" for i in range(n)], "truth": (np.arange(n) % 3 == 0).astype(int),
                         "visibility": rng.uniform(0.3, 1.0, n)})


def _model_scores(cases: pd.DataFrame, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(2.5 * (2 * cases["truth"].to_numpy() - 1) + rng.normal(0, 1.2, len(cases)))))


READERS = pd.DataFrame({"reader": ["r1", "r2", "r3", "r4", "r5", "r6"], "years": [1, 2, 4, 8, 15, 25],
                        "reliance": [0.7, 0.6, 0.5, 0.4, 0.3, 0.2]})


def test_simulation_is_deterministic_for_a_seed_and_changes_with_it():
    cases = _cases()
    scores = _model_scores(cases)
    first = readers.simulate_readers(cases, READERS, seed=3, model_scores=scores)
    pd.testing.assert_frame_equal(first, readers.simulate_readers(cases, READERS, seed=3, model_scores=scores))
    other = readers.simulate_readers(cases, READERS, seed=4, model_scores=scores)
    assert not first["rating"].equals(other["rating"])
    no_case_noise = readers.ReaderModel(case_sd=0.0)  # only the readers' own draws left to differ
    assert not readers.simulate_readers(cases, READERS, seed=3, model=no_case_noise)["rating"].equals(
        readers.simulate_readers(cases, READERS, seed=4, model=no_case_noise)["rating"])


def test_simulated_reader_does_not_depend_on_the_other_readers_or_on_the_model():
    cases = _cases()
    alone = readers.simulate_readers(cases, READERS.iloc[[2]], seed=5)
    together = readers.simulate_readers(cases, READERS, seed=5, model_scores=_model_scores(cases))
    mine = together[(together["reader"] == "r3") & (together["test"] == "unaided")].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, mine)


def test_simulated_table_is_ready_for_or_mrmc():
    cases = _cases()
    long = readers.simulate_readers(cases, READERS, seed=0, model_scores=_model_scores(cases), scale=5)
    assert list(long.columns) == ["test", "reader", "case", "truth", "rating"]
    assert len(long) == 2 * len(READERS) * len(cases)
    assert set(long["rating"]) <= set(range(1, 6))
    res = readers.or_mrmc(long)
    assert res.differences.index.tolist() == ["aided - unaided"]
    assert 0.5 < res.test_aucs.loc["unaided", "estimate"] < 1


def test_experienced_readers_have_higher_auc():
    cases = _cases(n=3000, seed=2)
    panel = pd.DataFrame({"reader": ["novice", "resident", "senior"], "years": [0, 4, 30]})
    long = readers.simulate_readers(cases, panel, seed=1)
    auc = long.groupby("reader").apply(lambda g: roc_auc_score(g["truth"], g["rating"]), include_groups=False)
    assert auc["resident"] - auc["novice"] > 0.05 and auc["senior"] - auc["resident"] > 0.05


def test_aided_reads_move_toward_the_model():
    cases = _cases(n=600)
    scores = _model_scores(cases)
    long = readers.simulate_readers(cases, READERS, seed=2, model_scores=scores)
    long["model"] = np.tile(scores, 2 * len(READERS))
    rho = long.groupby(["test", "reader"]).apply(lambda g: stats.spearmanr(g["rating"], g["model"])[0],
                                                 include_groups=False).unstack("test")
    assert (rho["aided"] > rho["unaided"]).all()


def test_full_reliance_makes_aided_ratings_follow_the_model():
    cases = _cases()
    scores = _model_scores(cases)
    panel = pd.DataFrame({"reader": ["a", "b"], "years": [3, 20], "reliance": [1.0, 1.0]})
    long = readers.simulate_readers(cases, panel, seed=0, model_scores=scores)
    order = np.argsort(scores)
    for _, g in long[long["test"] == "aided"].groupby("reader"):
        assert np.all(np.diff(g["rating"].to_numpy()[order]) >= 0)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c, r: (c.drop(columns="visibility"), r), "no column(s) ['visibility']"),
    (lambda c, r: (c.assign(visibility=c["visibility"] + 1), r), "cases.visibility must be finite"),
    (lambda c, r: (c.assign(truth=2), r), "cases.truth must hold 0/1"),
    (lambda c, r: (c, r.assign(years=-1)), "readers.years must be finite and >= 0"),
    (lambda c, r: (c, r.assign(reliance=1.5)), "readers.reliance must be finite"),
    (lambda c, r: (pd.concat([c, c.iloc[[0]]]), r), "cases repeats case"),
], ids=["no_visibility", "visibility_above_1", "truth_not_binary", "negative_years", "reliance_above_1",
        "duplicate_case"])
def test_simulate_readers_rejects_bad_inputs(change, message):
    cases, panel = change(_cases(20), READERS.copy())
    with pytest.raises(ValueError, match=re.escape(message)):
        readers.simulate_readers(cases, panel)


def test_reader_model_rejects_negative_noise():
    with pytest.raises(ValueError, match="ReaderModel.case_sd"):
        readers.ReaderModel(case_sd=-1.0)


# ---------------------------------------------------------------------------------------------------
# Per-reader summaries
# ---------------------------------------------------------------------------------------------------

def _wilson_closed_form(k: int, n: int, alpha: float = 0.05):
    z = stats.norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_reader_accuracy_counts_and_wilson_intervals(vandyke):
    long = vandyke.rename(columns={"treatment": "test"})
    table = readers.reader_accuracy(long).set_index(["test", "reader"])
    assert (table["threshold"] == 3).all()
    sub = long[(long["test"] == 2) & (long["reader"] == 5)]
    positive = sub["rating"] >= 3
    tp = int((positive & (sub["truth"] == 1)).sum())
    row = table.loc[(2, 5)]
    assert row["sensitivity"] == pytest.approx(tp / 45)
    assert (row["sensitivity_ci_low"], row["sensitivity_ci_high"]) == pytest.approx(_wilson_closed_form(tp, 45))
    correct = int((positive == (sub["truth"] == 1)).sum())
    assert (row["accuracy_ci_low"], row["accuracy_ci_high"]) == pytest.approx(_wilson_closed_form(correct, 114))


def test_reader_accuracy_default_threshold_is_the_scale_midpoint_rounded_up():
    four_levels = _random_study(0, n_cases=20, levels=4)
    assert set(four_levels["rating"]) == {1, 2, 3, 4}
    assert (readers.reader_accuracy(four_levels)["threshold"] == 3).all()


def test_reader_accuracy_adds_the_model_row():
    long = _random_study(0, n_cases=20)
    truth = long.groupby("case")["truth"].first()
    model = pd.Series(np.where(truth == 1, 0.9, 0.2), index=truth.index)
    model.iloc[0] = 0.1  # one diseased case missed
    table = readers.reader_accuracy(long, model=model)
    row = table[table["reader"] == "model"].iloc[0]
    assert row["sensitivity"] == pytest.approx((truth.sum() - 1) / truth.sum()) and row["specificity"] == 1.0
    with pytest.raises(ValueError, match="model has no probability"):
        readers.reader_accuracy(long, model=model.iloc[1:])


def test_mcnemar_vs_model_counts_discordant_pairs_and_matches_binomial():
    reader_ok = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0], bool)
    model_ok = np.array([1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], bool)
    out = readers.mcnemar_vs_model(reader_ok, model_ok)
    assert (out["reader_only"], out["model_only"], out["both"], out["neither"]) == (1, 4, 7, 0)
    assert out["p"] == pytest.approx(min(1.0, 2 * stats.binom.cdf(1, 5, 0.5)))
    with pytest.raises(ValueError, match="reader_correct has 12 cases but model_correct 3"):
        readers.mcnemar_vs_model(reader_ok, model_ok[:3])


def test_paired_t_test_matches_formula_and_pairs_series_by_reader():
    a = pd.Series([0.90, 0.85, 0.93, 0.88], index=["r1", "r2", "r3", "r4"])
    b = pd.Series([0.86, 0.84, 0.90, 0.80], index=["r4", "r2", "r3", "r1"])[::-1]
    d = a.to_numpy() - b.reindex(a.index).to_numpy()
    out = readers.paired_t_test(a, b)
    assert out["mean_diff"] == pytest.approx(d.mean())
    assert out["t"] == pytest.approx(d.mean() / (d.std(ddof=1) / 2))
    assert out["p"] == pytest.approx(2 * stats.t.sf(abs(out["t"]), 3)) and out["df"] == 3
    with pytest.raises(ValueError, match="at least 2 readers"):
        readers.paired_t_test([0.9], [0.8])
