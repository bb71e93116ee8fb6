"""Generated stand-ins for EM data and model outputs, so tests, benchmarks and the demo run
offline and on any size.

`model_outputs_2d` draws elliptical organelles and returns what a Panoptic-DeepLab model
would emit for them: semantic probabilities, a centre heatmap and centre offsets, all
noisy, at the fine or the coarse (1/4) grid. `em_image_2d` renders a matching greyscale
image (textured cytoplasm, dark membranes, organelles with cristae-like stripes).
`model_outputs_3d` does the same for every slice of a volume of ellipsoids (some branched,
so objects split and merge from slice to slice), as a stack pipeline receives them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ModelOutputs2d",
    "ModelOutputs3d",
    "em_image_2d",
    "model_outputs_2d",
    "model_outputs_3d",
    "model_outputs_3d_planes",
]


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
    # Interpolate along x on the coarse rows first, then gather rows: the same float32
    # operations per output pixel as interpolating the gathered grid, on gh rows, not h.
    along_x = grid[:, x0] * (1 - fx) + grid[:, x0 + 1] * fx
    top, bot = along_x[y0], along_x[y0 + 1]
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


@dataclass(frozen=True)
class ModelOutputs3d:
    """Per-slice model outputs along one plane of a volume, plus the truth."""

    plane: str
    sem: np.ndarray  # (N, C, Hp, Wp) float32, slices padded to a multiple of `pad`
    ctr_hmp: np.ndarray  # (N, hp, wp) float32
    offsets: np.ndarray  # (N, 2, hp, wp) float32
    instances: np.ndarray  # (D, H, W) int32 ground-truth ids 1..N
    classes: np.ndarray  # (D, H, W) int32 ground-truth class per voxel

    def __len__(self) -> int:
        return len(self.sem)

    def slice(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(sem, ctr_hmp, offsets)` of slice `i`, as `StackPipeline.push` takes them."""
        return self.sem[i], self.ctr_hmp[i], self.offsets[i]


# exp(-_GAUSS_CUT) is below half the smallest float32 subnormal, so it casts to exactly 0.
_GAUSS_CUT = 110.0


def _gauss_window(
    cy: float, cx: float, sigma: float, grid_shape: tuple[int, int]
) -> tuple[slice, slice]:
    """Coarse-grid cells (step 4) within which a Gaussian at (cy, cx) is nonzero in float32."""
    reach = np.sqrt(2.0 * _GAUSS_CUT) * sigma + 8.0  # pixels, with a margin of two cells
    gh, gw = grid_shape
    y0 = min(gh, max(0, int(np.floor((cy - reach) / 4))))
    y1 = min(gh, max(0, int(np.ceil((cy + reach) / 4)) + 1))
    x0 = min(gw, max(0, int(np.floor((cx - reach) / 4))))
    x1 = min(gw, max(0, int(np.ceil((cx + reach) / 4)) + 1))
    return slice(y0, y1), slice(x0, x1)


_AXIS = {"xy": 0, "xz": 1, "yz": 2}


def model_outputs_3d(
    shape: tuple[int, int, int],
    plane: str = "xy",
    n_objects: int = 20,
    *,
    n_classes: int = 1,
    radius: tuple[float, float] = (3.0, 12.0),
    branch_fraction: float = 0.3,
    empty_slices: tuple[int, ...] = (),
    noise: float = 0.15,
    pad: int = 16,
    seed: int = 0,
) -> ModelOutputs3d:
    """Coarse-grid model outputs for every slice of a `(D, H, W)` volume along `plane`.

    The volume holds `n_objects` random ellipsoids of `n_classes` thing classes; a
    `branch_fraction` of them get a second, offset ellipsoid with the same id, so one
    object appears as two pieces in some slices and one in others. Every piece has its own
    centre in each slice it crosses (as a model sees it). Slices are padded with
    background to a multiple of `pad` (which must be a multiple of 4) like the engine pads
    images; the pipeline crops back. Slices listed in `empty_slices` are blank.
    """
    return model_outputs_3d_planes(
        shape,
        (plane,),
        n_objects,
        n_classes=n_classes,
        radius=radius,
        branch_fraction=branch_fraction,
        empty_slices=empty_slices,
        noise=noise,
        pad=pad,
        seed=seed,
    )[plane]


def model_outputs_3d_planes(
    shape: tuple[int, int, int],
    planes: tuple[str, ...] = ("xy", "xz", "yz"),
    n_objects: int = 20,
    *,
    n_classes: int = 1,
    radius: tuple[float, float] = (3.0, 12.0),
    branch_fraction: float = 0.3,
    empty_slices: tuple[int, ...] = (),
    noise: float = 0.15,
    pad: int = 16,
    seed: int = 0,
) -> dict[str, ModelOutputs3d]:
    """`{plane: model_outputs_3d(shape, plane, ...)}` for each of `planes`, same arguments.

    Equal to calling `model_outputs_3d` once per plane, but the volume is drawn once (the
    planes share its `instances` and `classes` arrays: do not write to them).
    """
    if pad % 4:
        raise ValueError(f"pad={pad}: must be a multiple of 4 for the coarse grid")
    for plane in planes:
        if plane not in _AXIS:
            raise ValueError(f"plane {plane!r}: use 'xy', 'xz' or 'yz'")
    rng = np.random.default_rng(seed)
    instances, classes, parts, n_parts = _draw_volume(
        shape, n_objects, n_classes, radius, branch_fraction, rng
    )
    # Each plane's slice noise continues from the generator's state after the volume, as
    # a separate call per plane would.
    after_volume = rng.bit_generator.state
    out = {}
    for plane in planes:
        rng.bit_generator.state = after_volume
        out[plane] = _plane_outputs(
            plane, instances, classes, parts, n_parts, n_classes, empty_slices, noise, pad, rng
        )
    return out


