"""Figures for the book. Every figure is saved as PNG beside the CSV of the data behind it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ovfkit.manifest import write_csv_atomic

CLASS_COLORS = {0: "#4C72B0", 1: "#DD8452", 2: "#C44E52"}


def save_figure(fig, data: pd.DataFrame, name: str, outdir: str | os.PathLike, *, index: bool = False) -> Path:
    """Write ``<outdir>/<name>.png`` (150 dpi) and ``<outdir>/<name>.csv`` atomically; return the PNG path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    png = outdir / f"{name}.png"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".png", dir=outdir)
    os.close(fd)
    # A fixed creation date keeps the PNG bytes identical from run to run.
    fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Software": None})
    os.replace(tmp, png)
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
    write_csv_atomic(df, path, index=True)
    return path
