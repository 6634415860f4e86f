"""Fusion of hand-crafted radiomics and deep features, as whole scikit-learn Pipelines.

One feature table holds every source side by side: radiomics columns keep PyRadiomics' names, deep
columns are named ``<backbone>/<column>`` (:func:`feature_table`). A variant picks its sources:

* **single source**: radiomics only, or one backbone's deep features only;
* **early fusion** (the papers): each source is prepared on its own (radiomics: variance filter, ICC
  >= 0.8, ComBat, Spearman 0.9; deep: variance filter, PCA), the results are concatenated, z-scored and
  selected together by LASSO (and, as liu2025, a second correlation filter at 0.5), then classified;
* **late fusion** (stacking): one pipeline per source, each ending in a logistic regression, and a
  logistic regression on their out-of-fold class probabilities (patient-grouped folds).

Every data-dependent step is inside the pipeline, so cross-validation refits it in every fold, with two
stated exceptions: :class:`~ovfkit.reliability.ICCFilter` looks up an ICC measured once on the training
vertebrae outlined twice, and :class:`~ovfkit.harmonize.ComBat` estimates an unseen center's batch effect
from that center's own rows when it transforms them (``FusionSettings(combat=False)`` leaves it out).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ovfkit.select import DeepPCA
from ovfkit.harmonize import ComBat
from ovfkit.models import PatientKFold
from ovfkit.reliability import ICCFilter
from ovfkit.select import CorrelationFilter, LassoSelector

RADIOMICS = "radiomics"
#: Suffix of a variant fitted without ComBat (the sensitivity analysis of its transductive step).
NO_COMBAT = ", no ComBat"
SEP = "/"  # backbone/column: LightGBM refuses ':' and other JSON characters in feature names


def feature_table(radiomics: pd.DataFrame, deep: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Radiomics and each backbone's deep features side by side, rows = vertebrae present in all.

    Parameters
    ----------
    radiomics : DataFrame, shape (n, p_radiomics)
    deep : dict backbone name -> DataFrame, shape (n, 2048)

    Returns
    -------
    DataFrame; deep columns renamed ``<backbone>/<column>``.
    """
    for name in deep:
        if SEP in name or "__" in name or name == RADIOMICS:
            raise ValueError(f"backbone name {name!r} may not contain {SEP!r} or '__' or be 'radiomics'")
    parts = [radiomics] + [d.add_prefix(f"{name}{SEP}") for name, d in deep.items()]
    rows = parts[0].index
    for p in parts[1:]:
        rows = rows.intersection(p.index, sort=False)
    return pd.concat([p.loc[rows] for p in parts], axis=1)


def source_of(feature: str) -> str:
    """``radiomics`` or the backbone a (possibly PCA-reduced) feature name comes from."""
    return feature.split(SEP, 1)[0] if SEP in feature else RADIOMICS


def columns_of(columns, sources) -> list:
    """The column names (of a feature table) that come from ``sources`` (``radiomics`` and/or backbones)."""
    wanted = set(sources)
    return [c for c in columns if source_of(c) in wanted]


def count_by_source(features) -> str:
    """Selected features counted as the papers count them, e.g. ``"14 radiomics + 3 proxy-medical"``."""
    counts = pd.Series([source_of(f) for f in features]).value_counts()
    order = [RADIOMICS] + sorted(s for s in counts.index if s != RADIOMICS)
    return " + ".join(f"{counts[s]} {s}" for s in order if s in counts) or "0 features"


@dataclass(frozen=True)
class FusionSettings:
    """Settings of the selection cascade (defaults: the papers')."""

    icc_threshold: float = 0.8
    spearman_threshold: float = 0.9
    deep_components: int = 32
    lasso_cv: int = 10
    post_lasso_threshold: float | None = None  # liu2025: 0.5
    seed: int = 0
    combat: bool = True  # False: the sensitivity analysis without ComBat, or one scanner (zhang2023)
    lasso_method: str = "lasso"  # LassoSelector's method; "logistic" for a binary label (zhang2023)
    select_sources_first: bool = False  # zhang2023: each source's own LASSO, then fusion and LASSO again


