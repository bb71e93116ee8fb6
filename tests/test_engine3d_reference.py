"""Parity of ``segment_3d`` with the reference's 3D engine on a REAL network: the same
TorchScript file (our ``build_model`` PanopticDeepLabPR, tiny and random, saved with
``save_model``) runs through our engine and through the reference's ``Engine3d`` flow, and
the final label volumes must be identical (uint8 volumes: normalisation is the same in
both, design §3).

``empanada_napari.inference`` imports napari (not installed), so only the CALL ORDER of its
``Engine3d.infer_on_axis``, ``stack_postprocessing`` and ``tracker_consensus`` is written out
here; every computation is the reference's own ``empanada.*`` function (VolumeDataset, the
plugin's Preprocessor, PanopticDeepLabRenderEngine3d, create_matchers, forward_matching run
in-process instead of in a child process, backward_matching, update_trackers,
finish_tracking, filters, create_instance_consensus / create_semantic_consensus,
fill_volume), except ``instance_relabel``'s two-line renumbering (tests/reference_stack.py).
"""

from __future__ import annotations

import contextlib
import queue as queue_mod

import numpy as np
import pytest
import torch

from empanada_rs.inference.engine3d import segment_3d
from empanada_rs.models import load_model, save_model

from .oracle_consensus import merge_clusters_keeping_links
from .real_models import ball_volume, handle_for, tiny_model
from .reference_napari import load_plugin_module
from .reference_stack import HAVE_REFERENCE, _instance_relabel, _Pipe

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not HAVE_REFERENCE, reason="reference not installed"),
]

AXES = {"xy": 0, "xz": 1, "yz": 2}
LABEL_DIVISOR = 10000


class ReferenceEngine3d:
    """``Engine3d`` of empanada-napari 1.2.4, its call sequence only (see module doc)."""

    def __init__(self, model, config, *, scale=1, median=3, min_size=500, min_extent=5,
                 fine=False, semantic_only=False, conf=0.5):  # fmt: skip
        from empanada.inference.engines import PanopticDeepLabRenderEngine3d

        self.labels = list(config["labels"])
        self.thing_list = [] if semantic_only else list(config["thing_list"])
        self.scale, self.min_size, self.min_extent = scale, min_size, min_extent
        self.engine = PanopticDeepLabRenderEngine3d(
            model,
            thing_list=self.thing_list,
            median_kernel_size=median,
            label_divisor=LABEL_DIVISOR,
            nms_threshold=0.1,
            nms_kernel=3,
            confidence_thr=conf,
            padding_factor=config["padding_factor"],
            coarse_boundaries=not fine,
        )
        self.preprocessor = load_plugin_module("utils").Preprocessor(**config["norms"])

    def predict_on_axis(self, volume, axis_name):
        """The model half of ``infer_on_axis``: the 2D panoptic maps it queues, in order."""
        from empanada.data import VolumeDataset

        dataset = VolumeDataset(volume, AXES[axis_name], self.preprocessor, scale=self.scale)
        pans = []
        with torch.no_grad():
            for i in range(len(dataset)):  # DataLoader(batch_size=1) without the collation
                item = dataset[i]
                pan = self.engine(item["image"].unsqueeze(0), item["size"], self.scale)
                if pan is not None:  # None: the median queue is filling
                    pans.append(pan.squeeze().cpu().numpy())
            for pan in self.engine.end(self.scale) or []:
                pans.append(pan.squeeze().cpu().numpy())
        self.engine.reset()
        return pans

    def track(self, pans, shape, axis_name):
        """The matching half of ``infer_on_axis`` (forward matching in this process)."""
        from empanada.inference import filters
        from empanada.inference.patterns import (
            backward_matching,
            create_matchers,
            finish_tracking,
            forward_matching,
            update_trackers,
        )
        from empanada.inference.tracker import InstanceTracker

        trackers = [InstanceTracker(c, LABEL_DIVISOR, shape, axis_name) for c in self.labels]
        matchers = create_matchers(self.thing_list, LABEL_DIVISOR, 0.25, 0.25)
        q: queue_mod.Queue = queue_mod.Queue()
        for pan in pans:
            q.put(pan)
        q.put("finish")
        pipe = _Pipe()
        forward_matching(matchers, q, [], pipe, self.labels, LABEL_DIVISOR, self.thing_list)
        rle_stack = pipe.value[0]
        for index, rle_seg in backward_matching(rle_stack, matchers, shape[AXES[axis_name]]):
            update_trackers(rle_seg, index, trackers)
        finish_tracking(trackers)
        for tracker in trackers:
            filters.remove_small_objects(tracker, min_size=self.min_size)
            filters.remove_pancakes(tracker, min_span=self.min_extent)
        return trackers

    def infer_on_axis(self, volume, axis_name):
        return self.track(self.predict_on_axis(volume, axis_name), volume.shape, axis_name)

    def stack_postprocessing(self, trackers):
        from empanada.inference import filters
        from empanada.inference.patterns import fill_volume
        from empanada.inference.tracker import InstanceTracker

        out = {}
        for tracker in trackers:
            st = InstanceTracker(tracker.class_id, LABEL_DIVISOR, tracker.shape3d, "xy")
            st.instances = _instance_relabel(tracker)
            if tracker.class_id in self.thing_list:
                filters.remove_small_objects(st, min_size=self.min_size)
                filters.remove_pancakes(st, min_span=self.min_extent)
            vol = np.zeros(tracker.shape3d, np.int32)
            fill_volume(vol, st.instances)
            out[tracker.class_id] = vol
        return out

    def tracker_consensus(self, trackers_dict, pixel_vote_thr=2, allow_one_view=False):
        from empanada.inference import filters
        from empanada.inference.patterns import (
            create_instance_consensus,
            create_semantic_consensus,
            fill_volume,
            get_axis_trackers_by_class,
        )

        out = {}
        for c in self.labels:
            class_trackers = get_axis_trackers_by_class(trackers_dict, c)
            if c in self.thing_list:
                tr = create_instance_consensus(class_trackers, pixel_vote_thr, 0.75, allow_one_view)
                filters.remove_small_objects(tr, min_size=self.min_size)
                filters.remove_pancakes(tr, min_span=self.min_extent)
            else:
                tr = create_semantic_consensus(class_trackers, pixel_vote_thr)
            vol = np.zeros(class_trackers[0].shape3d, np.int32)
            fill_volume(vol, tr.instances)
            out[c] = vol
        return out


