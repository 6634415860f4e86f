"""The CNN comparison of guo2026 and li: eight torchvision architectures trained on the same folds.

guo2026 fine-tunes AlexNet, VGG16, GoogLeNet, ResNet-50 and ResNet-101 from ImageNet weights (cross-entropy,
SGD with learning rate 1e-3 and momentum 0.9, 100 epochs, learning rate x 0.8 every 30 epochs, random
left-right and top-bottom flips, inputs histogram-equalized and scaled to [-1, 1] at 224 px) and compares them
by five-fold cross-validation; li trains EfficientNet, MobileNet and MnasNet (unnamed variants: here
EfficientNet-B0, MobileNet V3-Large and MnasNet 1.0). :func:`cross_validate` trains every architecture on the
same patient-grouped folds and returns the out-of-fold probabilities, the training curves, the cost of each
network and Grad-CAM maps of the same cases.

Weights: torchvision's ImageNet files, read from ``weights_dir`` or torch's hub cache under the names
torchvision gives them (nothing is downloaded; a missing file fails in one line naming it), the offline stand-in
``proxy-natural`` (each architecture pretrained by ovfkit on a rotation pretext over natural photographs, as
:mod:`ovfkit.deep.proxy` does for ResNet-50), or ``random``. ``auto`` takes the ImageNet file where it exists and
the stand-in otherwise, and :func:`weight_sources` says which, per architecture.

With ``trainable="tail"`` the front of each network (everything before its last stage) is frozen; with
``"head"`` (the default profile on CPU) everything but the final linear layer is (a linear probe). The frozen
front's output is computed once per image and every fold trains the rest only (:func:`split`). That is exact:
a frozen front with BatchNorm on running statistics and no dropout is the same function in every fold.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.atomic import exclusive
from ovfkit.deep.inputs import to_network_input
from ovfkit.deep.training import atomic_torch_save, deterministic
from ovfkit.provenance import code_digest, json_digest

#: torchvision names, in the order of the papers' tables (guo2026's five, then li's three).
ARCHITECTURES = ("alexnet", "vgg16", "googlenet", "resnet50", "resnet101", "efficientnet_b0",
                 "mobilenet_v3_large", "mnasnet1_0")
DISPLAY = {"alexnet": "AlexNet", "vgg16": "VGG16", "googlenet": "GoogLeNet", "resnet50": "ResNet-50",
           "resnet101": "ResNet-101", "efficientnet_b0": "EfficientNet-B0", "mobilenet_v3_large": "MobileNet V3-Large",
           "mnasnet1_0": "MnasNet 1.0"}
PAPER = {a: "guo2026" for a in ARCHITECTURES[:5]} | {a: "li" for a in ARCHITECTURES[5:]}
SOURCES = ("auto", "imagenet", "proxy-natural", "random")
#: The module whose output Grad-CAM weighs: each network's last convolutional stage.
CAM_LAYER = {"alexnet": "features.11", "vgg16": "features.29", "googlenet": "inception5b", "resnet50": "layer4",
             "resnet101": "layer4", "efficientnet_b0": "features.8", "mobilenet_v3_large": "features.16",
             "mnasnet1_0": "layers.16"}


@dataclass(frozen=True)
class ZooRecipe:
    """How the architectures are trained and compared (part of every cache key).

    Attributes
    ----------
    architectures : tuple of str
        Keys of :data:`ARCHITECTURES`.
    size : int
        Input side in pixels (guo2026: 224; AlexNet needs at least 64).
    equalize : bool
        Histogram equalization of the patch (guo2026).
    margin : float
        ROI margin around the vertebral body, as a fraction of its larger side (guo2026: 1-10 mm).
    epochs, batch_size, lr, momentum, step_epochs, gamma
        SGD with momentum; the learning rate is multiplied by ``gamma`` every ``step_epochs`` epochs.
    weight_decay : float
        L2 penalty of SGD (guo2026: none).
    trainable : {"all", "tail", "head"}
        Train the whole network, only its last stage and classifier, or only its final linear layer on the
        frozen network's penultimate output (a linear probe); see :func:`split`.
    flips : tuple of {"lr", "tb"}
        Random left-right / top-bottom flips of the training images (each with probability 1/2).
    folds : int
        Patient-grouped, stratified cross-validation folds (guo2026: 5).
    max_train_batches : int or None
        A cap on the batches of an epoch (the quick profile).
    proxy_steps, proxy_images : int
        Size of the rotation pretext that pretrains the ``proxy-natural`` stand-in.
    seed : int
    """

    architectures: tuple = ARCHITECTURES
    size: int = 224
    equalize: bool = True
    margin: float = 0.1
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    momentum: float = 0.9
    step_epochs: int = 30
    gamma: float = 0.8
    weight_decay: float = 0.0
    trainable: str = "all"
    flips: tuple = ("lr", "tb")
    folds: int = 5
    max_train_batches: int | None = None
    proxy_steps: int = 60
    proxy_images: int = 384
    seed: int = 0

    def key(self, arch: str) -> str:
        """16 hex digits of every setting that decides ``arch``'s networks."""
        return json_digest({**asdict(self), "architectures": [arch]})

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting out of range."""
        unknown = [a for a in self.architectures if a not in ARCHITECTURES]
        if unknown:
            raise ValueError(f"architecture {unknown[0]!r} is not one of {', '.join(ARCHITECTURES)}")
        if self.size < 64 and "alexnet" in self.architectures:
            raise ValueError(f"size={self.size}: AlexNet needs inputs of at least 64 px; raise the size")
        if self.trainable not in ("all", "tail", "head"):
            raise ValueError(f"trainable={self.trainable!r} is not 'all', 'tail' or 'head'")
        bad = [f for f in self.flips if f not in ("lr", "tb")]
        if bad:
            raise ValueError(f"flip {bad[0]!r} is not 'lr' or 'tb'")
        if self.folds < 2:
            raise ValueError(f"folds={self.folds}: cross-validation needs at least 2 folds")


# ---------------------------------------------------------------------------------------------------------
# Building and splitting the networks
# ---------------------------------------------------------------------------------------------------------

def build(arch: str, n_classes: int = 1000):
    """An untrained torchvision ``arch`` with a ``n_classes`` head (GoogLeNet without auxiliary heads).

    GoogLeNet keeps ``transform_input=False``: its ImageNet weights (ported from the original Inception v1)
    expect inputs in [-1, 1], which is the scaling used here.
    """
    import torchvision

    if arch not in ARCHITECTURES:
        raise ValueError(f"architecture {arch!r} is not one of {', '.join(ARCHITECTURES)}")
    extra = {"aux_logits": False, "init_weights": True, "transform_input": False} if arch == "googlenet" else {}
    return torchvision.models.get_model(arch, weights=None, num_classes=n_classes, **extra)


def head(model, arch: str):
    """(parent module, attribute name) of the final linear layer."""
    if arch.startswith("resnet") or arch == "googlenet":
        return model, "fc"
    return model.classifier, str(len(model.classifier) - 1)


def replace_head(model, arch: str, n_classes: int, seed: int = 0):
    """Swap the final linear layer for a fresh ``n_classes`` one (weights N(0, 0.01), zero bias)."""
    import torch

    parent, name = head(model, arch)
    old = getattr(parent, name)
    torch.manual_seed(seed)
    new = torch.nn.Linear(old.in_features, n_classes)
    torch.nn.init.normal_(new.weight, std=0.01)
    torch.nn.init.zeros_(new.bias)
    setattr(parent, name, new)
    return model


def split(model, arch: str, trainable: str = "tail"):
    """The frozen front and the trainable tail of ``model``: ``tail(front(x)) == model(x)`` in eval mode.

    With ``trainable="head"`` the tail is the final linear layer alone. Otherwise it is the last stage and
    the classifier: ResNet ``layer4``, GoogLeNet ``inception5b``, the last
    blocks of EfficientNet (``features[7:]``), MobileNet V3 (``features[15:]``) and MnasNet (``layers[13:]``),
    and for AlexNet and VGG16, whose last stage is the fully connected classifier, its last two linear layers.
    Both share their modules (and parameters) with ``model``.

    Returns
    -------
    (torch.nn.Sequential, torch.nn.Sequential)
    """
    import torch
    from torch import nn

    class GlobalMean(nn.Module):
        def forward(self, x):
            return x.mean([2, 3])

    m = model
    flat = nn.Flatten(1)
    if arch.startswith("resnet"):
        front = [m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3]
        tail = [m.layer4, m.avgpool, flat, m.fc]
    elif arch == "alexnet":
        front = [m.features, m.avgpool, flat, *m.classifier[:3]]
        tail = list(m.classifier[3:])
    elif arch == "vgg16":
        front = [m.features, m.avgpool, flat, *m.classifier[:2]]
        tail = list(m.classifier[2:])
    elif arch == "googlenet":
        names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                 "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a"]
        front = [getattr(m, n) for n in names]
        tail = [m.inception5b, m.avgpool, flat, m.dropout, m.fc]
    elif arch == "efficientnet_b0":
        front = list(m.features[:7])
        tail = [*m.features[7:], m.avgpool, flat, *m.classifier]
    elif arch == "mobilenet_v3_large":
        front = list(m.features[:15])
        tail = [*m.features[15:], m.avgpool, flat, *m.classifier]
    elif arch == "mnasnet1_0":
        front = list(m.layers[:13])
        tail = [*m.layers[13:], GlobalMean(), *m.classifier]
    else:
        raise ValueError(f"architecture {arch!r} is not one of {', '.join(ARCHITECTURES)}")
    if trainable == "head":
        front, tail = front + tail[:-1], tail[-1:]
    return torch.nn.Sequential(*front), torch.nn.Sequential(*tail)


def count_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ---------------------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------------------

def weights_file(arch: str) -> str:
    """The file name torchvision gives ``arch``'s default ImageNet weights (as torch.hub caches it)."""
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT.url.rsplit("/", 1)[-1]


