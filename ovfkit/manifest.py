"""The cohort manifest: schema, validation and loading.

A manifest is a CSV file with one row per vertebra. Image and mask paths are relative to the
manifest's folder and may point to any file SimpleITK reads, or to a folder holding one DICOM series.
Every part of ovfkit reads a manifest through :func:`load_manifest`, which validates it first.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit import astlof

#: Cohort roles, the one place they are named: ``train`` is the only cohort any step is fitted or tuned on.
COHORTS = ("train", "internal", "external", "prospective")
HELD_OUT = COHORTS[1:]
MODALITIES = ("xray", "ct")
ACUITY = ("acute", "chronic")
SEXES = ("F", "M")


@dataclass(frozen=True)
class Column:
    """One manifest column: name, type, whether required, allowed values and meaning."""

    name: str
    dtype: str  # "str", "int", "float", "path", "sha256"
    required: bool
    description: str
    allowed: tuple = field(default_factory=tuple)
    min: float | None = None
    max: float | None = None


def _component_columns() -> list[Column]:
    names = {"morphology": "morphology (0 normal, 1 compression, 2 burst)",
             "mri": "MRI (0 normal, 1 edema, 2 vacuum cleft or fluid)",
             "bmd": "BMD (0 T > -2.5, 1 -3.5 < T <= -2.5, 2 T <= -3.5)",
             "clinical": "clinical (0 no pain, 1 pain on position change, 2 persistent pain or deficit)"}
    cols = []
    for comp in astlof.COMPONENTS:
        cols.append(Column(comp, "int", True, f"ASTLOF {names[comp]}, consensus of the readers", (0, 1, 2)))
    for reader in (1, 2):
        for comp in astlof.COMPONENTS:
            cols.append(Column(f"{comp}_r{reader}", "int", False,
                               f"ASTLOF {comp} scored independently by reader {reader}", (0, 1, 2)))
    return cols


SCHEMA: tuple[Column, ...] = (
    Column("patient_id", "str", True, "Pseudonymous patient identifier; a patient belongs to one cohort"),
    Column("vertebra_id", "str", True, "Unique identifier of the vertebra (one row each)"),
    Column("level", "str", True, "Vertebral level, e.g. T12 or L1",
           tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))),
    Column("center", "str", True, "Acquiring center (the batch for harmonization)"),
    Column("cohort", "str", True, "Study cohort; train and internal come from one center, split by patient",
           COHORTS),
    Column("modality", "str", True, "Imaging modality of `image`", MODALITIES),
    Column("image", "path", True, "Image file (NIfTI, NRRD, MHA, ...) or DICOM series folder, relative to the manifest"),
    Column("mask", "path", True, "Vertebral body mask of reader 1 (label 1 = ROI, 0 = background), same geometry as the image"),
    Column("mask_reader2", "path", False, "Reader 2's mask of the same vertebra, for ICC reliability; empty if not drawn"),
    Column("mask_reader1_repeat", "path", False, "Reader 1's second mask of the same vertebra, drawn weeks later, for "
           "intra-observer ICC reliability; empty if not drawn"),
    Column("image_sha256", "sha256", False, "SHA-256 of the image file; checked when present"),
    Column("mask_sha256", "sha256", False, "SHA-256 of the mask file; checked when present"),
    Column("mask_reader2_sha256", "sha256", False, "SHA-256 of reader 2's mask file; checked when present"),
    Column("mask_reader1_repeat_sha256", "sha256", False,
           "SHA-256 of reader 1's second mask file; checked when present"),
    *_component_columns(),
    Column("astlof_total", "int", True, "Sum of the four consensus components", min=0, max=8),
    Column("astlof_class", "int", True, "0 if total <= 3 (conservative), 1 if 4, 2 if >= 5 (surgery)", (0, 1, 2)),
    Column("acuity", "str", True, "acute (edema on MRI) or chronic, for the acute-vs-chronic task", ACUITY),
    Column("age", "int", True, "Age in years at imaging (zhang2023 includes traumatic fractures from 17)", min=10,
           max=120),
    Column("sex", "str", True, "F or M", SEXES),
    Column("bmd_tscore", "float", False, "DXA T-score behind the BMD component", min=-8.0, max=5.0),
)
MANIFEST_COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA)
_BY_NAME = {c.name: c for c in SCHEMA}
#: Columns holding masks on the image's grid: reader 1's, reader 2's, reader 1's repeat outline.
MASK_COLUMNS = ("mask", "mask_reader2", "mask_reader1_repeat")
PATH_COLUMNS = ("image", *MASK_COLUMNS)


class ManifestError(ValueError):
    """A manifest failed validation; ``problems`` holds one line per problem."""

    def __init__(self, path, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        super().__init__(f"{path}: {len(problems)} problem(s):\n" + "\n".join(self.problems))


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    """Write ``df`` to CSV through a temporary file in the same folder, then rename."""
    from ovfkit.atomic import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        df.to_csv(fh, index=kwargs.pop("index", False), lineterminator="\n", **kwargs)


def schema_markdown() -> str:
    """The manifest schema as a Markdown table (the body of ``data_manifests/README.md``)."""
    lines = ["| column | type | required | allowed values | meaning |", "|---|---|---|---|---|"]
    for c in SCHEMA:
        if c.allowed:
            allowed = ", ".join(str(a) for a in c.allowed)
        elif c.min is not None:
            allowed = f"{c.min:g} to {c.max:g}"
        elif c.dtype == "sha256":
            allowed = "64 hex digits"
        else:
            allowed = "any"
        lines.append(f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | {allowed} | {c.description} |")
    return "\n".join(lines) + "\n"


def _expected(c: Column) -> str:
    """What a cell of column ``c`` must hold, for the message about an empty cell."""
    if c.allowed:
        return "one of " + ", ".join(str(a) for a in c.allowed)
    if c.min is not None:
        return f"{'an integer' if c.dtype == 'int' else 'a number'} from {c.min:g} to {c.max:g}"
    return c.description


def _where(line: int, df: pd.DataFrame, i: int) -> str:
    vid = df["vertebra_id"].iloc[i] if "vertebra_id" in df.columns else ""
    return f"line {line}" + (f" (vertebra_id={vid})" if isinstance(vid, str) and vid else "")


def _parse_columns(df: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[str]]:
    problems: list[str] = []
    missing = [c.name for c in SCHEMA if c.required and c.name not in df.columns]
    for col in missing:
        problems.append(f"{name}: required column '{col}' is missing; add it (see data_manifests/README.md)")
    out = df.copy()
    for c in SCHEMA:
        if c.name not in df.columns:
            continue
        raw = df[c.name]
        empty = raw.isna() | (raw.astype(str).str.strip() == "")
        for i in np.flatnonzero(empty.to_numpy()):
            if c.required:
                problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': value is empty; fill it in: "
                                f"{_expected(c)}")
        if c.dtype in ("int", "float"):
            num = pd.to_numeric(raw.where(~empty), errors="coerce")
            bad = (~empty) & num.isna()
            if c.dtype == "int":
                bad |= (~empty) & num.notna() & (num != np.round(num))
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': {raw.iloc[i]!r} is not "
                                f"{'an integer' if c.dtype == 'int' else 'a number'}; write a plain number")
            num = num.where(~bad)
            vals = num
            if c.min is not None:
                out_of = num.notna() & ((num < c.min) | (num > c.max))
                for i in np.flatnonzero(out_of.to_numpy()):
                    problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': {raw.iloc[i]} is outside "
                                    f"{c.min:g} to {c.max:g}; correct the value")
            if c.allowed:
                not_allowed = num.notna() & ~num.isin(c.allowed)
                for i in np.flatnonzero(not_allowed.to_numpy()):
                    problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': {raw.iloc[i]} is not one of "
                                    f"{', '.join(map(str, c.allowed))}; correct the value")
            out[c.name] = vals.astype("Int64") if c.dtype == "int" else vals.astype(float)
        else:
            vals = raw.where(~empty, "").astype(str).str.strip()
            if c.allowed:
                bad = (vals != "") & ~vals.isin([str(a) for a in c.allowed])
                for i in np.flatnonzero(bad.to_numpy()):
                    problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': {vals.iloc[i]!r} is not one "
                                    f"of {', '.join(map(str, c.allowed))}; correct the value")
            if c.dtype == "sha256":
                bad = (vals != "") & ~vals.str.fullmatch(r"[0-9a-fA-F]{64}")
                for i in np.flatnonzero(bad.to_numpy()):
                    problems.append(f"{name} {_where(i + 2, df, i)}, column '{c.name}': not a SHA-256 hex digest; "
                                    "recompute it with `sha256sum` or leave it empty")
                vals = vals.str.lower()
            out[c.name] = vals
    return out, problems


def _check_table(df: pd.DataFrame, name: str) -> list[str]:
    problems: list[str] = []
    if "vertebra_id" in df.columns:
        dup = df["vertebra_id"].duplicated(keep=False) & (df["vertebra_id"] != "")
        for vid in sorted(set(df.loc[dup, "vertebra_id"])):
            lines = ", ".join(str(i + 2) for i in np.flatnonzero((df["vertebra_id"] == vid).to_numpy()))
            problems.append(f"{name}: vertebra_id {vid!r} appears on lines {lines}; each vertebra needs a unique id")
    if "patient_id" in df.columns:
        for col in ("cohort", "center", "age", "sex"):
            if col not in df.columns:
                continue
            per = df[df["patient_id"] != ""].groupby("patient_id")[col].nunique(dropna=True)
            for pid in per.index[per > 1]:
                vals = ", ".join(sorted(map(str, df.loc[df["patient_id"] == pid, col].dropna().unique())))
                what = "exactly one cohort" if col == "cohort" else f"one {col}"
                problems.append(f"{name}: patient {pid!r} has {col} values {vals}; a patient must have {what} "
                                "(split by patient, never by vertebra)")
    comps = list(astlof.COMPONENTS)
    if all(c in df.columns for c in comps + ["astlof_total", "astlof_class"]):
        sub = df[comps + ["astlof_total", "astlof_class"]]
        ok = sub.notna().all(axis=1).to_numpy()
        expected_total = sub[comps].sum(axis=1)
        for i in np.flatnonzero(ok & (sub["astlof_total"] != expected_total).to_numpy()):
            problems.append(f"{name} {_where(i + 2, df, i)}, column 'astlof_total': {sub['astlof_total'].iloc[i]} but "
                            f"the components sum to {expected_total.iloc[i]}; recompute the total")
        total_ok = ok & sub["astlof_total"].between(0, 8).fillna(False).to_numpy()
        cls = pd.Series(-1, index=sub.index)
        if total_ok.any():
            cls[total_ok] = astlof.astlof_class(sub.loc[total_ok, "astlof_total"].to_numpy(dtype=np.int64))
        for i in np.flatnonzero(total_ok & (sub["astlof_class"] != cls).to_numpy()):
            problems.append(f"{name} {_where(i + 2, df, i)}, column 'astlof_class': {sub['astlof_class'].iloc[i]} but "
                            f"total {sub['astlof_total'].iloc[i]} maps to class {cls.iloc[i]} (<=3: 0, 4: 1, >=5: 2)")
    return problems


def _read_info(path: Path):
    """Geometry of an image file or DICOM series folder without reading its pixels."""
    import SimpleITK as sitk

    if path.is_dir():  # a series' slice spacing needs all its files
        img = read_image(path)
        return img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()


def read_image(path: str | os.PathLike):
    """Read an image file, or a folder holding one DICOM series, with SimpleITK."""
    import SimpleITK as sitk

    path = Path(path)
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        files = reader.GetGDCMSeriesFileNames(str(path))
        if not files:
            raise ValueError(f"{path}: folder holds no DICOM series; point to an image file or a series folder")
        reader.SetFileNames(files)
        return reader.Execute()
    return sitk.ReadImage(str(path))


def geometry_mismatch(a, b, *, spacing_rtol=1e-4, origin_atol=1e-3, direction_atol=1e-4) -> str:
    """Describe how two geometries (size, spacing, origin, direction) differ, or '' if they agree."""
    size_a, sp_a, or_a, dir_a = a
    size_b, sp_b, or_b, dir_b = b
    if tuple(size_a) != tuple(size_b):
        return f"size {tuple(size_a)} vs {tuple(size_b)}"
    if not np.allclose(sp_a, sp_b, rtol=spacing_rtol, atol=0):
        return f"spacing {tuple(np.round(sp_a, 5))} vs {tuple(np.round(sp_b, 5))}"
    if not np.allclose(or_a, or_b, atol=origin_atol, rtol=0):
        return f"origin {tuple(np.round(or_a, 4))} vs {tuple(np.round(or_b, 4))}"
    if not np.allclose(dir_a, dir_b, atol=direction_atol, rtol=0):
        return "direction cosines differ"
    return ""


def _mask_label_problem(arr: np.ndarray, shown: int = 8) -> str:
    """Say which labels a mask holds and what to do, or '' if its voxels are all 0 or 1.

    Parameters
    ----------
    arr : ndarray, any shape
        The mask's voxel values.
    shown : int
        At most this many labels are listed (a resampled float mask may hold thousands).
    """
    if arr.dtype.kind in "biu" and arr.min() >= 0 and arr.max() <= 1:
        return ""  # the usual case, decided without sorting the voxels
    values = np.unique(arr)
    if set(values.tolist()) <= {0, 1}:
        return ""
    listed = ", ".join(f"{v:g}" for v in values[:shown])
    if values.size > shown:
        listed += f", ... ({values.size} values)"
    return (f"holds labels {listed}, not only 0 and 1 (label 1 = ROI, 0 = background); binarize it: mask > 0, "
            "or, for a label map with one label per vertebra, use `ovfkit manifest from-labelmap`")


def _check_files(df: pd.DataFrame, root: Path, name: str) -> list[str]:
    import SimpleITK as sitk

    from ovfkit.provenance import sha256_file

    problems: list[str] = []
    for i in range(len(df)):
        where = f"{name} {_where(i + 2, df, i)}"
        geo = {}
        for col in PATH_COLUMNS:
            if col not in df.columns or df[col].iloc[i] == "":
                continue
            rel = df[col].iloc[i]
            path = root / rel
            if not path.exists():
                problems.append(f"{where}, column '{col}': file {rel!r} does not exist under {root}; fix the path "
                                "(paths are relative to the manifest)")
                continue
            try:
                geo[col] = _read_info(path)
            except Exception as exc:  # noqa: BLE001 - SimpleITK raises RuntimeError with a long text
                msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                problems.append(f"{where}, column '{col}': SimpleITK cannot read {rel!r} ({msg}); convert it to "
                                "NIfTI/NRRD or point to a DICOM series folder")
                continue
            sha_col = f"{col}_sha256"
            if sha_col in df.columns and df[sha_col].iloc[i] and path.is_file():
                if sha256_file(path) != df[sha_col].iloc[i]:
                    problems.append(f"{where}, column '{sha_col}': {rel!r} does not match its SHA-256; the file "
                                    "changed since the manifest was written (restore it or update the hash)")
            if col in MASK_COLUMNS:
                arr = sitk.GetArrayFromImage(read_image(path))  # a view of a temporary would dangle
                if not np.any(arr > 0):
                    problems.append(f"{where}, column '{col}': mask {rel!r} is empty (no voxel > 0); redraw the ROI")
                labels = _mask_label_problem(arr)
                if labels:
                    problems.append(f"{where}, column '{col}': mask {rel!r} {labels}")
        if "image" in geo:
            for col in MASK_COLUMNS:
                if col in geo:
                    diff = geometry_mismatch(geo["image"], geo[col])
                    if diff:
                        problems.append(f"{where}, column '{col}': geometry differs from the image ({diff}); "
                                        "resample the mask onto the image grid")
    return problems


def _separator_problem(path: Path) -> str:
    """Say that the manifest is not comma-separated if its header is one column holding ';' or a tab, else ''.

    Read from the header line alone: the rows of a semicolon-separated file often hold decimal commas,
    which pandas cannot even parse as one column.
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = next(csv.reader(fh), [])
    if len(header) != 1:
        return ""
    for sep in (";", "\t"):
        if sep in header[0]:
            return f"the header is one column containing {sep!r} - write the manifest comma-separated (CSV)"
    return ""


