"""Label operations: NumPy oracles, scikit-image / scipy comparisons, reference golden
cases, real data and bad input."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from skimage.measure import regionprops
from skimage.morphology import remove_small_objects as sk_remove_small_objects
from skimage.segmentation import relabel_sequential

import empanada_rs as er

from . import oracle_labels as ref

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]


@st.composite
def label_images(draw, max_id=6, max_side=9, dtypes=DTYPES):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_side if ndim == 2 else 5)) for _ in range(ndim))
    dtype = draw(st.sampled_from(dtypes))
    hi = min(max_id, np.iinfo(dtype).max)
    ids = draw(st.lists(st.integers(1, hi), min_size=1, max_size=4, unique=True))
    palette = np.array([0, *ids], dtype=dtype)
    idx = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, len(ids))))
    return palette[idx]


def assert_same(got, want):
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# --- oracles -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(labels=label_images(), data=st.data())
def test_relabel_matches_oracle(labels, data):
    present = [int(v) for v in np.unique(labels)]
    cap = int(np.iinfo(labels.dtype).max)
    keys = data.draw(st.lists(st.sampled_from([*present, 7, 100]), unique=True, max_size=5))
    values = data.draw(
        st.lists(st.integers(0, min(cap, 300)), min_size=len(keys), max_size=len(keys))
    )
    default = data.draw(st.none() | st.integers(0, min(cap, 50)))
    got = er.relabel(labels, np.array(keys, dtype=np.int64), np.array(values), default=default)
    assert_same(got, ref.relabel(labels, keys, values, default))


@settings(max_examples=60, deadline=None)
@given(labels=label_images(), data=st.data())
def test_relabel_out_and_in_place_match(labels, data):
    cap = int(np.iinfo(labels.dtype).max)
    keys = data.draw(st.lists(st.integers(0, 60), unique=True, max_size=8))
    values = data.draw(
        st.lists(st.integers(0, min(cap, 60)), min_size=len(keys), max_size=len(keys))
    )
    default = data.draw(st.none() | st.integers(0, min(cap, 50)))
    expect = er.relabel(labels, keys, values, default=default)
    out = np.full_like(labels, 3)
    assert er.relabel(labels, keys, values, default=default, out=out) is out
    assert_same(out, expect)
    inplace = labels.copy()
    assert er.relabel(inplace, keys, values, default=default, out=inplace) is inplace
    assert_same(inplace, expect)


@settings(max_examples=80, deadline=None)
@given(
    dtype=st.sampled_from([np.uint32, np.int32, np.uint16, np.int16]),
    data=st.data(),
)
def test_relabel_vector_paths(dtype, data):
    # Rows long enough for the 8- (4-byte) or 16-label (2-byte) vector steps, made of runs
    # so steps hold one, two or more labels (one scalar lookup, or a gather / per-lane
    # lookups), ids past the dense table (kept or defaulted), and an output starting at
    # every element offset of a 64-byte line (the streamed path pairs a line's two halves),
    # into a buffer and in place.
    hi = int(np.iinfo(dtype).max)
    width = data.draw(st.integers(1, 120))
    rows = data.draw(st.integers(1, 3))
    pool = [0, 1, 2, 5, 63, 64, 1000, hi - 1, hi]
    runs = data.draw(
        st.lists(st.tuples(st.sampled_from(pool), st.integers(1, 20)), min_size=1, max_size=40)
    )
    flat = np.repeat([v for v, _ in runs], [n for _, n in runs])
    flat = np.resize(flat, rows * width)
    labels = flat.astype(dtype).reshape(rows, width)
    keys = data.draw(st.lists(st.integers(0, 64), unique=True, min_size=1, max_size=6))
    values = data.draw(st.lists(st.integers(0, 500), min_size=len(keys), max_size=len(keys)))
    default = data.draw(st.none() | st.integers(0, 50))
    shift = data.draw(st.integers(0, 64 // np.dtype(dtype).itemsize - 1))
    want = ref.relabel(labels, keys, values, default)
    size = np.dtype(dtype).itemsize
    backing = np.full(labels.size + 128 // size, 9, dtype=dtype)
    # `shift` elements past a 64-byte boundary, whatever numpy's own alignment.
    start = (-backing.ctypes.data % 64) // size + shift
    out = backing[start : start + labels.size].reshape(labels.shape)
    er.relabel(labels, keys, values, default=default, out=out)
    assert_same(out, want)
    untouched = np.ones(backing.size, bool)
    untouched[start : start + labels.size] = False
    assert (backing[untouched] == 9).all()
    out[...] = labels
    er.relabel(out, keys, values, default=default, out=out)
    assert_same(out, want)
    assert (backing[untouched] == 9).all()


def test_relabel_and_renumber_in_place_of_an_empty_array():
    for shape in [(0, 0), (1, 0), (0, 3, 2)]:
        a = np.zeros(shape, np.uint32)
        assert er.relabel(a, [1], [2], out=a) is a
        got, _, _ = er.renumber(a, out=a)
        assert got is a and a.shape == shape


def test_relabel_large_4_byte_volume_matches_numpy():
    # More labels than one parallel chunk, ids past the table kept as they are.
    rng = np.random.default_rng(5)
    for dtype in (np.uint32, np.int32):
        labels = rng.integers(0, 3000, (7, 111, 173)).astype(dtype)
        labels[3, 50, :9] = 2_000_000_000
        keys = np.arange(0, 2000, 3)
        values = rng.integers(0, 10_000, keys.size)
        lut = np.arange(3000)
        lut[keys] = values
        want = labels.copy()
        small = labels < 3000
        want[small] = lut[labels[small]].astype(dtype)
        out = np.empty_like(labels)
        er.relabel(labels, keys, values, out=out)
        assert_same(out, want)
        assert_same(er.relabel(labels, keys, values), want)


@settings(max_examples=60, deadline=None)
@given(labels=label_images(), start=st.integers(1, 5), in_place=st.booleans())
def test_renumber_out_matches_fresh(labels, start, in_place):
    want, keys, values = er.renumber(labels, start=start)
    out = labels.copy() if in_place else np.full_like(labels, 3)
    got, k2, v2 = er.renumber(out if in_place else labels, start=start, out=out)
    assert got is out
    assert_same(out, want)
    assert_same(k2, keys)
    assert_same(v2, values)


def test_renumber_out_rejected_untouched():
    a = np.array([[0, 7, 9], [9, 0, 250]], dtype=np.uint8)
    out = np.full_like(a, 5)
    with pytest.raises(er.DTypeError, match="out"):
        er.renumber(a, out=np.zeros((2, 3), np.uint16))
    with pytest.raises(er.ShapeError, match="out"):
        er.renumber(a, out=np.zeros((3, 2), np.uint8))
    with pytest.raises(er.LabelOverflowError, match="labels"):
        er.renumber(a, start=254, out=out)
    with pytest.raises(er.InvalidArgumentError, match="start"):
        er.renumber(a, start=0, out=out)
    assert (out == 5).all()


def test_relabel_out_rejects_bad_buffers_untouched():
    a = np.array([[0, 1, 2], [3, 1, 2]], dtype=np.uint16)
    bad = [
        (er.DTypeError, np.zeros((2, 3), np.uint32)),
        (er.DTypeError, [[0, 0, 0], [0, 0, 0]]),
        (er.ShapeError, np.zeros((3, 2), np.uint16)),
        (er.ContiguityError, np.zeros((2, 6), np.uint16)[:, ::2]),
    ]
    for err, out in bad:
        with pytest.raises(err, match="out"):
            er.relabel(a, [1], [2], out=out)
    ro = np.zeros_like(a)
    ro.flags.writeable = False
    with pytest.raises(er.InvalidArgumentError, match="writeable"):
        er.relabel(a, [1], [2], out=ro)
    buf = np.arange(12, dtype=np.uint16)
    with pytest.raises(er.InvalidArgumentError, match="shares memory"):
        er.relabel(buf[:6].reshape(2, 3), [1], [2], out=buf[3:9].reshape(2, 3))
    assert (buf == np.arange(12)).all()
    # rejected arguments leave the buffer (or the labels, in place) as they were
    neg = np.array([[0, -1, 4]], dtype=np.int32)
    out = np.full_like(neg, 7)
    with pytest.raises(er.InvalidArgumentError):
        er.relabel(neg, [4], [5], out=out)
    assert (out == 7).all()
    with pytest.raises(er.InvalidArgumentError):
        er.relabel(neg, [4], [5], out=neg)
    assert neg.tolist() == [[0, -1, 4]]
    with pytest.raises(er.LabelOverflowError):
        er.relabel(a, [1], [70000], out=a)
    assert a.tolist() == [[0, 1, 2], [3, 1, 2]]


def test_relabel_sparse_keys_and_list_input():
    labels = np.array([[0, 5, 4_000_000_000], [5, 7, 7]], dtype=np.uint64)
    got = er.relabel(labels, [4_000_000_000, 7], [1, 2])
    assert_same(got, np.array([[0, 5, 1], [5, 2, 2]], dtype=np.uint64))
    big = np.arange(1, 10_000_001, 1_000_000, dtype=np.uint32).reshape(2, 5)
    got = er.relabel(big, big.ravel(), np.arange(10), default=0)
    assert_same(got, np.arange(10, dtype=np.uint32).reshape(2, 5))


@settings(max_examples=150, deadline=None)
@given(labels=label_images(), start=st.integers(1, 5))
def test_renumber_matches_oracle_and_skimage(labels, start):
    out, keys, values = er.renumber(labels, start=start)
    want, ids, vals = ref.renumber(labels, start)
    assert_same(out, want)
    np.testing.assert_array_equal(keys, ids)
    np.testing.assert_array_equal(values, vals)
    assert keys.dtype == values.dtype == labels.dtype
    sk, _, _ = relabel_sequential(labels, offset=start)
    np.testing.assert_array_equal(out, sk)
    assert_same(er.relabel(out, values, keys), labels)


@settings(max_examples=150, deadline=None)
@given(labels=label_images(max_id=100))
def test_statistics_match_oracle_and_regionprops(labels):
    got = er.label_statistics(labels)
    want = ref.statistics(labels)
    for key in ("ids", "counts", "boxes", "centroids"):
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    rps = regionprops(labels.astype(np.int64))
    assert [rp.label for rp in rps] == list(got["ids"])
    for i, rp in enumerate(rps):
        assert tuple(got["boxes"][i]) == rp.bbox
        assert got["counts"][i] == rp.area
        np.testing.assert_allclose(got["centroids"][i], rp.centroid, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Only one label")
@settings(max_examples=150, deadline=None)
@given(labels=label_images(), min_size=st.integers(0, 30))
def test_remove_small_objects_matches_oracle_and_skimage(labels, min_size):
    got = er.remove_small_objects(labels, min_size)
    assert_same(got, ref.remove_small_objects(labels, min_size))
    # skimage on one id at a time (its int path counts per id, like ours).
    for i in np.unique(labels[labels > 0]):
        mask = (labels == i).astype(np.uint8)
        kept = sk_remove_small_objects(mask, max_size=max(min_size - 1, 0)) if min_size else mask
        np.testing.assert_array_equal(got == i, kept.astype(bool))


@settings(max_examples=150, deadline=None)
@given(labels=label_images(), min_span=st.integers(0, 6))
def test_remove_pancakes_matches_oracle(labels, min_span):
    assert_same(er.remove_pancakes(labels, min_span), ref.remove_pancakes(labels, min_span))


@settings(max_examples=200, deadline=None)
@given(labels=label_images(max_side=10, dtypes=[np.uint8, np.int32, np.uint64]))
def test_fill_holes_matches_oracle(labels):
    assert_same(er.fill_holes(labels), ref.fill_holes(labels))


@settings(max_examples=100, deadline=None)
@given(
    mask=hnp.arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12)))
    | hnp.arrays(np.bool_, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))
)
def test_fill_holes_single_object_is_binary_fill_holes(mask):
    got = er.fill_holes(mask.astype(np.uint16) * 3)
    np.testing.assert_array_equal(got, ndimage.binary_fill_holes(mask).astype(np.uint16) * 3)


# --- golden cases --------------------------------------------------------------------------


def ring_with_neighbours():
    """Object 5 is a ring with a hole plus a separate voxel at (8, 8); object 1 sits in the
    hole; object 2 lies in 5's bounding box but outside the ring."""
    labels = np.zeros((10, 10), dtype=np.uint16)
    labels[1:8, 1:8] = 5
    labels[2:7, 2:7] = 0
    labels[8, 8] = 5
    labels[4, 4] = 1
    labels[8, 2:6] = 2
    return labels


