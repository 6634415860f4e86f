"""Figures for the book. Every figure is saved as PNG beside the CSV of the data behind it."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ovfkit.atomic import atomic_output
from ovfkit.manifest import write_csv_atomic

CLASS_COLORS = {0: "#4C72B0", 1: "#DD8452", 2: "#C44E52"}


def save_figure(fig, data: pd.DataFrame, name: str, outdir: str | os.PathLike, *, index: bool = False) -> Path:
    """Write ``<outdir>/<name>.png`` (150 dpi) and ``<outdir>/<name>.csv`` atomically; return the PNG path."""
    outdir = Path(outdir)
    png = outdir / f"{name}.png"
    with atomic_output(png) as tmp:  # no "Software" stamp: the same figure gives the same bytes
        fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Software": None})
    write_csv_atomic(data, outdir / f"{name}.csv", index=index)
    return png


def class_mix_bar(manifest: pd.DataFrame, by: str = "cohort"):
    """Stacked bars of ASTLOF class proportions per cohort or center; returns (fig, data)."""
    from ovfkit.manifest import COHORTS

    counts = pd.crosstab(manifest[by], manifest["astlof_class"]).reindex(columns=[0, 1, 2], fill_value=0)
    if by == "cohort":
        counts = counts.reindex([c for c in COHORTS if c in counts.index])
    prop = counts.div(counts.sum(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    left = np.zeros(len(prop))
    for c in prop.columns:
        ax.barh(prop.index.astype(str), prop[c], left=left, color=CLASS_COLORS[c], label=f"class {c}")
        for y, (l, w, n) in enumerate(zip(left, prop[c], counts[c])):
            if w > 0.06:
                ax.text(l + w / 2, y, f"{n}", ha="center", va="center", color="white", fontsize=8)
        left += prop[c].to_numpy()
    ax.set_xlim(0, 1)
    ax.set_xlabel("proportion of vertebrae (numbers: counts)")
    ax.invert_yaxis()
    ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    data = counts.reset_index().melt(id_vars=by, var_name="astlof_class", value_name="n")
    return fig, data


def gallery(manifest: pd.DataFrame, *, per_cell: int = 1, seed: int = 0):
    """Grid of vertebrae: rows ASTLOF class, columns center; reader 1's outline in yellow.

    X-ray patches are shown as acquired (anterior left, superior up); CT as the largest sagittal
    slice in a bone window (W 1500, L 300). Returns (fig, data) with the vertebrae shown.
    """
    from ovfkit.imaging import roi_crop, slice_for_display
    from ovfkit.manifest import read_image

    centers = sorted(manifest["center"].unique(), key=lambda c: (len(c), c))
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(3, len(centers) * per_cell, figsize=(2.3 * len(centers) * per_cell, 7.2),
                             squeeze=False)
    shown = []
    for r, cls in enumerate((0, 1, 2)):
        for c, center in enumerate(centers):
            pool = manifest[(manifest["astlof_class"] == cls) & (manifest["center"] == center)]
            picks = pool.iloc[np.sort(rng.choice(len(pool), size=min(per_cell, len(pool)), replace=False))] \
                if len(pool) else pool
            for k in range(per_cell):
                ax = axes[r, c * per_cell + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k >= len(picks):
                    ax.set_facecolor("0.9")
                    continue
                row = picks.iloc[k]
                img, msk, aspect = slice_for_display(read_image(row["image"]), read_image(row["mask"]))
                box = roi_crop(img, msk, margin=0.25)
                img, msk = img[box].astype(float), msk[box]
                if row["modality"] == "ct":
                    vmin, vmax = 300 - 750, 300 + 750
                else:
                    vmin, vmax = np.percentile(img, [1, 99.5])
                ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="bilinear")
                ax.contour(msk, levels=[0.5], colors="yellow", linewidths=0.6)
                ax.set_title(f"{row['vertebra_id']}  M{row['morphology']} R{row['mri']} B{row['bmd']} "
                             f"C{row['clinical']}", fontsize=6.5)
                shown.append({"vertebra_id": row["vertebra_id"], "center": center, "astlof_class": cls,
                              "image": Path(row["image"]).name})
        axes[r, 0].set_ylabel(f"class {cls}", fontsize=10)
    for c, center in enumerate(centers):
        axes[0, c * per_cell].annotate(f"center {center}", (0, 1.25), xycoords="axes fraction", fontsize=10,
                                       fontweight="bold")
    fig.tight_layout()
    return fig, pd.DataFrame(shown)


def component_distributions(manifest: pd.DataFrame):
    """Bar charts of each ASTLOF component (consensus and both readers) and of the total."""
    from ovfkit.astlof import COMPONENTS

    fig, axes = plt.subplots(1, 5, figsize=(15, 2.8))
    rows = []
    for ax, comp in zip(axes, COMPONENTS):
        cols = [c for c in (f"{comp}_r1", f"{comp}_r2", comp) if c in manifest.columns]
        counts = pd.DataFrame({c: manifest[c].value_counts().reindex([0, 1, 2], fill_value=0) for c in cols})
        counts.plot.bar(ax=ax, rot=0, width=0.8, color=["#9ecae1", "#6baed6", "#08519c"][-len(cols):])
        ax.set_title(comp)
        ax.set_xlabel("score")
        ax.legend(fontsize=7, frameon=False)
        for c in cols:
            rows += [{"variable": c, "score": s, "n": int(n)} for s, n in counts[c].items()]
    tot = manifest["astlof_total"].value_counts().reindex(range(9), fill_value=0)
    colors = [CLASS_COLORS[0]] * 4 + [CLASS_COLORS[1]] + [CLASS_COLORS[2]] * 4
    axes[4].bar(tot.index, tot.to_numpy(), color=colors)
    axes[4].set_title("total (colour = class)")
    axes[4].set_xlabel("ASTLOF total")
    rows += [{"variable": "astlof_total", "score": s, "n": int(n)} for s, n in tot.items()]
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def reader_confusion(manifest: pd.DataFrame):
    """Reader 1 vs reader 2 confusion matrices for each component and the class."""
    from ovfkit.astlof import COMPONENTS, astlof_class, total

    pairs = {c: (manifest[f"{c}_r1"], manifest[f"{c}_r2"]) for c in COMPONENTS}
    pairs["astlof_class"] = (
        pd.Series(astlof_class(total(*(manifest[f"{c}_r1"] for c in COMPONENTS)))),
        pd.Series(astlof_class(total(*(manifest[f"{c}_r2"] for c in COMPONENTS)))),
    )
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.0 * len(pairs), 3.0))
    rows = []
    for ax, (name, (a, b)) in zip(axes, pairs.items()):
        cm = pd.crosstab(pd.Categorical(np.asarray(a), [0, 1, 2]), pd.Categorical(np.asarray(b), [0, 1, 2]),
                         dropna=False).to_numpy()
        ax.imshow(cm, cmap="Blues")
        for i in range(3):
            for j in range(3):
                ax.text(j, i, cm[i, j], ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=9)
                rows.append({"variable": name, "reader1": i, "reader2": j, "n": int(cm[i, j])})
        ax.set_xticks([0, 1, 2])
        ax.set_yticks([0, 1, 2])
        ax.set_xlabel("reader 2")
        ax.set_ylabel("reader 1")
        ax.set_title(name)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def kappa_forest(agreement: pd.DataFrame):
    """Weighted kappa with its CI per component (forest plot)."""
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    y = np.arange(len(agreement))
    ax.errorbar(agreement["kappa"], y, xerr=[agreement["kappa"] - agreement["ci_low"],
                                             agreement["ci_high"] - agreement["kappa"]],
                fmt="o", color="k", capsize=3)
    for x, lab in ((0.61, "substantial"), (0.81, "almost perfect")):
        ax.axvline(x, color="0.7", ls=":", lw=1)
        ax.text(x, len(agreement) - 0.4, lab, fontsize=7, color="0.4")
    ax.set_yticks(y, agreement.index)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Cohen's kappa (linear weights), 95% CI")
    fig.tight_layout()
    return fig, agreement.reset_index()


def save_table(df: pd.DataFrame, name: str, outdir: str | os.PathLike) -> Path:
    """Write a table shown in the book as ``<outdir>/<name>.csv`` (atomic) and return its path."""
    path = Path(outdir) / f"{name}.csv"
    write_csv_atomic(df, path, index=not isinstance(df.index, pd.RangeIndex))  # a plain row number is not data
    return path


def feature_family_counts(families: pd.DataFrame, kept: pd.Series | None = None):
    """Heatmap of feature counts by image type (rows) and class (columns); with ``kept`` (bool per
    feature name) cells read 'kept/total'."""
    import seaborn as sns

    total = pd.crosstab(families["image_type"], families["feature_class"])
    annot = total.astype(str)
    data = total.stack().rename("n_features").reset_index()
    if kept is not None:
        fam = families.assign(kept=kept.reindex(families["feature_name"]).fillna(False).to_numpy())
        k = pd.crosstab(fam["image_type"], fam["feature_class"], values=fam["kept"], aggfunc="sum").fillna(0)
        k = k.reindex_like(total).fillna(0).astype(int)
        annot = k.astype(str) + "/" + total.astype(str)
        data["n_kept"] = k.stack().to_numpy()
    fig, ax = plt.subplots(figsize=(1.1 * total.shape[1] + 2.5, 0.45 * total.shape[0] + 1.5))
    sns.heatmap(total, annot=annot, fmt="", cmap="Blues", cbar=False, ax=ax, linewidths=0.5)
    ax.set_xlabel("feature class")
    ax.set_ylabel("image type")
    fig.tight_layout()
    return fig, data


def icc_histogram(icc: pd.Series, threshold: float = 0.8):
    """Distribution of per-feature ICC with the retention threshold."""
    fig, ax = plt.subplots(figsize=(6, 3))
    vals = icc.dropna().clip(lower=-0.5)
    ax.hist(vals, bins=np.linspace(-0.5, 1, 61), color="#4C72B0")
    ax.axvline(threshold, color="k", ls="--", lw=1)
    kept = int((icc >= threshold).sum())
    ax.text(threshold, ax.get_ylim()[1] * 0.9, f"  ICC >= {threshold}: {kept} of {icc.notna().sum()} kept",
            fontsize=8)
    ax.set_xlabel(f"{icc.name or 'ICC'} between the two readers' masks (values below -0.5 shown at -0.5)")
    ax.set_ylabel("features")
    fig.tight_layout()
    return fig, icc.rename("icc").rename_axis("feature").reset_index()


def pca_by_center(before: pd.DataFrame, after: pd.DataFrame, batch: pd.Series, train_index):
    """First two principal components before and after harmonization, coloured by center.

    The scaler and PCA are fitted on the training rows of each table and applied to all rows.
    """
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=False, sharey=False)
    rows = []
    centers = sorted(batch.loc[before.index].unique(), key=lambda c: (len(c), c))
    colors = dict(zip(centers, ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2"]))
    for ax, (label, table) in zip(axes, (("before ComBat", before), ("after ComBat", after))):
        pca = make_pipeline(StandardScaler(), PCA(n_components=2, random_state=0)).fit(table.loc[train_index])
        pc = pca.transform(table)
        var = pca[-1].explained_variance_ratio_
        for c in centers:
            m = (batch.loc[table.index] == c).to_numpy()
            ax.scatter(pc[m, 0], pc[m, 1], s=6, alpha=0.6, color=colors[c], label=f"center {c}")
        ax.set_title(label)
        ax.set_xlabel(f"PC1 ({var[0]:.0%})")
        ax.set_ylabel(f"PC2 ({var[1]:.0%})")
        rows.append(pd.DataFrame({"vertebra_id": table.index, "stage": label, "center": batch.loc[table.index].to_numpy(),
                                  "pc1": pc[:, 0], "pc2": pc[:, 1]}))
    axes[0].legend(frameon=False, markerscale=3)
    fig.tight_layout()
    return fig, pd.concat(rows, ignore_index=True)


def class_clustermap(X: pd.DataFrame, labels: pd.Series, *, max_features: int = 60):
    """Clustered heatmap of z-scored features (columns) by vertebra (rows), rows coloured by class.

    The ``max_features`` features with the largest variance of their z-scores between classes are
    shown (one-way ANOVA F), clustered by correlation; rows are clustered within the table.
    """
    import seaborn as sns
    from sklearn.feature_selection import f_classif

    z = (X - X.mean()) / X.std(ddof=0).replace(0, 1)
    f, _ = f_classif(z.fillna(0), labels.loc[z.index])
    top = z.columns[np.argsort(-np.nan_to_num(f))[:max_features]]
    zz = z[top].clip(-3, 3)
    row_colors = labels.loc[zz.index].map(CLASS_COLORS).rename("class")
    grid = sns.clustermap(zz, row_colors=row_colors, cmap="RdBu_r", center=0, metric="correlation",
                          method="average", figsize=(11, 8), xticklabels=False, yticklabels=False,
                          cbar_kws={"label": "z-score"})
    grid.ax_heatmap.set_xlabel(f"{len(top)} features with the largest between-class F")
    grid.ax_heatmap.set_ylabel("vertebrae")
    data = zz.assign(astlof_class=labels.loc[zz.index]).reset_index()
    return grid.figure, data


def training_curves(histories: dict):
    """Loss and validation macro AUC per epoch, one line per backbone; returns (fig, data)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    rows = []
    for name, h in histories.items():
        axes[0].plot(h["epoch"], h["train_loss"], marker="o", label=f"{name} train")
        axes[0].plot(h["epoch"], h["val_loss"], marker="o", ls="--", label=f"{name} validation")
        axes[1].plot(h["epoch"], h["val_macro_auc"], marker="o", label=name)
        rows.append(h.assign(backbone=name))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy (class-weighted)")
    axes[0].legend(fontsize=7, frameon=False)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation macro AUC")
    axes[1].set_ylim(0.4, 1.0)
    axes[1].axhline(0.5, color="0.7", lw=1, ls=":")
    axes[1].legend(fontsize=7, frameon=False)
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig, pd.concat(rows, ignore_index=True)


