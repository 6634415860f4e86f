import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from ovfkit import astlof

from .conftest import FIXTURES


@pytest.mark.parametrize("t, expected", [
    (-1.0, 0), (-2.4, 0), (-2.49, 0), (-2.5, 1), (-2.51, 1), (-3.0, 1), (-3.49, 1), (-3.5, 2), (-3.51, 2), (-5.0, 2),
])
def test_bmd_boundaries_belong_to_the_worse_category(t, expected):
    assert astlof.score_bmd(t)[0] == expected


def test_bmd_rejects_missing_tscore():
    with pytest.raises(ValueError, match="T-score nan is not a finite number"):
        astlof.score_bmd([-2.0, np.nan])


@pytest.mark.parametrize("finding, score", [
    ("normal", 0), ("wedge", 1), ("biconcave", 1), ("compression", 1), ("burst", 2), ("Burst ", 2),
])
def test_morphology_scores(finding, score):
    assert astlof.score_morphology(finding)[0] == score


@pytest.mark.parametrize("scorer, finding, score", [
    (astlof.score_mri, "normal", 0), (astlof.score_mri, "edema", 1), (astlof.score_mri, "vacuum_cleft", 2),
    (astlof.score_mri, "fluid", 2), (astlof.score_clinical, "none", 0), (astlof.score_clinical, "positional", 1),
    (astlof.score_clinical, "persistent", 2), (astlof.score_clinical, "neurological", 2),
])
def test_mri_and_clinical_scores(scorer, finding, score):
    assert scorer(finding)[0] == score


def test_unknown_finding_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"'crush' is not recognised; use one of: biconcave, burst"):
        astlof.score_morphology(["wedge", "crush"])


@pytest.mark.parametrize("total, cls", [(0, 0), (3, 0), (4, 1), (5, 2), (8, 2)])
def test_class_boundaries(total, cls):
    assert astlof.astlof_class(total)[0] == cls


def test_class_mapping_matches_brute_force_over_all_component_combinations():
    grid = np.array(np.meshgrid(*[range(3)] * 4)).reshape(4, -1)
    totals = astlof.total(*grid)
    expected = [0 if s <= 3 else 1 if s == 4 else 2 for s in grid.sum(axis=0)]
    assert list(astlof.astlof_class(totals)) == expected


@pytest.mark.parametrize("bad, err", [([3], ValueError), ([-1], ValueError), ([1.5], TypeError)])
def test_total_rejects_scores_outside_0_to_2(bad, err):
    with pytest.raises(err):
        astlof.total(bad, [0], [0], [0])


def test_class_rejects_total_out_of_range():
    with pytest.raises(ValueError, match="outside 0-8"):
        astlof.astlof_class([9])


def test_consensus_keeps_agreement_and_takes_adjudication_otherwise():
    r1, r2, adj = [0, 1, 2, 1], [0, 2, 2, 0], [1, 1, 0, 0]
    assert list(astlof.consensus(r1, r2, adj)) == [0, 1, 2, 0]


def test_consensus_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="shapes"):
        astlof.consensus([0, 1], [0], [0, 1])


@pytest.mark.parametrize("row", pd.read_csv(FIXTURES / "kappa_reference.csv", comment="#").to_dict("records"),
                         ids=lambda r: r["source"][:40])
def test_kappa_matches_published_examples(row):
    counts = np.array(row["table"].split(), dtype=int).reshape(2, 2)
    r1 = np.repeat([0, 0, 1, 1], counts.ravel())
    r2 = np.repeat([0, 1, 0, 1], counts.ravel())
    res = astlof.agreement(r1, r2, weights=row["weights"], categories=(0, 1))
    assert res.kappa == pytest.approx(row["kappa"], abs=5e-5)


@pytest.mark.parametrize("weights", ["linear", "quadratic", "none"])
def test_weighted_kappa_equals_scikit_learn(weights):
    rng = np.random.default_rng(3)
    r1 = rng.integers(0, 3, 300)
    r2 = np.where(rng.random(300) < 0.7, r1, rng.integers(0, 3, 300))
    res = astlof.agreement(r1, r2, weights=weights)
    ref = cohen_kappa_score(r1, r2, weights=None if weights == "none" else weights)
    assert res.kappa == pytest.approx(ref, abs=1e-12)
    assert res.ci_low < res.kappa < res.ci_high


def test_kappa_interval_covers_the_truth_at_the_nominal_rate():
    """Coverage of the 95% CI over simulated reader pairs with a known population kappa.

    Reader 2 copies reader 1 with probability p and otherwise scores uniformly at random; with uniform
    marginals the population kappa is then exactly p, whatever the weights.
    """
    rng = np.random.default_rng(5)
    n, p_keep, reps = 200, 0.8, 1000
    hits = 0
    for _ in range(reps):
        r1 = rng.integers(0, 3, n)
        r2 = np.where(rng.random(n) < p_keep, r1, rng.integers(0, 3, n))
        a = astlof.agreement(r1, r2, weights="linear")
        hits += a.ci_low <= p_keep <= a.ci_high
    assert 0.93 <= hits / reps <= 0.965


def test_agreement_counts_unused_categories():
    res = astlof.agreement([0, 0, 1, 1], [0, 0, 1, 1])
    assert res.kappa == pytest.approx(1.0)
    assert res.observed_agreement == 1.0


def test_agreement_rejects_unknown_weights():
    with pytest.raises(ValueError, match="weights='cubic'"):
        astlof.agreement([0, 1], [0, 1], weights="cubic")
