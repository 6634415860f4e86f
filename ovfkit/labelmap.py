"""A manifest from a vertebra label map: one row and one binary mask per thoracic or lumbar vertebra.

Automatic spine segmentations come as one label map per scan, each vertebra with its own label. Two
label conventions are read:

``totalsegmentator``
    TotalSegmentator v2, task ``total``: labels 27 to 43 are L5, L4, ..., L1, T12, T11, ..., T1 (the
    labels count upwards from the sacrum). Its other labels (organs, ribs, cervical vertebrae, sacrum,
    S1) are left out. TotalSegmentator 1.x numbered its classes differently (L5 = 18); its label maps
    would be misread.
``verse``
    The VerSe challenge: labels 8 to 19 are T1 to T12 and 20 to 24 are L1 to L5; 1 to 7 (cervical) are
    left out. The transitional vertebrae, 25 (L6) and 28 (T13), are left out too, and said so: the
    manifest's levels stop at T1-L5, and whether a sixth lumbar vertebra counts as L5 or a thirteenth
    thoracic one as T12 is the reading centre's convention, so a reader adds that row by hand.

The masks hold the **whole vertebra** as segmented (body, arch and processes), not the vertebral body
that Zhang et al. (2024) and Liu et al. (2025) outline; features from them are not the papers' features
until the masks are cut down to the body.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.manifest import MANIFEST_COLUMNS, _read_info, geometry_mismatch, read_image, write_csv_atomic

_THORACIC = tuple(f"T{i}" for i in range(1, 13))
_LUMBAR = tuple(f"L{i}" for i in range(1, 6))

#: label -> level of every thoracic and lumbar vertebra, per convention
LEVELS: dict[str, dict[int, str]] = {
    "totalsegmentator": dict(zip(range(27, 44), _LUMBAR[::-1] + _THORACIC[::-1])),
    "verse": dict(zip(range(8, 25), _THORACIC + _LUMBAR)),
}
#: label -> name of transitional vertebrae that have no manifest level, per convention
TRANSITIONAL: dict[str, dict[int, str]] = {"totalsegmentator": {}, "verse": {25: "L6", 28: "T13"}}

WHOLE_VERTEBRA_NOTE = ("these masks hold the whole vertebra (body, arch and processes), not the vertebral body "
                       "that the papers outline; cut them down to the body before comparing with their features")
_PATIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def vertebra_labels(labelmap: np.ndarray, convention: str) -> tuple[dict[int, str], list[str]]:
    """Find the thoracic and lumbar vertebrae in a label map.

    Parameters
    ----------
    labelmap : ndarray of int, any shape
        Voxel labels, 0 = background.
    convention : {'totalsegmentator', 'verse'}
        How labels map to levels (see the module docstring).

    Returns
    -------
    levels : dict of int to str
        Label -> level (``T1`` ... ``L5``) of every thoracic or lumbar vertebra present, cranial first.
    notes : list of str
        One line per transitional vertebra left out.

    Raises
    ------
    ValueError
        If ``convention`` is unknown, or no thoracic or lumbar vertebra is present.
    """
    table = _levels(convention)
    values = np.unique(labelmap)
    present = {int(v) for v in values[(values != 0) & (values == np.round(values))]}
    levels = {lab: table[lab] for lab in sorted(present & table.keys(), key=lambda lab: _rank(table[lab]))}
    if not levels:
        found = ", ".join(map(str, sorted(present)[:12])) + (", ..." if len(present) > 12 else "") or "none"
        raise ValueError(f"the label map holds no thoracic or lumbar vertebra in the {convention} convention "
                         f"(labels found: {found}); check --convention (totalsegmentator: 27-43, verse: 8-24)")
    notes = [f"label {lab} ({name}, a transitional vertebra) left out: the manifest's levels are T1-L5; add its "
             f"row by hand under your centre's numbering" for lab, name in TRANSITIONAL[convention].items()
             if lab in present]
    return levels, notes


def _levels(convention: str) -> dict[int, str]:
    """The label -> level table of a convention; an unknown name raises ValueError."""
    if convention not in LEVELS:
        raise ValueError(f"convention {convention!r} is unknown; use one of {', '.join(LEVELS)}")
    return LEVELS[convention]


def _rank(level: str) -> int:
    """Position of a level from T1 (0) down to L5 (16)."""
    return (_THORACIC + _LUMBAR).index(level)


def manifest_from_labelmap(image: str | os.PathLike, labels: str | os.PathLike, convention: str,
                           patient_id: str, out: str | os.PathLike) -> tuple[Path, list[str]]:
    """Write a manifest with one row and one binary mask per thoracic or lumbar vertebra of a label map.

    Parameters
    ----------
    image : path
        The scan the label map was segmented from: a file SimpleITK reads or a DICOM series folder.
    labels : path
        The label map, on the image's voxel grid (same size, spacing, origin and direction).
    convention : {'totalsegmentator', 'verse'}
        How labels map to levels (see the module docstring).
    patient_id : str
        Pseudonymous patient id; letters, digits, '.', '_' and '-' only, since it names the mask files.
    out : path
        Folder to write: ``manifest.csv`` and ``masks/<patient_id>_<level>.nii.gz``. Existing files of
        the same names are replaced.

    Returns
    -------
    manifest : Path
        ``out/manifest.csv``: every schema column; ``patient_id``, ``vertebra_id``, ``level``, ``modality``
        (``ct``, the modality of both conventions), ``image`` (relative to ``out``), ``mask`` and the
        SHA-256 columns filled, the clinical and ASTLOF columns empty for the user to fill.
    notes : list of str
        One line per transitional vertebra left out.

    Raises
    ------
    ValueError
        If a file is missing or unreadable, the grids differ, the patient id cannot name a file, or the
        label map holds no thoracic or lumbar vertebra.
    """
    import SimpleITK as sitk

    from ovfkit.atomic import atomic_output
    from ovfkit.provenance import sha256_file

    if not _PATIENT_ID.fullmatch(patient_id):
        raise ValueError(f"patient id {patient_id!r} cannot name the mask files; use letters, digits, '.', '_' "
                         "and '-' only, starting with a letter or digit")
    _levels(convention)
    image, labels, out = Path(image), Path(labels), Path(out)
    grid = _read(image, "image", _read_info)
    labelmap = _read(labels, "label map", read_image)
    diff = geometry_mismatch(grid, _geometry(labelmap))
    if diff:
        raise ValueError(f"{labels}: the label map's grid differs from the image's ({diff}); resample the label "
                         "map onto the image grid with nearest-neighbour interpolation")
    arr = sitk.GetArrayFromImage(labelmap)
    levels, notes = vertebra_labels(arr, convention)
    common = {"patient_id": patient_id, "modality": "ct",
              "image": Path(os.path.relpath(image.resolve(), out.resolve())).as_posix(),
              "image_sha256": sha256_file(image) if image.is_file() else ""}
    rows = []
    for label, level in levels.items():
        vid = f"{patient_id}_{level}"
        mask = sitk.GetImageFromArray((arr == label).astype(np.uint8))
        mask.SetSpacing(grid[1])
        mask.SetOrigin(grid[2])
        mask.SetDirection(grid[3])
        path = out / "masks" / f"{vid}.nii.gz"
        with atomic_output(path, suffix=".nii.gz") as tmp:
            sitk.WriteImage(mask, str(tmp))
        rows.append({**common, "vertebra_id": vid, "level": level, "mask": f"masks/{vid}.nii.gz",
                     "mask_sha256": sha256_file(path)})
    manifest = out / "manifest.csv"
    write_csv_atomic(pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).fillna(""), manifest)
    return manifest, notes


def _read(path: Path, what: str, reader):
    """Read ``path`` with ``reader``; a missing or unreadable file raises ValueError with one line."""
    if not path.exists():
        raise ValueError(f"{path}: {what} not found; give the path of an existing file or DICOM series folder")
    try:
        return reader(path)
    except RuntimeError as exc:  # SimpleITK's long multi-line text
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: SimpleITK cannot read the {what} ({first}); convert it to NIfTI or NRRD") from exc


def _geometry(img) -> tuple:
    """Size, spacing, origin and direction of a SimpleITK image."""
    return img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection()
