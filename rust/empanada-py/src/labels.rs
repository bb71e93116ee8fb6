//! Bindings of `empanada_core::labels`: relabel, renumber, size and extent filters,
//! hole filling and per-label statistics on 2D/3D integer label arrays.

use empanada_core::labels as core;
use empanada_core::Label;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{InvalidArgumentError, ShapeError};
use crate::kernel::{self, contiguous, not_contiguous};

/// A 1-D integer array (or sequence) of non-negative ids, widened to u64.
fn id_vector(obj: &Bound<'_, PyAny>, param: &'static str) -> PyResult<Vec<u64>> {
    let py = obj.py();
    let arr = if obj.is_instance_of::<PyUntypedArray>() {
        obj.clone()
    } else {
        py.import("numpy")?.call_method1("asarray", (obj,))?
    };
    // `np.asarray([])` is float64; an empty mapping needs no dtype.
    if arr
        .cast::<PyUntypedArray>()
        .is_ok_and(|a| a.len() == 0 && a.ndim() == 1)
    {
        return Ok(Vec::new());
    }
    with_label_array!(&arr, param, |a: T| {
        if a.ndim() != 1 {
            return Err(ShapeError::new_err(format!(
                "{param}: expected a 1-D array, got shape {:?}",
                a.shape()
            )));
        }
        let v = a.as_array();
        if v.iter().any(|x: &T| x.is_negative()) {
            return Err(InvalidArgumentError::new_err(format!(
                "{param}: ids must be >= 0"
            )));
        }
        Ok(v.iter().map(|x: &T| x.to_u64()).collect())
    })
}

/// Maps labels through `keys -> values`; others keep their id, or become `default`.
/// With `out`, writes into that array (labels' dtype and shape, C-contiguous, writeable;
/// `labels` itself relabels in place) and returns it.
#[pyfunction]
#[pyo3(signature = (labels, keys, values, *, default = None, out = None))]
fn relabel<'py>(
    labels: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    default: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    let keys = id_vector(keys, "keys")?;
    let values = id_vector(values, "values")?;
    let default = match default {
        None => None,
        Some(d) => {
            let v: i128 = d.extract().map_err(|_| {
                InvalidArgumentError::new_err("default: expected an integer id >= 0 or None")
            })?;
            if v < 0 || v > u64::MAX as i128 {
                return Err(InvalidArgumentError::new_err(format!(
                    "default: must be an id >= 0, got {v}"
                )));
            }
            Some(v as u64)
        }
    };
    if let Some(out) = out {
        let m = Mapping {
            keys: &keys,
            values: &values,
            default,
        };
        return crate::with_label_type!(labels, "labels", |T| {
            relabel_out::<T>(labels, out, &m)
        });
    }
    with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::relabel(view, &keys, &values, default))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

struct Mapping<'a> {
    keys: &'a [u64],
    values: &'a [u64],
    default: Option<u64>,
}

/// The `out=` form of `relabel`: checks `out` against `labels`, then maps into it (or in
/// place when it is `labels`' own memory).
fn relabel_out<'py, T: Label + numpy::Element>(
    labels: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    m: &Mapping<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    let la = labels.cast::<PyArrayDyn<T>>()?;
    let oa = out.cast::<PyArrayDyn<T>>().map_err(|_| {
        kernel::wrong_dtype(
            "out",
            out,
            &format!(
                "{} (the dtype of labels), as a numpy array",
                kernel::dtype_name(labels)
            ),
        )
    })?;
    if !la.is_c_contiguous() {
        return Err(not_contiguous("labels"));
    }
    if oa.shape() != la.shape() {
        return Err(ShapeError::new_err(format!(
            "out: expected shape {:?} (the shape of labels), got {:?}",
            la.shape(),
            oa.shape()
        )));
    }
    if !oa.is_c_contiguous() {
        return Err(not_contiguous("out"));
    }
    let n = la.len();
    let (lp, op) = (la.data() as usize, oa.data() as usize);
    let bytes = n * std::mem::size_of::<T>();
    let not_writeable = |_| {
        InvalidArgumentError::new_err(
            "out: array is not writeable (read-only, or borrowed elsewhere); pass a writeable array",
        )
    };
    // `labels` itself is in place even when empty: an empty array's pointer says nothing,
    // and borrowing it both ways below would fail.
    if (lp == op && n > 0) || labels.is(out) {
        let mut w = oa.try_readwrite().map_err(not_writeable)?;
        let view = w.as_array_mut();
        kernel::run(py, || {
            core::relabel_in_place(view, m.keys, m.values, m.default)
        })?;
    } else {
        if n > 0 && lp < op + bytes && op < lp + bytes {
            return Err(InvalidArgumentError::new_err(
                "out: shares memory with labels without being labels itself; pass labels \
                 (in place) or a separate array",
            ));
        }
        let r = la.readonly();
        let mut w = oa.try_readwrite().map_err(not_writeable)?;
        let dst = w.as_slice_mut().expect("checked contiguous");
        let view = r.as_array();
        kernel::run(py, || {
            core::relabel_into(view, m.keys, m.values, m.default, dst)
        })?;
    }
    Ok(out.clone())
}

