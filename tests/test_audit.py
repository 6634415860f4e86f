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
    ("tuning on test", 0.0),
    ("random split as external", 0.02),
])
def test_each_shortcut_is_more_optimistic_than_the_honest_path(data, pitfall, margin):
    res = audit.run(data, [pitfall], n_repeats=2 if pitfall == "best of nine on test" else 4,
                    model=audit.lean_model(k=15))
    table = audit.optimism_table(res)
    assert table["optimism"].iloc[0] > margin, table.to_dict("records")
    if pitfall in ("best of nine on test", "tuning on test"):  # the best on test is never worse on test than any choice
        assert (res["optimism"] >= 0).all() and res["choice_shortcut"].notna().all()


@pytest.mark.parametrize("pitfall", ["harmonization on all rows", "z-scoring on all rows"])
def test_label_free_steps_on_all_rows_have_a_small_optimism(data, pitfall):
    """ComBat fitted on every row never sees a label: what it leaks is where the test rows lie, which a
    center's location and scale carry whether or not the test rows helped estimate them. The measured
    optimism is therefore small on either side of zero, not a reliable gain; the audit reports it as measured."""
    res = audit.run(data, [pitfall], n_repeats=4, model=audit.lean_model(k=15))
    assert abs(audit.optimism_table(res)["optimism"].iloc[0]) < 0.05
    assert (res["optimism"] != 0).any()  # the shortcut arm did differ


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
    # resplits that each test on 30% of the rows: Nadeau and Bengio's corrected variance (1/n + 0.3/0.7) s^2
    corrected = audit.optimism_table(res.assign(test_fraction=0.3)).iloc[0]
    half = t.ppf(0.975, 3) * d.std(ddof=1) * np.sqrt(1 / 4 + 0.3 / 0.7)
    assert (corrected["ci_low"], corrected["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))


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


def test_parallel_runs_give_the_same_table(data):
    one = audit.run(data, ["vertebra split", "training AUC"], n_repeats=2, seed=3)
    two = audit.run(data, ["vertebra split", "training AUC"], n_repeats=2, seed=3, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)


def test_one_center_cohorts_skip_the_external_shortcut_and_say_why(data):
    assert audit.applicable(data)[0] == list(audit.PITFALLS)
    one = audit.AuditData(data.X, data.y, data.groups, pd.Series("A", index=data.X.index), data.classes)
    run, why = audit.applicable(one)
    assert set(why) == {"random split as external", "harmonization on all rows"} and not set(why) & set(run)
    assert all("one center" in r for r in why.values())


def _deep_tables(d, leak):
    """Cross-fitted features carry the label as weakly as the data do; in-sample ones add, on the training rows,
    the training label itself (what a network that has seen the row's label can encode); test rows are the same."""
    rng = np.random.default_rng(0)
    train, test = _split(d)
    crossfit = d.X.iloc[:, :30].copy()
    insample = crossfit.copy()
    rows = d.X.index.isin(train)
    insample.iloc[rows, :3] += leak * (d.y.to_numpy()[rows, None] + rng.normal(scale=0.3, size=(rows.sum(), 3)))
    return {"cross-fitted": crossfit, "in-sample": insample}


def _split(d):
    patients = d.groups.unique()
    test_patients = set(patients[: len(patients) // 4])
    test = d.X.index[d.groups.isin(test_patients)]
    return d.X.index.difference(test), test


def test_fine_tuning_without_cross_fitting_claims_more_than_its_test_rows_give(data):
    train, test = _split(data)
    leaky = audit.deep_leak(_deep_tables(data, leak=3.0), data.y, data.groups, train, test, data.classes, n_repeats=2)
    assert (leaky["optimism"] > 0.1).all() and (leaky["pitfall"] == audit.DEEP_PITFALL).all()
    assert leaky["honest"].nunique() == 1  # the test AUC does not depend on the cross-validation's seed
    # the cross-fitted pipeline's claim misses its truth by sampling noise only, far less than the leak adds
    assert (leaky["optimism"] > leaky["control_cv"] - leaky["control_test"] + 0.1).all()
    same = audit.deep_leak(_deep_tables(data, leak=0.0), data.y, data.groups, train, test, data.classes, n_repeats=2)
    assert (same["optimism"] == same["control_cv"] - same["control_test"]).all()  # no leak: the control's gap


def test_deep_leak_refuses_a_missing_table_or_row(data):
    tables = _deep_tables(data, 1.0)
    train, test = _split(data)
    with pytest.raises(ValueError, match="pass both"):
        audit.deep_leak({"in-sample": tables["in-sample"]}, data.y, data.groups, train, test, data.classes)
    with pytest.raises(ValueError, match="lack 1 vertebra"):
        audit.deep_leak({**tables, "in-sample": tables["in-sample"].drop(test[0])}, data.y, data.groups, train, test,
                        data.classes)


def test_clustering_narrows_the_interval_when_patients_repeat_and_not_otherwise(data):
    clustered = audit.clustering_table(data)
    assert (clustered["narrowing"] > 0.05).all() and (clustered["vertebrae per patient"] == 3).all()
    singles = audit.AuditData(data.X, data.y, pd.Series(np.arange(len(data.y)), index=data.X.index), data.center,
                              data.classes)
    alone = audit.clustering_table(singles)
    assert alone["narrowing"].abs().max() < 1e-9  # one vertebra per cluster: Obuchowski's is DeLong's


@pytest.fixture(scope="module")
def tiny_study(tiny_cohorts):
    from ovfkit.acute_chronic import _truth
    from ovfkit.manifest import load_manifest
    from ovfkit.settings import settings

    path = tiny_cohorts["xray"]
    return load_manifest(path), _truth(path), settings("quick", "xray")


def test_study_data_reads_the_features_label_patients_and_centers(tiny_study, tmp_path):
    m, _, run = tiny_study
    data, dropped = audit.study_data(m, run, cache_dir=tmp_path)
    assert data.X.index.equals(m.index) and data.y.equals(run.task.labels(m).rename(data.y.name))
    assert data.groups.equals(m["patient_id"].astype(str)) and data.center.nunique() == m["center"].nunique()
    assert np.isfinite(data.X.to_numpy()).all() and (data.X.std() > 0).all()
    assert set(dropped["what"]) <= {"vertebra", "feature"} and (dropped["what"] == "vertebra").sum() == 0


def test_truth_findings_are_what_the_image_shows_and_the_clinical_finding_is_extra(tiny_study):
    m, truth, _ = tiny_study
    shown = audit.truth_findings(truth, m, "xray")
    assert tuple(shown.columns) == audit.VISIBLE["xray"] and shown.index.equals(m.index)
    assert set(shown["cleft"]) <= {"none", "vacuum_cleft", "fluid"}
    assert "mri_finding" not in shown and "clinical" in audit.truth_findings(truth, m, "xray", clinical=True)
    assert "osteophyte" not in audit.truth_findings(truth, m, "ct")  # CT phantoms draw no osteophytes
    with pytest.raises(ValueError, match="no row for 1"):
        audit.truth_findings(truth.iloc[1:], m, "xray")


def test_the_clinical_finding_raises_the_ceiling_when_the_label_depends_on_it():
    """A label that adds a score the image cannot show (ASTLOF's clinical component) is read better with it."""
    rng = np.random.default_rng(0)
    n = 400
    idx = pd.Index([f"v{i}" for i in range(n)], name="vertebra_id")
    truth = pd.DataFrame({
        "morphology_finding": rng.choice(["normal", "wedge", "burst"], n), "height_loss": rng.uniform(0, 0.5, n),
        "retropulsion_mm": 0.0, "condensation_band": rng.random(n) < 0.3, "endplate_sclerosis": False,
        "osteophyte": False, "mri_finding": rng.choice(["normal", "edema", "fluid"], n),
        "clinical_finding": rng.choice(["none", "positional", "persistent"], n)}, index=idx)
    manifest = pd.DataFrame({"patient_id": np.arange(n) // 2, "bmd_tscore": rng.normal(-2.5, 1, n)}, index=idx)
    score = (truth["morphology_finding"] != "normal").astype(int) + (truth["clinical_finding"] != "none").astype(int)
    table = audit.ceiling_table(truth, manifest, "xray", pd.Series(np.minimum(score, 2), index=idx), (0, 1, 2))
    assert list(table["model given"]) == ["the findings the image shows", "those and the clinical finding"]
    assert table["AUC"].iloc[1] > table["AUC"].iloc[0] + 0.1 and table["AUC"].iloc[1] > 0.95
    assert "osteophyte" not in table["findings"].iloc[0] and "morphology" in table["findings"].iloc[0]  # never drawn here


def test_summary_names_the_largest_sure_optimism_the_reach_and_the_narrowing():
    optimism = pd.DataFrame({"study": ["A", "A", "B"], "pitfall": ["p", "q", "p"], "honest AUC": [0.7, 0.7, 0.6],
                             "shortcut AUC": [0.9, 0.71, 0.7], "optimism": [0.2, 0.01, 0.1],
                             "ci_low": [0.15, -0.02, 0.05], "ci_high": [0.25, 0.04, 0.15]})
    ceilings = pd.DataFrame({"study": ["A", "A", "B", "B"], "model given": [audit.SHOWN, audit.WITH_CLINICAL] * 2,
                             "AUC": [0.9, 0.99, 0.8, 0.82], "model AUC": [0.7, 0.7, 0.6, 0.6],
                             "label": ["astlof", "astlof", "acuity", "acuity"]})
    clustering = pd.DataFrame({"study": ["A"], "class": [1], "narrowing": [0.12], "vertebrae per patient": [1.5]})
    text = " ".join(audit.summary(optimism, ceilings, clustering))
    assert "**p** (A)" in text and "+0.200" in text and "p (2 of 2 studies)" in text
    assert "No study shows an optimism beyond its interval for: q" in text
    assert "12% too small" in text and "+0.090 (A)" in text and "only a correlate" in text and "+0.020 (B)" in text
    assert "0.900 (A), 0.800 (B)" in text and "same folds, 0.700, 0.600" in text
    none = " ".join(audit.summary(optimism.assign(ci_low=-0.1), ceilings.iloc[:0], clustering.iloc[:0]))
    assert none == "No shortcut's optimism is above zero beyond its interval on any study."


def test_choice_table_counts_each_arms_choices_and_how_often_they_differ():
    res = pd.DataFrame({"study": "A", "pitfall": ["best of nine on test"] * 3 + ["training AUC"],
                        "choice_honest": ["LR", "LR", "RF", None], "choice_shortcut": ["RF", "LR", "RF", None]})
    table = audit.choice_table(res)
    assert table.to_dict("records") == [{"study": "A", "pitfall": "best of nine on test", "honest arm chose": "LR (×2), RF (×1)",
                                        "shortcut arm chose": "RF (×2), LR (×1)", "choices differ (%)": pytest.approx(100 / 3)}]
    assert audit.choice_table(res.drop(columns=["choice_honest", "choice_shortcut"])).empty
