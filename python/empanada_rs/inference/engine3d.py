"""``segment_3d``: 3D (stack or ortho-plane) panoptic segmentation of a volume."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt
import torch

from empanada_rs._core import Segmentation, label_statistics
from empanada_rs.errors import InvalidArgumentError
from empanada_rs.inference.orthoplane import run_orthoplane
from empanada_rs.inference.runner import ModelHandle, resolve_device
from empanada_rs.inference.stack import LocalPredictor, Params3d, SlicePredictor, Timings, run_stack
from empanada_rs.io.outputs import ZarrOutput, check_output, parse_chunks, store_path
from empanada_rs.io.readers import PLANE_AXIS, open_volume

#: The field set of :class:`Params3d`, for keyword checking.
_PARAM_NAMES = {f.name for f in dataclasses.fields(Params3d)}


@dataclass
class Segment3dResult:
    """What :func:`segment_3d` returns.

    - ``labels``: class name -> label volume (ids ``1..N``; int32 numpy, or the written
      ``zarr.Array`` when a store was requested).
    - ``stacks``: plane -> panoptic stack (ids ``class * label_divisor + k``), only with
      ``return_panoptic_stacks=True``; numpy or zarr like ``labels``.
    - ``objects``: class name -> table of the objects in ``labels``: ``ids``, ``counts``
      (voxels), ``boxes`` (z0, y0, x0, z1, y1, x1; ends exclusive), ``centroids`` (z, y, x).
    - ``segmentation``: the final sparse :class:`Segmentation` (per class, before
      renumbering); ``plane_segmentations``: each plane's (ortho-plane or one plane).
    - ``class_ids``: class name -> class id; ``store``: the zarr store's path or None.
    - ``timings``: seconds: ``io_s`` (reading slices), ``model_s`` (normalisation,
      downsampling and model), ``postprocess_s`` (Rust post-processing the caller waited
      on), ``write_s`` (painting / writing outputs), ``total_s``.
    """

    labels: dict[str, Any]
    objects: dict[str, dict[str, npt.NDArray[Any]]]
    segmentation: Segmentation
    plane_segmentations: dict[str, Segmentation]
    class_ids: dict[str, int]
    stacks: dict[str, Any] = field(default_factory=dict)
    store: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _resolve_model(
    model: Any, device: str | torch.device, use_quantized: bool | None
) -> ModelHandle:
    if isinstance(model, ModelHandle):
        return model
    if model is None:
        raise InvalidArgumentError("model: pass a model name, a model file path or a ModelHandle")
    try:
        from empanada_rs.registry import resolve_model  # type: ignore[attr-defined]
    except ImportError as e:
        raise InvalidArgumentError(
            f"model: {model!r} needs the model registry, which is not available in this "
            "build; pass a ModelHandle"
        ) from e
    handle: ModelHandle = resolve_model(model, device=str(device), use_quantized=use_quantized)
    return handle


def _table(stats: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    return {k: stats[k] for k in ("ids", "counts", "boxes", "centroids")}


def _objects_table(seg: Segmentation, class_id: int) -> dict[str, npt.NDArray[Any]]:
    """Object table from the sparse objects (no dense volume), computed by the core:
    ids 1..N in object order, voxel counts, tight boxes and centroids."""
    stats = seg.statistics(class_id)
    return {k: stats[k] for k in ("ids", "counts", "boxes", "centroids")}


def segment_3d(
    volume: Any,
    model: Any = None,
    *,
    plane: str = "xy",
    orthoplane: bool = True,
    return_panoptic_stacks: bool = False,
    zarr_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    ome_zarr: bool = False,
    chunks: int | Sequence[int] | str = 256,
    overwrite: bool = False,
    channel_axis: int | None = None,
    channel: int = 0,
    device: str | torch.device = "auto",
    devices: Sequence[str | torch.device] | None = None,
    use_quantized: bool | None = None,
    progress: bool | Callable[[str, int, int], None] = False,
    **params: Any,
) -> Segment3dResult:
    """Panoptic 3D segmentation of ``volume`` (spec §5-8).

    ``volume``: a (z, y, x) numpy / zarr / dask array, or a path to a tif, npy or zarr
    (OME-Zarr reads level 0); 4D volumes take one channel (``channel_axis``, default a
    leading or trailing axis of size 1/3/4; ``channel``, default 0).
    ``model``: a :class:`ModelHandle`, or a registered model name / model file (resolved
    by ``empanada_rs.registry.resolve_model`` on ``device``, ``use_quantized``).

    - ``plane`` ("xy"): the inference plane of stack mode; ignored with ``orthoplane``.
    - ``orthoplane`` (True, the 1.2.4 default): xy, xz and yz stacks and their consensus.
    - ``return_panoptic_stacks`` (False): also return/write each plane's panoptic stack.
    - ``zarr_dir`` (None: results in memory): write results to ``<zarr_dir>/<name>.zarr``
      (or to ``zarr_dir`` itself when it ends in ``.zarr``); ``name`` defaults to the
      input's file name or "volume"; ``ome_zarr`` (False) writes an OME-Zarr image with
      label groups instead (``<name>.ome.zarr``); ``chunks`` (256, or three sizes, or
      "a,b,c"); ``overwrite`` (False) refuses an existing store.
    - ``device`` ("auto"), or ``devices`` (None; e.g. ["cuda:0", "cuda:1"]): one worker
      process per device shares the slices.
    - ``progress``: True for a progress bar on stderr per plane, or a callable
      ``(plane, done, total)``.
    - ``**params``: :class:`~empanada_rs.inference.stack.Params3d` fields (downsampling,
      confidence_thr, center_confidence_thr, center_min_distance, fine_boundaries,
      semantic_only, median_kernel_size, median_mode, min_size, min_extent,
      label_divisor, merge_iou_thr, merge_ioa_thr, erode, dilate, fill_holes,
      pixel_vote_thr, allow_one_view, cluster_iou_thr, batch_size, normalize).
    """
    t_start = time.perf_counter()
    unknown = set(params) - _PARAM_NAMES
    if unknown:
        raise InvalidArgumentError(
            f"params: unknown parameter(s) {sorted(unknown)}; valid: {sorted(_PARAM_NAMES)}"
        )
    p = Params3d(**params)
    if plane not in PLANE_AXIS:
        raise InvalidArgumentError(f"plane: {plane!r} is not a plane; use 'xy', 'xz' or 'yz'")
    chunk = parse_chunks(chunks)
    timings = Timings()
    t0 = time.perf_counter()
    source = open_volume(volume, channel_axis=channel_axis, channel=channel)
    name = name or source.name
    out_path = None
    if zarr_dir is not None:
        out_path = store_path(zarr_dir, name, ome=ome_zarr)
        check_output(out_path, overwrite)  # fail before any inference
    if devices is None:
        dev = resolve_device(device)
    value_range = source.value_range(p.normalize)
    timings.io_s += time.perf_counter() - t0
    handle = _resolve_model(model, device if devices is None else "cpu", use_quantized)
    if devices is None:
        handle.module.to(dev)
        handle.device = dev

    bars: dict[str, Any] = {}

    def tick(pl: str, n: int) -> None:
        if callable(progress):
            bars[pl] = bars.get(pl, 0) + n
            progress(pl, bars[pl], source.n_slices(pl))
        elif progress:
            if pl not in bars:
                from empanada_rs.cli import progress as bar

                bars[pl] = bar(source.n_slices(pl), f"{pl} slices")
            bars[pl].update(n)

    def run(predictor: SlicePredictor) -> tuple[Segmentation, dict[str, Segmentation]]:
        if orthoplane:
            return run_orthoplane(source, predictor, handle, p, timings, tick)
        seg = run_stack(source, plane, predictor, handle, p, timings, lambda n: tick(plane, n))
        return seg, {plane: seg}

    try:
        if devices is not None:
            from empanada_rs.inference.multigpu import MultiDevicePredictor

            with MultiDevicePredictor(handle, p, value_range, devices) as multi:
                seg, stacks = run(multi)
        else:
            seg, stacks = run(LocalPredictor(handle, p, value_range))
    finally:
        for bar in bars.values():
            if hasattr(bar, "close"):
                bar.close()

    t0 = time.perf_counter()
    names = handle.class_names
    class_ids = {names.get(c, f"class{c}"): c for c in seg.class_ids}
    labels: dict[str, Any] = {}
    objects: dict[str, dict[str, npt.NDArray[Any]]] = {}
    out_stacks: dict[str, Any] = {}
    if out_path is None:
        for cname, c in class_ids.items():
            vol = seg.to_volume(c)
            labels[cname] = vol
            objects[cname] = _table(label_statistics(vol))
        if return_panoptic_stacks:
            out_stacks = {pl: s.stack_volume() for pl, s in stacks.items()}
    else:
        store = ZarrOutput(out_path, chunks=chunk, ome=ome_zarr, overwrite=overwrite)
        if ome_zarr:
            store.write_image(source)
        for cname, c in class_ids.items():
            labels[cname] = store.write_class(seg, c, cname)
            objects[cname] = _objects_table(seg, c)
        if return_panoptic_stacks:
            out_stacks = {pl: store.write_panoptic(s, pl) for pl, s in stacks.items()}
    timings.write_s += time.perf_counter() - t0
    times = timings.as_dict()
    times["total_s"] = time.perf_counter() - t_start
    return Segment3dResult(
        labels=labels,
        objects=objects,
        segmentation=seg,
        plane_segmentations=stacks,
        class_ids=class_ids,
        stacks=out_stacks,
        store=out_path,
        timings=times,
    )
