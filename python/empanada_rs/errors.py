"""Typed errors raised by empanada-rs. All derive from :class:`EmpanadaError`, itself a
:class:`ValueError`, and every message names the offending parameter and the fix."""

from empanada_rs._core import (
    ContiguityError,
    DTypeError,
    EmpanadaError,
    InternalError,
    InvalidArgumentError,
    LabelOverflowError,
    NonFiniteError,
    ShapeError,
)


class ConfigError(EmpanadaError):
    """A model config (spec §9.2) is unreadable, lacks a key or holds a wrong value."""


class OutputExistsError(EmpanadaError):
    """A writer's output already exists; pass ``overwrite=True`` to replace it."""


class ModelError(EmpanadaError):
    """A model file is missing, is not TorchScript, or breaks the model contract (spec §2)."""


__all__ = [
    "ConfigError",
    "ContiguityError",
    "DTypeError",
    "EmpanadaError",
    "InternalError",
    "InvalidArgumentError",
    "LabelOverflowError",
    "ModelError",
    "NonFiniteError",
    "OutputExistsError",
    "ShapeError",
]
