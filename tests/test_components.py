"""Connected components: property tests against scipy (per id) and cc3d, golden cases,
real data and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import empanada_rs as er

from . import oracle_rle as orc

cc3d = pytest.importorskip("cc3d", reason="cc3d not installed")

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64, np.int16, np.int32, np.int64]


@st.composite
def volume(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    ndim = draw(st.sampled_from([2, 3]))
    conn = draw(st.sampled_from([4, 8] if ndim == 2 else [6, 18, 26]))
    side = 12 if ndim == 2 else 6
    shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=side))
    dtype = draw(st.sampled_from(LABEL_DTYPES))
    labels = draw(hnp.arrays(dtype, shape, elements=st.integers(0, draw(st.integers(1, 4)))))
    return labels, conn


@settings(max_examples=200, deadline=None)
@given(volume(), st.booleans())
def test_matches_scipy_per_id(case: tuple[np.ndarray, int], binary: bool) -> None:
    labels, conn = case
    out, n = er.connected_components(labels, connectivity=conn, binary=binary)
    want = orc.components(labels, conn, binary=binary)
    assert out.dtype == np.uint32 and out.shape == labels.shape
    np.testing.assert_array_equal(out, want)
    assert n == int(want.max(initial=0))


@settings(max_examples=150, deadline=None)
@given(volume())
def test_matches_cc3d(case: tuple[np.ndarray, int]) -> None:
    labels, conn = case
    out, n = er.connected_components(labels, connectivity=conn)
    want, m = cc3d.connected_components(labels, connectivity=conn, return_N=True)
    np.testing.assert_array_equal(out, want)
    assert n == m


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=3, max_side=8)))
def test_bool_is_binary_and_matches_skimage(mask: np.ndarray) -> None:
    from skimage.measure import label

    out, n = er.connected_components(mask)
    np.testing.assert_array_equal(out, label(mask, connectivity=mask.ndim))
    same, _ = er.connected_components(mask.astype(np.uint8) * 3, binary=True)
    np.testing.assert_array_equal(out, same)


def test_defaults_are_full_connectivity() -> None:
    diag2 = np.eye(3, dtype=np.uint8)
    assert er.connected_components(diag2)[1] == 1
    diag3 = np.zeros((2, 2, 2), np.uint8)
    diag3[0, 0, 0] = diag3[1, 1, 1] = 1
    assert er.connected_components(diag3)[1] == 1


def test_golden_2d_diagonal_touch() -> None:
    a = np.array([[1, 0], [0, 1]], np.uint8)
    out4, n4 = er.connected_components(a, connectivity=4)
    out8, n8 = er.connected_components(a, connectivity=8)
    np.testing.assert_array_equal(out4, [[1, 0], [0, 2]])
    np.testing.assert_array_equal(out8, [[1, 0], [0, 1]])
    assert (n4, n8) == (2, 1)


def test_golden_3d_face_edge_corner() -> None:
    def count(points: list[tuple[int, int, int]], conn: int) -> int:
        a = np.zeros((2, 2, 2), np.uint8)
        for p in points:
            a[p] = 1
        return er.connected_components(a, connectivity=conn)[1]

    face, edge, corner = [(0, 0, 0), (1, 0, 0)], [(0, 0, 0), (1, 1, 0)], [(0, 0, 0), (1, 1, 1)]
    assert [count(face, c) for c in (6, 18, 26)] == [1, 1, 1]
    assert [count(edge, c) for c in (6, 18, 26)] == [2, 1, 1]
    assert [count(corner, c) for c in (6, 18, 26)] == [2, 2, 1]


def test_golden_multilabel_and_raster_order() -> None:
    # two touching ids stay apart; id 5 in two pieces becomes two components;
    # numbering follows each component's first pixel in raster order
    a = np.array([[0, 5, 0, 7], [5, 5, 0, 7], [0, 0, 0, 0], [7, 0, 5, 5]], np.uint16)
    out, n = er.connected_components(a, connectivity=4)
    np.testing.assert_array_equal(out, [[0, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 0], [3, 0, 4, 4]])
    assert n == 4
    touching = np.array([[1, 2]], np.uint8)
    assert er.connected_components(touching)[1] == 2
    assert er.connected_components(touching, binary=True)[1] == 1


def test_empty_and_all_foreground() -> None:
    for shape in [(0, 0), (0, 4), (3, 0, 2)]:
        out, n = er.connected_components(np.zeros(shape, np.uint8))
        assert out.shape == shape and out.dtype == np.uint32 and n == 0
    out, n = er.connected_components(np.zeros((5, 6), np.uint8))
    assert n == 0 and not out.any()
    for conn in (6, 18, 26):
        out, n = er.connected_components(np.full((4, 5, 6), 9, np.uint32), connectivity=conn)
        assert n == 1 and (out == 1).all()


def test_real_neuroproof_matches_cc3d() -> None:
    path = DATA / "neuroproof_fibsem_medulla_sample2.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    inst = np.ascontiguousarray(np.load(path)["neuron_instances"])
    for conn in (26, 6):
        out, n = er.connected_components(inst, connectivity=conn)
        want, m = cc3d.connected_components(inst, connectivity=conn, return_N=True)
        assert n == m
        np.testing.assert_array_equal(out, want)


def test_real_vnc_instances_are_8_connected() -> None:
    path = DATA / "vnc_sstem_mito_dev.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    d = np.load(path)
    sem = np.ascontiguousarray(d["mito_semantic"][3]).astype(bool)
    inst = np.ascontiguousarray(d["mito_instances_2d"][3])
    out, n = er.connected_components(sem)
    want, m = cc3d.connected_components(sem, connectivity=8, return_N=True)
    np.testing.assert_array_equal(out, want)
    # the given 2D instances are the 8-connected components: same partition
    assert n == m == len(np.unique(inst[inst > 0]))
    relabelled, _ = er.connected_components(inst)
    np.testing.assert_array_equal(relabelled, out)


def test_bad_input() -> None:
    with pytest.raises(er.DTypeError, match="labels"):
        er.connected_components(np.zeros((3, 3), np.float64))
    with pytest.raises(er.DTypeError, match="labels"):
        er.connected_components([[1, 0]])
    with pytest.raises(er.ShapeError, match="labels"):
        er.connected_components(np.zeros(4, np.uint8))
    with pytest.raises(er.ShapeError, match="labels"):
        er.connected_components(np.zeros((1, 2, 2, 2), np.uint8))
    with pytest.raises(er.ContiguityError, match="labels"):
        er.connected_components(np.zeros((4, 4), np.uint8).T)
    with pytest.raises(er.ContiguityError, match="labels"):
        er.connected_components(np.zeros((4, 4), bool)[:, ::2])
    with pytest.raises(er.InvalidArgumentError, match="labels"):
        er.connected_components(np.array([[0, -1]], np.int8))
    with pytest.raises(er.InvalidArgumentError, match=r"connectivity.*\[8, 4\]"):
        er.connected_components(np.zeros((2, 2), np.uint8), connectivity=6)
    with pytest.raises(er.InvalidArgumentError, match=r"connectivity.*\[26, 18, 6\]"):
        er.connected_components(np.zeros((2, 2, 2), np.uint8), connectivity=8)
    with pytest.raises(er.InvalidArgumentError, match="connectivity"):
        er.connected_components(np.zeros((2, 2), np.uint8), connectivity=-4)


@settings(max_examples=60, deadline=None)
@given(volume(), st.booleans())
def test_out_buffer_matches_fresh_output(case: tuple[np.ndarray, int], binary: bool) -> None:
    labels, conn = case
    want, m = er.connected_components(labels, connectivity=conn, binary=binary)
    out = np.full(labels.shape, 77, np.uint32)  # stale contents are overwritten
    got, n = er.connected_components(labels, connectivity=conn, binary=binary, out=out)
    assert got is out and n == m
    np.testing.assert_array_equal(out, want)


def test_out_buffer_rejected_untouched() -> None:
    labels = np.array([[1, 0, 2], [1, 1, 0]], np.uint32)
    bad = [
        (er.DTypeError, np.zeros((2, 3), np.int32)),
        (er.DTypeError, [[0, 0, 0], [0, 0, 0]]),
        (er.ShapeError, np.zeros((3, 2), np.uint32)),
        (er.ContiguityError, np.zeros((2, 6), np.uint32)[:, ::2]),
    ]
    for err, out in bad:
        with pytest.raises(err, match="out"):
            er.connected_components(labels, out=out)
    ro = np.full((2, 3), 5, np.uint32)
    ro.flags.writeable = False
    with pytest.raises(er.InvalidArgumentError, match="writeable"):
        er.connected_components(labels, out=ro)
    with pytest.raises(er.InvalidArgumentError, match="shares memory"):
        er.connected_components(labels, out=labels)
    buf = np.arange(12, dtype=np.uint32)
    with pytest.raises(er.InvalidArgumentError, match="shares memory"):
        er.connected_components(buf[:6].reshape(2, 3), out=buf[4:10].reshape(2, 3))
    assert (buf == np.arange(12)).all()
    # labels rejected by the kernel leave the buffer as it was
    out = np.full((1, 2), 9, np.uint32)
    with pytest.raises(er.InvalidArgumentError, match="labels"):
        er.connected_components(np.array([[0, -1]], np.int8), out=out)
    with pytest.raises(er.InvalidArgumentError, match="connectivity"):
        er.connected_components(np.zeros((1, 2), np.uint8), connectivity=6, out=out)
    assert (out == 9).all()


@pytest.mark.parametrize("conn", [6, 18, 26, 4, 8])
@pytest.mark.parametrize("binary", [False, True])
def test_large_random_matches_cc3d(conn: int, binary: bool) -> None:
    # above the size where the image is cut into blocks labelled in parallel
    rng = np.random.default_rng(conn)
    shape = (1100, 1000) if conn in (4, 8) else (70, 130, 120)
    labels = rng.integers(0, 4, size=shape, dtype=np.uint8)
    labels[labels == 3] = 0
    out, n = er.connected_components(labels, connectivity=conn, binary=binary)
    np.testing.assert_array_equal(out, orc.components(labels, conn, binary=binary))
    src = labels.astype(bool) if binary else labels
    want, m = cc3d.connected_components(src, connectivity=conn, return_N=True)
    assert n == m
    if binary and conn == 8:
        # cc3d's 2D binary path does not number in raster order on large images
        # (skimage and scipy-by-first-pixel do); compare the partitions
        pairs = np.unique(np.stack([out.ravel(), want.ravel()]), axis=1)
        assert pairs.shape[1] == n + 1
    else:
        np.testing.assert_array_equal(out, want)
