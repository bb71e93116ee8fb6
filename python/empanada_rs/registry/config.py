"""Reading, validating and writing model configs (spec §9.2).

A relative local ``model`` / ``model_quantized`` path in a config file resolves against the
directory that holds the config file (so a packaged config can say
``model: ../weights/X.pth``); :func:`read_config` returns such paths absolute, which makes a
loaded config self-contained wherever it is written next."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from empanada_rs.errors import ConfigError

#: Config keys that name model files.
MODEL_KEYS = ("model", "model_quantized")
#: Inheritance key of empanada's config loader (a parent config, relative to the file).
BASE_KEY = "BASE"

_EXAMPLE_NORMS = "norms: {mean: 0.57571, std: 0.12765}"


def is_url(location: str) -> bool:
    """True for ``http(s)://``, ``ftp://`` and ``file://`` locations (fetched through the
    download cache); anything else is a local path."""
    return location.split("://", 1)[0].lower() in ("http", "https", "ftp", "file") and (
        "://" in location
    )


def absolute_location(location: str, base_dir: Path) -> str:
    """A URL unchanged; a local path with ``~`` expanded, made absolute against ``base_dir``."""
    if is_url(location):
        return location
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return str(Path(os.path.normpath(path)))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(
            f"config {path}: cannot be read as YAML ({e}); fix the file or pass another config"
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {path}: holds a {type(data).__name__}, not a mapping of keys; "
            "a model config is a YAML mapping with the keys of spec §9.2"
        )
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def read_config(path: Path) -> dict[str, Any]:
    """Load ``path`` (following empanada's ``BASE`` inheritance), make local model paths
    absolute and validate it. Raises ``FileNotFoundError`` if it does not exist and
    :class:`ConfigError` if it is unreadable or invalid."""
    path = Path(path).expanduser().resolve()
    config = _read_yaml(path)
    for key in MODEL_KEYS:
        if isinstance(config.get(key), str) and config[key]:
            config[key] = absolute_location(config[key], path.parent)
    seen = {path}
    current = path
    while BASE_KEY in config:
        base_ref = config.pop(BASE_KEY)
        if not isinstance(base_ref, str):
            raise ConfigError(f"config {current}: {BASE_KEY} must be a path to a parent config")
        base_path = (current.parent / base_ref).resolve()
        if base_path in seen:
            raise ConfigError(f"config {current}: {BASE_KEY} chain loops back to {base_path}")
        seen.add(base_path)
        try:
            base = _read_yaml(base_path)
        except FileNotFoundError as e:
            raise ConfigError(
                f"config {current}: parent config {base_path} ({BASE_KEY}) does not exist"
            ) from e
        for key in MODEL_KEYS:
            if isinstance(base.get(key), str) and base[key]:
                base[key] = absolute_location(base[key], base_path.parent)
        config = _merge(base, config)
        current = base_path
    return validate_config(config, source=str(path))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int_list(config: Mapping[str, Any], key: str, where: str, example: str) -> list[int]:
    value = config[key]
    if not isinstance(value, list) or not all(_is_int(v) and v > 0 for v in value):
        raise ConfigError(
            f"{where}: '{key}' must be a list of positive class ids, got {value!r}; "
            f"e.g. '{key}: {example}'"
        )
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: '{key}' lists a class twice ({value!r}); list each once")
    return list(value)


def validate_config(config: dict[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Check the keys of spec §9.2 in place and return ``config``. ``class_names`` keys given
    as digit strings become ints; an empty ``model_quantized`` becomes ``None``.
    Raises :class:`ConfigError` naming the first bad key and the fix."""
    where = f"config {source}"
    required = {
        "model": "model: <path or URL of the TorchScript model file>",
        "norms": _EXAMPLE_NORMS,
        "padding_factor": "padding_factor: 16",
        "thing_list": "thing_list: [1]",
        "labels": "labels: [1]",
        "class_names": "class_names: {1: mito}",
    }
    for key, example in required.items():
        if key not in config:
            raise ConfigError(f"{where}: missing key '{key}'; add it, e.g. '{example}'")

    model = config["model"]
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(
            f"{where}: 'model' must be a file path or URL of the TorchScript model, got {model!r}"
        )
    config["model"] = model.strip()
    quant = config.get("model_quantized")
    if quant is not None and not isinstance(quant, str):
        raise ConfigError(
            f"{where}: 'model_quantized' must be a file path, a URL or null, got {quant!r}"
        )
    config["model_quantized"] = quant.strip() if quant and quant.strip() else None

    norms = config["norms"]
    if not isinstance(norms, Mapping) or not all(k in norms for k in ("mean", "std")):
        raise ConfigError(
            f"{where}: 'norms' must be a mapping with mean and std; '{_EXAMPLE_NORMS}'"
        )
    if not (_is_number(norms["mean"]) and _is_number(norms["std"]) and norms["std"] > 0):
        raise ConfigError(
            f"{where}: 'norms' mean and std must be numbers with std > 0 (fractions of the "
            f"intensity range), got {dict(norms)!r}"
        )

    pf = config["padding_factor"]
    if not _is_int(pf) or pf < 1:
        raise ConfigError(
            f"{where}: 'padding_factor' must be a positive integer (16 for MitoNet_v1), got {pf!r}"
        )

    labels = _int_list(config, "labels", where, "[1]")
    if not labels:
        raise ConfigError(f"{where}: 'labels' is empty; list every class id, e.g. 'labels: [1]'")
    things = _int_list(config, "thing_list", where, "[1]")
    extra = sorted(set(things) - set(labels))
    if extra:
        raise ConfigError(
            f"{where}: 'thing_list' holds {extra} which are not in 'labels' {labels}; "
            "instance classes must be classes of the model"
        )

    names = config["class_names"]
    if not isinstance(names, Mapping):
        raise ConfigError(f"{where}: 'class_names' must map class ids to names, e.g. '1: mito'")
    fixed: dict[int, str] = {}
    for k, v in names.items():
        if isinstance(k, str) and k.strip().isdigit():
            k = int(k)
        if not _is_int(k) or not isinstance(v, str) or not v:
            raise ConfigError(
                f"{where}: 'class_names' entry {k!r}: {v!r} must map a class id to a non-empty "
                "name, e.g. '1: mito'"
            )
        fixed[k] = v
    missing = [c for c in labels if c not in fixed]
    if missing:
        raise ConfigError(f"{where}: 'class_names' has no name for class(es) {missing}; add them")
    config["class_names"] = fixed

    desc = config.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ConfigError(f"{where}: 'description' must be text, got {type(desc).__name__}")

    finetune = config.get("FINETUNE")
    if finetune is not None:
        if not isinstance(finetune, Mapping):
            raise ConfigError(f"{where}: 'FINETUNE' must be a mapping of training settings")
        if finetune.get("dataset_class") == "PanopticDataset":
            params = finetune.get("dataset_params")
            divisor = params.get("label_divisor") if isinstance(params, Mapping) else None
            if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 1:
                raise ConfigError(
                    f"{where}: 'FINETUNE.dataset_params.label_divisor' must be a positive "
                    f"integer for a PanopticDataset, got {divisor!r}; e.g. 'label_divisor: 1000'"
                )
    return config


def write_config(config: Mapping[str, Any], path: Path) -> Path:
    """Write ``config`` as YAML to ``path`` atomically (temp file + rename), creating the
    directory; an existing file is replaced only once the new one is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".yaml.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(dict(config), fh, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
