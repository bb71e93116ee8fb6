"""Model time of ortho-plane inference with the bundled PhantomMito_v1 on a 64x512x512
phantom: every xy, xz and yz slice through the TorchScript model (padded to the config's
padding_factor, batches of 4), no post-processing. Prints a Markdown table.

    PYTHONPATH=python python benches/bench_phantom_model.py [--threads 2] [--quantized]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from empanada_rs.phantoms import phantom_3d

PKG = Path(__file__).resolve().parents[1] / "python" / "empanada_rs"


def run_plane(model, slices: np.ndarray, norms, pf: int, batch: int) -> float:
    n, h, w = slices.shape
    ph, pw = -h % pf, -w % pf
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, batch):
            x = (slices[i : i + batch].astype(np.float32) / 255 - norms[0]) / norms[1]
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
            t = torch.from_numpy(x)[:, None].contiguous(memory_format=torch.channels_last)
            model(t, 2, True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--quantized", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg_path = PKG / "configs" / "PhantomMito_v1.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    ref = cfg["model_quantized"] if args.quantized else cfg["model"]
    model = torch.jit.load(str(cfg_path.parent / ref), map_location="cpu").eval()
    norms = (cfg["norms"]["mean"], cfg["norms"]["std"])
    vol = phantom_3d((64, 512, 512), seed=1000000).image
    planes = {
        "xy": vol,
        "xz": np.ascontiguousarray(vol.transpose(1, 0, 2)),
        "yz": np.ascontiguousarray(vol.transpose(2, 0, 1)),
    }
    run_plane(model, vol[:4], norms, cfg["padding_factor"], args.batch)  # warm-up
    print(f"| plane | slices | model s | MVx/s |  ({Path(ref).name}, {args.threads} threads)")
    print("|---|---|---|---|")
    total = 0.0
    for name, sl in planes.items():
        s = run_plane(model, sl, norms, cfg["padding_factor"], args.batch)
        total += s
        print(
            f"| {name} | {sl.shape[0]} x {sl.shape[1]}x{sl.shape[2]} | {s:.1f} | "
            f"{vol.size / s / 1e6:.2f} |"
        )
    print(f"| all three | | {total:.1f} | {3 * vol.size / total / 1e6:.2f} |")


if __name__ == "__main__":
    main()
