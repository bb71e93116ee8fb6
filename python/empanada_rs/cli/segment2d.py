"""``empanada-rs segment2d``: 2D panoptic segmentation of an image file (tif, png, npy).

The output goes next to the input as ``<stem>_<model>_seg.tif`` (``.npy`` for npy input)
unless ``--out`` names a ``.tif``/``.tiff``/``.npy`` path; an existing output is never
replaced without ``--overwrite``, and it is written to a temporary file first, so a failed
run leaves what was there intact."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from empanada_rs.cli import ExitCode, NotFoundError, emit_json, progress
from empanada_rs.errors import InvalidArgumentError, OutputExistsError
from empanada_rs.inference.engine2d import Engine2D, Params2D, resolve_model_handle

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".npy")
OUTPUT_SUFFIXES = (".tif", ".tiff", ".npy")


def default_model_name() -> str:
    """The bundled offline model when it is installed, else MitoNet_v1 (downloads)."""
    from empanada_rs.registry import list_models

    names = list(list_models())
    for name in ("PhantomMito_v1", "MitoNet_v1"):
        if name in names:
            return name
    return names[0] if names else "MitoNet_v1"


def read_image(path: Path) -> npt.NDArray[Any]:
    """A tif/tiff (tifffile), png (Pillow; colour converted to 8-bit grey) or npy file."""
    if not path.is_file():
        raise NotFoundError(f"IMAGE: {str(path)!r} does not exist; pass an existing image file")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    if suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            grey = im if im.mode in ("L", "I", "I;16", "F") else im.convert("L")
            return np.asarray(grey)
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    raise InvalidArgumentError(
        f"IMAGE: {path.suffix!r} files are not read; pass a {', '.join(IMAGE_SUFFIXES)} file"
    )


def output_path(image: Path, model_name: str, out: str | None) -> Path:
    if out is not None:
        p = Path(out)
        if p.suffix.lower() not in OUTPUT_SUFFIXES:
            raise InvalidArgumentError(
                f"--out: {p.suffix or 'no suffix'} is not an output format; end the path "
                f"with {', '.join(OUTPUT_SUFFIXES)}"
            )
        return p
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name).strip("_") or "model"
    suffix = ".npy" if image.suffix.lower() == ".npy" else ".tif"
    return image.with_name(f"{image.stem}_{safe}_seg{suffix}")


def write_labels(path: Path, labels: npt.NDArray[Any], overwrite: bool) -> None:
    """Writes via a temporary file in the same folder, then renames it into place."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"--out: {str(path)!r} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".npy":
            np.save(tmp, labels)
        else:
            import tifffile

            tifffile.imwrite(tmp, labels)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    image_path = Path(args.image)
    image = read_image(image_path)
    params = {
        "downsampling": args.downsampling,
        "confidence_thr": args.confidence_thr,
        "center_confidence_thr": args.center_confidence_thr,
        "center_min_distance": args.center_min_distance,
        "fine_boundaries": args.fine_boundaries,
        "semantic_only": args.semantic_only,
        "fill_holes": args.fill_holes,
        "label_divisor": args.label_divisor,
        "tile_size": args.tile_size,
        "tile_overlap": args.tile_overlap,
        "batch_size": args.batch_size,
        "normalize": args.normalize,
    }
    Params2D(**params)  # reject bad parameters before loading a model
    handle = resolve_model_handle(
        args.model or default_model_name(), device=args.device, use_quantized=args.quantized
    )
    out = output_path(image_path, handle.name, args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"--out: {str(out)!r} exists; pass --overwrite to replace it")
    engine = Engine2D(handle, **params)
    with progress(None, "segment2d", enabled=not args.no_progress) as bar:

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        if args.batch:
            result = engine.segment_batch(image, progress=tick)
        else:
            viewport = tuple(args.viewport) if args.viewport else None
            result = engine.segment(image, viewport=viewport, progress=tick)
    write_labels(out, result.labels, args.overwrite)
    summary: dict[str, Any] = {
        "input": str(image_path),
        "output": str(out),
        "model": handle.name,
        "shape": list(result.labels.shape),
        "dtype": str(result.labels.dtype),
        "objects": result.counts(),
        "params": params,
        "timings": {**result.timings, "total_with_io": time.perf_counter() - t0},
    }
    if args.json:
        emit_json(summary)
    else:
        counts = ", ".join(f"{n} {c}" for c, n in summary["objects"].items()) or "no objects"
        print(f"{out}: {counts} ({summary['timings']['total_with_io']:.2f} s)")
    return ExitCode.OK


def add_parser(subparsers: Any) -> None:
    d = Params2D()
    p = subparsers.add_parser(
        "segment2d",
        help="segment a 2D image (or a stack of unrelated images with --batch)",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="tif, png or npy image")
    p.add_argument("--model", help="registered model name or config YAML (default: built-in)")
    p.add_argument("--out", help="output .tif/.npy (default: <stem>_<model>_seg.tif next to IMAGE)")
    p.add_argument("--downsampling", type=int, default=d.downsampling, help="1, 2, 4, ..., 64")
    p.add_argument("--confidence-thr", type=float, default=d.confidence_thr)
    p.add_argument("--center-confidence-thr", type=float, default=d.center_confidence_thr)
    p.add_argument(
        "--center-min-distance",
        type=int,
        default=d.center_min_distance,
        help="NMS window in heatmap cells (1/4 resolution unless --fine-boundaries)",
    )
    p.add_argument("--fine-boundaries", action="store_true")
    p.add_argument("--semantic-only", action="store_true")
    p.add_argument("--fill-holes", action="store_true")
    p.add_argument("--label-divisor", type=int, default=d.label_divisor)
    p.add_argument("--tile-size", type=int, default=d.tile_size, help="0 = no tiling")
    p.add_argument("--tile-overlap", type=int, default=None, help="default min(128, tile/10)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--normalize", choices=("robust", "parity"), default=d.normalize)
    p.add_argument("--batch", action="store_true", help="IMAGE is a stack of unrelated images")
    p.add_argument(
        "--viewport",
        type=int,
        nargs=4,
        metavar=("Y0", "X0", "Y1", "X1"),
        help="segment only this box",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--quantized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the model's quantized CPU variant (default: when running on the CPU)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)
