"""PointRend semantic refinement (spec §10.4).

Inference: upsample the coarse 1/4 logits x2 per step, re-predict the ``min(N, H*W)`` most
uncertain grid points from [fine features, coarse logits] sampled there, write them back.
Training: sample ``train_num_points`` points biased towards uncertain ones.
"""

import torch
import torch.nn.functional as F
from torch import nn


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Higher = less certain: ``-|logit|`` for one channel, second-best minus best otherwise."""
    if logits.size(1) == 1:
        return -torch.abs(logits)
    top2 = torch.topk(logits, k=2, dim=1)[0]
    return (top2[:, 1] - top2[:, 0]).unsqueeze(1)


def point_sample(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``features [N,C,H,W]`` at ``coords [N,P,2]`` (x, y in [0, 1])."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)
    return F.grid_sample(features, grid, mode="bilinear", align_corners=False).squeeze(3)


def uncertain_grid_points(
    uncertainty_map: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices and cell-centre coordinates (x, y in [0, 1]) of the most uncertain cells."""
    n, _, h, w = uncertainty_map.shape
    k = min(h * w, num_points)
    idx = torch.topk(uncertainty_map.reshape(n, h * w), k=k, dim=1)[1]
    xs = ((idx % w).to(torch.float32) + 0.5) / float(w)
    ys = (torch.div(idx, w, rounding_mode="floor").to(torch.float32) + 0.5) / float(h)
    return idx, torch.stack([xs, ys], dim=2)


class PointHead(nn.Module):
    """MLP of 1x1 Conv1d layers; the coarse logits are concatenated to every layer's input."""

    def __init__(self, nin: int, num_classes: int, fc_dim: int, num_fc: int) -> None:
        super().__init__()
        layers = []
        dim_in = nin + num_classes
        for _ in range(num_fc):
            conv = nn.Conv1d(dim_in, fc_dim, kernel_size=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers.append(nn.Sequential(conv, nn.ReLU()))
            dim_in = fc_dim + num_classes
        self.fc_layers = nn.ModuleList(layers)
        self.predictor = nn.Conv1d(dim_in, num_classes, kernel_size=1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        x = torch.cat([fine, coarse], dim=1)
        for layer in self.fc_layers:
            x = torch.cat([layer(x), coarse], dim=1)
        return self.predictor(x)


class PointRendSemSegHead(nn.Module):
    def __init__(
        self,
        nin: int,
        num_classes: int,
        num_fc: int = 3,
        train_num_points: int = 1024,
        oversample_ratio: int = 3,
        importance_sample_ratio: float = 0.75,
        subdivision_steps: int = 2,
        subdivision_num_points: int = 8192,
    ) -> None:
        super().__init__()
        self.train_num_points = train_num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.subdivision_steps = subdivision_steps
        self.subdivision_num_points = subdivision_num_points
        self.point_head = PointHead(nin, num_classes, nin, num_fc)

    def training_points(self, coarse: torch.Tensor) -> torch.Tensor:
        """Oversample random points, keep the most uncertain share plus uniform random ones."""
        n = coarse.shape[0]
        n_sampled = self.train_num_points * self.oversample_ratio
        n_uncertain = int(self.importance_sample_ratio * self.train_num_points)
        n_random = self.train_num_points - n_uncertain
        coords = torch.rand(n, n_sampled, 2, device=coarse.device)
        scores = uncertainty(point_sample(coarse, coords))[:, 0, :]
        keep = torch.topk(scores, k=n_uncertain, dim=1)[1]
        coords = torch.gather(coords, 1, keep.unsqueeze(2).expand(-1, -1, 2))
        if n_random > 0:
            coords = torch.cat([coords, torch.rand(n, n_random, 2, device=coarse.device)], dim=1)
        return coords

    def forward_train(
        self, coarse: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Point logits ``[N,C,P]`` and their coordinates ``[N,P,2]`` for the training loss."""
        with torch.no_grad():
            coords = self.training_points(coarse)
        logits = self.point_head(point_sample(features, coords), point_sample(coarse, coords))
        return logits, coords

    def render(self, coarse: torch.Tensor, features: torch.Tensor, steps: int) -> torch.Tensor:
        """Refine ``coarse`` logits over ``steps`` x2 subdivisions (0 = the coarse map)."""
        logits = coarse.clone()
        for _ in range(steps):
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
            idx, coords = uncertain_grid_points(uncertainty(logits), self.subdivision_num_points)
            point_logits = self.point_head(
                point_sample(features, coords), point_sample(coarse, coords)
            )
            n, c, h, w = logits.shape
            logits = (
                logits.reshape(n, c, h * w)
                .scatter(2, idx.unsqueeze(1).expand(-1, c, -1), point_logits)
                .view(n, c, h, w)
            )
        return logits

    def forward(self, coarse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.render(coarse, features, self.subdivision_steps)
