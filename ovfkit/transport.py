"""Do radiomics transport across centers? The shipped settings' sensitivity, measured per choice.

A parameter file makes a dozen choices (resampled spacing and interpolator, discretization, normalization,
resegmentation range, image filters, a 2-D slice or the 3-D volume); each can make a feature depend on how a
center acquires its images rather than on the patient. This module measures that for one modality's cohort:

* :data:`VARIANTS`: one-change variants of a modality's shipped parameter file (:func:`variant_params`);
* :func:`center_shift`: per feature family, how far each held-out center's features move from the training
  center's, in training standard deviations, *within* each class (so that case mix does not count as shift);
* :func:`center_auc`: the held-out AUC per center of one fixed, untuned model (z-scoring and an L2 logistic
  regression at ``C = 0.1``) fitted on the training rows, with and without ComBat;
* :func:`sensitivity`: both, for every variant, on a stratified subsample of the cohort (:func:`subsample`);
* :func:`logistic_search` and :func:`per_center`: the tuned logistic regression that ``benchmarks/peer.py``
  applies to ovfkit's and a peer's features alike, and its AUC (patient-bootstrap CI) and calibration slope and
  intercept per center and pooled.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ovfkit.manifest import HELD_OUT

#: Marks a key to remove in :attr:`Variant.change`.
REMOVE = "<remove>"
#: The fixed model's inverse L2 penalty (on z-scored features): one value for every variant, never tuned.
FIXED_C = 0.1


@dataclass(frozen=True)
class Variant:
    """One change to a parameter file.

    Attributes
    ----------
    choice : str
        The setting the variant changes (``resampling``, ``discretization``, ...); ``shipped`` for the file as
        shipped.
    label : str
        The variant, as the book names it.
    change : dict
        Nested mapping merged into the parameter file; a value :data:`REMOVE` removes that key (``None`` is a
        value: ``featureClass: {shape: None}`` enables every shape feature, as in PyRadiomics' files).
    image_types : dict or None
        Replaces the file's ``imageType`` section (None: keep it).
    base : str or None
        Another parameter file to start from instead of the study's (a shipped name), for a row that compares
        whole files.
    """

    choice: str
    label: str
    change: dict
    image_types: dict | None = None
    base: str | None = None


def _merge(params: dict, change: dict) -> dict:
    out = copy.deepcopy(params)
    for key, value in change.items():
        if isinstance(value, str) and value == REMOVE:
            out.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def variant_params(base, variant: Variant) -> dict:
    """The parameter dict of ``base`` (a dict, a YAML path or a shipped name) with ``variant.change`` applied."""
    from ovfkit.radiomics import load_settings

    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a transport.Variant, got {type(variant).__name__}")
    params = _merge(load_settings(variant.base or base), variant.change)
    if variant.image_types is not None:
        params["imageType"] = copy.deepcopy(variant.image_types)
    return params


FILTERS = {"LoG (1, 2, 3 mm)": {"LoG": {"sigma": [1.0, 2.0, 3.0]}},
           "LoG (3, 5 mm)": {"LoG": {"sigma": [3.0, 5.0]}},
           "Wavelet (coif1)": {"Wavelet": {}}}


#: Resampled pixel sizes (mm) the study tries per modality, besides the shipped file's and the native grid.
SPACINGS = {"xray": (0.2, 0.3, 0.5), "ct": (1.0, 2.0)}


def variants(modality: str, base) -> list:
    """The one-change variants of a modality's parameter file that :func:`sensitivity` measures.

    The first is the file as shipped (``shipped``), the second the same settings on the original image only
    (``reference``); every other variant changes one choice of that reference: resampled spacing (the other sizes
    of :data:`SPACINGS`, none), interpolator, discretization (a fixed bin count instead of a fixed bin width, or
    the reverse), intensity normalization (on CT z-scoring drops the resegmentation range too: PyRadiomics
    normalizes before it resegments, so an HU range would apply to z-scores), resegmentation range (CT), 2-D slice
    or 3-D volume (CT), or one image filter added to the original image. Where the papers' file is another, it
    is a row of its own (``file``: a whole file, not one change).

    Parameters
    ----------
    modality : {"xray", "ct"}
    base : dict, path or shipped name

    Returns
    -------
    list of Variant
    """
    from ovfkit.radiomics import PAPER_PARAMS, load_settings

    if modality not in ("xray", "ct"):
        raise ValueError(f"modality {modality!r} is not 'xray' or 'ct'")
    params = load_settings(base)
    setting = params.get("setting") or {}
    spacing = setting.get("resampledPixelSpacing")
    roi = (params.get("ovfkit") or {}).get("roi", "volume")
    dims = len(spacing) if spacing else 2 + (modality == "ct" and roi != "largest_sagittal")
    coarse = 2.0 if modality == "ct" else 0.5
    bspline = setting.get("interpolator", "sitkBSpline") == "sitkBSpline"
    out = [Variant("shipped", "as shipped", {}),
           Variant("reference", "original image only", {})]
    out += [Variant("resampling", f"{mm:g} mm pixels", {"setting": {"resampledPixelSpacing": [mm] * dims}})
            for mm in SPACINGS[modality] if not spacing or not np.allclose(spacing, mm)]
    out += [Variant("resampling", "native pixels (no resampling)", {"setting": {"resampledPixelSpacing": REMOVE}}),
           Variant("interpolator", "linear" if bspline else "B-spline",
                   {"setting": {"interpolator": "sitkLinear" if bspline else "sitkBSpline"}}),
           Variant("discretization", "32 bins per ROI (fixed bin count)",
                   {"setting": {"binWidth": REMOVE, "binCount": 32}}) if "binCount" not in setting else
           Variant("discretization", f"bin width 25{' HU' if modality == 'ct' else ''} (fixed bin size)",
                   {"setting": {"binCount": REMOVE, "binWidth": 25}})]
    if setting.get("normalize"):
        out.append(Variant("normalization", "no normalization (raw grey values)",
                           {"setting": {"normalize": REMOVE, "normalizeScale": REMOVE}}))
    else:
        z = {"normalize": True, "normalizeScale": 100}
        if "resegmentRange" in setting:  # an HU range means nothing on z-scores (PyRadiomics normalizes first)
            out.append(Variant("normalization", "z-score per image (x100), no HU resegmentation",
                               {"setting": {**z, "resegmentRange": REMOVE}}))
        else:
            out.append(Variant("normalization", "z-score per image (x100)", {"setting": z}))
    if "resegmentRange" in setting:
        out.append(Variant("resegmentation", "no resegmentation range", {"setting": {"resegmentRange": REMOVE}}))
    elif modality == "ct":
        out.append(Variant("resegmentation", "resegmented to -200..1500 HU",
                           {"setting": {"resegmentRange": [-200, 1500]}}))
    if modality == "ct":
        if dims == 2:
            out.append(Variant("ROI", "3-D volume", {"ovfkit": {"roi": "volume"},
                                                     "setting": {"resampledPixelSpacing": [coarse] * 3},
                                                     "featureClass": {"shape2D": REMOVE, "shape": None}}))
        else:
            out.append(Variant("ROI", "largest sagittal slice (2-D)",
                               {"ovfkit": {"roi": "largest_sagittal"},
                                "setting": {"resampledPixelSpacing": (spacing or [coarse] * 3)[1:]},
                                "featureClass": {"shape": REMOVE, "shape2D": None}}))
    papers = PAPER_PARAMS[modality]
    if papers != base:
        out.append(Variant("file", f"the papers' file ({papers})", {}, base=papers))
    out = [out[0]] + [Variant(v.choice, v.label, v.change, {"Original": {}} if v.base is None else None, v.base)
                      for v in out[1:]]
    return out + [Variant("filter", f"+ {name}", {}, {"Original": {}, **change}) for name, change in FILTERS.items()]


def applicable(manifest: pd.DataFrame) -> str:
    """Why the sensitivity study cannot run on this manifest, or ``""`` when it can.

    It needs training rows and at least one held-out cohort from a center the training rows do not come from.
    """
    train = manifest["cohort"] == "train"
    if not train.any():
        return "no training cohort (cohort 'train')"
    other = manifest.loc[~train & ~manifest["center"].isin(manifest.loc[train, "center"].unique())]
    if other.empty:
        return "every held-out vertebra comes from a training center: there is no other center to transport to"
    return ""


def subsample(manifest: pd.DataFrame, labels: pd.Series, sizes: dict, seed: int = 0) -> pd.Index:
    """A subsample of vertebrae, stratified by cohort and class (vertebrae, not patients: nothing is
    cross-validated on it).

    Parameters
    ----------
    manifest : DataFrame
        Indexed by vertebra id, with ``cohort``.
    labels : Series
        Class code of every vertebra, indexed like ``manifest``.
    sizes : dict
        Vertebrae to draw per cohort (``{"train": 300, "internal": 60, ...}``); a cohort with fewer keeps all;
        cohorts not named are left out, cohorts named but absent from the manifest are skipped.
    seed : int

    Returns
    -------
    Index of the drawn vertebra ids, in manifest order. Within a cohort each class keeps its share (largest
    remainders), so the class mix of the subsample is the cohort's.
    """
    if not isinstance(sizes, dict) or not sizes:
        raise ValueError("sizes must map cohort names to vertebra counts, e.g. {'train': 300, 'external': 60}")
    rng = np.random.default_rng(seed)
    keep = []
    for cohort, n in sizes.items():
        ids = manifest.index[manifest["cohort"] == cohort]
        if n >= len(ids):
            keep.extend(ids)
            continue
        lab = labels.loc[ids]
        share = lab.value_counts().sort_index() / len(ids) * n
        take = np.floor(share).astype(int)
        take[(share - take).sort_values(ascending=False).index[: n - take.sum()]] += 1
        for k in take.index[(take == 0) & (share > 0)]:  # keep every class present (at most one each)
            take[take.idxmax()] -= 1
            take[k] = 1
        for k, t in take.items():
            keep.extend(rng.choice(np.asarray(ids[lab.to_numpy() == k]), size=int(t), replace=False))
    keep = set(keep)
    return manifest.index[manifest.index.isin(keep)]


def center_shift(X: pd.DataFrame, cohort: pd.Series, labels: pd.Series, reference: str = "train") -> pd.DataFrame:
    """How far each cohort's features sit from the reference cohort's, within classes.

    For a feature, a cohort ``c`` and a class ``k`` present in both cohorts, the shift is the standardized mean
    difference ``(mean_c,k - mean_ref,k) / sd_ref,k`` (``sd_ref,k``: the reference class's standard
    deviation, ddof 1); a cohort's shift is the mean of its classes' absolute shifts, weighted by the class
    counts of ``c``. Within-class differences are what acquisition adds: a cohort with another case mix but
    the same acquisition scores about 0 (up to sampling error, about ``sqrt(1/n_c + 1/n_ref)``).

    Parameters
    ----------
    X : DataFrame, shape (n_vertebrae, n_features)
    cohort, labels : Series
        Cohort and class code of every row of ``X`` (indexed alike).
    reference : str

    Returns
    -------
    DataFrame, shape (n_features, n_cohorts - 1): absolute standardized shift (unitless) per feature and
    cohort; NaN where a feature is constant within every class of the reference.
    """
    cohort = cohort.loc[X.index]
    labels = labels.loc[X.index]
    if reference not in set(cohort):
        raise ValueError(f"reference cohort {reference!r} has no rows in X; cohorts: {sorted(set(cohort))}")
    ref = cohort == reference
    out = {}
    for c in [c for c in pd.unique(cohort) if c != reference]:
        rows = cohort == c
        num = np.zeros(X.shape[1])
        den = np.zeros(X.shape[1])
        for k in np.unique(labels[rows]):
            a, b = X[rows & (labels == k)], X[ref & (labels == k)]
            if len(b) < 2:
                continue
            sd = b.std(ddof=1).to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.abs(a.mean().to_numpy() - b.mean().to_numpy()) / sd
            ok = np.isfinite(d)
            num[ok] += len(a) * d[ok]
            den[ok] += len(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[c] = np.where(den > 0, num / den, np.nan)
    return pd.DataFrame(out, index=X.columns)


def family_shift(shift: pd.DataFrame) -> pd.DataFrame:
    """Median absolute shift per feature family: image type group (original, LoG, wavelet) x feature class.

    Parameters
    ----------
    shift : DataFrame
        From :func:`center_shift`, indexed by PyRadiomics feature name.

    Returns
    -------
    DataFrame indexed by (``image``, ``feature_class``): the median shift per cohort and ``features`` (count).
    """
    from ovfkit.radiomics import feature_families

    fam = feature_families(shift.index).set_index("feature_name")
    image = fam["image_type"].str.replace(r"^log-sigma.*", "LoG", regex=True)
    image = image.str.replace(r"^wavelet.*", "wavelet", regex=True)
    keys = pd.DataFrame({"image": image, "feature_class": fam["feature_class"]}, index=shift.index)
    data = pd.concat([keys, shift], axis=1)
    out = data.groupby(["image", "feature_class"]).median(numeric_only=True)
    out["features"] = data.groupby(["image", "feature_class"]).size()
    return out


def fixed_model(seed: int = 0):
    """The sensitivity study's model: variance filter, z-scoring, L2 logistic regression at ``C = FIXED_C``.

    Untuned on purpose: every variant is scored by the same model, so a difference between variants is the
    settings', not a tuning search's.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("variance", VarianceThreshold(1e-12)), ("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=FIXED_C, class_weight="balanced", max_iter=5000,
                                                random_state=seed))])


