//! Bindings of `empanada_core::stack` (the streaming 3D stack pipeline) and of the
//! assignment solver in `empanada_core::matching`.

use empanada_core::matching::{self, Plane};
use empanada_core::median::MedianMode;
use empanada_core::stack::{self as core, StackParams};
use numpy::ndarray::Ix3;
use numpy::{IntoPyArray, PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::kernel::{self, not_contiguous, wrong_dtype};
use crate::model_outputs::{panoptic_params, rank_error, ModelOutputs};
use crate::segmentation::Segmentation;

/// Streaming stack post-processing (spec §5.3–5.7); see `empanada_core::stack`.
#[pyclass(module = "empanada_rs._core", name = "StackPipeline")]
pub struct StackPipeline {
    inner: core::StackPipeline,
}

#[pymethods]
impl StackPipeline {
    #[new]
    #[pyo3(signature = (
        shape, plane = "xy", *, labels = vec![1], thing_list = vec![1], label_divisor = 10000,
        confidence_thr = 0.5, nms_threshold = 0.1, nms_kernel = 3, stuff_area = 64,
        void_label = 0, upsampling = 1, median_kernel_size = 3, median_mode = "recursive",
        merge_iou_thr = 0.25, merge_ioa_thr = 0.25
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        shape: (usize, usize, usize),
        plane: &str,
        labels: Vec<u32>,
        thing_list: Vec<u32>,
        label_divisor: u64,
        confidence_thr: f32,
        nms_threshold: f32,
        nms_kernel: i64,
        stuff_area: u64,
        void_label: i32,
        upsampling: i64,
        median_kernel_size: i64,
        median_mode: &str,
        merge_iou_thr: f64,
        merge_ioa_thr: f64,
    ) -> PyResult<Self> {
        let params = StackParams {
            shape: [shape.0, shape.1, shape.2],
            plane: Plane::parse(plane).map_err(to_py)?,
            labels,
            panoptic: panoptic_params(
                thing_list,
                label_divisor,
                confidence_thr,
                nms_threshold,
                nms_kernel,
                stuff_area,
                void_label,
                true,
                upsampling,
                None,
            )?,
            median_kernel_size,
            median_mode: MedianMode::parse(median_mode).map_err(to_py)?,
            merge_iou_thr,
            merge_ioa_thr,
        };
        let inner = core::StackPipeline::new(params).map_err(to_py)?;
        Ok(StackPipeline { inner })
    }

    /// Number of slices accepted so far.
    #[getter]
    fn n_pushed(&self) -> usize {
        self.inner.n_pushed()
    }

    /// Queues one slice's model outputs: `sem` (C, H, W) or (H, W) float32 probabilities,
    /// `ctr_hmp` (h, w) or (1, h, w), `offsets` (2, h, w). Returns at once unless the queue
    /// is full; errors from earlier slices are raised here or by `finish`.
    fn push(
        &mut self,
        py: Python<'_>,
        sem: &Bound<'_, PyAny>,
        ctr_hmp: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let outputs = ModelOutputs::borrow(sem, ctr_hmp, offsets, false)?;
        let (sem_v, ctr_v, off_v) = outputs.views()?;
        let inner = &mut self.inner;
        // `push` copies into one of the pipeline's recycled slice buffers.
        kernel::run(py, move || inner.push(sem_v, ctr_v, off_v))
    }

    /// Ends the stack and returns the 3D objects per class (`to_volume(c)` gives the
    /// reference's final ids 1..N, `stack_volume()` the panoptic c*L+k stack).
    #[pyo3(signature = (min_size = 500, min_extent = 5))]
    fn finish(&mut self, py: Python<'_>, min_size: i64, min_extent: i64) -> PyResult<Segmentation> {
        let inner = &mut self.inner;
        let seg = kernel::run(py, move || inner.finish(min_size, min_extent))?;
        Ok(Segmentation { inner: seg })
    }
}

/// Matches a (N, h, w) stack of already segmented 2D slices into 3D objects of class 1.
#[pyfunction]
#[pyo3(signature = (
    slices, plane = "xy", *, label_divisor = 1_048_576, merge_iou_thr = 0.25,
    merge_ioa_thr = 0.25, min_size = 500, min_extent = 5
))]
#[allow(clippy::too_many_arguments)]
fn match_slices(
    py: Python<'_>,
    slices: &Bound<'_, PyAny>,
    plane: &str,
    label_divisor: u64,
    merge_iou_thr: f64,
    merge_ioa_thr: f64,
    min_size: i64,
    min_extent: i64,
) -> PyResult<Segmentation> {
    let plane = Plane::parse(plane).map_err(to_py)?;
    let seg = crate::with_label_array!(slices, "slices", |arr: T| {
        if arr.ndim() != 3 {
            return Err(rank_error("slices", "a (N, h, w) stack", arr.shape()));
        }
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("slices"));
        }
        let v = arr
            .as_array()
            .into_dimensionality::<Ix3>()
            .expect("rank checked");
        kernel::run(py, || {
            core::match_slices::<T>(
                v,
                plane,
                label_divisor,
                merge_iou_thr,
                merge_ioa_thr,
                min_size,
                min_extent,
            )
        })
    })?;
    Ok(Segmentation { inner: seg })
}

type IndexPair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Optimal assignment of a float64 cost matrix, as `scipy.optimize.linear_sum_assignment`.
#[pyfunction]
#[pyo3(signature = (cost, maximize = false))]
fn linear_sum_assignment<'py>(
    py: Python<'py>,
    cost: &Bound<'py, PyAny>,
    maximize: bool,
) -> PyResult<IndexPair<'py>> {
    let a = cost
        .cast::<PyArrayDyn<f64>>()
        .map_err(|_| wrong_dtype("cost", cost, "float64"))?
        .readonly();
    if a.ndim() != 2 {
        return Err(rank_error("cost", "a 2D matrix", a.shape()));
    }
    let (nr, nc) = (a.shape()[0], a.shape()[1]);
    let v = a.as_array();
    let (rows, cols) = kernel::run(py, move || {
        let std = v.as_standard_layout();
        matching::linear_sum_assignment(std.as_slice().expect("standard"), nr, nc, maximize)
    })?;
    let rows: Vec<i64> = rows.into_iter().map(|r| r as i64).collect();
    let cols: Vec<i64> = cols.into_iter().map(|c| c as i64).collect();
    Ok((rows.into_pyarray(py), cols.into_pyarray(py)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StackPipeline>()?;
    m.add_function(wrap_pyfunction!(match_slices, m)?)?;
    m.add_function(wrap_pyfunction!(linear_sum_assignment, m)?)?;
    Ok(())
}
