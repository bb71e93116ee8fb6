"""Architectures, TorchScript export/loading and quantization (spec §2, §8.2, §10).

Our classes use the parameter names of empanada's plugin-facing TorchScript models, so
``load_state_dict(strict=True)`` of an empanada model file's state dict works (finetuning
MitoNet), and files we save run unchanged in empanada.
"""

from empanada_rs.models.bifpn import PanopticBiFPN, PanopticBiFPNPR
from empanada_rs.models.build import ARCHITECTURES, build_model
from empanada_rs.models.deeplab import PanopticDeepLab, PanopticDeepLabPR
from empanada_rs.models.export import load_model, save_model, script_model, validate_model
from empanada_rs.models.quantize import default_backend, quantize_model
from empanada_rs.models.resnet import ENCODERS

__all__ = [
    "ARCHITECTURES",
    "ENCODERS",
    "PanopticBiFPN",
    "PanopticBiFPNPR",
    "PanopticDeepLab",
    "PanopticDeepLabPR",
    "build_model",
    "default_backend",
    "load_model",
    "quantize_model",
    "save_model",
    "script_model",
    "validate_model",
]