def embedding_scatter(embeddings: dict, manifest: pd.DataFrame):
    """2-D embeddings (one column per backbone) coloured by class (top) and by center (bottom)."""
    names = list(embeddings)
    fig, axes = plt.subplots(2, len(names), figsize=(4.6 * len(names), 8), squeeze=False)
    rows = []
    centers = sorted(manifest["center"].unique(), key=lambda c: (len(c), c))
    ccol = dict(zip(centers, ["#4C72B0", "#DD8452", "#55A868", "#8172B2"]))
    for j, name in enumerate(names):
        emb = embeddings[name]
        cls = manifest.loc[emb.index, "astlof_class"].to_numpy()
        cen = manifest.loc[emb.index, "center"].to_numpy()
        for k in (0, 1, 2):
            axes[0, j].scatter(*emb[cls == k].to_numpy().T, s=5, alpha=0.6, color=CLASS_COLORS[k], label=f"class {k}")
        for c in centers:
            axes[1, j].scatter(*emb[cen == c].to_numpy().T, s=5, alpha=0.6, color=ccol[c], label=f"center {c}")
        axes[0, j].set_title(name)
        for i in (0, 1):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            axes[i, j].legend(fontsize=7, frameon=False, markerscale=2)
        rows.append(emb.set_axis(["dim1", "dim2"], axis=1).assign(backbone=name, astlof_class=cls, center=cen))
    fig.tight_layout()
    return fig, pd.concat(rows).rename_axis("vertebra_id").reset_index()


