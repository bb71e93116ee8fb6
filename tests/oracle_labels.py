"""Slow, obviously correct NumPy references for the label operations and the slice median."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def relabel(labels, keys, values, default=None):
    lut = dict(zip((int(k) for k in keys), (int(v) for v in values), strict=True))
    out = labels.copy()
    for idx, v in np.ndenumerate(labels):
        v = int(v)
        out[idx] = lut.get(v, v if default is None else default)
    return out


def renumber(labels, start=1):
    ids = [int(i) for i in np.unique(labels) if i != 0]
    values = list(range(start, start + len(ids)))
    return relabel(labels, ids, values), ids, values


def statistics(labels):
    ids = np.array([i for i in np.unique(labels) if i != 0], dtype=np.uint64)
    counts, boxes, centroids = [], [], []
    for i in ids:
        coords = np.argwhere(labels == i)
        counts.append(len(coords))
        boxes.append(np.concatenate([coords.min(0), coords.max(0) + 1]))
        centroids.append(coords.mean(0))
    nd = labels.ndim
    return {
        "ids": ids,
        "counts": np.array(counts, dtype=np.int64),
        "boxes": np.array(boxes, dtype=np.int64).reshape(-1, 2 * nd),
        "centroids": np.array(centroids, dtype=np.float64).reshape(-1, nd),
    }


def remove_small_objects(labels, min_size):
    out = labels.copy()
    for i in np.unique(labels):
        if i != 0 and (labels == i).sum() < min_size:
            out[labels == i] = 0
    return out


def remove_pancakes(labels, min_span):
    out = labels.copy()
    for i in np.unique(labels):
        if i == 0:
            continue
        coords = np.argwhere(labels == i)
        spans = coords.max(0) + 1 - coords.min(0)
        if (spans < min_span).any():
            out[labels == i] = 0
    return out


def fill_holes(labels):
    """Per id: scipy's binary_fill_holes of the id's own mask; only 0 voxels are painted;
    a voxel in holes of several ids goes to the smallest hole, then the smallest id."""
    best_size = np.full(labels.shape, np.iinfo(np.int64).max, dtype=np.int64)
    best_id = np.zeros(labels.shape, dtype=np.int64)
    for i in np.unique(labels):
        if i == 0:
            continue
        mask = labels == i
        holes = ndimage.binary_fill_holes(mask) & ~mask
        comp, n = ndimage.label(holes)
        for c in range(1, n + 1):
            where = comp == c
            size = int(where.sum())
            better = where & (labels == 0) & (size < best_size)
            best_size[better] = size
            best_id[better] = int(i)
    out = labels.copy()
    paint = best_id > 0
    out[paint] = best_id[paint].astype(labels.dtype)
    return out


def running_median(stack, k):
    """Textbook running median over axis 0; first and last m slices unfiltered."""
    n = stack.shape[0]
    if n < k:
        k = n if n % 2 else n - 1
    m = (k - 1) // 2
    out = stack.copy()
    for i in range(m, n - m):
        out[i] = np.median(stack[i - m : i + m + 1], axis=0)
    return out


def recursive_median(stack, k):
    """The reference's recursive form written as a plain loop over a whole stack."""
    n = stack.shape[0]
    if n < k:
        k = n if n % 2 else n - 1
    m = (k - 1) // 2
    out = stack.copy()
    for i in range(m, n - m):
        window = np.concatenate([out[i - m : i], stack[i : i + m + 1]])
        out[i] = np.sort(window, axis=0)[m]
    return out


def _face_shifts(a, fill):
    """The face neighbours of every element of ``a`` (2D or 3D), ``fill`` past the border."""
    p = np.pad(a, 1, constant_values=fill)
    core = tuple(slice(1, -1) for _ in range(a.ndim))
    for axis in range(a.ndim):
        for d in (-1, 1):
            idx = list(core)
            idx[axis] = slice(1 + d, p.shape[axis] - 1 + d)
            yield p[tuple(idx)]


def erode_mask(mask, steps):
    """``steps`` erosions by the face cross, the outside counting as set."""
    out = mask.copy()
    for _ in range(steps):
        nxt = out.copy()
        for s in _face_shifts(out, True):
            nxt &= s
        out = nxt
    return out


def erode_labels(labels, steps):
    """Each id's own mask eroded by ``erode_mask``, one id at a time."""
    out = np.zeros_like(labels)
    for i in np.unique(labels[labels != 0]):
        out[erode_mask(labels == i, steps)] = i
    return out


def dilate_labels(labels, steps):
    """``steps`` rounds in which each 0 voxel takes the largest face neighbour's id."""
    out = labels.copy()
    for _ in range(steps):
        grown = np.zeros_like(out)
        for s in _face_shifts(out, 0):
            grown = np.maximum(grown, s)
        out = np.where(out == 0, grown, out)
    return out
