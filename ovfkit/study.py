"""The modelling study, computed once and cached: features, fusion variants, the nine classifiers.

The chapters from selection onward share these results: chapter 05 shows the fusion variants,
06 the classifiers, 07 tests their differences, 08 explains the chosen model and 09 builds the clinical
model on it. Each function returns the same object whenever its inputs are the same, from a cache
keyed by the feature table's content, the labels, the settings and the code of the modules involved
(``cache_dir/study/<name>-<key>.joblib``, written atomically). Pipelines also cache their fitted
preparation steps (``cache_dir/pipelines``), so nine classifiers share one selection fit per fold.

Cohort roles: ``train`` is the only data any step is fitted or tuned on; ``internal``, ``external`` and
``prospective`` are predicted once by the model refitted on all training rows. Training performance
comes from nested cross-validation (outer patient-grouped folds around the whole tuned pipeline).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from tqdm.auto import tqdm

from ovfkit import deep, fusion, metrics, models, radiomics, reliability
from ovfkit.atomic import atomic_output
from ovfkit.provenance import code_digest
from ovfkit.settings import COHORTS, HELD_OUT, Settings
from ovfkit.tables import estimate_ci
from ovfkit.task import Task, get_task


@dataclass
class Features:
    """Every source side by side and what the pipelines need to know about the rows."""

    X: pd.DataFrame  # vertebra id x (radiomics + backbone/column)
    icc: pd.Series  # radiomics feature -> the ICC(2,1) the filter uses (see reader_icc)
    backbones: list
    manifest: pd.DataFrame = field(repr=False)
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cohort", "reason"]))
    task: Task = field(default_factory=lambda: get_task("astlof"))
    #: Inter- and intra-observer ICC behind :attr:`icc` and which of them it uses (None if not measured here).
    reader_icc: reliability.ReaderICC | None = field(default=None, repr=False)

    def usage(self) -> pd.DataFrame:
        """Vertebrae per cohort: in the manifest, used by the models, dropped (with :attr:`dropped`'s reasons)."""
        cohorts = [c for c in COHORTS if c in set(self.manifest["cohort"])]
        listed = self.manifest["cohort"].value_counts()
        used = self.manifest.loc[self.X.index, "cohort"].value_counts()
        out = pd.DataFrame({"in manifest": listed, "used": used}).reindex(cohorts).fillna(0).astype(int)
        out["dropped"] = out["in manifest"] - out["used"]
        out.index.name = "cohort"
        return out

    def dropped_statement(self, names: dict | None = None) -> str:
        """One Markdown sentence: how many vertebrae every later step uses, and which dropped out and why.

        ``names`` renames cohorts in the sentence (the acute-vs-chronic part calls ``internal`` "test")."""
        name = (names or {}).get
        u = self.usage()
        counts = ", ".join(f"{name(c, c)} {r.used}" for c, r in u.iterrows())
        if self.dropped.empty:
            return f"**Vertebrae used** (every manifest row): {counts}."
        lost = "; ".join(f"{vid} ({name(r.cohort, r.cohort)}): {r.reason}" for vid, r in self.dropped.iterrows())
        return (f"**Vertebrae used:** {counts}. **{len(self.dropped)} dropped out** and are not in any later "
                f"table or figure: {lost}.")

    @property
    def context(self) -> fusion.Context:
        return fusion.Context.from_manifest(self.manifest, self.icc)

    @property
    def y(self) -> pd.Series:
        """The task's class code of every row of :attr:`X`."""
        return self.task.labels(self.manifest.loc[self.X.index])

    def columns(self, sources) -> list:
        """The feature table's columns that come from ``sources`` (``radiomics`` and/or backbones)."""
        return fusion.columns_of(self.X.columns, sources)

    def rows(self, cohort: str) -> pd.Index:
        return self.X.index[self.manifest.loc[self.X.index, "cohort"].to_numpy() == cohort]


def stand_in_checkpoint(backbone: str, settings: Settings, cache_dir) -> Path:
    """Where a run with ``cache_dir`` keeps the stand-in backbone ``backbone`` (``proxy-natural`` or
    ``proxy-medical``) that :func:`load_features` pretrains; nothing is trained here."""
    from ovfkit.deep.proxy import checkpoint_path

    return checkpoint_path(backbone, cache_dir=Path(cache_dir) / "deep" / "proxy", seed=settings.deep.seed,
                           recipe=deep.proxy_recipe(settings.deep))


def reader_reliability(manifest: pd.DataFrame, params, *, cache_dir, reader1: pd.DataFrame | None = None,
                       form: str = "ICC(2,1)") -> reliability.ReaderICC:
    """The ICC of every radiomics feature between readers and within reader 1, as the ICC filter uses it.

    Radiomics of reader 2's masks and, when the manifest lists any, of reader 1's repeat masks are
    extracted (cached like reader 1's) and compared with reader 1's on the training vertebrae outlined
    twice (:func:`ovfkit.reliability.reader_icc`). Without repeat masks (``mask_reader1_repeat`` absent
    or empty, as in most user data) the filter uses the inter-observer ICC alone, and the result's
    ``comparisons`` says so.

    Parameters
    ----------
    manifest : DataFrame
        A loaded manifest (:func:`ovfkit.manifest.load_manifest`).
    params : dict or path
        PyRadiomics settings, e.g. ``radiomics.default_params(modality)``.
    cache_dir : path
        The run's cache folder; features are cached under ``cache_dir/radiomics``.
    reader1 : DataFrame, optional
        Reader 1's features when already extracted with ``params``; extracted (from the cache) if None.
    form : one of :data:`ovfkit.reliability.ICC_FORMS`

    Returns
    -------
    ReaderICC
        ``.used`` is the ICC the filter uses, ``.table`` shows inter, intra and used per feature.
    """
    cache = Path(cache_dir) / "radiomics"
    if reader1 is None:
        reader1 = radiomics.extract_manifest(manifest, params, cache_dir=cache, progress=False)
    second = radiomics.extract_manifest(manifest, params, cache_dir=cache, mask_column="mask_reader2", progress=False)
    repeat = None
    if "mask_reader1_repeat" in manifest.columns and (manifest["mask_reader1_repeat"].astype(str) != "").any():
        repeat = radiomics.extract_manifest(manifest, params, cache_dir=cache, mask_column="mask_reader1_repeat",
                                            progress=False)
    return reliability.reader_icc(reader1, second, manifest["cohort"], repeat=repeat, form=form)


def load_features(manifest: pd.DataFrame, settings: Settings, *, cache_dir, backbones, weights=None,
                  training_rows: str = "cross-fitted") -> Features:
    """Radiomics (every reader's masks, for the ICC) and cross-fitted deep features of every backbone, from caches.

    The ICC the filter uses comes from :func:`reader_reliability`: the smaller of the inter- and
    intra-observer ICC when the manifest has reader 1's repeat masks, else the inter-observer ICC;
    ``Features.reader_icc`` keeps both and says which was used.

    The deep features are fine-tuned on ``settings.task``'s label, so a feature table belongs to one task.
    ``training_rows="in-sample"`` gives the leaky deep features of the papers (see
    :func:`ovfkit.deep.deep_features`), only to measure that leak.
    """
    params = settings.radiomics_params or radiomics.default_params(settings.modality)
    cache_dir = Path(cache_dir)
    rad = radiomics.extract_manifest(manifest, params, cache_dir=cache_dir / "radiomics", progress=False)
    reader_icc = reader_reliability(manifest, params, cache_dir=cache_dir, reader1=rad, form="ICC(2,1)")
    deep_tables = {b: deep.deep_features(manifest, b, settings.deep, weights=(weights or {}).get(b),
                                         cache_dir=cache_dir / "deep", task=settings.task, training_rows=training_rows,
                                         progress=False).features for b in backbones}
    X = fusion.feature_table(rad, deep_tables)
    reasons = {f["vertebra_id"]: f"radiomics extraction failed: {f['reason']}" for f in rad.attrs.get("failures", [])}
    for b, table in deep_tables.items():
        for vid in manifest.index.difference(table.index):
            reasons.setdefault(vid, f"no deep features from {b}")
    lost = manifest.index.difference(X.index, sort=False)
    dropped = pd.DataFrame({"cohort": manifest.loc[lost, "cohort"],
                            "reason": [reasons.get(v, "missing from a feature table") for v in lost]}, index=lost)
    return Features(X, reader_icc.used, list(backbones), manifest, dropped, settings.task, reader_icc)


def _key(features: Features, settings: Settings, extra) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(features.X, index=True).to_numpy().tobytes())
    h.update(features.X.columns.to_series().str.cat(sep="|").encode())
    h.update(pd.util.hash_pandas_object(features.icc.fillna(-9.0), index=True).to_numpy().tobytes())
    cols = ["cohort", "patient_id", "center", "age", "sex"]
    h.update(pd.util.hash_pandas_object(features.manifest.loc[features.X.index, cols], index=True).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(features.y, index=True).to_numpy().tobytes())
    h.update(json.dumps([asdict(settings), extra], sort_keys=True, default=str).encode())
    h.update(code_digest(__name__).encode())
    return h.hexdigest()[:20]


