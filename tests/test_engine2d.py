"""The 2D engine: every parameter does what it says, confinement, batch mode and typed
errors on bad input. The model is a contract-shaped blob model (bright discs -> objects)."""

from __future__ import annotations

import numpy as np
import pytest

from empanada_rs.errors import (
    DTypeError,
    InvalidArgumentError,
    LabelOverflowError,
    NonFiniteError,
    ShapeError,
)
from empanada_rs.inference.engine2d import Engine2D, Params2D, Segmentation2D, segment_2d

from .engine2d_models import blob_handle, disc_image

CENTRES = [(24, 24), (24, 70), (70, 30), (72, 88)]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def image():
    return disc_image((100, 120), CENTRES, radius=12)


def fg(labels):
    return labels > 0


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_defaults_find_each_disc(image):
    r = segment_2d(image, blob_handle())
    assert isinstance(r, Segmentation2D)
    assert r.labels.dtype == np.int32 and r.labels.shape == image.shape
    assert r.counts() == {"blob": 4}
    t = r.objects[1]
    assert list(t.ids) == [10001, 10002, 10003, 10004]
    disc_area = int((disc_image((40, 40), [(20, 20)], radius=12) == 200).sum())
    assert np.all(np.abs(t.areas - disc_area) <= 2)
    for cy, cx in CENTRES:
        d = np.hypot(t.centroids[:, 0] - cy, t.centroids[:, 1] - cx)
        assert d.min() < 1.0
    for (y0, x0, y1, x1), c in zip(t.boxes, t.centroids, strict=True):
        assert y0 <= c[0] < y1 and x0 <= c[1] < x1
    np.testing.assert_array_equal(fg(r.labels), image == 200)
    assert set(r.timings) == {"model", "postprocess", "total"}


def test_params_defaults_are_the_widget_defaults():
    p = Params2D()
    assert (p.downsampling, p.confidence_thr, p.center_confidence_thr) == (1, 0.5, 0.1)
    assert (p.center_min_distance, p.label_divisor, p.tile_size) == (3, 10000, 0)
    assert not (p.fine_boundaries or p.semantic_only or p.fill_holes)


def test_tiles_agree_with_whole_image_away_from_seams():
    centres = [(20, 20), (20, 100), (60, 150), (110, 40), (120, 130), (150, 180)]
    img = disc_image((170, 200), centres, radius=10)
    whole = segment_2d(img, blob_handle())
    ticks = []
    tiled = segment_2d(
        img, blob_handle(), tile_size=96, batch_size=3, progress=lambda d, t: ticks.append((d, t))
    )
    assert tiled.labels.dtype == np.uint32 and tiled.labels.shape == img.shape
    assert ticks[-1][0] == ticks[-1][1] > 1  # several tiles, batched
    assert len(ticks) < ticks[-1][1]
    np.testing.assert_array_equal(fg(tiled.labels), fg(whole.labels))
    assert tiled.counts() == whole.counts() == {"blob": len(centres)}
    for i in np.unique(whole.labels[whole.labels > 0]):
        m = whole.labels == i
        j = np.bincount(tiled.labels[m].astype(np.int64)).argmax()
        assert iou(m, tiled.labels == j) > 0.95


@pytest.mark.parametrize("s", [2, 4])
def test_downsampling_returns_full_size(image, s):
    full = segment_2d(image, blob_handle())
    r = segment_2d(image[:99, :117], blob_handle(), downsampling=s)
    assert r.labels.shape == (99, 117)
    assert r.counts() == {"blob": 4}
    # the blob model renders its logits bilinearly from 1/4 of the downsampled size
    assert iou(fg(r.labels), fg(full.labels[:99, :117])) > 0.8


def test_semantic_only_does_not_split_touching_objects():
    img = disc_image((64, 96), [(32, 34), (32, 60)], radius=12)
    inst = segment_2d(img, blob_handle())
    sem = segment_2d(img, blob_handle(), semantic_only=True)
    assert inst.counts() == {"blob": 2}
    assert set(np.unique(sem.labels)) == {0, 10000}
    np.testing.assert_array_equal(fg(sem.labels), fg(inst.labels))


