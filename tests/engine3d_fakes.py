"""Contract-shaped fake models for the 3D engine tests (importable by spawned workers).

:class:`OracleModel` reads object ids encoded in the image (intensity ``STEP * id``) and
returns the outputs a perfect model would give for them: confident semantic logits, a
Gaussian centre per object at its centroid and offsets pointing at it."""

from __future__ import annotations

import numpy as np
import torch

from empanada_rs.inference.runner import ModelHandle

STEP = 40  # intensity per id: ids 1..6 in uint8


class OracleModel(torch.nn.Module):
    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        v = x[:, 0] * 255.0
        ids = torch.round(v / STEP)
        ids = torch.where((v - ids * STEP).abs() < 8, ids, torch.zeros_like(ids)).long()
        b, h, w = ids.shape
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=torch.float32),
            torch.arange(w, dtype=torch.float32),
            indexing="ij",
        )
        ctr = torch.zeros(b, 1, h, w)
        offs = torch.zeros(b, 2, h, w)
        for i in range(b):
            for k in ids[i].unique().tolist():
                if k == 0:
                    continue
                m = ids[i] == k
                cy, cx = yy[m].mean(), xx[m].mean()
                d2 = (yy - cy) ** 2 + (xx - cx) ** 2
                ctr[i, 0] = torch.where(m, torch.exp(-d2 / 8.0), ctr[i, 0])
                offs[i, 0] = torch.where(m, cy - yy, offs[i, 0])
                offs[i, 1] = torch.where(m, cx - xx, offs[i, 1])
        sem = torch.where(ids > 0, 8.0, -8.0)[:, None].float()
        scale = 2 ** (render_steps - 2)
        if scale > 1:
            sem = sem.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
        if not interpolate_ins:
            ctr, offs = ctr[:, :, ::4, ::4].contiguous(), offs[:, :, ::4, ::4].contiguous()
        return {"sem_logits": sem, "ctr_hmp": ctr, "offsets": offs}


def oracle_handle() -> ModelHandle:
    return ModelHandle(
        module=OracleModel(),
        config={
            "norms": {"mean": 0.0, "std": 1.0},
            "padding_factor": 16,
            "thing_list": [1],
            "labels": [1],
            "class_names": {1: "mito"},
        },
        name="oracle",
    )


def ball_volume(shape: tuple[int, int, int] = (24, 48, 48), seed: int = 0) -> np.ndarray:
    """Label volume of a few separated balls (ids 1..n), uint8 ids."""
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, np.uint8)
    zz, yy, xx = np.indices(shape)
    centres = [(12, 12, 12), (12, 34, 14), (11, 14, 34), (13, 34, 34)]
    for k, (z, y, x) in enumerate(centres, start=1):
        r = 6.0 + rng.uniform(0, 2)
        vol[(zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= r * r] = k
    return vol


def encode(labels: np.ndarray) -> np.ndarray:
    """The image the oracle model reads ``labels`` from."""
    return (labels.astype(np.uint16) * STEP).astype(np.uint8)
