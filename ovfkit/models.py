"""Classifiers as scikit-learn Pipelines, tuned and evaluated with patient-grouped cross-validation.

The nine classifiers of the papers, each with its grid and class weighting:

==========  ============================================  =========================================
name        estimator                                     class imbalance
==========  ============================================  =========================================
LR          LogisticRegression (L2, lbfgs)                ``class_weight="balanced"``
SVM         SVC (RBF), Platt-scaled on patient-grouped    ``class_weight="balanced"``
            folds (:class:`PatientCalibrated`)
KNN         KNeighborsClassifier                          none possible (a vote); distance weighting
RF          RandomForestClassifier                        ``class_weight="balanced"``
ExtraTrees  ExtraTreesClassifier                          ``class_weight="balanced"``
XGBoost     XGBClassifier (hist)                          balanced sample weights (:class:`BalancedSampleWeight`)
LightGBM    LGBMClassifier                                ``class_weight="balanced"``
MLP         MLPClassifier (32 hidden units, adam,         balanced sample weights
            at most 500 epochs)
DT          DecisionTreeClassifier                        ``class_weight="balanced"``
==========  ============================================  =========================================

Grids (:func:`param_grid`) are small on purpose: a few hundred training patients cannot tell finer
settings apart, and each grid point costs a full inner cross-validation. ``profile="paper"`` widens them.

Splits are always by patient: :class:`PatientKFold` looks up the patient of every row by the row's id
(the DataFrame index), so it works at any depth of nesting (GridSearchCV inside cross_validate, the SVM's
calibration folds inside both) without metadata routing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier

from ovfkit.harmonize import _lookup

MODEL_NAMES = ("LR", "SVM", "KNN", "RF", "ExtraTrees", "XGBoost", "LightGBM", "MLP", "DT")


class PatientKFold:
    """Stratified K-fold that keeps each patient's vertebrae in one fold, patients looked up by row id.

    Parameters
    ----------
    groups : Series
        Patient of every vertebra, indexed by vertebra id (the index of the DataFrames to split).
    n_splits : int, default 5
    random_state : int, default 0

    Notes
    -----
    A scikit-learn CV splitter (``split``/``get_n_splits``) wrapping
    :class:`~sklearn.model_selection.StratifiedGroupKFold` (shuffled). Because patients come from the
    row ids rather than a ``groups=`` argument, nested searches need no metadata routing.
    """

    def __init__(self, groups: pd.Series, n_splits: int = 5, random_state: int = 0):
        self.groups = groups
        self.n_splits = n_splits
        self.random_state = random_state

    def split(self, X, y=None, groups=None):
        if not isinstance(X, pd.DataFrame):
            raise TypeError("PatientKFold finds each row's patient by its id: split a DataFrame indexed by "
                            "vertebra id")
        g = _lookup(self.groups, X.index, "groups").to_numpy()
        if len(np.unique(g)) < self.n_splits:
            raise ValueError(f"{len(np.unique(g))} patients cannot fill {self.n_splits} folds; lower n_splits")
        yield from StratifiedGroupKFold(self.n_splits, shuffle=True, random_state=self.random_state).split(X, y, g)

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def __repr__(self):
        return f"PatientKFold(n_splits={self.n_splits}, random_state={self.random_state})"


class BalancedSampleWeight(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` with 'balanced' sample weights (n / (k * n_class)), for those without class_weight.

    Parameters
    ----------
    estimator : classifier whose ``fit`` accepts ``sample_weight`` (XGBoost, MLP)
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y):
        if self.estimator is None:
            raise ValueError("BalancedSampleWeight needs estimator= (a classifier accepting sample_weight)")
        self.estimator_ = clone(self.estimator).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


class PatientCalibrated(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Probabilities by Platt scaling of ``estimator``'s decision function on patient-grouped folds.

    Parameters
    ----------
    estimator : classifier with ``decision_function`` (the SVM's ``SVC``)
    groups : Series
        Patient of every vertebra, indexed by vertebra id (the index of the DataFrames to fit).
    n_splits : int, default 5
        Calibration folds (as many as libsvm's internal Platt scaling uses).
    random_state : int, default 0
        Seeds the assignment of patients to calibration folds.

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV
        The fitted calibration, one (copy of ``estimator``, sigmoids) pair per fold.
    classes_ : ndarray, shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when ``fit`` saw a DataFrame with string column names.

    Notes
    -----
    ``fit`` splits the rows it sees with :class:`PatientKFold` (``groups``, ``n_splits``,
    ``random_state``) and hands those folds to
    :class:`~sklearn.calibration.CalibratedClassifierCV` (``method="sigmoid"``, ``ensemble=True``): each
    fold fits a copy of ``estimator`` on the other patients and one sigmoid per class (one-vs-rest) on
    the decision values of its own patients; ``predict_proba`` averages the folds' normalized
    probabilities. No patient has vertebrae on both sides of a calibration fold, unlike libsvm's internal
    Platt scaling (``SVC(probability=True)``), whose folds split vertebrae.

    The folds are passed as a list, not as the splitter, because CalibratedClassifierCV refuses a
    splitter with more folds than the rarest class has vertebrae, and the nested training parts of the
    60-patient ``quick`` cohorts hold as few as one vertebra of class 2. A class with fewer patients than
    folds is absent from the calibrating part of some folds (their sigmoid for it is fitted on negatives
    only), and a class with a single patient also from one fold's training part (that fold's copy gives
    it probability 0).
    """

    def __init__(self, estimator=None, groups=None, n_splits: int = 5, random_state: int = 0):
        self.estimator = estimator
        self.groups = groups
        self.n_splits = n_splits
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the copies of ``estimator`` and their sigmoids on patient-grouped folds of ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n, p), indexed by vertebra id
        y : array-like, shape (n,)

        Returns
        -------
        self
        """
        if self.estimator is None:
            raise ValueError("PatientCalibrated needs estimator= (a classifier with decision_function)")
        if self.groups is None:
            raise ValueError("PatientCalibrated got groups=None: pass the patient of every vertebra, a Series "
                             "indexed by vertebra id (e.g. classifier('SVM', seed, groups=manifest['patient_id']))")
        folds = list(PatientKFold(self.groups, self.n_splits, self.random_state).split(X, y))
        self.calibrated_ = CalibratedClassifierCV(self.estimator, method="sigmoid", cv=folds,
                                                  ensemble=True).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        self.n_features_in_ = self.calibrated_.n_features_in_
        if hasattr(self.calibrated_, "feature_names_in_"):
            self.feature_names_in_ = self.calibrated_.feature_names_in_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict(X)


def classifier(name: str, seed: int = 0, groups: pd.Series | None = None):
    """A fresh, unfitted classifier of the table above.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    seed : int, default 0
        Random state of the classifiers that draw random numbers (for the SVM: its calibration folds).
    groups : Series, optional
        Patient of every vertebra, indexed by vertebra id. The SVM needs it to be fitted (its calibration
        folds keep a patient's vertebrae together); the other classifiers do not use it.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"classifier {name!r} is not one of {', '.join(MODEL_NAMES)}")
    if name == "LR":
        return LogisticRegression(max_iter=5000, class_weight="balanced")
    if name == "SVM":
        return PatientCalibrated(SVC(kernel="rbf", class_weight="balanced"), groups=groups, random_state=seed)
    if name == "KNN":
        return KNeighborsClassifier(weights="distance")
    if name == "RF":
        return RandomForestClassifier(n_estimators=100, class_weight="balanced", random_state=seed, n_jobs=1)
    if name == "ExtraTrees":
        return ExtraTreesClassifier(n_estimators=100, class_weight="balanced", random_state=seed, n_jobs=1)
    if name == "XGBoost":
        return BalancedSampleWeight(XGBClassifier(n_estimators=100, learning_rate=0.05, tree_method="hist",
                                                  random_state=seed, n_jobs=1, verbosity=0))
    if name == "LightGBM":
        return LGBMClassifier(n_estimators=100, learning_rate=0.05, class_weight="balanced", random_state=seed,
                              n_jobs=1, verbose=-1, deterministic=True, force_row_wise=True)
    if name == "MLP":
        return BalancedSampleWeight(MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=seed))
    return DecisionTreeClassifier(class_weight="balanced", random_state=seed)


