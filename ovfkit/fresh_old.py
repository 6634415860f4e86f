"""Fresh vs old fractures on lateral radiographs (guo2026, li): the CNN comparison, analysed as the papers did
and as they did not.

guo2026 reports each architecture as mean +/- SD over five folds (its Table 2) and ResNet-101 fold by fold
(Table 3); li reports EfficientNet, MobileNet and MnasNet on a validation and a control set (abstract only).
This module computes the same numbers from :class:`ovfkit.deep.zoo.ZooResult` and what the papers left out:
the pooled out-of-fold metrics with patient-bootstrap CIs, paired DeLong tests of every two architectures on
the same vertebrae (Holm-corrected), how often each architecture ranks first over folds and bootstrap
resamples, calibration, and accuracy by level band (above, at, below the diaphragm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit import calibration, metrics, stats
from ovfkit.deep.zoo import ARCHITECTURES, DISPLAY

#: guo2026 Table 2/3 metric names (fresh = positive class) and how this module computes them.
METRICS = ("accuracy", "precision_fresh", "precision_old", "recall_fresh", "recall_old", "f1_fresh", "f1_old",
           "specificity", "auc")
METRIC_LABELS = {"accuracy": "Accuracy (%)", "precision_fresh": "Precision fresh (%)",
                 "precision_old": "Precision old (%)", "recall_fresh": "Recall fresh (%)",
                 "recall_old": "Recall old (%)", "f1_fresh": "F1 fresh (%)", "f1_old": "F1 old (%)",
                 "specificity": "Specificity (%)", "auc": "AUC"}
DATA = Path(__file__).parent / "data"


def paper_tables() -> pd.DataFrame:
    """guo2026 Table 2 (``table`` 2: mean and SD over folds per architecture) and Table 3 (``table`` 3:
    ResNet-101 per fold), long: ``table``, ``architecture``, ``fold``, ``metric``, ``mean``, ``sd``."""
    return pd.read_csv(DATA / "guo2026_tables.csv")


def li_results() -> pd.DataFrame:
    """li's abstract: accuracy (%) and AUC of its three networks on the validation and control sets."""
    return pd.read_csv(DATA / "li_results.csv")


def point_metrics(y, p, threshold: float = 0.5) -> dict:
    """guo2026's metrics of P(fresh) ``p`` against ``y`` (1 = fresh) at ``threshold``; percentages but AUC.

    Precision, recall and F1 per class as in guo2026 Table 2 (recall of "old" is the specificity).
    A ratio whose denominator is zero is NaN.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    pred = (np.asarray(p, dtype=float) >= threshold).astype(int)
    tp, tn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    fp, fn = int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())

    def ratio(a, b):
        return 100.0 * a / b if b else float("nan")

    out = {"accuracy": ratio(tp + tn, len(y)), "precision_fresh": ratio(tp, tp + fp),
           "precision_old": ratio(tn, tn + fn), "recall_fresh": ratio(tp, tp + fn), "recall_old": ratio(tn, tn + fp)}
    for c in ("fresh", "old"):
        pr, rc = out[f"precision_{c}"], out[f"recall_{c}"]
        out[f"f1_{c}"] = 2 * pr * rc / (pr + rc) if pr + rc > 0 else float("nan")
    out["specificity"] = out["recall_old"]
    out["auc"] = float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan")
    return out


def fold_metrics(oof: pd.DataFrame) -> pd.DataFrame:
    """:func:`point_metrics` of every architecture in every fold: one row per architecture and fold."""
    rows = [{"architecture": a, "fold": int(k), **point_metrics(d["truth"], d["p"])}
            for (a, k), d in oof.groupby(["architecture", "fold"], sort=False)]
    return pd.DataFrame(rows)


def mean_sd(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD (ddof 1) over folds per architecture and metric, as guo2026 Table 2 reports them."""
    long = folds.melt(id_vars=["architecture", "fold"], value_vars=list(METRICS), var_name="metric")
    out = long.groupby(["architecture", "metric"], sort=False)["value"].agg(["mean", "std"]).reset_index()
    return out.rename(columns={"std": "sd"})


def _fmt(mean: float, sd: float, metric: str) -> str:
    if np.isnan(mean):
        return "n/a"
    digits = 3 if metric == "auc" else 2
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if not np.isnan(sd) else f"{mean:.{digits}f}"


