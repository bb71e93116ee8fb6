"""The list of known models and what it says about each (spec §9.1, §9.4)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from empanada_rs.cli import NotFoundError
from empanada_rs.registry import paths
from empanada_rs.registry.config import read_config

Source = Literal["builtin", "empanada", "user"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its ``name`` (the config file's stem), the ``config_path`` of its
    YAML and where that lives (``source``: ``"builtin"`` shipped with the package,
    ``"empanada"`` from empanada-napari's ``~/.empanada/configs``, ``"user"`` ours)."""

    name: str
    config_path: Path
    source: Source


def _configs_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".yaml" and p.is_file() and p.stem[:1] != "."
    )


def list_models() -> dict[str, ModelEntry]:
    """Every known model by name, in order: built-ins, then empanada-napari's user configs,
    then ours. A later config with the same name (file stem) replaces an earlier one, so a
    user config shadows a built-in of the same name; the key keeps its first position."""
    models: dict[str, ModelEntry] = {}
    sources: tuple[tuple[Source, Path], ...] = (
        ("builtin", paths.builtin_config_dir()),
        ("empanada", paths.empanada_config_dir()),
        ("user", paths.user_config_dir()),
    )
    for source, directory in sources:
        for path in _configs_in(directory):
            models[path.stem] = ModelEntry(path.stem, path, source)
    return models


def find_model(name: str) -> ModelEntry:
    """The entry named ``name``; :class:`NotFoundError` listing the known names otherwise."""
    models = list_models()
    if name not in models:
        known = ", ".join(models) or "none"
        raise NotFoundError(
            f"model: no model named {name!r}; known models: {known} "
            "(register one with 'empanada-rs models register NAME CONFIG')"
        )
    return models[name]


def _looks_like_path(ref: str | os.PathLike[str]) -> bool:
    if not isinstance(ref, str):
        return True
    return ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref


def config_location(name_or_path: str | os.PathLike[str]) -> tuple[str, Path]:
    """``(name, config path)`` for a registry name or a path to a ``.yaml`` config."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise NotFoundError(f"config: file {path} does not exist; pass a model config .yaml")
        return path.stem, path
    entry = find_model(str(name_or_path))
    return entry.name, entry.config_path


def load_config(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated config (spec §9.2) of a registered model or of a ``.yaml`` file.

    Local ``model`` / ``model_quantized`` paths come back absolute (relative ones resolve
    against the config file's directory); ``class_names`` keys are ints and an absent
    ``model_quantized`` is ``None``. Raises :class:`~empanada_rs.cli.NotFoundError` for an
    unknown name or missing file and :class:`~empanada_rs.errors.ConfigError` for an
    unreadable or invalid config."""
    _, path = config_location(name_or_path)
    return read_config(path)


def label_divisor(config: dict[str, Any]) -> int | None:
    """The training label divisor: ``FINETUNE.dataset_params.label_divisor`` for a
    ``PanopticDataset`` model, ``None`` for single-class datasets."""
    finetune = config.get("FINETUNE") or {}
    if finetune.get("dataset_class") != "PanopticDataset":
        return None
    return int(finetune["dataset_params"]["label_divisor"])


def model_info(name: str) -> str:
    """What a user needs to know to annotate data for finetuning ``name`` (spec §9.4):
    description, patch size divisibility, label divisor, and per class whether it needs
    instance or semantic labels and the first label id to paint (``c * divisor + 1``, or
    ``1`` without a divisor). ``name`` may also be a path to a config."""
    model_name, path = config_location(name)
    config = read_config(path)
    divisor = label_divisor(config)
    things = set(config["thing_list"])
    description = " ".join(str(config.get("description") or "(none)").split())
    lines = [
        f"Model: {model_name}",
        f"Config: {path}",
        f"Description: {description}",
        "",
        "Finetuning:",
        f"  Patch height and width must be divisible by {config['padding_factor']}.",
        f"  Label divisor: {divisor}.",
        "  Classes to annotate:",
    ]
    for cls, cls_name in config["class_names"].items():
        kind = "instance" if cls in things else "semantic"
        first = cls * divisor + 1 if divisor is not None else 1
        lines.append(f"    class {cls} ({cls_name}): {kind} segmentation, first label {first}")
    return "\n".join(lines) + "\n"
