"""Registering, exporting, importing and archiving models (spec §9.3, §9.5).

Every operation validates first and writes last, through temporary files renamed into
place, and removes what it wrote when it fails: a failed call leaves the registry and the
files it points to as they were. Only ``<home>`` (see :mod:`.paths`) is written to."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from empanada_rs.cli import NotFoundError
from empanada_rs.errors import ConfigError, InvalidArgumentError, OutputExistsError
from empanada_rs.registry import fetch, paths
from empanada_rs.registry.catalog import find_model, list_models
from empanada_rs.registry.config import (
    absolute_location,
    is_url,
    read_config,
    validate_config,
    write_config,
)

#: Extension of exported model archives.
ARCHIVE_SUFFIX = ".empanada"


def check_name(name: str) -> str:
    """A model name is a file stem: not empty, no path separator, no leading dot."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or any(c in name for c in "/\\:\0")
        or name.startswith(".")
        or name.endswith((".yaml", ".yml"))
    ):
        raise InvalidArgumentError(
            f"name: {name!r} is not a usable model name; use letters, digits, '_', '-' or '.' "
            "without a path separator, a leading dot or a .yaml suffix"
        )
    return name


def _free_name(name: str, overwrite: bool) -> str:
    """``name``, or with ``New`` appended until it is unused (the reference's rule)."""
    if overwrite:
        return name
    taken = list_models()
    while name in taken:
        name += "New"
    return name


def _local_or_url(location: str | os.PathLike[str]) -> str:
    """A command-line model location: URLs as given, paths absolute against the CWD."""
    location = os.fspath(location)
    return location if is_url(location) else absolute_location(location, Path.cwd())


def _register(
    name: str,
    config: dict[str, Any],
    model: str | None,
    quantized: str | None,
) -> Path:
    if model is not None:
        config["model"] = model
    if not fetch.reachable(config["model"]):
        raise NotFoundError(
            f"model: {config['model']} is neither an existing file nor a reachable URL; "
            "pass model=PATH|URL (--model) or fix the config's 'model'"
        )
    if quantized is not None:
        if not fetch.reachable(quantized):
            raise NotFoundError(
                f"quantized: {quantized} is neither an existing file nor a reachable URL"
            )
        config["model_quantized"] = quantized
    elif config.get("model_quantized") and not fetch.reachable(config["model_quantized"]):
        warnings.warn(
            f"model_quantized: {config['model_quantized']} is not reachable now; it is kept, "
            "but the float model is used until it is",
            stacklevel=3,
        )
    validate_config(config, source=name)
    return write_config(config, paths.user_config_dir() / f"{name}.yaml")


