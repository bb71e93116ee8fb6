"""``empanada-rs segment2d``: outputs, naming, overwrite refusal, --json and exit codes.
The model is the blob model (names resolve to it through a monkeypatched resolver)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from empanada_rs.cli import ExitCode, main

from .engine2d_models import blob_handle, disc_image

CENTRES = [(20, 20), (20, 60), (60, 40)]


@pytest.fixture(autouse=True)
def _blob_model(monkeypatch, tmp_path):
    torch.set_num_threads(1)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    seen = []

    def resolve(model, device="auto", use_quantized=None):
        seen.append((model, device, use_quantized))
        return blob_handle()

    monkeypatch.setattr("empanada_rs.cli.segment2d.resolve_model_handle", resolve)
    return seen


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "cells.png"
    Image.fromarray(disc_image((80, 90), CENTRES, radius=10)).save(path)
    return path


def test_png_to_tif_next_to_input_with_json(png, capsys, _blob_model):
    code = main(["segment2d", str(png), "--json", "--no-progress", "--model", "blobs"])
    assert code == ExitCode.OK
    out = png.with_name("cells_blob_seg.tif")
    labels = tifffile.imread(out)
    assert labels.shape == (80, 90) and labels.dtype == np.int32
    assert len(np.unique(labels)) == 4
    summary = json.loads(capsys.readouterr().out)
    assert summary["objects"] == {"blob": 3}
    assert summary["output"] == str(out)
    assert {"model", "postprocess", "total"} <= set(summary["timings"])
    assert _blob_model[0] == ("blobs", "auto", None)


def test_refuses_to_overwrite_and_leaves_the_file(png, capsys):
    out = png.with_name("cells_blob_seg.tif")
    out.write_bytes(b"keep me")
    assert main(["segment2d", str(png), "--no-progress"]) == ExitCode.OUTPUT_EXISTS
    assert out.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["segment2d", str(png), "--no-progress", "--overwrite"]) == ExitCode.OK
    assert tifffile.imread(out).shape == (80, 90)


def test_npy_parameters_and_explicit_out(tmp_path, capsys):
    img = disc_image((80, 90), CENTRES, radius=10)
    src = tmp_path / "a.npy"
    np.save(src, img)
    assert main(["segment2d", str(src), "--no-progress", "--semantic-only"]) == ExitCode.OK
    sem = np.load(tmp_path / "a_blob_seg.npy")
    assert set(np.unique(sem)) == {0, 10000}
    dst = tmp_path / "sub" / "tiled.tif"
    args = ["segment2d", str(src), "--out", str(dst), "--tile-size", "48", "--downsampling", "2"]
    assert main([*args, "--no-progress", "--label-divisor", "1000"]) == ExitCode.OK
    tiled = tifffile.imread(dst)
    assert tiled.dtype == np.uint32 and tiled.shape == (80, 90)
    assert set(np.unique(tiled)) == {0, 1001, 1002, 1003}
    vp = tmp_path / "vp.npy"
    assert main(["segment2d", str(src), "--out", str(vp), "--viewport", "0", "0", "40", "45"]) == 0
    v = np.load(vp)
    assert not v[40:].any() and not v[:, 45:].any() and v[:40, :45].any()


def test_batch_mode_on_a_tif_stack(tmp_path, capsys):
    stack = np.stack([disc_image((64, 64), [(20, 20)]), disc_image((64, 64), [(40, 40)])])
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack)
    assert main(["segment2d", str(src), "--batch", "--json", "--no-progress"]) == ExitCode.OK
    labels = tifffile.imread(tmp_path / "stack_blob_seg.tif")
    assert labels.shape == (2, 64, 64)
    assert json.loads(capsys.readouterr().out)["objects"] == {"blob": 2}


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--downsampling", "3"], ExitCode.BAD_INPUT, "power of two"),
        (["--tile-size", "100", "--tile-overlap", "60"], ExitCode.BAD_INPUT, "tile_overlap"),
        (["--out", "x.png"], ExitCode.BAD_INPUT, "--out"),
        (["--normalize", "nope"], ExitCode.USAGE, ""),
    ],
)
def test_bad_arguments_exit_codes(png, capsys, extra, code, message):
    if code == ExitCode.USAGE:
        with pytest.raises(SystemExit) as e:
            main(["segment2d", str(png), *extra])
        assert e.value.code == code
        return
    assert main(["segment2d", str(png), "--no-progress", *extra]) == code
    assert message in capsys.readouterr().err
    assert not png.with_name("cells_blob_seg.tif").exists()


def test_missing_and_unreadable_inputs(tmp_path, capsys):
    assert main(["segment2d", str(tmp_path / "nope.tif")]) == ExitCode.NOT_FOUND
    bad = tmp_path / "img.jpg"
    bad.write_bytes(b"x")
    assert main(["segment2d", str(bad)]) == ExitCode.BAD_INPUT
    stack = tmp_path / "s.npy"
    np.save(stack, np.zeros((2, 8, 8), np.uint8))
    assert main(["segment2d", str(stack), "--no-progress"]) == ExitCode.BAD_INPUT
    assert "batch=True" in capsys.readouterr().err


def test_end_to_end_with_a_registered_yaml(tmp_path, monkeypatch, capsys):
    """No resolver stub: a config YAML naming a scripted contract model, through the
    registry, with a device flag."""
    import yaml

    from empanada_rs.cli import segment2d as cli2d
    from empanada_rs.inference.engine2d import resolve_model_handle

    from .engine2d_models import BLOB_CONFIG, BlobModel

    monkeypatch.setattr(cli2d, "resolve_model_handle", resolve_model_handle)
    monkeypatch.setenv("EMPANADA_RS_HOME", str(tmp_path / "rs-home"))
    monkeypatch.setenv("EMPANADA_HOME", str(tmp_path / "empanada-home"))
    torch.jit.save(torch.jit.script(BlobModel()), str(tmp_path / "blob.pth"))
    config = {**BLOB_CONFIG, "model": str(tmp_path / "blob.pth"), "description": "discs"}
    (tmp_path / "Blobs.yaml").write_text(yaml.safe_dump(config))
    img = tmp_path / "img.npy"
    np.save(img, disc_image((64, 80), [(20, 20), (40, 55)]))
    args = ["segment2d", str(img), "--model", str(tmp_path / "Blobs.yaml"), "--device", "cpu"]
    assert main([*args, "--json", "--no-progress", "--no-quantized"]) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["objects"] == {"blob": 2}
    assert np.load(summary["output"]).shape == (64, 80)
    missing = ["segment2d", str(img), "--model", "NoSuchModel", "--overwrite"]
    assert main(missing) == ExitCode.NOT_FOUND
