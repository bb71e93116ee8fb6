"""Panoptic-DeepLab with and without PointRend (spec §10.2, §10.4)."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import fuse_modules

from empanada_rs.models.blocks import (
    PanopticHead,
    conv_bn,
    fuse_conv_bn,
    fuse_separable,
    init_small_normal,
    separable_conv_bn,
    upsample4,
)
from empanada_rs.models.point_rend import PointRendSemSegHead
from empanada_rs.models.resnet import ResNetEncoder


class ASPPPooling(nn.Module):
    """Image-level branch: global average pool, 1x1 conv + ReLU (no BN), broadcast back."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.aspp_pooling = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(nin, nout, 1, bias=False), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y = self.aspp_pooling(x)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=True)


class ASPP(nn.Module):
    def __init__(
        self, nin: int, nout: int, atrous_rates: Sequence[int], dropout: float = 0.5
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [conv_bn(nin, nout, 1)]
        for rate in atrous_rates:
            branches.append(
                nn.Sequential(
                    nn.Conv2d(nin, nout, 3, padding=rate, dilation=rate, bias=False),
                    nn.BatchNorm2d(nout),
                    nn.ReLU(),
                )
            )
        branches.append(ASPPPooling(nin, nout))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * nout, nout, 1, bias=False),
            nn.BatchNorm2d(nout),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.cat = FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res: list[torch.Tensor] = []
        for conv in self.convs:
            res.append(conv(x))
        return self.project(self.cat.cat(res, dim=1))

    def fuse_model(self) -> None:
        for branch in self.convs:
            if isinstance(branch, ASPPPooling):
                fuse_modules(branch.aspp_pooling, ["1", "2"], inplace=True)
            else:
                fuse_conv_bn(branch)
        fuse_modules(self.project, ["0", "1", "2"], inplace=True)


class PanopticDeepLabDecoder(nn.Module):
    """ASPP on the deepest feature, then top-down fusion with projected low-level features."""

    def __init__(
        self,
        in_channels: int,
        decoder_channels: int,
        low_level_stages: Sequence[int],
        low_level_channels: Sequence[int],
        low_level_channels_project: Sequence[int],
        atrous_rates: Sequence[int],
        aspp_channels: int | None = None,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        aspp_channels = decoder_channels if aspp_channels is None else aspp_channels
        self.aspp = ASPP(in_channels, aspp_channels, atrous_rates, aspp_dropout)
        self.low_level_stages: list[int] = [int(s) for s in low_level_stages]
        project, fuse, cats = [], [], []
        running = aspp_channels
        for nin, nproj in zip(low_level_channels, low_level_channels_project, strict=True):
            project.append(conv_bn(nin, nproj, 1))
            fuse.append(separable_conv_bn(running + nproj, decoder_channels, 5))
            cats.append(FloatFunctional())
            running = decoder_channels
        self.project = nn.ModuleList(project)
        self.fuse = nn.ModuleList(fuse)
        self.cats = nn.ModuleList(cats)
        init_small_normal(self)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        x = self.aspp(pyramid[-1])
        for i, (proj, fuse, cat) in enumerate(zip(self.project, self.fuse, self.cats)):  # noqa: B905
            low = proj(pyramid[self.low_level_stages[i]])
            x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=True)
            x = fuse(cat.cat([x, low], dim=1))
        return x

    def fuse_model(self) -> None:
        self.aspp.fuse_model()
        for proj in self.project:
            fuse_conv_bn(proj)
        for fuse in self.fuse:
            fuse_separable(fuse)


