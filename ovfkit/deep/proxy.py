"""Offline proxy backbones: ResNet-50s that ovfkit pretrains itself when the papers' weights are absent.

Both are pretrained with the same self-supervised pretext (rotation prediction), so only the images
differ: ``proxy-natural`` (crops of the natural photographs scikit-image ships) stands in for ImageNet,
``proxy-medical`` (synthetic radiographs and CT slices drawn with other seeds than the study cohort)
for RadImageNet. They compare two pretraining *domains*; they are not the papers' networks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ovfkit.atomic import exclusive
from ovfkit.deep.inputs import prepare_image, to_network_input
from ovfkit.deep.recipe import Recipe
from ovfkit.deep.training import atomic_torch_save, deterministic
from ovfkit.provenance import code_digest, json_digest

#: The backbone names this module pretrains.
PROXIES = ("proxy-natural", "proxy-medical")
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
        return json_digest(asdict(self), 12)


def proxy_images(source: str, n: int, size: int, seed: int = 0, n_jobs: int = -1) -> np.ndarray:
    """Pretext images in [0, 1], shape (n, size, size); ``n_jobs`` worker processes draw the medical ones.

    ``proxy-natural``: random crops of the natural photographs scikit-image ships (grey levels).
    ``proxy-medical``: the vertebra region of synthetic radiographs and CT sagittal slices drawn with
    seeds the study cohort never uses (so no study image is seen in pretraining).
    """
    from skimage import color, data, transform

    if source not in PROXIES:
        raise ValueError(f"{source!r} is not a proxy backbone ({', '.join(PROXIES)})")
    rng = np.random.default_rng([seed, 3 + PROXIES.index(source)])  # streams 3, 4 as in ovfkit 0.1
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
    from joblib import Parallel, delayed

    from ovfkit import synth

    recipe = Recipe(size=size, equalize=True)
    per = (n + 1) // 2
    jobs = []
    for k, modality in enumerate(("xray", "ct")):
        table = synth.cohort_table(modality, seed=1_000_003 + seed, n_patients=max(8, per))
        jobs += [(table.iloc[i % len(table)], modality, recipe, (seed, k, i)) for i in range(per)]
    # Each image has its own generator, so drawing them in parallel gives the same images.
    out = Parallel(n_jobs=n_jobs, batch_size=8)(delayed(_pretext_image)(*job) for job in jobs)
    return np.stack(out[:n]).astype(np.float32)


def _pretext_image(row, modality: str, recipe: Recipe, stream: tuple) -> np.ndarray:
    from ovfkit import synth

    img, msk, spacing, origin = synth.phantom(row, np.random.default_rng(list(stream)))
    return prepare_image(_as_sitk(img, spacing, origin), _as_sitk(msk, spacing, origin), modality, recipe)


def _as_sitk(array, spacing, origin):
    import SimpleITK as sitk

    im = sitk.GetImageFromArray(array)
    im.SetSpacing(tuple(float(s) for s in spacing))
    im.SetOrigin(tuple(float(o) for o in origin))
    return im


def checkpoint_path(source: str, *, cache_dir, seed: int = 0, recipe: ProxyRecipe | None = None) -> Path:
    """Where :func:`proxy_checkpoint` keeps (or will keep) a stand-in backbone; nothing is trained.

    The file name holds the pretext settings and :func:`ovfkit.provenance.code_digest` of this module
    (which covers the phantom generator and the input preparation it uses).
    """
    if cache_dir is None:
        raise ValueError(f"{source} is pretrained by ovfkit and cached: pass cache_dir=")
    recipe = recipe or ProxyRecipe()
    return Path(cache_dir) / f"{source}-{recipe.key()}-{code_digest(__name__)}-seed{seed}.pt"


def proxy_checkpoint(source: str, *, cache_dir=None, seed: int = 0, recipe: ProxyRecipe | None = None,
                     progress: bool = False) -> Path:
    """Pretrain (once) and cache a proxy backbone; return the path of its state dict
    (:func:`checkpoint_path`)."""
    import torch
    from torchvision.models import resnet50
    from tqdm.auto import tqdm

    recipe = recipe or ProxyRecipe()
    path = checkpoint_path(source, cache_dir=cache_dir, seed=seed, recipe=recipe)
    if path.exists():
        return path
    with exclusive(path):  # a concurrent run making the same checkpoint: wait for it, then reuse it
        if path.exists():
            return path
        deterministic(seed)
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
        atomic_torch_save(state, path)
    return path


def proxy_recipe(recipe: Recipe) -> ProxyRecipe:
    """The pretext settings that a fine-tuning recipe asks for."""
    return ProxyRecipe(n_images=recipe.proxy_images, steps=recipe.proxy_steps,
                       size=min(48, recipe.size), batch_size=min(32, max(4, recipe.proxy_images)))