@pytest.mark.reference
def test_fill_holes_keeps_neighbours_unlike_reference():
    filters = reference_filters()
    labels = ring_with_neighbours()

    class Tracker:
        instances: dict

    tracker = Tracker()
    stack = labels[None].astype(np.uint32)
    tracker.instances = filters.pan_seg_to_rle_seg(stack, [0], 1_000_000, [], force_connected=False)
    out = filters.fill_holes_in_segmentation(tracker, stack.shape, [0], 1_000_000, [])
    theirs = filters.rle_seg_to_pan_seg(out, stack.shape)[0]
    # The reference fills "any label" in object 5's box and paints it 5: objects 1 and 2
    # are overwritten.
    assert theirs[4, 4] == 5
    assert (theirs[8, 2:6] == 5).all()
    assert not np.isin(theirs, [1, 2]).any()
    # Ours fills only the hole's background voxels and leaves both neighbours intact.
    want = labels.copy()
    want[2:7, 2:7] = 5
    want[4, 4] = 1
    np.testing.assert_array_equal(er.fill_holes(labels), want)


def test_fill_holes_nested_objects_innermost_wins():
    labels = np.zeros((11, 11), dtype=np.uint8)
    labels[0:11, 0:11] = 5
    labels[1:10, 1:10] = 0
    labels[3:8, 3:8] = 2
    labels[4:7, 4:7] = 0
    got = er.fill_holes(labels)
    want = labels.copy()
    want[1:10, 1:10] = 5
    want[3:8, 3:8] = 2
    np.testing.assert_array_equal(got, want)