@contextlib.contextmanager
def componentwise_assignment():
    """The reference with our assignment rule: SciPy's ``linear_sum_assignment`` solved per
    connected component of the positive IoU entries (what empanada-core's
    ``assign_by_components`` does for speed). Both give maximum-IoU assignments; they can
    differ only in which of several EXACTLY equal optima they return (e.g. two pieces of an
    object, both wholly inside the next slice's object and of the same size)."""
    from empanada.inference import matcher
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    def per_component(iou, maximize=True):
        assert maximize
        n, m = iou.shape
        graph = np.zeros((n + m, n + m), bool)
        graph[:n, n:] = iou > 0
        _, comp = connected_components(csr_matrix(graph), directed=False)
        rows, cols = [], []
        for c in np.unique(comp):
            r = np.flatnonzero(comp[:n] == c)
            k = np.flatnonzero(comp[n:] == c)
            if len(r) and len(k):
                rr, cc = linear_sum_assignment(iou[np.ix_(r, k)], maximize=True)
                keep = iou[r[rr], k[cc]] > 0
                rows.extend(r[rr][keep])
                cols.extend(k[cc][keep])
        order = np.argsort(rows, kind="stable")
        return np.asarray(rows, int)[order], np.asarray(cols, int)[order]

    original = matcher.linear_sum_assignment
    matcher.linear_sum_assignment = per_component
    try:
        yield
    finally:
        matcher.linear_sum_assignment = original


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """One model FILE shared by both engines (seed 3: background plus several objects)."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    save_model(tiny_model(1, seed=3), path)
    return path


VOLUMES = {
    "small": lambda: ball_volume((16, 64, 64), n=6, seed=3),
    "odd": lambda: ball_volume((24, 96, 80), n=10, seed=5),
}
FILTERS = {"min_size": 20, "min_extent": 2}


@pytest.fixture(scope="module")
def reference(model_file):
    """Cached reference runs: ``pans(name, plane, scale, median)`` (the model half) and
    ``engine(scale, median)``."""
    config = handle_for(None).config
    module = torch.jit.load(str(model_file)).eval()
    engines, pans, vols = {}, {}, {}

    class Ref:
        def volume(self, name):
            if name not in vols:
                vols[name] = VOLUMES[name]()
            return vols[name]

        def engine(self, scale, median):
            if (scale, median) not in engines:
                engines[scale, median] = ReferenceEngine3d(
                    module, config, scale=scale, median=median, **FILTERS
                )
            return engines[scale, median]

        def pans(self, name, plane, scale, median):
            key = (name, plane, scale, median)
            if key not in pans:
                pans[key] = self.engine(scale, median).predict_on_axis(self.volume(name), plane)
            return pans[key]

        def trackers(self, name, plane, scale, median):
            eng = self.engine(scale, median)
            return eng.track(self.pans(name, plane, scale, median), self.volume(name).shape, plane)

    return Ref()


@pytest.fixture(scope="module")
def handle(model_file):
    return handle_for(load_model(model_file, padding_factor=16))


def _ours(handle, vol, **kw):
    params = {"label_divisor": LABEL_DIVISOR, "device": "cpu", **FILTERS}
    return segment_3d(vol, handle, **params, **kw).labels["c1"]


def test_harness_is_not_trivial(reference):
    ref = reference.engine(1, 3)
    out = ref.stack_postprocessing(reference.trackers("small", "xy", 1, 3))[1]
    assert out.max() >= 4  # several objects
    assert 0.1 < np.mean(out > 0) < 0.9  # and background


#: Cases where the reference's whole-matrix assignment picks another of two exactly equal
#: optima than our per-component one (see componentwise_assignment); found by this file.
TIE_CASES = {("odd", "yz", 1, 1)}  # (name, plane, scale, median)


#: Every plane x median x downsampling on the small volume; the odd-sized one at median 3,
#: plus its tie case.
STACK_CASES = [
    *[("small", p, m, s) for p in AXES for m in (1, 3) for s in (1, 2)],
    *[("odd", p, 3, s) for p in AXES for s in (1, 2)],
    ("odd", "yz", 1, 1),
]


@pytest.mark.parametrize(("name", "plane", "median", "scale"), STACK_CASES)
def test_stack_matches_reference(reference, handle, name, plane, median, scale):
    vol = reference.volume(name)
    ours = _ours(handle, vol, plane=plane, orthoplane=False, downsampling=scale,
                 median_kernel_size=median)  # fmt: skip
    assert ours.dtype == np.int32 and ours.shape == vol.shape
    ref = reference.engine(scale, median)
    with componentwise_assignment():
        same_rule = ref.stack_postprocessing(reference.trackers(name, plane, scale, median))[1]
    np.testing.assert_array_equal(ours, same_rule)
    plain = ref.stack_postprocessing(reference.trackers(name, plane, scale, median))[1]
    if (name, plane, scale, median) in TIE_CASES:
        assert not np.array_equal(ours, plain)
    else:
        np.testing.assert_array_equal(ours, plain)


@contextlib.contextmanager
def consensus_keeping_links(reference_order: bool = False):
    """The reference's consensus with its cluster merging replaced by the design §3 fix
    (tests/oracle_consensus.py); ``reference_order`` keeps the reference's tie order and
    only records (``merge_clusters_keeping_links.dropped``) whether the unfixed merging
    would drop a second-order link."""
    import empanada.consensus as ec

    original = ec.merge_clusters
    merge_clusters_keeping_links.dropped = False
    ec.merge_clusters = lambda g: merge_clusters_keeping_links(g, reference_order)
    try:
        yield
    finally:
        ec.merge_clusters = original


def consecutive(vol: np.ndarray) -> np.ndarray:
    """Ids renumbered ``1..N`` in ascending order. The reference's consensus numbers objects
    ``1..N`` BEFORE its size / extent filters, which leave gaps; ours numbers the survivors
    ``1..N`` (spec §6.1 "ids 1..N"), in the same order."""
    ids = np.unique(vol[vol > 0])
    lut = np.zeros(int(vol.max()) + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[vol]


#: Ortho-plane cases where the plain reference differs (found by this file), all because
#: its cluster merging drops a second-order link (design §3 fixes it: ours keeps it).
#: ("odd", 1) also shows the id gaps of ``consecutive``.
LINK_CASES = {("odd", 1), ("small", 2), ("odd", 2)}


@pytest.mark.parametrize("name", ["small", "odd"])
@pytest.mark.parametrize("scale", [1, 2])
def test_orthoplane_matches_reference(reference, handle, name, scale):
    vol = reference.volume(name)
    ours = _ours(handle, vol, orthoplane=True, downsampling=scale, median_kernel_size=3)
    ref = reference.engine(scale, 3)
    with componentwise_assignment():
        trackers = {p: reference.trackers(name, p, scale, 3) for p in AXES}
    with consensus_keeping_links():
        fixed = ref.tracker_consensus(trackers)[1]
    np.testing.assert_array_equal(ours, consecutive(fixed))
    trackers = {p: reference.trackers(name, p, scale, 3) for p in AXES}
    plain = consecutive(ref.tracker_consensus(trackers)[1])
    if (name, scale) not in LINK_CASES:
        np.testing.assert_array_equal(ours, plain)
        return
    assert not np.array_equal(ours, plain)
    with consensus_keeping_links(reference_order=True):
        ref.tracker_consensus(trackers)
    assert merge_clusters_keeping_links.dropped  # the reference loses a link here
