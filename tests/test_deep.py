import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch
from torchvision.models import resnet50

from ovfkit import deep
from ovfkit.manifest import load_manifest
from ovfkit.select import DeepPCA
from ovfkit.settings import settings

QUICK = settings("quick", "xray").deep


@pytest.fixture(scope="module")
def xray(tiny_cohorts):
    return load_manifest(tiny_cohorts["xray"])


@pytest.fixture(scope="module")
def ct(tiny_cohorts):
    return load_manifest(tiny_cohorts["ct"])


# --- input preparation ---------------------------------------------------------------------------

@pytest.mark.parametrize("modality, size", [("xray", 64), ("ct", 32)])
def test_prepared_input_is_square_and_in_unit_range(request, modality, size):
    m = request.getfixturevalue(modality)
    x = deep.prepare_image(m.iloc[0]["image"], m.iloc[0]["mask"], modality, deep.Recipe(size=size))
    assert x.shape == (size, size) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_anisotropic_slice_keeps_the_aspect_ratio():
    """A 20 x 20 mm square drawn on 0.5 x 2 mm pixels must come out square, not 4:1."""
    arr = np.zeros((40, 160), np.float32)  # rows: 2 mm, columns: 0.5 mm -> 80 x 80 mm
    msk = np.zeros_like(arr, dtype=np.uint8)
    arr[15:25, 60:100] = 1000.0  # 20 mm x 20 mm
    msk[15:25, 60:100] = 1
    img, mk = sitk.GetImageFromArray(arr), sitk.GetImageFromArray(msk)
    for im in (img, mk):
        im.SetSpacing((0.5, 2.0))
    x = deep.prepare_image(img, mk, "xray", deep.Recipe(size=64, margin=0.5, equalize=False))
    bright = x > 0.5
    rows, cols = np.flatnonzero(bright.any(1)), np.flatnonzero(bright.any(0))
    assert abs((rows[-1] - rows[0]) - (cols[-1] - cols[0])) <= 2


def test_wrong_dimensionality_is_refused(ct):
    with pytest.raises(ValueError, match="X-ray input must be 2-D"):
        deep.prepare_image(ct.iloc[0]["image"], ct.iloc[0]["mask"], "xray", QUICK)


_MEAN, _STD = np.array(deep.IMAGENET_MEAN), np.array(deep.IMAGENET_STD)


@pytest.mark.parametrize("scaling, lo, hi", [
    ("minus1to1", [-1.0] * 3, [1.0] * 3),
    ("imagenet", list(-_MEAN / _STD), list((1 - _MEAN) / _STD)),
    ("zscore", [-0.5 / np.sqrt(0.3)] * 3, [0.5 / np.sqrt(0.3)] * 3),  # six values 0,0,0,1,1,1: SD sqrt(0.3)
])
def test_network_input_scaling_and_channels(scaling, lo, hi):
    x = deep.to_network_input(np.array([[[0.0, 1.0]]], np.float32), scaling)
    assert x.shape == (1, 3, 1, 2)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), lo, rtol=1e-6)
    np.testing.assert_allclose(x[0, :, 0, 1].numpy(), hi, rtol=1e-6)


def test_zscore_scaling_gives_each_image_mean_zero_and_sd_one():
    batch = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32) * np.array([1, 2, 3, 4])[:, None, None]
    x = deep.to_network_input(batch, "zscore").numpy()
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3), ddof=1), 1, rtol=1e-5)


def test_replicated_channels_equal_a_summed_one_channel_conv1():
    """Why the CT channel is replicated: conv1 on 3 copies equals a 1-channel conv1 with summed kernels."""
    torch.manual_seed(0)
    conv = resnet50(weights=None).conv1
    x = torch.rand(2, 1, 32, 32)
    one = torch.nn.functional.conv2d(x, conv.weight.sum(1, keepdim=True), stride=2, padding=3)
    torch.testing.assert_close(conv(x.repeat(1, 3, 1, 1)), one, rtol=1e-5, atol=1e-5)


# --- backbone sources ----------------------------------------------------------------------------

def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("fc."))


def test_imagenet_from_an_explicit_path_and_from_the_hub_cache(tmp_path, monkeypatch):
    torch.manual_seed(1)
    ref = resnet50(weights=None)
    path = tmp_path / "w.pth"
    torch.save(ref.state_dict(), path)
    assert _same_weights(deep.load_backbone("imagenet", weights=path), ref)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = deep.hub_checkpoint_dir()
    assert hub == tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(ref.state_dict(), hub / deep.IMAGENET_FILE)
    assert _same_weights(deep.load_backbone("imagenet"), ref)


