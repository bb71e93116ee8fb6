"""Zarr stores of 3D results (spec §8.1) and OME-Zarr (NGFF 0.4) images with label groups.

Plain store (zarr v3, as the reference's 1.2.x): ``<dir>/<name>.zarr`` with one array per
class (``mito``: ids 1..N, int32 for thing classes, uint8 for stuff) and, on request,
``panoptic_xy`` / ``panoptic_xz`` / ``panoptic_yz`` (int32, ids ``class * label_divisor + k``).

OME-Zarr (zarr v2 layout, NGFF 0.4, readable as labels by napari-ome-zarr): the input
volume as a one-level multiscale image at ``0``, and ``labels/<class>`` (and
``labels/panoptic_<plane>``) label images with ``image-label`` metadata.

Paths are checked before any inference runs; an existing store is only replaced with
``overwrite=True``, and only if it is a zarr store (a non-zarr directory is never removed).
"""

from __future__ import annotations

import operator
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from empanada_rs._core import ChunkPainter, Segmentation
from empanada_rs.errors import InvalidArgumentError, OutputExistsError
from empanada_rs.io.readers import VolumeSource
from empanada_rs.io.zarr_labels import write_labels_zarr

NGFF_VERSION = "0.4"
_AXES = [{"name": a, "type": "space"} for a in "zyx"]


def parse_chunks(chunks: Any) -> tuple[int, int, int]:
    """``256``, ``(64, 256, 256)``, ``"256"`` or ``"64,256,256"`` -> three chunk sizes."""
    fix = "pass one positive int or three, e.g. 256 or '64,256,256'"
    try:
        if isinstance(chunks, str):
            parts = [int(p) for p in chunks.replace(" ", "").split(",") if p != ""]
        elif isinstance(chunks, (list, tuple)):
            parts = [operator.index(p) for p in chunks]
        else:
            parts = [operator.index(chunks)]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"chunks: {chunks!r} is not a chunk size; {fix}") from None
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or any(p < 1 for p in parts):
        raise InvalidArgumentError(f"chunks: {chunks!r} is not a chunk size; {fix}")
    return parts[0], parts[1], parts[2]


def store_path(zarr_dir: str | os.PathLike[str], name: str, *, ome: bool = False) -> Path:
    """``zarr_dir`` itself when it ends in ``.zarr``, else ``<zarr_dir>/<name>.zarr``
    (``<name>.ome.zarr`` for OME-Zarr)."""
    p = Path(zarr_dir)
    if p.suffix == ".zarr":
        return p
    return p / (f"{name}.ome.zarr" if ome else f"{name}.zarr")


def _is_zarr_store(p: Path) -> bool:
    return any((p / f).exists() for f in ("zarr.json", ".zgroup", ".zarray"))


def check_output(path: Path, overwrite: bool) -> None:
    """Raises before any work if ``path`` cannot be written (or exists without overwrite)."""
    if path.exists():
        if not overwrite:
            raise OutputExistsError(
                f"zarr_dir: {path} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        if not path.is_dir() or not _is_zarr_store(path):
            raise InvalidArgumentError(
                f"zarr_dir: {path} exists and is not a zarr store; refusing to replace it, "
                "choose another directory"
            )
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidArgumentError(
            f"zarr_dir: cannot write {path} ({parent} is not a writable directory); "
            "choose a writable directory"
        )


class ZarrOutput:
    """A result store being written (see the module docstring for the layout)."""

    def __init__(
        self, path: Path, *, chunks: tuple[int, int, int], ome: bool, overwrite: bool
    ) -> None:
        import zarr

        check_output(path, overwrite)
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.chunks = chunks
        self.ome = ome
        self.root = zarr.open_group(str(path), mode="w-", zarr_format=2 if ome else 3)
        self._labels: Any = None
        self._label_names: list[str] = []

    def _multiscales(self, name: str) -> list[dict[str, Any]]:
        return [
            {
                "version": NGFF_VERSION,
                "name": name,
                "axes": _AXES,
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [{"type": "scale", "scale": [1.0] * 3}],
                    }
                ],
            }
        ]

    def write_image(self, source: VolumeSource) -> None:
        """OME-Zarr: the input volume as the multiscale image (read and written by slabs
        of ``chunks[0]`` xy slices)."""
        arr = self.root.create_array(
            "0", shape=source.shape, dtype=source.dtype, chunks=self.chunks, fill_value=0
        )
        step = self.chunks[0]
        for z in range(0, source.shape[0], step):
            stop = min(source.shape[0], z + step)
            arr[z:stop] = np.stack(source.read_block("xy", z, stop))
        self.root.attrs["multiscales"] = self._multiscales(source.name)

    def _label_group(self, name: str) -> Any:
        if self._labels is None:
            self._labels = self.root.create_group("labels")
        grp = self._labels.create_group(name)
        grp.attrs["multiscales"] = self._multiscales(name)
        grp.attrs["image-label"] = {"version": NGFF_VERSION, "source": {"image": "../../"}}
        self._label_names.append(name)
        self._labels.attrs["labels"] = list(self._label_names)
        return grp

    def write_class(self, seg: Segmentation, class_id: int, name: str) -> Any:
        """Class ``class_id`` as ids 1..N (int32 things, uint8 stuff)."""
        dtype = "int32" if seg.is_thing(class_id) else "uint8"
        if self.ome:
            return write_labels_zarr(
                seg, self._label_group(name), class_id, name="0", chunks=self.chunks, dtype=dtype
            )
        return write_labels_zarr(
            seg, self.root, class_id, name=name, chunks=self.chunks, dtype=dtype
        )

    def write_panoptic(self, seg: Segmentation, plane: str) -> Any:
        """A plane's stack as one int32 panoptic array (ids ``class * L + k``)."""
        name = f"panoptic_{plane}"
        group = self._label_group(name) if self.ome else self.root
        key = "0" if self.ome else name
        arr = group.create_array(
            key, shape=tuple(seg.shape), dtype="int32", chunks=self.chunks, fill_value=0
        )
        for c in seg.class_ids:
            painter = ChunkPainter(seg, c, self.chunks, dtype="int32", own_ids=True)
            for i in range(len(painter)):
                (z, y, x), (d, h, w) = painter.block(i)
                block = painter.paint(i)
                where = (slice(z, z + d), slice(y, y + h), slice(x, x + w))
                if len(seg.class_ids) > 1:
                    old = arr[where]
                    block = np.where(block != 0, block, old)
                arr[where] = block
        return arr
