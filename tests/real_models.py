"""Tiny random-init models built by OUR ``build_model`` (scripted, CPU) and EM-like test
volumes, for the engine tests that run real networks (tests/test_engine3d_reference.py,
tests/test_engines_real_model.py)."""

from __future__ import annotations

import numpy as np
import torch

from empanada_rs.inference import ModelHandle
from empanada_rs.models import build_model

NORMS = {"mean": 0.57571, "std": 0.12765}


def tiny_model(num_classes: int = 1, seed: int = 0, bias_std: float = 0.1) -> torch.nn.Module:
    """Eager ``PanopticDeepLabPR`` (resnet18 at width 8, 16-channel decoders), eval mode.

    Our init (like the reference's) leaves the heads near zero, so every map is nearly
    constant; the weights are redrawn with He-normal scales (biases ~ N(0, ``bias_std``)) so
    the semantic map holds background and foreground and the centre heatmap several peaks."""
    torch.manual_seed(seed)
    model = build_model(
        "PanopticDeepLabPR",
        encoder="resnet18",
        encoder_width=8,
        num_classes=num_classes,
        stage4_stride=32,
        decoder_channels=16,
        low_level_channels_project=[8],
        aspp_channels=16,
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.normal_(0.0, (2.0 / p[0].numel()) ** 0.5)
            elif name.endswith("bias"):
                p.normal_(0.0, bias_std)
    return model.eval()


def handle_for(module: torch.nn.Module, num_classes: int = 1, **kw) -> ModelHandle:
    labels = list(range(1, num_classes + 1))
    config = {
        "norms": NORMS,
        "padding_factor": 16,
        "thing_list": kw.pop("thing_list", [1] if num_classes == 1 else labels),
        "labels": labels,
        "class_names": {c: f"c{c}" for c in labels},
    }
    return ModelHandle(module, config, **kw)


def ball_volume(shape: tuple[int, int, int], n: int = 6, seed: int = 0) -> np.ndarray:
    """uint8 volume: bright balls of radius 4-8 voxels on a darker noisy background."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    vol = np.full(shape, 60.0)
    for _ in range(n):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(4, 8)
        vol[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r] = 190.0
    vol += rng.normal(0, 15, shape)
    return np.clip(vol, 0, 255).astype(np.uint8)
