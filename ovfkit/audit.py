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


#: The audit's fixed sizes: features the lean model keeps, the patients' share in each repeat's test set, the
#: inner folds that choose a classifier or a penalty, the share of the main center a random "external" split
#: holds out, the folds of every out-of-fold estimate, and the penalties of the tuning grid.
K_FEATURES = 20
TEST_SIZE = 0.3
INNER_FOLDS = 3
EXTERNAL_TEST_SIZE = 0.2
FOLDS = 5
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def lean_model(k: int = K_FEATURES, C: float = 1.0) -> Pipeline:
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


def _oof_proba(model, X: pd.DataFrame, y: pd.Series, classes, split) -> np.ndarray:
    """Out-of-fold class probabilities, shape (n_rows, n_classes), of ``model`` over the folds ``split``."""
    proba = np.zeros((len(y), len(classes)))
    for train, test in split:
        m = clone(model)
        if hasattr(m.named_steps.get("select"), "k"):
            m.set_params(select__k=min(m.named_steps["select"].k, X.shape[1]))
        m.fit(X.iloc[train], y.iloc[train])
        proba[test] = pd.DataFrame(m.predict_proba(X.iloc[test]), columns=m.classes_).reindex(
            columns=list(classes), fill_value=0.0).to_numpy()
    return proba


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


def zscoring_on_all_rows(data, train, test, model, seed):
    """Shortcut: the z-scoring's means and SDs from every row, test rows included (no label)."""
    scaled = StandardScaler().set_output(transform="pandas").fit(data.X).transform(data.X)
    shortcut = AuditData(scaled, data.y, data.groups, data.center, data.classes)
    return {"honest": _fit_auc(model, data, train, test),
            "shortcut": _fit_auc(clone(model).set_params(scale="passthrough"), shortcut, train, test)}


def _inner_splits(data, train, seed, folds: int = INNER_FOLDS):
    return list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(
        data.X.iloc[train], data.y.iloc[train], data.groups.iloc[train]))


def tuning_on_test(data, train, test, model, seed, grid=C_GRID):
    """Honest: the penalty C of :data:`C_GRID` with the best inner cross-validated AUC on the training rows;
    shortcut: the C with the best test AUC."""
    inner = _inner_splits(data, train, seed)
    cv_auc, test_auc = {}, {}
    for C in grid:
        candidate = clone(model).set_params(model__C=C)
        cv_auc[C] = np.nanmean([_fit_auc(candidate, data, train[a], train[b]) for a, b in inner])
        test_auc[C] = _fit_auc(candidate, data, train, test)
    chosen, best = max(cv_auc, key=cv_auc.get), max(test_auc, key=test_auc.get)
    return {"honest": test_auc[chosen], "shortcut": test_auc[best], "choice_honest": f"C = {chosen:g}",
            "choice_shortcut": f"C = {best:g}"}


def best_of_nine_on_test(data, train, test, model, seed, names=models.MODEL_NAMES):
    """Honest: the classifier with the best inner cross-validated AUC on the training rows; shortcut: the
    best test AUC of the nine."""
    inner = _inner_splits(data, train, seed)
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


def random_split_as_external(data, train, test, model, seed, test_size: float = EXTERNAL_TEST_SIZE):
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
    "z-scoring on all rows": zscoring_on_all_rows,
    "harmonization on all rows": harmonization_on_all_rows,
    "tuning on test": tuning_on_test,
    "best of nine on test": best_of_nine_on_test,
    "training AUC": training_auc,
    "random split as external": random_split_as_external,
}


