"""Panoptic BiFPN with and without PointRend (spec §10.3, §10.4)."""

import torch
import torch.nn.functional as F
from torch import nn

from empanada_rs.models.blocks import (
    PanopticHead,
    SeparableConv2d,
    conv_bn,
    separable_conv_bn,
    upsample4,
)
from empanada_rs.models.point_rend import PointRendSemSegHead
from empanada_rs.models.resnet import ResNetEncoder

# fast-fusion epsilon (EfficientDet)
EPS = 1e-4


class Resample2d(nn.Module):
    """1x1 conv + BN to ``nout`` channels, or nothing when the widths already agree."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.conv: nn.Module = conv_bn(nin, nout, 1, relu=False) if nin != nout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _downsize(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=2, padding=1)


def _fusion_block(fpn_dim: int, depthwise: bool) -> nn.Sequential:
    if depthwise:
        return separable_conv_bn(fpn_dim, fpn_dim, 3, activation="silu")
    return conv_bn(fpn_dim, fpn_dim, 3)


class TopDownFPN(nn.Module):
    """Coarse-to-fine pass with fast normalised fusion; one conv block shared by all levels."""

    def __init__(self, nins: list[int], fpn_dim: int, depthwise: bool = True) -> None:
        super().__init__()
        self.resamplings = nn.ModuleList([Resample2d(n, fpn_dim) for n in nins])
        block = _fusion_block(fpn_dim, depthwise)
        # the same module object at every position: weights are shared (as in empanada)
        self.after_combines = nn.ModuleList([block for _ in nins])
        self.weights = nn.Parameter(torch.ones(len(nins) + 1))
        self.eps = EPS

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        weights = F.relu(self.weights)
        weights = weights / (weights.sum() + self.eps)
        out = [features[0]]
        for i, (resample, combine) in enumerate(zip(self.resamplings, self.after_combines)):  # noqa: B905
            low = F.interpolate(out[-1], scale_factor=2.0, mode="nearest")
            high = resample(features[i + 1])
            w1, w2 = weights[i], weights[i + 1]
            out.append(combine((w1 * low + w2 * high) / (w1 + w2 + self.eps)))
        return out


class BottomUpFPN(nn.Module):
    """Fine-to-coarse pass fusing the previous level, the input and the top-down feature."""

    def __init__(self, nins: list[int], fpn_dim: int, depthwise: bool = True) -> None:
        super().__init__()
        self.resamplings = nn.ModuleList([Resample2d(n, fpn_dim) for n in nins])
        block = _fusion_block(fpn_dim, depthwise)
        self.after_combines = nn.ModuleList([block for _ in nins])
        self.weights = nn.Parameter(torch.ones(len(nins) + 1))
        self.eps = EPS

    def forward(
        self, features: list[torch.Tensor], top_down: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        weights = F.relu(self.weights)
        weights = weights / (weights.sum() + self.eps)
        last = len(self.resamplings) - 1
        out = [top_down[0]]
        for i, (resample, combine) in enumerate(zip(self.resamplings, self.after_combines)):  # noqa: B905
            down = _downsize(out[-1])
            lateral = resample(features[i])
            if i < last:
                w1, w2, w3 = weights[i], weights[i + 1], weights[i + 2]
                numer = w1 * down + w2 * lateral + w3 * top_down[i + 1]
                fused = numer / (w1 + w2 + w3 + self.eps)
            else:
                w1, w2 = weights[i], weights[i + 1]
                fused = (w1 * down + w2 * lateral) / (w1 + w2 + self.eps)
            out.append(combine(fused))
        return out


class BiFPNLayer(nn.Module):
    def __init__(self, nins: list[int], fpn_dim: int, depthwise: bool = True) -> None:
        super().__init__()
        self.top_down_fpn = TopDownFPN(nins[::-1][1:], fpn_dim, depthwise)
        self.bottom_up_fpn = BottomUpFPN(nins[1:], fpn_dim, depthwise)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        top_down = self.top_down_fpn(features[::-1])
        return self.bottom_up_fpn(features[1:], top_down[::-1])


class BiFPN(nn.Module):
    """P3-P5 in, P6/P7 derived from P5 by resample + max-pool, ``num_layers`` BiFPN layers."""

    def __init__(
        self, nins: list[int], fpn_dim: int, num_layers: int = 3, depthwise: bool = True
    ) -> None:
        super().__init__()
        self.p6_resample = Resample2d(nins[-1], fpn_dim)
        levels = list(nins) + [fpn_dim, fpn_dim]
        self.bifpns = nn.ModuleList(
            [
                BiFPNLayer(levels if i == 0 else [fpn_dim] * len(levels), fpn_dim, depthwise)
                for i in range(num_layers)
            ]
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p6 = _downsize(self.p6_resample(features[-1]))
        p7 = _downsize(p6)
        out = features + [p6, p7]
        for layer in self.bifpns:
            out = layer(out)
        return out


class BiFPNDecoder(nn.Module):
    """From P7 up to 1/4: five (2x2 transposed conv + BN + ReLU, concat next level) steps."""

    def __init__(self, fpn_dim: int, n_scales: int = 5) -> None:
        super().__init__()
        ups = []
        for i in range(n_scales):
            nin = fpn_dim if i == 0 else 2 * fpn_dim
            ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(nin, fpn_dim, 2, stride=2, bias=False),
                    nn.BatchNorm2d(fpn_dim),
                    nn.ReLU(),
                )
            )
        self.upsamplings = nn.ModuleList(ups)
        self.fusion = separable_conv_bn(2 * fpn_dim, fpn_dim, 5)
        for m in self.modules():
            if isinstance(m, SeparableConv2d):
                for conv in m.sepconv:
                    nn.init.xavier_uniform_(conv.weight)
            elif isinstance(m, nn.ConvTranspose2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[0]
        for i, up in enumerate(self.upsamplings):
            x = torch.cat([up(x), features[i + 1]], dim=1)
        return self.fusion(x)


class PanopticBiFPN(nn.Module):
    """Panoptic BiFPN (MitoNet_v1_mini's architecture); inputs must be multiples of 128.

    Args:
        encoder: "resnet18", "resnet34" or "resnet50" (default "resnet50").
        num_classes: 1 for binary models, else n+1 (default 1).
        fpn_dim: BiFPN and decoder width (default 128).
        fpn_layers: number of BiFPN layers (default 3).
        ins_decoder: separate instance BiFPN + decoder (default True).
        depthwise: separable (SiLU) fusion convs instead of plain 3x3 (ReLU) ones (default True).
        encoder_width: ResNet stem/base width, 64 = standard (default 64).
    """

    def __init__(
        self,
        encoder: str = "resnet50",
        num_classes: int = 1,
        fpn_dim: int = 128,
        fpn_layers: int = 3,
        ins_decoder: bool = True,
        depthwise: bool = True,
        encoder_width: int = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fpn_dim = fpn_dim
        self.encoder = ResNetEncoder(encoder, encoder_width, 32)
        widths = self.encoder.widths
        self.p2_resample = Resample2d(widths[0], fpn_dim)
        self.semantic_fpn = BiFPN(list(widths[1:]), fpn_dim, fpn_layers, depthwise)
        self.semantic_decoder = BiFPNDecoder(fpn_dim)
        self.instance_fpn: BiFPN | None = None
        self.instance_decoder: BiFPNDecoder | None = None
        if ins_decoder:
            self.instance_fpn = BiFPN(list(widths[1:]), fpn_dim, fpn_layers, depthwise)
            self.instance_decoder = BiFPNDecoder(fpn_dim)
        self.semantic_head = PanopticHead(fpn_dim, num_classes)
        self.ins_center = PanopticHead(fpn_dim, 1)
        self.ins_xy = PanopticHead(fpn_dim, 2)
        # Identity in float; quantize_model quantizes the encoder only (spec §8.2)
        self.quant: nn.Module = nn.Identity()
        self.dequant: nn.Module = nn.Identity()

    def _heads(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.encoder(self.quant(x))
        pyramid = [self.dequant(f) for f in pyramid]
        p2 = self.p2_resample(pyramid[1])
        sem_levels = self.semantic_fpn(pyramid[2:])
        semantic_x = self.semantic_decoder(([p2] + sem_levels)[::-1])
        instance_x = semantic_x
        if self.instance_fpn is not None and self.instance_decoder is not None:
            ins_levels = self.instance_fpn(pyramid[2:])
            instance_x = self.instance_decoder(([p2] + ins_levels)[::-1])
        sem = self.semantic_head(semantic_x)
        return semantic_x, sem, self.ins_center(instance_x), self.ins_xy(instance_x)

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        _, sem, ctr, offsets = self._heads(x)
        out: dict[str, torch.Tensor] = {}
        if self.training:
            out["sem_logits"] = upsample4(sem)
            out["ctr_hmp"] = upsample4(ctr)
            out["offsets"] = upsample4(offsets)
            return out
        out["sem_logits"] = F.interpolate(
            sem, scale_factor=float(2**render_steps), mode="bilinear", align_corners=True
        )
        out["ctr_hmp"] = upsample4(ctr) if interpolate_ins else ctr
        out["offsets"] = upsample4(offsets) if interpolate_ins else offsets
        return out

    def quantized_parts(self) -> list[nn.Module]:
        return [self.encoder]

    def fuse_model(self) -> None:
        self.encoder.fuse_model()


class PanopticBiFPNPR(PanopticBiFPN):
    """Panoptic BiFPN with a PointRend semantic head (MitoNet_v1_mini, plugin BiFPN models).

    Takes every argument of :class:`PanopticBiFPN` plus num_fc=3, train_num_points=1024,
    oversample_ratio=3, importance_sample_ratio=0.75, subdivision_steps=2,
    subdivision_num_points=8192.
    """

    def __init__(
        self,
        num_fc: int = 3,
        train_num_points: int = 1024,
        oversample_ratio: int = 3,
        importance_sample_ratio: float = 0.75,
        subdivision_steps: int = 2,
        subdivision_num_points: int = 8192,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.semantic_pr = PointRendSemSegHead(
            self.fpn_dim,
            self.num_classes,
            num_fc,
            train_num_points,
            oversample_ratio,
            importance_sample_ratio,
            subdivision_steps,
            subdivision_num_points,
        )

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        semantic_x, sem, ctr, offsets = self._heads(x)
        out: dict[str, torch.Tensor] = {}
        if self.training:
            points, coords = self.semantic_pr.forward_train(sem, semantic_x)
            out["sem_logits"] = upsample4(sem)
            out["sem_points"] = points
            out["point_coords"] = coords
            out["ctr_hmp"] = upsample4(ctr)
            out["offsets"] = upsample4(offsets)
            return out
        out["sem_logits"] = self.semantic_pr.render(sem, semantic_x, render_steps)
        out["ctr_hmp"] = upsample4(ctr) if interpolate_ins else ctr
        out["offsets"] = upsample4(offsets) if interpolate_ins else offsets
        return out
