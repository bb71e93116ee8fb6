"""Slow, obviously correct NumPy references for run-length objects and components."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

I64 = npt.NDArray[np.int64]

# connectivity -> scipy `generate_binary_structure` rank
STRUCTURE_RANK = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}


def encode_indices(flat: npt.ArrayLike) -> tuple[I64, I64]:
    """Runs of a sorted flat index list: a run starts where the index is not previous + 1."""
    flat = np.asarray(flat, dtype=np.int64)
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks, [flat.size]])
    return flat[first], (last - first).astype(np.int64)


def encode_labels(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Columnar encoding, one object at a time from its mask."""
    ids = np.unique(labels[labels != 0])
    ravel = labels.ravel()
    boxes, counts, offsets, starts, runs = [], [], [0], [], []
    for i in ids:
        coords = np.nonzero(labels == i)
        boxes.append([c.min() for c in coords] + [c.max() + 1 for c in coords])
        s, r = encode_indices(np.flatnonzero(ravel == i))
        starts.append(s)
        runs.append(r)
        counts.append(int(r.sum()))
        offsets.append(offsets[-1] + len(s))
    return {
        "ids": ids.astype(np.uint64),
        "boxes": np.asarray(boxes, np.int64).reshape(len(ids), 2 * labels.ndim),
        "counts": np.asarray(counts, np.int64),
        "offsets": np.asarray(offsets, np.int64),
        "starts": np.concatenate(starts) if starts else np.zeros(0, np.int64),
        "runs": np.concatenate(runs) if runs else np.zeros(0, np.int64),
    }


def to_mask(starts: npt.ArrayLike, runs: npt.ArrayLike, size: int) -> np.ndarray:
    """Coverage count of the ranges (an int array: overlapping ranges count twice)."""
    cover = np.zeros(size, np.int64)
    for s, r in zip(np.asarray(starts), np.asarray(runs), strict=True):
        cover[s : s + r] += 1
    return cover


def mask_to_rle(mask: np.ndarray) -> tuple[I64, I64]:
    return encode_indices(np.flatnonzero(mask))


def components(labels: np.ndarray, connectivity: int, binary: bool = False) -> np.ndarray:
    """Label each id's mask with scipy, then number components by first voxel, raster order."""
    structure = ndi.generate_binary_structure(labels.ndim, STRUCTURE_RANK[connectivity])
    keyed = np.zeros(labels.shape, np.int64)
    values = [True] if binary else [v for v in np.unique(labels) if v != 0]
    offset = 0
    for v in values:
        mask = labels != 0 if binary else labels == v
        lab, n = ndi.label(mask, structure=structure)
        keyed[mask] = lab[mask] + offset
        offset += n
    out = np.zeros(labels.shape, np.uint32)
    flat = keyed.ravel()
    keys, first = np.unique(flat, return_index=True)
    order = [k for _, k in sorted(zip(first, keys, strict=True)) if k != 0]
    lut = np.zeros(offset + 1, np.uint32)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.uint32)
    out.ravel()[:] = lut[flat]
    return out