def test_fine_boundaries_move_the_border_between_touching_objects():
    img = disc_image((64, 96), [(30, 33), (35, 58)], radius=13)
    coarse = segment_2d(img, blob_handle())
    fine = segment_2d(img, blob_handle(), fine_boundaries=True)
    assert coarse.counts() == fine.counts() == {"blob": 2}
    np.testing.assert_array_equal(fg(coarse.labels), fg(fine.labels))
    assert (coarse.labels != fine.labels).any()


def test_fill_holes_fills_each_objects_hole():
    img = disc_image((64, 64), [(32, 32)], radius=16)
    img[disc_image((64, 64), [(32, 32)], radius=5) == 200] = 30
    hole = disc_image((64, 64), [(32, 32)], radius=4) == 200
    # a ring's blurred heatmap has several peaks: a wide NMS window keeps one
    plain = segment_2d(img, blob_handle(), center_min_distance=15)
    filled = segment_2d(img, blob_handle(), center_min_distance=15, fill_holes=True)
    assert np.all(plain.labels[hole] == 0)
    (obj,) = np.unique(filled.labels[filled.labels > 0])
    assert np.all(filled.labels[hole] == obj)
    assert filled.objects[1].areas[0] > plain.objects[1].areas[0]


def test_thresholds_and_min_distance(image):
    dim = image.copy()
    dim[image == 200] = 150  # normalised 0.59 -> probability ~0.86
    assert segment_2d(dim, blob_handle(), confidence_thr=0.8).counts() == {"blob": 4}
    assert segment_2d(dim, blob_handle(), confidence_thr=0.9).counts() == {"blob": 0}
    # no centre survives: thing pixels without a centre are background (spec §3.3)
    none = segment_2d(image, blob_handle(), center_confidence_thr=2.0)
    assert not none.labels.any()
    # a chain of touching discs: a window wider than their spacing keeps one peak
    chain = disc_image((64, 120), [(32, 20), (32, 42), (32, 64), (32, 86)], radius=12)
    assert segment_2d(chain, blob_handle()).counts() == {"blob": 4}
    assert segment_2d(chain, blob_handle(), center_min_distance=35).counts() == {"blob": 1}


def test_label_divisor(image):
    r = segment_2d(image, blob_handle(), label_divisor=100)
    assert list(r.objects[1].ids) == [101, 102, 103, 104]
    with pytest.raises(LabelOverflowError, match="label_divisor"):
        segment_2d(image, blob_handle(), label_divisor=3)


def test_normalize_modes_on_a_narrow_uint16_range(image):
    img16 = image.astype(np.uint16) * 4 + 1000  # uses 1120..1800 of 65535
    assert segment_2d(img16, blob_handle()).counts() == {"blob": 4}
    assert segment_2d(img16, blob_handle(), normalize="parity").counts() == {"blob": 0}
    # floats in [0, 1] are fractions of the 8-bit range
    f = segment_2d(image / 255.0, blob_handle())
    np.testing.assert_array_equal(f.labels, segment_2d(image, blob_handle()).labels)


def test_viewport_confines_and_writes_into_out(image):
    vp = (10, 50, 45, 100)
    r = segment_2d(image, blob_handle(), viewport=vp)
    assert r.labels.shape == image.shape
    assert not r.labels[:10].any() and not r.labels[:, :50].any() and not r.labels[45:].any()
    crop = segment_2d(image[10:45, 50:100], blob_handle())
    np.testing.assert_array_equal(r.labels[10:45, 50:100], crop.labels)
    out = np.full(image.shape, 7, dtype=np.uint32)
    r2 = segment_2d(image, blob_handle(), viewport=vp, out=out)
    assert r2.labels is out
    np.testing.assert_array_equal(out[10:45, 50:100], crop.labels)
    outside = np.ones(image.shape, bool)
    outside[10:45, 50:100] = False
    assert np.all(out[outside] == 7)
    assert r2.counts() == {"blob": 1}


