"""The 2D engine: one image (or a batch of unrelated images) -> panoptic label map + object
table (spec §3.1, §3.9–3.11, §4, §12.2; design §2–3).

Per image: downsample by ``s`` (bilinear, OpenCV ``INTER_LINEAR`` like the reference) ->
normalise (:func:`~empanada_rs.inference.runner.intensity_range`, computed once on the
full-resolution image so tiles agree) -> pad -> model with ``render_steps = 2 + log2 s`` (the
semantic map comes back at full size) -> :func:`empanada_rs.panoptic_2d` (harden, NMS,
grouping, merge, crop, force-connect). With ``tile_size`` the image is cut by
:func:`empanada_rs.tile_layout`, the tiles go through the model in batches and
:func:`empanada_rs.stitch_tiles` merges them (spec §4). Every post-processing step is the
Rust core's; this module only schedules."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from empanada_rs._core import fill_holes as _fill_holes
from empanada_rs._core import panoptic_2d, stitch_tiles, tile_layout
from empanada_rs.errors import DTypeError, InvalidArgumentError, ShapeError
from empanada_rs.inference.objects import ObjectTable, object_tables
from empanada_rs.inference.params import InferenceParams, check_int
from empanada_rs.inference.roi import Region, polygon_region, viewport_region
from empanada_rs.inference.runner import (
    ModelHandle,
    ModelRunner,
    NormalizeMode,
    intensity_range,
    normalize,
    render_steps_for,
    resolve_device,
)

#: Called with (done, total) model inputs (images or tiles) after each model batch.
ProgressCallback = Callable[[int, int], None]

#: dtypes cv2.resize takes as they are; others are resized as float64.
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


@dataclass(frozen=True)
class Params2D(InferenceParams):
    """2D inference parameters: those of :class:`InferenceParams` (same names and
    defaults as 3D) plus tiling.

    - ``tile_size`` (0): 0 = no tiling; otherwise images with a side above it are cut into
      tiles of this size (clamped per axis to the image), overlapping by ``tile_overlap``.
    - ``tile_overlap`` (None): minimum tile border; None = ``min(128, int(0.1*tile_size))``
      (spec §4.1); must be below half the tile size.
    - ``batch_size`` (4): model inputs (tiles or same-size images) per forward pass."""

    tile_size: int = 0
    tile_overlap: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        t = check_int(self, "tile_size", 0)
        if self.tile_overlap is not None:
            b = check_int(self, "tile_overlap", 0)
            if t > 0 and 2 * b >= t:
                raise InvalidArgumentError(
                    f"tile_overlap: {b} is not below half the tile size ({t}); raise "
                    f"tile_size above {2 * b} or lower tile_overlap below {math.ceil(t / 2)}"
                )


@dataclass
class Segmentation2D:
    """The result of :func:`segment_2d`.

    - ``labels``: the panoptic label map, ``(H, W)`` — or ``(N, Hmax, Wmax)`` in batch mode,
      each image zero-padded at the bottom/right — with ids ``class * label_divisor +
      instance``. dtype int32, or uint32 when tiles were stitched (the reference's dtypes,
      spec §3.11; both hold every id, the core guarantees ids below 2**31). When ``out=``
      was given, ``labels`` is that array.
    - ``objects``: class -> :class:`ObjectTable` (ids, areas, boxes, centroids, image
      index) of the new segmentation; every class of the model has an entry.
    - ``class_names``: class -> name from the model config.
    - ``label_divisor``; ``timings``: seconds spent in ``model``, ``postprocess``, ``total``."""

    labels: npt.NDArray[np.integer]
    objects: dict[int, ObjectTable]
    class_names: dict[int, str]
    label_divisor: int
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of objects per class name."""
        return {
            self.class_names.get(c, f"class{c}"): len(t) for c, t in sorted(self.objects.items())
        }


