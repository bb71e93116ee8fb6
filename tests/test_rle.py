"""Run-length objects: property tests against NumPy and the reference, golden quirks,
real data and bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import empanada_rs as er
from empanada_rs.rle import from_rle_seg, to_rle_seg

from . import oracle_rle as orc

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
au = pytest.importorskip("empanada.array_utils", reason="reference empanada not installed")

LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]


def label_images(max_side: int = 9) -> st.SearchStrategy[np.ndarray]:
    shapes = st.one_of(
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=max_side),
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=5),
    )
    return st.tuples(st.sampled_from(LABEL_DTYPES), shapes).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=st.integers(0, 4))
    )


@st.composite
def rles(draw: st.DrawFn, size: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A random disjoint RLE in shuffled order (consumers must not assume sorted runs)."""
    mask = draw(hnp.arrays(np.bool_, size))
    s, r = orc.mask_to_rle(mask)
    # split some runs in two so touching runs of one object appear too
    if len(s) and draw(st.booleans()):
        k = draw(st.integers(0, len(s) - 1))
        if r[k] > 1:
            cut = draw(st.integers(1, int(r[k]) - 1))
            s = np.concatenate([s, [s[k] + cut]])
            r = np.concatenate([r, [r[k] - cut]])
            r[k] = cut
    perm = np.asarray(draw(st.permutations(range(len(s)))), dtype=np.int64)
    return s[perm].astype(np.int64), r[perm].astype(np.int64)