def _draw_volume(
    shape: tuple[int, int, int],
    n_objects: int,
    n_classes: int,
    radius: tuple[float, float],
    branch_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Ellipsoid instances, classes and per-ellipsoid part ids of the volume, and n_parts."""
    d, h, w = shape
    instances = np.zeros(shape, np.int32)
    classes = np.zeros(shape, np.int32)
    parts = np.zeros(shape, np.int32)  # one id per ellipsoid, for the per-piece centres
    n_parts = 0
    for i in range(1, n_objects + 1):
        cls = int(rng.integers(1, n_classes + 1))
        centre = rng.uniform((0, 0, 0), (d, h, w))
        pieces = [centre]
        if rng.uniform() < branch_fraction:
            r = rng.uniform(*radius)
            pieces.append(centre + rng.normal(0, 1, 3) * r * 1.2)
        for c in pieces:
            rz, ry, rx = rng.uniform(*radius, size=3)
            rr = int(np.ceil(max(rz, ry, rx))) + 1
            lo = [max(0, int(c[a]) - rr) for a in range(3)]
            hi = [min(shape[a], int(c[a]) + rr + 1) for a in range(3)]
            if any(lo[a] >= hi[a] for a in range(3)):
                continue
            zz, yy, xx = np.mgrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32)
            q = ((zz - c[0]) / rz) ** 2 + ((yy - c[1]) / ry) ** 2 + ((xx - c[2]) / rx) ** 2
            win = instances[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            inside = (q <= 1.0) & ((win == 0) | (win == i))
            if not inside.any():
                continue
            n_parts += 1
            win[inside] = i
            classes[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][inside] = cls
            parts[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][inside] = n_parts

    return instances, classes, parts, n_parts


def _plane_outputs(
    plane: str,
    instances: np.ndarray,
    classes: np.ndarray,
    parts: np.ndarray,
    n_parts: int,
    n_classes: int,
    empty_slices: tuple[int, ...],
    noise: float,
    pad: int,
    rng: np.random.Generator,
) -> ModelOutputs3d:
    """The per-slice model outputs of the drawn volume along `plane`."""
    shape = instances.shape
    axis = _AXIS[plane]
    n = shape[axis]
    sh, sw = [s for a, s in enumerate(shape) if a != axis]
    hp, wp = -(-sh // pad) * pad, -(-sw // pad) * pad
    c_out = 1 if n_classes == 1 else n_classes + 1
    sem = np.zeros((n, c_out, hp, wp), np.float32)
    ctr = np.zeros((n, hp // 4, wp // 4), np.float32)
    offsets = np.zeros((n, 2, hp // 4, wp // 4), np.float32)
    gy, gx = np.mgrid[0:hp:4, 0:wp:4].astype(np.float32)
    for k in range(n):
        cls2 = np.zeros((hp, wp), np.int32)
        part2 = np.zeros((hp, wp), np.int32)
        if k not in empty_slices:
            cls2[:sh, :sw] = np.take(classes, k, axis=axis)
            part2[:sh, :sw] = np.take(parts, k, axis=axis)
        logits = np.zeros((n_classes + 1, hp, wp), np.float32)
        for ch in range(n_classes + 1):
            logits[ch] = 4.0 * (cls2 == ch) + 8.0 * noise * _smooth_noise(rng, (hp, wp), 16)
            logits[ch] += noise * rng.standard_normal((hp, wp)).astype(np.float32)
        if n_classes == 1:
            sem[k, 0] = 1.0 / (1.0 + np.exp(-(logits[1] - logits[0])))
        else:
            e = np.exp(logits - logits.max(axis=0, keepdims=True))
            sem[k] = e / e.sum(axis=0, keepdims=True)
        present = np.unique(part2)
        present = present[present > 0]
        if len(present):
            yy, xx = np.nonzero(part2)
            ids = part2[yy, xx]
            cnt = np.bincount(ids, minlength=n_parts + 1).astype(np.float32)
            cy = np.bincount(ids, yy, minlength=n_parts + 1) / np.maximum(cnt, 1)
            cx = np.bincount(ids, xx, minlength=n_parts + 1) / np.maximum(cnt, 1)
            for p in present:
                sigma = max(3.0, 0.5 * np.sqrt(cnt[p] / np.pi))
                # Only the window where the float64 Gaussian can round to a float32 above
                # zero: beyond it the values cast to 0.0 and max() with them changes nothing.
                win = _gauss_window(cy[p], cx[p], sigma, ctr.shape[1:])
                g = np.exp(-((gy[win] - cy[p]) ** 2 + (gx[win] - cx[p]) ** 2) / (2 * sigma**2))
                np.maximum(ctr[k][win], g.astype(np.float32), out=ctr[k][win])
            grid = part2[::4, ::4]
            own = grid > 0
            offsets[k, 0][own] = cy[grid[own]] - gy[own]
            offsets[k, 1][own] = cx[grid[own]] - gx[own]
        ctr[k] += noise * 0.05 * rng.standard_normal(ctr[k].shape).astype(np.float32)
        offsets[k] += noise * 4 * rng.standard_normal(offsets[k].shape).astype(np.float32)
    return ModelOutputs3d(
        plane=plane,
        sem=sem,
        ctr_hmp=ctr,
        offsets=offsets,
        instances=instances,
        classes=classes,
    )