def _finite(X: pd.DataFrame) -> pd.DataFrame:
    """Columns with a finite value in every row (PyRadiomics gives NaN for some features of tiny ROIs)."""
    return X.loc[:, np.isfinite(X.to_numpy(float)).all(axis=0)]


def center_auc(X: pd.DataFrame, manifest: pd.DataFrame, task, *, combat: bool = False,
               held_out=HELD_OUT, n_boot: int = 1000, seed: int = 0) -> pd.Series:
    """Held-out AUC per cohort, and pooled, of :func:`fixed_model` fitted on the training rows.

    Parameters
    ----------
    X : DataFrame, shape (n_vertebrae, n_features)
        Indexed by vertebra id; rows of the ``train`` cohort fit the model.
    manifest : DataFrame
        Indexed by vertebra id, with ``cohort``, ``center`` and the task's label column.
    task : str or Task
    combat : bool
        Harmonize first: ComBat fitted on the training rows, each held-out center estimated against them from
        its own features (:class:`ovfkit.harmonize.ComBat` with ``unseen="reference"``, no labels).
    held_out : sequence of str
    n_boot : int
        Patient-bootstrap resamples of the pooled AUC's 95% CI.
    seed : int

    Returns
    -------
    Series: the task's headline AUC (:func:`ovfkit.metrics.auc_score`) per held-out cohort and ``pooled`` over
    them (one model, one ranking across centers: a center whose predictions sit apart changes it, up or down),
    with ``pooled low`` and ``pooled high`` (95% patient-bootstrap CI); NaN for a cohort missing a class, and
    everywhere when the training rows hold one class or, with ``combat``, a new center has a single vertebra.
    """
    from ovfkit import harmonize, metrics
    from ovfkit.task import get_task

    task = get_task(task)
    X = _finite(X)
    m = manifest.loc[X.index]
    train = m["cohort"] == "train"
    if train.sum() == 0:
        raise ValueError("no training rows (cohort 'train') in X; the fixed model is fitted on them")
    X = X.loc[:, X[train].std() > 0]
    y = task.labels(m)
    test = m["cohort"].isin(held_out)
    sizes = m.loc[test & ~m["center"].isin(m.loc[train, "center"]), "center"].value_counts()
    if y[train].nunique() < 2 or (combat and (sizes < 2).any()):  # nothing to learn, or a center ComBat cannot map
        return pd.Series(np.nan, index=[c for c in held_out if (m["cohort"] == c).any()] +
                         ["pooled", "pooled low", "pooled high"], dtype=float)
    if combat:
        with warnings.catch_warnings():  # neuroCombat's convergence check divides by a zero first estimate
            warnings.simplefilter("ignore", RuntimeWarning)
            X = harmonize.ComBat(batch=m["center"], unseen="reference").fit(X[train]).transform(X)
    model = fixed_model(seed).fit(X[train], y[train])
    out = {}
    for c in [*held_out, "pooled"]:
        rows = test if c == "pooled" else m["cohort"] == c
        if rows.sum() == 0:
            continue
        if y[rows].nunique() < len(task.classes):  # an AUC needs every class among the cases
            out[c] = np.nan
            continue
        proba = model.predict_proba(X[rows])
        full = np.zeros((int(rows.sum()), len(task.classes)))
        full[:, np.searchsorted(task.classes, model.classes_)] = proba
        out[c] = metrics.auc_score(y[rows].to_numpy(), full, task.classes)
        if c == "pooled":
            _, out["pooled low"], out["pooled high"] = metrics.patient_bootstrap_ci(
                y[rows].to_numpy(), full, m.loc[rows, "patient_id"], n_boot=n_boot, seed=seed, classes=task.classes)
    return pd.Series(out, dtype=float)


