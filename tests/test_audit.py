"""The methodology audit: every shortcut, run on a tiny cohort built so that it has something to exploit,
is measurably more optimistic than the honest path; or the test says why not."""

import numpy as np
import pandas as pd
import pytest

from ovfkit import audit


def cohort(n_patients=90, per_patient=3, n_noise=150, signal=0.8, patient_effect=1.5, center_shift=1.0, seed=0,
           classes=(0, 1)):
    """Vertebrae of patients at two centers. A patient's fractures share a tendency (their labels agree more
    often than chance) and every feature carries a patient fingerprint (habitus, bone density, acquisition)
    unrelated to the label; a few features carry the fracture weakly, many carry nothing. A flexible model
    that meets a patient's other vertebrae in training can recognize the patient and borrow their labels.
    Center B's features are shifted, and show the fracture less plainly."""
    rng = np.random.default_rng(seed)
    patients = np.repeat(np.arange(n_patients), per_patient)
    n = len(patients)
    latent = rng.normal(size=n_patients)[patients] + rng.normal(scale=0.5, size=n)
    cuts = np.quantile(latent, np.linspace(0, 1, len(classes) + 1)[1:-1])
    y = np.searchsorted(cuts, latent)
    center = np.where(patients < n_patients * 2 // 3, "A", "B")
    n_features = 5 + n_noise
    X = patient_effect * rng.normal(size=(n_patients, n_features))[patients] + rng.normal(size=(n, n_features))
    X[:, :5] += signal * (latent[:, None] - latent.mean())
    X[center == "B"] += center_shift * rng.normal(size=n_features)
    X[center == "B", :5] = 0.4 * X[center == "B", :5] + rng.normal(size=((center == "B").sum(), 5))
    idx = pd.Index([f"v{i}" for i in range(n)], name="vertebra_id")
    cols = [f"f{j}" for j in range(n_features)]
    return audit.AuditData(pd.DataFrame(X, index=idx, columns=cols), pd.Series(y, index=idx),
                           pd.Series(patients, index=idx), pd.Series(center, index=idx), tuple(classes))


@pytest.fixture(scope="module")
def data():
    return cohort(n_patients=150)


@pytest.mark.parametrize("pitfall, margin", [
    ("vertebra split", 0.02),
    ("selection on all rows", 0.02),
    ("training AUC", 0.05),
    ("best of nine on test", 0.0),
    ("random split as external", 0.02),
])
def test_each_shortcut_is_more_optimistic_than_the_honest_path(data, pitfall, margin):
    res = audit.run(data, [pitfall], n_repeats=2 if pitfall == "best of nine on test" else 4,
                    model=audit.lean_model(k=15))
    table = audit.optimism_table(res)
    assert table["optimism"].iloc[0] > margin, table.to_dict("records")
    if pitfall == "best of nine on test":  # the best on test is never worse on test than any choice
        assert (res["optimism"] >= 0).all()


def test_harmonization_on_all_rows_sees_no_label_so_its_optimism_is_small(data):
    """ComBat fitted on every row never sees a label: what it leaks is where the test rows lie, which a
    center's location and scale carry whether or not the test rows helped estimate them. The measured
    optimism is therefore small on either side of zero, not a reliable gain; the audit reports it as measured."""
    res = audit.run(data, ["harmonization on all rows"], n_repeats=4, model=audit.lean_model(k=15))
    assert abs(audit.optimism_table(res)["optimism"].iloc[0]) < 0.05


def test_three_class_tasks_use_the_macro_auc():
    d = cohort(classes=(0, 1, 2), seed=1)
    res = audit.run(d, ["training AUC", "vertebra split"], n_repeats=2, model=audit.lean_model(k=10))
    assert res["honest"].between(0, 1).all() and res["shortcut"].between(0, 1).all()
    assert (res.groupby("pitfall")["optimism"].mean() > 0).all()


def test_runs_are_deterministic_and_repeats_differ(data):
    a = audit.run(data, ["vertebra split"], n_repeats=3, seed=5)
    b = audit.run(data, ["vertebra split"], n_repeats=3, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a["honest"].nunique() == 3


def test_optimism_table_interval_is_a_t_interval_over_repeats():
    res = pd.DataFrame({"pitfall": "p", "repeat": range(4), "honest": [0.7, 0.72, 0.71, 0.69],
                        "shortcut": [0.8, 0.78, 0.83, 0.79]})
    res["optimism"] = res["shortcut"] - res["honest"]
    row = audit.optimism_table(res).iloc[0]
    d = res["optimism"]
    from scipy.stats import t

    half = t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (row["optimism"], row["ci_low"], row["ci_high"]) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert row["shortcut better (%)"] == 100


def test_ceiling_reads_the_truth_better_than_noise():
    rng = np.random.default_rng(0)
    n = 300
    idx = pd.Index([f"v{i}" for i in range(n)])
    finding = pd.Series(rng.choice(["wedge", "biconcave", "crush"], n), index=idx)
    y = pd.Series((finding == "crush").astype(int), index=idx)
    groups = pd.Series(np.arange(n) // 2, index=idx)
    assert audit.ceiling(pd.DataFrame({"finding": finding}), y, groups, (0, 1)) == pytest.approx(1.0)
    noise = pd.DataFrame({"x": rng.normal(size=n)}, index=idx)
    assert audit.ceiling(noise, y, groups, (0, 1)) < 0.65


@pytest.mark.parametrize("change, message", [
    (lambda d: audit.AuditData(d.X, d.y.iloc[1:], d.groups, d.center, d.classes), "not indexed like X"),
    (lambda d: audit.AuditData(d.X.assign(f0=np.nan), d.y, d.groups, d.center, d.classes), "NaN"),
    (lambda d: audit.AuditData(d.X, d.y, d.groups, d.center, (0, 2)), "not among classes"),
], ids=["misaligned", "nan-feature", "unknown-label"])
def test_bad_audit_data_is_refused_with_the_remedy(data, change, message):
    with pytest.raises(ValueError, match=message):
        audit.run(change(data), ["training AUC"], n_repeats=2)


def test_single_center_cohorts_cannot_fake_an_external_set(data):
    one = audit.AuditData(data.X, data.y, data.groups, pd.Series("A", index=data.X.index), data.classes)
    with pytest.raises(ValueError, match="at least two centers"):
        audit.run(one, ["random split as external"], n_repeats=2)
