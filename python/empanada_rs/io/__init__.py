"""Writers of segmentations: numpy volumes and chunked zarr v3 arrays."""

from __future__ import annotations

import numpy as np

from empanada_rs._core import Segmentation, paint_into
from empanada_rs.io.zarr_labels import write_labels_zarr

__all__ = ["write_labels_numpy", "write_labels_zarr"]


def write_labels_numpy(
    seg: Segmentation,
    class_id: int,
    out: np.ndarray | None = None,
    *,
    own_ids: bool = False,
) -> np.ndarray:
    """Paints one class into ``out`` (a C-contiguous integer array of the segmentation's
    shape; a new zeroed int32 array when None) and returns it. Voxels no object covers keep
    their value. Ids are ``1..N`` in object order, or the objects' own with ``own_ids``."""
    if out is None:
        out = np.zeros(tuple(seg.shape), dtype=np.int32)
    paint_into(seg, class_id, out, own_ids=own_ids)
    return out
