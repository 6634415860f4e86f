"""The clinical model: the DLR score with age and sex, as a nomogram; its calibration; decision curves.

ASTLOF has three classes, so everything here is one-vs-rest, one model per class ``k``:

``logit P(class k) = b0 + b1 * DLR_k + b2 * age + b3 * male``

where ``DLR_k`` is the logit of the chosen DLR model's probability of class ``k``. On the training
cohort that probability is the nested cross-validation (out-of-fold) one, never a prediction of a model
that saw the row, so the nomogram's weights are not inflated by an over-fitted score. The logistic
regression is statsmodels' ``Logit`` (coefficients, Wald confidence intervals, likelihood-ratio tests of
nested models refitted on the same rows), fitted on training rows only; the held-out cohorts are
predicted once.

The nomogram turns the fitted linear predictor into points: a predictor at value ``x`` scores
``beta * (x - zero) * scale`` points, signed, where ``zero`` is the lowest-risk end of its axis and
``scale`` makes the widest axis span 100 points. A value beyond an axis end scores below 0 or above the
axis' last value by the same points per unit, so total points map back to the model's probability for
any row. The DLR score's axis spans the 1st-99th percentile of the training scores
(:data:`DLR_AXIS_QUANTILES`), not their range: the DLR probability is clipped at 1e-6 before its logit,
and a few clipped scores at +-13.8 logits would otherwise stretch the axis and squeeze age and sex into
a few points. Age and sex axes span their training range. The figure itself is
:func:`ovfkit.plots.nomogram`.

Decision curves (``dcurves``) give the net benefit of treating by the model against treating all or
none, across threshold probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import chi2

from ovfkit import metrics, stats

PREDICTORS = ("dlr_score", "age", "male")
DLR_AXIS_QUANTILES = (0.01, 0.99)  # the DLR score's nomogram axis: these quantiles of the training scores
HELD_OUT = "cohort != 'train'"


def design(pred: pd.DataFrame, manifest: pd.DataFrame, k: int) -> pd.DataFrame:
    """Rows of a predictions table (one model) with the class-k DLR score, age, sex and the outcome."""
    m = manifest.loc[pred["vertebra_id"]]
    p = np.clip(pred[f"p{k}"].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    return pd.DataFrame({"vertebra_id": pred["vertebra_id"].to_numpy(), "cohort": pred["cohort"].to_numpy(),
                         "patient_id": pred["patient_id"].to_numpy(),
                         "dlr_score": np.log(p / (1 - p)), "age": m["age"].to_numpy(dtype=float),
                         "male": (m["sex"].astype(str).str.upper().str[0] == "M").to_numpy(dtype=float),
                         "y": (pred["y"].to_numpy() == k).astype(int)})


def _axis_ranges(train: pd.DataFrame) -> dict:
    """Each predictor's nomogram axis: DLR score between :data:`DLR_AXIS_QUANTILES`, the others min-max."""
    lo, hi = np.quantile(train["dlr_score"].to_numpy(dtype=float), DLR_AXIS_QUANTILES)
    ranges = {"dlr_score": (float(lo), float(hi))}
    ranges.update({c: (float(train[c].min()), float(train[c].max())) for c in PREDICTORS[1:]})
    return ranges


