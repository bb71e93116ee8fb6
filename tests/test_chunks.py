"""Chunked painting of segmentations (paint_block, ChunkPainter) and the numpy/zarr writers."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import empanada_rs as er
from empanada_rs.io import write_labels_numpy, write_labels_zarr

DTYPES = [np.uint8, np.uint16, np.int32, np.int64, np.uint64]


def expected(vol: np.ndarray, own_ids: bool) -> np.ndarray:
    """The oracle: own ids are the labels themselves; otherwise 1..N in ascending id order."""
    if own_ids:
        return vol.astype(np.int64)
    ids = np.unique(vol[vol > 0])
    lut = np.zeros(int(vol.max()) + 1, np.int64)
    lut[ids] = np.arange(1, len(ids) + 1)
    return lut[vol]


volumes = arrays(
    np.uint16,
    st.tuples(*[st.integers(1, 9)] * 3),
    elements=st.integers(0, 5) | st.just(300),
)
chunk_specs = st.tuples(*[st.integers(1, 10)] * 3)


def blocks(shape, chunk):
    for z in range(0, shape[0], chunk[0]):
        for y in range(0, shape[1], chunk[1]):
            for x in range(0, shape[2], chunk[2]):
                yield (
                    (z, y, x),
                    tuple(min(c, s - o) for c, s, o in zip(chunk, shape, (z, y, x), strict=True)),
                )


@settings(max_examples=150, deadline=None)
@given(volumes, chunk_specs, st.booleans(), st.sampled_from(DTYPES))
def test_blocks_reassemble_to_volume(vol, chunk, own_ids, dtype):
    seg = er.Segmentation.from_labels(vol, 1)
    want = expected(vol, own_ids)
    if want.max(initial=0) > np.iinfo(dtype).max:
        with pytest.raises(er.LabelOverflowError, match="dtype"):
            er.paint_block(seg, 1, (0, 0, 0), vol.shape, dtype=dtype, own_ids=own_ids)
        with pytest.raises(er.LabelOverflowError, match="dtype"):
            er.ChunkPainter(seg, 1, chunk, dtype=dtype, own_ids=own_ids)
        return
    out = np.full(vol.shape, 77, dtype)
    for origin, shape in blocks(vol.shape, chunk):
        b = er.paint_block(seg, 1, origin, shape, dtype=dtype, own_ids=own_ids)
        assert b.dtype == dtype and b.shape == shape
        out[tuple(slice(o, o + s) for o, s in zip(origin, shape, strict=True))] = b
    np.testing.assert_array_equal(out, want.astype(dtype))
    if not own_ids:
        np.testing.assert_array_equal(out, seg.to_volume(1))

    painter = er.ChunkPainter(seg, 1, chunk, dtype=dtype, own_ids=own_ids)
    out2 = np.zeros(vol.shape, dtype)
    for i in range(len(painter)):
        origin, shape = painter.block(i)
        out2[tuple(slice(o, o + s) for o, s in zip(origin, shape, strict=True))] = painter.paint(i)
    np.testing.assert_array_equal(out2, want.astype(dtype))
    # Touched chunks are exactly those with a nonzero voxel.
    touched = {tuple(c) for c in painter.touched()}
    nonzero = {
        tuple(o // c for o, c in zip(origin, chunk, strict=True))
        for origin, shape in blocks(vol.shape, chunk)
        if vol[tuple(slice(o, o + s) for o, s in zip(origin, shape, strict=True))].any()
    }
    assert touched == nonzero
    assert {tuple(c) for c in er.chunks_touched(seg, 1, chunk)} == nonzero

    out3 = np.full(vol.shape, 0, dtype)
    write_labels_numpy(seg, 1, out3, own_ids=own_ids)
    np.testing.assert_array_equal(out3, want.astype(dtype))


def test_write_labels_numpy_defaults_and_errors():
    vol = np.zeros((4, 5, 6), np.uint16)
    vol[1:3, 2:4, 1:5] = 9
    vol[0, 0, 0] = 4
    seg = er.Segmentation.from_labels(vol, 2)
    out = write_labels_numpy(seg, 2)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, seg.to_volume(2))
    keep = np.full(vol.shape, 5, np.uint8)
    write_labels_numpy(seg, 2, keep, own_ids=True)
    np.testing.assert_array_equal(keep, np.where(vol > 0, vol, 5))
    with pytest.raises(er.ShapeError, match="out"):
        write_labels_numpy(seg, 2, np.zeros((4, 5, 7), np.int32))
    with pytest.raises(er.ContiguityError, match="out"):
        write_labels_numpy(seg, 2, np.zeros((6, 5, 4), np.int32).T)
    with pytest.raises(er.DTypeError, match="out"):
        write_labels_numpy(seg, 2, np.zeros(vol.shape, np.float32))
    with pytest.raises(er.InvalidArgumentError, match="class_id"):
        write_labels_numpy(seg, 3)
    write_labels_numpy(seg, 2, np.zeros(vol.shape, np.int8))  # ids 1..2 fit
    with pytest.raises(er.LabelOverflowError, match="dtype"):
        write_labels_numpy(
            er.Segmentation.from_labels(vol * 40, 2), 2, np.zeros(vol.shape, np.int8), own_ids=True
        )


def test_bad_block_and_chunk_specs():
    vol = np.ones((4, 5, 6), np.uint8)
    seg = er.Segmentation.from_labels(vol, 1)
    for bad in (0, -1, (4, 4), (1, 2, 3, 4), (4, 0, 4), "abc"):
        with pytest.raises(er.InvalidArgumentError, match="chunks"):
            er.ChunkPainter(seg, 1, bad)
        with pytest.raises(er.InvalidArgumentError, match="chunks"):
            er.chunks_touched(seg, 1, bad)
        with pytest.raises(er.InvalidArgumentError, match="chunks"):
            write_labels_zarr(seg, "/nonexistent/never", 1, chunks=bad)
    with pytest.raises(er.InvalidArgumentError, match="shards"):
        write_labels_zarr(seg, "/nonexistent/never", 1, chunks=2, shards=3)
    with pytest.raises(er.InvalidArgumentError, match="shards"):
        write_labels_zarr(seg, "/nonexistent/never", 1, chunks=2, shards=0)
    with pytest.raises(er.ShapeError, match="origin"):
        er.paint_block(seg, 1, (3, 0, 0), (2, 1, 1))
    with pytest.raises(er.ShapeError, match="origin"):
        er.paint_block(seg, 1, (0, 0), (2, 1, 1))
    with pytest.raises(er.InvalidArgumentError, match="origin"):
        er.paint_block(seg, 1, (-1, 0, 0), (2, 1, 1))
    with pytest.raises(er.InvalidArgumentError, match="shape"):
        er.paint_block(seg, 1, (0, 0, 0), (0, 1, 1))
    with pytest.raises(er.DTypeError, match="dtype"):
        er.paint_block(seg, 1, (0, 0, 0), (1, 1, 1), dtype="float32")
    with pytest.raises(er.DTypeError, match="dtype"):
        er.paint_block(seg, 1, (0, 0, 0), (1, 1, 1), dtype="nonsense")
    p = er.ChunkPainter(seg, 1, 2)
    with pytest.raises(er.InvalidArgumentError, match="out of range"):
        p.paint(len(p))
    with pytest.raises(er.InvalidArgumentError, match="out of range"):
        p.block(len(p))


def chunk_files(root: Path) -> list[Path]:
    return [p for p in (root / "c").rglob("*") if p.is_file()]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(volumes, chunk_specs, st.booleans())
def test_zarr_equals_numpy_and_only_touched_chunks(tmp_path_factory, vol, chunk, own_ids):
    root = tmp_path_factory.mktemp("z") / "labels.zarr"
    seg = er.Segmentation.from_labels(vol, 1)
    arr = write_labels_zarr(seg, root, 1, chunks=chunk, own_ids=own_ids, workers=3)
    want = expected(vol, own_ids).astype(np.int32)
    np.testing.assert_array_equal(arr[:], want)
    np.testing.assert_array_equal(zarr.open_array(root, mode="r")[:], want)
    if not own_ids:
        np.testing.assert_array_equal(arr[:], seg.to_volume(1))
    names = {tuple(int(x) for x in p.relative_to(root / "c").parts) for p in chunk_files(root)}
    assert names == {tuple(c) for c in er.chunks_touched(seg, 1, chunk)}


def test_zarr_sharded_group_and_overwrite(tmp_path):
    rng = np.random.default_rng(3)
    vol = np.zeros((20, 30, 40), np.uint16)
    vol[2:9, 3:17, 5:30] = rng.integers(0, 4, (7, 14, 25))
    seg = er.Segmentation.from_labels(vol, 1)
    arr = write_labels_zarr(seg, tmp_path / "s", 1, chunks=(4, 5, 8), shards=(8, 10, 16))
    assert arr.shards == (8, 10, 16) and arr.chunks == (4, 5, 8)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "s")[:], seg.to_volume(1))
    shard_files = {
        tuple(int(x) for x in p.relative_to(tmp_path / "s" / "c").parts)
        for p in chunk_files(tmp_path / "s")
    }
    assert shard_files == {tuple(c) for c in er.chunks_touched(seg, 1, (8, 10, 16))}

    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    a = write_labels_zarr(seg, group, 1, name="mito", chunks=16, dtype="uint8")
    assert a.dtype == np.uint8
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "g.zarr")["mito"][:], seg.to_volume(1))
    with pytest.raises(er.OutputExistsError, match="overwrite=True"):
        write_labels_zarr(seg, group, 1, name="mito")
    with pytest.raises(er.OutputExistsError, match="overwrite=True"):
        write_labels_zarr(seg, tmp_path / "s", 1)
    assert issubclass(er.OutputExistsError, er.EmpanadaError)
    # Overwriting with another segmentation replaces every chunk (stale ones removed).
    vol2 = np.zeros_like(vol)
    vol2[15:, :3, :3] = 7
    seg2 = er.Segmentation.from_labels(vol2, 1)
    a2 = write_labels_zarr(seg2, tmp_path / "s", 1, chunks=4, overwrite=True, own_ids=True)
    np.testing.assert_array_equal(a2[:], vol2)
    with pytest.raises(er.LabelOverflowError, match="dtype"):
        write_labels_zarr(
            er.Segmentation.from_labels(vol2 * 50, 1),
            tmp_path / "o",
            1,
            dtype="uint8",
            own_ids=True,
        )
    assert not (tmp_path / "o").exists()


def test_interrupted_write_leaves_only_complete_chunks(tmp_path, monkeypatch):
    """A failure in the middle of writing a chunk file (half its bytes written) must leave
    every chunk on disk either absent or complete: zarr's LocalStore writes a temporary file
    and renames it into place, which this checks on the installed zarr."""
    import zarr.storage._local as local

    rng = np.random.default_rng(5)
    vol = rng.integers(0, 6, (16, 16, 16)).astype(np.uint16)
    seg = er.Segmentation.from_labels(vol, 1)
    want = seg.to_volume(1)
    real_atomic = local._atomic_write
    calls = {"n": 0}

    def failing_put(path, value, exclusive=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = bytes(value.as_buffer_like())
        with real_atomic(path, "wb", exclusive=exclusive) as f:
            if "/c/" in path.as_posix():
                calls["n"] += 1
                if calls["n"] > 5:
                    f.write(data[: len(data) // 2])
                    raise OSError("disk full (injected)")
            return f.write(data)

    monkeypatch.setattr(local, "_put", failing_put)
    with pytest.raises(OSError, match="injected"):
        write_labels_zarr(seg, tmp_path / "a", 1, chunks=4, workers=1)
    monkeypatch.undo()
    files = chunk_files(tmp_path / "a")
    assert 0 < len(files) < 64
    assert not [p for p in files if p.name.endswith(".partial")]
    arr = zarr.open_array(tmp_path / "a", mode="r")
    for p in files:
        z, y, x = (int(v) for v in p.relative_to(tmp_path / "a" / "c").parts)
        sl = tuple(slice(4 * c, 4 * c + 4) for c in (z, y, x))
        np.testing.assert_array_equal(arr[sl], want[sl])
    # Re-running with overwrite=True completes the array.
    arr = write_labels_zarr(seg, tmp_path / "a", 1, chunks=4, overwrite=True)
    np.testing.assert_array_equal(arr[:], want)


def test_real_neurons_zarr_chunks_64(shared_data, tmp_path):
    vol = np.load(shared_data / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    seg = er.Segmentation.from_labels(np.ascontiguousarray(vol), 1)
    arr = write_labels_zarr(seg, tmp_path / "n.zarr", 1, chunks=64, own_ids=True)
    np.testing.assert_array_equal(arr[:], vol.astype(np.int32))
    arr = write_labels_zarr(seg, tmp_path / "m.zarr", 1, chunks=64, shards=128)
    np.testing.assert_array_equal(arr[:], seg.to_volume(1))
    np.testing.assert_array_equal(write_labels_numpy(seg, 1), seg.to_volume(1))
