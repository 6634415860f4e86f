"""Selection transformers: scikit-learn's estimator checks, the greedy rule, LASSO against LassoCV."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LassoCV
from sklearn.model_selection import KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from ovfkit.reliability import ICCFilter
from ovfkit.select import CorrelationFilter, LassoSelector, greedy_decorrelate

ICC_BY_DEFAULT_NAME = {f"x{i}": (0.5 if i % 3 == 2 else 0.9) for i in range(100)}


@parametrize_with_checks([CorrelationFilter(), CorrelationFilter(method="pearson", threshold=0.5),
                          LassoSelector(cv=3), ICCFilter(icc=ICC_BY_DEFAULT_NAME)])
def test_selectors_follow_scikit_learn_estimator_rules(estimator, check):
    check(estimator)


def _hub_and_spokes(n=200, seed=0):
    """A hub feature correlated with three spokes that are not correlated enough with each other."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 3))
    hub = s.sum(axis=1) + 0.1 * rng.normal(size=n)
    X = pd.DataFrame(np.column_stack([hub, s, rng.normal(size=n)]), columns=["hub", "s1", "s2", "s3", "other"])
    return X


def test_greedy_rule_drops_the_most_connected_feature_not_the_first_of_each_pair():
    X = _hub_and_spokes()
    f = CorrelationFilter(threshold=0.5).fit(X)
    assert list(f.get_feature_names_out()) == ["s1", "s2", "s3", "other"]


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9])
def test_no_kept_pair_exceeds_the_threshold_and_correlations_match_pandas(method, threshold):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(80, 4))
    X = pd.DataFrame(base @ rng.normal(size=(4, 25)) + 0.5 * rng.normal(size=(80, 25)),
                     columns=[f"f{i}" for i in range(25)])
    f = CorrelationFilter(method=method, threshold=threshold).fit(X)
    kept = X[f.get_feature_names_out()].corr(method=method).abs().to_numpy()
    np.fill_diagonal(kept, 0)
    assert kept.max() <= threshold
    # Every dropped feature was redundant with some feature when it was dropped: adding any back breaks the rule.
    corr = X.corr(method=method).abs()
    for name in X.columns.difference(f.get_feature_names_out()):
        assert (corr.loc[name].drop(name) > threshold).any()


def test_greedy_decorrelate_equals_a_brute_force_replay():
    rng = np.random.default_rng(5)
    R = np.abs(np.corrcoef(rng.normal(size=(30, 12)) @ rng.normal(size=(12, 18)), rowvar=False))
    np.fill_diagonal(R, 0)
    keep = list(range(18))
    while True:  # the documented rule, recomputed from scratch at every step
        deg = {j: sum(R[j, k] > 0.7 for k in keep if k != j) for j in keep}
        if max(deg.values()) == 0:
            break
        top = [j for j in keep if deg[j] == max(deg.values())]
        strength = {j: sum(R[j, k] for k in keep if k != j) for j in top}
        best = max(strength.values())
        keep.remove(max(j for j in top if strength[j] == best))
    assert np.flatnonzero(greedy_decorrelate(R, 0.7)).tolist() == keep


def _signal(n=240, p=30, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)],
                     index=[f"v{i}" for i in range(n)])
    score = 1.5 * X["f0"] - 1.0 * X["f1"] + 0.8 * X["f2"] + rng.normal(scale=0.8, size=n)
    y = np.digitize(score, np.quantile(score, [0.45, 0.88]))
    return X, y


def test_lasso_penalty_and_coefficients_equal_lassocv_on_standardized_features():
    X, y = _signal()
    sel = LassoSelector(cv=5, random_state=3).fit(X, y)
    Z = (X - X.mean()) / X.std(ddof=0)
    folds = list(KFold(5, shuffle=True, random_state=3).split(Z))
    ref = LassoCV(alphas=sel.alphas_, cv=folds, max_iter=20000).fit(Z, y.astype(float))
    assert sel.alpha_ == pytest.approx(ref.alpha_)
    np.testing.assert_allclose(sel.coef_, ref.coef_, atol=1e-4)
    assert {"f0", "f1", "f2"} <= set(sel.get_feature_names_out())


def test_lasso_cv_folds_keep_patients_together():
    X, y = _signal()
    groups = pd.Series(np.repeat(np.arange(len(X) // 2), 2), index=X.index)
    sel = LassoSelector(cv=4, groups=groups)
    folds = sel._folds(X.index, y)
    for train, test in folds:
        assert not set(groups.iloc[train]) & set(groups.iloc[test])
    with pytest.raises(TypeError, match="DataFrame"):
        sel.fit(X.to_numpy(), y)


def test_lasso_keeps_min_features_when_cv_picks_the_empty_model():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 10)), columns=[f"f{i}" for i in range(10)])
    y = rng.integers(0, 3, 60)  # pure noise: CV prefers no feature
    sel = LassoSelector(cv=3, min_features=2).fit(X, y)
    assert sel.support_.sum() >= 2 and sel.alpha_ <= sel.alpha_cv_


def test_multinomial_lasso_selects_the_signal():
    X, y = _signal(p=12)
    sel = LassoSelector(method="multinomial", cv=3, n_alphas=6).fit(X, y)
    assert {"f0", "f1"} <= set(sel.get_feature_names_out())
    assert sel.coef_.shape == (3, 12)


@pytest.mark.parametrize("bad, message", [({"method": "ridge"}, "method='ridge'"), ({"cv": 1}, "cv=1")])
def test_lasso_rejects_bad_settings_with_the_value(bad, message):
    X, y = _signal(n=60, p=5)
    with pytest.raises(ValueError, match=message):
        LassoSelector(**bad).fit(X, y)


def test_correlation_filter_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold=1.5"):
        CorrelationFilter(threshold=1.5).fit(np.eye(4))
