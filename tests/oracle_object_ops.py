"""The per-object filters (spec §5.6.3) as a Python loop over objects: each object's crop
painted by the core, the morphology by ``kernels`` (the core's erode_mask / dilate_labels,
each tested against NumPy step loops, or scipy's), the mask re-encoded with NumPy. This was
the product's implementation before the loop moved into the core; it stays as the oracle
of ``Segmentation.apply_object_ops`` and as the bench's "before"."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from empanada_rs._core import (
    Segmentation,
    dilate_labels,
    erode_mask,
    paint_block,
    rle_from_indices,
)
from empanada_rs._core import fill_holes as core_fill_holes

CORE = (erode_mask, dilate_labels)


def _crop(
    box: npt.NDArray[np.int64], margin: int, shape: tuple[int, int, int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lo = tuple(max(0, int(box[a]) - margin) for a in range(3))
    hi = tuple(min(shape[a], int(box[a + 3]) + margin) for a in range(3))
    return lo, tuple(h - low for low, h in zip(lo, hi, strict=True))


def _object_mask(
    seg: Segmentation,
    class_id: int,
    oid: int,
    box: npt.NDArray[np.int64],
    op: str,
    n: int,
    kernels: tuple[Any, Any],
) -> tuple[tuple[int, ...], npt.NDArray[np.bool_]]:
    erode_mask, dilate_labels = kernels
    shape = seg.shape
    margin = {"erode": 1, "dilate": 2 * n, "fill": 0}[op]
    origin, size = _crop(box, margin, shape)
    crop = np.asarray(paint_block(seg, class_id, origin, size, dtype="int64", own_ids=True))
    if op == "erode":
        # Outside the crop is either other voxels of the volume (the 1-voxel margin holds
        # them, so nothing past it is nearer) or beyond the volume border, which must not
        # erode: `erode_mask` counts the outside as set.
        return origin, erode_mask(crop == oid, n)
    if op == "dilate":
        # Every object that can reach a voxel within n of this one lies within the 2n margin.
        return origin, dilate_labels(crop, n) == oid
    filled = np.empty_like(crop)
    for z in range(crop.shape[0]):
        filled[z] = core_fill_holes(np.ascontiguousarray(crop[z]))
    return origin, filled == oid


def _rebuild(
    seg: Segmentation,
    class_id: int,
    masks: list[tuple[int, tuple[int, ...], npt.NDArray[np.bool_]]],
) -> dict[str, npt.NDArray[Any]]:
    d, h, w = seg.shape
    ids, boxes, counts, offsets, starts, runs = [], [], [], [0], [], []
    for oid, origin, mask in masks:
        zz, yy, xx = np.nonzero(mask)
        if zz.size == 0:
            continue
        z, y, x = (zz + origin[0], yy + origin[1], xx + origin[2])
        flat = np.sort((z.astype(np.int64) * h + y) * w + x)
        s, r = rle_from_indices(flat)
        ids.append(oid)
        boxes.append([z.min(), y.min(), x.min(), z.max() + 1, y.max() + 1, x.max() + 1])
        counts.append(flat.size)
        starts.append(s)
        runs.append(r)
        offsets.append(offsets[-1] + len(s))
    empty = np.zeros(0, np.int64)
    return {
        "ids": np.asarray(ids, np.uint64),
        "boxes": np.asarray(boxes, np.int64).reshape(-1, 6),
        "counts": np.asarray(counts, np.int64),
        "offsets": np.asarray(offsets, np.int64),
        "starts": np.concatenate(starts) if starts else empty,
        "runs": np.concatenate(runs) if runs else empty,
    }


def _apply(seg: Segmentation, op: str, n: int, kernels: tuple[Any, Any]) -> Segmentation:
    parts = []
    for c in seg.class_ids:
        objs = seg.objects(c)
        masks = [
            (int(oid), *_object_mask(seg, c, int(oid), box, op, n, kernels))
            for oid, box in zip(objs["ids"], objs["boxes"], strict=True)
        ]
        parts.append(
            Segmentation.from_objects(seg.shape, c, _rebuild(seg, c, masks), thing=seg.is_thing(c))
        )
    return Segmentation.combine(parts) if parts else seg


def apply_object_ops(
    seg: Segmentation,
    *,
    erode: int = 0,
    dilate: int = 0,
    fill_holes: bool = False,
    kernels: tuple[Any, Any] = CORE,
) -> Segmentation:
    if erode:
        seg = _apply(seg, "erode", erode, kernels)
    if dilate:
        seg = _apply(seg, "dilate", dilate, kernels)
    if fill_holes:
        seg = _apply(seg, "fill", 0, kernels)
    return seg
