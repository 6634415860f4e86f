import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ovfkit import astlof, synth
from ovfkit.manifest import load_manifest

from .conftest import FIXTURES

DATA_MANIFESTS = Path(__file__).resolve().parents[1] / "data_manifests"


def _digests(folder: Path) -> dict:
    from ovfkit.provenance import sha256_file

    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("modality, design", [("xray", None), ("ct", None), ("xray", "guo2026")])
def test_same_seed_gives_byte_identical_files(tiny_cohorts, tmp_path, modality, design):
    first = tiny_cohorts[modality] if design is None else synth.synth(
        modality, tmp_path / "first", seed=7, n_patients=10, n_reader2=4, n_jobs=2, progress=False, design=design)
    again = synth.synth(modality, tmp_path / modality, seed=7, n_patients=10, n_reader2=4, n_jobs=1,
                        progress=False, design=design)
    assert _digests(again.parent) == _digests(first.parent)


def test_another_seed_gives_another_cohort():
    a = synth.cohort_table("xray", seed=1, n_patients=50)
    b = synth.cohort_table("xray", seed=2, n_patients=50)
    assert not a["astlof_total"].equals(b["astlof_total"]) or not a["age"].equals(b["age"])


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_default_cohort_follows_the_paper_design(modality):
    design = synth.DESIGNS[modality]
    t = synth.cohort_table(modality, seed=42)
    assert t["patient_id"].nunique() == design.n_patients
    counts = t["cohort"].value_counts()
    for cohort in ("external", "prospective"):
        assert counts[cohort] == pytest.approx(design.vertebrae[cohort], rel=0.1)
    center_i = counts["train"] + counts["internal"]
    assert center_i == pytest.approx(design.vertebrae["train"] + design.vertebrae["internal"], rel=0.05)
    # Train/internal split 80/20 by patient inside center I.
    pats = t.drop_duplicates("patient_id")
    share = (pats["cohort"] == "train").sum() / pats["cohort"].isin(["train", "internal"]).sum()
    assert share == pytest.approx(0.8, abs=0.01)
    assert (t.groupby("patient_id")["cohort"].nunique() == 1).all()
    assert (t.groupby("patient_id").size() > 1).any(), "some patients must have several vertebrae"
    assert {c: synth.COHORT_CENTER[c] for c in t["cohort"].unique()} == dict(
        t.groupby("cohort")["center"].first())


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_class_mix_is_near_the_papers(modality):
    t = synth.cohort_table(modality, seed=42)
    mix = t["astlof_class"].value_counts(normalize=True).sort_index().to_numpy()
    assert np.allclose(mix, [0.45, 0.43, 0.12], atol=0.08), mix


def test_labels_are_consistent_and_readers_disagree_realistically():
    t = synth.cohort_table("ct", seed=42)
    assert (t["astlof_total"] == t[list(astlof.COMPONENTS)].sum(axis=1)).all()
    assert (t["astlof_class"] == astlof.astlof_class(t["astlof_total"])).all()
    agree = astlof.agreement_table(t)
    assert agree["kappa"].between(0.6, 0.97).all(), agree["kappa"]
    # The consensus is not always the truth: both readers can agree on a wrong score.
    assert (t["clinical"] != t["true_clinical"]).any()
    assert (t.loc[t["acuity"] == "acute", "mri_finding"] == "edema").all()


@pytest.mark.parametrize("modality, dim", [("xray", 2), ("ct", 3)])
def test_images_have_the_center_geometry_and_nonempty_masks(tiny_cohorts, modality, dim):
    m = load_manifest(tiny_cohorts[modality])
    centers = synth.XRAY_CENTERS if modality == "xray" else synth.CT_CENTERS
    for _, row in m.iterrows():
        img = sitk.ReadImage(row["image"])
        assert img.GetDimension() == dim
        c = centers[row["center"]]
        assert img.GetSpacing()[0] == pytest.approx(c.spacing)
        if dim == 3:
            assert img.GetSpacing()[2] == pytest.approx(c.slice_thickness)
        assert np.allclose(img.GetDirection(), np.eye(dim).ravel())
        assert sitk.GetArrayFromImage(sitk.ReadImage(row["mask"])).sum() > 50


