"""Drives the reference implementation's stack (3D) path on precomputed per-slice model
outputs: `PanopticDeepLabRenderEngine3d` with `infer` returning each slice's outputs, the
forward matching worker function run in-process, backward matching, trackers, filters and
the plugin's `stack_postprocessing` (empanada_napari imports napari, which is not
installed, so its call sequence is written out here: `Engine3d.infer_on_axis` then
`stack_postprocessing`). Every computation is the reference's own except the two-line
renumbering of `instance_relabel` (ids 1..N in tracker order, runs sorted by start).
"""

from __future__ import annotations

import queue as queue_mod
import sys
import types

import numpy as np


def _stub(name: str, **attrs) -> None:
    # Modules the reference imports at top level for stages not driven here (progress
    # bars, dask-backed zarr writing); stand-ins only when they are not installed.
    try:
        __import__(name)
    except ImportError:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod


_stub("tqdm", tqdm=lambda it=None, *a, **k: it)
_stub("dask")
_stub("joblib", delayed=lambda f: f)

try:
    import torch
    from empanada.inference import filters
    from empanada.inference.engines import PanopticDeepLabRenderEngine3d
    from empanada.inference.patterns import (
        backward_matching,
        create_matchers,
        fill_volume,
        finish_tracking,
        forward_matching,
        update_trackers,
    )
    from empanada.inference.tracker import InstanceTracker

    HAVE_REFERENCE = True
except ImportError:  # pragma: no cover - the test set-up installs it
    HAVE_REFERENCE = False

AXES = {"xy": 0, "xz": 1, "yz": 2}


class _NoModel(torch.nn.Module if HAVE_REFERENCE else object):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))  # to_model_device reads a parameter

    def forward(self, x):  # pragma: no cover - never called
        raise AssertionError("infer is replaced by precomputed outputs")


class _Pipe:
    def __init__(self) -> None:
        self.value = None

    def send(self, v) -> None:
        self.value = v

    def close(self) -> None:
        pass


def _instance_relabel(tracker) -> dict:
    # empanada_napari.inference.instance_relabel: ids 1.. in tracker order, runs sorted.
    out = {}
    for i, attrs in enumerate(tracker.instances.values(), start=1):
        order = np.argsort(attrs["starts"], kind="stable")
        out[i] = {
            "box": attrs["box"],
            "starts": attrs["starts"][order],
            "runs": attrs["runs"][order],
        }
    return out


def reference_stack(
    sem: np.ndarray,
    ctr_hmp: np.ndarray,
    offsets: np.ndarray,
    shape: tuple[int, int, int],
    plane: str = "xy",
    *,
    labels=(1,),
    thing_list=(1,),
    label_divisor: int = 10000,
    confidence_thr: float = 0.5,
    nms_threshold: float = 0.1,
    nms_kernel: int = 3,
    stuff_area: int = 64,
    void_label: int = 0,
    median_kernel_size: int = 3,
    merge_iou_thr: float = 0.25,
    merge_ioa_thr: float = 0.25,
    min_size: int = 500,
    min_extent: int = 5,
    return_panoptic: bool = False,
) -> dict[int, np.ndarray] | tuple[dict[int, np.ndarray], np.ndarray]:
    """The reference's final per-class int32 volumes for stacked slice outputs
    (`sem` (N, C, Hp, Wp), `ctr_hmp` (N, hp, wp), `offsets` (N, 2, hp, wp))."""
    axis = AXES[plane]
    n = shape[axis]
    size = tuple(s for a, s in enumerate(shape) if a != axis)
    engine = PanopticDeepLabRenderEngine3d(
        _NoModel(),
        thing_list=list(thing_list),
        label_divisor=label_divisor,
        stuff_area=stuff_area,
        void_label=void_label,
        nms_threshold=nms_threshold,
        nms_kernel=nms_kernel,
        confidence_thr=confidence_thr,
        median_kernel_size=median_kernel_size,
        coarse_boundaries=True,
    )
    outputs = iter(range(n))

    def infer(image, render_steps=2):
        k = next(outputs)
        return {
            "sem": torch.from_numpy(np.ascontiguousarray(sem[k]))[None],
            "ctr_hmp": torch.from_numpy(np.ascontiguousarray(ctr_hmp[k]))[None, None],
            "offsets": torch.from_numpy(np.ascontiguousarray(offsets[k]))[None],
        }

    engine.infer = infer

    # Engine3d.infer_on_axis, with the matcher process's function run in this process.
    pans = []
    image = torch.zeros((1, 1, *size))
    with torch.no_grad():
        for _ in range(n):
            pan_seg = engine(image, size, 1)
            if pan_seg is not None:
                pans.append(pan_seg.squeeze().cpu().numpy())
        for pan_seg in engine.end(1) or []:
            pans.append(pan_seg.squeeze().cpu().numpy())
    engine.reset()
    return reference_track(
        pans,
        shape,
        plane,
        labels=labels,
        thing_list=thing_list,
        label_divisor=label_divisor,
        merge_iou_thr=merge_iou_thr,
        merge_ioa_thr=merge_ioa_thr,
        min_size=min_size,
        min_extent=min_extent,
        return_panoptic=return_panoptic,
    )


def reference_track(
    pans,
    shape: tuple[int, int, int],
    plane: str = "xy",
    *,
    labels=(1,),
    thing_list=(1,),
    label_divisor: int = 10000,
    merge_iou_thr: float = 0.25,
    merge_ioa_thr: float = 0.25,
    min_size: int = 500,
    min_extent: int = 5,
    return_panoptic: bool = False,
) -> dict[int, np.ndarray] | tuple[dict[int, np.ndarray], np.ndarray]:
    """Forward matching (in-process), backward matching, trackers, filters and
    `stack_postprocessing` on a sequence of 2D panoptic maps."""
    n = shape[AXES[plane]]
    trackers = [InstanceTracker(c, label_divisor, shape, plane) for c in labels]
    matchers = create_matchers(list(thing_list), label_divisor, merge_iou_thr, merge_ioa_thr)
    q: queue_mod.Queue = queue_mod.Queue()
    for pan in pans:
        q.put(pan)
    q.put("finish")
    pipe = _Pipe()
    forward_matching(matchers, q, [], pipe, list(labels), label_divisor, list(thing_list))
    rle_stack = pipe.value[0]
    for index, rle_seg in backward_matching(rle_stack, matchers, n):
        update_trackers(rle_seg, index, trackers)
    finish_tracking(trackers)
    for tracker in trackers:
        filters.remove_small_objects(tracker, min_size=min_size)
        filters.remove_pancakes(tracker, min_span=min_extent)
    panoptic = None
    if return_panoptic:
        panoptic = np.zeros(shape, np.int32)
        for tracker in trackers:
            fill_volume(panoptic, tracker.instances)

    # stack_postprocessing (numpy output, Engine3d.dtype int32).
    out = {}
    for tracker in trackers:
        stack_tracker = InstanceTracker(tracker.class_id, label_divisor, shape, "xy")
        stack_tracker.instances = _instance_relabel(tracker)
        if tracker.class_id in thing_list:
            filters.remove_small_objects(stack_tracker, min_size=min_size)
            filters.remove_pancakes(stack_tracker, min_span=min_extent)
        vol = np.zeros(shape, np.int32)
        fill_volume(vol, stack_tracker.instances)
        out[tracker.class_id] = vol
    if return_panoptic:
        return out, panoptic
    return out