def sensitivity(manifest: pd.DataFrame, base, variants, task, *, ids=None, cache_dir=None, n_jobs: int = -1,
                n_boot: int = 1000, seed: int = 0, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract every variant of ``base`` and measure its center shift and held-out AUC per center.

    Parameters
    ----------
    manifest : DataFrame
        A loaded manifest (:func:`ovfkit.manifest.load_manifest`), indexed by vertebra id.
    base : dict, path or shipped name
        The parameter file the variants change.
    variants : sequence of Variant
    task : str or Task
    ids : Index, optional
        The vertebrae to use (:func:`subsample`); all by default.
    cache_dir : path, optional
        Radiomics cache (shared with the chapters: a variant equal to a chapter's settings costs nothing).
    n_jobs, progress
        As :func:`ovfkit.radiomics.extract_manifest`.
    n_boot, seed
        Bootstrap resamples of the pooled AUC's CI, and the seed of the model and the bootstrap.

    Returns
    -------
    table : DataFrame, one row per variant: ``choice``, ``variant``, ``features`` (finite in every row; the
        others, left out, are counted in ``features not finite``), ``features without shift`` (constant within a
        training class, so their shift is undefined and left out of the medians), ``failed`` (vertebrae whose extraction failed, named in ``failures``), ``shift <cohort>`` (median
        absolute within-class shift over features, :func:`center_shift`), ``AUC <cohort>``, ``AUC pooled`` (with
        ``AUC pooled low``/``high``, its 95% CI) without ComBat, ``AUC pooled, ComBat`` and ``AUC <cohort>, ComBat``
        with it, ``seconds`` (the variant's extraction time summed over the vertebrae it computed, in the
        workers: cache hits cost none, and a part shared with an earlier variant, :func:`ovfkit.radiomics.extract_shared`,
        is paid for by that one; not deterministic).
    families : DataFrame, the per-family shift (:func:`family_shift`) of every variant, long format
        (``choice``, ``variant``, ``image``, ``feature_class``, ``cohort``, ``shift``, ``features``).
    """
    from ovfkit import radiomics
    from ovfkit.task import get_task

    task = get_task(task)
    m = manifest if ids is None else manifest.loc[ids]
    labels = task.labels(m)
    variants = list(variants)
    tables = radiomics.extract_manifest_many(m.reset_index(drop=True), [variant_params(base, v) for v in variants],
                                             n_jobs=n_jobs, cache_dir=cache_dir, progress=progress)
    rows, fams = [], []
    for v, X in zip(variants, tables):
        seconds = X.attrs["seconds"]
        failures = X.attrs["failures"]
        extracted = X.shape[1]
        X = _finite(X)
        shift = center_shift(X, m["cohort"], labels)
        row = {"choice": v.choice, "variant": v.label, "features": X.shape[1],
               "features not finite": extracted - X.shape[1], "failed": len(failures),
               "failures": "; ".join(f"{f['vertebra_id']} ({f['reason']})" for f in failures)}
        row["features without shift"] = int(shift.isna().any(axis=1).sum())  # constant within a training class
        row.update({f"shift {c}": float(shift[c].median()) for c in shift.columns})  # NaN-skipping, NaN if none
        plain = center_auc(X, m, task, n_boot=n_boot, seed=seed)
        harmonized = center_auc(X, m, task, combat=True, n_boot=n_boot, seed=seed)
        row.update({f"AUC {c}": a for c, a in plain.items()})
        row.update({f"AUC {c}, ComBat": a for c, a in harmonized.items()})
        row["seconds"] = seconds
        rows.append(row)
        fam = family_shift(shift).reset_index().melt(id_vars=["image", "feature_class", "features"],
                                                       var_name="cohort", value_name="shift")
        fams.append(fam.assign(choice=v.choice, variant=v.label))
    families = pd.concat(fams, ignore_index=True)[["choice", "variant", "image", "feature_class", "cohort", "shift",
                                                   "features"]]
    return pd.DataFrame(rows), families


def logistic_search(seed: int = 0, n_splits: int = 5, scoring: str = "roc_auc"):
    """Z-scored logistic regression, L1 or L2 and ``C`` in 10^-3..10^1 chosen by patient-grouped CV.

    The model ``benchmarks/peer.py`` applies to every feature set. Fit it with ``groups=`` the patient of each
    row: :class:`sklearn.model_selection.StratifiedGroupKFold` keeps a patient's vertebrae in one fold.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("variance", VarianceThreshold(1e-12)), ("scale", StandardScaler()),
                     ("clf", LogisticRegression(solver="liblinear", max_iter=5000, random_state=seed))])
    grid = {"clf__penalty": ["l1", "l2"], "clf__C": np.logspace(-3, 1, 9)}
    return GridSearchCV(pipe, grid, scoring=scoring, n_jobs=1,
                        cv=StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed))


