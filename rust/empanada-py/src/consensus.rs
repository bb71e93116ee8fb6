//! Ortho-plane consensus of three per-plane segmentations.

use empanada_core::consensus::{self as core, ConsensusParams};
use pyo3::prelude::*;

use crate::errors::InvalidArgumentError;
use crate::kernel;
use crate::segmentation::Segmentation;

/// Consensus of the xy, xz and yz segmentations of one volume (spec §6).
#[pyfunction]
#[pyo3(signature = (segs, *, pixel_vote_thr = 2, cluster_iou_thr = 0.75, allow_one_view = false, min_size = 500, min_extent = 5))]
fn orthoplane_consensus(
    py: Python<'_>,
    segs: Vec<PyRef<'_, Segmentation>>,
    pixel_vote_thr: i64,
    cluster_iou_thr: f64,
    allow_one_view: bool,
    min_size: i64,
    min_extent: i64,
) -> PyResult<Segmentation> {
    if segs.len() != 3 {
        return Err(InvalidArgumentError::new_err(format!(
            "segs: pass exactly three segmentations (xy, xz, yz), got {}",
            segs.len()
        )));
    }
    if !(1..=3).contains(&pixel_vote_thr) {
        return Err(InvalidArgumentError::new_err(format!(
            "pixel_vote_thr: must be 1, 2 or 3 (votes out of three views), got {pixel_vote_thr}"
        )));
    }
    let p = ConsensusParams {
        pixel_vote_thr: pixel_vote_thr as usize,
        cluster_iou_thr,
        allow_one_view,
        min_size,
        min_extent,
    };
    let views: Vec<&empanada_core::segmentation::Segmentation> =
        segs.iter().map(|s| &s.inner).collect();
    let inner = kernel::run(py, || core::orthoplane_consensus(&views, &p))?;
    Ok(Segmentation { inner })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(orthoplane_consensus, m)?)
}