def reference_filters():
    """The reference's filters module with cc3d hidden (design §7: its fill holes would
    raise NameError otherwise)."""
    pytest.importorskip("empanada")
    if "tqdm" not in sys.modules:
        try:
            import tqdm  # noqa: F401
        except ImportError:  # only a progress bar in the reference; not installed here
            fake = types.ModuleType("tqdm")
            fake.tqdm = lambda it, **_: it  # type: ignore[attr-defined]
            sys.modules["tqdm"] = fake
    saved = sys.modules.get("cc3d")
    sys.modules["cc3d"] = None  # type: ignore[assignment]
    try:
        import empanada.inference.filters as filters
    finally:
        if saved is not None:
            sys.modules["cc3d"] = saved
        else:
            sys.modules.pop("cc3d", None)
    # Its connected_components checks `'cc3d' in sys.modules` at call time.
    wrapped = types.SimpleNamespace(**{k: getattr(filters, k) for k in dir(filters)})

    def call_without_cc3d(fn):
        def inner(*args, **kwargs):
            saved = sys.modules.pop("cc3d", None)
            try:
                return fn(*args, **kwargs)
            finally:
                if saved is not None:
                    sys.modules["cc3d"] = saved

        return inner

    for name in ("fill_holes_in_segmentation", "pan_seg_to_rle_seg"):
        setattr(wrapped, name, call_without_cc3d(getattr(filters, name)))
    return wrapped


