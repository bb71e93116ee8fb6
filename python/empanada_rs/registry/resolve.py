"""From a model reference (registry name, config path or handle) to a loaded model."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.inference.runner import ModelHandle, resolve_device
from empanada_rs.registry import fetch
from empanada_rs.registry.catalog import config_location
from empanada_rs.registry.config import is_url, read_config


def load_module(path: Path, device: torch.device) -> torch.nn.Module:
    """Load a TorchScript model file onto ``device``."""
    try:
        module = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as e:
        raise InvalidArgumentError(
            f"model: {path} is not a TorchScript model file ({e}); export the model with "
            "torch.jit.script/save or fix the config's model path"
        ) from e
    return module.eval()


def quantized_engine() -> str:
    """The active quantized CPU engine (``"none"`` on builds without one, e.g. some macOS
    wheels, where quantized models cannot run)."""
    return str(torch.backends.quantized.engine)


def quantized_available(config: dict[str, Any]) -> bool:
    """The config names a quantized model that is a URL or an existing file, and this
    PyTorch has a quantized CPU engine."""
    loc = config.get("model_quantized")
    if not loc or quantized_engine() == "none":
        return False
    return is_url(loc) or Path(loc).is_file()


def resolve_model(
    model: str | os.PathLike[str] | ModelHandle,
    *,
    device: str | torch.device | None = "auto",
    use_quantized: bool | None = None,
) -> ModelHandle:
    """A :class:`ModelHandle` ready for inference.

    - ``model``: a registry name (see :func:`list_models`), a path to a ``.yaml`` config, or
      a :class:`ModelHandle` (returned unchanged).
    - ``device``: ``"auto"`` (default: CUDA, then MPS, then CPU) or an explicit device.
    - ``use_quantized``: ``None`` (default) uses the quantized model iff the device is the
      CPU and the config has an available ``model_quantized``; ``True`` asks for it, but the
      float model is still used (with a warning) off the CPU or when there is none (spec
      §8.2); ``False`` always uses the float model.

    URL models are downloaded on first use to ``<home>/models`` (TLS verified)."""
    if isinstance(model, ModelHandle):
        return model
    name, path = config_location(model)
    config = read_config(path)
    dev = resolve_device(device)
    available = dev.type == "cpu" and quantized_available(config)
    quantized = available if use_quantized is None else bool(use_quantized) and available
    if use_quantized and not quantized:
        warnings.warn(
            f"use_quantized: model {name!r} runs the float model (a quantized model runs only "
            f"on the CPU and needs 'model_quantized' in its config; device is {dev})",
            stacklevel=2,
        )
    location = config["model_quantized"] if quantized else config["model"]
    module = load_module(fetch.local_file(location), dev)
    return ModelHandle(module=module, config=config, name=name, device=dev, quantized=quantized)
