"""Instance matching (F1@t, PQ) against a brute-force NumPy/SciPy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import empanada_rs as er


def oracle(pred: np.ndarray, truth: np.ndarray, thr: float) -> dict:
    """Dense IoU matrix, then SciPy's maximum assignment over pairs passing the threshold."""
    pids = [i for i in np.unique(pred) if i != 0]
    tids = [i for i in np.unique(truth) if i != 0]
    iou = np.zeros((len(pids), len(tids)))
    for a, p in enumerate(pids):
        pm = pred == p
        for b, t in enumerate(tids):
            tm = truth == t
            iou[a, b] = (pm & tm).sum() / (pm | tm).sum()
    ok = iou > thr if thr > 0.5 else iou >= thr
    w = np.where(ok, iou, 0.0)
    matched = []
    if w.size:
        r, c = linear_sum_assignment(w, maximize=True)
        matched = [(pids[i], tids[j], w[i, j]) for i, j in zip(r, c, strict=True) if w[i, j] > 0]
    tp = len(matched)
    fp, fn = len(pids) - tp, len(tids) - tp
    s = sum(m[2] for m in matched)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0,
        "pq": s / (tp + 0.5 * (fp + fn)) if (tp + fp + fn) else 1.0,
        "iou_sum": s,
    }


labels = st.integers(1, 4).flatmap(
    lambda k: st.lists(st.integers(0, k), min_size=24, max_size=24).map(
        lambda v: np.array(v, dtype=np.int32).reshape(4, 6)
    )
)


@settings(max_examples=200, deadline=None)
@given(labels, labels, st.sampled_from([0.1, 0.3, 0.5, 0.51, 0.75]))
def test_matches_oracle(pred, truth, thr):
    ours = er.match_instances(pred, truth, iou_thr=thr)
    ref = oracle(pred, truth, thr)
    assert (ours["tp"], ours["fp"], ours["fn"]) == (ref["tp"], ref["fp"], ref["fn"])
    assert ours["f1"] == pytest.approx(ref["f1"])
    # The optimum's summed IoU is unique even when the assignment is not.
    assert ours["matched_iou"].sum() == pytest.approx(ref["iou_sum"])
    assert ours["pq"] == pytest.approx(ref["pq"])
    assert len(set(ours["matched_pred"].tolist())) == ours["tp"]
    assert len(set(ours["matched_true"].tolist())) == ours["tp"]


def test_mixed_dtypes_and_3d():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, (6, 7, 8)).astype(np.uint16)
    pred = truth.astype(np.int64)
    pred[0] = 0
    m = er.match_instances(pred, truth)
    assert m["tp"] == 4 and m["fp"] == 0 and m["fn"] == 0
    assert m["true_sizes"].sum() == np.count_nonzero(truth)


def test_bad_input():
    a = np.zeros((3, 3), np.int32)
    with pytest.raises(er.ShapeError, match="truth"):
        er.match_instances(a, np.zeros((3, 4), np.int32))
    with pytest.raises(er.InvalidArgumentError, match="iou_thr"):
        er.match_instances(a, a, iou_thr=0.0)
    with pytest.raises(er.InvalidArgumentError, match="contiguous"):
        er.match_instances(np.zeros((3, 6), np.int32)[:, ::2], a)
    with pytest.raises(er.DTypeError, match="truth"):
        er.match_instances(a, a.astype(np.float32))
    with pytest.raises(er.InvalidArgumentError, match="pred"):
        er.match_instances(a - 1, a)


@pytest.mark.realdata
def test_real_labels_against_themselves_and_a_shift(shared_data):
    vol = np.load(shared_data / "neuroproof_fibsem_medulla_sample2.npz")
    lab = np.ascontiguousarray(vol["neuron_instances"][:32])
    m = er.match_instances(lab, lab)
    n = len(np.unique(lab[lab > 0]))
    assert (m["tp"], m["fp"], m["fn"], m["pq"]) == (n, 0, 0, 1.0)
    shifted = np.ascontiguousarray(np.roll(lab, 1, axis=2))
    m2 = er.match_instances(shifted, lab, iou_thr=0.5)
    assert 0 < m2["tp"] < n and m2["pq"] < 1.0
