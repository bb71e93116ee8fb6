"""Model execution shared by the engines: normalisation, padding, batched predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empanada_rs.errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError
from empanada_rs.inference import (
    ModelHandle,
    ModelRunner,
    intensity_range,
    normalize,
    render_steps_for,
    resolve_device,
)

from .reference_napari import load_plugin_module

NORMS = (0.57571, 0.12765)


def test_uint8_normalisation_matches_reference_preprocessor():
    Preprocessor = load_plugin_module("utils").Preprocessor

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    ref = Preprocessor(mean=NORMS[0], std=NORMS[1])(img)["image"].numpy()[0]
    ours = normalize(img, intensity_range(img), NORMS)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_parity_mode_uses_dtype_maximum_like_reference():
    Preprocessor = load_plugin_module("utils").Preprocessor

    img = np.arange(0, 4000, 7, dtype=np.uint16).reshape(-1, 4)
    ref = Preprocessor(mean=NORMS[0], std=NORMS[1])(img)["image"].numpy()[0]
    ours = normalize(img, intensity_range(img, "parity"), NORMS)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)


def test_robust_mode_stretches_a_narrow_uint16_range():
    img = (np.arange(10_000, dtype=np.uint16) % 1000 + 1000).reshape(100, 100)
    lo, hi = intensity_range(img)
    assert 1000 <= lo < 1010 and 1990 < hi <= 1999
    x = normalize(img, (lo, hi), (0.0, 1.0))
    assert x.min() == 0.0 and x.max() == 1.0  # clipped outliers, full range used
    assert intensity_range(img, "parity") == (0.0, 65535.0)


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (np.array([[0.0, 0.5, 1.0]], np.float32), (0.0, 1.0)),
        (np.array([[0.0, 12.0, 250.0]], np.float64), (0.0, 255.0)),
    ],
)
def test_float_ranges(img, expected):
    assert intensity_range(img) == expected


def test_float_uint8_equivalence():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    a = normalize(img, intensity_range(img), NORMS)
    f = img.astype(np.float32) / 255.0
    b = normalize(f, intensity_range(f), NORMS)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_images_raise_typed_errors():
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\] and \[0, 255\]"):
        intensity_range(np.array([[-1.0, 300.0]]))
    with pytest.raises(NonFiniteError, match="NaN"):
        intensity_range(np.array([[np.nan, 0.2]]))
    with pytest.raises(ShapeError, match="empty"):
        intensity_range(np.zeros((0, 4), np.uint8))
    with pytest.raises(DTypeError, match="intensity"):
        intensity_range(np.zeros((3, 3), bool))
    with pytest.raises(InvalidArgumentError, match="mode"):
        intensity_range(np.zeros((3, 3), np.uint8), "nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(("s", "steps"), [(1, 2), (2, 3), (4, 4), (64, 8)])
def test_render_steps(s, steps):
    assert render_steps_for(s) == steps


@pytest.mark.parametrize("s", [0, 3, 6, 128])
def test_render_steps_rejects_non_powers(s):
    with pytest.raises(InvalidArgumentError, match="downsampling"):
        render_steps_for(s)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="not available"):
            resolve_device("cuda:0")
    with pytest.raises(InvalidArgumentError, match="not a device"):
        resolve_device("toaster")


class _Echo(torch.nn.Module):
    """Contract-shaped stand-in: logits = input, centre = input at 1/4, offsets = 0."""

    def forward(self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True):
        scale = 2.0 ** (render_steps - 2)
        sem = torch.nn.functional.interpolate(x, scale_factor=scale) if scale != 1 else x
        ctr = x if interpolate_ins else x[:, :, ::4, ::4]
        return {"sem_logits": sem, "ctr_hmp": ctr, "offsets": torch.cat([ctr * 0, ctr * 0], 1)}


def test_runner_pads_batches_and_returns_probabilities():
    handle = ModelHandle(torch.jit.script(_Echo()), {"padding_factor": 16})
    runner = ModelRunner(handle)
    imgs = [np.full((20, 30), v, np.float32) for v in (0.0, 2.0)]
    outs = runner.predict(imgs, render_steps=3, interpolate_ins=False)
    assert len(outs) == 2
    o = outs[1]
    assert o.sem.shape == (1, 64, 64) and o.sem.dtype == np.float32
    assert o.sem.flags.c_contiguous and o.ctr_hmp.shape == (8, 8)
    assert o.offsets.shape == (2, 8, 8)
    # sigmoid of the image inside, of the zero padding outside
    np.testing.assert_allclose(o.sem[0, 0, 0], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    np.testing.assert_allclose(o.sem[0, 63, 63], 0.5)


def test_runner_rejects_mixed_sizes_and_empty_batches():
    runner = ModelRunner(ModelHandle(torch.jit.script(_Echo()), {"padding_factor": 16}))
    with pytest.raises(ShapeError, match="one size"):
        runner.predict([np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32)])
    with pytest.raises(ShapeError, match="empty"):
        runner.predict([])


def test_handle_config_views():
    h = ModelHandle(
        torch.nn.Identity(),
        {
            "padding_factor": 128,
            "norms": {"mean": 0.5, "std": 0.25},
            "thing_list": [1],
            "labels": [1, 2],
            "class_names": {1: "mito", 2: "er"},
        },
    )
    assert h.padding_factor == 128 and h.norms == (0.5, 0.25)
    assert h.labels == [1, 2] and h.class_names == {1: "mito", 2: "er"}