def run(data: AuditData, pitfalls=tuple(PITFALLS), *, n_repeats: int = 10, test_size: float = TEST_SIZE, seed: int = 0,
        model: Pipeline | None = None, progress: bool = False, n_jobs: int = 1) -> pd.DataFrame:
    """Every pitfall, honest and shortcut, over ``n_repeats`` patient-level resplits.

    Repeat ``r`` draws its split with seed ``seed + r`` (GroupShuffleSplit by patient, ``test_size`` of
    the patients); every pitfall of a repeat uses that split, except ``random split as external``, which
    splits the largest center's patients 8:2 with the same seed (its own random draws, such as the
    shortcut's vertebra split, use that seed too). ``n_jobs`` processes share the (pitfall, repeat) runs;
    the table is the same for any ``n_jobs``.

    Returns
    -------
    DataFrame, one row per pitfall and repeat: ``pitfall``, ``repeat``, ``honest``, ``shortcut`` (AUCs),
    ``optimism`` (shortcut - honest), the models chosen where a pitfall chooses one, and ``test_fraction``
    (the share of the resampled rows each repeat tests on, for :func:`optimism_table`'s correction).
    """
    data.check()
    unknown = [p for p in pitfalls if p not in PITFALLS]
    if unknown:
        raise ValueError(f"pitfall(s) {unknown} are not among {list(PITFALLS)}")
    if n_repeats < 2:
        raise ValueError(f"n_repeats={n_repeats}: an interval over repeats needs at least 2")
    model = model if model is not None else lean_model()
    splits = [next(GroupShuffleSplit(1, test_size=test_size, random_state=seed + r).split(data.X, groups=data.groups))
              for r in range(n_repeats)]
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    jobs = [(p, r) for p in pitfalls for r in range(n_repeats)]
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(PITFALLS[p])(data, *splits[r], model, seed + r) for p, r in jobs)
    rows = [{"pitfall": p, "repeat": r, **res}
            for (p, r), res in zip(jobs, tqdm(results, total=len(jobs), desc="audit", disable=not progress))]
    out = pd.DataFrame(rows)
    out["optimism"] = out["shortcut"] - out["honest"]
    out["test_fraction"] = np.where(out["pitfall"] == "random split as external", EXTERNAL_TEST_SIZE, test_size)
    return out


