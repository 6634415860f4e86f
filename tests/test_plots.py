"""Readability of the book's figures: legends and notes off the data, one meaning per colour, scale bars in
millimetres, and no warnings from the clustered heatmap."""

import itertools
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from ovfkit import plots

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _agreement():
    idx = pd.Index(["morphology", "mri", "bmd", "clinical", "astlof_class"], name="component")
    kappa = np.array([0.62, 0.81, 1.0, 0.45, 0.79])
    return pd.DataFrame({"n": 69, "kappa": kappa, "ci_low": kappa - 0.2, "ci_high": np.minimum(kappa + 0.2, 1.01)},
                        index=idx)


def test_kappa_forest_shades_the_landis_koch_bands_and_labels_them_above_the_data():
    fig, data = plots.kappa_forest(_agreement())
    ax = fig.axes[0]
    spans = {p.get_gid(): p for p in ax.patches if str(p.get_gid()).startswith("landis-koch")}
    assert set(spans) == {"landis-koch moderate", "landis-koch substantial", "landis-koch almost perfect"}
    for lo, hi, name, _ in plots.LANDIS_KOCH:
        span = spans[f"landis-koch {name}"]
        assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx((lo, hi))
    r = _renderer(fig)
    top = ax.get_window_extent(r).y1
    labels = [t for t in ax.texts if t.get_gid() == "landis-koch label"]
    assert {t.get_text() for t in labels} >= {"moderate", "substantial", "almost perfect"}
    boxes = [t.get_window_extent(r) for t in labels]
    assert all(b.y0 >= top for b in boxes), "a band label sits inside the axes, over the data"
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    x0, x1 = ax.get_xlim()
    assert x0 <= data["ci_low"].min() and x1 > data["ci_high"].max()  # no CI cut at the frame
    assert ax.get_xlabel()
    plt.close(fig)


def test_icc_histogram_states_the_threshold_outside_the_bars():
    rng = np.random.default_rng(0)
    icc = pd.Series(np.r_[rng.uniform(-0.8, 0.8, 50), rng.uniform(0.8, 1.0, 150)], name="ICC(2,1)")
    fig, data = plots.icc_histogram(icc, threshold=0.8)
    ax = fig.axes[0]
    assert not ax.texts, "no free text inside the axes: it can land on a bar"
    r = _renderer(fig)
    legend = ax.get_legend()
    assert legend is not None and legend.get_window_extent(r).y0 >= ax.get_window_extent(r).y1
    text = " ".join(t.get_text() for t in legend.get_texts())
    assert f"kept (ICC \u2265 0.8): {int((icc >= 0.8).sum())}" in text and "threshold 0.8" in text
    assert sum(p.get_height() for p in ax.patches) == len(icc)
    assert "features" in ax.get_ylabel() and "ICC(2,1)" in ax.get_xlabel()
    assert list(data.columns) == ["feature", "icc"]
    plt.close(fig)


def _components_manifest(n=80, seed=0):
    from ovfkit.astlof import COMPONENTS

    rng = np.random.default_rng(seed)
    m = pd.DataFrame({f"{c}{s}": rng.integers(0, 3, n) for c in COMPONENTS for s in ("", "_r1", "_r2")})
    m["astlof_total"] = m[list(COMPONENTS)].sum(axis=1)
    return m