def test_polygons_confine_to_their_inside(image):
    tri = np.array([[5.0, 5.0], [5.0, 60.0], [60.0, 5.0]])
    out = np.full(image.shape, 9, dtype=np.int32)
    r = segment_2d(image, blob_handle(), polygons=[tri], out=out)
    from skimage.draw import polygon

    inside = np.zeros(image.shape, bool)
    inside[polygon(tri[:, 0], tri[:, 1], image.shape)] = True
    assert np.all(out[~inside] == 9)
    assert set(np.unique(out[inside])) == {0, 10001}
    assert r.counts() == {"blob": 1}
    fresh = segment_2d(image, blob_handle(), polygons=[tri])
    assert not fresh.labels[~inside].any()
    np.testing.assert_array_equal(fresh.labels[inside], out[inside])


def test_batch_mode_segments_each_image_and_pads(image):
    stack = np.stack([image, image[::-1], np.full_like(image, 30)])
    r = segment_2d(stack, blob_handle(), batch=True, batch_size=2)
    assert r.labels.shape == stack.shape
    one = segment_2d(image[::-1], blob_handle())
    np.testing.assert_array_equal(r.labels[1], one.labels)
    assert not r.labels[2].any()
    assert list(np.bincount(r.objects[1].image)) == [4, 4]
    sizes = [image, image[:60, :70]]
    r2 = segment_2d(sizes, blob_handle(), batch=True)
    assert r2.labels.shape == (2, 100, 120)
    assert not r2.labels[1, 60:].any() and not r2.labels[1, :, 70:].any()


def test_engine_is_reusable(image):
    eng = Engine2D(blob_handle(), tile_size=64)
    a, b = eng.segment(image), eng.segment(image)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "match"),
    [
        (np.zeros(10, np.uint8), {}, ShapeError, "2D"),
        (np.zeros((2, 3, 8, 8), np.uint8), {}, ShapeError, "2D"),
        (np.zeros((3, 8, 8), np.uint8), {}, ShapeError, "batch=True"),
        (np.zeros((0, 8), np.uint8), {}, ShapeError, "empty"),
        (np.full((8, 8), 300.5), {}, InvalidArgumentError, r"\[0, 255\]"),
        (np.full((8, 8), np.nan), {}, NonFiniteError, "NaN"),
        (np.zeros((8, 8), bool), {}, DTypeError, "integer or float"),
        (np.zeros((8, 8), np.uint8), {"downsampling": 3}, InvalidArgumentError, "power of two"),
        (np.zeros((8, 8), np.uint8), {"confidence_thr": 1.5}, InvalidArgumentError, "[0, 1]"),
        (
            np.zeros((8, 8), np.uint8),
            {"tile_size": 100, "tile_overlap": 50},
            InvalidArgumentError,
            "half the tile size",
        ),
        (np.zeros((8, 8), np.uint8), {"out": np.zeros((8, 9), np.int32)}, ShapeError, "shape"),
        (np.zeros((8, 8), np.uint8), {"out": np.zeros((8, 8), np.float32)}, DTypeError, "int32"),
        (np.zeros((8, 8), np.uint8), {"out": np.zeros((8, 8), np.uint8)}, DTypeError, "hold"),
        (np.zeros((8, 8), np.uint8), {"viewport": (0, 0, 9, 4)}, InvalidArgumentError, "y1"),
        (
            np.zeros((8, 8), np.uint8),
            {"polygons": [np.zeros((2, 2))]},
            ShapeError,
            "N >= 3",
        ),
        (
            np.zeros((2, 8, 8), np.uint8),
            {"batch": True, "viewport": (0, 0, 4, 4)},
            InvalidArgumentError,
            "batch",
        ),
        (np.zeros((8, 8), np.uint8), {"normalize": "minmax"}, InvalidArgumentError, "robust"),
        (np.zeros((8, 8), np.uint8), {"tile_size": -1}, InvalidArgumentError, "tile_size"),
    ],
)
def test_bad_input_raises_typed_errors(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        segment_2d(image, blob_handle(), **kwargs)


def test_bad_model_and_unknown_parameter():
    with pytest.raises(InvalidArgumentError, match="ModelHandle"):
        segment_2d(np.zeros((8, 8), np.uint8), 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="2D parameters are"):
        Engine2D(blob_handle(), nms_kernel=3)


def test_out_untouched_when_input_is_rejected():
    out = np.full((8, 8), 5, np.int32)
    with pytest.raises(NonFiniteError):
        segment_2d(np.full((8, 8), np.nan), blob_handle(), out=out)
    assert np.all(out == 5)
