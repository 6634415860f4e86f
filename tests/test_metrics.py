"""Metrics against scikit-learn, and the vectorized bootstrap against a loop over the same resamples."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, brier_score_loss, confusion_matrix, f1_score, precision_score,
                             recall_score, roc_auc_score)

from ovfkit import metrics


def _cases(n=120, seed=0, ties=False, n_patients=None):
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15])
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        p = np.round(p, 1)
    groups = rng.integers(0, n_patients or n // 2, n)
    return y, p, groups


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_auc_equals_sklearn_on_the_expanded_resample(ties):
    y, p, groups = _cases(ties=ties)
    W = metrics.bootstrap_weights(groups, 30, seed=1)
    got = metrics.weighted_auc(y == 2, p[:, 2], W)
    for b in range(30):
        idx = np.repeat(np.arange(len(y)), W[b])
        assert got[b] == pytest.approx(roc_auc_score(y[idx] == 2, p[idx, 2]), abs=1e-12)


def test_weighted_auc_is_nan_when_a_resample_has_no_positive():
    W = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    got = metrics.weighted_auc(np.array([False, False, True, True]), np.array([0.1, 0.2, 0.3, 0.4]), W)
    assert np.isnan(got[0]) and got[1] == 1.0


def test_bootstrap_resamples_whole_patients():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    W = metrics.bootstrap_weights(groups, 50, seed=0)
    assert (W[:, 0] == W[:, 1]).all() and (W[:, 3] == W[:, 5]).all()
    # three patients drawn per resample: weights summed over one vertebra per patient equal 3
    assert (W[:, [0, 2, 3]].sum(axis=1) == 3).all()


def _reference_loop(y, p, W):
    """Brute force: expand each resample and call scikit-learn."""
    out = []
    for b in range(len(W)):
        idx = np.repeat(np.arange(len(y)), W[b])
        yy, pp = y[idx], p[idx]
        if len(np.unique(yy)) < 3:
            out.append(None)
            continue
        pred = pp.argmax(axis=1)
        row = {"macro_auc": roc_auc_score(yy, pp, multi_class="ovr", average="macro"),
               "micro_auc": roc_auc_score(np.eye(3)[yy], pp, average="micro"),
               "accuracy": accuracy_score(yy, pred), "macro_f1": f1_score(yy, pred, average="macro")}
        for k in range(3):
            row[f"auc_class_{k}"] = roc_auc_score(yy == k, pp[:, k])
            row[f"accuracy_class_{k}"] = accuracy_score(yy == k, pred == k)
            row[f"sensitivity_class_{k}"] = recall_score(yy == k, pred == k)
            row[f"specificity_class_{k}"] = recall_score(yy != k, pred != k)
            row[f"ppv_class_{k}"] = precision_score(yy == k, pred == k, zero_division=np.nan)
            row[f"npv_class_{k}"] = precision_score(yy != k, pred != k, zero_division=np.nan)
            row[f"f1_class_{k}"] = f1_score(yy == k, pred == k)
        out.append(row)
    return out


def test_vectorized_bootstrap_equals_a_scikit_learn_loop_over_the_same_resamples():
    y, p, groups = _cases(n=90, seed=3)
    W = metrics.bootstrap_weights(groups, 40, seed=5)
    ref = _reference_loop(y, p, W)
    pred = p.argmax(axis=1)
    vec = {**metrics._auc_block(y, p, W, (0, 1, 2)), **metrics._count_block(y, pred, W, (0, 1, 2))}
    for b, row in enumerate(ref):
        if row is None:
            assert np.isnan(vec["macro_auc"][b])
            continue
        for name, value in row.items():
            assert vec[name][b] == pytest.approx(value, abs=1e-12, nan_ok=True), (b, name)


def test_point_metrics_equal_scikit_learn():
    y, p, _ = _cases(seed=4)
    got = metrics.point_metrics(y, p)
    assert got["macro_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
    assert got["micro_auc"] == pytest.approx(roc_auc_score(np.eye(3)[y], p, average="micro"), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert got["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert got["brier"] == pytest.approx(brier_score_loss(y, p, labels=[0, 1, 2]), abs=1e-12)


def test_brier_score_is_the_textbook_multiclass_sum():
    y = np.array([0, 1, 2, 2])
    p = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    # per case: 0, 0.25 + 0.25, 0, 1/9 + 1/9 + 4/9
    assert metrics.brier_score(y, p) == pytest.approx((0 + 0.5 + 0 + 6 / 9) / 4)


def test_bootstrap_metrics_table_has_cis_around_estimates():
    y, p, groups = _cases(n=300, seed=6)
    table = metrics.bootstrap_metrics(y, p, groups, n_boot=400, seed=1)
    assert {"macro_auc", "micro_auc", "accuracy", "sensitivity_class_2", "npv_class_0", "brier"} <= set(table.index)
    ci = table.drop("brier")
    assert ((ci["ci_low"] <= ci["estimate"] + 1e-12) & (ci["estimate"] <= ci["ci_high"] + 1e-12)).all()
    assert (ci["n_valid"] > 390).all()
    est, lo, hi = metrics.patient_bootstrap_ci(y, p, groups, n_boot=400, seed=1)
    assert (est, lo, hi) == pytest.approx(tuple(table.loc["macro_auc", ["estimate", "ci_low", "ci_high"]]))


def test_bootstrap_interval_covers_the_truth_at_about_the_nominal_rate():
    """Coverage: 200 cohorts drawn from one population whose macro AUC is known by simulation."""
    rng = np.random.default_rng(11)

    def draw(n):
        y = rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15])
        logits = rng.normal(size=(n, 3)) + 1.0 * np.eye(3)[y]
        return y, np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

    truth = metrics.macro_auc(*draw(200_000))
    hits = 0
    for _ in range(200):
        y, p = draw(150)
        _, lo, hi = metrics.patient_bootstrap_ci(y, p, np.arange(150), n_boot=300, seed=int(rng.integers(1e9)))
        hits += lo <= truth <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_roc_confusion_and_calibration_tables_match_scikit_learn():
    y, p, _ = _cases(seed=8)
    roc = metrics.roc_table(y, p)
    for k in range(3):
        assert roc.loc[roc["class"] == k, "auc"].iloc[0] == pytest.approx(roc_auc_score(y == k, p[:, k]))
    cm = metrics.confusion(y, p)
    np.testing.assert_array_equal(cm.to_numpy(), confusion_matrix(y, p.argmax(1)))
    cal = metrics.calibration_table(y, p, n_bins=4)
    assert set(cal["class"]) == {0, 1, 2} and cal["observed"].between(0, 1).all()


@pytest.mark.parametrize("bad, message", [
    (lambda y, p, g: (y, p[:, :2], g), r"shape \(n, 3\)"),
    (lambda y, p, g: (y[:-1], p, g), "same cases"),
    (lambda y, p, g: (y + 5, p, g), "outside classes"),
    (lambda y, p, g: (y, p, g[:-2]), "each case's patient"),
])
def test_bad_input_gets_a_clear_error(bad, message):
    y, p, g = _cases(n=30)
    with pytest.raises(ValueError, match=message):
        metrics.bootstrap_metrics(*bad(y, p, g), n_boot=10)


def test_auc_by_cohort_reports_each_held_out_cohort():
    y, p, groups = _cases(n=60, seed=9)
    ids = pd.Index([f"v{i}" for i in range(60)])
    manifest = pd.DataFrame({"cohort": ["internal"] * 30 + ["external"] * 30, "astlof_class": y,
                             "patient_id": groups}, index=ids)

    class Fixed:
        def predict_proba(self, X):
            return p[ids.get_indexer(X.index)]

    table = metrics.auc_by_cohort(Fixed(), pd.DataFrame(index=ids), manifest, n_boot=50)
    assert list(table.index) == ["internal", "external"]
    assert table.loc["external", "macro_auc"] == pytest.approx(metrics.macro_auc(y[30:], p[30:]))


def test_macro_auc_ci_is_nan_when_a_class_is_absent():
    y = np.array([0, 1, 0, 1, 0, 1])
    p = np.full((6, 3), 1 / 3)
    assert all(np.isnan(v) for v in metrics.patient_bootstrap_ci(y, p, np.arange(6), n_boot=20))


@pytest.mark.parametrize("block", [1, 7, 250])
def test_weight_blocks_give_the_same_resamples_whatever_the_block_size(block):
    groups = np.repeat(np.arange(40), 2)[:75]
    whole = metrics.bootstrap_weights(groups, 30, seed=4)
    np.testing.assert_array_equal(np.vstack(list(metrics.weight_blocks(groups, 30, 4, block))), whole)


def test_patient_level_counts_with_an_index_equal_case_weights():
    y, p, groups = _cases(n=150, seed=12, ties=True)
    inv, blocks = metrics.patient_blocks(groups, 40, 3, 40)
    counts = next(blocks)
    np.testing.assert_array_equal(metrics.weighted_auc(y == 1, p[:, 1], counts, index=inv),
                                  metrics.weighted_auc(y == 1, p[:, 1], counts[:, inv]))


def test_curves_of_a_cohort_with_one_outcome_are_empty_and_say_which_classes_are_missing():
    """A tiny cohort with only class 0 (the quick book at some seeds) draws no curve instead of failing."""
    from ovfkit import plots

    p = np.tile([0.5, 0.3, 0.2], (4, 1))
    for table in (metrics.roc_table(np.zeros(4, int), p), metrics.calibration_table(np.zeros(4, int), p)):
        assert table.empty and table.attrs["missing"] == [0, 1, 2]
    some = metrics.roc_table(np.array([0, 0, 1, 1]), p)
    assert set(some["class"]) == {0, 1} and some.attrs["missing"] == [2]
    fig, data = plots.roc_by_class({"internal": some, "external": metrics.roc_table(np.zeros(4, int), p)})
    assert set(data["cohort"]) == {"internal"}
    assert any("no curve for class 0, 1, 2" in t.get_text() for t in fig.axes[1].texts)
