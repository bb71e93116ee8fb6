"""Training targets from instance masks (spec §11.3): a centre heatmap and centre offsets.

For every instance the centroid (mean pixel coordinate, float) is computed; the heatmap
gets a 1 at the floored centroid, is blurred with a Gaussian (sigma 6, kernel radius
4 sigma, zero border, as OpenCV's automatic kernel size does for float images) and divided
by its maximum; offsets point from each instance pixel to its centroid, 0 on background.
"""

from __future__ import annotations

import numpy as np

from empanada_rs.errors import DTypeError, InvalidArgumentError, ShapeError

__all__ = ["heatmap_and_offsets", "panoptic_semantic"]


def _gaussian_kernel(sigma: float) -> np.ndarray:
    # OpenCV's automatic size for float images: ksize = round(8 sigma + 1) | 1.
    ksize = int(round(sigma * 8 + 1)) | 1
    r = ksize // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _blur_zero_border(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    k = _gaussian_kernel(sigma)
    out = ndimage.convolve1d(a.astype(np.float64), k, axis=0, mode="constant")
    out = ndimage.convolve1d(out, k, axis=1, mode="constant")
    return out.astype(np.float32)


def heatmap_and_offsets(
    instances: np.ndarray, *, sigma: float = 6.0
) -> tuple[np.ndarray, np.ndarray]:
    """Centre heatmap (1, H, W) float32 in [0, 1] and offsets (2, H, W) float32 (dy, dx)
    of an instance mask (H, W) of any integer dtype (0 = background, ids need not be
    consecutive).

    Parameters
    ----------
    instances: (H, W) integer instance ids.
    sigma: Gaussian sigma of the heatmap peaks in pixels, > 0 (default 6.0).
    """
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ShapeError(f"instances must be 2D (H, W), got shape {inst.shape}")
    if not (np.issubdtype(inst.dtype, np.integer) or inst.dtype == np.bool_):
        raise DTypeError(f"instances must hold integer ids, got dtype {inst.dtype}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise InvalidArgumentError(f"sigma must be > 0, got {sigma!r}")
    h, w = inst.shape
    heatmap = np.zeros((h, w), np.float32)
    offsets = np.zeros((2, h, w), np.float32)
    fg = np.flatnonzero(inst.ravel())
    if fg.size:
        ids, inv = np.unique(inst.ravel()[fg], return_inverse=True)
        ys, xs = np.divmod(fg, w)
        n = np.bincount(inv, minlength=len(ids)).astype(np.float64)
        cy = np.bincount(inv, ys, minlength=len(ids)) / n
        cx = np.bincount(inv, xs, minlength=len(ids)) / n
        heatmap[cy.astype(np.int64), cx.astype(np.int64)] = 1.0
        heatmap = _blur_zero_border(heatmap, sigma)
        hmax = float(heatmap.max())
        if hmax > 0:
            heatmap /= hmax
        offsets[0].ravel()[fg] = (cy[inv] - ys).astype(np.float32)
        offsets[1].ravel()[fg] = (cx[inv] - xs).astype(np.float32)
    return heatmap[None], offsets


def panoptic_semantic(
    mask: np.ndarray, *, labels: list[int], thing_list: list[int], label_divisor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split a panoptic mask (class * label_divisor + instance, spec §1.1) into a class map
    (H, W) int64 (0 background, classes as given by `labels`) and the thing-class instance
    ids (H, W) int64 (0 elsewhere).

    Parameters
    ----------
    mask: (H, W) integer panoptic ids.
    labels: every class id of the model (e.g. [1, 2, 3]).
    thing_list: the instance classes among `labels`.
    label_divisor: the panoptic label divisor, > 0 (e.g. 1000).
    """
    m = np.asarray(mask).astype(np.int64)
    if label_divisor <= 0:
        raise InvalidArgumentError(f"label_divisor must be > 0, got {label_divisor!r}")
    cls = m // label_divisor
    unknown = np.setdiff1d(np.unique(cls[m > 0]), np.asarray(labels, np.int64))
    if unknown.size:
        raise InvalidArgumentError(
            f"mask holds classes {unknown.tolist()} not in labels {list(labels)}: check "
            f"label_divisor ({label_divisor}) and labels"
        )
    cls = np.where(m > 0, cls, 0)
    inst = np.where(np.isin(cls, np.asarray(thing_list, np.int64)) & (m > 0), m, 0)
    return cls, inst
