"""Deep transfer-learning features: ResNet-50 fine-tuned per the papers, 2048-D average-pooling features.

Recipe of the papers (zhang2024, liu2025): ResNet-50 initialised from ImageNet or RadImageNet weights,
fine-tuned on the training cohort with Adam, batch 8, 30 epochs and cosine annealing; the 2048-D output
of the average-pooling layer is the deep feature vector, reduced by PCA fitted on training rows.

Input preparation:

* X-ray: the vertebral body's bounding box (with a margin) from the mask, resampled to isotropic pixels,
  optional histogram equalization, resized to ``size`` x ``size`` (224 in the papers) and replicated to
  3 channels.
* CT: the largest sagittal slice (liu2025, zhang2023), resampled to isotropic pixels, cropped the same
  way, a bone window (-200..1300 HU) mapped to [0, 1], resized to 64 x 64. The one channel is replicated
  to three rather than adapting the first convolution: for a pretrained network the two are the same
  (a replicated input through conv1 equals a 1-channel conv1 whose kernel is the sum over the three
  input channels), and replication keeps every pretrained weight file loadable unchanged.
* Intensities then scaled to [-1, 1] (guo2026) or normalised with ImageNet's mean and standard deviation.

Backbone sources (``backbone=``): ``imagenet`` (torchvision's weights, from a path or torch's hub cache),
``radimagenet`` (the authors' PyTorch checkpoint, a ``backbone.N.*`` state dict), ``random``, and two
offline stand-ins that ovfkit pretrains itself with the same self-supervised pretext (rotation
prediction) so that the embedded default still compares two pretraining domains: ``proxy-natural``
(crops of the natural photographs scikit-image ships) and ``proxy-medical`` (synthetic radiographs and
CT slices generated with other seeds than the study cohort). A missing weights file fails with one line
that says which file to put where; nothing falls back silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

SOURCES = ("imagenet", "radimagenet", "random", "proxy-natural", "proxy-medical")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: torchvision's file name for ResNet50_Weights.IMAGENET1K_V2, as torch.hub caches it.
IMAGENET_FILE = "resnet50-11ad3fa6.pth"
RADIMAGENET_FILE = "RadImageNet-ResNet50.pt"
#: RadImageNet's PyTorch release wraps resnet50's first 9 children in ``backbone`` (an nn.Sequential).
RADIMAGENET_PREFIXES = {"backbone.0.": "conv1.", "backbone.1.": "bn1.", "backbone.4.": "layer1.",
                        "backbone.5.": "layer2.", "backbone.6.": "layer3.", "backbone.7.": "layer4."}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a fine-tuned network (part of every cache key).

    ``proxy_steps`` and ``proxy_images`` size the pretext pretraining of the proxy backbones.
    """

    size: int = 224
    equalize: bool = True
    scaling: str = "minus1to1"  # or "imagenet"
    margin: float = 0.15
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    class_weighted: bool = True
    trainable: str = "all"  # "all", "layer4" (partial fine-tuning) or "none"
    val_fraction: float = 0.15
    max_train_batches: int | None = None  # a cap per epoch, for the quick profile
    proxy_steps: int = 60
    proxy_images: int = 384
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def profile_recipe(profile: str, modality: str, seed: int = 0) -> Recipe:
    """The recipe of each profile.

    * ``paper``: the papers' recipe (X-ray 224 px, CT 64 px; 30 epochs, full fine-tuning).
    * ``default``: what fits the book's CPU budget on 2 cores: X-ray 128 px, CT 64 px, 4 epochs,
      fine-tuning layer4 and the classifier only (measured in the chapter).
    * ``quick``: tiny, for tests.
    """
    ct = modality == "ct"
    if profile == "paper":
        return Recipe(size=64 if ct else 224, epochs=30, trainable="all", seed=seed)
    if profile == "default":
        return Recipe(size=64 if ct else 128, epochs=4, trainable="layer4", seed=seed)
    if profile == "quick":
        return Recipe(size=32, epochs=2, trainable="layer4", max_train_batches=2, proxy_steps=2, proxy_images=8,
                      seed=seed)
    raise ValueError(f"profile {profile!r} is not one of quick, default, paper")


