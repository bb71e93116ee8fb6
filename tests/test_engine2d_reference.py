"""Parity of the non-tiled 2D engine with the reference's Engine2d call sequence: the same
TorchScript model (the reference's own QuantizablePanopticDeepLabPR, tiny and random) and
parameters give the same label map on uint8 images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empanada_rs.inference import ModelHandle
from empanada_rs.inference.engine2d import segment_2d

from .engine2d_models import disc_image, reference_scripted_model
from .reference_napari import load_plugin_module

pytestmark = pytest.mark.reference

NORMS = {"mean": 0.57571, "std": 0.12765}


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    # seeds whose random maps hold background, foreground and dozens of instances
    return {c: reference_scripted_model(num_classes=c, seed=seed) for c, seed in ((1, 3), (3, 1))}


def reference_engine2d(model, image, *, s, fine, thing_list, label_divisor=10000):
    """Engine2d.infer without tiling, written out with the reference's own parts."""
    from empanada.data.utils import resize_by_factor
    from empanada.inference import rle as ref_rle
    from empanada.inference.engines import PanopticDeepLabRenderEngine

    Preprocessor = load_plugin_module("utils").Preprocessor
    engine = PanopticDeepLabRenderEngine(
        model,
        thing_list=thing_list,
        label_divisor=label_divisor,
        nms_threshold=0.1,
        nms_kernel=3,
        confidence_thr=0.5,
        padding_factor=16,
        coarse_boundaries=not fine,
    )
    size = image.shape
    x = Preprocessor(**NORMS)(resize_by_factor(image, s))["image"].unsqueeze(0)
    pan = engine(x, size, upsampling=s).squeeze().cpu().numpy().astype(np.int32)
    for label in thing_list:  # Engine2d.force_connected
        lo, hi = label * label_divisor, (label + 1) * label_divisor
        inst = pan.copy()
        inst[(pan < lo) | (pan >= hi)] = 0
        inst = ref_rle.connected_components(inst).astype(np.int32)
        inst[inst > 0] += lo
        pan[inst > 0] = inst[inst > 0]
    return pan


def test_harness_model_is_not_trivial(models):
    img = disc_image((75, 90), [(20, 20), (50, 60)], radius=10)
    ref = reference_engine2d(models[1], img, s=1, fine=False, thing_list=[1])
    assert len(np.unique(ref)) > 20  # dozens of instances
    assert 0.2 < np.mean(ref > 0) < 0.9  # and background


@pytest.mark.parametrize("classes", [1, 3])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("fine", [False, True])
def test_matches_reference_engine2d(models, classes, s, fine):
    rng = np.random.default_rng(s + 2 * fine + classes)
    img = disc_image((75, 90), [(20, 20), (22, 45), (50, 60)], radius=11)
    img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
    things = [1] if classes == 1 else [1, 3]
    config = {
        "norms": NORMS,
        "padding_factor": 16,
        "thing_list": things,
        "labels": list(range(1, classes + 1)),
    }
    handle = ModelHandle(models[classes], config)
    ref = reference_engine2d(models[classes], img, s=s, fine=fine, thing_list=things)
    ours = segment_2d(img, handle, downsampling=s, fine_boundaries=fine)
    assert ours.labels.dtype == np.int32 and ours.labels.shape == img.shape
    np.testing.assert_array_equal(ours.labels, ref)
