"""Paired image/mask augmentations (spec §11.4) in NumPy/SciPy, no albumentations.

`Augment` applies, in order: random scale, zero padding to the patch size, random crop,
random rotation (any angle, zero border), random rot90, brightness/contrast, Gaussian noise
and horizontal/vertical flips. Images are uint8; masks are integer label maps and are
resampled with nearest neighbour so ids are never mixed. `Augment.from_config` reads the
albumentations-style list of empanada configs (`{aug: RandomScale, scale_limit: ...}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from empanada_rs.errors import InvalidArgumentError, ShapeError

__all__ = ["Augment"]


@dataclass(frozen=True)
class Augment:
    """Random augmentation of an (image, mask) pair to a `patch_size` square.

    Parameters (each a field, default in brackets)
    ----------
    patch_size: output side in pixels [256].
    scale: (min, max) random scale factor, 1 keeps the size [(0.1, 2.0)] (RandomScale
        scale_limit [-0.9, 1]).
    rotate: maximum rotation angle in degrees, 0 disables [180].
    rot90: random multiples of 90 degrees [False].
    brightness: brightness shift limit as a fraction of 255 [0.3].
    contrast: contrast factor limit, factor in [1 - c, 1 + c] [0.3].
    noise: maximum Gaussian noise sigma in grey levels, 0 disables [0].
    hflip, vflip: flip probability per axis [0.5, 0.5].
    """

    patch_size: int = 256
    scale: tuple[float, float] = (0.1, 2.0)
    rotate: float = 180.0
    rot90: bool = False
    brightness: float = 0.3
    contrast: float = 0.3
    noise: float = 0.0
    hflip: float = 0.5
    vflip: float = 0.5

    def __post_init__(self) -> None:
        if int(self.patch_size) < 1:
            raise InvalidArgumentError(f"patch_size must be >= 1, got {self.patch_size!r}")
        lo, hi = self.scale
        if not (0 < lo <= hi):
            raise InvalidArgumentError(f"scale must satisfy 0 < min <= max, got {self.scale!r}")
        for name in ("brightness", "contrast", "noise", "rotate"):
            if getattr(self, name) < 0:
                raise InvalidArgumentError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("hflip", "vflip"):
            if not 0 <= getattr(self, name) <= 1:
                raise InvalidArgumentError(f"{name} must lie in [0, 1]")

    @classmethod
    def from_config(cls, augs: Sequence[Mapping[str, object]], patch_size: int) -> Augment:
        """Build from an empanada training config's `augmentations` list; unknown entries
        raise, `Normalize` and `ToTensorV2` are ignored (normalisation happens later)."""
        a = cls(
            patch_size=patch_size,
            scale=(1.0, 1.0),
            rotate=0.0,
            brightness=0.0,
            contrast=0.0,
            hflip=0.0,
            vflip=0.0,
        )
        for spec in augs:
            kw = dict(spec)
            name = str(kw.pop("aug", ""))
            p = float(kw.get("p", 1.0))  # type: ignore[arg-type]
            if name == "RandomScale":
                lim = kw.get("scale_limit", 0.1)
                lo, hi = (-lim, lim) if np.isscalar(lim) else tuple(lim)  # type: ignore[arg-type,misc]
                a = replace(a, scale=(round(1 + float(lo), 9), round(1 + float(hi), 9)))
            elif name == "Rotate":
                lim = kw.get("limit", 90)
                a = replace(a, rotate=float(lim if np.isscalar(lim) else max(map(abs, lim))))  # type: ignore[arg-type]
            elif name == "RandomRotate90":
                a = replace(a, rot90=True)
            elif name == "RandomBrightnessContrast":
                b = kw.get("brightness_limit", 0.2)
                c = kw.get("contrast_limit", 0.2)
                a = replace(
                    a,
                    brightness=float(b if np.isscalar(b) else max(map(abs, b))),  # type: ignore[arg-type]
                    contrast=float(c if np.isscalar(c) else max(map(abs, c))),  # type: ignore[arg-type]
                )
            elif name == "HorizontalFlip":
                a = replace(a, hflip=p if "p" in kw else 0.5)
            elif name == "VerticalFlip":
                a = replace(a, vflip=p if "p" in kw else 0.5)
            elif name == "GaussNoise":
                a = replace(a, noise=10.0)
            elif name in ("PadIfNeeded", "RandomCrop", "Normalize", "ToTensorV2", "CenterCrop"):
                continue
            else:
                raise InvalidArgumentError(
                    f"augmentations: {name!r} is not supported; use RandomScale, PadIfNeeded, "
                    "RandomCrop, Rotate, RandomRotate90, RandomBrightnessContrast, "
                    "HorizontalFlip, VerticalFlip, GaussNoise"
                )
        return a

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment one uint8 (H, W) image and its (H, W) mask; returns (patch, patch)."""
        from scipy import ndimage

        if image.ndim != 2 or image.shape != mask.shape:
            raise ShapeError(
                f"image and mask must be 2D and of the same shape, got {image.shape} "
                f"and {mask.shape}"
            )
        img = image.astype(np.float32)
        msk = mask
        lo, hi = self.scale
        if hi > lo or lo != 1.0:
            s = rng.uniform(lo, hi)
            if abs(s - 1.0) > 1e-3:
                out = tuple(max(1, int(round(n * s))) for n in img.shape)
                zoom = tuple(o / n for o, n in zip(out, img.shape, strict=True))
                img = ndimage.zoom(img, zoom, order=1, grid_mode=True, mode="nearest")
                msk = ndimage.zoom(msk, zoom, order=0, grid_mode=True, mode="nearest")
        p = int(self.patch_size)
        # Pad (centred, zeros) then crop a random window.
        ph, pw = max(0, p - img.shape[0]), max(0, p - img.shape[1])
        if ph or pw:
            pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
            img = np.pad(img, pad)
            msk = np.pad(msk, pad)
        y0 = int(rng.integers(0, img.shape[0] - p + 1))
        x0 = int(rng.integers(0, img.shape[1] - p + 1))
        img = img[y0 : y0 + p, x0 : x0 + p]
        msk = msk[y0 : y0 + p, x0 : x0 + p]
        if self.rotate > 0:
            ang = rng.uniform(-self.rotate, self.rotate)
            img = ndimage.rotate(img, ang, reshape=False, order=1, mode="constant", cval=0)
            msk = ndimage.rotate(msk, ang, reshape=False, order=0, mode="constant", cval=0)
        if self.rot90:
            k = int(rng.integers(0, 4))
            img, msk = np.rot90(img, k), np.rot90(msk, k)
        if self.brightness > 0 or self.contrast > 0:
            alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
            beta = rng.uniform(-self.brightness, self.brightness) * 255.0
            img = img * alpha + beta
        if self.noise > 0:
            img = img + rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(
                0, self.noise
            )
        if rng.random() < self.hflip:
            img, msk = img[:, ::-1], msk[:, ::-1]
        if rng.random() < self.vflip:
            img, msk = img[::-1], msk[::-1]
        out_img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        return out_img, np.ascontiguousarray(msk)
