"""Side-by-side timings of the face-neighbour morphology against scipy.ndimage.

Kernels: `erode_mask` vs `binary_erosion(iterations=n, border_value=1)` and `dilate_labels`
vs n rounds of `grey_dilation` into background, on the VNC mitochondria (14×1024²);
`erode_labels` vs scipy's `binary_erosion` of each id in its box (widened by one voxel), on
the VNC mitochondria and the neurons (250³, every voxel in one of 525 objects).
Per-object filters: `Segmentation.apply_object_ops` (the core: every object in its crop,
objects in parallel) vs the Python loop over objects it replaced (tests/oracle_object_ops.py)
with the core kernels, and with the scipy calls that loop used before those. Outputs are
asserted equal (objects and runs for the filters); ours and theirs alternate, medians
reported.

    PYTHONPATH=python python benches/bench_morphology.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _common import ROOT  # also puts the repository root on sys.path, for tests/
from scipy import ndimage

import empanada_rs as er
from tests import oracle_object_ops as loop

DATA = ROOT / ".." / "shared" / "data"


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


def scipy_erode_labels(labels, n):
    """Each id (1..max) eroded on its own mask in its box widened by one voxel, the array's
    outside counting as set: nothing outside that crop changes the result."""
    cross = ndimage.generate_binary_structure(labels.ndim, 1)
    out = np.zeros_like(labels)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        crop = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, d))
            for s, d in zip(box, labels.shape, strict=True)
        )
        kept = ndimage.binary_erosion(
            labels[crop] == i, structure=cross, iterations=n, border_value=1
        )
        out[crop][kept] = i
    return out


def erode_labels_cases(repeats):
    """`erode_labels` against the per-id scipy loop on both real volumes."""
    neurons = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    vnc = np.load(DATA / "vnc_sstem_mito_dev.npz")["mito_instances_3d"]
    for name, vol in (("VNC 3D (40 objects)", vnc), ("neurons 250³ (525 objects)", neurons)):
        vol = np.ascontiguousarray(vol.astype(np.int32))
        for n in (1, 3):
            compare(
                f"erode_labels n={n}, {name} vs scipy per id",
                vol.size,
                lambda n=n, vol=vol: er.erode_labels(vol, n),
                lambda n=n, vol=vol: scipy_erode_labels(vol, n),
                repeats,
            )


def compare(name, voxels, ours, theirs, repeats, same=np.array_equal):
    a, b = ours(), theirs()
    if isinstance(a, er.Segmentation):
        for c in a.class_ids:
            oa, ob = a.objects(c), b.objects(c)
            assert all(np.array_equal(oa[k], ob[k]) for k in oa), name
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

    erode_labels_cases(r)

    scipy_kernels = (scipy_erode, scipy_dilate)
    for name, vol in (
        ("VNC 3D", labels),
        ("VNC 2D ids", np.load(path)["mito_instances_2d"].astype(np.int64)),
        (
            "neurons 250³",
            np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"].astype(
                np.int64
            ),
        ),
    ):
        seg = er.Segmentation.from_labels(np.ascontiguousarray(vol), 1)
        ops = [("erode", 2), ("dilate", 2), ("dilate", 8), ("fill_holes", True)]
        if name.startswith("neurons"):
            ops = [("erode", 2), ("dilate", 2)]  # dense: dilation has no room to grow
        for op, n in ops:
            kw = {op: n}
            case = f"{op}={n}, {name} ({seg.n_objects(1)} objects)"
            compare(
                f"apply_object_ops {case} vs the loop",
                vol.size,
                lambda kw=kw, seg=seg: seg.apply_object_ops(**kw),
                lambda kw=kw, seg=seg: loop.apply_object_ops(seg, **kw),
                max(1, r // 2),
            )
            if op != "fill_holes":
                compare(
                    f"apply_object_ops {case} vs the loop with scipy",
                    vol.size,
                    lambda kw=kw, seg=seg: seg.apply_object_ops(**kw),
                    lambda kw=kw, seg=seg: loop.apply_object_ops(seg, kernels=scipy_kernels, **kw),
                    max(1, r // 2),
                )


if __name__ == "__main__":
    main()