def register_model(
    name: str,
    config_path: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    quantized: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Register the config at ``config_path`` as model ``name`` (spec §9.3) and return the
    written config's path (``<home>/configs/<name>.yaml``).

    - ``name``: a taken name gets ``New`` appended (repeatedly) unless ``overwrite=True``
      (then our user config of that name is replaced, or a built-in/empanada one shadowed).
    - ``model``: a path or URL replacing the config's ``model`` (default ``None``: keep it).
      The model must be reachable: an existing file or a URL that answers (TLS verified).
    - ``quantized``: the same for ``model_quantized`` (default ``None``: keep the config's,
      which is only warned about when unreachable, as in the reference).

    Local paths are stored absolute. Raises :class:`ConfigError` for a bad config and
    :class:`~empanada_rs.cli.NotFoundError` for a missing config or an unreachable model."""
    check_name(name)
    path = Path(config_path).expanduser()
    if not path.is_file():
        raise NotFoundError(f"config: file {path} does not exist; pass a model config .yaml")
    config = read_config(path)
    return _register(
        _free_name(name, overwrite),
        config,
        None if model is None else _local_or_url(model),
        None if quantized is None else _local_or_url(quantized),
    )


def export_model(name: str, dest_dir: str | os.PathLike[str]) -> Path:
    """Write ``<dest_dir>/<name>.empanada`` (spec §9.5): a zip holding ``<name>.yaml`` whose
    ``model`` / ``model_quantized`` are bare file names, ``<name>.pth`` and, when the config
    has one, ``<name>_quantized.pth``. URL models are downloaded (into the cache) first.
    An existing archive is not replaced (:class:`OutputExistsError`)."""
    entry = find_model(name)
    config = read_config(entry.config_path)
    dest = Path(dest_dir).expanduser()
    if not dest.is_dir():
        raise NotFoundError(f"dest_dir: {dest} is not a directory; create it first")
    out = dest / f"{entry.name}{ARCHIVE_SUFFIX}"
    if out.exists():
        raise OutputExistsError(f"dest_dir: {out} already exists; remove it or pick another dir")

    members = {f"{entry.name}.pth": fetch.local_file(config["model"])}
    config["model"] = f"{entry.name}.pth"
    if config.get("model_quantized"):
        members[f"{entry.name}_quantized.pth"] = fetch.local_file(config["model_quantized"])
        config["model_quantized"] = f"{entry.name}_quantized.pth"

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=dest)
    os.close(fd)
    try:
        # Model files are zip archives already: storing them is as small and much faster.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(
                f"{entry.name}.yaml",
                yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
            )
            for arcname, src in members.items():
                zf.write(src, arcname)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _pick_member(names: list[str], preferred: list[str], suffix: str, what: str) -> str:
    for name in preferred:
        if name in names:
            return name
    found = [n for n in names if n.endswith(suffix)]
    if len(found) == 1:
        return found[0]
    raise ConfigError(
        f"archive: cannot tell which file is the {what} (found {found or 'none'}); "
        "an .empanada archive holds <name>.yaml and the model files it names"
    )


def _unused_path(directory: Path, stem: str, suffix: str) -> Path:
    path = directory / f"{stem}{suffix}"
    n = 1
    while path.exists():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path


def import_model(archive: str | os.PathLike[str], name: str | None = None) -> str:
    """Register the model in an ``.empanada`` archive (spec §9.5) and return its name.

    ``name`` defaults to the archive's stem (``New`` is appended while it is taken). The
    archive is checked whole (CRCs, config keys, named files) before anything is written;
    its model files are copied to ``<home>/models/<name>.pth`` (+ ``<name>_quantized.pth``)
    and the config to ``<home>/configs/<name>.yaml``. Files are read by name, never
    extracted to paths chosen by the archive."""
    src = Path(archive).expanduser()
    if not src.is_file():
        raise NotFoundError(f"archive: file {src} does not exist")
    stem = src.name[: -len(ARCHIVE_SUFFIX)] if src.name.endswith(ARCHIVE_SUFFIX) else src.stem
    final = _free_name(check_name(name if name is not None else stem), overwrite=False)
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigError(f"archive: {src} is not an .empanada (zip) archive ({e})") from e
    written: list[Path] = []
    with zf:
        try:
            bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
            raise ConfigError(f"archive: {src} is damaged ({e}); export it again") from e
        if bad is not None:
            raise ConfigError(f"archive: {src} is damaged ({bad} fails its CRC); export it again")
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        config_name = _pick_member(names, [f"{stem}.yaml"], ".yaml", "model config")
        try:
            config = yaml.safe_load(zf.read(config_name))
        except yaml.YAMLError as e:
            raise ConfigError(f"archive: {config_name} in {src} is not valid YAML ({e})") from e
        if not isinstance(config, dict):
            raise ConfigError(f"archive: {config_name} in {src} is not a mapping of keys")
        validate_config(config, source=f"{src}:{config_name}")

        def member_for(key: str, fallback: str) -> str:
            ref = PurePosixPath(str(config[key])).name
            return _pick_member(names, [ref, fallback], ".pth", f"'{key}' file")

        model_member = member_for("model", f"{stem}.pth")
        quant_member = None
        if config.get("model_quantized"):
            ref = PurePosixPath(str(config["model_quantized"])).name
            if ref not in names:
                raise ConfigError(
                    f"archive: the config names model_quantized {ref!r} but {src} lacks it"
                )
            quant_member = ref

        models = paths.models_dir()
        models.mkdir(parents=True, exist_ok=True)
        try:
            targets = [("model", model_member, _unused_path(models, final, ".pth"))]
            if quant_member is not None:
                targets.append(
                    (
                        "model_quantized",
                        quant_member,
                        _unused_path(models, f"{final}_quantized", ".pth"),
                    )
                )
            for key, member, target in targets:
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=models)
                try:
                    with os.fdopen(fd, "wb") as out, zf.open(member) as inp:
                        shutil.copyfileobj(inp, out, 1 << 20)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written.append(target)
                config[key] = str(target)
            written.append(_register(final, config, None, None))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return final


def archive_model(name: str) -> Path:
    """Move model ``name`` out of the registry into ``<home>/archived/`` (spec §9.5) and
    return the archived config's path.

    Only our user models can be archived (built-ins ship with the package and
    empanada-napari's directory is never written to). Model files move along only when they
    live in ``<home>/models`` (imported copies); files elsewhere belong to the user and stay.
    The archived config points at the files' new places; names already in the archive get a
    numeric suffix instead of being replaced."""
    entry = find_model(name)
    if entry.source != "user":
        raise InvalidArgumentError(
            f"name: {name!r} is a {entry.source} model ({entry.config_path}); only models "
            f"registered with empanada-rs (in {paths.user_config_dir()}) can be archived"
        )
    config = read_config(entry.config_path)
    dest_dir = paths.archive_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    models = paths.models_dir().resolve()
    moves: list[tuple[Path, Path]] = []
    for key in ("model", "model_quantized"):
        loc = config.get(key)
        if not loc or is_url(loc):
            continue
        path = Path(loc).resolve()
        if path.is_file() and path.parent == models:
            target = _unused_path(dest_dir, path.stem, path.suffix)
            moves.append((path, target))
            config[key] = str(target)
    archived = write_config(config, _unused_path(dest_dir, entry.name, ".yaml"))
    # The config leaves the registry first, so a failure below never leaves a listed model
    # whose files are gone.
    entry.config_path.unlink()
    for src, target in moves:
        shutil.move(src, target)
    return archived