def _imagenet_path(arch: str, weights_dir=None) -> Path:
    from ovfkit.deep.backbones import hub_checkpoint_dir

    return Path(weights_dir or hub_checkpoint_dir()) / weights_file(arch)


def weight_sources(architectures, source: str = "auto", weights_dir=None) -> pd.DataFrame:
    """Which weights each architecture starts from: one row per architecture.

    ``auto``: the ImageNet file where it is present in ``weights_dir`` (default: torch's hub cache), else the
    ``proxy-natural`` stand-in. Columns: ``architecture``, ``source``, ``file`` (the ImageNet file looked for),
    ``present`` (bool).
    """
    if source not in SOURCES:
        raise ValueError(f"weights source {source!r} is not one of {', '.join(SOURCES)}")
    rows = []
    for arch in architectures:
        path = _imagenet_path(arch, weights_dir)
        chosen = source if source != "auto" else ("imagenet" if path.is_file() else "proxy-natural")
        rows.append({"architecture": arch, "source": chosen, "file": str(path), "present": path.is_file()})
    return pd.DataFrame(rows)


def _missing(arch: str, path: Path) -> ValueError:
    return ValueError(f"ImageNet weights for {arch} not found: put torchvision's {path.name} at {path} "
                      f"(pass --weights DIR for another folder), or use the proxy-natural stand-in")


