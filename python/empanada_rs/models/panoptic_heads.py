"""What Panoptic-DeepLab and Panoptic BiFPN share after their decoders (spec §2.2, §10.4).

:class:`PanopticModel` builds the three heads and turns their 1/4 outputs into the model
contract; a subclass only defines ``_heads``.  :class:`PointRendVariant` adds the PointRend
semantic head of the "...PR" architectures.  Module names (``semantic_head``, ``ins_center``,
``ins_xy``, ``semantic_pr``) are those of empanada's model files.
"""

import torch
import torch.nn.functional as F
from torch import nn

from empanada_rs.models.blocks import PanopticHead, upsample4
from empanada_rs.models.point_rend import PointRendSemSegHead


class PanopticModel(nn.Module):
    """Base of the panoptic architectures: heads, quant/dequant boundary and ``forward``.

    Subclasses set ``num_classes`` and ``head_channels`` (the width of the decoder output),
    call :meth:`_build_heads` once their decoders exist (construction order fixes the random
    initialisation) and implement ``_heads``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 1
        self.head_channels = 0
        # set to a PointRendSemSegHead by PointRendVariant; None = bilinear upsampling
        self.semantic_pr: PointRendSemSegHead | None = None

    def _build_heads(self) -> None:
        self.semantic_head = PanopticHead(self.head_channels, self.num_classes)
        self.ins_center = PanopticHead(self.head_channels, 1)
        self.ins_xy = PanopticHead(self.head_channels, 2)
        # Identity in float; quantize_model swaps in Quant/DeQuant stubs at the boundary of
        # the quantized part (see each subclass's quantized_parts).
        self.quant: nn.Module = nn.Identity()
        self.dequant: nn.Module = nn.Identity()

    def _heads(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Semantic features, coarse semantic logits, centre heatmap and offsets at 1/4."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        semantic_x, sem, ctr, offsets = self._heads(x)
        out: dict[str, torch.Tensor] = {}
        if self.training:
            out["sem_logits"] = upsample4(sem)
            if self.semantic_pr is not None:
                points, coords = self.semantic_pr.forward_train(sem, semantic_x)
                out["sem_points"] = points
                out["point_coords"] = coords
            out["ctr_hmp"] = upsample4(ctr)
            out["offsets"] = upsample4(offsets)
            return out
        if self.semantic_pr is not None:
            out["sem_logits"] = self.semantic_pr.render(sem, semantic_x, render_steps)
        else:
            out["sem_logits"] = F.interpolate(
                sem, scale_factor=float(2**render_steps), mode="bilinear", align_corners=True
            )
        out["ctr_hmp"] = upsample4(ctr) if interpolate_ins else ctr
        out["offsets"] = upsample4(offsets) if interpolate_ins else offsets
        return out


class PointRendVariant(PanopticModel):
    """Adds the PointRend semantic head; put it first among the bases of a "...PR" class.

    Args:
        num_fc: point-head MLP depth (default 3).
        train_num_points: points sampled per image in training (default 1024).
        oversample_ratio: candidate points per sampled one in training (default 3).
        importance_sample_ratio: share of the most uncertain candidates kept (default 0.75).
        subdivision_steps: x2 steps of a plain ``semantic_pr(...)`` call; the model's
            ``render_steps`` decides at inference (default 2).
        subdivision_num_points: points re-predicted per step at inference (default 8192).
        **kwargs: the arguments of the architecture (the next base class).
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
        super().__init__(**kwargs)
        self.semantic_pr = PointRendSemSegHead(
            self.head_channels,
            self.num_classes,
            num_fc,
            train_num_points,
            oversample_ratio,
            importance_sample_ratio,
            subdivision_steps,
            subdivision_num_points,
        )
