"""Side-by-side timings: connected components and run-length encoding.

Ours (empanada_rs) against cc3d, scipy.ndimage.label and skimage.measure.label for
components, and against the reference's per-object path (regionprops + rle_encode as in
``empanada.inference.rle.pan_seg_to_rle_seg``) for encoding, on the real volumes in
../shared/data and on generated ones. Calls alternate; the median of ``--repeat`` runs is
reported as wall-clock MVx/s, plus ours in process CPU time (per-core throughput: ours uses
rayon, the others one thread).

    PYTHONPATH=python python benches/bench_components.py [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cc3d
import numpy as np
from empanada.array_utils import join_ranges, rle_encode, rle_iou, vote_by_ranges
from empanada.inference.rle import rle_seg_to_pan_seg
from scipy import ndimage as ndi
from skimage import measure

import empanada_rs as er
from empanada_rs.rle import to_rle_seg

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STRUCT_RANK = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}


def timed(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds per function; calls alternate between the functions."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up (numba JIT, page cache)
        f()
    for _ in range(repeat):
        for k, f in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def generated_labels(shape: tuple[int, ...], cell: int, seed: int = 0) -> np.ndarray:
    """Label cells with wavy borders, a fifth background (like the criterion benches)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    wobble = sum(np.sin(g / 7.0 + i) for i, g in enumerate(grids)) * cell / 6
    cells = [((g + wobble) // cell).astype(np.int64) for g in grids]
    key = np.zeros(shape, np.int64)
    for c in cells:
        key = key * 1009 + c
    _, inv = np.unique(key, return_inverse=True)
    lut = rng.integers(1, 60000, size=inv.max() + 1)
    lut[rng.random(lut.size) < 0.2] = 0
    return lut[inv.reshape(shape)].astype(np.uint16)


def generated_mask(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """Blobby binary mask (smoothed noise, ~30 % foreground)."""
    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 3)
    return noise > np.quantile(noise, 0.7)


def ref_encode(labels: np.ndarray) -> dict[int, dict[str, Any]]:
    """The reference's per-object encoding (pan_seg_to_rle_seg step 3)."""
    out = {}
    for rp in measure.regionprops(labels):
        flat = np.ravel_multi_index(tuple(rp.coords.T), labels.shape)
        starts, runs = rle_encode(flat)
        out[rp.label] = {"box": rp.bbox, "starts": starts, "runs": runs}
    return out


def row(name: str, n: int, res: dict[str, tuple[float, float]], ours: str = "ours") -> str:
    w0, c0 = res[ours]
    cells = [name, f"{n / 1e6:.1f}", f"{n / w0 / 1e6:.0f}", f"{n / c0 / 1e6:.0f}"]
    others = []
    for k, (w, _) in res.items():
        if k != ours:
            others.append(f"{k}: {n / w / 1e6:.0f} ({w / w0:.1f}x)")
    cells.append("; ".join(others) or "-")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the slowest reference runs")
    args = ap.parse_args()
    r = args.repeat

    vnc = np.load(DATA / "vnc_sstem_mito_dev.npz")
    neuro = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")
    vnc_inst = np.ascontiguousarray(vnc["mito_instances_2d"])
    vnc_sem = np.ascontiguousarray(vnc["mito_semantic"]).astype(bool)
    neu = np.ascontiguousarray(neuro["neuron_instances"])
    gen3 = generated_labels((256, 256, 256), 24)
    gen2 = generated_labels((1024, 1024), 24)
    mask3 = generated_mask((256, 256, 256))

    head = (
        "| case | MVx | ours MVx/s (wall) | ours MVx/s (CPU) "
        "| others: wall MVx/s (ours faster by) |"
    )
    sep = "|---|---|---|---|---|"
    print("\n### Connected components (multi-label)\n")
    print(head)
    print(sep)
    ml = [
        ("neuroproof 250^3 u16, 26-conn", neu, 26),
        ("neuroproof 250^3 u16, 6-conn", neu, 6),
        ("generated 256^3 u16, 26-conn", gen3, 26),
        ("VNC mito 2D slice 1024^2, 8-conn", vnc_inst[5], 8),
        ("generated 1024^2 u16, 8-conn", gen2, 8),
    ]
    for name, vol, conn in ml:
        fns = {
            "ours": lambda v=vol, c=conn: er.connected_components(v, connectivity=c),
            "cc3d": lambda v=vol, c=conn: cc3d.connected_components(v, connectivity=c),
        }
        if not (args.quick and vol.ndim == 3):
            fns["skimage"] = lambda v=vol, c=conn: measure.label(
                v, background=0, connectivity=STRUCT_RANK[c]
            )
        print(row(name, vol.size, timed(fns, r)), flush=True)

    print("\n### Connected components (binary)\n")
    print(head)
    print(sep)
    bins = [
        ("VNC mito mask 14x1024^2, 26-conn", vnc_sem, 26),
        ("generated blobs 256^3, 26-conn", mask3, 26),
        ("generated blobs 256^3, 6-conn", mask3, 6),
        ("VNC mito mask slice 1024^2, 8-conn", vnc_sem[5], 8),
    ]
    for name, vol, conn in bins:
        st = ndi.generate_binary_structure(vol.ndim, STRUCT_RANK[conn])
        fns = {
            "ours": lambda v=vol, c=conn: er.connected_components(v, connectivity=c),
            "cc3d": lambda v=vol, c=conn: cc3d.connected_components(v, connectivity=c),
            "scipy": lambda v=vol, s=st: ndi.label(v, structure=s),
            "skimage": lambda v=vol, c=conn: measure.label(v, connectivity=STRUCT_RANK[c]),
        }
        print(row(name, vol.size, timed(fns, r)), flush=True)

    print("\n### Run-length encoding / decoding\n")
    print(head)
    print(sep)
    ref_r = 1 if args.quick else max(1, r // 2)
    for name, vol in [("VNC mito slice 1024^2", vnc_inst[5]), ("VNC mito 14x1024^2", vnc_inst)]:
        fns = {
            "ours": lambda v=vol: er.rle_encode(v),
            "ours+to_rle_seg": lambda v=vol: to_rle_seg(er.rle_encode(v), 1),
            "reference": lambda v=vol: ref_encode(v),
        }
        print(row(f"encode {name}", vol.size, timed(fns, ref_r)), flush=True)
    for name, vol in [("neuroproof 250^3", neu), ("generated 256^3", gen3)]:
        fns = {"ours": lambda v=vol: er.rle_encode(v)}
        if not args.quick:
            fns["reference"] = lambda v=vol: ref_encode(v)
        print(row(f"encode {name}", vol.size, timed(fns, 1 if not args.quick else r)), flush=True)
    for name, vol in [("VNC mito slice 1024^2", vnc_inst[5]), ("neuroproof 250^3", neu)]:
        e = er.rle_encode(vol)
        seg = to_rle_seg(e, 1)
        fns = {
            "ours": lambda e=e: er.rle_decode(
                e["ids"], e["offsets"], e["starts"], e["runs"], e["shape"]
            ),
            "reference": lambda s=seg, sh=vol.shape: rle_seg_to_pan_seg(s, sh),
        }
        print(row(f"decode {name}", vol.size, timed(fns, r)), flush=True)

    print("\n### RLE set operations (runs/s in millions in place of MVx/s)\n")
    print("| case | M runs | ours M runs/s (wall) | ours (CPU) | others |")
    print(sep)
    e = er.rle_encode(neu)
    big = np.argsort(e["counts"])[-3:]
    objs = [
        (
            e["starts"][e["offsets"][i] : e["offsets"][i + 1]],
            e["runs"][e["offsets"][i] : e["offsets"][i + 1]],
        )
        for i in big
    ]
    # the same objects shifted by one slice: heavy overlap, as in slice-to-slice matching
    shifted = [(s + 250 * 250, r_) for s, r_ in objs]
    a, b = objs[0], shifted[0]
    nr = len(a[0]) + len(b[0])
    res = timed({"ours": lambda: er.rle_iou(*a, *b), "reference": lambda: rle_iou(*a, *b)}, r)
    print(row("IoU of two large neuron RLEs", nr, res), flush=True)
    items = objs + shifted
    ranges = [np.stack([s, s + r_], axis=1) for s, r_ in items]
    nr = sum(len(s) for s, _ in items)
    res = timed(
        {
            "ours": lambda: er.rle_union(items),
            "reference": lambda: join_ranges([x.copy() for x in ranges]),
        },
        r,
    )
    print(row("union of 6 neuron RLEs", nr, res), flush=True)
    res = timed(
        {
            "ours": lambda: er.rle_vote(items, 2),
            "reference": lambda: vote_by_ranges([x.copy() for x in ranges], 2),
        },
        r,
    )
    print(row("vote thr=2 over 6 neuron RLEs", nr, res), flush=True)


if __name__ == "__main__":
    main()
