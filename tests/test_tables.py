import numpy as np
import pandas as pd
import pytest

from ovfkit import tables


@pytest.mark.parametrize("p, shown", [(0.0, "< 0.001"), (0.000999, "< 0.001"), (0.001, "0.001"), (0.0312, "0.031"),
                                      (1.0, "1.000"), (np.nan, "–"), (None, "–")])
def test_format_p_prints_small_p_values_as_a_bound(p, shown):
    assert tables.format_p(p) == shown


@pytest.mark.parametrize("name, words", [("npv_class_2", "NPV, class 2"), ("macro_auc", "macro AUC"),
                                         ("p_holm", "p (Holm)"), ("sensitivity_class_0", "sensitivity, class 0"),
                                         ("n_vertebrae", "n vertebrae"), ("auc_ci_low", "AUC CI low"), (3, 3)])
def test_human_names_read_as_words(name, words):
    assert tables.human(name) == words


def test_readable_shows_missing_as_a_dash_and_p_values_as_bounds():
    df = pd.DataFrame({"cohort": ["train", None], "macro_auc": [0.81234, np.nan], "p_holm": [0.00001, 0.2],
                       "n": [10, 3]})
    html = tables.readable(df).to_html()
    for text in ("macro AUC", "p (Holm)", "0.812", "< 0.001", "0.200", "–"):
        assert text in html, text
    for text in ("nan", "NaN", "None", "0.81234", "1e-05"):
        assert text not in html, text


def test_readable_refuses_a_series():
    with pytest.raises(TypeError, match="to_frame"):
        tables.readable(pd.Series([1.0]))


@pytest.mark.parametrize("index, shown", [(pd.RangeIndex(2), False), (pd.Index([4, 9]), False),
                                          (pd.Index(["AUC", "F1"], name="metric"), True)])
def test_readable_shows_a_named_index_and_hides_row_numbers(index, shown):
    html = tables.readable(pd.DataFrame({"value": [0.5, 0.25]}, index=index)).to_html()
    assert ("metric" in html or ">9<" in html) == shown


@pytest.mark.parametrize("args, shown", [((0.8123, 0.7412, 0.8741), "0.812 (0.741-0.874)"),
                                         ((0.8, np.nan, np.nan), "0.800"), ((np.nan, 0.1, 0.2), "–"), ((None,), "–")])
def test_estimate_ci_never_prints_nan(args, shown):
    assert tables.estimate_ci(*args) == shown


def test_by_class_lays_out_the_papers_table_3_per_cohort_and_class():
    rows = [("internal", "auc_class_0", 0.9, 0.8, 0.95), ("internal", "accuracy_class_0", 0.85, 0.8, 0.9),
            ("internal", "sensitivity_class_0", float("nan"), float("nan"), float("nan")),
            ("internal", "auc_class_1", 0.7, 0.6, 0.8), ("internal", "macro_auc", 0.8, 0.7, 0.9),
            ("internal", "accuracy", 0.6, 0.5, 0.7)]
    detail = pd.DataFrame(rows, columns=["cohort", "metric", "estimate", "ci_low", "ci_high"])
    out = tables.by_class(detail)
    assert list(out.index) == [("internal", "class 0"), ("internal", "class 1"), ("internal", "all classes")]
    assert list(out.columns) == ["AUC", "accuracy", "sensitivity", "specificity"]
    assert out.loc[("internal", "class 0"), "AUC"] == "0.900 (0.800-0.950)"
    assert out.loc[("internal", "class 0"), "sensitivity"] == tables.MISSING
    assert out.loc[("internal", "all classes"), "AUC"] == "0.800 (0.700-0.900)"
    assert out.loc[("internal", "all classes"), "specificity"] == tables.MISSING


def test_by_class_gives_one_row_per_cohort_for_a_binary_task():
    detail = pd.DataFrame([("external", "auc", 0.7, 0.6, 0.8), ("external", "sensitivity", 0.5, 0.4, 0.6)],
                          columns=["cohort", "metric", "estimate", "ci_low", "ci_high"])
    out = tables.by_class(detail)
    assert list(out.index) == [("external", "positive")]
    assert out.loc[("external", "positive"), "sensitivity"] == "0.500 (0.400-0.600)"
