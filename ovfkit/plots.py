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


FIGURE_METADATA = "ovfkit"  # key of a displayed figure's output metadata: its name, caption and alt text


def save_figure(fig, data: pd.DataFrame, name: str, outdir: str | os.PathLike, *, caption: str, alt: str,
                index: bool = False) -> Path:
    """Write ``<outdir>/<name>.png`` (150 dpi) and ``<outdir>/<name>.csv`` atomically, show the PNG, return its path.

    Parameters
    ----------
    fig : matplotlib Figure
        Closed after saving, so that the notebook shows it once, as saved.
    data : DataFrame
        The data behind the figure, written next to it.
    name : str
        File stem; also the figure's label in the book (``{modality}-{name}``).
    caption : str
        What the figure shows, in one or two sentences (MyST markdown); the book numbers it.
    alt : str
        Alternative text for a reader who cannot see the image: what is plotted against what, and how
        it is laid out (panels, colours). Not a file name.

    In a notebook the PNG is displayed with ``caption``, ``alt`` and ``name`` in the output's metadata
    (:data:`FIGURE_METADATA`); :func:`ovfkit.runner.render_for_book` turns it into a numbered figure.
    """
    for field, text in (("caption", caption), ("alt", alt)):
        if not isinstance(text, str) or len(text.split()) < 3:
            raise ValueError(f"figure {name!r}: {field} must be a sentence describing the figure, got {text!r}")
    if ".png" in alt or "/" in alt:
        raise ValueError(f"figure {name!r}: alt text {alt!r} looks like a file path; describe the figure instead")
    outdir = Path(outdir)
    png = outdir / f"{name}.png"
    with atomic_output(png) as tmp:  # no "Software" stamp: the same figure gives the same bytes
        fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Software": None})
    write_csv_atomic(data, outdir / f"{name}.csv", index=index)
    plt.close(fig)
    _show(png, {"figure": name, "caption": caption, "alt": alt})
    return png