def per_center(y, p, cohort, groups, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """AUC (95% patient-bootstrap CI) and calibration slope and intercept per cohort and pooled (binary).

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
    p : array-like of float, shape (n,)
        Predicted probability of class 1.
    cohort, groups : array-like, shape (n,)
        Cohort and patient of every case.

    Returns
    -------
    DataFrame indexed by cohort (then ``pooled``): ``n``, ``events``, ``AUC``, ``AUC low``, ``AUC high``,
    ``mean p``, ``slope``, ``intercept`` (calibration, :func:`ovfkit.calibration.calibration_slope_intercept`).
    """
    from ovfkit import calibration, metrics

    y, p = np.asarray(y, int), np.asarray(p, float)
    cohort, groups = np.asarray(cohort), np.asarray(groups)
    if not (len(y) == len(p) == len(cohort) == len(groups)):
        raise ValueError(f"y, p, cohort and groups must have one value per case; lengths {len(y)}, {len(p)}, "
                         f"{len(cohort)}, {len(groups)}")
    rows = {}
    for c in [*pd.unique(cohort), "pooled"]:
        r = np.ones(len(y), bool) if c == "pooled" else cohort == c
        proba = np.column_stack([1 - p[r], p[r]])
        auc, lo, hi = metrics.patient_bootstrap_ci(y[r], proba, groups[r], n_boot=n_boot, seed=seed, classes=(0, 1))
        cal = calibration.calibration_slope_intercept(y[r], p[r])
        rows[c] = {"n": int(r.sum()), "events": int(y[r].sum()), "AUC": auc, "AUC low": lo, "AUC high": hi,
                   "mean p": float(p[r].mean()), "slope": cal["slope"], "intercept": cal["intercept"]}
    return pd.DataFrame(rows).T
