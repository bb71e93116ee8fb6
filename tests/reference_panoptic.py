"""Drives the reference implementation's 2D post-processing (empanada-napari 1.2.4's
vendored `empanada` package) exactly as its Engine2d does, without a model.

Only the call sequence is written here; every computation is the reference's own.
"""

from __future__ import annotations

import numpy as np

try:
    import torch
    from empanada.inference import rle as ref_rle
    from empanada.inference.engines import PanopticDeepLabRenderEngine

    HAVE_REFERENCE = True
except ImportError:  # pragma: no cover - the test set-up installs it
    HAVE_REFERENCE = False


class _NoModel(torch.nn.Module if HAVE_REFERENCE else object):  # type: ignore[misc]
    def forward(self, x):  # pragma: no cover - never called
        raise AssertionError("the post-processing path must not call the model")


def reference_panoptic_2d(
    sem: np.ndarray,
    ctr_hmp: np.ndarray,
    offsets: np.ndarray,
    *,
    thing_list=(1,),
    label_divisor: int = 10000,
    confidence_thr: float = 0.5,
    nms_threshold: float = 0.1,
    nms_kernel: int = 3,
    stuff_area: int = 64,
    void_label: int = 0,
    force_connected: bool = True,
    upsampling: int = 1,
    crop: tuple[int, int] | None = None,
) -> np.ndarray:
    """The reference's label map for the same inputs as `empanada_rs.panoptic_2d`."""
    fine = sem.shape[-2] == ctr_hmp.shape[-2] * upsampling
    engine = PanopticDeepLabRenderEngine(
        _NoModel(),
        thing_list=list(thing_list),
        label_divisor=label_divisor,
        stuff_area=stuff_area,
        void_label=void_label,
        nms_threshold=nms_threshold,
        nms_kernel=nms_kernel,
        confidence_thr=confidence_thr,
        coarse_boundaries=not fine,
    )
    with torch.no_grad():
        ctr_t = torch.from_numpy(np.ascontiguousarray(ctr_hmp)).reshape(1, 1, *ctr_hmp.shape[-2:])
        off_t = torch.from_numpy(np.ascontiguousarray(offsets))[None]
        sem_t = torch.from_numpy(np.ascontiguousarray(sem))[None]
        cells = engine.get_instance_cells(ctr_t, off_t, upsampling)
        pan = engine.postprocess(sem_t, cells)
    h, w = crop if crop is not None else sem.shape[-2:]
    pan = pan[..., :h, :w].squeeze().cpu().numpy().astype(np.int32)
    pan = pan.reshape(h, w)
    if force_connected:
        # Engine2d.force_connected, step by step, with the reference's own CC function.
        for label in thing_list:
            lo, hi = label * label_divisor, (label + 1) * label_divisor
            inst = pan.copy()
            inst[(pan < lo) | (pan >= hi)] = 0
            inst = ref_rle.connected_components(inst).astype(np.int32)
            inst[inst > 0] += lo
            pan[inst > 0] = inst[inst > 0]
    return pan
