"""Model execution shared by the 2D and 3D engines: intensity normalisation, padding to
the model's ``padding_factor``, batched forward passes and logits -> probabilities.

Everything after the model (post-processing) happens in the Rust core; this module only
turns images into model inputs and model outputs into C-contiguous float32 numpy arrays
with the conventions of :func:`empanada_rs.panoptic_2d` and
:class:`empanada_rs.StackPipeline` (padded maps; the core crops)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from empanada_rs.errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

NormalizeMode = Literal["robust", "parity"]

#: Percentiles of the robust intensity range (design §3: non-uint8 integer images are
#: rescaled by their data range, not their dtype maximum, so uint16 data is not blank).
ROBUST_PERCENTILES = (0.5, 99.5)
#: Voxels sampled to estimate the robust range of a large volume.
ROBUST_SAMPLE = 1 << 22


@dataclass
class ModelHandle:
    """A loaded model ready for inference.

    ``module`` follows the model contract of spec §2.2 (``forward(x, render_steps,
    interpolate_ins)`` returning ``sem_logits``, ``ctr_hmp``, ``offsets``); ``config`` is
    the model's YAML config as a mapping (spec §9.2: ``norms``, ``padding_factor``,
    ``thing_list``, ``labels``, ``class_names`` ...)."""

    module: torch.nn.Module
    config: Mapping[str, Any]
    name: str = "model"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    quantized: bool = False

    @property
    def padding_factor(self) -> int:
        return int(self.config.get("padding_factor", 16))

    @property
    def norms(self) -> tuple[float, float]:
        norms = self.config.get("norms") or {}
        return float(norms.get("mean", 0.0)), float(norms.get("std", 1.0))

    @property
    def thing_list(self) -> list[int]:
        return [int(c) for c in self.config.get("thing_list", [1])]

    @property
    def labels(self) -> list[int]:
        return [int(c) for c in self.config.get("labels", self.thing_list)]

    @property
    def class_names(self) -> dict[int, str]:
        names = self.config.get("class_names") or {}
        return {int(k): str(v) for k, v in names.items()} or {c: f"class{c}" for c in self.labels}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; an explicit device that is not
    available raises :class:`InvalidArgumentError` naming what is."""
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InvalidArgumentError(
            f"device: {device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from e
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0 or (dev.index is not None and dev.index >= n):
            raise InvalidArgumentError(
                f"device: {device!r} is not available here ({n} CUDA device(s)); "
                "use 'cpu' or 'auto'"
            )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidArgumentError("device: 'mps' is not available here; use 'cpu' or 'auto'")
    return dev


def intensity_range(image: npt.NDArray[Any], mode: NormalizeMode = "robust") -> tuple[float, float]:
    """The intensity interval mapped onto [0, 1] before the model's ``norms`` apply.

    - uint8: (0, 255) in both modes (the reference's behaviour).
    - other integer dtypes: ``"parity"`` uses (0, dtype max) like the reference (which
      blanks out uint16 data that uses a small part of its range); ``"robust"`` (default)
      uses the 0.5-99.5 percentiles of the data, estimated on a strided sample of big arrays.
    - floats: values in [0, 1] are fractions, values in [0, 255] are 8-bit intensities;
      anything else is ambiguous and raises, asking the caller to rescale.

    Compute it once per volume so every slice of a stack is normalised alike."""
    arr = np.asarray(image)
    if mode not in ("robust", "parity"):
        raise InvalidArgumentError(f"normalize: {mode!r} is not a mode; use 'robust' or 'parity'")
    if arr.size == 0:
        raise ShapeError("image: the image is empty; pass an image with at least one pixel")
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise DTypeError(
            f"image: dtype {arr.dtype} is not an intensity image; pass an integer or float array"
        )
    if arr.dtype == np.uint8:
        return 0.0, 255.0
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise NonFiniteError("image: contains NaN or Inf; replace them before inference")
        if lo >= 0.0 and hi <= 1.0:
            return 0.0, 1.0
        if lo >= 0.0 and hi <= 255.0:
            return 0.0, 255.0
        raise InvalidArgumentError(
            f"image: float values span [{lo:g}, {hi:g}], outside both [0, 1] and [0, 255]; "
            "rescale the image to one of those ranges or pass an integer image"
        )
    if mode == "parity":
        return 0.0, float(np.iinfo(arr.dtype).max)
    flat = arr.reshape(-1)
    step = max(1, flat.size // ROBUST_SAMPLE)
    lo, hi = (float(v) for v in np.percentile(flat[::step], ROBUST_PERCENTILES))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def normalize(
    image: npt.NDArray[Any], value_range: tuple[float, float], norms: tuple[float, float]
) -> npt.NDArray[np.float32]:
    """``((x - lo) / (hi - lo) - mean) / std`` in float32; with ``(lo, hi) = (0, M)`` this
    is the reference's ``(x - mean*M) / (std*M)`` (spec §2.1). Values outside the range
    are clipped to it (a no-op for the dtype and float ranges, which hold every value)."""
    lo, hi = value_range
    mean, std = norms
    x = np.asarray(image, dtype=np.float32)
    x = (x - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    np.clip(x, 0.0, 1.0, out=x)
    x -= np.float32(mean)
    x *= np.float32(1.0 / std)
    return x


def padded_size(size: int, factor: int) -> int:
    """Smallest multiple of ``factor`` that is >= ``size``."""
    return -(-size // factor) * factor


@dataclass
class ModelOutputs:
    """One image's model outputs as the Rust core takes them (C-contiguous float32):
    ``sem`` (C, H', W') probabilities, ``ctr_hmp`` (h, w), ``offsets`` (2, h, w); all at
    the padded size (the core crops)."""

    sem: npt.NDArray[np.float32]
    ctr_hmp: npt.NDArray[np.float32]
    offsets: npt.NDArray[np.float32]


def logits_to_prob(sem_logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for one channel, softmax over channels otherwise (spec §2.2)."""
    if sem_logits.shape[1] == 1:
        return torch.sigmoid(sem_logits)
    return torch.softmax(sem_logits, dim=1)


class ModelRunner:
    """Runs a :class:`ModelHandle` on batches of normalised 2D images of one size."""

    def __init__(self, handle: ModelHandle) -> None:
        self.handle = handle
        handle.module.eval()

    def pad_batch(self, images: Sequence[npt.NDArray[np.float32]]) -> torch.Tensor:
        """Stack normalised (H, W) images into (B, 1, Hp, Wp), zero-padded at the
        bottom/right to multiples of ``padding_factor`` (spec §2.1)."""
        if not images:
            raise ShapeError("images: the batch is empty; pass at least one image")
        h, w = images[0].shape
        for im in images:
            if im.shape != (h, w):
                raise ShapeError(
                    f"images: a batch needs images of one size, got {im.shape} and {(h, w)}"
                )
        f = self.handle.padding_factor
        hp, wp = padded_size(h, f), padded_size(w, f)
        batch = np.zeros((len(images), 1, hp, wp), dtype=np.float32)
        for i, im in enumerate(images):
            batch[i, 0, :h, :w] = im
        return torch.from_numpy(batch)

    @torch.inference_mode()
    def predict(
        self,
        images: Sequence[npt.NDArray[np.float32]],
        *,
        render_steps: int = 2,
        interpolate_ins: bool = True,
    ) -> list[ModelOutputs]:
        """Model outputs for each image of the batch, probabilities already applied."""
        x = self.pad_batch(images).to(self.handle.device)
        out = self.handle.module(x, render_steps, interpolate_ins)
        for key in ("sem_logits", "ctr_hmp", "offsets"):
            if key not in out:
                raise InvalidArgumentError(
                    f"model: output {key!r} is missing; the model must return sem_logits, "
                    "ctr_hmp and offsets (spec §2.2)"
                )
        sem = logits_to_prob(out["sem_logits"].float()).cpu().numpy()
        ctr = out["ctr_hmp"].float().cpu().numpy()
        offs = out["offsets"].float().cpu().numpy()
        return [
            ModelOutputs(
                sem=np.ascontiguousarray(sem[i]),
                ctr_hmp=np.ascontiguousarray(ctr[i, 0]),
                offsets=np.ascontiguousarray(offs[i]),
            )
            for i in range(sem.shape[0])
        ]


def render_steps_for(downsampling: int) -> int:
    """``2 + log2(s)`` PointRend steps return logits at the original resolution (spec §3.1)."""
    if downsampling < 1 or downsampling & (downsampling - 1):
        raise InvalidArgumentError(
            f"downsampling: {downsampling} is not a power of two; use 1, 2, 4, ..., 64"
        )
    if downsampling > 64:
        raise InvalidArgumentError(f"downsampling: {downsampling} exceeds 64; use 1, 2, 4, ..., 64")
    return 2 + downsampling.bit_length() - 1
