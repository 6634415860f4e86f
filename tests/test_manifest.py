import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from ovfkit.manifest import (MANIFEST_COLUMNS, PATH_COLUMNS, ManifestError, load_manifest, schema_markdown,
                             validate_manifest, write_csv_atomic)

REPO = Path(__file__).resolve().parents[1]


def _edit(manifest: Path, fn) -> Path:
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(manifest, index=False)
    return manifest


def _problems(manifest: Path) -> list[str]:
    return validate_manifest(manifest)[1]


def test_generated_cohort_is_valid(tiny_cohorts):
    for path in tiny_cohorts.values():
        assert _problems(path) == []


def test_load_manifest_makes_paths_absolute_and_indexes_by_vertebra(tiny_cohorts):
    m = load_manifest(tiny_cohorts["ct"])
    assert m.index.equals(pd.Index(m["vertebra_id"]))
    assert all(Path(p).is_absolute() and Path(p).exists() for p in m["image"])


@pytest.mark.parametrize("column", ["mask", "mask_reader2", "mask_reader1_repeat"])
def test_load_manifest_makes_every_mask_path_absolute(tiny_cohorts, column):
    assert column in PATH_COLUMNS
    m = load_manifest(tiny_cohorts["xray"])
    given = m.loc[m[column] != "", column]
    assert len(given) >= 4 and all(Path(p).is_absolute() and Path(p).is_file() for p in given)


def _set(col, value, row=0):
    def fn(df):
        df.loc[row, col] = value
        return df
    return fn


def _other_patient_cohort(df):
    pid = df["patient_id"].value_counts().index[0]
    rows = df.index[df["patient_id"] == pid]
    if len(rows) < 2:  # give the patient a second vertebra in another cohort
        extra = df.loc[[rows[0]]].copy()
        extra["vertebra_id"] = extra["vertebra_id"] + "_dup"
        df = pd.concat([df, extra], ignore_index=True)
        rows = df.index[df["patient_id"] == pid]
    df.loc[rows[-1], "cohort"] = "external" if df.loc[rows[0], "cohort"] != "external" else "train"
    return df


@pytest.mark.parametrize("edit, expected", [
    (lambda df: df.drop(columns=["cohort"]), "required column 'cohort' is missing"),
    (_set("cohort", "test"), "'test' is not one of train, internal, external, prospective"),
    (_set("modality", "mri"), "'mri' is not one of xray, ct"),
    (_set("age", "seventy"), "column 'age': 'seventy' is not an integer"),
    (_set("age", "150"), "column 'age': 150 is outside 10 to 120"),
    (_set("morphology", "3"), "column 'morphology': 3 is not one of 0, 1, 2"),
    (_set("sex", ""), "column 'sex': value is empty"),
    (_set("image_sha256", "xyz"), "not a SHA-256 hex digest"),
    (lambda df: df.assign(extra_col="1"), "column 'extra_col' is not in the schema"),
    (lambda df: _set("vertebra_id", df.loc[1, "vertebra_id"])(df), "appears on lines 2, 3"),
    (_other_patient_cohort, "a patient must have exactly one cohort"),
    (lambda df: _set("astlof_total", str(int(df.loc[0, "astlof_total"]) % 8 + 1))(df), "recompute the total"),
    (lambda df: _set("astlof_class", str((int(df.loc[0, "astlof_class"]) + 1) % 3))(df), "maps to class"),
    (_set("image", "images/nowhere.nii.gz"), "file 'images/nowhere.nii.gz' does not exist"),
], ids=["missing-column", "bad-cohort", "bad-modality", "non-integer", "out-of-range", "bad-score",
        "empty-required", "bad-sha", "unknown-column", "duplicate-id", "patient-two-cohorts", "bad-total",
        "bad-class", "missing-file"])
def test_validation_reports_each_bad_input(xray_copy, edit, expected):
    _edit(xray_copy, edit)
    problems = _problems(xray_copy)
    assert any(expected in p for p in problems), problems


def test_problem_lines_name_the_line_and_vertebra(xray_copy):
    _edit(xray_copy, _set("cohort", "test", row=2))
    (line,) = [p for p in _problems(xray_copy) if "cohort" in p]
    vid = pd.read_csv(xray_copy)["vertebra_id"][2]
    assert f"line 4 (vertebra_id={vid}), column 'cohort'" in line


