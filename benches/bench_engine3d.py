"""End-to-end 3D stack inference on the CPU: ours (segment_3d) vs the reference's engine
flow (PanopticDeepLabRenderEngine3d slice by slice, then its matching / tracking / filters
as `Engine3d.infer_on_axis` + `stack_postprocessing`, see tests/reference_stack.py), with
the same TorchScript model file, the same normalisation and padding, the same
post-processing parameters, single plane xy, batch 1 and 2 torch threads for both.

--model phantom (default): the bundled trained PhantomMito_v1 (resnet18 width 16) on a
phantom volume from `empanada_rs.phantoms.phantom_3d`, scored (F1@0.5, objects) against
the phantom's ground truth, so both engines are seen doing the same job.
--model resnet50: a scripted QuantizablePanopticDeepLabPR with a resnet50 encoder and
random weights on a volume of dark spheres (model-bound; no meaningful F1).

    PYTHONPATH=python .venv/bin/python benches/bench_engine3d.py [--model phantom]
        [--depth 32] [--size 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
import torch

from empanada_rs import match_instances
from empanada_rs.inference.engine3d import segment_3d
from empanada_rs.inference.runner import ModelHandle

THREADS = 2
# Post-processing parameters given to both engines (the 3D widget's defaults, spec §12.3).
PARAMS = {
    "confidence_thr": 0.5,
    "nms_threshold": 0.1,
    "nms_kernel": 3,
    "median_kernel_size": 3,
    "min_size": 500,
    "min_extent": 5,
    "label_divisor": 10000,
}


def ours_params() -> dict[str, Any]:
    """PARAMS under segment_3d's names."""
    p = dict(PARAMS)
    return {
        "confidence_thr": p["confidence_thr"],
        "center_confidence_thr": p["nms_threshold"],
        "center_min_distance": p["nms_kernel"],
        "median_kernel_size": p["median_kernel_size"],
        "min_size": p["min_size"],
        "min_extent": p["min_extent"],
        "label_divisor": p["label_divisor"],
        "batch_size": 1,
        "normalize": "parity",
    }


def resnet50_model() -> tuple[ModelHandle, torch.jit.ScriptModule]:
    from empanada.models.quantization.panoptic_deeplab import QuantizablePanopticDeepLabPR

    torch.manual_seed(0)
    m = QuantizablePanopticDeepLabPR(
        encoder="resnet50", stage4_stride=16, decoder_channels=32, num_classes=1,
        low_level_channels_project=[16, 8, 4], aspp_channels=32, quantize=False,
    )  # fmt: skip
    scripted = torch.jit.script(m.eval())
    handle = ModelHandle(module=scripted, config={"norms": {"mean": 0.5, "std": 0.2},
                                                  "padding_factor": 16})  # fmt: skip
    return handle, scripted


def phantom_model() -> tuple[ModelHandle, torch.jit.ScriptModule]:
    """Ours through the registry (float model, not the quantized one); the reference loads
    the same file with plain torch.jit.load, as its plugin does."""
    from empanada_rs.registry import load_config, resolve_model

    handle = resolve_model("PhantomMito_v1", device="cpu", use_quantized=False)
    path = Path(load_config("PhantomMito_v1")["model"])
    return handle, torch.jit.load(str(path), map_location="cpu").eval()


