import logging

import pandas as pd
import pytest
import SimpleITK as sitk
from radiomics import featureextractor

from ovfkit import radiomics
from ovfkit.manifest import load_manifest


@pytest.fixture(scope="module")
def xray_manifest(tiny_cohorts):
    return load_manifest(tiny_cohorts["xray"])


def test_extract_case_equals_pyradiomics_itself(xray_manifest):
    row = xray_manifest.iloc[0]
    settings = radiomics.load_settings("baseline_xray")
    ours = radiomics.extract_case(row["image"], row["mask"], settings)
    settings.pop("ovfkit")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ref = featureextractor.RadiomicsFeatureExtractor(settings).execute(row["image"], row["mask"])
    ref = pd.Series({k: float(v) for k, v in ref.items() if not k.startswith("diagnostics_")})
    pd.testing.assert_series_equal(ours.sort_index(), ref.sort_index(), check_exact=True)
    assert "original_glcm_Contrast" in ours.index


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
