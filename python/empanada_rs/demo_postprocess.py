"""Post-processing demo: the Rust core's 2D panoptic post-processing of generated model outputs.

Runs offline: the sample (image, semantic probabilities, centre heatmap and offsets, and
the truth they were drawn from) is generated, post-processed by the Rust core, scored
against the truth, and drawn as a PNG montage (image | foreground probability | labels).

    python -m empanada_rs.demo_postprocess --out out [--size 1024] [--objects 130] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import empanada_rs as er
from empanada_rs.synthetic import em_image_2d, model_outputs_2d


def _colour(labels: np.ndarray) -> np.ndarray:
    """A distinct pseudo-random colour per id, black background."""
    ids = labels.astype(np.uint64)
    h = ids * np.uint64(2654435761) % np.uint64(2**24)
    rgb = np.stack([(h >> np.uint64(s)) & np.uint64(255) for s in (16, 8, 0)], axis=-1)
    rgb = (64 + rgb.astype(np.float32) * 0.75).astype(np.uint8)
    rgb[labels == 0] = 0
    return rgb


def write_montage(path: Path, image: np.ndarray, prob: np.ndarray, labels: np.ndarray) -> None:
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow is in the demo's requirements
        raise SystemExit("the PNG montage needs Pillow: pip install pillow") from e
    grey = np.repeat(image[..., None], 3, axis=-1)
    p = np.repeat((np.clip(prob, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([grey, gap, p, gap, _colour(labels)], axis=1)).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m empanada_rs.demo_postprocess", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (multiple of 4)")
    ap.add_argument("--objects", type=int, default=130, help="organelles to draw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    if args.size < 16 or args.size % 4:
        ap.error("--size must be a multiple of 4 and at least 16")

    t0 = time.perf_counter()
    o = model_outputs_2d((args.size, args.size), n_objects=args.objects, seed=args.seed)
    image = em_image_2d(o, seed=args.seed)
    t_gen = time.perf_counter() - t0

    er.panoptic_2d(o.sem, o.ctr_hmp, o.offsets)  # warm the thread pool
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        pan = er.panoptic_2d(o.sem, o.ctr_hmp, o.offsets)
        runs.append(time.perf_counter() - t)
    t_post = float(np.median(runs))
    instances = pan % 10000
    score = er.match_instances(instances, o.instances, iou_thr=0.5)

    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "demo_panoptic_2d.png"
    write_montage(png, image, o.sem[0], instances)
    np.save(args.out / "demo_panoptic_2d.npy", pan)

    summary = {
        "image": [args.size, args.size],
        "objects_drawn": int(len(np.unique(o.instances)) - 1),
        "objects_found": int(len(np.unique(pan)) - 1),
        "f1_at_0.5": round(score["f1"], 4),
        "tp": score["tp"],
        "fp": score["fp"],
        "fn": score["fn"],
        "postprocess_ms": round(t_post * 1e3, 2),
        "generate_s": round(t_gen, 2),
        "png": str(png),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"empanada-rs {er.__version__} demo: 2D panoptic post-processing")
        print(f"  image            {args.size} x {args.size} (generated in {t_gen:.2f} s)")
        print(f"  objects drawn    {summary['objects_drawn']}")
        print(f"  objects found    {summary['objects_found']}")
        print(
            f"  F1@0.5 vs truth  {score['f1']:.3f} "
            f"(tp {score['tp']}, fp {score['fp']}, fn {score['fn']})"
        )
        print(f"  post-processing  {t_post * 1e3:.1f} ms (median of 5, Rust core)")
        print(f"  wrote            {png} and {args.out / 'demo_panoptic_2d.npy'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
