"""Ortho-plane consensus (spec §6) against the reference's merge_objects_from_trackers /
merge_semantic_from_trackers + filters, with the two fixes of design §3."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empanada_rs as er
from tests.oracle_consensus import (
    ellipsoid_views,
    object_set,
    our_object_set,
    reference_consensus,
    reference_consensus_fixed,
    segs_from,
)

SHAPE = (32, 40, 48)
PARAMS = [
    {},
    {"pixel_vote_thr": 1},
    {"pixel_vote_thr": 3},
    {"pixel_vote_thr": 1, "allow_one_view": True},
    {"cluster_iou_thr": 0.3},
    {"cluster_iou_thr": 0.0, "min_size": 0, "min_extent": 0},
]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_instance_parity(seed: int, params: dict) -> None:
    kw = {"min_size": 20, "min_extent": 2, **params}
    segs = segs_from(ellipsoid_views(SHAPE, 12, seed))
    ours = er.orthoplane_consensus(segs, **kw)
    # Exact equality with the reference whose cluster merging keeps second-order links.
    fixed, _ = reference_consensus_fixed(segs, 1, True, **kw)
    assert our_object_set(ours, 1) == object_set(fixed)
    # Equality with the unmodified reference wherever it drops no second-order link.
    _, dropped = reference_consensus_fixed(segs, 1, True, reference_order=True, **kw)
    ref = reference_consensus(segs, 1, True, **kw)
    if not dropped:
        assert our_object_set(ours, 1) == object_set(ref)


def test_second_order_fix_changes_the_result() -> None:
    """Seed 0 of the generator: the reference drops a second-order link and returns 9
    objects (two pieces of one object stay apart); with the link kept they merge into 8."""
    segs = segs_from(ellipsoid_views(SHAPE, 12, 0))
    kw = {"min_size": 20, "min_extent": 2}
    ours = our_object_set(er.orthoplane_consensus(segs, **kw), 1)
    ref = object_set(reference_consensus(segs, 1, True, **kw))
    fixed, _ = reference_consensus_fixed(segs, 1, True, **kw)
    _, dropped = reference_consensus_fixed(segs, 1, True, reference_order=True, **kw)
    assert dropped
    assert ours == object_set(fixed)
    assert (len(ref), len(ours)) == (9, 8)


@pytest.mark.parametrize("thr", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_semantic_parity(seed: int, thr: int) -> None:
    views = [(v > 0).astype(np.uint8) for v in ellipsoid_views(SHAPE, 6, seed)]
    segs = segs_from(views, class_id=2, thing=False)
    ours = er.orthoplane_consensus(segs, pixel_vote_thr=thr)
    ref = reference_consensus(segs, 2, False, pixel_vote_thr=thr)
    assert our_object_set(ours, 2) == [o for o in object_set(ref) if o[1]]
    dense = (np.stack(views).sum(0) >= thr).astype(np.int32)
    assert np.array_equal(ours.to_volume(2), dense)


def test_semantic_fewer_views_than_threshold_is_empty() -> None:
    vol = np.zeros(SHAPE, np.uint8)
    vol[2:9, 2:9, 2:9] = 1
    segs = [
        er.Segmentation.from_labels(vol, 2, thing=False),
        er.Segmentation.from_labels(np.zeros_like(vol), 2, thing=False),
        er.Segmentation.from_labels(np.zeros_like(vol), 2, thing=False),
    ]
    with pytest.raises(Exception):  # noqa: B017, PT011 (the reference crashes here)
        reference_consensus(segs, 2, False, pixel_vote_thr=2)
    out = er.orthoplane_consensus(segs, pixel_vote_thr=2)
    assert out.n_objects(2) == 0
    assert not out.to_volume(2).any()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_identical_views_vote_to_themselves(seed: int, thr: int) -> None:
    """Three identical views: every object is one cluster of three, any vote keeps it."""
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 4, size=(6, 7, 8)).astype(np.uint16)
    segs = [er.Segmentation.from_labels(vol, 1) for _ in range(3)]
    out = er.orthoplane_consensus(segs, pixel_vote_thr=thr, min_size=0, min_extent=0)
    # objects are the labels' own (not necessarily connected) masks, ids in label order
    ids = np.unique(vol[vol > 0])
    expect = np.searchsorted(ids, vol) + 1
    expect[vol == 0] = 0
    assert np.array_equal(out.to_volume(1), expect)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_semantic_vote_matches_numpy(seed: int, thr: int) -> None:
    rng = np.random.default_rng(seed)
    views = [(rng.random((5, 6, 7)) < 0.4).astype(np.uint8) for _ in range(3)]
    segs = segs_from(views, class_id=1, thing=False)
    out = er.orthoplane_consensus(segs, pixel_vote_thr=thr)
    dense = np.stack(views).sum(0) >= thr
    assert np.array_equal(out.to_volume(1) > 0, dense)


def test_filters_use_the_union_box() -> None:
    vol = np.zeros((10, 10, 10), np.uint8)
    vol[1:3, 1:9, 1:9] = 1  # 2 slices thick: a pancake for min_extent 3
    segs = segs_from([vol, vol, vol])
    assert er.orthoplane_consensus(segs, min_size=0, min_extent=3).n_objects(1) == 0
    assert er.orthoplane_consensus(segs, min_size=0, min_extent=2).n_objects(1) == 1
    assert er.orthoplane_consensus(segs, min_size=129, min_extent=0).n_objects(1) == 0
    assert er.orthoplane_consensus(segs, min_size=128, min_extent=0).n_objects(1) == 1


def test_classes_missing_in_some_views() -> None:
    vol = np.zeros((8, 8, 8), np.uint8)
    vol[1:7, 1:7, 1:7] = 1
    a = er.Segmentation.from_labels(vol, 1)
    b = er.Segmentation.from_labels(vol, 3)
    out = er.orthoplane_consensus([a, a, b], min_size=0, min_extent=0)
    assert out.class_ids == [1, 3]
    assert out.n_objects(1) == 1
    assert out.n_objects(3) == 0


def test_bad_inputs() -> None:
    vol = np.zeros((4, 4, 4), np.uint8)
    s = er.Segmentation.from_labels(vol, 1)
    other = er.Segmentation.from_labels(np.zeros((4, 4, 5), np.uint8), 1)
    stuff = er.Segmentation.from_labels(vol, 1, thing=False)
    with pytest.raises(er.InvalidArgumentError, match="segs"):
        er.orthoplane_consensus([s, s])
    with pytest.raises(er.ShapeError, match="segs"):
        er.orthoplane_consensus([s, s, other])
    with pytest.raises(er.InvalidArgumentError, match="thing"):
        er.orthoplane_consensus([s, s, stuff])
    for bad in (0, 4):
        with pytest.raises(er.InvalidArgumentError, match="pixel_vote_thr"):
            er.orthoplane_consensus([s, s, s], pixel_vote_thr=bad)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(er.InvalidArgumentError, match="cluster_iou_thr"):
            er.orthoplane_consensus([s, s, s], cluster_iou_thr=bad)
    with pytest.raises(er.InvalidArgumentError, match="min_size"):
        er.orthoplane_consensus([s, s, s], min_size=-1)
    with pytest.raises(er.InvalidArgumentError, match="min_extent"):
        er.orthoplane_consensus([s, s, s], min_extent=-1)
    with pytest.raises(TypeError):
        er.orthoplane_consensus([s, s, vol])  # type: ignore[list-item]


def test_real_neurons_reproduce_themselves(shared_data) -> None:  # noqa: ANN001
    path = shared_data / "neuroproof_fibsem_medulla_sample2.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with np.load(path) as z:
        labels = np.ascontiguousarray(z["neuron_instances"])
    seg = er.Segmentation.from_labels(labels, 1)
    out = er.orthoplane_consensus([seg, seg, seg], min_size=0, min_extent=0)
    # identical views: every neuron is its own cluster of three; touching neurons share no
    # voxel (IoU 0), so no edge joins them and the overlap rule never fires
    assert out.n_objects(1) == seg.n_objects(1)
    ids = np.unique(labels[labels > 0])
    expect = np.searchsorted(ids, labels) + 1
    expect[labels == 0] = 0
    assert np.array_equal(out.to_volume(1), expect)
