//! Typed Python exceptions, all subclasses of `EmpanadaError` (itself a `ValueError`),
//! and the one place core errors and panics become them.

use empanada_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    _core,
    EmpanadaError,
    PyValueError,
    "Base class of every empanada-rs error."
);
create_exception!(
    _core,
    InvalidArgumentError,
    EmpanadaError,
    "A parameter outside its domain."
);
create_exception!(
    _core,
    ShapeError,
    EmpanadaError,
    "Array ranks or shapes that do not fit."
);
create_exception!(
    _core,
    DTypeError,
    EmpanadaError,
    "An array of a dtype the kernel does not take."
);
create_exception!(
    _core,
    ContiguityError,
    EmpanadaError,
    "A non C-contiguous array where one is needed."
);
create_exception!(
    _core,
    NonFiniteError,
    EmpanadaError,
    "NaN or infinity where a finite value is needed."
);
create_exception!(
    _core,
    LabelOverflowError,
    EmpanadaError,
    "More objects than the id space can hold."
);
create_exception!(
    _core,
    InternalError,
    EmpanadaError,
    "A bug in empanada-rs (a caught panic); please report it."
);

pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidArgument { .. } => InvalidArgumentError::new_err(msg),
        Error::Shape { .. } => ShapeError::new_err(msg),
        Error::NonFinite { .. } => NonFiniteError::new_err(msg),
        Error::LabelOverflow { .. } => LabelOverflowError::new_err(msg),
    }
}

pub fn dtype_err(param: &str, got: &str, expected: &str) -> PyErr {
    // A `dtype=` argument is fixed by passing another dtype, an array by converting it.
    let fix = if param == "dtype" {
        "pass one of those".to_string()
    } else {
        format!("convert with `np.asarray({param}, dtype=...)`")
    };
    DTypeError::new_err(format!(
        "{param}: got dtype {got}, expected {expected}; {fix}"
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("EmpanadaError", py.get_type::<EmpanadaError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("DTypeError", py.get_type::<DTypeError>())?;
    m.add("ContiguityError", py.get_type::<ContiguityError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("LabelOverflowError", py.get_type::<LabelOverflowError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// Panics inside a kernel call on purpose, so a test can prove that a panic in the core
/// reaches Python as `InternalError` and not as a crash or a `PanicException`.
#[pyfunction]
fn _panic_in_kernel_for_tests(py: Python<'_>) -> PyResult<()> {
    crate::kernel::run(py, || -> empanada_core::Result<()> {
        panic!("deliberate test panic")
    })
}

pub fn register_test_hooks(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_panic_in_kernel_for_tests, m)?)
}