/// Maps the non-zero ids in ascending order to `start, start + 1, ...`. With `out`, writes
/// into that array (as `relabel`'s `out`: labels' dtype and shape, or `labels` itself for in
/// place) and returns it first.
#[pyfunction]
#[pyo3(signature = (labels, *, start = 1, out = None))]
fn renumber<'py>(
    labels: &Bound<'py, PyAny>,
    start: i64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = labels.py();
    if let Some(out) = out {
        return crate::with_label_type!(labels, "labels", |T| {
            renumber_out::<T>(labels, start, out)
        });
    }
    with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        let r = kernel::run(py, || core::renumber(view, start))?;
        PyTuple::new(
            py,
            [
                r.labels.into_pyarray(py).into_any(),
                r.keys.into_pyarray(py).into_any(),
                r.values.into_pyarray(py).into_any(),
            ],
        )
    })
}

/// The `out=` form of `renumber`: the mapping from the labels, then `relabel`'s checked
/// write into `out` (nothing is written when either step rejects the arguments).
fn renumber_out<'py, T: Label + numpy::Element>(
    labels: &Bound<'py, PyAny>,
    start: i64,
    out: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = labels.py();
    let (keys, values) = {
        let a = labels.cast::<PyArrayDyn<T>>()?.readonly();
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        kernel::run(py, || core::renumber_mapping(view, start))?
    };
    let m = Mapping {
        keys: &keys,
        values: &values,
        default: None,
    };
    let res = relabel_out::<T>(labels, out, &m)?;
    let typed = |v: &[u64]| v.iter().map(|&x| T::from_u64(x)).collect::<Vec<T>>();
    PyTuple::new(
        py,
        [
            res,
            typed(&keys).into_pyarray(py).into_any(),
            typed(&values).into_pyarray(py).into_any(),
        ],
    )
}

/// Zeroes every object (id) with fewer than `min_size` voxels.
#[pyfunction]
fn remove_small_objects<'py>(
    labels: &Bound<'py, PyAny>,
    min_size: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::remove_small_objects(view, min_size))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// Zeroes every object whose bounding box is shorter than `min_span` along any axis.
#[pyfunction]
fn remove_pancakes<'py>(labels: &Bound<'py, PyAny>, min_span: i64) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::remove_pancakes(view, min_span))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// Fills the holes of each object's own mask, painting only background voxels.
#[pyfunction]
fn fill_holes<'py>(labels: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = labels.py();
    with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        let out = kernel::run(py, || core::fill_holes(view))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// Ids, voxel counts, bounding boxes and centroids of every non-zero label.
#[pyfunction]
fn label_statistics<'py>(labels: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = labels.py();
    let s = with_label_array!(labels, "labels", |a: T| {
        contiguous::<T>(&a, "labels")?;
        let view = a.as_array();
        kernel::run(py, || core::label_statistics(view))
    })?;
    let n = s.ids.len();
    let ndim = s.ndim;
    let d = PyDict::new(py);
    d.set_item("ids", s.ids.into_pyarray(py))?;
    d.set_item("counts", s.counts.into_pyarray(py))?;
    d.set_item(
        "boxes",
        ndarray::Array2::from_shape_vec((n, 2 * ndim), s.boxes)
            .expect("n x 2*ndim")
            .into_pyarray(py),
    )?;
    d.set_item(
        "centroids",
        ndarray::Array2::from_shape_vec((n, ndim), s.centroids)
            .expect("n x ndim")
            .into_pyarray(py),
    )?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(relabel, m)?)?;
    m.add_function(wrap_pyfunction!(renumber, m)?)?;
    m.add_function(wrap_pyfunction!(remove_small_objects, m)?)?;
    m.add_function(wrap_pyfunction!(remove_pancakes, m)?)?;
    m.add_function(wrap_pyfunction!(fill_holes, m)?)?;
    m.add_function(wrap_pyfunction!(label_statistics, m)?)?;
    Ok(())
}
