"""Ortho-plane inference (spec §6): the stack flow along xy, xz and yz, then the Rust
consensus (:func:`empanada_rs.orthoplane_consensus`) per class."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from empanada_rs._core import Segmentation, orthoplane_consensus
from empanada_rs.inference.runner import ModelHandle
from empanada_rs.inference.stack import (
    Params3d,
    SlicePredictor,
    Timings,
    feed_stack,
    finish_stack,
)
from empanada_rs.io.readers import VolumeSource

PLANES = ("xy", "xz", "yz")


def consensus(segs: list[Segmentation], params: Params3d) -> Segmentation:
    """One segmentation from the three planes' (instance voting for things, voxel voting
    for stuff; spec §6.3-6.4, with design §3's fixes)."""
    return orthoplane_consensus(
        segs,
        pixel_vote_thr=params.pixel_vote_thr,
        cluster_iou_thr=params.cluster_iou_thr,
        allow_one_view=params.allow_one_view,
        min_size=params.min_size,
        min_extent=params.min_extent,
    )


def run_orthoplane(
    source: VolumeSource,
    predictor: SlicePredictor,
    handle: ModelHandle,
    params: Params3d,
    timings: Timings,
    tick: Callable[[str, int], None] = lambda _p, _n: None,
) -> tuple[Segmentation, dict[str, Segmentation]]:
    """The consensus segmentation and the per-plane stacks it came from.

    The model runs plane after plane; each plane's finish (backward matching, filters,
    per-object ops) runs in a thread while the model already works on the next plane."""
    futures: dict[str, Future[Segmentation]] = {}
    with ThreadPoolExecutor(len(PLANES)) as pool:
        for plane in PLANES:
            pipe = feed_stack(
                source, plane, predictor, handle, params, timings, lambda n, p=plane: tick(p, n)
            )
            futures[plane] = pool.submit(finish_stack, pipe, params)
        t0 = time.perf_counter()
        stacks = {p: futures[p].result() for p in PLANES}
    seg = consensus([stacks[p] for p in PLANES], params)
    timings.postprocess_s += time.perf_counter() - t0
    return seg, stacks
