"""End-to-end 3D stack inference on the CPU: ours (segment_3d) vs the reference's engine
flow (PanopticDeepLabRenderEngine3d slice by slice, then its matching / tracking / filters
as `Engine3d.infer_on_axis` + `stack_postprocessing`, see tests/reference_stack.py), with
the same scripted model (QuantizablePanopticDeepLabPR, resnet50 encoder, small decoder
widths, random weights), single plane xy, batch 1 for both.

    PYTHONPATH=python .venv/bin/python benches/bench_engine3d.py [--depth 32] [--size 128]
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
import torch

from empanada_rs.inference.engine3d import segment_3d
from empanada_rs.inference.runner import ModelHandle


def scripted_model() -> torch.jit.ScriptModule:
    from empanada.models.quantization.panoptic_deeplab import QuantizablePanopticDeepLabPR

    torch.manual_seed(0)
    m = QuantizablePanopticDeepLabPR(
        encoder="resnet50", stage4_stride=16, decoder_channels=32, num_classes=1,
        low_level_channels_project=[16, 8, 4], aspp_channels=32, quantize=False,
    )  # fmt: skip
    return torch.jit.script(m.eval())


def volume(depth: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = (rng.normal(140, 20, (depth, size, size))).clip(0, 255).astype(np.uint8)
    zz, yy, xx = np.indices(vol.shape)
    for _ in range(depth * size * size // 20000 + 4):
        c = rng.uniform(0, 1, 3) * vol.shape
        vol[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < 36] = 60
    return vol


def reference_flow(model: torch.jit.ScriptModule, vol: np.ndarray, mean: float, std: float):
    from empanada.inference.engines import PanopticDeepLabRenderEngine3d

    from tests.reference_stack import reference_track

    t = {"model_s": 0.0, "postprocess_s": 0.0, "io_s": 0.0}
    engine = PanopticDeepLabRenderEngine3d(
        model, thing_list=[1], label_divisor=10000, nms_kernel=3, confidence_thr=0.5,
        median_kernel_size=3, coarse_boundaries=True,
    )  # fmt: skip
    infer = engine.infer

    def timed_infer(image, render_steps=2):
        t0 = time.perf_counter()
        out = infer(image, render_steps)
        t["model_s"] += time.perf_counter() - t0
        return out

    engine.infer = timed_infer
    size = vol.shape[1:]
    pans = []
    t_all = time.perf_counter()
    with torch.no_grad():
        for i in range(vol.shape[0]):
            t0 = time.perf_counter()
            img = vol[i]
            x = (img.astype(np.float32) - mean * 255) / (std * 255)  # spec §2.1
            pad = [(-s) % 16 for s in size]
            x = np.pad(x, ((0, pad[0]), (0, pad[1])))
            t["io_s"] += time.perf_counter() - t0
            pan = engine(torch.from_numpy(x)[None, None], size, 1)
            if pan is not None:
                pans.append(pan.squeeze().cpu().numpy())
        for pan in engine.end(1) or []:
            pans.append(pan.squeeze().cpu().numpy())
    t0 = time.perf_counter()
    reference_track(pans, vol.shape, "xy", min_size=500, min_extent=5)
    loop = time.perf_counter() - t_all
    t["postprocess_s"] = loop - t["model_s"] - t["io_s"]
    t["total_s"] = loop
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model = scripted_model()
    handle = ModelHandle(module=model, config={"norms": {"mean": 0.5, "std": 0.2},
                                               "padding_factor": 16})  # fmt: skip
    vol = volume(args.depth, args.size)
    rows: dict[str, list[dict[str, float]]] = {"ours": [], "reference": []}
    for _ in range(args.repeats):
        r = segment_3d(vol, handle, orthoplane=False, device="cpu", normalize="parity")
        rows["ours"].append(r.timings)
        rows["reference"].append(reference_flow(model, vol, 0.5, 0.2))
    vx = vol.size / 1e6
    print(f"\nvolume {vol.shape} uint8, stack xy, batch 1, {_common.machine()}\n")
    print("| engine | total s | model s | post-proc s (waited) | I/O s | MVx/s |")
    print("|---|---|---|---|---|---|")
    med = {}
    for name, ts in rows.items():
        m = {k: float(np.median([t.get(k, 0.0) for t in ts])) for k in ts[0]}
        med[name] = m
        io = m.get("io_s", 0.0) + m.get("write_s", 0.0)
        print(
            f"| {name} | {m['total_s']:.2f} | {m['model_s']:.2f} | {m['postprocess_s']:.2f} "
            f"| {io:.3f} | {vx / m['total_s']:.4f} |"
        )
    print(
        f"\nratio total reference/ours: {med['reference']['total_s'] / med['ours']['total_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