@dataclass(frozen=True)
class Context:
    """What the pipeline needs to know about every vertebra, indexed by vertebra id."""

    icc: pd.Series  # feature name -> ICC between readers
    batch: pd.Series  # center
    covariates: pd.DataFrame  # age, sex
    groups: pd.Series  # patient

    @classmethod
    def from_manifest(cls, manifest: pd.DataFrame, icc: pd.Series) -> "Context":
        return cls(icc=icc, batch=manifest["center"], covariates=manifest[["age", "sex"]],
                   groups=manifest["patient_id"])


def _source_steps(source: str, ctx: Context, settings: FusionSettings):
    if source == RADIOMICS:
        combat = [("combat", ComBat(batch=ctx.batch, covariates=ctx.covariates, categorical=["sex"],
                                    continuous=["age"], unseen="reference"))] if settings.combat else []
        return Pipeline([("variance", VarianceThreshold()),
                         ("icc", ICCFilter(icc=ctx.icc, threshold=settings.icc_threshold)),
                         *combat,
                         ("spearman", CorrelationFilter("spearman", settings.spearman_threshold))])
    return Pipeline([("variance", VarianceThreshold()),
                     ("pca", DeepPCA(n_components=settings.deep_components, prefix=f"{source}{SEP}",
                                     random_state=settings.seed))])


def prepare(sources, X: pd.DataFrame, ctx: Context, settings: FusionSettings) -> ColumnTransformer:
    """Per-source preparation (ICC, ComBat, Spearman for radiomics; PCA for deep), side by side.

    With ``settings.select_sources_first`` and more than one source, each source's chain also ends in its
    own z-score, LASSO (and post-LASSO filter): the sources are fused after each was selected (zhang2023).
    """
    steps = []
    for source in sources:
        cols = columns_of(X.columns, [source])
        if not cols:
            raise ValueError(f"source {source!r} has no column in the feature table (sources there: "
                             f"{sorted({source_of(c) for c in X.columns})})")
        chain = _source_steps(source, ctx, settings)
        if settings.select_sources_first and len(sources) > 1:
            chain = Pipeline(chain.steps + _selecting(ctx, settings))
        steps.append((source, chain, cols))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False).set_output(transform="pandas")


def _selecting(ctx: Context, settings: FusionSettings) -> list[tuple]:
    """z-score, LASSO (, post-LASSO correlation filter)."""
    steps = [("scale", StandardScaler()),
             ("lasso", LassoSelector(method=settings.lasso_method, cv=settings.lasso_cv, groups=ctx.groups,
                                     random_state=settings.seed))]
    if settings.post_lasso_threshold is not None:
        steps.append(("decorrelate", CorrelationFilter("spearman", settings.post_lasso_threshold)))
    return steps


def selection(sources, X, ctx: Context, settings: FusionSettings) -> list[tuple]:
    """The steps before the classifier: prepare, z-score, LASSO (, post-LASSO correlation filter)."""
    return [("prepare", prepare(sources, X, ctx, settings))] + _selecting(ctx, settings)


def early_fusion(sources, X, clf, ctx: Context, settings: FusionSettings, memory=None) -> Pipeline:
    """Prepare each source, concatenate, select together, classify (a single source is the same chain)."""
    return Pipeline(selection(sources, X, ctx, settings) + [("clf", clf)], memory=memory).set_output(
        transform="pandas")


def late_fusion(sources, X, ctx: Context, settings: FusionSettings, memory=None, C: float = 1.0,
                cv_splits: int = 5) -> StackingClassifier:
    """Stacking: one selection chain + logistic regression per source; a logistic regression on top.

    The base models' class probabilities fed to the top model are out-of-fold (patient-grouped folds
    inside the rows ``fit`` sees), as stacking requires.
    """
    base = [(s, early_fusion([s], X, LogisticRegression(C=C, max_iter=5000, class_weight="balanced"), ctx, settings,
                             memory=memory)) for s in sources]
    return StackingClassifier(base, final_estimator=LogisticRegression(max_iter=5000, class_weight="balanced"),
                              cv=PatientKFold(ctx.groups, cv_splits, settings.seed), stack_method="predict_proba",
                              n_jobs=1)


def family_of(feature: str) -> str:
    """Feature family for counting and grouping: the PyRadiomics class (firstorder, shape2D, glcm, ...)
    for radiomics, ``deep <backbone>`` for deep features."""
    source = source_of(feature)
    if source != RADIOMICS:
        return f"deep {source}"
    parts = feature.split("_", 2)
    return parts[1] if len(parts) == 3 else "other"
