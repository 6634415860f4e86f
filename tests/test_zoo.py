"""The CNN comparison (guo2026, li): eight torchvision architectures, their split, weights, training and folds."""

import numpy as np
import pandas as pd
import pytest
import torch

from ovfkit.deep import zoo
from ovfkit.settings import settings


@pytest.fixture(scope="module")
def tiny():
    """12 patients, 2 patches each, 64 px; fresh patches carry a bright band."""
    rng = np.random.default_rng(0)
    ids = [f"P{i // 2:02d}_{'T12' if i % 2 else 'L1'}" for i in range(24)]
    y = pd.Series(np.tile([1, 0, 0, 1], 6), index=ids)
    x = rng.random((24, 64, 64)).astype(np.float32) * 0.5
    x[y.to_numpy() == 1, 28:36, :] += 0.4
    groups = pd.Series([i.split("_")[0] for i in ids], index=ids)
    return pd.Series(list(x), index=ids), y, groups


@pytest.mark.parametrize("trainable", ["tail", "head"])
@pytest.mark.parametrize("arch", zoo.ARCHITECTURES)
def test_the_frozen_front_and_the_trained_tail_make_the_whole_network(arch, trainable):
    model = zoo.replace_head(zoo.build(arch), arch, 2).eval()
    front, tail = zoo.split(model, arch, trainable)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(tail(front(x)).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert zoo.count_parameters(front) + zoo.count_parameters(tail) == zoo.count_parameters(model)
    if trainable == "head":
        assert isinstance(tail[0], torch.nn.Linear) and len(tail) == 1


def test_every_architecture_trains_one_step_on_the_quick_profile(tiny):
    inputs, y, groups = tiny
    recipe = settings("quick", "xray", study="fresh-old").zoo
    res = zoo.cross_validate(inputs, y, groups, recipe, source="random", cam_ids=[inputs.index[0]], progress=False)
    assert list(res.cost["architecture"]) == list(zoo.ARCHITECTURES)
    assert len(res.oof) == len(zoo.ARCHITECTURES) * len(y)
    assert res.oof["p"].between(0, 1).all()
    # one epoch of one batch per fold and architecture
    assert (res.history.groupby(["architecture", "fold"]).size() == 1).all()
    assert (res.cost[["parameters", "trainable_parameters", "train_images_per_s", "latency_ms"]] > 0).all().all()
    assert (res.cost["trainable_parameters"] < res.cost["parameters"]).all()
    for arch in zoo.ARCHITECTURES:
        prob, cam = res.cams[arch][inputs.index[0]]
        assert cam.shape == (64, 64) and 0 <= cam.min() and cam.max() <= 1 and 0 <= prob <= 1


def test_a_patients_vertebrae_share_a_fold_and_each_fold_is_predicted_by_a_network_that_did_not_see_it(tiny):
    inputs, y, groups = tiny
    folds = zoo.folds_of(y, groups, 3, seed=1)
    assert (folds.groupby(groups).nunique() == 1).all()
    assert sorted(folds.unique()) == [1, 2, 3]
    recipe = zoo.ZooRecipe(architectures=("mnasnet1_0",), size=64, epochs=2, batch_size=4, trainable="head",
                           flips=(), folds=3)
    model = zoo.initial_model("mnasnet1_0", "random", recipe, 2)
    fit, test = np.flatnonzero(folds != 1), np.flatnonzero(folds == 1)
    x = np.stack(inputs.to_numpy())
    p1, _ = zoo.fit_predict(model, "mnasnet1_0", x, y.to_numpy(), fit, test, recipe,
                            fronts=zoo.front_outputs(model, "mnasnet1_0", x, recipe))
    # changing the held-out rows' labels changes nothing of their predictions
    y2 = y.to_numpy().copy()
    y2[test] = 1 - y2[test]
    model = zoo.initial_model("mnasnet1_0", "random", recipe, 2)
    p2, _ = zoo.fit_predict(model, "mnasnet1_0", x, y2, fit, test, recipe,
                            fronts=zoo.front_outputs(model, "mnasnet1_0", x, recipe))
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("precomputed", [True, False])
@pytest.mark.parametrize("trainable", ["tail", "head"])
def test_a_frozen_front_does_not_change_while_the_rest_trains(tiny, trainable, precomputed):
    inputs, y, groups = tiny
    recipe = zoo.ZooRecipe(size=64, epochs=2, batch_size=8, lr=0.1, trainable=trainable, flips=("lr", "tb"))
    model = zoo.initial_model("resnet50", "random", recipe, 2)
    front, tail = zoo.split(model, "resnet50", trainable)
    before_front = {k: v.clone() for k, v in front.state_dict().items()}
    before_tail = {k: v.clone() for k, v in tail.state_dict().items()}
    x = np.stack(inputs.to_numpy())
    rows = np.arange(len(y))
    zoo.fit_predict(model, "resnet50", x, y.to_numpy(), rows[:16], rows[16:], recipe,
                    fronts=zoo.front_outputs(model, "resnet50", x, recipe) if precomputed else None)
    assert all(torch.equal(v, front.state_dict()[k]) for k, v in before_front.items())
    assert any(not torch.equal(v, tail.state_dict()[k]) for k, v in before_tail.items())


def test_cross_validation_is_deterministic_and_cached(tiny, tmp_path):
    inputs, y, groups = tiny
    recipe = zoo.ZooRecipe(architectures=("mnasnet1_0", "googlenet"), size=64, epochs=2, batch_size=4,
                           trainable="tail", flips=("lr",), folds=2)
    a = zoo.cross_validate(inputs, y, groups, recipe, source="random", progress=False)
    b = zoo.cross_validate(inputs, y, groups, recipe, source="random", cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(a.oof, b.oof)
    assert len(list(tmp_path.glob("zoo-*.pt"))) == 2
    c = zoo.cross_validate(inputs, y, groups, recipe, source="random", cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(b.oof, c.oof)
    pd.testing.assert_frame_equal(b.cost, c.cost)  # read back, not retrained (the timings would differ)


@pytest.mark.parametrize("arch", ["googlenet", "mnasnet1_0"])
def test_imagenet_weights_load_from_torchvisions_file_name(arch, tmp_path):
    reference = zoo.build(arch)
    state = reference.state_dict()
    if arch == "googlenet":  # torchvision's file has the auxiliary heads too
        state = {**state, "aux1.fc2.weight": torch.zeros(1000, 1024), "aux1.fc2.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / zoo.weights_file(arch))
    model = zoo.load_imagenet(zoo.build(arch), arch, tmp_path)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    table = zoo.weight_sources([arch, "alexnet"], "auto", tmp_path)
    assert list(table["source"]) == ["imagenet", "proxy-natural"]


def test_a_missing_imagenet_file_fails_in_one_line_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"alexnet-owt-7be5be79\.pth") as err:
        zoo.initial_model("alexnet", "imagenet", zoo.ZooRecipe(size=64), 2, weights_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_a_file_of_another_network_is_refused(tmp_path):
    torch.save(zoo.build("mnasnet1_0").state_dict(), tmp_path / zoo.weights_file("efficientnet_b0"))
    with pytest.raises(ValueError, match="not torchvision's efficientnet_b0 weights"):
        zoo.load_imagenet(zoo.build("efficientnet_b0"), "efficientnet_b0", tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"architectures": ("lenet",)}, "not one of"),
    ({"size": 48}, "AlexNet needs inputs of at least 64 px"),
    ({"trainable": "layer4"}, "is not 'all', 'tail' or 'head'"),
    ({"flips": ("ud",)}, "is not 'lr' or 'tb'"),
    ({"folds": 1}, "at least 2 folds"),
])
def test_a_recipe_out_of_range_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        zoo.ZooRecipe(**change).check()


def test_the_stand_in_is_pretrained_once_and_cached(tmp_path):
    recipe = zoo.ZooRecipe(size=64, proxy_steps=1, proxy_images=4)
    path = zoo.proxy_state("mnasnet1_0", recipe, tmp_path)
    stamp = path.stat().st_mtime_ns
    a = zoo.initial_model("mnasnet1_0", "proxy-natural", recipe, 2, cache_dir=tmp_path)
    b = zoo.initial_model("mnasnet1_0", "proxy-natural", recipe, 2, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == stamp
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    fresh = zoo.initial_model("mnasnet1_0", "random", recipe, 2)
    assert not torch.equal(a.layers[0].weight, fresh.layers[0].weight)


def test_the_linear_probes_standardization_is_folded_into_the_network_exactly(tiny):
    """After head-only training the whole network (as Grad-CAM runs it) gives the probabilities the probe gave."""
    inputs, y, groups = tiny
    recipe = zoo.ZooRecipe(size=64, epochs=3, batch_size=8, lr=0.1, trainable="head", flips=())
    model = zoo.initial_model("resnet50", "random", recipe, 2)
    x = np.stack(inputs.to_numpy())
    rows = np.arange(len(y))
    p, _ = zoo.fit_predict(model, "resnet50", x, y.to_numpy(), rows[:16], rows[16:], recipe,
                           fronts=zoo.front_outputs(model, "resnet50", x, recipe))
    with torch.no_grad():
        whole = torch.softmax(model.eval()(zoo.to_network_input(x[16:], "minus1to1")), 1)[:, 1].numpy()
    np.testing.assert_allclose(whole, p, rtol=1e-4, atol=1e-5)
    assert np.ptp(p) > 0


def _ovfkit(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ovfkit.cli", *map(str, args)], capture_output=True,
                          encoding="utf-8", errors="replace", env={**os.environ, **(env or {})})


def test_cli_cnn_missing_imagenet_file_is_one_clear_line(tiny_cohorts, tmp_path):
    proc = _ovfkit("cnn", "--manifest", tiny_cohorts["xray"], "--out", tmp_path / "oof.csv", "--source", "imagenet",
                   "--profile", "quick", "--cache-dir", tmp_path / "c", env={"TORCH_HOME": str(tmp_path / "torch")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert zoo.weights_file("alexnet") in line and str(tmp_path / "torch" / "hub" / "checkpoints") in line
    assert not (tmp_path / "oof.csv").exists()


def test_cli_cnn_writes_every_architectures_out_of_fold_predictions(tiny_cohorts, tmp_path):
    out = tmp_path / "oof.csv"
    proc = _ovfkit("cnn", "--manifest", tiny_cohorts["xray"], "--out", out, "--source", "random", "--profile", "quick",
                   "--cache-dir", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    oof = pd.read_csv(out)
    manifest = pd.read_csv(tiny_cohorts["xray"])
    assert set(oof["architecture"]) == set(zoo.ARCHITECTURES)
    assert (oof.groupby("architecture")["vertebra_id"].nunique() == len(manifest)).all()


def test_the_paper_profile_trains_every_layer(tiny):
    """guo2026's recipe (trainable="all"): the front changes too, and both flips are drawn."""
    inputs, y, groups = tiny
    recipe = zoo.ZooRecipe(architectures=("mnasnet1_0",), size=64, epochs=1, batch_size=8, lr=0.05,
                           trainable="all", flips=("lr", "tb"))
    model = zoo.initial_model("mnasnet1_0", "random", recipe, 2)
    front, tail = zoo.split(model, "mnasnet1_0", "tail")
    before = {k: v.clone() for k, v in front.state_dict().items() if v.is_floating_point()}
    x = np.stack(inputs.to_numpy())
    rows = np.arange(len(y))
    p, history = zoo.fit_predict(model, "mnasnet1_0", x, y.to_numpy(), rows[:16], rows[16:], recipe)
    assert any(not torch.equal(v, front.state_dict()[k]) for k, v in before.items())
    assert len(p) == 8 and len(history) == 1
