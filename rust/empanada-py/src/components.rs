//! Connected components of 2D/3D label images (multi-label or binary).

use empanada_core::components as core;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{to_py, InvalidArgumentError, ShapeError};
use crate::kernel::{self, not_contiguous};

fn not_writeable() -> PyErr {
    InvalidArgumentError::new_err(
        "out: array is not writeable (read-only, or borrowed elsewhere); pass a writeable array",
    )
}

/// The array the labelling is written into: `out` after checking it (uint32, the shape of
/// the labels, C-contiguous, writeable, not overlapping them), or fresh zeros. Checked
/// before anything runs, so a rejected `out` is left as it was.
fn destination<'py>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    labels: (usize, usize),
) -> PyResult<Bound<'py, PyArrayDyn<u32>>> {
    let Some(out) = out else {
        return crate::rle::numpy_zeros::<u32>(py, shape);
    };
    let oa = out
        .cast::<PyArrayDyn<u32>>()
        .map_err(|_| kernel::wrong_dtype("out", out, "uint32, as a numpy array"))?;
    if oa.shape() != shape {
        return Err(ShapeError::new_err(format!(
            "out: expected shape {shape:?} (the shape of labels), got {:?}",
            oa.shape()
        )));
    }
    if !oa.is_c_contiguous() {
        return Err(not_contiguous("out"));
    }
    let (lp, lbytes) = labels;
    let (op, obytes) = (oa.data() as usize, oa.len() * 4);
    if lbytes > 0 && obytes > 0 && lp < op + obytes && op < lp + lbytes {
        return Err(InvalidArgumentError::new_err(
            "out: shares memory with labels; components cannot be labelled in place, pass a \
             separate array",
        ));
    }
    // Mutably borrowed only to learn it can be (read-only, or borrowed elsewhere); after
    // the overlap test, since labels that are `out` itself are borrowed already.
    oa.try_readwrite().map_err(|_| not_writeable())?;
    Ok(oa.clone())
}

/// Labels components 1..N in raster order of their first voxel; returns (uint32 labels, N).
/// With `out` (uint32, the labels' shape, C-contiguous), writes into it and returns it: a
/// reused buffer saves the page faults of fresh memory.
#[pyfunction]
#[pyo3(signature = (labels, *, connectivity = None, binary = false, out = None))]
fn connected_components<'py>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
    connectivity: Option<i64>,
    binary: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, u32)> {
    let conn = match connectivity {
        None => None,
        Some(c) => Some(u32::try_from(c).map_err(|_| {
            to_py(empanada_core::Error::invalid(
                "connectivity",
                format!("must be 4 or 8 (2D) or 6, 18 or 26 (3D), got {c}"),
            ))
        })?),
    };
    if let Ok(a) = labels.cast::<PyArrayDyn<bool>>() {
        let arr = a.readonly();
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("labels"));
        }
        let res = destination(py, out, arr.shape(), (a.data() as usize, arr.len()))?;
        let mut w = res.try_readwrite().map_err(|_| not_writeable())?;
        let o = w.as_slice_mut().expect("checked contiguous");
        let v = arr.as_array();
        let n = kernel::run(py, || {
            core::connected_components_into::<bool>(v, o, conn, true)
        })?;
        drop(w);
        Ok((res.into_any(), n))
    } else {
        crate::with_label_array!(labels, "labels", |arr: T| {
            if !arr.is_c_contiguous() {
                return Err(not_contiguous("labels"));
            }
            let span = (
                arr.as_array().as_ptr() as usize,
                arr.len() * std::mem::size_of::<T>(),
            );
            let res = destination(py, out, arr.shape(), span)?;
            let mut w = res.try_readwrite().map_err(|_| not_writeable())?;
            let o = w.as_slice_mut().expect("checked contiguous");
            let v = arr.as_array();
            let n = kernel::run(py, || {
                empanada_core::label::check_non_negative::<T>(
                    "labels",
                    v.as_slice().expect("contiguous"),
                )?;
                core::connected_components_into::<T>(v, o, conn, binary)
            })?;
            drop(w);
            Ok((res.into_any(), n))
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connected_components, m)?)?;
    Ok(())
}
