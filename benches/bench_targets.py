"""Per-core figures of the issue #2 label-kernel targets on the real volumes, in one run.

    RAYON_NUM_THREADS=1 .venv/bin/python benches/bench_targets.py [--repeats 9]

Reports wall and process-CPU medians (MVx/s or GVx/s), and the best wall time's rate, of 3D
connected components (26/6; into a fresh array and into a reused buffer, `out=`),
`relabel` into a reused buffer and in place (`out=`), and `label_statistics`, for uint16
and uint32 copies of the neuroproof neurons and the VNC mitochondria. A numpy copy of each
array into a reused buffer runs beside them: what a plain pass over the same memory costs
at that moment (this VM's memory bandwidth swings with its neighbours; relabel streams its
output and prefetches its input, so it can outrun numpy's copy). Run it with
RAYON_NUM_THREADS=1 so the figures are per core."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import empanada_rs as er

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """Median wall, median process CPU and best wall seconds of `repeats` calls."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(wall)), float(np.median(cpu)), float(np.min(wall))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    vols = {
        "neurons 250³": np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"],
        "VNC mito 14×1024²": np.load(DATA / "vnc_sstem_mito_dev.npz")["mito_instances_3d"],
    }
    print(
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}; load {os.getloadavg()}"
    )
    print("| volume | dtype | kernel | wall ms | cpu ms | wall rate | cpu rate | best rate |")
    print("|---|---|---|---|---|---|---|---|")
    for name, vol in vols.items():
        for dt in (np.uint16, np.uint32):
            v = np.ascontiguousarray(vol.astype(dt))
            n = v.size
            ids = np.unique(v)
            keys, values = ids, np.random.default_rng(0).permutation(ids).astype(dt)
            buf = np.empty_like(v)
            copy_buf = np.empty_like(v)
            work = v.copy()
            cc_buf = np.empty(v.shape, np.uint32)
            cases = {
                "components c26": (lambda v=v: er.connected_components(v, connectivity=26), 1e6),
                "components c26 out=buffer": (
                    lambda v=v, b=cc_buf: er.connected_components(v, connectivity=26, out=b),
                    1e6,
                ),
                "components c6": (lambda v=v: er.connected_components(v, connectivity=6), 1e6),
                "components c6 out=buffer": (
                    lambda v=v, b=cc_buf: er.connected_components(v, connectivity=6, out=b),
                    1e6,
                ),
                "relabel out=buffer": (
                    lambda v=v, k=keys, x=values, b=buf: er.relabel(v, k, x, out=b),
                    1e9,
                ),
                "relabel in place": (lambda w=work, k=keys: er.relabel(w, k, k, out=w), 1e9),
                "numpy copy out=buffer (same minute)": (
                    lambda v=v, b=copy_buf: np.copyto(b, v),
                    1e9,
                ),
                "label_statistics": (lambda v=v: er.label_statistics(v), 1e9),
            }
            for kname, (fn, unit) in cases.items():
                w, c, best = timed(fn, args.repeats)
                u = "MVx/s" if unit == 1e6 else "GVx/s"
                print(
                    f"| {name} | {np.dtype(dt).name} | {kname} | {w * 1e3:.1f} | {c * 1e3:.1f} "
                    f"| {n / w / unit:.2f} {u} | {n / c / unit:.2f} {u} "
                    f"| {n / best / unit:.2f} {u} |"
                )


if __name__ == "__main__":
    main()