@pytest.mark.reference
@pytest.mark.parametrize("min_span", [0, 1, 2, 3, 4, 5])
def test_remove_pancakes_matches_reference_comparison(min_span):
    filters = reference_filters()
    rng = np.random.default_rng(min_span)
    labels = np.zeros((6, 10, 10), dtype=np.uint32)
    boxes = {}
    for i in range(1, 12):
        lo = rng.integers(0, [5, 9, 9])
        hi = lo + rng.integers(1, 5, size=3)
        hi = np.minimum(hi, labels.shape)
        labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = i
    for i in np.unique(labels[labels > 0]):
        c = np.argwhere(labels == i)
        boxes[int(i)] = {
            "box": (*c.min(0), *(c.max(0) + 1)),
            "runs": np.array([len(c)]),
        }

    class Tracker:
        instances: dict

    tracker = Tracker()
    tracker.instances = dict(boxes)
    filters.remove_pancakes(tracker, min_span=min_span)
    got = er.label_statistics(er.remove_pancakes(labels, min_span))["ids"]
    assert sorted(tracker.instances) == list(got)
    tracker.instances = dict(boxes)
    filters.remove_small_objects(tracker, min_size=min_span * 10)
    got = er.label_statistics(er.remove_small_objects(labels, min_span * 10))["ids"]
    assert sorted(tracker.instances) == list(got)