def test_every_problem_is_reported_not_just_the_first(xray_copy):
    _edit(xray_copy, lambda df: _set("cohort", "test", 0)(_set("sex", "X", 1)(_set("age", "abc", 2)(df))))
    problems = _problems(xray_copy)
    assert len(problems) >= 3


def _rewrite_mask(manifest: Path, fn):
    df = pd.read_csv(manifest)
    path = manifest.parent / df.loc[0, "mask"]
    img = sitk.ReadImage(str(path))
    out = fn(img)
    sitk.WriteImage(out, str(path))
    _edit(manifest, _set("mask_sha256", ""))
    return df.loc[0, "vertebra_id"]


def test_empty_mask_is_reported(xray_copy):
    def empty(img):
        out = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(img)))
        out.CopyInformation(img)
        return out
    vid = _rewrite_mask(xray_copy, empty)
    assert any("is empty" in p and vid in p for p in _problems(xray_copy))


def _relabel(arr: np.ndarray, kind: str) -> np.ndarray:
    if kind == "255":  # a segmentation tool's foreground value
        return (arr > 0).astype(np.uint8) * 255
    if kind == "several-labels":  # a piece of a label map
        out = (arr > 0).astype(np.uint8)
        out[: int(np.median(np.nonzero(out)[0]))] *= 2  # the ROI's upper half gets label 2
        return out
    return (arr > 0).astype(np.float32) * 0.5  # resampled with linear interpolation


@pytest.mark.parametrize("column", ["mask", "mask_reader2", "mask_reader1_repeat"])
@pytest.mark.parametrize("kind, labels", [("255", "0, 255"), ("several-labels", "0, 1, 2"), ("float", "0, 0.5")])
def test_mask_labels_other_than_0_and_1_are_reported_in_one_line(xray_copy, column, kind, labels):
    df = pd.read_csv(xray_copy, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(df["mask_reader2"] != "")[0])
    rel = df.loc[row, column]
    path = xray_copy.parent / rel
    img = sitk.ReadImage(str(path))
    out = sitk.GetImageFromArray(_relabel(sitk.GetArrayFromImage(img), kind))
    out.CopyInformation(img)
    sitk.WriteImage(out, str(path))
    _edit(xray_copy, _set(f"{column}_sha256", "", row))
    problems = _problems(xray_copy)
    vid = df.loc[row, "vertebra_id"]
    assert problems == [f"{xray_copy} line {row + 2} (vertebra_id={vid}), column '{column}': mask {rel!r} holds "
                        f"labels {labels}, not only 0 and 1 (label 1 = ROI, 0 = background); binarize it: "
                        "mask > 0, or, for a label map with one label per vertebra, use `ovfkit manifest "
                        "from-labelmap`"]


def _bad_repeat(kind: str, img: sitk.Image) -> sitk.Image | None:
    """Reader 1's repeat mask made wrong in one way (None: the file is removed)."""
    arr = (sitk.GetArrayFromImage(img) > 0).astype(np.uint8)
    if kind == "missing":
        return None
    if kind == "geometry":  # drawn on another grid
        out = sitk.GetImageFromArray(arr[:-3])
        out.SetSpacing(img.GetSpacing())
        out.SetOrigin(img.GetOrigin())
        return out
    if kind == "changed":  # redrawn after the manifest was written
        arr[0, 0] = 1
    else:
        arr[:] = 0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