def resolve_model_handle(
    model: ModelHandle | str | os.PathLike[str],
    *,
    device: str | Any | None = "auto",
    use_quantized: bool | None = None,
) -> ModelHandle:
    """A :class:`ModelHandle` as it is (moved to ``device`` when one is named), or a
    registry name / config path resolved by ``empanada_rs.registry.resolve_model``."""
    if isinstance(model, ModelHandle):
        if device is None or (isinstance(device, str) and device == "auto"):
            return model
        dev = resolve_device(device)
        if dev != model.device:
            model.module.to(dev)
            model = replace(model, device=dev)
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"model: {type(model).__name__} is not a model; pass a ModelHandle, a registered "
            "model name or the path of a model config YAML"
        )
    try:
        from empanada_rs.registry import resolve_model
    except ImportError as e:  # pragma: no cover - the registry ships with the package
        raise InvalidArgumentError(
            "model: resolving names needs empanada_rs.registry, which is missing; "
            "pass a ModelHandle"
        ) from e
    return resolve_model(model, device=device or "auto", use_quantized=use_quantized)


def resize_by(image: npt.NDArray[Any], s: int) -> npt.NDArray[Any]:
    """Bilinear resize to ``(ceil(H/s), ceil(W/s))`` (OpenCV ``INTER_LINEAR``, the
    reference's call, so uint8 images resize to the same uint8 values)."""
    if s == 1:
        return image
    import cv2

    h, w = image.shape
    src = image if image.dtype in _CV2_DTYPES else image.astype(np.float64)
    out = cv2.resize(
        np.ascontiguousarray(src),
        (math.ceil(w / s), math.ceil(h / s)),
        interpolation=cv2.INTER_LINEAR,
    )
    return out.reshape(math.ceil(h / s), math.ceil(w / s))


