"""Reliability of features between and within readers: intraclass correlation, vectorized over features.

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
(Koo and Li, 2016). zhang2024 measures it twice (liu2025 reports the inter-observer ICC): between
readers (inter-observer: reader 1 vs reader 2) and within a reader (intra-observer: reader 1 vs reader
1's own outline in a later session, one month on in the papers). :func:`reader_icc` measures both when the repeat outlines exist and gives
the filter the smaller of the two, so that a kept feature is reproducible by both.
"""

from __future__ import annotations

from dataclasses import dataclass

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


#: The comparisons :func:`reader_icc` can measure, as named in its table's columns.
INTER, INTRA = "inter", "intra"
COMPARISONS = {INTER: ("inter-observer", "reader 1 vs reader 2"),
               INTRA: ("intra-observer", "reader 1 vs their own repeat outline in a later session")}


@dataclass(frozen=True)
class ReaderICC:
    """Per-feature ICC between readers and within reader 1, and the ICC the filter uses.

    Attributes
    ----------
    table : DataFrame, index feature, columns ``inter``, ``intra``, ``used``
        ``inter``: reader 1 vs reader 2; ``intra``: reader 1 vs reader 1's repeat outline (NaN for every
        feature when there is none); ``used``: what :class:`ICCFilter` gets, the smaller of the two when
        both were measured (NaN when either is undefined), else ``inter``.
    form : str
        The ICC form, one of :data:`ICC_FORMS`.
    comparisons : tuple of str
        What ``used`` is made of: ``("inter", "intra")``, or ``("inter",)`` when the manifest has no
        repeat outline (``mask_reader1_repeat``).
    rows : dict, comparison -> Index
        The training vertebra ids each comparison was measured on.
    ignored : dict, comparison -> Index
        Held-out vertebra ids outlined twice and left out of each comparison.
    """

    table: pd.DataFrame
    form: str
    comparisons: tuple
    rows: dict
    ignored: dict

    @property
    def used(self) -> pd.Series:
        """The ICC the filter uses (feature -> ICC), named after the form as :func:`feature_icc` names it."""
        return self.table["used"].rename(self.form).rename_axis(None)

    def statement(self, threshold: float) -> str:
        """One Markdown sentence: which comparisons the filter used, on how many vertebrae, and what each keeps.

        Parameters
        ----------
        threshold : float
            The filter's threshold (``settings.fusion.icc_threshold``).
        """
        def kept(col):
            return int((self.table[col] >= threshold).sum())

        def detail(c):
            return (f"{COMPARISONS[c][1]}, {len(self.rows[c])} training vertebrae; {kept(c)} of "
                    f"{int(self.table[c].notna().sum())} features reach {threshold:g}")

        ignored = sorted(set().union(*(set(self.ignored[c]) for c in self.comparisons)))
        tail = (f" Held-out vertebrae outlined twice and left out: {', '.join(ignored)}." if ignored else
                " No held-out vertebra was outlined twice.")
        if self.comparisons == (INTER,):
            return (f"**The ICC filter uses the inter-observer {self.form} alone** ({detail(INTER)}): the manifest "
                    "has no repeat outline of reader 1 (`mask_reader1_repeat`), so the intra-observer ICC was not "
                    "measured." + tail)
        return (f"**The ICC filter keeps a feature when both its {self.form} reach {threshold:g}** (it uses the "
                f"smaller of the two; {kept('used')} features pass): "
                + "; ".join(f"{COMPARISONS[c][0]} ({detail(c)})" for c in self.comparisons) + "." + tail)


def reader_icc(reader1: pd.DataFrame, reader2: pd.DataFrame, cohort: pd.Series, repeat: pd.DataFrame | None = None,
               form: str = "ICC(2,1)") -> ReaderICC:
    """Inter-observer and, when reader 1 outlined vertebrae twice, intra-observer ICC on training vertebrae.

    Each comparison is measured like :func:`training_icc`: on the training vertebrae outlined twice,
    held-out ones left out. The ICC the filter uses is their per-feature minimum (a feature must be
    reproducible both by another reader and by the same reader later); without repeat outlines it
    falls back to the inter-observer ICC, and :attr:`ReaderICC.comparisons` says so.

    Parameters
    ----------
    reader1, reader2 : DataFrame, shape (n_cases, n_features)
        Features from reader 1's and reader 2's masks (index: vertebra id).
    cohort : Series
        Cohort of every vertebra (``train``, ``internal``, ...), indexed by vertebra id.
    repeat : DataFrame, optional
        Features from reader 1's repeat masks (``mask_reader1_repeat``); None when the manifest has none.
    form : one of :data:`ICC_FORMS`

    Returns
    -------
    ReaderICC

    Raises
    ------
    ValueError
        If ``form`` is unknown, or fewer than 2 training vertebrae have features from both outlines of a
        comparison.
    """
    if form not in ICC_FORMS:
        raise ValueError(f"form {form!r} is not one of {', '.join(ICC_FORMS)}")
    others = {INTER: (reader2, "reader 2's masks (mask_reader2)", "outline at least 2 training vertebrae by "
                      "a second reader")}
    if repeat is not None:
        others[INTRA] = (repeat, "reader 1's repeat masks (mask_reader1_repeat)", "outline at least 2 training "
                         "vertebrae twice by reader 1, or leave mask_reader1_repeat empty to use the inter-observer "
                         "ICC alone")
    values, rows, ignored = {}, {}, {}
    for name, (other, what, remedy) in others.items():
        both = reader1.index.intersection(other.index)
        n_train = int((cohort.reindex(both).to_numpy() == "train").sum())
        if n_train < 2:
            raise ValueError(f"only {n_train} training vertebra(e) have features from both reader 1's masks and "
                             f"{what}; the {name}-observer ICC needs at least 2: {remedy}")
        values[name], rows[name], ignored[name] = training_icc(reader1, other, cohort, form=form)
    features = values[INTER].index  # in reader 1's column order, then any feature only the repeat has
    if INTRA in values:
        features = features.append(values[INTRA].index.difference(features, sort=False))
    table = pd.DataFrame({c: values[c].reindex(features) if c in values else np.nan for c in (INTER, INTRA)},
                         index=features, dtype=float)
    table["used"] = table[list(others)].min(axis=1, skipna=False)
    table = table.rename_axis("feature")  # a new index: the callers' column index may be the same object
    return ReaderICC(table, form, tuple(others), rows, ignored)


class ICCFilter(TransformerMixin, BaseEstimator):
    """Keep the features whose reader ICC reaches ``threshold``.

    The ICC is measured once, on the re-segmented cases (reader 1 vs reader 2 masks, and reader 1 vs
    reader 1's repeat masks when drawn; no labels; see :func:`reader_icc`), and passed in; ``fit`` only
    checks the feature names and records which columns pass.

    Parameters
    ----------
    icc : Series or dict, feature name -> ICC
        From :func:`reader_icc` (``.used``) or :func:`feature_icc`. Features absent from it, or with an
        undefined (NaN) ICC, are dropped.
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
