"""panoptic_2d / find_instance_centers / relabel_connected: parity with the reference,
golden cases for the spec's quirks (§3.3–3.8, §14), an oracle for relabelling, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

import empanada_rs as er
from empanada_rs import _core
from empanada_rs.synthetic import model_outputs_2d

from .reference_panoptic import HAVE_REFERENCE, reference_panoptic_2d

needs_reference = pytest.mark.skipif(not HAVE_REFERENCE, reason="reference not installed")

# (shape, n_objects, n_classes, coarse, upsampling, params)
PARITY_CASES = [
    ((128, 128), 20, 1, True, 1, {}),
    ((128, 160), 25, 1, True, 1, {"nms_kernel": 1}),
    ((160, 128), 25, 1, True, 1, {"nms_kernel": 2}),
    ((128, 128), 30, 1, True, 1, {"nms_kernel": 4}),
    ((128, 128), 30, 1, True, 1, {"nms_kernel": 7, "nms_threshold": 0.3}),
    ((96, 96), 12, 1, False, 1, {"nms_kernel": 7}),
    ((64, 96), 8, 1, False, 1, {"nms_kernel": 3, "nms_threshold": 0.5}),
    ((128, 128), 30, 3, True, 1, {"thing_list": (1, 2, 3)}),
    ((128, 128), 30, 3, True, 1, {"thing_list": (1, 3)}),
    ((128, 128), 30, 2, True, 1, {"thing_list": (2,), "stuff_area": 10}),
    ((96, 64), 10, 3, False, 1, {"thing_list": (1, 2, 3), "nms_kernel": 5}),
    ((128, 128), 30, 1, True, 1, {"thing_list": ()}),
    ((128, 128), 30, 3, True, 1, {"thing_list": ()}),
    ((128, 128), 20, 1, True, 1, {"confidence_thr": 0.2}),
    ((128, 128), 20, 1, True, 1, {"confidence_thr": 0.9}),
    ((128, 128), 20, 1, True, 1, {"label_divisor": 1000}),
    ((128, 128), 20, 1, True, 1, {"label_divisor": 100, "force_connected": False}),
    ((128, 128), 40, 2, True, 1, {"thing_list": (1, 2), "force_connected": False}),
    ((128, 128), 20, 1, True, 1, {"void_label": 7, "stuff_area": 500, "force_connected": False}),
    ((128, 128), 20, 1, True, 1, {"crop": (117, 101)}),
    ((64, 64), 10, 1, True, 2, {}),
    ((64, 64), 10, 1, True, 4, {"nms_kernel": 5}),
    ((64, 64), 10, 1, False, 2, {}),
    ((64, 64), 10, 3, True, 2, {"thing_list": (1, 2, 3), "crop": (120, 99)}),
    ((256, 256), 120, 1, True, 1, {}),  # > 20 centres: the reference's chunked path
]


def _inputs(shape, n_objects, n_classes, coarse, upsampling, seed):
    o = model_outputs_2d(shape, n_objects=n_objects, n_classes=n_classes, coarse=coarse, seed=seed)
    sem = o.sem
    if upsampling > 1:  # the semantic map comes back s times larger (render_steps = 2 + log2 s)
        sem = np.ascontiguousarray(sem.repeat(upsampling, axis=1).repeat(upsampling, axis=2))
    return sem, o.ctr_hmp, o.offsets


@needs_reference
@pytest.mark.reference
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", PARITY_CASES, ids=lambda c: f"{c[0]}-{c[2]}cls-{c[3]}-s{c[4]}")
def test_parity_with_reference(case, seed):
    shape, n_obj, n_cls, coarse, ups, params = case
    sem, ctr, off = _inputs(shape, n_obj, n_cls, coarse, ups, seed)
    kw = dict(params)
    ours = er.panoptic_2d(sem, ctr, off, upsampling=ups, **kw)
    ref = reference_panoptic_2d(sem, ctr, off, upsampling=ups, **kw)
    assert ours.dtype == np.int32
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@needs_reference
@pytest.mark.reference
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # The reference asserts on a 1-pixel-high or -wide heatmap (its squeeze() drops the axis);
    # ours handles it (test_single_cell_heatmap).
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    c=st.sampled_from([1, 2, 3]),
    coarse=st.booleans(),
    k=st.integers(1, 6),
    levels=st.integers(2, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_parity_on_raw_random_maps(h, w, c, coarse, k, levels, seed):
    """Unstructured inputs with quantised values: plateaus, exact distance ties, mode ties."""
    rng = np.random.default_rng(seed)
    r = 4 if coarse else 1
    sem = rng.integers(0, levels, size=(c, h * r, w * r)).astype(np.float32) / (levels - 1)
    ctr = rng.integers(0, levels, size=(h, w)).astype(np.float32) / (levels - 1)
    off = rng.integers(-3, 4, size=(2, h, w)).astype(np.float32) * r
    things = (1,) if c == 1 else tuple(range(1, c))
    kw = dict(thing_list=things, nms_kernel=k, stuff_area=3, label_divisor=1000)
    np.testing.assert_array_equal(
        er.panoptic_2d(sem, ctr, off, **kw), reference_panoptic_2d(sem, ctr, off, **kw)
    )


def test_single_cell_heatmap():
    sem = np.full((1, 4, 4), 0.9, np.float32)
    out = er.panoptic_2d(sem, np.ones((1, 1), np.float32), np.zeros((2, 1, 1), np.float32))
    assert (out == 10001).all()


@needs_reference
@pytest.mark.reference
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spread", [0.0, 3.0, 40.0, 3e5])
def test_grouping_parity_with_many_centres(seed, spread):
    """Every pixel a thing, hundreds of centres, offsets from none to far outside the image
    (the 1e5 ceiling of the chunked path); integer offsets make exact distance ties."""
    rng = np.random.default_rng(seed)
    h, w = 48, 40
    sem = np.ones((1, 4 * h, 4 * w), np.float32)
    ctr = rng.integers(0, 3, size=(h, w)).astype(np.float32) / 2
    off = np.round(rng.standard_normal((2, h, w)) * spread).astype(np.float32)
    kw = dict(force_connected=False, label_divisor=100000, nms_kernel=1 + seed % 3)
    np.testing.assert_array_equal(
        er.panoptic_2d(sem, ctr, off, **kw), reference_panoptic_2d(sem, ctr, off, **kw)
    )


# --- golden cases for the spec's quirks -------------------------------------------------


def test_plateau_peaks_all_survive():
    ctr = np.zeros((5, 5), np.float32)
    ctr[1, 1] = ctr[1, 2] = 0.8  # equal neighbours: both are centres (no min distance)
    ctr[4, 4] = 0.5
    np.testing.assert_array_equal(
        er.find_instance_centers(ctr, threshold=0.1, nms_kernel=3), [[1, 1], [1, 2], [4, 4]]
    )


def test_threshold_is_strict_and_no_top_k():
    ctr = np.full((3, 40), 0.1, np.float32)
    ctr[1, ::4] = 0.2
    assert len(er.find_instance_centers(ctr, threshold=0.1, nms_kernel=3)) == 10
    assert len(er.find_instance_centers(ctr, threshold=0.2, nms_kernel=3)) == 0


def test_even_kernel_drops_last_row_and_column():
    # k=2 pools rows/cols (i-1, i): (0,0)=0.3 beats its right/bottom neighbours, and
    # (1,1)=0.2 only sees (0,0)..(1,1) → not a peak.
    ctr = np.array([[0.3, 0.0], [0.0, 0.2]], np.float32)
    np.testing.assert_array_equal(er.find_instance_centers(ctr, nms_kernel=2), [[0, 0]])
    # ...whereas (0,0)=0.2 never sees (1,1)=0.3: both are peaks.
    ctr = np.array([[0.2, 0.0], [0.0, 0.3]], np.float32)
    np.testing.assert_array_equal(er.find_instance_centers(ctr, nms_kernel=2), [[0, 0], [1, 1]])
    if HAVE_REFERENCE:
        import torch
        from empanada.inference.postprocess import find_instance_center

        ref = find_instance_center(torch.from_numpy(ctr)[None, None], 0.1, 2).numpy()
        np.testing.assert_array_equal(er.find_instance_centers(ctr, nms_kernel=2), ref)


def _two_blob_outputs():
    sem = np.zeros((1, 16, 16), np.float32)
    sem[0, 2:6, 2:6] = 0.9
    sem[0, 10:14, 9:15] = 0.9
    ctr = np.zeros((4, 4), np.float32)
    ctr[1, 1] = 0.9
    ctr[3, 3] = 0.9
    off = np.zeros((2, 4, 4), np.float32)
    return sem, ctr, off


def test_no_centres_gives_void_things():
    sem, ctr, off = _two_blob_outputs()
    out = er.panoptic_2d(sem, np.zeros_like(ctr), off)
    assert not out.any()


def test_semantic_only_labels_every_class_as_stuff():
    sem, ctr, off = _two_blob_outputs()
    out = er.panoptic_2d(sem, ctr, off, thing_list=(), stuff_area=10)
    assert set(np.unique(out)) == {0, 10000}
    out = er.panoptic_2d(sem, ctr, off, thing_list=(), stuff_area=41)  # 16 + 24 = 40 px
    assert set(np.unique(out)) == {0}


def test_stuff_area_is_inclusive():
    sem = np.zeros((3, 8, 8), np.float32)
    sem[0] = 0.5
    sem[2, :2, :5] = 1.0  # class 2: exactly 10 pixels
    ctr, off = np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float32)
    out = er.panoptic_2d(sem, ctr, off, thing_list=(1,), stuff_area=10)
    assert (out == 20000).sum() == 10
    out = er.panoptic_2d(sem, ctr, off, thing_list=(1,), stuff_area=11)
    assert (out == 20000).sum() == 0


def test_mode_tie_goes_to_smallest_class():
    sem = np.zeros((3, 4, 4), np.float32)
    sem[0] = 0.1
    sem[1, :2, :] = 1.0  # 8 pixels of class 1
    sem[2, 2:, :] = 1.0  # 8 pixels of class 2, same instance cell
    sem = np.ascontiguousarray(np.tile(sem, (1, 2, 2)))  # four copies; one cell each
    ctr = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    off = np.zeros((2, 2, 2), np.float32)
    out = er.panoptic_2d(sem, ctr, off, thing_list=(1, 2), force_connected=False)
    assert set(np.unique(out)) == {10001}
    if HAVE_REFERENCE:
        ref = reference_panoptic_2d(sem, ctr, off, thing_list=(1, 2), force_connected=False)
        np.testing.assert_array_equal(out, ref)


def test_chunked_path_leaves_far_pixels_unassigned():
    """Above 20 centres the reference starts from a 1e5 distance: farther pixels keep id 0."""
    h = w = 32
    sem = np.ones((1, h * 4, w * 4), np.float32)
    ctr = np.zeros((h, w), np.float32)
    ctr[::3, ::3] = 0.9  # 121 centres
    off = np.zeros((2, h, w), np.float32)
    off[:, 0, 0] = 2e5  # this cell's predicted centre is far from every centre
    out = er.panoptic_2d(sem, ctr, off, force_connected=False)
    assert (out[:4, :4] == 0).all() and (out[4:8, :4] > 0).all()
    if HAVE_REFERENCE:
        np.testing.assert_array_equal(
            out, reference_panoptic_2d(sem, ctr, off, force_connected=False)
        )
    # With few centres (one distance matrix) every pixel is assigned.
    ctr2 = np.zeros((h, w), np.float32)
    ctr2[5, 5] = 0.9
    assert (er.panoptic_2d(sem, ctr2, off, force_connected=False) > 0).all()


def test_coarse_instance_borders_are_blocky_but_outlines_fine():
    sem, ctr, off = _two_blob_outputs()
    sem[0, 3, 3] = 0.0  # one-pixel hole in the first blob survives at full resolution
    out = er.panoptic_2d(sem, ctr, off)
    assert out[3, 3] == 0 and out[2, 2] == 10001 and out[12, 12] > 10001


def test_force_connected_splits_and_renumbers_in_raster_order():
    sem = np.zeros((1, 8, 8), np.float32)
    sem[0, 0:2, 6:8] = 0.9  # two pieces assigned to one centre
    sem[0, 6:8, 0:2] = 0.9
    ctr = np.zeros((2, 2), np.float32)
    ctr[1, 0] = 0.9
    off = np.zeros((2, 2, 2), np.float32)
    out = er.panoptic_2d(sem, ctr, off)
    assert out[0, 6] == 10001 and out[7, 0] == 10002
    kept = er.panoptic_2d(sem, ctr, off, force_connected=False)
    assert set(np.unique(kept)) == {0, 10001}


# --- relabel_connected against a NumPy/SciPy oracle ---------------------------------------


def oracle_relabel_connected(pan, thing_list, label_divisor):
    out = pan.copy()
    eight = np.ones((3, 3), bool)
    for c in thing_list:
        lo, hi = c * label_divisor, (c + 1) * label_divisor
        comps = np.zeros(pan.shape, np.int64)
        n = 0
        for v in np.unique(pan[(pan >= lo) & (pan < hi)]):
            lab, k = ndimage.label(pan == v, structure=eight)
            comps[lab > 0] = lab[lab > 0] + n
            n += k
        # renumber by raster order of each component's first pixel
        flat = comps.ravel()
        ids, first = np.unique(flat, return_index=True)
        order = ids[ids > 0][np.argsort(first[ids > 0])]
        lut = np.zeros(n + 1, np.int64)
        lut[order] = np.arange(1, len(order) + 1)
        mask = comps > 0
        out[mask] = (lo + lut[comps[mask]]).astype(pan.dtype)
    return out


@settings(max_examples=150, deadline=None)
@given(
    pan=hnp.arrays(
        dtype=st.sampled_from([np.int32, np.uint16, np.int64, np.uint32]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=14),
        elements=st.sampled_from([0, 0, 0, 101, 102, 103, 200, 201, 202, 305]),
    ),
    things=st.sampled_from([(1,), (2,), (1, 2), (1, 2, 3), ()]),
)
def test_relabel_connected_matches_oracle(pan, things):
    ours = er.relabel_connected(pan, thing_list=things, label_divisor=100)
    assert ours.dtype == pan.dtype
    np.testing.assert_array_equal(ours, oracle_relabel_connected(pan, things, 100))


def test_relabel_connected_on_real_instances(shared_data):
    d = np.load(shared_data / "vnc_sstem_mito_dev.npz")
    inst = d["mito_instances_2d"][3].astype(np.int32)
    pan = np.where(inst > 0, 10000 + inst, 0).astype(np.int32)
    ours = er.relabel_connected(pan, thing_list=(1,), label_divisor=10000)
    np.testing.assert_array_equal(ours, oracle_relabel_connected(pan, (1,), 10000))
    # The expert labels are 8-connected components already: only the numbering changes.
    assert len(np.unique(ours)) == len(np.unique(pan))


# --- bad input ----------------------------------------------------------------------------


def _ok():
    return _two_blob_outputs()


@pytest.mark.parametrize(
    ("mutate", "exc", "param"),
    [
        (lambda s, c, o: (s.astype(np.float64), c, o), er.DTypeError, "sem"),
        (lambda s, c, o: (s, c.astype(np.int32), o), er.DTypeError, "ctr_hmp"),
        (lambda s, c, o: (s[0, 0], c, o), er.ShapeError, "sem"),
        (lambda s, c, o: (s[None], c, o), er.ShapeError, "sem"),
        (lambda s, c, o: (s, c, o[:1]), er.ShapeError, "offsets"),
        (lambda s, c, o: (s, c[:3].copy(), o[:, :3].copy()), er.ShapeError, "ctr_hmp"),
        (lambda s, c, o: (s[:, ::2, ::2], c, o), er.ContiguityError, "sem"),
        (lambda s, c, o: (np.zeros((0, 16, 16), np.float32), c, o), er.ShapeError, "sem"),
    ],
)
def test_bad_arrays(mutate, exc, param):
    s, c, o = mutate(*_ok())
    with pytest.raises(exc, match=param):
        er.panoptic_2d(s, c, o)


@pytest.mark.parametrize("where", ["sem", "ctr_hmp", "offsets"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(where, bad):
    arrays = dict(zip(["sem", "ctr_hmp", "offsets"], _ok(), strict=True))
    arrays[where] = arrays[where].copy()
    arrays[where].flat[5] = bad
    with pytest.raises(er.NonFiniteError, match=where):
        er.panoptic_2d(arrays["sem"], arrays["ctr_hmp"], arrays["offsets"])


@pytest.mark.parametrize(
    ("kw", "exc", "param"),
    [
        ({"nms_kernel": 0}, er.InvalidArgumentError, "nms_kernel"),
        ({"nms_kernel": -3}, er.InvalidArgumentError, "nms_kernel"),
        ({"upsampling": 3}, er.InvalidArgumentError, "upsampling"),
        ({"confidence_thr": 1.5}, er.InvalidArgumentError, "confidence_thr"),
        ({"nms_threshold": float("nan")}, er.InvalidArgumentError, "nms_threshold"),
        ({"thing_list": (0, 1)}, er.InvalidArgumentError, "thing_list"),
        ({"label_divisor": 1}, er.InvalidArgumentError, "label_divisor"),
        ({"label_divisor": 2**31}, er.LabelOverflowError, "label_divisor"),
        ({"crop": (17, 4)}, er.ShapeError, "crop"),
    ],
)
def test_bad_parameters(kw, exc, param):
    with pytest.raises(exc, match=param):
        er.panoptic_2d(*_ok(), **kw)


def test_more_instances_than_label_divisor_is_an_error():
    o = model_outputs_2d((128, 128), n_objects=30, seed=0)
    with pytest.raises(er.LabelOverflowError, match="label_divisor"):
        er.panoptic_2d(o.sem, o.ctr_hmp, o.offsets, label_divisor=5)


def test_relabel_connected_bad_input():
    with pytest.raises(er.DTypeError, match="panoptic"):
        er.relabel_connected(np.zeros((4, 4), np.float32))
    with pytest.raises(er.ShapeError, match="panoptic"):
        er.relabel_connected(np.zeros((2, 4, 4), np.int32))
    with pytest.raises(er.InvalidArgumentError, match="panoptic"):
        er.relabel_connected(np.full((4, 4), -1, np.int32))
    with pytest.raises(er.LabelOverflowError):
        er.relabel_connected(np.array([[2, 0, 2]], np.uint8), thing_list=(1,), label_divisor=2)
    with pytest.raises(er.LabelOverflowError, match="dtype"):
        er.relabel_connected(
            np.kron(np.ones((8, 8), np.uint8), [[200, 0], [0, 0]]).astype(np.uint8),
            thing_list=(2,),
            label_divisor=100,
        )
    with pytest.raises(er.ContiguityError, match="panoptic"):
        er.relabel_connected(np.zeros((4, 8), np.int32)[:, ::2])


def test_a_panic_in_a_kernel_becomes_internal_error():
    with pytest.raises(er.InternalError, match="deliberate test panic"):
        _core._panic_in_kernel_for_tests()


def test_errors_are_typed_value_errors():
    for exc in (er.DTypeError, er.ShapeError, er.NonFiniteError, er.InternalError):
        assert issubclass(exc, er.EmpanadaError) and issubclass(exc, ValueError)


@settings(max_examples=100, deadline=None)
@given(
    c=st.integers(0, 3),
    hs=st.integers(0, 9),
    ws=st.integers(0, 9),
    h=st.integers(0, 4),
    w=st.integers(0, 4),
    kw=st.fixed_dictionaries(
        {},
        optional={
            "nms_kernel": st.integers(-2, 12),
            "upsampling": st.integers(-1, 9),
            "label_divisor": st.integers(0, 2**33),
            "stuff_area": st.integers(0, 100),
            "crop": st.tuples(st.integers(0, 12), st.integers(0, 12)),
            "thing_list": st.lists(st.integers(0, 5), max_size=3),
        },
    ),
)
def test_no_panic_escapes(c, hs, ws, h, w, kw):
    """Any combination of shapes and parameters gives a result or an EmpanadaError."""
    sem = np.random.default_rng(0).random((c, hs, ws), dtype=np.float32)
    try:
        _core.panoptic_2d(sem, np.ones((h, w), np.float32), np.zeros((2, h, w), np.float32), **kw)
    except er.EmpanadaError as e:
        assert not isinstance(e, er.InternalError), e
    except OverflowError:
        pass  # a Python int that does not fit the parameter's type (e.g. negative stuff_area)