def test_ct_intensities_are_plausible_hounsfield_units(tiny_cohorts):
    m = load_manifest(tiny_cohorts["ct"])
    row = m.iloc[0]
    img = sitk.GetArrayFromImage(sitk.ReadImage(row["image"])).astype(float)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(row["mask"])) > 0
    from scipy import ndimage

    core = ndimage.binary_erosion(mask, iterations=2)
    assert 20 < np.median(img[core]) < 250  # osteoporotic trabecular bone
    assert np.percentile(img[mask & ~core], 99) > 300  # cortical shell
    assert -200 < np.median(img[~mask]) < 100  # soft tissue, fat, disc


def test_reader2_masks_overlap_but_differ(tiny_cohorts):
    m = load_manifest(tiny_cohorts["xray"])
    rows = m[m["mask_reader2"] != ""]
    assert len(rows) == 4
    for _, row in rows.iterrows():
        a = sitk.GetArrayFromImage(sitk.ReadImage(row["mask"])) > 0
        b = sitk.GetArrayFromImage(sitk.ReadImage(row["mask_reader2"])) > 0
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert 0.85 < dice < 1.0


def test_settings_file_records_what_made_the_cohort(tiny_cohorts):
    folder = tiny_cohorts["xray"].parent
    settings = json.loads((folder / "synth_settings.json").read_text(encoding="utf-8"))
    assert settings["seed"] == 7 and settings["n_patients"] == 10
    assert synth.cohort_is_current(folder, "xray", 7, 10, n_reader2=4)
    assert not synth.cohort_is_current(folder, "xray", 8, 10, n_reader2=4)


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_committed_manifest_matches_the_generator(modality):
    """data_manifests/synthetic_<modality>.csv is what `ovfkit synth --seed 42` writes (labels and paths)."""
    committed = pd.read_csv(DATA_MANIFESTS / f"synthetic_{modality}.csv", keep_default_na=False)
    t = synth.cohort_table(modality, seed=42)
    for col in ("patient_id", "vertebra_id", "level", "center", "cohort", "astlof_total", "astlof_class", "age", "sex"):
        assert committed[col].astype(str).tolist() == t[col].astype(str).tolist(), col


def test_perturb_mask_keeps_one_component():
    rng = np.random.default_rng(0)
    mask = np.zeros((60, 60), np.uint8)
    mask[15:45, 10:50] = 1
    out = synth.perturb_mask(mask, (0.5, 0.5), rng)
    from scipy import ndimage

    assert ndimage.label(out)[1] == 1


def test_too_few_patients_is_refused():
    with pytest.raises(ValueError, match="n_patients=3 is too small"):
        synth.cohort_table("xray", n_patients=3)


def test_class_mix_statement_counts_every_class_and_names_the_rarest_per_cohort():
    from ovfkit import cohort

    m = pd.DataFrame({"astlof_class": [0, 0, 1, 2, 1, 0, 0, 2], "cohort": ["train"] * 5 + ["external"] * 3})
    text = cohort.class_mix_statement(m)
    assert "class 0 50.0% (4), class 1 25.0% (2), class 2 25.0% (2)" in text
    assert "train: class 2 (n = 1); external: class 1 (n = 0)" in text


def test_synth_reuse_leaves_a_current_cohort_alone_and_remakes_another(tmp_path):
    from typer.testing import CliRunner

    from ovfkit.cli import app

    out = tmp_path / "xray"
    argv = ["synth", "--modality", "xray", "--out", str(out), "--seed", "3", "--n-patients", "8", "--jobs", "1",
            "--reuse"]
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 0, first.output
    before = (out / "manifest.csv").stat().st_mtime_ns
    again = CliRunner().invoke(app, argv)
    assert again.exit_code == 0 and "left as it is" in again.output
    assert (out / "manifest.csv").stat().st_mtime_ns == before
    other = CliRunner().invoke(app, [*argv[:6], "4", *argv[7:]])
    assert other.exit_code == 0 and "left as it is" not in other.output
    assert json.loads((out / "synth_settings.json").read_text(encoding="utf-8"))["seed"] == 4


