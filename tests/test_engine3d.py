"""3D engine: segment_3d end to end with an oracle model (tests/engine3d_fakes.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import empanada_rs as er
from empanada_rs.inference import engine3d
from empanada_rs.inference.object_ops import apply_object_ops
from empanada_rs.inference.orthoplane import consensus
from empanada_rs.inference.stack import Params3d

from .engine3d_fakes import ball_volume, encode, oracle_handle

FAST = {"min_size": 50, "min_extent": 3, "device": "cpu", "fine_boundaries": True}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def box_volume() -> np.ndarray:
    """Separated cuboids: every slice of every plane is a rectangle, so each plane's stack
    is exact."""
    vol = np.zeros((20, 40, 40), np.uint8)
    vol[2:12, 3:15, 4:16] = 1
    vol[4:17, 20:34, 3:13] = 2
    vol[8:19, 5:17, 22:36] = 3
    vol[1:9, 22:36, 24:37] = 4
    return vol


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renumbering of ids."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@pytest.fixture(scope="module")
def boxes():
    lab = box_volume()
    return lab, encode(lab)


@pytest.fixture(scope="module")
def stack_result(boxes):
    return er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, **FAST)


@pytest.fixture(scope="module")
def ortho_result(boxes):
    return er.segment_3d(boxes[1], oracle_handle(), return_panoptic_stacks=True, **FAST)


# --- behaviour ---------------------------------------------------------------------------


def test_stack_recovers_the_truth(boxes, stack_result):
    v = stack_result.labels["mito"]
    assert v.dtype == np.int32 and v.shape == boxes[0].shape
    assert same_partition(v, boxes[0])
    t = stack_result.objects["mito"]
    assert list(t["ids"]) == [1, 2, 3, 4]
    assert sorted(t["counts"]) == sorted(np.bincount(boxes[0].ravel())[1:])
    assert set(stack_result.timings) >= {"io_s", "model_s", "postprocess_s", "write_s", "total_s"}


def test_orthoplane_of_three_good_views_equals_the_stack(boxes, stack_result, ortho_result):
    np.testing.assert_array_equal(ortho_result.labels["mito"], stack_result.labels["mito"])
    assert set(ortho_result.stacks) == {"xy", "xz", "yz"}
    for plane, st in ortho_result.stacks.items():
        assert st.shape == boxes[0].shape, plane
        assert same_partition(st, boxes[0]), plane
        assert st.max() > 10000  # class * label_divisor + k


def test_consensus_of_identical_stacks_is_the_stack(stack_result):
    seg = stack_result.segmentation
    again = consensus([seg, seg, seg], Params3d(min_size=50, min_extent=3))
    np.testing.assert_array_equal(again.to_volume(1), seg.to_volume(1))


def test_zarr_output_equals_numpy(tmp_path, boxes, ortho_result):
    import zarr

    r = er.segment_3d(
        boxes[1],
        oracle_handle(),
        return_panoptic_stacks=True,
        zarr_dir=tmp_path,
        name="vol",
        chunks="8,16,16",
        **FAST,
    )
    assert r.store == tmp_path / "vol.zarr"
    g = zarr.open_group(str(r.store), mode="r")
    assert sorted(g.array_keys()) == ["mito", "panoptic_xy", "panoptic_xz", "panoptic_yz"]
    assert g["mito"].chunks == (8, 16, 16) and g["mito"].dtype == np.int32
    np.testing.assert_array_equal(g["mito"][:], ortho_result.labels["mito"])
    for plane in ("xy", "xz", "yz"):
        np.testing.assert_array_equal(g[f"panoptic_{plane}"][:], ortho_result.stacks[plane])
    for key in ("ids", "counts", "boxes"):
        np.testing.assert_array_equal(r.objects["mito"][key], ortho_result.objects["mito"][key])
    np.testing.assert_allclose(
        r.objects["mito"]["centroids"], ortho_result.objects["mito"]["centroids"]
    )


def test_ome_zarr_metadata(tmp_path, boxes):
    import zarr

    r = er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, zarr_dir=tmp_path,
                      name="em", ome_zarr=True, chunks=16, **FAST)  # fmt: skip
    assert r.store == tmp_path / "em.ome.zarr"
    root = zarr.open_group(str(r.store), mode="r")
    assert root.metadata.zarr_format == 2
    ms = root.attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    np.testing.assert_array_equal(root[ms["datasets"][0]["path"]][:], boxes[1])
    assert root["labels"].attrs["labels"] == ["mito"]
    lab = root["labels/mito"]
    assert lab.attrs["image-label"]["source"]["image"] == "../../"
    np.testing.assert_array_equal(lab["0"][:], r.labels["mito"][:])
    # The reference OME-Zarr reader sees an image with a label image.
    reader = pytest.importorskip("ome_zarr.reader")
    io = pytest.importorskip("ome_zarr.io")
    nodes = list(reader.Reader(io.parse_url(str(r.store)))())
    assert any(n.specs and type(n.specs[0]).__name__ == "Multiscales" for n in nodes)
    label_nodes = list(reader.Reader(io.parse_url(str(r.store / "labels" / "mito")))())
    assert any(type(s).__name__ == "Label" for n in label_nodes for s in n.specs)


def test_downsampling_gives_full_size_output(boxes, stack_result):
    r = er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, downsampling=2, **FAST)
    v = r.labels["mito"]
    assert v.shape == boxes[0].shape
    assert r.objects["mito"]["ids"].size == 4
    truth = boxes[0] > 0
    iou = (truth & (v > 0)).sum() / (truth | (v > 0)).sum()
    assert iou > 0.85


def test_channel_axis(boxes, stack_result):
    img = boxes[1]
    noise = np.random.default_rng(0).integers(0, 255, img.shape, dtype=np.uint8)
    last = np.stack([img, noise, noise], axis=-1)  # auto: trailing axis of size 3
    r = er.segment_3d(last, oracle_handle(), orthoplane=False, **FAST)
    np.testing.assert_array_equal(r.labels["mito"], stack_result.labels["mito"])
    mid = np.stack([noise, img], axis=1)  # explicit axis and channel
    r = er.segment_3d(mid, oracle_handle(), orthoplane=False, channel_axis=1, channel=1, **FAST)
    np.testing.assert_array_equal(r.labels["mito"], stack_result.labels["mito"])


def test_dask_zarr_tif_inputs_equal_numpy(tmp_path, boxes, stack_result):
    import dask.array as da
    import tifffile
    import zarr

    z = zarr.create_array(str(tmp_path / "in.zarr"), shape=boxes[1].shape, dtype="uint8",
                          chunks=(4, 16, 16))  # fmt: skip
    z[:] = boxes[1]
    tifffile.imwrite(tmp_path / "in.tif", boxes[1])
    for vol in (
        da.from_array(boxes[1], chunks=(5, 20, 20)),
        z,
        tmp_path / "in.zarr",
        str(tmp_path / "in.tif"),
    ):
        r = er.segment_3d(vol, oracle_handle(), orthoplane=False, **FAST)
        np.testing.assert_array_equal(r.labels["mito"], stack_result.labels["mito"])


def test_batching_and_two_cpu_devices_equal_single(boxes, stack_result):
    r = er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, batch_size=3, **FAST)
    np.testing.assert_array_equal(r.labels["mito"], stack_result.labels["mito"])
    r = er.segment_3d(
        boxes[1], oracle_handle(), orthoplane=False, batch_size=2, devices=["cpu", "cpu"],
        min_size=50, min_extent=3, fine_boundaries=True,
    )  # fmt: skip
    np.testing.assert_array_equal(r.labels["mito"], stack_result.labels["mito"])


def test_balls_in_every_plane_are_found():
    lab = ball_volume()
    r = er.segment_3d(encode(lab), oracle_handle(), **FAST)
    assert r.objects["mito"]["ids"].size == 4
    assert same_partition(r.labels["mito"] * (lab > 0), lab * (r.labels["mito"] > 0))


# --- per-object morphology ---------------------------------------------------------------


def seg_of(vol: np.ndarray) -> er.Segmentation:
    return er.Segmentation.from_labels(vol, 1)


def test_erode_shrinks_each_object_alone():
    vol = np.zeros((9, 9, 14), np.int32)
    vol[2:7, 2:7, 2:7] = 1
    vol[2:7, 2:7, 7:12] = 2  # touching box: erodes at the shared face too
    out = apply_object_ops(seg_of(vol), erode=1).stack_volume()
    want = np.zeros_like(vol)
    want[3:6, 3:6, 3:6] = 1
    want[3:6, 3:6, 8:11] = 2
    np.testing.assert_array_equal(out, want)
    border = np.zeros((5, 5, 5), np.int32)
    border[:, :, :3] = 4  # the volume border does not erode
    out = apply_object_ops(seg_of(border), erode=1).stack_volume()
    np.testing.assert_array_equal(out, np.where(np.indices(border.shape)[2] < 2, 4, 0))
    assert apply_object_ops(seg_of(want), erode=2).n_objects(1) == 0


def test_dilate_grows_into_background_larger_id_wins():
    vol = np.zeros((3, 3, 9), np.int32)
    vol[1, 1, 2] = 1
    vol[1, 1, 4] = 2  # voxel 3 is contested: 2 wins
    vol[1, 1, 5] = 3  # touching 2: neither takes the other's voxels
    out = apply_object_ops(seg_of(vol), dilate=1).stack_volume()
    assert out[1, 1, 3] == 2 and out[1, 1, 4] == 2 and out[1, 1, 5] == 3
    assert out[1, 1, 1] == 1 and out[1, 1, 6] == 3 and out[0, 1, 2] == 1
    assert out[0, 0, 2] == 0  # one face-step only
    assert (out == 1).sum() == 6  # the cross minus the contested voxel


def test_fill_holes_per_object_keeps_neighbours():
    vol = np.zeros((2, 9, 9), np.int32)
    vol[:, 1:8, 1:8] = 1
    vol[:, 2:7, 2:7] = 0
    vol[0, 4, 4] = 2  # another object inside the hole of 1
    out = apply_object_ops(seg_of(vol), fill_holes=True).stack_volume()
    assert out[0, 4, 4] == 2 and (out[0, 2:7, 2:7] == 1).sum() == 24
    assert (out[1, 1:8, 1:8] == 1).all()


def test_object_ops_through_segment_3d(boxes, stack_result):
    r = er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, erode=1, **FAST)
    base = stack_result.labels["mito"]
    assert r.objects["mito"]["ids"].size == 4
    assert (r.labels["mito"] > 0).sum() < (base > 0).sum()
    assert not ((r.labels["mito"] > 0) & (base == 0)).any()


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10,), (1, 2, 3, 4, 5), (5, 6, 7, 8)])
def test_bad_rank(shape):
    with pytest.raises(er.ShapeError, match="volume"):
        er.segment_3d(np.zeros(shape, np.uint8), oracle_handle(), device="cpu")


def test_bad_values_and_params(boxes):
    h = oracle_handle()
    with pytest.raises(er.InvalidArgumentError, match="float"):
        er.segment_3d(np.full((4, 16, 16), 300.5, np.float32), h, device="cpu")
    with pytest.raises(er.DTypeError):
        er.segment_3d(np.zeros((4, 16, 16), bool), h, device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="chunks"):
        er.segment_3d(boxes[1], h, chunks="64,x", device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="chunks"):
        er.segment_3d(boxes[1], h, chunks=(1, 2), device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="plane"):
        er.segment_3d(boxes[1], h, plane="zz", orthoplane=False, device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="unknown"):
        er.segment_3d(boxes[1], h, min_sise=3, device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="downsampling"):
        er.segment_3d(boxes[1], h, downsampling=3, device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="median_kernel_size"):
        er.segment_3d(boxes[1], h, median_kernel_size=4, device="cpu")
    with pytest.raises(er.InvalidArgumentError, match="devices"):
        er.segment_3d(boxes[1], h, devices=[], device="cpu")
    with pytest.raises(FileNotFoundError):
        er.segment_3d("/nonexistent/vol.tif", h, device="cpu")


def test_existing_or_unwritable_store_is_left_alone(tmp_path, boxes):
    store = tmp_path / "vol.zarr"
    store.mkdir()
    (store / "zarr.json").write_text('{"keep": true}')
    with pytest.raises(er.OutputExistsError, match="overwrite"):
        er.segment_3d(boxes[1], oracle_handle(), zarr_dir=tmp_path, name="vol", device="cpu")
    assert (store / "zarr.json").read_text() == '{"keep": true}'
    other = tmp_path / "notzarr.zarr"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    with pytest.raises(er.InvalidArgumentError, match="not a zarr store"):
        er.segment_3d(boxes[1], oracle_handle(), zarr_dir=other, overwrite=True, device="cpu")
    assert (other / "precious.txt").read_text() == "x"
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(er.InvalidArgumentError, match="writable"):
                er.segment_3d(boxes[1], oracle_handle(), zarr_dir=ro, device="cpu")
        finally:
            ro.chmod(0o700)
    # overwrite=True replaces a zarr store
    r = er.segment_3d(boxes[1], oracle_handle(), orthoplane=False, zarr_dir=tmp_path,
                      name="vol", overwrite=True, **FAST)  # fmt: skip
    assert r.labels["mito"].shape == boxes[0].shape


# --- CLI ---------------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path, monkeypatch, capsys, boxes):
    from empanada_rs.cli import ExitCode, main

    monkeypatch.setattr(engine3d, "_resolve_model", lambda *a, **k: oracle_handle())
    vol = tmp_path / "cells.npy"
    np.save(vol, boxes[1])
    args = [
        "segment3d",
        str(vol),
        "--no-ortho",
        "--min-size",
        "50",
        "--min-extent",
        "3",
        "--device",
        "cpu",
    ]
    assert main([*args, "--json", "--quiet", "--chunks", "8,16,16"]) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["store"] == str(tmp_path / "cells.zarr")
    assert summary["classes"]["mito"]["objects"] == 4
    assert main([*args, "--quiet"]) == ExitCode.OUTPUT_EXISTS
    assert main([*args, "--quiet", "--overwrite", "--return-stacks"]) == ExitCode.OK
    assert main([*args, "--quiet", "--overwrite", "--chunks", "a,b"]) == ExitCode.BAD_INPUT
    assert main(["segment3d", str(tmp_path / "missing.tif"), "--quiet"]) == ExitCode.NOT_FOUND
    out = tmp_path / "o.zarr"
    assert main([*args, "--quiet", "--out", str(out), "--ome-zarr"]) == ExitCode.OK
    assert (out / "labels" / "mito").is_dir()
    with pytest.raises(SystemExit) as e:
        main(["segment3d", str(vol), "--plane", "zz"])
    assert e.value.code == ExitCode.USAGE
