"""Confinement of 2D inference to a rectangle (a viewport) or to polygons (an ROI).

The plugin's "Confine to viewport" / "Confine to ROI" options (spec §12.2) as plain data:
a viewport is ``(y0, x0, y1, x1)`` in pixels (half-open), polygons are ``(N, 2)`` arrays of
``(y, x)`` vertices. Both reduce to a :class:`Region`: the box the engine segments and the
mask of pixels inside that box that belong to the region."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from empanada_rs.errors import InvalidArgumentError, ShapeError


@dataclass(frozen=True)
class Region:
    """A confined part of an ``(H, W)`` image: the box ``(y0, x0, y1, x1)`` that is
    segmented and ``mask`` (the box's shape, bool) of the pixels the result may write.
    ``mask is None`` means the whole box."""

    box: tuple[int, int, int, int]
    mask: npt.NDArray[np.bool_] | None = None

    @property
    def slices(self) -> tuple[slice, slice]:
        y0, x0, y1, x1 = self.box
        return slice(y0, y1), slice(x0, x1)


def viewport_region(viewport: Sequence[int], shape: tuple[int, int]) -> Region:
    """The region of a viewport ``(y0, x0, y1, x1)``; it must lie inside the image and
    hold at least one pixel."""
    try:
        y0, x0, y1, x1 = (int(v) for v in viewport)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"viewport: {viewport!r} is not a box; pass (y0, x0, y1, x1) in pixels"
        ) from e
    h, w = shape
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise InvalidArgumentError(
            f"viewport: (y0, x0, y1, x1) = {(y0, x0, y1, x1)} must satisfy 0 <= y0 < y1 <= {h} "
            f"and 0 <= x0 < x1 <= {w} (the image is {h}x{w}); pass a non-empty box inside it"
        )
    return Region((y0, x0, y1, x1))


def _as_polygons(polygons: Any) -> list[npt.NDArray[np.float64]]:
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        polygons = [polygons]
    out = []
    for i, p in enumerate(polygons):
        arr = np.asarray(p, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
            raise ShapeError(
                f"polygons: polygon {i} has shape {arr.shape}; each polygon is an (N, 2) array "
                "of (y, x) vertices with N >= 3"
            )
        if not np.all(np.isfinite(arr)):
            raise InvalidArgumentError(f"polygons: polygon {i} has NaN or infinite vertices")
        out.append(arr)
    if not out:
        raise InvalidArgumentError("polygons: the list is empty; pass at least one polygon")
    return out


def _fill_polygon(
    poly: npt.NDArray[np.float64], y0: int, x0: int, mask: npt.NDArray[np.bool_]
) -> None:
    """Fill of the pixel centres ``(y, x)`` (integer coordinates) inside ``poly`` or on
    its outline (as ``skimage.draw.polygon``, which the reference uses), or'ed into
    ``mask`` whose top-left pixel is ``(y0, x0)``. One row at a time: the crossings of that
    row with the polygon's edges, sorted, bound the inside spans (even-odd rule)."""
    ya, xa = poly[:, 0], poly[:, 1]
    yb, xb = np.roll(ya, -1), np.roll(xa, -1)
    flat = ya == yb
    cols = np.arange(x0, x0 + mask.shape[1], dtype=np.float64)
    for r in range(mask.shape[0]):
        y = float(y0 + r)
        row = mask[r]
        crosses = (ya > y) != (yb > y)
        if crosses.any():
            t = (y - ya[crosses]) / (yb[crosses] - ya[crosses])
            xs = np.sort(xa[crosses] + t * (xb[crosses] - xa[crosses]))
            # a pixel is inside when an odd number of crossings lie to its right
            right = xs.size - np.searchsorted(xs, cols, side="right")
            row |= (right & 1).astype(bool)
        # pixel centres on the outline: sloped edges through this row, flat edges on it
        on = ~flat & (np.minimum(ya, yb) <= y) & (np.maximum(ya, yb) >= y)
        if on.any():
            t = (y - ya[on]) / (yb[on] - ya[on])
            xe = xa[on] + t * (xb[on] - xa[on])
            row |= np.isin(cols, xe)
        for i in np.flatnonzero(flat & (ya == y)):
            lo, hi = min(xa[i], xb[i]), max(xa[i], xb[i])
            row |= (cols >= lo) & (cols <= hi)


def polygon_region(polygons: Any, shape: tuple[int, int]) -> Region:
    """The region of one or more polygons (a list of ``(N, 2)`` ``(y, x)`` arrays): the
    bounding box of all of them clipped to the image, and the union of their insides
    (pixel centres inside a polygon, even-odd rule)."""
    polys = _as_polygons(polygons)
    h, w = shape
    allv = np.concatenate(polys)
    y0 = max(0, math.floor(allv[:, 0].min()))
    x0 = max(0, math.floor(allv[:, 1].min()))
    y1 = min(h, math.floor(allv[:, 0].max()) + 1)
    x1 = min(w, math.floor(allv[:, 1].max()) + 1)
    if y0 >= y1 or x0 >= x1:
        raise InvalidArgumentError(
            f"polygons: they lie outside the {h}x{w} image; pass (y, x) vertices inside it"
        )
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for p in polys:
        _fill_polygon(p, y0, x0, mask)
    if not mask.any():
        raise InvalidArgumentError(
            "polygons: no pixel centre lies inside them; pass polygons that enclose pixels"
        )
    return Region((y0, x0, y1, x1), mask)
