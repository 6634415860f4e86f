"""`ovfkit manifest from-labelmap`: label maps with one label per vertebra become a manifest and binary masks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ovfkit.labelmap import LEVELS, WHOLE_VERTEBRA_NOTE, manifest_from_labelmap, vertebra_labels
from ovfkit.manifest import MANIFEST_COLUMNS, SCHEMA, validate_manifest

SIZE = (12, 10, 30)  # x, y, z voxels
SPACING = (0.7, 0.8, 2.5)  # mm
ORIGIN = (-20.0, 15.0, 300.0)  # mm
DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # LPS-flipped, not the identity
# per convention: three vertebrae (label -> level, cranial first) and a label that is no T/L vertebra
CASES = {
    "totalsegmentator": ({32: "T12", 31: "L1", 30: "L2"}, 92),  # 92: rib_left_1
    "verse": ({19: "T12", 20: "L1", 21: "L2"}, 5),  # 5: C5
}
FILLED = {"patient_id", "vertebra_id", "level", "modality", "image", "mask", "image_sha256", "mask_sha256"}


def _image(arr: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(DIRECTION)
    return img


def _geometry(img: sitk.Image) -> tuple:
    return img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection()


def _scan(tmp_path: Path, labels: list[int], other: int | None = None) -> tuple[Path, Path, np.ndarray]:
    """A CT-like image and a label map with one box per label, stacked along z (first label on top)."""
    rng = np.random.default_rng(0)
    image = rng.integers(-1000, 1500, size=SIZE[::-1], dtype=np.int16)
    lab = np.zeros(SIZE[::-1], dtype=np.int16)
    for k, label in enumerate(labels):
        z0 = SIZE[2] - 8 * (k + 1)  # +z is cranial in LPS: the first label sits highest
        lab[z0:z0 + 6, 2:8, 3:9] = label
    if other is not None:
        lab[:, 8:10, 0:2] = other
    folder = tmp_path / "scan"
    folder.mkdir()
    sitk.WriteImage(_image(image), str(folder / "ct.nii.gz"))
    sitk.WriteImage(_image(lab), str(folder / "labels.nii.gz"))
    return folder / "ct.nii.gz", folder / "labels.nii.gz", lab


@pytest.mark.parametrize("convention", sorted(CASES))
def test_one_row_and_one_binary_mask_per_vertebra_on_the_image_grid(tmp_path, convention):
    levels, other = CASES[convention]
    image, labels, lab = _scan(tmp_path, list(levels), other)
    out = tmp_path / "study" / "P01"
    manifest, notes = manifest_from_labelmap(image, labels, convention, "P01", out)
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    assert notes == []
    assert tuple(df.columns) == MANIFEST_COLUMNS
    assert list(df["level"]) == list(levels.values())  # cranial first, the rib or C5 left out
    assert list(df["vertebra_id"]) == [f"P01_{lev}" for lev in levels.values()]
    assert set(df["image"]) == {"../../scan/ct.nii.gz"}
    assert (out / df["image"][0]).resolve() == image.resolve()
    img = sitk.ReadImage(str(image))
    for (label, _), rel in zip(levels.items(), df["mask"]):
        mask = sitk.ReadImage(str(out / rel))
        assert not Path(rel).is_absolute()
        assert mask.GetPixelID() == sitk.sitkUInt8
        assert _geometry(mask) == _geometry(img)
        np.testing.assert_allclose(mask.GetSpacing(), SPACING, rtol=1e-6)  # NIfTI stores float32
        assert mask.GetDirection() == DIRECTION
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), (lab == label).astype(np.uint8))


@pytest.mark.parametrize("convention, label, level", [
    ("totalsegmentator", 27, "L5"), ("totalsegmentator", 28, "L4"), ("totalsegmentator", 31, "L1"),
    ("totalsegmentator", 32, "T12"), ("totalsegmentator", 43, "T1"),
    ("verse", 8, "T1"), ("verse", 19, "T12"), ("verse", 20, "L1"), ("verse", 24, "L5"),
])
def test_labels_map_to_the_published_levels(convention, label, level):
    assert LEVELS[convention][label] == level
    assert len(LEVELS[convention]) == 17 and len(set(LEVELS[convention].values())) == 17


def test_transitional_vertebrae_are_left_out_with_a_note():
    lab = np.array([0, 19, 20, 25, 28])
    levels, notes = vertebra_labels(lab, "verse")
    assert levels == {19: "T12", 20: "L1"}
    assert len(notes) == 2 and "label 25 (L6" in notes[0] and "label 28 (T13" in notes[1]


@pytest.mark.parametrize("change, expected", [
    ("spacing", "spacing"), ("origin", "origin"), ("size", "size"), ("direction", "direction"),
])
def test_label_map_on_another_grid_is_refused(tmp_path, change, expected):
    image, labels, lab = _scan(tmp_path, [31])
    img = sitk.ReadImage(str(labels))
    if change == "size":
        img = img[:-2, :, :]
    elif change == "spacing":
        img.SetSpacing([s * 1.1 for s in SPACING])
    elif change == "origin":
        img.SetOrigin([o + 2.0 for o in ORIGIN])
    else:
        img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(img, str(labels))
    with pytest.raises(ValueError, match=f"grid differs from the image's \\({expected}"):
        manifest_from_labelmap(image, labels, "totalsegmentator", "P01", tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.csv").exists()


@pytest.mark.parametrize("patient_id", ["", "a/b", "../P01", "P 01"])
def test_patient_id_that_cannot_name_a_file_is_refused(tmp_path, patient_id):
    image, labels, _ = _scan(tmp_path, [31])
    with pytest.raises(ValueError, match="cannot name the mask files"):
        manifest_from_labelmap(image, labels, "totalsegmentator", patient_id, tmp_path / "out")


@pytest.mark.parametrize("convention", sorted(CASES))
def test_validate_names_each_empty_cell_and_nothing_else(tmp_path, convention):
    levels, other = CASES[convention]
    image, labels, _ = _scan(tmp_path, list(levels), other)
    manifest, _ = manifest_from_labelmap(image, labels, convention, "P01", tmp_path / "out")
    problems = validate_manifest(manifest)[1]
    empty = [c.name for c in SCHEMA if c.required and c.name not in FILLED]
    expected = {(line, col) for line in range(2, 2 + len(levels)) for col in empty}
    assert len(problems) == len(expected), problems
    found = set()
    for p in problems:
        line, col = p.split(" line ")[1].split(" ")[0], p.split("column '")[1].split("'")[0]
        assert "value is empty; fill it in: " in p, p
        found.add((int(line), col))
    assert found == expected


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ovfkit.cli", "manifest", "from-labelmap", *map(str, args)],
                          capture_output=True, encoding="utf-8", errors="replace",
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("convention", sorted(CASES))
def test_cli_writes_the_manifest_and_says_the_masks_hold_the_whole_vertebra(tmp_path, convention):
    levels, other = CASES[convention]
    image, labels, _ = _scan(tmp_path, list(levels), other)
    proc = _cli("--image", image, "--labels", labels, "--convention", convention, "--patient-id", "P01",
                "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert WHOLE_VERTEBRA_NOTE in proc.stdout and "whole vertebra" in proc.stdout
    df = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert list(df["level"]) == list(levels.values())
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == \
           sorted(f"P01_{lev}.nii.gz" for lev in levels.values())  # no temporary file left behind


@pytest.mark.parametrize("convention, labels", [
    ("totalsegmentator", [92, 5]),  # ribs and organs only
    ("verse", [3, 4]),  # cervical only
    ("verse", [31, 32]),  # a TotalSegmentator map read as VerSe
])
def test_cli_refuses_a_label_map_without_thoracic_or_lumbar_vertebra(tmp_path, convention, labels):
    image, lab, _ = _scan(tmp_path, labels)
    proc = _cli("--image", image, "--labels", lab, "--convention", convention, "--patient-id", "P01",
                "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert "no thoracic or lumbar vertebra" in line and f"labels found: {', '.join(map(str, sorted(labels)))}" in line
    assert not (tmp_path / "out" / "manifest.csv").exists()