def table2_beside_paper(folds: pd.DataFrame) -> pd.DataFrame:
    """guo2026 Table 2 beside this study's (mean ± SD over the same number of folds), one row per
    architecture and source (``guo2026`` or ``this study``); li's architectures have no Table 2 row."""
    ours = mean_sd(folds).set_index(["architecture", "metric"])
    paper = paper_tables()
    paper = paper[paper["table"] == 2].set_index(["architecture", "metric"])
    rows = []
    for arch in [a for a in ARCHITECTURES if a in set(folds["architecture"])]:
        for source, table in (("guo2026", paper), ("this study", ours)):
            if arch not in table.index.get_level_values(0):
                continue
            row = {"architecture": DISPLAY[arch], "source": source}
            for m in METRICS:
                if m == "specificity":
                    continue  # guo2026 gives it as the recall of "old"
                row[METRIC_LABELS[m]] = _fmt(*table.loc[(arch, m), ["mean", "sd"]], m) \
                    if (arch, m) in table.index else "n/a"
            rows.append(row)
    return pd.DataFrame(rows)


def table3_beside_paper(folds: pd.DataFrame, arch: str = "resnet101") -> pd.DataFrame:
    """guo2026 Table 3 (``arch`` per fold) beside this study's folds: one row per fold and source."""
    paper = paper_tables()
    paper = paper[(paper["table"] == 3) & (paper["architecture"] == arch)]
    rows = []
    for k in sorted(set(folds["fold"]) | set(paper["fold"].dropna().astype(int))):
        p = paper[paper["fold"] == k].set_index("metric")["mean"]
        if len(p):
            rows.append({"fold": k, "source": "guo2026", **{METRIC_LABELS[m]: p[m] for m in p.index}})
        o = folds[(folds["architecture"] == arch) & (folds["fold"] == k)]
        if len(o):
            rows.append({"fold": k, "source": "this study",
                         **{METRIC_LABELS[m]: round(float(o[m].iloc[0]), 3 if m == "auc" else 2)
                            for m in METRICS if m != "specificity"}})
    return pd.DataFrame(rows)