def load_imagenet(model, arch: str, weights_dir=None):
    """Load torchvision's ImageNet weights file into ``model`` (1000-class head); one line if it is missing."""
    import torch

    path = _imagenet_path(arch, weights_dir)
    if not path.is_file():
        raise _missing(arch, path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    kept = collections.OrderedDict((k, v) for k, v in state.items() if not k.startswith("aux"))  # GoogLeNet's
    kept._metadata = getattr(state, "_metadata", None)  # module versions (MnasNet checks its own)
    state = kept
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not torchvision's {arch} weights ({len(missing)} tensors missing, "
                         f"{len(unexpected)} unexpected, e.g. {(missing or unexpected)[:2]})")
    return model


def proxy_path(arch: str, recipe: ZooRecipe, cache_dir) -> Path:
    """Where the ``proxy-natural`` stand-in of ``arch`` is cached (keyed by the pretext and this module's code)."""
    if cache_dir is None:
        raise ValueError(f"the proxy-natural stand-in of {arch} is pretrained by ovfkit and cached: pass cache_dir=")
    key = json_digest({"steps": recipe.proxy_steps, "images": recipe.proxy_images, "size": recipe.size,
                       "seed": recipe.seed}, 12)
    return Path(cache_dir) / f"zoo-proxy-natural-{arch}-{key}-{code_digest(__name__)}.pt"


