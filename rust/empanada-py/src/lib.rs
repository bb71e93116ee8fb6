//! `empanada_rs._core`: converts numpy arrays and errors around empanada-core kernels.
//! Nothing here computes; each submodule registers the entry points of one core module.

use pyo3::prelude::*;

mod chunks;
mod components;
mod consensus;
mod errors;
#[macro_use]
mod kernel;
mod labels;
mod median;
mod metrics;
mod model_outputs;
mod morphology;
mod panoptic;
mod rle;
mod segmentation;
mod stack;
mod tiles;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    errors::register_test_hooks(m)?;
    panoptic::register(m)?;
    rle::register(m)?;
    components::register(m)?;
    labels::register(m)?;
    median::register(m)?;
    metrics::register(m)?;
    morphology::register(m)?;
    segmentation::register(m)?;
    stack::register(m)?;
    consensus::register(m)?;
    tiles::register(m)?;
    chunks::register(m)?;
    Ok(())
}