def param_grid(name: str, profile: str = "default") -> dict:
    """The documented grid of ``name`` (keys for a Pipeline whose last step is ``clf``).

    ``profile="quick"`` (tests, cohorts of a few dozen vertebrae) uses fewer neighbours for KNN.
    """
    wide = profile == "paper"
    grids = {
        "LR": {"C": [0.01, 0.1, 1.0, 10.0] if wide else [0.03, 0.3, 3.0]},
        "SVM": {"estimator__C": [0.1, 1.0, 10.0] if wide else [0.3, 3.0],
                "estimator__gamma": ["scale", 0.01] if wide else ["scale"]},
        "KNN": {"n_neighbors": [5, 11, 21, 41] if wide else [3, 7] if profile == "quick" else [9, 25]},
        "RF": {"max_depth": [3, 6, None] if wide else [4, None], "min_samples_leaf": [1, 5] if wide else [3]},
        "ExtraTrees": {"max_depth": [3, 6, None] if wide else [4, None], "min_samples_leaf": [1, 5] if wide else [3]},
        "XGBoost": {"estimator__max_depth": [2, 3, 5] if wide else [2, 4]},
        "LightGBM": {"num_leaves": [4, 8, 16] if wide else [4, 12], "min_child_samples": [10, 20] if wide else [20]},
        "MLP": {"estimator__alpha": [1e-4, 1e-2, 1.0] if wide else [1e-3, 1.0]},
        "DT": {"max_depth": [2, 3, 5, None] if wide else [3, 5]},
    }
    if name not in grids:
        raise ValueError(f"classifier {name!r} is not one of {', '.join(MODEL_NAMES)}")
    return {f"clf__{k}": v for k, v in grids[name].items()}


