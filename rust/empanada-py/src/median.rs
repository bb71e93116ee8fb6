//! Bindings of `empanada_core::median`: the streaming median over slices and its
//! whole-stack convenience form. Slices are copied on push, so any strides are accepted.

use empanada_core::median::{self as core, Emitted, MedianMode};
use ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::ShapeError;
use crate::kernel::{self, wrong_dtype};

type Emissions<'py> = Vec<(usize, Bound<'py, PyArrayDyn<f32>>)>;

fn to_py<'py>(py: Python<'py>, shape: &[usize], es: Vec<Emitted>) -> Emissions<'py> {
    es.into_iter()
        .map(|e| {
            let a = ArrayD::from_shape_vec(IxDyn(shape), e.data).expect("slice shape");
            (e.index, a.into_pyarray(py))
        })
        .collect()
}

/// Median over a sliding window of slices (spec §5.3); see `empanada_core::median`.
#[pyclass(module = "empanada_rs._core", name = "SliceMedianFilter")]
pub struct SliceMedianFilter {
    inner: core::SliceMedianFilter,
}

#[pymethods]
impl SliceMedianFilter {
    #[new]
    #[pyo3(signature = (kernel_size = 3, *, mode = "recursive"))]
    fn new(kernel_size: i64, mode: &str) -> PyResult<Self> {
        let mode = MedianMode::parse(mode).map_err(crate::errors::to_py)?;
        let inner =
            core::SliceMedianFilter::new(kernel_size, mode).map_err(crate::errors::to_py)?;
        Ok(SliceMedianFilter { inner })
    }

    #[getter]
    fn kernel_size(&self) -> usize {
        self.inner.kernel_size()
    }

    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().name()
    }

    /// Adds the next slice (float32, fixed shape) and returns the `(index, slice)` pairs
    /// it releases.
    fn push<'py>(&mut self, array: &Bound<'py, PyAny>) -> PyResult<Emissions<'py>> {
        let py = array.py();
        let a = array
            .cast::<PyArrayDyn<f32>>()
            .map_err(|_| wrong_dtype("array", array, "float32"))?
            .readonly();
        let shape = a.shape().to_vec();
        let inner = &mut self.inner;
        let es = match a.as_slice() {
            Ok(s) => kernel::run(py, || inner.push(&shape, s))?,
            Err(_) => {
                let view = a.as_array();
                kernel::run(py, || {
                    inner.push_owned(&shape, view.iter().copied().collect())
                })?
            }
        };
        Ok(to_py(py, &shape, es))
    }

    /// Ends the stack and returns the remaining `(index, slice)` pairs.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Emissions<'py>> {
        let inner = &mut self.inner;
        let es = kernel::run(py, || inner.finish())?;
        let shape = self.inner.shape().map(|s| s.to_vec()).unwrap_or_default();
        Ok(to_py(py, &shape, es))
    }
}

/// Filters a float32 stack along axis 0 and returns the filtered stack.
#[pyfunction]
#[pyo3(signature = (stack, kernel_size = 3, *, mode = "recursive"))]
fn median_filter_slices<'py>(
    stack: &Bound<'py, PyAny>,
    kernel_size: i64,
    mode: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let py = stack.py();
    let mode = MedianMode::parse(mode).map_err(crate::errors::to_py)?;
    let a = stack
        .cast::<PyArrayDyn<f32>>()
        .map_err(|_| wrong_dtype("stack", stack, "float32"))?
        .readonly();
    if a.ndim() < 1 {
        return Err(ShapeError::new_err(
            "stack: expected an array of slices along axis 0, got a 0-d array",
        ));
    }
    let shape = a.shape().to_vec();
    let view = a.as_array();
    let out = kernel::run(py, || {
        let std = view.as_standard_layout();
        let data = std.as_slice().expect("standard layout");
        core::median_filter_slices(data, shape[0], &shape[1..], kernel_size, mode)
    })?;
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)
        .expect("stack shape")
        .into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SliceMedianFilter>()?;
    m.add_function(wrap_pyfunction!(median_filter_slices, m)?)?;
    Ok(())
}