def test_component_distributions_has_one_legend_outside_the_panels_naming_the_readers():
    fig, data = plots.component_distributions(_components_manifest())
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 5 and fig.get_figwidth() <= 8.5
    assert all(ax.get_legend() is None for ax in panels), "a legend inside a panel covers bars"
    legends = [ax.get_legend() for ax in fig.axes if not ax.axison and ax.get_legend() is not None]
    legends += [a for ax in fig.axes if not ax.axison for a in ax.artists if isinstance(a, matplotlib.legend.Legend)]
    texts = {t.get_text() for lg in legends for t in lg.get_texts()}
    assert {"reader 1", "reader 2", "consensus"} <= texts
    assert {"class 0 (total 0-3)", "class 1 (total 4)", "class 2 (total 5-8)"} <= texts
    r = _renderer(fig)
    for lg, ax in itertools.product(legends, panels):
        assert not lg.get_window_extent(r).overlaps(ax.get_window_extent(r))
    for a, b in itertools.combinations(legends, 2):
        assert not a.get_window_extent(r).overlaps(b.get_window_extent(r))
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel()
    assert set(data["variable"]) >= {"morphology_r1", "morphology_r2", "morphology", "astlof_total"}
    plt.close(fig)


def _histories(epochs=4):
    rng = np.random.default_rng(1)
    out = {}
    for name in ("proxy-natural", "proxy-medical"):
        rows = [{"epoch": e, "network": f"fold {k}", "train_loss": 1.2 - 0.1 * e + rng.normal(0, 0.02),
                 "val_loss": 1.1 + rng.normal(0, 0.02), "val_auc": 0.6 + rng.normal(0, 0.05)}
                for k in (1, 2) for e in range(1, epochs + 1)]
        out[name] = pd.DataFrame(rows)
    return out


def test_training_curves_give_each_colour_one_meaning_in_every_panel():
    fig, data = plots.training_curves(_histories())
    meaning = {}
    for ax in fig.axes:
        assert ax.get_legend() is None, "one shared legend for the figure, none on the panels"
        for line in ax.get_lines():
            if line.get_label().startswith("_") or line.get_label().startswith("chance"):
                continue
            meaning.setdefault(matplotlib.colors.to_hex(line.get_color()), set()).add(line.get_label())
    assert meaning == {plots.TRAIN_COLOR.lower(): {"training"}, plots.VAL_COLOR.lower(): {"validation"}}
    assert len(fig.legends) == 1
    assert {t.get_text() for t in fig.legends[0].get_texts()} >= {"training", "validation"}
    assert all(ax.get_xlabel() for ax in fig.axes[-2:])
    assert set(data["backbone"]) == {"proxy-natural", "proxy-medical"}
    plt.close(fig)


