"""PanopticLoss (spec §11.5): bootstrapped cross-entropy on the semantic logits, MSE on the
centre heatmap, foreground-masked L1 on the offsets and a PointRend point loss.

    total = ce_weight * BootstrapCE + mse_weight * MSE + l1_weight * L1 + pr_weight * PointCE

Targets (a dict): `sem` (B, H, W) float 0/1 for one-class models or int64 class ids for
multi-class ones, `ctr_hmp` (B, 1, H, W) and `offsets` (B, 2, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BootstrapCE", "PanopticLoss", "point_sample"]


def point_sample(features: Tensor, coords: Tensor, mode: str = "bilinear") -> Tensor:
    """Sample (N, C, H, W) features at (N, P, 2) points given as (x, y) in [0, 1] (grid-cell
    centres, align_corners=False, the PointRend convention); returns (N, C, P)."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)
    return F.grid_sample(features, grid, mode=mode, align_corners=False).squeeze(3)


class BootstrapCE(nn.Module):
    """Per-pixel (binary) cross-entropy averaged over the `top_k_percent` largest values of
    the whole batch (plain mean when it is 1).

    Parameters
    ----------
    top_k_percent: fraction in (0, 1] of the largest pixel losses kept (default 0.2).
    """

    def __init__(self, top_k_percent: float = 0.2) -> None:
        super().__init__()
        if not 0 < top_k_percent <= 1:
            raise ValueError(f"top_k_percent must lie in (0, 1], got {top_k_percent!r}")
        self.top_k_percent = float(top_k_percent)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.shape[1] == 1:
            losses = F.binary_cross_entropy_with_logits(
                logits, target.unsqueeze(1).to(logits.dtype), reduction="none"
            )
        else:
            losses = F.cross_entropy(logits, target.long(), reduction="none")
        losses = losses.reshape(-1)
        if self.top_k_percent == 1.0:
            return losses.mean()
        k = max(1, int(self.top_k_percent * losses.numel()))
        return torch.topk(losses, k, sorted=False).values.mean()


class PanopticLoss(nn.Module):
    """Weighted sum of the four Panoptic-DeepLab-PointRend losses; returns (total, parts)
    where parts holds the float values of `ce`, `mse`, `l1`, `pointrend_ce`, `total_loss`.

    Parameters (defaults are empanada's, spec §9.2)
    ----------
    ce_weight: weight of the bootstrapped semantic cross-entropy (default 1).
    mse_weight: weight of the heatmap MSE (default 200).
    l1_weight: weight of the offsets L1 (default 0.01).
    pr_weight: weight of the PointRend point loss (default 1).
    top_k_percent: fraction of pixels kept by the bootstrapped CE (default 0.2).
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        mse_weight: float = 200.0,
        l1_weight: float = 0.01,
        pr_weight: float = 1.0,
        top_k_percent: float = 0.2,
    ) -> None:
        super().__init__()
        self.ce = BootstrapCE(top_k_percent)
        self.ce_weight = float(ce_weight)
        self.mse_weight = float(mse_weight)
        self.l1_weight = float(l1_weight)
        self.pr_weight = float(pr_weight)

    def forward(
        self, output: dict[str, Tensor], target: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        sem = target["sem"]
        ce = self.ce(output["sem_logits"], sem)
        mse = F.mse_loss(output["ctr_hmp"], target["ctr_hmp"].to(output["ctr_hmp"].dtype))
        fg = (sem > 0).unsqueeze(1).to(output["offsets"].dtype)
        n_fg = fg.sum()
        l1_map = (output["offsets"] - target["offsets"]).abs() * fg
        l1 = l1_map.sum() / n_fg if n_fg > 0 else l1_map.sum() * 0.0
        total = self.ce_weight * ce + self.mse_weight * mse + self.l1_weight * l1
        parts = {"ce": float(ce.detach()), "mse": float(mse.detach()), "l1": float(l1.detach())}
        if "sem_points" in output and self.pr_weight != 0:
            pts = output["sem_points"]
            lab = point_sample(
                sem.unsqueeze(1).to(torch.float32), output["point_coords"].float(), mode="nearest"
            )
            if pts.shape[1] == 1:
                pr = F.binary_cross_entropy_with_logits(pts, lab.to(pts.dtype))
            else:
                pr = F.cross_entropy(pts, lab.squeeze(1).long())
            total = total + self.pr_weight * pr
            parts["pointrend_ce"] = float(pr.detach())
        parts["total_loss"] = float(total.detach())
        return total, parts
