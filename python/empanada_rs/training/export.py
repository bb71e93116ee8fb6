"""Write a trained model as a model file plus its config YAML (spec §9.2)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from empanada_rs.errors import InvalidArgumentError, OutputExistsError

__all__ = ["default_finetune_config", "export_model", "write_config"]


def default_finetune_config(
    thing_list: Sequence[int] = (1,),
    labels: Sequence[int] = (1,),
    label_divisor: int = 1000,
) -> dict[str, object]:
    """The `FINETUNE` block empanada's shipped models carry (spec §9.2), for a one-class
    model (SingleClassInstanceDataset) or a multi-class one (PanopticDataset)."""
    multi = len(labels) > 1
    dataset_params: dict[str, object] = {"weight_gamma": 0.7}
    if multi:
        dataset_params.update(
            labels=list(labels), thing_list=list(thing_list), label_divisor=label_divisor
        )
    return {
        "criterion": "PanopticLoss",
        "criterion_params": {
            "ce_weight": 1,
            "mse_weight": 200,
            "l1_weight": 0.01,
            "pr_weight": 1,
            "top_k_percent": 0.2,
        },
        "dataset_class": "PanopticDataset" if multi else "SingleClassInstanceDataset",
        "dataset_params": dataset_params,
        "engine": "PanopticDeepLabEngine",
        "engine_params": {
            "confidence_thr": 0.5,
            "label_divisor": label_divisor,
            "nms_kernel": 7,
            "nms_threshold": 0.1,
            "stuff_area": 64,
            "thing_list": list(thing_list),
            "void_label": 0,
        },
    }


def write_config(path: str | os.PathLike[str], config: Mapping[str, object]) -> Path:
    """Write a config YAML atomically (temporary file renamed into place)."""
    import yaml

    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(dict(config), f, sort_keys=False, default_flow_style=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def export_model(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    name: str,
    *,
    norms: tuple[float, float],
    padding_factor: int,
    thing_list: Sequence[int] = (1,),
    labels: Sequence[int] = (1,),
    class_names: Mapping[int, str] | None = None,
    description: str = "",
    finetune: Mapping[str, object] | None = None,
    quantize: bool = False,
    calibration: Iterable[torch.Tensor] | None = None,
    model_ref: str | None = None,
    overwrite: bool = False,
    extra: Mapping[str, object] | None = None,
) -> tuple[Path, Path]:
    """Save `model` as `<out_dir>/<name>.pth` (TorchScript, via
    :func:`empanada_rs.models.save_model`) and write `<out_dir>/<name>.yaml` with the spec
    §9.2 keys. Returns (model path, config path).

    Parameters
    ----------
    model: the trained eager model (or a scripted one).
    out_dir: an existing directory.
    name: file stem and model name.
    norms: (mean, std) as fractions of 255.
    padding_factor: input sides must be multiples of this (16 for PanopticDeepLab with
        output stride 16, 32 with stride 32, 128 for BiFPN).
    thing_list, labels: instance classes and all classes (default (1,), (1,)).
    class_names: class id -> name (default {1: "mito"} style: "class<id>").
    description: free text (default "").
    finetune: the FINETUNE block (default :func:`default_finetune_config`).
    quantize: also write `<name>_quantized.pth` with
        :func:`empanada_rs.models.quantize_model` (default False).
    calibration: normalised input batches (B, 1, H, W) to calibrate the quantization
        with; required when `quantize` (default None).
    model_ref: text for the `model` key instead of the absolute file path, e.g. a path
        relative to the package (default None). `model_quantized` follows it with the
        `_quantized` suffix.
    overwrite: replace existing files (default False: raise OutputExistsError).
    extra: more top-level keys (e.g. the architecture) (default None).
    """
    from empanada_rs import models

    out = Path(out_dir)
    if not out.is_dir():
        raise InvalidArgumentError(f"out_dir {out} is not a directory; create it first")
    if not name or "/" in name or "\\" in name:
        raise InvalidArgumentError(f"name must be a plain file stem, got {name!r}")
    if int(padding_factor) < 1:
        raise InvalidArgumentError(f"padding_factor must be >= 1, got {padding_factor!r}")
    pth, cfg = out / f"{name}.pth", out / f"{name}.yaml"
    qpth = out / f"{name}_quantized.pth"
    if quantize and calibration is None:
        raise InvalidArgumentError("calibration: quantize=True needs calibration batches")
    for p in (pth, cfg) + ((qpth,) if quantize else ()):
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} exists; pass overwrite=True to replace it")
    models.save_model(model, pth)
    q_ref = None
    if quantize:
        models.save_model(models.quantize_model(model, calibration), qpth)
        q_ref = (
            str(qpth.resolve())
            if model_ref is None
            else model_ref.removesuffix(".pth") + "_quantized.pth"
        )
    for p in (pth, qpth) if quantize else (pth,):
        p.chmod(0o644)  # readable like any package file (the writer uses a private temp)
    names = dict(class_names) if class_names else {int(c): f"class{c}" for c in labels}
    config: dict[str, object] = {
        "model": str(pth.resolve()) if model_ref is None else model_ref,
        "model_quantized": q_ref,
        "norms": {"mean": float(norms[0]), "std": float(norms[1])},
        "padding_factor": int(padding_factor),
        "thing_list": [int(t) for t in thing_list],
        "labels": [int(c) for c in labels],
        "class_names": {int(k): str(v) for k, v in names.items()},
        "description": description,
        "FINETUNE": dict(finetune)
        if finetune is not None
        else default_finetune_config(thing_list, labels),
    }
    config.update(extra or {})
    write_config(cfg, config)
    return pth, cfg
