"""A/B of two builds of the components kernel in one process, per-core CPU time.

Loads the compiled ``_core`` extension of two builds side by side (``--old``, ``--new``:
paths to ``_core.abi3.so`` files), checks that their outputs are identical, then alternates
calls (each pair in turn in the other order) and reports the median process CPU time of
``connected_components`` per case, and the median of the per-pair time ratios, which the
host's slow drifts in speed sway less. Run it single-threaded so CPU time is per-core
throughput on a loaded machine:

    RAYON_NUM_THREADS=1 PYTHONPATH=python python benches/ab_components.py \\
        --old /tmp/old/_core.abi3.so --new python/empanada_rs/_core.abi3.so [--repeat 9] [--out]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import time
from pathlib import Path
from types import ModuleType

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def load(path: str, tag: str) -> ModuleType:
    """The extension at `path` under a package name of its own (its init stays `_core`)."""
    name = f"ab_{tag}._core"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument(
        "--out",
        action="store_true",
        help="write into a reused buffer (out=): the kernel alone, without a fresh array's"
        " page faults",
    )
    args = ap.parse_args()
    mods = {"old": load(args.old, "old"), "new": load(args.new, "new")}
    neu = np.load(DATA / "neuroproof_fibsem_medulla_sample2.npz")["neuron_instances"]
    vnc = np.load(DATA / "vnc_sstem_mito_dev.npz")
    cases = [("neurons 250³ u16", np.ascontiguousarray(neu), c, False) for c in (26, 18, 6)] + [
        ("neurons 250³ u32", np.ascontiguousarray(neu.astype(np.uint32)), 26, False),
        ("VNC mito 3D u16", np.ascontiguousarray(vnc["mito_instances_3d"]), 26, False),
        ("VNC mito 3D u16", np.ascontiguousarray(vnc["mito_instances_3d"]), 6, False),
        ("VNC mask u8 binary", np.ascontiguousarray(vnc["mito_semantic"]), 26, True),
    ]
    print(f"load: {os.getloadavg()}, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}")
    print(
        "| case | conn | old ms | new ms | old MVx/s | new MVx/s | new/old speed | paired new/old |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, a, conn, binary in cases:
        outs = {
            k: m.connected_components(a, connectivity=conn, binary=binary) for k, m in mods.items()
        }
        assert outs["old"][1] == outs["new"][1], (name, conn)
        assert np.array_equal(outs["old"][0], outs["new"][0]), (name, conn)
        times: dict[str, list[float]] = {k: [] for k in mods}
        kw = {"out": np.empty(a.shape, np.uint32)} if args.out else {}
        for r in range(args.repeat):
            for k in ("old", "new") if r % 2 == 0 else ("new", "old"):
                t = time.process_time()
                mods[k].connected_components(a, connectivity=conn, binary=binary, **kw)
                times[k].append(time.process_time() - t)
        old, new = (statistics.median(times[k]) for k in ("old", "new"))
        paired = statistics.median(o / n for o, n in zip(times["old"], times["new"], strict=True))
        mv = a.size / 1e6
        print(
            f"| {name} | {conn} | {old * 1e3:.1f} | {new * 1e3:.1f} | {mv / old:.0f} "
            f"| {mv / new:.0f} | {old / new:.2f}x | {paired:.2f}x |"
        )


if __name__ == "__main__":
    main()
