//! One error type for every kernel. Each variant names the offending parameter so the
//! binding layer can map it to a typed Python exception whose message says what to fix.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A scalar parameter outside its domain (`nms_kernel < 1`, a threshold outside [0, 1]…).
    #[error("{param}: {msg}")]
    InvalidArgument { param: &'static str, msg: String },
    /// Array ranks or shapes that do not fit together.
    #[error("{param}: {msg}")]
    Shape { param: &'static str, msg: String },
    /// NaN or infinity where a probability or a heatmap value is expected.
    #[error("{param}: {msg}")]
    NonFinite { param: &'static str, msg: String },
    /// More objects than the id space (label divisor or output dtype) can hold.
    #[error("{param}: {msg}")]
    LabelOverflow { param: &'static str, msg: String },
}

impl Error {
    pub fn invalid(param: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            param,
            msg: msg.into(),
        }
    }
    pub fn shape(param: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            param,
            msg: msg.into(),
        }
    }
    pub fn non_finite(param: &'static str, msg: impl Into<String>) -> Self {
        Error::NonFinite {
            param,
            msg: msg.into(),
        }
    }
    pub fn overflow(param: &'static str, msg: impl Into<String>) -> Self {
        Error::LabelOverflow {
            param,
            msg: msg.into(),
        }
    }
    /// The parameter the error is about.
    pub fn param(&self) -> &'static str {
        match self {
            Error::InvalidArgument { param, .. }
            | Error::Shape { param, .. }
            | Error::NonFinite { param, .. }
            | Error::LabelOverflow { param, .. } => param,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
