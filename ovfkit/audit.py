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
    ``optimism`` (shortcut - honest), and the models chosen where a pitfall chooses one.
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
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=5000))])
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups)
    proba = _oof_proba(model, X, y, classes, split)
    return metrics.auc_score(data.y.to_numpy(), proba, data.classes)


#: What the synthetic phantom draws into the image (:mod:`ovfkit.synth`): the findings an image model could read.
#: ``cleft`` is the intravertebral vacuum cleft or fluid (drawn); marrow edema itself is not drawn, only the
#: condensation band that often comes with it.
VISIBLE = ("morphology", "height_loss", "retropulsion_mm", "condensation_band", "endplate_sclerosis", "osteophyte",
           "cleft", "bmd_tscore")


def truth_findings(truth: pd.DataFrame, manifest: pd.DataFrame, *, clinical: bool = False) -> pd.DataFrame:
    """The true findings behind each vertebra's image (:data:`VISIBLE`), from the synthetic cohort's ``truth.csv``.

    Parameters
    ----------
    truth : DataFrame
        ``truth.csv`` indexed by vertebra id (:func:`ovfkit.acute_chronic._truth`).
    manifest : DataFrame
        The loaded manifest (its ``bmd_tscore``); its index chooses and orders the rows.
    clinical : bool
        Add the clinical finding (pain pattern, neurology), which no image shows.

    Returns
    -------
    DataFrame, shape (n_vertebrae, 8 or 9), indexed like ``manifest``.
    """
    missing = manifest.index.difference(truth.index)
    if len(missing):
        raise ValueError(f"truth.csv has no row for {len(missing)} manifest vertebra(e) (first: {missing[0]}); "
                         "it must come from the same synthetic cohort as the manifest")
    t = truth.loc[manifest.index]
    out = pd.DataFrame({
        "morphology": t["morphology_finding"].astype(str), "height_loss": t["height_loss"].astype(float),
        "retropulsion_mm": t["retropulsion_mm"].astype(float),
        **{c: t[c].astype(str).str.lower().eq("true").astype(float) if t[c].dtype == object else t[c].astype(float)
           for c in ("condensation_band", "endplate_sclerosis", "osteophyte")},
        "cleft": t["mri_finding"].where(t["mri_finding"].isin(["vacuum_cleft", "fluid"]), "none").astype(str),
        "bmd_tscore": manifest["bmd_tscore"].astype(float)}, index=manifest.index)
    if clinical:
        out["clinical"] = t["clinical_finding"].astype(str)
    return out


def ceiling_table(truth: pd.DataFrame, manifest: pd.DataFrame, y: pd.Series, classes, *, folds: int = 5,
                  seed: int = 0) -> pd.DataFrame:
    """:func:`ceiling` from what the image shows, and from that plus the clinical record (one row each)."""
    groups = manifest["patient_id"].astype(str)
    rows = []
    for what, clinical in (("the findings the image shows", False), ("those and the clinical finding", True)):
        found = truth_findings(truth, manifest, clinical=clinical)
        rows.append({"model given": what, "findings": ", ".join(found.columns),
                     "AUC": ceiling(found, y.loc[manifest.index], groups, classes, folds=folds, seed=seed)})
    return pd.DataFrame(rows)