def _show(png: Path, metadata: dict) -> None:
    """Display ``png`` in a running IPython kernel (nothing outside one), with ``metadata`` on the output."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython comes with the book's dependencies
        return
    if get_ipython() is None:
        return
    display(Image(data=png.read_bytes(), format="png"), metadata={FIGURE_METADATA: metadata})


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


def _display_column_spacing(image) -> float:
    """Millimetres per column of :func:`ovfkit.imaging.slice_for_display`'s view of a SimpleITK image.

    A 2-D image is shown as it is (columns: x); a 3-D one as a sagittal slice whose columns are the
    volume's y axis (rows: z).
    """
    spacing = image.GetSpacing()
    return float(spacing[0] if image.GetDimension() == 2 else spacing[1])


SCALE_BAR_GID = "scale bar"


def _scale_bar(ax, mm_per_px: float, width_mm: float, preferred_mm: float = 10.0) -> float:
    """A labelled horizontal scale bar in the lower right of an image axes; returns its length in mm.

    The bar is ``preferred_mm`` long unless that exceeds 40% of the image's width (``width_mm``); then
    the longest of 5, 2, 1, 0.5 mm that fits. Its length in data units (columns) is length / mm_per_px.
    """
    from matplotlib import patheffects
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = next((mm for mm in (preferred_mm, 5.0, 2.0, 1.0, 0.5) if mm <= 0.4 * width_mm), 0.5)
    bar = AnchoredSizeBar(ax.transData, length / mm_per_px, f"{length:g} mm", loc="lower right", pad=0.3,
                          borderpad=0.3, sep=2, color="white", frameon=False, size_vertical=0,
                          fontproperties={"size": 7})
    bar.set_gid(SCALE_BAR_GID)
    outline = [patheffects.withStroke(linewidth=2, foreground="black")]
    bar.txt_label._text.set_path_effects(outline)
    for rect in bar.size_bar.get_children():
        rect.set_linewidth(1.5)
        rect.set_path_effects(outline)
    ax.add_artist(bar)
    return length


def gallery(manifest: pd.DataFrame, *, per_cell: int = 1, seed: int = 0, by: str = "astlof_class",
            window: tuple = (300, 1500), titles: dict | None = None):
    """Grid of vertebrae: rows ASTLOF class (or the values of column ``by``, e.g. ``acuity``), columns
    center (named above them when there are several); reader 1's outline in yellow.

    ``window``: CT display window (level, width) in HU. ``titles``: vertebra id -> panel title, replacing
    the default (the id and the consensus ASTLOF components).

    X-ray patches are shown as acquired (anterior left, superior up); CT as the largest sagittal
    slice in a bone window (W 1500, L 300). Each image carries a 10 mm scale bar (shorter on an image
    narrower than 25 mm) drawn from its pixel spacing along the displayed columns. Returns (fig, data)
    with the vertebrae shown, their column spacing (mm per pixel) and scale bar length (mm).
    """
    from ovfkit.imaging import roi_crop, slice_for_display
    from ovfkit.manifest import read_image

    centers = sorted(manifest["center"].unique(), key=lambda c: (len(c), c))
    rng = np.random.default_rng(seed)
    values = (0, 1, 2) if by == "astlof_class" else tuple(sorted(manifest[by].astype(str).unique()))
    level, width = window
    fig, axes = plt.subplots(len(values), len(centers) * per_cell,
                             figsize=(2.3 * len(centers) * per_cell, 2.4 * len(values)), squeeze=False)
    shown = []
    for r, cls in enumerate(values):
        for c, center in enumerate(centers):
            pool = manifest[(manifest[by] == cls) & (manifest["center"] == center)]
            picks = pool.iloc[np.sort(rng.choice(len(pool), size=min(per_cell, len(pool)), replace=False))] \
                if len(pool) else pool
            for k in range(per_cell):
                ax = axes[r, c * per_cell + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if k >= len(picks):
                    ax.set_facecolor("0.9")
                    ax.text(0.5, 0.5, f"no {cls} vertebra\nat center {center}", transform=ax.transAxes,
                            ha="center", va="center", fontsize=7, color="0.4")
                    continue
                row = picks.iloc[k]
                image = read_image(row["image"])
                img, msk, aspect = slice_for_display(image, read_image(row["mask"]))
                mm_per_px = _display_column_spacing(image)
                box = roi_crop(img, msk, margin=0.25)
                img, msk = img[box].astype(float), msk[box]
                if row["modality"] == "ct":
                    vmin, vmax = level - width / 2, level + width / 2
                else:
                    vmin, vmax = np.percentile(img, [1, 99.5])
                ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="bilinear")
                ax.contour(msk, levels=[0.5], colors="yellow", linewidths=0.6)
                bar_mm = _scale_bar(ax, mm_per_px, img.shape[1] * mm_per_px)
                default = (f"{row['vertebra_id']}  M{row['morphology']} R{row['mri']} B{row['bmd']} "
                           f"C{row['clinical']}")
                ax.set_title((titles or {}).get(row["vertebra_id"], default), fontsize=6.5)
                shown.append({"vertebra_id": row["vertebra_id"], "center": center, by: cls,
                              "image": Path(row["image"]).name, "column_spacing_mm": mm_per_px,
                              "scale_bar_mm": bar_mm})
        axes[r, 0].set_ylabel(f"class {cls}" if by == "astlof_class" else str(cls), fontsize=10)
    for c, center in enumerate(centers if len(centers) > 1 else []):
        axes[0, c * per_cell].annotate(f"center {center}", (0, 1.25), xycoords="axes fraction", fontsize=10,
                                       fontweight="bold")
    fig.tight_layout()
    return fig, pd.DataFrame(shown)


_COMPONENT_TITLES = {"morphology": "morphology", "mri": "MRI", "bmd": "BMD (T-score)", "clinical": "clinical"}


def component_distributions(manifest: pd.DataFrame):
    """Bar charts of each ASTLOF component (reader 1, reader 2, consensus) and of the total.

    Five panels in 2 rows at page width (8 inches); the sixth cell holds the one legend of the figure
    (the readers' colours, and the class colours of the total's bars), outside every panel's data.
    """
    from matplotlib.patches import Patch

    from ovfkit.astlof import COMPONENTS, astlof_class

    # 2 x 3 panels at page width (8 inches); the sixth cell holds the figure's one legend
    fig, axes = plt.subplots(2, 3, figsize=(8, 5.4))
    axes = axes.ravel()
    roles = (("_r1", "reader 1", "#9ecae1"), ("_r2", "reader 2", "#4292c6"), ("", "consensus", "#08306b"))
    rows = []
    for ax, comp in zip(axes, COMPONENTS):
        present = [(comp + suffix, label, color) for suffix, label, color in roles if comp + suffix in manifest.columns]
        width = 0.8 / max(len(present), 1)
        for j, (col, label, color) in enumerate(present):
            counts = manifest[col].value_counts().reindex([0, 1, 2], fill_value=0)
            ax.bar(np.arange(3) + (j - (len(present) - 1) / 2) * width, counts.to_numpy(), width=width,
                   color=color, label=label)
            rows += [{"variable": col, "score": s, "n": int(n)} for s, n in counts.items()]
        ax.set_xticks([0, 1, 2])
        ax.set_title(_COMPONENT_TITLES.get(comp, comp), fontsize=10)
        ax.set_xlabel("component score")
    tot = manifest["astlof_total"].value_counts().reindex(range(9), fill_value=0)
    cls = astlof_class(np.arange(9))
    axes[4].bar(tot.index, tot.to_numpy(), color=[CLASS_COLORS[int(c)] for c in cls])
    axes[4].set_xticks(range(9))
    axes[4].set_title("ASTLOF total", fontsize=10)
    axes[4].set_xlabel("total score (sum of the four)")
    rows += [{"variable": "astlof_total", "score": s, "n": int(n)} for s, n in tot.items()]
    for ax in axes[:5]:
        ax.set_ylabel("vertebrae")
    legend_ax = axes[5]
    legend_ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    spans = {int(c): [t for t in range(9) if cls[t] == c] for c in np.unique(cls)}
    class_handles = [Patch(color=CLASS_COLORS[c],
                           label=f"class {c} (total {t[0]}" + (f"-{t[-1]})" if len(t) > 1 else ")"))
                     for c, t in spans.items()]
    legend_ax.add_artist(legend_ax.legend(class_handles, [h.get_label() for h in class_handles], loc="lower left",
                                          frameon=False, fontsize=8, title="ASTLOF total panel:\ncolour = class",
                                          title_fontsize=8, alignment="left"))
    legend_ax.legend(handles, labels, loc="upper left", frameon=False, fontsize=8,
                     title="component panels", title_fontsize=8, alignment="left")
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


# Landis & Koch (1977) strength of agreement drawn behind a kappa: (low, high, name, shade)
LANDIS_KOCH = ((0.41, 0.60, "moderate", "0.93"), (0.61, 0.80, "substantial", "0.86"),
               (0.81, 1.00, "almost perfect", "0.79"))


def kappa_forest(agreement: pd.DataFrame):
    """Weighted kappa with its CI per component (forest plot) over the Landis-Koch bands.

    The bands (moderate 0.41-0.60, substantial 0.61-0.80, almost perfect 0.81-1.00) are light grey
    spans behind the points; their names sit above the axes, where they cannot cover a point or a CI.
    """
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(agreement) + 1.5))
    y = np.arange(len(agreement))
    for lo, hi, name, shade in LANDIS_KOCH:
        ax.axvspan(lo, hi, color=shade, lw=0, zorder=0, gid=f"landis-koch {name}")
        ax.text((lo + hi) / 2, 1.02, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8, color="0.25", gid="landis-koch label")
    ax.text(0.39, 1.02, "Landis-Koch:", transform=ax.get_xaxis_transform(), ha="right", va="bottom",
            fontsize=8, color="0.25", gid="landis-koch label")
    ax.errorbar(agreement["kappa"], y, xerr=[agreement["kappa"] - agreement["ci_low"],
                                             agreement["ci_high"] - agreement["kappa"]],
                fmt="o", color="k", capsize=3, zorder=3)
    ax.set_yticks(y, [str(i).replace("astlof_class", "ASTLOF class") for i in agreement.index])
    ax.invert_yaxis()
    lo = min(0.0, float(np.nanmin(agreement["ci_low"])) - 0.02) if len(agreement) else 0.0
    hi = max(1.0, float(np.nanmax(agreement["ci_high"])) + 0.02) if len(agreement) else 1.0
    ax.set_xlim(lo, max(hi, 1.03))  # a kappa of 1 is drawn whole, not cut at the frame
    ax.set_xlabel("Cohen's kappa, reader 1 vs reader 2 (linear weights; bars: 95% CI)")
    fig.tight_layout()
    return fig, agreement.reset_index()


STUDY_MARKERS = ("o", "s", "D", "^", "v")


def optimism_forest(table: pd.DataFrame):
    """Each shortcut's optimism (shortcut AUC minus honest AUC) with its CI, one row per pitfall, one marker
    and colour per study (:func:`ovfkit.audit.optimism_table` rows with a ``study`` column).

    The rows of a pitfall are offset vertically so that the studies' intervals do not overlap; zero (no
    optimism) is a vertical line.
    """
    pitfalls = list(dict.fromkeys(table["pitfall"]))
    studies = list(dict.fromkeys(table["study"]))
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(7.5, 0.17 * len(pitfalls) * max(1, len(studies)) + 1.6))
    step = 0.7 / max(1, len(studies))
    for j, study in enumerate(studies):
        rows = table[table["study"] == study]
        y = np.array([pitfalls.index(p) for p in rows["pitfall"]]) + (j - (len(studies) - 1) / 2) * step
        ax.errorbar(rows["optimism"], y, xerr=[rows["optimism"] - rows["ci_low"], rows["ci_high"] - rows["optimism"]],
                    fmt=STUDY_MARKERS[j % len(STUDY_MARKERS)], color=colors[j % len(colors)], capsize=2.5,
                    label=study, ms=5)
    ax.axvline(0, color="0.4", lw=1, ls="--", zorder=0)
    ax.set_yticks(range(len(pitfalls)), pitfalls)
    ax.invert_yaxis()
    ax.set_xlabel("optimism: shortcut AUC minus honest AUC (bars: 95% interval over the resplits)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07 - 0.35 / fig.get_figheight()),
              ncol=min(4, len(studies)), frameon=False)
    ax.grid(axis="x", color="0.9", zorder=0)
    fig.tight_layout()
    return fig, table


def transport_shift(families: pd.DataFrame):
    """Heatmap of the within-class center shift per variant (rows) and feature class (columns), one panel per
    held-out cohort (:func:`ovfkit.transport.sensitivity`'s ``families``; a cell is the median over the
    variant's image types of their median shift, in training standard deviations)."""
    import seaborn as sns

    families = families.assign(feature_class=families["feature_class"].replace({"shape2D": "shape"}))
    data = (families.groupby(["variant", "cohort", "feature_class"], sort=False)["shift"].median().reset_index())
    order = list(dict.fromkeys(families["variant"]))
    cohorts = [c for c in dict.fromkeys(data["cohort"])]
    classes = sorted(data["feature_class"].unique())
    vmax = max(1.0, float(np.nanquantile(data["shift"], 0.98)))
    fig, axes = plt.subplots(1, len(cohorts), figsize=(0.55 * len(classes) * len(cohorts) + 4.2, 0.32 * len(order) + 1.8),
                             sharey=True, squeeze=False)
    for ax, cohort in zip(axes[0], cohorts):
        grid = data[data["cohort"] == cohort].pivot(index="variant", columns="feature_class", values="shift")
        grid = grid.reindex(index=order, columns=classes)
        sns.heatmap(grid, ax=ax, cmap="rocket_r", vmin=0, vmax=vmax, annot=True, fmt=".1f", annot_kws={"size": 7},
                    cbar=ax is axes[0][-1], cbar_kws={"label": "median |within-class shift| (training SD)"})
        ax.set_title(cohort)
        ax.set_xlabel("feature class")
        ax.set_ylabel("variant" if ax is axes[0][0] else "")
    fig.tight_layout()
    return fig, data


def transport_auc(table: pd.DataFrame):
    """Held-out AUC per cohort of every variant, without (filled) and with ComBat (open markers), from
    :func:`ovfkit.transport.sensitivity`'s table; one row per variant, the pooled AUC with its 95% CI."""
    cohorts = [c[4:] for c in table.columns if c.startswith("AUC ") and not c.endswith(("ComBat", "low", "high"))]
    order = list(table["variant"])
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(order) + 1.8))
    step = 0.7 / max(1, len(cohorts))
    rows = []
    for j, c in enumerate(cohorts):
        y = np.arange(len(order)) + (j - (len(cohorts) - 1) / 2) * step
        plain, harm = table[f"AUC {c}"].to_numpy(float), table[f"AUC {c}, ComBat"].to_numpy(float)
        if c == "pooled" and "AUC pooled low" in table:  # the pooled AUC with its 95% CI (no harmonization)
            lo, hi = table["AUC pooled low"].to_numpy(float), table["AUC pooled high"].to_numpy(float)
            ax.errorbar(plain, y, xerr=[plain - lo, hi - plain], fmt="o", color=colors[j % 10], ms=5, capsize=2,
                        label="pooled (bars: 95% CI)")
        else:
            ax.plot(plain, y, "o", color=colors[j % 10], ms=5, label=f"{c}")
        ax.plot(harm, y, "o", mfc="none", color=colors[j % 10], ms=5)
        rows += [{"variant": v, "cohort": c, "AUC": a, "AUC, ComBat": b} for v, a, b in zip(order, plain, harm)]
    ax.plot([], [], "o", mfc="none", color="0.3", label="with ComBat (open)")
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel("held-out AUC of the fixed model (filled: no harmonization; open: ComBat)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07 - 0.35 / fig.get_figheight()),
              ncol=min(5, len(cohorts) + 1), frameon=False)
    ax.grid(axis="x", color="0.9", zorder=0)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


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