def test_radimagenet_checkpoint_in_the_authors_layout_is_mapped(tmp_path):
    """The RadImageNet PyTorch release saves nn.Sequential(*resnet50 children[:9]) as `backbone`."""
    torch.manual_seed(2)
    ref = resnet50(weights=None)

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torch.nn.Sequential(*list(ref.children())[:9])

    path = tmp_path / "RadImageNet-ResNet50.pt"
    torch.save(Backbone().state_dict(), path)
    assert any(k.startswith("backbone.7.") for k in torch.load(path, weights_only=True))
    assert _same_weights(deep.load_backbone("radimagenet", weights=path), ref)


@pytest.mark.parametrize("source, name", [("imagenet", deep.IMAGENET_FILE), ("radimagenet", deep.RADIMAGENET_FILE)])
def test_missing_weights_say_which_file_to_put_where(tmp_path, monkeypatch, source, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ValueError) as info:
        deep.load_backbone(source)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and str(tmp_path / "hub" / "checkpoints") in msg


def test_a_checkpoint_of_the_wrong_shape_is_refused(tmp_path):
    state = resnet50(weights=None).state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"conv1.weight has shape \(64, 1, 7, 7\)"):
        deep.load_backbone("imagenet", weights=tmp_path / "bad.pth")


def test_not_a_radimagenet_checkpoint_is_refused(tmp_path):
    torch.save(resnet50(weights=None).state_dict(), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="no 'backbone.N.' keys"):
        deep.load_backbone("radimagenet", weights=tmp_path / "x.pt")


@pytest.mark.parametrize("source", ["proxy-natural", "proxy-medical"])
def test_proxy_pretext_images(source):
    x = deep.proxy_images(source, 6, 32, seed=0)
    assert x.shape == (6, 32, 32) and x.std() > 0.01
    np.testing.assert_array_equal(x, deep.proxy_images(source, 6, 32, seed=0, n_jobs=1))  # same in one process


# --- fine-tuning, features, determinism, PCA ------------------------------------------------------

def test_same_seed_gives_bitwise_identical_features(xray, tmp_path):
    a = deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path / "a", progress=False, n_jobs=1)
    b = deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path / "b", progress=False, n_jobs=1)
    pd.testing.assert_frame_equal(a.features, b.features, check_exact=True)
    assert a.features.shape == (len(xray), 2048) and list(a.features.index) == list(xray.index)
    assert len(a.history) == QUICK.crossfit_folds * QUICK.epochs and len(a.model_paths) == QUICK.crossfit_folds


def _relabel(manifest, rows):
    other = manifest.copy()
    other.loc[rows, "astlof_class"] = (other.loc[rows, "astlof_class"] + 1) % 3
    return other


def _first_training_patient_rows(m):
    patient = m.loc[m["cohort"] == "train", "patient_id"].iloc[0]
    return m.index[m["patient_id"] == patient]


def test_a_training_patients_own_features_ignore_its_labels(xray, tmp_path):
    """Cross-fitting: a training patient's features come from a network that never saw its labels."""
    a = deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path, progress=False, n_jobs=1)
    rows = _first_training_patient_rows(xray)
    b = deep.deep_features(_relabel(xray, rows), "random", QUICK, cache_dir=tmp_path, progress=False, n_jobs=1)
    pd.testing.assert_frame_equal(a.features.loc[rows], b.features.loc[rows], check_exact=True)
    # ... while the relabelled patient did reach the other networks (the test is not vacuous):
    others = a.features.index[(xray["cohort"] == "train").to_numpy() & (a.folds.reindex(a.features.index)
                                                                       != a.folds.loc[rows[0]]).to_numpy()]
    assert not a.features.loc[others].equals(b.features.loc[others])


def test_in_sample_features_leak_and_must_be_asked_for(xray, tmp_path):
    """The leaky variant exists only as an explicit option, and it does leak."""
    rows = _first_training_patient_rows(xray)
    kw = dict(cache_dir=tmp_path, progress=False, n_jobs=1, training_rows="in-sample")
    a = deep.deep_features(xray, "random", QUICK, **kw)
    b = deep.deep_features(_relabel(xray, rows), "random", QUICK, **kw)
    assert a.training_rows == "in-sample" and len(a.model_paths) == 1
    assert not a.features.loc[rows].equals(b.features.loc[rows])
    with pytest.raises(ValueError, match="training_rows='leaky' is not one of"):
        deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path, training_rows="leaky")


