"""EM-like phantoms with ground truth, for training, tests and the offline demo.

A phantom is rendered from 3D primitives, so a 2D phantom is literally a one-slice 3D
phantom: slices of a volume and single images share one size distribution. Mitochondria
are capsules (some bent: two capsules sharing a joint) or elongated ellipsoids in random 3D
orientations, drawn first-come-first-served so neighbours may touch; each has a dark
double membrane and a darker matrix crossed by lighter cristae plates. Around them:
textured cytoplasm (smoothed noise), thin dark membrane sheets (level sets of smooth
noise), small vesicles (distractors, not labelled) and optionally nuclei (large textured
ellipsoids with a double envelope and peripheral heterochromatin). The image is blurred
mildly and given signal-dependent (Poisson-like) plus Gaussian noise.

    ph = phantom_2d((512, 512), seed=3)       # ph.image uint8, ph.instances int32 1..N
    vol = phantom_3d((64, 512, 512), seed=3)  # same look, 3D-consistent objects
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from empanada_rs._core import connected_components, renumber
from empanada_rs.errors import InvalidArgumentError, ShapeError

__all__ = ["MitoPrimitive", "Phantom", "phantom_2d", "phantom_3d"]

# Grey levels (0..255 before blur and noise).
_CYTO, _CYTO_TEXTURE = 165.0, 16.0
_SHEET = 95.0
_MITO_OUTER, _MITO_GAP, _MITO_INNER = 55.0, 120.0, 60.0
_MATRIX, _CRISTAE = 100.0, 140.0
_NUC, _NUC_TEXTURE, _HETERO, _ENVELOPE = 150.0, 14.0, 105.0, 60.0
_VESICLE_RIM, _VESICLE_LUMEN = 70.0, 185.0


@dataclass(frozen=True)
class MitoPrimitive:
    """One drawn mitochondrion: the union of capsules `segments` (each ((z,y,x), (z,y,x))
    with radius `radius`) or, when `kind == "ellipsoid"`, an ellipsoid at `centre` with
    semi-axes `axes` along the rows of `rotation`. `label` is its id in `Phantom.instances`
    (0 if it was removed because nothing of it survived)."""

    kind: str
    label: int
    radius: float
    segments: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]
    centre: tuple[float, float, float]
    axes: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class Phantom:
    """A generated image or volume and its truth.

    `image` uint8 (H, W) or (D, H, W); `instances` int32 mitochondria ids 1..N (0 background),
    each id one connected component (4-/6-connected); `semantic` uint8 (1 mitochondria,
    2 nuclei, 0 else); `nuclei` int32 nucleus ids 1..M or None when `nuclei=False`;
    `objects` the drawn primitives (labels refer to `instances`)."""

    image: np.ndarray
    instances: np.ndarray
    semantic: np.ndarray
    nuclei: np.ndarray | None
    objects: tuple[MitoPrimitive, ...]


def _check_range(name: str, value: Sequence[float], low: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{name} must be a pair (min, max), got {value!r}") from e
    if not (np.isfinite(a) and np.isfinite(b)) or a < low or b < a:
        raise InvalidArgumentError(f"{name} must satisfy {low} <= min <= max, got {value!r}")
    return a, b


def _upsample_linear(a: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Linear upsampling by the integer factor `f` along `axis` (n -> (n-1)*f samples)."""
    a = np.moveaxis(a, axis, 0)
    t = (np.arange(f, dtype=np.float32) / f).reshape((1, f) + (1,) * (a.ndim - 1))
    lo, hi = a[:-1, None], a[1:, None]
    out = (lo + (hi - lo) * t).reshape((-1,) + a.shape[1:])
    return np.moveaxis(out, 0, axis)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Unit-variance smooth noise with correlation length ~`scale` px: Gaussian-filtered
    white noise on a grid `f` times coarser, linearly upsampled (cheap for big volumes)."""
    from scipy import ndimage

    f = max(1, int(round(scale / 2)))
    out = None
    if f == 1:
        out = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), scale / 2)
    else:
        coarse = tuple(n // f + 2 if n > 1 else 1 for n in shape)
        g = ndimage.gaussian_filter(rng.standard_normal(coarse, np.float32), 1.0, mode="wrap")
        for ax, n in enumerate(shape):
            if n > 1:
                g = _upsample_linear(g, f, ax)[(slice(None),) * ax + (slice(0, n),)]
        out = g
    out = out - out.mean(dtype=np.float64)
    out = out / max(float(out.std(dtype=np.float64)), 1e-6)
    return np.ascontiguousarray(out, dtype=np.float32)


def _random_direction(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _bbox(lo: np.ndarray, hi: np.ndarray, shape: tuple[int, int, int]) -> tuple[slice, ...] | None:
    a = np.maximum(np.floor(lo).astype(int), 0)
    b = np.minimum(np.ceil(hi).astype(int) + 1, shape)
    if np.any(b <= a):
        return None
    return tuple(slice(int(i), int(j)) for i, j in zip(a, b, strict=True))


def _grid(box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = np.ogrid[box[0], box[1], box[2]]
    return z.astype(np.float32), y.astype(np.float32), x.astype(np.float32)


def _capsule(
    grid: tuple[np.ndarray, ...], p0: np.ndarray, p1: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """Depth inside the capsule (r - distance to the axis segment) and the axial coordinate."""
    z, y, x = grid
    v = p1 - p0
    vv = float(v @ v)
    dz, dy, dx = z - p0[0], y - p0[1], x - p0[2]
    proj = dz * v[0] + dy * v[1] + dx * v[2]
    t = np.clip(proj / vv, 0.0, 1.0) if vv > 0 else np.zeros_like(proj)
    d2 = (dz - t * v[0]) ** 2 + (dy - t * v[1]) ** 2 + (dx - t * v[2]) ** 2
    axial = proj / np.sqrt(vv) if vv > 0 else dz + dy + dx
    return r - np.sqrt(d2), axial


def _ellipsoid(
    grid: tuple[np.ndarray, ...], c: np.ndarray, axes: np.ndarray, rot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = grid
    dz, dy, dx = z - c[0], y - c[1], x - c[2]
    u = [dz * rot[i, 0] + dy * rot[i, 1] + dx * rot[i, 2] for i in range(3)]
    q = np.sqrt(sum((u[i] / axes[i]) ** 2 for i in range(3)))
    # (1 - q) * smallest axis: exact on the short axes, which is where membranes are seen.
    return (1.0 - q) * float(axes.min()), u[0]


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def phantom_3d(
    shape: Sequence[int] = (64, 512, 512),
    *,
    seed: int = 0,
    mito_fraction: float = 0.10,
    mito_radius: Sequence[float] = (7.0, 15.0),
    mito_length: Sequence[float] = (0.0, 110.0),
    bent_fraction: float = 0.3,
    ellipsoid_fraction: float = 0.2,
    max_overlap: float = 0.04,
    min_size: int = 64,
    nuclei: bool = False,
    n_nuclei: int = 1,
    n_vesicles: int | None = None,
    sheet_density: float = 1.0,
    blur: float = 0.8,
    noise: float = 8.0,
) -> Phantom:
    """An EM-like volume (D, H, W) with its ground truth.

    Parameters
    ----------
    shape: (D, H, W), each >= 1 (default (64, 512, 512)).
    seed: random seed; the same seed and arguments give the same phantom (default 0).
    mito_fraction: target fraction of voxels inside mitochondria, in (0, 0.5] (default 0.10).
    mito_radius: (min, max) tube radius in pixels, >= 2 (default (7, 15)).
    mito_length: (min, max) axis length in pixels, >= 0 (default (0, 110)).
    bent_fraction: share of tubes bent once (two capsules sharing a joint) (default 0.3).
    ellipsoid_fraction: share drawn as elongated ellipsoids instead of tubes (default 0.2).
    max_overlap: a new mitochondrion overlapping drawn ones by more than this fraction of
        its volume is redrawn; below it, it touches them (default 0.04).
    min_size: mitochondria (or, in 2D, cross-sections) smaller than this many pixels are
        left out of the truth and the image, like a caps barely grazed by the slice
        (default 64).
    nuclei: also draw nuclei and return their ids in `Phantom.nuclei` (default False).
    n_nuclei: number of nuclei when `nuclei` (default 1).
    n_vesicles: unlabelled small vesicles (distractors); None: ~1 per 8000 px² of each
        slice's area, scaled by depth (default None).
    sheet_density: relative amount of thin dark membrane sheets, >= 0 (default 1.0).
    blur: Gaussian blur sigma in pixels, >= 0 (default 0.8).
    noise: Gaussian noise sigma in grey levels, >= 0; Poisson-like noise is added on top
        (default 8.0).
    """
    shp = _check_shape(shape, 3)
    return _render(
        shp,
        seed=seed,
        mito_fraction=mito_fraction,
        mito_radius=mito_radius,
        mito_length=mito_length,
        bent_fraction=bent_fraction,
        ellipsoid_fraction=ellipsoid_fraction,
        max_overlap=max_overlap,
        min_size=min_size,
        nuclei=nuclei,
        n_nuclei=n_nuclei,
        n_vesicles=n_vesicles,
        sheet_density=sheet_density,
        blur=blur,
        noise=noise,
    )


def phantom_2d(
    shape: Sequence[int] = (512, 512),
    *,
    seed: int = 0,
    mito_fraction: float = 0.10,
    mito_radius: Sequence[float] = (7.0, 15.0),
    mito_length: Sequence[float] = (0.0, 110.0),
    bent_fraction: float = 0.3,
    ellipsoid_fraction: float = 0.2,
    max_overlap: float = 0.04,
    min_size: int = 64,
    nuclei: bool = False,
    n_nuclei: int = 1,
    n_vesicles: int | None = None,
    sheet_density: float = 1.0,
    blur: float = 0.8,
    noise: float = 8.0,
) -> Phantom:
    """An EM-like image (H, W) with its ground truth: one slice through 3D primitives, so
    it looks like a slice of :func:`phantom_3d` with the same arguments. Parameters as in
    :func:`phantom_3d` (`shape` is (H, W), default (512, 512))."""
    h, w = _check_shape(shape, 2)
    ph = _render(
        (1, h, w),
        seed=seed,
        mito_fraction=mito_fraction,
        mito_radius=mito_radius,
        mito_length=mito_length,
        bent_fraction=bent_fraction,
        ellipsoid_fraction=ellipsoid_fraction,
        max_overlap=max_overlap,
        min_size=min_size,
        nuclei=nuclei,
        n_nuclei=n_nuclei,
        n_vesicles=n_vesicles,
        sheet_density=sheet_density,
        blur=blur,
        noise=noise,
    )
    return Phantom(
        image=ph.image[0],
        instances=ph.instances[0],
        semantic=ph.semantic[0],
        nuclei=None if ph.nuclei is None else ph.nuclei[0],
        objects=ph.objects,
    )


def _check_shape(shape: Sequence[int], ndim: int) -> tuple[int, ...]:
    try:
        shp = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"shape must be {ndim} positive integers, got {shape!r}") from e
    if len(shp) != ndim or any(s < 1 for s in shp):
        raise ShapeError(f"shape must be {ndim} positive integers, got {shape!r}")
    if any(s < 8 for s in shp[-2:]):
        raise ShapeError(f"shape: height and width must be >= 8, got {shape!r}")
    if int(np.prod(shp, dtype=np.int64)) > 2**31 - 1:
        raise ShapeError(f"shape {shp} has more than 2**31-1 voxels; generate it in blocks")
    return shp


def _check_fraction(name: str, v: float, low: float, high: float) -> float:
    v = float(v)
    if not (np.isfinite(v) and low <= v <= high):
        raise InvalidArgumentError(f"{name} must lie in [{low}, {high}], got {v!r}")
    return v


def _render(
    shape: tuple[int, ...],
    *,
    seed: int,
    mito_fraction: float,
    mito_radius: Sequence[float],
    mito_length: Sequence[float],
    bent_fraction: float,
    ellipsoid_fraction: float,
    max_overlap: float,
    min_size: int,
    nuclei: bool,
    n_nuclei: int,
    n_vesicles: int | None,
    sheet_density: float,
    blur: float,
    noise: float,
) -> Phantom:
    from scipy import ndimage

    d, h, w = shape
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    frac = _check_fraction("mito_fraction", mito_fraction, 0.0, 0.5)
    r_lo, r_hi = _check_range("mito_radius", mito_radius, 2.0)
    l_lo, l_hi = _check_range("mito_length", mito_length, 0.0)
    bent = _check_fraction("bent_fraction", bent_fraction, 0.0, 1.0)
    ell = _check_fraction("ellipsoid_fraction", ellipsoid_fraction, 0.0, 1.0)
    overlap = _check_fraction("max_overlap", max_overlap, 0.0, 1.0)
    density = _check_fraction("sheet_density", sheet_density, 0.0, 10.0)
    blur = _check_fraction("blur", blur, 0.0, 10.0)
    noise = _check_fraction("noise", noise, 0.0, 100.0)
    if int(min_size) < 0:
        raise InvalidArgumentError(f"min_size must be >= 0, got {min_size!r}")
    if int(n_nuclei) < 0:
        raise InvalidArgumentError(f"n_nuclei must be >= 0, got {n_nuclei!r}")
    if n_vesicles is not None and int(n_vesicles) < 0:
        raise InvalidArgumentError(f"n_vesicles must be >= 0 or None, got {n_vesicles!r}")

    rng = np.random.default_rng(int(seed))
    dims = np.array(shape, np.float64)

    # --- nuclei: big ellipsoids, mitochondria kept out of them (with a margin) ---
    nuc_ids = np.zeros(shape, np.int32)
    nuc_depth = np.full(shape, -1e3, np.float32)
    if nuclei:
        for k in range(int(n_nuclei)):
            axes = np.array(
                [rng.uniform(0.22, 0.35) * min(h, w) * rng.uniform(0.8, 1.2) for _ in range(3)]
            )
            rot = _rotation(rng)
            c = rng.uniform(0, 1, 3) * dims
            if d == 1:
                c[0] = rng.uniform(-0.5, 0.5) * axes.min()
            ext = axes.max()
            box = _bbox(c - ext, c + ext, shape)  # type: ignore[arg-type]
            if box is None:
                continue
            dep, _ = _ellipsoid(_grid(box), c, axes, rot)
            sel = (dep > 0) & (nuc_ids[box] == 0)
            nuc_ids[box][sel] = k + 1
            nuc_depth[box] = np.where(sel, dep, nuc_depth[box])

    # --- mitochondria ---
    labels = np.zeros(shape, np.int32)
    depth = np.zeros(shape, np.float32)
    axial = np.zeros(shape, np.float32)
    target = frac * labels.size
    drawn = 0
    prims: list[MitoPrimitive] = []
    # Centres range beyond the volume in z (objects may enter from outside), which is what
    # makes a one-slice phantom a fair slice of a thick one.
    z_margin = r_hi + l_hi / 2
    attempts = 0
    max_attempts = 40 + int(60 * target / (np.pi * r_lo**2 * max(d, 1) + 1))
    max_attempts = min(max_attempts, 20000)
    while drawn < target and attempts < max_attempts:
        attempts += 1
        r = rng.uniform(r_lo, r_hi)
        length = rng.uniform(l_lo, l_hi)
        c = rng.uniform(0, 1, 3) * dims
        c[0] = rng.uniform(-z_margin, d + z_margin)
        kind = "ellipsoid" if rng.random() < ell else ("bent" if rng.random() < bent else "tube")
        segs: list[tuple[np.ndarray, np.ndarray]] = []
        axes = np.zeros(3)
        rot = np.eye(3)
        if kind == "ellipsoid":
            rot = _rotation(rng)
            axes = np.array([max(r, length / 2 + r), r * rng.uniform(0.8, 1.0), r])
            lo, hi = c - axes.max(), c + axes.max()
        else:
            u = _random_direction(rng)
            if kind == "bent":
                a = length * rng.uniform(0.35, 0.65)
                v = _random_direction(rng)
                v = v - (v @ u) * u  # bend 30..90 degrees away from the first arm
                v /= max(np.linalg.norm(v), 1e-9)
                ang = rng.uniform(np.pi / 6, np.pi / 2)
                u2 = np.cos(ang) * u + np.sin(ang) * v
                joint = c
                segs = [(joint - u * a, joint), (joint, joint + u2 * (length - a))]
            else:
                segs = [(c - u * length / 2, c + u * length / 2)]
            pts = np.array([p for seg in segs for p in seg])
            lo, hi = pts.min(0) - r, pts.max(0) + r
        box = _bbox(lo - 1, hi + 1, shape)  # type: ignore[arg-type]
        if box is None:
            continue
        grid = _grid(box)
        if kind == "ellipsoid":
            dep, ax = _ellipsoid(grid, c, axes, rot)
        else:
            dep, ax = _capsule(grid, segs[0][0], segs[0][1], r)
            for p0, p1 in segs[1:]:
                d2, a2 = _capsule(grid, p0, p1, r)
                better = d2 > dep
                dep = np.where(better, d2, dep)
                ax = np.where(better, a2 + np.linalg.norm(segs[0][1] - segs[0][0]), ax)
        inside = dep > 0
        n_in = int(inside.sum())
        if n_in == 0:
            continue
        taken = labels[box] > 0
        if nuclei and np.any(inside & (nuc_depth[box] > -6)):
            continue
        if int((inside & taken).sum()) > overlap * n_in:
            continue
        new = inside & ~taken
        lab = len(prims) + 1
        labels[box][new] = lab
        depth[box] = np.where(new, dep, depth[box])
        axial[box] = np.where(new, ax + rng.uniform(0, 10), axial[box])
        drawn += int(new.sum())
        prims.append(
            MitoPrimitive(
                kind="ellipsoid" if kind == "ellipsoid" else "capsule",
                label=lab,
                radius=float(r),
                segments=tuple(
                    (tuple(map(float, p0)), tuple(map(float, p1)))  # type: ignore[misc]
                    for p0, p1 in segs
                ),
                centre=tuple(map(float, c)),  # type: ignore[arg-type]
                axes=tuple(map(float, axes)),  # type: ignore[arg-type]
                rotation=tuple(tuple(map(float, row)) for row in rot),  # type: ignore[misc]
            )
        )

    # Keep each object's largest connected piece (a bent tube or a clipped neighbour may
    # fall apart inside the volume, and a 2D truth must be 2D-connected), then 1..N.
    labels, prims = _largest_pieces(labels, prims, int(min_size))
    mito = labels > 0

    # --- image ---
    img = _CYTO + _CYTO_TEXTURE * _smooth_field(rng, shape, 6.0)
    img += 6.0 * _smooth_field(rng, shape, 2.0)
    if density > 0:
        sheets = np.abs(_smooth_field(rng, shape, 40.0))
        width = 0.035 * density
        img = np.where(sheets < width, _SHEET + 20 * sheets / width, img)
    n_ves = int(n_vesicles) if n_vesicles is not None else int(h * w / 8000 * max(1, d / 8))
    for _ in range(n_ves):
        r = rng.uniform(3.0, 7.0)
        c = rng.uniform(0, 1, 3) * dims
        if d == 1:
            c[0] = rng.uniform(-r, r)
        box = _bbox(c - r - 2, c + r + 2, shape)  # type: ignore[arg-type]
        if box is None:
            continue
        dep, _ = _capsule(_grid(box), c, c, r)
        free = ~mito[box] & (nuc_ids[box] == 0)
        rim = (dep > -1.0) & (dep <= 1.2) & free
        lumen = (dep > 1.2) & free
        img[box] = np.where(rim, _VESICLE_RIM, np.where(lumen, _VESICLE_LUMEN, img[box]))

    if nuclei:
        inn = nuc_ids > 0
        tex = _NUC + _NUC_TEXTURE * _smooth_field(rng, shape, 4.0)
        clumps = _smooth_field(rng, shape, 10.0) > 1.0
        tex = np.where(clumps | (nuc_depth < 10), _HETERO + 8 * _smooth_field(rng, shape, 3.0), tex)
        env = ((nuc_depth > -1.5) & (nuc_depth < 1.0)) | ((nuc_depth >= 3.0) & (nuc_depth < 4.5))
        img = np.where(inn, tex, img)
        img = np.where(env, _ENVELOPE, img)

    at = np.flatnonzero(mito)
    dep, ax = depth.ravel()[at], axial.ravel()[at]
    grey = np.where(np.cos(ax * (2 * np.pi / 8.0)) > 0.55, _CRISTAE, _MATRIX)
    grey = np.select([dep < 1.6, dep < 2.6, dep < 3.8], [_MITO_OUTER, _MITO_GAP, _MITO_INNER], grey)
    img = np.ascontiguousarray(img, dtype=np.float32)
    img.ravel()[at] = grey

    if blur > 0:
        sig = (0.0 if d == 1 else blur, blur, blur)
        img = ndimage.gaussian_filter(img.astype(np.float32), sig)
    if noise > 0:
        img = img + np.sqrt(np.maximum(img, 0)) * rng.standard_normal(shape, np.float32) * (
            noise / 12.0
        )
        img = img + noise * rng.standard_normal(shape, np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    semantic = np.zeros(shape, np.uint8)
    semantic[mito] = 1
    nuc_out = None
    if nuclei:
        semantic[nuc_ids > 0] = 2
        nuc_out, _, _ = renumber(nuc_ids)
        nuc_out = nuc_out.astype(np.int32)
    return Phantom(
        image=image,
        instances=labels.astype(np.int32),
        semantic=semantic,
        nuclei=nuc_out,
        objects=tuple(prims),
    )


def _largest_pieces(
    labels: np.ndarray, prims: list[MitoPrimitive], min_size: int
) -> tuple[np.ndarray, tuple[MitoPrimitive, ...]]:
    """Keep the largest connected piece of every label if it has at least `min_size`
    pixels, and renumber the labels 1..N."""
    if not prims:
        return labels, ()
    # Face connectivity: 6 in a volume is 4 in its single slice.
    comps, n = connected_components(labels, connectivity=6)
    comps = comps.astype(np.int64)
    size = np.bincount(comps.ravel(), minlength=n + 1)
    owner = np.zeros(n + 1, np.int64)
    owner[comps.ravel()] = labels.ravel()  # every voxel of a piece has the same label
    best = np.zeros(len(prims) + 1, np.int64)  # label -> piece kept
    order = np.argsort(size[1:], kind="stable") + 1  # ascending: the largest writes last
    best[owner[order]] = order
    keep = np.zeros(n + 1, np.int32)
    new_id = np.zeros(len(prims) + 1, np.int32)
    alive = np.flatnonzero(best[1:]) + 1
    alive = alive[size[best[alive]] >= max(min_size, 1)]
    new_id[alive] = np.arange(1, len(alive) + 1, dtype=np.int32)
    keep[best[alive]] = new_id[alive]
    out = keep[comps]
    kept = tuple(
        MitoPrimitive(
            kind=p.kind,
            label=int(new_id[p.label]),
            radius=p.radius,
            segments=p.segments,
            centre=p.centre,
            axes=p.axes,
            rotation=p.rotation,
        )
        for p in prims
    )
    return out.astype(np.int32), kept
