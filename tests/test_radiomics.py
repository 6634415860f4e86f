import logging

import numpy as np

import pandas as pd
import pytest
import SimpleITK as sitk
from radiomics import featureextractor

from ovfkit import radiomics
from ovfkit.manifest import load_manifest


@pytest.fixture(scope="module")
def xray_manifest(tiny_cohorts):
    return load_manifest(tiny_cohorts["xray"])


@pytest.mark.parametrize("modality, params", [("xray", "baseline_xray"), ("ct", "ct_volume")])
def test_extract_case_equals_pyradiomics_itself(tiny_cohorts, modality, params):
    # PyRadiomics with its diagnostics on (its default), against ovfkit, which skips them: the same values
    row = load_manifest(tiny_cohorts[modality]).iloc[0]
    settings = radiomics.load_settings(params)
    ours = radiomics.extract_case(row["image"], row["mask"], settings)
    settings.pop("ovfkit", None)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ref = featureextractor.RadiomicsFeatureExtractor(settings).execute(row["image"], row["mask"])
    assert any(k.startswith("diagnostics_") for k in ref)
    ref = pd.Series({k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")})
    pd.testing.assert_series_equal(ours.sort_index(), ref.sort_index(), check_exact=True)
    assert "original_glcm_Contrast" in ours.index


def test_extractor_skips_pyradiomics_diagnostics():
    # the diagnostics (image and mask hashes, ROI statistics) cost up to 40% of an original-image extraction
    settings = radiomics.load_settings("ct_volume")
    settings.pop("ovfkit", None)
    assert radiomics._extractor(settings).settings["additionalInfo"] is False


def test_largest_sagittal_slice_is_2d_and_holds_the_largest_mask_area(tiny_cohorts):
    from ovfkit.imaging import largest_slice

    row = load_manifest(tiny_cohorts["ct"]).iloc[0]
    img, msk = sitk.ReadImage(row["image"]), sitk.ReadImage(row["mask"])
    img2, msk2, idx = largest_slice(img, msk, axis=0)
    arr = sitk.GetArrayFromImage(msk)
    assert img2.GetDimension() == 2 and img2.GetSpacing() == (img.GetSpacing()[1], img.GetSpacing()[2])
    assert sitk.GetArrayFromImage(msk2).sum() == arr[:, :, idx].sum() == arr.sum(axis=(0, 1)).max()


def test_extract_manifest_caches_and_reports_failures(xray_manifest, tmp_path):
    m = xray_manifest.iloc[:3].copy()
    bad = tmp_path / "empty_mask.nii.gz"
    img = sitk.ReadImage(m.iloc[2]["mask"])
    sitk.WriteImage(img * 0, str(bad))
    m.iloc[2, m.columns.get_loc("mask")] = str(bad)
    m.iloc[2, m.columns.get_loc("mask_sha256")] = ""
    first = radiomics.extract_manifest(m, "baseline_xray", n_jobs=1, cache_dir=tmp_path / "cache", progress=False)
    assert list(first.index) == list(m["vertebra_id"][:2])
    assert [f["vertebra_id"] for f in first.attrs["failures"]] == [m.iloc[2]["vertebra_id"]]
    assert len(list((tmp_path / "cache").rglob("*.parquet"))) == 2
    again = radiomics.extract_manifest(m.iloc[:2], "baseline_xray", n_jobs=1, cache_dir=tmp_path / "cache",
                                       progress=False)
    pd.testing.assert_frame_equal(first, again, check_exact=True)


def _with(base: str, **change) -> dict:
    params = radiomics.load_settings(base)
    for section, value in change.items():
        params[section] = value
    return params


_RANGE = {"resampledPixelSpacing": [2.0, 2.0, 2.0], "resegmentRange": [-200, 1500], "label": 1}
_NO_RANGE = {"resampledPixelSpacing": [2.0, 2.0, 2.0], "label": 1}
# settings sharing image types with the first (the original image, LoG sigma 3, the wavelet bands), then others
# with other settings: other bins (same shape), another interpolator with the HU range (keyed apart: with a range
# the grey levels may crop the shape's mask), grey levels without the range (the same shape as each other), 3 mm
# voxels, two HU ranges with resegmentShape, no interpolator (no resampling), an image type never shared (Square),
# and a label that fails; on X-ray, every feature class (featureClass empty) and then first-order ones alone
SHARED_CASES = {
    "ct": ("ct_volume", [
        "ct_volume",
        _with("ct_volume", imageType={"Original": {}}),
        _with("ct_volume", imageType={"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}}),
        _with("ct_volume", imageType={"Wavelet": {}, "LoG": {"sigma": [5.0]}}),
        _with("ct_volume", imageType={"Original": {}}, setting={**_RANGE, "interpolator": "sitkLinear", "binWidth": 25}),
        _with("ct_volume", imageType={"Original": {}, "LoG": {"sigma": [3.0]}},
              setting={**_RANGE, "interpolator": "sitkBSpline", "binCount": 32}),
        _with("ct_volume", imageType={"Original": {}},
              setting={**_NO_RANGE, "interpolator": "sitkBSpline", "binWidth": 25, "normalize": True,
                       "normalizeScale": 100}),
        _with("ct_volume", imageType={"Original": {}}, setting={**_NO_RANGE, "interpolator": "sitkLinear",
                                                               "binCount": 32}),
        _with("ct_volume", imageType={"Original": {}}, setting={"resampledPixelSpacing": [3.0, 3.0, 3.0],
                                                               "binCount": 16, "label": 1}),
        _with("ct_volume", imageType={"Original": {}}, setting={**_RANGE, "binCount": 32, "resegmentShape": True}),
        _with("ct_volume", imageType={"Original": {}},
              setting={**_RANGE, "binCount": 32, "resegmentRange": [150, 1500], "resegmentShape": True}),
        _with("ct_volume", imageType={"Original": {}}, setting={**_NO_RANGE, "interpolator": None, "binCount": 32}),
        _with("ct_volume", imageType={"Original": {}, "Square": {}}),
        _with("ct_volume", setting={**_NO_RANGE, "binCount": 32, "label": 2}),
    ]),
    "xray": ("baseline_xray", [
        "xray",
        _with("xray", imageType={"Original": {}}),
        _with("xray", imageType={"Original": {}, "LoG": {"sigma": [1.0]}}),
        "baseline_xray",
        _with("baseline_xray", featureClass={}),
        _with("baseline_xray", featureClass={"firstorder": None}),
    ]),
}


@pytest.mark.parametrize("modality, row", [("ct", 0), ("ct", 1), ("xray", 0), ("xray", 1)])
def test_extract_shared_equals_one_extraction_per_settings(tiny_cohorts, modality, row):
    row = load_manifest(tiny_cohorts[modality]).iloc[row]
    _, settings_list = SHARED_CASES[modality]
    shared = radiomics.extract_shared(row["image"], row["mask"], settings_list)
    assert len(shared) == len(settings_list)
    for settings, (feats, err, seconds) in zip(settings_list, shared):
        try:
            own = radiomics.extract_case(row["image"], row["mask"], settings)
        except ValueError as exc:
            assert feats is None and err.startswith("ValueError: ") and str(exc).splitlines()[0] in err
            continue
        assert err is None and seconds >= 0
        pd.testing.assert_series_equal(feats, own, check_exact=True)  # values, names and their order
    assert sum(err is not None for _, err, _ in shared) == (modality == "ct")  # the label-2 settings


def test_extract_shared_computes_a_shared_part_once(tiny_cohorts, monkeypatch):
    row = load_manifest(tiny_cohorts["ct"]).iloc[0]
    calls = []
    real = radiomics._execute
    monkeypatch.setattr(radiomics, "_execute",
                        lambda i, m, s: calls.append((s["imageType"], "shape" in s["featureClass"])) or real(i, m, s))
    radiomics.extract_shared(row["image"], row["mask"], SHARED_CASES["ct"][1][:11])
    assert calls == [({"LoG": {"sigma": [3.0, 5.0]}, "Original": {}, "Wavelet": {}}, True),
                     ({"LoG": {"sigma": [1.0, 2.0]}}, False),  # original image alone, LoG 5 + wavelet: nothing left
                     ({"Original": {}}, False),  # bin width instead of bin count: the same shape
                     ({"LoG": {"sigma": [3.0]}, "Original": {}}, True),  # B-spline with the HU range
                     ({"Original": {}}, True),  # no range: grey levels leave the shape ...
                     ({"Original": {}}, False),  # ... as the next settings (other grey levels) has it
                     ({"Original": {}}, True),  # 3 mm voxels
                     ({"Original": {}}, True),  # resegmentShape with -200..1500 HU ...
                     ({"Original": {}}, True)]  # ... and with 150..1500 HU: the range decides the shape


def test_extract_shared_keeps_apart_the_shapes_a_resegmentation_range_crops(tiny_cohorts):
    # PyRadiomics crops the shape's mask to the bounding box of the resegmented ROI even without resegmentShape
    row = load_manifest(tiny_cohorts["ct"]).iloc[0]
    img, msk = sitk.ReadImage(row["image"]), sitk.ReadImage(row["mask"])
    arr = sitk.GetArrayFromImage(img)
    z = np.flatnonzero((sitk.GetArrayViewFromImage(msk) > 0).any(axis=(1, 2)))
    arr[z[len(z) // 2]:] = 3000  # the ROI's upper half above 1500 HU: the resegmented ROI loses it
    hot = sitk.GetImageFromArray(arr)
    hot.CopyInformation(img)
    settings = [_with("ct_volume", imageType={"Original": {}}, setting={**_RANGE, "binCount": 32}),
                _with("ct_volume", imageType={"Original": {}}, setting={**_RANGE, "binCount": 32, "normalize": True}),
                _with("ct_volume", imageType={"Original": {}}, setting={**_RANGE, "binCount": 32,
                                                                       "resegmentMode": "sigma"}),
                _with("ct_volume", imageType={"Original": {}}, setting={**_NO_RANGE, "binCount": 32})]
    own = [radiomics.extract_case(hot, msk, s) for s in settings]
    shape = [c for c in own[0].index if radiomics._is_shape(c)]
    assert not np.allclose(own[0][shape], own[1][shape])  # z-scores all within -200..1500: nothing cut
    assert not np.allclose(own[0][shape], own[2][shape])  # within -200..1500 standard deviations: nothing cut
    assert not np.allclose(own[0][shape], own[3][shape])
    for (feats, err, _), ref in zip(radiomics.extract_shared(hot, msk, settings), own):
        assert err is None
        pd.testing.assert_series_equal(feats, ref, check_exact=True)


def test_extract_shared_refuses_a_log_pyradiomics_skipped_as_extract_case_does(xray_manifest):
    img, msk = _xray_case(xray_manifest)
    img, msk = sitk.JoinSeries(img), sitk.JoinSeries(msk)  # one slice: PyRadiomics skips LoG with a log message
    settings = [{"setting": {"force2D": True, "force2Ddimension": 0}, "imageType": {"Original": {}},
                 "featureClass": {"firstorder": None}}]
    settings.append({**settings[0], "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}}})
    (ok, _, _), (feats, err, _) = radiomics.extract_shared(img, msk, settings)
    pd.testing.assert_series_equal(ok, radiomics.extract_case(img, msk, settings[0]), check_exact=True)
    with pytest.raises(ValueError, match="image type LoG produced no features") as exc:
        radiomics.extract_case(img, msk, settings[1])
    assert feats is None and err == f"ValueError: {str(exc.value).splitlines()[0]}"


def test_extract_shared_keeps_a_log_whose_other_sigma_pyradiomics_skipped(xray_manifest):
    img, msk = _xray_case(xray_manifest)
    img, msk = sitk.JoinSeries([img] * 4), sitk.JoinSeries([msk] * 4)  # 4 slices of 1 mm: sigma 4 mm is skipped
    one = {"setting": {"force2D": True, "force2Ddimension": 0}, "imageType": {"LoG": {"sigma": [1.0]}},
           "featureClass": {"firstorder": None}}
    both = {**one, "imageType": {"LoG": {"sigma": [1.0, 4.0]}}}  # its own part (sigma 4) gives nothing
    shared = radiomics.extract_shared(img, msk, [one, both])
    for settings, (feats, err, _) in zip([one, both], shared):
        assert err is None
        pd.testing.assert_series_equal(feats, radiomics.extract_case(img, msk, settings), check_exact=True)
    assert not any(name.startswith("log-sigma-4") for name in shared[1][0].index)


def test_image_type_without_a_mapping_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"imageType Original is None, not a mapping; write `Original: \{\}`"):
        radiomics.settings_key(_with("xray", imageType={"Original": None}))
    with pytest.raises(ValueError, match=r"imageType is \['Original'\], not a mapping"):
        radiomics.settings_key(_with("xray", imageType=["Original"]))


def test_extract_manifest_many_equals_one_extraction_per_case_and_settings(xray_manifest, tmp_path):
    m = xray_manifest.iloc[:3]
    settings_list = SHARED_CASES["xray"][1]
    many = radiomics.extract_manifest_many(m, settings_list, n_jobs=2, cache_dir=tmp_path / "cache", progress=False)
    for settings, table in zip(settings_list, many):
        own = pd.DataFrame({r["vertebra_id"]: radiomics.extract_case(r["image"], r["mask"], settings)
                            for _, r in m.iterrows()}).T.rename_axis("vertebra_id")
        pd.testing.assert_frame_equal(table, own, check_exact=True)
        assert table.attrs["failures"] == [] and table.attrs["seconds"] > 0
    again = radiomics.extract_manifest_many(m, settings_list, n_jobs=1, cache_dir=tmp_path / "cache", progress=False)
    assert [t.attrs["seconds"] for t in again] == [0.0] * len(settings_list)  # every settings cached on its own
    for table, cached in zip(many, again):
        pd.testing.assert_frame_equal(table, cached, check_exact=True)
    assert radiomics.extract_manifest_many(m, [], progress=False) == []


def test_extract_manifest_many_takes_shared_parts_from_the_cache(xray_manifest, tmp_path, monkeypatch):
    m = xray_manifest.iloc[:2]
    full, *parts = SHARED_CASES["xray"][1][:3]  # the original image alone, and with LoG 1 mm: parts of `full`
    radiomics.extract_manifest(m, full, n_jobs=1, cache_dir=tmp_path, progress=False)
    calls = []
    real = radiomics._execute
    monkeypatch.setattr(radiomics, "_execute", lambda i, k, s: calls.append(s) or real(i, k, s))
    many = radiomics.extract_manifest_many(m, [full, *parts], n_jobs=1, cache_dir=tmp_path, progress=False)
    assert calls == []  # every part and the shape came from the cached full extraction
    monkeypatch.setattr(radiomics, "_execute", real)
    for settings, table in zip(parts, many[1:]):
        own = pd.DataFrame({r["vertebra_id"]: radiomics.extract_case(r["image"], r["mask"], settings)
                            for _, r in m.iterrows()}).T.rename_axis("vertebra_id")
        pd.testing.assert_frame_equal(table, own, check_exact=True)


def test_all_cases_failing_raises_with_reasons(xray_manifest, tmp_path):
    m = xray_manifest.iloc[:1].copy()
    bad = tmp_path / "empty.nii.gz"
    sitk.WriteImage(sitk.ReadImage(m.iloc[0]["mask"]) * 0, str(bad))
    m["mask"], m["mask_sha256"] = str(bad), ""
    with pytest.raises(RuntimeError, match="radiomics failed for all 1 cases"):
        radiomics.extract_manifest(m, "baseline_xray", n_jobs=1, progress=False)


def test_unknown_shipped_params_name_lists_the_choices():
    with pytest.raises(ValueError, match="baseline_ct, baseline_xray"):
        radiomics.load_settings("nonexistent")


# --- PyRadiomics traps -------------------------------------------------------------------------

def _xray_case(xray_manifest):
    row = xray_manifest.iloc[0]
    return sitk.ReadImage(row["image"]), sitk.ReadImage(row["mask"])


def test_force2d_on_a_2d_image_is_refused(xray_manifest):
    img, msk = _xray_case(xray_manifest)
    settings = {"setting": {"force2D": True, "force2Ddimension": 0}, "imageType": {"Original": {}},
                "featureClass": {"glcm": None}}
    with pytest.raises(ValueError, match="1-D texture along rows"):
        radiomics.extract_case(img, msk, settings)


def test_2d_texture_is_two_dimensional(xray_manifest):
    """With the trap avoided, zone and run statistics differ (in 1-D they coincide)."""
    img, msk = _xray_case(xray_manifest)
    f = radiomics.extract_case(img, msk, "xray")
    assert f["original_glszm_GrayLevelNonUniformity"] != f["original_glrlm_GrayLevelNonUniformity"]
    assert f["original_glszm_SizeZoneNonUniformity"] != f["original_glrlm_RunLengthNonUniformity"]


def test_wavelet_on_a_2d_image_gives_four_inplane_decompositions_and_log_is_kept(xray_manifest):
    img, msk = _xray_case(xray_manifest)
    families = radiomics.feature_families(radiomics.extract_case(img, msk, "xray").index)
    assert set(families["image_type"]) == {"original", "log-sigma-1-0-mm", "log-sigma-2-0-mm", "log-sigma-3-0-mm",
                                           "wavelet-LL", "wavelet-LH", "wavelet-HL", "wavelet-HH"}


def test_log_silently_skipped_by_pyradiomics_is_an_error(xray_manifest):
    """On a one-slice volume PyRadiomics drops LoG with only a log message; ovfkit refuses."""
    img, msk = _xray_case(xray_manifest)
    settings = {"setting": {"force2D": True, "force2Ddimension": 0}, "imageType": {"LoG": {"sigma": [1.0]}},
                "featureClass": {"firstorder": None}}
    with pytest.raises(ValueError, match="image type LoG produced no features"):
        radiomics.extract_case(sitk.JoinSeries(img), sitk.JoinSeries(msk), settings)


def test_force2d_on_a_3d_volume_with_a_3d_mask(tiny_cohorts):
    """force2D on a 3-D mask computes per-slice 2-D texture; shape2D there is refused with advice."""
    row = load_manifest(tiny_cohorts["ct"]).iloc[0]
    base = {"setting": {"force2D": True, "force2Ddimension": 0, "binWidth": 25}, "imageType": {"Original": {}}}
    f = radiomics.extract_case(row["image"], row["mask"], {**base, "featureClass": {"glcm": None}})
    assert f.notna().all() and len(f) > 20
    with pytest.raises(ValueError, match=r"shape2D needs an ROI on one slice, but the 3-D mask spans \d+ slices"):
        radiomics.extract_case(row["image"], row["mask"], {**base, "featureClass": {"shape2D": None}})


def test_mask_label_other_than_1(xray_manifest):
    img, msk = _xray_case(xray_manifest)
    msk255 = sitk.Cast(msk, sitk.sitkUInt8) * 255
    with pytest.raises(ValueError, match=r"mask holds label\(s\) \[255\] .* set `setting: label: 255`"):
        radiomics.extract_case(img, msk255, "baseline_xray")
    settings = radiomics.load_settings("baseline_xray")
    settings["setting"]["label"] = 255
    pd.testing.assert_series_equal(radiomics.extract_case(img, msk255, settings),
                                   radiomics.extract_case(img, msk, "baseline_xray"))


def test_anisotropic_spacing_is_resampled_before_shape_and_texture():
    """An ellipsoid sampled with 0.7 x 0.7 x 2.5 mm voxels and with 1 mm voxels gives the same volume
    after resampling to 1 mm, close to the analytic one."""
    def ellipsoid(spacing):
        size = [int(round(60 / s)) for s in spacing]
        grid = np.meshgrid(*[(np.arange(n) + 0.5) * s - 30 for n, s in zip(size, spacing)], indexing="ij")
        inside = (grid[0] / 15) ** 2 + (grid[1] / 12) ** 2 + (grid[2] / 10) ** 2 <= 1
        arr = np.where(inside, 300.0, 0.0) + np.random.default_rng(0).normal(0, 5, inside.shape)
        img = sitk.GetImageFromArray(arr.transpose(2, 1, 0).astype(np.float32))
        msk = sitk.GetImageFromArray(inside.transpose(2, 1, 0).astype(np.uint8))
        for im in (img, msk):
            im.SetSpacing(spacing)
        return img, msk

    settings = {"setting": {"resampledPixelSpacing": [1, 1, 1], "interpolator": "sitkBSpline", "binWidth": 25},
                "imageType": {"Original": {}}, "featureClass": {"shape": ["MeshVolume"]}}
    truth = 4 / 3 * np.pi * 15 * 12 * 10
    vols = [radiomics.extract_case(*ellipsoid(sp), settings)["original_shape_MeshVolume"]
            for sp in ((1.0, 1.0, 1.0), (0.7, 0.7, 2.5))]
    assert vols[0] == pytest.approx(truth, rel=0.03) and vols[1] == pytest.approx(vols[0], rel=0.03)


# --- equality with PyRadiomics on its own kind of settings, NRRD files, Dask, CLI -----------------

@pytest.fixture(scope="module")
def nrrd_manifest(tiny_cohorts, tmp_path_factory):
    """Three CT vertebrae rewritten as NRRD files with a manifest, as a user's real data would come."""
    from ovfkit.manifest import write_csv_atomic

    root = tmp_path_factory.mktemp("nrrd")
    src = pd.read_csv(tiny_cohorts["ct"], keep_default_na=False).iloc[:3].copy()
    for i, row in src.iterrows():
        for col in ("image", "mask"):
            out = f"{col}s/{row['vertebra_id']}.nrrd"
            (root / out).parent.mkdir(exist_ok=True)
            sitk.WriteImage(sitk.ReadImage(str(tiny_cohorts["ct"].parent / row[col])), str(root / out), True)
            src.loc[i, col] = out
    for c in ("image_sha256", "mask_sha256", "mask_reader2", "mask_reader2_sha256"):
        src[c] = ""
    write_csv_atomic(src, root / "manifest.csv")
    return root / "manifest.csv"


def test_reference_settings_on_nrrd_equal_pyradiomics(nrrd_manifest):
    from .conftest import FIXTURES

    params = FIXTURES / "pyradiomics_reference_3d.yaml"
    m = load_manifest(nrrd_manifest)
    ours = radiomics.extract_manifest(m, params, n_jobs=1, progress=False)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ext = featureextractor.RadiomicsFeatureExtractor(str(params))
    for vid, row in m.iterrows():
        ref = ext.execute(row["image"], row["mask"])
        ref = pd.Series({k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")})
        pd.testing.assert_series_equal(ours.loc[vid].sort_index(), ref.sort_index(), check_exact=True,
                                       check_names=False)
    assert any(c.startswith("wavelet-HHH") for c in ours.columns)


def test_dask_cluster_gives_the_same_table(xray_manifest):
    from distributed import Client, LocalCluster

    m = xray_manifest.iloc[:4]
    local = radiomics.extract_manifest(m, "baseline_xray", n_jobs=1, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = radiomics.extract_manifest(m, "baseline_xray", scheduler=client, progress=False)
        by_address = radiomics.extract_manifest(m, "baseline_xray", scheduler=cluster.scheduler_address,
                                                progress=False)
    pd.testing.assert_frame_equal(local, remote, check_exact=True)
    pd.testing.assert_frame_equal(local, by_address, check_exact=True)


def test_cli_writes_a_parquet_table(tiny_cohorts, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "f.parquet"
    proc = subprocess.run([sys.executable, "-m", "ovfkit.cli", "features", "radiomics", "--manifest",
                           str(tiny_cohorts["xray"]), "--out", str(out), "--params", "baseline_xray", "--jobs", "2"],
                          capture_output=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert len(table) == len(load_manifest(tiny_cohorts["xray"])) and "original_glcm_Contrast" in table.columns
