"""The "What we found" sentences state the numbers and directions of the tables they are written from."""

import numpy as np
import pandas as pd
import pytest

from ovfkit import findings
from ovfkit.task import get_task


def _auc(rows, column="macro_auc"):
    return pd.DataFrame([{**r, column: r.pop("auc")} if "auc" in r else r for r in rows])


def test_box_is_an_admonition_with_one_bullet_per_sentence():
    text = findings.box(["a.", "b."])
    assert text.startswith("```{admonition} What we found\n:class: important") and "- a.\n- b.\n```" in text
    assert "Nothing could be computed" in findings.box([])


@pytest.mark.parametrize("rad, fused, verdict, direction", [
    (0.80, 0.75, "matches or beats every variant with deep features on every held-out cohort", "ahead by 0.050"),
    (0.70, 0.75, "is behind a variant with deep features on 2 of 2 held-out cohorts", "behind by 0.050"),
])
def test_fusion_findings_say_whether_radiomics_alone_is_ahead(rad, fused, verdict, direction):
    rows = []
    for cohort in ("internal", "external"):
        rows += [{"variant": "radiomics", "cohort": cohort, "macro_auc": rad, "ci_low": rad - 0.1, "ci_high": rad + 0.1},
                 {"variant": "early b", "cohort": cohort, "macro_auc": fused, "ci_low": fused - 0.1,
                  "ci_high": fused + 0.1},
                 {"variant": "deep b", "cohort": cohort, "macro_auc": fused - 0.2, "ci_low": 0.4, "ci_high": 0.7},
                 {"variant": "radiomics, no ComBat", "cohort": cohort, "macro_auc": 0.99, "ci_low": 0.9,
                  "ci_high": 1.0}]
    text = findings.fusion_findings(pd.DataFrame(rows))
    assert verdict in text[0] and "by point estimate" in text[0]
    assert len(text) == 3 and all(direction in t and "(early b)" in t for t in text[1:])
    assert f"{rad:.3f} (95% CI {rad - 0.1:.3f}-{rad + 0.1:.3f})" in text[1]


def test_fusion_findings_name_a_cohort_that_cannot_be_compared():
    df = pd.DataFrame([{"variant": "radiomics", "cohort": "prospective", "auc": np.nan, "ci_low": np.nan,
                        "ci_high": np.nan}, {"variant": "early b", "cohort": "prospective", "auc": 0.7,
                                             "ci_low": 0.6, "ci_high": 0.8}])
    assert findings.fusion_findings(df) == ["The variants cannot be compared on any held-out cohort (AUC not "
                                            "computable on prospective)."]


def test_model_findings_compare_the_chosen_model_with_the_baseline():
    versus = pd.DataFrame({"ovfkit backbone": ["b", "b"], "ovfkit model": ["RF", "RF"]})
    scores = pd.DataFrame([{"variant": "early b", "model": "RF", "cohort": c, "macro_auc": a, "ci_low": a - .1,
                            "ci_high": a + .1} for c, a in (("train", .9), ("internal", .8), ("prospective", .647))]
                          + [{"variant": "early b", "model": "LR", "cohort": "internal", "macro_auc": .99,
                              "ci_low": .9, "ci_high": 1.0}])
    baseline = pd.DataFrame({"cohort": ["internal", "prospective"], "macro_auc": [0.75, 0.776],
                             "ci_low": [0.6, 0.6], "ci_high": [0.9, 0.9]})
    text, caveat = findings.model_findings(versus, scores, baseline)
    assert text.startswith("RF on early fusion with b")
    assert "internal 0.800 (95% CI 0.700-0.900), above the baseline's 0.750 (95% CI 0.600-0.900)" in text
    assert "prospective 0.647 (95% CI 0.547-0.747), below the baseline's 0.776" in text
    assert "train 0.9" not in text and "0.990" not in text
    assert "not a paired test" in caveat


def test_model_findings_do_not_compare_a_binary_auc_with_a_macro_auc_baseline():
    versus = pd.DataFrame({"ovfkit backbone": ["b"], "ovfkit model": ["RF"]})
    scores = pd.DataFrame([{"variant": "early b", "model": "RF", "cohort": "internal", "auc": .8, "ci_low": .7,
                            "ci_high": .9}])
    baseline = pd.DataFrame({"cohort": ["internal"], "macro_auc": [0.75], "ci_low": [0.6], "ci_high": [0.9]})
    assert "baseline" not in findings.model_findings(versus, scores, baseline)[0]


