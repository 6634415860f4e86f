"""Feature selection as scikit-learn transformers: correlation filter and LASSO.

The papers' cascade, each step fitted on the rows ``fit`` sees (the training fold):

1. variance filter (:class:`sklearn.feature_selection.VarianceThreshold`);
2. inter-reader reliability, ICC >= 0.8 (:class:`ovfkit.reliability.ICCFilter`);
3. ComBat (:class:`ovfkit.harmonize.ComBat`);
4. redundancy: Spearman |rho| > 0.9, greedy removal (:class:`CorrelationFilter`);
5. LASSO with the penalty chosen by cross-validation (:class:`LassoSelector`);
6. liu2025 only: a second correlation filter at 0.5 on the LASSO survivors (``CorrelationFilter(threshold=0.5)``).

Which LASSO the papers used: both describe a single penalty chosen by (10-fold) cross-validation and a
plot of every coefficient against lambda, and both call it "LASSO-Cox" although the outcome is a
three-class label, not a survival time. A single coefficient path means one response: the class code
regressed on the features. ovfkit's default, ``LassoSelector(method="lasso")``, is exactly that
(:class:`sklearn.linear_model.LassoCV` on the class code 0/1/2, which is ordinal in ASTLOF);
``method="multinomial"`` is the L1 multinomial logistic alternative (one coefficient vector per class,
a feature kept when any class uses it), slower and not what the papers show.

For a binary label (zhang2023's acute vs chronic) ``method="logistic"`` is the L1-penalized logistic
regression, the model for a 0/1 outcome. zhang2023 also writes "LASSO-Cox"; a Cox model is for a time to
an event with censoring, and acute vs chronic has neither a time nor censoring, so no Cox partial likelihood
can be written for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LassoCV, LogisticRegressionCV, lasso_path
from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.validation import check_is_fitted, validate_data


def _correlation(X: np.ndarray, method: str) -> np.ndarray:
    """|correlation| between columns; constant columns correlate with nothing (0)."""
    if method == "spearman":
        X = rankdata(X, axis=0)
    elif method != "pearson":
        raise ValueError(f"method={method!r} is not 'spearman' or 'pearson'")
    Z = X - X.mean(axis=0)
    norm = np.sqrt((Z ** 2).sum(axis=0))
    ok = norm > 0
    Z[:, ok] /= norm[ok]
    Z[:, ~ok] = 0.0
    R = np.abs(Z.T @ Z)
    np.fill_diagonal(R, 0.0)
    return np.clip(R, 0.0, 1.0)


def greedy_decorrelate(R: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy removal until no pair of kept features has ``R > threshold``; return the kept mask.

    Rule: drop the feature correlated above the threshold with the most other remaining features
    (ties: the larger mean |correlation| with all remaining features, then the later column), update
    the counts, repeat. Removing the most connected feature first keeps as many features as a greedy
    rule can while breaking every redundant pair; "which of a pair" is therefore decided by the rest
    of the table, not by column order (the papers' "greedy recursive elimination").
    """
    p = R.shape[0]
    keep = np.ones(p, dtype=bool)
    A = R > threshold
    degree = A.sum(axis=1).astype(float)
    strength = R.sum(axis=1)
    order = np.arange(p)
    while True:
        d = np.where(keep, degree, -1.0)
        top = d.max() if p else 0.0
        if top <= 0:
            return keep
        cand = np.flatnonzero(d == top)
        s = strength[cand]
        best = cand[s == s.max()]
        j = order[best].max()  # the later column among exact ties
        keep[j] = False
        degree -= A[:, j]
        strength -= R[:, j]


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Remove redundant features: no two kept features correlate above ``threshold``.

    Parameters
    ----------
    method : {"spearman", "pearson"}, default "spearman"
    threshold : float in (0, 1], default 0.9
        Absolute correlation above which two features are redundant (zhang2024: Spearman 0.9; liu2025
        applies 0.5 again after LASSO).

    Attributes
    ----------
    support_ : ndarray of bool, shape (n_features_in_,)
    n_features_in_, feature_names_in_

    Notes
    -----
    The greedy rule is :func:`greedy_decorrelate`: the feature redundant with the most others is dropped
    first, and so on until no redundant pair is left. Correlations are computed on the rows ``fit`` sees.
    """

    def __init__(self, method: str = "spearman", threshold: float = 0.9):
        self.method = method
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X, reset=True, dtype=np.float64)
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold={self.threshold!r} must be in (0, 1]")
        R = _correlation(X.copy(), self.method)
        self.support_ = greedy_decorrelate(R, self.threshold)
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class LassoSelector(SelectorMixin, BaseEstimator):
    """Keep the features with a non-zero LASSO coefficient, the penalty chosen by cross-validation.

    Features are z-scored on the rows ``fit`` sees before the LASSO (the penalty treats every feature
    alike); the selected columns are returned unscaled.

    Parameters
    ----------
    method : {"lasso", "multinomial", "logistic"}, default "lasso"
        ``"lasso"``: :class:`~sklearn.linear_model.LassoCV` on the class code (the papers' single
        coefficient path); ``"multinomial"``: L1 multinomial
        :class:`~sklearn.linear_model.LogisticRegressionCV` (saga), a feature kept if any class uses it;
        ``"logistic"`` (binary labels only): L1 logistic regression (liblinear), the penalty chosen by
        cross-validated log-loss, with the coefficient path refitted on all rows ``fit`` sees.
    cv : int, default 10
        Folds for choosing the penalty (the papers: 10).
    groups : Series, optional
        Patient of every row, indexed like the DataFrame passed to ``fit``; folds then keep a patient's
        vertebrae together (stratified by class). Without it, folds are stratified (multinomial) or
        plain shuffled K-fold (lasso).
    n_alphas : int, default 40
        Length of the penalty grid.
    eps : float, default 0.01
        Smallest penalty on the grid relative to the largest (the one that keeps no feature). The papers'
        penalties lie well inside 10^-2 of it; a cross-validated optimum at the end of the grid would show
        as a minimum at the left edge of the CV curve.
    min_features : int, default 1
        If the cross-validated penalty keeps fewer features, the largest penalty on the path that keeps
        this many is used instead (reported in ``alpha_``; ``alpha_cv_`` keeps the CV choice).
    random_state : int, default 0

    Attributes
    ----------
    alpha_ : float
        Penalty used (LASSO's lambda; for ``"multinomial"``, 1/C).
    alpha_cv_ : float
        Penalty with the best cross-validated score.
    alphas_ : ndarray, shape (n_alphas,)
    cv_score_ : ndarray, shape (n_alphas,)
        Mean cross-validated error (lasso: mean squared error; multinomial: minus the log-likelihood
        score sklearn reports, per sample) at each penalty.
    cv_score_std_ : ndarray, shape (n_alphas,)
    coef_path_ : ndarray, shape (n_features_in_, n_alphas)
        Coefficients along the path (lasso and logistic), for the coefficient-path figure.
    coef_ : ndarray, shape (n_features_in_,) or (n_classes, n_features_in_)
    support_ : ndarray of bool, shape (n_features_in_,)
    """

    def __init__(self, method: str = "lasso", cv: int = 10, groups=None, n_alphas: int = 40, eps: float = 0.01,
                 min_features: int = 1, random_state: int = 0):
        self.method = method
        self.cv = cv
        self.groups = groups
        self.n_alphas = n_alphas
        self.eps = eps
        self.min_features = min_features
        self.random_state = random_state

    def _folds(self, X_index, y):
        if self.groups is not None:
            if X_index is None:
                raise TypeError("LassoSelector(groups=...) looks patients up by row id: fit it on a DataFrame")
            from ovfkit.harmonize import _lookup

            g = _lookup(self.groups, X_index, "groups").to_numpy()
            splitter = StratifiedGroupKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
            return list(splitter.split(np.zeros(len(y)), y, g))
        if self.method == "multinomial":
            return list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state).split(
                np.zeros(len(y)), y))
        return list(KFold(self.cv, shuffle=True, random_state=self.random_state).split(np.zeros(len(y))))

    def fit(self, X, y):
        index = X.index if isinstance(X, pd.DataFrame) else None
        X, y = validate_data(self, X, y, reset=True, dtype=np.float64)
        if self.method not in ("lasso", "multinomial", "logistic"):
            raise ValueError(f"method={self.method!r} is not 'lasso', 'multinomial' or 'logistic'")
        if self.method == "logistic" and len(np.unique(y)) != 2:
            raise ValueError(f"method='logistic' needs a binary label, got classes {sorted(np.unique(y))}; "
                             "use method='lasso' or 'multinomial' for more classes")
        if not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise ValueError(f"cv={self.cv!r} must be an integer >= 2 (number of folds)")
        sd = X.std(axis=0)
        Z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        folds = self._folds(index, y)
        if self.method == "lasso":
            yc = np.asarray(y, dtype=float)
            model = LassoCV(alphas=self.n_alphas, eps=self.eps, cv=folds, max_iter=20000, tol=1e-4).fit(Z, yc)
            self.alphas_ = model.alphas_
            self.cv_score_ = model.mse_path_.mean(axis=1)
            self.cv_score_std_ = model.mse_path_.std(axis=1)
            self.alpha_cv_ = float(model.alpha_)
            _, path, _ = lasso_path(Z, yc - yc.mean(), alphas=self.alphas_, max_iter=20000, tol=1e-4)
            self.coef_path_ = path
            nonzero = (np.abs(path) > 0).sum(axis=0)
            k = int(np.flatnonzero(self.alphas_ == model.alpha_)[0])
            if nonzero[k] < self.min_features and (nonzero >= self.min_features).any():
                k = int(np.flatnonzero(nonzero >= self.min_features)[0])  # alphas_ are decreasing
            self.alpha_ = float(self.alphas_[k])
            self.coef_ = path[:, k]
            self.support_ = np.abs(self.coef_) > 0
        elif self.method == "logistic":
            self._fit_logistic(Z, y, folds)
        else:
            Cs = np.logspace(np.log10(self.eps) - 1, 1, self.n_alphas)
            model = LogisticRegressionCV(Cs=Cs, cv=folds, l1_ratios=(1.0,), solver="saga", scoring="neg_log_loss",
                                         max_iter=3000, tol=1e-3, random_state=self.random_state,
                                         use_legacy_attributes=False)
            model.fit(Z, y)
            scores = np.asarray(model.scores_, dtype=float).reshape(len(folds), len(Cs))  # (folds, Cs)
            self.alphas_ = 1.0 / Cs
            self.cv_score_ = -scores.mean(axis=0)
            self.cv_score_std_ = scores.std(axis=0)
            self.alpha_cv_ = self.alpha_ = float(1.0 / np.atleast_1d(model.C_)[0])
            self.coef_ = model.coef_
            self.coef_path_ = None
            self.support_ = (np.abs(np.atleast_2d(model.coef_)) > 0).any(axis=0)
        return self

    def _fit_logistic(self, Z, y, folds):
        """L1 logistic regression: penalty by cross-validated log-loss, path refitted on all rows."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import l1_min_c

        c_min = l1_min_c(Z, y, loss="log")  # below it no feature enters
        Cs = c_min * np.logspace(0, -np.log10(self.eps), self.n_alphas)
        common = dict(l1_ratio=1.0, solver="liblinear", max_iter=5000, tol=1e-6, random_state=self.random_state)
        losses = np.empty((len(folds), len(Cs)))
        for f, (tr, te) in enumerate(folds):
            for j, C in enumerate(Cs):
                m = LogisticRegression(C=C, **common).fit(Z[tr], y[tr])
                p = np.clip(m.predict_proba(Z[te])[:, 1], 1e-12, 1 - 1e-12)
                yt = y[te] == m.classes_[1]
                losses[f, j] = -np.mean(yt * np.log(p) + (~yt) * np.log(1 - p))
        path = np.column_stack([LogisticRegression(C=C, **common).fit(Z, y).coef_[0] for C in Cs])
        self.alphas_ = 1.0 / Cs
        self.cv_score_ = losses.mean(axis=0)
        self.cv_score_std_ = losses.std(axis=0)
        self.coef_path_ = path
        nonzero = (np.abs(path) > 0).sum(axis=0)
        k = int(np.argmin(self.cv_score_))
        self.alpha_cv_ = float(self.alphas_[k])
        if nonzero[k] < self.min_features and (nonzero >= self.min_features).any():
            k = int(np.flatnonzero(nonzero >= self.min_features)[0])  # alphas_ are decreasing
        self.alpha_ = float(self.alphas_[k])
        self.coef_ = path[:, k]
        self.support_ = np.abs(self.coef_) > 0

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class DeepPCA(TransformerMixin, BaseEstimator):
    """PCA of the deep columns (those whose name starts with ``prefix``), fitted on the rows ``fit`` sees;
    other columns pass through unchanged, first.

    Parameters
    ----------
    n_components : int or float
        As :class:`sklearn.decomposition.PCA` (a float keeps that share of variance).
    prefix : str
        Columns starting with it are the deep features.
    random_state : int

    Attributes
    ----------
    deep_mask_ : ndarray of bool, shape (n_features_in_,)
    pca_ : sklearn.decomposition.PCA
    """

    def __init__(self, n_components=0.95, prefix: str = "deep_", random_state: int = 0):
        self.n_components = n_components
        self.prefix = prefix
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, reset=True)
        names = np.asarray(getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])]), dtype=object)
        self.deep_mask_ = np.array([str(n).startswith(self.prefix) for n in names])
        if not self.deep_mask_.any():
            raise ValueError(f"no column starts with {self.prefix!r}; nothing for DeepPCA to reduce")
        self.pca_ = PCA(n_components=self.n_components, random_state=self.random_state).fit(X[:, self.deep_mask_])
        self.input_names_ = names
        return self

    def transform(self, X):
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return np.hstack([X[:, ~self.deep_mask_], self.pca_.transform(X[:, self.deep_mask_])])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "pca_")
        pcs = [f"{self.prefix}pc{i + 1:03d}" for i in range(self.pca_.n_components_)]
        return np.asarray(list(self.input_names_[~self.deep_mask_]) + pcs, dtype=object)