def proxy_state(arch: str, recipe: ZooRecipe, cache_dir, progress: bool = False) -> Path:
    """Pretrain (once) ``arch`` on the rotation pretext over natural photographs; return the cached file.

    The pretext is :mod:`ovfkit.deep.proxy`'s: predict which of four rotations an image crop was given.
    """
    import torch
    from tqdm.auto import tqdm

    from ovfkit.deep.proxy import proxy_images

    path = proxy_path(arch, recipe, cache_dir)
    if path.exists():
        return path
    with exclusive(path):
        if path.exists():
            return path
        deterministic(recipe.seed)
        x = proxy_images("proxy-natural", recipe.proxy_images, recipe.size, seed=recipe.seed)
        model = replace_head(build(arch), arch, 4, recipe.seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
        gen = torch.Generator().manual_seed(recipe.seed)
        batch = min(16, len(x))
        model.train()
        for _ in tqdm(range(recipe.proxy_steps), desc=f"pretrain {arch} stand-in", disable=not progress,
                      leave=False):
            idx = torch.randint(0, len(x), (batch,), generator=gen).numpy()
            rot = torch.randint(0, 4, (batch,), generator=gen)
            imgs = np.stack([np.rot90(x[i], k=int(r)) for i, r in zip(idx, rot)])
            loss = torch.nn.functional.cross_entropy(model(to_network_input(imgs, "minus1to1")), rot)
            opt.zero_grad()
            loss.backward()
            opt.step()
        atomic_torch_save(model.state_dict(), path)
    return path


def initial_model(arch: str, source: str, recipe: ZooRecipe, n_classes: int, *, weights_dir=None,
                  cache_dir=None, progress: bool = False):
    """``arch`` with the weights of ``source`` (``imagenet``, ``proxy-natural`` or ``random``) and a fresh head."""
    import torch

    deterministic(recipe.seed)
    if source == "imagenet":
        model = load_imagenet(build(arch), arch, weights_dir)
    elif source == "proxy-natural":
        model = replace_head(build(arch), arch, 4, recipe.seed)
        model.load_state_dict(torch.load(proxy_state(arch, recipe, cache_dir, progress), map_location="cpu",
                                         weights_only=True))
    elif source == "random":
        model = build(arch)
    else:
        raise ValueError(f"weights source {source!r} is not 'imagenet', 'proxy-natural' or 'random'")
    return replace_head(model, arch, n_classes, recipe.seed)


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------

def _flip(x, lr: bool, tb: bool):
    if lr:
        x = x.flip(-1)
    if tb:
        x = x.flip(-2)
    return x


def _variants(recipe: ZooRecipe) -> list:
    """(lr, tb) flip combinations a training image can take."""
    lr = (False, True) if "lr" in recipe.flips else (False,)
    tb = (False, True) if "tb" in recipe.flips else (False,)
    return [(a, b) for a in lr for b in tb]


def _train_mode(model, front, recipe: ZooRecipe) -> None:
    model.train()
    if recipe.trainable != "all":
        front.eval()  # frozen: BatchNorm on running statistics, no dropout


def fit_predict(model, arch: str, x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, test_rows: np.ndarray,
                recipe: ZooRecipe, *, fronts: dict | None = None, progress: bool = False):
    """Train ``model`` on ``fit_rows`` of ``x`` (n, size, size) and return (P(class 1) of ``test_rows``, history).

    SGD with momentum, cross-entropy, the learning rate times ``gamma`` every ``step_epochs`` epochs, random
    flips. ``fronts`` (flip combination -> front output of every row, a tensor) replaces the frozen front's
    forward pass when part of the network is frozen (``recipe.trainable`` ``"tail"`` or ``"head"``).
    """
    import torch
    from tqdm.auto import tqdm

    deterministic(recipe.seed)
    front, tail = split(model, arch, recipe.trainable)
    if recipe.trainable != "all":
        for p in front.parameters():
            p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.step_epochs, gamma=recipe.gamma)
    yt = torch.as_tensor(y, dtype=torch.long)
    variants = _variants(recipe)
    if fronts is not None and recipe.trainable == "head":
        fronts, scale = _standardized(fronts, fit_rows)
    history = []
    for epoch in range(recipe.epochs):
        gen = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)
        order = fit_rows[torch.randperm(len(fit_rows), generator=gen).numpy()]
        pick = torch.randint(0, len(variants), (len(order),), generator=gen).numpy()
        _train_mode(model, front, recipe)
        batches = list(range(0, len(order), recipe.batch_size))[: recipe.max_train_batches or None]
        t0, losses, seen = time.perf_counter(), 0.0, 0
        for b in tqdm(batches, desc=f"{arch} epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False):
            rows, vs = order[b:b + recipe.batch_size], pick[b:b + recipe.batch_size]
            if len(rows) < 2:  # BatchNorm cannot train on one image
                continue
            if fronts is not None:
                h = torch.stack([fronts[variants[v]][r] for r, v in zip(rows, vs)])
                logits = tail(h)
            else:
                xb = to_network_input(x[rows], "minus1to1")
                xb = torch.stack([_flip(xi, *variants[v]) for xi, v in zip(xb, vs)])
                logits = model(xb)
            loss = torch.nn.functional.cross_entropy(logits, yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses += loss.item() * len(rows)
            seen += len(rows)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_loss": losses / max(seen, 1), "lr": opt.param_groups[0]["lr"],
                        "train_images_per_s": seen / seconds if seconds > 0 else float("nan")})
        sched.step()
    if fronts is not None and recipe.trainable == "head":
        _fold_into(tail[0], *scale)
        fronts = {k: v * scale[1] + scale[0] for k, v in fronts.items()}  # back to the raw penultimate output
    model.eval()
    with torch.no_grad():
        if fronts is not None:
            logits = torch.cat([tail(fronts[(False, False)][test_rows[i:i + 64]])
                                for i in range(0, len(test_rows), 64)])
        else:
            logits = torch.cat([model(to_network_input(x[test_rows[i:i + 64]], "minus1to1"))
                                for i in range(0, len(test_rows), 64)])
    return torch.softmax(logits, 1)[:, 1].numpy().astype(float), pd.DataFrame(history)


