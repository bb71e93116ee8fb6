"""A/B of two builds of the per-object filters (`Segmentation.apply_object_ops`) in one
process: crowded real labels (the neurons, every voxel in one of 526 objects), the VNC
mitochondria, and many small objects (cubes of 4³ in 64×1024², the count quadratic costs
show on).

Loads two ``_core`` builds side by side (see ``ab_components.py``), checks that their
objects are identical, alternates calls and reports medians of wall time:

    RAYON_NUM_THREADS=1 PYTHONPATH=python python benches/ab_object_ops.py \\
        --old /tmp/old/_core.abi3.so --new python/empanada_rs/_core.abi3.so [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from ab_components import DATA, load

KEYS = ("ids", "boxes", "counts", "offsets", "starts", "runs")


def cubes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = np.zeros((64, 1024, 1024), np.int32)
    at = np.stack([rng.integers(0, 60, n), rng.integers(0, 1020, n), rng.integers(0, 1020, n)], 1)
    for i, (z, y, x) in enumerate(at):
        vol[z : z + 4, y : y + 4, x : x + 4] = i + 1
    return vol


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    mods = {"old": load(args.old, "old"), "new": load(args.new, "new")}
    neurons = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    vnc = np.load(DATA / "vnc_sstem_mito_dev.npz")["mito_instances_3d"]
    volumes = [
        ("neurons 250³", neurons, [{"erode": 1}, {"erode": 2}, {"dilate": 2}]),
        ("VNC mito 14×1024²", vnc, [{"erode": 2}, {"dilate": 3}, {"fill_holes": True}]),
    ] + [
        (
            f"{n} cubes of 4³ in 64×1024²",
            cubes(n),
            [{"erode": 1}, {"dilate": 2}, {"fill_holes": True}],
        )
        for n in (5000, 20000)
    ]
    print(f"load: {os.getloadavg()}, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}")
    print("| volume | objects | op | old ms | new ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for name, vol, ops in volumes:
        vol = np.ascontiguousarray(vol.astype(np.int32))
        segs = {k: m.Segmentation.from_labels(vol, 1) for k, m in mods.items()}
        for kw in ops:
            outs = {k: s.apply_object_ops(**kw).objects(1) for k, s in segs.items()}
            for key in KEYS:
                assert np.array_equal(outs["old"][key], outs["new"][key]), (name, kw, key)
            times: dict[str, list[float]] = {k: [] for k in mods}
            for _ in range(args.repeat):
                for k, s in segs.items():
                    t = time.perf_counter()
                    s.apply_object_ops(**kw)
                    times[k].append(time.perf_counter() - t)
            old, new = (statistics.median(times[k]) * 1e3 for k in ("old", "new"))
            op = ", ".join(f"{k}={v}" for k, v in kw.items())
            print(
                f"| {name} | {segs['new'].n_objects(1)} | {op} | {old:.0f} | {new:.0f} | "
                f"{old / new:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
