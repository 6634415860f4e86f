"""Checks of reported statistics, each against brute force (every data set of a small size) or a worked example,
with examples that must pass and examples that must fail; and the seed papers' transcribed numbers against
the papers' own text."""

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ovfkit import consistency as c

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
PAPER_FILES = {"zhang2024": "zhang2024_xray_dlr_astlof.txt", "liu2025": "liu2025_ct_dlr_astlof.jats.xml",
               "zhang2023": "zhang2023_ct_acute_vs_chronic_vcf.txt", "guo2026": "guo2026_xray_fresh_vs_old_cnn_zoo.txt",
               "li": "li_xray_fresh_vcf_cnn_abstract.txt"}


@pytest.mark.parametrize("text, value, half", [
    ("0.946", 0.946, 0.0005), ("87.5%", 0.875, 0.0005), ("12", 12.0, 0.5), ("-0.40", -0.4, 0.005), (".5", 0.5, 0.05),
])
def test_printed_numbers_carry_their_rounding(text, value, half):
    p = c.printed(text)
    assert (p.value, p.half) == pytest.approx((value, half))


@pytest.mark.parametrize("text", ["", "0.9a", "1,2", "n/a", "."])
def test_printed_refuses_what_is_not_a_number(text):
    with pytest.raises(ValueError, match="not a printed number"):
        c.printed(text)


def status(name, **inputs):
    return c.check(name, inputs).status