def validate_manifest(path: str | os.PathLike, *, check_files: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Validate a manifest and return the parsed table and every problem found (one line each).

    Parameters
    ----------
    path : path to the manifest CSV
    check_files : bool
        Also open every image and mask (existence, readability, SHA-256, geometry, non-empty mask, mask
        labels 0 and 1 only).
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        return pd.DataFrame(), [f"{name}: manifest file not found; give the path of a manifest CSV"]
    separator = _separator_problem(path)
    if separator:
        return pd.DataFrame(), [f"{name}: {separator}"]
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - pandas raises several parser errors
        return pd.DataFrame(), [f"{name}: not a readable CSV ({str(exc).splitlines()[0]}); save it as comma-separated UTF-8"]
    if raw.empty:
        return raw, [f"{name}: the manifest has no rows; add one row per vertebra"]
    unknown = [c for c in raw.columns if c not in _BY_NAME]
    df, problems = _parse_columns(raw, name)
    problems += [f"{name}: column '{c}' is not in the schema; remove or rename it (see data_manifests/README.md)"
                 for c in unknown]
    problems += _check_table(df, name)
    if check_files and all(c in df.columns for c in ("image", "mask")):
        problems += _check_files(df, path.parent, name)
    return df, problems


def load_manifest(path: str | os.PathLike, *, check_files: bool = True,
                  cohorts: Iterable[str] | None = None) -> pd.DataFrame:
    """Validate and load a manifest; raise :class:`ManifestError` listing every problem.

    Paths in ``image``, ``mask``, ``mask_reader2`` and ``mask_reader1_repeat`` are made absolute. ``cohorts``
    keeps only those cohorts.
    """
    path = Path(path).resolve()
    df, problems = validate_manifest(path, check_files=check_files)
    if problems:
        raise ManifestError(path, problems)
    for col in PATH_COLUMNS:
        if col in df.columns:
            df[col] = [str(path.parent / p) if p else "" for p in df[col]]
    if cohorts is not None:
        df = df[df["cohort"].isin(list(cohorts))]
    return df.set_index("vertebra_id", drop=False).rename_axis(None)