def _check_image2d(image: Any, name: str = "image") -> npt.NDArray[Any]:
    arr = np.asarray(image)
    if arr.ndim != 2:
        hint = (
            "; pass batch=True (CLI: --batch) for a stack of unrelated images, or use "
            "segment_3d for a volume"
            if arr.ndim == 3
            else ""
        )
        raise ShapeError(f"{name}: expected a 2D (y, x) image, got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise ShapeError(f"{name}: the image is empty {arr.shape}; pass at least one pixel")
    return arr


@dataclass
class _Input:
    """One model input (a whole image or one tile) and how to post-process it."""

    image: npt.NDArray[np.float32]  # normalised, downsampled
    crop: tuple[int, int]  # full-resolution size before padding
    force_connected: bool


class Engine2D:
    """A model plus 2D parameters, reusable across images (the model is loaded once).

    ``model``: a :class:`ModelHandle`, a registered model name or a config YAML path;
    ``device`` ("auto") and ``use_quantized`` (None = the registry's choice) apply when it
    is resolved (a handle is only moved when ``device`` names a device); ``params`` are the
    fields of :class:`Params2D`."""

    def __init__(
        self,
        model: ModelHandle | str | os.PathLike[str],
        *,
        device: str | Any | None = "auto",
        use_quantized: bool | None = None,
        **params: Any,
    ) -> None:
        try:
            self.params = Params2D(**params)
        except TypeError as e:
            raise InvalidArgumentError(
                f"{e}; 2D parameters are {', '.join(Params2D.__dataclass_fields__)}"
            ) from e
        self.handle = resolve_model_handle(model, device=device, use_quantized=use_quantized)
        self.runner = ModelRunner(self.handle)
        self._model_s = 0.0

    # -- parameters derived from the model ---------------------------------------------
    @property
    def thing_list(self) -> list[int]:
        return [] if self.params.semantic_only else self.handle.thing_list

    @property
    def classes(self) -> list[int]:
        return sorted(set(self.handle.labels) | set(self.handle.thing_list))

    def max_id(self) -> int:
        return (max(self.classes, default=1) + 1) * self.params.label_divisor - 1

    # -- scheduling ---------------------------------------------------------------------
    def _layout(self, shape: tuple[int, int]) -> list[tuple[int, int, int, int]] | None:
        t = self.params.tile_size
        if t <= 0 or max(shape) <= t:
            return None
        return tile_layout(shape, t, self.params.tile_overlap)

    def _prepare(
        self, image: npt.NDArray[Any], value_range: tuple[float, float], force_connected: bool
    ) -> _Input:
        small = resize_by(image, self.params.downsampling)
        x = normalize(small, value_range, self.handle.norms)
        return _Input(x, (int(image.shape[0]), int(image.shape[1])), force_connected)

    def _stream(
        self, inputs: Iterable[_Input], progress: ProgressCallback | None, total: int
    ) -> Iterator[npt.NDArray[np.int32]]:
        """Panoptic maps of ``inputs`` in order; consecutive inputs of one size share a
        forward pass (up to ``batch_size``), so only one batch of outputs is held."""
        p = self.params
        render_steps = render_steps_for(p.downsampling)
        pending: list[_Input] = []
        done = 0

        def flush() -> Iterator[npt.NDArray[np.int32]]:
            nonlocal done
            t0 = time.perf_counter()
            outs = self.runner.predict(
                [i.image for i in pending],
                render_steps=render_steps,
                interpolate_ins=p.fine_boundaries,
            )
            self._model_s += time.perf_counter() - t0
            maps = [
                panoptic_2d(
                    o.sem,
                    o.ctr_hmp,
                    o.offsets,
                    thing_list=self.thing_list,
                    force_connected=inp.force_connected,
                    crop=inp.crop,
                    **p.core_kwargs(),
                )
                for inp, o in zip(pending, outs, strict=True)
            ]
            done += len(pending)
            pending.clear()
            if progress is not None:
                progress(done, total)
            yield from maps

        for inp in inputs:
            if pending and (
                pending[0].image.shape != inp.image.shape or len(pending) >= p.batch_size
            ):
                yield from flush()
            pending.append(inp)
        if pending:
            yield from flush()

    def _image_inputs(
        self, image: npt.NDArray[Any], layout: list[tuple[int, int, int, int]] | None
    ) -> Iterator[_Input]:
        value_range = intensity_range(image, self.params.normalize)
        if layout is None:
            yield self._prepare(image, value_range, True)
            return
        for y0, y1, x0, x1 in layout:
            # the reference post-processes tiles without force-connect; stitching splits
            # each tile's objects into connected components itself (spec §4.3)
            yield self._prepare(image[y0:y1, x0:x1], value_range, False)

    def _assemble(
        self,
        maps: Iterator[npt.NDArray[np.int32]],
        shape: tuple[int, int],
        layout: list[tuple[int, int, int, int]] | None,
    ) -> npt.NDArray[np.integer]:
        if layout is None:
            labels: npt.NDArray[np.integer] = next(maps)
        else:
            tiles = [next(maps) for _ in layout]
            labels = stitch_tiles(
                tiles,
                layout,
                shape,
                labels=self.classes,
                thing_list=self.thing_list,
                label_divisor=self.params.label_divisor,
            )
        if self.params.fill_holes:
            labels = _fill_holes(labels)
        return labels

    def _segment_images(
        self, images: Sequence[npt.NDArray[Any]], progress: ProgressCallback | None
    ) -> list[npt.NDArray[np.integer]]:
        shapes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        layouts = [self._layout(s) for s in shapes]
        total = sum(1 if lay is None else len(lay) for lay in layouts)

        def inputs() -> Iterator[_Input]:
            for im, lay in zip(images, layouts, strict=True):
                yield from self._image_inputs(im, lay)

        maps = self._stream(inputs(), progress, total)
        return [self._assemble(maps, s, lay) for s, lay in zip(shapes, layouts, strict=True)]

    def _result(
        self, labels: npt.NDArray[np.integer], maps: Sequence[npt.NDArray[np.integer]], t0: float
    ) -> Segmentation2D:
        objects = object_tables(maps, self.params.label_divisor, self.classes)
        total = time.perf_counter() - t0
        return Segmentation2D(
            labels=labels,
            objects=objects,
            class_names=self.handle.class_names,
            label_divisor=self.params.label_divisor,
            timings={
                "model": self._model_s,
                "postprocess": max(0.0, total - self._model_s),
                "total": total,
            },
        )

    # -- public -------------------------------------------------------------------------
    def segment(
        self,
        image: npt.ArrayLike,
        *,
        viewport: Sequence[int] | None = None,
        polygons: Sequence[npt.ArrayLike] | npt.NDArray[Any] | None = None,
        out: npt.NDArray[np.integer] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Segmentation2D:
        """Segment one 2D image; see :func:`segment_2d` for the arguments."""
        t0 = time.perf_counter()
        self._model_s = 0.0
        arr = _check_image2d(image)
        shape = (int(arr.shape[0]), int(arr.shape[1]))
        if out is not None:
            self._check_out(out, shape)
        if viewport is not None and polygons is not None:
            raise InvalidArgumentError(
                "viewport, polygons: pass one of them; to confine to polygons inside a "
                "viewport, clip the polygons to it"
            )
        region: Region | None = None
        if viewport is not None:
            region = viewport_region(viewport, shape)
        elif polygons is not None:
            region = polygon_region(polygons, shape)

        if region is None:
            labels = self._segment_images([arr], progress)[0]
            if out is None:
                return self._result(labels, [labels], t0)
            out[...] = labels
            return self._result(out, [labels], t0)

        ys, xs = region.slices
        crop = arr[ys, xs]
        if region.mask is not None:
            # the reference blanks the image outside the ROI before inference (spec §12.2)
            crop = np.where(region.mask, crop, np.zeros((), crop.dtype))
        part = self._segment_images([crop], progress)[0]
        if region.mask is not None:
            # ... and confinement means nothing is written outside the polygons
            part = np.where(region.mask, part, np.zeros((), part.dtype))
        if out is None:
            labels = np.zeros(shape, dtype=part.dtype)
            labels[ys, xs] = part
            return self._result(labels, [labels], t0)
        window = out[ys, xs]
        if region.mask is None:
            window[...] = part
        else:
            window[region.mask] = part[region.mask]
        return self._result(out, [part], t0)

    def segment_batch(
        self,
        images: npt.ArrayLike | Sequence[npt.ArrayLike],
        *,
        progress: ProgressCallback | None = None,
    ) -> Segmentation2D:
        """Segment unrelated 2D images independently (each normalised on its own);
        ``labels`` is ``(N, Hmax, Wmax)``, each map zero-padded at the bottom/right."""
        t0 = time.perf_counter()
        self._model_s = 0.0
        if isinstance(images, np.ndarray):
            if images.ndim == 2:
                images = images[None]
            if images.ndim != 3:
                raise ShapeError(
                    f"images: batch mode takes a (N, y, x) stack or a list of 2D images, "
                    f"got shape {images.shape}"
                )
            ims = [_check_image2d(im, f"images[{i}]") for i, im in enumerate(images)]
        else:
            seq: Sequence[Any] = images  # type: ignore[assignment]
            ims = [_check_image2d(im, f"images[{i}]") for i, im in enumerate(seq)]
        if not ims:
            raise ShapeError("images: the batch is empty; pass at least one image")
        maps = self._segment_images(ims, progress)
        hmax = max(m.shape[0] for m in maps)
        wmax = max(m.shape[1] for m in maps)
        dtype = np.result_type(*[m.dtype for m in maps])
        stack = np.zeros((len(maps), hmax, wmax), dtype=dtype)
        for i, m in enumerate(maps):
            stack[i, : m.shape[0], : m.shape[1]] = m
        return self._result(stack, maps, t0)

    def _check_out(self, out: Any, shape: tuple[int, int]) -> None:
        if not isinstance(out, np.ndarray):
            raise InvalidArgumentError(
                f"out: {type(out).__name__} is not a numpy array; pass an integer numpy "
                f"array of shape {shape} or leave out=None"
            )
        if out.shape != shape:
            raise ShapeError(
                f"out: shape {out.shape} differs from the image's {shape}; pass a label "
                "array of the image's shape"
            )
        if out.dtype == np.bool_ or not np.issubdtype(out.dtype, np.integer):
            raise DTypeError(
                f"out: dtype {out.dtype} cannot hold panoptic ids; pass an int32, uint32 or "
                "int64 label array"
            )
        if np.iinfo(out.dtype).max < self.max_id():
            raise DTypeError(
                f"out: dtype {out.dtype} cannot hold ids up to {self.max_id()} "
                f"(label_divisor={self.params.label_divisor}); pass an int32/uint32/int64 "
                "array or lower label_divisor"
            )
        if not out.flags.writeable:
            raise InvalidArgumentError("out: the array is read-only; pass a writable array")


def segment_2d(
    image: npt.ArrayLike | Sequence[npt.ArrayLike],
    model: ModelHandle | str | os.PathLike[str],
    *,
    downsampling: int = 1,
    confidence_thr: float = 0.5,
    center_confidence_thr: float = 0.1,
    center_min_distance: int = 3,
    fine_boundaries: bool = False,
    semantic_only: bool = False,
    fill_holes: bool = False,
    label_divisor: int = 10000,
    tile_size: int = 0,
    tile_overlap: int | None = None,
    batch_size: int = 4,
    normalize: NormalizeMode = "robust",
    batch: bool = False,
    viewport: Sequence[int] | None = None,
    polygons: Sequence[npt.ArrayLike] | npt.NDArray[Any] | None = None,
    out: npt.NDArray[np.integer] | None = None,
    device: str | Any | None = "auto",
    use_quantized: bool | None = None,
    progress: ProgressCallback | None = None,
) -> Segmentation2D:
    """Panoptic segmentation of a 2D image (the plugin's "2D Inference", spec §12.2).

    - ``image``: ``(H, W)`` integer or float image (floats in [0, 1] or [0, 255]); with
      ``batch=True`` a ``(N, H, W)`` stack or a list of 2D images of any sizes.
    - ``model``: a :class:`ModelHandle`, a registered model name or a model config YAML.
    - ``downsampling`` ... ``normalize``: see :class:`Params2D` (defaults as there).
    - ``batch`` (False): segment each image of a stack independently; ``labels`` is then
      ``(N, Hmax, Wmax)``. Not combinable with ``viewport``, ``polygons`` or ``out``.
    - ``viewport`` (None): ``(y0, x0, y1, x1)``: segment only this box; the rest is 0.
    - ``polygons`` (None): list of ``(N, 2)`` ``(y, x)`` vertex arrays: segment the
      polygons' bounding box with the image blanked outside them; only pixels inside a
      polygon get labels.
    - ``out`` (None): an existing integer label array of the image's shape; the result is
      written into it (only the confined region when ``viewport``/``polygons`` are given)
      and returned as ``labels``.
    - ``device`` ("auto"), ``use_quantized`` (None): where and which variant of a named
      model to run (see :func:`empanada_rs.registry.resolve_model`).
    - ``progress`` (None): ``callback(done, total)`` over model inputs (tiles or images).

    Returns a :class:`Segmentation2D`. Bad input raises a typed
    :class:`~empanada_rs.errors.EmpanadaError` naming the parameter and the fix."""
    engine = Engine2D(
        model,
        device=device,
        use_quantized=use_quantized,
        downsampling=downsampling,
        confidence_thr=confidence_thr,
        center_confidence_thr=center_confidence_thr,
        center_min_distance=center_min_distance,
        fine_boundaries=fine_boundaries,
        semantic_only=semantic_only,
        fill_holes=fill_holes,
        label_divisor=label_divisor,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        batch_size=batch_size,
        normalize=normalize,
    )
    if batch:
        if viewport is not None or polygons is not None or out is not None:
            raise InvalidArgumentError(
                "batch: batch mode cannot be combined with viewport, polygons or out; "
                "segment those images one at a time"
            )
        return engine.segment_batch(image, progress=progress)  # type: ignore[arg-type]
    return engine.segment(
        image,  # type: ignore[arg-type]
        viewport=viewport,
        polygons=polygons,
        out=out,
        progress=progress,
    )
