"""Ortho-plane post-processing (everything after the model), ours against the reference's.

Per plane (xy, xz, yz) the generated EM-like model outputs of every slice go through the
stack path (median, 2D panoptic, CC, runs, forward/backward matching, trackers, filters),
then the three views meet in the consensus (clusters, voxel votes, filters).

- ours: three `StackPipeline`s fed slice by slice in turn (each runs on its own worker
  thread, so the planes overlap), then `orthoplane_consensus`;
- reference: `tests/reference_stack.py` per plane (the call sequence of empanada-napari's
  Engine3d with every computation the reference's own) plus the reference consensus and
  filters (`tests/oracle_consensus.reference_consensus`) on the same three views.

    .venv/bin/python benches/bench_orthoplane.py [--sizes 128 256 512] [--ref-budget 600]

Where the reference's estimated time exceeds --ref-budget seconds it is not run (the
estimate scales the last measured size by voxels, which flatters the reference: it is
super-linear). Peak memory of ours is VmHWM of a fresh subprocess.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import ROOT, machine

import empanada_rs as er
from empanada_rs import synthetic

PLANES = ("xy", "xz", "yz")


@dataclass(frozen=True)
class PlaneOutputs:
    """The per-slice model outputs of one plane (what the bench feeds; no ground truth)."""

    sem: np.ndarray
    ctr_hmp: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.sem)

    def slice(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.sem[i], self.ctr_hmp[i], self.offsets[i]


def _cache_dir(n: int, n_obj: int, seed: int) -> Path:
    src = inspect.getsource(synthetic).encode()
    key = hashlib.sha256(src).hexdigest()[:12]
    root = Path(os.environ.get("EMPANADA_BENCH_CACHE", "/tmp/empanada-rs-bench-cache"))
    return root / f"orthoplane-n{n}-obj{n_obj}-seed{seed}-{key}"


def outputs(n: int, seed: int = 0, cache: bool = True):
    """Shape and `{plane: PlaneOutputs}` of the n³ case, drawn once and then read back."""
    shape = (n, n, n)
    n_obj = max(8, n**3 // 20**3)
    fields = ("sem", "ctr_hmp", "offsets")
    where = _cache_dir(n, n_obj, seed)
    if cache and (where / "done").exists():
        return shape, {
            p: PlaneOutputs(*(np.load(where / f"{p}-{f}.npy") for f in fields)) for p in PLANES
        }
    drawn = synthetic.model_outputs_3d_planes(shape, PLANES, n_obj, seed=seed)
    outs = {p: PlaneOutputs(m.sem, m.ctr_hmp, m.offsets) for p, m in drawn.items()}
    if cache:
        where.mkdir(parents=True, exist_ok=True)
        for p, m in outs.items():
            for f in fields:
                tmp = where / f"{p}-{f}.tmp.npy"
                np.save(tmp, getattr(m, f))
                tmp.rename(where / f"{p}-{f}.npy")
        (where / "done").touch()
    return shape, outs


def ours(shape, outs, min_size=500, min_extent=5, label_divisor=10000, sequential=False):
    """Consensus, views, stack seconds, consensus seconds and a per-plane split.

    The split gives, per plane, the seconds spent in its `push` calls and in its
    `finish` (with `sequential`, the plane's whole wall time), plus the process CPU
    seconds of the stacks and of the consensus.
    """
    split: dict[str, float] = {}
    c0, t0 = time.process_time(), time.perf_counter()
    pipes = {p: er.StackPipeline(shape, p, label_divisor=label_divisor) for p in PLANES}
    push_s = dict.fromkeys(PLANES, 0.0)
    segs = {}
    order = [[p] for p in PLANES] if sequential else [list(PLANES)]
    for group in order:
        longest = max(len(outs[p]) for p in group)
        for i in range(longest):
            for p in group:
                if i < len(outs[p]):
                    t = time.perf_counter()
                    pipes[p].push(*outs[p].slice(i))
                    push_s[p] += time.perf_counter() - t
        for p in group:
            t = time.perf_counter()
            segs[p] = pipes[p].finish(min_size=min_size, min_extent=min_extent)
            split[f"{p} push"] = push_s[p]
            split[f"{p} finish"] = time.perf_counter() - t
    c1, t1 = time.process_time(), time.perf_counter()
    views = [segs[p] for p in PLANES]
    cons = er.orthoplane_consensus(views, min_size=min_size, min_extent=min_extent)
    c2, t2 = time.process_time(), time.perf_counter()
    split["stacks cpu"] = c1 - c0
    split["consensus cpu"] = c2 - c1
    return cons, views, t1 - t0, t2 - t1, split


def reference(shape, outs, segs, min_size=500, min_extent=5):
    from tests.oracle_consensus import reference_consensus
    from tests.reference_stack import reference_stack

    t0 = time.perf_counter()
    for p in PLANES:
        m = outs[p]
        reference_stack(
            m.sem, m.ctr_hmp, m.offsets, shape, p, min_size=min_size, min_extent=min_extent
        )
    t1 = time.perf_counter()
    reference_consensus(segs, 1, True, min_size=min_size, min_extent=min_extent)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def peak_rss_mb(n: int) -> float:
    """VmHWM rise of a fresh process running ours at n³, over its baseline with inputs."""
    code = f"""
import sys; sys.path.insert(0, {str(ROOT / "benches")!r}); sys.path.insert(0, {str(ROOT)!r})
from bench_orthoplane import outputs, ours
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) / 1024
shape, outs = outputs({n})
base = hwm()
ours(shape, outs)
print(hwm() - base)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--ref-budget", type=float, default=600.0)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-reference", action="store_true", help="time ours only")
    ap.add_argument("--no-cache", action="store_true", help="draw the inputs, do not cache")
    ap.add_argument("--sequential", action="store_true", help="one plane after the other")
    ap.add_argument("--repeats", type=int, default=1, help="runs of ours per size (median)")
    ap.add_argument(
        "--label-divisor", type=int, default=10000, help="ids per class (512³ needs 10**6)"
    )
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    print(
        "| volume | objects (consensus) | ours: stacks + consensus = total s | "
        "reference: stacks + consensus = total s | ratio | our peak extra RSS |"
    )
    print("|---|---|---|---|---|---|")
    last = None
    for n in args.sizes:
        t = time.perf_counter()
        shape, outs = outputs(n, cache=not args.no_cache)
        print(f"<!-- inputs {n}³ ready in {time.perf_counter() - t:.1f} s -->", flush=True)
        runs = []
        for _ in range(args.repeats):
            runs.append(
                ours(shape, outs, label_divisor=args.label_divisor, sequential=args.sequential)
            )
            cons, segs, t_stack, t_cons, split = runs[-1]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in split.items())
            print(f"<!-- {n}³ run: stacks {t_stack:.2f} + consensus {t_cons:.2f} s; {parts} -->")
        runs.sort(key=lambda r: r[2] + r[3])
        cons, segs, t_stack, t_cons, split = runs[len(runs) // 2]
        est = None if last is None else last[1] * (n / last[0]) ** 3
        if args.no_reference:
            ref, ratio = "not run", "n/a"
        elif est is None or est <= args.ref_budget:
            r_stack, r_cons = reference(shape, outs, segs)
            ref = f"{r_stack:.1f} + {r_cons:.2f} = {r_stack + r_cons:.1f}"
            total_ref = r_stack + r_cons
            last = (n, total_ref)
            ratio = f"{total_ref / (t_stack + t_cons):.0f}x"
        else:
            ref = f"not run (est. ≥ {est:.0f})"
            ratio = f"≥ {est / (t_stack + t_cons):.0f}x (est.)"
        mem = "" if args.no_memory else f"{peak_rss_mb(n):.0f} MB"
        print(
            f"| {n}³ | {cons.n_objects(1)} | {t_stack:.2f} + {t_cons:.2f} = "
            f"{t_stack + t_cons:.2f} | {ref} | {ratio} | {mem} |",
            flush=True,
        )
        del outs
    print("\n" + json.dumps({"sizes": args.sizes}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