def test_relabel_overflow_names_the_fix():
    labels = np.array([[1, 2]], dtype=np.uint8)
    with pytest.raises(er.LabelOverflowError, match="astype"):
        er.relabel(labels, [1], [300])
    with pytest.raises(er.LabelOverflowError, match="astype"):
        er.relabel(labels, [1], [3], default=256)
    many = np.arange(200, dtype=np.uint8).reshape(10, 20)
    with pytest.raises(er.LabelOverflowError):
        er.renumber(many, start=100)
    assert er.renumber(many, start=57)[0].max() == 255


def test_empty_arrays():
    for shape in [(0, 4), (3, 0, 2)]:
        e = np.zeros(shape, dtype=np.uint16)
        for out in (
            er.relabel(e, [1], [2]),
            er.renumber(e)[0],
            er.remove_small_objects(e, 3),
            er.remove_pancakes(e, 3),
            er.fill_holes(e),
        ):
            assert out.shape == shape and out.dtype == np.uint16
        s = er.label_statistics(e)
        assert s["ids"].shape == (0,) and s["boxes"].shape == (0, 2 * len(shape))


# --- bad input -----------------------------------------------------------------------------

ALL_OPS = [
    lambda a: er.relabel(a, [1], [2]),
    lambda a: er.renumber(a),
    lambda a: er.remove_small_objects(a, 2),
    lambda a: er.remove_pancakes(a, 2),
    er.fill_holes,
    er.label_statistics,
]