def icc_histogram(icc: pd.Series, threshold: float = 0.8, what: str = "between the two readers' masks"):
    """Distribution of per-feature ICC with the retention threshold."""
    fig, ax = plt.subplots(figsize=(6.5, 3.3))
    vals = icc.dropna().clip(lower=-0.5)
    n, kept = int(icc.notna().sum()), int((icc >= threshold).sum())
    ax.hist([vals[vals < threshold], vals[vals >= threshold]], bins=np.linspace(-0.5, 1, 61), stacked=True,
            color=["0.65", "#4C72B0"], label=[f"dropped (ICC < {threshold:g}): {n - kept}",
                                              f"kept (ICC \u2265 {threshold:g}): {kept}"])
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    # the legend sits above the axes: it cannot cover a bar, however tall the bars next to the threshold
    ax.legend(ncol=3, fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              title=f"{n} features", title_fontsize=8, alignment="left")
    ax.set_xlabel(f"{icc.name or 'ICC'} {what} (values below -0.5 shown at -0.5)")
    ax.set_ylabel("number of radiomics features")
    fig.tight_layout()
    return fig, icc.rename("icc").rename_axis("feature").reset_index()


def pca_by_center(before: pd.DataFrame, after: pd.DataFrame, batch: pd.Series, train_index):
    """First two principal components before and after harmonization, coloured by center.

    The scaler and PCA are fitted on the training rows of each table and applied to all rows.
    """
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharex=False, sharey=False)
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
        ax.set_xlabel(f"PC1 ({var[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({var[1]:.0%} of variance)")
        rows.append(pd.DataFrame({"vertebra_id": table.index, "stage": label, "center": batch.loc[table.index].to_numpy(),
                                  "pc1": pc[:, 0], "pc2": pc[:, 1]}))
    handles, labels = axes[0].get_legend_handles_labels()  # one legend above the panels, off the points
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False,
               markerscale=3, fontsize=9)
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
    # Linkages computed here with SciPy (as seaborn would without fastcluster): seaborn then neither
    # looks for fastcluster nor warns about it. vmin/vmax (the clip) centre the map at 0 without
    # seaborn's `center`, which goes through a deprecated colormap call.
    from scipy.cluster import hierarchy

    a = zz.fillna(0).to_numpy()
    row_linkage = hierarchy.linkage(a, method="average", metric="correlation") if len(a) > 1 else None
    col_linkage = hierarchy.linkage(a.T, method="average", metric="correlation") if a.shape[1] > 1 else None
    grid = sns.clustermap(zz, row_colors=row_colors, cmap="RdBu_r", vmin=-3, vmax=3,
                          row_linkage=row_linkage, col_linkage=col_linkage,
                          row_cluster=row_linkage is not None, col_cluster=col_linkage is not None,
                          figsize=(8, 7), xticklabels=False, yticklabels=False,
                          cbar_pos=(0.03, 0.8, 0.025, 0.14))
    grid.ax_cbar.set_title("z-score\n(clipped\nat \u00b13)", fontsize=8, loc="left")
    grid.ax_heatmap.set_xlabel(f"{len(top)} features with the largest between-class F")
    grid.ax_heatmap.set_ylabel("vertebrae (rows)")
    from matplotlib.patches import Patch

    classes = sorted(int(c) for c in labels.loc[zz.index].dropna().unique())
    grid.figure.legend(handles=[Patch(color=CLASS_COLORS[c], label=f"class {c}") for c in classes],
                       title="row colour:\nASTLOF class", loc="upper left", bbox_to_anchor=(0.1, 0.99),
                       frameon=False, fontsize=8, title_fontsize=8, alignment="left")
    data = zz.assign(astlof_class=labels.loc[zz.index]).reset_index()
    return grid.figure, data


