//! Connected components of 2D/3D label images (multi-label or binary).

use empanada_core::components as core;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::kernel::{self, not_contiguous};

/// Labels components 1..N in raster order of their first voxel; returns (uint32 labels, N).
#[pyfunction]
#[pyo3(signature = (labels, *, connectivity = None, binary = false))]
fn connected_components<'py>(
    py: Python<'py>,
    labels: &Bound<'py, PyAny>,
    connectivity: Option<i64>,
    binary: bool,
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
    let out = |shape: &[usize]| crate::rle::numpy_zeros::<u32>(py, shape);
    if let Ok(a) = labels.cast::<PyArrayDyn<bool>>() {
        let arr = a.readonly();
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("labels"));
        }
        let res = out(arr.shape())?;
        let mut w = res.readwrite();
        let o = w.as_slice_mut().expect("fresh array is contiguous");
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
            let res = out(arr.shape())?;
            let mut w = res.readwrite();
            let o = w.as_slice_mut().expect("fresh array is contiguous");
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