def test_class_clustermap_has_a_class_legend_and_no_warnings():
    rng = np.random.default_rng(0)
    n, p = 200, 70  # >= 10,000 cells: seaborn warns about fastcluster unless given the linkages
    labels = pd.Series(rng.integers(0, 3, n), index=[f"v{i}" for i in range(n)])
    X = pd.DataFrame(rng.normal(size=(n, p)) + labels.to_numpy()[:, None] * 0.3, index=labels.index,
                     columns=[f"f{j}" for j in range(p)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig, data = plots.class_clustermap(X, labels)
    legend = fig.legends[0]
    names = [t.get_text() for t in legend.get_texts()]
    assert names == ["class 0", "class 1", "class 2"] and "ASTLOF class" in legend.get_title().get_text()
    colors = [matplotlib.colors.to_hex(h.get_facecolor()) for h in legend.legend_handles]
    assert colors == [plots.CLASS_COLORS[k].lower() for k in (0, 1, 2)]
    assert len(data) == n
    plt.close(fig)


def _write(path, arr, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return str(path)


def test_gallery_scale_bar_is_10_mm_at_the_spacing_of_the_displayed_columns(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    # X-ray: 2-D, 0.2 mm columns; CT: 3-D with x 0.9, y 0.5, z 1.25 mm, shown sagittally (columns: y)
    for modality, shape, spacing, column_mm in (("xray", (220, 260), (0.2, 0.3), 0.2),
                                               ("ct", (40, 90, 30), (0.9, 0.5, 1.25), 0.5)):
        for cls in (0, 1, 2):
            arr = rng.normal(300, 50, shape).astype(np.float32)
            msk = np.zeros(shape, np.uint8)
            msk[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = 1
            vid = f"{modality}{cls}"
            rows.append({"vertebra_id": vid, "center": "I", "astlof_class": cls, "modality": modality,
                         "image": _write(tmp_path / f"{vid}.nii.gz", arr, spacing),
                         "mask": _write(tmp_path / f"{vid}_mask.nii.gz", msk, spacing),
                         "morphology": 1, "mri": 1, "bmd": 1, "clinical": 1, "column_mm": column_mm})
    manifest = pd.DataFrame(rows)
    for modality, m in manifest.groupby("modality"):
        fig, data = plots.gallery(m)
        column_mm = m["column_mm"].iloc[0]
        bars = [a for ax in fig.axes for a in ax.artists if a.get_gid() == plots.SCALE_BAR_GID]
        assert len(bars) == 3, modality
        for bar in bars:
            rect = bar.size_bar.get_children()[0]
            assert rect.get_width() == pytest.approx(10 / column_mm), modality
            assert bar.txt_label.get_text() == "10 mm"
        np.testing.assert_allclose(data["column_spacing_mm"], column_mm, rtol=1e-6)  # NIfTI stores float32
        assert (data["scale_bar_mm"] == 10).all()
        plt.close(fig)


def test_pca_and_embedding_scatters_keep_their_legends_off_the_points():
    rng = np.random.default_rng(0)
    ids = [f"v{i}" for i in range(60)]
    manifest = pd.DataFrame({"astlof_class": rng.integers(0, 3, 60), "center": rng.choice(["I", "II", "III"], 60)},
                            index=ids)
    X = pd.DataFrame(rng.normal(size=(60, 6)), index=ids)
    fig, _ = plots.pca_by_center(X, X * 0.5, manifest["center"], ids[:40])
    emb = {n: pd.DataFrame(rng.normal(size=(60, 2)), index=ids) for n in ("netA", "netB")}
    fig2, _ = plots.embedding_scatter(emb, manifest)
    for f in (fig, fig2):
        r = _renderer(f)
        legends = list(f.legends) + [ax.get_legend() for ax in f.axes if ax.get_legend() is not None]
        assert legends and f.get_figwidth() <= 8.5
        for lg, ax in itertools.product(legends, f.axes):
            assert not lg.get_window_extent(r).overlaps(ax.get_window_extent(r))
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in f.axes)
        plt.close(f)


def test_cam_matrix_marks_an_empty_map_and_bounds_extreme_probabilities():
    img = np.full((8, 8), 0.5)
    cam = np.zeros((8, 8))
    cam[2, 3] = 1.0
    fig, data = plots.cam_matrix({"v1": img, "v2": img},
                                 {"net": {"v1": (0.9999, cam), "v2": (0.2, np.zeros((8, 8)))}},
                                 {"net": "Net"}, {"v1": "fresh", "v2": "old"})
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert labels == ["P > 0.999", "P = 0.200, empty map"]
    assert data.set_index("vertebra_id").loc["v1", ["peak_row", "peak_col"]].tolist() == [2, 3]
    plt.close(fig)


def test_optimism_forest_draws_each_study_on_each_pitfall_row_without_overlap():
    pitfalls, studies = ["vertebra split", "training AUC"], ["A", "B", "C"]
    table = pd.DataFrame([{"pitfall": p, "study": s, "optimism": 0.1 * i, "ci_low": 0.1 * i - 0.05,
                           "ci_high": 0.1 * i + 0.05} for i, (p, s) in enumerate(itertools.product(pitfalls, studies))])
    fig, data = plots.optimism_forest(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == pitfalls
    ys = np.concatenate([c.lines[0].get_ydata() for c in ax.containers])  # one errorbar per study
    assert len(ys) == len(table) and len(set(np.round(ys, 6))) == len(table)  # every point on a row of its own
    assert all(abs(y - round(y)) < 0.5 for y in ys)  # ... within its pitfall's band
    assert [t.get_text() for t in ax.get_legend().get_texts()] == studies
    assert data is table
