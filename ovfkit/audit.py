"""The methodology audit: what each common shortcut costs, measured where the truth is known.

Each pitfall runs the same model twice on the same cohort, the honest way and the shortcut, everything else
about the model equal, over repeated patient-level resplits (:func:`run`); where the shortcut is a different
test set (the vertebra split, the random split reported as external), the two test sets differ by design. Both report an AUC "on data the model never saw"
(the headline AUC of :func:`ovfkit.metrics.auc_score`: macro over three classes, the positive class's for
two); the shortcut's is what a paper taking it would print. The optimism is the shortcut's AUC minus the
honest one (:func:`optimism_table`).

The pitfalls (:data:`PITFALLS`):

``vertebra split``
    The test set drawn by vertebra instead of by patient: a patient's other vertebrae sit in training.
``selection on all rows``
    Features selected on every row, test rows and their labels included, before the split.
``harmonization on all rows``
    ComBat fitted on every row, the test rows included, before the split (it sees no label). In the honest
    path a center absent from a split's training rows is mapped to the training reference.
``best of nine on test``
    Of the nine classifiers, the one with the best test AUC reported, instead of the one chosen by
    cross-validation on the training rows.
``training AUC``
    The AUC on the rows the model was fitted on (apparent performance), as the papers' training columns.
``random split as external``
    A random patient split of one center reported as "external" validation, against the same model on the
    other centers' patients.

The model is deliberately lean (z-scoring, univariate selection of ``k`` features, a classifier) so that
every repeat is cheap: the audit measures what a shortcut adds to a fixed model, not the best model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sstats
from sklearn.base import clone
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ovfkit import harmonize, metrics, models


@dataclass(frozen=True)
class AuditData:
    """What the audit runs on, every part indexed by vertebra id.

    Attributes
    ----------
    X : DataFrame, shape (n_vertebrae, n_features)
    y : Series of int, the label
    groups : Series, the patient of each vertebra
    center : Series, the center of each vertebra
    classes : tuple of int, the labels in order
    """

    X: pd.DataFrame
    y: pd.Series
    groups: pd.Series
    center: pd.Series
    classes: tuple

    def check(self) -> "AuditData":
        """Raise ValueError unless every part covers the same vertebrae and the features are finite."""
        for name in ("y", "groups", "center"):
            part = getattr(self, name)
            if not part.index.equals(self.X.index):
                raise ValueError(f"AuditData.{name} is not indexed like X (the vertebra ids); align them first")
        if not np.isfinite(self.X.to_numpy(dtype=float)).all():
            raise ValueError("AuditData.X holds NaN or infinite values; drop or impute those vertebrae first "
                             "(and count them on the page)")
        missing = sorted(set(self.y.unique()) - set(self.classes))
        if missing:
            raise ValueError(f"labels {missing} are not among classes {self.classes}")
        return self


def lean_model(k: int = 20, C: float = 1.0) -> Pipeline:
    """The audit's model: z-scoring, the ``k`` best features by ANOVA F, L2 logistic regression (balanced)."""
    return Pipeline([("scale", StandardScaler()), ("select", SelectKBest(f_classif, k=k)),
                     ("model", LogisticRegression(C=C, max_iter=2000, class_weight="balanced"))]
                    ).set_output(transform="pandas")


def _fit_auc(model, data: AuditData, train: np.ndarray, test: np.ndarray, columns=None) -> float:
    cols = data.X.columns if columns is None else columns
    X = data.X[cols]
    m = clone(model)
    if hasattr(m.named_steps.get("select"), "k"):
        m.set_params(select__k=min(m.named_steps["select"].k, len(cols)))
    m.fit(X.iloc[train], data.y.iloc[train])
    return _auc(m, X.iloc[test], data.y.iloc[test], data.classes)


def _auc(fitted, X: pd.DataFrame, y: pd.Series, classes) -> float:
    if y.nunique() < len(classes):
        return float("nan")
    proba = pd.DataFrame(fitted.predict_proba(X), columns=fitted.classes_).reindex(columns=list(classes), fill_value=0.0)
    return metrics.auc_score(y.to_numpy(), proba.to_numpy(), classes)


