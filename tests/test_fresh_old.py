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
