"""Per-object erode / dilate / fill holes in the core (`Segmentation.apply_object_ops`,
spec §5.6.3): against dense NumPy step loops over the whole volume, against the per-object
Python loop it replaced (tests/oracle_object_ops.py), on real data, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empanada_rs as er

from . import oracle_labels as ref
from . import oracle_object_ops as loop

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
KEYS = ("ids", "boxes", "counts", "offsets", "starts", "runs")


@st.composite
def volumes(draw):
    shape = tuple(draw(st.integers(1, n)) for n in (4, 7, 8))
    ids = draw(st.lists(st.integers(1, 2**31 - 1), min_size=1, max_size=4, unique=True))
    p = draw(st.sampled_from([0.3, 0.6, 0.9]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # blocky objects (holes and contacts) rather than salt and pepper
    coarse = rng.integers(0, len(ids), size=tuple((s + 1) // 2 for s in shape))
    vol = np.asarray(ids, np.int32)[coarse].repeat(2, 0).repeat(2, 1).repeat(2, 2)
    vol = vol[: shape[0], : shape[1], : shape[2]]
    return np.where(rng.random(shape) < p, vol, 0).astype(np.int32)


def dense(vol, erode, dilate, fill):
    """The three steps on the whole volume: per id erosion of its own mask, the volume's
    outside counting as set; one dilation of all labels; per-slice hole filling."""
    v = vol.copy()
    if erode:
        out = np.zeros_like(v)
        for i in np.unique(v[v > 0]):
            out[ref.erode_mask(v == i, erode)] = i
        v = out
    if dilate:
        v = ref.dilate_labels(v, dilate)
    if fill:
        v = np.stack([ref.fill_holes(s) for s in v])
    return v


def same_objects(a: er.Segmentation, b: er.Segmentation) -> None:
    assert a.class_ids == b.class_ids
    for c in a.class_ids:
        assert a.is_thing(c) == b.is_thing(c)
        oa, ob = a.objects(c), b.objects(c)
        for k in KEYS:
            np.testing.assert_array_equal(oa[k], ob[k], err_msg=k)


ops = st.tuples(st.integers(0, 3), st.integers(0, 3), st.booleans())


@settings(max_examples=200, deadline=None)
@given(volumes(), ops)
def test_matches_dense_step_loops(vol, op):
    e, d, f = op
    got = er.Segmentation.from_labels(vol, 1).apply_object_ops(erode=e, dilate=d, fill_holes=f)
    np.testing.assert_array_equal(got.stack_volume(), dense(vol, e, d, f))


@settings(max_examples=100, deadline=None)
@given(volumes(), volumes(), ops)
def test_matches_the_per_object_loop_objects_and_runs(a, b, op):
    """Every class on its own, ids, tight boxes, counts and runs as the Python loop built
    them (runs across full-width rows merged, as `rle_from_indices` does)."""
    e, d, f = op
    b = b[: a.shape[0], : a.shape[1], : a.shape[2]]
    b = np.pad(b, [(0, s - t) for s, t in zip(a.shape, b.shape, strict=True)])
    parts = [er.Segmentation.from_labels(a, 1)]
    if (b > 0).any():
        parts.append(er.Segmentation.from_labels((b > 0).astype(np.int32), 2, thing=False))
    seg = er.Segmentation.combine(parts)
    got = seg.apply_object_ops(erode=e, dilate=d, fill_holes=f)
    same_objects(got, loop.apply_object_ops(seg, erode=e, dilate=d, fill_holes=f))


def test_ties_follow_the_ids_not_the_object_order():
    """Dilation gives a contested voxel to the larger id, wherever that object is listed."""
    shape = (1, 1, 5)

    def obj(i, x):
        return (i, [0, 0, x, 1, 1, x + 1], 1, [x], [1])

    objs = [obj(9, 1), obj(4, 3)]  # listed by descending id
    d = {
        "ids": np.array([o[0] for o in objs], np.uint64),
        "boxes": np.array([o[1] for o in objs], np.int64),
        "counts": np.array([1, 1], np.int64),
        "offsets": np.array([0, 1, 2], np.int64),
        "starts": np.array([1, 3], np.int64),
        "runs": np.array([1, 1], np.int64),
    }
    seg = er.Segmentation.from_objects(shape, 1, d)
    out = seg.apply_object_ops(dilate=1).stack_volume()[0, 0]
    np.testing.assert_array_equal(out, [9, 9, 9, 4, 4])


def test_no_ops_and_vanishing_objects():
    vol = np.zeros((3, 4, 5), np.int32)
    vol[1, 1:3, 1:3] = 7  # one voxel thick along z: one erosion removes it
    vol[:, :, 3:] = 8  # against the border, which does not erode: x = 4 stays
    seg = er.Segmentation.from_labels(vol, 1)
    same_objects(seg.apply_object_ops(), seg)
    out = seg.apply_object_ops(erode=1)
    assert out.objects(1)["ids"].tolist() == [8]
    np.testing.assert_array_equal(
        out.stack_volume(), np.where(vol == 8, 8, 0) * (np.arange(5) == 4)
    )


def test_huge_step_counts_mean_as_far_as_there_is_room():
    vol = np.zeros((3, 4, 5), np.int32)
    vol[1, 1:3, 1:4] = 5
    seg = er.Segmentation.from_labels(vol, 1)
    big = seg.apply_object_ops(dilate=2**62).stack_volume()
    np.testing.assert_array_equal(big, seg.apply_object_ops(dilate=20).stack_volume())
    assert (big == 5).all()
    assert seg.apply_object_ops(erode=2**62).n_objects(1) == 0


@pytest.mark.parametrize(("kw", "name"), [({"erode": -1}, "erode"), ({"dilate": -2}, "dilate")])
def test_negative_steps(kw, name):
    seg = er.Segmentation.from_labels(np.ones((2, 2, 2), np.int32), 1)
    with pytest.raises(er.InvalidArgumentError, match=name):
        seg.apply_object_ops(**kw)


@pytest.mark.skipif(not (DATA / "vnc_sstem_mito_dev.npz").exists(), reason="no shared data")
@pytest.mark.parametrize("op", [{"erode": 2}, {"dilate": 3}, {"fill_holes": True}])
def test_real_mitochondria_match_the_loop(op):
    lab = np.load(DATA / "vnc_sstem_mito_dev.npz")["mito_instances_3d"]
    seg = er.Segmentation.from_labels(np.ascontiguousarray(lab.astype(np.int32)), 1)
    assert seg.n_objects(1) == 40
    got = seg.apply_object_ops(**op)
    same_objects(got, loop.apply_object_ops(seg, **op))
    assert got.n_objects(1) > 0