def vertebra_split(data, train, test, model, seed):
    honest = _fit_auc(model, data, train, test)
    tr, te = next(ShuffleSplit(n_splits=1, test_size=len(test) / len(data.y), random_state=seed).split(data.X))
    return {"honest": honest, "shortcut": _fit_auc(model, data, tr, te)}


def selection_on_all_rows(data, train, test, model, seed):
    k = model.named_steps["select"].k
    chosen = SelectKBest(f_classif, k=min(k, data.X.shape[1])).fit(data.X, data.y).get_feature_names_out()
    unselected = clone(model).set_params(select="passthrough")
    return {"honest": _fit_auc(model, data, train, test),
            "shortcut": _fit_auc(unselected, data, train, test, columns=list(chosen))}


def harmonization_on_all_rows(data, train, test, model, seed):
    combat = harmonize.ComBat(batch=data.center, unseen="reference")
    fold = combat.fit(data.X.iloc[train])
    honest_X = pd.concat([fold.transform(data.X.iloc[train]), fold.transform(data.X.iloc[test])]).loc[data.X.index]
    everyone = clone(combat).fit(data.X)
    shortcut_X = everyone.transform(data.X)
    out = {}
    for name, X in (("honest", honest_X), ("shortcut", shortcut_X)):
        out[name] = _fit_auc(model, AuditData(X, data.y, data.groups, data.center, data.classes), train, test)
    return out


def best_of_nine_on_test(data, train, test, model, seed, names=models.MODEL_NAMES, inner_folds: int = 3):
    """Honest: the classifier with the best inner cross-validated AUC on the training rows; shortcut: the
    best test AUC of the nine."""
    g = data.groups.iloc[train]
    inner = list(StratifiedGroupKFold(inner_folds, shuffle=True, random_state=seed).split(
        data.X.iloc[train], data.y.iloc[train], g))
    cv_auc, test_auc = {}, {}
    for name in names:
        candidate = clone(model).set_params(model=models.classifier(name, seed, groups=data.groups))
        scores = [_fit_auc(candidate, data, train[a], train[b]) for a, b in inner]
        cv_auc[name] = np.nanmean(scores)
        test_auc[name] = _fit_auc(candidate, data, train, test)
    chosen = max(cv_auc, key=cv_auc.get)
    best = max(test_auc, key=test_auc.get)
    return {"honest": test_auc[chosen], "shortcut": test_auc[best], "choice_honest": chosen, "choice_shortcut": best}


def training_auc(data, train, test, model, seed):
    return {"honest": _fit_auc(model, data, train, test), "shortcut": _fit_auc(model, data, train, train)}


def random_split_as_external(data, train, test, model, seed, test_size: float = 0.2):
    """The largest center's patients split 8:2 at random (the shortcut's "external" set is its 20%); the
    honest external set is every vertebra of the other centers, scored by the same fitted model."""
    main = data.center.value_counts().index[0]
    home = np.flatnonzero((data.center == main).to_numpy())
    away = np.flatnonzero((data.center != main).to_numpy())
    if not len(away):
        raise ValueError("random split as external needs at least two centers; this cohort has one")
    a, b = next(GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(home, groups=data.groups.iloc[home]))
    fitted = clone(model)
    fitted.set_params(select__k=min(fitted.named_steps["select"].k, data.X.shape[1]))
    fitted.fit(data.X.iloc[home[a]], data.y.iloc[home[a]])
    return {"honest": _auc(fitted, data.X.iloc[away], data.y.iloc[away], data.classes),
            "shortcut": _auc(fitted, data.X.iloc[home[b]], data.y.iloc[home[b]], data.classes)}


#: pitfall -> function(data, train, test, model, seed) -> {"honest", "shortcut"[, "choice_honest", "choice_shortcut"]}
PITFALLS = {
    "vertebra split": vertebra_split,
    "selection on all rows": selection_on_all_rows,
    "harmonization on all rows": harmonization_on_all_rows,
    "best of nine on test": best_of_nine_on_test,
    "training AUC": training_auc,
    "random split as external": random_split_as_external,
}


