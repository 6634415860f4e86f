"""Classifiers as scikit-learn Pipelines, tuned with patient-grouped cross-validation."""

from __future__ import annotations

import numpy as np
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


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