def pooled_metrics(oof: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every architecture's metrics on all out-of-fold predictions pooled, with 95% patient-bootstrap CIs.

    Returns
    -------
    DataFrame, long: ``architecture``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``.
    """
    rows = []
    for arch, d in oof.groupby("architecture", sort=False):
        y, p, g = d["truth"].to_numpy(), d["p"].to_numpy(), d["patient_id"].to_numpy()
        est = point_metrics(y, p)
        boot = [point_metrics(y[i], p[i]) for i in _patient_resamples(g, n_boot, seed)]
        for m in METRICS:
            vals = np.array([b[m] for b in boot], dtype=float)
            vals = vals[~np.isnan(vals)]
            lo, hi = np.percentile(vals, [2.5, 97.5]) if len(vals) else (np.nan, np.nan)
            rows.append({"architecture": arch, "metric": m, "estimate": est[m], "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def _patient_resamples(groups: np.ndarray, n_boot: int, seed: int):
    """Row indices of ``n_boot`` patient-bootstrap resamples (patients drawn with replacement)."""
    rng = np.random.default_rng(seed)
    patients, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == i) for i in range(len(patients))]
    for _ in range(n_boot):
        yield np.concatenate([rows_of[i] for i in rng.integers(0, len(patients), len(patients))])


def degenerate(oof: pd.DataFrame, min_sd: float = 0.01) -> list:
    """Architectures that learned nothing usable: out-of-fold P(fresh) with an SD over vertebrae below
    ``min_sd``, or every vertebra called the same class at 0.5. Their metrics are the class mix, not a
    comparison; the chapter names them and leaves them out of the tests, ranks and findings."""
    out = []
    for a, d in oof.groupby("architecture", sort=False):
        calls = d["p"] >= 0.5
        if d["p"].std() < min_sd or calls.all() or not calls.any():
            out.append(a)
    return out


def learned(oof: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """``oof`` without the :func:`degenerate` architectures, and their names."""
    bad = degenerate(oof)
    return oof[~oof["architecture"].isin(bad)], bad


def scores(oof: pd.DataFrame) -> tuple[np.ndarray, dict, np.ndarray]:
    """``(y, {architecture: P(fresh)}, patient ids)`` aligned by vertebra, for the paired comparisons."""
    wide = oof.pivot(index="vertebra_id", columns="architecture", values="p")
    first = oof.drop_duplicates("vertebra_id").set_index("vertebra_id").loc[wide.index]
    archs = [a for a in ARCHITECTURES if a in wide.columns]
    return first["truth"].to_numpy(), {a: wide[a].to_numpy() for a in archs}, first["patient_id"].to_numpy()


def rank_table(oof: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How often each architecture has the highest AUC: in each fold, and over patient-bootstrap resamples
    of the pooled out-of-fold predictions, with its mean rank (1 = best) over the resamples.

    Returns
    -------
    DataFrame, one row per architecture: ``architecture``, ``pooled AUC``, ``best in folds`` (count),
    ``folds``, ``best in resamples (%)``, ``mean rank``, ``rank 95% interval``.
    """
    from ovfkit.metrics import weighted_auc

    columns = ["architecture", "pooled AUC", "best in folds", "folds", "best in resamples (%)", "mean rank",
               "rank 95% interval"]
    if oof["architecture"].nunique() < 2:  # nothing to rank
        return pd.DataFrame(columns=columns)
    y, sc, groups = scores(oof)
    archs = list(sc)
    folds = fold_metrics(oof).pivot(index="fold", columns="architecture", values="auc")[archs]
    best_fold = folds.idxmax(axis=1).value_counts()
    W = metrics.bootstrap_weights(groups, n_boot, seed)  # (n_boot, n) patient multiplicities per vertebra
    aucs = np.column_stack([weighted_auc(y == 1, sc[a], W) for a in archs])  # (n_boot, n_archs)
    ranks = (-aucs).argsort(1).argsort(1) + 1
    from sklearn.metrics import roc_auc_score

    rows = []
    for j, a in enumerate(archs):
        lo, hi = np.percentile(ranks[:, j], [2.5, 97.5])
        rows.append({"architecture": DISPLAY[a], "pooled AUC": float(roc_auc_score(y, sc[a])),
                     "best in folds": int(best_fold.get(a, 0)), "folds": len(folds),
                     "best in resamples (%)": 100.0 * float((ranks[:, j] == 1).mean()),
                     "mean rank": float(ranks[:, j].mean()), "rank 95% interval": f"{lo:.0f} to {hi:.0f}"})
    return pd.DataFrame(rows)


def calibration_table(oof: pd.DataFrame) -> pd.DataFrame:
    """Calibration slope and intercept (logistic recalibration; Wald CIs robust to a patient's several
    vertebrae, clustered by ``patient_id``) and Brier score of each architecture's pooled out-of-fold P(fresh);
    a network that gives every vertebra the same probability has no slope (its row says so in ``note``)."""
    rows = []
    if not len(oof):
        return pd.DataFrame(columns=["architecture", "slope", "brier"])
    for a, d in oof.groupby("architecture", sort=False):
        p = d["p"].to_numpy()
        if np.ptp(np.clip(p, 1e-6, 1 - 1e-6)) == 0:  # one value for every vertebra: no slope to estimate
            cal = {"note": "every prediction equal: slope undefined"}
        else:
            cal = calibration.calibration_slope_intercept(d["truth"].to_numpy(), p, groups=d["patient_id"])
        rows.append({"architecture": DISPLAY[a], **cal, "brier": calibration.brier(d["truth"], p)})
    return pd.DataFrame(rows)


BANDS = ("above", "at", "below")


def by_level_band(oof: pd.DataFrame, bands: pd.Series, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy and AUC (95% patient-bootstrap CI) of every architecture per level band (``above``, ``at``,
    ``below`` the diaphragm), bands in that order.

    Accuracy at 0.5 moves with each band's share of fresh fractures; the AUC does not.

    Parameters
    ----------
    bands : Series
        Vertebra id -> band.
    """
    d = oof.assign(band=pd.Categorical(oof["vertebra_id"].map(bands), categories=BANDS, ordered=True))
    rows = []
    for (a, band), g in d.groupby(["architecture", "band"], sort=False, observed=True):
        m = point_metrics(g["truth"], g["p"])
        auc, lo, hi = metrics.patient_bootstrap_ci(g["truth"].to_numpy(), metrics.binary_proba(g["p"]),
                                                   g["patient_id"],
                                                   n_boot=n_boot, seed=seed, classes=(0, 1))
        rows.append({"architecture": DISPLAY[a], "band": band, "vertebrae": len(g),
                     "fresh (%)": 100 * g["truth"].mean(), "accuracy": m["accuracy"], "auc": auc,
                     "auc_ci_low": lo, "auc_ci_high": hi})
    out = pd.DataFrame(rows, columns=["architecture", "band", "vertebrae", "fresh (%)", "accuracy", "auc",
                                      "auc_ci_low", "auc_ci_high"])
    out["band"] = pd.Categorical(out["band"], categories=BANDS, ordered=True)
    order = {DISPLAY[a]: i for i, a in enumerate(ARCHITECTURES)}
    return out.sort_values(["architecture", "band"], key=lambda c: c.map(order) if c.name == "architecture"
                           else c).reset_index(drop=True)


def input_recipe(recipe):
    """The input preparation of a :class:`~ovfkit.deep.zoo.ZooRecipe` as :func:`ovfkit.deep.prepare_manifest`
    takes it (size, histogram equalization, margin; scaling to [-1, 1] happens in the network input)."""
    from ovfkit.deep.recipe import Recipe

    return Recipe(size=recipe.size, equalize=recipe.equalize, margin=recipe.margin, scaling="minus1to1")


def recipe_sentence(recipe, profile: str) -> str:
    """What the run trains, in one paragraph, for the top of the chapter."""
    what = {"all": "every layer of every network is trained",
            "tail": "each network's front is frozen at its starting weights and only its last stage and "
                    "classifier are trained",
            "head": "each network is frozen at its starting weights and only its final linear layer is trained "
                    "(a linear probe of its penultimate layer)"}[recipe.trainable]
    flips = " and ".join({"lr": "left-right", "tb": "top-bottom"}[f] for f in recipe.flips) or "no"
    text = (f"**This run ({profile} profile):** {recipe.size} px inputs, {what}; SGD with learning rate "
            f"{recipe.lr:g} and momentum {recipe.momentum:g} for {recipe.epochs} epochs (learning rate x "
            f"{recipe.gamma:g} every {recipe.step_epochs} epochs), batches of {recipe.batch_size}, {flips} flips, "
            f"{recipe.folds} folds.")
    if profile != "paper":
        text += (" guo2026's recipe (the `paper` profile: 224 px, every layer trained, learning rate 0.001 for 100 "
                 "epochs, both flips) needs a GPU; this profile keeps the whole part within its time budget on two "
                 "CPU cores, so its networks are weaker than the papers' and the comparison is of what these "
                 "settings make of each architecture.")
    return text


def input_sentence(recipe) -> str:
    """How the patches are prepared, and where that departs from guo2026."""
    flips = " and ".join({"lr": "left-right", "tb": "top-bottom"}[f] for f in recipe.flips)
    return ("Inputs follow guo2026 (the vertebral body's box, histogram equalization, intensities scaled to [-1, 1]) "
            f"with these differences: the box is square around the body's outline with a margin of "
            f"{recipe.margin:.0%} of its side (guo2026 cropped by hand with a 1-10 mm border); intensities are clipped "
            f"to their 0.5th-99.5th percentiles before equalization; the patch is resized to {recipe.size} px "
            f"(guo2026: 224); {'training images are flipped at random (' + flips + ')' if flips else 'no flips (guo2026 flipped left-right and top-bottom)'}.")


def cost_readable(cost: pd.DataFrame) -> pd.DataFrame:
    """The cost table for a reader: parameters in millions, speeds and times rounded."""
    out = cost.copy()
    out["parameters"] = (out["parameters"] / 1e6).map(lambda v: f"{v:.1f} M")
    out["trainable_parameters"] = out["trainable_parameters"].map(
        lambda v: f"{v / 1e6:.1f} M" if v >= 1e5 else f"{int(v):,}")
    return out.rename(columns={"train_images_per_s": "training (images/s)", "latency_ms": "latency (ms)",
                               "seconds": "wall time (s)"})


def bands_readable(bands: pd.DataFrame) -> pd.DataFrame:
    """:func:`by_level_band` as one row per architecture: AUC (95% CI) and accuracy per band."""
    rows = []
    for arch, d in bands.groupby("architecture", sort=False):
        row = {"architecture": arch}
        for _, r in d.iterrows():
            row[f"AUC {r['band']}"] = _estimate_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"], 3)
            row[f"accuracy {r['band']} (%)"] = f"{r['accuracy']:.1f}"
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["architecture"])
    out = pd.DataFrame(rows)
    counts = bands.drop_duplicates("band").set_index("band")
    head = {"architecture": "vertebrae (fresh %)"}
    for b, r in counts.iterrows():
        head[f"AUC {b}"] = f"{int(r['vertebrae'])} ({r['fresh (%)']:.0f}% fresh)"
    return pd.concat([pd.DataFrame([head]), out], ignore_index=True).fillna("")


def sources_sentence(sources: pd.DataFrame, recipe=None) -> str:
    """Which weights the networks start from, in one sentence (and how long the stand-ins were pretrained)."""
    used = sources.groupby("source")["architecture"].apply(lambda a: ", ".join(DISPLAY[x] for x in a))
    parts = [f"{source}: {names}" for source, names in used.items()]
    missing = sources[(sources["source"] != "imagenet") & ~sources["present"]]
    text = "Starting weights in this run: " + "; ".join(parts) + "."
    if recipe is not None and (sources["source"] == "proxy-natural").any():
        text += (f" The stand-ins were pretrained for {recipe.proxy_steps} steps on {recipe.proxy_images} crops "
                 "(batches of up to 16), a tiny fraction of ImageNet's training.")
    if len(missing):
        text += (f" ImageNet files not found for {len(missing)} architecture(s) (the table names each file and where "
                 "it was looked for); put them there, or pass `weights_dir`, to start from ImageNet as the papers did.")
    return text


def cam_cases(manifest: pd.DataFrame, seed: int, per_class: int = 2) -> list:
    """The vertebrae every network's Grad-CAM is drawn on: ``per_class`` fresh and old ones, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for label in ("acute", "chronic"):
        ids = manifest.index[manifest["acuity"] == label].to_numpy()
        out += list(rng.choice(ids, size=min(per_class, len(ids)), replace=False))
    return [str(v) for v in out]


def pooled_wide(pooled: pd.DataFrame, flagged=()) -> pd.DataFrame:
    """:func:`pooled_metrics` as one row per architecture, one column per metric: "estimate (low to high)"
    (specificity is the recall of "old"), with a note on the ``flagged`` (:func:`degenerate`) architectures."""
    def cell(r):
        return _estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], 3 if r["metric"] == "auc" else 1)

    d = pooled.assign(text=pooled.apply(cell, axis=1), label=pooled["metric"].map(METRIC_LABELS))
    wide = d.pivot(index="architecture", columns="label", values="text")
    wide = wide[[METRIC_LABELS[m] for m in METRICS if METRIC_LABELS[m] in wide.columns and m != "specificity"]]
    order = [a for a in ARCHITECTURES if a in wide.index]
    wide = wide.loc[order]
    if flagged:
        wide["note"] = ["learned nothing: one call for every vertebra" if a in flagged else "" for a in wide.index]
    return wide.rename(index=DISPLAY).reset_index()


