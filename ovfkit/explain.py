"""SHAP explanations of a fitted fusion pipeline, per class, grouped by feature family.

The classifier is explained in the space it sees: the selected, z-scored features (the pipeline's
steps before ``clf`` transform the rows). Every model is explained in the same unit, the **predicted
probability** of each class (the model's ``predict_proba``), so that the two modalities' chosen models,
whatever their family, read alike. The explainer follows the model:

==============================  ================================  ==========================================
classifier                      explainer                         output explained
==============================  ================================  ==========================================
RF, ExtraTrees, DT              ``shap.TreeExplainer``            probability per class (exact, path-dependent)
LR, XGBoost, LightGBM           ``shap.PermutationExplainer``     probability per class; background: a seeded
                                                                  sample of ``n_background`` (30) training
                                                                  rows, ``n_permutations`` (10) antithetic
                                                                  permutations per case
SVM, KNN, MLP                   ``shap.KernelExplainer``          probability per class; background: 20
                                                                  k-means centres of the training rows
                                                                  (``shap.kmeans``), 200 coalitions per case,
                                                                  at most ``max_kernel_cases`` cases
==============================  ================================  ==========================================

The exact explainers of LR (``LinearExplainer``) and of the boosted trees (``TreeExplainer``) explain
their margin, the log-odds, not the probability, and shap has no exact probability-scale explainer for
them (a softmax couples the classes). The permutation explainer's values add up exactly to
the predicted probability minus the base value (the background's mean prediction); each value is an
estimate (about 10% of its size differs between two seeds with 10 permutations). ``units="log-odds"``
restores the exact margin explainers (LR, XGBoost, LightGBM; the others stay in probability).
Cost of the permutation explainer (2 shared CPU cores, three classes): 200 cases x 40 features, LR about
8 s, XGBoost 24 s, LightGBM 60 s; 300 cases x 60 features, LR 12 s, XGBoost 50 s, LightGBM 140 s (its
per-row prediction is the slowest). The exact margin explainers take under a second.

What SHAP does not show: it attributes a model's output to its inputs for these data; it is not causal,
says nothing about the fracture itself, and correlated features share or trade credit arbitrarily. A
texture feature with a large SHAP value is a feature the model leans on, not a mechanism.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ovfkit.fusion import family_of
from ovfkit.models import BalancedSampleWeight

TREE = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "XGBClassifier", "LGBMClassifier")
# Models whose exact explainer explains a margin (log-odds); explained in probability by permutation.
MARGIN_MODELS = ("LogisticRegression", "XGBClassifier", "LGBMClassifier")
UNITS = ("probability", "log-odds")

# Features the papers name as the most important (SHAP), matched on the PyRadiomics feature name.
PAPER_FEATURES = {
    "zhang2024": ["SmallDependenceLowGrayLevelEmphasis"],
    "liu2025": ["ClusterShade", "Mean", "LargeAreaLowGrayLevelEmphasis"],
}


def output_unit(output: str, k=None, *, change: bool = True) -> str:
    """What an explained output's numbers are, for an axis label.

    ``output_unit("probability", 1)`` -> "change in predicted probability of class 1";
    ``change=False`` names the output itself ("predicted probability of class 1"). A SHAP value is a
    change in the output; the output itself is what a waterfall's axis and the base value are in.
    """
    what = {"probability": "predicted probability", "log-odds": "log-odds"}.get(output)
    if what is None:
        raise ValueError(f"unknown SHAP output {output!r}; expected 'probability' or 'log-odds'")
    if k is not None:
        what += f" of class {k}"
    return f"change in {what}" if change else what


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

    def axis_label(self, k=None) -> str:
        """The label of an axis of SHAP values: "SHAP value (change in predicted probability of class k)"."""
        return f"SHAP value ({output_unit(self.output, k)})"

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
            max_kernel_cases: int = 60, only=None, units: str = "probability", n_background: int = 30,
            n_permutations: int = 10) -> Explanation:
    """SHAP values of a fitted early-fusion pipeline (see the module table for the explainer).

    Parameters
    ----------
    pipeline : fitted Pipeline whose last step is ``clf``
    X_background : DataFrame
        Training rows (raw features), the background of the linear, permutation and kernel explainers.
    X_explain : DataFrame
        Rows to explain (raw features).
    seed : int
        Seeds the kernel and permutation explainers' sampling (NumPy's global generator) and the
        permutation explainer's background sample.
    only : list of index labels of ``X_explain``, optional
        Explain only these rows. All of ``X_explain`` is still transformed together, as the model saw it:
        ComBat estimates an unseen center from the whole evaluated cohort, so pass the case's cohort.
    units : {"probability", "log-odds"}
        The output explained by LR, XGBoost and LightGBM (see the module table); every other family is
        explained in probability whatever this says. :attr:`Explanation.output` says which it was.
    n_background, n_permutations : int
        The permutation explainer's background rows (a seeded sample of ``X_background``) and
        permutations per case; its cost grows with their product.
    """
    import shap

    if units not in UNITS:
        raise ValueError(f"units={units!r}: expected one of {UNITS}")

    prep, clf = pipeline[:-1], pipeline[-1]
    Zb = prep.transform(X_background)
    Z = prep.transform(X_explain)
    if only is not None:
        missing = [v for v in only if v not in X_explain.index]
        if missing:
            raise ValueError(f"only={missing!r}: not rows of X_explain; pass the case's whole cohort as X_explain")
        Z = Z.iloc[[X_explain.index.get_loc(v) for v in only]]
    model = _final_estimator(clf)
    name = type(model).__name__
    columns = Z.columns

    def predict(a):  # shap passes arrays; the classifier was fitted with feature names
        return clf.predict_proba(pd.DataFrame(a, columns=columns))

    if name in MARGIN_MODELS and units == "probability":
        background = shap.utils.sample(Zb.to_numpy(), min(n_background, len(Zb)), random_state=seed)
        masker = shap.maskers.Independent(background, max_samples=len(background))
        explainer = shap.PermutationExplainer(predict, masker, seed=seed)
        values, base = [], []
        for label, row in zip(Z.index, Z.to_numpy()):
            # each case's permutations come from the seed and its own row label, not from its place in
            # the batch: a case explained alone (``only``) gets the values it gets among its cohort
            np.random.seed((seed + zlib.crc32(str(label).encode())) % 2**32)
            res = explainer(row[None, :], max_evals=n_permutations * (2 * Z.shape[1] + 1), silent=True)
            values.append(res.values[0])
            base.append(res.base_values[0])
        values, base = np.stack(values), np.stack(base)
        kind, output = "PermutationExplainer", "probability"
    elif name == "LogisticRegression":
        res = shap.LinearExplainer(model, Zb)(Z)
        values, base, kind, output = res.values, res.base_values, "LinearExplainer", "log-odds"
    elif name in TREE:
        res = shap.TreeExplainer(model)(Z)
        values, base = res.values, res.base_values
        kind = "TreeExplainer"
        output = "log-odds" if name in MARGIN_MODELS else "probability"
    else:
        np.random.seed(seed)
        Z = Z.iloc[:max_kernel_cases]
        background = shap.kmeans(Zb, min(20, len(Zb)))
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
    table = table.sort_values("all classes", ascending=False)
    table.attrs["output"] = expl.output  # the unit, for the figure's axis labels
    return table


def family_importance(expl: Explanation) -> pd.DataFrame:
    """Mean absolute SHAP summed over the features of each family (PyRadiomics class or deep backbone)."""
    table = importance(expl).groupby("family").sum(numeric_only=True).sort_values("all classes", ascending=False)
    table.attrs["output"] = expl.output
    return table


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
