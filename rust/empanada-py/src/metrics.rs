//! Bindings of `empanada_core::metrics`: instance matching and F1 / PQ scores.

use empanada_core::metrics as core;
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::kernel;

/// One-to-one IoU matching of the objects of two label images, with F1, PQ and friends.
#[pyfunction]
#[pyo3(signature = (pred, truth, *, iou_thr = 0.5))]
fn match_instances<'py>(
    pred: &Bound<'py, PyAny>,
    truth: &Bound<'py, PyAny>,
    iou_thr: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let py = pred.py();
    let m = with_label_array!(pred, "pred", |a: P| {
        with_label_array!(truth, "truth", |b: T| {
            let (va, vb) = (a.as_array(), b.as_array());
            kernel::run(py, || core::match_instances::<P, T>(va, vb, iou_thr))
        })
    })?;
    let d = PyDict::new(py);
    let pick =
        |ids: &[u64], idx: Vec<usize>| -> Vec<u64> { idx.into_iter().map(|i| ids[i]).collect() };
    let mp = pick(&m.pred_ids, m.matches.iter().map(|x| x.0).collect());
    let mt = pick(&m.true_ids, m.matches.iter().map(|x| x.1).collect());
    let mi: Vec<f64> = m.matches.iter().map(|x| x.2).collect();
    d.set_item("tp", m.tp)?;
    d.set_item("fp", m.fp)?;
    d.set_item("fn", m.fn_)?;
    d.set_item("precision", m.precision)?;
    d.set_item("recall", m.recall)?;
    d.set_item("f1", m.f1)?;
    d.set_item("mean_iou", m.mean_iou)?;
    d.set_item("pq", m.pq)?;
    d.set_item("matched_pred", mp.into_pyarray(py))?;
    d.set_item("matched_true", mt.into_pyarray(py))?;
    d.set_item("matched_iou", mi.into_pyarray(py))?;
    d.set_item("pred_ids", m.pred_ids.into_pyarray(py))?;
    d.set_item("pred_sizes", m.pred_sizes.into_pyarray(py))?;
    d.set_item("true_ids", m.true_ids.into_pyarray(py))?;
    d.set_item("true_sizes", m.true_sizes.into_pyarray(py))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(match_instances, m)?)?;
    Ok(())
}
