//! Running a core kernel from Python: the GIL is released for the whole call and a panic
//! is caught and turned into `InternalError`, so neither blocks nor crashes the caller.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use pyo3::Bound;

use crate::errors::{dtype_err, to_py, ContiguityError, InternalError};

/// Runs `f` without the GIL and with panics caught.
pub fn run<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> empanada_core::Result<T> + Send,
    T: Send,
{
    let out = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(InternalError::new_err(format!(
                "internal error in empanada-rs (please report): {what}"
            )))
        }
    }
}

/// `Ok` if `a` is C-contiguous, else the error of [`not_contiguous`] for `param`.
pub fn contiguous<T: numpy::Element>(
    a: &numpy::PyReadonlyArrayDyn<'_, T>,
    param: &str,
) -> PyResult<()> {
    use numpy::PyUntypedArrayMethods;
    if a.is_c_contiguous() {
        Ok(())
    } else {
        Err(not_contiguous(param))
    }
}

pub fn not_contiguous(param: &str) -> PyErr {
    ContiguityError::new_err(format!(
        "{param}: array is not C-contiguous; pass `np.ascontiguousarray({param})`"
    ))
}

/// The numpy dtype name of an object, for error messages.
pub fn dtype_name(obj: &Bound<'_, PyAny>) -> String {
    obj.getattr("dtype")
        .and_then(|d| d.str().map(|s| s.to_string()))
        .unwrap_or_else(|_| {
            format!(
                "{} (not a numpy array)",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )
        })
}

pub fn wrong_dtype(param: &str, obj: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    dtype_err(param, &dtype_name(obj), expected)
}

/// Expands `$body` with `$t` bound to the Rust type of a label array's dtype, without
/// borrowing the array (the body may need to borrow it mutably); other dtypes raise
/// `DTypeError`.
#[macro_export]
macro_rules! with_label_type {
    ($obj:expr, $param:expr, |$t:ident| $body:block) => {{
        let obj = $obj;
        if obj.cast::<numpy::PyArrayDyn<u8>>().is_ok() {
            type $t = u8;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<u16>>().is_ok() {
            type $t = u16;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<u32>>().is_ok() {
            type $t = u32;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<u64>>().is_ok() {
            type $t = u64;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<i8>>().is_ok() {
            type $t = i8;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<i16>>().is_ok() {
            type $t = i16;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<i32>>().is_ok() {
            type $t = i32;
            $body
        } else if obj.cast::<numpy::PyArrayDyn<i64>>().is_ok() {
            type $t = i64;
            $body
        } else {
            Err($crate::kernel::wrong_dtype(
                $param,
                obj,
                $crate::kernel::LABEL_DTYPES,
            ))
        }
    }};
}

/// [`with_label_type`] with `$arr` bound to the array borrowed read-only as a
/// `PyReadonlyArrayDyn<$t>`.
#[macro_export]
macro_rules! with_label_array {
    ($obj:expr, $param:expr, |$arr:ident : $t:ident| $body:block) => {{
        let obj = $obj;
        $crate::with_label_type!(obj, $param, |$t| {
            use numpy::PyArrayMethods as _;
            let $arr = obj
                .cast::<numpy::PyArrayDyn<$t>>()
                .expect("dtype dispatched")
                .readonly();
            $body
        })
    }};
}

pub const LABEL_DTYPES: &str = "an integer label dtype (uint8/16/32/64 or int8/16/32/64)";

/// Expands `$body` with `$t` bound to the Rust type of the numpy dtype name `$name`.
#[macro_export]
macro_rules! with_dtype_name {
    ($name:expr, $param:expr, |$t:ident| $body:block) => {{
        match $name {
            "uint8" => {
                type $t = u8;
                $body
            }
            "uint16" => {
                type $t = u16;
                $body
            }
            "uint32" => {
                type $t = u32;
                $body
            }
            "uint64" => {
                type $t = u64;
                $body
            }
            "int8" => {
                type $t = i8;
                $body
            }
            "int16" => {
                type $t = i16;
                $body
            }
            "int32" => {
                type $t = i32;
                $body
            }
            "int64" => {
                type $t = i64;
                $body
            }
            other => Err($crate::errors::dtype_err(
                $param,
                other,
                $crate::kernel::LABEL_DTYPES,
            )),
        }
    }};
}

/// The numpy name of anything `numpy.dtype` accepts ("int32", `np.uint8`, a dtype).
pub fn numpy_dtype_name(dtype: &Bound<'_, PyAny>) -> PyResult<String> {
    let np = dtype.py().import("numpy")?;
    match np.getattr("dtype")?.call1((dtype,)) {
        Ok(d) => d.getattr("name")?.extract(),
        Err(_) => Err(crate::errors::dtype_err(
            "dtype",
            &dtype.repr()?.to_string(),
            LABEL_DTYPES,
        )),
    }
}
