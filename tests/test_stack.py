"""Stack (3D) post-processing: assignment, slice matching, trackers, StackPipeline.

Parity: our final volumes equal the reference's full stack path (tests/reference_stack.py)
on generated per-slice model outputs.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empanada_rs as er
from empanada_rs.synthetic import model_outputs_3d

from .reference_stack import HAVE_REFERENCE, reference_stack, reference_track

needs_reference = pytest.mark.skipif(not HAVE_REFERENCE, reason="reference not installed")
DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def ours(m, shape, plane="xy", *, min_size=30, min_extent=3, **kw) -> er.Segmentation:
    p = er.StackPipeline(shape, plane, **kw)
    for i in range(len(m)):
        p.push(*m.slice(i))
    assert p.n_pushed == len(m)
    return p.finish(min_size=min_size, min_extent=min_extent)


# --- assignment -------------------------------------------------------------------------


def brute_force_best(cost: np.ndarray) -> float:
    nr, nc = cost.shape
    if nr <= nc:
        return max(
            sum(cost[i, p[i]] for i in range(nr)) for p in itertools.permutations(range(nc), nr)
        )
    return brute_force_best(cost.T)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 6),
    st.integers(0, 6),
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 4, 1000]),
    st.booleans(),
)
def test_assignment_equals_scipy_including_ties(nr, nc, seed, levels, maximize):
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    cost = rng.integers(0, levels, (nr, nc)).astype(np.float64) / levels
    r, c = er.linear_sum_assignment(cost, maximize)
    rs, cs = linear_sum_assignment(cost, maximize)
    np.testing.assert_array_equal(r, rs)
    np.testing.assert_array_equal(c, cs)
    if 0 < nr * nc and max(nr, nc) <= 5 and maximize:
        assert cost[r, c].sum() == pytest.approx(brute_force_best(cost))


def test_assignment_bad_input():
    with pytest.raises(er.NonFiniteError):
        er.linear_sum_assignment(np.array([[np.nan]]))
    with pytest.raises(er.ShapeError):
        er.linear_sum_assignment(np.zeros(3))
    with pytest.raises(er.DTypeError):
        er.linear_sum_assignment(np.zeros((2, 2), np.float32))


# --- parity with the reference ----------------------------------------------------------

CASES = [
    # shape, plane, kernel, label_divisor, n_objects, seed, empty slices
    ((24, 40, 36), "xy", 3, 10000, 15, 0, (5,)),
    ((24, 40, 36), "xz", 3, 10000, 15, 1, (0, 7)),
    ((24, 40, 36), "yz", 5, 1000, 15, 2, (3,)),
    ((30, 48, 48), "xy", 1, 10000, 20, 3, ()),
    ((30, 48, 48), "xy", 7, 100, 20, 4, (29,)),
    ((20, 33, 50), "xz", 5, 10000, 12, 5, (10, 11)),
    ((18, 44, 29), "yz", 1, 500, 12, 6, ()),
    ((16, 32, 32), "xy", 3, 10000, 40, 7, (2, 3, 4)),
    ((12, 64, 64), "xy", 11, 10000, 25, 8, ()),
]


@needs_reference
@pytest.mark.parametrize(("shape", "plane", "k", "ld", "n_obj", "seed", "empty"), CASES)
def test_stack_parity(shape, plane, k, ld, n_obj, seed, empty):
    m = model_outputs_3d(shape, plane, n_obj, seed=seed, empty_slices=empty, branch_fraction=0.5)
    ref, ref_pan = reference_stack(
        m.sem,
        m.ctr_hmp,
        m.offsets,
        shape,
        plane,
        label_divisor=ld,
        median_kernel_size=k,
        min_size=30,
        min_extent=3,
        return_panoptic=True,
    )
    seg = ours(m, shape, plane, label_divisor=ld, median_kernel_size=k)
    v = seg.to_volume(1)
    assert v.dtype == np.int32
    np.testing.assert_array_equal(v, ref[1])
    np.testing.assert_array_equal(seg.stack_volume(), ref_pan)
    assert v.max() > 0


@needs_reference
@pytest.mark.parametrize("plane", ["xy", "yz"])
@pytest.mark.parametrize("things", [(1, 2), (1,)])
def test_stack_parity_multiclass(plane, things):
    shape = (20, 40, 44)
    m = model_outputs_3d(shape, plane, 24, n_classes=2, seed=11, branch_fraction=0.4)
    kw = dict(labels=(1, 2), thing_list=things, label_divisor=1000, median_kernel_size=3)
    ref = reference_stack(
        m.sem, m.ctr_hmp, m.offsets, shape, plane, min_size=20, min_extent=2, **kw
    )
    seg = ours(m, shape, plane, min_size=20, min_extent=2, **kw)
    assert seg.class_ids == [1, 2]
    for c in (1, 2):
        assert seg.is_thing(c) == (c in things)
        np.testing.assert_array_equal(seg.to_volume(c), ref[c])


@needs_reference
@pytest.mark.parametrize("thr", [(0.25, 0.25), (0.5, 0.1), (0.1, 0.6), (0.0, 0.3)])
def test_stack_parity_thresholds(thr):
    shape = (20, 40, 40)
    m = model_outputs_3d(shape, "xy", 20, seed=21, branch_fraction=0.6)
    kw = dict(merge_iou_thr=thr[0], merge_ioa_thr=thr[1], min_size=10, min_extent=2)
    ref = reference_stack(m.sem, m.ctr_hmp, m.offsets, shape, "xy", **kw)
    seg = ours(m, shape, "xy", **kw)
    np.testing.assert_array_equal(seg.to_volume(1), ref[1])


@needs_reference
def test_filters_remove_everything_on_thin_volumes():
    shape = (4, 32, 32)
    m = model_outputs_3d(shape, "xy", 10, seed=3)
    ref = reference_stack(m.sem, m.ctr_hmp, m.offsets, shape, "xy", median_kernel_size=3)
    seg = ours(m, shape, median_kernel_size=3, min_size=500, min_extent=5)
    assert ref[1].max() == 0
    assert seg.n_objects(1) == 0
    np.testing.assert_array_equal(seg.to_volume(1), ref[1])


@needs_reference
def test_short_stack_design_fix():
    """Design §3: with fewer slices than the median kernel the reference loses slices and
    its backward pass indexes past the end; ours shrinks the kernel and keeps every slice."""
    shape = (4, 32, 32)
    m = model_outputs_3d(shape, "xy", 8, seed=9, radius=(4.0, 8.0))
    with pytest.raises(IndexError):
        reference_stack(m.sem, m.ctr_hmp, m.offsets, shape, "xy", median_kernel_size=5)
    seg = ours(m, shape, median_kernel_size=5, min_size=1, min_extent=1)
    # Same as an explicit kernel of 3 (the largest odd kernel that fits 4 slices).
    ref3 = reference_stack(
        m.sem, m.ctr_hmp, m.offsets, shape, "xy", median_kernel_size=3, min_size=1, min_extent=1
    )
    np.testing.assert_array_equal(seg.to_volume(1), ref3[1])


@needs_reference
def test_xz_runs_wrapping_rows_design_fix():
    """A 2D run of an xz slice that continues from the end of row z into row z+1 is not
    contiguous in the volume. The reference keeps it as one 3D run (its tail lands in the
    next y plane); ours splits it at the row end so every voxel lands where it belongs."""
    shape = (6, 4, 8)
    pans = []
    for _ in range(shape[1]):
        pan = np.zeros((6, 8), np.int32)
        pan[1:5, :] = 20000  # a stuff object spanning whole rows: every run wraps
        pans.append(pan)
    kw = dict(labels=(2,), thing_list=(), label_divisor=10000, min_size=0, min_extent=0)
    ref = reference_track(pans, shape, "xz", **kw)[2]
    truth = np.zeros(shape, np.int32)
    truth[1:5] = 1
    assert not np.array_equal(ref, truth)  # the reference misplaces wrapped runs
    # Our tracker through the public pipeline: a stuff class fed by constant outputs.
    sem = np.zeros((3, 16, 16), np.float32)
    sem[0] = 1.0
    sem[:, 1:5, :8] = 0.0
    sem[2, 1:5, :8] = 1.0
    sem[0, :, 8:] = 1.0
    p = er.StackPipeline(
        shape,
        "xz",
        labels=(2,),
        thing_list=(),
        label_divisor=10000,
        median_kernel_size=1,
        stuff_area=1,
    )
    for _ in range(shape[1]):
        p.push(sem, np.zeros((4, 4), np.float32), np.zeros((2, 4, 4), np.float32))
    ours_v = p.finish(min_size=0, min_extent=0).to_volume(2)
    np.testing.assert_array_equal(ours_v, truth)


def test_panoptic_ids_and_order():
    shape = (16, 32, 32)
    m = model_outputs_3d(shape, "xy", 10, seed=2)
    seg = ours(m, shape, label_divisor=1000)
    objs = seg.objects(1)
    assert np.all(objs["ids"] // 1000 == 1)
    pan = seg.stack_volume()
    v = seg.to_volume(1)
    # to_volume renumbers the panoptic objects 1..N in object order.
    for i, pid in enumerate(objs["ids"], start=1):
        np.testing.assert_array_equal(v == i, pan == pid)


def test_push_from_threads_and_views():
    """push accepts non-contiguous views and can be driven from a worker thread."""
    shape = (12, 32, 32)
    m = model_outputs_3d(shape, "xy", 8, seed=4)
    p = er.StackPipeline(shape, "xy")
    sem_t = np.ascontiguousarray(np.swapaxes(m.sem, 2, 3))

    def run():
        for i in range(len(m)):
            p.push(np.swapaxes(sem_t[i], 1, 2), m.ctr_hmp[i], m.offsets[i])

    t = threading.Thread(target=run)
    t.start()
    t.join()
    a = p.finish(min_size=30, min_extent=3).to_volume(1)
    b = ours(m, shape).to_volume(1)
    np.testing.assert_array_equal(a, b)


# --- real data --------------------------------------------------------------------------


def _object_f1(pred: np.ndarray, truth: np.ndarray, thr: float = 0.5) -> tuple[int, int, int]:
    """Objects matched one-to-one at IoU > thr: (matched, n_pred, n_truth)."""
    p, t = pred.ravel(), truth.ravel()
    both = (p > 0) & (t > 0)
    pairs, inter = np.unique(np.stack([p[both], t[both]]), axis=1, return_counts=True)
    ps = np.bincount(p)
    ts = np.bincount(t)
    iou = inter / (ps[pairs[0]] + ts[pairs[1]] - inter)
    matched = int(np.sum(iou > thr))  # IoU > 0.5 pairs are one-to-one
    return matched, int(np.count_nonzero(ps[1:])), int(np.count_nonzero(ts[1:]))


@pytest.mark.skipif(
    not (DATA / "vnc_sstem_mito_dev.npz").exists(), reason="../shared/data not present"
)
def test_vnc_slices_match_into_3d_objects():
    d = np.load(DATA / "vnc_sstem_mito_dev.npz")
    slices = d["mito_instances_2d"]
    truth = d["mito_instances_3d"].astype(np.int64)
    seg = er.match_slices(slices, min_size=0, min_extent=1)
    v = seg.to_volume(1)
    matched, n_pred, n_truth = _object_f1(v.astype(np.int64), truth)
    f1 = 2 * matched / (n_pred + n_truth)
    print(f"VNC: {n_pred} objects, truth {n_truth}, matched@0.5 {matched}, F1 {f1:.3f}")
    assert f1 > 0.8
    if HAVE_REFERENCE:
        ld = 1 << 20
        pans = [np.where(s > 0, ld + s.astype(np.int64), 0) for s in slices]
        ref = reference_track(pans, slices.shape, "xy", label_divisor=ld, min_size=0, min_extent=1)
        np.testing.assert_array_equal(v, ref[1])


# --- bad input --------------------------------------------------------------------------


def _slice(h=32, w=32, c=1):
    return (
        np.full((c, h, w), 0.1, np.float32),
        np.zeros((h // 4, w // 4), np.float32),
        np.zeros((2, h // 4, w // 4), np.float32),
    )


def test_bad_construction():
    with pytest.raises(er.InvalidArgumentError):
        er.StackPipeline((4, 32, 32), "zz")
    for k in (0, 2, -1):
        with pytest.raises(er.InvalidArgumentError, match="median_kernel_size"):
            er.StackPipeline((4, 32, 32), median_kernel_size=k)
    with pytest.raises(er.InvalidArgumentError, match="mode"):
        er.StackPipeline((4, 32, 32), median_mode="mean")
    for kw in ({"merge_iou_thr": 1.5}, {"merge_ioa_thr": -0.1}, {"merge_iou_thr": np.nan}):
        with pytest.raises(er.InvalidArgumentError, match="merge_io"):
            er.StackPipeline((4, 32, 32), **kw)
    with pytest.raises(er.InvalidArgumentError, match="thing_list"):
        er.StackPipeline((4, 32, 32), labels=(1,), thing_list=(2,))
    with pytest.raises(er.InvalidArgumentError, match="labels"):
        er.StackPipeline((4, 32, 32), labels=(1, 1))
    with pytest.raises(er.InvalidArgumentError, match="label_divisor"):
        er.StackPipeline((4, 32, 32), label_divisor=0)
    with pytest.raises(er.ShapeError):
        er.StackPipeline((0, 32, 32))
    with pytest.raises(er.InvalidArgumentError, match="nms_kernel"):
        er.StackPipeline((4, 32, 32), nms_kernel=0)


def test_bad_slices():
    p = er.StackPipeline((4, 32, 32), "xy")
    sem, ctr, off = _slice()
    with pytest.raises(er.ShapeError):
        p.push(*_slice(16, 16))  # smaller than the plane's (32, 32) slice
    with pytest.raises(er.ShapeError):
        p.push(sem, ctr, off[:1])
    with pytest.raises(er.ShapeError):
        p.push(sem[0, 0], ctr, off)
    with pytest.raises(er.DTypeError):
        p.push(sem.astype(np.float64), ctr, off)
    p.push(sem, ctr, off)
    with pytest.raises(er.ShapeError):
        p.push(*_slice(48, 48))  # differs from the first slice
    # xz planes take (D, W) slices.
    q = er.StackPipeline((8, 4, 32), "xz")
    with pytest.raises(er.ShapeError):
        q.push(*_slice(4, 32))
    q.push(*_slice(8, 32))


def test_slice_count_errors():
    p = er.StackPipeline((2, 32, 32))
    p.push(*_slice())
    with pytest.raises(er.ShapeError, match="slices"):
        p.finish()
    p = er.StackPipeline((2, 32, 32))
    p.push(*_slice())
    p.push(*_slice())
    with pytest.raises(er.ShapeError):
        p.push(*_slice())
    seg = p.finish(min_size=0, min_extent=0)
    assert seg.n_objects(1) == 0
    with pytest.raises(er.InvalidArgumentError, match="finished"):
        p.push(*_slice())
    with pytest.raises(er.InvalidArgumentError, match="finished"):
        p.finish()


def test_bad_filters():
    p = er.StackPipeline((1, 32, 32))
    p.push(*_slice())
    with pytest.raises(er.InvalidArgumentError, match="min_size"):
        p.finish(min_size=-1)
    with pytest.raises(er.InvalidArgumentError, match="min_extent"):
        p.finish(min_extent=-1)
    p.finish()


def test_worker_errors_surface():
    p = er.StackPipeline((3, 32, 32), median_kernel_size=1)
    sem, ctr, off = _slice()
    bad = sem.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(er.NonFiniteError):
        p.push(bad, ctr, off)
        p.push(sem, ctr, off)
        p.push(sem, ctr, off)
        p.finish()
    with pytest.raises(er.InvalidArgumentError, match="finished"):
        p.push(sem, ctr, off)


def test_label_overflow_surfaces():
    """More objects than the label divisor allows: a typed error, not spilled ids."""
    shape = (6, 64, 64)
    m = model_outputs_3d(shape, "xy", 40, seed=1, radius=(3.0, 6.0))
    p = er.StackPipeline(shape, label_divisor=4, median_kernel_size=1)
    with pytest.raises(er.LabelOverflowError, match="label_divisor"):
        for i in range(len(m)):
            p.push(*m.slice(i))
        p.finish()


def test_match_slices_bad_input():
    with pytest.raises(er.ShapeError):
        er.match_slices(np.zeros((4, 4), np.uint16))
    with pytest.raises(er.ContiguityError):
        er.match_slices(np.zeros((4, 4, 4), np.uint16)[:, ::2])
    with pytest.raises(er.LabelOverflowError):
        er.match_slices(np.full((2, 4, 4), 70, np.uint16), label_divisor=50)
    with pytest.raises(er.InvalidArgumentError):
        er.match_slices(np.full((2, 4, 4), -1, np.int16))
    with pytest.raises(er.InvalidArgumentError):
        er.match_slices(np.zeros((2, 4, 4), np.uint16), "ab")
    with pytest.raises(er.DTypeError):
        er.match_slices(np.zeros((2, 4, 4), np.float32))


def test_running_median_mode_equals_prefiltered_stack():
    """median_mode="running" filters sem with the textbook running median; the emitted
    slice's own heatmap and offsets are used unfiltered."""
    shape = (14, 32, 32)
    m = model_outputs_3d(shape, "xy", 10, seed=12)
    a = ours(m, shape, median_kernel_size=5, median_mode="running").stack_volume()
    sem = er.median_filter_slices(np.ascontiguousarray(m.sem), 5, mode="running")
    p = er.StackPipeline(shape, median_kernel_size=1)
    for i in range(len(m)):
        p.push(sem[i], m.ctr_hmp[i], m.offsets[i])
    b = p.finish(min_size=30, min_extent=3).stack_volume()
    np.testing.assert_array_equal(a, b)
    c = ours(m, shape, median_kernel_size=5).stack_volume()
    assert not np.array_equal(a, c)  # the recursive default smooths differently