@pytest.mark.parametrize("kind, column, expected", [
    ("missing", "mask_reader1_repeat", "does not exist under"),
    ("changed", "mask_reader1_repeat_sha256", "does not match its SHA-256"),
    ("empty", "mask_reader1_repeat", "is empty (no voxel > 0); redraw the ROI"),
    ("geometry", "mask_reader1_repeat", "geometry differs from the image (size"),
])
def test_bad_repeat_mask_is_one_line_naming_the_row_and_column(xray_copy, kind, column, expected):
    df = pd.read_csv(xray_copy, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(df["mask_reader1_repeat"] != "")[1])
    path = xray_copy.parent / df.loc[row, "mask_reader1_repeat"]
    out = _bad_repeat(kind, sitk.ReadImage(str(path)))
    if out is None:
        path.unlink()
    else:
        sitk.WriteImage(out, str(path))
    if kind in ("empty", "geometry"):
        _edit(xray_copy, _set("mask_reader1_repeat_sha256", "", row))
    (line,) = _problems(xray_copy)
    vid = df.loc[row, "vertebra_id"]
    assert line.startswith(f"{xray_copy} line {row + 2} (vertebra_id={vid}), column '{column}': ") and expected in line


@pytest.mark.parametrize("sep, decimal", [(";", "."), (";", ","), ("\t", ".")],
                         ids=["semicolon", "semicolon-decimal-comma", "tab"])
def test_wrong_separator_is_one_line_not_one_per_column(xray_copy, sep, decimal):
    df = pd.read_csv(xray_copy, dtype=str, keep_default_na=False)
    df["bmd_tscore"] = df["bmd_tscore"].str.replace(".", decimal)
    df.to_csv(xray_copy, sep=sep, index=False)
    assert _problems(xray_copy) == [f"{xray_copy}: the header is one column containing {sep!r} - write the "
                                    "manifest comma-separated (CSV)"]


@pytest.mark.parametrize("column, expected", [
    ("sex", "one of F, M"), ("age", "an integer from 10 to 120"), ("cohort", "one of train, internal, "),
    ("center", "Acquiring center"),
])
def test_empty_required_cell_says_what_to_fill_in(xray_copy, column, expected):
    _edit(xray_copy, _set(column, "", row=1))
    (line,) = [p for p in _problems(xray_copy) if f"column '{column}'" in p]
    assert f"line 3 (vertebra_id=" in line and f"column '{column}': value is empty; fill it in: {expected}" in line


@pytest.mark.parametrize("change, expected", [
    ("spacing", "spacing"), ("origin", "origin"), ("size", "size"), ("direction", "direction"),
])
def test_geometry_mismatch_is_reported(xray_copy, change, expected):
    def alter(img):
        if change == "size":
            return img[:-3, :]
        out = sitk.Image(img)
        if change == "spacing":
            out.SetSpacing([s * 1.1 for s in img.GetSpacing()])
        elif change == "origin":
            out.SetOrigin([o + 2.0 for o in img.GetOrigin()])
        else:
            out.SetDirection((0.0, 1.0, 1.0, 0.0))
        return out
    _rewrite_mask(xray_copy, alter)
    problems = [p for p in _problems(xray_copy) if "geometry differs" in p]
    assert problems and expected in problems[0]


def test_changed_file_fails_its_sha256(xray_copy):
    df = pd.read_csv(xray_copy)
    path = xray_copy.parent / df.loc[0, "image"]
    img = sitk.ReadImage(str(path))
    sitk.WriteImage(img + 1, str(path))
    assert any("does not match its SHA-256" in p for p in _problems(xray_copy))


def test_unreadable_file_is_reported(xray_copy):
    df = pd.read_csv(xray_copy)
    (xray_copy.parent / df.loc[0, "image"]).write_bytes(b"not an image")
    _edit(xray_copy, _set("image_sha256", ""))
    assert any("SimpleITK cannot read" in p for p in _problems(xray_copy))


def test_missing_manifest_and_empty_manifest(tmp_path):
    assert "manifest file not found" in validate_manifest(tmp_path / "none.csv")[1][0]
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(MANIFEST_COLUMNS) + "\n")
    assert "has no rows" in validate_manifest(empty)[1][0]


def test_load_manifest_raises_with_all_problems(xray_copy):
    _edit(xray_copy, _set("cohort", "test"))
    with pytest.raises(ManifestError) as info:
        load_manifest(xray_copy)
    assert info.value.problems and "cohort" in str(info.value)


