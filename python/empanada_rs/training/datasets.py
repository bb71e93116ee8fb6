"""Training datasets: empanada's directory layout (spec §11.1) and on-the-fly phantoms.

Every item is `(image, target)`: image float32 (1, P, P) normalised as
`(x / 255 - mean) / std`; target a dict with `sem` (P, P) (float 0/1 for one class, int64
class ids for several), `ctr_hmp` (1, P, P) and `offsets` (2, P, P), see
:mod:`empanada_rs.training.targets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from empanada_rs.errors import DTypeError, InvalidArgumentError, ShapeError
from empanada_rs.training.augment import Augment
from empanada_rs.training.targets import heatmap_and_offsets, panoptic_semantic

__all__ = ["InstanceDirDataset", "PhantomDataset", "read_image_8bit", "read_mask"]

_IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"}


def read_image_8bit(path: Path) -> np.ndarray:
    """Read a greyscale training image as uint8 (what empanada's OpenCV reader does):
    colour is converted to luminance, uint16 is shifted right by 8, floats in [0, 1] are
    scaled by 255."""
    a = _read(path)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if a.ndim != 2:
        raise ShapeError(f"{path}: expected a 2D greyscale image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
        if f.size and float(np.nanmax(f)) <= 1.0:
            f = f * 255.0
        return np.clip(np.rint(np.nan_to_num(f)), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    raise DTypeError(f"{path}: unsupported image dtype {a.dtype}")


def read_mask(path: Path) -> np.ndarray:
    """Read a label mask (any integer dtype) as int64."""
    a = _read(path)
    if a.ndim != 2:
        raise ShapeError(f"{path}: expected a 2D mask, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.mod(a, 1) == 0):
            return a.astype(np.int64)
        raise DTypeError(f"{path}: a mask must hold integer ids, got dtype {a.dtype}")
    return a.astype(np.int64)


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def _normalise(image: np.ndarray, norms: tuple[float, float]) -> torch.Tensor:
    mean, std = norms
    x = (image.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x))[None]


def _targets(
    mask: np.ndarray,
    labels: Sequence[int] | None,
    thing_list: Sequence[int] | None,
    label_divisor: int | None,
) -> dict[str, torch.Tensor]:
    if labels is None or len(labels) <= 1:
        inst = mask
        sem = torch.from_numpy((mask > 0).astype(np.float32))
    else:
        cls, inst = panoptic_semantic(
            mask,
            labels=list(labels),
            thing_list=list(thing_list or []),
            label_divisor=int(label_divisor or 1000),
        )
        sem = torch.from_numpy(cls)
    hmp, off = heatmap_and_offsets(inst)
    return {"sem": sem, "ctr_hmp": torch.from_numpy(hmp), "offsets": torch.from_numpy(off)}


class InstanceDirDataset(Dataset):  # type: ignore[type-arg]
    """Patches from one or more training directories (spec §11.1): every sub-directory of a
    root is a source with `images/` and `masks/` holding files of the same names.

    Parameters
    ----------
    roots: one root directory or several (merged by source name).
    augment: the augmentation (it also crops to its patch size); None: images are used
        whole and must all have the same shape (default None).
    norms: (mean, std) as fractions of 255 (default (0.57571, 0.12765), MitoNet's).
    labels: all class ids; None or one class: a single-class instance dataset, else a
        panoptic one whose masks follow class * label_divisor + instance (default None).
    thing_list: instance classes of a panoptic dataset (default None: all of `labels`).
    label_divisor: of a panoptic dataset (default 1000).
    weight_gamma: per-source sampling weights (1/count)^gamma for a weighted sampler,
        see :meth:`sample_weights`; None: uniform (default None).
    seed: seed of the augmentation random stream (default 0).
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        *,
        augment: Augment | None = None,
        norms: tuple[float, float] = (0.57571, 0.12765),
        labels: Sequence[int] | None = None,
        thing_list: Sequence[int] | None = None,
        label_divisor: int = 1000,
        weight_gamma: float | None = None,
        seed: int = 0,
    ) -> None:
        root_list = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
        sources: dict[str, list[tuple[Path, Path]]] = {}
        for root in root_list:
            if not root.is_dir():
                raise InvalidArgumentError(f"training directory {root} does not exist")
            for src in sorted(p for p in root.iterdir() if p.is_dir()):
                imgs = sorted(
                    p for p in (src / "images").glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES
                )
                for img in imgs:
                    msk = src / "masks" / img.name
                    if not msk.is_file():
                        raise InvalidArgumentError(
                            f"{img}: no mask of the same name in {src / 'masks'}"
                        )
                    sources.setdefault(src.name, []).append((img, msk))
        self.items = [(name, img, msk) for name, pairs in sources.items() for img, msk in pairs]
        if not self.items:
            raise InvalidArgumentError(
                f"no <source>/images/* with matching <source>/masks/* found under {root_list}"
            )
        _check_norms(norms)
        self.augment = augment
        self.norms = (float(norms[0]), float(norms[1]))
        self.labels = list(labels) if labels is not None else None
        self.thing_list = list(thing_list) if thing_list is not None else self.labels
        self.label_divisor = int(label_divisor)
        self.weight_gamma = weight_gamma
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def sample_weights(self) -> np.ndarray:
        """Per-item sampling weight: (1/count_source)^gamma normalised over sources (spec
        §11.1); uniform when `weight_gamma` is None."""
        names = [n for n, _, _ in self.items]
        if self.weight_gamma is None:
            return np.full(len(names), 1.0 / len(names))
        uniq, inv, counts = np.unique(names, return_inverse=True, return_counts=True)
        w = (1.0 / counts) ** float(self.weight_gamma)
        w = w / w.sum()
        return w[inv]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _, img_path, msk_path = self.items[i]
        image, mask = read_image_8bit(img_path), read_mask(msk_path)
        if image.shape != mask.shape:
            raise ShapeError(f"{img_path}: image {image.shape} and mask {mask.shape} differ")
        if self.augment is not None:
            image, mask = self.augment(image, mask, self.rng)
        return _normalise(image, self.norms), _targets(
            mask, self.labels, self.thing_list, self.label_divisor
        )


class PhantomDataset(Dataset):  # type: ignore[type-arg]
    """Random augmented patches of a pool of generated 2D phantoms (one class: mitochondria).

    Parameters
    ----------
    n_images: phantoms in the pool, generated once (default 32).
    image_size: side of each phantom in pixels (default 512).
    length: items per epoch (default 256).
    augment: the augmentation (crops to its patch size) (default Augment(patch_size=256,
        scale=(0.75, 1.33))).
    norms: (mean, std) as fractions of 255 (default (0.57571, 0.12765)).
    seed: seed of the pool (phantom seeds seed*100000 + k) and of the augmentation
        (default 0).
    phantom_kwargs: extra keyword arguments of :func:`empanada_rs.phantoms.phantom_2d`.
    """

    def __init__(
        self,
        n_images: int = 32,
        *,
        image_size: int = 512,
        length: int = 256,
        augment: Augment | None = None,
        norms: tuple[float, float] = (0.57571, 0.12765),
        seed: int = 0,
        phantom_kwargs: dict[str, object] | None = None,
    ) -> None:
        from empanada_rs.phantoms import phantom_2d

        if int(n_images) < 1 or int(length) < 1:
            raise InvalidArgumentError("n_images and length must be >= 1")
        _check_norms(norms)
        kw = dict(phantom_kwargs or {})
        self.pool = [
            phantom_2d((image_size, image_size), seed=int(seed) * 100000 + k, **kw)  # type: ignore[arg-type]
            for k in range(int(n_images))
        ]
        self.length = int(length)
        self.augment = augment or Augment(patch_size=256, scale=(0.75, 1.33))
        self.norms = (float(norms[0]), float(norms[1]))
        self.rng = np.random.default_rng(int(seed) + 7919)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ph = self.pool[int(self.rng.integers(len(self.pool)))]
        image, mask = self.augment(ph.image, ph.instances, self.rng)
        return _normalise(image, self.norms), _targets(mask, None, None, None)


def _check_norms(norms: tuple[float, float]) -> None:
    if len(norms) != 2 or not (np.isfinite(norms[1]) and norms[1] > 0):
        raise InvalidArgumentError(f"norms must be (mean, std) with std > 0, got {norms!r}")