@pytest.mark.parametrize("paper, total, shares", [("zhang2024", 1053, "class 0 44.6%, class 1 43.8%, class 2 11.6%"),
                                                  ("liu2025", 1098, "class 0 46.3%, class 1 43.9%, class 2 9.8%")])
def test_class_mix_statement_sets_the_papers_table_beside_the_run(paper, total, shares):
    from ovfkit.cohort import class_mix_statement

    m = pd.DataFrame({"astlof_class": [0] * 5 + [1] * 4 + [2], "cohort": ["train"] * 10})
    text = class_mix_statement(m, paper=paper)
    assert f"{shares} (n = {total})" in text
    theirs = {"zhang2024": (44.6, 43.8, 11.6), "liu2025": (46.3, 43.9, 9.8)}[paper]
    gaps = np.array([50.0, 40.0, 10.0]) - np.array(theirs)
    worst = int(np.abs(gaps).argmax())
    assert f"the largest difference is class {worst}, {gaps[worst]:+.1f} percentage points here" in text


# --- reader 1's repeat outline (intra-observer reliability) --------------------------------------

def _mask(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_repeat_masks_are_written_for_exactly_the_reader2_subset_in_training_center_i(tiny_cohorts, modality):
    m = load_manifest(tiny_cohorts[modality])
    repeat = m.index[m["mask_reader1_repeat"] != ""]
    assert list(repeat) == list(m.index[m["mask_reader2"] != ""]) and len(repeat) == 4
    assert set(m.loc[repeat, "cohort"]) == {"train"} and set(m.loc[repeat, "center"]) == {"I"}
    folder = tiny_cohorts[modality].parent / "masks_reader1_repeat"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{vid}.nii.gz" for vid in repeat)


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_files_of_the_generator_before_repeat_masks_are_byte_identical(tiny_cohorts, modality):
    """Reader 1's repeat comes from its own random stream: every file the generator wrote before it was
    added (images, masks, reader 2's masks, truth, the manifest's other columns) keeps its bytes."""
    import hashlib

    ref = pd.read_csv(FIXTURES / "synth_seed7_sha256.csv", comment="#")
    ref = ref[ref["modality"] == modality].set_index("file")["sha256"]
    folder = tiny_cohorts[modality].parent
    got = _digests(folder)
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    old = manifest.drop(columns=["mask_reader1_repeat", "mask_reader1_repeat_sha256"])
    got["manifest.csv"] = hashlib.sha256(old.to_csv(index=False, lineterminator="\n").encode()).hexdigest()
    changed = [f for f in ref.index if got.get(f) != ref[f]]
    assert changed == [], f"changed by the repeat masks: {changed}"
    new = sorted(set(got) - set(ref.index) - {"synth_settings.json"})
    assert new and all(f.startswith("masks_reader1_repeat/") for f in new), new


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_reader1_repeat_agrees_with_reader1_better_than_reader2_does(tiny_cohorts, modality):
    m = load_manifest(tiny_cohorts[modality])
    rows = m[m["mask_reader1_repeat"] != ""]
    intra, inter = [], []
    for _, row in rows.iterrows():
        first, second, repeat = _mask(row["mask"]), _mask(row["mask_reader2"]), _mask(row["mask_reader1_repeat"])
        assert (repeat != first).any() and (repeat != second).any(), "the repeat is a new outline, not a copy"
        intra.append(_dice(first, repeat))
        inter.append(_dice(first, second))
    assert 0.9 < np.mean(intra) < 1.0 and np.mean(intra) > np.mean(inter), (intra, inter)


@pytest.mark.parametrize("bias_mm, least, most", [(0.0, 0, 0), (2.0, 150, 1000)])
def test_perturb_mask_shifts_the_whole_outline_by_bias_mm(bias_mm, least, most):
    """Without local shift, the outline moves as a whole by a N(0, bias_mm) draw: not at all for 0, about
    the perimeter (47 mm) x 1.6 mm / 0.2 mm^2 per pixel = 380 pixels on average for 2 mm."""
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 8:42] = 1
    changed = [int((synth.perturb_mask(mask, (0.5, 0.4), np.random.default_rng(seed), amplitude_mm=0.0,
                                       bias_mm=bias_mm) != mask).sum()) for seed in range(12)]
    assert least <= np.mean(changed) <= most, changed


