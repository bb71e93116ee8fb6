"""Drives the reference consensus and tile stitching on our inputs.

Only the call order of empanada-napari's ``tracker_consensus`` / ``Engine2d.infer`` (tiled
path) is written here; every computation is the reference's own ``empanada.*`` function.
"""

from __future__ import annotations

import sys
import types

import numpy as np

import empanada_rs as er


def _tqdm_stub() -> None:
    """empanada imports tqdm only for progress bars; it is not installed in the venv."""
    if "tqdm" not in sys.modules:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            fake = types.ModuleType("tqdm")
            fake.tqdm = lambda it=None, **_: it  # type: ignore[attr-defined]
            sys.modules["tqdm"] = fake


_tqdm_stub()


def trackers_from(segs: list[er.Segmentation], class_id: int) -> list:
    """One reference InstanceTracker per view holding that view's objects of a class."""
    from empanada.inference.tracker import InstanceTracker

    out = []
    for axis, seg in zip(("xy", "xz", "yz"), segs, strict=True):
        tr = InstanceTracker(class_id, 1000, tuple(seg.shape), axis)
        if class_id in seg.class_ids:
            o = seg.objects(class_id)
            for i, oid in enumerate(o["ids"]):
                a, b = o["offsets"][i], o["offsets"][i + 1]
                tr.instances[int(oid)] = {
                    "box": tuple(int(v) for v in o["boxes"][i]),
                    "starts": np.asarray(o["starts"][a:b], dtype=np.int64),
                    "runs": np.asarray(o["runs"][a:b], dtype=np.int64),
                }
        tr.finished = True
        out.append(tr)
    return out


def reference_consensus(
    segs: list[er.Segmentation],
    class_id: int,
    thing: bool,
    *,
    pixel_vote_thr: int = 2,
    cluster_iou_thr: float = 0.75,
    allow_one_view: bool = False,
    min_size: int = 500,
    min_extent: int = 5,
) -> dict:
    """The reference's consensus of one class: ``{id: {box, starts, runs}}`` in its order."""
    from empanada.consensus import merge_objects_from_trackers, merge_semantic_from_trackers
    from empanada.inference import filters
    from empanada.inference.tracker import InstanceTracker

    trackers = trackers_from(segs, class_id)
    tr = InstanceTracker(class_id, 1000, tuple(segs[0].shape), "xy")
    if thing:
        tr.instances = merge_objects_from_trackers(
            trackers, pixel_vote_thr, cluster_iou_thr, allow_one_view
        )
        filters.remove_small_objects(tr, min_size=min_size)
        filters.remove_pancakes(tr, min_span=min_extent)
    else:
        tr.instances = merge_semantic_from_trackers(trackers, pixel_vote_thr)
    return tr.instances


def paint(instances: dict, shape: tuple[int, ...]) -> np.ndarray:
    """Reference instances painted with ids 1..N in their order (the gaps closed)."""
    out = np.zeros(int(np.prod(shape)), dtype=np.int32)
    for k, attrs in enumerate(instances.values(), start=1):
        for s, r in zip(attrs["starts"], attrs["runs"], strict=True):
            out[s : s + r] = k
    return out.reshape(shape)


def reference_stitch(
    tiles: list[np.ndarray],
    shape: tuple[int, int],
    tile_size: int,
    overlap: int,
    labels: tuple[int, ...],
    thing_list: tuple[int, ...],
    label_divisor: int,
) -> np.ndarray:
    """Engine2d.infer's tiled path from per-tile panoptic maps onwards."""
    from empanada.consensus import merge_objects_from_tiles, merge_semantic_from_tiles
    from empanada.inference import rle
    from empanada.inference.tile import Tiler

    tiler = Tiler(shape, tile_size=tile_size, overlap_width=overlap)
    rle_segs = []
    for i, tile in enumerate(tiles):
        rs = rle.pan_seg_to_rle_seg(
            tile.astype(np.int32), list(labels), label_divisor, list(thing_list)
        )
        rle_segs.append(tiler.translate_rle_seg(rs, i))
    rle_seg = {}
    for label in labels:
        if label in thing_list:
            rle_seg[label] = merge_objects_from_tiles(
                [rs[label] for rs in rle_segs], tiler.overlap_rle
            )
        else:
            rle_seg[label] = merge_semantic_from_tiles([rs[label] for rs in rle_segs])
    return rle.rle_seg_to_pan_seg(rle_seg, shape)


def reference_layout(
    shape: tuple[int, int], tile_size: int, overlap: int
) -> list[tuple[int, int, int, int]]:
    from empanada.inference.tile import Tiler

    t = Tiler(shape, tile_size=tile_size, overlap_width=overlap)
    return [(y[0], y[1], x[0], x[1]) for y, x in zip(t.yranges, t.xranges, strict=True)]


def reference_overlap_mask(shape: tuple[int, int], tile_size: int, overlap: int) -> np.ndarray:
    from empanada.inference.tile import Tiler

    return Tiler(shape, tile_size=tile_size, overlap_width=overlap).overlap_mask().astype(bool)