def run(data: AuditData, pitfalls=tuple(PITFALLS), *, n_repeats: int = 10, test_size: float = 0.3, seed: int = 0,
        model: Pipeline | None = None, progress: bool = False) -> pd.DataFrame:
    """Every pitfall, honest and shortcut, over ``n_repeats`` patient-level resplits.

    Repeat ``r`` draws its split with seed ``seed + r`` (GroupShuffleSplit by patient, ``test_size`` of
    the patients); every pitfall of a repeat uses that split, except ``random split as external``, which
    splits the largest center's patients 8:2 with the same seed (its own random draws, such as the
    shortcut's vertebra split, use that seed too).

    Returns
    -------
    DataFrame, one row per pitfall and repeat: ``pitfall``, ``repeat``, ``honest``, ``shortcut`` (AUCs),
    ``optimism`` (shortcut - honest), and the models chosen where a pitfall chooses one.
    """
    data.check()
    unknown = [p for p in pitfalls if p not in PITFALLS]
    if unknown:
        raise ValueError(f"pitfall(s) {unknown} are not among {list(PITFALLS)}")
    if n_repeats < 2:
        raise ValueError(f"n_repeats={n_repeats}: an interval over repeats needs at least 2")
    model = model if model is not None else lean_model()
    rows = []
    splits = [next(GroupShuffleSplit(1, test_size=test_size, random_state=seed + r).split(data.X, groups=data.groups))
              for r in range(n_repeats)]
    from tqdm.auto import tqdm

    for pitfall in tqdm(pitfalls, desc="audit", disable=not progress):
        for r, (train, test) in enumerate(splits):
            rows.append({"pitfall": pitfall, "repeat": r, **PITFALLS[pitfall](data, train, test, model, seed + r)})
    out = pd.DataFrame(rows)
    out["optimism"] = out["shortcut"] - out["honest"]
    return out


def optimism_table(results: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per pitfall: mean honest and shortcut AUC, mean optimism with a t confidence interval over the repeats,
    and the share of repeats in which the shortcut looked better.

    The interval is for the mean optimism over random resplits of this cohort: it narrows as repeats are
    added, and it says nothing of new cohorts (the repeats share their data).
    """
    rows = []
    for pitfall, g in results.groupby("pitfall", sort=False):
        d = g["optimism"].dropna()
        n = len(d)
        half = sstats.t.ppf(1 - alpha / 2, n - 1) * d.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        row = {"pitfall": pitfall, "repeats": n, "honest AUC": g["honest"].mean(), "shortcut AUC": g["shortcut"].mean(),
               "optimism": d.mean(), "ci_low": d.mean() - half, "ci_high": d.mean() + half,
               "shortcut better (%)": 100 * (d > 0).mean()}
        if "choice_shortcut" in g and g["choice_shortcut"].notna().any():
            row["choice differs (%)"] = 100 * (g["choice_shortcut"] != g["choice_honest"]).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def ceiling(findings: pd.DataFrame, y: pd.Series, groups: pd.Series, classes, *, folds: int = 5,
            seed: int = 0) -> float:
    """The AUC a model reaches from the true findings themselves (patient-grouped cross-validation of a
    logistic regression on the z-scored, one-hot findings): a reference for how far an image model could go
    by reading those findings perfectly (a linear model's reach, not a strict upper bound).

    Parameters
    ----------
    findings : DataFrame, shape (n_vertebrae, n_findings)
        The ground truth an image shows (numeric or categorical columns), indexed like ``y``.
    """
    X = pd.get_dummies(findings, drop_first=False, dtype=float)
    data = AuditData(X, y, groups, pd.Series("all", index=y.index), tuple(classes)).check()
    proba = np.zeros((len(y), len(classes)))
    for train, test in StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups):
        m = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=5000))])
        m.fit(X.iloc[train], y.iloc[train])
        proba[test] = pd.DataFrame(m.predict_proba(X.iloc[test]), columns=m.classes_).reindex(
            columns=list(classes), fill_value=0.0).to_numpy()
    return metrics.auc_score(data.y.to_numpy(), proba, data.classes)
