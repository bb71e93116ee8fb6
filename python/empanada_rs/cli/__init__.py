"""The ``empanada-rs`` command.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser) and is listed in :data:`SUBCOMMANDS`. Exit codes mean the same for
every subcommand (:class:`ExitCode`); ``--json`` prints one machine-readable summary on
stdout and nothing else there."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

from empanada_rs.errors import EmpanadaError, OutputExistsError

#: Modules under ``empanada_rs.cli`` that provide subcommands.
SUBCOMMANDS: tuple[str, ...] = ("models",)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an unexpected error (a bug: please report it)
    USAGE = 2  # wrong command line (argparse's own code)
    BAD_INPUT = 3  # input rejected: wrong image, parameter or config
    NOT_FOUND = 4  # a model, config or input file does not exist
    OUTPUT_EXISTS = 5  # refusing to overwrite; pass --overwrite
    INTERRUPTED = 130


class NotFoundError(EmpanadaError):
    """A named model, config or input file does not exist."""


def emit_json(summary: dict[str, Any]) -> None:
    """The ``--json`` summary: one JSON object on stdout."""
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    sys.stdout.flush()


def progress(total: int | None, desc: str, *, enabled: bool = True) -> Any:
    """A tqdm bar on stderr (so ``--json`` stdout stays clean); a no-op when disabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="it", disable=not enabled, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="empanada-rs",
        description="Panoptic segmentation of organelles in volume EM (empanada-compatible).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"empanada_rs.cli.{name}").add_parser(sub)
    return parser


def _exit_code(err: BaseException) -> ExitCode:
    if isinstance(err, (NotFoundError, FileNotFoundError)):
        return ExitCode.NOT_FOUND
    if isinstance(err, OutputExistsError):
        return ExitCode.OUTPUT_EXISTS
    if isinstance(err, EmpanadaError):
        return ExitCode.BAD_INPUT
    return ExitCode.FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return int(func(args) or ExitCode.OK)
    except KeyboardInterrupt:
        print("empanada-rs: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as err:  # noqa: BLE001 - every error becomes a message and an exit code
        code = _exit_code(err)
        print(f"empanada-rs: error: {err}", file=sys.stderr)
        if code == ExitCode.FAILED:
            import traceback

            traceback.print_exc(file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
