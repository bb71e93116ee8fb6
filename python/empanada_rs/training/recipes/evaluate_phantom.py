"""Instance F1@0.5 of a model on fresh phantoms: model -> sigmoid -> `panoptic_2d`
(default parameters) -> one-to-one matches at IoU > 0.5 against the ground truth.

    python -m empanada_rs.training.recipes.evaluate_phantom [--config CONFIG.yaml]
        [--seeds 1000000:1000012] [--size 512] [--quantized]

The default config is the bundled PhantomMito_v1; a relative `model` path is resolved
against the config file's directory (the registry's rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

PKG = Path(__file__).resolve().parents[2]


def resolve_model_path(ref: str, config: Path) -> Path:
    """A config's local `model` entry as a file: absolute as is, relative against the
    directory holding the config file."""
    p = Path(ref).expanduser()
    return p if p.is_absolute() else (config.parent / p).resolve()


def main(argv: list[str] | None = None) -> int:
    import yaml

    from empanada_rs.phantoms import phantom_2d
    from empanada_rs.training import instance_f1

    ap = argparse.ArgumentParser(
        prog="python -m empanada_rs.training.recipes.evaluate_phantom",
        description=__doc__.split("\n\n")[0],
    )
    ap.add_argument("--config", type=Path, default=PKG / "configs" / "PhantomMito_v1.yaml")
    ap.add_argument("--seeds", default="1000000:1000012", help="start:stop (1000000:1000012)")
    ap.add_argument("--size", type=int, default=512, help="phantom side (512)")
    ap.add_argument("--quantized", action="store_true", help="use model_quantized")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(args.config.read_text())
    ref = cfg["model_quantized"] if args.quantized else cfg["model"]
    if not ref:
        ap.error(f"{args.config} has no {'model_quantized' if args.quantized else 'model'}")
    path = resolve_model_path(str(ref), args.config)
    model = torch.jit.load(str(path), map_location="cpu").eval()
    norms = (float(cfg["norms"]["mean"]), float(cfg["norms"]["std"]))
    a, b = (int(s) for s in args.seeds.split(":"))
    samples = [
        (p.image, p.instances) for p in (phantom_2d((args.size,) * 2, seed=s) for s in range(a, b))
    ]
    t = time.perf_counter()
    res = instance_f1(model, samples, norms=norms, padding_factor=int(cfg["padding_factor"]))
    res["seconds_per_image"] = round((time.perf_counter() - t) / len(samples), 3)
    res["model"] = str(path)
    res["model_mb"] = round(path.stat().st_size / 2**20, 2)
    res["seeds"] = [a, b]
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            f"F1@0.5 {res['f1']:.4f} (tp {res['tp']}, fp {res['fp']}, fn {res['fn']}; "
            f"mean per image {res['mean_image_f1']:.4f}) on {len(samples)} phantoms "
            f"{args.size}x{args.size}, seeds {a}..{b - 1}; {res['seconds_per_image']} s/image; "
            f"{path.name} {res['model_mb']} MB"
        )
    return 0 if np.isfinite(res["f1"]) else 1


if __name__ == "__main__":
    sys.exit(main())
