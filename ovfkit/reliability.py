"""Reliability of features between readers: intraclass correlation, vectorized over features.

The ICC forms follow Shrout and Fleiss (1979) and McGraw and Wong (1996), from the two-way ANOVA of an
``n`` subjects x ``k`` raters table (per feature):

=========  ======================================  =============================================
form       model                                   formula
=========  ======================================  =============================================
ICC(1,1)   one-way random                          (MSR - MSW) / (MSR + (k-1) MSW)
ICC(2,1)   two-way random, absolute agreement      (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
ICC(3,1)   two-way mixed, consistency              (MSR - MSE) / (MSR + (k-1) MSE)
ICC(1,k)   mean of k raters                        (MSR - MSW) / MSR
ICC(2,k)                                           (MSR - MSE) / (MSR + (MSC - MSE) / n)
ICC(3,k)                                           (MSR - MSE) / MSR
=========  ======================================  =============================================

Radiomics studies re-segment a subset of cases and keep features with ICC >= 0.8 (zhang2024, liu2025).
ovfkit defaults to ICC(2,1): a second reader should reproduce the value itself, not only the ranking
(Koo and Li, 2016).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


def icc(ratings) -> pd.DataFrame:
    """All six ICC forms for every feature at once.

    Parameters
    ----------
    ratings : array-like, shape (n_subjects, n_raters, n_features) or (n_subjects, n_raters)
        The same features measured by each rater (for radiomics: from each reader's mask).

    Returns
    -------
    DataFrame, shape (n_features, 6), columns :data:`ICC_FORMS`. A feature without variance between
    subjects gets NaN (its reliability is undefined).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"ratings must have shape (subjects, raters[, features]), got {x.shape}")
    n, k, _ = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 subjects and 2 raters, got {n} subjects and {k} raters")
    if not np.all(np.isfinite(x)):
        raise ValueError("ratings contain NaN or infinite values; drop those features or cases first")
    grand = x.mean(axis=(0, 1))
    subj = x.mean(axis=1)
    rater = x.mean(axis=0)
    ss_total = ((x - grand) ** 2).sum(axis=(0, 1))
    ss_rows = k * ((subj - grand) ** 2).sum(axis=0)
    ss_cols = n * ((rater - grand) ** 2).sum(axis=0)
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_total - ss_rows) / (n * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.column_stack([
            (msr - msw) / (msr + (k - 1) * msw),
            (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
            (msr - mse) / (msr + (k - 1) * mse),
            (msr - msw) / msr,
            (msr - mse) / (msr + (msc - mse) / n),
            (msr - mse) / msr,
        ])
    scale = np.maximum(np.abs(grand), 1.0)
    out[(msr <= 1e-24 * scale ** 2)] = np.nan  # no spread between subjects
    return pd.DataFrame(out, columns=list(ICC_FORMS))


def feature_icc(reader1: pd.DataFrame, reader2: pd.DataFrame, form: str = "ICC(2,1)") -> pd.Series:
    """ICC of every feature between two readers' feature tables (rows matched by index).

    Parameters
    ----------
    reader1, reader2 : DataFrame, shape (n_cases, n_features)
        Features from reader 1's and reader 2's masks; only cases and features present in both are used.
    form : one of :data:`ICC_FORMS`
    """
    if form not in ICC_FORMS:
        raise ValueError(f"form {form!r} is not one of {', '.join(ICC_FORMS)}")
    cases = reader1.index.intersection(reader2.index)
    feats = reader1.columns.intersection(reader2.columns)
    if len(cases) < 2:
        raise ValueError(f"only {len(cases)} case(s) have features from both readers; ICC needs at least 2")
    stack = np.stack([reader1.loc[cases, feats].to_numpy(float), reader2.loc[cases, feats].to_numpy(float)], axis=1)
    return pd.Series(icc(stack)[form].to_numpy(), index=feats, name=form)


def training_icc(reader1: pd.DataFrame, reader2: pd.DataFrame, cohort: pd.Series,
                 form: str = "ICC(2,1)") -> tuple[pd.Series, pd.Index, pd.Index]:
    """ICC of every feature on the **training** vertebrae that both readers outlined.

    The ICC filter is a selection step, so it is measured on training patients only: a held-out
    vertebra with a second reader's mask is left out (and returned, so that the page can say so).

    Parameters
    ----------
    reader1, reader2 : DataFrame, shape (n_cases, n_features)
        Features from reader 1's and reader 2's masks (index: vertebra id).
    cohort : Series
        Cohort of every vertebra (``train``, ``internal``, ...), indexed by vertebra id.
    form : one of :data:`ICC_FORMS`

    Returns
    -------
    icc : Series (feature -> ICC)
    used : Index of the training vertebra ids the ICC was measured on
    ignored : Index of held-out vertebra ids that had a second mask and were left out
    """
    both = reader1.index.intersection(reader2.index)
    is_train = cohort.reindex(both).to_numpy() == "train"
    used, ignored = both[is_train], both[~is_train]
    return feature_icc(reader1.loc[used], reader2.loc[used], form=form), used, ignored


class ICCFilter(TransformerMixin, BaseEstimator):
    """Keep the features whose inter-reader ICC reaches ``threshold``.

    The ICC is measured once, on the re-segmented cases (reader 1 vs reader 2 masks, no labels), and
    passed in; ``fit`` only checks the feature names and records which columns pass.

    Parameters
    ----------
    icc : Series or dict, feature name -> ICC
        From :func:`feature_icc`. Features absent from it, or with an undefined (NaN) ICC, are dropped.
        Fitted on an array (no column names), features are named as scikit-learn names them: x0, x1, ...
    threshold : float, default 0.8

    Attributes
    ----------
    support_ : ndarray of bool, shape (n_features_in_,)
    feature_names_in_ : ndarray of str
    """

    def __init__(self, icc=None, threshold: float = 0.8):
        self.icc = icc
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X, reset=True, ensure_all_finite="allow-nan")
        if self.icc is None:
            raise ValueError("ICCFilter needs icc= (feature name -> ICC), e.g. from reliability.feature_icc")
        names = getattr(self, "feature_names_in_", None)
        if names is None:  # an array has no names: scikit-learn's default names x0, x1, ...
            names = np.array([f"x{i}" for i in range(X.shape[1])], dtype=object)
        scores = pd.Series(self.icc, dtype=float).reindex(names)
        self.icc_ = scores.to_numpy()
        self.support_ = np.nan_to_num(self.icc_, nan=-np.inf) >= self.threshold
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a filter by name: missing values pass through untouched
        return tags

    def transform(self, X):
        check_is_fitted(self, "support_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return X[:, self.support_]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "support_")
        names = _check_feature_names_in(self, input_features)
        return np.asarray(names, dtype=object)[self.support_]