def test_nrrd_and_dicom_series_are_read(xray_copy, tiny_cohorts, tmp_path):
    """Real data arrive as NRRD files or DICOM series folders; both validate like NIfTI."""
    ct = load_manifest(tiny_cohorts["ct"])
    row = ct.iloc[0]
    img = sitk.ReadImage(row["image"])
    mask = sitk.ReadImage(row["mask"])
    root = tmp_path / "real"
    series = root / "dicom" / row["vertebra_id"]
    series.mkdir(parents=True)
    img = sitk.Cast(img, sitk.sitkInt16)
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        sl.SetMetaData("0020|0013", str(k + 1))  # instance number
        sl.SetMetaData("0020|0032", "\\".join(f"{v:.4f}" for v in img.TransformIndexToPhysicalPoint((0, 0, k))))
        sl.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        sl.SetMetaData("0028|0030", f"{img.GetSpacing()[1]}\\{img.GetSpacing()[0]}")
        sl.SetMetaData("0018|0050", str(img.GetSpacing()[2]))
        sl.SetMetaData("0020|000d", "1.2.826.0.1.3680043.2.1125.1")  # study
        sl.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.2")  # series
        sl.SetMetaData("0008|0018", f"1.2.826.0.1.3680043.2.1125.3.{k + 1}")  # instance
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(series / f"{k:03d}.dcm"))
        writer.Execute(sl)
    sitk.WriteImage(mask, str(root / "mask.nrrd"))
    df = pd.read_csv(tiny_cohorts["ct"]).iloc[[0]].copy()
    df["image"] = f"dicom/{row['vertebra_id']}"
    df["mask"] = "mask.nrrd"
    for c in ("image_sha256", "mask_sha256", "mask_reader2", "mask_reader2_sha256", "mask_reader1_repeat",
              "mask_reader1_repeat_sha256"):
        df[c] = ""
    write_csv_atomic(df, root / "manifest.csv")
    assert validate_manifest(root / "manifest.csv")[1] == []


def test_cli_validate_exits_2_with_one_line_per_problem_and_no_traceback(xray_copy):
    _edit(xray_copy, lambda df: _set("cohort", "test", 0)(_set("age", "abc", 1)(df)))
    proc = subprocess.run([sys.executable, "-m", "ovfkit.cli", "validate", str(xray_copy)],
                          capture_output=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert any("'cohort'" in ln for ln in lines) and any("'age'" in ln for ln in lines)
    assert lines[-1].startswith("2 problem(s)")


def test_cli_validate_accepts_a_good_manifest(tiny_cohorts):
    proc = subprocess.run([sys.executable, "-m", "ovfkit.cli", "validate", str(tiny_cohorts["xray"])],
                          capture_output=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_schema_readme_is_in_sync_with_the_code():
    readme = (REPO / "data_manifests" / "README.md").read_text(encoding="utf-8")
    assert schema_markdown() in readme, "regenerate the table with `ovfkit schema`"


@pytest.mark.parametrize("mask_column, manifest_has, exit_code, expected", [
    ("mask_reader1_repeat", "repeats", 0, None),
    ("mask_reader1_repeat", "no repeats", 2, "lists no mask in column 'mask_reader1_repeat'; fill it in or choose "
                                             "another --mask-column"),
    ("mask_reader3", "repeats", 2, "'mask_reader3' is not one of"),
], ids=["repeat-masks", "column-empty", "unknown-column"])
def test_cli_features_radiomics_reads_the_chosen_reader_masks(xray_copy, tmp_path, mask_column, manifest_has,
                                                              exit_code, expected):
    from typer.testing import CliRunner

    from ovfkit.cli import app

    if manifest_has == "no repeats":
        _edit(xray_copy, lambda df: df.assign(mask_reader1_repeat="", mask_reader1_repeat_sha256=""))
    out = tmp_path / "f.parquet"
    result = CliRunner().invoke(app, ["features", "radiomics", "--manifest", str(xray_copy), "--out", str(out),
                                      "--params", "baseline_xray", "--jobs", "1", "--mask-column", mask_column])
    assert result.exit_code == exit_code, result.output
    if expected is None:
        df = pd.read_csv(xray_copy, dtype=str, keep_default_na=False)
        assert list(pd.read_parquet(out).index) == list(df.loc[df["mask_reader1_repeat"] != "", "vertebra_id"])
    else:
        assert expected in " ".join(result.output.split()) and not out.exists()
