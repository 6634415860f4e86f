"""Multi-reader multi-case (MRMC) ROC analysis, and a simulation of readers with and without a model.

Reader studies compare diagnostic tests (for example reading unaided vs aided by a model) when several
readers each rate the same cases under every test. Two sources of variation then matter: the cases
(another sample of patients gives other AUCs) and the readers (other radiologists read differently).
A paired t-test over the per-reader AUCs treats the cases as fixed; a DeLong test on one reader treats
the readers as fixed. The Obuchowski-Rockette (OR) model handles both.

Obuchowski-Rockette model (Obuchowski and Rockette, 1995)
---------------------------------------------------------
The figure of merit ``theta_ij`` of test ``i`` (of ``t``) and reader ``j`` (of ``r``), here the
empirical (trapezoidal, Mann-Whitney) ROC AUC, is modelled as a two-way ANOVA with test x reader
interaction whose errors are correlated because the readers share the cases. The error covariance has
four parameters, estimated from the ``(t r) x (t r)`` covariance matrix of the AUC estimates over
random case samples:

* ``Var``: mean of the diagonal;
* ``Cov1``: mean covariance of two AUCs of the same reader in different tests;
* ``Cov2``: of different readers in the same test;
* ``Cov3``: of different readers in different tests.

That matrix comes from the delete-one-case jackknife over all cases,
``(n - 1) / n * sum_k (theta_(k) - mean)(theta_(k) - mean)^T`` (``cov="jackknife"``), or from
DeLong's structural components, ``S10 / m + S01 / n`` for ``m`` diseased and ``n`` non-diseased
cases, computed jointly for all AUCs (``cov="delong"``; DeLong, DeLong and Clarke-Pearson, 1988).

With the ANOVA mean squares ``MS(T)``, ``MS(R)`` and ``MS(T*R)`` of the ``t x r`` AUC table:

Random readers and random cases (Hillis, 2007; Hillis, Berbaum and Metz, 2008)
    ``F = MS(T) / D`` with ``D = MS(T*R) + r * max(Cov2 - Cov3, 0)``, ``df1 = t - 1`` and Hillis'
    denominator degrees of freedom ``ddf_H = D^2 / {MS(T*R)^2 / [(t - 1)(r - 1)]}``. A difference of
    two test means has standard error ``sqrt(2 D / r)`` and a t interval on ``ddf_H`` degrees of
    freedom. The mean AUC of one test (from that test's data only) has standard error
    ``sqrt(MS(R)_i / r + max(Cov2_i, 0))`` on
    ``(MS(R)_i + r max(Cov2_i, 0))^2 / [MS(R)_i^2 / (r - 1)]`` degrees of freedom.
Fixed readers and random cases
    ``X2 = (t - 1) MS(T) / D`` with ``D = Var - Cov1 + (r - 1)(Cov2 - Cov3)``, referred to a
    chi-square on ``t - 1`` degrees of freedom (``df2`` is infinite); differences have standard error
    ``sqrt(2 D / r)`` and normal intervals; one test's mean has standard error
    ``sqrt((Var_i + (r - 1) max(Cov2_i, 0)) / r)``. As in MRMCaov and RJafroc, ``Cov2 - Cov3`` is not
    truncated at 0 here (it is for random readers).

All formulas follow the R package MRMCaov (Smith, Hillis and Pesce, 2023; ``R/summary.R``,
``R/mrmc_tests.R``, ``R/jackknife.R``, ``R/DeLong.R``), including its truncation of AUC confidence
limits to [0, 1]; :func:`or_mrmc` reproduces its output for the Van Dyke et al. (1993) cine vs
spin-echo MRI study (``tests/fixtures/readers``).

The second half of the module simulates readers (:class:`ReaderModel`, :func:`simulate_readers`)
for the book's reader-study chapter, and gives the per-reader summaries that published studies
report (:func:`reader_accuracy`, :func:`mcnemar_vs_model`, :func:`paired_t_test`).

References
----------
Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple readers and
multiple tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 24:285-308.

Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer ROC
analysis. Stat Med 26:596-619.

Hillis SL, Berbaum KS, Metz CE (2008). Recent developments in the Dorfman-Berbaum-Metz procedure for
multireader ROC study analysis. Acad Radiol 15:647-661.

Smith BJ, Hillis SL, Pesce LL (2023). MRMCaov: Multi-Reader Multi-Case Analysis of Variance.
R package version 0.3.0.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

COV_METHODS = ("jackknife", "delong")
READER_FACTORS = ("random", "fixed")
TESTS_SIMULATED = ("unaided", "aided")


# --------------------------------------------------------------------------------------------------
# AUCs and their covariance across cases
# --------------------------------------------------------------------------------------------------

def _structural_components(y: np.ndarray, scores: np.ndarray):
    """AUCs and DeLong's structural components of ``scores`` (k, n_cases) against 0/1 ``y``.

    ``v10[:, i]`` is the share of non-diseased cases that diseased case ``i`` outranks (ties count
    one half), ``v01[:, j]`` the share of diseased cases that outrank non-diseased case ``j``; both
    come from mid-ranks (Sun and Xu, 2014).
    """
    pos = y == 1
    x, z = scores[:, pos], scores[:, ~pos]
    m, n = x.shape[1], z.shape[1]
    ranks = sps.rankdata(np.hstack([x, z]), axis=1)
    v10 = (ranks[:, :m] - sps.rankdata(x, axis=1)) / n
    v01 = 1.0 - (ranks[:, m:] - sps.rankdata(z, axis=1)) / m
    return v10.mean(axis=1), v10, v01


def auc_covariance(y, scores, method: str = "jackknife"):
    """Empirical AUCs of several ratings of the same cases, and their covariance across cases.

    Parameters
    ----------
    y : array-like, shape (n_cases,)
        Truth, 1 = diseased, 0 = not; at least 2 cases of each.
    scores : array-like, shape (k, n_cases)
        One row per rating (e.g. per test x reader); higher = more likely diseased.
    method : {"jackknife", "delong"}
        ``"jackknife"``: delete-one-case jackknife over all cases, ``(n - 1) / n`` times the sum of
        cross-products of the leave-one-out AUCs about their mean. ``"delong"``: DeLong's structural
        components, ``cov(V10) / m + cov(V01) / n``.

    Returns
    -------
    auc : ndarray, shape (k,)
    cov : ndarray, shape (k, k)
    """
    if method not in COV_METHODS:
        raise ValueError(f"cov={method!r} is not a covariance method; use one of {COV_METHODS}")
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != len(y):
        raise ValueError(f"scores have {scores.shape[1]} cases but y has {len(y)}; pass one column per case")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y must hold 0/1 (1 = diseased), got {np.unique(y)[:5].tolist()}; recode it")
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m < 2 or n < 2:
        raise ValueError(f"the AUC covariance needs at least 2 diseased and 2 non-diseased cases, got {m} and {n}")
    auc, v10, v01 = _structural_components(y, scores)
    if method == "delong":
        return auc, np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    # Deleting diseased case i removes its n kernel values: AUC_(i) = (m AUC - V10_i) / (m - 1).
    loo = np.hstack([(m * auc[:, None] - v10) / (m - 1), (n * auc[:, None] - v01) / (n - 1)])
    dev = loo - loo.mean(axis=1, keepdims=True)
    return auc, (m + n - 1) / (m + n) * dev @ dev.T


# --------------------------------------------------------------------------------------------------
# Obuchowski-Rockette analysis
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MRMCResult:
    """Result of :func:`or_mrmc`.

    Attributes
    ----------
    statistic : float
        ``F`` (random readers) or chi-square ``X2`` (fixed readers) of the global test of equal test
        means; :attr:`statistic_name` says which.
    df1, df2 : float
        Degrees of freedom; ``df2`` is Hillis' ``ddf_H`` for random readers, ``inf`` for fixed ones.
    p : float
        p-value of the global test.
    differences : DataFrame, shape (t (t - 1) / 2, 6)
        Index ``comparison`` ("A - B": first minus second test, tests in sorted order); columns
        ``estimate, se, df, ci_low, ci_high, p``.
    test_aucs : DataFrame, shape (t, 5)
        Mean AUC of each test over readers from that test's data only, indexed by test (index named
        like the test column); columns ``estimate, se, df, ci_low, ci_high`` (limits truncated to
        [0, 1]).
    reader_aucs : DataFrame, shape (t r, 6)
        Columns ``<test>, <reader>`` (named like the input columns), ``auc, se, ci_low, ci_high``;
        ``se`` is the square root of the AUC's own variance (diagonal of :attr:`cov_matrix`), the
        interval normal and truncated to [0, 1].
    cov_params : dict
        OR error variance and covariances: ``var, cov1, cov2, cov3``.
    mean_squares : dict
        ``ms_t, ms_r, ms_tr`` of the two-way ANOVA of the AUC table.
    cov_matrix : DataFrame, shape (t r, t r)
        Covariance of the AUC estimates, rows and columns indexed by (test, reader).
    readers : {"random", "fixed"}
    cov : {"jackknife", "delong"}
    alpha : float
        1 - confidence level of the intervals.
    """

    statistic: float
    df1: float
    df2: float
    p: float
    differences: pd.DataFrame
    test_aucs: pd.DataFrame
    reader_aucs: pd.DataFrame
    cov_params: dict
    mean_squares: dict
    cov_matrix: pd.DataFrame
    readers: str
    cov: str
    alpha: float

    @property
    def statistic_name(self) -> str:
        """``"F"`` for random readers, ``"X2"`` (chi-square) for fixed readers."""
        return "F" if self.readers == "random" else "X2"


def _show(value) -> str:
    """``repr`` of an id as the user wrote it (``1``, not ``np.int64(1)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _crossed_table(data, test, reader, case, truth, rating):
    """Validated (tests, readers, cases, truth (n_cases,), ratings (t, r, n_cases)) of a long table."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame in long form, got {type(data).__name__}")
    names = {"test": test, "reader": reader, "case": case, "truth": truth, "rating": rating}
    missing = [f"{key}={col!r}" for key, col in names.items() if col not in data.columns]
    if missing:
        raise ValueError(f"data has no column for {', '.join(missing)}; rename the columns or pass their names "
                         f"as keywords (columns present: {list(data.columns)[:10]})")
    for col in (test, reader, case):
        if data[col].isna().any():
            raise ValueError(f"column {col!r} has {int(data[col].isna().sum())} missing ids; "
                             "fill or drop those rows")
    y = data[truth]
    if y.isna().any() or not y.isin((0, 1)).all():
        raise ValueError(f"truth column {truth!r} must hold 0/1 (1 = diseased), got values "
                         f"{sorted(map(str, y.unique()))[:5]}; recode it to 0/1")
    n_truths = data.groupby(case, sort=False)[truth].nunique()
    if (n_truths > 1).any():
        bad = n_truths[n_truths > 1]
        raise ValueError(f"case {_show(bad.index[0])} has both truth values across its rows "
                         f"({len(bad)} such cases); a case's truth must be the same for every test and reader")
    dup = data.duplicated([test, reader, case], keep=False)
    if dup.any():
        row = data.loc[dup].iloc[0]
        raise ValueError(f"{int(dup.sum())} rows repeat a test x reader x case (e.g. test={_show(row[test])}, "
                         f"reader={_show(row[reader])}, case={_show(row[case])}); "
                         "keep one rating per test, reader and case")
    tests = pd.Index(data[test].unique()).sort_values()
    readers = pd.Index(data[reader].unique()).sort_values()
    if len(tests) < 2:
        raise ValueError(f"column {test!r} has {len(tests)} test(s) {tests.tolist()}; the OR analysis compares "
                         "at least 2 tests (for one test use ovfkit.stats.auc_ci)")
    if len(readers) < 2:
        raise ValueError(f"column {reader!r} has {len(readers)} reader(s) {readers.tolist()}; the OR analysis "
                         "needs at least 2 readers (for one reader use ovfkit.stats.delong_test)")
    values = pd.to_numeric(data[rating], errors="coerce")
    if values.isna().any():
        row = data.loc[values.isna()].iloc[0]
        raise ValueError(f"rating column {rating!r} has {int(values.isna().sum())} missing or non-numeric values "
                         f"(e.g. test={_show(row[test])}, reader={_show(row[reader])}, case={_show(row[case])}); "
                         "every test x reader x case needs a numeric rating")
    cases = pd.Index(data[case].unique()).sort_values()
    table = np.full((len(tests), len(readers), len(cases)), np.nan)
    table[tests.get_indexer(data[test]), readers.get_indexer(data[reader]), cases.get_indexer(data[case])] = values
    holes = np.isnan(table)
    if holes.any():
        i, j, k = (int(a[0]) for a in np.nonzero(holes))
        raise ValueError(f"{int(holes.sum())} test x reader x case combinations have no row "
                         f"(e.g. test={_show(tests[i])}, reader={_show(readers[j])}, case={_show(cases[k])}); "
                         "the OR analysis needs a fully crossed design (each reader rates each case in each test)")
    y = data.groupby(case)[truth].first().reindex(cases).to_numpy().astype(int)
    m, n = int(y.sum()), int((1 - y).sum())
    if m < 2 or n < 2:
        raise ValueError(f"truth column {truth!r} has {m} diseased and {n} non-diseased cases; the AUC covariance "
                         "needs at least 2 of each")
    return tests, readers, cases, y, table


def _or_parameters(cov: np.ndarray, t: int, r: int) -> dict:
    """``var, cov1, cov2, cov3`` of a (t r) x (t r) covariance ordered test-major (test, then reader)."""
    test_of = np.repeat(np.arange(t), r)
    reader_of = np.tile(np.arange(r), t)
    same_test = test_of[:, None] == test_of[None, :]
    same_reader = reader_of[:, None] == reader_of[None, :]
    return {"var": float(np.mean(np.diag(cov))),
            "cov1": float(cov[~same_test & same_reader].mean()),
            "cov2": float(cov[same_test & ~same_reader].mean()),
            "cov3": float(cov[~same_test & ~same_reader].mean())}


def _mean_squares(auc: np.ndarray) -> dict:
    """``ms_t, ms_r, ms_tr`` of the two-way ANOVA (no replication) of a t x r AUC table."""
    t, r = auc.shape
    grand, by_test, by_reader = auc.mean(), auc.mean(axis=1), auc.mean(axis=0)
    resid = auc - by_test[:, None] - by_reader[None, :] + grand
    return {"ms_t": float(r * np.sum((by_test - grand) ** 2) / (t - 1)),
            "ms_r": float(t * np.sum((by_reader - grand) ** 2) / (r - 1)),
            "ms_tr": float(np.sum(resid ** 2) / ((t - 1) * (r - 1)))}


def _hillis_df(denominator: float, ms: float, df_ms: float) -> float:
    """Satterthwaite-type ``denominator^2 / (ms^2 / df_ms)``; infinite when ``ms`` is 0."""
    return math.inf if ms == 0 else denominator ** 2 / (ms ** 2 / df_ms)


def _intervals(estimate, se, df, alpha: float, unit: bool):
    """Two-sided t (normal where df is infinite) intervals and p-values; AUC limits clipped to [0, 1]."""
    estimate, se, df = (np.asarray(a, dtype=float) for a in (estimate, se, df))
    q = sps.t.ppf(1 - alpha / 2, df)
    low, high = estimate - q * se, estimate + q * se
    if unit:
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * sps.t.sf(np.abs(estimate / se), df)
    return low, high, p


def or_mrmc(data: pd.DataFrame, *, test: str = "test", reader: str = "reader", case: str = "case",
            truth: str = "truth", rating: str = "rating", cov: str = "jackknife", readers: str = "random",
            alpha: float = 0.05) -> MRMCResult:
    """Obuchowski-Rockette MRMC comparison of the empirical ROC AUCs of several tests.

    Parameters
    ----------
    data : DataFrame, shape (t r n_cases, >= 5)
        Long table, one row per test x reader x case of a fully crossed design.
    test, reader, case, truth, rating : str
        Column names. ``truth`` is 0/1 (1 = diseased); a higher ``rating`` means more likely diseased.
    cov : {"jackknife", "delong"}
        How the covariance of the AUC estimates across cases is estimated (see :func:`auc_covariance`).
    readers : {"random", "fixed"}
        ``"random"``: generalise to other readers and cases (F test on Hillis' degrees of freedom).
        ``"fixed"``: to other cases read by these readers (chi-square test). Cases are always random.
    alpha : float
        Intervals are at level ``1 - alpha``.

    Returns
    -------
    MRMCResult
        Global test, pairwise differences, per-test and per-reader AUCs, OR parameters.

    Raises
    ------
    ValueError
        For a missing column, truth not 0/1 or not constant within a case, duplicate or missing
        test x reader x case rows, fewer than 2 tests or readers, missing ratings, an unknown ``cov``
        or ``readers``, or a global test whose denominator is not positive.
    """
    if cov not in COV_METHODS:
        raise ValueError(f"cov={cov!r} is not a covariance method; use one of {COV_METHODS}")
    if readers not in READER_FACTORS:
        raise ValueError(f"readers={readers!r} is not a reader factor type; use one of {READER_FACTORS}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must lie strictly between 0 and 1, e.g. 0.05 for 95% intervals")
    tests, reader_ids, _, y, table = _crossed_table(data, test, reader, case, truth, rating)
    t, r = len(tests), len(reader_ids)
    auc_flat, cov_mat = auc_covariance(y, table.reshape(t * r, -1), cov)
    auc = auc_flat.reshape(t, r)
    params = _or_parameters(cov_mat, t, r)
    ms = _mean_squares(auc)
    random = readers == "random"
    df1 = float(t - 1)
    if random:
        denominator = ms["ms_tr"] + r * max(params["cov2"] - params["cov3"], 0.0)
        df2 = _hillis_df(denominator, ms["ms_tr"], (t - 1) * (r - 1))
    else:
        denominator = params["var"] - params["cov1"] + (r - 1) * (params["cov2"] - params["cov3"])
        df2 = math.inf
    if not denominator > 0:
        raise ValueError(f"the OR denominator is {denominator:.3g}, not positive (AUCs that hardly vary across "
                         "cases, or Cov3 well above Cov2), so the test is undefined; add cases or readers")
    if random:
        statistic = ms["ms_t"] / denominator
        p = float(sps.f.sf(statistic, df1, df2) if math.isfinite(df2) else sps.chi2.sf(df1 * statistic, df1))
    else:
        statistic = df1 * ms["ms_t"] / denominator
        p = float(sps.chi2.sf(statistic, df1))

    pairs = [(i, j) for i in range(t) for j in range(i + 1, t)]
    means = auc.mean(axis=1)
    estimate = np.array([means[i] - means[j] for i, j in pairs])
    se = np.full(len(pairs), math.sqrt(2.0 * denominator / r))
    low, high, p_diff = _intervals(estimate, se, df2, alpha, unit=False)
    differences = pd.DataFrame(
        {"estimate": estimate, "se": se, "df": df2, "ci_low": low, "ci_high": high, "p": p_diff},
        index=pd.Index([f"{tests[i]} - {tests[j]}" for i, j in pairs], name="comparison"))

    blocks = [cov_mat[i * r:(i + 1) * r, i * r:(i + 1) * r] for i in range(t)]
    cov2_pos = np.maximum([(b.sum() - np.trace(b)) / (r * (r - 1)) for b in blocks], 0.0)  # Cov2 of test i alone
    if random:
        ms_r = auc.var(axis=1, ddof=1)
        test_se = np.sqrt(ms_r / r + cov2_pos)
        test_df = np.array([_hillis_df(ms_r[i] + r * cov2_pos[i], ms_r[i], r - 1) for i in range(t)])
    else:
        var_i = np.diag(cov_mat).reshape(t, r).mean(axis=1)
        test_se = np.sqrt((var_i + (r - 1) * cov2_pos) / r)
        test_df = np.full(t, math.inf)
    low, high, _ = _intervals(means, test_se, test_df, alpha, unit=True)
    test_aucs = pd.DataFrame({"estimate": means, "se": test_se, "df": test_df, "ci_low": low, "ci_high": high},
                             index=pd.Index(tests, name=test))

    reader_se = np.sqrt(np.diag(cov_mat))
    low, high, _ = _intervals(auc_flat, reader_se, math.inf, alpha, unit=True)
    reader_aucs = pd.DataFrame({test: np.repeat(tests, r), reader: np.tile(reader_ids, t), "auc": auc_flat,
                                "se": reader_se, "ci_low": low, "ci_high": high})
    index = pd.MultiIndex.from_product([tests, reader_ids], names=[test, reader])
    return MRMCResult(statistic=float(statistic), df1=df1, df2=float(df2), p=p, differences=differences,
                      test_aucs=test_aucs, reader_aucs=reader_aucs, cov_params=params, mean_squares=ms,
                      cov_matrix=pd.DataFrame(cov_mat, index=index, columns=index), readers=readers, cov=cov,
                      alpha=alpha)


# --------------------------------------------------------------------------------------------------
# Reader simulation
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReaderModel:
    """Parameters of the simulated readers of :func:`simulate_readers` (a simulation, not a fitted model).

    Each reader ``j`` has a detectability ``d'_j = d0 + d1 * log1p(years_j)``: skill grows with
    experience, with diminishing returns. For case ``c`` with truth ``y_c`` and visibility ``v_c`` the
    reader's latent evidence in one reading is

    ``L = d'_j * v_c * (2 y_c - 1) / 2 + e_c + u_jc + w_jcs``

    with ``e_c ~ N(0, case_sd^2)`` shared by all readers and readings (a hard case is hard for
    everyone), ``u_jc ~ N(0, reader_sd^2)`` the reader's own perception of that case, shared by the
    reader's unaided and aided readings, and ``w_jcs ~ N(0, read_sd^2)`` fresh in every reading. With
    the defaults the noise variance is close to 1, so ``d' * v`` is roughly the usual d'.

    The aided reading moves the latent evidence toward the model:
    ``L_aided = (1 - a_j) L + a_j * logit_scale * logit(p_c)``, with ``a_j`` the reader's reliance
    (0 = ignores the model, 1 = copies it) and ``p_c`` the model's probability.

    Ratings ``1..scale`` cut the latent evidence at ``scale - 1`` thresholds evenly spaced over
    ``[-threshold_span, threshold_span]``, all shifted by the reader's bias ``b_j ~ N(0, bias_sd^2)``
    (a positive bias makes a reader more conservative).

    Attributes
    ----------
    d0 : float
        d' of a reader with no experience (at full visibility).
    d1 : float
        Gain in d' per unit of ``log1p(years)``.
    case_sd, reader_sd, read_sd : float
        Standard deviations of the case, reader-by-case and reading noise (see above).
    bias_sd : float
        Standard deviation of the readers' threshold shifts.
    threshold_span : float
        Half-width of the span of the rating thresholds on the latent scale.
    reliance : float
        Default reliance on the model, for readers without a ``reliance`` column, in [0, 1].
    logit_scale : float
        Latent units per unit of the model's logit.
    """

    d0: float = 1.0
    d1: float = 0.6
    case_sd: float = 0.6
    reader_sd: float = 0.6
    read_sd: float = 0.5
    bias_sd: float = 0.3
    threshold_span: float = 1.5
    reliance: float = 0.5
    logit_scale: float = 0.5

    def __post_init__(self):
        for name in ("case_sd", "reader_sd", "read_sd", "bias_sd", "logit_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ReaderModel.{name}={getattr(self, name)!r} must be >= 0")
        if not self.threshold_span > 0:
            raise ValueError(f"ReaderModel.threshold_span={self.threshold_span!r} must be > 0")
        if not 0 <= self.reliance <= 1:
            raise ValueError(f"ReaderModel.reliance={self.reliance!r} must lie in [0, 1]")


def _stable_id(value) -> int:
    """A seed component of an id that is the same in every Python process (``hash`` is salted)."""
    return zlib.crc32(str(value).encode("utf-8"))


def _check_columns(frame, name: str, required: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; it needs {list(required)}")
    key = required[0]
    if frame[key].duplicated().any():
        raise ValueError(f"{name} repeats {key} {_show(frame.loc[frame[key].duplicated(), key].iloc[0])}; "
                         f"give one row per {key}")


def _in_unit(values, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(values <= 1)):
        raise ValueError(f"{what} must be finite and lie in [0, 1]; got values from "
                         f"{np.nanmin(values):.3g} to {np.nanmax(values):.3g}")
    return values


def simulate_readers(cases: pd.DataFrame, readers: pd.DataFrame, *, seed: int = 0, model_scores=None,
                     scale: int = 5, model: ReaderModel | None = None) -> pd.DataFrame:
    """Ratings of simulated readers, unaided and (given model scores) aided, in long form.

    See :class:`ReaderModel` for the simulation. Draws come from ``numpy.random.default_rng`` seeded with
    ``seed`` and a stable id: one generator for the case effects and one per reader id (its bias,
    perception and reading noise), so a reader's ratings do not change when readers are added or
    removed, and the unaided ratings are the same with or without ``model_scores``.

    Parameters
    ----------
    cases : DataFrame, shape (n_cases, >= 3)
        Columns ``case`` (unique id), ``truth`` (0/1) and ``visibility`` (in [0, 1]: how much of the
        evidence a human can see on the image).
    readers : DataFrame, shape (n_readers, >= 2)
        Columns ``reader`` (unique id), ``years`` (experience, >= 0) and optionally ``reliance`` (in
        [0, 1], how far the aided reading moves toward the model; default ``model.reliance``).
    seed : int
        Seed of the simulation.
    model_scores : array-like, shape (n_cases,), or Series indexed by case, optional
        The model's probability of disease per case (array: in the order of ``cases``' rows). When
        given, every reader also reads every case aided.
    scale : int
        Ratings are integers ``1..scale`` (``scale >= 2``).
    model : ReaderModel, optional
        Simulation parameters; the defaults of :class:`ReaderModel` when omitted.

    Returns
    -------
    DataFrame, shape (n_tests * n_readers * n_cases, 5)
        Columns ``test`` ("unaided", and "aided" with model scores), ``reader``, ``case``, ``truth``,
        ``rating``; ready for :func:`or_mrmc`.
    """
    model = ReaderModel() if model is None else model
    _check_columns(cases, "cases", ("case", "truth", "visibility"))
    _check_columns(readers, "readers", ("reader", "years"))
    if not (isinstance(scale, (int, np.integer)) and scale >= 2):
        raise ValueError(f"scale={scale!r} must be an integer >= 2 (e.g. 5 for a 1-5 rating scale)")
    truth = cases["truth"].to_numpy()
    if not np.isin(truth, (0, 1)).all():
        raise ValueError(f"cases.truth must hold 0/1 (1 = diseased), got {sorted(map(str, np.unique(truth)))[:5]}")
    visibility = _in_unit(cases["visibility"], "cases.visibility")
    years = np.asarray(readers["years"], dtype=float)
    if not (np.all(np.isfinite(years)) and np.all(years >= 0)):
        raise ValueError("readers.years must be finite and >= 0 (years of experience)")
    reliance = (_in_unit(readers["reliance"], "readers.reliance") if "reliance" in readers.columns
                else np.full(len(readers), model.reliance))
    model_logit = None
    if model_scores is not None:
        if isinstance(model_scores, pd.Series):
            model_scores = model_scores.reindex(cases["case"]).to_numpy(dtype=float)
        p = np.asarray(model_scores, dtype=float)
        if p.shape != (len(cases),):
            raise ValueError(f"model_scores has shape {p.shape}; pass one probability per case ({len(cases)},)")
        p = np.clip(_in_unit(p, "model_scores (one probability per case of cases)"), 1e-6, 1 - 1e-6)
        model_logit = np.log(p / (1 - p))

    n = len(cases)
    signal_sign = (2 * truth - 1) / 2.0
    case_effect = np.random.default_rng([seed, _stable_id("case effects")]).normal(0.0, model.case_sd, n)
    base_cuts = np.linspace(-model.threshold_span, model.threshold_span, scale - 1)
    tests = TESTS_SIMULATED if model_logit is not None else TESTS_SIMULATED[:1]
    frames = {name: [] for name in tests}
    for reader_id, reader_years, reader_reliance in zip(readers["reader"], years, reliance):
        rng = np.random.default_rng([seed, _stable_id(reader_id)])
        cuts = base_cuts + rng.normal(0.0, model.bias_sd)
        dprime = model.d0 + model.d1 * np.log1p(reader_years)
        evidence = dprime * visibility * signal_sign + case_effect + rng.normal(0.0, model.reader_sd, n)
        readings = evidence + rng.normal(0.0, model.read_sd, (2, n))
        latent = {"unaided": readings[0]}
        if model_logit is not None:
            toward_model = reader_reliance * model.logit_scale * model_logit
            latent["aided"] = (1 - reader_reliance) * readings[1] + toward_model
        for name in tests:
            frames[name].append(pd.DataFrame({"test": name, "reader": reader_id, "case": cases["case"].to_numpy(),
                                              "truth": truth, "rating": 1 + np.searchsorted(cuts, latent[name])}))
    return pd.concat([f for name in tests for f in frames[name]], ignore_index=True)


# --------------------------------------------------------------------------------------------------
# Per-reader summaries that published reader studies report
# --------------------------------------------------------------------------------------------------

def _wilson(successes, totals, alpha: float):
    low, high = proportion_confint(successes, totals, alpha=alpha, method="wilson")
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def reader_accuracy(long: pd.DataFrame, model: pd.Series | None = None, threshold: float | None = None, *,
                    model_threshold: float = 0.5, alpha: float = 0.05, test: str = "test", reader: str = "reader",
                    case: str = "case", truth: str = "truth", rating: str = "rating") -> pd.DataFrame:
    """Accuracy, sensitivity and specificity of each reader under each test, with Wilson intervals.

    Parameters
    ----------
    long : DataFrame, shape (n_rows, >= 5)
        Long table as for :func:`or_mrmc`.
    model : Series, optional
        The model's probability of disease indexed by case id; adds a row with test and reader
        ``"model"``, positive where ``probability >= model_threshold``.
    threshold : float, optional
        A rating ``>= threshold`` is a positive call. Default: the midpoint of the observed rating
        range rounded up (3 on a 1-5 scale).
    model_threshold : float
        Probability cut-off of the model.
    alpha : float
        Intervals are at level ``1 - alpha``.
    test, reader, case, truth, rating : str
        Column names.

    Returns
    -------
    DataFrame, shape (n_tests * n_readers [+ 1], 13)
        Columns ``test, reader, n, accuracy, accuracy_ci_low, accuracy_ci_high, sensitivity,
        sensitivity_ci_low, sensitivity_ci_high, specificity, specificity_ci_low, specificity_ci_high,
        threshold``.
    """
    if not isinstance(long, pd.DataFrame):
        raise TypeError(f"long must be a pandas DataFrame, got {type(long).__name__}")
    missing = [c for c in (test, reader, case, truth, rating) if c not in long.columns]
    if missing:
        raise ValueError(f"long has no column(s) {missing}; rename the columns or pass their names as keywords")
    if not long[truth].isin((0, 1)).all():
        raise ValueError(f"truth column {truth!r} must hold 0/1 (1 = diseased); recode it")
    ratings = pd.to_numeric(long[rating], errors="coerce")
    if ratings.isna().any():
        raise ValueError(f"rating column {rating!r} has {int(ratings.isna().sum())} missing or non-numeric "
                         "values; drop or fill them first")
    if threshold is None:
        threshold = float(math.ceil((ratings.min() + ratings.max()) / 2))
    calls = pd.DataFrame({"test": long[test].to_numpy(), "reader": long[reader].to_numpy(),
                          "truth": long[truth].to_numpy().astype(int),
                          "positive": (ratings >= threshold).to_numpy(), "threshold": threshold})
    if model is not None:
        case_truth = long.groupby(case)[truth].first()
        p = pd.Series(model).reindex(case_truth.index)
        if p.isna().any():
            raise ValueError(f"model has no probability for {int(p.isna().sum())} cases of long "
                             f"(e.g. case {_show(p.index[p.isna()][0])}); index it by case id")
        calls = pd.concat([calls, pd.DataFrame({"test": "model", "reader": "model",
                                                "truth": case_truth.to_numpy().astype(int),
                                                "positive": (p >= model_threshold).to_numpy(),
                                                "threshold": model_threshold})], ignore_index=True)
    calls["correct"] = calls["positive"] == (calls["truth"] == 1)
    calls["tp"] = calls["positive"] & (calls["truth"] == 1)
    calls["tn"] = ~calls["positive"] & (calls["truth"] == 0)
    g = calls.groupby(["test", "reader"], sort=True)
    out = g.agg(n=("correct", "size"), correct=("correct", "sum"), diseased=("truth", "sum"), tp=("tp", "sum"),
                tn=("tn", "sum"), threshold=("threshold", "first")).reset_index()
    out["healthy"] = out["n"] - out["diseased"]
    for name, hits, total in (("accuracy", "correct", "n"), ("sensitivity", "tp", "diseased"),
                              ("specificity", "tn", "healthy")):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = out[hits] / out[total]
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _wilson(out[hits], out[total], alpha)
    return out[["test", "reader", "n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "sensitivity",
                "sensitivity_ci_low", "sensitivity_ci_high", "specificity", "specificity_ci_low",
                "specificity_ci_high", "threshold"]]


def _boolean(values, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or not np.isin(values, (0, 1)).all():
        raise ValueError(f"{what} must be a 1-d array of True/False (or 1/0) per case, without missing values")
    return values.astype(bool)


def mcnemar_vs_model(reader_correct, model_correct) -> dict:
    """Exact McNemar test of a reader's vs the model's correctness on the same cases.

    Parameters
    ----------
    reader_correct, model_correct : array-like of bool, shape (n_cases,)
        Whether the reader's (model's) call on each case is right.

    Returns
    -------
    dict
        ``p`` (exact binomial McNemar p-value), ``reader_only`` (reader right, model wrong),
        ``model_only`` (model right, reader wrong), ``both``, ``neither``, ``n``.
    """
    a, b = _boolean(reader_correct, "reader_correct"), _boolean(model_correct, "model_correct")
    if a.shape != b.shape:
        raise ValueError(f"reader_correct has {len(a)} cases but model_correct {len(b)}; pass the same cases")
    both, reader_only = int(np.sum(a & b)), int(np.sum(a & ~b))
    model_only, neither = int(np.sum(~a & b)), int(np.sum(~a & ~b))
    p = float(mcnemar([[both, reader_only], [model_only, neither]], exact=True).pvalue)
    return {"p": p, "reader_only": reader_only, "model_only": model_only, "both": both, "neither": neither,
            "n": len(a)}


def paired_t_test(per_reader_a, per_reader_b) -> dict:
    """Paired t-test of a per-reader figure of merit (e.g. AUC) between two tests, as many papers do.

    It treats the cases as fixed: the case-sampling variance of each reader's AUC, and its correlation
    across readers, are ignored, so its p-values are too small for a claim about new cases; use
    :func:`or_mrmc` for that.

    Parameters
    ----------
    per_reader_a, per_reader_b : array-like or Series, shape (n_readers,)
        One value per reader; two Series are paired by their index (reader id), arrays by position.

    Returns
    -------
    dict
        ``mean_diff`` (a minus b), ``t``, ``df``, ``p`` (two-sided), ``n_readers``.
    """
    if isinstance(per_reader_a, pd.Series) and isinstance(per_reader_b, pd.Series):
        if set(per_reader_a.index) != set(per_reader_b.index):
            raise ValueError("per_reader_a and per_reader_b are indexed by different readers; "
                             "pass the same readers")
        per_reader_b = per_reader_b.reindex(per_reader_a.index)
    a, b = np.asarray(per_reader_a, dtype=float), np.asarray(per_reader_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"per_reader_a has shape {a.shape} and per_reader_b {b.shape}; "
                         "pass one value per reader each")
    if len(a) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a paired t-test needs at least 2 readers and finite values; "
                         "drop readers without a value")
    res = sps.ttest_rel(a, b)
    return {"mean_diff": float(np.mean(a - b)), "t": float(res.statistic), "df": float(len(a) - 1),
            "p": float(res.pvalue), "n_readers": len(a)}
