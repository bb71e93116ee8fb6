"""Inference engines: model execution (:mod:`.runner`) and the 2D / 3D engines that stream
model outputs into the Rust core."""

from empanada_rs.inference.runner import (
    ModelHandle,
    ModelOutputs,
    ModelRunner,
    intensity_range,
    logits_to_prob,
    normalize,
    render_steps_for,
    resolve_device,
)

__all__ = [
    "ModelHandle",
    "ModelOutputs",
    "ModelRunner",
    "intensity_range",
    "logits_to_prob",
    "normalize",
    "render_steps_for",
    "resolve_device",
]
