//! Instance-level agreement of two label images: IoU-matched pairs, F1 at an IoU
//! threshold, and panoptic quality (PQ). Used to score predictions against ground truth.
//!
//! Pair overlaps come from one scan over both images; matching is one-to-one. Above an
//! IoU of 0.5 a pair can be matched only to each other (two objects cannot both cover more
//! than half of a third's union), so the candidate pairs are the matching. At or below 0.5
//! the maximum-IoU assignment is solved per connected component of the candidate graph.

use ndarray::ArrayViewD;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hash::IdMap;
use crate::label::{check_non_negative, Label};
use crate::matching::linear_sum_assignment;
use crate::unionfind::{groups, join};

/// Result of [`match_instances`]: object ids and sizes of both images, the matched pairs
/// and the summary scores.
#[derive(Debug, Clone, Default)]
pub struct InstanceMatch {
    pub pred_ids: Vec<u64>,
    pub pred_sizes: Vec<u64>,
    pub true_ids: Vec<u64>,
    pub true_sizes: Vec<u64>,
    /// Matched `(pred index, true index)` into the id vectors, with their IoU.
    pub matches: Vec<(usize, usize, f64)>,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Mean IoU of the matched pairs (segmentation quality); 0 without matches.
    pub mean_iou: f64,
    /// Panoptic quality: sum of matched IoUs / (TP + FP/2 + FN/2); 1 when both are empty.
    pub pq: f64,
}

#[derive(Default)]
struct Counts {
    pred: IdMap<u64, u64>,
    truth: IdMap<u64, u64>,
    pairs: IdMap<(u64, u64), u64>,
}

impl Counts {
    fn merge(mut self, other: Counts) -> Counts {
        for (k, v) in other.pred {
            *self.pred.entry(k).or_default() += v;
        }
        for (k, v) in other.truth {
            *self.truth.entry(k).or_default() += v;
        }
        for (k, v) in other.pairs {
            *self.pairs.entry(k).or_default() += v;
        }
        self
    }
}

/// Counts label sizes and pair overlaps of one stretch; runs of an unchanged pair (the
/// common case inside objects and background) cost one comparison per voxel.
fn count<P: Label, T: Label>(pred: &[P], truth: &[T]) -> Counts {
    let mut c = Counts::default();
    let mut i = 0;
    let n = pred.len();
    while i < n {
        let (p, t) = (pred[i], truth[i]);
        let mut j = i + 1;
        while j < n && pred[j] == p && truth[j] == t {
            j += 1;
        }
        let len = (j - i) as u64;
        let (p, t) = (p.to_u64(), t.to_u64());
        if p != 0 {
            *c.pred.entry(p).or_default() += len;
        }
        if t != 0 {
            *c.truth.entry(t).or_default() += len;
        }
        if p != 0 && t != 0 {
            *c.pairs.entry((p, t)).or_default() += len;
        }
        i = j;
    }
    c
}

fn sorted(map: &IdMap<u64, u64>) -> (Vec<u64>, Vec<u64>, IdMap<u64, usize>) {
    let mut v: Vec<(u64, u64)> = map.iter().map(|(&k, &n)| (k, n)).collect();
    v.sort_unstable();
    let index = v.iter().enumerate().map(|(i, &(k, _))| (k, i)).collect();
    let (ids, sizes) = v.into_iter().unzip();
    (ids, sizes, index)
}

/// Matches the non-zero objects of `pred` and `truth` (same shape, any integer dtypes,
/// C order) one-to-one at IoU >= `iou_thr` (strictly greater above 0.5, where the match is
/// unique), maximising the summed IoU.
pub fn match_instances<P: Label, T: Label>(
    pred: ArrayViewD<'_, P>,
    truth: ArrayViewD<'_, T>,
    iou_thr: f64,
) -> Result<InstanceMatch> {
    if pred.shape() != truth.shape() {
        return Err(Error::shape(
            "truth",
            format!(
                "shape {:?} differs from pred's {:?}; pass label images of one shape",
                truth.shape(),
                pred.shape()
            ),
        ));
    }
    if !(iou_thr.is_finite() && iou_thr > 0.0 && iou_thr < 1.0) {
        return Err(Error::invalid(
            "iou_thr",
            format!("must lie in (0, 1), got {iou_thr}"),
        ));
    }
    let (ps, ts) = match (pred.as_slice(), truth.as_slice()) {
        (Some(p), Some(t)) => (p, t),
        _ => {
            return Err(Error::invalid(
                "pred",
                "label images must be C-contiguous; pass np.ascontiguousarray(...)",
            ))
        }
    };
    check_non_negative("pred", ps)?;
    check_non_negative("truth", ts)?;

    const CHUNK: usize = 1 << 20;
    let counts = ps
        .par_chunks(CHUNK)
        .zip(ts.par_chunks(CHUNK))
        .map(|(p, t)| count(p, t))
        .reduce(Counts::default, Counts::merge);

    let (pred_ids, pred_sizes, pidx) = sorted(&counts.pred);
    let (true_ids, true_sizes, tidx) = sorted(&counts.truth);
    let mut cands: Vec<(usize, usize, f64)> = counts
        .pairs
        .iter()
        .filter_map(|(&(p, t), &inter)| {
            let (i, j) = (pidx[&p], tidx[&t]);
            let union = pred_sizes[i] + true_sizes[j] - inter;
            let iou = inter as f64 / union as f64;
            let keep = if iou_thr > 0.5 {
                iou > iou_thr
            } else {
                iou >= iou_thr
            };
            keep.then_some((i, j, iou))
        })
        .collect();
    cands.sort_unstable_by_key(|a| (a.0, a.1));
    let matches = if iou_thr > 0.5 {
        cands
    } else {
        assign(&cands, pred_ids.len())?
    };

    let tp = matches.len();
    let fp = pred_ids.len() - tp;
    let fn_ = true_ids.len() - tp;
    let iou_sum: f64 = matches.iter().map(|m| m.2).sum();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
    Ok(InstanceMatch {
        precision: ratio(tp as f64, (tp + fp) as f64),
        recall: ratio(tp as f64, (tp + fn_) as f64),
        f1: ratio(2.0 * tp as f64, (2 * tp + fp + fn_) as f64),
        mean_iou: if tp > 0 { iou_sum / tp as f64 } else { 0.0 },
        pq: ratio(iou_sum, tp as f64 + 0.5 * (fp + fn_) as f64),
        pred_ids,
        pred_sizes,
        true_ids,
        true_sizes,
        matches,
        tp,
        fp,
        fn_,
    })
}