def _estimate_ci(estimate, low, high, digits: int) -> str:
    """ "0.812 (0.770 to 0.850)"; a metric undefined in this run (no vertebra called fresh, say) is "n/a"."""
    if pd.isna(estimate):
        return "n/a"
    if pd.isna(low) or pd.isna(high):
        return f"{estimate:.{digits}f}"
    if low == high:  # every resample gives the same value (a bound of the scale): no interval to estimate
        return f"{estimate:.{digits}f} (CI not estimable)"
    return f"{estimate:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def li_beside(pooled: pd.DataFrame) -> pd.DataFrame:
    """li's accuracy (%) and AUC of its three networks (validation and control sets) beside this study's pooled
    out-of-fold estimates with 95% CIs."""
    li = li_results()
    ours = pooled.set_index(["architecture", "metric"])
    rows = []
    for (arch, metric), d in li.groupby(["architecture", "metric"], sort=False):
        row = {"architecture": DISPLAY[arch], "li's name": d["paper_name"].iloc[0], "metric": METRIC_LABELS[metric]}
        for _, r in d.iterrows():
            row[f"li, {r['set']} set"] = r["value"]
        if (arch, metric) in ours.index:
            o = ours.loc[(arch, metric)]
            row["this study (pooled out-of-fold, 95% CI)"] = _estimate_ci(o["estimate"], o["ci_low"], o["ci_high"],
                                                                          3 if metric == "auc" else 1)
        rows.append(row)
    return pd.DataFrame(rows)


