"""Side-by-side timings of the ortho-plane consensus and tile stitching against the
reference (empanada 0.1.8.dev1: merge_objects_from_trackers + filters; Tiler +
pan_seg_to_rle_seg + merge_objects_from_tiles + rle_seg_to_pan_seg).

    PYTHONPATH=python python benches/bench_consensus.py [--sizes 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse

import _common
import numpy as np

import empanada_rs as er
from tests.oracle_consensus import ellipsoid_views, reference_consensus, reference_stitch, segs_from


def consensus_case(n: int, repeats: int) -> str:
    n_obj = max(8, (n // 32) ** 3 // 2)
    segs = segs_from(ellipsoid_views((n, n, n), n_obj, 0, radius=(4, 12)))
    kw = {"min_size": 100, "min_extent": 3}
    t = _common.alternate(
        {
            "ours": lambda: er.orthoplane_consensus(segs, **kw),
            "ref": lambda: reference_consensus(segs, 1, True, **kw),
        },
        repeats,
    )
    mvx = n**3 / 1e6
    return (
        f"| consensus {n}³ ({n_obj} objects/view) | {t['ours'] * 1e3:.1f} ms "
        f"({mvx / t['ours']:.0f} MVx/s) | {t['ref'] * 1e3:.0f} ms | {t['ref'] / t['ours']:.0f}× |"
    )


def stitch_case(n: int, tile: int, repeats: int) -> str:
    rng = np.random.default_rng(0)
    divisor = 1000
    img = np.zeros((n, n), np.int32)
    yy, xx = np.ogrid[:n, :n]
    for k in range(1, 600):
        cy, cx, r = rng.integers(0, n), rng.integers(0, n), rng.integers(5, 40)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = divisor + k
    b = min(128, tile // 10)
    layout = er.tile_layout((n, n), tile, b)
    tiles = [img[y0:y1, x0:x1].copy() for y0, y1, x0, x1 in layout]
    kw = {"labels": (1,), "thing_list": (1,), "label_divisor": divisor}
    t = _common.alternate(
        {
            "ours": lambda: er.stitch_tiles(tiles, layout, (n, n), **kw),
            "ref": lambda: reference_stitch(tiles, (n, n), tile, b, **kw),
        },
        repeats,
    )
    mpx = n * n / 1e6
    return (
        f"| stitch {n}² tiles {tile} ({len(layout)} tiles) | {t['ours'] * 1e3:.1f} ms "
        f"({mpx / t['ours']:.0f} MPx/s) | {t['ref'] * 1e3:.0f} ms | {t['ref'] / t['ours']:.0f}× |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--stitch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"machine: {_common.machine()}\n")
    print("| case | ours | reference | speed-up |\n| --- | --- | --- | --- |")
    for n in a.sizes:
        print(consensus_case(n, a.repeats), flush=True)
    print(stitch_case(a.stitch, 1024, a.repeats), flush=True)


if __name__ == "__main__":
    main()