def ellipsoid_views(
    shape: tuple[int, int, int], n_objects: int, seed: int, radius: tuple[int, int] = (4, 10)
) -> list[np.ndarray]:
    """Three label volumes of the same ellipsoids, perturbed differently per view.

    Per view and object, at random: kept, shifted by a voxel or two, shrunk (eroded),
    split into two ids along z, or missing; each view also gets extra objects seen only
    there. Ids are arbitrary per view (as in the reference's trackers).
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    centres = [np.array([rng.uniform(0, s) for s in shape]) for _ in range(n_objects)]
    radii = [rng.uniform(*radius, size=3) for _ in range(n_objects)]
    views = []
    for _ in range(3):
        vol = np.zeros(shape, dtype=np.uint32)
        next_id = 1
        objs = list(zip(centres, radii, strict=True))
        extra = int(rng.integers(1, max(2, n_objects // 5) + 1))
        objs += [
            (np.array([rng.uniform(0, s) for s in shape]), rng.uniform(*radius, size=3))
            for _ in range(extra)
        ]
        for k, (c, r) in enumerate(objs):
            what = rng.choice(
                ["keep", "shift", "erode", "split", "missing"], p=[0.4, 0.2, 0.2, 0.1, 0.1]
            )
            if k >= n_objects:
                what = "keep"
            if what == "missing":
                continue
            c = c + (rng.integers(-2, 3, size=3) if what == "shift" else 0)
            r = r * (0.75 if what == "erode" else 1.0)
            mask = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + (
                (xx - c[2]) / r[2]
            ) ** 2 <= 1
            if what == "split":
                upper = mask & (zz >= int(c[0]))
                vol[mask & ~upper] = next_id
                vol[upper] = next_id + 1
                next_id += 2
            else:
                vol[mask] = next_id
                next_id += 1
        views.append(vol)
    return views


def segs_from(
    views: list[np.ndarray], class_id: int = 1, thing: bool = True
) -> list[er.Segmentation]:
    return [er.Segmentation.from_labels(v, class_id, thing=thing) for v in views]


def merge_clusters_keeping_links(graph, reference_order=False):  # noqa: ANN001, ANN201
    """The reference's greedy cluster merging with the fix of design §3: the absorbed
    neighbours' links to nodes outside the absorbed group move to the surviving node.

    Written from the spec (§6.3 d); records in ``merge_clusters_keeping_links.dropped``
    whether the unfixed loop would have lost such a link.
    """
    h = graph.copy()
    # Ties go to the cluster with the first detection (our order; the reference's node order
    # follows Python set iteration of the component's node ids).
    first = {n: min(h.nodes[n]["cluster"]) for n in h.nodes}
    while h.number_of_edges() > 0:
        best = max(h.degree(n) for n in h.nodes)
        tied = [n for n in h.nodes if h.degree(n) == best]
        mc = tied[0] if reference_order else min(tied, key=first.__getitem__)
        nbrs = list(h.neighbors(mc))
        biggest = max(len(h.nodes[n]["cluster"]) for n in nbrs)
        if biggest > len(h.nodes[mc]["cluster"]):
            for n in nbrs:
                h.nodes[n]["cluster"] = h.nodes[n]["cluster"] | h.nodes[mc]["cluster"]
            h.remove_node(mc)
            continue
        second = {s for n in nbrs for s in h.neighbors(n) if s != mc and s not in nbrs}
        if second:
            merge_clusters_keeping_links.dropped = True
        for n in nbrs:
            h.nodes[mc]["cluster"] = h.nodes[mc]["cluster"] | h.nodes[n]["cluster"]
            h.remove_node(n)
        for s in second:
            h.add_edge(mc, s)
    return h


merge_clusters_keeping_links.dropped = False


def reference_consensus_fixed(
    segs: list[er.Segmentation], class_id: int, thing: bool, reference_order: bool = False, **kw
) -> tuple[dict, bool]:
    """The reference's consensus with only its cluster merging replaced by the fixed one;
    also says whether the reference itself would drop a second-order link on this input."""
    import empanada.consensus as ec

    orig = ec.merge_clusters
    merge_clusters_keeping_links.dropped = False
    ec.merge_clusters = lambda g: merge_clusters_keeping_links(g, reference_order)
    try:
        out = reference_consensus(segs, class_id, thing, **kw)
    finally:
        ec.merge_clusters = orig
    return out, merge_clusters_keeping_links.dropped


def object_set(instances: dict) -> list[tuple]:
    """Reference instances as a sorted list of (box, starts, runs) tuples (order-free)."""
    out = []
    for v in instances.values():
        order = np.argsort(v["starts"])
        out.append(
            (
                tuple(int(x) for x in v["box"]),
                tuple(int(x) for x in np.asarray(v["starts"])[order]),
                tuple(int(x) for x in np.asarray(v["runs"])[order]),
            )
        )
    return sorted(out)


def our_object_set(seg: er.Segmentation, class_id: int) -> list[tuple]:
    o = seg.objects(class_id)
    out = []
    for i in range(len(o["ids"])):
        a, b = o["offsets"][i], o["offsets"][i + 1]
        out.append(
            (
                tuple(int(x) for x in o["boxes"][i]),
                tuple(int(x) for x in o["starts"][a:b]),
                tuple(int(x) for x in o["runs"][a:b]),
            )
        )
    return sorted(out)
