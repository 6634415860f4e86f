"""Figures for the book. Every figure is saved as PNG beside the CSV of the data behind it."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.transforms as mtransforms
import numpy as np
import pandas as pd

from ovfkit.atomic import atomic_output
from ovfkit.manifest import COHORTS, write_csv_atomic

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
    """Loss and validation AUC per epoch, one line per backbone; returns (fig, data).

    A history with a ``network`` column (the cross-fitted networks) is drawn as the mean over its
    networks with their range shaded.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    rows = []
    for i, (name, h) in enumerate(histories.items()):
        h = h.assign(network=h["network"]) if "network" in h else h.assign(network="all")
        g = h.groupby("epoch")
        color = f"C{i}"
        n = h["network"].nunique()
        for ax, col, style, label in ((axes[0], "train_loss", "-", f"{name} train"),
                                      (axes[0], "val_loss", "--", f"{name} validation"),
                                      (axes[1], "val_auc", "-", name)):
            mean = g[col].mean()
            ax.plot(mean.index, mean.to_numpy(), marker="o", ls=style, color=color,
                    label=label + (f" (mean of {n} networks)" if n > 1 and ax is axes[1] else ""))
            if n > 1:
                ax.fill_between(mean.index, g[col].min().to_numpy(), g[col].max().to_numpy(), color=color, alpha=0.12)
        rows.append(h.assign(backbone=name))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy (class-weighted)")
    axes[0].legend(fontsize=7, frameon=False)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation AUC (macro one-vs-rest if > 2 classes)")
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


def _auc_of(scores: pd.DataFrame) -> tuple:
    """(column, axis label) of a score table's AUC: ``macro_auc`` (three classes) or ``auc`` (binary)."""
    if "macro_auc" in scores.columns:
        return "macro_auc", "macro AUC"
    if "auc" in scores.columns:
        return "auc", "AUC"
    raise ValueError(f"the score table has no 'macro_auc' or 'auc' column (columns: {list(scores.columns)}); "
                     "pass a table from ovfkit.study.score_predictions")