def _cached(name: str, key: str, cache_dir, compute):
    path = Path(cache_dir) / "study" / f"{name}-{key}.joblib"
    if path.exists():
        return joblib.load(path)
    result = compute()
    with atomic_output(path) as tmp:
        joblib.dump(result, tmp, compress=1)
    return result


def _memory(cache_dir):
    return joblib.Memory(str(Path(cache_dir) / "pipelines"), verbose=0)


def _held_out_predictions(fitted, features: Features, **labels) -> pd.DataFrame:
    parts = []
    for cohort in HELD_OUT:
        rows = features.rows(cohort)
        if len(rows):
            p = fitted.predict_proba(features.X.loc[rows, list(fitted.feature_names_in_)])
            parts.append(pd.DataFrame(p, index=rows, columns=features.task.proba_columns).assign(cohort=cohort))
    return _label(pd.concat(parts), features, **labels)


def _label(pred: pd.DataFrame, features: Features, **labels) -> pd.DataFrame:
    m = features.manifest.loc[pred.index]
    out = pred.assign(y=features.task.labels(m).to_numpy(), patient_id=m["patient_id"].to_numpy(), **labels)
    out.index.name = "vertebra_id"
    return out.reset_index()


def selection_record(pipeline, variant: str) -> dict:
    """What the LASSO step chose, for the selection chapter."""
    steps = pipeline.named_steps
    lasso = steps["lasso"]
    before = steps["prepare"].get_feature_names_out()
    chosen = lasso.get_feature_names_out(before)
    final = steps["decorrelate"].get_feature_names_out(chosen) if "decorrelate" in steps else chosen
    return {"variant": variant, "method": lasso.method, "prepared": list(before), "lasso_selected": list(chosen), "selected": list(final),
            "alpha": lasso.alpha_, "alpha_cv": lasso.alpha_cv_, "alphas": lasso.alphas_, "cv_mse": lasso.cv_score_,
            "cv_mse_std": lasso.cv_score_std_, "coef_path": lasso.coef_path_, "coef": lasso.coef_}


