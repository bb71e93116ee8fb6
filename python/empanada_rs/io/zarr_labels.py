"""Writing a segmentation class into a zarr v3 array chunk by chunk (spec §8.1).

Only the chunks (or shards) some object touches are painted and written; the others are
never created and read back as the fill value 0. Each block is painted in Rust with the GIL
released, so a thread pool paints and encodes several blocks at once, and no dense copy of
the volume ever exists.

Interrupted writes: zarr's ``LocalStore`` writes every key to a temporary file in the same
directory and renames it into place (``zarr.storage._local._atomic_write``), so each chunk
or shard on disk is either absent, the previous one, or a complete new one.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empanada_rs._core import ChunkPainter, Segmentation
from empanada_rs.errors import InvalidArgumentError, OutputExistsError

if TYPE_CHECKING:
    import zarr

__all__ = ["write_labels_zarr"]


def _triple(param: str, value: int | Sequence[int]) -> tuple[int, int, int]:
    fix = f"pass one positive int or three, e.g. {param}=256 or {param}=(64, 256, 256)"
    try:
        if isinstance(value, Sequence) and not isinstance(value, str):
            sizes = [operator.index(v) for v in value]
        else:
            sizes = [operator.index(value)] * 3  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(f"{param}: got {value!r}; {fix}") from None
    if len(sizes) != 3:
        raise InvalidArgumentError(f"{param}: got {len(sizes)} sizes {sizes}; {fix}")
    if any(s < 1 for s in sizes):
        raise InvalidArgumentError(f"{param}: sizes must be >= 1, got {sizes}; {fix}")
    return (sizes[0], sizes[1], sizes[2])


def write_labels_zarr(
    seg: Segmentation,
    path: str | os.PathLike[str] | zarr.Group,
    class_id: int,
    *,
    name: str | None = None,
    chunks: int | Sequence[int] = 256,
    shards: int | Sequence[int] | None = None,
    dtype: Any = "int32",
    own_ids: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
) -> zarr.Array:
    """Writes one class of ``seg`` as a zarr v3 label array and returns it.

    ``path`` is the array's directory, or a ``zarr.Group`` in which the array is created
    as ``name`` (default: ``str(class_id)``). Objects get ids ``1..N`` in object order (as
    ``Segmentation.to_volume``), or their own ids with ``own_ids=True``. ``chunks`` and
    ``shards`` are one int (cubic) or three; shards must be multiples of chunks. An existing
    array is refused unless ``overwrite=True``. ``workers`` threads paint and write blocks
    (default: the CPU count).
    """
    import zarr

    chunk = _triple("chunks", chunks)
    shard = None if shards is None else _triple("shards", shards)
    if shard is not None and any(s % c for s, c in zip(shard, chunk, strict=True)):
        raise InvalidArgumentError(
            f"shards: each shard size must be a multiple of the chunk size, got shards={shard} "
            f"and chunks={chunk}; pass e.g. shards={tuple(4 * c for c in chunk)}"
        )
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"workers: must be >= 1 or None, got {workers}")
    # Painting checks the class and that every id fits the dtype before anything is created.
    painter = ChunkPainter(seg, class_id, shard or chunk, dtype=dtype, own_ids=own_ids)

    if isinstance(path, zarr.Group):
        group: zarr.Group | None = path
        key = str(class_id) if name is None else name
        exists = key in path
        where = f"{key!r} in group {path.store_path}"
        store: Any = path
    else:
        group = None
        key = name
        p = Path(path)
        target = p / name if name is not None else p
        exists = target.exists() and (not target.is_dir() or any(target.iterdir()))
        where = str(target)
        store = zarr.storage.LocalStore(p)
    if exists and not overwrite:
        raise OutputExistsError(f"path: {where} already exists; pass overwrite=True to replace it")
    kwargs: dict[str, Any] = {
        "shape": tuple(seg.shape),
        "dtype": painter.dtype,
        "chunks": chunk,
        "shards": shard,
        "fill_value": 0,
        "overwrite": overwrite,
    }
    if group is not None:
        arr = group.create_array(key, **kwargs)
    else:
        arr = zarr.create_array(store, name=key, zarr_format=3, **kwargs)

    def write(i: int) -> None:
        (z, y, x), (d, h, w) = painter.block(i)
        arr[z : z + d, y : y + h, x : x + w] = painter.paint(i)

    n_workers = workers or os.cpu_count() or 1
    if n_workers == 1:
        for i in range(len(painter)):
            write(i)
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            for _ in pool.map(write, range(len(painter))):
                pass
    return arr
