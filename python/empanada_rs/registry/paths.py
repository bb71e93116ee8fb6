"""Where the registry reads and writes.

- ``<home>`` = ``$EMPANADA_RS_HOME`` or ``~/.empanada-rs``: our user configs
  (``<home>/configs``), imported and downloaded model files (``<home>/models``) and archived
  models (``<home>/archived``). Everything the registry writes goes under ``<home>``.
- ``$EMPANADA_HOME`` or ``~/.empanada``: empanada-napari's directory. Its ``configs`` are
  listed and its download cache is reused, but it is never written to."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "EMPANADA_RS_HOME"
EMPANADA_HOME_ENV = "EMPANADA_HOME"


def home() -> Path:
    """Our per-user directory: ``$EMPANADA_RS_HOME`` or ``~/.empanada-rs``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".empanada-rs"


def empanada_home() -> Path:
    """empanada-napari's per-user directory (read only): ``$EMPANADA_HOME`` or ``~/.empanada``."""
    env = os.environ.get(EMPANADA_HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".empanada"


def builtin_config_dir() -> Path:
    """Configs shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "configs"


def empanada_config_dir() -> Path:
    return empanada_home() / "configs"


def user_config_dir() -> Path:
    return home() / "configs"


def models_dir() -> Path:
    """Imported model files and the download cache."""
    return home() / "models"


def archive_dir() -> Path:
    return home() / "archived"
