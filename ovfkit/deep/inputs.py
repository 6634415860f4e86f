"""Network inputs: the ROI crop of a radiograph or of the largest sagittal CT slice, as the papers prepare it.

* X-ray: the vertebral body's bounding box (with a margin) from the mask, resampled to isotropic pixels,
  optional histogram equalization, resized to ``size`` x ``size`` (224 in the papers) and replicated to
  3 channels.
* CT: the largest sagittal slice (liu2025, zhang2023), resampled to isotropic pixels, cropped the same
  way, a bone window (-200..1300 HU) mapped to [0, 1], resized to 64 x 64. The one channel is replicated
  to three rather than adapting the first convolution: for a pretrained network the two are the same
  (a replicated input through conv1 equals a 1-channel conv1 whose kernel is the sum over the three
  input channels), and replication keeps every pretrained weight file loadable unchanged.
* Intensities then scaled to [-1, 1] (guo2026), normalised with ImageNet's mean and standard deviation,
  or z-scored per image (mean 0, standard deviation 1 over the image's pixels: zhang2023).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ovfkit.deep.recipe import Recipe
from ovfkit.provenance import code_digest, json_digest

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    if scaling == "zscore":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    raise ValueError(f"scaling {scaling!r} is not 'minus1to1', 'imagenet' or 'zscore'")


def prepare_manifest(manifest: pd.DataFrame, recipe: Recipe, *, cache_dir=None, n_jobs: int = -1) -> pd.Series:
    """Prepared inputs for every vertebra (Series of (size, size) float32 arrays, indexed by vertebra_id),
    cached in one .npz keyed by the image and mask content, the preparation settings and the code of this
    module and every ovfkit module it imports (:func:`ovfkit.provenance.code_digest`)."""
    from joblib import Parallel, delayed

    from ovfkit.provenance import content_digest

    prep = {**recipe.preparation(), "code": code_digest(__name__)}

    key = json_digest({"prep": prep, "files": [
        (r["vertebra_id"], content_digest(r["image"], r.get("image_sha256", "") or ""),
         content_digest(r["mask"], r.get("mask_sha256", "") or ""))
        for _, r in manifest.iterrows()]}, 20)
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