def test_translation_findings_count_surgical_vertebrae_sent_to_conservative_care():
    # internal: class 2 has 6 vertebrae: 3 right, 2 called class 0, 1 called class 1; 21 vertebrae, 14 right
    cells = [(0, 0, 8), (0, 1, 2), (1, 1, 3), (1, 2, 2), (2, 2, 3), (2, 0, 2), (2, 1, 1)]
    confusion = pd.DataFrame([{"true": t, "predicted": p, "n": n, "cohort": "internal"} for t, p, n in cells])
    (text,) = findings.translation_findings(confusion, **findings.bedside(get_task("astlof")))
    assert text == ("internal: accuracy 67% (14/21); sensitivity for class-2 (augmentation or surgery) vertebrae "
                    "50% (3/6), and 2 of them would be managed as conservative care (class 0).")
    named = confusion.assign(variant="early b", model="RF")
    assert findings.translation_findings(named, **findings.bedside(get_task("astlof")))[0].startswith(
        "RF on early b, internal: accuracy 67%")
    (binary,) = findings.translation_findings(confusion[confusion["true"] < 2].assign(
        predicted=lambda d: d["predicted"].clip(0, 1)), **findings.bedside(get_task("acuity")))
    assert binary.endswith("sensitivity for acute vertebrae 100% (5/5).")


@pytest.mark.parametrize("p_holm, verdict", [((0.2, 0.6), "no difference between the pretraining domains survives "
                                                          "Holm's correction"),
                                             ((0.01, 0.6), "1 of 2 differences survive Holm's correction")])
def test_domain_findings_report_holm_adjusted_tests(p_holm, verdict):
    df = pd.DataFrame([{"cohort": c, "class": k, "diff": 0.02, "ci_low": -0.05, "ci_high": 0.09, "p": p, "p_holm": p,
                        "a": "early m / RF", "b": "early n / RF"}
                       for (c, p) in zip(("internal", "external"), p_holm) for k in ("macro", "0")])
    (text,) = findings.domain_findings(df)
    assert verdict in text and text.startswith("early m / RF minus early n / RF")
    assert text.count("+0.020") == 2  # the macro rows only


def test_clinical_findings_find_where_the_model_beats_both_strategies():
    t = np.round(np.arange(0.1, 0.6, 0.1), 2)
    curves = pd.concat([pd.DataFrame({"model": "combined", "threshold": t, "net_benefit": [.3, .25, .2, .05, -.01],
                                      "cls": 0}),
                        pd.DataFrame({"model": "all", "threshold": t, "net_benefit": [.35, .2, .1, 0.0, -.1], "cls": 0})])
    disc = pd.DataFrame({"difference": [0.01, -0.02], "p_holm": [0.5, 0.04]})
    text = findings.clinical_findings(disc, curves)
    assert text[0].startswith("Adding age and sex to the DLR score changes the held-out AUC by -0.020 to +0.010")
    assert "1 stay below 0.05" in text[0]
    assert text[1] == ("Class 0, held-out cohorts pooled: the combined model's net benefit is above treating all and "
                       "treating none at 3 of 5 threshold probabilities (lowest 0.20, highest 0.40).")


def test_cohort_findings_name_the_rarest_class_and_an_empty_cell():
    mix = pd.DataFrame({"cohort": ["train", "train", "prospective", "prospective"], "astlof_class": [0, 2, 0, 2],
                        "n": [30, 6, 4, 0]})
    text = findings.cohort_findings(mix, pd.DataFrame())
    assert "the rarest class is **2** (6 vertebrae, 15%)" in text[0]
    assert text[1].startswith("The prospective cohort has no vertebra of class 2")


def test_missing_tables_give_no_sentence():
    empty = pd.DataFrame()
    assert findings.fusion_findings(empty) == findings.domain_findings(empty) == findings.shap_findings(empty) == []
    assert findings.read("/nonexistent", "fusion_auc").empty


def test_domain_findings_name_the_correction_the_table_carries_and_the_nested_train_row():
    df = pd.DataFrame([{"cohort": "train", "class": "auc", "diff": 0.02, "ci_low": -0.05, "ci_high": 0.09,
                        "p": 0.01, "a": "A", "b": "B"}])
    (text,) = findings.domain_findings(df, title="Own models: ")
    assert text.startswith("Own models: A minus B: train (nested CV) +0.020")
    assert "p 0.010" in text and "1 of 1 differences have p < 0.05 (no correction)" in text and "Holm" not in text


def test_comparison_findings_read_a_binary_tasks_auc_rows():
    df = pd.DataFrame([{"cohort": "internal", "class": "auc", "diff": 0.1, "p": 0.001, "p_bh": 0.002, "a": "A",
                        "b": "B"}])
    (text,) = findings.comparison_findings(df)
    assert text.startswith("1 of 1 paired comparisons") and "Benjamini-Hochberg" in text and "A vs B on internal" in text


def test_discordant_findings_count_each_direction_and_describe_the_case_shown():
    cases = pd.DataFrame({"cohort": ["prospective", "internal", "external"], "y": [1, 2, 0], "pred_a": [1, 1, 2],
                          "pred_b": [0, 2, 1], "p_true_a": [0.61, 0.2, 0.1], "p_true_b": [0.3, 0.5, 0.2],
                          "outcome": ["a right, b wrong", "b right, a wrong", "both wrong"]}, index=["v7", "v2", "v9"])
    text = findings.discordant_findings(cases, 40, "RF on x", "LR on y")
    assert text[0] == ("A (RF on x) and B (LR on y) grade 3 of 40 held-out vertebrae differently: A right and B "
                       "wrong on 1, B right and A wrong on 1, both wrong on 1.")
    assert text[1].startswith("The case below is v7 (prospective cohort, true class 1): A predicts class 1 "
                              "(probability of the true class 0.61), B predicts class 0 (0.30).")
    assert "alike" in findings.discordant_findings(cases.iloc[:0], 40, "A", "B")[0]
    assert "No held-out vertebra" in findings.discordant_findings(cases.iloc[:0], 0, "A", "B")[0]


