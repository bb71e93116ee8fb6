"""Per-class object tables of panoptic label maps (ids, areas, boxes, centroids), computed by
the core's :func:`empanada_rs.label_statistics`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from empanada_rs._core import label_statistics


@dataclass
class ObjectTable:
    """The objects of one class, one row each.

    - ``ids``: panoptic id ``class * label_divisor + instance`` (``class * label_divisor``
      for a stuff class's single region), int64
    - ``areas``: pixel counts, int64
    - ``boxes``: ``(N, 4)`` ``(y0, x0, y1, x1)``, half-open, int64
    - ``centroids``: ``(N, 2)`` ``(y, x)`` means of the pixel coordinates, float64
    - ``image``: index of the image the object belongs to (batch mode; 0 otherwise)"""

    ids: npt.NDArray[np.int64]
    areas: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float64]
    image: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.size)

    @staticmethod
    def empty() -> ObjectTable:
        return ObjectTable(
            ids=np.zeros(0, np.int64),
            areas=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.int64),
            centroids=np.zeros((0, 2), np.float64),
            image=np.zeros(0, np.int64),
        )


def object_tables(
    maps: Sequence[npt.NDArray[np.integer]], label_divisor: int, classes: Sequence[int]
) -> dict[int, ObjectTable]:
    """One :class:`ObjectTable` per class of ``classes`` (empty where a class has no
    object) over the 2D label maps ``maps`` (``image`` = index into ``maps``). Ids of
    classes outside ``classes`` get their own entry too, so nothing is dropped."""
    parts: dict[int, list[ObjectTable]] = {int(c): [] for c in classes}
    for i, m in enumerate(maps):
        s = label_statistics(np.ascontiguousarray(m))
        ids = s["ids"].astype(np.int64)
        cls = ids // int(label_divisor)
        for c in np.unique(cls):
            sel = cls == c
            parts.setdefault(int(c), []).append(
                ObjectTable(
                    ids=ids[sel],
                    areas=s["counts"][sel].astype(np.int64),
                    boxes=s["boxes"][sel].astype(np.int64),
                    centroids=s["centroids"][sel].astype(np.float64),
                    image=np.full(int(sel.sum()), i, dtype=np.int64),
                )
            )
    out: dict[int, ObjectTable] = {}
    for c, tables in sorted(parts.items()):
        if not tables:
            out[c] = ObjectTable.empty()
            continue
        out[c] = ObjectTable(
            ids=np.concatenate([t.ids for t in tables]),
            areas=np.concatenate([t.areas for t in tables]),
            boxes=np.concatenate([t.boxes for t in tables]),
            centroids=np.concatenate([t.centroids for t in tables]),
            image=np.concatenate([t.image for t in tables]),
        )
    return out