@pytest.mark.parametrize("name, inputs, expected", [
    ("p_range", {"p": "2.34"}, c.INCONSISTENT),
    ("p_range", {"p": "0.668"}, c.CONSISTENT),
    ("p_range", {"p": "<0.001"}, c.CONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "-0.01", "high": "0.11", "p": "<0.05"}, c.INCONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "0.01", "high": "0.09", "p": "<0.05"}, c.CONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "0.01", "high": "0.09", "p": ">0.05"}, c.INCONSISTENT),
    ("ci_contains", {"estimate": "0.946", "low": "0.950", "high": "0.990"}, c.INCONSISTENT),
    ("ci_contains", {"estimate": "0.946", "low": "0.990", "high": "0.910"}, c.INCONSISTENT),
    ("ci_contains", {"estimate": "0.946", "low": "0.910", "high": "0.982"}, c.CONSISTENT),
    ("wald_ci_symmetric", {"estimate": "0.800", "low": "0.700", "high": "0.900"}, c.CONSISTENT),
    ("wald_ci_symmetric", {"estimate": "0.800", "low": "0.700", "high": "0.850"}, c.INCONSISTENT),
    ("wald_ci_symmetric", {"estimate": "0.950", "low": "0.880", "high": "1.000", "upper": "1"}, c.UNCHECKABLE),
    ("ci_vs_p", {"estimate": "0.05", "low": "0.01", "high": "0.09", "p": "0.20"}, c.INCONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "-0.01", "high": "0.11", "p": "0.01"}, c.INCONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "0.01", "high": "0.09", "p": "0.01"}, c.CONSISTENT),
    ("ci_vs_p", {"estimate": "2.10", "low": "1.20", "high": "3.70", "p": "0.010", "null": "1"}, c.CONSISTENT),
    ("ci_vs_p", {"estimate": "2.10", "low": "0.90", "high": "4.70", "p": "0.010", "null": "1"}, c.INCONSISTENT),
    ("ci_vs_p", {"estimate": "0.05", "low": "0.00", "high": "0.10", "p": "0.04"}, c.UNCHECKABLE),
    ("counts_sum", {"parts": "120+96+44", "total": "260"}, c.CONSISTENT),
    ("counts_sum", {"parts": "120+96+44", "total": "261"}, c.INCONSISTENT),
    ("percent", {"count": "264", "n": "942", "percent": "28.0%"}, c.CONSISTENT),
    ("percent", {"count": "264", "n": "942", "percent": "28.2%"}, c.INCONSISTENT),
    ("proportion_of_n", {"value": "0.875", "n": "40"}, c.CONSISTENT),
    ("proportion_of_n", {"value": "0.880", "n": "40"}, c.INCONSISTENT),
    ("grim", {"mean": "3.45", "n": "17"}, c.INCONSISTENT),  # no s/17 rounds to 3.45 (3.41 and 3.47 do)
    ("grim", {"mean": "3.47", "n": "17"}, c.CONSISTENT),
    ("grim", {"mean": "69.34", "n": "942"}, c.UNCHECKABLE),
    ("sd_bounds", {"mean": "0.900", "sd": "0.215", "n": "5", "lower": "0", "upper": "1"}, c.CONSISTENT),
    ("sd_bounds", {"mean": "0.900", "sd": "0.400", "n": "5", "lower": "0", "upper": "1"}, c.INCONSISTENT),
    ("accuracy", {"sens": "0.900", "spec": "0.800", "accuracy": "0.850", "n_pos": "50", "n_neg": "50"}, c.CONSISTENT),
    ("accuracy", {"sens": "0.900", "spec": "0.800", "accuracy": "0.870", "n_pos": "50", "n_neg": "50"}, c.INCONSISTENT),
    ("auc_bounds", {"auc": "0.70", "sens": "0.90", "spec": "0.90"}, c.INCONSISTENT),
    ("auc_bounds", {"auc": "0.85", "sens": "0.90", "spec": "0.90"}, c.CONSISTENT),
    ("f1", {"f1": "70.65%", "precision": "80.10%", "recall": "85.20%"}, c.INCONSISTENT),
    ("f1", {"f1": "82.57%", "precision": "80.10%", "recall": "85.20%"}, c.CONSISTENT),
    ("f1_from_rates", {"f1": "0.857", "sens": "0.900", "spec": "0.800", "n_pos": "50", "n_neg": "50"}, c.CONSISTENT),
    ("f1_from_rates", {"f1": "0.880", "sens": "0.900", "spec": "0.800", "n_pos": "50", "n_neg": "50"}, c.INCONSISTENT),
    ("ppv", {"ppv": "0.818", "sens": "0.900", "spec": "0.800", "n_pos": "50", "n_neg": "50"}, c.CONSISTENT),
    ("ppv", {"ppv": "0.900", "sens": "0.900", "spec": "0.800", "n_pos": "50", "n_neg": "50"}, c.INCONSISTENT),
    ("paired_auc_p", {"auc_a": "0.915", "low_a": "0.870", "high_a": "0.960", "auc_b": "0.946", "low_b": "0.910",
                      "high_b": "0.980", "p": "0.668"}, c.INCONSISTENT),
    ("paired_auc_p", {"auc_a": "0.915", "low_a": "0.870", "high_a": "0.960", "auc_b": "0.946", "low_b": "0.910",
                      "high_b": "0.980", "p": "0.080"}, c.CONSISTENT),
    # bound 0.132 (sqrt of the summed variances); 0.28 if the two SEs were added instead
    ("paired_auc_p", {"auc_a": "0.800", "low_a": "0.700", "high_a": "0.900", "auc_b": "0.900", "low_b": "0.820",
                      "high_b": "0.980", "p": "0.200"}, c.INCONSISTENT),
], ids=lambda v: v if isinstance(v, str) else None)
def test_check_outcomes_on_worked_examples(name, inputs, expected):
    assert status(name, **inputs) == expected