def test_a_cohort_of_an_older_generator_is_not_current(tiny_cohorts, tmp_path):
    """synth_settings.json records the generator's code hash, so a cohort made before a change of the
    generator (such as the repeat masks) is regenerated by `ovfkit synth --reuse`."""
    import shutil

    folder = tmp_path / "xray"
    shutil.copytree(tiny_cohorts["xray"].parent, folder)
    assert synth.cohort_is_current(folder, "xray", 7, 10, n_reader2=4)
    path = folder / "synth_settings.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["code"] = "6cafe9f05f833fc5"  # the generator before the repeat masks
    path.write_text(json.dumps(settings), encoding="utf-8")
    assert not synth.cohort_is_current(folder, "xray", 7, 10, n_reader2=4)


@pytest.mark.parametrize("modality", synth.MODALITIES)
def test_committed_manifest_lists_the_generators_reoutlined_vertebrae(modality):
    """data_manifests/synthetic_<modality>.csv has reader 2's and reader 1's repeat masks on the rows
    `ovfkit synth --seed 42` draws them for, and on no other."""
    committed = pd.read_csv(DATA_MANIFESTS / f"synthetic_{modality}.csv", keep_default_na=False)
    rows = sorted(synth.reoutlined_rows(synth.cohort_table(modality, seed=42), seed=42).tolist())
    for col in ("mask_reader2", "mask_reader1_repeat"):
        assert np.flatnonzero(committed[col] != "").tolist() == rows, col


# --- the lateral radiograph: discs, diaphragm, ribs, signs of age; population facts; guo2026 ------------

def _row(level="L1", shape="wedge", loss=0.3, **signs) -> pd.Series:
    """A cohort-table row with just what the X-ray phantom reads."""
    return pd.Series({"modality": "xray", "center": "I", "level": level, "morphology_finding": shape,
                      "height_loss": loss, "retropulsion_mm": 0.0, "bmd_tscore": -2.8, "mri_finding": "normal",
                      "condensation_band": False, "endplate_sclerosis": False, "osteophyte": False, **signs})


def _disc_gaps(row: pd.Series, seed: int, step: float = 0.05) -> np.ndarray:
    """Shortest distance (mm) from each neighbour to the fractured body, in the anterior and in the posterior
    third of its depth: the disc heights at the front and at the back, measured on the drawn outlines."""
    from scipy import ndimage

    layout = synth.xray_layout(row, np.random.default_rng(seed))
    depth = layout.body.depth
    v, u = np.meshgrid(np.arange(-40.0, 40.0, step), np.arange(-3.0, depth + 3.0, step), indexing="ij")
    to_body = ndimage.distance_transform_edt(synth._body_sdf_2d(layout.body, u, v)[0] <= 0, sampling=step)
    gaps = []
    for nb in layout.neighbours:
        inside = synth._body_sdf_2d(nb.body, *nb.local(u, v))[0] > 0
        gaps += [to_body[inside & (u < depth / 3)].min(), to_body[inside & (u > 2 * depth / 3)].min()]
    return np.array(gaps)


@pytest.mark.parametrize("shape", ["wedge", "biconcave", "burst"])
@pytest.mark.parametrize("level, lowest, highest", [("T8", 3.0, 6.5), ("L2", 6.0, 11.0)])
@pytest.mark.parametrize("seed", [3, 4])
def test_disc_gap_does_not_grow_with_height_loss(shape, level, lowest, highest, seed):
    """The neighbours rest on the collapsed endplate across a disc of the level's height (thoracic 4-6 mm,
    lumbar 8-12 mm, scaled 0.8-1.1): at the front and at the back of the body the gap stays the same whatever
    the height loss, up to where the endplate's undulation and concavity let it touch (the old phantom kept
    the neighbours at the uncollapsed height, so the gap grew with the loss, by 1 to 6 mm at 50%)."""
    gaps = np.array([_disc_gaps(_row(level, shape, loss), seed) for loss in (0.0, 0.25, 0.5)])
    assert np.ptp(gaps, axis=0).max() < 1.0 and np.ptp(gaps.mean(axis=1)) < 0.4, gaps
    assert lowest < gaps.min() and gaps.max() < highest, gaps