def auc_forest(scores: pd.DataFrame, by: str = "variant"):
    """AUC (the task's headline) with 95% CI per ``by`` (rows) and cohort (colour): a forest plot.

    Returns (fig, data).
    """
    auc, label = _auc_of(scores)
    cohorts = list(dict.fromkeys(scores["cohort"]))
    items = list(dict.fromkeys(scores[by]))
    colors = dict(zip(cohorts, ["#4C72B0", "#55A868", "#DD8452", "#8172B3"]))
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(items)))
    step = 0.8 / max(len(cohorts), 1)
    for j, c in enumerate(cohorts):
        s = scores[scores["cohort"] == c].set_index(by).reindex(items)
        yy = np.arange(len(items)) + (j - (len(cohorts) - 1) / 2) * step
        ax.errorbar(s[auc], yy, xerr=[s[auc] - s["ci_low"], s["ci_high"] - s[auc]],
                    fmt="o", ms=4, color=colors[c], label=c, capsize=2)
    ax.set_yticks(np.arange(len(items)), items)
    ax.invert_yaxis()
    ax.axvline(0.5, color="0.7", lw=0.8)
    ax.set_xlabel(f"{label} (95% patient-bootstrap CI)")
    ax.legend(frameon=False, fontsize=8, ncol=len(cohorts), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig, scores


def auc_heatmap(scores: pd.DataFrame):
    """Models (rows) x cohorts (columns) AUC (the task's headline), each cell annotated with its CI."""
    import seaborn as sns

    auc, name = _auc_of(scores)
    est = scores.pivot(index="model", columns="cohort", values=auc)
    cols = [c for c in COHORTS if c in est.columns]
    est = est.reindex(index=list(dict.fromkeys(scores["model"])), columns=cols)
    text = scores.assign(label=scores.apply(lambda r: f"{r[auc]:.3f}\n({r.ci_low:.2f}-{r.ci_high:.2f})", axis=1)
                         ).pivot(index="model", columns="cohort", values="label").reindex_like(est)
    fig, ax = plt.subplots(figsize=(1.7 * len(cols) + 1.5, 0.55 * len(est) + 1))
    sns.heatmap(est, annot=text, fmt="", cmap="viridis", vmin=0.5, vmax=1.0, ax=ax, annot_kws={"fontsize": 7},
                cbar_kws={"label": name})
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
        missing = t.attrs.get("missing", [])
        if missing:  # a tiny cohort: say which curves cannot be drawn
            ax.text(0.5, 0.5, "no curve for class " + ", ".join(map(str, missing)) + ":\nonly one outcome here",
                    transform=ax.transAxes, ha="center", va="center", fontsize=7, color="0.35")
        ax.set_title(cohort, fontsize=10)
        ax.set_xlabel(xlabel)
        if len(t):
            ax.legend(fontsize=7, frameon=False, loc=legend)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    drawn = [t.assign(cohort=c) for c, t in tables.items() if len(t)]
    data = pd.concat(drawn, ignore_index=True) if drawn else pd.DataFrame(columns=[x, y, "class", "cohort"])
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


def decision_curves(curves: dict, names=None):
    """Net-benefit curves, one panel per class; returns (fig, data).

    Parameters
    ----------
    curves : dict
        Class -> :func:`ovfkit.clinical.decision_curve` table (``model``, ``threshold``, ``net_benefit``).
    names : sequence of str, optional
        Class names in code order (:attr:`ovfkit.task.Task.names`); each panel then says what "treat"
        means for its class (manage the vertebra as that class).

    Returns
    -------
    fig : matplotlib Figure
    data : DataFrame
        The tables stacked, with the class in ``cls``.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.3), squeeze=False)
    for ax, (k, dc) in zip(axes[0], curves.items()):
        for name, g in dc.groupby("model", sort=False):
            style = {"all": dict(color="0.5", ls="--"), "none": dict(color="k", lw=0.8)}.get(name, {})
            ax.plot(g["threshold"], g["net_benefit"], label=name, **style)
        prev = dc.loc[dc["model"] == "all", "net_benefit"].max()
        ax.set_ylim(-0.05, max(prev, 0.05) * 1.15)
        ax.set_title(f"class {k} vs rest" + (f"\ntreat = manage as {names[k]}" if names is not None else ""),
                     fontsize=9)
        ax.set_xlabel("threshold probability")
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("net benefit")
    fig.tight_layout()
    data = pd.concat([dc.assign(cls=k) for k, dc in curves.items()], ignore_index=True)
    return fig, data


def shap_importance(importance: pd.DataFrame, families: pd.DataFrame, top: int = 15):
    """Mean |SHAP| per feature (the ``top`` ones) and per family, stacked over classes; returns (fig, data).

    Parameters
    ----------
    importance : DataFrame
        :func:`ovfkit.explain.importance`: features (rows, most important first) x ``class k`` columns.
    families : DataFrame
        :func:`ovfkit.explain.family_importance`: families x ``class k`` columns.

    Returns
    -------
    fig : matplotlib Figure
    data : DataFrame
        ``importance`` with the feature names as a ``feature`` column.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, table, xlabel, legend in ((axes[0], importance.head(top), "mean |SHAP| (stacked over classes)", True),
                                      (axes[1], families, "mean |SHAP| summed by family", False)):
        classes = [c for c in table.columns if c.startswith("class")]
        table[classes].iloc[::-1].plot.barh(stacked=True, ax=ax, legend=legend,
                                            color=[CLASS_COLORS[int(c.split()[-1])] for c in classes])
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig, importance.reset_index(names="feature")


def shap_beeswarm(expl, k: int, max_display: int = 10):
    """shap's beeswarm of class ``k`` (one dot per case); returns (fig, data: the SHAP values, cases x features)."""
    import shap

    plt.figure()
    shap.plots.beeswarm(expl.for_class(k), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(f"class {k}", fontsize=10)
    return fig, pd.DataFrame(expl.values[:, :, expl.classes.index(k)], columns=expl.features)


def shap_waterfall(expl, i: int, k: int, title: str, max_display: int = 8):
    """shap's waterfall of case ``i``'s explanation of class ``k``; returns (fig, data: feature, value, shap)."""
    import shap

    plt.figure()
    shap.plots.waterfall(expl.for_class(k)[i], max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(title, fontsize=10)
    return fig, pd.DataFrame({"feature": expl.features, "value": expl.data.iloc[i].to_numpy(),
                              "shap": expl.values[i, :, expl.classes.index(k)]})


# --- nomogram (laid out like R's rms nomograms) ---------------------------------------------------

_PROBABILITY_TICKS = (0.5, 0.1, 0.9, 0.01, 0.99, 0.3, 0.7, 0.05, 0.95, 0.2, 0.8, 0.001, 0.999, 0.4, 0.6, 0.02,
                      0.98, 0.005, 0.995)  # most telling first
_TICK_FONT = 8
_LABEL_GAP_PT = 4.0  # least horizontal gap between two tick labels of one axis, in points (1/72 inch)


def _tick_label(value: float) -> str:
    """A tick value as text: no float noise, no negative zero, a true minus sign."""
    return f"{round(float(value), 10) + 0.0:g}".replace("-", "\u2212")


def _ordinal(n: float) -> str:
    """1 -> "1st", 99 -> "99th"."""
    n = int(round(n))
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _nice_tick_sets(lo: float, hi: float, max_ticks: int = 11) -> list:
    """Tick sets of round values inside [lo, hi], finest first, each an array of 2 to ``max_ticks`` values.

    Steps are 1, 2, 2.5 and 5 times a power of ten; some step always gives at least two ticks.
    """
    if not hi > lo:
        raise ValueError(f"an axis needs high > low, got [{lo}, {hi}]; a predictor that does not vary "
                         "in the training rows cannot be drawn: drop it from the model")
    top = int(np.floor(np.log10(hi - lo)))
    sets = []
    for step in sorted(m * 10.0 ** e for e in range(top - 2, top + 2) for m in (1, 2, 2.5, 5)):
        ticks = step * np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1)
        if 2 <= len(ticks) <= max_ticks:
            sets.append(ticks)
    return sets


class _Row:
    """One nomogram axis at height ``y`` (data units of ``ax``): its line, tick marks and tick labels.

    Label extents come from the figure canvas' renderer (Agg, as in the book and in Jupyter).
    """

    def __init__(self, ax, y: float, name: str):
        self.ax, self.y, self.name = ax, y, name
        self.renderer = ax.figure.canvas.get_renderer()
        self.gap_px = _LABEL_GAP_PT * ax.figure.dpi / 72.0

    def _text(self, x, label, ha="center", shift_pt=0.0):
        """A tick label above the line at ``x`` (data), shifted ``shift_pt`` points sideways."""
        transform = mtransforms.offset_copy(self.ax.transData, fig=self.ax.figure, x=shift_pt, units="points")
        return self.ax.text(x, self.y + 0.2, label, ha=ha, va="bottom", fontsize=_TICK_FONT, gid=self.name,
                            transform=transform)

    def _overlap(self, texts) -> bool:
        """Whether two of ``texts`` (labels of this axis) come closer than ``_LABEL_GAP_PT``."""
        boxes = sorted((t.get_window_extent(self.renderer) for t in texts), key=lambda b: b.x0)
        return any(a.x1 + self.gap_px > b.x0 for a, b in zip(boxes, boxes[1:]))

    def first_fitting(self, candidates) -> tuple:
        """Label the first candidate (xs, values, labels) whose labels keep apart; returns it.

        When none does (an axis a few points long), the first candidate's two end ticks are labelled
        pointing outward, which cannot overlap, and the axis' length in points is noted beside it.
        """
        for xs, values, labels in candidates:
            texts = [self._text(x, lab) for x, lab in zip(xs, labels)]
            if not self._overlap(texts):
                return np.asarray(xs), np.asarray(values), list(labels)
            for t in texts:
                t.remove()
        xs, values, labels = candidates[0]
        order = np.argsort(xs, kind="stable")
        ends = [int(order[0]), int(order[-1])]
        self._text(xs[ends[0]], labels[ends[0]], ha="right", shift_pt=-2)
        right = self._text(xs[ends[1]], labels[ends[1]], ha="left", shift_pt=2)
        self._note(right, f"(the whole axis: {abs(xs[ends[1]] - xs[ends[0]]):.1f} points)")
        return np.asarray(xs)[ends], np.asarray(values)[ends], [labels[i] for i in ends]

    def greedy(self, xs, values, labels) -> tuple:
        """Keep candidate ticks in their order (most telling first) while their labels keep apart."""
        kept, texts = [], []
        for i, (x, lab) in enumerate(zip(xs, labels)):
            text = self._text(x, lab)
            if self._overlap(texts + [text]):
                text.remove()
            else:
                kept.append(i)
                texts.append(text)
        return np.asarray(xs)[kept], np.asarray(values)[kept], [labels[i] for i in kept]

    def _note(self, after, text):
        """A grey note to the right of the label ``after``."""
        right = self.ax.transData.inverted().transform(after.get_window_extent(self.renderer))[1, 0]
        self.ax.text(right, self.y + 0.2, text, transform=mtransforms.offset_copy(
            self.ax.transData, fig=self.ax.figure, x=6, units="points"), ha="left", va="bottom",
            fontsize=_TICK_FONT - 1, color="0.4", gid="note")

    def line(self, x0, x1, ticks):
        """The axis line from x0 to x1 with upward tick marks."""
        self.ax.hlines(self.y, x0, x1, color="k", lw=0.9)
        self.ax.vlines(ticks, self.y, self.y + 0.15, color="k", lw=0.9)


def _numeric_candidates(lo, hi, to_x) -> list:
    """Nice tick sets of [lo, hi] as (x positions, values, labels), finest first."""
    return [(to_x(t), t, [_tick_label(v) for v in t]) for t in _nice_tick_sets(lo, hi)]


def _records(axis, values, labels, points) -> list:
    """The figure's data rows of one axis' labelled ticks, by value."""
    order = np.argsort(values)
    return [{"axis": axis, "value": float(values[i]), "label": labels[i].replace("\u2212", "-"),
             "points": float(points[i])} for i in order]


def _predictor_axis(row: _Row, nomo, c: str) -> list:
    """A predictor's axis at its points: round values (sex: female, male) over the axis' span."""
    r = nomo.points().loc[c]
    if c == "male":
        candidates = [(nomo.points_of(c, [0.0, 1.0]), np.array([0.0, 1.0]), ["female", "male"])]
    else:
        candidates = _numeric_candidates(r["low"], r["high"], lambda v: nomo.points_of(c, v))
    xs, values, labels = row.first_fitting(candidates)
    row.line(*sorted(nomo.points_of(c, [r["low"], r["high"]])), xs)
    return _records(c, values, labels, xs)


def _total_axes(rows: dict, nomo) -> list:
    """Total points, linear predictor and probability axes; x is total points scaled to 0-100."""
    total_max = nomo.max_total_points()

    def at(total):
        return np.asarray(total, dtype=float) / total_max * 100.0

    xs, values, labels = rows["total"].first_fitting(_numeric_candidates(0.0, total_max, at))
    rows["total"].line(0, 100, xs)
    out = _records("Total points", values, labels, values)
    lp0, lp1 = nomo.linear_predictor_from_points(np.array([0.0, total_max]))

    def lp_points(lp):
        return (np.asarray(lp, dtype=float) - lp0) / (lp1 - lp0) * total_max

    xs, values, labels = rows["lp"].first_fitting(_numeric_candidates(lp0, lp1, lambda v: at(lp_points(v))))
    rows["lp"].line(0, 100, xs)
    out += _records("Linear predictor", values, labels, lp_points(values))
    p0, p1 = nomo.probability_from_points(np.array([0.0, total_max]))
    probs = [p for p in _PROBABILITY_TICKS if p0 <= p <= p1]
    if len(probs) < 3:  # a narrow probability range: round values inside it as well
        probs += [p for p in _nice_tick_sets(p0, p1)[0] if not np.isclose(probs, p).any()]
    probs = np.asarray(probs)
    xs, values, labels = rows["p"].greedy(at(nomo.points_for_probability(probs)), probs,
                                          [_tick_label(p) for p in probs])
    rows["p"].line(0, 100, xs)
    return out + _records("Probability", values, labels, nomo.points_for_probability(values))


def nomogram(nomo, labels: dict | None = None, *, width: float = 10.0, title: str | None = None):
    """The nomogram of a fitted :class:`ovfkit.clinical.Nomogram`, laid out like R's ``rms`` nomograms.

    From top to bottom: Points (0-100); one axis per predictor at its points (DLR score in logits over
    the 1st-99th percentile of the training scores, age in years, sex as female/male); Total points; the
    linear predictor (logit) and the probability of the class at those totals. Tick values are round
    numbers: each axis takes the finest set whose labels, measured with the renderer, keep
    ``_LABEL_GAP_PT`` points apart (the probability axis keeps the most telling values that fit), and an axis
    too short for two centred labels labels its two ends pointing outward and states its length in
    points. A value beyond an axis end scores as the axis extended (below 0 or past its end).

    Parameters
    ----------
    nomo : ovfkit.clinical.Nomogram
    labels : dict, optional
        Predictor -> axis name, replacing the defaults (which state the units).
    width : float
        Figure width in inches; the height follows the number of axes.
    title : str, optional
        Default: "Nomogram: ASTLOF class k vs rest"; name a binary task's positive class here.

    Returns
    -------
    fig : matplotlib Figure
    data : DataFrame
        One row per labelled tick: ``axis``, ``value`` (in the axis' units), ``label`` and ``points``
        (the predictor's points on a predictor axis; total points on the total, linear-predictor and
        probability axes).
    """
    from ovfkit.clinical import DLR_AXIS_QUANTILES, PREDICTORS

    k = nomo.k
    names = {"dlr_score": f"DLR score, class {k} (logit)", "age": "Age (years)", "male": "Sex", **(labels or {})}
    order = ["Points", *(names[c] for c in PREDICTORS), "Total points", "Linear predictor (logit)", f"P(class {k})"]
    fig = plt.figure(figsize=(width, 0.5 * len(order) + 0.9))
    left = min(0.3, 2.0 / width)
    ax = fig.add_axes((left, 0.12, 0.97 - left, 0.8))
    ax.set_xlim(-8, 104)
    ax.set_ylim(-0.4, len(order) - 0.3)
    ax.axis("off")
    rows = {name: _Row(ax, y, name) for name, y in zip(order, range(len(order) - 1, -1, -1))}
    for name, row in rows.items():
        ax.text(-0.01, row.y, name, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=9,
                gid="row label")

    xs, values, tick_labels = rows["Points"].first_fitting(_numeric_candidates(0.0, 100.0, lambda t: t))
    rows["Points"].line(0, 100, xs)
    ax.vlines(xs, rows["Total points"].y + 0.6, rows["Points"].y, color="0.9", lw=0.6, zorder=0)
    data = _records("Points", values, tick_labels, xs)
    for c in PREDICTORS:
        data += _predictor_axis(rows[names[c]], nomo, c)
    data += _total_axes({"total": rows["Total points"], "lp": rows["Linear predictor (logit)"],
                         "p": rows[f"P(class {k})"]}, nomo)

    lo_q, hi_q = (_ordinal(100 * q) for q in DLR_AXIS_QUANTILES)
    ax.set_title(title or f"Nomogram: ASTLOF class {k} vs rest", fontsize=10, loc="left")
    fig.text(left, 0.01, f"DLR score axis: {lo_q}-{hi_q} percentile of the training scores; age, sex: their "
             f"training range.\nPoints = {nomo.points_per_logit():.3g} x beta x (value - value at 0 points); a "
             "value beyond an axis end scores below 0 or past the end, at the same points per unit.",
             fontsize=7, color="0.3", gid="note")
    return fig, pd.DataFrame(data)