def grad_cam_grid(images: dict, cams: dict, titles: dict):
    """Input (grey) with its Grad-CAM (colour) for a few vertebrae; dicts keyed by vertebra id."""
    ids = list(images)
    fig, axes = plt.subplots(1, len(ids), figsize=(2.3 * len(ids), 2.6), squeeze=False)
    rows = []
    for ax, vid in zip(axes[0], ids):
        ax.imshow(images[vid], cmap="gray", vmin=0, vmax=1)
        ax.imshow(cams[vid], cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(titles[vid], fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        peak = np.unravel_index(np.argmax(cams[vid]), cams[vid].shape)
        rows.append({"vertebra_id": vid, "title": titles[vid], "peak_row": int(peak[0]), "peak_col": int(peak[1]),
                     "mean_activation": float(cams[vid].mean())})
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def pca_variance(curves: dict, threshold: float = 0.95):
    """Cumulative explained variance of PCA fitted on training rows, per backbone."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    rows = []
    for name, ratio in curves.items():
        cum = np.cumsum(ratio)
        ax.plot(np.arange(1, len(cum) + 1), cum, label=name)
        rows += [{"backbone": name, "component": i + 1, "explained_variance_ratio": float(r),
                  "cumulative": float(c)} for i, (r, c) in enumerate(zip(ratio, cum))]
    ax.axhline(threshold, color="0.5", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("principal components (fitted on training rows)")
    ax.set_ylabel("cumulative explained variance")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def lasso_selection(record: dict):
    """The papers' figure 4: cross-validated error against log(lambda), and the coefficient paths.

    ``record`` is one entry of :attr:`ovfkit.study.FusionResult.selections`. Returns (fig, data).
    """
    log_a = np.log10(record["alphas"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.errorbar(log_a, record["cv_mse"], yerr=record["cv_mse_std"], fmt="o", ms=3, color="#C44E52", ecolor="0.75")
    for a, style, label in ((record["alpha_cv"], "--", "lambda (CV)"), (record["alpha"], ":", "lambda used")):
        ax.axvline(np.log10(a), color="0.3", ls=style, label=label)
    ax.set_xlabel("log10(lambda)")
    ax.set_ylabel("cross-validated mean squared error")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[1]
    path = record["coef_path"]
    for row in path:
        ax.plot(log_a, row, lw=0.8)
    ax.axvline(np.log10(record["alpha"]), color="0.3", ls=":")
    ax.set_xlabel("log10(lambda)")
    ax.set_ylabel("coefficient (z-scored features)")
    ax.set_title(f"{int((np.abs(record['coef']) > 0).sum())} non-zero at the chosen lambda", fontsize=9)
    fig.tight_layout()
    data = pd.DataFrame({"log10_lambda": log_a, "cv_mse": record["cv_mse"], "cv_mse_std": record["cv_mse_std"],
                         "n_nonzero": (np.abs(path) > 0).sum(axis=0)})
    return fig, data


def selected_families(selections: dict):
    """Selected features per variant, stacked by family (PyRadiomics class or deep backbone)."""
    from ovfkit.fusion import family_of

    rows = [{"variant": v, "family": family_of(f)} for v, s in selections.items() for f in s["selected"]]
    counts = pd.crosstab(pd.DataFrame(rows)["variant"], pd.DataFrame(rows)["family"]).reindex(list(selections))
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(counts)))
    counts.plot.barh(stacked=True, ax=ax, colormap="tab20", width=0.7)
    ax.invert_yaxis()
    ax.set_xlabel("selected features")
    ax.set_ylabel("")
    ax.legend(ncol=2, fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    fig.tight_layout()
    return fig, counts.reset_index().melt(id_vars="variant", var_name="family", value_name="n")


def auc_forest(scores: pd.DataFrame, by: str = "variant"):
    """Macro AUC with 95% CI per ``by`` (rows) and cohort (colour): a forest plot. Returns (fig, data)."""
    cohorts = list(dict.fromkeys(scores["cohort"]))
    items = list(dict.fromkeys(scores[by]))
    colors = dict(zip(cohorts, ["#4C72B0", "#55A868", "#DD8452", "#8172B3"]))
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(items)))
    step = 0.8 / max(len(cohorts), 1)
    for j, c in enumerate(cohorts):
        s = scores[scores["cohort"] == c].set_index(by).reindex(items)
        yy = np.arange(len(items)) + (j - (len(cohorts) - 1) / 2) * step
        ax.errorbar(s["macro_auc"], yy, xerr=[s["macro_auc"] - s["ci_low"], s["ci_high"] - s["macro_auc"]],
                    fmt="o", ms=4, color=colors[c], label=c, capsize=2)
    ax.set_yticks(np.arange(len(items)), items)
    ax.invert_yaxis()
    ax.axvline(0.5, color="0.7", lw=0.8)
    ax.set_xlabel("macro AUC (95% patient-bootstrap CI)")
    ax.legend(frameon=False, fontsize=8, ncol=len(cohorts), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig, scores


def auc_heatmap(scores: pd.DataFrame):
    """Models (rows) x cohorts (columns) macro AUC, each cell annotated with its CI."""
    import seaborn as sns

    est = scores.pivot(index="model", columns="cohort", values="macro_auc")
    cols = [c for c in ("train", "internal", "external", "prospective") if c in est.columns]
    est = est.reindex(index=list(dict.fromkeys(scores["model"])), columns=cols)
    text = scores.assign(label=scores.apply(lambda r: f"{r.macro_auc:.3f}\n({r.ci_low:.2f}-{r.ci_high:.2f})", axis=1)
                         ).pivot(index="model", columns="cohort", values="label").reindex_like(est)
    fig, ax = plt.subplots(figsize=(1.7 * len(cols) + 1.5, 0.55 * len(est) + 1))
    sns.heatmap(est, annot=text, fmt="", cmap="viridis", vmin=0.5, vmax=1.0, ax=ax, annot_kws={"fontsize": 7},
                cbar_kws={"label": "macro AUC"})
    ax.set_xlabel("cohort (train: nested cross-validation)")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig, scores


def _class_curves_by_cohort(tables: dict, x: str, y: str, label, xlabel: str, ylabel: str, legend: str, **style):
    """One panel per cohort, one line per class: the shared layout of ROC and reliability figures."""
    fig, axes = plt.subplots(1, len(tables), figsize=(3.3 * len(tables), 3.4), squeeze=False)
    for ax, (cohort, t) in zip(axes[0], tables.items()):
        for k, g in t.groupby("class"):
            ax.plot(g[x], g[y], color=CLASS_COLORS[k], label=label(k, g), **style)
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        ax.set_title(cohort, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7, frameon=False, loc=legend)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    data = pd.concat([t.assign(cohort=c) for c, t in tables.items()], ignore_index=True)
    return fig, data


def roc_by_class(tables: dict):
    """One panel per cohort: one-vs-rest ROC curve of each class. ``tables``: cohort -> metrics.roc_table."""
    return _class_curves_by_cohort(tables, "fpr", "tpr", lambda k, g: f"class {k} (AUC {g['auc'].iloc[0]:.3f})",
                                   "1 - specificity", "sensitivity", "lower right")


def confusion_grid(matrices: dict):
    """Row-normalized confusion matrices per cohort, annotated with counts. ``matrices``: cohort -> counts."""
    import seaborn as sns

    fig, axes = plt.subplots(1, len(matrices), figsize=(2.9 * len(matrices), 2.9), squeeze=False)
    for ax, (cohort, cm) in zip(axes[0], matrices.items()):
        share = cm.div(cm.sum(axis=1).replace(0, 1), axis=0)
        sns.heatmap(share, annot=cm, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax)
        ax.set_title(cohort, fontsize=10)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    fig.tight_layout()
    data = pd.concat([cm.stack().rename("n").reset_index().assign(cohort=c) for c, cm in matrices.items()])
    return fig, data


def calibration_curves(tables: dict):
    """Reliability curves per class, one panel per cohort. ``tables``: cohort -> metrics.calibration_table."""
    return _class_curves_by_cohort(tables, "mean_predicted", "observed",
                                   lambda k, g: f"class {k} (Brier {g['brier'].iloc[0]:.3f})",
                                   "mean predicted probability", "observed frequency", "upper left", marker="o")
