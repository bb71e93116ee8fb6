//! Run-length objects: encode/decode label images, set operations on `(starts, runs)`.

use empanada_core::rle as core;
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{to_py, ShapeError};
use crate::kernel::{self, not_contiguous, wrong_dtype};

type RlePair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// A 1-D C-contiguous int64 array, read in place.
pub(crate) fn i64_array<'py>(
    obj: &Bound<'py, PyAny>,
    param: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, i64>> {
    let a = obj
        .cast::<PyArrayDyn<i64>>()
        .map_err(|_| wrong_dtype(param, obj, "int64"))?;
    if a.ndim() != 1 {
        return Err(ShapeError::new_err(format!(
            "{param}: expected a 1-D array, got shape {:?}",
            a.shape()
        )));
    }
    if !a.is_c_contiguous() {
        return Err(not_contiguous(param));
    }
    Ok(a.readonly())
}

fn slice<'a>(a: &'a PyReadonlyArrayDyn<'_, i64>) -> &'a [i64] {
    a.as_slice().expect("checked 1-D and contiguous")
}

fn pair<'py>(py: Python<'py>, (s, r): (Vec<i64>, Vec<i64>)) -> RlePair<'py> {
    (s.into_pyarray(py), r.into_pyarray(py))
}

/// Encodes every nonzero label of a 2D/3D image: a dict of columnar arrays (see the stub).
#[pyfunction]
fn rle_encode<'py>(py: Python<'py>, labels: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let enc = crate::with_label_array!(labels, "labels", |arr: T| {
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("labels"));
        }
        let v = arr.as_array();
        kernel::run(py, || core::encode::<T>(v))
    })?;
    let shape: Vec<usize> = labels.getattr("shape")?.extract()?;
    let n = enc.len();
    let d = PyDict::new(py);
    d.set_item("ids", enc.ids.into_pyarray(py))?;
    let boxes = Array2::from_shape_vec((n, 2 * enc.ndim), enc.boxes).expect("2*ndim per object");
    d.set_item("boxes", boxes.into_pyarray(py))?;
    d.set_item("counts", enc.counts.into_pyarray(py))?;
    d.set_item("offsets", enc.offsets.into_pyarray(py))?;
    d.set_item("starts", enc.starts.into_pyarray(py))?;
    d.set_item("runs", enc.runs.into_pyarray(py))?;
    d.set_item("shape", PyTuple::new(py, shape)?)?;
    Ok(d)
}

/// `numpy.zeros(shape, dtype=T)`: numpy gives large buffers transparent huge pages, so the
/// first write does not page-fault per 4 KiB as a fresh Rust Vec would; and an allocation
/// failure comes back as `MemoryError`, not as a panic.
pub(crate) fn numpy_zeros<'py, T: numpy::Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let dtype = numpy::dtype::<T>(py);
    let arr = py
        .import("numpy")?
        .call_method1("zeros", (PyTuple::new(py, shape)?, dtype))?;
    Ok(arr.cast_into::<PyArrayDyn<T>>()?)
}

/// Paints into a numpy-allocated zero array.
fn decode_as<'py, T: empanada_core::Label + numpy::Element>(
    py: Python<'py>,
    ids: &[u64],
    offsets: &[i64],
    starts: &[i64],
    runs: &[i64],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    if shape.len() != 2 && shape.len() != 3 {
        return Err(ShapeError::new_err(format!(
            "shape: expected a 2D (y, x) or 3D (z, y, x) shape, got {} dimensions",
            shape.len()
        )));
    }
    let res = numpy_zeros::<T>(py, shape)?;
    let mut w = res.readwrite();
    let out = w.as_slice_mut().expect("fresh array is contiguous");
    kernel::run(py, || core::paint::<T>(ids, offsets, starts, runs, out))?;
    drop(w);
    Ok(res.into_any())
}

/// Paints the objects into a zeroed array of `shape` and `dtype`.
#[pyfunction]
#[pyo3(
    signature = (ids, offsets, starts, runs, shape, *, dtype = None),
    text_signature = "(ids, offsets, starts, runs, shape, *, dtype='uint32')"
)]
fn rle_decode<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    starts: &Bound<'py, PyAny>,
    runs: &Bound<'py, PyAny>,
    shape: Vec<i64>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ids: Vec<u64> = crate::with_label_array!(ids, "ids", |arr: T| {
        if arr.ndim() != 1 {
            return Err(ShapeError::new_err(format!(
                "ids: expected a 1-D array, got shape {:?}",
                arr.shape()
            )));
        }
        let v = arr.as_array();
        if v.iter()
            .any(|&x| <T as empanada_core::Label>::is_negative(x))
        {
            return Err(to_py(empanada_core::Error::invalid(
                "ids",
                "object ids must be >= 0",
            )));
        }
        Ok(v.iter()
            .map(|x| empanada_core::Label::to_u64(*x))
            .collect::<Vec<u64>>())
    })?;
    let offsets = i64_array(offsets, "offsets")?;
    let starts = i64_array(starts, "starts")?;
    let runs = i64_array(runs, "runs")?;
    if let Some(d) = shape.iter().find(|&&d| d < 0) {
        return Err(to_py(empanada_core::Error::invalid(
            "shape",
            format!("dimensions must be >= 0, got {d}"),
        )));
    }
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let name = match dtype {
        None => "uint32".to_string(),
        Some(d) => crate::kernel::numpy_dtype_name(d)?,
    };
    let (o, s, r) = (slice(&offsets), slice(&starts), slice(&runs));
    crate::with_dtype_name!(name.as_str(), "dtype", |T| {
        decode_as::<T>(py, &ids, o, s, r, &shape)
    })
}

