"""``empanada-rs models``: list, inspect, register, export, import and archive models."""

from __future__ import annotations

import argparse
import sys

from empanada_rs.cli import ExitCode, emit_json


def _list(args: argparse.Namespace) -> int:
    from empanada_rs.registry import list_models

    models = list_models()
    if args.json:
        emit_json(
            {
                "models": [
                    {"name": e.name, "source": e.source, "config": str(e.config_path)}
                    for e in models.values()
                ]
            }
        )
        return ExitCode.OK
    width = max((len(n) for n in models), default=4)
    for entry in models.values():
        print(f"{entry.name:<{width}}  {entry.source:<8}  {entry.config_path}")
    return ExitCode.OK


def _info(args: argparse.Namespace) -> int:
    from empanada_rs.registry import model_info

    sys.stdout.write(model_info(args.name))
    return ExitCode.OK


def _register(args: argparse.Namespace) -> int:
    from empanada_rs.registry import register_model

    path = register_model(
        args.name, args.config, args.model, args.quantized, overwrite=args.overwrite
    )
    if args.json:
        emit_json({"name": path.stem, "config": str(path)})
    else:
        print(f"registered model {path.stem!r} ({path})")
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    from empanada_rs.registry import export_model

    out = export_model(args.name, args.dest)
    if args.json:
        emit_json({"name": args.name, "archive": str(out)})
    else:
        print(f"exported model {args.name!r} to {out}")
    return ExitCode.OK


def _import(args: argparse.Namespace) -> int:
    from empanada_rs.registry import find_model, import_model

    name = import_model(args.archive, name=args.name)
    config = find_model(name).config_path
    if args.json:
        emit_json({"name": name, "config": str(config)})
    else:
        print(f"imported model {name!r} ({config})")
    return ExitCode.OK


def _archive(args: argparse.Namespace) -> int:
    from empanada_rs.registry import archive_model

    path = archive_model(args.name)
    if args.json:
        emit_json({"name": args.name, "archived": str(path)})
    else:
        print(f"archived model {args.name!r} to {path.parent}")
    return ExitCode.OK


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "models",
        help="list, inspect, register, export, import and archive models",
        description=(
            "Manage the model registry. Models come from the built-in configs, then "
            "~/.empanada/configs (empanada-napari's, read only), then ~/.empanada-rs/configs "
            "($EMPANADA_RS_HOME); a later config replaces an earlier one of the same name."
        ),
    )
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    sub.required = True

    def action(name: str, func: object, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
        p.set_defaults(func=func)
        return p

    action("list", _list, "list the known models (name, source, config)")
    p = action("info", _info, "describe a model and how to annotate data for finetuning it")
    p.add_argument("name", help="model name or path to a config .yaml")
    p = action("register", _register, "register a model config under a name")
    p.add_argument("name", help="model name ('New' is appended when taken, see --overwrite)")
    p.add_argument("config", help="model config .yaml (spec §9.2 keys)")
    p.add_argument("--model", help="model file path or URL (default: the config's 'model')")
    p.add_argument("--quantized", help="quantized model file path or URL (CPU only)")
    p.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    p = action("export", _export, "write a model to DEST/NAME.empanada (config + model files)")
    p.add_argument("name", help="model name")
    p.add_argument("dest", help="existing directory for the archive")
    p = action("import", _import, "register the model in an .empanada archive")
    p.add_argument("archive", help="path to NAME.empanada")
    p.add_argument("--name", help="model name (default: the archive's file name)")
    p = action("archive", _archive, "move a model registered here to ~/.empanada-rs/archived")
    p.add_argument("name", help="model name")
