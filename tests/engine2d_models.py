"""Tiny models for the 2D engine tests: a contract-shaped blob model whose outputs are
known (bright discs -> one object each), and the reference's own TorchScript
PanopticDeepLabPR with a small encoder and random weights (the parity oracle's model)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from empanada_rs.inference import ModelHandle

BLOB_CONFIG = {
    "norms": {"mean": 0.0, "std": 1.0},
    "padding_factor": 16,
    "thing_list": [1],
    "labels": [1],
    "class_names": {1: "blob"},
}


class BlobModel(torch.nn.Module):
    """Follows the model contract (spec §2.2): foreground = normalised intensity above 0.5;
    the centre heatmap is the foreground blurred twice (one peak per disc); offsets are
    zero, so pixels join the nearest centre."""

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2], x.shape[-1]
        logits = 20.0 * (x - 0.5)
        scale = int(2**render_steps)
        sh, sw = h // 4 * scale, w // 4 * scale
        sem = logits
        if sh != h or sw != w:
            sem = F.interpolate(logits, size=[sh, sw], mode="bilinear", align_corners=False)
        ctr = torch.sigmoid(logits)
        for _ in range(2):
            ctr = F.avg_pool2d(ctr, 9, 1, 4)
        # a tiny slope breaks plateaus so each disc has exactly one peak
        ramp = torch.arange(h * w, dtype=x.dtype).reshape(1, 1, h, w) / (10.0 * h * w)
        ctr = ctr * (1.0 + 1e-3 * ramp)
        if not interpolate_ins:
            ctr = F.avg_pool2d(ctr, 4)
        offsets = torch.zeros(x.shape[0], 2, ctr.shape[-2], ctr.shape[-1])
        return {"sem_logits": sem, "ctr_hmp": ctr, "offsets": offsets}


def blob_handle() -> ModelHandle:
    return ModelHandle(module=BlobModel(), config=dict(BLOB_CONFIG), name="blob")


def disc_image(
    shape: tuple[int, int],
    centres: list[tuple[int, int]],
    radius: int = 8,
    fg: int = 200,
    bg: int = 30,
) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, bg, dtype=np.uint8)
    for cy, cx in centres:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = fg
    return img


def reference_scripted_model(num_classes: int = 1, seed: int = 0) -> torch.jit.ScriptModule:
    """The reference plugin's model class (``QuantizablePanopticDeepLabPR``) with a one-block
    ResNet encoder and 16-channel decoders, random weights, scripted like its exports."""
    from empanada.models.quantization import encoders
    from empanada.models.quantization import panoptic_deeplab as pdl
    from empanada.models.quantization.encoders.resnet import QuantizableBasicBlock, _resnet

    def tiny_resnet(**kwargs):
        return _resnet("tiny", QuantizableBasicBlock, [1, 1, 1, 1], **kwargs)

    encoders.__dict__["tiny_resnet"] = tiny_resnet
    if "tiny_resnet" not in pdl.backbones:
        pdl.backbones.append("tiny_resnet")
    torch.manual_seed(seed)
    model = pdl.QuantizablePanopticDeepLabPR(
        encoder="tiny_resnet",
        num_classes=num_classes,
        stage4_stride=32,
        decoder_channels=16,
        low_level_channels_project=[8, 8, 8],
        aspp_channels=16,
        ins_decoder=False,
        quantize=False,
    )
    # the reference's init leaves the heads near zero (constant outputs); spread the
    # weights so the maps vary and produce objects to compare
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                fan_in = p[0].numel()
                p.normal_(0.0, (2.0 / fan_in) ** 0.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    model.eval()
    return torch.jit.script(model)
