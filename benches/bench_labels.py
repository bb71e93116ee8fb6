"""Side-by-side timings of the label operations and the slice median against fastremap,
NumPy, scikit-image, scipy and the reference (empanada 0.1.8.dev1).

Each case times ours and the competitor alternately on the same input and reports the
median time, throughput (MVx/s) and the speed-up as a Markdown table.

    PYTHONPATH=python python benches/bench_labels.py [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import fastremap
import numpy as np
from scipy import ndimage
from skimage.measure import regionprops
from skimage.morphology import remove_small_objects as sk_remove_small_objects
from skimage.segmentation import relabel_sequential

import empanada_rs as er

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def blocks(shape, n_ids, cell=8, seed=0):
    """Blocky objects: cells of `cell` voxels per side with random ids, ~20 % background."""
    rng = np.random.default_rng(seed)
    grid = tuple(s // cell + 1 for s in shape)
    ids = rng.integers(1, n_ids + 1, size=grid).astype(np.uint32)
    ids[rng.random(grid) < 0.2] = 0
    out = ids
    for ax in range(len(shape)):
        out = np.repeat(out, cell, axis=ax)
    return np.ascontiguousarray(out[tuple(slice(0, s) for s in shape)])


def timed(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def compare(rows, name, data_name, voxels, ours, theirs, their_name, repeats):
    t_ours, t_theirs = [], []
    ours()
    theirs()
    for _ in range(repeats):  # alternate so load changes hit both alike
        t_ours += timed(ours, 1)
        t_theirs += timed(theirs, 1)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    rows.append(
        (
            name,
            data_name,
            their_name,
            f"{mo * 1e3:.1f}",
            f"{voxels / mo / 1e6:.0f}",
            f"{mt * 1e3:.1f}",
            f"{voxels / mt / 1e6:.0f}",
            f"{mt / mo:.1f}x",
        )
    )
    print("| " + " | ".join(rows[-1]) + " |", flush=True)


def fill_holes_reference_per_box(labels):
    """The reference's per-box approach (filters.fill_holes_in_segmentation, one 2D slice):
    fill 'any label' in each object's box and paint the box with its id."""
    out = labels.copy()
    for rp in regionprops(labels):
        sl = rp.slice
        tmp = ndimage.binary_fill_holes(out[sl].astype(bool))
        out[sl] = tmp.astype(out.dtype) * rp.label
    return out


def fill_holes_scipy_per_object(labels):
    out = labels.copy()
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == i
        holes = ndimage.binary_fill_holes(mask) & ~mask & (labels[sl] == 0)
        out[sl][holes] = i
    return out


def stats_scipy(labels):
    ids = np.unique(labels)
    ids = ids[ids != 0]
    ndimage.find_objects(labels)
    ndimage.sum_labels(np.ones_like(labels, dtype=np.uint8), labels, ids)
    ndimage.center_of_mass(labels > 0, labels, ids)


def reference_median(stack, k):
    import torch
    from empanada.inference.engines import _MedianQueue

    q = _MedianQueue(k)
    out = []
    for s in stack:
        q.enqueue({"sem": torch.from_numpy(s[None])})
        o = q.get_next(keys=["sem"])
        if o is not None:
            out.append(o["sem"])
    out.extend(o["sem"] for o in q.end())
    return out


