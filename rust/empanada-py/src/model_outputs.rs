//! The conversions shared by every binding that takes one slice's model outputs
//! (`panoptic_2d`, `StackPipeline`): the float32 arrays, their accepted ranks, and the 2D
//! post-processing parameters.

use empanada_core::panoptic::Panoptic2dParams;
use numpy::ndarray::{ArrayView2, ArrayView3, Axis, Ix2, Ix3};
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{InvalidArgumentError, ShapeError};
use crate::kernel::{not_contiguous, wrong_dtype};

/// One slice's borrowed model outputs: `sem` (C, H, W) or (H, W) probabilities, `ctr_hmp`
/// (h, w) or (1, h, w), `offsets` (2, h, w); float32, never copied.
pub(crate) struct ModelOutputs<'py> {
    sem: PyReadonlyArrayDyn<'py, f32>,
    ctr: PyReadonlyArrayDyn<'py, f32>,
    off: PyReadonlyArrayDyn<'py, f32>,
}

/// Borrows a float32 array without copying; other dtypes raise `DTypeError`.
pub(crate) fn f32_array<'py>(
    obj: &Bound<'py, PyAny>,
    param: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    obj.cast::<PyArrayDyn<f32>>()
        .map(|a| a.readonly())
        .map_err(|_| wrong_dtype(param, obj, "float32"))
}

pub(crate) fn rank_error(param: &str, expected: &str, shape: &[usize]) -> PyErr {
    ShapeError::new_err(format!("{param}: expected {expected}, got shape {shape:?}"))
}

/// A count parameter that must be at least 1.
pub(crate) fn positive(param: &str, v: i64) -> PyResult<usize> {
    if v < 1 {
        return Err(InvalidArgumentError::new_err(format!(
            "{param}: must be >= 1, got {v}"
        )));
    }
    Ok(v as usize)
}

impl<'py> ModelOutputs<'py> {
    /// Borrows the three arrays; with `contiguous` each must be C-contiguous (kernels that
    /// read them in place), otherwise strided views are fine (callers that copy them).
    pub(crate) fn borrow(
        sem: &Bound<'py, PyAny>,
        ctr_hmp: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        contiguous: bool,
    ) -> PyResult<Self> {
        let out = ModelOutputs {
            sem: f32_array(sem, "sem")?,
            ctr: f32_array(ctr_hmp, "ctr_hmp")?,
            off: f32_array(offsets, "offsets")?,
        };
        if contiguous {
            for (param, a) in [
                ("sem", &out.sem),
                ("ctr_hmp", &out.ctr),
                ("offsets", &out.off),
            ] {
                if !a.is_c_contiguous() {
                    return Err(not_contiguous(param));
                }
            }
        }
        Ok(out)
    }

    /// The views at the kernels' ranks: `sem` (C, H, W), `ctr_hmp` (h, w), `offsets`
    /// (2, h, w). Shapes beyond the ranks are checked by the core.
    pub(crate) fn views(
        &self,
    ) -> PyResult<(
        ArrayView3<'_, f32>,
        ArrayView2<'_, f32>,
        ArrayView3<'_, f32>,
    )> {
        let sem = self.sem.as_array();
        let sem = match sem.ndim() {
            2 => sem.insert_axis(Axis(0)),
            3 => sem,
            _ => return Err(rank_error("sem", "(C, H, W) or (H, W)", sem.shape())),
        }
        .into_dimensionality::<Ix3>()
        .expect("rank checked");
        let ctr = self.ctr.as_array();
        let ctr = match ctr.ndim() {
            3 if ctr.shape()[0] == 1 => ctr.index_axis_move(Axis(0), 0),
            2 => ctr,
            _ => return Err(rank_error("ctr_hmp", "(h, w) or (1, h, w)", ctr.shape())),
        }
        .into_dimensionality::<Ix2>()
        .expect("rank checked");
        let off = self.off.as_array();
        if off.ndim() != 3 {
            return Err(rank_error("offsets", "(2, h, w)", off.shape()));
        }
        let off = off.into_dimensionality::<Ix3>().expect("rank checked");
        Ok((sem, ctr, off))
    }
}

/// The 2D post-processing parameters from their Python values (spec §3.2–3.8), with the
/// counts checked here so both bindings word the error alike.
#[allow(clippy::too_many_arguments)]
pub(crate) fn panoptic_params(
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
) -> PyResult<Panoptic2dParams> {
    Ok(Panoptic2dParams {
        thing_list,
        label_divisor,
        confidence_thr,
        nms_threshold,
        nms_kernel: positive("nms_kernel", nms_kernel)?,
        stuff_area: stuff_area as usize,
        void_label,
        force_connected,
        upsampling: positive("upsampling", upsampling)?,
        crop,
    })
}