TRAIN_COLOR, VAL_COLOR = "#4C72B0", "#DD8452"  # training and validation, the same in every panel


def training_curves(histories: dict):
    """Loss and validation AUC per epoch: one column per backbone, loss (top) and AUC (bottom).

    Colour means one thing in every panel: blue training, orange validation (one shared legend above).
    A history with a ``network`` column (the cross-fitted networks) is drawn as the mean over its
    networks with their range shaded. Returns (fig, data).
    """
    names = list(histories)
    ncol = max(len(names), 1)
    fig, axes = plt.subplots(2, ncol, figsize=(min(8.0, 2.0 + 3.0 * ncol), 5.4), squeeze=False,
                             sharex="col", sharey="row")
    rows = []
    spread = False
    for j, (name, h) in enumerate(histories.items()):
        h = h.assign(network=h["network"]) if "network" in h else h.assign(network="all")
        g = h.groupby("epoch")
        n = h["network"].nunique()
        spread |= n > 1
        for ax, col, color, label in ((axes[0, j], "train_loss", TRAIN_COLOR, "training"),
                                      (axes[0, j], "val_loss", VAL_COLOR, "validation"),
                                      (axes[1, j], "val_auc", VAL_COLOR, "validation")):
            mean = g[col].mean()
            ax.plot(mean.index, mean.to_numpy(), marker="o", ms=4, color=color, label=label)
            if n > 1:
                ax.fill_between(mean.index, g[col].min().to_numpy(), g[col].max().to_numpy(), color=color,
                                alpha=0.15, lw=0)
        axes[0, j].set_title(name + (f" ({n} networks)" if n > 1 else ""), fontsize=10)
        axes[1, j].axhline(0.5, color="0.5", lw=1, ls=":", label="chance (AUC 0.5)")
        if h["val_auc"].isna().all():  # tiny cohorts: a validation part without every class has no AUC
            axes[1, j].text(0.5, 0.25, "no validation AUC:\na validation part lacks a class", ha="center",
                            va="center", transform=axes[1, j].transAxes, fontsize=8, color="0.35")
        axes[1, j].set_xlabel("epoch")
        axes[1, j].xaxis.get_major_locator().set_params(integer=True)
        rows.append(h.assign(backbone=name))
    axes[0, 0].set_ylabel("cross-entropy loss\n(class-weighted)")
    axes[1, 0].set_ylabel("validation AUC\n(macro one-vs-rest if > 2 classes)")
    axes[1, 0].set_ylim(0.0, 1.0)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=TRAIN_COLOR, marker="o", ms=4, label="training"),
               Line2D([], [], color=VAL_COLOR, marker="o", ms=4, label="validation"),
               Line2D([], [], color="0.5", ls=":", label="chance (AUC 0.5)")]
    if spread:
        handles.append(Patch(color="0.5", alpha=0.3, label="range over the cross-fitted networks (line: mean)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2 if spread else 3,
               frameon=False, fontsize=8)
    fig.tight_layout()
    return fig, pd.concat(rows, ignore_index=True)


def embedding_scatter(embeddings: dict, manifest: pd.DataFrame):
    """2-D embeddings (one column per backbone) coloured by class (top) and by center (bottom).

    Each row has one legend, right of its last panel, off the points.
    """
    names = list(embeddings)
    fig, axes = plt.subplots(2, len(names), figsize=(min(8.0, 1.6 + 3.2 * len(names)), 6.4), squeeze=False)
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
            axes[i, j].set_xlabel("dimension 1 (no unit)", fontsize=8)
            axes[i, j].set_ylabel("dimension 2 (no unit)", fontsize=8)
        rows.append(emb.set_axis(["dim1", "dim2"], axis=1).assign(backbone=name, astlof_class=cls, center=cen))
    for i, title in ((0, "ASTLOF class"), (1, "center")):
        axes[i, -1].legend(fontsize=8, frameon=False, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5),
                           title=title, title_fontsize=8)
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


