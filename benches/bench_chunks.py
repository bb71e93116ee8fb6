"""Writing a segmentation class to zarr: chunked (write_labels_zarr, only touched chunks,
no dense volume) against the naive path (to_volume, then ``array[:] = volume``).

Each configuration runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.
Usage: python benches/bench_chunks.py [--sizes 256 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def ellipsoids(n: int, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.zeros((n, n, n), np.uint32)
    for i in range(1, count + 1):
        c = rng.uniform(0, n, 3)
        r = rng.uniform(4, n / 16 + 8, 3)
        lo = np.maximum((c - r).astype(int), 0)
        hi = np.minimum((c + r).astype(int) + 1, n)
        zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        m = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
        v[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][m] = i
    return v


def child(n: int, path: str, chunks: int, sharded: bool, naive: bool, repeat: int) -> None:
    import zarr

    import empanada_rs as er

    # Objects come from a file written by the parent, so no dense volume inflates the RSS.
    objs = dict(np.load(f"{path}.objects.npz"))
    seg = er.Segmentation.from_objects((n, n, n), 1, objs)
    shards = 4 * chunks if sharded and 4 * chunks <= n else (n if sharded else None)
    times = []
    for _ in range(repeat):
        shutil.rmtree(path, ignore_errors=True)
        t = time.perf_counter()
        if naive:
            vol = seg.to_volume(1)
            arr = zarr.create_array(
                path,
                shape=vol.shape,
                dtype="int32",
                chunks=(chunks,) * 3,
                shards=None if shards is None else (shards,) * 3,
                fill_value=0,
            )
            arr[:] = vol
            del vol
        else:
            er.write_labels_zarr(seg, path, 1, chunks=chunks, shards=shards)
        times.append(time.perf_counter() - t)
    # VmHWM is the peak of this process image only (ru_maxrss would carry over the
    # parent's peak across fork + exec).
    with open("/proc/self/status") as f:
        hwm = [ln for ln in f if ln.startswith("VmHWM")][0]
    rss = int(hwm.split()[1]) / 1024
    print(json.dumps({"t": float(np.median(times)), "rss_mb": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--chunks", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=5)
    a = ap.parse_args()
    if a.child:
        n, path, chunks, sharded, naive = a.child
        child(int(n), path, int(chunks), sharded == "1", naive == "1", a.repeat)
        return
    print(
        "| volume | chunks | shards | ours s | ours MVx/s | ours RSS MB "
        "| naive s | naive MVx/s | naive RSS MB | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    tmp = tempfile.mkdtemp()
    import empanada_rs as er

    for n in a.sizes:
        vol = ellipsoids(n, 300 if n <= 256 else 600)
        objs = er.Segmentation.from_labels(vol, 1).objects(1)
        del vol
        np.savez(f"{tmp}/a.zarr.objects.npz", **objs)
        for c in a.chunks:
            if c > n:
                continue
            for sharded in (False, True):
                res = {}
                for naive in (False, True):
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--repeat",
                            str(a.repeat),
                            "--child",
                            str(n),
                            f"{tmp}/a.zarr",
                            str(c),
                            str(int(sharded)),
                            str(int(naive)),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    res[naive] = json.loads(out.strip().splitlines()[-1])
                mv = n**3 / 1e6
                o, v = res[False], res[True]
                sh = "-" if not sharded else str(min(4 * c, n))
                print(
                    f"| {n}³ | {c} | {sh} | {o['t']:.3f} | {mv / o['t']:.0f} | {o['rss_mb']:.0f} "
                    f"| {v['t']:.3f} | {mv / v['t']:.0f} | {v['rss_mb']:.0f} "
                    f"| {v['t'] / o['t']:.2f}x |",
                    flush=True,
                )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