# ----------------------------------------------------------------------------------------------
# Input preparation
# ----------------------------------------------------------------------------------------------

def _isotropic_2d(img, msk):
    """Resample a 2-D image (linear) and mask (nearest) to square pixels of the finer spacing."""
    import SimpleITK as sitk

    sp = np.array(img.GetSpacing(), dtype=float)
    if np.allclose(sp, sp.min()):
        return img, msk
    new_sp = [float(sp.min())] * 2
    size = [int(round(n * s / new_sp[0])) for n, s in zip(img.GetSize(), sp)]
    out = []
    for im, interp in ((img, sitk.sitkLinear), (msk, sitk.sitkNearestNeighbor)):
        out.append(sitk.Resample(im, size, sitk.Transform(), interp, im.GetOrigin(), new_sp, im.GetDirection(),
                                 0, im.GetPixelID()))
    return out[0], out[1]


def prepare_image(image, mask, modality: str, recipe: Recipe) -> np.ndarray:
    """One network input, before channel replication and scaling.

    Parameters
    ----------
    image, mask : path or SimpleITK.Image
        X-ray: 2-D; CT: 3-D (the largest sagittal slice is taken).
    modality : {"xray", "ct"}
    recipe : Recipe (``size``, ``margin``, ``equalize``)

    Returns
    -------
    ndarray of float32, shape (size, size), values in [0, 1].
    """
    import SimpleITK as sitk
    import torch
    from skimage import exposure

    from ovfkit.imaging import largest_slice, roi_crop
    from ovfkit.manifest import read_image

    img = image if isinstance(image, sitk.Image) else read_image(image)
    msk = mask if isinstance(mask, sitk.Image) else read_image(mask)
    if modality == "ct":
        if img.GetDimension() != 3:
            raise ValueError(f"a CT input must be 3-D, got a {img.GetDimension()}-D image")
        img, msk, _ = largest_slice(img, msk, axis=0)
    elif img.GetDimension() != 2:
        raise ValueError(f"an X-ray input must be 2-D, got a {img.GetDimension()}-D image")
    img, msk = _isotropic_2d(img, msk)
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    m = sitk.GetArrayFromImage(msk) > 0
    # Square box around the ROI so that resizing keeps the aspect ratio.
    box = roi_crop(arr, m, margin=recipe.margin)
    (r0, r1), (c0, c1) = [(s.start, s.stop) for s in box]
    side = max(r1 - r0, c1 - c0)
    rc, cc = (r0 + r1) / 2, (c0 + c1) / 2
    r0, c0 = int(round(rc - side / 2)), int(round(cc - side / 2))
    pad = ((max(0, -r0), max(0, r0 + side - arr.shape[0])), (max(0, -c0), max(0, c0 + side - arr.shape[1])))
    arr = np.pad(arr, pad, mode="edge")
    r0, c0 = r0 + pad[0][0], c0 + pad[1][0]
    crop = arr[r0:r0 + side, c0:c0 + side]
    if modality == "ct":
        crop = np.clip((crop + 200.0) / 1500.0, 0, 1)  # bone window W 1500, L 550
    else:
        lo, hi = np.percentile(crop, [0.5, 99.5])
        crop = np.clip((crop - lo) / max(hi - lo, 1e-6), 0, 1)
        if recipe.equalize:
            crop = exposure.equalize_hist(crop).astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
    out = torch.nn.functional.interpolate(t, size=(recipe.size, recipe.size), mode="bilinear", align_corners=False,
                                          antialias=True)
    return out[0, 0].numpy().clip(0, 1)