def cam_matrix(images: dict, cams: dict, row_labels: dict, col_titles: dict):
    """Grad-CAMs of several networks (rows) on the same vertebrae (columns); returns (fig, data).

    Parameters
    ----------
    images : dict
        Vertebra id -> prepared input (size, size) in [0, 1].
    cams : dict
        Network -> {vertebra id -> (P(positive), map (size, size) in [0, 1])}.
    row_labels : dict
        Network -> its name on the figure.
    col_titles : dict
        Vertebra id -> column title (truth, level).
    """
    ids, nets = list(images), list(cams)
    fig, axes = plt.subplots(len(nets), len(ids), figsize=(1.55 * len(ids) + 1.2, 1.55 * len(nets)),
                             squeeze=False)
    rows = []
    for i, net in enumerate(nets):
        for j, vid in enumerate(ids):
            ax = axes[i][j]
            ax.imshow(images[vid], cmap="gray", vmin=0, vmax=1)
            prob, cam = cams[net].get(vid, (np.nan, None))
            empty = cam is not None and not np.any(cam > 0)
            if cam is not None and not empty:
                ax.imshow(cam, cmap="jet", alpha=0.35, vmin=0, vmax=1)
                peak = np.unravel_index(np.argmax(cam), cam.shape)
                rows.append({"network": net, "vertebra_id": vid, "p": prob, "peak_row": int(peak[0]),
                             "peak_col": int(peak[1]), "mean_activation": float(cam.mean())})
            ax.set_xticks([])
            ax.set_yticks([])
            shown = "< 0.001" if prob < 0.001 else "> 0.999" if prob > 0.999 else f"= {prob:.3f}"
            ax.set_xlabel(f"P {shown}" + (", empty map" if empty else ""), fontsize=7, labelpad=1)
            if i == 0:
                ax.set_title(col_titles[vid], fontsize=7)
            if j == 0:
                ax.set_ylabel(row_labels[net], fontsize=8)
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
    lines = ([(record["alpha_cv"], "--", "lambda (CV)"), (record["alpha"], ":", "lambda used")]
             if record["alpha"] != record["alpha_cv"] else [(record["alpha"], "--", "lambda (CV = used)")])
    for a, style, label in lines:
        ax.axvline(np.log10(a), color="0.3", ls=style, label=label)
    ax.set_xlabel("log10(lambda)")
    ax.set_ylabel("cross-validated log-loss" if record.get("method") == "logistic"
                  else "cross-validated mean squared error")
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


