"""ComBat harmonization of features across centers, as a scikit-learn transformer.

The statistics are neuroCombat's (Fortin et al. 2017/2018, after Johnson et al. 2007): its design
matrix, standardization, location/scale model, empirical-Bayes priors and adjustments. ovfkit adds what
a leakage-free pipeline needs around them:

* ``fit`` learns the batch estimates on the training rows only; ``transform`` applies them to new rows of
  the same centers, with each new row's own covariates (neuroCombat's ``neuroCombatFromTraining`` uses
  the training mean of the covariate effect instead).
* A center never seen in training (an external or prospective cohort) is handled by ``unseen``:

  - ``"error"`` (default): refuse, naming the center;
  - ``"reference"``: estimate that center's location and scale from its own rows (features and the
    non-label covariates only, never the outcome) relative to the training data, which serve as
    ComBat's reference batch and stay unchanged. This is what a new site does at deployment with a
    calibration batch of its own images; it is transductive, and the book says so where it is used.

* A center with a single sample, or a feature constant in the training data, gets a clear error
  (neuroCombat would divide by zero or silently replace the variance).

Batch labels and covariates are given per sample as pandas objects aligned on the feature table's
index (the vertebra ids), so that the transformer works on any subset of rows inside a Pipeline.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

REFERENCE = "__training_reference__"


def _lookup(values, index: pd.Index, what: str) -> pd.Series | pd.DataFrame:
    if not isinstance(values, (pd.Series, pd.DataFrame)):
        raise TypeError(f"{what} must be a pandas Series/DataFrame indexed like the features (vertebra ids)")
    missing = index.difference(values.index)
    if len(missing):
        raise ValueError(f"{what} has no entry for {len(missing)} row(s), e.g. {list(missing[:3])}; "
                         "index it by the same ids as the feature table")
    return values.loc[index]


def _covariate_design(cov: pd.DataFrame | None, categorical, continuous, levels: dict) -> np.ndarray:
    """Covariate columns of the ComBat design: one-hot categorical (first level dropped), continuous."""
    n = 0 if cov is None else len(cov)
    cols = []
    for c in categorical:
        vals = cov[c].astype(str).to_numpy()
        unknown = set(vals) - set(levels[c])
        if unknown:
            raise ValueError(f"covariate {c!r} has level(s) {sorted(unknown)} not seen in training")
        cols += [(vals == lev).astype(float) for lev in levels[c][1:]]
    for c in continuous:
        cols.append(cov[c].to_numpy(dtype=float))
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def neurocombat(data: np.ndarray, batch, covariates: pd.DataFrame | None = None, categorical=(), continuous=(),
                ref_batch=None, eb: bool = True, parametric: bool = True) -> dict:
    """Run neuroCombat's ComBat on ``data`` (samples x features), with a working reference batch.

    Equivalent to ``neuroCombat.neuroCombat(data.T, covars, ...)`` (tested), built from its own
    functions so that ``ref_batch`` works under NumPy 2 (neuroCombat 0.2.12 calls the removed
    ``np.int`` there).

    Returns
    -------
    dict with ``data`` (samples x features, harmonized), ``batches`` (levels), ``gamma_star`` and
    ``delta_star`` (batches x features), ``stand_mean`` and ``var_pooled`` (features,), ``beta_cov``
    (covariate coefficients, n_covariate_columns x features).
    """
    import importlib

    # The package re-exports the function under the submodule's name; fetch the module itself.
    ncm = importlib.import_module("neuroCombat.neuroCombat")

    batch = np.asarray(batch).astype(str)
    levels, codes = np.unique(batch, return_inverse=True)
    cov = pd.DataFrame(index=range(len(batch))) if covariates is None else covariates.reset_index(drop=True)
    table = pd.concat([pd.Series(codes, name="__batch__"), cov[list(categorical) + list(continuous)]], axis=1)
    y = np.array(table, dtype="object")
    cat_idx = [1 + i for i in range(len(categorical))]
    num_idx = [1 + len(categorical) + i for i in range(len(continuous))]
    ref_level = None if ref_batch is None else int(np.flatnonzero(levels == str(ref_batch))[0])
    _, counts = np.unique(codes, return_counts=True)
    dat = np.asarray(data, dtype=float).T.copy()
    with contextlib.redirect_stdout(io.StringIO()):
        design = ncm.make_design_matrix(y, 0, cat_idx, num_idx, ref_level)
        info = {"batch_levels": np.arange(len(levels)), "ref_level": ref_level, "n_batch": len(levels),
                "n_sample": len(batch), "sample_per_batch": counts.astype(int),
                "batch_info": [list(np.flatnonzero(codes == k)) for k in range(len(levels))], "design": design}
        s_data, stand_mean, var_pooled, mod_mean = ncm.standardize_across_features(dat, design, info)
        ls = ncm.fit_LS_model_and_find_priors(s_data, design, info, False)
        if not eb:
            gamma_star, delta_star = ncm.find_non_eb_adjustments(s_data, ls, info)
        elif parametric:
            gamma_star, delta_star = ncm.find_parametric_adjustments(s_data, ls, info, False)
        else:
            gamma_star, delta_star = ncm.find_non_parametric_adjustments(s_data, ls, info, False)
        out = ncm.adjust_data_final(s_data, design, gamma_star, delta_star, stand_mean, mod_mean, var_pooled,
                                    info, dat)
    beta = np.linalg.lstsq(design, dat.T, rcond=None)[0]
    return {"data": np.asarray(out).T, "batches": levels, "gamma_star": np.asarray(gamma_star),
            "delta_star": np.asarray(delta_star), "stand_mean": stand_mean[:, 0], "var_pooled": var_pooled[:, 0],
            "beta_cov": beta[len(levels):]}


class ComBat(TransformerMixin, BaseEstimator):
    """ComBat harmonization across centers, fitted on training rows only.

    Parameters
    ----------
    batch : Series
        Center of every sample, indexed like the feature tables that will be passed to fit/transform.
    covariates : DataFrame, optional
        Biological covariates to protect (for example age and sex), indexed the same way. Never the
        outcome: it is unknown for the rows being transformed.
    categorical, continuous : sequence of str
        Which columns of ``covariates`` are categorical or continuous.
    unseen : {"error", "reference"}
        What to do with a center absent from the training rows (module docstring).
    eb, parametric : bool
        Empirical-Bayes shrinkage across features, parametric or not (neuroCombat's options).

    Attributes
    ----------
    batches_ : ndarray of str
        Centers seen in training.
    estimates_ : dict or None
        neuroCombat's estimates when training holds two or more centers; None for a single center
        (nothing to harmonize between training rows, which then pass through unchanged).
    feature_names_in_ : ndarray of str
    """

    def __init__(self, batch=None, covariates=None, categorical=(), continuous=(), unseen="error", eb=True,
                 parametric=True):
        self.batch = batch
        self.covariates = covariates
        self.categorical = categorical
        self.continuous = continuous
        self.unseen = unseen
        self.eb = eb
        self.parametric = parametric

    def _check_X(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("ComBat needs a DataFrame indexed by sample id (use set_output(transform='pandas') "
                            "upstream in the Pipeline)")
        if not np.all(np.isfinite(X.to_numpy(dtype=float))):
            raise ValueError("features contain NaN or infinite values; impute or drop them before ComBat")
        return X

    def _cov(self, index):
        if self.covariates is None:
            return None
        return _lookup(self.covariates, index, "covariates")

    def fit(self, X, y=None):
        if self.unseen not in ("error", "reference"):
            raise ValueError(f"unseen={self.unseen!r} is not 'error' or 'reference'")
        if self.batch is None:
            raise ValueError("ComBat needs batch= (the center of every sample, a Series indexed like X)")
        X = self._check_X(X)
        batch = _lookup(self.batch, X.index, "batch").astype(str)
        counts = batch.value_counts()
        single = counts.index[counts < 2].tolist()
        if single:
            raise ValueError(f"center(s) {single} have a single sample in the training rows; ComBat needs at "
                             "least 2 per center (merge or drop them)")
        sd = X.std(axis=0, ddof=0).to_numpy()
        const = X.columns[sd <= 1e-12 * np.maximum(X.abs().max().to_numpy(), 1.0)].tolist()
        if const:
            raise ValueError(f"{len(const)} feature(s) are constant in the training rows, e.g. {const[:3]}; "
                             "drop them first (VarianceThreshold)")
        cov = self._cov(X.index)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.batches_ = np.array(sorted(counts.index))
        self.cov_levels_ = {c: sorted(cov[c].astype(str).unique()) for c in self.categorical} if cov is not None else {}
        self.reference_ = (X.to_numpy(dtype=float), cov)
        if len(self.batches_) >= 2:
            self.estimates_ = neurocombat(X.to_numpy(dtype=float), batch.to_numpy(), cov, self.categorical,
                                          self.continuous, eb=self.eb, parametric=self.parametric)
        else:
            self.estimates_ = None
        return self

    def _apply_seen(self, X: np.ndarray, batch: np.ndarray, cov) -> np.ndarray:
        est = self.estimates_
        if est is None:  # one training center: nothing to harmonize
            return X
        covd = _covariate_design(cov, self.categorical, self.continuous, self.cov_levels_)
        mod = covd @ est["beta_cov"] if covd.shape[1] else 0.0
        sd = np.sqrt(est["var_pooled"])
        z = (X - est["stand_mean"] - mod) / sd
        k = np.searchsorted(est["batches"], batch)
        z = (z - est["gamma_star"][k]) / np.sqrt(est["delta_star"][k])
        return z * sd + est["stand_mean"] + mod

    def transform(self, X):
        check_is_fitted(self, "batches_")
        X = self._check_X(X)
        if list(X.columns) != list(self.feature_names_in_):
            raise ValueError("X has other feature columns than at fit; pass the same features in the same order")
        batch = _lookup(self.batch, X.index, "batch").astype(str).to_numpy()
        cov = self._cov(X.index)
        out = np.empty(X.shape, dtype=float)
        values = X.to_numpy(dtype=float)
        seen = np.isin(batch, self.batches_)
        if seen.any():
            out[seen] = self._apply_seen(values[seen], batch[seen], None if cov is None else cov[seen])
        new = sorted(set(batch[~seen]))
        if new and self.unseen == "error":
            raise ValueError(f"center(s) {new} were not in the training rows; ComBat cannot adjust them "
                             "(use unseen='reference' to estimate them against the training data)")
        ref_x, ref_cov = self.reference_
        for center in new:
            rows = batch == center
            if rows.sum() < 2:
                raise ValueError(f"center {center!r} has a single sample; reference ComBat needs at least 2")
            data = np.vstack([ref_x, values[rows]])
            labels = np.array([REFERENCE] * len(ref_x) + [center] * int(rows.sum()))
            both = None if cov is None else pd.concat([ref_cov, cov[rows]], ignore_index=True)
            res = neurocombat(data, labels, both, self.categorical, self.continuous, ref_batch=REFERENCE,
                              eb=self.eb, parametric=self.parametric)
            out[rows] = res["data"][len(ref_x):]
        return pd.DataFrame(out, index=X.index, columns=X.columns)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "batches_")
        return np.asarray(self.feature_names_in_, dtype=object)


def center_effect(X: pd.DataFrame, batch: pd.Series, alpha: float = 0.05) -> pd.DataFrame:
    """Per-feature Kruskal-Wallis test of a difference between centers, Benjamini-Hochberg adjusted.

    Returns one row per feature: ``H``, ``p``, ``p_adj`` and ``significant`` (p_adj < alpha). Centers
    can also differ in case mix, so a significant feature is a center *or* case-mix difference.
    """
    from scipy.stats import kruskal
    from statsmodels.stats.multitest import multipletests

    b = _lookup(batch, X.index, "batch").astype(str).to_numpy()
    groups = [X.to_numpy(float)[b == c] for c in np.unique(b)]
    if len(groups) < 2:
        raise ValueError("center_effect needs at least two centers")
    h, p = kruskal(*groups, axis=0, nan_policy="omit")
    p = np.nan_to_num(p, nan=1.0)
    rej, p_adj, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    return pd.DataFrame({"H": h, "p": p, "p_adj": p_adj, "significant": rej}, index=X.columns)