def test_grim_and_grimmer_equal_brute_force_over_every_small_sample():
    """Every sample of n whole numbers in 1..7 (n = 4, 5). GRIM: a mean printed to 2 decimals passes exactly
    when some sample has it. GRIMMER: for every mean in [3.7, 4.3] and every SD in [0, 1.5] printed to 2
    decimals, the pair passes exactly when some sample gives it (a sample with such a mean and SD has every
    value within SD (n - 1) / sqrt(n) < 2.7 of the mean, so inside 1..7: the enumeration is complete)."""
    for n in (4, 5):
        seen = set()
        for xs in itertools.combinations_with_replacement(range(1, 8), n):
            x = np.array(xs, dtype=float)
            seen.add((f"{x.mean():.2f}", f"{x.std(ddof=1):.2f}"))
        means = {m for m, _ in seen}
        for m in (f"{k / 100:.2f}" for k in range(100, 701)):
            assert (status("grim", mean=m, n=str(n)) == c.CONSISTENT) == (m in means), (n, m)
        for m in (f"{k / 100:.2f}" for k in range(370, 431)):
            for s in (f"{k / 100:.2f}" for k in range(0, 151)):
                assert (status("grimmer", mean=m, sd=s, n=str(n)) == c.CONSISTENT) == ((m, s) in seen), (n, m, s)


def test_grimmer_rejects_a_sum_of_squares_of_the_wrong_parity():
    """4 whole numbers with mean 4.00 sum to 16; SD 5.00 needs a sum of squares of 3 * 25 + 4 * 16 = 139, odd,
    but a sum of squares has the parity of the sum (x^2 and x share it). SD 5.03 gives 139.9 to 140.2: 140."""
    assert status("grimmer", mean="4.00", sd="5.00", n="4") == c.INCONSISTENT
    assert status("grimmer", mean="4.00", sd="5.03", n="4") == c.CONSISTENT