def _standardized(fronts: dict, fit_rows: np.ndarray):
    """Penultimate outputs standardized with the fitted rows' mean and SD (per feature), and (mean, SD).

    A linear probe learns on standardized features (as a BatchNorm without affine parameters before the
    head does in MAE's linear probing, He et al. 2022): networks whose penultimate outputs differ in scale by
    orders of magnitude then train at the same learning rate. As in BatchNorm, ``eps = 1e-5`` is added to the
    variance, so a feature that hardly varies (a unit that is almost always zero) is not blown up. Only the
    fitted rows decide the scaling.
    """
    plain = fronts[(False, False)][fit_rows]
    mean, sd = plain.mean(0), (plain.var(0, unbiased=False) + 1e-5).sqrt()
    return {k: (v - mean) / sd for k, v in fronts.items()}, (mean, sd)


def _fold_into(linear, mean, sd) -> None:
    """Fold the standardization into ``linear``: ``linear((h - mean) / sd)`` becomes ``linear'(h)``, exactly."""
    import torch

    with torch.no_grad():
        linear.bias -= linear.weight @ (mean / sd)
        linear.weight /= sd


def front_outputs(model, arch: str, x: np.ndarray, recipe: ZooRecipe, batch_size: int = 64) -> dict:
    """The frozen front's output for every image and flip combination: {(lr, tb): tensor (n, ...)}."""
    import torch

    front, _ = split(model, arch, recipe.trainable)
    front.eval()
    out = {}
    with torch.no_grad():
        for lr, tb in _variants(recipe):
            parts = []
            for i in range(0, len(x), batch_size):
                parts.append(front(_flip(to_network_input(x[i:i + batch_size], "minus1to1"), lr, tb)))
            out[(lr, tb)] = torch.cat(parts)
    return out


def grad_cam(model, arch: str, x: np.ndarray) -> tuple[float, np.ndarray]:
    """P(class 1) of one prepared input (size, size) and the Grad-CAM of the predicted class, in [0, 1].

    Grad-CAM (Selvaraju et al. 2017, :func:`ovfkit.deep.gradcam.cam_at`) at :data:`CAM_LAYER`, upsampled
    bilinearly to the input size.
    """
    import torch

    from ovfkit.deep.gradcam import cam_at

    out, _, cam = cam_at(model, model.get_submodule(CAM_LAYER[arch]), to_network_input(x[None], "minus1to1"))
    return float(torch.softmax(out, 1)[0, 1]), cam


