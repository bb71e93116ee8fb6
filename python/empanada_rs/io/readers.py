"""Volume inputs for 3D inference: numpy arrays, tif files, zarr arrays / directories and
dask arrays, read one slice at a time.

A :class:`VolumeSource` never densifies more than the slices asked for: tif files are
memory-mapped when their layout allows it, zarr and dask arrays are indexed lazily and only
the requested 2D slice is materialised."""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from empanada_rs.errors import DTypeError, InvalidArgumentError, ShapeError
from empanada_rs.inference.runner import ROBUST_SAMPLE, NormalizeMode, intensity_range

#: Axis of the volume (z, y, x) that each inference plane slices along.
PLANE_AXIS = {"xy": 0, "xz": 1, "yz": 2}
#: Channel axis sizes treated as colour/channel axes when ``channel_axis`` is not given.
_CHANNEL_SIZES = (1, 3, 4)

__all__ = ["PLANE_AXIS", "VolumeSource", "open_volume"]


def _plane_axis(plane: str) -> int:
    try:
        return PLANE_AXIS[plane]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"plane: {plane!r} is not a plane; use 'xy', 'xz' or 'yz'"
        ) from None


class VolumeSource:
    """A (D, H, W) volume readable slice by slice along any plane.

    ``array`` is anything with ``shape``, ``dtype`` and numpy-style basic indexing (numpy,
    ``np.memmap``, ``zarr.Array``, ``dask.array.Array``); ``channel_axis``/``channel``
    select one channel of a 4D array lazily."""

    def __init__(
        self, array: Any, *, channel_axis: int | None = None, channel: int = 0, name: str = "volume"
    ) -> None:
        self.name = name
        shape = tuple(int(s) for s in array.shape)
        ndim = len(shape)
        if channel_axis is None and ndim == 4:
            # The reference's rule (spec §5.1): a leading or trailing axis of size 1/3/4 is
            # a channel axis.
            if shape[0] in _CHANNEL_SIZES:
                channel_axis = 0
            elif shape[-1] in _CHANNEL_SIZES:
                channel_axis = 3
            else:
                raise ShapeError(
                    f"volume: 4D shape {shape} has no channel axis of size 1, 3 or 4 at either "
                    "end; pass channel_axis= to say which axis holds the channels"
                )
        if channel_axis is not None:
            if ndim != 4:
                raise ShapeError(
                    f"channel_axis: given {channel_axis} but the volume has shape {shape}; "
                    "channel_axis needs a 4D (channels + z, y, x) volume"
                )
            try:
                ax = operator.index(channel_axis)
            except TypeError:
                raise InvalidArgumentError(
                    f"channel_axis: {channel_axis!r} is not an int; pass 0..3 or -4..-1"
                ) from None
            if not -4 <= ax < 4:
                raise InvalidArgumentError(f"channel_axis: {ax} is out of range for a 4D volume")
            ax %= 4
            if not 0 <= channel < shape[ax]:
                raise InvalidArgumentError(
                    f"channel: {channel} is out of range; axis {ax} has {shape[ax]} channels"
                )
            index: list[Any] = [slice(None)] * 4
            index[ax] = channel
            array = array[tuple(index)]
            shape = tuple(int(s) for s in array.shape)
        if len(shape) != 3:
            raise ShapeError(
                f"volume: expected a 3D (z, y, x) volume or 4D with a channel axis, got shape "
                f"{shape}; pass a 3D array (use segment_2d for single images)"
            )
        if min(shape) < 1:
            raise ShapeError(f"volume: shape {shape} is empty; every axis needs at least 1 voxel")
        dtype = np.dtype(array.dtype)
        if dtype == np.bool_ or not (
            np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
        ):
            raise DTypeError(
                f"volume: dtype {dtype} is not an intensity volume; pass integers or floats"
            )
        self.array = array
        self.shape: tuple[int, int, int] = (shape[0], shape[1], shape[2])
        self.dtype = dtype

    @property
    def is_numpy(self) -> bool:
        return isinstance(self.array, np.ndarray)

    def n_slices(self, plane: str) -> int:
        return self.shape[_plane_axis(plane)]

    def slice_shape(self, plane: str) -> tuple[int, int]:
        ax = _plane_axis(plane)
        rest = [s for i, s in enumerate(self.shape) if i != ax]
        return rest[0], rest[1]

    def read(self, plane: str, i: int) -> npt.NDArray[Any]:
        """Slice ``i`` of ``plane`` (``vol[i]``, ``vol[:, i]`` or ``vol[:, :, i]``)."""
        ax = _plane_axis(plane)
        index: list[Any] = [slice(None)] * 3
        index[ax] = i
        part = self.array[tuple(index)]
        if hasattr(part, "compute"):  # dask
            part = part.compute()
        return np.asarray(part)

    def read_block(self, plane: str, start: int, stop: int) -> list[npt.NDArray[Any]]:
        """Slices ``start..stop`` of ``plane``, read with one indexing call."""
        ax = _plane_axis(plane)
        index: list[Any] = [slice(None)] * 3
        index[ax] = slice(start, stop)
        part = self.array[tuple(index)]
        if hasattr(part, "compute"):
            part = part.compute()
        block = np.moveaxis(np.asarray(part), ax, 0)
        return [block[k] for k in range(block.shape[0])]

    def value_range(self, mode: NormalizeMode = "robust") -> tuple[float, float]:
        """The intensity range of the whole volume (:func:`intensity_range`), computed once.

        numpy volumes are measured whole; lazy ones on evenly spaced xy slices holding at
        most ~``ROBUST_SAMPLE`` voxels, so a large zarr/dask volume is not read in full."""
        if self.is_numpy:
            return intensity_range(self.array, mode)
        if self.dtype == np.uint8:
            return 0.0, 255.0
        per_slice = self.shape[1] * self.shape[2]
        n = max(1, min(self.shape[0], ROBUST_SAMPLE // max(1, per_slice)))
        picks = np.unique(np.linspace(0, self.shape[0] - 1, n).round().astype(int))
        sample = np.stack([self.read("xy", int(i)) for i in picks])
        return intensity_range(sample, mode)


def _open_path(path: Path) -> tuple[Any, str]:
    if not path.exists():
        raise FileNotFoundError(f"volume: {path} does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.is_file() else path.suffix.lower()
    if path.is_file() and suffix.endswith((".tif", ".tiff")):
        import tifffile

        try:
            arr = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or tiled pages cannot be mapped: read once
            arr = tifffile.imread(path)
        return arr, path.stem.split(".")[0]
    if path.is_file() and suffix.endswith(".npy"):
        return np.load(path, mmap_mode="r"), path.stem
    if path.is_dir():
        import zarr

        node = zarr.open(str(path), mode="r")
        if isinstance(node, zarr.Group):
            # An OME-Zarr image or a plain group: take the first multiscale level, else the
            # only array.
            ms = node.attrs.get("multiscales") or node.attrs.get("ome", {}).get("multiscales")
            if ms:
                node = node[ms[0]["datasets"][0]["path"]]
            else:
                arrays = list(node.array_keys())
                if len(arrays) != 1:
                    raise InvalidArgumentError(
                        f"volume: zarr group {path} holds {len(arrays)} arrays {arrays}; "
                        "pass the array's own directory"
                    )
                node = node[arrays[0]]
        return node, path.name.split(".")[0]
    raise InvalidArgumentError(
        f"volume: {path} is not a .tif/.tiff/.npy file or a zarr directory; convert it to one"
    )


def open_volume(volume: Any, *, channel_axis: int | None = None, channel: int = 0) -> VolumeSource:
    """A :class:`VolumeSource` for ``volume``: a numpy / zarr / dask array, a
    :class:`VolumeSource`, or a path to a ``.tif``/``.tiff``/``.npy`` file or a zarr
    directory (an OME-Zarr image reads level 0).

    ``channel_axis`` (default None: a 4D volume's leading or trailing axis of size 1/3/4)
    picks the channel axis of a 4D volume and ``channel`` (default 0) the channel used."""
    if isinstance(volume, VolumeSource):
        return volume
    name = "volume"
    if isinstance(volume, (str, os.PathLike)):
        volume, name = _open_path(Path(volume))
    elif not hasattr(volume, "shape") or not hasattr(volume, "dtype"):
        volume = np.asarray(volume)
    return VolumeSource(volume, channel_axis=channel_axis, channel=channel, name=name)
