"""panoptic_2d against the reference's 2D post-processing, side by side in one run.

The reference path is what empanada-napari 1.2.4's Engine2d runs after the model:
instance cells (centre NMS + grouping + nearest upsampling), hardening, semantic/instance
merge, crop and force-connected relabelling. Inputs are generated EM-like model outputs at
constant object density (one object per ~8000 px), coarse (heatmap at 1/4) and fine grids.

    .venv/bin/python benches/bench_panoptic.py [--sizes 512 1024 2048 4096] [--ref-budget 120]

The reference is quadratic in image area at constant density; where its estimated time
for one call exceeds --ref-budget seconds it is not run and the row says so.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
from _common import alternate, machine

import empanada_rs as er
from empanada_rs.synthetic import model_outputs_2d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    ap.add_argument("--grids", nargs="+", default=["coarse", "fine"])
    ap.add_argument("--ref-budget", type=float, default=120.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from tests.reference_panoptic import HAVE_REFERENCE, reference_panoptic_2d

    print(f"machine: {machine()}\n")
    print("| size | grid | objects | reference ms | ours ms | ours MVx/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    last_ref: dict[str, tuple[int, float]] = {}
    for grid in args.grids:
        for size in args.sizes:
            o = model_outputs_2d(
                (size, size), n_objects=size * size // 8000, coarse=grid == "coarse", seed=0
            )
            ours = partial(er.panoptic_2d, o.sem, o.ctr_hmp, o.offsets)
            out = ours()
            n_obj = len(np.unique(out)) - 1
            est = None
            if grid in last_ref:
                prev_size, prev_t = last_ref[grid]
                est = prev_t * (size / prev_size) ** 4  # quadratic in area
            run_ref = HAVE_REFERENCE and (est is None or est <= args.ref_budget)
            if run_ref:
                ref = partial(reference_panoptic_2d, o.sem, o.ctr_hmp, o.offsets)
                t = time.perf_counter()
                same = np.array_equal(ref(), out)  # warm-up doubles as a parity check
                first = time.perf_counter() - t
                reps = args.repeats if first < 5 else 1
                med = alternate({"ref": ref, "ours": ours}, reps)
                last_ref[grid] = (size, med["ref"])
                ref_ms = f"{med['ref'] * 1e3:.0f}" + ("" if same else " (DIFFERENT OUTPUT)")
                ratio = f"{med['ref'] / med['ours']:.0f}x"
                ours_s = med["ours"]
            else:
                ours_s = alternate({"ours": ours}, args.repeats)["ours"]
                ref_ms = f"not run (est. {est:.0f} s)" if est else "not installed"
                ratio = f"~{est / ours_s:.0f}x (est.)" if est else "n/a"
            mvx = size * size / ours_s / 1e6
            print(
                f"| {size}² | {grid} | {n_obj} | {ref_ms} | {ours_s * 1e3:.1f} | {mvx:.0f} "
                f"| {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