def test_auc_bounds_hold_for_every_roc_curve_through_the_point_and_are_reached():
    """Random scores: the AUC of every data set lies within the bounds its own operating point gives; the two
    extreme constructions reach them."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        y = np.r_[np.ones(20), np.zeros(30)]
        s = rng.normal(size=50) + rng.uniform(0, 2) * y
        t = rng.choice(s)
        sens, spec = (s[y == 1] >= t).mean(), (s[y == 0] < t).mean()
        auc = roc_auc_score(y, s)
        assert sens * spec - 1e-12 <= auc <= 1 - (1 - sens) * (1 - spec) + 1e-12
    # lowest: positives above the threshold sit just above it, negatives below it just below it
    y = np.r_[np.ones(10), np.zeros(10)]
    low = np.r_[np.full(8, 0.6), np.full(2, 0.0), np.full(7, 0.4), np.full(3, 1.0)]
    assert roc_auc_score(y, low) == pytest.approx(0.8 * 0.7)
    high = np.r_[np.full(8, 1.0), np.full(2, 0.45), np.full(7, 0.0), np.full(3, 0.55)]
    assert roc_auc_score(y, high) == pytest.approx(1 - 0.2 * 0.3)


def test_accuracy_ppv_and_f1_equal_a_confusion_matrix():
    """Every confusion matrix of 12 positives and 15 negatives: the printed (3-decimal) accuracy, PPV and F1 of
    the matrix pass their checks."""
    P, N = 12, 15
    for tp, tn in itertools.product(range(1, P + 1), range(0, N)):
        fp = N - tn
        sens, spec, acc = tp / P, tn / N, (tp + tn) / (P + N)
        prec = tp / (tp + fp)
        f1 = 2 * prec * sens / (prec + sens)
        txt = {k: f"{v:.3f}" for k, v in dict(sens=sens, spec=spec, acc=acc, prec=prec, f1=f1).items()}
        assert status("accuracy", sens=txt["sens"], spec=txt["spec"], accuracy=txt["acc"], n_pos=str(P),
                      n_neg=str(N)) == c.CONSISTENT
        assert status("ppv", ppv=txt["prec"], sens=txt["sens"], spec=txt["spec"], n_pos=str(P),
                      n_neg=str(N)) == c.CONSISTENT
        assert status("f1", f1=txt["f1"], precision=txt["prec"], recall=txt["sens"]) == c.CONSISTENT
        assert status("f1_from_rates", f1=txt["f1"], sens=txt["sens"], spec=txt["spec"], n_pos=str(P),
                      n_neg=str(N)) == c.CONSISTENT


def test_paired_auc_bound_holds_for_positively_correlated_aucs():
    """Two correlated scores on the same cases: DeLong's paired p never exceeds the bound from the two
    Wald intervals (printed to 3 decimals)."""
    from ovfkit import stats

    rng = np.random.default_rng(1)
    for _ in range(200):
        y = (rng.random(120) < 0.4).astype(int)
        shared = rng.normal(size=120)
        a = shared + rng.normal(size=120) + 1.2 * y
        b = shared + rng.normal(size=120) + rng.uniform(0.5, 1.5) * y
        t = stats.delong_test(y, a, b)
        ca, cb = stats.auc_ci(y, a), stats.auc_ci(y, b)
        inputs = {"auc_a": f"{ca[0]:.3f}", "low_a": f"{ca[1]:.3f}", "high_a": f"{ca[2]:.3f}", "auc_b": f"{cb[0]:.3f}",
                  "low_b": f"{cb[1]:.3f}", "high_b": f"{cb[2]:.3f}", "p": f"{t.p:.3f}"}
        if ca[2] < 1 and cb[2] < 1:
            assert status("paired_auc_p", **inputs) == c.CONSISTENT, inputs


@pytest.mark.parametrize("name, inputs, message", [
    ("nonsense", {}, "unknown check"),
    ("grim", {"mean": "3.45"}, "missing n"),
    ("grim", {"mean": "3.45", "n": "17", "sd": "1"}, "unknown sd"),
    ("grim", {"mean": "3.45", "n": "17.5"}, "whole number"),
    ("grim", {"mean": "about 3", "n": "17"}, "not a printed number"),
], ids=["unknown-check", "missing-input", "unknown-input", "fractional-count", "not-a-number"])
def test_check_errors_name_the_row_and_the_remedy(name, inputs, message):
    with pytest.raises(ValueError, match=message) as err:
        c.check(name, inputs, where="papers.csv, row 7")
    assert str(err.value).startswith("papers.csv, row 7")


def test_paper_checks_cover_every_seed_paper_with_valid_rows():
    table = c.paper_checks()
    assert set(table["paper"]) == set(PAPER_FILES)
    assert set(table["outcome"]) <= {c.CONSISTENT, c.INCONSISTENT, c.UNCHECKABLE, c.CONDITIONAL}
    assert (table.loc[table["outcome"] == c.CONDITIONAL, "premise"].str.len() > 0).all()
    assert (table["source"].str.len() > 0).all() and (table["what"].str.len() > 0).all()


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the papers (../shared/papers) are not beside this checkout")
@pytest.mark.parametrize("paper", sorted(PAPER_FILES))
def test_every_quote_is_in_the_paper(paper):
    text = c.paper_text(PAPERS / PAPER_FILES[paper])
    table = c.paper_checks()
    rows = table[table["paper"] == paper]
    missing = [q for q in rows["quote"] if c.normalize(q) not in text]
    assert not missing, f"{len(missing)} quotes of {paper} are not in its text, e.g. {missing[:2]}"


def test_every_number_of_a_row_is_in_its_quote_or_named_in_its_source():
    """A transcription check: each printed input (but counts and bounds) appears in the quote, or the source
    says where else it comes from ("and", "with", ";" join several places)."""
    table = c.paper_checks()
    for row in table.itertuples():
        inputs = c.parse_inputs(row.inputs)
        for k, v in inputs.items():
            if k in ("n", "n_a", "n_b", "n_pos", "n_neg", "lower", "upper", "parts", "values", "total", "null", "count"):
                continue
            number = v.lstrip("<>").strip().rstrip("%")
            assert number in row.quote or any(w in row.source for w in (" and ", " with ", ";", "+")), \
                (row.paper, row.source, k, v)


def test_a_premise_turns_an_inconsistency_into_a_conditional_one():
    table = pd.DataFrame({"check": ["grim", "grim", "grim"], "inputs": ["mean=3.45; n=17"] * 2 + ["mean=3.47; n=17"],
                          "premise": ["", "ages are whole years", "ages are whole years"]})
    out = c.check_table(table)
    assert out["outcome"].tolist() == [c.INCONSISTENT, c.CONDITIONAL, c.CONSISTENT]
    assert out["detail"].iloc[1].endswith("(if ages are whole years)")


@pytest.mark.parametrize("inputs, expected", [
    ({"estimate": "0.95", "low": "0.951", "high": "0.990"}, c.CONSISTENT),  # 0.9504 rounds to 0.95
    ({"estimate": "0.95", "low": "0.956", "high": "0.990"}, c.INCONSISTENT),
])
def test_ci_contains_allows_for_rounding(inputs, expected):
    assert status("ci_contains", **inputs) == expected


def test_values_mean_sd_gives_each_value_its_own_rounding():
    """Values printed to different precisions: "55" moves the SD by up to 0.5 * sqrt(5/4), "45.00" by 0.005."""
    x = ["55", "45.00", "50.00", "52.00", "48.00"]
    v = np.array(x, dtype=float)
    ok = {"values": "+".join(x), "mean": f"{v.mean():.2f}", "sd": f"{v.std(ddof=1):.2f}"}
    assert status("values_mean_sd", **ok) == c.CONSISTENT
    assert status("values_mean_sd", **{**ok, "sd": f"{v.std(ddof=1) + 0.7:.2f}"}) == c.INCONSISTENT


def test_paired_auc_p_cannot_read_a_clipped_interval():
    assert status("paired_auc_p", auc_a="0.990", low_a="0.970", high_a="1.000", auc_b="0.900", low_b="0.850",
                  high_b="0.950", p="0.500") == c.UNCHECKABLE


def test_paper_checks_refuse_a_file_without_the_columns(tmp_path):
    pd.DataFrame({"paper": ["x"], "check": ["p_range"], "inputs": ["p=0.5"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match="x.csv: columns"):
        c.paper_checks(tmp_path)


def test_math_of_sd_bounds_is_the_two_point_extreme():
    """n values at the two bounds in the proportion that gives the mean reach the bound."""
    n, lower, upper, mean = 5, 0.0, 1.0, 0.6
    x = np.r_[np.ones(3), np.zeros(2)]
    assert x.std(ddof=1) == pytest.approx(math.sqrt(n / (n - 1) * (upper - mean) * (mean - lower)))
    assert status("sd_bounds", mean="0.600", sd=f"{x.std(ddof=1):.3f}", n="5", lower="0", upper="1") == c.CONSISTENT


def test_f1_of_averages_bound_holds_for_any_folds_and_catches_a_mean_above_it():
    """Jensen: over random folds, the mean per-fold F1 never exceeds the F1 of the mean precision and recall."""
    rng = np.random.default_rng(2)
    for _ in range(500):
        prec, rec = rng.uniform(0.3, 1.0, 5), rng.uniform(0.3, 1.0, 5)
        f1s = 2 * prec * rec / (prec + rec)
        assert status("f1_of_averages", f1=f"{f1s.mean():.4f}", precision=f"{prec.mean():.4f}",
                      recall=f"{rec.mean():.4f}") == c.CONSISTENT
    assert status("f1_of_averages", f1="70.65", precision="70.02", recall="68.80") == c.INCONSISTENT


def test_two_sample_p_brackets_scipys_t_tests_on_the_raw_data():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(3)
    for _ in range(50):
        a, b = rng.normal(70, 10, rng.integers(20, 200)), rng.normal(rng.uniform(65, 75), 12, rng.integers(20, 200))
        p_student, p_welch = ttest_ind(a, b).pvalue, ttest_ind(a, b, equal_var=False).pvalue
        inputs = dict(mean_a=f"{a.mean():.1f}", sd_a=f"{a.std(ddof=1):.1f}", n_a=str(len(a)), mean_b=f"{b.mean():.1f}",
                      sd_b=f"{b.std(ddof=1):.1f}", n_b=str(len(b)))
        for p in (p_student, p_welch):
            assert status("two_sample_p", **inputs, p=f"{p:.3f}") == c.CONSISTENT
    # zhang2023's ages: 59.3 +- 18.1 (253) vs 71.1 +- 11.9 (112) printed with P = 0.225
    assert status("two_sample_p", mean_a="59.3", sd_a="18.1", n_a="253", mean_b="71.1", sd_b="11.9", n_b="112",
                  p="0.225") == c.INCONSISTENT


@pytest.mark.parametrize("table, p, expected", [
    ((164, 89, 78, 34), "0.369", c.CONSISTENT),   # Pearson chi-square, scipy: 0.3692
    ((164, 89, 78, 34), "0.436", c.CONSISTENT),   # with Yates' correction: 0.4364
    ((164, 89, 78, 34), "0.402", c.CONSISTENT),   # Fisher's exact test: 0.4024
    ((164, 89, 78, 34), "0.812", c.INCONSISTENT),
    ((3, 1, 1, 3), "0.486", c.CONSISTENT),        # Fisher's tea-tasting table, two-sided exact p 34/70
])
def test_two_by_two_p_matches_any_of_the_usual_tests(table, p, expected):
    a1, a2, b1, b2 = map(str, table)
    assert status("two_by_two_p", a1=a1, a2=a2, b1=b1, b2=b2, p=p) == expected


def test_pooled_mean_and_values_mean_sd_against_the_raw_numbers():
    rng = np.random.default_rng(4)
    a, b = rng.normal(60, 15, 253).round(), rng.normal(71, 12, 112).round()
    both = np.r_[a, b]
    assert status("pooled_mean", mean_a=f"{a.mean():.1f}", n_a="253", mean_b=f"{b.mean():.1f}", n_b="112",
                  mean=f"{both.mean():.1f}") == c.CONSISTENT
    assert status("pooled_mean", mean_a=f"{a.mean():.1f}", n_a="253", mean_b=f"{b.mean():.1f}", n_b="112",
                  mean=f"{both.mean() - 1:.1f}") == c.INCONSISTENT
    folds = ["0.812", "0.774", "0.791", "0.835", "0.768"]
    x = np.array(folds, dtype=float)
    values = "+".join(folds)
    assert status("values_mean_sd", values=values, mean=f"{x.mean():.3f}", sd=f"{x.std(ddof=1):.3f}") == c.CONSISTENT
    pop = c.check("values_mean_sd", {"values": values, "mean": f"{x.mean():.3f}", "sd": f"{x.std(ddof=0):.3f}"})
    assert pop.status == c.INCONSISTENT and "population SD" in pop.detail


def test_paired_t_p_contains_scipys_p_of_the_unrounded_pairs():
    """Pairs printed to 2 decimals: scipy's paired t p of the unrounded values, printed to 3 significant digits,
    always passes; a p ten times larger does not."""
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(3)
    for _ in range(30):
        a = rng.normal(60, 5, 5)
        b = a - rng.normal(8, 4, 5)
        p = ttest_rel(a, b).pvalue
        inputs = {"values_a": "+".join(f"{v:.2f}" for v in a), "values_b": "+".join(f"{v:.2f}" for v in b)}
        assert status("paired_t_p", **inputs, p=f"{p:.3g}") == c.CONSISTENT
        if p < 0.05:
            assert status("paired_t_p", **inputs, p=f"{min(10 * p, 0.99):.3g}") == c.INCONSISTENT


def test_paired_t_p_refuses_lists_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        c.check("paired_t_p", {"values_a": "1+2+3", "values_b": "1+2", "p": "0.5"})
