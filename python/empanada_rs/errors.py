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

__all__ = [
    "ContiguityError",
    "DTypeError",
    "EmpanadaError",
    "InternalError",
    "InvalidArgumentError",
    "LabelOverflowError",
    "NonFiniteError",
    "ShapeError",
]
