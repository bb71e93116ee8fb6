"""Median over slices (spec §5.3): bit-for-bit parity with the reference queue, the running
mode against np.median, the short-stack fix, streaming behaviour and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import empanada_rs as er

from . import oracle_labels as ref

KERNELS = [1, 3, 5, 7, 9, 11]


def reference_median(stack, k):
    """Drives the reference `_MedianQueue` exactly like its 3D engine does."""
    torch = pytest.importorskip("torch")
    engines = pytest.importorskip("empanada.inference.engines")
    queue = engines._MedianQueue(k)
    out = []
    for s in stack:
        queue.enqueue({"sem": torch.from_numpy(np.ascontiguousarray(s[None]))})
        item = queue.get_next(keys=["sem"])
        if item is not None:
            out.append(item["sem"][0].numpy().copy())
    out.extend(item["sem"][0].numpy().copy() for item in queue.end())
    return out


def ours_streaming(stack, k, mode="recursive"):
    f = er.SliceMedianFilter(k, mode=mode)
    out = []
    for s in stack:
        out.extend(f.push(s))
    out.extend(f.finish())
    assert [i for i, _ in out] == list(range(len(stack)))
    return [a for _, a in out]


@pytest.mark.reference
@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("extra", [0, 1, 4, 9])
@pytest.mark.parametrize("shape", [(2, 6, 5), (7, 3)])
def test_recursive_matches_reference_bit_for_bit(k, extra, shape):
    rng = np.random.default_rng(k * 100 + extra)
    stack = rng.random((k + extra, *shape), dtype=np.float32)
    want = reference_median(stack, k)
    got = ours_streaming(stack, k)
    assert len(got) == len(want) == len(stack)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32 and g.shape == shape
        np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32))
    whole = er.median_filter_slices(stack, k)
    np.testing.assert_array_equal(whole, np.stack(want))


@pytest.mark.reference
def test_worked_example_of_the_spec():
    raw = np.array([0.5, 0, 0.9, 0, 0.9, 0, 0.5], dtype=np.float32).reshape(7, 1)
    recursive = er.median_filter_slices(raw, 3)
    np.testing.assert_array_equal(recursive.ravel(), np.full(7, 0.5, dtype=np.float32))
    np.testing.assert_array_equal(np.stack(reference_median(raw, 3)), recursive)
    running = er.median_filter_slices(raw, 3, mode="running")
    want = np.array([0.5, 0.5, 0, 0.9, 0, 0.5, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(running.ravel(), want)


@settings(max_examples=100, deadline=None)
@given(
    stack=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 14), st.integers(1, 4), st.integers(1, 5)),
        elements=st.floats(-2, 2, width=32),
    ),
    k=st.sampled_from([1, 3, 5, 7, 9, 11, 13, 17, 21]),
)
def test_both_modes_match_numpy(stack, k):
    got = er.median_filter_slices(stack, k, mode="running")
    np.testing.assert_array_equal(got, ref.running_median(stack, k))
    got = er.median_filter_slices(stack, k)
    np.testing.assert_array_equal(got, ref.recursive_median(stack, k))
    np.testing.assert_array_equal(np.stack(ours_streaming(stack, k)), got)


@pytest.mark.reference
def test_short_stack_keeps_every_slice_unlike_reference():
    # Slice i is the constant i, so an output names the slice it came from.
    stack = np.arange(4, dtype=np.float32).reshape(4, 1, 1) * np.ones((1, 2, 2), np.float32)
    theirs = [float(a.ravel()[0]) for a in reference_median(stack, 5)]
    assert theirs == [0.0, 1.0, 3.0]  # slice 2 is lost (spec §5.3)
    f = er.SliceMedianFilter(5)
    out = [e for s in stack for e in f.push(s)] + f.finish()
    assert [i for i, _ in out] == [0, 1, 2, 3]
    # Filtered as with the largest odd kernel that fits (4 slices -> kernel 3).
    np.testing.assert_array_equal(np.stack([a for _, a in out]), er.median_filter_slices(stack, 3))


@pytest.mark.parametrize("mode", ["recursive", "running"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_short_stacks_shrink_the_kernel(mode, n):
    rng = np.random.default_rng(n)
    stack = rng.random((n, 3, 3), dtype=np.float32)
    shrunk = n if n % 2 else n - 1
    np.testing.assert_array_equal(
        er.median_filter_slices(stack, 7, mode=mode),
        er.median_filter_slices(stack, shrunk, mode=mode),
    )


def test_streaming_order_and_buffer_reuse():
    rng = np.random.default_rng(0)
    stack = rng.random((9, 4, 4), dtype=np.float32)
    f = er.SliceMedianFilter(5)
    assert f.kernel_size == 5 and f.mode == "recursive"
    buf = np.empty((4, 4), dtype=np.float32)
    released = []
    for i, s in enumerate(stack):
        buf[...] = s  # the caller reuses one buffer; the filter must have copied it
        got = f.push(buf)
        released.append([j for j, _ in got])
        buf[...] = -1
        assert all(j <= i for j in released[-1])
    released.append([j for j, _ in f.finish()])
    assert released == [[], [], [], [], [0, 1, 2], [3], [4], [5], [6], [7, 8]]
    np.testing.assert_array_equal(
        er.median_filter_slices(stack, 5), np.stack(ours_streaming(stack, 5))
    )


def test_non_contiguous_slices_are_copied():
    rng = np.random.default_rng(1)
    stack = rng.random((5, 6, 8), dtype=np.float32)
    strided = stack[:, :, ::2]
    np.testing.assert_array_equal(
        er.median_filter_slices(strided, 3),
        er.median_filter_slices(np.ascontiguousarray(strided), 3),
    )
    f = er.SliceMedianFilter(3, mode="running")
    out = [e for s in strided for e in f.push(s)] + f.finish()
    np.testing.assert_array_equal(
        np.stack([a for _, a in out]), er.median_filter_slices(strided, 3, mode="running")
    )


def test_empty_inputs():
    assert er.median_filter_slices(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert er.median_filter_slices(np.zeros((4, 0), np.float32)).shape == (4, 0)
    assert er.SliceMedianFilter(3).finish() == []


def test_bad_input():
    for k in (0, -1, 2, 4):
        with pytest.raises(er.InvalidArgumentError, match="kernel_size"):
            er.SliceMedianFilter(k)
        with pytest.raises(er.InvalidArgumentError, match="kernel_size"):
            er.median_filter_slices(np.zeros((3, 2), np.float32), k)
    with pytest.raises(er.InvalidArgumentError, match="mode"):
        er.SliceMedianFilter(3, mode="mean")
    with pytest.raises(er.InvalidArgumentError, match="mode"):
        er.median_filter_slices(np.zeros((3, 2), np.float32), mode="mean")
    f = er.SliceMedianFilter(3)
    with pytest.raises(er.DTypeError):
        f.push(np.zeros((2, 2), np.float64))
    with pytest.raises(er.DTypeError):
        f.push([[0.0, 1.0]])
    with pytest.raises(er.DTypeError):
        er.median_filter_slices(np.zeros((3, 2), np.float64))
    with pytest.raises(er.ShapeError):
        er.median_filter_slices(np.array(1.0, np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(er.NonFiniteError):
            f.push(np.array([[0.0, bad]], np.float32))
        with pytest.raises(er.NonFiniteError):
            er.median_filter_slices(np.array([[0.0], [bad]], np.float32))
    f.push(np.zeros((1, 2), np.float32))  # errors above left the filter usable
    with pytest.raises(er.ShapeError):
        f.push(np.zeros((2, 1), np.float32))
    assert len(f.finish()) == 1
    with pytest.raises(er.InvalidArgumentError, match="finished"):
        f.push(np.zeros((1, 2), np.float32))
    with pytest.raises(er.InvalidArgumentError, match="finished"):
        f.finish()
