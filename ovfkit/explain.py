"""SHAP explanations of a fitted fusion pipeline, per class, grouped by feature family.

The classifier is explained in the space it sees: the selected, z-scored features (the pipeline's
steps before ``clf`` transform the rows). The explainer follows the model:

==============================  ================================  ==========================================
classifier                      explainer                         output explained
==============================  ================================  ==========================================
LR                              ``shap.LinearExplainer``          log-odds (softmax margin) per class;
                                                                  background: the training rows
RF, ExtraTrees, DT              ``shap.TreeExplainer``            probability per class (exact, path-dependent)
XGBoost, LightGBM               ``shap.TreeExplainer``            margin (log-odds) per class
SVM, KNN, MLP                   ``shap.KernelExplainer``          probability per class; background: 20
                                                                  k-means centres of the training rows
                                                                  (``shap.kmeans``), 200 coalitions per case,
                                                                  at most ``max_kernel_cases`` cases
==============================  ================================  ==========================================

What SHAP does not show: it attributes a model's output to its inputs for these data; it is not causal,
says nothing about the fracture itself, and correlated features share or trade credit arbitrarily. A
texture feature with a large SHAP value is a feature the model leans on, not a mechanism.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ovfkit.fusion import family_of
from ovfkit.models import BalancedSampleWeight

TREE = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "XGBClassifier", "LGBMClassifier")

# Features the papers name as the most important (SHAP), matched on the PyRadiomics feature name.
PAPER_FEATURES = {
    "zhang2024": ["SmallDependenceLowGrayLevelEmphasis"],
    "liu2025": ["ClusterShade", "Mean", "LargeAreaLowGrayLevelEmphasis"],
}


@dataclass
class Explanation:
    """SHAP values of the explained cases: ``values[i, j, c]`` for case i, feature j, output c.

    The outputs are the classes in :attr:`classes`: every class of a three-class model, and the positive
    class alone (code 1) of a binary one, whose class-0 output is the mirror image.
    """

    values: np.ndarray  # (n_cases, n_features, n_outputs)
    base_values: np.ndarray  # (n_cases, n_outputs)
    data: pd.DataFrame  # the explained cases in the classifier's feature space
    explainer: str
    output: str
    classes: tuple = (0, 1, 2)  # the class code of each output

    @property
    def features(self) -> list:
        return list(self.data.columns)

    def for_class(self, k: int):
        """A ``shap.Explanation`` of class ``k`` for shap's own plots."""
        import shap

        if k not in self.classes:
            raise ValueError(f"class {k} is not explained here; the outputs are classes {list(self.classes)}")
        j = self.classes.index(k)
        return shap.Explanation(values=self.values[:, :, j], base_values=self.base_values[:, j],
                                data=self.data.to_numpy(), feature_names=self.features)


def _final_estimator(clf):
    return clf.estimator_ if isinstance(clf, BalancedSampleWeight) else clf


def explain(pipeline, X_background: pd.DataFrame, X_explain: pd.DataFrame, *, seed: int = 0,
            max_kernel_cases: int = 60) -> Explanation:
    """SHAP values of a fitted early-fusion pipeline (see the module table for the explainer).

    Parameters
    ----------
    pipeline : fitted Pipeline whose last step is ``clf``
    X_background : DataFrame
        Training rows (raw features), the background of linear and kernel explainers.
    X_explain : DataFrame
        Rows to explain (raw features).
    seed : int
        Seeds the kernel explainer's coalition sampling (NumPy's global generator).
    """
    import shap

    prep, clf = pipeline[:-1], pipeline[-1]
    Zb = prep.transform(X_background)
    Z = prep.transform(X_explain)
    model = _final_estimator(clf)
    name = type(model).__name__
    if name == "LogisticRegression":
        res = shap.LinearExplainer(model, Zb)(Z)
        values, base, kind, output = res.values, res.base_values, "LinearExplainer", "log-odds"
    elif name in TREE:
        res = shap.TreeExplainer(model)(Z)
        values, base = res.values, res.base_values
        kind = "TreeExplainer"
        output = "log-odds" if name in ("XGBClassifier", "LGBMClassifier") else "probability"
    else:
        np.random.seed(seed)
        Z = Z.iloc[:max_kernel_cases]
        background = shap.kmeans(Zb, min(20, len(Zb)))
        columns = Z.columns

        def predict(a):  # shap passes arrays; the classifier was fitted with feature names
            return clf.predict_proba(pd.DataFrame(a, columns=columns))

        explainer = shap.KernelExplainer(predict, background)
        values = np.asarray(explainer.shap_values(Z, nsamples=200, silent=True))
        base = np.tile(np.asarray(explainer.expected_value), (len(Z), 1))
        kind, output = "KernelExplainer", "probability"
    values = np.asarray(values)
    base = np.asarray(base).reshape(len(Z), -1)
    if values.ndim == 2:  # a single output (binary LR, XGBoost, LightGBM): the positive class's margin
        values = values[:, :, None]
    elif values.shape[2] == 2:  # a binary model explained per class: keep the positive class
        values, base = values[:, :, 1:], base[:, 1:]
    classes = (1,) if values.shape[2] == 1 else tuple(range(values.shape[2]))
    return Explanation(values, base, Z.reset_index(drop=True), kind, output, classes)


def importance(expl: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP value per feature and class, with the feature's family; sorted by the total."""
    mean_abs = np.abs(expl.values).mean(axis=0)  # (features, classes)
    table = pd.DataFrame(mean_abs, index=expl.features, columns=[f"class {k}" for k in expl.classes])
    table["all classes"] = table.sum(axis=1)
    table["family"] = [family_of(f) for f in expl.features]
    return table.sort_values("all classes", ascending=False)


def family_importance(expl: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP summed over the features of each family (PyRadiomics class or deep backbone)."""
    return importance(expl).groupby("family").sum(numeric_only=True).sort_values("all classes", ascending=False)


def paper_features_table(expl: Explanation, top: int = 10) -> pd.DataFrame:
    """Where the features the papers name rank in this model (rank by total mean |SHAP|; - if not selected)."""
    imp = importance(expl)
    ranks = {f: i + 1 for i, f in enumerate(imp.index)}
    rows = []
    for paper, names in PAPER_FEATURES.items():
        for name in names:
            hits = [f for f in imp.index if f.split("_", 2)[-1] == name]
            rows.append({"paper": paper, "feature named": name,
                         "selected here as": ", ".join(hits) if hits else "-",
                         "best rank here": min(ranks[f] for f in hits) if hits else None,
                         f"in this model's top {top}": any(ranks[f] <= top for f in hits)})
    return pd.DataFrame(rows)
