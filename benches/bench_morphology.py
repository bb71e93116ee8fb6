"""Side-by-side timings of the face-neighbour morphology against scipy.ndimage.

Kernels: `erode_mask` vs `binary_erosion(iterations=n, border_value=1)` and `dilate_labels`
vs n rounds of `grey_dilation` into background, on the VNC mitochondria (14×1024²).
Per-object filters: `apply_object_ops` (erode / dilate every object in its crop) with the
core kernels vs the same code with the scipy calls it used before. Outputs are asserted
equal; ours and theirs alternate, medians reported.

    PYTHONPATH=python python benches/bench_morphology.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import empanada_rs as er
from empanada_rs.inference import object_ops

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def scipy_erode(mask, n):
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return ndimage.binary_erosion(mask, structure=cross, iterations=n, border_value=1)


def scipy_dilate(labels, n):
    cross = ndimage.generate_binary_structure(labels.ndim, 1)
    cur = labels
    for _ in range(n):
        grown = ndimage.grey_dilation(cur, footprint=cross, mode="constant", cval=0)
        cur = np.where(cur == 0, grown, cur)
    return cur


def compare(name, voxels, ours, theirs, repeats, same=np.array_equal):
    a, b = ours(), theirs()
    if isinstance(a, er.Segmentation):
        assert np.array_equal(a.stack_volume(), b.stack_volume()), name
    else:
        assert same(a, b), name
    to, tt = [], []
    for _ in range(repeats):
        for fn, ts in ((ours, to), (theirs, tt)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    mo, mt = statistics.median(to), statistics.median(tt)
    print(
        f"| {name} | {mo * 1e3:.1f} | {voxels / mo / 1e6:.0f} | {mt * 1e3:.1f} | "
        f"{voxels / mt / 1e6:.0f} | {mt / mo:.1f}x |",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    r = ap.parse_args().repeats
    path = DATA / "vnc_sstem_mito_dev.npz"
    labels = np.ascontiguousarray(np.load(path)["mito_instances_3d"].astype(np.int64))
    mask = labels > 0
    n_vox = labels.size
    print(f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'all')}, {os.cpu_count()} CPUs")
    print("| case | ours ms | ours MVx/s | scipy ms | scipy MVx/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for n in (1, 3, 10):
        compare(
            f"erode_mask n={n}, VNC 14×1024²",
            n_vox,
            lambda n=n: er.erode_mask(mask, n),
            lambda n=n: scipy_erode(mask, n),
            r,
        )
        compare(
            f"dilate_labels n={n}, VNC 14×1024²",
            n_vox,
            lambda n=n: er.dilate_labels(labels, n),
            lambda n=n: scipy_dilate(labels, n),
            r,
        )

    seg = er.Segmentation.from_labels(labels, 1)
    kernels = (object_ops.erode_mask, object_ops.dilate_labels)

    def with_scipy(fn):
        def run():
            object_ops.erode_mask, object_ops.dilate_labels = scipy_erode, scipy_dilate
            try:
                return fn()
            finally:
                object_ops.erode_mask, object_ops.dilate_labels = kernels

        return run

    for op, n in (("erode", 2), ("dilate", 2), ("dilate", 8)):
        fn = lambda op=op, n=n: object_ops.apply_object_ops(seg, **{op: n})  # noqa: E731
        compare(
            f"apply_object_ops {op}={n}, VNC ({seg.n_objects(1)} objects)",
            n_vox,
            fn,
            with_scipy(fn),
            max(1, r // 2),
        )


if __name__ == "__main__":
    main()