class PanopticDeepLab(nn.Module):
    """Panoptic-DeepLab: ResNet encoder, semantic (+ instance) decoder, three heads.

    Eval forward follows the model contract (spec §2.2); ``sem_logits`` is the 1/4 map
    bilinearly upsampled by ``2**render_steps`` (no PointRend in this variant).

    Args:
        encoder: "resnet18", "resnet34" or "resnet50" (default "resnet50").
        num_classes: 1 for binary models, else n+1 (default 1).
        stage4_stride: 16 (dilated layer4) or 32 (default 16).
        decoder_channels: decoder and head width (default 256).
        low_level_stages: pyramid indices fused top-down (default (1,)).
        low_level_channels_project: projection widths per low-level stage (default (32,)).
        atrous_rates: ASPP dilations (default (2, 4, 6)).
        aspp_channels: ASPP width, None = decoder_channels (default None).
        aspp_dropout: dropout after the ASPP projection (default 0.5).
        ins_decoder: separate instance decoder (default True).
        ins_ratio: instance projection widths relative to the semantic ones (default 0.5).
        encoder_width: ResNet stem/base width, 64 = standard (default 64).
    """

    def __init__(
        self,
        encoder: str = "resnet50",
        num_classes: int = 1,
        stage4_stride: int = 16,
        decoder_channels: int = 256,
        low_level_stages: Sequence[int] = (1,),
        low_level_channels_project: Sequence[int] = (32,),
        atrous_rates: Sequence[int] = (2, 4, 6),
        aspp_channels: int | None = None,
        aspp_dropout: float = 0.5,
        ins_decoder: bool = True,
        ins_ratio: float = 0.5,
        encoder_width: int = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.decoder_channels = decoder_channels
        self.encoder = ResNetEncoder(encoder, encoder_width, stage4_stride)
        widths = self.encoder.widths
        low_channels = [widths[i - 1] for i in low_level_stages]
        self.semantic_decoder = PanopticDeepLabDecoder(
            widths[-1],
            decoder_channels,
            low_level_stages,
            low_channels,
            low_level_channels_project,
            atrous_rates,
            aspp_channels,
            aspp_dropout,
        )
        self.instance_decoder: PanopticDeepLabDecoder | None = None
        if ins_decoder:
            self.instance_decoder = PanopticDeepLabDecoder(
                widths[-1],
                decoder_channels,
                low_level_stages,
                low_channels,
                [int(c * ins_ratio) for c in low_level_channels_project],
                atrous_rates,
                aspp_channels,
                aspp_dropout,
            )
        self.semantic_head = PanopticHead(decoder_channels, num_classes)
        self.ins_center = PanopticHead(decoder_channels, 1)
        self.ins_xy = PanopticHead(decoder_channels, 2)
        # Identity in float; quantize_model swaps in Quant/DeQuant stubs at the boundary
        # between the quantized part (encoder, decoders, semantic and centre heads) and the
        # float part (offset head, PointRend).
        self.quant: nn.Module = nn.Identity()
        self.dequant: nn.Module = nn.Identity()

    def _heads(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Semantic features, coarse semantic logits, centre heatmap and offsets at 1/4."""
        pyramid = self.encoder(self.quant(x))
        semantic_x = self.semantic_decoder(pyramid)
        if self.instance_decoder is not None:
            instance_x = self.instance_decoder(pyramid)
        else:
            instance_x = semantic_x
        sem = self.dequant(self.semantic_head(semantic_x))
        ctr = self.dequant(self.ins_center(instance_x))
        offsets = self.ins_xy(self.dequant(instance_x))
        return self.dequant(semantic_x), sem, ctr, offsets

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
        scale = float(2**render_steps)
        out["sem_logits"] = F.interpolate(
            sem, scale_factor=scale, mode="bilinear", align_corners=True
        )
        out["ctr_hmp"] = upsample4(ctr) if interpolate_ins else ctr
        out["offsets"] = upsample4(offsets) if interpolate_ins else offsets
        return out

    def quantized_parts(self) -> list[nn.Module]:
        """Submodules that run quantized (spec §8.2)."""
        parts: list[nn.Module] = [self.encoder, self.semantic_decoder]
        if self.instance_decoder is not None:
            parts.append(self.instance_decoder)
        return parts + [self.semantic_head, self.ins_center]

    def fuse_model(self) -> None:
        self.encoder.fuse_model()
        self.semantic_decoder.fuse_model()
        if self.instance_decoder is not None:
            self.instance_decoder.fuse_model()
        self.semantic_head.fuse_model()
        self.ins_center.fuse_model()
        self.ins_xy.fuse_model()


class PanopticDeepLabPR(PanopticDeepLab):
    """Panoptic-DeepLab with a PointRend semantic head (the plugin's "PanopticDeepLabPR").

    Takes every argument of :class:`PanopticDeepLab` plus the PointRend ones:
    num_fc=3, train_num_points=1024, oversample_ratio=3, importance_sample_ratio=0.75,
    subdivision_steps=2 (unused at inference: ``render_steps`` decides),
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
            self.decoder_channels,
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
