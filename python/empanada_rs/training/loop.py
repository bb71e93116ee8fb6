"""Training and finetuning loops (spec §11.6–11.8, with design §3's fixes).

AdamW (weight decay on weights only: biases and normalisation weights get none) with a
OneCycle schedule whose length is the real number of optimiser steps; mixed precision on
CUDA only. `finetune` freezes the encoder except the chosen stages: `stage1`..`stage4`
unfreeze that stage and every deeper one and match ResNet's `layer1..4` as well as RegNet's
`stage1..4` (upstream matched no ResNet layer); checkpoint and validation cadence is
`max(1, epochs // 5)` (upstream could divide by zero).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from empanada_rs.errors import InvalidArgumentError
from empanada_rs.training.losses import PanopticLoss

__all__ = [
    "FINETUNE_LAYERS",
    "Progress",
    "TrainResult",
    "finetune",
    "optimizer_param_groups",
    "set_trainable_layers",
    "train",
]

FINETUNE_LAYERS = ("none", "stage1", "stage2", "stage3", "stage4", "all")
_ENCODER_STAGE = re.compile(r"(?:^|\.)encoder\.(?:layer|stage)(\d)(?:\.|$)")


@dataclass
class Progress:
    """What the progress callback receives after every optimiser step (and, with
    `validation` set, after each validation).

    Fields: epoch (0-based), epochs, step (global, 1-based), steps (total), losses (the
    loss parts of this step), lr, elapsed_s, validation (dict of metrics or None)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    losses: dict[str, float]
    lr: float
    elapsed_s: float
    validation: dict[str, float] | None = None


@dataclass
class TrainResult:
    """History of a run: per-step losses, validations as (epoch, metrics), the wall time,
    and whether the callback stopped it early."""

    losses: list[dict[str, float]] = field(default_factory=list)
    validations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: bool = False


