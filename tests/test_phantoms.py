"""EM-like phantoms: determinism, dtypes, ground truth consistent with the drawing."""

import numpy as np
import pytest

import empanada_rs as er
from empanada_rs.errors import InvalidArgumentError, ShapeError
from empanada_rs.phantoms import _capsule, _ellipsoid, phantom_2d, phantom_3d


def _n_components(labels: np.ndarray, connectivity: int) -> int:
    _, n = er.connected_components(labels, connectivity=connectivity)
    return n


def test_deterministic_by_seed():
    a = phantom_2d((96, 128), seed=5)
    b = phantom_2d((96, 128), seed=5)
    c = phantom_2d((96, 128), seed=6)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instances, b.instances)
    assert not np.array_equal(a.image, c.image)
    v1 = phantom_3d((8, 64, 64), seed=2)
    v2 = phantom_3d((8, 64, 64), seed=2)
    assert np.array_equal(v1.image, v2.image) and np.array_equal(v1.instances, v2.instances)


def test_dtypes_and_shapes():
    p = phantom_2d((100, 120), seed=1, nuclei=True)
    assert p.image.shape == p.instances.shape == p.semantic.shape == (100, 120)
    assert p.image.dtype == np.uint8 and p.instances.dtype == np.int32
    assert p.semantic.dtype == np.uint8 and p.nuclei is not None and p.nuclei.dtype == np.int32
    v = phantom_3d((6, 64, 80), seed=1)
    assert v.image.shape == v.instances.shape == (6, 64, 80) and v.nuclei is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instances_connected_consecutive_and_semantic(seed):
    p = phantom_2d((256, 256), seed=seed)
    ids = np.unique(p.instances)
    assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids)))
    assert len(ids) > 10
    assert _n_components(p.instances, 4) == len(ids) - 1
    assert np.array_equal(p.semantic == 1, p.instances > 0)
    v = phantom_3d((24, 128, 128), seed=seed)
    vids = np.unique(v.instances)
    assert np.array_equal(vids[1:], np.arange(1, len(vids)))
    assert _n_components(v.instances, 6) == len(vids) - 1
    assert np.bincount(v.instances.ravel())[1:].min() >= 64


def test_instances_lie_inside_their_drawn_primitives():
    v = phantom_3d((16, 96, 96), seed=3)
    labelled = [o for o in v.objects if o.label > 0]
    assert {o.label for o in labelled} == set(np.unique(v.instances)[1:].tolist())
    for o in labelled:
        zz, yy, xx = np.nonzero(v.instances == o.label)
        grid = (zz.astype(np.float32), yy.astype(np.float32), xx.astype(np.float32))
        if o.kind == "ellipsoid":
            depth, _ = _ellipsoid(grid, np.array(o.centre), np.array(o.axes), np.array(o.rotation))
        else:
            depth = np.max(
                [_capsule(grid, np.array(p0), np.array(p1), o.radius)[0] for p0, p1 in o.segments],
                axis=0,
            )
        assert depth.min() > -1e-4


def test_mitochondria_darker_than_cytoplasm_and_nuclei_disjoint():
    p = phantom_2d((256, 256), seed=4, nuclei=True, n_nuclei=1)
    assert p.image[p.instances > 0].mean() < p.image[p.semantic == 0].mean() - 20
    assert p.nuclei is not None and (p.nuclei > 0).any()
    assert not ((p.nuclei > 0) & (p.instances > 0)).any()
    assert np.array_equal(p.semantic == 2, p.nuclei > 0)


def test_slices_of_3d_look_like_2d():
    areas_2d, count_2d = [], []
    for s in range(4):
        p = phantom_2d((256, 256), seed=100 + s)
        a = np.bincount(p.instances.ravel())[1:]
        areas_2d += a[a > 0].tolist()
        count_2d.append(len(a))
    v = phantom_3d((32, 256, 256), seed=7)
    areas_3d, count_3d = [], []
    for z in (4, 12, 20, 28):
        sl, _, _ = er.renumber(v.instances[z])
        comps, n = er.connected_components(sl, connectivity=4)
        a = np.bincount(comps.ravel().astype(np.int64))[1:]
        a = a[a >= 64]  # the 2D truth leaves out grazed caps smaller than min_size
        areas_3d += a.tolist()
        count_3d.append(len(a))
    m2, m3 = np.median(areas_2d), np.median(areas_3d)
    assert 0.6 < m2 / m3 < 1.6
    assert 0.6 < np.mean(count_2d) / np.mean(count_3d) < 1.6
    assert 0.7 < np.percentile(areas_2d, 90) / np.percentile(areas_3d, 90) < 1.4


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"shape": (10,)}, ShapeError),
        ({"shape": (0, 64)}, ShapeError),
        ({"shape": (4, 64)}, ShapeError),
        ({"shape": "ab"}, ShapeError),
        ({"mito_fraction": 0.9}, InvalidArgumentError),
        ({"mito_radius": (10, 5)}, InvalidArgumentError),
        ({"mito_radius": 5}, InvalidArgumentError),
        ({"seed": -1}, InvalidArgumentError),
        ({"blur": -1.0}, InvalidArgumentError),
        ({"min_size": -2}, InvalidArgumentError),
    ],
)
def test_bad_arguments_raise_typed_errors(kwargs, err):
    kw = {"shape": (64, 64)} | kwargs
    with pytest.raises(err):
        phantom_2d(**kw)


def test_bad_3d_shape():
    with pytest.raises(ShapeError):
        phantom_3d((64, 64))
