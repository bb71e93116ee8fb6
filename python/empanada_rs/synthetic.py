"""Generated stand-ins for EM data and model outputs, so tests, benchmarks and the demo run
offline and on any size.

`model_outputs_2d` draws elliptical organelles and returns what a Panoptic-DeepLab model
would emit for them: semantic probabilities, a centre heatmap and centre offsets, all
noisy, at the fine or the coarse (1/4) grid. `em_image_2d` renders a matching greyscale
image (textured cytoplasm, dark membranes, organelles with cristae-like stripes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ModelOutputs2d", "em_image_2d", "model_outputs_2d"]


@dataclass(frozen=True)
class ModelOutputs2d:
    """What a model emits for one image, plus the truth it was drawn from."""

    sem: np.ndarray  # (C, H, W) float32 probabilities
    ctr_hmp: np.ndarray  # (h, w) float32 raw heatmap
    offsets: np.ndarray  # (2, h, w) float32, (dy, dx) in input pixels
    instances: np.ndarray  # (H, W) int32 ground-truth instance ids 1..N
    classes: np.ndarray  # (H, W) int32 ground-truth class per pixel


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] by upsampling a coarse random grid (no SciPy needed)."""
    h, w = shape
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    ys = np.linspace(0, gh - 1.001, h, dtype=np.float32)
    xs = np.linspace(0, gw - 1.001, w, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g = grid
    top = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    bot = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    out = top * (1 - fy) + bot * fy
    return np.clip(out / 2.0, -1.0, 1.0)


def model_outputs_2d(
    shape: tuple[int, int],
    *,
    n_objects: int = 40,
    n_classes: int = 1,
    coarse: bool = True,
    radius: tuple[float, float] = (6.0, 30.0),
    noise: float = 0.15,
    seed: int = 0,
) -> ModelOutputs2d:
    """Model outputs for `n_objects` random ellipses of `n_classes` thing classes.

    `n_classes == 1` gives a single foreground-probability channel (C = 1), more gives a
    softmax over background + classes (C = n_classes + 1). With `coarse`, the heatmap and
    offsets are at 1/4 of `shape` (which must then be a multiple of 4), as a model called
    with `interpolate_ins=False` returns them.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    if coarse and (h % 4 or w % 4):
        raise ValueError(f"shape {shape}: a coarse grid needs both sides divisible by 4")
    instances = np.zeros(shape, np.int32)
    classes = np.zeros(shape, np.int32)
    centres = []
    for i in range(1, n_objects + 1):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(*radius, size=2)
        theta = rng.uniform(0, np.pi)
        cls = rng.integers(1, n_classes + 1)
        # Work in the object's own window so the cost is per object, not per image.
        r = int(np.ceil(max(ry, rx))) + 1
        y0, y1 = max(0, int(cy) - r), min(h, int(cy) + r + 1)
        x0, x1 = max(0, int(cx) - r), min(w, int(cx) + r + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        c, s = np.cos(theta), np.sin(theta)
        dy, dx = yy - cy, xx - cx
        u = (c * dx + s * dy) / rx
        v = (-s * dx + c * dy) / ry
        win = instances[y0:y1, x0:x1]
        inside = ((u * u + v * v) <= 1.0) & (win == 0)  # earlier objects stay on top
        if not inside.any():
            continue
        win[inside] = i
        classes[y0:y1, x0:x1][inside] = cls
        cyx = np.argwhere(inside).mean(axis=0) + (y0, x0)
        centres.append((i, float(cyx[0]), float(cyx[1]), float(min(ry, rx))))

    # Semantic probabilities: a clean one-hot blurred by smooth noise, then normalised.
    logits = np.zeros((n_classes + 1, h, w), np.float32)
    for ch in range(n_classes + 1):
        logits[ch] = 4.0 * (classes == ch) + 2.0 * noise * 4 * _smooth_noise(rng, shape, 16)
        logits[ch] += noise * rng.standard_normal(shape).astype(np.float32)
    if n_classes == 1:
        sem = 1.0 / (1.0 + np.exp(-(logits[1] - logits[0])))[None]
    else:
        e = np.exp(logits - logits.max(axis=0, keepdims=True))
        sem = e / e.sum(axis=0, keepdims=True)
    sem = sem.astype(np.float32)

    # Heatmap: a Gaussian per centre; offsets: vector to the owning centre (noisy). Both are
    # drawn on the coarse grid; fine outputs are its x4 bilinear upsampling, as in the model.
    if not coarse and (h % 4 or w % 4):
        raise ValueError(f"shape {shape}: both sides must be divisible by 4")
    step = 4
    gh, gw = h // step, w // step
    ctr = np.zeros((gh, gw), np.float32)
    offsets = np.zeros((2, gh, gw), np.float32)
    inst_grid = instances[::step, ::step]
    for _, cy, cx, r in centres:
        sigma = max(3.0, 0.5 * r)  # peaks as wide as the object's short half-axis
        reach = int(np.ceil(3 * sigma / step))
        gy0, gx0 = max(0, int(cy / step) - reach), max(0, int(cx / step) - reach)
        gy1, gx1 = min(gh, int(cy / step) + reach + 1), min(gw, int(cx / step) + reach + 1)
        gy, gx = np.mgrid[gy0:gy1, gx0:gx1].astype(np.float32) * step
        g = np.exp(-((gy - cy) ** 2 + (gx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)
        np.maximum(ctr[gy0:gy1, gx0:gx1], g, out=ctr[gy0:gy1, gx0:gx1])
    owner = inst_grid > 0
    cy_of = np.zeros(n_objects + 1, np.float32)
    cx_of = np.zeros(n_objects + 1, np.float32)
    for i, cy, cx, _ in centres:
        cy_of[i], cx_of[i] = cy, cx
    gy, gx = np.nonzero(owner)
    ids = inst_grid[owner]
    offsets[0][owner] = cy_of[ids] - gy * step
    offsets[1][owner] = cx_of[ids] - gx * step
    ctr += noise * 0.05 * rng.standard_normal(ctr.shape).astype(np.float32)
    offsets += noise * 4 * rng.standard_normal(offsets.shape).astype(np.float32)
    if not coarse:
        ctr = _upsample4_align_corners(ctr)
        offsets = np.stack([_upsample4_align_corners(o) for o in offsets])
    return ModelOutputs2d(
        sem=np.ascontiguousarray(sem),
        ctr_hmp=np.ascontiguousarray(ctr, dtype=np.float32),
        offsets=np.ascontiguousarray(offsets, dtype=np.float32),
        instances=instances,
        classes=classes,
    )


def _upsample4_align_corners(a: np.ndarray) -> np.ndarray:
    """x4 bilinear upsampling with align_corners=True (what the model does for fine output)."""
    h, w = a.shape

    def coords(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.linspace(0.0, n - 1.0, 4 * n) if n > 1 else np.zeros(4 * n)
        lo = np.minimum(pos.astype(int), max(n - 2, 0))
        return lo, np.minimum(lo + 1, n - 1), (pos - lo).astype(np.float32)

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return (top * (1 - fy[:, None]) + bot * fy[:, None]).astype(np.float32)


def em_image_2d(outputs: ModelOutputs2d, *, seed: int = 0) -> np.ndarray:
    """A uint8 EM-like rendering of the ground truth in `outputs` (for pictures and demos)."""
    rng = np.random.default_rng(seed)
    h, w = outputs.instances.shape
    img = 150 + 25 * _smooth_noise(rng, (h, w), 8) + 12 * rng.standard_normal((h, w))
    inside = outputs.instances > 0
    yy, xx = np.mgrid[0:h, 0:w]
    cristae = 0.5 + 0.5 * np.sin((yy + xx) / 2.5)
    img = np.where(inside, 95 + 30 * cristae + 8 * rng.standard_normal((h, w)), img)
    # Dark membranes on object borders.
    edge = np.zeros_like(inside)
    edge[1:, :] |= outputs.instances[1:, :] != outputs.instances[:-1, :]
    edge[:, 1:] |= outputs.instances[:, 1:] != outputs.instances[:, :-1]
    img = np.where(edge, 45, img)
    return np.clip(img, 0, 255).astype(np.uint8)
