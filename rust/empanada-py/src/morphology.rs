//! Bindings of `empanada_core::morphology`: face-neighbour erosion of a mask or of every
//! object of a label image, and dilation of labels into background.

use empanada_core::morphology as core;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::kernel::{self, contiguous, wrong_dtype};

/// A count of morphology steps given as `param`: a typed error when negative.
pub fn step_count(param: &'static str, steps: i64) -> PyResult<usize> {
    usize::try_from(steps).map_err(|_| {
        to_py(empanada_core::Error::invalid(
            param,
            format!("must be >= 0, got {steps}"),
        ))
    })
}

/// `mask` (bool, 2D or 3D) eroded `steps` times with the face-neighbour footprint; the
/// array border does not erode.
#[pyfunction]
fn erode_mask<'py>(mask: &Bound<'py, PyAny>, steps: i64) -> PyResult<Bound<'py, PyAny>> {
    let py = mask.py();
    let steps = step_count("steps", steps)?;
    let a = mask
        .cast::<PyArrayDyn<bool>>()
        .map_err(|_| wrong_dtype("mask", mask, "bool"))?
        .readonly();
    contiguous(&a, "mask")?;
    let view = a.as_array();
    let out = kernel::run(py, || core::erode_mask(view, steps))?;
    Ok(out.into_pyarray(py).into_any())
}

/// `labels` (2D or 3D) with every object eroded `steps` times on its own mask, as
/// `erode_mask` erodes one; the array border does not erode.
#[pyfunction]
fn erode_labels<'py>(labels: &Bound<'py, PyAny>, steps: i64) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    let steps = step_count("steps", steps)?;
    crate::with_label_array!(labels, "labels", |a: T| {
        contiguous(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::erode_labels(view, steps))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// `labels` (2D or 3D) dilated `steps` times into background with the face-neighbour
/// footprint; contested voxels go to the largest id, objects never change.
#[pyfunction]
fn dilate_labels<'py>(labels: &Bound<'py, PyAny>, steps: i64) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    let steps = step_count("steps", steps)?;
    crate::with_label_array!(labels, "labels", |a: T| {
        contiguous(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::dilate_labels(view, steps))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(erode_mask, m)?)?;
    m.add_function(wrap_pyfunction!(erode_labels, m)?)?;
    m.add_function(wrap_pyfunction!(dilate_labels, m)?)?;
    Ok(())
}