def training_speed(model, arch: str, size: int, batch_size: int = 8, steps: int = 2) -> float:
    """Images per second of full training steps (forward, backward and SGD update of every layer) on a copy of
    ``model``: what end-to-end training costs, whatever part of the network a profile trains."""
    import torch

    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad = True
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x = torch.zeros(batch_size, 3, size, size)
    y = torch.arange(batch_size) % 2
    seconds = 0.0
    for step in range(steps + 1):  # the first step warms up and is not timed
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds += (time.perf_counter() - t0) if step else 0.0
    return batch_size * steps / seconds


def latency_ms(model, size: int, n: int = 10) -> float:
    """Median wall time (ms) of one image through the whole network in eval mode (batch of one)."""
    import torch

    model.eval()
    x = torch.zeros(1, 3, size, size)
    times = []
    with torch.no_grad():
        model(x)  # warm-up
        for _ in range(n):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


# ---------------------------------------------------------------------------------------------------------
# Cross-validation of every architecture on the same folds
# ---------------------------------------------------------------------------------------------------------

def folds_of(labels: pd.Series, groups: pd.Series, n_folds: int, seed: int) -> pd.Series:
    """Fold (1..K) of every row: patient-grouped and stratified (:class:`~sklearn.model_selection.StratifiedGroupKFold`)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_patients = groups.nunique()
    if not 2 <= n_folds <= n_patients:
        raise ValueError(f"folds={n_folds} needs 2 <= K <= the {n_patients} patients; lower the profile's folds")
    fold = np.zeros(len(labels), dtype=int)
    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(cv.split(np.zeros(len(labels)), labels.to_numpy(), groups.to_numpy()), start=1):
        fold[test] = k
    return pd.Series(fold, index=labels.index, name="fold")


@dataclass
class ZooResult:
    """Out-of-fold predictions of every architecture on the same folds, and what each network cost.

    Attributes
    ----------
    oof : DataFrame
        One row per architecture and vertebra: ``architecture``, ``vertebra_id``, ``patient_id``, ``fold``,
        ``truth`` (0/1), ``p`` (out-of-fold P(class 1)).
    history : DataFrame
        One row per architecture, fold and epoch (``train_loss``, ``lr``, ``train_images_per_s`` of the
        part trained).
    cost : DataFrame
        Per architecture: ``parameters``, ``trainable_parameters`` (in this recipe), ``train_images_per_s``
        (:func:`training_speed`: every layer trained, batch of 8), ``latency_ms`` (one image through the whole
        network, :func:`latency_ms`), ``seconds`` (wall time of its cross-validation here).
    sources : DataFrame
        :func:`weight_sources`.
    cams : dict
        Architecture -> {vertebra id: (P(class 1), Grad-CAM map)} for the ``cam_ids`` asked for, each from the
        network of the fold that held it out.
    recipe : ZooRecipe
    """

    oof: pd.DataFrame
    history: pd.DataFrame
    cost: pd.DataFrame
    sources: pd.DataFrame
    cams: dict = field(default_factory=dict)
    recipe: ZooRecipe | None = None


def _architecture(arch: str, source: str, x: np.ndarray, y: np.ndarray, fold: np.ndarray, recipe: ZooRecipe,
                  cam_rows: np.ndarray, *, weights_dir, cache_dir, progress: bool) -> dict:
    """One architecture's cross-validation: out-of-fold probabilities, history, cost, Grad-CAMs."""
    t0 = time.perf_counter()
    base = initial_model(arch, source, recipe, 2, weights_dir=weights_dir, cache_dir=cache_dir, progress=progress)
    front, tail = split(base, arch, recipe.trainable)
    fronts = front_outputs(base, arch, x, recipe) if recipe.trainable != "all" else None
    trainable = count_parameters(tail) if recipe.trainable != "all" else count_parameters(base)
    p = np.full(len(y), np.nan)
    hist, cams = [], {}
    for k in range(1, int(fold.max()) + 1):
        model = copy.deepcopy(base)
        fit_rows, test_rows = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        p[test_rows], h = fit_predict(model, arch, x, y, fit_rows, test_rows, recipe, fronts=fronts,
                                      progress=progress)
        hist.append(h.assign(architecture=arch, fold=k))
        for r in cam_rows[np.isin(cam_rows, test_rows)]:
            cams[int(r)] = grad_cam(model, arch, x[r])
    history = pd.concat(hist, ignore_index=True)
    cost = {"architecture": arch, "parameters": count_parameters(base), "trainable_parameters": trainable,
            "train_images_per_s": training_speed(base, arch, recipe.size),
            "latency_ms": latency_ms(base, recipe.size), "seconds": time.perf_counter() - t0}
    return {"p": p, "history": history, "cost": cost, "cams": cams}


