"""What decides a fine-tuned network: the :class:`Recipe` (part of every deep cache key)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ovfkit.provenance import json_digest


@dataclass(frozen=True)
class Recipe:
    """Input preparation, fine-tuning and cross-fitting settings of the deep features.

    ``crossfit_folds`` is the number K of patient-grouped folds of the training cohort: K networks are
    fine-tuned, each on K-1 folds, and every training vertebra gets the features of the network that did
    not see it (see :func:`ovfkit.deep.deep_features`). ``proxy_steps`` and ``proxy_images`` size the
    pretext pretraining of the offline proxy backbones.
    """

    size: int = 224
    equalize: bool = True
    scaling: str = "minus1to1"  # or "imagenet", or "zscore" (per image, zhang2023)
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
    crossfit_folds: int = 5
    proxy_steps: int = 60
    proxy_images: int = 384
    seed: int = 0

    def key(self) -> str:
        """16 hex digits identifying every setting."""
        return json_digest(asdict(self))

    def preparation(self) -> dict:
        """The settings that decide a prepared input (the input cache's key)."""
        return {k: getattr(self, k) for k in ("size", "equalize", "margin")}