#: guo2026's readers (Table 4): four orthopedic surgeons and one radiologist, by years of experience.
GUO2026_READERS = pd.DataFrame({"reader": ["GWS (surgeon)", "GZ (surgeon)", "RB (surgeon)", "XZY (surgeon)",
                                           "ZS (radiologist)"], "years": [27, 11, 10, 5, 3]})
#: li's two spine surgeons of different experience; the abstract gives no years, these are assumed.
LI_READERS = pd.DataFrame({"reader": ["junior surgeon", "senior surgeon"], "years": [3, 15]})
#: guo2026's reader study: 40 test images; li's control set: 155 images.
GUO2026_CASES, LI_CASES = 40, 155


def reliance(years) -> np.ndarray:
    """How far a simulated reader's aided reading moves toward the model: 0.6 for a novice, falling by 0.015
    per year of experience to 0.15 (an assumption of the simulation: the less experienced lean on the model
    more)."""
    return np.clip(0.6 - 0.015 * np.asarray(years, dtype=float), 0.15, 0.6)


def visibility(truth: pd.DataFrame) -> pd.Series:
    """How much of the fresh/old evidence a human can see on a synthetic patch, in [0, 1] (the reader
    simulation's ``visibility``), from the phantom's truth.

    0.9 where the sign of the patch's own class is drawn (a condensation band in a fresh fracture, endplate
    sclerosis or an osteophyte in an old one), 0.15 where none is, and 0.0 where only the other class's sign is
    (a fresh fracture with an osteophyte, say: misleading, the reader leans neither way on average); times 0.7
    at the diaphragm (T11 to L1), whose shadows cover the body.

    Parameters
    ----------
    truth : DataFrame
        Indexed by vertebra id, with ``acuity``, ``level``, ``condensation_band``, ``endplate_sclerosis`` and
        ``osteophyte`` (the generator's ``truth.csv``).
    """
    from ovfkit.synth import level_band

    fresh = truth["acuity"] == "acute"
    fresh_sign = truth["condensation_band"].astype(bool)
    old_sign = truth["endplate_sclerosis"].astype(bool) | truth["osteophyte"].astype(bool)
    own = np.where(fresh, fresh_sign, old_sign)
    other = np.where(fresh, old_sign, fresh_sign)
    v = np.where(own, 0.9, np.where(other, 0.0, 0.15))
    v = v * np.where(truth["level"].map(level_band) == "at", 0.7, 1.0)
    return pd.Series(v, index=truth.index, name="visibility")


