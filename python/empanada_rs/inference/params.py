"""The inference parameters the 2D and 3D engines share: one name, one default and one
check each (design §3: one set of defaults everywhere, the widgets' of spec §3.10/§12.2-3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.inference.runner import NormalizeMode, render_steps_for


def check_int(obj: Any, name: str, lo: int, hi: int | None = None) -> int:
    """``obj.name`` as an int in ``[lo, hi]``, or :class:`InvalidArgumentError`."""
    v = getattr(obj, name)
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, np.integer))
        or v < lo
        or (hi is not None and v > hi)
    ):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise InvalidArgumentError(f"{name}: {v!r} must be an integer {bound}")
    return int(v)


def check_number(obj: Any, name: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``obj.name`` as a finite number in ``[lo, hi]``, or :class:`InvalidArgumentError`."""
    v = getattr(obj, name)
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float, np.integer, np.floating))
        or not math.isfinite(v)
        or not lo <= v <= hi
    ):
        bound = "finite" if math.isinf(lo) and math.isinf(hi) else f"in [{lo:g}, {hi:g}]"
        raise InvalidArgumentError(f"{name}: {v!r} must be a {bound} number")
    return float(v)


@dataclass(frozen=True)
class InferenceParams:
    """Parameters of every engine, with the napari widgets' defaults.

    - ``downsampling`` (1): power of two 1..64; images are shrunk by it (bilinear, like
      OpenCV's INTER_LINEAR) before the model and the output comes back at full size
      (``render_steps = 2 + log2 s``, spec §3.1).
    - ``confidence_thr`` (0.5): semantic confidence of one-channel models (§3.2).
    - ``center_confidence_thr`` (0.1): centre heatmap threshold; the heatmap is a raw
      regression (§2.2), so any finite value is accepted.
    - ``center_min_distance`` (3): the centre NMS window, in cells of the 1/4-resolution
      heatmap ("Centers Min Distance", §3.3).
    - ``fine_boundaries`` (False): group pixels at the input resolution instead of 1/4.
    - ``semantic_only`` (False): no instances; every class is one region.
    - ``fill_holes`` (False): fill the holes of each object's own mask (design §3).
    - ``label_divisor`` (10000): ids are ``class * label_divisor + instance`` ("Max
      objects per class"); more instances raise ``LabelOverflowError``.
    - ``batch_size``: model inputs per forward pass.
    - ``normalize`` ("robust"): intensity range of non-uint8 integer images (design §3);
      "parity" divides by the dtype maximum like the reference. uint8 is the same in both.
    """

    downsampling: int = 1
    confidence_thr: float = 0.5
    center_confidence_thr: float = 0.1
    center_min_distance: int = 3
    fine_boundaries: bool = False
    semantic_only: bool = False
    fill_holes: bool = False
    label_divisor: int = 10000
    batch_size: int = 1
    normalize: NormalizeMode = "robust"

    def __post_init__(self) -> None:
        render_steps_for(check_int(self, "downsampling", 1))
        check_number(self, "confidence_thr", 0.0, 1.0)
        check_number(self, "center_confidence_thr")
        check_int(self, "center_min_distance", 1)
        check_int(self, "label_divisor", 2, 2**31 - 1)
        check_int(self, "batch_size", 1, 4096)
        if self.normalize not in ("robust", "parity"):
            raise InvalidArgumentError(
                f"normalize: {self.normalize!r} is not a mode; use 'robust' or 'parity'"
            )

    def core_kwargs(self) -> dict[str, Any]:
        """The 2D post-processing keywords of the Rust core (``panoptic_2d``,
        ``StackPipeline``) these parameters stand for."""
        return {
            "label_divisor": self.label_divisor,
            "confidence_thr": self.confidence_thr,
            "nms_threshold": self.center_confidence_thr,
            "nms_kernel": self.center_min_distance,
            "upsampling": self.downsampling,
        }