/// Runs of a strictly increasing array of flat indices.
#[pyfunction]
fn rle_from_indices<'py>(py: Python<'py>, indices: &Bound<'py, PyAny>) -> PyResult<RlePair<'py>> {
    let idx = i64_array(indices, "indices")?;
    let i = slice(&idx);
    Ok(pair(py, kernel::run(py, || core::from_indices(i))?))
}

/// A set operation on two RLEs, `(starts_a, runs_a, starts_b, runs_b)`.
type PairwiseOp<T> = fn(&[i64], &[i64], &[i64], &[i64]) -> empanada_core::Result<T>;

/// Borrows the four run arrays of a pairwise operation and runs it without the GIL.
fn pairwise<T: Send>(
    py: Python<'_>,
    arrays: [&Bound<'_, PyAny>; 4],
    op: PairwiseOp<T>,
) -> PyResult<T> {
    let [sa, ra, sb, rb] = arrays;
    let a = [
        i64_array(sa, "starts_a")?,
        i64_array(ra, "runs_a")?,
        i64_array(sb, "starts_b")?,
        i64_array(rb, "runs_b")?,
    ];
    let (sa, ra, sb, rb) = (slice(&a[0]), slice(&a[1]), slice(&a[2]), slice(&a[3]));
    kernel::run(py, || op(sa, ra, sb, rb))
}

/// Number of indices in both RLEs.
#[pyfunction]
fn rle_intersection(
    py: Python<'_>,
    starts_a: &Bound<'_, PyAny>,
    runs_a: &Bound<'_, PyAny>,
    starts_b: &Bound<'_, PyAny>,
    runs_b: &Bound<'_, PyAny>,
) -> PyResult<i64> {
    pairwise(py, [starts_a, runs_a, starts_b, runs_b], core::intersection)
}

/// Intersection over union of two RLEs (0.0 when both are empty).
#[pyfunction]
fn rle_iou(
    py: Python<'_>,
    starts_a: &Bound<'_, PyAny>,
    runs_a: &Bound<'_, PyAny>,
    starts_b: &Bound<'_, PyAny>,
    runs_b: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    pairwise(py, [starts_a, runs_a, starts_b, runs_b], core::iou)
}

/// Intersection over the area of the second RLE (0.0 when it is empty).
#[pyfunction]
fn rle_ioa(
    py: Python<'_>,
    starts_a: &Bound<'_, PyAny>,
    runs_a: &Bound<'_, PyAny>,
    starts_b: &Bound<'_, PyAny>,
    runs_b: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    pairwise(py, [starts_a, runs_a, starts_b, runs_b], core::ioa)
}

fn rle_list<'py>(
    rles: &Bound<'py, PyAny>,
) -> PyResult<Vec<(PyReadonlyArrayDyn<'py, i64>, PyReadonlyArrayDyn<'py, i64>)>> {
    let mut out = Vec::new();
    for item in rles.try_iter()? {
        let item = item?;
        let (s, r): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract().map_err(|_| {
            to_py(empanada_core::Error::invalid(
                "rles",
                "expected a sequence of (starts, runs) pairs",
            ))
        })?;
        out.push((
            i64_array(&s, "rles[i][0] (starts)")?,
            i64_array(&r, "rles[i][1] (runs)")?,
        ));
    }
    Ok(out)
}

/// Union of RLEs (overlapping or touching runs merge).
#[pyfunction]
fn rle_union<'py>(py: Python<'py>, rles: &Bound<'py, PyAny>) -> PyResult<RlePair<'py>> {
    let arrays = rle_list(rles)?;
    let views: Vec<core::Rle<'_>> = arrays.iter().map(|(s, r)| (slice(s), slice(r))).collect();
    Ok(pair(py, kernel::run(py, || core::union(&views))?))
}

/// Indices covered by at least `thr` of the RLEs.
#[pyfunction]
fn rle_vote<'py>(py: Python<'py>, rles: &Bound<'py, PyAny>, thr: i64) -> PyResult<RlePair<'py>> {
    if thr < 1 {
        return Err(to_py(empanada_core::Error::invalid(
            "thr",
            format!("vote threshold must be >= 1, got {thr}"),
        )));
    }
    let arrays = rle_list(rles)?;
    let views: Vec<core::Rle<'_>> = arrays.iter().map(|(s, r)| (slice(s), slice(r))).collect();
    Ok(pair(
        py,
        kernel::run(py, || core::vote(&views, thr as usize))?,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rle_encode, m)?)?;
    m.add_function(wrap_pyfunction!(rle_decode, m)?)?;
    m.add_function(wrap_pyfunction!(rle_from_indices, m)?)?;
    m.add_function(wrap_pyfunction!(rle_intersection, m)?)?;
    m.add_function(wrap_pyfunction!(rle_iou, m)?)?;
    m.add_function(wrap_pyfunction!(rle_ioa, m)?)?;
    m.add_function(wrap_pyfunction!(rle_union, m)?)?;
    m.add_function(wrap_pyfunction!(rle_vote, m)?)?;
    Ok(())
}
