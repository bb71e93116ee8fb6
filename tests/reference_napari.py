"""Loads single modules of the reference plugin (``empanada_napari``) without its package
``__init__``, which builds Qt widgets and needs napari. Only for modules that do not
import napari themselves (e.g. ``utils``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_plugin_module(name: str) -> ModuleType:
    import empanada

    root = Path(empanada.__file__).resolve().parents[1] / "empanada_napari"
    key = f"_reference_empanada_napari_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, root / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module