def optimism_table(results: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per pitfall: mean honest and shortcut AUC, mean optimism with a confidence interval over the repeats,
    and the share of repeats in which the shortcut looked better.

    The repeats resample one cohort, so their training sets overlap and their spread understates the
    uncertainty; the interval is Nadeau and Bengio's corrected resampled t (2003): the variance of the mean is
    ``(1 / n + f / (1 - f)) s^2`` for ``n`` repeats that each test on a fraction ``f`` of the rows (the
    ``test_fraction`` column; without it, the plain ``s^2 / n``). It is still an interval for this cohort,
    not for other cohorts. Means are over the repeats where both arms have an AUC (a test set can lack a class).
    """
    rows = []
    for pitfall, g in results.groupby("pitfall", sort=False):
        g = g.dropna(subset=["honest", "shortcut"])
        d = g["optimism"]
        n = len(d)
        f = float(g["test_fraction"].iloc[0]) if "test_fraction" in g and n else None
        factor = 1 / n + f / (1 - f) if f is not None and n else (1 / n if n else np.nan)
        half = sstats.t.ppf(1 - alpha / 2, n - 1) * d.std(ddof=1) * np.sqrt(factor) if n > 1 else np.nan
        row = {"pitfall": pitfall, "repeats": n, "honest AUC": g["honest"].mean(), "shortcut AUC": g["shortcut"].mean(),
               "optimism": d.mean(), "ci_low": d.mean() - half, "ci_high": d.mean() + half,
               "shortcut better (%)": 100 * (d > 0).mean()}
        if "choice_shortcut" in g and g["choice_shortcut"].notna().any():
            row["choice differs (%)"] = 100 * (g["choice_shortcut"] != g["choice_honest"]).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def choice_table(results: pd.DataFrame) -> pd.DataFrame:
    """For the pitfalls that choose (a penalty, a classifier): what each arm chose over the repeats, most often
    first (``"RF (×3), MLP (×2)"``), and the share of repeats in which the two choices differ; one row per study (when
    ``results`` has a ``study`` column) and pitfall."""
    if "choice_shortcut" not in results:
        return pd.DataFrame(columns=["pitfall", "honest arm chose", "shortcut arm chose", "choices differ (%)"])
    rows = results.dropna(subset=["choice_shortcut"])
    keys = [k for k in ("study", "pitfall") if k in rows]

    def counts(values):
        return ", ".join(f"{k} (×{v})" for k, v in values.value_counts().items())

    return rows.groupby(keys, sort=False).apply(lambda g: pd.Series({
        "honest arm chose": counts(g["choice_honest"]), "shortcut arm chose": counts(g["choice_shortcut"]),
        "choices differ (%)": 100 * (g["choice_honest"] != g["choice_shortcut"]).mean()}),
        include_groups=False).reset_index()


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
    X = X.loc[:, X.nunique() > 1]  # a finding this cohort never varies carries nothing
    data = AuditData(X, y, groups, pd.Series("all", index=y.index), tuple(classes)).check()
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=5000))])
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups)
    proba = _oof_proba(model, X, y, classes, split)
    return metrics.auc_score(data.y.to_numpy(), proba, data.classes)


#: What the synthetic phantom draws into each modality's image (:mod:`ovfkit.synth`): the findings an image model
#: could read. ``cleft`` is the intravertebral vacuum cleft or fluid; marrow edema itself is not drawn, only the
#: condensation band that often comes with it; endplate sclerosis and osteophytes are drawn on radiographs only.
VISIBLE = {
    "xray": ("morphology", "height_loss", "retropulsion_mm", "condensation_band", "endplate_sclerosis", "osteophyte",
             "cleft", "bmd_tscore"),
    "ct": ("morphology", "height_loss", "retropulsion_mm", "condensation_band", "cleft", "bmd_tscore"),
}


def truth_findings(truth: pd.DataFrame, manifest: pd.DataFrame, modality: str, *, clinical: bool = False) -> pd.DataFrame:
    """The true findings that the phantom drew into each vertebra's image (:data:`VISIBLE`), from the synthetic
    cohort's ``truth.csv``.

    Parameters
    ----------
    truth : DataFrame
        ``truth.csv`` indexed by vertebra id (:func:`ovfkit.acute_chronic._truth`).
    manifest : DataFrame
        The loaded manifest (its ``bmd_tscore``); its index chooses and orders the rows.
    modality : {"xray", "ct"}
    clinical : bool
        Add the clinical finding (pain pattern, neurology), which no image shows.

    Returns
    -------
    DataFrame, shape (n_vertebrae, len(VISIBLE[modality]) [+ 1]), indexed like ``manifest``.
    """
    if modality not in VISIBLE:
        raise ValueError(f"modality {modality!r} is not one of {', '.join(VISIBLE)}")
    missing = manifest.index.difference(truth.index)
    if len(missing):
        raise ValueError(f"truth.csv has no row for {len(missing)} manifest vertebra(e) (first: {missing[0]}); "
                         "it must come from the same synthetic cohort as the manifest")
    t = truth.loc[manifest.index]

    def flag(c):
        return t[c].astype(str).str.lower().eq("true").astype(float) if t[c].dtype == object else t[c].astype(float)

    every = pd.DataFrame({
        "morphology": t["morphology_finding"].astype(str), "height_loss": t["height_loss"].astype(float),
        "retropulsion_mm": t["retropulsion_mm"].astype(float),
        **{c: flag(c) for c in ("condensation_band", "endplate_sclerosis", "osteophyte")},
        "cleft": t["mri_finding"].where(t["mri_finding"].isin(["vacuum_cleft", "fluid"]), "none").astype(str),
        "bmd_tscore": manifest["bmd_tscore"].astype(float)}, index=manifest.index)
    out = every[list(VISIBLE[modality])]
    if clinical:
        out = out.assign(clinical=t["clinical_finding"].astype(str))
    return out


#: The rows of :func:`ceiling_table`.
SHOWN, WITH_CLINICAL = "the findings the image shows", "those and the clinical finding"


def ceiling_table(truth: pd.DataFrame, manifest: pd.DataFrame, modality: str, y: pd.Series, classes, *,
                  folds: int = FOLDS, seed: int = 0) -> pd.DataFrame:
    """:func:`ceiling` from what the image shows, and from that plus the clinical record (one row each)."""
    groups = manifest["patient_id"].astype(str)
    rows = []
    for what, clinical in ((SHOWN, False), (WITH_CLINICAL, True)):
        found = truth_findings(truth, manifest, modality, clinical=clinical)
        varies = [c for c in found.columns if found[c].nunique() > 1]  # what this design never draws carries nothing
        rows.append({"model given": what, "findings": ", ".join(varies),
                     "AUC": ceiling(found, y.loc[manifest.index], groups, classes, folds=folds, seed=seed)})
    return pd.DataFrame(rows)


def study_data(manifest: pd.DataFrame, settings, *, cache_dir, n_jobs: int = 1) -> tuple[AuditData, pd.DataFrame]:
    """The audit's data for one study: reader 1's radiomics features (the study's parameter file, from the
    run's cache), the study's label, patients and centers.

    Vertebrae whose extraction failed and features that are not finite for every vertebra (or constant) are
    left out and returned, so that the page can name them.

    Parameters
    ----------
    manifest : DataFrame
        A loaded manifest (:func:`ovfkit.manifest.load_manifest`).
    settings : Settings
        The study's settings (:func:`ovfkit.settings.settings`): its task and parameter file.
    cache_dir : path
        The run's cache folder (features under ``cache_dir/radiomics``).

    Returns
    -------
    data : AuditData
    dropped : DataFrame
        One row per vertebra or feature left out: ``what`` (``vertebra`` or ``feature``), ``name``, ``reason``.
    """
    from pathlib import Path

    from ovfkit import radiomics

    params = settings.radiomics_params or radiomics.default_params(settings.modality)
    X = radiomics.extract_manifest(manifest, params, cache_dir=Path(cache_dir) / "radiomics", n_jobs=n_jobs,
                                   progress=False)
    dropped = [{"what": "vertebra", "name": f["vertebra_id"], "reason": f"radiomics extraction failed: {f['reason']}"}
               for f in X.attrs.get("failures", [])]
    values = X.to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=0)
    constant = np.nanstd(values, axis=0) == 0
    dropped += [{"what": "feature", "name": c, "reason": "not finite for every vertebra"} for c in X.columns[bad]]
    dropped += [{"what": "feature", "name": c, "reason": "the same value for every vertebra"}
                for c in X.columns[constant & ~bad]]
    X = X.loc[:, ~(bad | constant)].astype(float)
    m = manifest.loc[X.index]
    data = AuditData(X, settings.task.labels(m), m["patient_id"].astype(str), m["center"].astype(str),
                     tuple(settings.task.classes)).check()
    return data, pd.DataFrame(dropped, columns=["what", "name", "reason"])


def oof_proba(data: AuditData, *, folds: int = FOLDS, seed: int = 0, model: Pipeline | None = None) -> np.ndarray:
    """The lean model's out-of-fold class probabilities, shape (n_vertebrae, n_classes), over ``folds``
    patient-grouped folds (``StratifiedGroupKFold``, seed ``seed``: the folds of :func:`ceiling` too)."""
    model = model if model is not None else lean_model()
    data.check()
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y, data.groups)
    return _oof_proba(model, data.X, data.y, data.classes, split)


def oof_auc(data: AuditData, *, folds: int = FOLDS, seed: int = 0) -> float:
    """The headline AUC (:func:`ovfkit.metrics.auc_score`) of :func:`oof_proba`."""
    return metrics.auc_score(data.y.to_numpy(), oof_proba(data, folds=folds, seed=seed), data.classes)


def clustering_table(data: AuditData, *, folds: int = FOLDS, seed: int = 0, model: Pipeline | None = None) -> pd.DataFrame:
    """How much treating a patient's vertebrae as independent narrows the AUC's standard error, on this cohort.

    The lean model's out-of-fold probabilities (:func:`oof_proba`) are scored one class against the rest
    (the positive class alone for two classes); for each, DeLong's standard error with every vertebra
    independent and Obuchowski's with the vertebrae clustered by patient (:func:`ovfkit.stats.clustering_effect`).

    Returns
    -------
    DataFrame, one row per class: ``class``, ``auc``, ``se_independent``, ``se_clustered``, ``narrowing``
    (1 - independent / clustered SE), and the cohort's ``vertebrae per patient`` (mean).
    """
    from ovfkit import stats

    proba = oof_proba(data, folds=folds, seed=seed, model=model)
    shown = data.classes[1:] if len(data.classes) == 2 else data.classes
    rows = []
    for k in shown:
        i = list(data.classes).index(k)
        effect = stats.clustering_effect((data.y == k).astype(int).to_numpy(), {"model": proba[:, i]},
                                         data.groups.to_numpy()).iloc[0]
        rows.append({"class": k, "auc": effect["estimate"], "se_independent": effect["se_independent"],
                     "se_clustered": effect["se_clustered"], "narrowing": effect["narrowing"]})
    out = pd.DataFrame(rows)
    out["vertebrae per patient"] = data.groups.value_counts().mean()
    return out


DEEP_PITFALL = "fine-tuning without cross-fitting"
DEEP_KINDS = ("cross-fitted", "in-sample")


def deep_leak(tables: dict, y: pd.Series, groups: pd.Series, train, test, classes, *, n_repeats: int = 5,
              folds: int = FOLDS, seed: int = 0, model: Pipeline | None = None) -> pd.DataFrame:
    """The deep fine-tuning pitfall: what a pipeline's cross-validation on the training rows claims, against
    what the same pipeline reaches on test rows that no network and no classifier saw.

    Each kind of deep features (``tables``) makes a pipeline: the lean model on those features. Its claim is
    the AUC of ``folds``-fold patient-grouped cross-validation on the ``train`` rows (repeated with seeds
    ``seed + r``); its truth is the AUC on the ``test`` rows of the lean model fitted on every ``train`` row.
    With ``in-sample`` features (one network fine-tuned on every training row: each training row's features
    have seen its label) the claim is optimistic; with ``cross-fitted`` ones (each training row's features from
    a network that never saw its patient) it should not be. The pitfall's rows (:func:`run`'s format) take the
    in-sample pipeline: ``honest`` is its test AUC (the same in every repeat), ``shortcut`` its cross-validated
    claim; the cross-fitted pipeline's two AUCs ride along as ``control_cv`` and ``control_test``.

    Parameters
    ----------
    tables : dict
        ``{"cross-fitted": DataFrame, "in-sample": DataFrame}``: deep features (:func:`deep_tables`) of every
        ``train`` and ``test`` row, indexed by vertebra id.
    y, groups : Series
        Label and patient of every row, indexed by vertebra id.
    train, test : index-like
        Vertebra ids of the training rows (the networks' training cohort) and of the test rows (a held-out
        cohort of the same center, so that only the leak separates claim from truth).

    Returns
    -------
    DataFrame: ``pitfall``, ``repeat``, ``honest``, ``shortcut``, ``optimism``, ``control_cv``,
    ``control_test``, ``test_fraction`` (1 / folds).
    """
    if set(tables) != set(DEEP_KINDS):
        raise ValueError(f"tables has {sorted(tables)}; pass both 'cross-fitted' and 'in-sample' deep features")
    train, test = pd.Index(train), pd.Index(test)
    for how, X in tables.items():
        missing = train.append(test).difference(X.index)
        if len(missing):
            raise ValueError(f"the {how} deep features lack {len(missing)} vertebra(e) (first: {missing[0]})")
    model = model if model is not None else lean_model()
    truth = {}
    for how, X in tables.items():
        fitted = clone(model).set_params(select__k=min(model.named_steps["select"].k, X.shape[1]))
        fitted.fit(X.loc[train], y.loc[train])
        truth[how] = _auc(fitted, X.loc[test], y.loc[test], tuple(classes))
    out = []
    for r in range(n_repeats):
        split = list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed + r).split(
            train, y.loc[train], groups.loc[train]))
        claim = {how: metrics.auc_score(y.loc[train].to_numpy(), _oof_proba(model, X.loc[train], y.loc[train],
                                                                             classes, split), tuple(classes))
                 for how, X in tables.items()}
        out.append({"pitfall": DEEP_PITFALL, "repeat": r, "honest": truth["in-sample"], "shortcut": claim["in-sample"],
                    "control_cv": claim["cross-fitted"], "control_test": truth["cross-fitted"]})
    res = pd.DataFrame(out)
    res["optimism"] = res["shortcut"] - res["honest"]
    res["test_fraction"] = 1 / folds
    return res


#: How the audit's tables name each part of the book (:data:`ovfkit.runner.PARTS`).
STUDY_LABELS = {"xray": "ASTLOF, X-ray", "ct": "ASTLOF, CT", "acute-chronic": "acute vs chronic, CT",
                "fresh-old": "fresh vs old, X-ray"}


def applicable(data: AuditData) -> tuple[list, dict]:
    """The pitfalls of :data:`PITFALLS` that apply to ``data``, and for the others why not: a one-center cohort
    has no other center to compare a random split with, and nothing for ComBat to harmonize."""
    reasons = {}
    if data.center.nunique() < 2:
        reasons["random split as external"] = "one center: no other center's patients to compare with"
        reasons["harmonization on all rows"] = "one center: ComBat has no batches to harmonize"
    return [p for p in PITFALLS if p not in reasons], reasons


def deep_tables(manifest: pd.DataFrame, settings, *, backbone: str, cache_dir, cohorts=("train", "internal"),
                progress: bool = False) -> dict:
    """Deep features of ``backbone`` for the ``cohorts`` rows, cross-fitted (the book's, from its cache) and
    in-sample (one network fine-tuned on every training row: the shortcut), for :func:`deep_leak`."""
    from pathlib import Path

    from ovfkit import deep

    rows = manifest.index[manifest["cohort"].isin(cohorts)]
    out = {}
    for how in DEEP_KINDS:
        table = deep.deep_features(manifest, backbone, settings.deep, cache_dir=Path(cache_dir) / "deep",
                                   task=settings.task, training_rows=how, progress=progress).features
        out[how] = table.loc[table.index.intersection(rows)]
    return out


def summary(optimism: pd.DataFrame, ceilings: pd.DataFrame, clustering: pd.DataFrame) -> list[str]:
    """The audit's findings in words, from its tables (each needs a ``study`` column).

    Parameters
    ----------
    optimism : DataFrame
        :func:`optimism_table` rows.
    ceilings : DataFrame
        :func:`ceiling_table` rows, plus ``model AUC`` (the lean model's out-of-fold AUC, :func:`oof_auc`) and
        ``label`` (``astlof`` or another task's name) per study.
    clustering : DataFrame
        :func:`clustering_table` rows.
    """
    out = []
    if len(optimism):
        sure = optimism[optimism["ci_low"] > 0]
        if len(sure):
            top = sure.loc[sure["optimism"].idxmax()]
            out.append(f"Of the shortcuts whose optimism is above zero beyond its interval, **{top['pitfall']}** "
                       f"({top['study']}) has the largest: its AUC is {top['optimism']:+.3f} above the honest one "
                       f"(95% interval {top['ci_low']:+.3f} to {top['ci_high']:+.3f}; {top['honest AUC']:.3f} honest, "
                       f"{top['shortcut AUC']:.3f} reported)"
                       + (": an interval over cross-validation seeds that leaves out the test AUC's own sampling error."
                          if top["pitfall"] == DEEP_PITFALL else "."))
            per = sure.groupby("pitfall", sort=False)["study"].size()
            total = optimism.groupby("pitfall", sort=False)["study"].size()
            out.append("Optimism above zero beyond the interval: " + "; ".join(
                f"{p} ({per[p]} of {total[p]} studies)" for p in per.index) + ".")
            rest = [p for p in total.index if p not in per.index]
            if rest:
                out.append("No study shows an optimism beyond its interval for: " + ", ".join(rest) + ".")
        else:
            out.append("No shortcut's optimism is above zero beyond its interval on any study.")
    if len(ceilings):
        shown = ceilings[ceilings["model given"] == SHOWN]
        out.append("Given every finding the image shows, a linear model reaches AUC "
                   + ", ".join(f"{r.AUC:.3f} ({r.study})" for r in shown.itertuples())
                   + "; the audit's radiomics model, on the same folds, "
                   + ", ".join(f"{v:.3f}" for v in shown["model AUC"])
                   + ".")
        wide = ceilings.pivot(index="study", columns="model given", values="AUC")
        gain = (wide[WITH_CLINICAL] - wide[SHOWN]).reindex(shown["study"])
        label = shown.set_index("study")["label"]
        astlof = [f"{gain[s]:+.3f} ({s})" for s in gain.index if label[s] == "astlof"]
        other = [f"{gain[s]:+.3f} ({s})" for s in gain.index if label[s] != "astlof"]
        if astlof:
            out.append("Adding the clinical finding, one of the four scored ASTLOF components and drawn in no image, "
                       f"changes that reach by {', '.join(astlof)}: a share of the ASTLOF label no image model can read.")
        if other:
            out.append(f"For the acute/fresh vs chronic/old labels the clinical finding is only a correlate; adding it "
                       f"changes the reach by {', '.join(other)}.")
    if len(clustering):
        worst = clustering.loc[clustering["narrowing"].idxmax()]
        where = (f"{worst['study']}, class {worst['class']}, {worst['vertebrae per patient']:.2f} vertebrae per "
                 "patient")
        if worst["narrowing"] > 0:
            out.append(f"Treating a patient's vertebrae as independent makes the AUC's standard error up to "
                       f"{100 * worst['narrowing']:.0f}% too small ({where}); Obuchowski's clustered variance "
                       "accounts for the clustering.")
        else:
            out.append("Treating a patient's vertebrae as independent does not make the AUC's standard error too "
                       f"small on these cohorts (at most {100 * worst['narrowing']:.0f}%, {where}).")
    return out