def sorted_pair(s: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.argsort(s)
    return s[o], r[o]


# --- encode / decode ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(label_images())
def test_encode_matches_numpy(labels: np.ndarray) -> None:
    got = er.rle_encode(labels)
    want = orc.encode_labels(labels)
    for key in ("ids", "boxes", "counts", "offsets", "starts", "runs"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert got["ids"].dtype == np.uint64
    for key in ("boxes", "counts", "offsets", "starts", "runs"):
        assert got[key].dtype == np.int64
    assert got["shape"] == labels.shape


@settings(max_examples=100, deadline=None)
@given(label_images(), st.sampled_from(["uint8", "uint16", "uint32", "uint64", "int32", "int64"]))
def test_decode_roundtrip(labels: np.ndarray, dtype: str) -> None:
    e = er.rle_encode(labels)
    out = er.rle_decode(e["ids"], e["offsets"], e["starts"], e["runs"], e["shape"], dtype=dtype)
    assert out.dtype == np.dtype(dtype)
    assert out.shape == labels.shape
    np.testing.assert_array_equal(out, labels.astype(dtype))


def test_encode_continues_runs_across_rows() -> None:
    labels = np.array([[0, 3, 3], [3, 3, 0], [0, 0, 3]], np.uint8)
    e = er.rle_encode(labels)
    np.testing.assert_array_equal(e["starts"], [1, 8])
    np.testing.assert_array_equal(e["runs"], [4, 1])
    np.testing.assert_array_equal(e["boxes"], [[0, 0, 3, 3]])
    # exactly the reference's encoding of the object's raveled coordinates
    coords = np.ravel_multi_index(np.nonzero(labels == 3), labels.shape)
    s, r = au.rle_encode(coords)
    np.testing.assert_array_equal(e["starts"], s)
    np.testing.assert_array_equal(e["runs"], r)


def test_decode_accepts_numpy_dtype_and_later_objects_win() -> None:
    out = er.rle_decode(
        np.array([1, 2]),
        np.array([0, 1, 2]),
        np.array([0, 1]),
        np.array([3, 1]),
        (2, 2),
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(out, [[1, 2], [1, 0]])


# --- rle_from_indices ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.sets(st.integers(0, 200), min_size=1))
def test_from_indices_matches_reference(idx: set[int]) -> None:
    flat = np.array(sorted(idx), np.int64)
    s, r = er.rle_from_indices(flat)
    rs, rr = au.rle_encode(flat)
    np.testing.assert_array_equal(s, rs)
    np.testing.assert_array_equal(r, rr)


def test_from_indices_empty_is_empty_where_reference_crashes() -> None:
    with pytest.raises(IndexError):
        au.rle_encode(np.zeros(0, np.int64))
    s, r = er.rle_from_indices(np.zeros(0, np.int64))
    assert s.shape == r.shape == (0,)


# --- intersection, IoU, IoA ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(rles(), rles())
def test_intersection_iou_ioa(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> None:
    ma = orc.to_mask(*a, 60) > 0
    mb = orc.to_mask(*b, 60) > 0
    inter = int((ma & mb).sum())
    assert er.rle_intersection(*a, *b) == inter
    union = int((ma | mb).sum())
    assert er.rle_iou(*a, *b) == pytest.approx(inter / union if union else 0.0)
    assert er.rle_ioa(*a, *b) == pytest.approx(inter / mb.sum() if mb.sum() else 0.0)
    if len(a[0]) and len(b[0]):
        assert er.rle_intersection(*a, *b) == au.rle_intersection(*a, *b)
        assert er.rle_iou(*a, *b) == pytest.approx(au.rle_iou(*a, *b))
        assert er.rle_ioa(*a, *b) == pytest.approx(au.rle_ioa(*a, *b))


def test_ioa_divides_by_second_argument_and_touching_adds_nothing() -> None:
    a = (np.array([0]), np.array([10]))
    b = (np.array([5]), np.array([20]))
    assert er.rle_ioa(*a, *b) == pytest.approx(5 / 20) == pytest.approx(au.rle_ioa(*a, *b))
    assert er.rle_ioa(*b, *a) == pytest.approx(5 / 10)
    touching = (np.array([10]), np.array([3]))
    assert er.rle_intersection(*a, *touching) == 0 == au.rle_intersection(*a, *touching)


def test_iou_of_empty_rles_is_zero_not_nan() -> None:
    e = np.zeros(0, np.int64)
    assert er.rle_iou(e, e, e, e) == 0.0
    assert er.rle_ioa(np.array([1]), np.array([2]), e, e) == 0.0


# --- union and vote ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(rles(), min_size=0, max_size=5))
def test_union_matches_mask_and_reference(items: list[tuple[np.ndarray, np.ndarray]]) -> None:
    s, r = er.rle_union(items)
    cover = sum((orc.to_mask(*x, 60) for x in items), np.zeros(60, np.int64))
    ws, wr = orc.mask_to_rle(cover > 0)
    np.testing.assert_array_equal(s, ws)
    np.testing.assert_array_equal(r, wr)
    ranges = [np.stack([x[0], x[0] + x[1]], axis=1) for x in items if len(x[0])]
    if ranges:
        joined = au.join_ranges(ranges)
        np.testing.assert_array_equal(np.stack([s, s + r], axis=1), joined)
        if len(items) <= 2 and len(items[0][0]):
            ms, mr = au.merge_rles(*items[0], *(items[1] if len(items) == 2 else (None, None)))
            np.testing.assert_array_equal(s, ms)
            np.testing.assert_array_equal(r, mr)


def test_union_merges_touching_runs() -> None:
    s, r = er.rle_union([(np.array([0, 5]), np.array([5, 2])), (np.array([7]), np.array([1]))])
    np.testing.assert_array_equal(s, [0])
    np.testing.assert_array_equal(r, [8])


@settings(max_examples=150, deadline=None)
@given(st.lists(rles(), min_size=0, max_size=6), st.integers(1, 4))
def test_vote_matches_mask_and_reference(
    items: list[tuple[np.ndarray, np.ndarray]], thr: int
) -> None:
    s, r = er.rle_vote(items, thr)
    nonempty = [x for x in items if len(x[0])]
    cover = sum((orc.to_mask(*x, 60) > 0 for x in items), np.zeros(60, np.int64))
    if len(nonempty) < thr:
        assert len(s) == len(r) == 0
    else:
        ws, wr = orc.mask_to_rle(cover >= thr)
        np.testing.assert_array_equal(s, ws)
        np.testing.assert_array_equal(r, wr)
    ranges = [np.stack([x[0], x[0] + x[1]], axis=1) for x in nonempty]
    if ranges:
        ref = np.asarray(au.vote_by_ranges([x.copy() for x in ranges], vote_thr=thr))
        ref = ref.reshape(-1, 2).astype(np.int64)
        np.testing.assert_array_equal(np.stack([s, s + r], axis=1), ref)


def test_vote_golden_quirks() -> None:
    a = (np.array([0]), np.array([10]))
    b = (np.array([5]), np.array([10]))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    # fewer non-empty inputs than thr: empty, even though the empty input is "present"
    s, _ = er.rle_vote([a, b, empty], 3)
    assert len(s) == 0
    ref_inputs = [np.array([[0, 10]]), np.array([[5, 15]]), np.zeros((0, 2))]
    assert len(au.vote_by_ranges(ref_inputs, 3)) == 0
    # thr == 1 is the union
    s, r = er.rle_vote([a, b], 1)
    np.testing.assert_array_equal(np.stack([s, s + r], 1), [[0, 15]])
    s, r = er.rle_vote([a, b], 2)
    np.testing.assert_array_equal(np.stack([s, s + r], 1), [[5, 10]])


def test_union_and_vote_of_nothing_are_empty() -> None:
    for s, r in (er.rle_union([]), er.rle_vote([], 1)):
        assert s.shape == r.shape == (0,)
        assert s.dtype == r.dtype == np.int64


# --- interoperability with the reference's rle_seg -----------------------------------------


def vnc() -> np.lib.npyio.NpzFile:
    path = DATA / "vnc_sstem_mito_dev.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return np.load(path)


def neuroproof() -> np.lib.npyio.NpzFile:
    path = DATA / "neuroproof_fibsem_medulla_sample2.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return np.load(path)


def assert_rle_seg_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for c in want:
        assert list(got[c]) == list(want[c])
        for label, attrs in want[c].items():
            assert tuple(got[c][label]["box"]) == tuple(attrs["box"])
            np.testing.assert_array_equal(got[c][label]["starts"], attrs["starts"])
            np.testing.assert_array_equal(got[c][label]["runs"], attrs["runs"])


def test_rle_seg_matches_pan_seg_to_rle_seg_on_vnc() -> None:
    from empanada.inference.rle import pan_seg_to_rle_seg, rle_seg_to_pan_seg

    inst = vnc()["mito_instances_2d"]
    divisor = 1000
    for z in (0, 7, 13):
        # two touching objects with one id, to exercise the force-connected relabel
        pan = np.where(inst[z] > 0, divisor + (inst[z] % 5) + 1, 0).astype(np.int64)
        want = pan_seg_to_rle_seg(pan, [1], divisor, [1], force_connected=True)
        cc, _ = er.connected_components(pan, connectivity=8)
        cc = cc.astype(np.int64)
        cc[cc > 0] += divisor
        enc = er.rle_encode(cc)
        got = to_rle_seg(enc, 1)
        assert_rle_seg_equal(got, want)
        back = from_rle_seg(want, 1)
        for key in ("ids", "boxes", "counts", "offsets", "starts", "runs"):
            np.testing.assert_array_equal(back[key], enc[key], err_msg=key)
        painted = er.rle_decode(
            back["ids"], back["offsets"], back["starts"], back["runs"], pan.shape
        )
        np.testing.assert_array_equal(painted, rle_seg_to_pan_seg(want, pan.shape))


def test_from_rle_seg_sorts_and_reads_text_rle() -> None:
    seg = {
        2: {
            9: {"box": (0, 0, 1, 4), "rle": "2 2 0 1"},
            4: {"box": (1, 0, 2, 1), "starts": np.array([4]), "runs": np.array([1])},
        }
    }
    got = from_rle_seg(seg)
    np.testing.assert_array_equal(got["ids"], [4, 9])
    np.testing.assert_array_equal(got["starts"], [4, 0, 2])
    np.testing.assert_array_equal(got["runs"], [1, 1, 2])
    np.testing.assert_array_equal(got["counts"], [1, 3])
    np.testing.assert_array_equal(got["offsets"], [0, 1, 3])
    empty = from_rle_seg({1: {}})
    assert empty["ids"].shape == (0,) and empty["boxes"].shape == (0, 0)


# --- real data -----------------------------------------------------------------------------


def test_real_vnc_roundtrip_counts_boxes() -> None:
    from skimage.measure import regionprops

    inst = np.ascontiguousarray(vnc()["mito_instances_2d"])
    e = er.rle_encode(inst)
    out = er.rle_decode(e["ids"], e["offsets"], e["starts"], e["runs"], e["shape"], dtype="uint16")
    np.testing.assert_array_equal(out, inst)
    props = regionprops(inst)
    np.testing.assert_array_equal(e["ids"], [p.label for p in props])
    np.testing.assert_array_equal(e["counts"], [p.area for p in props])
    np.testing.assert_array_equal(e["boxes"], [p.bbox for p in props])
    assert len(e["ids"]) == 269


def test_real_neuroproof_roundtrip_counts_boxes() -> None:
    from scipy import ndimage as ndi

    inst = np.ascontiguousarray(neuroproof()["neuron_instances"])
    e = er.rle_encode(inst)
    out = er.rle_decode(e["ids"], e["offsets"], e["starts"], e["runs"], e["shape"], dtype="uint16")
    np.testing.assert_array_equal(out, inst)
    ids = np.unique(inst[inst > 0])
    np.testing.assert_array_equal(e["ids"], ids)
    np.testing.assert_array_equal(e["counts"], np.bincount(inst.ravel())[ids])
    objs = ndi.find_objects(inst)
    boxes = [[s.start for s in objs[i - 1]] + [s.stop for s in objs[i - 1]] for i in ids]
    np.testing.assert_array_equal(e["boxes"], boxes)
    # a few objects' runs equal the reference's encoding of their raveled coordinates
    for k in (0, len(ids) // 2, len(ids) - 1):
        a, b = e["offsets"][k], e["offsets"][k + 1]
        coords = np.ravel_multi_index(np.nonzero(inst == ids[k]), inst.shape)
        s, r = au.rle_encode(coords)
        np.testing.assert_array_equal(e["starts"][a:b], s)
        np.testing.assert_array_equal(e["runs"][a:b], r)


# --- bad input -----------------------------------------------------------------------------

S0 = np.array([0, 4], np.int64)
R = np.array([2, 1], np.int64)


def test_encode_bad_input() -> None:
    with pytest.raises(er.DTypeError, match="labels"):
        er.rle_encode(np.zeros((3, 3), np.float32))
    with pytest.raises(er.DTypeError, match="labels"):
        er.rle_encode([[1, 2]])
    with pytest.raises(er.ShapeError, match="labels"):
        er.rle_encode(np.zeros(5, np.uint8))
    with pytest.raises(er.ShapeError, match="labels"):
        er.rle_encode(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(er.ContiguityError, match="labels"):
        er.rle_encode(np.zeros((4, 4), np.uint8)[:, ::2])
    with pytest.raises(er.InvalidArgumentError, match="labels"):
        er.rle_encode(np.array([[1, -2]], np.int32))
    e = er.rle_encode(np.zeros((0, 5), np.uint8))
    assert e["ids"].shape == (0,) and e["boxes"].shape == (0, 4)
    np.testing.assert_array_equal(e["offsets"], [0])


def test_decode_bad_input() -> None:
    ids, off = np.array([1, 2]), np.array([0, 1, 2])
    with pytest.raises(er.LabelOverflowError, match="ids"):
        er.rle_decode(np.array([256, 1]), off, S0, R, (3, 3), dtype="uint8")
    with pytest.raises(er.InvalidArgumentError, match="starts"):
        er.rle_decode(ids, off, S0, np.array([2, 6]), (3, 3))
    with pytest.raises(er.InvalidArgumentError):
        er.rle_decode(ids, off, S0, np.array([2, 0]), (3, 3))
    with pytest.raises(er.ShapeError):
        er.rle_decode(ids, off, S0, np.array([2]), (3, 3))
    with pytest.raises(er.ShapeError, match="offsets"):
        er.rle_decode(ids, np.array([0, 2]), S0, R, (3, 3))
    with pytest.raises(er.InvalidArgumentError, match="offsets"):
        er.rle_decode(ids, np.array([0, 1, 1]), S0, R, (3, 3))
    with pytest.raises(er.InvalidArgumentError, match="offsets"):
        er.rle_decode(ids, np.array([0, 2, 1]), S0, R, (3, 3))
    with pytest.raises(er.InvalidArgumentError, match="ids"):
        er.rle_decode(np.array([-1, 2]), off, S0, R, (3, 3))
    with pytest.raises(er.DTypeError, match="starts"):
        er.rle_decode(ids, off, S0.astype(np.int32), R, (3, 3))
    with pytest.raises(er.DTypeError, match="ids"):
        er.rle_decode(ids.astype(float), off, S0, R, (3, 3))
    with pytest.raises(er.DTypeError, match="dtype"):
        er.rle_decode(ids, off, S0, R, (3, 3), dtype="float32")
    with pytest.raises(er.ShapeError, match="shape"):
        er.rle_decode(ids, off, S0, R, (9,))
    with pytest.raises(er.InvalidArgumentError, match="shape"):
        er.rle_decode(ids, off, S0, R, (-3, 3))
    with pytest.raises(er.ContiguityError, match="starts"):
        er.rle_decode(ids, off, np.array([0, 9, 4, 9])[::2], R, (3, 3))
    with pytest.raises(er.ShapeError, match="starts"):
        er.rle_decode(ids, off, S0.reshape(2, 1), R, (3, 3))
    empty = er.rle_decode(np.zeros(0, np.uint64), np.array([0]), S0[:0], R[:0], (0, 4))
    assert empty.shape == (0, 4) and empty.dtype == np.uint32


def test_set_ops_bad_input() -> None:
    with pytest.raises(er.ShapeError, match="runs_a"):
        er.rle_intersection(S0, R[:1], S0, R)
    with pytest.raises(er.InvalidArgumentError, match="runs_b"):
        er.rle_iou(S0, R, S0, np.array([1, 0]))
    with pytest.raises(er.InvalidArgumentError, match="runs_a"):
        er.rle_ioa(np.array([0, 1]), np.array([3, 1]), S0, R)  # overlapping runs in one RLE
    with pytest.raises(er.InvalidArgumentError, match="runs_a"):
        er.rle_intersection(np.array([-1]), np.array([1]), S0, R)
    with pytest.raises(er.DTypeError, match="starts_b"):
        er.rle_intersection(S0, R, S0.astype(np.float64), R)
    with pytest.raises(er.InvalidArgumentError, match="indices"):
        er.rle_from_indices(np.array([3, 2]))
    with pytest.raises(er.InvalidArgumentError, match="indices"):
        er.rle_from_indices(np.array([2, 2]))
    with pytest.raises(er.InvalidArgumentError, match="indices"):
        er.rle_from_indices(np.array([-1, 2]))
    with pytest.raises(er.InvalidArgumentError, match="thr"):
        er.rle_vote([(S0, R)], 0)
    with pytest.raises(er.InvalidArgumentError, match="rles"):
        er.rle_union([S0])
    with pytest.raises(er.InvalidArgumentError, match="rles"):
        er.rle_vote([(S0, np.array([0, 1]))], 1)
    with pytest.raises(er.ShapeError, match="rles"):
        er.rle_union([(S0, R[:1])])
    with pytest.raises(er.DTypeError):
        er.rle_union([(S0.astype(np.int32), R)])
    with pytest.raises(TypeError):
        er.rle_union(5)


def test_reference_iou_of_empty_is_nan() -> None:
    e = np.zeros(0, np.int64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(au.rle_iou(e, e, e, e))
    assert er.rle_iou(e, e, e, e) == 0.0


small_ints = st.lists(st.integers(-3, 40), max_size=6).map(lambda v: np.array(v, np.int64))


@settings(max_examples=200, deadline=None)
@given(small_ints, small_ints, small_ints, small_ints, st.integers(-1, 3))
def test_garbage_in_gives_typed_errors_only(
    ids: np.ndarray, offsets: np.ndarray, starts: np.ndarray, runs: np.ndarray, thr: int
) -> None:
    calls = [
        lambda: er.rle_decode(ids, offsets, starts, runs, (4, 5), dtype="uint8"),
        lambda: er.rle_intersection(starts, runs, offsets, ids),
        lambda: er.rle_iou(starts, runs, starts, runs),
        lambda: er.rle_ioa(offsets, ids, starts, runs),
        lambda: er.rle_from_indices(starts),
        lambda: er.rle_union([(starts, runs), (offsets, ids)]),
        lambda: er.rle_vote([(starts, runs), (offsets, ids)], thr),
    ]
    for call in calls:
        try:
            call()
        except er.InternalError:  # a caught panic is a bug
            raise
        except er.EmpanadaError:
            pass


def test_huge_decode_shape_is_a_python_error_not_a_panic() -> None:
    e = np.zeros(0, np.int64)
    with pytest.raises((MemoryError, ValueError)):
        er.rle_decode(np.zeros(0, np.uint64), np.array([0]), e, e, (2**40, 2**40))
