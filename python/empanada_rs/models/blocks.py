"""Small convolution blocks shared by the encoders, decoders and heads.

Module and attribute names (``sepconv``, ``head``, the Sequential indices) follow the layout of
empanada's model files so that their state dicts load into these classes unchanged.
"""

import torch
from torch import nn
from torch.ao.quantization import fuse_modules


def conv_bn(
    nin: int, nout: int, kernel_size: int, stride: int = 1, relu: bool = True
) -> nn.Sequential:
    """``Conv2d`` (no bias, "same" padding) + ``BatchNorm2d`` (+ ``ReLU`` when ``relu``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            nin, nout, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, bias=False
        ),
        nn.BatchNorm2d(nout),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SeparableConv2d(nn.Module):
    """Depthwise ``kernel_size`` conv followed by a pointwise 1x1 conv, both without bias."""

    def __init__(self, nin: int, nout: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.sepconv = nn.Sequential(
            nn.Conv2d(nin, nin, kernel_size, padding=pad, groups=nin, bias=False),
            nn.Conv2d(nin, nout, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sepconv(x)


def separable_conv_bn(
    nin: int, nout: int, kernel_size: int, activation: str = "relu"
) -> nn.Sequential:
    """``SeparableConv2d`` + ``BatchNorm2d`` + activation (``"relu"``, ``"silu"`` or ``"none"``)."""
    layers: list[nn.Module] = [SeparableConv2d(nin, nout, kernel_size), nn.BatchNorm2d(nout)]
    if activation == "relu":
        layers.append(nn.ReLU())
    elif activation == "silu":
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def fuse_separable(block: nn.Sequential) -> None:
    """Fold the BatchNorm (and ReLU) of a ``separable_conv_bn`` block into its pointwise conv."""
    names = ["0.sepconv.1", "1"]
    if len(block) > 2 and isinstance(block[2], nn.ReLU):
        names.append("2")
    fuse_modules(block, names, inplace=True)


def fuse_conv_bn(block: nn.Sequential) -> None:
    """Fold a ``conv_bn`` block (conv, BN, optional ReLU) into one module."""
    names = ["0", "1"]
    if len(block) > 2 and isinstance(block[2], nn.ReLU):
        names.append("2")
    fuse_modules(block, names, inplace=True)


def init_small_normal(module: nn.Module) -> None:
    """Decoder/head initialisation (spec §10.2): conv weights N(0, 0.001), BN to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PanopticHead(nn.Module):
    """5x5 separable conv + BN + ReLU, then a 1x1 conv with bias to ``nout`` channels."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.head = nn.Sequential(
            separable_conv_bn(nin, nin, 5), nn.Conv2d(nin, nout, 1, bias=True)
        )
        init_small_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def fuse_model(self) -> None:
        fuse_separable(self.head[0])


def upsample4(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x4 upsampling with ``align_corners=True`` (the heads' convention, spec §2.2)."""
    return nn.functional.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=True)