@dataclass
class Nomogram:
    """A fitted one-vs-rest clinical model for class ``k`` and its points scale.

    Attributes
    ----------
    k : int
        The ASTLOF class modelled against the rest.
    fit : statsmodels LogitResults
        ``Logit(y ~ const + dlr_score + age + male)`` on the training rows.
    ranges : dict
        Predictor -> ``(low, high)``, the span of its nomogram axis in its own units (DLR score in
        logits: the 1st-99th percentile of the training scores; age in years and sex (0 female, 1 male):
        the training range).
    """

    k: int
    fit: object
    ranges: dict

    @classmethod
    def fit_on(cls, train: pd.DataFrame, k: int, cluster: bool = True) -> "Nomogram":
        """Fit the model on training rows of :func:`design` (columns ``dlr_score``, ``age``, ``male``, ``y``).

        ``cluster=True`` (the default): Wald standard errors, CIs and p-values robust to the clustering of a
        patient's vertebrae (statsmodels' cluster sandwich on ``patient_id``); the coefficients are those of
        ``cluster=False``, which treats rows as independent. Age and
        sex repeat across a patient's fractures, so the plain errors understate their uncertainty. The
        likelihood-ratio tests still treat rows as independent.
        """
        if train["y"].nunique() < 2:
            raise ValueError(f"class {k} is absent or universal in the training rows; no model can be fitted")
        X = sm.add_constant(train[list(PREDICTORS)], has_constant="add")
        if cluster:
            if "patient_id" not in train:
                raise ValueError("the nomogram's cluster-robust errors need a patient_id column in the training rows; "
                                 "add it, or pass cluster=False to treat rows as independent")
            groups = pd.factorize(train["patient_id"])[0]
            res = sm.Logit(train["y"], X).fit(disp=0, cov_type="cluster", cov_kwds={"groups": groups})
        else:
            res = sm.Logit(train["y"], X).fit(disp=0)
        return cls(k, res, _axis_ranges(train))

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """P(class k) of each row, shape (n_rows,)."""
        X = sm.add_constant(rows[list(PREDICTORS)], has_constant="add")
        return np.asarray(self.fit.predict(X))

    def coefficients(self) -> pd.DataFrame:
        """Odds ratios with 95% CIs and Wald p-values."""
        ci = self.fit.conf_int()
        return pd.DataFrame({"coef": self.fit.params, "odds ratio": np.exp(self.fit.params),
                             "OR 95% low": np.exp(ci[0]), "OR 95% high": np.exp(ci[1]),
                             "p": self.fit.pvalues}).drop(index="const")

    def likelihood_ratio_tests(self) -> pd.DataFrame:
        """Likelihood-ratio tests of nested logistic models, refitted on the same training rows.

        One row per predictor left out of the full model (``dlr_score``: the clinical-only model, age
        and sex, against clinical + DLR score), and one for all three against the intercept only.

        Returns
        -------
        DataFrame, one row per test, columns ``dropped``, ``reduced model``, ``LR chi2``
        (``2 * (llf_full - llf_reduced)``), ``df`` (coefficients dropped) and ``p`` (chi-squared upper tail).
        """
        rows = []
        for dropped in [(c,) for c in PREDICTORS] + [PREDICTORS]:
            reduced = self._refit_without(dropped)
            stat = 2.0 * (self.fit.llf - reduced.llf)
            df = int(round(self.fit.df_model - reduced.df_model))
            rows.append({"dropped": " + ".join(dropped),
                         "reduced model": " + ".join(["const", *(c for c in PREDICTORS if c not in dropped)]),
                         "LR chi2": stat, "df": df, "p": float(chi2.sf(stat, df))})
        return pd.DataFrame(rows)

    def _refit_without(self, dropped) -> object:
        """The model refitted on its own training rows without the ``dropped`` predictors."""
        names = list(self.fit.model.exog_names)
        keep = [i for i, c in enumerate(names) if c not in dropped]
        return sm.Logit(self.fit.model.endog, self.fit.model.exog[:, keep]).fit(disp=0)

    def points_per_logit(self) -> float:
        """Points per unit of linear predictor: the widest axis spans 100 points."""
        beta = self.fit.params
        return 100.0 / max(abs(beta[c]) * (hi - lo) for c, (lo, hi) in self.ranges.items())

    def _zeros(self) -> dict:
        """The value of each predictor that scores 0 points: its axis' lowest-risk end."""
        beta = self.fit.params
        return {c: (lo if beta[c] > 0 else hi) for c, (lo, hi) in self.ranges.items()}

    def points(self) -> pd.DataFrame:
        """The points scale, one row per predictor.

        Returns
        -------
        DataFrame indexed by predictor, columns ``beta`` (log-odds per unit), ``low``, ``high`` (the
        axis, in the predictor's units), ``zero`` (the value scoring 0 points), ``points_per_unit``
        (signed: ``beta * scale``) and ``span_points`` (points from one axis end to the other).
        """
        beta, scale, zero = self.fit.params, self.points_per_logit(), self._zeros()
        table = pd.DataFrame({"beta": [beta[c] for c in PREDICTORS],
                              "low": [self.ranges[c][0] for c in PREDICTORS],
                              "high": [self.ranges[c][1] for c in PREDICTORS],
                              "zero": [zero[c] for c in PREDICTORS]}, index=list(PREDICTORS))
        table["points_per_unit"] = table["beta"] * scale
        table["span_points"] = (table["points_per_unit"] * (table["high"] - table["low"])).abs()
        return table

    def points_of(self, predictor: str, values) -> np.ndarray:
        """Points of ``values`` of one predictor, shape of ``values``: negative below the axis' zero end,
        above ``span_points`` beyond its other end."""
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor={predictor!r} is not a predictor of the model; pass one of {PREDICTORS}")
        row = self.points().loc[predictor]
        return (np.asarray(values, dtype=float) - row["zero"]) * row["points_per_unit"]

    def total_points(self, rows: pd.DataFrame) -> np.ndarray:
        """Total nomogram points of each row (what a reader adds up on the figure), shape (n_rows,)."""
        return sum(self.points_of(c, rows[c].to_numpy(dtype=float)) for c in PREDICTORS)

    def max_total_points(self) -> float:
        """Total points with every predictor at its highest-risk axis end: the total-points axis' end."""
        return float(self.points()["span_points"].sum())

    def linear_predictor_from_points(self, total) -> np.ndarray:
        """The linear predictor (log-odds of class k) at ``total`` points, same shape."""
        beta, zero = self.fit.params, self._zeros()
        lp0 = beta["const"] + sum(beta[c] * zero[c] for c in PREDICTORS)
        return lp0 + np.asarray(total, dtype=float) / self.points_per_logit()

    def probability_from_points(self, total) -> np.ndarray:
        """The probability axis: total points back to P(class k), same shape as ``total``."""
        return 1 / (1 + np.exp(-self.linear_predictor_from_points(total)))

    def points_for_probability(self, prob) -> np.ndarray:
        """The inverse of :meth:`probability_from_points`: where a probability sits on the points scale."""
        prob = np.asarray(prob, dtype=float)
        return (np.log(prob / (1 - prob)) - self.linear_predictor_from_points(0.0)) * self.points_per_logit()