def numpy_running_median(stack, k):
    from numpy.lib.stride_tricks import sliding_window_view

    m = k // 2
    out = stack.copy()
    out[m : len(stack) - m] = np.median(sliding_window_view(stack, k, axis=0), axis=-1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="skip the slowest competitors")
    args = ap.parse_args()
    r = args.repeats
    rows = []
    header = "| op | data | vs | ours ms | ours MVx/s | theirs ms | theirs MVx/s | speed-up |"
    print(header)
    print("|" + "---|" * 8)

    inputs = {}
    if (DATA / "vnc_sstem_mito_dev.npz").exists():
        vnc = np.load(DATA / "vnc_sstem_mito_dev.npz")
        inputs["vnc mito_instances_3d 14x1024² u16"] = vnc["mito_instances_3d"]
        inputs["vnc mito_instances_2d 14x1024² u16"] = vnc["mito_instances_2d"]
    if (DATA / "neuroproof_fibsem_medulla_sample2.npz").exists():
        neu = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")
        inputs["neuroproof neurons 250³ u16"] = neu["neuron_instances"]
    inputs["blocks 256³ u32 (30k ids)"] = blocks((256, 256, 256), 30_000)
    inputs["blocks 64x512² u32 (30k ids)"] = blocks((64, 512, 512), 30_000, seed=1)

    for dname, lab in inputs.items():
        n = lab.size
        ids = np.unique(lab)
        ids = ids[ids != 0]
        vals = (ids[::-1]).astype(lab.dtype)
        remap = dict(zip(ids.tolist(), vals.tolist(), strict=True))
        compare(
            rows,
            "relabel",
            dname,
            n,
            lambda lab=lab, ids=ids, vals=vals: er.relabel(lab, ids, vals),
            lambda lab=lab, remap=remap: fastremap.remap(lab, remap, preserve_missing_labels=True),
            "fastremap.remap",
            r,
        )
        lut = np.arange(int(lab.max()) + 1, dtype=lab.dtype)
        lut[ids] = vals
        compare(
            rows,
            "relabel",
            dname,
            n,
            lambda lab=lab, ids=ids, vals=vals: er.relabel(lab, ids, vals),
            lambda lab=lab, lut=lut: lut[lab],
            "numpy lut[labels]",
            r,
        )
        compare(
            rows,
            "renumber",
            dname,
            n,
            lambda lab=lab: er.renumber(lab),
            lambda lab=lab: fastremap.renumber(lab, preserve_zero=True, in_place=False),
            "fastremap.renumber",
            r,
        )
        compare(
            rows,
            "renumber",
            dname,
            n,
            lambda lab=lab: er.renumber(lab),
            lambda lab=lab: relabel_sequential(lab),
            "skimage relabel_sequential",
            r,
        )
        if "blocks" not in dname:  # regionprops takes ~40 s on 30k objects
            compare(
                rows,
                "label_statistics",
                dname,
                n,
                lambda lab=lab: er.label_statistics(lab),
                lambda lab=lab: [(p.bbox, p.centroid, p.area) for p in regionprops(lab)],
                "skimage regionprops",
                max(1, r // 2),
            )
        compare(
            rows,
            "label_statistics",
            dname,
            n,
            lambda lab=lab: er.label_statistics(lab),
            lambda lab=lab: stats_scipy(lab),
            "scipy find_objects+sum+com",
            max(1, r // 2),
        )
        compare(
            rows,
            "remove_small_objects",
            dname,
            n,
            lambda lab=lab: er.remove_small_objects(lab, 500),
            lambda lab=lab: sk_remove_small_objects(lab, max_size=499),
            "skimage remove_small_objects",
            r,
        )
        if not args.quick and "blocks" not in dname:
            compare(
                rows,
                "fill_holes",
                dname,
                n,
                lambda lab=lab: er.fill_holes(lab),
                lambda lab=lab: fill_holes_scipy_per_object(lab),
                "scipy per object",
                1,
            )
    vnc2d = inputs.get("vnc mito_instances_2d 14x1024² u16")
    if vnc2d is not None:
        sl = np.ascontiguousarray(vnc2d[0])
        compare(
            rows,
            "fill_holes (2D slice)",
            "vnc 1024² u16",
            sl.size,
            lambda: er.fill_holes(sl),
            lambda: fill_holes_reference_per_box(sl),
            "reference per-box (quirk)",
            r,
        )

    rng = np.random.default_rng(0)
    for k in (3, 5, 11):
        stack = rng.random((16, 1024, 1024), dtype=np.float32)
        n = stack.size
        try:
            import empanada.inference.engines  # noqa: F401

            compare(
                rows,
                f"median k={k} recursive",
                "16x1024² f32",
                n,
                lambda stack=stack, k=k: er.median_filter_slices(stack, k),
                lambda stack=stack, k=k: reference_median(stack, k),
                "reference _MedianQueue (torch)",
                r,
            )
        except ImportError:
            pass
        compare(
            rows,
            f"median k={k} running",
            "16x1024² f32",
            n,
            lambda stack=stack, k=k: er.median_filter_slices(stack, k, mode="running"),
            lambda stack=stack, k=k: numpy_running_median(stack, k),
            "np.median",
            r,
        )

    if args.out:
        cmd = "PYTHONPATH=python python " + " ".join(["benches/bench_labels.py", *sys.argv[1:]])
        text = [
            "# Label operations and slice median: side-by-side timings",
            "",
            f"Command: `{cmd}` (RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'all')}, "
            f"{os.cpu_count()} CPUs, shared machine: medians of alternated runs).",
            "",
            header,
            "|" + "---|" * 8,
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
        ]
        args.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