def test_crossfit_folds_group_patients_and_ignore_labels(xray):
    train = xray[xray["cohort"] == "train"]
    folds = deep.crossfit_folds(train["patient_id"], 3, seed=5)
    assert set(folds) == {1, 2, 3}
    assert folds.groupby(train["patient_id"]).nunique().max() == 1  # a patient never straddles two folds
    assert folds.value_counts().max() - folds.value_counts().min() <= train.groupby("patient_id").size().max()
    with pytest.raises(ValueError, match="crossfit_folds=1 needs 2 <= K"):
        deep.crossfit_folds(train["patient_id"], 1, seed=5)


def test_fine_tuning_never_sees_held_out_labels(xray, tmp_path):
    """Changing the labels of every held-out vertebra leaves every network's weights bitwise unchanged."""
    a = deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path / "a", progress=False, n_jobs=1)
    held_out = xray.index[xray["cohort"] != "train"]
    b = deep.deep_features(_relabel(xray, held_out), "random", QUICK, cache_dir=tmp_path / "b", progress=False,
                           n_jobs=1)
    for ma, mb in zip(a.load_models(), b.load_models()):
        sa, sb = ma.state_dict(), mb.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pd.testing.assert_frame_equal(a.features, b.features, check_exact=True)


def test_held_out_features_are_the_mean_over_the_networks(xray, tmp_path):
    r = deep.deep_features(xray, "random", QUICK, cache_dir=tmp_path, progress=False, n_jobs=1)
    held_out = xray.index[xray["cohort"] != "train"]
    x = np.stack(r.inputs.loc[held_out].to_numpy())
    mean = np.mean([deep.predict(m, x, QUICK.scaling, features=True) for m in r.load_models()], axis=0)
    np.testing.assert_allclose(r.features.loc[held_out].to_numpy(), mean, rtol=1e-5, atol=1e-6)
    assert len(r.agreement) == QUICK.crossfit_folds


def test_interrupted_fine_tuning_resumes_from_its_checkpoint(xray, tmp_path):
    recipe = deep.Recipe(**{**QUICK.__dict__, "epochs": 2})
    inputs = deep.prepare_manifest(xray, recipe, n_jobs=1)
    train = xray.index[xray["cohort"] == "train"]
    args = (inputs.loc[train], xray.loc[train, "astlof_class"], xray.loc[train, "patient_id"])
    full = deep.finetune(deep.load_backbone("random"), *args, recipe, progress=False)
    one = deep.Recipe(**{**recipe.__dict__, "epochs": 1})
    deep.finetune(deep.load_backbone("random"), *args, one, checkpoint_dir=tmp_path, progress=False)
    # Re-running with 2 epochs resumes after epoch 1 (the scheduler's horizon differs, so compare epoch 1).
    resumed = deep.finetune(deep.load_backbone("random"), *args, recipe, checkpoint_dir=tmp_path, progress=False)
    assert list(resumed.history["epoch"]) == [1, 2]
    assert resumed.history.loc[0, "train_loss"] == full.history.loc[0, "train_loss"]


@pytest.mark.parametrize("trainable", ["layer4", "none"])
def test_fine_tuning_from_a_trunk_gives_the_network_of_full_forward_passes(xray, trainable):
    """The frozen front computed once (plain and mirrored) trains the same network as running the whole
    ResNet every batch: same losses, same weights, same features, up to floating-point summation order."""
    recipe = deep.Recipe(**{**QUICK.__dict__, "epochs": 2, "trainable": trainable})
    inputs = deep.prepare_manifest(xray, recipe, n_jobs=1)
    train = xray.index[xray["cohort"] == "train"]
    args = (inputs.loc[train], xray.loc[train, "astlof_class"], xray.loc[train, "patient_id"])
    full = deep.finetune(deep.load_backbone("random"), *args, recipe, progress=False)
    trunk = deep.Trunk.compute(deep.load_backbone("random"), inputs, recipe, flip_ids=train)
    fast = deep.finetune(deep.load_backbone("random"), *args, recipe, progress=False, trunk=trunk)
    np.testing.assert_allclose(fast.history["train_loss"], full.history["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(fast.history["val_loss"], full.history["val_loss"], rtol=1e-4)
    for (name, a), b in zip(full.model.state_dict().items(), fast.model.state_dict().values()):
        np.testing.assert_allclose(b.float().numpy(), a.float().numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
    x = np.stack(inputs.to_numpy())
    np.testing.assert_allclose(deep.predict_from_trunk(fast.model, trunk, list(inputs.index), features=True),
                               deep.predict(fast.model, x, recipe.scaling, features=True), rtol=1e-4, atol=1e-5)


def test_no_trunk_when_every_layer_trains(xray):
    recipe = deep.Recipe(**{**QUICK.__dict__, "trainable": "all"})
    assert deep.Trunk.compute(deep.load_backbone("random"), deep.prepare_manifest(xray, recipe, n_jobs=1),
                              recipe) is None


def test_deep_pca_is_fitted_on_training_rows_only():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 6)), columns=["age"] + [f"deep_{i:04d}" for i in range(5)])
    train, test = X.iloc[:30], X.iloc[30:] + 100.0
    pca = DeepPCA(n_components=2).fit(train)
    np.testing.assert_allclose(pca.pca_.mean_, train.iloc[:, 1:].mean().to_numpy())
    before = pca.pca_.components_.copy()
    out = pca.transform(test)
    np.testing.assert_array_equal(pca.pca_.components_, before)
    assert list(pca.get_feature_names_out()) == ["age", "deep_pc001", "deep_pc002"]
    assert out.shape == (10, 3) and np.allclose(out[:, 0], test["age"])