@pytest.mark.parametrize("low, high, says", [(0.79, 0.92, "clearly above chance"), (0.45, 0.8, "reaches chance"),
                                             (0.9, 0.97, "too easy")])
def test_difficulty_sentence_follows_the_baselines_ci(low, high, says):
    baseline = pd.DataFrame([{"cohort": "test", "auc": (low + high) / 2, "ci_low": low, "ci_high": high}])
    assert says in findings.difficulty_sentence(baseline)


def test_acute_chronic_findings_name_tied_models_and_do_not_rank_without_a_test():
    aucs = pd.DataFrame([{"model": m, "cohort": "test", "auc": v, "ci_low": v - .05, "ci_high": v + .05,
                          "paper_auc": .9} for m, v in [("HCR", .8), ("DTL", .85), ("fusion", .85), ("nomogram", .84)]])
    delong = pd.DataFrame([{"cohort": "test", "a": "nomogram", "b": "fusion", "difference": -0.01, "p": 0.5,
                            "p (Holm)": 1.0, "paper P": "0.668"},
                           {"cohort": "test", "a": "HCR", "b": "fusion", "difference": -0.05, "p": 0.04,
                            "p (Holm)": 0.08, "paper P": "< 0.05"},
                           {"cohort": "test", "a": "HCR", "b": "nomogram", "difference": -0.04, "p": 0.2,
                            "p (Holm)": 0.4, "paper P": "< 0.05"}])
    text = " ".join(findings.acute_chronic_findings(aucs, delong, pd.DataFrame()))
    assert ("Not reproduced: the paper found HCR vs fusion and HCR vs nomogram significant (P < 0.05); here they "
            "are not, after Holm's correction.") in text
    assert "DTL and fusion share the highest point estimate" in text and "do not rank them" in text
    assert "unadjusted DeLong p 0.500" in text


@pytest.mark.parametrize("slope, low, high, says", [(1.4, 0.9, 1.9, "its CI includes 1"),
                                                    (0.6, 0.4, 0.8, "too extreme"), (1.6, 1.2, 2.0, "too moderate")])
def test_calibration_sentence_reads_the_slope_against_one(slope, low, high, says):
    cal = pd.DataFrame([{"slope": slope, "slope_low": low, "slope_high": high, "intercept": 0.1, "n": 106,
                         "intercept_low": -0.2, "intercept_high": 0.4, "brier": 0.1, "HL statistic": 4.4,
                         "HL df": 5, "HL p": 0.49}])
    text = findings.calibration_sentence(cal)
    assert says in text and "intercept 0.10 (95% CI -0.20 to 0.40), its CI includes 0" in text and "p 0.490" in text


def test_train_test_gap_names_each_models_difference_and_why_test_can_be_higher():
    aucs = pd.DataFrame([{"model": m, "cohort": c, "auc": v, "ci_low": v - 0.05, "ci_high": v + 0.05}
                         for m, tr, te in [("HCR", 0.86, 0.94), ("fusion", 0.85, 0.91)]
                         for c, v in (("training", tr), ("test", te))])
    text = findings.train_test_gap(aucs, outer_splits=3)
    assert "HCR +0.080, fusion +0.060" in text and "Every test AUC is the higher one" in text
    assert "±0.05" in text and "2 of 3 folds" in text
    lower = aucs.assign(auc=lambda t: np.where(t["cohort"] == "test", t["auc"] - 0.2, t["auc"]))
    assert "lower one" in findings.train_test_gap(lower, outer_splits=3)


def test_decision_curve_sentence_counts_thresholds_above_both_references_and_the_leader():
    t = np.round(np.arange(0.1, 0.6, 0.1), 2)
    prev = 0.5
    rows = [{"model": "all", "threshold": x, "net_benefit": prev - (1 - prev) * x / (1 - x), "low": 0, "high": 0}
            for x in t] + [{"model": "none", "threshold": x, "net_benefit": 0.0, "low": 0, "high": 0} for x in t]
    rows += [{"model": "A", "threshold": x, "net_benefit": 0.45, "low": 0.30, "high": 0.55} for x in t]
    rows += [{"model": "B", "threshold": x, "net_benefit": 0.40, "low": 0.35, "high": 0.45} for x in t]
    text = findings.decision_curve_sentence(pd.DataFrame(rows))
    # treat all: 0.444, 0.375, 0.286, 0.167, 0.0 -> A (0.45) beats it everywhere, B (0.40) from 0.2 on
    assert "A at 5 of 5, from 0.10 to 0.50" in text and "B at 4 of 5, from 0.20 to 0.50" in text
    assert "A at 100% of the thresholds" in text and "At 100% of the thresholds the runner-up" in text
