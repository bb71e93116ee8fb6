"""Stack (3D) post-processing, ours against the reference's, side by side in one run.

"Post-processing" is everything after the model: median over slices, 2D panoptic,
per-class CC and runs, forward matching, backward matching, trackers, size/extent filters
and the final relabelled volume (reference: tests/reference_stack.py, the call sequence of
empanada-napari's Engine3d.infer_on_axis + stack_postprocessing, matcher run in-process).
Inputs: generated EM-like per-slice outputs (coarse grid, ~1 ellipsoid per 20^3 voxels,
30 % branched). Our peak memory is measured in a fresh subprocess (VmHWM rise over the
baseline with the inputs loaded).

    .venv/bin/python benches/bench_stack.py [--sizes 128 256] [--repeats 3] [--latency]

--latency: a simulated model produces a 1024^2 slice every 10 ms (then every 40 ms) for
200 slices; reports push() latency and the time finish() needs to drain what is queued.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _common import ROOT, alternate, machine

import empanada_rs as er
from empanada_rs.synthetic import model_outputs_3d


def run_ours(m, shape, k=3, label_divisor=10000):
    p = er.StackPipeline(shape, "xy", median_kernel_size=k, label_divisor=label_divisor)
    for i in range(len(m)):
        p.push(*m.slice(i))
    return p.finish(min_size=500, min_extent=5).to_volume(1)


def _vmhwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return -1


def child(path: str) -> None:
    d = np.load(path)
    sem, ctr, off = d["sem"], d["ctr"], d["off"]
    shape = tuple(int(s) for s in d["shape"])
    base = _vmhwm_kb()
    # Stacks of more than 9999 objects need a larger "max objects per class".
    p = er.StackPipeline(shape, "xy", label_divisor=1_000_000)
    for i in range(len(sem)):
        p.push(sem[i], ctr[i], off[i])
    seg = p.finish(min_size=500, min_extent=5)
    after_finish = _vmhwm_kb()
    seg.to_volume(1)
    after_volume = _vmhwm_kb()
    mb = {"finish_mb": (after_finish - base) / 1024, "volume_mb": (after_volume - base) / 1024}
    print(json.dumps(mb))


def peak_memory(m, shape) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "outputs.npz"
        np.savez(f, sem=m.sem, ctr=m.ctr_hmp, off=m.offsets, shape=np.array(shape))
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(f)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(ROOT / "python")},
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def latency(n_slices: int = 200, period: float = 0.010) -> None:
    from empanada_rs.synthetic import model_outputs_2d

    outs = [model_outputs_2d((1024, 1024), n_objects=150, seed=s) for s in range(4)]
    p = er.StackPipeline((n_slices, 1024, 1024), "xy")
    lat = []
    t0 = time.perf_counter()
    for i in range(n_slices):
        due = t0 + i * period
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        o = outs[i % 4]
        t = time.perf_counter()
        p.push(o.sem, o.ctr_hmp, o.offsets)
        lat.append(time.perf_counter() - t)
    t_last = time.perf_counter()
    seg = p.finish(min_size=500, min_extent=5)
    t_end = time.perf_counter()
    lat_ms = np.array(lat) * 1e3
    print(
        f"\n1024^2 slice every {period * 1e3:.0f} ms, {n_slices} slices "
        f"(~150 objects/slice): push() median {np.median(lat_ms):.2f} ms, "
        f"p95 {np.percentile(lat_ms, 95):.2f} ms, max {lat_ms.max():.2f} ms; "
        f"stream {t_last - t0:.2f} s for {n_slices * period:.2f} s of model time; "
        f"finish() {t_end - t_last:.2f} s (drain + backward + trackers), "
        f"{seg.n_objects(1)} objects"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref-budget", type=float, default=300.0)
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    from tests.reference_stack import HAVE_REFERENCE, reference_stack

    print(f"machine: {machine()}\n")
    print(
        "| volume | objects | reference s | ours s | ours MVx/s | ratio | "
        "ours peak MB (finish / +volume) |"
    )
    print("|---|---|---|---|---|---|---|")
    last = None
    for n in args.sizes:
        shape = (n, n, n)
        m = model_outputs_3d(shape, "xy", max(8, n**3 // 8000), radius=(4.0, 14.0), seed=n)
        ours_t = alternate({"ours": partial(run_ours, m, shape)}, args.repeats)["ours"]
        est = None if last is None else last[1] * (n**3 / last[0] ** 3)
        if HAVE_REFERENCE and (est is None or est <= args.ref_budget):
            times = []
            for _ in range(max(1, args.repeats if n <= 128 else 1)):
                t = time.perf_counter()
                ref = reference_stack(m.sem, m.ctr_hmp, m.offsets, shape, "xy")[1]
                times.append(time.perf_counter() - t)
            ref_t = statistics.median(times)
            last = (n, ref_t)
            same = np.array_equal(ref, run_ours(m, shape))
            ref_s = f"{ref_t:.2f}" + ("" if same else " (differs!)")
        else:
            ref_t = est
            ref_s = f"~{est:.0f} (estimated, not run)" if est else "n/a"
        mem = peak_memory(m, shape)
        ratio = f"{ref_t / ours_t:.0f}x" if ref_t else "n/a"
        n_obj = int(m.instances.max())
        print(
            f"| {n}^3 | {n_obj} | {ref_s} | {ours_t:.3f} | {n**3 / ours_t / 1e6:.0f} | {ratio} | "
            f"{mem['finish_mb']:.0f} / {mem['volume_mb']:.0f} |"
        )
    if args.latency:
        for period in (0.010, 0.040):
            latency(period=period)


if __name__ == "__main__":
    main()
