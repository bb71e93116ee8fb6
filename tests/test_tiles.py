"""Tile layout, overlap mask and stitching (spec §4) against the reference's Tiler
(cztile) and merge_objects_from_tiles / merge_semantic_from_tiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empanada_rs as er
from tests.oracle_consensus import reference_layout, reference_overlap_mask, reference_stitch


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1500), st.integers(1, 1500), st.integers(2, 800), st.data())
def test_layout_matches_cztile(h: int, w: int, t: int, data: st.DataObject) -> None:
    b = data.draw(st.integers(0, (min(t, h, w) - 1) // 2))
    assert er.tile_layout((h, w), t, b) == reference_layout((h, w), t, b)


def test_spec_examples_and_default_overlap() -> None:
    assert {r[2:] for r in er.tile_layout((3000, 1000), 1024)} == {(0, 1000)}
    assert sorted({r[2:] for r in er.tile_layout((1000, 3000), 1024)}) == [
        (0, 1024),
        (659, 1683),
        (1318, 2342),
        (1976, 3000),
    ]
    # overlap default: min(128, int(0.1 * T)) -> 102 for T = 1024
    assert er.tile_layout((3000, 2048), 1024) == er.tile_layout((3000, 2048), 1024, 102)


@settings(max_examples=40, deadline=None)
@given(st.integers(20, 300), st.integers(20, 300), st.integers(10, 120), st.data())
def test_overlap_mask_matches_reference(h: int, w: int, t: int, data: st.DataObject) -> None:
    b = data.draw(st.integers(0, (min(t, h, w) - 1) // 2))
    layout = er.tile_layout((h, w), t, b)
    s, r = er.tile_overlap_rle((h, w), layout)
    mask = np.zeros(h * w, bool)
    for a, k in zip(s, r, strict=True):
        mask[a : a + k] = True
    assert np.array_equal(mask.reshape(h, w), reference_overlap_mask((h, w), t, b))


def panoptic_image(shape: tuple[int, int], seed: int, divisor: int, max_r: int) -> np.ndarray:
    """Discs of classes 1 (thing) and 2 (thing) with a class-3 stuff background patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.int32)
    cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
    img[((yy - cy) ** 2 + (xx - cx) ** 2) < (max_r * 1.5) ** 2] = 3 * divisor
    for k in range(1, 30):
        c = 1 + (k % 2)
        cy, cx, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(2, max_r)
        img[((yy - cy) ** 2 + (xx - cx) ** 2) < r * r] = c * divisor + k
    return img


def cut(img: np.ndarray, layout: list, seed: int, divisor: int) -> list[np.ndarray]:
    """Crops per tile, perturbed: each tile drops some objects and shifts some ids."""
    rng = np.random.default_rng(seed)
    tiles = []
    for y0, y1, x0, x1 in layout:
        t = img[y0:y1, x0:x1].copy()
        ids = np.unique(t[t % divisor > 0])
        for i in ids:
            if rng.random() < 0.15:
                t[t == i] = 0
            elif rng.random() < 0.2:
                t[t == i] = i + 50
        tiles.append(t)
    return tiles


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize(
    ("shape", "t", "b"), [((150, 170), 64, 6), ((200, 90), 80, 12), ((64, 300), 64, 10)]
)
def test_stitch_matches_reference(seed: int, shape: tuple[int, int], t: int, b: int) -> None:
    divisor = 1000
    # objects narrower than a tile and no stuff class, so no run wraps a tile row
    img = panoptic_image(shape, seed, divisor, max_r=t // 4)
    img[img // divisor == 3] = 0
    layout = er.tile_layout(shape, t, b)
    tiles = cut(img, layout, seed, divisor)
    kw = {"labels": (1, 2), "thing_list": (1, 2), "label_divisor": divisor}
    ours = er.stitch_tiles(tiles, layout, shape, **kw)
    ref = reference_stitch(tiles, shape, t, b, **kw)
    assert ours.dtype == np.uint32
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("seed", range(5))
def test_stitch_with_stuff_class(seed: int) -> None:
    """With a stuff class wide enough to span a tile, the reference's translated runs wrap
    tile rows (it shifts only run starts) and paint pixels right of the tile; ours splits
    the runs. Away from the wrapped runs the results agree, and ours reproduces the image."""
    divisor, shape, t, b = 1000, (160, 160), 64, 6
    img = panoptic_image(shape, seed, divisor, max_r=12)
    layout = er.tile_layout(shape, t, b)
    tiles = [img[y0:y1, x0:x1].copy() for y0, y1, x0, x1 in layout]
    kw = {"labels": (1, 2, 3), "thing_list": (1, 2), "label_divisor": divisor}
    ours = er.stitch_tiles(tiles, layout, shape, **kw)
    # unperturbed tiles: stuff is exact; things exact up to the merge's renumbering
    assert np.array_equal(ours == 3 * divisor, img == 3 * divisor)
    assert np.array_equal(ours > 0, img > 0)
    ref = reference_stitch(tiles, shape, t, b, **kw)
    agree = (ref == ours).mean()
    assert agree > 0.9


def test_bad_inputs() -> None:
    shape = (100, 100)
    layout = er.tile_layout(shape, 60, 6)
    tiles = [np.zeros((y1 - y0, x1 - x0), np.int32) for y0, y1, x0, x1 in layout]
    with pytest.raises(er.InvalidArgumentError, match="overlap"):
        er.tile_layout(shape, 60, 30)
    with pytest.raises(er.InvalidArgumentError, match="overlap"):
        er.tile_layout((10, 100), 60, 6)  # tile clamped to 10 rows: 2 * 6 >= 10
    with pytest.raises(er.InvalidArgumentError, match="tile_size"):
        er.tile_layout(shape, 0)
    with pytest.raises(er.ShapeError, match="shape"):
        er.tile_layout((0, 10), 5)
    with pytest.raises(er.InvalidArgumentError, match="tile_size"):
        er.tile_layout(shape, -5)
    with pytest.raises(er.InvalidArgumentError, match="tiles"):
        er.stitch_tiles(tiles[:-1], layout, shape)
    with pytest.raises(er.InvalidArgumentError, match="tiles"):
        er.stitch_tiles([], layout, shape)
    with pytest.raises(er.ShapeError, match="tile 1"):
        er.stitch_tiles([tiles[0], tiles[1][:-1], *tiles[2:]], layout, shape)
    with pytest.raises(er.ShapeError, match="2D"):
        er.stitch_tiles([tiles[0][None], *tiles[1:]], layout, shape)
    with pytest.raises(er.DTypeError, match="tiles"):
        er.stitch_tiles([tiles[0].astype(np.float32), *tiles[1:]], layout, shape)
    with pytest.raises(er.DTypeError, match="tiles"):
        er.stitch_tiles([tiles[0], tiles[1].astype(np.int64), *tiles[2:]], layout, shape)
    with pytest.raises(er.InvalidArgumentError, match="layout"):
        er.stitch_tiles(tiles, [(0, 200, 0, 60)] + layout[1:], shape)
    with pytest.raises(er.InvalidArgumentError, match="tiles"):
        er.stitch_tiles([tiles[0] - 1, *tiles[1:]], layout, shape)
    with pytest.raises(er.InvalidArgumentError, match="label_divisor"):
        er.stitch_tiles(tiles, layout, shape, label_divisor=0)
    with pytest.raises(er.InvalidArgumentError, match="labels"):
        er.stitch_tiles(tiles, layout, shape, labels=(0,))
