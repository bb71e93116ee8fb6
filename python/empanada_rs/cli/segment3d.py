"""``empanada-rs segment3d``: 3D (ortho-plane or single-plane stack) inference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from empanada_rs.cli import ExitCode, NotFoundError, emit_json
from empanada_rs.inference.stack import MEDIAN_SIZES


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "segment3d",
        help="segment a 3D volume (tif, npy or zarr)",
        description="Panoptic 3D segmentation: xy/xz/yz stacks and their consensus "
        "(ortho-plane, the default) or one plane's stack.",
    )
    p.add_argument("volume", help="a .tif/.tiff/.npy file or a zarr directory")
    p.add_argument("--model", default="MitoNet_v1", help="model name or file (MitoNet_v1)")
    p.add_argument(
        "--out",
        default=None,
        help="directory for <name>.zarr, or a PATH.zarr (default: <volume dir>/<name>.zarr)",
    )
    p.add_argument("--name", default=None, help="store name (default: the volume's file name)")
    p.add_argument("--ome-zarr", action="store_true", help="write an OME-Zarr image + labels")
    p.add_argument("--plane", choices=("xy", "xz", "yz"), default="xy")
    p.add_argument("--no-ortho", action="store_true", help="one plane's stack only")
    p.add_argument("--return-stacks", action="store_true", help="also write panoptic_<plane>")
    g = p.add_argument_group("parameters (3D widget defaults)")
    g.add_argument("--downsampling", type=int, default=1)
    g.add_argument("--confidence-thr", type=float, default=0.5)
    g.add_argument("--center-confidence-thr", type=float, default=0.1)
    g.add_argument("--center-min-distance", type=int, default=3)
    g.add_argument("--fine-boundaries", action="store_true")
    g.add_argument("--semantic-only", action="store_true")
    g.add_argument("--median-kernel-size", type=int, choices=MEDIAN_SIZES, default=3)
    g.add_argument("--median-mode", choices=("recursive", "running"), default="recursive")
    g.add_argument("--min-size", type=int, default=500)
    g.add_argument("--min-extent", type=int, default=5)
    g.add_argument("--label-divisor", type=int, default=10000)
    g.add_argument("--erode", type=int, default=0)
    g.add_argument("--dilate", type=int, default=0)
    g.add_argument("--fill-holes", action="store_true")
    g.add_argument("--pixel-vote-thr", type=int, default=2, choices=(1, 2, 3))
    g.add_argument("--allow-one-view", action="store_true")
    g.add_argument("--batch-size", type=int, default=1)
    g.add_argument("--normalize", choices=("robust", "parity"), default="robust")
    p.add_argument("--channel-axis", type=int, default=None)
    p.add_argument("--chunks", default="256", help="256 or z,y,x (e.g. 64,256,256)")
    p.add_argument("--device", default="auto")
    p.add_argument("--devices", default=None, help="comma-separated, e.g. cuda:0,cuda:1")
    p.add_argument("--quantized", action="store_true", default=None, help="quantized CPU model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


_PARAMS = (
    "downsampling confidence_thr center_confidence_thr center_min_distance "
    "fine_boundaries semantic_only median_kernel_size median_mode min_size min_extent "
    "label_divisor erode dilate fill_holes pixel_vote_thr allow_one_view batch_size normalize"
).split()


def run(args: argparse.Namespace) -> int:
    from empanada_rs.inference.engine3d import segment_3d
    from empanada_rs.io.outputs import parse_chunks

    volume = Path(args.volume)
    if not volume.exists():
        raise NotFoundError(f"volume: {volume} does not exist")
    chunks = parse_chunks(args.chunks)  # a bad string fails before any work
    out = args.out if args.out is not None else volume.parent
    devices = [d for d in args.devices.split(",") if d] if args.devices else None
    result = segment_3d(
        volume,
        args.model,
        plane=args.plane,
        orthoplane=not args.no_ortho,
        return_panoptic_stacks=args.return_stacks,
        zarr_dir=out,
        name=args.name,
        ome_zarr=args.ome_zarr,
        chunks=chunks,
        overwrite=args.overwrite,
        channel_axis=args.channel_axis,
        device=args.device,
        devices=devices,
        use_quantized=args.quantized,
        progress=not args.quiet,
        **{k: getattr(args, k) for k in _PARAMS},
    )
    summary = {
        "store": str(result.store),
        "classes": {
            name: {"class_id": result.class_ids[name], "objects": len(t["ids"])}
            for name, t in result.objects.items()
        },
        "stacks": sorted(result.stacks),
        "timings": result.timings,
    }
    if args.json:
        emit_json(summary)
    else:
        for name, info in summary["classes"].items():
            print(f"{name}: {info['objects']} objects", file=sys.stderr)
        print(f"written to {result.store}", file=sys.stderr)
    return ExitCode.OK