@pytest.mark.parametrize("level, band", [("T5", "above"), ("T10", "above"), ("T11", "at"), ("T12", "at"), ("L1", "at"),
                                         ("L2", "below"), ("L5", "below")])
def test_level_band_places_each_level_against_the_diaphragm(level, band):
    assert synth.level_band(level) == band
    t = synth.cohort_table("xray", seed=5, n_patients=60, design="guo2026")
    assert (t["level_band"] == t["level"].map(synth.level_band)).all()


def test_an_unknown_level_has_no_band():
    with pytest.raises(ValueError, match="level 'C7' is not one of"):
        synth.level_band("C7")


@pytest.mark.parametrize("level", ["T7", "T10", "T11", "T12", "L1", "L2", "L4"])
def test_diaphragm_crosses_only_patches_at_t11_to_l1_and_ribs_end_at_l1(level):
    """Above the band the patch lies over the lung, below it over the abdomen; at T11-L1 a dome crosses it.
    Rib shadows cover the thoracic levels (three bands), T12 (two) and L1 at most one, none below."""
    idx = np.arange(-27.5, 28.0, 0.5)
    vv, uu = np.meshgrid(idx, idx, indexing="ij")
    band = synth.level_band(level)
    for seed in range(8):
        layout = synth.xray_layout(_row(level), np.random.default_rng(seed))
        air = layout.lung(uu, vv)
        if band == "at":
            assert layout.diaphragm and air.max() > 0.95 and air.min() < 0.05
            assert (np.diff(air[:, idx.size // 2]) <= 1e-9).all(), "lung above the dome, abdomen below"
        else:
            assert not layout.diaphragm and np.all(air == (1.0 if band == "above" else 0.0))
        ribs = len(layout.ribs)
        expected = {"T12": {2}, "L1": {0, 1}}.get(level, {3} if band == "above" or level == "T11" else {0})
        assert ribs in expected, (seed, ribs)
        assert (layout.rib_shadows(uu, vv).max() > 1.0) == (ribs > 0)


@pytest.mark.parametrize("sign", ["osteophyte", "endplate_sclerosis"])
def test_signs_of_an_old_fracture_are_drawn_where_they_belong(sign):
    """Same draws with and without the sign: the mask is the same body; an osteophyte brightens only
    the front of the anterior wall (outside the mask), sclerosis a band along the collapsed upper endplate."""
    from scipy import ndimage

    row = _row("L2", "wedge", 0.3)
    img0, mask0, *_ = synth.phantom(row, np.random.default_rng(11))
    img1, mask1, *_ = synth.phantom(_row("L2", "wedge", 0.3, **{sign: True}), np.random.default_rng(11))
    assert (mask0 == mask1).all()
    diff = img1.astype(float) - img0.astype(float)
    changed = diff > 40
    assert changed.sum() > 20 and (diff > -1).all()
    if sign == "osteophyte":  # outside the body, in front of it
        centre = np.flatnonzero(mask0.any(axis=0)).mean()
        assert (changed & (mask0 == 0)).sum() > 0.85 * changed.sum() and not changed[:, int(centre):].any()
    else:
        core = ndimage.binary_erosion(mask0, iterations=3)
        assert changed[core].sum() > 0.8 * changed.sum()
        rows = np.flatnonzero(changed.any(axis=1))
        body_rows = np.flatnonzero(mask0.any(axis=1))
        assert rows.max() < body_rows.mean(), "along the upper (collapsed) endplate"


@pytest.mark.parametrize("design", ["xray", "ct", "zhang2023", "guo2026"])
def test_population_facts_are_met_within_sampling_tolerance(design):
    modality = synth.DESIGNS[design].modality
    facts = synth.population_facts(synth.cohort_table(modality, seed=42, design=design), design)
    assert list(facts.columns) == ["fact", "cohort", "source_value", "source", "tolerance"]
    drawn = facts.dropna(subset=["tolerance"])
    assert {"T-score, mean", "T-score, SD"} <= set(drawn["fact"])
    assert ("Age, mean (years)" in set(drawn["fact"])) == (design != "ct")  # ct keeps its age (not liu2025's)
    off = drawn[(drawn["cohort"] - drawn["source_value"]).abs() > drawn["tolerance"]]
    assert off.empty, off[["fact", "cohort", "source_value", "tolerance"]]
    assert facts["source"].str.len().gt(10).all()


def test_xray_population_follows_zhang2024_and_the_bmd_component_spreads():
    """zhang2024: 69.34 +/- 10.19 years, 264 of 942 men; a T-score SD near liu2025's 0.81 (not 0.44), so
    that the top BMD component is no rarity (about a fifth of the patients, not 5%)."""
    t = synth.cohort_table("xray", seed=42)
    facts = synth.population_facts(t).set_index("fact")
    assert facts.loc["Age, mean (years)", "source_value"] == 69.34
    assert facts.loc["Men, share of patients", "source_value"] == pytest.approx(264 / 942, abs=1e-4)
    assert 0.7 < facts.loc["T-score, SD", "cohort"] < 0.95
    assert 0.15 < (t["true_bmd"] == 2).mean() < 0.3


def test_guo2026_design_has_the_papers_counts():
    """guo2026: 405 patients, 720 patches of T5-L5 by Table 1, one center, all in train (the CNN code folds
    them by patient), 364 fresh / 356 old, 11 of the fresh without visible compression; every patch a fracture."""
    from scipy import stats

    design = synth.DESIGNS["guo2026"]
    t = synth.cohort_table("xray", seed=42, design="guo2026")
    assert len(t) == design.n_vertebrae == 720 and t["patient_id"].nunique() == 405
    assert set(t["cohort"]) == {"train"} and set(t["center"]) == {"HMU"} and "HMU" in synth.XRAY_CENTERS
    counts = t["level"].value_counts().reindex(list(synth.GUO2026_LEVELS), fill_value=0)
    assert sum(synth.GUO2026_LEVELS.values()) == 720 and counts.sum() == 720
    expected = np.array(list(synth.GUO2026_LEVELS.values()), dtype=float)
    assert stats.chisquare(counts.to_numpy(), expected).pvalue > 0.01, counts.tolist()
    acute = (t["acuity"] == "acute").to_numpy()
    assert ((t["mri_finding"] == "edema").to_numpy() == acute).all()
    assert abs(acute.mean() - 364 / 720) < 0.05
    flat = (t["morphology_finding"] == "normal").to_numpy()
    assert not flat[~acute].any(), "every old fracture is compressed"
    assert 0.005 < flat[acute].mean() < 0.07  # 11 of 364
    assert (t["age"] >= 60).all()
    # Signs of age on the radiograph: sclerosis only in healed (old) fractures, osteophytes in both but more
    # often in old ones; the ASTLOF designs draw neither.
    assert not t.loc[acute, "endplate_sclerosis"].any() and t.loc[~acute, "endplate_sclerosis"].mean() > 0.3
    assert t.loc[~acute, "osteophyte"].mean() > t.loc[acute, "osteophyte"].mean() > 0.05
    astlof_table = synth.cohort_table("xray", seed=42, n_patients=60)
    assert not astlof_table[["endplate_sclerosis", "osteophyte"]].any().any()


def test_other_designs_draw_their_levels_as_before():
    """The default level weights are the ASTLOF designs' (T10-L4, peak at the thoracolumbar junction)."""
    for name in ("xray", "ct", "zhang2023"):
        d = synth.DESIGNS[name]
        assert d.levels == synth.LEVELS and np.allclose(d.level_weights, synth.LEVEL_WEIGHTS) and d.adjacent_levels
    assert set(synth.cohort_table("ct", seed=42)["level"]) <= set(synth.LEVELS)


def test_chapter_02_states_the_simulated_readers_error_rates():
    """The reader-agreement section says how the two readers are simulated; its rates are READER_ERROR's."""
    text = "".join("".join(c["source"]) for c in json.loads(
        (Path(__file__).resolve().parents[1] / "notebooks" / "02_astlof.ipynb").read_text(encoding="utf-8"))["cells"])
    for comp, rate in synth.READER_ERROR.items():
        name = "MRI" if comp == "mri" else "BMD" if comp == "bmd" else comp
        assert f"{name} {100 * rate:.0f}%" in text, (comp, rate)