/// Maximum-IoU one-to-one assignment over candidate pairs, per connected component.
fn assign(cands: &[(usize, usize, f64)], n_pred: usize) -> Result<Vec<(usize, usize, f64)>> {
    // Nodes: predictions 0..n_pred, then the truth objects that have candidates.
    let mut tnode: IdMap<usize, usize> = IdMap::default();
    for &(_, j, _) in cands {
        let next = n_pred + tnode.len();
        tnode.entry(j).or_insert(next);
    }
    let mut parent: Vec<usize> = (0..n_pred + tnode.len()).collect();
    for &(i, j, _) in cands {
        join(&mut parent, i, tnode[&j]);
    }
    let mut comp_of = vec![usize::MAX; parent.len()];
    for (k, g) in groups(&mut parent).into_iter().enumerate() {
        for v in g {
            comp_of[v] = k;
        }
    }
    let mut by_comp: IdMap<usize, Vec<(usize, usize, f64)>> = IdMap::default();
    for &c in cands {
        by_comp.entry(comp_of[c.0]).or_default().push(c);
    }
    let mut out = Vec::new();
    let mut comps: Vec<_> = by_comp.into_values().collect();
    comps.sort_unstable_by_key(|v| (v[0].0, v[0].1));
    for pairs in comps {
        if pairs.len() == 1 {
            out.push(pairs[0]);
            continue;
        }
        let mut rows: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let mut cols: Vec<usize> = pairs.iter().map(|p| p.1).collect();
        rows.sort_unstable();
        rows.dedup();
        cols.sort_unstable();
        cols.dedup();
        let (nr, nc) = (rows.len(), cols.len());
        let mut m = vec![0.0; nr * nc];
        for &(i, j, iou) in &pairs {
            let r = rows.binary_search(&i).expect("row");
            let c = cols.binary_search(&j).expect("col");
            m[r * nc + c] = iou;
        }
        let (rr, cc) = linear_sum_assignment(&m, nr, nc, true)?;
        for (r, c) in rr.into_iter().zip(cc) {
            if m[r * nc + c] > 0.0 {
                out.push((rows[r], cols[c], m[r * nc + c]));
            }
        }
    }
    out.sort_unstable_by_key(|a| (a.0, a.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr2, Array2};

    #[test]
    fn identical_images_match_perfectly() {
        let a: Array2<u32> = arr2(&[[0, 1, 1], [2, 2, 0], [0, 3, 3]]);
        let m = match_instances(a.view().into_dyn(), a.view().into_dyn(), 0.5).unwrap();
        assert_eq!((m.tp, m.fp, m.fn_), (3, 0, 0));
        assert_eq!(m.f1, 1.0);
        assert_eq!(m.pq, 1.0);
    }

    #[test]
    fn low_threshold_assignment_is_one_to_one() {
        // One prediction covers two truths at IoU 0.5 each; only one may match.
        let p: Array2<u8> = arr2(&[[1, 1, 1, 1]]);
        let t: Array2<u8> = arr2(&[[1, 1, 2, 2]]);
        let m = match_instances(p.view().into_dyn(), t.view().into_dyn(), 0.3).unwrap();
        assert_eq!((m.tp, m.fp, m.fn_), (1, 0, 1));
        let m = match_instances(p.view().into_dyn(), t.view().into_dyn(), 0.5).unwrap();
        assert_eq!(m.tp, 1);
        let m = match_instances(p.view().into_dyn(), t.view().into_dyn(), 0.6).unwrap();
        assert_eq!(m.tp, 0);
    }

    #[test]
    fn empty_images_score_one() {
        let z: Array2<u16> = Array2::zeros((4, 4));
        let m = match_instances(z.view().into_dyn(), z.view().into_dyn(), 0.5).unwrap();
        assert_eq!((m.tp, m.fp, m.fn_, m.f1, m.pq), (0, 0, 0, 1.0, 1.0));
    }

    #[test]
    fn bad_arguments() {
        let a: Array2<u8> = Array2::zeros((2, 2));
        let b: Array2<u8> = Array2::zeros((2, 3));
        let e = match_instances(a.view().into_dyn(), b.view().into_dyn(), 0.5).unwrap_err();
        assert_eq!(e.param(), "truth");
        let e = match_instances(a.view().into_dyn(), a.view().into_dyn(), 1.0).unwrap_err();
        assert_eq!(e.param(), "iou_thr");
    }
}
