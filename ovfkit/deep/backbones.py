"""Pretrained ResNet-50 backbones, loaded from files only: nothing is downloaded at run time.

``imagenet``: torchvision's ``ResNet50_Weights.IMAGENET1K_V2`` file from a path or torch's hub cache;
``radimagenet``: the RadImageNet authors' PyTorch checkpoint (a ``backbone.N.*`` state dict); ``random``;
and two offline stand-ins that ovfkit pretrains itself (:mod:`ovfkit.deep.proxy`). A missing weights file
fails with one line that says which file to put where; nothing falls back silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovfkit.deep.proxy import ProxyRecipe, proxy_checkpoint

SOURCES = ("imagenet", "radimagenet", "random", "proxy-natural", "proxy-medical")
#: torchvision's file name for ResNet50_Weights.IMAGENET1K_V2, as torch.hub caches it.
IMAGENET_FILE = "resnet50-11ad3fa6.pth"
RADIMAGENET_FILE = "RadImageNet-ResNet50.pt"
#: RadImageNet's PyTorch release wraps resnet50's first 9 children in ``backbone`` (an nn.Sequential).
RADIMAGENET_PREFIXES = {"backbone.0.": "conv1.", "backbone.1.": "bn1.", "backbone.4.": "layer1.",
                        "backbone.5.": "layer2.", "backbone.6.": "layer3.", "backbone.7.": "layer4."}


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

