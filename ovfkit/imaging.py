"""Image helpers on SimpleITK images: the largest sagittal slice, ROI crops for display."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ovfkit.manifest import read_image

__all__ = ["read_image", "largest_slice", "roi_crop", "slice_for_display"]


def largest_slice(image: sitk.Image, mask: sitk.Image, axis: int = 0) -> tuple[sitk.Image, sitk.Image, int]:
    """The 2-D slice of a 3-D image where the mask is largest (the papers' "largest sagittal slice").

    Parameters
    ----------
    image, mask : SimpleITK.Image, 3-D, same geometry
    axis : int
        Physical axis held fixed: 0 (x, left-right) gives a sagittal slice for an LPS volume,
        1 a coronal and 2 an axial slice.

    Returns
    -------
    image2d, mask2d : SimpleITK.Image, 2-D
        Spacing and origin of the two remaining axes (in their original order); direction identity.
    index : int
        Index of the slice along ``axis``.
    """
    if image.GetDimension() != 3 or mask.GetDimension() != 3:
        raise ValueError(f"largest_slice needs 3-D images, got {image.GetDimension()}-D and {mask.GetDimension()}-D")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis={axis} is not 0, 1 or 2")
    m = sitk.GetArrayViewFromImage(mask) > 0  # [z, y, x]
    arr_axis = 2 - axis
    other = tuple(a for a in range(3) if a != arr_axis)
    area = m.sum(axis=other)
    if not area.any():
        raise ValueError("mask is empty: no slice holds the ROI; redraw the mask")
    index = int(np.argmax(area))
    sl = [slice(None)] * 3
    sl[arr_axis] = index
    img_arr = sitk.GetArrayFromImage(image)[tuple(sl)]
    msk_arr = m[tuple(sl)].astype(np.uint8)
    keep = [a for a in range(3) if a != axis]  # physical axes kept, e.g. (1, 2) = (y, z)
    out = []
    for arr in (img_arr, msk_arr):
        im = sitk.GetImageFromArray(np.ascontiguousarray(arr))
        im.SetSpacing(tuple(image.GetSpacing()[a] for a in keep))
        im.SetOrigin(tuple(image.GetOrigin()[a] for a in keep))
        out.append(im)
    return out[0], out[1], index


def roi_crop(array: np.ndarray, mask: np.ndarray, margin: float = 0.15) -> tuple[slice, ...]:
    """Slices of the mask's bounding box, enlarged by ``margin`` (fraction of its size) on each side."""
    idx = np.argwhere(mask > 0)
    if idx.size == 0:
        raise ValueError("mask is empty; no bounding box to crop")
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    pad = np.ceil((hi - lo) * margin).astype(int)
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad, np.array(array.shape))
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def slice_for_display(image: sitk.Image, mask: sitk.Image) -> tuple[np.ndarray, np.ndarray, float]:
    """A 2-D view for figures: the image itself if 2-D, else the largest sagittal slice shown with
    superior up and anterior left.

    Returns
    -------
    img, msk : ndarray, shape (rows, cols)
    aspect : float
        Row spacing / column spacing, for ``imshow(aspect=...)``.
    """
    if image.GetDimension() == 2:
        sp = image.GetSpacing()
        return sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask), sp[1] / sp[0]
    img2, msk2, _ = largest_slice(image, mask, axis=0)
    sp = img2.GetSpacing()  # (y spacing, z spacing); array rows are z (inferior->superior)
    return sitk.GetArrayFromImage(img2)[::-1], sitk.GetArrayFromImage(msk2)[::-1], sp[1] / sp[0]