def reader_cases(manifest: pd.DataFrame, truth: pd.DataFrame, n: int, seed: int,
                 fresh_share: float | None = 0.5) -> pd.DataFrame:
    """``n`` vertebrae drawn at random (``seed``) for a reader study, ``round(n * fresh_share)`` of them fresh
    (None: as they come); columns ``case``, ``truth`` (1 = fresh), ``visibility`` (:func:`visibility`), ``level``.
    """
    rng = np.random.default_rng([seed, n])
    n = min(n, len(manifest))
    if fresh_share is None:
        ids = rng.choice(manifest.index.to_numpy(), size=n, replace=False)
    else:
        fresh = manifest.index[manifest["acuity"] == "acute"].to_numpy()
        old = manifest.index[manifest["acuity"] != "acute"].to_numpy()
        k = min(int(round(n * fresh_share)), len(fresh))
        ids = np.concatenate([rng.choice(fresh, size=k, replace=False),
                              rng.choice(old, size=min(n - k, len(old)), replace=False)])
    ids = np.sort(ids)
    t = truth.loc[ids].assign(acuity=manifest.loc[ids, "acuity"], level=manifest.loc[ids, "level"])
    return pd.DataFrame({"case": ids, "truth": (t["acuity"] == "acute").astype(int).to_numpy(),
                         "visibility": visibility(t).to_numpy(), "level": t["level"].to_numpy()})


def model_vs_readers(long: pd.DataFrame, model: pd.Series, threshold: float | None = None,
                     model_threshold: float = 0.5) -> pd.DataFrame:
    """Each unaided reader's correct calls against the model's on the same cases: exact McNemar test.

    Returns
    -------
    DataFrame, one row per reader: ``reader``, ``reader accuracy (%)``, ``model accuracy (%)``,
    ``only reader right``, ``only model right``, ``p (McNemar, exact)``, ``p (Holm)`` (over the readers).
    """
    from ovfkit.readers import mcnemar_vs_model

    unaided = long[long["test"] == "unaided"]
    cut = threshold if threshold is not None else np.ceil((unaided["rating"].min() + unaided["rating"].max()) / 2)
    rows = []
    for r, d in unaided.groupby("reader", sort=False):
        d = d.set_index("case")
        reader_ok = ((d["rating"] >= cut).astype(int) == d["truth"]).to_numpy()
        model_ok = ((model.loc[d.index] >= model_threshold).astype(int) == d["truth"]).to_numpy()
        t = mcnemar_vs_model(reader_ok, model_ok)
        rows.append({"reader": r, "reader accuracy (%)": 100 * reader_ok.mean(),
                     "model accuracy (%)": 100 * model_ok.mean(), "only reader right": t["reader_only"],
                     "only model right": t["model_only"], "p (McNemar, exact)": t["p"]})
    out = pd.DataFrame(rows)
    out["p (Holm)"] = stats.adjust(out["p (McNemar, exact)"], "holm") if len(out) else []
    return out