def auc_scorer(classes=(0, 1, 2)):
    """The tuning score of a task: the positive class's ROC AUC (two classes) or the macro one-vs-rest AUC.

    Naming the labels makes a validation fold that lacks a class (tiny cohorts) score NaN instead of
    stopping the search.
    """
    if len(classes) == 2:
        return make_scorer(roc_auc_score, response_method="predict_proba")
    return make_scorer(roc_auc_score, response_method="predict_proba", multi_class="ovr", average="macro",
                       labels=list(classes))


def tuned(pipeline: Pipeline, grid: dict, cv, classes=(0, 1, 2)) -> GridSearchCV:
    """Grid search by the task's AUC (:func:`auc_scorer`) over ``cv`` (a :class:`PatientKFold`); refits on all rows."""
    return GridSearchCV(pipeline, grid, scoring=auc_scorer(classes), cv=cv, refit=True, n_jobs=1,
                        error_score="raise")


def nested_cv(search: GridSearchCV, X: pd.DataFrame, y, outer_cv, n_jobs: int = 1, classes=None):
    """Nested cross-validation and the final refit, run side by side.

    The whole ``search`` (every preprocessing, selection and tuning step in it) is refitted on each
    outer training part and predicts the outer held-out part it never saw, so the training cohort's
    performance is measured on data the model was not tuned on. The final model, tuned on all rows,
    is fitted in the same pool of workers.

    Parameters
    ----------
    search : GridSearchCV
    X : DataFrame, shape (n, p), indexed by vertebra id
    y : array-like, shape (n,)
    outer_cv : splitter (a :class:`PatientKFold`)
    n_jobs : int
        Worker processes for the outer folds and the final fit (-1: all cores).
    classes : tuple of int, optional
        The task's class codes (columns ``p<k>``); default: the codes present in ``y``.

    Returns
    -------
    proba : DataFrame, shape (n, n_classes), out-of-fold probabilities indexed like ``X``
    chosen : list of dict, the parameters chosen in each outer fold
    final : GridSearchCV fitted on all rows
    """
    from sklearn.utils.parallel import Parallel, delayed  # carries scikit-learn's config and warning filters

    y = np.asarray(y)
    folds = list(outer_cv.split(X, y))
    parts = [train for train, _ in folds] + [np.arange(len(X))]
    fitted = Parallel(n_jobs=n_jobs)(delayed(clone(search).fit)(X.iloc[rows], y[rows]) for rows in parts)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    proba = np.zeros((len(X), len(classes)))
    for est, (_, test) in zip(fitted, folds):  # a class absent from an outer training part gets probability 0
        proba[np.ix_(test, np.searchsorted(classes, est.classes_))] = est.predict_proba(X.iloc[test])
    chosen = [est.best_params_ for est in fitted[:-1]]
    return pd.DataFrame(proba, index=X.index, columns=[f"p{k}" for k in classes]), chosen, fitted[-1]


def baseline_logistic(seed: int = 0, n_splits: int = 5) -> GridSearchCV:
    """Plain radiomics baseline: variance filter, z-scoring, L2 logistic regression.

    ``C`` is chosen from 10^-3..10^1 by macro one-vs-rest AUC in stratified 5-fold CV grouped by
    patient (fit with ``groups=patient_id``), so no patient is in a training and a validation fold.
    """
    pipe = Pipeline([
        ("variance", VarianceThreshold(1e-12)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=5000, class_weight="balanced")),
    ])
    return GridSearchCV(pipe, {"clf__C": np.logspace(-3, 1, 9)}, scoring="roc_auc_ovr",
                        cv=StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed), n_jobs=1)
