"""Fine-tuning a ResNet-50 to the task's classes, and reading out its 2048-D average-pooling features.

Recipe of the papers (zhang2024, liu2025): Adam, batch 8, 30 epochs, cosine annealing of the learning
rate, full fine-tuning; the 2048-D output of the average-pooling layer is the deep feature vector.
The number of classes is the task's (3 for ASTLOF, 2 for acute vs chronic), not a constant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.deep.inputs import to_network_input
from ovfkit.deep.recipe import Recipe


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file renamed into place (no half-written checkpoint)."""
    import torch

    from ovfkit.atomic import atomic_output

    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def deterministic(seed: int) -> None:
    """Seed torch and ask for deterministic kernels (bitwise-identical CPU runs)."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False


def set_trainable(model, trainable: str) -> None:
    """Freeze every parameter except the classifier (``"none"``), plus layer4 (``"layer4"``), or none (``"all"``)."""
    if trainable not in ("all", "layer4", "none"):
        raise ValueError(f"trainable={trainable!r} is not 'all', 'layer4' or 'none'")
    for name, p in model.named_parameters():
        p.requires_grad = trainable == "all" or name.startswith("fc.") or (
            trainable == "layer4" and name.startswith("layer4."))


def train_mode(model, trainable: str) -> None:
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


def predict(model, x: np.ndarray, scaling: str, batch_size: int = 64, features: bool = False) -> np.ndarray:
    """Logits (n, n_classes), or with ``features=True`` the 2048-D average-pooling output (n, 2048).

    Parameters
    ----------
    x : ndarray, shape (n, size, size)
        Prepared inputs in [0, 1] (:func:`ovfkit.deep.prepare_image`).
    scaling : {"minus1to1", "imagenet"}
    """
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


#: The frozen front of a ResNet-50 for each ``Recipe.trainable``: its output does not change while the rest
#: trains (frozen weights, BatchNorm in eval mode), so it is computed once per image (:class:`Trunk`).
FROZEN = {"layer4": ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"),
          "none": ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")}


@dataclass
class Trunk:
    """The frozen front's output for every image, computed once and shared by every network of a cross-fit.

    With ``trainable="layer4"`` the front (stem to layer3) is about four fifths of a ResNet-50's forward
    pass; every epoch and every network then runs layer4, pooling and the classifier only. The images'
    horizontal flips (the training augmentation) are computed once too. Exact: the front is the same
    function in every network (pretrained weights, frozen; BatchNorm on running statistics).

    Attributes
    ----------
    trainable : {"layer4", "none"}
    plain, flipped : dict
        Vertebra id -> float32 array, the front's output of the image and of its mirror image
        (``flipped`` only for the ids asked for).
    """

    trainable: str
    plain: dict
    flipped: dict

    @classmethod
    def compute(cls, model, inputs: pd.Series, recipe: Recipe, flip_ids=(), batch_size: int = 64):
        """The front of ``model`` on every input (and the mirror images of ``flip_ids``); None if nothing is frozen."""
        import torch

        if recipe.trainable not in FROZEN:
            return None
        front = torch.nn.Sequential(*[getattr(model, name) for name in FROZEN[recipe.trainable]]).eval()

        def run(ids, flip):
            out = {}
            with torch.no_grad():
                for i in range(0, len(ids), batch_size):
                    part = ids[i:i + batch_size]
                    x = np.stack([inputs[v][:, ::-1] if flip else inputs[v] for v in part])
                    for v, h in zip(part, front(to_network_input(x, recipe.scaling)).numpy()):
                        out[v] = h
            return out

        return cls(recipe.trainable, run(list(inputs.index), False), run(list(flip_ids), True))

    def batch(self, ids, flips=None):
        """The stacked front outputs of ``ids`` (mirror images where ``flips`` is True), a tensor."""
        import torch

        flips = np.zeros(len(ids), bool) if flips is None else flips
        return torch.as_tensor(np.stack([self.flipped[v] if f else self.plain[v] for v, f in zip(ids, flips)]))


def rest_of(model, h, trainable: str, features: bool = False):
    """The trainable part of ``model`` on front outputs ``h``: logits, or the 2048-D features."""
    import torch

    if trainable == "layer4":
        h = model.avgpool(model.layer4(h))
    h = torch.flatten(h, 1)
    return h if features else model.fc(h)


def predict_from_trunk(model, trunk: Trunk, ids, batch_size: int = 64, features: bool = False) -> np.ndarray:
    """:func:`predict` from a :class:`Trunk`'s front outputs: logits, or the 2048-D features, shape (n, .)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            out.append(rest_of(model, trunk.batch(list(ids[i:i + batch_size])), trunk.trainable, features).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2048 if features else model.fc.out_features), np.float32)


