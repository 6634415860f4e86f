"""The clinical model: the DLR score with age and sex, as a nomogram; its calibration; decision curves.

ASTLOF has three classes, so everything here is one-vs-rest, one model per class ``k``:

``logit P(class k) = b0 + b1 * DLR_k + b2 * age + b3 * male``

where ``DLR_k`` is the logit of the chosen DLR model's probability of class ``k``. On the training
cohort that probability is the nested cross-validation (out-of-fold) one, never a prediction of a model
that saw the row, so the nomogram's weights are not inflated by an over-fitted score. The logistic
regression is statsmodels' ``Logit`` (coefficients, standard errors, likelihood-ratio tests), fitted
on training rows only; the held-out cohorts are predicted once.

The nomogram draws the fitted linear predictor as a points scale (the predictor with the widest effect
spans 0-100 points over its training range), a total-points axis and the probability it maps to.
Decision curves (``dcurves``) give the net benefit of treating by the model against treating all or
none, across threshold probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

PREDICTORS = ("dlr_score", "age", "male")


def design(pred: pd.DataFrame, manifest: pd.DataFrame, k: int) -> pd.DataFrame:
    """Rows of a predictions table (one model) with the class-k DLR score, age, sex and the outcome."""
    m = manifest.loc[pred["vertebra_id"]]
    p = np.clip(pred[f"p{k}"].to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    return pd.DataFrame({"vertebra_id": pred["vertebra_id"].to_numpy(), "cohort": pred["cohort"].to_numpy(),
                         "patient_id": pred["patient_id"].to_numpy(),
                         "dlr_score": np.log(p / (1 - p)), "age": m["age"].to_numpy(dtype=float),
                         "male": (m["sex"].astype(str).str.upper().str[0] == "M").to_numpy(dtype=float),
                         "y": (pred["y"].to_numpy() == k).astype(int)})


@dataclass
class Nomogram:
    """A fitted one-vs-rest clinical model for class ``k``."""

    k: int
    fit: object  # statsmodels LogitResults
    ranges: dict  # predictor -> (min, max) on training rows

    @classmethod
    def fit_on(cls, train: pd.DataFrame, k: int) -> "Nomogram":
        if train["y"].nunique() < 2:
            raise ValueError(f"class {k} is absent or universal in the training rows; no model can be fitted")
        X = sm.add_constant(train[list(PREDICTORS)], has_constant="add")
        res = sm.Logit(train["y"], X).fit(disp=0)
        ranges = {c: (float(train[c].min()), float(train[c].max())) for c in PREDICTORS}
        return cls(k, res, ranges)

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        X = sm.add_constant(rows[list(PREDICTORS)], has_constant="add")
        return np.asarray(self.fit.predict(X))

    def coefficients(self) -> pd.DataFrame:
        """Odds ratios with 95% CIs and Wald p-values."""
        ci = self.fit.conf_int()
        return pd.DataFrame({"coef": self.fit.params, "odds ratio": np.exp(self.fit.params),
                             "OR 95% low": np.exp(ci[0]), "OR 95% high": np.exp(ci[1]),
                             "p": self.fit.pvalues}).drop(index="const")

    def _scale(self) -> float:
        """Points per unit of linear predictor: the widest effect over its training range spans 100."""
        beta = self.fit.params
        return 100.0 / max(abs(beta[c]) * (hi - lo) for c, (lo, hi) in self.ranges.items())

    def points(self) -> pd.DataFrame:
        """Points per unit of each predictor: the widest effect over its training range spans 100."""
        beta, scale = self.fit.params, self._scale()
        return pd.DataFrame({"beta": [beta[c] for c in PREDICTORS], "low": [self.ranges[c][0] for c in PREDICTORS],
                             "high": [self.ranges[c][1] for c in PREDICTORS],
                             "points_per_unit": [abs(beta[c]) * scale for c in PREDICTORS]}, index=list(PREDICTORS))

    def _low_ends(self) -> dict:
        """The value of each predictor that scores 0 points (its lowest-risk end on the training range)."""
        beta = self.fit.params
        return {c: (lo if beta[c] > 0 else hi) for c, (lo, hi) in self.ranges.items()}

    def _zero_point_logit(self) -> float:
        """The linear predictor at 0 total points: every predictor at its lowest-risk end."""
        beta, low = self.fit.params, self._low_ends()
        return beta["const"] + sum(beta[c] * low[c] for c in PREDICTORS)

    def total_points(self, rows: pd.DataFrame) -> np.ndarray:
        """Total nomogram points of each row (what a reader adds up on the figure)."""
        pts, low = self.points(), self._low_ends()
        return sum(np.abs(rows[c].to_numpy(dtype=float) - low[c]) * pts.loc[c, "points_per_unit"] for c in PREDICTORS)

    def probability_from_points(self, total) -> np.ndarray:
        """The probability axis: total points back to P(class k)."""
        lp = self._zero_point_logit() + np.asarray(total, dtype=float) / self._scale()
        return 1 / (1 + np.exp(-lp))

    def points_for_probability(self, prob) -> np.ndarray:
        """The inverse of :meth:`probability_from_points`: where a probability sits on the points scale."""
        prob = np.asarray(prob, dtype=float)
        return (np.log(prob / (1 - prob)) - self._zero_point_logit()) * self._scale()

    def figure(self, labels=None):
        """The nomogram: a points axis, one axis per predictor, total points and the probability."""
        labels = labels or {"dlr_score": f"DLR score (logit, class {self.k})", "age": "age (years)",
                            "male": "sex (0 female, 1 male)"}
        pts, low = self.points(), self._low_ends()
        fig, ax = plt.subplots(figsize=(9, 4.2))
        rows = ["Points"] + [labels[c] for c in PREDICTORS] + ["Total points", f"P(class {self.k})"]
        ys = np.arange(len(rows))[::-1]
        ax.hlines(ys[0], 0, 100, color="k")
        for t in range(0, 101, 10):
            ax.vlines(t, ys[0], ys[0] + 0.15, color="k")
            ax.text(t, ys[0] + 0.25, str(t), ha="center", fontsize=7)
        data = []
        for y, c in zip(ys[1:], PREDICTORS):
            r = pts.loc[c]
            span_points = abs(r.high - r.low) * r.points_per_unit
            n_ticks = 2 if c == "male" else int(np.clip(span_points // 12, 2, 6))
            ticks = np.unique(np.round(np.linspace(r.low, r.high, n_ticks), 0 if r.high - r.low > 10 else 1))
            p_ticks = np.abs(ticks - low[c]) * r.points_per_unit
            ax.hlines(y, p_ticks.min(), p_ticks.max(), color="k")
            for v, p in zip(ticks, p_ticks):
                ax.vlines(p, y, y + 0.15, color="k")
                ax.text(p, y + 0.25, f"{v:g}", ha="center", fontsize=7)
                data.append({"axis": c, "value": v, "points": p})
        total_max = float((pts["points_per_unit"] * (pts["high"] - pts["low"])).sum())
        ax.hlines(ys[-2], 0, 100, color="k")
        for t in np.linspace(0, total_max, 6):
            x = t / total_max * 100
            ax.vlines(x, ys[-2], ys[-2] + 0.15, color="k")
            ax.text(x, ys[-2] + 0.25, f"{t:.0f}", ha="center", fontsize=7)
        for prob in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
            total = float(self.points_for_probability(prob))
            if 0 <= total <= total_max:
                x = total / total_max * 100
                ax.vlines(x, ys[-1], ys[-1] + 0.15, color="k")
                ax.text(x, ys[-1] + 0.25, f"{prob:g}", ha="center", fontsize=7)
                data.append({"axis": "probability", "value": prob, "points": total})
        ax.hlines(ys[-1], 0, 100, color="0.6")
        ax.set_yticks(ys, rows)
        ax.set_xlim(-5, 105)
        ax.set_xticks([])
        for s in ("top", "right", "bottom"):
            ax.spines[s].set_visible(False)
        ax.set_title(f"Nomogram, class {self.k} vs rest (total-points axis spans 0-{total_max:.0f})", fontsize=10)
        fig.tight_layout()
        return fig, pd.DataFrame(data)


def decision_curve(rows: pd.DataFrame, models: dict, thresholds=None) -> pd.DataFrame:
    """Net benefit of each model's probabilities (``models``: name -> array) vs treat-all and treat-none.

    Uses ``dcurves.dca``; returns its long table (``model``, ``threshold``, ``net_benefit``, ...).
    """
    from dcurves import dca

    thresholds = np.round(np.arange(0.01, 0.81, 0.01), 2) if thresholds is None else thresholds
    data = pd.DataFrame({"y": rows["y"].to_numpy(), **{name: np.asarray(p) for name, p in models.items()}})
    return dca(data=data, outcome="y", modelnames=list(models), thresholds=thresholds)


def decision_curve_figure(curves: dict):
    """Net-benefit curves, one panel per class. ``curves``: class -> decision_curve table."""
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.3), squeeze=False)
    for ax, (k, dc) in zip(axes[0], curves.items()):
        for name, g in dc.groupby("model", sort=False):
            style = {"all": dict(color="0.5", ls="--"), "none": dict(color="k", lw=0.8)}.get(name, {})
            ax.plot(g["threshold"], g["net_benefit"], label=name, **style)
        prev = dc.loc[dc["model"] == "all", "net_benefit"].max()
        ax.set_ylim(-0.05, max(prev, 0.05) * 1.15)
        ax.set_title(f"class {k} vs rest", fontsize=10)
        ax.set_xlabel("threshold probability")
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("net benefit")
    fig.tight_layout()
    data = pd.concat([dc.assign(cls=k) for k, dc in curves.items()], ignore_index=True)
    return fig, data