def radscore_coefficients(record: dict):
    """The papers' DTL_Radscore figure: the LASSO coefficient of every feature it keeps, largest first.

    ``record`` is one entry of :attr:`ovfkit.study.FusionResult.selections`. Coefficients are per
    z-scored feature (training mean and SD); a feature the post-LASSO correlation filter removes is
    drawn hatched. Returns (fig, data: ``feature``, ``family``, ``coefficient`` (one column per class
    for a multinomial LASSO), ``kept``).
    """
    from ovfkit.fusion import family_of

    coef = np.atleast_2d(record["coef"])
    names = list(record["prepared"])
    support = (np.abs(coef) > 0).any(axis=0)
    cols = ["coefficient"] if len(coef) == 1 else [f"coefficient_class_{k}" for k in range(len(coef))]
    data = pd.DataFrame(coef[:, support].T, columns=cols, index=[n for n, s in zip(names, support) if s])
    data = data.assign(family=[family_of(f) for f in data.index], kept=data.index.isin(record["selected"]))
    data = data.reindex(data[cols].abs().max(axis=1).sort_values(ascending=False).index)
    data.index.name = "feature"
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.24 * max(len(data), 1)))
    y = np.arange(len(data))
    height = 0.8 / len(cols)
    for j, c in enumerate(cols):
        colors = ["#C44E52" if v > 0 else "#4C72B0" for v in data[c]]
        ax.barh(y + (j - (len(cols) - 1) / 2) * height, data[c], height=height, color=colors,
                hatch=None, edgecolor="none", label=None if len(cols) == 1 else f"class {j}")
        for yy, (v, kept) in enumerate(zip(data[c], data["kept"])):
            if not kept:
                ax.barh(yy + (j - (len(cols) - 1) / 2) * height, v, height=height, fill=False, hatch="///",
                        edgecolor="0.3", lw=0)
    ax.set_yticks(y, [f.replace("original_", "").replace("_", " ") for f in data.index], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("LASSO coefficient (per SD of the feature; red raises, blue lowers the score)")
    if not data["kept"].all():
        ax.set_title("hatched: removed by the post-LASSO correlation filter", fontsize=8)
    fig.tight_layout()
    return fig, data.reset_index()


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


def roc_curves(curves: dict):
    """ROC curves of several models, one panel per cohort; returns (fig, data).

    Parameters
    ----------
    curves : dict
        Cohort -> {model name -> (y, score)}: the binary outcome and each model's P(positive), aligned.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, axes = plt.subplots(1, len(curves), figsize=(3.9 * len(curves), 3.7), squeeze=False)
    rows = []
    for ax, (cohort, models_) in zip(axes[0], curves.items()):
        for name, (y, score) in models_.items():
            fpr, tpr, _ = roc_curve(y, score)
            auc = roc_auc_score(y, score)
            ax.plot(fpr, tpr, lw=1.4, label=f"{name} (AUC {auc:.3f})")
            rows.append(pd.DataFrame({"cohort": cohort, "model": name, "fpr": fpr, "tpr": tpr, "auc": auc}))
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8)
        ax.set_title(cohort, fontsize=10)
        ax.set_xlabel("1 - specificity")
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    axes[0][0].set_ylabel("sensitivity")
    fig.tight_layout()
    return fig, pd.concat(rows, ignore_index=True)


def calibration_with_ci(table: pd.DataFrame, summary: dict, title: str = ""):
    """A reliability curve with 95% bootstrap intervals per bin, and the calibration slope and intercept.

    Parameters
    ----------
    table : DataFrame
        :func:`ovfkit.calibration.calibration_curve_ci` (``mean_predicted``, ``observed``, ``low``, ``high``, ``n``).
    summary : dict
        :func:`ovfkit.calibration.calibration_slope_intercept` of the same rows, and ``brier``.
    """
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8, label="perfect calibration")
    err = np.vstack([table["observed"] - table["low"], table["high"] - table["observed"]]).clip(min=0)
    ax.errorbar(table["mean_predicted"], table["observed"], yerr=err, fmt="o-", ms=4, color="#4C72B0",
                ecolor="0.6", capsize=3, label="observed (95% CI)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.text(0.98, 0.04, f"slope {summary['slope']:.2f} ({summary['slope_low']:.2f} to {summary['slope_high']:.2f})\n"
            f"intercept {summary['intercept']:.2f} ({summary['intercept_low']:.2f} to "
            f"{summary['intercept_high']:.2f})\nBrier {summary['brier']:.3f}",
            ha="right", va="bottom", fontsize=8, transform=ax.transAxes)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig, table


def decision_curves_with_bands(table: pd.DataFrame, title: str = ""):
    """Net benefit against threshold probability with 95% bootstrap bands, treat-all and treat-none.

    ``table``: :func:`ovfkit.calibration.net_benefit_bands` (``model``, ``threshold``, ``net_benefit``,
    ``low``, ``high``). Returns (fig, data).
    """
    fig, ax = plt.subplots(figsize=(7.4, 4.2))
    for name, g in table.groupby("model", sort=False):
        style = {"all": dict(color="0.5", ls="--"), "none": dict(color="k", lw=0.8)}.get(name, {})
        line, = ax.plot(g["threshold"], g["net_benefit"], label={"all": "treat all", "none": "treat none"}.get(name, name),
                        **style)
        if name not in ("all", "none"):
            ax.fill_between(g["threshold"], g["low"], g["high"], color=line.get_color(), alpha=0.15, lw=0)
    shown = table[~table["model"].isin(["all", "none"])]
    ax.set_ylim(max(-0.25, min(-0.05, float(shown["low"].min()))), float(shown["high"].max()) + 0.03)
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig, table


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


def _shap_output(table: pd.DataFrame, output: str | None) -> str:
    """The explained output (``"probability"`` or ``"log-odds"``) of an importance table, or an error."""
    output = output or table.attrs.get("output")
    if not output:
        raise ValueError("the SHAP output unit is unknown: pass output= (Explanation.output) or a table from "
                         "ovfkit.explain.importance / family_importance, which carry it in .attrs['output']")
    return output


def shap_importance(importance: pd.DataFrame, families: pd.DataFrame, top: int = 15, *, output: str | None = None):
    """Mean |SHAP| per feature (the ``top`` ones, left) and per family (right), stacked over classes.

    Both axes name the explained output (its unit); the class legend sits above the panels.

    Parameters
    ----------
    importance : DataFrame
        :func:`ovfkit.explain.importance`: features (rows, most important first) x ``class k`` columns.
    families : DataFrame
        :func:`ovfkit.explain.family_importance`: families x ``class k`` columns.
    output : str, optional
        The explained output (:attr:`ovfkit.explain.Explanation.output`) that the axes name; default:
        ``importance.attrs["output"]``, which :func:`ovfkit.explain.importance` sets.

    Returns
    -------
    fig : matplotlib Figure
    data : DataFrame
        ``importance`` with the feature names as a ``feature`` column.
    """
    from ovfkit.explain import output_unit

    unit = output_unit(_shap_output(importance, output))
    head = importance.head(top)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.25 * max(len(head), len(families)) + 1.6),
                             gridspec_kw={"width_ratios": [3, 2]})
    for ax, table, xlabel, ylabel in (
            (axes[0], head, f"mean |SHAP value|\n({unit}), stacked over classes", f"top {len(head)} features"),
            (axes[1], families, f"mean |SHAP value| ({unit}),\nsummed over the family's features",
             "feature family")):
        classes = [c for c in table.columns if c.startswith("class")]
        table[classes].iloc[::-1].plot.barh(stacked=True, ax=ax, legend=False,
                                            color=[CLASS_COLORS[int(c.split()[-1])] for c in classes])
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="y", labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"explanation of {lab}" for lab in labels], loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=len(labels), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig, importance.reset_index(names="feature")


def shap_beeswarm(expl, k: int, max_display: int = 10):
    """shap's beeswarm of class ``k`` (one dot per case); returns (fig, data: the SHAP values, cases x features).

    The x-axis names the explained output (:meth:`ovfkit.explain.Explanation.axis_label`).
    """
    import shap

    fig = plt.figure()
    ax = fig.add_subplot()  # shap draws into the current axes and sizes the figure itself
    shap.plots.beeswarm(expl.for_class(k), max_display=max_display, show=False)
    ax.set_xlabel(expl.axis_label(k), fontsize=11)
    ax.tick_params(axis="y", labelsize=10)
    fig.suptitle(f"class {k}", fontsize=10)
    return fig, pd.DataFrame(expl.values[:, :, expl.classes.index(k)], columns=expl.features)


def shap_waterfall(expl, i: int, k: int, title: str, max_display: int = 8):
    """shap's waterfall of case ``i``'s explanation of class ``k``; returns (fig, data: feature, value, shap).

    The axis is the model's output for class ``k`` in the explained unit, from E[f(X)] (the
    background's mean) to f(x) (this case); each bar is one feature's SHAP value.
    """
    import shap

    plt.figure()
    shap.plots.waterfall(expl.for_class(k)[i], max_display=max_display, show=False)
    fig = plt.gcf()
    from ovfkit.explain import output_unit

    fig.axes[0].set_xlabel(f"model output: {output_unit(expl.output, k, change=False)}\n"
                           f"(bars: SHAP values, {output_unit(expl.output, k)})", fontsize=10, labelpad=16)
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


def nomogram(nomo, labels: dict | None = None, *, width: float = 10.0, title: str | None = None,
             outcome: str | None = None):
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
    outcome : str, optional
        The probability axis' name; default "P(class k)" (e.g. "P(acute)" for the acute-vs-chronic study).

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
    outcome = outcome or f"P(class {k})"
    order = ["Points", *(names[c] for c in PREDICTORS), "Total points", "Linear predictor (logit)", outcome]
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
                         "p": rows[outcome]}, nomo)

    lo_q, hi_q = (_ordinal(100 * q) for q in DLR_AXIS_QUANTILES)
    ax.set_title(title or f"Nomogram: ASTLOF class {k} vs rest", fontsize=10, loc="left")
    score = names["dlr_score"].split(" (")[0].split(",")[0]
    fig.text(left, 0.01, f"{score} axis: {lo_q}-{hi_q} percentile of the training scores; age, sex: their "
             f"training range.\nPoints = {nomo.points_per_logit():.3g} x beta x (value - value at 0 points); a "
             "value beyond an axis end scores below 0 or past the end, at the same points per unit.",
             fontsize=7, color="0.3", gid="note")
    return fig, pd.DataFrame(data)