@dataclass
class FineTuned:
    """A fine-tuned network, its per-epoch history and the fit/validation split (vertebra ids)."""

    model: object
    history: pd.DataFrame
    fit_ids: list = field(default_factory=list)
    val_ids: list = field(default_factory=list)


def finetune(model, inputs: pd.Series, labels: pd.Series, groups: pd.Series, recipe: Recipe, *,
             n_classes: int | None = None, checkpoint_dir=None, progress: bool = True,
             trunk: Trunk | None = None) -> FineTuned:
    """Fine-tune ``model`` to the task's classes (codes 0..n_classes-1) on the rows given.

    ``n_classes`` defaults to the largest label code + 1; pass the task's count when these rows may
    lack a class (a fold of a small cohort), so that every network of a cross-fit has the same head.

    A patient-grouped, stratified validation split is held out inside these rows for the curves. Adam,
    ``recipe.batch_size``, ``recipe.epochs``, cosine annealing of the learning rate, optional
    class-weighted cross-entropy, horizontal flips. With ``checkpoint_dir`` the state is saved after every
    epoch and an interrupted run resumes from the last one. With a :class:`Trunk` of ``model``'s frozen
    front (the plain outputs of these rows, the mirrored ones of the rows fitted), only the trainable part
    runs; the result is the same network, up to floating-point summation order.
    """
    import torch
    from sklearn.metrics import roc_auc_score
    from tqdm.auto import tqdm

    deterministic(recipe.seed)
    labels = labels.astype(int)
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    fit_ids, val_ids = _validation_split(labels, groups.loc[labels.index], recipe.val_fraction, recipe.seed)
    x_fit = np.stack(inputs.loc[fit_ids].to_numpy())
    y_fit = torch.as_tensor(labels.loc[fit_ids].to_numpy())
    x_val = np.stack(inputs.loc[val_ids].to_numpy())
    y_val = labels.loc[val_ids].to_numpy()
    model.fc = torch.nn.Linear(2048, n_classes)
    torch.manual_seed(recipe.seed)
    torch.nn.init.normal_(model.fc.weight, std=0.01)
    torch.nn.init.zeros_(model.fc.bias)
    set_trainable(model, recipe.trainable)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.lr,
                           weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, recipe.epochs)) \
        if recipe.scheduler == "cosine" else None
    counts = np.bincount(y_fit.numpy(), minlength=n_classes).astype(float)
    weight = torch.as_tensor(counts.sum() / (n_classes * np.maximum(counts, 1)), dtype=torch.float32) \
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
        train_mode(model, recipe.trainable)
        t0, losses, correct, seen = time.perf_counter(), [], 0, 0
        batches = range(0, len(order), recipe.batch_size)
        if recipe.max_train_batches:
            batches = list(batches)[: recipe.max_train_batches]
        for b in tqdm(batches, desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False):
            idx = order[b:b + recipe.batch_size]
            if len(idx) < 2:  # a last batch of one image: BatchNorm cannot train on it
                continue
            if trunk is not None:
                logits = rest_of(model, trunk.batch([fit_ids[i] for i in idx], flips[idx]), trunk.trainable)
            else:
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
        logits_val = predict(model, x_val, recipe.scaling) if trunk is None else \
            predict_from_trunk(model, trunk, list(val_ids))
        p_val = torch.softmax(torch.as_tensor(logits_val), 1).numpy()
        val_loss = float(torch.nn.functional.cross_entropy(torch.as_tensor(logits_val), torch.as_tensor(y_val),
                                                           weight=weight))
        try:
            val_auc = float(roc_auc_score(y_val, p_val[:, 1]) if n_classes == 2 else
                            roc_auc_score(y_val, p_val, multi_class="ovr", labels=list(range(n_classes))))
        except ValueError:  # a class absent from a tiny validation split
            val_auc = float("nan")
        history.append({"epoch": epoch + 1, "train_loss": sum(losses) / max(seen, 1),
                        "train_accuracy": correct / max(seen, 1), "val_loss": val_loss,
                        "val_accuracy": float((p_val.argmax(1) == y_val).mean()), "val_auc": val_auc,
                        "lr": opt.param_groups[0]["lr"], "train_images_per_s": seen / seconds})
        if ckpt is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict() if sched is not None else None,
                                "epoch": epoch + 1, "history": history}, ckpt)
    return FineTuned(model, pd.DataFrame(history), list(fit_ids), list(val_ids))


def extract_features(model, inputs: pd.Series, scaling: str) -> pd.DataFrame:
    """2048-D average-pooling output for every input: DataFrame (n, 2048), columns ``deep_0000``..."""
    feats = predict(model, np.stack(inputs.to_numpy()), scaling, features=True)
    return pd.DataFrame(feats, index=inputs.index, columns=[f"deep_{i:04d}" for i in range(feats.shape[1])])

