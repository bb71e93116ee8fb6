"""Instance F1 of a model on images with ground truth: model -> probabilities ->
`empanada_rs.panoptic_2d` (default parameters) -> one-to-one matches at IoU > 0.5."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from empanada_rs._core import match_instances, panoptic_2d

__all__ = ["predict_instances", "instance_f1"]


@torch.no_grad()
def predict_instances(
    model: nn.Module,
    image: np.ndarray,
    *,
    norms: tuple[float, float],
    padding_factor: int,
    label_divisor: int = 1000,
    fine_boundaries: bool = False,
    **panoptic_kwargs: object,
) -> np.ndarray:
    """Instance ids (H, W) int32 of one uint8 image, the 2D engine's pipeline (spec §3.1):
    normalise, zero-pad bottom/right to a multiple of `padding_factor`, run the model
    (render_steps 2, interpolate_ins = `fine_boundaries`, default False: centres and
    offsets at 1/4 resolution), sigmoid/softmax, `panoptic_2d` with `panoptic_kwargs` (its
    defaults otherwise), crop, drop the class part of the ids."""
    h, w = image.shape
    x = (image.astype(np.float32) / 255.0 - norms[0]) / norms[1]
    ph, pw = -h % padding_factor, -w % padding_factor
    x = np.pad(x, ((0, ph), (0, pw)))
    out = model(torch.from_numpy(x)[None, None], 2, bool(fine_boundaries))
    logits = out["sem_logits"][0].float()
    sem = torch.sigmoid(logits) if logits.shape[0] == 1 else torch.softmax(logits, 0)
    pan = panoptic_2d(
        np.ascontiguousarray(sem.numpy()),
        np.ascontiguousarray(out["ctr_hmp"][0, 0].float().numpy()),
        np.ascontiguousarray(out["offsets"][0].float().numpy()),
        label_divisor=label_divisor,
        **panoptic_kwargs,  # type: ignore[arg-type]
    )
    return (pan[:h, :w] % label_divisor).astype(np.int32)


def instance_f1(
    model: nn.Module,
    samples: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    norms: tuple[float, float],
    padding_factor: int,
    iou_thr: float = 0.5,
) -> dict[str, float]:
    """Pooled F1 over (image, truth instances) pairs, plus the mean per-image F1."""
    was_training = model.training
    model.eval()
    tp = fp = fn = 0
    per_image = []
    for image, truth in samples:
        s = match_instances(
            predict_instances(model, image, norms=norms, padding_factor=padding_factor),
            truth,
            iou_thr=iou_thr,
        )
        tp, fp, fn = tp + int(s["tp"]), fp + int(s["fp"]), fn + int(s["fn"])
        per_image.append(s["f1"])
    if was_training:
        model.train()
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return {
        "f1": f1,
        "mean_image_f1": float(np.mean(per_image)) if per_image else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "images": len(per_image),
    }