@pytest.mark.parametrize("op", ALL_OPS)
def test_bad_labels(op):
    with pytest.raises(er.DTypeError):
        op(np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(er.DTypeError):
        op([[1, 2], [3, 4]])
    with pytest.raises(er.ShapeError):
        op(np.zeros(5, dtype=np.uint16))
    with pytest.raises(er.ShapeError):
        op(np.zeros((2, 2, 2, 2), dtype=np.uint16))
    with pytest.raises(er.ContiguityError):
        op(np.zeros((4, 6), dtype=np.uint16)[:, ::2])
    neg = np.array([[0, 1], [-3, 1]], dtype=np.int16)
    with pytest.raises(er.InvalidArgumentError, match="negative"):
        op(neg)


def test_bad_parameters():
    a = np.array([[0, 1], [2, 1]], dtype=np.uint16)
    with pytest.raises(er.InvalidArgumentError):
        er.remove_small_objects(a, -1)
    with pytest.raises(er.InvalidArgumentError):
        er.remove_pancakes(a, -1)
    with pytest.raises(er.InvalidArgumentError):
        er.renumber(a, start=0)
    with pytest.raises(er.ShapeError):
        er.relabel(a, [1, 2], [3])
    with pytest.raises(er.InvalidArgumentError, match="unique"):
        er.relabel(a, [1, 1], [3, 4])
    with pytest.raises(er.InvalidArgumentError):
        er.relabel(a, [-1], [3])
    with pytest.raises(er.InvalidArgumentError):
        er.relabel(a, [1], [-3])
    with pytest.raises(er.InvalidArgumentError):
        er.relabel(a, [1], [3], default=-1)
    with pytest.raises(er.DTypeError):
        er.relabel(a, np.array([1.0]), [3])
    with pytest.raises(er.ShapeError):
        er.relabel(a, np.array([[1]]), [3])
    assert issubclass(er.EmpanadaError, ValueError)


# --- real data ---------------------------------------------------------------------------


def load(name, key):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} not available (see ../shared/data/README.md)")
    return np.load(path)[key]


def numpy_statistics(labels):
    """Vectorised NumPy statistics (np.unique + bincount), exact for integer coordinates."""
    flat = labels.ravel()
    ids, inv = np.unique(flat, return_inverse=True)
    counts = np.bincount(inv)
    coords = np.indices(labels.shape).reshape(labels.ndim, -1)
    lo, hi, cen = [], [], []
    for c in coords:
        mn = np.full(len(ids), np.iinfo(np.int64).max)
        mx = np.full(len(ids), -1)
        np.minimum.at(mn, inv, c)
        np.maximum.at(mx, inv, c)
        lo.append(mn)
        hi.append(mx + 1)
        cen.append(np.bincount(inv, weights=c.astype(np.float64)) / counts)
    keep = ids != 0
    return {
        "ids": ids[keep].astype(np.uint64),
        "counts": counts[keep].astype(np.int64),
        "boxes": np.stack(lo + hi, axis=1)[keep],
        "centroids": np.stack(cen, axis=1)[keep],
    }


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("vnc_sstem_mito_dev.npz", "mito_instances_2d"),
        ("vnc_sstem_mito_dev.npz", "mito_instances_3d"),
        ("neuroproof_fibsem_medulla_sample2.npz", "neuron_instances"),
    ],
)
def test_real_data(name, key):
    labels = load(name, key)
    got = er.label_statistics(labels)
    want = numpy_statistics(labels)
    for k in ("ids", "counts", "boxes"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # Centroids: bincount sums in float64 are exact here, so the division matches bitwise.
    np.testing.assert_array_equal(got["centroids"], want["centroids"])
    out, keys, values = er.renumber(labels)
    np.testing.assert_array_equal(out, relabel_sequential(labels)[0])
    np.testing.assert_array_equal(er.relabel(out, values, keys), labels)
    small = er.remove_small_objects(labels, 500)
    keep = want["ids"][want["counts"] >= 500]
    np.testing.assert_array_equal(small, np.where(np.isin(labels, keep), labels, 0))
    spans = want["boxes"][:, labels.ndim :] - want["boxes"][:, : labels.ndim]
    keep = want["ids"][(spans >= 5).all(axis=1)]
    np.testing.assert_array_equal(
        er.remove_pancakes(labels, 5), np.where(np.isin(labels, keep), labels, 0)
    )


@pytest.mark.realdata
def test_real_data_fill_holes_per_slice():
    labels = load("vnc_sstem_mito_dev.npz", "mito_instances_2d")[:3]
    for z in range(labels.shape[0]):
        np.testing.assert_array_equal(er.fill_holes(labels[z]), ref.fill_holes(labels[z]))