def spheres(depth: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = (rng.normal(140, 20, (depth, size, size))).clip(0, 255).astype(np.uint8)
    zz, yy, xx = np.indices(vol.shape)
    for _ in range(depth * size * size // 20000 + 4):
        c = rng.uniform(0, 1, 3) * vol.shape
        vol[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < 36] = 60
    return vol


def reference_flow(
    model: torch.jit.ScriptModule, vol: np.ndarray, handle: ModelHandle
) -> tuple[dict[str, float], np.ndarray]:
    """The reference's stack flow; `model_s` is normalisation + model + probabilities (as
    ours counts it), `io_s` taking each slice, `postprocess_s` everything else (median
    queue, 2D post-processing, matching, tracking, filters, filling the volume)."""
    from empanada.inference.engines import PanopticDeepLabRenderEngine3d

    from tests.reference_stack import reference_track

    mean, std = handle.norms
    t = {"model_s": 0.0, "postprocess_s": 0.0, "io_s": 0.0}
    engine = PanopticDeepLabRenderEngine3d(
        model, thing_list=[1], label_divisor=PARAMS["label_divisor"],
        nms_threshold=PARAMS["nms_threshold"], nms_kernel=PARAMS["nms_kernel"],
        confidence_thr=PARAMS["confidence_thr"],
        median_kernel_size=PARAMS["median_kernel_size"],
        padding_factor=handle.padding_factor, coarse_boundaries=True,
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
            img = np.ascontiguousarray(vol[i])
            t1 = time.perf_counter()
            # The reference's dataset normalisation (spec §2.1); the engine pads itself.
            x = (img.astype(np.float32) - mean * 255) / (std * 255)
            t["io_s"] += t1 - t0
            t["model_s"] += time.perf_counter() - t1
            pan = engine(torch.from_numpy(x)[None, None], size, 1)
            if pan is not None:
                pans.append(pan.squeeze().cpu().numpy())
        for pan in engine.end(1) or []:
            pans.append(pan.squeeze().cpu().numpy())
    t_track = time.perf_counter()
    labels = reference_track(
        pans, vol.shape, "xy", min_size=PARAMS["min_size"], min_extent=PARAMS["min_extent"],
        label_divisor=PARAMS["label_divisor"],
    )[1]  # fmt: skip
    t["track_s"] = time.perf_counter() - t_track
    loop = time.perf_counter() - t_all
    t["postprocess_s"] = loop - t["model_s"] - t["io_s"]
    t["total_s"] = loop
    return t, labels


def ours(vol: np.ndarray, handle: ModelHandle) -> tuple[dict[str, float], np.ndarray]:
    r = segment_3d(vol, handle, orthoplane=False, device="cpu", **ours_params())
    t = dict(r.timings)
    t["io_s"] = t.get("io_s", 0.0) + t.pop("write_s", 0.0)
    (labels,) = r.labels.values()
    return t, np.asarray(labels)


def score(labels: np.ndarray, truth: np.ndarray | None) -> str:
    n = len(np.unique(labels)) - (1 if (labels == 0).any() else 0)
    if truth is None:
        return f"| {n} | - |"
    m = match_instances(labels, truth, iou_thr=0.5)
    return f"| {n} | {m['f1']:.3f} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=("phantom", "resnet50"), default="phantom")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    truth = None
    if args.model == "phantom":
        from empanada_rs.phantoms import phantom_3d

        handle, ref_model = phantom_model()
        t0 = time.perf_counter()
        ph = phantom_3d((args.depth, args.size, args.size), seed=args.seed)
        vol, truth = ph.image, ph.instances
        print(f"phantom generated in {time.perf_counter() - t0:.1f} s", flush=True)
    else:
        handle, ref_model = resnet50_model()
        vol = spheres(args.depth, args.size)
    rows: dict[str, list[dict[str, float]]] = {"ours": [], "reference": []}
    labels: dict[str, np.ndarray] = {}
    # Untimed warm-up of both on a few slices: TorchScript's profiling executor optimises
    # each module over its first calls, which would otherwise land on whichever runs first.
    warm = np.ascontiguousarray(vol[: min(4, len(vol))])
    ours(warm, handle)
    reference_flow(ref_model, warm, handle)
    for _ in range(args.repeats):
        t, labels["ours"] = ours(vol, handle)
        rows["ours"].append(t)
        t, labels["reference"] = reference_flow(ref_model, vol, handle)
        rows["reference"].append(t)
    vx = vol.size / 1e6
    n_truth = "" if truth is None else f", {len(np.unique(truth)) - 1} true objects"
    print(
        f"\n{args.model}: volume {vol.shape} uint8{n_truth}, stack xy, batch 1, torch threads"
        f" {THREADS}, median of {args.repeats}, {_common.machine()}\n"
    )
    print(
        "| engine | total s | model s | post-proc s | I/O s | MVx/s | slices/s | objects | F1@0.5 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    med = {}
    for name, ts in rows.items():
        m = {k: float(np.median([t.get(k, 0.0) for t in ts])) for k in ts[0]}
        med[name] = m
        print(
            f"| {name} | {m['total_s']:.2f} | {m['model_s']:.2f} | {m['postprocess_s']:.3f} "
            f"| {m['io_s']:.3f} | {vx / m['total_s']:.3f} | {vol.shape[0] / m['total_s']:.2f} "
            + score(labels[name], truth)
        )
    print()
    for name, ts in rows.items():
        runs = ", ".join(f"{t['total_s']:.2f}" for t in ts)
        print(f"{name} total s per run: {runs}")
    ref = med["reference"]
    print(
        f"reference post-proc split: {ref['postprocess_s'] - ref['track_s']:.2f} s in the slice"
        f" loop (median queue, 2D post-processing), {ref['track_s']:.2f} s after it (matching,"
        " tracking, filters, filling the volume)"
    )
    r = {k: ref[k] / max(med["ours"][k], 1e-9) for k in med["ours"]}
    print(
        f"\nratio reference/ours: total {r['total_s']:.2f}x, model {r['model_s']:.2f}x, "
        f"post-proc {r['postprocess_s']:.1f}x"
    )
    print(
        "post-proc: ours = Rust work the caller waited on (pushes, finish); reference ="
        " everything outside the model and I/O. I/O: ours = slice reads + painting the"
        " label volume and its object table; reference = slice reads (its volume filling"
        " is in post-proc)."
    )


if __name__ == "__main__":
    main()