def study_data(manifest: pd.DataFrame, settings, *, cache_dir, n_jobs: int = 1) -> tuple[AuditData, pd.DataFrame]:
    """The audit's data for one study: reader 1's radiomics features (the study's parameter file, from the
    run's cache), the study's label, patients and centers.

    Vertebrae whose extraction failed and features that are not finite for every vertebra are left out and
    returned, so that the page can name them.

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


def clustering_table(data: AuditData, *, folds: int = 5, seed: int = 0, model: Pipeline | None = None) -> pd.DataFrame:
    """How much treating a patient's vertebrae as independent narrows the AUC's standard error, on this cohort.

    The lean model's out-of-fold probabilities (patient-grouped folds) are scored one class against the rest
    (the positive class alone for two classes); for each, DeLong's standard error with every vertebra
    independent and Obuchowski's with the vertebrae clustered by patient (:func:`ovfkit.stats.clustering_effect`).

    Returns
    -------
    DataFrame, one row per class: ``class``, ``auc``, ``se_independent``, ``se_clustered``, ``narrowing``
    (1 - independent / clustered SE), and the cohort's ``vertebrae per patient`` (mean).
    """
    from ovfkit import stats

    model = model if model is not None else lean_model()
    data.check()
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y, data.groups)
    proba = _oof_proba(model, data.X, data.y, data.classes, split)
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


def deep_leak(tables: dict, y: pd.Series, groups: pd.Series, classes, *, n_repeats: int = 5, folds: int = 5,
              seed: int = 0, model: Pipeline | None = None) -> pd.DataFrame:
    """The deep fine-tuning pitfall: the cross-validated AUC on the training rows from deep features of a
    network fine-tuned on every training row (``in-sample``: each row's features have seen its label) against
    cross-fitted ones (``cross-fitted``: each row's features come from a network that never saw its patient).

    Parameters
    ----------
    tables : dict
        ``{"cross-fitted": DataFrame, "in-sample": DataFrame}``, the deep features of the training rows
        (:func:`ovfkit.deep.deep_features` with ``training_rows=``), rows indexed by vertebra id.
    y, groups : Series
        Label and patient of every training row.
    n_repeats : int
        Repeated patient-grouped ``folds``-fold cross-validation, repeat ``r`` with seed ``seed + r``.

    Returns
    -------
    DataFrame in :func:`run`'s format: ``pitfall``, ``repeat``, ``honest``, ``shortcut``, ``optimism``.
    """
    if set(tables) != {"cross-fitted", "in-sample"}:
        raise ValueError(f"tables has {sorted(tables)}; pass both 'cross-fitted' and 'in-sample' deep features")
    rows = y.index
    for how, X in tables.items():
        missing = rows.difference(X.index)
        if len(missing):
            raise ValueError(f"the {how} deep features lack {len(missing)} training vertebra(e) (first: {missing[0]})")
    model = model if model is not None else lean_model()
    out = []
    for r in range(n_repeats):
        split = list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed + r).split(rows, y, groups.loc[rows]))
        auc = {}
        for how, X in tables.items():
            proba = _oof_proba(model, X.loc[rows], y, classes, split)
            auc[how] = metrics.auc_score(y.to_numpy(), proba, tuple(classes))
        out.append({"pitfall": DEEP_PITFALL, "repeat": r, "honest": auc["cross-fitted"], "shortcut": auc["in-sample"]})
    res = pd.DataFrame(out)
    res["optimism"] = res["shortcut"] - res["honest"]
    return res


#: How the audit's tables name each part of the book (:data:`ovfkit.runner.PARTS`).
STUDY_LABELS = {"xray": "ASTLOF, X-ray", "ct": "ASTLOF, CT", "acute-chronic": "acute vs chronic, CT",
                "fresh-old": "fresh vs old, X-ray"}


def applicable(data: AuditData) -> tuple[list, dict]:
    """The pitfalls that apply to ``data``, and for the others why not (a one-center cohort has no other
    center to compare a random split with)."""
    reasons = {}
    if data.center.nunique() < 2:
        reasons["random split as external"] = "one center: no other center's patients to compare with"
    return [p for p in PITFALLS if p not in reasons], reasons


def deep_tables(manifest: pd.DataFrame, settings, *, backbone: str, cache_dir, progress: bool = False) -> dict:
    """The training rows' deep features of ``backbone``, cross-fitted (the book's, from its cache) and
    in-sample (one network fine-tuned on every training row: the shortcut), for :func:`deep_leak`."""
    from pathlib import Path

    from ovfkit import deep

    train = manifest.index[manifest["cohort"] == "train"]
    out = {}
    for how in ("cross-fitted", "in-sample"):
        table = deep.deep_features(manifest, backbone, settings.deep, cache_dir=Path(cache_dir) / "deep",
                                   task=settings.task, training_rows=how, progress=progress).features
        out[how] = table.loc[table.index.intersection(train)]
    return out


def summary(optimism: pd.DataFrame, ceilings: pd.DataFrame, clustering: pd.DataFrame) -> list[str]:
    """The audit's findings in words, from its tables (each needs a ``study`` column).

    Parameters
    ----------
    optimism : DataFrame
        :func:`optimism_table` rows.
    ceilings : DataFrame
        :func:`ceiling_table` rows, plus ``honest AUC`` (the lean model's) per study.
    clustering : DataFrame
        :func:`clustering_table` rows.
    """
    out = []
    if len(optimism):
        top = optimism.loc[optimism["optimism"].idxmax()]
        out.append(f"The costliest shortcut is **{top['pitfall']}** ({top['study']}): the AUC it reports is "
                   f"{top['optimism']:+.3f} above the honest one (95% CI {top['ci_low']:+.3f} to {top['ci_high']:+.3f}; "
                   f"{top['honest AUC']:.3f} honest, {top['shortcut AUC']:.3f} reported).")
        sure = optimism[optimism["ci_low"] > 0]
        per = sure.groupby("pitfall", sort=False)["study"].apply(list)
        total = optimism.groupby("pitfall", sort=False)["study"].size()
        parts = [f"{p} ({len(per[p])} of {total[p]} studies)" for p in per.index]
        if parts:
            out.append("Shortcuts whose optimism is above zero beyond the 95% CI: " + "; ".join(parts) + ".")
        unsure = [p for p in total.index if p not in per.index]
        if unsure:
            out.append("No study shows an optimism beyond its CI for: " + ", ".join(unsure) + ".")
    if len(ceilings):
        shown = ceilings[ceilings["model given"] == "the findings the image shows"]
        gap = shown.loc[(shown["AUC"] - shown["honest AUC"]).idxmax()]
        out.append("Given every finding the image shows, a linear model reaches AUC "
                   + ", ".join(f"{r.AUC:.3f} ({r.study})" for r in shown.itertuples())
                   + f"; the audit's model is furthest below that reach on {gap['study']} "
                   f"({gap['honest AUC']:.3f}).")
        clin = ceilings.pivot(index="study", columns="model given", values="AUC")
        gain = (clin["those and the clinical finding"] - clin["the findings the image shows"]).sort_values()
        out.append(f"Adding the clinical finding, which no image shows, raises that reach by {gain.iloc[-1]:+.3f} "
                   f"on {gain.index[-1]} and by {gain.iloc[0]:+.3f} on {gain.index[0]}: that much of the label is "
                   "out of any image model's sight.")
    if len(clustering):
        worst = clustering.loc[clustering["narrowing"].idxmax()]
        where = (f"{worst['study']}, class {worst['class']}, {worst['vertebrae per patient']:.2f} vertebrae per "
                 "patient")
        if worst["narrowing"] > 0:
            out.append(f"Treating a patient's vertebrae as independent makes the AUC's standard error up to "
                       f"{100 * worst['narrowing']:.0f}% too small ({where}); Obuchowski's clustered variance "
                       "corrects it.")
        else:
            out.append("Treating a patient's vertebrae as independent does not make the AUC's standard error too "
                       f"small on these cohorts (at most {100 * worst['narrowing']:.0f}%, {where}).")
    return out
