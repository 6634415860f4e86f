"""Hand-crafted radiomics with PyRadiomics: one case, or a whole manifest in parallel with a cache.

Settings follow PyRadiomics' parameter-file structure (``setting``, ``imageType``, ``featureClass``,
``voxelSetting``). ovfkit adds one optional top-level section that it removes before PyRadiomics
sees the settings::

    ovfkit:
      roi: largest_sagittal   # or "volume" (default): which part of a 3-D image to extract from

Feature names are PyRadiomics' own (``original_firstorder_Mean``, ...).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

ROI_MODES = ("volume", "largest_sagittal")
#: Layout of a cached case (part of the cache key): long-format Parquet (feature, value) since 2; 3 drops the
#: entries of commits c67af7a and 516089a, whose shared shape features could be wrong with a resegmentation range,
#: with ``interpolator: None`` or with an empty featureClass.
CACHE_FORMAT = 3


def builtin_params(name: str) -> Path:
    """Path of a parameter file shipped with ovfkit (``ovfkit/params/<name>.yaml``)."""
    path = Path(str(resources.files("ovfkit") / "params" / f"{name}.yaml"))
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"no shipped parameter file {name!r}; choose one of {', '.join(shipped)}")
    return path


def load_settings(settings) -> dict:
    """Settings as a dict: from a dict (copied), a YAML path, or the name of a shipped file."""
    import yaml

    if isinstance(settings, dict):
        return copy.deepcopy(settings)
    if isinstance(settings, (str, os.PathLike)):
        path = Path(settings)
        if not path.suffix and not path.exists():
            path = builtin_params(str(settings))
        if not path.is_file():
            raise ValueError(f"parameter file {settings!s} not found; give a YAML path or a shipped name")
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a parameter file must be a mapping with setting/imageType/featureClass")
        return data
    raise TypeError(f"settings must be a dict or a path, got {type(settings).__name__}")


def _split_settings(settings) -> tuple[dict, str]:
    params = load_settings(settings)
    own = params.pop("ovfkit", None) or {}
    roi = own.get("roi", "volume")
    if roi not in ROI_MODES:
        raise ValueError(f"ovfkit.roi={roi!r} is not one of {', '.join(ROI_MODES)}")
    unknown = set(own) - {"roi"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in the 'ovfkit' section; only 'roi' is recognised")
    types = params.get("imageType") or {}
    if not isinstance(types, dict):
        raise ValueError(f"imageType is {types!r}, not a mapping; write e.g. `imageType: {{Original: {{}}}}`")
    for name, entry in types.items():
        if not isinstance(entry, dict):
            raise ValueError(f"imageType {name} is {entry!r}, not a mapping; write `{name}: {{}}` for its defaults")
    return params, roi


def _extractor(params: dict):
    """One extractor per settings and process (building one validates the schema: about 17 ms; the cache holds
    every settings a sensitivity study's case job cycles through, with the partial ones of :func:`extract_shared`)."""
    return _extractor_from_json(json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _extractor_from_json(blob: str):
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    params = json.loads(blob)
    # ovfkit returns features only: PyRadiomics' diagnostics (image and mask hashes, ROI statistics) change no
    # feature value and cost 5 to 10% of a filtered extraction, up to 40% of an original-image one (a CT vertebral
    # body on 2 mm voxels; benchmarks/radiomics.py).
    params["setting"] = {**(params.get("setting") or {}), "additionalInfo": False}
    return featureextractor.RadiomicsFeatureExtractor(params)


def _as_image(obj):
    import SimpleITK as sitk

    from ovfkit.manifest import read_image

    if isinstance(obj, sitk.Image):
        return obj
    return read_image(obj)


def extract_case(image, mask, settings) -> pd.Series:
    """Extract PyRadiomics features for one ROI.

    Parameters
    ----------
    image, mask : path or SimpleITK.Image
        Any format SimpleITK reads (or a DICOM series folder); same geometry.
    settings : dict or path
        PyRadiomics parameter structure (see module docstring).

    Returns
    -------
    Series of float, indexed by PyRadiomics feature name (PyRadiomics' diagnostics are not computed).
    """
    feats = _execute(_as_image(image), _as_image(mask), settings)
    _check_image_types(feats, load_settings(settings))
    return pd.Series(feats, dtype=float)


def _execute(img, msk, settings) -> dict:
    """PyRadiomics' features of one ROI (:func:`extract_case` without its check that every image type produced
    features: a part of :func:`extract_shared` is checked once assembled)."""
    from ovfkit.imaging import largest_slice

    params, roi = _split_settings(settings)
    if roi == "largest_sagittal" and img.GetDimension() == 3:
        img, msk, _ = largest_slice(img, msk, axis=0)
    _check_label(msk, params)
    _check_dimensionality(img, msk, params)
    result = _extractor(params).execute(img, msk)
    return {k: float(v) for k, v in result.items()}


def _check_dimensionality(img, msk, params: dict) -> None:
    """PyRadiomics' 2-D traps, refused with a message that says what to do.

    * ``force2D`` on a 2-D image: PyRadiomics takes the row axis as out-of-plane and computes texture
      along single rows (GLSZM equals GLRLM, the wavelet splits one axis only).
    * ``shape2D`` on a 3-D mask spanning several slices: PyRadiomics fails with an unformatted message.
    """
    import SimpleITK as sitk

    setting = params.get("setting") or {}
    if img.GetDimension() == 2 and setting.get("force2D"):
        raise ValueError("force2D is set but the image is 2-D: PyRadiomics would compute 1-D texture along "
                         "rows; remove force2D/force2Ddimension (2-D images are extracted in 2-D natively)")
    if img.GetDimension() == 3 and "shape2D" in (params.get("featureClass") or {}):
        axis = int(setting.get("force2Ddimension", 0))  # numpy axis of the [z, y, x] array
        extent = int(np.any(sitk.GetArrayViewFromImage(msk) > 0, axis=tuple(a for a in range(3) if a != axis)).sum())
        if extent > 1:
            raise ValueError(f"shape2D needs an ROI on one slice, but the 3-D mask spans {extent} slices along "
                             f"axis {axis}; use 'shape' (3-D) or extract one slice (ovfkit: roi: largest_sagittal)")


_IMAGE_TYPE_PREFIX = {"Original": "original", "LoG": "log-sigma", "Wavelet": "wavelet", "Square": "square",
                      "SquareRoot": "squareroot", "Logarithm": "logarithm", "Exponential": "exponential",
                      "Gradient": "gradient", "LBP2D": "lbp-2D", "LBP3D": "lbp-3D"}


def _check_image_types(feats: dict, params: dict) -> None:
    """Fail if a requested image type produced no feature (PyRadiomics skips some with only a log
    warning, e.g. LoG on an image smaller than the filter in one dimension, such as a single slice)."""
    prefixes = {k.split("_", 1)[0] for k in feats}
    for name in (params.get("imageType") or {}):
        prefix = _IMAGE_TYPE_PREFIX.get(name, name.lower())
        if not any(p.startswith(prefix) for p in prefixes):
            raise ValueError(f"image type {name} produced no features (PyRadiomics skipped it, for LoG usually "
                             "because the image is too small for the sigma in one dimension, e.g. one slice); "
                             "extract 2-D images natively or remove the image type")


def _check_label(mask, params: dict) -> None:
    """A mask whose ROI label is not the configured one fails with a message that says what to set."""
    import SimpleITK as sitk

    label = params.get("setting", {}).get("label", 1)
    values = np.unique(sitk.GetArrayViewFromImage(mask))
    present = [int(v) for v in values if v != 0]
    if label not in present:
        if not present:
            raise ValueError("mask is empty (no voxel > 0); redraw the ROI")
        raise ValueError(f"mask holds label(s) {present} but the settings extract label {label}; "
                         f"set `setting: label: {present[0]}` in the parameter file")


def settings_key(settings) -> str:
    """Hash of the settings and the PyRadiomics version (part of every cache key)."""
    import radiomics

    params, roi = _split_settings(settings)
    blob = json.dumps({"params": params, "roi": roi, "pyradiomics": radiomics.__version__,
                       "cache_format": CACHE_FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_path(cache_dir: str | None, key: str) -> Path | None:
    return Path(cache_dir) / key[:2] / f"{key}.parquet" if cache_dir else None


def _read_cached(path: Path) -> pd.Series:
    """A cached case: long-format Parquet (feature, value), about 1 ms to read (a one-row wide table
    with hundreds of columns takes about 30 ms, all of it metadata)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return pd.Series(table.column("value").to_numpy(), index=table.column("feature").to_pylist(), dtype=float)


def _write_cached(feats: pd.Series, path: Path) -> None:
    from ovfkit.atomic import atomic_output

    with atomic_output(path) as tmp:
        pd.DataFrame({"feature": feats.index.astype(str), "value": feats.to_numpy(float)}).to_parquet(tmp, index=False)


#: Image types whose features :func:`extract_shared` reuses across settings (each is computed on its own from the
#: preprocessed image; LoG per sigma).
SHARED_IMAGE_TYPES = ("Original", "LoG", "Wavelet")
_SHAPE_CLASSES = ("shape", "shape2D")
#: Settings that change how grey levels are binned, never the ROI's shape features.
BIN_SETTINGS = ("binWidth", "binCount")
#: Settings that change the grey levels but not the ROI's shape features when there is no resegmentation range
#: (the mask is resampled by nearest neighbour; with a range, PyRadiomics crops the shape's mask to the bounding box
#: of the resegmented ROI, which the grey levels decide). An ``interpolator`` of None turns resampling off: kept.
GREY_LEVEL_SETTINGS = ("interpolator", "normalize", "normalizeScale", "removeOutliers", "resegmentMode")


def _is_shape(name: str) -> bool:
    return name.split("_", 2)[1] in _SHAPE_CLASSES


def _image_parts(params: dict):
    """The image types of ``params`` as parts PyRadiomics computes independently from one preprocessed image:
    ``(key, imageType entry, column prefix)`` in PyRadiomics' order (image types sorted by name, as the extractor
    receives them; LoG per sigma in the file's order). None when some image type is not in
    :data:`SHARED_IMAGE_TYPES`, LoG has no sigma list of its own, or there is none (PyRadiomics' default)."""
    types = params.get("imageType")
    if not isinstance(types, dict) or not types or any(t not in SHARED_IMAGE_TYPES for t in types):
        return None
    if "sigma" in (params.get("setting") or {}) or any(not isinstance(v, dict) for v in types.values()):
        return None  # the latter refused with a clear message by extract_case
    parts = []
    for name in sorted(types):
        entry = types[name]
        if name == "LoG":
            if not isinstance(entry.get("sigma"), list) or not entry["sigma"]:
                return None
            for sigma in entry["sigma"]:
                one = {**entry, "sigma": [sigma]}
                prefix = "log-sigma-%s-mm-3D_" % str(sigma).replace(".", "-")
                parts.append((f"LoG:{json.dumps(one, sort_keys=True)}", {"LoG": one}, prefix))
        else:
            prefix = "original_" if name == "Original" else "wavelet"
            parts.append((f"{name}:{json.dumps(entry, sort_keys=True)}", {name: entry}, prefix))
    return parts


def _shape_key(params: dict) -> str:
    """What the shape features of ``params`` depend on: every setting but :data:`BIN_SETTINGS` and, without a
    resegmentation range, :data:`GREY_LEVEL_SETTINGS`."""
    setting = dict(params.get("setting") or {})
    dropped = BIN_SETTINGS if setting.get("resegmentRange") is not None else BIN_SETTINGS + GREY_LEVEL_SETTINGS
    for name in dropped:
        if name != "interpolator" or setting.get(name) is not None:
            setting.pop(name, None)
    classes = params.get("featureClass") or {}
    shape = {k: classes[k] for k in _SHAPE_CLASSES if k in classes} if classes else "every class"  # PyRadiomics'
    rest = {k: v for k, v in params.items() if k not in ("setting", "imageType", "featureClass")}
    return json.dumps({**rest, "setting": setting, "featureClass": shape}, sort_keys=True, default=str)


def extract_shared(image, mask, settings_list, known=()) -> list:
    """Extract one ROI with several settings, reading it once and computing each shared part once.

    PyRadiomics computes each image type (the original image, each LoG sigma, the wavelet bands) on its own from
    the same preprocessed image, so settings that differ only in their image types share the parts they have in
    common; the shape features are shared by settings that differ only in :data:`BIN_SETTINGS` or, without a
    resegmentation range, :data:`GREY_LEVEL_SETTINGS`. The result is the same as one :func:`extract_case` per
    settings: values, names and their order
    (``tests/test_radiomics.py::test_extract_shared_equals_one_extraction_per_settings``). Image types other
    than :data:`SHARED_IMAGE_TYPES` are extracted afresh for each settings.

    Parameters
    ----------
    image, mask : str, path or SimpleITK.Image
        As :func:`extract_case`.
    settings_list : sequence of dict, str or path
        Parameter structures or files (:func:`load_settings`).
    known : sequence of (dict, Series), optional
        Settings and the features of this ROI extracted with them before (a cache's), whose parts the settings
        may share.

    Returns
    -------
    list of tuple, one ``(features, error, seconds)`` per settings: a Series as :func:`extract_case` returns
    it and None, or None and the error's one-line reason (``"ValueError: ..."``); ``seconds`` is the time spent
    on that settings (reading the ROI is not counted; a part is paid for by the first settings that needs it).
    """
    if not settings_list:
        return []
    img, msk = _as_image(image), _as_image(mask)
    done: dict = {}  # ("parts", settings but imageType) -> {part: features}; ("shape", _shape_key) -> features
    for settings, feats in known:
        params = load_settings(settings)
        parts = _image_parts(params)
        if parts is not None:
            _remember(params, parts, feats, done, [key for key, _, _ in parts], shape=True)
    out = []
    for settings in settings_list:
        start = time.perf_counter()
        try:
            feats = _extract_reusing(img, msk, load_settings(settings), done)
            out.append((feats, None, time.perf_counter() - start))
        except Exception as exc:  # noqa: BLE001 - PyRadiomics raises ValueError/RuntimeError/IndexError
            out.append((None, _reason(exc), time.perf_counter() - start))
    return out


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else type(exc).__name__}"


def _parts_key(params: dict) -> tuple:
    """Where the image-type parts of ``params`` are kept: settings that differ only in ``imageType`` share it."""
    return "parts", json.dumps({k: v for k, v in params.items() if k != "imageType"}, sort_keys=True, default=str)


def _remember(params: dict, parts: list, feats, done: dict, keys, shape: bool) -> None:
    """Keep the features of ``parts`` named in ``keys`` (and, with ``shape``, the shape features) for settings
    that share them."""
    have = done.setdefault(_parts_key(params), {})
    if shape:
        done[("shape", _shape_key(params))] = {k: v for k, v in feats.items() if _is_shape(k)}
    for key, _, prefix in parts:
        if key in keys:
            have[key] = {k: v for k, v in feats.items() if k.startswith(prefix) and not _is_shape(k)}


def _extract_reusing(img, msk, params: dict, done: dict) -> pd.Series:
    parts = _image_parts(params)
    if parts is None:
        return extract_case(img, msk, params)
    have = done.setdefault(_parts_key(params), {})
    shape = ("shape", _shape_key(params))
    missing = {key: entry for key, entry, _ in parts if key not in have}
    if missing:
        types: dict = {}
        for entry in missing.values():
            for name, value in entry.items():
                if name == "LoG" and "LoG" in types:
                    types["LoG"] = {**types["LoG"], "sigma": types["LoG"]["sigma"] + value["sigma"]}
                else:
                    types[name] = value
        call = {**params, "imageType": types}
        classes = params.get("featureClass") or {}
        shape_known = shape in done and any(k not in _SHAPE_CLASSES for k in classes)  # empty featureClass: all
        if shape_known:
            call["featureClass"] = {k: v for k, v in classes.items() if k not in _SHAPE_CLASSES}
        _remember(params, parts, _execute(img, msk, call), done, missing, shape=not shape_known)
    result = dict(done[shape])
    for key, _, _ in parts:
        result.update(have[key])
    _check_image_types(result, params)  # on the whole: PyRadiomics may skip one LoG sigma of several
    return pd.Series(result, dtype=float)


def _case_job(vid: str, image: str, mask: str, todo: list, cache_dir: str | None, known=()):
    """One case's extraction for the settings in ``todo`` (``(i, settings, cache key)``), each cached on its own;
    ``known``: this case's cached ``(settings, features)`` (:func:`extract_shared`)."""
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    try:
        results = extract_shared(image, mask, [settings for _, settings, _ in todo], known)
    except Exception as exc:  # noqa: BLE001 - reading the image or the mask failed: every settings fails
        results = [(None, _reason(exc), 0.0)] * len(todo)
    out = []
    for (i, _, key), (feats, err, seconds) in zip(todo, results):
        path = _cache_path(cache_dir, key)
        if feats is not None and path is not None:
            _write_cached(feats, path)
        out.append((i, feats, err, seconds))
    return vid, out


def _run_dask(jobs, scheduler, progress: bool):
    """Run case jobs on a Dask cluster; results in job order."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError("a Dask scheduler needs the dask extra: pip install 'ovfkit[dask]'") from None
    from tqdm.auto import tqdm

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futures = [client.submit(_case_job, *job, pure=False) for job in jobs]
        order = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(futures)
        for fut in tqdm(as_completed(futures), total=len(futures), desc="radiomics (dask)", disable=not progress,
                        unit="case"):
            results[order[fut.key]] = fut.result()
        return results
    finally:
        if own:
            client.close()


def extract_manifest(manifest: pd.DataFrame, settings, *, n_jobs: int = -1, cache_dir=None,
                     progress: bool = True, mask_column: str = "mask", scheduler=None) -> pd.DataFrame:
    """Extract features for every row of a loaded manifest (see :func:`ovfkit.manifest.load_manifest`).

    Parameters
    ----------
    manifest : DataFrame
        Needs ``vertebra_id``, ``image`` and ``mask_column`` (absolute paths); ``image_sha256`` and
        ``<mask_column>_sha256`` are used for the cache key when present.
    settings : dict or path
    n_jobs : int
        Worker processes (-1: all cores); each worker runs SimpleITK with one thread.
    cache_dir : path, optional
        Per-case Parquet cache keyed by image content, mask content, settings and PyRadiomics version.
    mask_column : str
        ``mask`` or ``mask_reader2``; rows with an empty mask path are skipped.
    scheduler : dask.distributed.Client or str, optional
        Run the cases on a Dask cluster (a client, or a scheduler address such as
        ``tcp://10.0.0.1:8786``) instead of local processes; the table is the same. Paths and the
        cache folder must be reachable from the workers.

    Returns
    -------
    DataFrame, shape (n_cases, n_features), indexed by ``vertebra_id`` in manifest order. Cases that
    failed are absent; ``result.attrs["failures"]`` lists them as ``{"vertebra_id", "reason"}``, and
    ``result.attrs["seconds"]`` is the extraction time summed over the cases computed (cache hits cost none).
    Raises ``RuntimeError`` naming the reasons when every case fails.
    """
    return extract_manifest_many(manifest, [settings], n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                                 mask_column=mask_column, scheduler=scheduler)[0]


def extract_manifest_many(manifest: pd.DataFrame, settings_list, *, n_jobs: int = -1, cache_dir=None,
                          progress: bool = True, mask_column: str = "mask", scheduler=None) -> list:
    """:func:`extract_manifest` for several settings at once, each case read once (:func:`extract_shared`; the
    settings found in the cache for a case lend their parts to the others).

    Parameters
    ----------
    manifest : DataFrame
        As :func:`extract_manifest`.
    settings_list : sequence of dict, str or path
        Parameter structures or files (:func:`load_settings`).
    n_jobs : int
    cache_dir : path, optional
    progress : bool
    mask_column : str
    scheduler : dask.distributed.Client or str, optional
        As :func:`extract_manifest`; each settings is cached under its own key.

    Returns
    -------
    list of DataFrame, one per settings, each as :func:`extract_manifest` returns it, with
    ``attrs["seconds"]``: the extraction time summed over the cases computed, in the workers (cache hits cost
    none; reading a case is not counted; a part shared by several settings counts for the first that needs it).
    Raises ``RuntimeError`` naming the settings and the reasons when every case fails for one settings.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from ovfkit.provenance import content_digest

    params = [load_settings(s) for s in settings_list]
    if not params:
        return []
    skeys = [settings_key(p) for p in params]
    cache = str(cache_dir) if cache_dir else None
    rows = manifest[manifest[mask_column].astype(str) != ""]
    ids = list(rows["vertebra_id"])
    found = [{} for _ in params]  # per settings: vertebra id -> (features, error)
    seconds = [0.0] * len(params)
    jobs = []
    for _, r in rows.iterrows():
        img_d = content_digest(r["image"], r.get("image_sha256", "") or "")
        msk_d = content_digest(r[mask_column], r.get(f"{mask_column}_sha256", "") or "")
        todo, known = [], []
        for i, (p, skey) in enumerate(zip(params, skeys)):
            key = hashlib.sha256(f"{img_d}:{msk_d}:{skey}".encode()).hexdigest()
            path = _cache_path(cache, key)
            if path is not None and path.exists():
                feats = _read_cached(path)
                found[i][r["vertebra_id"]] = (feats, None)
                known.append((p, feats))
            else:
                todo.append((i, p, key))
        if todo:
            jobs.append((r["vertebra_id"], r["image"], r[mask_column], todo, cache, known))
    if not jobs:
        computed = []
    elif scheduler is not None:
        computed = _run_dask(jobs, scheduler, progress)
    else:
        out = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_case_job)(*job) for job in jobs)
        computed = list(tqdm(out, total=len(jobs), desc="radiomics", disable=not progress, unit="case"))
    for vid, results in computed:
        for i, feats, err, secs in results:
            found[i][vid] = (feats, err)
            seconds[i] += secs
    tables = []
    for i, got in enumerate(found):
        ok = {vid: got[vid][0] for vid in ids if got[vid][1] is None}
        failures = [{"vertebra_id": vid, "reason": got[vid][1]} for vid in ids if got[vid][1] is not None]
        if ids and not ok:
            reasons = "; ".join(f"{f['vertebra_id']}: {f['reason']}" for f in failures[:5])
            which = f" with settings {i + 1} of {len(found)}" if len(found) > 1 else ""
            raise RuntimeError(f"radiomics failed for all {len(failures)} cases{which} ({reasons})")
        table = pd.DataFrame.from_dict(ok, orient="index").reindex(list(ok))
        table.index.name = "vertebra_id"
        table = table.astype(float)
        table.attrs["failures"] = failures
        table.attrs["seconds"] = seconds[i]
        tables.append(table)
    return tables


def feature_families(columns) -> pd.DataFrame:
    """Split PyRadiomics feature names into image type, feature class and feature.

    ``log-sigma-1-0-mm-3D_glcm_Contrast`` -> (``log-sigma-1-0-mm``, ``glcm``, ``Contrast``); the
    ``-3D`` suffix PyRadiomics puts on every LoG name, 2-D images included, is dropped.
    """
    rows = []
    for name in columns:
        parts = str(name).split("_", 2)
        if len(parts) != 3:
            raise ValueError(f"{name!r} is not a PyRadiomics feature name (imagetype_class_feature)")
        image_type = parts[0][:-3] if parts[0].endswith("-3D") else parts[0]
        rows.append({"feature_name": name, "image_type": image_type, "feature_class": parts[1], "feature": parts[2]})
    return pd.DataFrame(rows)


#: ovfkit's default parameter file per modality (``ovfkit features radiomics``), chosen to transport across
#: centers by the radiomics chapter's sensitivity study (:mod:`ovfkit.transport`).
DEFAULT_PARAMS = {"xray": "xray", "ct": "ct_volume"}
#: The papers' extraction per modality, which the ASTLOF part of the book repeats: liu2025's largest sagittal
#: slice on CT.
PAPER_PARAMS = {"xray": "xray", "ct": "ct_sagittal"}


def default_params(modality: str, *, paper: bool = False) -> str:
    """The shipped parameter file of a modality: ovfkit's default, or with ``paper=True`` the papers' own.

    ovfkit's default for CT is the 3-D vertebral body on 2 mm isotropic voxels (``ct_volume``), the papers' the
    largest sagittal slice at 0.8 mm (``ct_sagittal``); on X-ray both are ``xray``.
    """
    names = PAPER_PARAMS if paper else DEFAULT_PARAMS
    if modality not in names:
        raise ValueError(f"modality {modality!r} is not one of {', '.join(names)}")
    return names[modality]
