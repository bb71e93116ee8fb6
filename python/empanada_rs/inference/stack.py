"""Stack (3D) inference along one plane (spec §5): slices are read, normalised,
downsampled and batched through the model, and each slice's outputs go straight into a Rust
:class:`~empanada_rs.StackPipeline`, whose background thread runs the median queue, 2D
post-processing and forward matching while the model works on the next batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from empanada_rs._core import Segmentation, StackPipeline
from empanada_rs.errors import InvalidArgumentError
from empanada_rs.inference.params import InferenceParams, check_int, check_number
from empanada_rs.inference.runner import (
    ModelHandle,
    ModelOutputs,
    ModelRunner,
    normalize,
    render_steps_for,
)
from empanada_rs.io.readers import PLANE_AXIS, VolumeSource

MEDIAN_SIZES = (1, 3, 5, 7, 9, 11)


@dataclass(frozen=True)
class Params3d(InferenceParams):
    """3D inference parameters: those of :class:`InferenceParams` (same names and
    defaults as 2D; ``fill_holes`` works per object and per slice on each plane's stack)
    plus, with the 3D widget's defaults (spec §12.3):

    - ``median_kernel_size`` (3; 1, 3, ..., 11) and ``median_mode`` ("recursive", the
      reference's; or "running"): median over slices (§5.3).
    - ``min_size`` (500 voxels), ``min_extent`` (5 slices): 3D filters (§5.6).
    - ``merge_iou_thr`` / ``merge_ioa_thr`` (0.25 / 0.25): slice matching (§5.4).
    - ``erode`` / ``dilate`` (0): per-object morphology steps, applied to each plane's
      stack (§5.6.3).
    - ``pixel_vote_thr`` (2), ``allow_one_view`` (False), ``cluster_iou_thr`` (0.75):
      ortho-plane consensus (§6).
    - ``batch_size`` (1): slices per model call.
    """

    median_kernel_size: int = 3
    median_mode: str = "recursive"
    min_size: int = 500
    min_extent: int = 5
    merge_iou_thr: float = 0.25
    merge_ioa_thr: float = 0.25
    erode: int = 0
    dilate: int = 0
    pixel_vote_thr: int = 2
    allow_one_view: bool = False
    cluster_iou_thr: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.median_kernel_size not in MEDIAN_SIZES:
            raise InvalidArgumentError(
                f"median_kernel_size: {self.median_kernel_size} is not one of {MEDIAN_SIZES}"
            )
        if self.median_mode not in ("recursive", "running"):
            raise InvalidArgumentError(
                f"median_mode: {self.median_mode!r}; use 'recursive' or 'running'"
            )
        for name in ("merge_iou_thr", "merge_ioa_thr", "cluster_iou_thr"):
            check_number(self, name, 0.0, 1.0)
        check_int(self, "min_size", 0)
        check_int(self, "min_extent", 0)
        check_int(self, "erode", 0, 50)
        check_int(self, "dilate", 0, 50)
        check_int(self, "pixel_vote_thr", 1, 3)


@dataclass
class Timings:
    """Seconds spent reading slices (``io_s``), preparing inputs and running the model
    (``model_s``), and in post-processing the model waited on or that ran after it
    (``postprocess_s``: pushes, ``finish``, consensus, per-object ops); ``write_s`` is the
    output writing."""

    io_s: float = 0.0
    model_s: float = 0.0
    postprocess_s: float = 0.0
    write_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {
            "io_s": self.io_s,
            "model_s": self.model_s,
            "postprocess_s": self.postprocess_s,
            "write_s": self.write_s,
            **self.extra,
        }


def downsample(image: npt.NDArray[Any], factor: int) -> npt.NDArray[Any]:
    """Bilinear resize to ``(ceil(H/s), ceil(W/s))`` with OpenCV's ``INTER_LINEAR`` on the
    slice's own dtype (spec §3.1), as the reference does before normalising: uint8 slices
    resize to the same rounded uint8 values, so model inputs are identical."""
    from empanada_rs.inference.engine2d import resize_by

    return resize_by(image, factor)


def prepare_slices(
    slices: Sequence[npt.NDArray[Any]],
    value_range: tuple[float, float],
    norms: tuple[float, float],
    downsampling: int,
) -> list[npt.NDArray[np.float32]]:
    """Downsample, then normalise (one value range for the whole volume) model inputs."""
    return [normalize(downsample(s, downsampling), value_range, norms) for s in slices]


class SlicePredictor(Protocol):
    """Turns the slices of one plane into model outputs, in slice order."""

    def outputs(
        self, source: VolumeSource, plane: str, timings: Timings, tick: Callable[[int], None]
    ) -> Iterator[ModelOutputs]: ...


@dataclass
class LocalPredictor:
    """Runs the model in this process (one device)."""

    handle: ModelHandle
    params: Params3d
    value_range: tuple[float, float]

    def outputs(
        self, source: VolumeSource, plane: str, timings: Timings, tick: Callable[[int], None]
    ) -> Iterator[ModelOutputs]:
        runner = ModelRunner(self.handle)
        p = self.params
        steps = render_steps_for(p.downsampling)
        n = source.n_slices(plane)
        for start in range(0, n, p.batch_size):
            stop = min(n, start + p.batch_size)
            t0 = time.perf_counter()
            raw = source.read_block(plane, start, stop)
            t1 = time.perf_counter()
            images = prepare_slices(raw, self.value_range, self.handle.norms, p.downsampling)
            outs = runner.predict(images, render_steps=steps, interpolate_ins=p.fine_boundaries)
            timings.io_s += t1 - t0
            timings.model_s += time.perf_counter() - t1
            yield from outs
            tick(stop - start)


def new_pipeline(
    shape: tuple[int, int, int], plane: str, params: Params3d, handle: ModelHandle
) -> StackPipeline:
    p = params
    return StackPipeline(
        shape,
        plane,
        labels=handle.labels,
        thing_list=[] if p.semantic_only else handle.thing_list,
        median_kernel_size=p.median_kernel_size,
        median_mode=p.median_mode,
        merge_iou_thr=p.merge_iou_thr,
        merge_ioa_thr=p.merge_ioa_thr,
        **p.core_kwargs(),
    )


def feed_stack(
    source: VolumeSource,
    plane: str,
    predictor: SlicePredictor,
    handle: ModelHandle,
    params: Params3d,
    timings: Timings,
    tick: Callable[[int], None] = lambda _n: None,
) -> StackPipeline:
    """Streams every slice of ``plane`` through the model into a new
    :class:`StackPipeline` and returns it (unfinished: its thread may still be working)."""
    if plane not in PLANE_AXIS:
        raise InvalidArgumentError(f"plane: {plane!r} is not a plane; use 'xy', 'xz' or 'yz'")
    pipe = new_pipeline(source.shape, plane, params, handle)
    for out in predictor.outputs(source, plane, timings, tick):
        t0 = time.perf_counter()
        pipe.push(out.sem, out.ctr_hmp, out.offsets)
        timings.postprocess_s += time.perf_counter() - t0
    return pipe


def finish_stack(pipe: StackPipeline, params: Params3d) -> Segmentation:
    """Backward matching, 3D filters (§5.5-5.6) and the per-object erode / dilate / fill
    holes of one plane's pipeline."""
    from empanada_rs.inference.object_ops import apply_object_ops

    seg = pipe.finish(min_size=params.min_size, min_extent=params.min_extent)
    return apply_object_ops(
        seg, erode=params.erode, dilate=params.dilate, fill_holes=params.fill_holes
    )


def run_stack(
    source: VolumeSource,
    plane: str,
    predictor: SlicePredictor,
    handle: ModelHandle,
    params: Params3d,
    timings: Timings,
    tick: Callable[[int], None] = lambda _n: None,
) -> Segmentation:
    """The 3D segmentation of ``source`` along ``plane`` (spec §5)."""
    pipe = feed_stack(source, plane, predictor, handle, params, timings, tick)
    t0 = time.perf_counter()
    seg = finish_stack(pipe, params)
    timings.postprocess_s += time.perf_counter() - t0
    return seg