def test_grad_cam_is_a_map_in_unit_range(xray):
    x = deep.prepare_image(xray.iloc[0]["image"], xray.iloc[0]["mask"], "xray", deep.Recipe(size=64))
    model = deep.load_backbone("random")
    model.fc = torch.nn.Linear(2048, 3)
    cam = deep.grad_cam(model, x, target=1, scaling="minus1to1")
    assert cam.shape == (64, 64) and cam.min() >= 0 and cam.max() <= 1


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="backbone 'vgg' is not one of"):
        deep.load_backbone("vgg")


def test_cli_missing_weights_is_one_clear_line(tiny_cohorts, tmp_path, monkeypatch):
    import subprocess
    import sys

    env = {**__import__("os").environ, "TORCH_HOME": str(tmp_path / "torch")}
    proc = subprocess.run([sys.executable, "-m", "ovfkit.cli", "features", "deep", "--manifest",
                           str(tiny_cohorts["xray"]), "--backbone", "imagenet", "--out", str(tmp_path / "f.parquet"),
                           "--profile", "quick", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, encoding="utf-8", errors="replace", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert deep.IMAGENET_FILE in line and str(tmp_path / "torch" / "hub" / "checkpoints") in line


def test_cli_writes_deep_features(tiny_cohorts, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "f.parquet"
    proc = subprocess.run([sys.executable, "-m", "ovfkit.cli", "features", "deep", "--manifest",
                           str(tiny_cohorts["ct"]), "--backbone", "random", "--out", str(out), "--profile", "quick",
                           "--cache-dir", str(tmp_path / "c")], capture_output=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0, proc.stderr
    assert pd.read_parquet(out).shape[1] == 2048


def test_input_cache_follows_image_content_when_the_manifest_has_no_hashes(xray, tmp_path):
    """Real manifests often carry no sha256: a file replaced at the same path must not reuse old inputs."""
    import shutil

    rows = xray.iloc[:2].copy()
    for col in ("image", "mask"):
        for vid in rows.index:
            dst = tmp_path / "data" / f"{vid}_{col}.nii.gz"
            dst.parent.mkdir(exist_ok=True)
            shutil.copy(rows.loc[vid, col], dst)
            rows.loc[vid, col] = str(dst)
    rows["image_sha256"], rows["mask_sha256"] = "", ""
    first = deep.prepare_manifest(rows, deep.Recipe(size=32), cache_dir=tmp_path / "cache", n_jobs=1)
    img = sitk.ReadImage(rows.iloc[0]["image"])
    sitk.WriteImage(sitk.InvertIntensity(img, maximum=4095), rows.iloc[0]["image"])
    second = deep.prepare_manifest(rows, deep.Recipe(size=32), cache_dir=tmp_path / "cache", n_jobs=1)
    assert not np.array_equal(first.iloc[0], second.iloc[0])
    assert len(list((tmp_path / "cache").glob("inputs-*.npz"))) == 2


def test_agreement_compares_each_network_with_the_others_not_with_itself():
    from ovfkit.deep.crossfit import AGREEMENT, _agreement

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    unrelated = _agreement([a, b], ["fold 1", "fold 2"])[AGREEMENT]
    assert np.all(np.abs(unrelated) < 0.2)  # a mean including the network itself would read about 0.71
    same = _agreement([a, a + 1e-3 * b, a], ["1", "2", "3"])[AGREEMENT]
    np.testing.assert_allclose(same, 1.0, atol=1e-5)
