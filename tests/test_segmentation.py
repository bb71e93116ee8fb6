"""Segmentation: the sparse per-class 3D object set the 3D stages exchange."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import empanada_rs as er


@settings(max_examples=60, deadline=None)
@given(
    vol=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.uint64]),
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9),
        elements=st.integers(0, 6),
    )
)
def test_labels_round_trip(vol):
    seg = er.Segmentation.from_labels(vol, 2)
    assert seg.class_ids == [2] and seg.shape == vol.shape
    ids = np.unique(vol[vol > 0])
    assert seg.n_objects(2) == len(ids)
    np.testing.assert_array_equal(seg.stack_volume(), vol.astype(np.int32))
    # to_volume renumbers 1..N in ascending id order
    lut = np.zeros(7, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1)
    np.testing.assert_array_equal(seg.to_volume(2), lut[vol])
    objs = seg.objects(2)
    again = er.Segmentation.from_objects(vol.shape, 2, objs)
    np.testing.assert_array_equal(again.stack_volume(), seg.stack_volume())
    np.testing.assert_array_equal(again.objects(2)["counts"], objs["counts"])


def test_combine_and_errors():
    a = np.zeros((2, 4, 4), np.uint16)
    a[0, :2, :2] = 5
    b = np.zeros((2, 4, 4), np.uint16)
    b[1] = 1
    seg = er.Segmentation.combine(
        [er.Segmentation.from_labels(a, 1), er.Segmentation.from_labels(b, 2, thing=False)]
    )
    assert seg.class_ids == [1, 2] and seg.is_thing(1) and not seg.is_thing(2)
    assert "Segmentation(shape=(2, 4, 4)" in repr(seg)
    with pytest.raises(er.InvalidArgumentError, match="class_id"):
        seg.to_volume(3)
    with pytest.raises(er.InvalidArgumentError, match="class_id"):
        er.Segmentation.combine([seg, er.Segmentation.from_labels(a, 1)])
    with pytest.raises(er.ShapeError, match="parts"):
        er.Segmentation.combine([seg, er.Segmentation.from_labels(a[:1], 3)])
    with pytest.raises(er.ShapeError, match="volume"):
        er.Segmentation.from_labels(a[0], 1)
    with pytest.raises(er.DTypeError, match="volume"):
        er.Segmentation.from_labels(a.astype(np.float32), 1)
    with pytest.raises(er.InvalidArgumentError, match="objects"):
        er.Segmentation.from_objects((1, 1, 2), 1, seg.objects(1))  # runs outside the volume


def test_real_neurons_round_trip(shared_data):
    vol = np.load(shared_data / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    seg = er.Segmentation.from_labels(np.ascontiguousarray(vol), 1)
    assert seg.n_objects(1) == len(np.unique(vol[vol > 0]))
    np.testing.assert_array_equal(seg.stack_volume(), vol.astype(np.int32))


def test_statistics_from_runs_equal_label_statistics_of_the_volume():
    """Tight boxes and centroids from the runs (wrapping rows included) against the dense
    oracle, `label_statistics` of `to_volume`."""
    rng = np.random.default_rng(5)
    vol = rng.integers(0, 6, (5, 7, 9)).astype(np.int32)
    vol[vol == 3] = 0
    seg = er.Segmentation.from_labels(vol, 1)
    ours = seg.statistics(1)
    ref = er.label_statistics(seg.to_volume(1))
    np.testing.assert_array_equal(ours["ids"], ref["ids"])
    np.testing.assert_array_equal(ours["counts"], ref["counts"])
    np.testing.assert_array_equal(ours["boxes"], ref["boxes"])
    np.testing.assert_allclose(ours["centroids"], ref["centroids"])