def reader_sentence(or_table: pd.DataFrame, t: dict, t_auc: dict | None = None) -> str:
    """The OR-MRMC result (random readers) beside guo2026's paired t-test (of accuracies) and the same t-test
    of the readers' AUCs, in words."""
    r = or_table[or_table["readers"] == "random"].iloc[0]
    from ovfkit.tables import format_p

    text = (f"Obuchowski-Rockette, random readers and cases: {r['comparison']} AUC difference "
            f"{r['difference (AUC)']:+.3f} (95% CI {r['95% CI']}), {r['statistic']}, p {format_p(r['p'])}. "
            f"Paired t-test of the {int(t['n_readers'])} readers' accuracies, as guo2026 did: mean difference "
            f"{t['mean_diff']:+.1f} percentage points, t = {t['t']:.2f} on {t['df']:g} df, p {format_p(t['p'])}.")
    if t_auc is not None:
        text += (f" The same t-test of the readers' AUCs (the Obuchowski-Rockette endpoint, so that the handling "
                 f"of the cases is the only difference): mean difference {t_auc['mean_diff']:+.3f}, p "
                 f"{format_p(t_auc['p'])}.")
    return text


def reader_findings(or_table: pd.DataFrame, t: dict, vs: pd.DataFrame, li_vs: pd.DataFrame,
                    t_auc: dict | None = None) -> list[str]:
    """The reader studies in words: model vs readers (McNemar, Holm over the readers), unaided vs aided
    (OR-MRMC and the t-tests)."""
    out = []
    for label, table in (("guo2026's design (40 patches, 5 readers)", vs), ("li's design (155 images, 2 readers)",
                                                                            li_vs)):
        if not len(table):
            continue
        better = table[(table["p (Holm)"] < 0.05) & (table["model accuracy (%)"] > table["reader accuracy (%)"])]
        worse = table[(table["p (Holm)"] < 0.05) & (table["model accuracy (%)"] < table["reader accuracy (%)"])]
        out.append(f"{label}: the model's accuracy is {table['model accuracy (%)'].iloc[0]:.1f}% against the unaided "
                   f"readers' {table['reader accuracy (%)'].min():.1f}% to {table['reader accuracy (%)'].max():.1f}%; "
                   f"by exact McNemar tests (Holm-corrected over the readers) it is significantly more accurate than "
                   f"{len(better)} and less accurate than {len(worse)} of the {len(table)} readers.")
    r = or_table[or_table["readers"] == "random"].iloc[0]
    direction = "raised" if r["difference (AUC)"] > 0 else "lowered"
    out.append(f"Reading with the model's output {direction} the readers' mean AUC by "
               f"{abs(r['difference (AUC)']):.3f}: the aided reading moves toward this run's model, so it helps "
               "only where the model is better than the reader.")
    out.append(reader_sentence(or_table, t, t_auc) + " The t-test treats the cases as fixed; the "
               "Obuchowski-Rockette analysis does not, which is why its interval is the one to report.")
    return out


#: guo2026 Table 1: fresh and old fractured vertebrae per level (its "old" counts include 9 normal segments
#: labelled old).
GUO2026_TABLE1 = pd.DataFrame({
    "level": ["T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"],
    "fresh": [3, 13, 11, 22, 17, 16, 33, 71, 75, 45, 29, 21, 8],
    "old": [3, 12, 17, 24, 18, 13, 34, 61, 57, 41, 30, 31, 15]})


def table1_beside_paper(manifest: pd.DataFrame) -> pd.DataFrame:
    """Fresh and old vertebrae per level in this cohort beside guo2026 Table 1, with the level band."""
    from ovfkit.synth import level_band

    ours = pd.crosstab(manifest["level"], manifest["acuity"]).reindex(GUO2026_TABLE1["level"], fill_value=0)
    out = GUO2026_TABLE1.rename(columns={"fresh": "guo2026 fresh", "old": "guo2026 old"}).set_index("level")
    out["this study fresh"] = ours.get("acute", 0)
    out["this study old"] = ours.get("chronic", 0)
    out.insert(0, "band (diaphragm)", [level_band(v) for v in out.index])
    total = out.drop(columns="band (diaphragm)").sum().to_frame("total").T.assign(**{"band (diaphragm)": ""})
    return pd.concat([out, total]).reset_index(names="level")


