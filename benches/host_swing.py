"""How much this machine's own speed swings, beside the components target.

    OPENBLAS_NUM_THREADS=1 RAYON_NUM_THREADS=1 .venv/bin/python benches/host_swing.py [--rounds 120]

Each round times, in turn: a fixed compute loop that touches no memory beyond L1 (3000
`np.cumsum` calls on 4096 int64; best of 3), numpy's copy of the neuroproof neurons as uint32
into a reused buffer (best of 3), and 26-connected components of the neurons into a reused
buffer (median of 5). If the compute loop's time swings, the vCPU itself runs at varying
speed, and so does every per-core figure taken on it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import empanada_rs as er

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=120)
    args = ap.parse_args()
    v = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    out = np.empty(v.shape, np.uint32)
    small = np.arange(4096, dtype=np.int64)
    small_out = np.empty_like(small)
    big = v.astype(np.uint32)
    big_out = np.empty_like(big)

    def compute() -> float:
        t = time.perf_counter()
        for _ in range(3000):
            np.cumsum(small, out=small_out)
        return time.perf_counter() - t

    def copy() -> float:
        t = time.perf_counter()
        np.copyto(big_out, big)
        return time.perf_counter() - t

    def components() -> float:
        t = time.perf_counter()
        er.connected_components(v, connectivity=26, out=out)
        return time.perf_counter() - t

    for f in (compute, copy, components):
        f()
    loops, copies, cc = [], [], []
    for _ in range(args.rounds):
        loops.append(min(compute() for _ in range(3)))
        copies.append(v.size / min(copy() for _ in range(3)) / 1e9)
        cc.append(v.size / float(np.median([components() for _ in range(5)])) / 1e6)
        print(
            f"{time.strftime('%H:%M:%S')} loop {loops[-1] * 1e3:.1f} ms  "
            f"copy {copies[-1]:.2f} GVx/s  components {cc[-1]:.0f} MVx/s",
            flush=True,
        )
    cc_a = np.array(cc)
    print(
        f"loop {min(loops) * 1e3:.1f}-{max(loops) * 1e3:.1f} ms; "
        f"copy {min(copies):.2f}-{max(copies):.2f} GVx/s; "
        f"components {cc_a.min():.0f}-{cc_a.max():.0f} MVx/s, median {np.median(cc_a):.0f}, "
        f"{(cc_a >= 400).mean():.0%} of rounds at 400 or more; "
        f"r(loop, components) = {np.corrcoef(loops, cc)[0, 1]:.2f}"
    )


if __name__ == "__main__":
    main()
