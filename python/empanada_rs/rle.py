"""Conversion between our columnar run-length objects and the reference's nested ``rle_seg``.

:func:`empanada_rs.rle_encode` returns all objects of a label image in columnar form
(``ids``, ``boxes``, ``counts``, ``offsets`` into ``starts``/``runs``). empanada's pipeline
passes objects around as ``{class_id: {label: {"box": ..., "starts": ..., "runs": ...}}}``
(spec §1.4); these helpers convert one class between the two forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["from_rle_seg", "to_rle_seg"]


def to_rle_seg(encoded: Mapping[str, Any], class_id: int) -> dict[int, dict[int, dict[str, Any]]]:
    """The reference's ``rle_seg`` for one class from :func:`empanada_rs.rle_encode` output.

    Boxes become tuples of Python ints (as ``regionprops.bbox``); starts and runs are int64
    views into the columnar arrays (no copies).
    """
    ids = np.asarray(encoded["ids"])
    boxes = np.asarray(encoded["boxes"])
    offsets = np.asarray(encoded["offsets"])
    starts = np.asarray(encoded["starts"])
    runs = np.asarray(encoded["runs"])
    objects: dict[int, dict[str, Any]] = {}
    for i, label in enumerate(ids.tolist()):
        a, b = int(offsets[i]), int(offsets[i + 1])
        objects[int(label)] = {
            "box": tuple(int(v) for v in boxes[i]),
            "starts": starts[a:b],
            "runs": runs[a:b],
        }
    return {int(class_id): objects}


def _as_i64(values: Any) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(values, dtype=np.int64).reshape(-1)


def from_rle_seg(
    rle_seg: Mapping[int, Mapping[int, Mapping[str, Any]]],
    class_id: int | None = None,
) -> dict[str, Any]:
    """Columnar arrays (``ids``, ``boxes``, ``counts``, ``offsets``, ``starts``, ``runs``)
    from a reference ``rle_seg``.

    ``class_id`` selects one class; ``None`` takes every class. Objects are sorted by label
    and each object's runs by start (the reference does not guarantee either, §1.2). Objects
    stored with a text ``"rle"`` (``"s0 r0 s1 r1 ..."``) instead of ``starts``/``runs`` are
    accepted too.
    """
    classes = [class_id] if class_id is not None else sorted(rle_seg)
    objects: dict[int, Mapping[str, Any]] = {}
    for c in classes:
        for label, attrs in rle_seg[c].items():
            objects[int(label)] = attrs
    ids = sorted(objects)
    boxes: list[tuple[int, ...]] = []
    counts: list[int] = []
    offsets = [0]
    starts_parts: list[npt.NDArray[np.int64]] = []
    runs_parts: list[npt.NDArray[np.int64]] = []
    for label in ids:
        attrs = objects[label]
        if "starts" in attrs:
            s, r = _as_i64(attrs["starts"]), _as_i64(attrs["runs"])
        else:
            flat = _as_i64([int(v) for v in str(attrs["rle"]).split()])
            s, r = flat[0::2], flat[1::2]
        order = np.argsort(s, kind="stable")
        s, r = s[order], r[order]
        starts_parts.append(s)
        runs_parts.append(r)
        boxes.append(tuple(int(v) for v in attrs["box"]))
        counts.append(int(r.sum()))
        offsets.append(offsets[-1] + len(s))
    width = len(boxes[0]) if boxes else 0
    return {
        "ids": np.asarray(ids, dtype=np.uint64),
        "boxes": np.asarray(boxes, dtype=np.int64).reshape(len(ids), width),
        "counts": np.asarray(counts, dtype=np.int64),
        "offsets": np.asarray(offsets, dtype=np.int64),
        "starts": np.concatenate(starts_parts) if starts_parts else np.zeros(0, np.int64),
        "runs": np.concatenate(runs_parts) if runs_parts else np.zeros(0, np.int64),
    }