def demographics_beside_paper(manifest: pd.DataFrame) -> pd.DataFrame:
    """Patients, age (mean ± SD) and sex in this cohort beside guo2026 Table 1 (405 patients, 75 ± 14 years,
    290 women and 115 men)."""
    pat = manifest.drop_duplicates("patient_id")
    return pd.DataFrame([
        {"": "patients", "guo2026": "405", "this study": str(len(pat))},
        {"": "vertebral patches", "guo2026": "720", "this study": str(len(manifest))},
        {"": "fresh / old patches", "guo2026": "364 / 356",
         "this study": f"{int((manifest['acuity'] == 'acute').sum())} / {int((manifest['acuity'] == 'chronic').sum())}"},
        {"": "age, years (mean ± SD)", "guo2026": "75 ± 14", "this study": f"{pat['age'].mean():.1f} ± {pat['age'].std():.1f}"},
        {"": "women / men", "guo2026": "290 / 115",
         "this study": f"{int((pat['sex'] == 'F').sum())} / {int((pat['sex'] == 'M').sum())}"}])


SIGN_COLUMNS = {"condensation_band": "condensation band", "endplate_sclerosis": "endplate sclerosis",
                "osteophyte": "osteophyte"}


def sign_shares(truth: pd.DataFrame) -> pd.DataFrame:
    """Share (%) of fresh and of old fractures with each radiographic sign the phantom drew, and with none."""
    rows = []
    for label, name in (("acute", "fresh"), ("chronic", "old")):
        d = truth[truth["acuity"] == label]
        row = {"fractures": name, "n": len(d)}
        for col, sign in SIGN_COLUMNS.items():
            row[f"{sign} (%)"] = 100 * d[col].astype(bool).mean() if len(d) else float("nan")
        none = ~d[list(SIGN_COLUMNS)].astype(bool).any(axis=1)
        row["no sign (%)"] = 100 * none.mean() if len(d) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def sign_labels(truth: pd.DataFrame) -> pd.Series:
    """The signs drawn in each patch, as a short label ("band", "sclerosis + osteophyte", "no sign")."""
    short = {"condensation_band": "band", "endplate_sclerosis": "sclerosis", "osteophyte": "osteophyte"}
    flags = truth[list(short)].astype(bool)
    return flags.apply(lambda r: " + ".join(short[c] for c in short if r[c]) or "no sign", axis=1)


#: guo2026 Tables 4 and 5: each reader's accuracy, specificity and sensitivity (%) on 40 patches, unaided and
#: three days later aided by the model's output, as printed (see chapter 03 for why they cannot all hold).
GUO2026_READER_TABLES = pd.DataFrame({
    "reader": ["GWS (surgeon)", "GZ (surgeon)", "RB (surgeon)", "XZY (surgeon)", "ZS (radiologist)"],
    "unaided accuracy (%)": [45.00, 55.00, 52.50, 50.00, 55.00],
    "unaided specificity (%)": [45.00, 57.14, 52.94, 50.00, 56.25],
    "unaided sensitivity (%)": [45.00, 53.85, 45.00, 50.00, 54.17],
    "aided accuracy (%)": [62.50, 72.50, 70.00, 65.00, 67.50],
    "aided specificity (%)": [60.87, 76.47, 72.22, 68.75, 68.42],
    "aided sensitivity (%)": [64.71, 69.57, 68.18, 62.50, 66.67]})


def accuracy_readable(acc: pd.DataFrame) -> pd.DataFrame:
    """:func:`ovfkit.readers.reader_accuracy` for a reader: percentages with 95% Wilson CIs, tests in the order
    unaided, aided, model."""
    order = {"unaided": 0, "aided": 1, "model": 2}
    d = acc.sort_values(["test", "reader"], key=lambda c: c.map(order) if c.name == "test" else c.map(
        {r: i for i, r in enumerate(dict.fromkeys(acc["reader"]))}))
    out = d[["test", "reader", "n"]].copy()
    for m in ("accuracy", "sensitivity", "specificity"):
        out[f"{m} (%, 95% CI)"] = [_estimate_ci(100 * e, 100 * lo, 100 * hi, 1) for e, lo, hi in
                                   zip(d[m], d[f"{m}_ci_low"], d[f"{m}_ci_high"])]
    return out.reset_index(drop=True)


def best_of(oof: pd.DataFrame, candidates) -> str:
    """The candidate architecture with the highest pooled out-of-fold AUC that is not :func:`degenerate`
    (the first candidate if every one is)."""
    from sklearn.metrics import roc_auc_score

    bad = set(degenerate(oof))
    ok = [a for a in candidates if a not in bad and a in set(oof["architecture"])]
    if not ok:
        return candidates[0]
    aucs = {a: roc_auc_score(d["truth"], d["p"]) for a, d in oof[oof["architecture"].isin(ok)].groupby("architecture")}
    return max(ok, key=lambda a: aucs[a])