def with_predictions(d: pd.DataFrame, nom: Nomogram) -> pd.DataFrame:
    """Design rows with the combined model's probability (``combined``) and the DLR model's (``dlr``)."""
    return d.assign(combined=nom.predict(d), dlr=1 / (1 + np.exp(-d["dlr_score"])))


def held_out_discrimination(designs: dict) -> pd.DataFrame:
    """AUC of the DLR score and of the combined model on each held-out cohort, per class, and DeLong tests.

    Parameters
    ----------
    designs : dict
        Class -> :func:`with_predictions` rows (all cohorts; training rows are left out here).

    Returns
    -------
    DataFrame, one row per class and held-out cohort with at least 2 cases and 2 others, each in at least 2
    patients: ``n``, ``AUC DLR``,
    ``AUC combined``, ``combined 95% CI`` (DeLong), ``difference`` (combined minus DLR), ``DeLong p``
    (paired) and ``p_holm`` (Holm-adjusted over every row of the table). DeLong's variance is clustered by
    ``patient_id`` (Obuchowski 1997): a patient's vertebrae are not independent.
    """
    rows = []
    for k, d in designs.items():
        for cohort, g in d.query(HELD_OUT).groupby("cohort", sort=False):
            if not stats.testable(g["y"], g["patient_id"]):
                continue
            test = stats.delong_test(g["y"], g["combined"], g["dlr"], groups=g["patient_id"])
            auc_c, lo_c, hi_c = stats.auc_ci(g["y"], g["combined"], groups=g["patient_id"])
            rows.append({"class": k, "cohort": cohort, "n": len(g), "AUC DLR": test.auc_b,
                         "AUC combined": auc_c, "combined 95% CI": "–" if np.isnan(lo_c) else f"{lo_c:.3f}-{hi_c:.3f}",
                         "difference": test.diff, "DeLong p": test.p})
    table = pd.DataFrame(rows, columns=["class", "cohort", "n", "AUC DLR", "AUC combined", "combined 95% CI",
                                        "difference", "DeLong p"])
    table["p_holm"] = stats.adjust(table["DeLong p"], "holm")
    return table


def held_out_calibration(designs: dict, n_bins: int = 5) -> pd.DataFrame:
    """Reliability curve of the combined model on the held-out cohorts pooled, per class.

    Parameters
    ----------
    designs : dict
        Class -> :func:`with_predictions` rows; a class whose held-out rows hold one outcome only is left out.
    n_bins : int
        Quantile bins of the predicted probability.

    Returns
    -------
    DataFrame, ``metrics.calibration_table`` columns (``class`` = the modelled class, ``mean_predicted``,
    ``observed``, ``brier``), one row per bin and class.
    """
    tables = []
    for k, d in designs.items():
        held = d.query(HELD_OUT)
        if held["y"].nunique() == 2:
            proba = np.column_stack([1 - held["combined"], held["combined"]])
            table = metrics.calibration_table(held["y"], proba, classes=(0, 1), n_bins=n_bins)
            tables.append(table.query("`class` == 1").assign(**{"class": k}))
    if not tables:
        raise ValueError(f"no class of {list(designs)} has both outcomes in its held-out rows; calibration "
                         "needs held-out cases and others: pass designs that include non-training cohorts")
    return pd.concat(tables, ignore_index=True)


def decision_curve(rows: pd.DataFrame, models: dict, thresholds=None) -> pd.DataFrame:
    """Net benefit of each model's probabilities (``models``: name -> array) vs treat-all and treat-none.

    Uses ``dcurves.dca``; returns its long table (``model``, ``threshold``, ``net_benefit``, ...).
    The figure is :func:`ovfkit.plots.decision_curves`.
    """
    from dcurves import dca

    thresholds = np.round(np.arange(0.01, 0.81, 0.01), 2) if thresholds is None else thresholds
    data = pd.DataFrame({"y": rows["y"].to_numpy(), **{name: np.asarray(p) for name, p in models.items()}})
    return dca(data=data, outcome="y", modelnames=list(models), thresholds=thresholds)