def optimizer_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Two AdamW groups: weights with `weight_decay`, biases and normalisation weights
    (every parameter with fewer than 2 dimensions) without."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def set_trainable_layers(model: nn.Module, finetune_layer: str) -> list[str]:
    """Freeze the encoder except `finetune_layer` and deeper stages; everything outside the
    encoder stays trainable. Returns the names of the trainable encoder parameters.

    Parameters
    ----------
    model: eager or TorchScript model whose encoder parameters are named `encoder.*`.
    finetune_layer: "none" (encoder frozen), "stage1".."stage4" (that stage and deeper
        ones trainable: ResNet `layer1..4`, RegNet `stage1..4`), or "all".
    """
    if finetune_layer not in FINETUNE_LAYERS:
        raise InvalidArgumentError(
            f"finetune_layer must be one of {list(FINETUNE_LAYERS)}, got {finetune_layer!r}"
        )
    first = int(finetune_layer[-1]) if finetune_layer.startswith("stage") else None
    trainable = []
    for name, p in model.named_parameters():
        if "encoder" not in name.split("."):
            p.requires_grad_(True)
            continue
        if finetune_layer == "all":
            on = True
        elif first is None:
            on = False
        else:
            m = _ENCODER_STAGE.search(name)
            on = m is not None and int(m.group(1)) >= first
        p.requires_grad_(on)
        if on:
            trainable.append(name)
    return trainable


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(
    model: nn.Module,
    dataset: Dataset,  # type: ignore[type-arg]
    *,
    epochs: int | None = None,
    iterations: int | None = None,
    batch_size: int = 16,
    max_lr: float = 0.003,
    pct_start: float = 0.3,
    weight_decay: float = 0.1,
    criterion: nn.Module | None = None,
    sample_weights: np.ndarray | None = None,
    amp: bool | None = None,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    seed: int = 0,
    callback: Callable[[Progress], bool | None] | None = None,
    validate: Callable[[nn.Module], dict[str, float]] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_extra: dict[str, object] | None = None,
    channels_last: bool | None = None,
) -> TrainResult:
    """Train `model` in place on `dataset` (items `(image, target)`, see
    :mod:`empanada_rs.training.datasets`).

    Parameters
    ----------
    model: a model whose train-mode forward returns `sem_logits`, `ctr_hmp`, `offsets`
        (and `sem_points`, `point_coords` for PointRend models).
    dataset: the training items.
    epochs: passes over the loader; give this or `iterations` (default None).
    iterations: optimiser steps wanted; epochs = max(1, iterations // batches per epoch)
        (the widget's rule) (default None).
    batch_size: images per step, last incomplete batch dropped (default 16).
    max_lr, pct_start: OneCycle peak learning rate and warm-up share (default 0.003, 0.3).
    weight_decay: AdamW decay of weight tensors (default 0.1).
    criterion: loss returning (total, parts) (default PanopticLoss()).
    sample_weights: per-item weights for a WeightedRandomSampler with replacement
        (default None: shuffled).
    amp: mixed precision; None: on when training on CUDA (default None).
    device: torch device; None: CUDA when available, else CPU (default None).
    num_workers: DataLoader workers (default 0).
    seed: seed of the shuffling (default 0).
    callback: called with a :class:`Progress` after each step and validation; returning
        False stops training (default None).
    validate: called with the model (eval mode) every max(1, epochs // 5) epochs and at
        the end; returns metrics (default None).
    checkpoint: file to save `{state_dict, epoch, **checkpoint_extra}` to at the same
        cadence (default None).
    checkpoint_extra: extra entries of the checkpoint, e.g. arch and norms (default None).
    channels_last: run in channels-last memory format (CPU depthwise convolutions are
        several times faster so); None: on CPU only. The model is returned contiguous
        (default None).
    """
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size!r}")
    n_batches = len(dataset) // batch_size  # type: ignore[arg-type]
    if n_batches < 1:
        raise InvalidArgumentError(
            f"the dataset has {len(dataset)} items, fewer than batch_size={batch_size}: "  # type: ignore[arg-type]
            "add data or lower batch_size"
        )
    if (epochs is None) == (iterations is None):
        raise InvalidArgumentError("give exactly one of epochs and iterations")
    if iterations is not None:
        if iterations < 1:
            raise InvalidArgumentError(f"iterations must be >= 1, got {iterations!r}")
        epochs = max(1, iterations // n_batches)
    assert epochs is not None
    if epochs < 1:
        raise InvalidArgumentError(f"epochs must be >= 1, got {epochs!r}")
    dev = _device(device)
    use_amp = (dev.type == "cuda") if amp is None else bool(amp and dev.type == "cuda")
    crit = criterion if criterion is not None else PanopticLoss()
    model.to(dev)
    cl = (dev.type == "cpu") if channels_last is None else bool(channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    model.to(memory_format=fmt)  # type: ignore[call-overload]
    gen = torch.Generator().manual_seed(int(seed))
    if sample_weights is not None:
        sampler = WeightedRandomSampler(
            torch.as_tensor(sample_weights, dtype=torch.double),
            len(dataset),  # type: ignore[arg-type]
            replacement=True,
            generator=gen,
        )
        loader = DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers
        )
    else:
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            generator=gen,
            drop_last=True,
            num_workers=num_workers,
        )
    groups = optimizer_param_groups(model, weight_decay)
    if not any(g["params"] for g in groups):
        raise InvalidArgumentError("the model has no trainable parameters")
    opt = torch.optim.AdamW(groups, lr=max_lr)  # type: ignore[arg-type]
    total = epochs * n_batches
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total, pct_start=pct_start
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    every = max(1, epochs // 5)
    res = TrainResult()
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        model.train()
        for images, target in loader:
            images = images.to(dev, non_blocking=True).contiguous(memory_format=fmt)
            target = {k: v.to(dev, non_blocking=True) for k, v in target.items()}
            with torch.autocast(dev.type, enabled=use_amp):
                out = model(images)
                loss, parts = crit(out, target)
            if not math.isfinite(parts["total_loss"]):
                raise FloatingPointError(
                    f"loss became {parts['total_loss']} at step {step + 1}: lower max_lr"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            res.losses.append(parts)
            if callback is not None:
                stop = callback(
                    Progress(
                        epoch,
                        epochs,
                        step,
                        total,
                        parts,
                        sched.get_last_lr()[0],
                        time.perf_counter() - t0,
                    )
                )
                if stop is False:
                    res.stopped = True
                    break
        if res.stopped:
            break
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            if checkpoint is not None:
                state = {"state_dict": model.state_dict(), "epoch": epoch + 1}
                state.update(checkpoint_extra or {})
                torch.save(state, Path(checkpoint))
            if validate is not None:
                model.eval()
                with torch.no_grad():
                    metrics = validate(model)
                res.validations.append((epoch + 1, metrics))
                if callback is not None:
                    callback(
                        Progress(
                            epoch,
                            epochs,
                            step,
                            total,
                            res.losses[-1],
                            sched.get_last_lr()[0],
                            time.perf_counter() - t0,
                            validation=metrics,
                        )
                    )
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    model.eval()
    res.elapsed_s = time.perf_counter() - t0
    return res


def finetune(
    model: nn.Module,
    dataset: Dataset,  # type: ignore[type-arg]
    *,
    finetune_layer: str = "none",
    epochs: int | None = None,
    iterations: int | None = None,
    **kwargs: object,
) -> TrainResult:
    """Finetune a (possibly TorchScript) model: freeze its encoder except `finetune_layer`
    (see :func:`set_trainable_layers`; default "none"), then :func:`train` with the same
    keyword arguments (`epochs` or `iterations`, `batch_size`, `max_lr`, ...)."""
    set_trainable_layers(model, finetune_layer)
    return train(model, dataset, epochs=epochs, iterations=iterations, **kwargs)  # type: ignore[arg-type]
