"""Fresh vs old (guo2026, li): the papers' tables as transcribed, and this study's metrics against references."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from ovfkit import fresh_old


def test_guo2026_table3_folds_average_to_its_table2_resnet101_row():
    """The transcription of Tables 2 and 3 agrees with itself: Table 3's folds average to Table 2's ResNet-101."""
    t = fresh_old.paper_tables()
    folds = t[t["table"] == 3].groupby("metric")["mean"]
    row = t[(t["table"] == 2) & (t["architecture"] == "resnet101")].set_index("metric")
    np.testing.assert_allclose(folds.mean().loc[row.index], row["mean"], atol=0.011)
    np.testing.assert_allclose(folds.std(ddof=1).loc[row.index], row["sd"], atol=0.011)


def test_guo2026_table3_f1_is_the_harmonic_mean_of_its_precision_and_recall():
    t = fresh_old.paper_tables()
    for _, d in t[t["table"] == 3].groupby("fold"):
        v = d.set_index("metric")["mean"]
        for c in ("fresh", "old"):
            pr, rc = v[f"precision_{c}"], v[f"recall_{c}"]
            assert abs(2 * pr * rc / (pr + rc) - v[f"f1_{c}"]) < 0.02


@pytest.fixture
def predictions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, 200), 0, 1)
    return y, p


@pytest.mark.parametrize("metric, reference", [
    ("accuracy", lambda y, pred, p: 100 * skm.accuracy_score(y, pred)),
    ("precision_fresh", lambda y, pred, p: 100 * skm.precision_score(y, pred, pos_label=1)),
    ("precision_old", lambda y, pred, p: 100 * skm.precision_score(y, pred, pos_label=0)),
    ("recall_fresh", lambda y, pred, p: 100 * skm.recall_score(y, pred, pos_label=1)),
    ("recall_old", lambda y, pred, p: 100 * skm.recall_score(y, pred, pos_label=0)),
    ("f1_fresh", lambda y, pred, p: 100 * skm.f1_score(y, pred, pos_label=1)),
    ("f1_old", lambda y, pred, p: 100 * skm.f1_score(y, pred, pos_label=0)),
    ("specificity", lambda y, pred, p: 100 * skm.recall_score(y, pred, pos_label=0)),
    ("auc", lambda y, pred, p: skm.roc_auc_score(y, p)),
])
def test_point_metrics_match_scikit_learn(predictions, metric, reference):
    y, p = predictions
    assert fresh_old.point_metrics(y, p)[metric] == pytest.approx(reference(y, (p >= 0.5).astype(int), p))


@pytest.fixture
def oof():
    rng = np.random.default_rng(5)
    n = 120
    y = rng.integers(0, 2, n)
    rows = []
    for j, arch in enumerate(["alexnet", "resnet50", "resnet101"]):
        p = 1 / (1 + np.exp(-(1.0 + 0.6 * j) * (y - 0.5) * 2 - rng.normal(0, 1, n)))
        rows.append(pd.DataFrame({"architecture": arch, "vertebra_id": [f"V{i}" for i in range(n)],
                                  "patient_id": [f"P{i // 2}" for i in range(n)], "fold": np.arange(n) % 4 + 1,
                                  "truth": y, "p": p}))
    return pd.concat(rows, ignore_index=True)


def test_rank_table_counts_the_folds_each_architecture_wins(oof):
    table = fresh_old.rank_table(oof, n_boot=200, seed=0).set_index("architecture")
    folds = fresh_old.fold_metrics(oof)
    wins = folds.loc[folds.groupby("fold")["auc"].idxmax(), "architecture"].value_counts()
    for arch, display in (("alexnet", "AlexNet"), ("resnet50", "ResNet-50"), ("resnet101", "ResNet-101")):
        assert table.loc[display, "best in folds"] == wins.get(arch, 0)
    assert table["best in resamples (%)"].sum() == pytest.approx(100)
    assert table["mean rank"].between(1, 3).all()
    assert table["mean rank"].sum() == pytest.approx(6)  # 1 + 2 + 3 in every resample
    # the strongest simulated network ranks first most often
    assert table["best in resamples (%)"].idxmax() == "ResNet-101"


def test_mean_sd_over_folds_is_pandas_mean_and_sample_sd(oof):
    folds = fresh_old.fold_metrics(oof)
    got = fresh_old.mean_sd(folds).set_index(["architecture", "metric"])
    ref = folds[folds["architecture"] == "resnet50"]["auc"]
    assert got.loc[("resnet50", "auc"), "mean"] == pytest.approx(ref.mean())
    assert got.loc[("resnet50", "auc"), "sd"] == pytest.approx(ref.std(ddof=1))


def test_pooled_metrics_cis_bracket_the_estimates(oof):
    table = fresh_old.pooled_metrics(oof, n_boot=200, seed=1)
    assert ((table["ci_low"] <= table["estimate"]) & (table["estimate"] <= table["ci_high"])).all()


def test_table2_beside_paper_has_a_paper_row_for_guo2026s_networks_only(oof):
    t = fresh_old.table2_beside_paper(fresh_old.fold_metrics(oof))
    assert t.groupby("architecture")["source"].apply(list).to_dict() == {
        "AlexNet": ["guo2026", "this study"], "ResNet-50": ["guo2026", "this study"],
        "ResNet-101": ["guo2026", "this study"]}
    assert t.loc[(t["architecture"] == "ResNet-101") & (t["source"] == "guo2026"), "AUC"].item() == "0.796 ± 0.028"


def test_visibility_follows_the_drawn_signs_and_the_diaphragm():
    truth = pd.DataFrame({"acuity": ["acute", "acute", "chronic", "chronic", "acute"],
                          "level": ["L3", "L3", "L3", "T12", "T12"],
                          "condensation_band": [True, False, False, False, False],
                          "endplate_sclerosis": [False, False, True, False, False],
                          "osteophyte": [False, True, False, False, False]}, index=list("abcde"))
    v = fresh_old.visibility(truth)
    assert v.to_dict() == pytest.approx({"a": 0.9, "b": 0.0, "c": 0.9, "d": 0.15 * 0.7, "e": 0.15 * 0.7})


def test_reliance_falls_with_experience_within_its_bounds():
    r = fresh_old.reliance([0, 3, 10, 27, 60])
    assert np.all(np.diff(r) <= 0) and r[0] == 0.6 and r[-1] == 0.15


def test_model_vs_readers_counts_the_cases_only_one_got_right():
    long = pd.DataFrame({"test": "unaided", "reader": "r1", "case": list("abcdef"), "truth": [1, 1, 1, 0, 0, 0],
                         "rating": [5, 4, 1, 1, 5, 2]})
    model = pd.Series([0.9, 0.2, 0.8, 0.1, 0.1, 0.7], index=list("abcdef"))
    row = fresh_old.model_vs_readers(long, model).iloc[0]
    # reader right on a, b, d, f; model right on a, c, d, e
    assert (row["only reader right"], row["only model right"]) == (2, 2)
    assert row["reader accuracy (%)"] == pytest.approx(400 / 6) and row["model accuracy (%)"] == pytest.approx(400 / 6)
    assert row["p (McNemar, exact)"] == pytest.approx(1.0)


def test_table1_beside_paper_counts_levels_and_totals_the_papers_720():
    m = pd.DataFrame({"level": ["T12", "T12", "L1", "T5"], "acuity": ["acute", "chronic", "acute", "chronic"]})
    t = fresh_old.table1_beside_paper(m).set_index("level")
    assert t.loc["T12", ["this study fresh", "this study old"]].tolist() == [1, 1]
    assert t.loc["total", "guo2026 fresh"] + t.loc["total", "guo2026 old"] == 720
    assert t.loc["total", "guo2026 fresh"] == 364 and t.loc["L1", "band (diaphragm)"] == "at"


def test_li_beside_puts_lis_two_sets_next_to_the_pooled_estimate():
    pooled = pd.DataFrame({"architecture": ["efficientnet_b0"] * 2, "metric": ["accuracy", "auc"],
                           "estimate": [80.0, 0.85], "ci_low": [77.0, 0.8], "ci_high": [83.0, np.nan]})
    t = fresh_old.li_beside(pooled).set_index(["architecture", "metric"])
    row = t.loc[("EfficientNet-B0", "AUC")]
    assert (row["li, validation set"], row["this study (pooled out-of-fold, 95% CI)"]) == (0.861, "0.850")
    assert t.loc[("EfficientNet-B0", "Accuracy (%)"), "li, control set"] == 78.1
    assert pd.isna(t.loc[("MnasNet 1.0", "AUC"), "this study (pooled out-of-fold, 95% CI)"])  # not in this run


def test_findings_name_the_spread_of_the_best_network_and_the_significant_pairs():
    from ovfkit import findings

    pooled = pd.DataFrame({"architecture": ["A", "B"], "estimate": [0.7, 0.8], "ci_low": [0.6, 0.7],
                           "ci_high": [0.8, 0.9]})
    delong = pd.DataFrame({"a": ["A"], "b": ["B"], "difference": [-0.1], "p (Holm)": [0.01]})
    ranks = pd.DataFrame({"architecture": ["A", "B"], "best in folds": [2, 3], "folds": [5, 5],
                          "best in resamples (%)": [20.0, 80.0], "rank 95% interval": ["1 to 2", "1 to 2"]})
    cal = pd.DataFrame({"architecture": ["A", "B"], "slope": [0.3, 0.9], "slope_high": [0.5, 1.2]})
    text = " ".join(findings.cnn_comparison_findings(pooled, delong, ranks, calibration=cal))
    assert "from A's 0.700 (95% CI 0.600-0.800) to B's 0.800" in text
    assert "1 of 1 pairs differ after Holm's correction (A vs B (-0.100))" in text
    assert "2 different architectures are best in at least one of the 5 folds" in text and "B is best in 80%" in text
    assert "ResNet-101" not in text  # not among these architectures
    assert "1 of 2 networks have a slope whose 95% CI lies below 1" in text


def test_a_network_that_gives_every_vertebra_one_call_is_flagged(oof):
    flat = oof[oof["architecture"] == "alexnet"].assign(architecture="mnasnet1_0", p=0.48)
    both = pd.concat([oof, flat], ignore_index=True)
    assert fresh_old.degenerate(both) == ["mnasnet1_0"]
    kept, bad = fresh_old.learned(both)
    assert bad == ["mnasnet1_0"] and "mnasnet1_0" not in set(kept["architecture"])


def test_reader_cases_are_drawn_half_fresh_and_reproducibly():
    ids = [f"V{i}" for i in range(100)]
    m = pd.DataFrame({"acuity": ["acute"] * 30 + ["chronic"] * 70, "level": "L2"}, index=ids)
    truth = pd.DataFrame({"condensation_band": True, "endplate_sclerosis": False, "osteophyte": False}, index=ids)
    a = fresh_old.reader_cases(m, truth, 40, seed=1)
    assert len(a) == 40 and a["truth"].sum() == 20
    pd.testing.assert_frame_equal(a, fresh_old.reader_cases(m, truth, 40, seed=1))


def test_a_run_where_at_most_one_network_learned_gives_empty_comparisons_not_errors(oof):
    from ovfkit import acute_chronic as ac

    one = oof[oof["architecture"] == "alexnet"]
    y, sc, groups = fresh_old.scores(one)
    assert ac.delong_pairs({"AlexNet": sc["alexnet"]}, y, groups, cohort="cv", n_boot=10).empty
    assert fresh_old.rank_table(one, n_boot=10).empty
    assert fresh_old.calibration_table(one.iloc[:0]).empty
    bands = fresh_old.by_level_band(one.iloc[:0], pd.Series(dtype=str), n_boot=10)
    assert bands.empty and fresh_old.bands_readable(bands).empty