def to_network_input(batch: np.ndarray, scaling: str):
    """(n, size, size) in [0, 1] -> float tensor (n, 3, size, size), channels replicated, scaled."""
    import torch

    x = torch.as_tensor(batch, dtype=torch.float32)[:, None].repeat(1, 3, 1, 1)
    if scaling == "minus1to1":
        return x * 2 - 1
    if scaling == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std
    raise ValueError(f"scaling {scaling!r} is not 'minus1to1' or 'imagenet'")


def prepare_manifest(manifest: pd.DataFrame, recipe: Recipe, *, cache_dir=None, n_jobs: int = -1) -> pd.Series:
    """Prepared inputs for every vertebra (Series of (size, size) float32 arrays, indexed by vertebra_id),
    cached in one .npz keyed by the image and mask hashes and the preparation settings."""
    from joblib import Parallel, delayed

    prep = {k: getattr(recipe, k) for k in ("size", "equalize", "margin")}
    prep["code"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    from ovfkit.provenance import content_digest

    key = hashlib.sha256(json.dumps({"prep": prep, "files": [
        (r["vertebra_id"], content_digest(r["image"], r.get("image_sha256", "") or ""),
         content_digest(r["mask"], r.get("mask_sha256", "") or ""))
        for _, r in manifest.iterrows()]}, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"inputs-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return pd.Series(list(data["x"]), index=data["ids"])
    arrays = Parallel(n_jobs=n_jobs)(delayed(prepare_image)(r["image"], r["mask"], r["modality"], recipe)
                                     for _, r in manifest.iterrows())
    if path is not None:
        from ovfkit.atomic import atomic_output

        with atomic_output(path) as tmp:
            np.savez(tmp, x=np.stack(arrays), ids=np.asarray(manifest["vertebra_id"], dtype=str))
    return pd.Series(arrays, index=manifest["vertebra_id"].to_numpy())


# ----------------------------------------------------------------------------------------------
# Backbones
# ----------------------------------------------------------------------------------------------

def hub_checkpoint_dir() -> Path:
    """torch's standard cache of downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _missing(source: str, expected: Path, how: str) -> ValueError:
    return ValueError(f"{source} weights not found: put {expected.name} at {expected} ({how}), "
                      f"or pass weights=PATH")


def radimagenet_state_dict(state: dict) -> dict:
    """Map the RadImageNet PyTorch checkpoint (``backbone.N.*`` keys) onto torchvision's ResNet-50 names."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        for old, new in RADIMAGENET_PREFIXES.items():
            if k.startswith(old):
                out[new + k[len(old):]] = v
                break
    if not out:
        sample = ", ".join(list(state)[:3])
        raise ValueError(f"not a RadImageNet ResNet-50 checkpoint: no 'backbone.N.' keys (found {sample})")
    return out


def _load_into(model, state: dict, source: str, path: Path) -> None:
    import torch

    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing = [k for k in own if not k.startswith("fc.") and k not in state]
    if missing:
        raise ValueError(f"{path}: {source} checkpoint lacks {len(missing)} ResNet-50 tensors, e.g. {missing[:2]}")
    for k, v in state.items():
        if k not in own:
            raise ValueError(f"{path}: unexpected tensor {k!r} in the {source} checkpoint")
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, ResNet-50 needs {tuple(own[k].shape)}")
    model.load_state_dict({**own, **{k: torch.as_tensor(v) for k, v in state.items()}})


def load_backbone(source: str, weights: str | os.PathLike | None = None, *, cache_dir=None, seed: int = 0,
                  proxy: ProxyRecipe | None = None):
    """A torchvision ResNet-50 (fc replaced later) initialised from ``source``.

    Parameters
    ----------
    source : one of :data:`SOURCES`
    weights : path, optional
        Explicit weights file (imagenet: torchvision state dict; radimagenet: the authors' checkpoint).
    cache_dir : path, optional
        Where the proxy backbones are pretrained and cached.
    """
    import torch
    from torchvision.models import resnet50

    if source not in SOURCES:
        raise ValueError(f"backbone {source!r} is not one of {', '.join(SOURCES)}")
    torch.manual_seed(seed)
    model = resnet50(weights=None)
    if source == "random":
        return model
    if source == "imagenet":
        path = Path(weights) if weights else hub_checkpoint_dir() / IMAGENET_FILE
        if not path.is_file():
            raise _missing("ImageNet", path, "torchvision's ResNet50_Weights.IMAGENET1K_V2 file, as torch.hub "
                                             "caches it")
        _load_into(model, torch.load(path, map_location="cpu", weights_only=True), source, path)
        return model
    if source == "radimagenet":
        path = Path(weights) if weights else hub_checkpoint_dir() / RADIMAGENET_FILE
        if not path.is_file():
            raise _missing("RadImageNet", path, "the ResNet-50 PyTorch checkpoint of the RadImageNet authors")
        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_into(model, radimagenet_state_dict(state), source, path)
        return model
    path = Path(weights) if weights else proxy_checkpoint(source, cache_dir=cache_dir, seed=seed, recipe=proxy)
    _load_into(model, torch.load(path, map_location="cpu", weights_only=True), source, path)
    return model


# ----------------------------------------------------------------------------------------------
# Offline proxy pretraining (rotation prediction on natural or synthetic radiology images)
# ----------------------------------------------------------------------------------------------

NATURAL_IMAGES = ("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel", "horse",
                  "hubble_deep_field", "moon", "page", "rocket", "text", "clock", "colorwheel", "logo")


@dataclass(frozen=True)
class ProxyRecipe:
    """Pretext training of the proxy backbones: same for both domains, so only the images differ."""

    size: int = 48
    n_images: int = 384
    steps: int = 60
    batch_size: int = 32
    lr: float = 1e-3

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def proxy_images(source: str, n: int, size: int, seed: int = 0) -> np.ndarray:
    """Pretext images in [0, 1], shape (n, size, size).

    ``proxy-natural``: random crops of the natural photographs scikit-image ships (grey levels).
    ``proxy-medical``: the vertebra region of synthetic radiographs and CT sagittal slices drawn with
    seeds the study cohort never uses (so no study image is seen in pretraining).
    """
    from skimage import color, data, transform

    rng = np.random.default_rng([seed, SOURCES.index(source)])
    if source == "proxy-natural":
        pool = []
        for name in NATURAL_IMAGES:
            try:
                im = getattr(data, name)()
            except Exception:  # noqa: BLE001 - an image that needs a download is simply not used
                continue
            im = np.asarray(im, dtype=float)
            if im.ndim == 3:
                im = color.rgb2gray(im[..., :3] / (255.0 if im.max() > 1 else 1.0))
            elif im.max() > 1:
                im = im / 255.0
            pool.append(im)
        if len(pool) < 5:
            raise ValueError("scikit-image ships fewer than 5 of its sample images here; cannot pretrain proxy-natural")
        out = np.empty((n, size, size), np.float32)
        for i in range(n):
            im = pool[rng.integers(len(pool))]
            side = int(rng.integers(size, max(size + 1, min(im.shape[:2]) // 2)))
            r, c = rng.integers(0, im.shape[0] - side + 1), rng.integers(0, im.shape[1] - side + 1)
            out[i] = transform.resize(im[r:r + side, c:c + side], (size, size), anti_aliasing=True)
        return out
    if source == "proxy-medical":
        from ovfkit import synth

        recipe = Recipe(size=size, equalize=True)
        out = []
        per = (n + 1) // 2
        for k, modality in enumerate(("xray", "ct")):
            table = synth.cohort_table(modality, seed=1_000_003 + seed, n_patients=max(8, per))
            centers = synth.XRAY_CENTERS if modality == "xray" else synth.CT_CENTERS
            make = synth._xray_image if modality == "xray" else synth._ct_image
            for i in range(per):
                row = table.iloc[i % len(table)]
                img, msk, spacing, origin = make(row, centers[row["center"]], np.random.default_rng([seed, k, i]))
                im, mk = _as_sitk(img, spacing, origin), _as_sitk(msk, spacing, origin)
                out.append(prepare_image(im, mk, modality, recipe))
        return np.stack(out[:n]).astype(np.float32)
    raise ValueError(f"{source!r} is not a proxy backbone")


def _as_sitk(array, spacing, origin):
    import SimpleITK as sitk

    im = sitk.GetImageFromArray(array)
    im.SetSpacing(tuple(float(s) for s in spacing))
    im.SetOrigin(tuple(float(o) for o in origin))
    return im


def proxy_checkpoint(source: str, *, cache_dir=None, seed: int = 0, recipe: ProxyRecipe | None = None,
                     progress: bool = False) -> Path:
    """Pretrain (once) and cache a proxy backbone; return the path of its state dict."""
    import torch
    from torchvision.models import resnet50
    from tqdm.auto import tqdm

    recipe = recipe or ProxyRecipe()
    if cache_dir is None:
        raise ValueError(f"{source} is pretrained by ovfkit and cached: pass cache_dir=")
    path = Path(cache_dir) / f"{source}-{recipe.key()}-seed{seed}.pt"
    if path.exists():
        return path
    _deterministic(seed)
    x = proxy_images(source, recipe.n_images, recipe.size, seed=seed)
    model = resnet50(weights=None, num_classes=4)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(recipe.steps), desc=f"pretrain {source}", disable=not progress):
        idx = torch.randint(0, len(x), (recipe.batch_size,), generator=gen).numpy()
        rot = torch.randint(0, 4, (recipe.batch_size,), generator=gen)
        imgs = np.stack([np.rot90(x[i], k=int(r)) for i, r in zip(idx, rot)])
        loss = torch.nn.functional.cross_entropy(model(to_network_input(imgs, "minus1to1")), rot)
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    _atomic_torch_save(state, path)
    return path


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    from ovfkit.atomic import atomic_output

    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _deterministic(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False


# ----------------------------------------------------------------------------------------------
# Fine-tuning and feature extraction
# ----------------------------------------------------------------------------------------------

def _set_trainable(model, trainable: str) -> None:
    if trainable not in ("all", "layer4", "none"):
        raise ValueError(f"trainable={trainable!r} is not 'all', 'layer4' or 'none'")
    for name, p in model.named_parameters():
        p.requires_grad = trainable == "all" or name.startswith("fc.") or (
            trainable == "layer4" and name.startswith("layer4."))


def _train_mode(model, trainable: str) -> None:
    """Train mode, but frozen BatchNorm layers keep their pretrained running statistics."""
    import torch

    model.train()
    if trainable == "all":
        return
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and not (trainable == "layer4" and name.startswith("layer4")):
            module.eval()


def _validation_split(labels: pd.Series, groups: pd.Series, fraction: float, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    # The held-out share is 1/n_splits; tiny training sets bound n_splits by patients and class sizes.
    n_splits = max(2, min(int(round(1 / fraction)), groups.nunique(), int(labels.value_counts().max())))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fit_idx, val_idx = next(cv.split(np.zeros(len(labels)), labels.to_numpy(), groups.to_numpy()))
    return labels.index[fit_idx], labels.index[val_idx]


def _predict(model, x: np.ndarray, scaling: str, batch_size: int = 64, features: bool = False) -> np.ndarray:
    import torch

    model.eval()
    fc = model.fc
    if features:
        model.fc = torch.nn.Identity()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out.append(model(to_network_input(x[i:i + batch_size], scaling)).numpy())
    finally:
        model.fc = fc
    return np.concatenate(out) if out else np.zeros((0, 2048 if features else fc.out_features), np.float32)


@dataclass
class FineTuned:
    """A fine-tuned network, its per-epoch history and the fit/validation split (vertebra ids)."""

    model: object
    history: pd.DataFrame
    fit_ids: list = field(default_factory=list)
    val_ids: list = field(default_factory=list)


def finetune(model, inputs: pd.Series, labels: pd.Series, groups: pd.Series, recipe: Recipe, *,
             checkpoint_dir=None, progress: bool = True) -> FineTuned:
    """Fine-tune ``model`` to the 3 ASTLOF classes on the training rows given.

    A patient-grouped, stratified validation split is held out inside these rows for the curves. Adam,
    ``recipe.batch_size``, ``recipe.epochs``, cosine annealing of the learning rate, optional
    class-weighted cross-entropy, horizontal flips. With ``checkpoint_dir`` the state is saved after every
    epoch and an interrupted run resumes from the last one.
    """
    import torch
    from sklearn.metrics import roc_auc_score
    from tqdm.auto import tqdm

    _deterministic(recipe.seed)
    labels = labels.astype(int)
    fit_ids, val_ids = _validation_split(labels, groups.loc[labels.index], recipe.val_fraction, recipe.seed)
    x_fit = np.stack(inputs.loc[fit_ids].to_numpy())
    y_fit = torch.as_tensor(labels.loc[fit_ids].to_numpy())
    x_val = np.stack(inputs.loc[val_ids].to_numpy())
    y_val = labels.loc[val_ids].to_numpy()
    model.fc = torch.nn.Linear(2048, 3)
    torch.manual_seed(recipe.seed)
    torch.nn.init.normal_(model.fc.weight, std=0.01)
    torch.nn.init.zeros_(model.fc.bias)
    _set_trainable(model, recipe.trainable)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.lr,
                           weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, recipe.epochs)) \
        if recipe.scheduler == "cosine" else None
    counts = np.bincount(y_fit.numpy(), minlength=3).astype(float)
    weight = torch.as_tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32) \
        if recipe.class_weighted else None
    history, start = [], 0
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        history, start = state["history"], state["epoch"]
    for epoch in range(start, recipe.epochs):
        gen = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)
        order = torch.randperm(len(x_fit), generator=gen).numpy()
        flips = torch.rand(len(x_fit), generator=gen).numpy() < 0.5
        _train_mode(model, recipe.trainable)
        t0, losses, correct, seen = time.perf_counter(), [], 0, 0
        batches = range(0, len(order), recipe.batch_size)
        if recipe.max_train_batches:
            batches = list(batches)[: recipe.max_train_batches]
        for b in tqdm(batches, desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False):
            idx = order[b:b + recipe.batch_size]
            xb = np.stack([x_fit[i][:, ::-1] if flips[i] else x_fit[i] for i in idx])
            logits = model(to_network_input(xb, recipe.scaling))
            loss = torch.nn.functional.cross_entropy(logits, y_fit[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item() * len(idx))
            correct += int((logits.argmax(1) == y_fit[idx]).sum())
            seen += len(idx)
        seconds = time.perf_counter() - t0
        if sched is not None:
            sched.step()
        logits_val = _predict(model, x_val, recipe.scaling)
        p_val = torch.softmax(torch.as_tensor(logits_val), 1).numpy()
        val_loss = float(torch.nn.functional.cross_entropy(torch.as_tensor(logits_val), torch.as_tensor(y_val),
                                                           weight=weight))
        try:
            val_auc = float(roc_auc_score(y_val, p_val, multi_class="ovr", labels=[0, 1, 2]))
        except ValueError:  # a class absent from a tiny validation split
            val_auc = float("nan")
        history.append({"epoch": epoch + 1, "train_loss": sum(losses) / max(seen, 1),
                        "train_accuracy": correct / max(seen, 1), "val_loss": val_loss,
                        "val_accuracy": float((p_val.argmax(1) == y_val).mean()), "val_macro_auc": val_auc,
                        "lr": opt.param_groups[0]["lr"], "train_images_per_s": seen / seconds})
        if ckpt is not None:
            _atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict() if sched is not None else None,
                                "epoch": epoch + 1, "history": history}, ckpt)
    return FineTuned(model, pd.DataFrame(history), list(fit_ids), list(val_ids))


def extract_features(model, inputs: pd.Series, scaling: str) -> pd.DataFrame:
    """2048-D average-pooling output for every input: DataFrame (n, 2048), columns ``deep_0000``..."""
    feats = _predict(model, np.stack(inputs.to_numpy()), scaling, features=True)
    return pd.DataFrame(feats, index=inputs.index, columns=[f"deep_{i:04d}" for i in range(feats.shape[1])])


def grad_cam(model, x: np.ndarray, target: int, scaling: str) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of ``target`` at layer4 for one input (size, size) -> map in [0, 1]."""
    import torch

    model.eval()
    acts, grads = {}, {}

    def keep(module, inputs, output):
        acts["a"] = output
        output.register_hook(lambda grad: grads.__setitem__("g", grad))

    handle = model.layer4.register_forward_hook(keep)
    try:
        out = model(to_network_input(x[None], scaling))
        model.zero_grad()
        out[0, target].backward()
    finally:
        handle.remove()
    w = grads["g"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((w * acts["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape, mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().numpy()
    return cam / cam.max() if cam.max() > 0 else cam


class DeepPCA(TransformerMixin, BaseEstimator):
    """PCA of the deep columns (``prefix``), fitted on the rows ``fit`` sees; other columns pass through.

    Parameters
    ----------
    n_components : int or float
        As :class:`sklearn.decomposition.PCA` (a float keeps that share of variance).
    prefix : str
        Columns starting with it are the deep features.
    """

    def __init__(self, n_components=0.95, prefix: str = "deep_", random_state: int = 0):
        self.n_components = n_components
        self.prefix = prefix
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, reset=True)
        names = np.asarray(getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])]), dtype=object)
        self.deep_mask_ = np.array([str(n).startswith(self.prefix) for n in names])
        if not self.deep_mask_.any():
            raise ValueError(f"no column starts with {self.prefix!r}; nothing for DeepPCA to reduce")
        self.pca_ = PCA(n_components=self.n_components, random_state=self.random_state).fit(X[:, self.deep_mask_])
        self.input_names_ = names
        return self

    def transform(self, X):
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return np.hstack([X[:, ~self.deep_mask_], self.pca_.transform(X[:, self.deep_mask_])])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "pca_")
        pcs = [f"{self.prefix}pc{i + 1:03d}" for i in range(self.pca_.n_components_)]
        return np.asarray(list(self.input_names_[~self.deep_mask_]) + pcs, dtype=object)


def _proxy_recipe(recipe: Recipe) -> ProxyRecipe:
    return ProxyRecipe(n_images=recipe.proxy_images, steps=recipe.proxy_steps,
                       size=min(48, recipe.size), batch_size=min(32, max(4, recipe.proxy_images)))


# ----------------------------------------------------------------------------------------------
# The whole step, cached
# ----------------------------------------------------------------------------------------------

@dataclass
class DeepResult:
    """Deep features of every vertebra and how they were made."""

    features: pd.DataFrame
    history: pd.DataFrame
    backbone: str
    weights: str
    recipe: Recipe
    model_path: Path
    inputs: pd.Series
    seconds: float

    def load_model(self):
        import torch
        from torchvision.models import resnet50

        model = resnet50(weights=None, num_classes=3)
        model.load_state_dict(torch.load(self.model_path, map_location="cpu", weights_only=True))
        return model.eval()


def deep_features(manifest: pd.DataFrame, backbone: str, recipe: Recipe, *, weights=None, cache_dir,
                  progress: bool = True, n_jobs: int = -1) -> DeepResult:
    """Fine-tune a ResNet-50 from ``backbone`` on the training cohort and extract 2048-D features of all rows.

    Only ``cohort == "train"`` rows (and their labels) are used for fine-tuning; features come out for
    every row. Cached under ``cache_dir`` by backbone (weights file hash), recipe, inputs, labels and this
    module's code; fine-tuning checkpoints every epoch, so an interrupted run resumes.
    """
    from ovfkit.manifest import write_csv_atomic
    from ovfkit.provenance import file_hash

    cache_dir = Path(cache_dir)
    if len(set(manifest["modality"])) != 1:
        raise ValueError("deep_features needs a single-modality manifest")
    t0 = time.perf_counter()
    inputs = prepare_manifest(manifest, recipe, cache_dir=cache_dir / "inputs", n_jobs=n_jobs)
    train = manifest.index[manifest["cohort"] == "train"]
    if len(train) == 0:
        raise ValueError("no training rows (cohort == 'train') to fine-tune on")
    if weights is not None:
        wkey = file_hash(weights)[:16]
    elif backbone in ("proxy-natural", "proxy-medical"):
        wkey = Path(proxy_checkpoint(backbone, cache_dir=cache_dir / "proxy", seed=recipe.seed,
                                     recipe=_proxy_recipe(recipe), progress=progress)).stem
    else:
        wkey = "default"
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]  # preparation and training code
    data_key = hashlib.sha256(json.dumps({
        "code": code,
        "inputs": sorted((k, hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16])
                         for k, v in inputs.items()),
        "labels": manifest.loc[train, "astlof_class"].astype(int).tolist(),
        "groups": manifest.loc[train, "patient_id"].tolist()}).encode()).hexdigest()[:16]
    run = cache_dir / f"{backbone}-{wkey}-{recipe.key()}-{data_key}"
    feats_path, hist_path, model_path = run / "features.parquet", run / "history.csv", run / "model.pt"
    if not feats_path.exists():
        model = load_backbone(backbone, weights, cache_dir=cache_dir / "proxy", seed=recipe.seed,
                              proxy=_proxy_recipe(recipe))
        tuned = finetune(model, inputs.loc[train], manifest.loc[train, "astlof_class"], manifest.loc[train, "patient_id"],
                         recipe, checkpoint_dir=run / "checkpoints", progress=progress)
        _atomic_torch_save(tuned.model.state_dict(), model_path)
        write_csv_atomic(tuned.history, hist_path)
        table = extract_features(tuned.model, inputs.loc[manifest.index], recipe.scaling)
        from ovfkit.atomic import atomic_output

        with atomic_output(feats_path) as tmp:
            table.to_parquet(tmp)
    features = pd.read_parquet(feats_path)
    history = pd.read_csv(hist_path)
    return DeepResult(features, history, backbone, wkey, recipe, model_path, inputs, time.perf_counter() - t0)


def sources_statement(backbones, recipe: Recipe, weights: dict | None = None) -> str:
    """One Markdown paragraph naming which pretrained sources produced a chapter's numbers."""
    text = {
        "imagenet": "ImageNet (torchvision ResNet-50 IMAGENET1K_V2 weights)",
        "radimagenet": "RadImageNet (the authors' ResNet-50 PyTorch checkpoint)",
        "random": "random initialisation (no pretraining)",
        "proxy-natural": f"**proxy-natural**: ovfkit's own stand-in for ImageNet, pretrained offline by rotation "
                         f"prediction on crops of scikit-image's natural photographs ({recipe.proxy_steps} steps)",
        "proxy-medical": f"**proxy-medical**: ovfkit's own stand-in for RadImageNet, pretrained the same way on "
                         f"synthetic radiographs and CT slices that are not this cohort ({recipe.proxy_steps} steps)",
    }
    parts = [text[b] + (f", weights file `{Path(weights[b]).name}`" if weights and b in weights else "")
             for b in backbones]
    note = ""
    if {"proxy-natural", "proxy-medical"} & set(backbones):
        note = (" The proxies compare two pretraining *domains* with a small offline pretext; they are not the "
                "ImageNet or RadImageNet networks of the papers, whose weights cannot be downloaded here, and their "
                "numbers say nothing about those networks.")
    return "**Backbone sources behind every number in this chapter:** " + "; ".join(parts) + "." + note
