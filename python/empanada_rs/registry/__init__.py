"""The model registry (spec §9): which models exist, their configs, and loading them.

Models are listed from three config directories, in this order, a later config replacing
an earlier one of the same name (file stem):

1. built-ins shipped in ``empanada_rs/configs`` (MitoNet_v1, MitoNet_v1_mini,
   NucleoNet_base_v2, DropNet_base_v1 and the bundled PhantomMito_v1);
2. empanada-napari's user configs, ``~/.empanada/configs`` (``$EMPANADA_HOME``), so models
   registered there work here unchanged (read only: nothing is ever written there);
3. ours, ``~/.empanada-rs/configs`` (``$EMPANADA_RS_HOME``), where ``register_model`` and
   ``import_model`` write.

URL models download on first use to ``<home>/models`` with TLS verification."""

from empanada_rs.registry.catalog import (
    ModelEntry,
    find_model,
    label_divisor,
    list_models,
    load_config,
    model_info,
)
from empanada_rs.registry.manage import (
    archive_model,
    export_model,
    import_model,
    register_model,
)
from empanada_rs.registry.resolve import load_module, resolve_model

__all__ = [
    "ModelEntry",
    "archive_model",
    "export_model",
    "find_model",
    "import_model",
    "label_divisor",
    "list_models",
    "load_config",
    "load_module",
    "model_info",
    "register_model",
    "resolve_model",
]