def cross_validate(inputs: pd.Series, labels: pd.Series, groups: pd.Series, recipe: ZooRecipe, *,
                   source: str = "auto", weights_dir=None, cache_dir=None, cam_ids=(), progress: bool = True
                   ) -> ZooResult:
    """Train every architecture of ``recipe`` on the same patient-grouped folds; out-of-fold predictions.

    Parameters
    ----------
    inputs : Series of ndarray (size, size) in [0, 1]
        Prepared patches (:func:`ovfkit.deep.prepare_manifest`), index vertebra id.
    labels : Series of int {0, 1}, same index
        1 = the positive class (fresh fracture).
    groups : Series, same index
        Patient id: a patient's vertebrae share a fold.
    recipe : ZooRecipe
    source : {"auto", "imagenet", "proxy-natural", "random"}
    weights_dir : path, optional
        Folder of torchvision's ImageNet files (default: torch's hub cache).
    cache_dir : path, optional
        Cache of the stand-ins and of each architecture's results (keyed by the inputs, labels, patients,
        recipe, weights file and code).
    cam_ids : sequence of vertebra ids
        Cases whose Grad-CAM every architecture draws.
    """
    import torch

    recipe.check()
    if not inputs.index.equals(labels.index) or not inputs.index.equals(groups.index):
        raise ValueError("inputs, labels and groups must share one index (vertebra ids in the same order)")
    y = labels.astype(int).to_numpy()
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"labels must be 0/1 with both classes present, got {sorted(set(np.unique(y)))}")
    fold = folds_of(labels, groups, recipe.folds, recipe.seed)
    x = np.stack(inputs.to_numpy()).astype(np.float32)
    cam_rows = np.flatnonzero(inputs.index.isin(list(cam_ids)))
    sources = weight_sources(recipe.architectures, source, weights_dir)
    absent = sources[(sources["source"] == "imagenet") & ~sources["present"]]
    if len(absent):  # before any training: one line naming the first missing file
        raise _missing(absent["architecture"].iloc[0], Path(absent["file"].iloc[0]))
    data_key = json_digest({"x": [str(i) for i in inputs.index], "xhash":
                            hashlib.sha256(x.tobytes()).hexdigest(), "y": y.tolist(),
                            "groups": groups.astype(str).tolist(), "cams": cam_rows.tolist()}, 16)
    parts = []
    for _, s in sources.iterrows():
        arch = s["architecture"]
        weights_id = (Path(s["file"]).name + str(Path(s["file"]).stat().st_size)) if s["source"] == "imagenet" \
            else s["source"]
        path = Path(cache_dir) / f"zoo-{arch}-{recipe.key(arch)}-{json_digest([data_key, weights_id], 12)}-" \
                                 f"{code_digest(__name__)}.pt" if cache_dir else None
        if path is not None and path.exists():
            parts.append(torch.load(path, map_location="cpu", weights_only=False))
            continue
        part = _architecture(arch, s["source"], x, y, fold.to_numpy(), recipe, cam_rows, weights_dir=weights_dir,
                             cache_dir=cache_dir, progress=progress)
        if path is not None:
            atomic_torch_save(part, path)
        parts.append(part)
    ids = inputs.index
    oof = pd.concat([pd.DataFrame({"architecture": a, "vertebra_id": ids, "patient_id": groups.to_numpy(),
                                   "fold": fold.to_numpy(), "truth": y, "p": part["p"]})
                     for a, part in zip(sources["architecture"], parts)], ignore_index=True)
    cams = {a: {ids[r]: v for r, v in part["cams"].items()} for a, part in zip(sources["architecture"], parts)}
    return ZooResult(oof, pd.concat([p["history"] for p in parts], ignore_index=True),
                     pd.DataFrame([p["cost"] for p in parts]), sources, cams, recipe)
