"""Face-neighbour morphology: erosion of a mask or of every object of a label image,
dilation of labels into background. NumPy oracles (plain step loops, one id at a time),
scipy's own operations, real data and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import empanada_rs as er

from . import oracle_labels as ref
from .test_labels import DTYPES, label_images

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def cross(ndim):
    return ndimage.generate_binary_structure(ndim, 1)


@st.composite
def masks(draw, max_side=9):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_side if ndim == 2 else 6)) for _ in range(ndim))
    p = draw(st.sampled_from([0.5, 0.8, 0.95]))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random(shape) < p


@settings(max_examples=300, deadline=None)
@given(masks(), st.integers(0, 7))
def test_erode_matches_step_loop(mask, steps):
    np.testing.assert_array_equal(er.erode_mask(mask, steps), ref.erode_mask(mask, steps))


@pytest.mark.parametrize("op", ["dilate_labels", "erode_labels"])
@settings(max_examples=300, deadline=None)
@given(label_images(max_id=9), st.integers(0, 7))
def test_label_morphology_matches_oracle(op, labels, steps):
    """Dilation against the step loop; erosion against each id eroded on its own."""
    got = getattr(er, op)(labels, steps)
    assert got.dtype == labels.dtype
    np.testing.assert_array_equal(got, getattr(ref, op)(labels, steps))


def _palette(kind, rng):
    """Background and 12 ids: small ones, ids past 2**24 (32-bit words), or past 2**32
    (ranks)."""
    if kind == "narrow":
        ids = rng.choice(np.arange(1, 40), 12, replace=False)
        return np.array([0, *ids], np.uint16)
    if kind == "wide32":
        ids = rng.integers(2**24, 2**32, 12, dtype=np.uint64)
        return np.array([0, *ids], np.uint32)
    ids = rng.integers(2**32, 2**62, 12, dtype=np.int64)
    return np.array([0, *ids], np.int64)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 2, 3, 5, 9, 14]),
    st.sampled_from(["narrow", "wide32", "wide64"]),
)
def test_dilate_matches_step_loop_on_larger_volumes(seed, steps, kind):
    """Rows long enough for several doublings along x, several planes, crowded ties, and
    every word width of the nearest-object passes."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(rng.integers(1, n)) for n in (7, 20, 45))
    palette = _palette(kind, rng)
    idx = np.where(rng.random(shape) < 0.06, rng.integers(1, len(palette), shape), 0)
    labels = palette[idx]
    got = er.dilate_labels(labels, steps)
    assert got.dtype == labels.dtype
    np.testing.assert_array_equal(got, ref.dilate_labels(labels, steps))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 2, 3, 5, 9]),
    st.sampled_from(["narrow", "wide32", "wide64"]),
    st.sampled_from([0.0, 0.05, 0.3]),
)
def test_erode_labels_on_crowded_volumes(seed, steps, kind, holes):
    """Blocky objects pressed against each other (the case per-object crops handle worst),
    with some background, in every id width."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(rng.integers(1, n)) for n in (9, 24, 45))
    palette = _palette(kind, rng)
    coarse = rng.integers(1, len(palette), tuple(-(-s // 3) for s in shape))
    idx = coarse.repeat(3, 0).repeat(3, 1).repeat(3, 2)[: shape[0], : shape[1], : shape[2]]
    labels = np.where(rng.random(shape) < holes, 0, palette[idx])
    got = er.erode_labels(labels, steps)
    np.testing.assert_array_equal(got, ref.erode_labels(labels, steps))


@pytest.mark.parametrize("steps", [254, 255, 300, 10**6])
def test_erode_labels_past_255_steps(steps):
    """Distances past 8 bits: two ids meeting in a long row, background far off."""
    labels = np.zeros((1, 2, 700), np.uint16)
    labels[0, :, :600] = 3
    labels[0, :, 300:600] = 8
    labels[0, 0, 0] = 0
    want = ref.erode_labels(labels, min(steps, 702))
    np.testing.assert_array_equal(er.erode_labels(labels, steps), want)


@pytest.mark.parametrize("steps", [254, 255, 300, 10**6])
def test_dilate_past_255_steps(steps):
    """Step counts past the 8 bits of distance of the narrow words."""
    labels = np.zeros((1, 3, 700), np.uint32)
    labels[0, 0, 5] = 4
    labels[0, 2, 400] = 9
    labels[0, 1, 650] = 2
    want = ref.dilate_labels(labels, min(steps, 710))
    np.testing.assert_array_equal(er.dilate_labels(labels, steps), want)


@pytest.mark.parametrize("shape", [(40, 57), (9, 31, 23)])
@pytest.mark.parametrize("steps", [1, 3, 12])
def test_same_as_scipy(shape, steps):
    rng = np.random.default_rng(steps)
    mask = ndimage.binary_opening(rng.random(shape) < 0.7)
    want = ndimage.binary_erosion(
        mask, structure=cross(len(shape)), iterations=steps, border_value=1
    )
    np.testing.assert_array_equal(er.erode_mask(mask, steps), want)

    labels = (rng.random(shape) < 0.03) * rng.integers(1, 50, shape).astype(np.int64)
    want = labels
    for _ in range(steps):
        grown = ndimage.grey_dilation(want, footprint=cross(len(shape)), mode="constant")
        want = np.where(want == 0, grown, want)
    np.testing.assert_array_equal(er.dilate_labels(labels, steps), want)

    # Blocky objects touching each other and background, for the erosion of every id.
    coarse = rng.integers(0, 9, tuple(-(-s // 4) for s in shape))
    for a in range(len(shape)):
        coarse = coarse.repeat(4, a)
    labels = coarse[tuple(slice(0, s) for s in shape)].astype(np.int64)
    want = np.zeros_like(labels)
    for i in np.unique(labels[labels > 0]):
        eroded = ndimage.binary_erosion(
            labels == i, structure=cross(len(shape)), iterations=steps, border_value=1
        )
        want[eroded] = i
    np.testing.assert_array_equal(er.erode_labels(labels, steps), want)


def test_edge_cases():
    full = np.ones((3, 4, 5), bool)
    np.testing.assert_array_equal(er.erode_mask(full, 50), full)  # the border never erodes
    assert not er.erode_mask(np.zeros((2, 3), bool), 1).any()
    assert er.erode_mask(np.zeros((0, 3), bool), 2).shape == (0, 3)
    assert er.dilate_labels(np.zeros((0, 2, 2), np.uint8), 2).shape == (0, 2, 2)
    empty = np.zeros((4, 4), np.uint16)
    np.testing.assert_array_equal(er.dilate_labels(empty, 3), empty)
    one_id = np.full((2, 3, 4), 7, np.int64)  # nothing else anywhere: the border keeps it
    np.testing.assert_array_equal(er.erode_labels(one_id, 10**9), one_id)
    pair = np.array([[1, 1, 1, 2, 2, 2]], np.uint8)
    np.testing.assert_array_equal(er.erode_labels(pair, 1), [[1, 1, 0, 0, 2, 2]])
    np.testing.assert_array_equal(er.erode_labels(pair, 3), np.zeros_like(pair))
    assert er.erode_labels(np.zeros((0, 2, 2), np.uint8), 2).shape == (0, 2, 2)
    one = np.zeros((1, 1, 9), np.uint32)
    one[0, 0, 4] = 7
    np.testing.assert_array_equal(er.dilate_labels(one, 2)[0, 0], [0, 0, 7, 7, 7, 7, 7, 0, 0])
    # Far more steps than the array needs: everything reachable, nothing else changes.
    np.testing.assert_array_equal(er.dilate_labels(one, 10**6)[0, 0], [7] * 9)


def test_real_data_matches_scipy():
    path = DATA / "vnc_sstem_mito_dev.npz"
    if not path.exists():
        pytest.skip(f"real data {path} not available (see ../shared/data/README.md)")
    labels = np.load(path)["mito_instances_3d"][:, :256, :256].astype(np.int64)
    assert labels.max() > 0
    want = labels
    for _ in range(3):
        grown = ndimage.grey_dilation(want, footprint=cross(3), mode="constant")
        want = np.where(want == 0, grown, want)
    np.testing.assert_array_equal(er.dilate_labels(labels, 3), want)
    mask = labels > 0
    want = ndimage.binary_erosion(mask, structure=cross(3), iterations=2, border_value=1)
    np.testing.assert_array_equal(er.erode_mask(mask, 2), want)


def test_real_neurons_erode_like_scipy_per_id():
    """Dense neuron labels, every voxel in some object: each id eroded on its own mask."""
    path = DATA / "neuroproof_fibsem_medulla_sample2.npz"
    if not path.exists():
        pytest.skip(f"real data {path} not available (see ../shared/data/README.md)")
    labels = np.ascontiguousarray(np.load(path)["neuron_instances"][100:132, 60:124, 90:154])
    want = np.zeros_like(labels)
    for i in np.unique(labels[labels > 0]):
        kept = ndimage.binary_erosion(labels == i, structure=cross(3), iterations=2, border_value=1)
        want[kept] = i
    assert 0 < (want > 0).sum() < (labels > 0).sum()
    np.testing.assert_array_equal(er.erode_labels(labels, 2), want)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: er.erode_mask(np.ones((3, 3), np.uint8), 1), er.DTypeError, "mask.*bool"),
        (lambda: er.erode_mask(np.ones(3, bool), 1), er.ShapeError, "mask"),
        (lambda: er.erode_mask(np.ones((3, 3), bool), -1), er.InvalidArgumentError, "steps"),
        (lambda: er.erode_mask(np.ones((3, 6), bool)[:, ::2], 1), er.ContiguityError, "mask"),
        (lambda: er.dilate_labels(np.ones((3, 3), np.float32), 1), er.DTypeError, "labels"),
        (lambda: er.dilate_labels(np.ones((2, 2, 2, 2), np.uint8), 1), er.ShapeError, "labels"),
        (lambda: er.dilate_labels(-np.ones((3, 3), np.int16), 1), er.InvalidArgumentError, ">= 0"),
        (lambda: er.dilate_labels(np.ones((3, 3), np.int16), -2), er.InvalidArgumentError, "steps"),
        (
            lambda: er.dilate_labels(np.ones((3, 6), np.uint16)[:, ::2], 1),
            er.ContiguityError,
            "labels",
        ),
        (lambda: er.erode_labels(np.ones((3, 3), np.float64), 1), er.DTypeError, "labels"),
        (lambda: er.erode_labels(np.ones(4, np.uint8), 1), er.ShapeError, "labels"),
        (lambda: er.erode_labels(-np.ones((3, 3), np.int32), 1), er.InvalidArgumentError, ">= 0"),
        (lambda: er.erode_labels(np.ones((3, 3), np.int32), -1), er.InvalidArgumentError, "steps"),
        (
            lambda: er.erode_labels(np.ones((3, 6), np.int64)[:, ::2], 1),
            er.ContiguityError,
            "labels",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_label_dtype(dtype):
    a = np.zeros((3, 5), dtype)
    a[1, 2] = 5
    got = er.dilate_labels(a, 1)
    assert got.dtype == np.dtype(dtype)
    assert (got > 0).sum() == 5
    a[1:, 1:4] = 5
    eroded = er.erode_labels(a, 1)
    assert eroded.dtype == np.dtype(dtype)
    assert eroded[2].tolist() == [0, 0, 5, 0, 0]
