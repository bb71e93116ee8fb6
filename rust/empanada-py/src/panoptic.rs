//! Bindings of `empanada_core::panoptic`.

use empanada_core::panoptic as core;
use numpy::ndarray::Ix2;
use numpy::{IntoPyArray, PyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::ShapeError;
use crate::kernel::{self, not_contiguous};
use crate::model_outputs::{f32_array, panoptic_params, rank_error, ModelOutputs};

/// 2D Panoptic-DeepLab post-processing of one image's model outputs (spec §3.2–3.8).
#[pyfunction]
#[pyo3(signature = (
    sem, ctr_hmp, offsets, *, thing_list = vec![1], label_divisor = 10000, confidence_thr = 0.5,
    nms_threshold = 0.1, nms_kernel = 3, stuff_area = 64, void_label = 0, force_connected = true,
    upsampling = 1, crop = None
))]
#[allow(clippy::too_many_arguments)]
fn panoptic_2d<'py>(
    py: Python<'py>,
    sem: &Bound<'py, PyAny>,
    ctr_hmp: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    thing_list: Vec<u32>,
    label_divisor: u64,
    confidence_thr: f32,
    nms_threshold: f32,
    nms_kernel: i64,
    stuff_area: u64,
    void_label: i32,
    force_connected: bool,
    upsampling: i64,
    crop: Option<(usize, usize)>,
) -> PyResult<Bound<'py, PyArray2<i32>>> {
    let outputs = ModelOutputs::borrow(sem, ctr_hmp, offsets, true)?;
    let (sem_v, ctr_v, off_v) = outputs.views()?;
    let params = panoptic_params(
        thing_list,
        label_divisor,
        confidence_thr,
        nms_threshold,
        nms_kernel,
        stuff_area,
        void_label,
        force_connected,
        upsampling,
        crop,
    )?;
    let out = kernel::run(py, || core::panoptic_2d(sem_v, ctr_v, off_v, &params))?;
    Ok(out.into_pyarray(py))
}

/// Centre detection (spec §3.3): (K, 2) int64 (y, x) in raster order.
#[pyfunction]
#[pyo3(signature = (ctr_hmp, *, threshold = 0.1, nms_kernel = 3))]
fn find_instance_centers<'py>(
    py: Python<'py>,
    ctr_hmp: &Bound<'py, PyAny>,
    threshold: f32,
    nms_kernel: i64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let ctr = f32_array(ctr_hmp, "ctr_hmp")?;
    if ctr.ndim() != 2 {
        return Err(rank_error("ctr_hmp", "(h, w)", ctr.shape()));
    }
    if !ctr.is_c_contiguous() {
        return Err(not_contiguous("ctr_hmp"));
    }
    let v = ctr
        .as_array()
        .into_dimensionality::<Ix2>()
        .expect("rank checked");
    let k = kernel::run(py, || {
        if nms_kernel < 1 {
            return Err(empanada_core::Error::invalid("nms_kernel", "must be >= 1"));
        }
        if !threshold.is_finite() {
            return Err(empanada_core::Error::invalid(
                "threshold",
                "must be a finite number",
            ));
        }
        Ok(core::find_centers(v, threshold, nms_kernel as usize))
    })?;
    let flat: Vec<i64> = k.iter().flat_map(|&(y, x)| [y as i64, x as i64]).collect();
    let arr = numpy::ndarray::Array2::from_shape_vec((k.len(), 2), flat).expect("2 per centre");
    Ok(arr.into_pyarray(py))
}

/// Renumbers thing instances by 8-connected components (spec §3.8); same dtype out.
#[pyfunction]
#[pyo3(signature = (panoptic, *, thing_list = vec![1], label_divisor = 10000))]
fn relabel_connected<'py>(
    py: Python<'py>,
    panoptic: &Bound<'py, PyAny>,
    thing_list: Vec<u32>,
    label_divisor: u64,
) -> PyResult<Bound<'py, PyAny>> {
    crate::with_label_array!(panoptic, "panoptic", |arr: T| {
        if arr.ndim() != 2 {
            return Err(ShapeError::new_err(format!(
                "panoptic: expected a 2D (H, W) label map, got shape {:?}",
                arr.shape()
            )));
        }
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("panoptic"));
        }
        let v = arr
            .as_array()
            .into_dimensionality::<Ix2>()
            .expect("rank checked");
        let out = kernel::run(py, || {
            core::relabel_connected::<T>(v, &thing_list, label_divisor)
        })?;
        Ok(out.into_pyarray(py).into_any())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(panoptic_2d, m)?)?;
    m.add_function(wrap_pyfunction!(find_instance_centers, m)?)?;
    m.add_function(wrap_pyfunction!(relabel_connected, m)?)?;
    Ok(())
}