def proba_columns(predictions: pd.DataFrame) -> list:
    """The class-probability columns ``p0, p1, ...`` of a predictions table (two for a binary task)."""
    return [c for c in predictions.columns if c[:1] == "p" and c[1:].isdigit()]


def classes_of(predictions: pd.DataFrame) -> tuple:
    """The class codes of a predictions table, one per probability column."""
    return tuple(range(len(proba_columns(predictions))))


def auc_column(predictions: pd.DataFrame) -> str:
    """The headline AUC's column in score tables: ``macro_auc`` (three classes) or ``auc`` (binary)."""
    return metrics.headline(classes_of(predictions))


def score_predictions(predictions: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The task's headline AUC with a 95% patient-bootstrap CI for every variant x model x cohort.

    The AUC column is ``macro_auc`` for a three-class task and ``auc`` for a binary one (:func:`auc_column`).
    """
    P, classes, name = proba_columns(predictions), classes_of(predictions), auc_column(predictions)
    rows = []
    for (variant, model, cohort), g in predictions.groupby(["variant", "model", "cohort"], sort=False):
        est, lo, hi = metrics.patient_bootstrap_ci(g["y"], g[P], g["patient_id"], n_boot=n_boot, seed=seed,
                                                   classes=classes)
        rows.append({"variant": variant, "model": model, "cohort": cohort, name: est, "ci_low": lo,
                     "ci_high": hi, "n": len(g)})
    return pd.DataFrame(rows)


def threshold_scores(predictions: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Accuracy and F1 (macro F1 for three classes) of every variant x model x cohort, point estimates.

    The papers compare their classifiers by macro AUC, accuracy and F1 (zhang2024's Supplementary
    Tables S11-S12); the predicted class is the most probable one (``threshold`` for two classes).
    """
    P, classes = proba_columns(predictions), classes_of(predictions)
    f1 = "f1" if len(classes) == 2 else "macro_f1"
    rows = []
    for (variant, model, cohort), g in predictions.groupby(["variant", "model", "cohort"], sort=False):
        m = metrics.point_metrics(g["y"], g[P], classes, threshold)
        rows.append({"variant": variant, "model": model, "cohort": cohort, "accuracy": m["accuracy"], f1: m[f1],
                     "n": len(g)})
    return pd.DataFrame(rows)


def chosen_metrics(result: "ModelResult", variants_: list, *, n_boot: int = 1000, seed: int = 0,
                   threshold: float = 0.5) -> pd.DataFrame:
    """Every metric of :func:`ovfkit.metrics.bootstrap_metrics` for each variant's chosen classifier, per cohort.

    The papers' Table 3 (per-class AUC, accuracy, sensitivity, specificity of the best model of each
    pretraining domain on every cohort). Returns a long table: ``variant``, ``model``, ``cohort``,
    ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``n_valid``.
    """
    parts = []
    for variant in variants_:
        pred = result.chosen_predictions(variant)
        P, classes, model = proba_columns(pred), classes_of(pred), pred["model"].iloc[0]
        for cohort, g in pred.groupby("cohort", sort=False):
            table = metrics.bootstrap_metrics(g["y"], g[P], g["patient_id"], n_boot=n_boot, seed=seed,
                                              classes=classes, threshold=threshold)
            parts.append(table.rename_axis("metric").reset_index().assign(variant=variant, model=model,
                                                                           cohort=cohort))
    out = pd.concat(parts, ignore_index=True)
    return out[["variant", "model", "cohort", "metric", "estimate", "ci_low", "ci_high", "n_valid"]]


def discordant_cases(result: "ModelResult", a: str, b: str, cohorts=("prospective", "external", "internal")
                     ) -> pd.DataFrame:
    """Held-out vertebrae that two variants' chosen classifiers grade differently, the papers' case study.

    zhang2024 (Fig. 8) and liu2025 (Fig. 6) show a prospective vertebra that the ImageNet model
    misclassified and the RadImageNet model got right. The rows are ordered the same way: first the
    vertebrae ``a`` gets right and ``b`` wrong, then those ``b`` gets right, then those both get wrong;
    within each, by cohort in the order of ``cohorts`` and then by how far apart the two models'
    probabilities of the true class are.

    Parameters
    ----------
    result : ModelResult
    a, b : str
        Variants (``"early <backbone>"``); each contributes its chosen classifier (:meth:`ModelResult.best`).
    cohorts : sequence of str
        Held-out cohorts searched, in order of preference.

    Returns
    -------
    DataFrame indexed by vertebra id: ``cohort``, ``y``, ``pred_a``, ``pred_b``, ``p_true_a``, ``p_true_b``,
    ``outcome`` ("a right, b wrong", "b right, a wrong" or "both wrong"). Empty when the two agree everywhere.
    ``attrs["n_compared"]``: the held-out vertebrae in ``cohorts`` that both models predicted.
    """
    pa, pb = (result.chosen_predictions(v).set_index("vertebra_id") for v in (a, b))
    pa, pb = pa[pa["cohort"].isin(cohorts)], pb[pb["cohort"].isin(cohorts)]
    common = pa.index.intersection(pb.index, sort=False)
    pa, pb = pa.loc[common], pb.loc[common]
    P, classes = proba_columns(pa), np.asarray(classes_of(pa))
    pred_a, pred_b = classes[pa[P].to_numpy().argmax(1)], classes[pb[P].to_numpy().argmax(1)]
    true_col = [P[list(classes).index(y)] for y in pa["y"]]
    out = pd.DataFrame({"cohort": pa["cohort"], "y": pa["y"], "pred_a": pred_a, "pred_b": pred_b,
                        "p_true_a": [pa.at[v, c] for v, c in zip(common, true_col)],
                        "p_true_b": [pb.at[v, c] for v, c in zip(common, true_col)]}, index=common)
    out = out[out["pred_a"] != out["pred_b"]]
    out["outcome"] = np.select([out["pred_a"] == out["y"], out["pred_b"] == out["y"]],
                               ["a right, b wrong", "b right, a wrong"], "both wrong")
    order = {"a right, b wrong": 0, "b right, a wrong": 1, "both wrong": 2}
    out = out.assign(_o=out["outcome"].map(order), _c=out["cohort"].map({c: i for i, c in enumerate(cohorts)}),
                     _d=-(out["p_true_a"] - out["p_true_b"]).abs())
    out = out.sort_values(["_o", "_c", "_d"], kind="stable").drop(columns=["_o", "_c", "_d"])
    out.attrs["n_compared"] = len(common)
    return out


def case_grad_cams(manifest: pd.DataFrame, vertebra_id: str, settings: Settings, *, cache_dir, backbones,
                   weights=None) -> tuple[dict, dict, dict]:
    """One vertebra seen by each backbone's fine-tuned networks: inputs, Grad-CAMs and titles, keyed by backbone.

    The networks come from the deep-feature cache (chapter 04); a held-out vertebra is seen by the mean of
    the cross-fitted networks (:func:`ovfkit.deep.ensemble_grad_cam`). Returns ``(images, cams, titles)``
    for :func:`ovfkit.plots.grad_cam_grid`.
    """
    images, cams, titles = {}, {}, {}
    for b in backbones:
        result = deep.deep_features(manifest, b, settings.deep, weights=(weights or {}).get(b),
                                    cache_dir=Path(cache_dir) / "deep", task=settings.task, progress=False)
        images[b] = result.inputs.loc[vertebra_id]
        target, cams[b] = deep.ensemble_grad_cam(result.load_models(), images[b], settings.deep.scaling)
        cells = -(-images[b].shape[0] // 32)  # ResNet-50's layer4 has stride 32
        titles[b] = f"{backbone_label(b)}\nmap for class {target}, the networks' own\nprediction ({cells}x{cells} cells)"
    return images, cams, titles


def deep_features_used(pipeline, backbone: str) -> int:
    """How many of ``backbone``'s deep features a fitted early-fusion pipeline passes to its classifier."""
    return sum(fusion.source_of(f) == backbone for f in pipeline[:-1].get_feature_names_out())


@dataclass
class FusionResult:
    """Held-out predictions of one classifier (LR) on every fusion variant."""

    predictions: pd.DataFrame  # long: vertebra_id, p0..p2, cohort, y, patient_id, variant
    selections: dict  # variant -> selection_record (single-source and early-fusion variants)
    chosen: dict  # variant -> tuned parameters
    seconds: dict


#: Suffix of the sensitivity variants fitted without ComBat.
NO_COMBAT = fusion.NO_COMBAT


def variants(backbones) -> dict:
    """Fusion variants: name -> (kind, sources, ComBat on radiomics?).

    The ``..., no ComBat`` variants are the sensitivity analysis of ComBat's one transductive step: for a
    center unseen in training, ComBat estimates that center's location and scale from the evaluated
    cohort's own features (without labels); without ComBat nothing is estimated on a held-out cohort.
    """
    out = {"radiomics": ("single", [fusion.RADIOMICS], True)}
    out.update({f"deep {b}": ("single", [b], True) for b in backbones})
    out.update({f"early {b}": ("early", [fusion.RADIOMICS, b], True) for b in backbones})
    out.update({f"late {b}": ("late", [fusion.RADIOMICS, b], True) for b in backbones})
    out[f"radiomics{NO_COMBAT}"] = ("single", [fusion.RADIOMICS], False)
    out.update({f"early {b}{NO_COMBAT}": ("early", [fusion.RADIOMICS, b], False) for b in backbones})
    return out


def fusion_comparison(features: Features, settings: Settings, cache_dir, progress: bool = True) -> FusionResult:
    """LR on every fusion variant, tuned by patient-grouped CV on training rows, predicted on held-out cohorts."""
    def compute():
        ctx, mem, classes = features.context, _memory(cache_dir), features.task.classes
        train = features.rows("train")
        X, y = features.X.loc[train], features.y.loc[train].to_numpy()
        inner = models.PatientKFold(ctx.groups, settings.inner_splits, settings.seed)
        preds, selections, chosen, seconds = [], {}, {}, {}
        for name, (kind, sources, combat) in tqdm(variants(features.backbones).items(), desc="fusion variants",
                                                  disable=not progress):
            t0 = time.perf_counter()
            st = replace(settings.fusion, combat=combat)
            Xv = X[features.columns(sources)]
            if kind == "late":
                model = fusion.late_fusion(sources, Xv, ctx, st, memory=mem, cv_splits=settings.inner_splits)
                search = models.tuned(model, {"final_estimator__C": [0.1, 1.0]}, inner, classes).fit(Xv, y)
            else:
                pipe = fusion.early_fusion(sources, Xv, models.classifier("LR", settings.seed), ctx, st, memory=mem)
                search = models.tuned(pipe, models.param_grid("LR", settings.grid), inner, classes).fit(Xv, y)
                selections[name] = selection_record(search.best_estimator_, name)
            chosen[name] = search.best_params_
            preds.append(_held_out_predictions(search.best_estimator_, features, variant=name, model="LR"))
            seconds[name] = time.perf_counter() - t0
        return FusionResult(pd.concat(preds, ignore_index=True), selections, chosen, seconds)

    key = _key(features, settings, ["fusion", list(variants(features.backbones))])
    return _cached("fusion", key, cache_dir, compute)


@dataclass
class ModelResult:
    """The nine classifiers on early fusion, per backbone."""

    predictions: pd.DataFrame  # long: ..., variant, model, cohort ('train' rows are nested-CV out-of-fold)
    chosen: dict  # (variant, model) -> {"final": params, "outer": [params per outer fold]}
    fitted: dict  # (variant, model) -> pipeline refitted on all training rows
    seconds: dict

    def scores(self, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Macro AUC with patient-bootstrap CI for every variant x model x cohort."""
        return score_predictions(self.predictions, n_boot=n_boot, seed=seed)

    def chosen_predictions(self, variant: str) -> pd.DataFrame:
        """Predictions (every cohort) of ``variant``'s classifier chosen by :meth:`best`."""
        p = self.predictions
        return p[(p["variant"] == variant) & (p["model"] == self.best(variant))]

    def best(self, variant: str) -> str:
        """The classifier with the highest nested-CV AUC (the task's headline) on the training cohort (never a
        test cohort); ties go to the earlier model of :data:`ovfkit.models.MODEL_NAMES`."""
        train = self.predictions[(self.predictions["variant"] == variant) & (self.predictions["cohort"] == "train")]
        P, classes = proba_columns(train), classes_of(train)
        auc = {m: metrics.auc_score(g["y"], g[P], classes) for m, g in train.groupby("model")}
        return max(auc, key=lambda k: (auc[k], -models.MODEL_NAMES.index(k)))


def model_comparison(features: Features, settings: Settings, cache_dir, progress: bool = True,
                     sources: dict | None = None) -> ModelResult:
    """The classifiers of ``settings`` x each variant: nested CV on training, refit, held-out predictions.

    ``sources`` maps a variant's name to its feature sources (default: early fusion of radiomics with each
    backbone, ``"early <backbone>"``); zhang2023's study also fits radiomics alone and deep features alone.

    The MLP stops after 500 adam epochs whether or not its loss has settled; scikit-learn's
    ConvergenceWarning for that is silenced here (documented in :mod:`ovfkit.models`). The SVM is
    calibrated on patient-grouped folds (:class:`ovfkit.models.PatientCalibrated`), so it needs the groups.
    """
    def compute():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return _models()

    def _models():
        ctx, st, mem, classes = features.context, settings.fusion, _memory(cache_dir), features.task.classes
        train = features.rows("train")
        X, y = features.X.loc[train], features.y.loc[train].to_numpy()
        inner = models.PatientKFold(ctx.groups, settings.inner_splits, settings.seed)
        outer = models.PatientKFold(ctx.groups, settings.outer_splits, settings.seed + 1)
        preds, chosen, fitted, seconds = [], {}, {}, {}
        jobs = [(variant, name) for variant in chosen_sources for name in settings.classifiers]
        for variant, name in tqdm(jobs, desc="classifiers", disable=not progress):
            t0 = time.perf_counter()
            Xv = X[features.columns(chosen_sources[variant])]
            pipe = fusion.early_fusion(chosen_sources[variant], Xv, models.classifier(name, settings.seed, ctx.groups),
                                       ctx, st, memory=mem)
            search = models.tuned(pipe, models.param_grid(name, settings.grid), inner, classes)
            oof, outer_params, final = models.nested_cv(search, Xv, y, outer, n_jobs=-1, classes=classes)
            preds.append(_label(oof.assign(cohort="train"), features, variant=variant, model=name))
            preds.append(_held_out_predictions(final.best_estimator_, features, variant=variant, model=name))
            chosen[(variant, name)] = {"final": final.best_params_, "outer": outer_params}
            fitted[(variant, name)] = final.best_estimator_
            seconds[(variant, name)] = time.perf_counter() - t0
        return ModelResult(pd.concat(preds, ignore_index=True), chosen, fitted, seconds)

    chosen_sources = sources or {f"early {b}": [fusion.RADIOMICS, b] for b in features.backbones}
    key = _key(features, settings, ["models", list(settings.classifiers), chosen_sources])
    return _cached("models", key, cache_dir, compute)


def combat_sensitivity(fusion_result: FusionResult, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Held-out AUC (95% CI) of every LR variant that has a ``no ComBat`` twin, with and without ComBat.

    Returns one row per cohort x base variant: the AUC with ComBat, without, and the difference.
    """
    pred = fusion_result.predictions
    twins = sorted({v[: -len(NO_COMBAT)] for v in pred["variant"].unique() if v.endswith(NO_COMBAT)})
    scores = score_predictions(pred[pred["variant"].isin(twins + [t + NO_COMBAT for t in twins])], n_boot=n_boot,
                               seed=seed).set_index(["variant", "cohort"])
    auc = auc_column(pred)
    rows = []
    for base in twins:
        for cohort in HELD_OUT:
            if (base, cohort) not in scores.index:
                continue
            a, b = scores.loc[(base, cohort)], scores.loc[(base + NO_COMBAT, cohort)]
            rows.append({"variant (LR)": base, "cohort": cohort,
                         "with ComBat": estimate_ci(a[auc], a.ci_low, a.ci_high),
                         "without ComBat": estimate_ci(b[auc], b.ci_low, b.ci_high),
                         "difference": round(a[auc] - b[auc], 3)})
    return pd.DataFrame(rows)


def selection_summary(selections: dict) -> pd.DataFrame:
    """One row per variant: features after preparation, after LASSO, final count by source, lambda."""
    rows = []
    for name, s in selections.items():
        rows.append({"variant": name, "prepared": len(s["prepared"]), "after LASSO": len(s["lasso_selected"]),
                     "final": len(s["selected"]), "by source": fusion.count_by_source(s["selected"]),
                     "lambda (CV)": s["alpha_cv"], "lambda used": s["alpha"]})
    return pd.DataFrame(rows).set_index("variant")


def paper_results(modality: str | None = None) -> pd.DataFrame:
    """The macro AUCs, feature counts and LASSO penalties the papers report (zhang2024 X-ray, liu2025 CT).

    Shipped as ``ovfkit/data/paper_results.csv``; the ``source`` column says where in the paper each
    number is. zhang2024 gives no CIs for macro AUC in its text.
    """
    table = pd.read_csv(Path(__file__).parent / "data" / "paper_results.csv")
    return table if modality is None else table[table["modality"] == modality].reset_index(drop=True)


PAPER_ITEMS_COLUMNS = ("paper", "item", "content", "chapter", "figures", "note")


def paper_items(paper: str | None = None) -> pd.DataFrame:
    """Every table and figure of the papers with the book's counterpart, or why it has none.

    Shipped as ``ovfkit/data/paper_items.csv``: ``chapter`` is a chapter file stem (or ``methods``),
    ``figures`` the names of the figures that answer the item (``;``-separated, ``*`` as a wildcard over
    a run's backbones or classes), ``note`` what is partial or missing and why.
    """
    table = pd.read_csv(Path(__file__).parent / "data" / "paper_items.csv", keep_default_na=False, dtype=str)
    if tuple(table.columns) != PAPER_ITEMS_COLUMNS:
        raise ValueError(f"paper_items.csv has columns {list(table.columns)}; expected {list(PAPER_ITEMS_COLUMNS)}")
    return table if paper is None else table[table["paper"] == paper].reset_index(drop=True)


def paper_training_gaps(modality: str | None = None) -> pd.DataFrame:
    """Each paper model's training macro AUC against its internal-cohort one, largest gap first.

    A training AUC far above the AUC on new patients of the same center is the signature of a model scored
    on data it was fitted or tuned on. Returns one row per paper x pretraining x model with ``train``,
    ``internal`` and ``gap`` (train minus internal).
    """
    paper = paper_results(modality)
    wide = paper.pivot_table(index=["paper", "modality", "pretraining", "model"], columns="cohort",
                             values="macro_auc").reset_index()
    wide = wide.dropna(subset=["train", "internal"]).assign(gap=lambda d: d["train"] - d["internal"])
    return wide[["paper", "modality", "pretraining", "model", "train", "internal", "gap"]].sort_values(
        "gap", ascending=False, ignore_index=True)


def paper_gap_statement(modality: str) -> str:
    """One Markdown sentence on the largest training-vs-internal gap of the paper on ``modality``.

    The gap reads as the signature of a model scored on its own training data when the training AUC lies
    above the upper limit of the internal cohort's 95% CI; without a CI in the paper it is only reported.
    """
    gaps = paper_training_gaps(modality)
    if gaps.empty:
        return "The paper on this modality reports no training and internal AUC of the same model."
    top = gaps.iloc[0]
    paper = paper_results(modality).set_index(["pretraining", "model", "cohort"])
    internal = paper.loc[(top["pretraining"], top["model"], "internal")]
    what = (f"{top['paper']}'s {top['model']} on {top['pretraining']} features: training macro AUC "
            f"{top['train']:.3f}, internal {top['internal']:.3f}")
    if top["gap"] <= 0:
        return f"The paper's training AUCs are not above its internal ones (largest difference: {what})."
    if pd.isna(internal["ci_high"]):
        return (f"The largest training-vs-internal gap the paper reports is {top['gap']:.3f} ({what}); the paper "
                "gives no CI to tell whether it exceeds chance variation.")
    if top["train"] > internal["ci_high"]:
        return (f"The largest gap the paper reports, {top['gap']:.3f} ({what}, whose 95% CI "
                f"{internal['ci_low']:.3f}-{internal['ci_high']:.3f} lies entirely below the training AUC), has the "
                "signature of a model scored on the data it was fitted or tuned on.")
    return (f"The largest training-vs-internal gap the paper reports is {top['gap']:.3f} ({what}), within the "
            f"internal cohort's 95% CI ({internal['ci_low']:.3f}-{internal['ci_high']:.3f}).")


def backbone_label(name: str, with_name: bool = True) -> str:
    """A backbone as a reader should read it: the papers' domain, and whether these are real weights or
    ovfkit's offline stand-in ("RadImageNet stand-in (proxy-medical)", "ImageNet (imagenet)"; without the
    name: "RadImageNet stand-in", "ImageNet")."""
    label = f"{backbone_role(name)} stand-in" if name.startswith("proxy-") else backbone_role(name)
    return f"{label} ({name})" if with_name else label


def backbone_role(name: str) -> str:
    """Which pretraining domain of the papers a backbone stands for."""
    return {"imagenet": "ImageNet", "proxy-natural": "ImageNet", "radimagenet": "RadImageNet",
            "proxy-medical": "RadImageNet"}.get(name, name)


def compare_with_papers(scores: pd.DataFrame, best: dict, modality: str) -> pd.DataFrame:
    """This study's best model per backbone next to the paper's model per pretraining domain.

    Parameters
    ----------
    scores : DataFrame from :meth:`ModelResult.scores`
    best : dict variant -> chosen classifier (by training nested CV)
    """
    paper = paper_results(modality)
    if "macro_auc" not in scores.columns:
        raise ValueError("the papers report the three-class ASTLOF macro AUC; these scores are of another task "
                         f"(columns {list(scores.columns)}), so there is nothing of theirs to set beside them")
    rows = []
    for variant, model in best.items():
        backbone = variant.split(" ", 1)[1]
        role = backbone_role(backbone)
        ours = scores[(scores["variant"] == variant) & (scores["model"] == model)].set_index("cohort")
        theirs = paper[paper["pretraining"] == role].set_index("cohort")
        for cohort in COHORTS:
            if cohort not in ours.index:
                continue
            r = ours.loc[cohort]
            p = theirs.loc[cohort] if cohort in theirs.index else None
            rows.append({"domain": role, "cohort": cohort, "ovfkit backbone": backbone, "ovfkit model": model,
                         "ovfkit macro AUC (95% CI)": estimate_ci(r.macro_auc, r.ci_low, r.ci_high),
                         "paper": None if p is None else p["paper"], "paper model": None if p is None else p["model"],
                         "paper macro AUC": None if p is None else estimate_ci(p["macro_auc"], p["ci_low"], p["ci_high"])})
    return pd.DataFrame(rows)


def compare(predictions: pd.DataFrame, a: tuple, b: tuple, *, cohorts=HELD_OUT, n_boot: int = 1000,
            seed: int = 0) -> pd.DataFrame:
    """Paired comparison of two (variant, model) prediction sets on the same vertebrae, per cohort.

    Three classes: one-vs-rest DeLong test per class (variance clustered by patient, Obuchowski 1997), and
    the macro AUC by a paired patient bootstrap (the same resamples score both). Binary: the AUC by the paired patient bootstrap only (it respects
    several vertebrae per patient; a DeLong row would test the same difference a second time). Returns
    one row per cohort x (class 0, 1, 2, ``macro``; binary: ``auc``) with the AUCs, the difference a - b,
    its 95% CI and the unadjusted p-value (adjust the family with :func:`ovfkit.stats.adjust`).
    """
    from ovfkit import stats

    def pick(variant, model):
        sel = predictions[(predictions["variant"] == variant) & (predictions["model"] == model)]
        if sel.empty:
            raise ValueError(f"no predictions for variant {variant!r} and model {model!r}")
        return sel.set_index(["cohort", "vertebra_id"]).sort_index()

    pa, pb = pick(*a), pick(*b)
    rows = []
    P, classes = proba_columns(pa), classes_of(pa)
    headline = "macro" if len(classes) > 2 else "auc"
    for cohort in cohorts:
        if cohort not in pa.index.get_level_values(0):
            continue
        ga, gb = pa.loc[cohort], pb.loc[cohort].reindex(pa.loc[cohort].index)
        per = (stats.per_class_delong(ga["y"], ga[P], gb[P], classes, groups=ga["patient_id"]) if len(classes) > 2
               else pd.DataFrame())
        for r in per.to_dict("records"):
            rows.append({"cohort": cohort, "class": str(r["class"]), "method": "DeLong",
                         **{k: r[k] for k in ("auc_a", "auc_b", "diff", "ci_low", "ci_high", "p")}})
        mac = stats.auc_difference(ga["y"], ga[P], gb[P], ga["patient_id"], n_boot=n_boot, seed=seed,
                                   classes=classes)
        rows.append({"cohort": cohort, "class": headline, "method": "paired patient bootstrap",
                     "auc_a": metrics.auc_score(ga["y"], ga[P], classes),
                     "auc_b": metrics.auc_score(ga["y"], gb[P], classes),
                     "diff": mac["diff"], "ci_low": mac["ci_low"], "ci_high": mac["ci_high"], "p": mac["p"]})
    return pd.DataFrame(rows).assign(a=" / ".join(a), b=" / ".join(b))


def omnibus(predictions: pd.DataFrame, variant: str, *, cohorts=HELD_OUT) -> pd.DataFrame:
    """DeLong's omnibus test that every classifier of ``variant`` has the same AUC, per cohort and class.

    One test per cohort and class (one-vs-rest; a binary task: the positive class only) over every model
    of the variant, each aligned to the first model's vertebrae (all models of a variant predict the same
    vertebrae; a model that lacks one stops the test with a ValueError), chi-square on k - 1 degrees of freedom
    (:func:`ovfkit.stats.delong_omnibus`, covariance clustered by patient). A class with fewer than 2 cases or 2
    others in a cohort, or with fewer than 2 patients holding either, cannot be tested and has no row. ``p_holm`` adjusts the whole table (Holm).

    Returns
    -------
    DataFrame, columns ``cohort``, ``class``, ``chi2``, ``df``, ``p``, ``highest AUC``, ``lowest AUC``
    (model and AUC), ``p_holm``.
    """
    from ovfkit import stats

    pred = predictions[predictions["variant"] == variant]
    if pred.empty:
        raise ValueError(f"no predictions for variant {variant!r}; pass one of {sorted(predictions['variant'].unique())}")
    classes = classes_of(pred)
    rows = []
    for cohort in cohorts:
        g = pred[pred["cohort"] == cohort]
        if g.empty:
            continue
        wide = {name: d.set_index("vertebra_id").sort_index() for name, d in g.groupby("model", sort=False)}
        ref = next(iter(wide.values()))
        for k in classes[1:] if len(classes) == 2 else classes:
            y = (ref["y"] == k).astype(int)
            if not stats.testable(y, ref["patient_id"]):
                continue
            scores = {name: d[f"p{k}"].reindex(ref.index) for name, d in wide.items()}
            missing = [name for name, sc in scores.items() if sc.isna().any()]
            if missing:
                raise ValueError(f"models {missing} of variant {variant!r} lack vertebrae that {next(iter(wide))} "
                                 f"predicted in cohort {cohort!r}; compare models on the same vertebrae")
            res = stats.delong_omnibus(y, scores, groups=ref["patient_id"])
            hi, lo = max(res["auc"], key=res["auc"].get), min(res["auc"], key=res["auc"].get)
            rows.append({"cohort": cohort, "class": k, "chi2": res["chi2"], "df": res["df"], "p": res["p"],
                         "highest AUC": f"{hi} {res['auc'][hi]:.3f}", "lowest AUC": f"{lo} {res['auc'][lo]:.3f}"})
    table = pd.DataFrame(rows, columns=["cohort", "class", "chi2", "df", "p", "highest AUC", "lowest AUC"])
    table["p_holm"] = stats.adjust(table["p"], "holm")
    return table
