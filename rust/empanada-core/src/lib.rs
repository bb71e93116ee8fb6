//! empanada-core: the CPU-bound stages of empanada-rs as pure functions over ndarray views.
//!
//! No Python here: the `empanada-py` crate converts arrays and errors and nothing else.

mod box_index;
pub mod chunks;
pub mod components;
pub mod consensus;
pub mod error;
pub mod hash;
pub mod label;
pub mod labels;
mod lanes;
pub mod matching;
pub mod median;
pub mod metrics;
pub mod morphology;
pub mod object_ops;
pub mod panoptic;
pub mod rle;
mod rowruns;
pub mod segmentation;
pub mod stack;
pub mod tiles;
pub mod unionfind;

pub use error::{Error, Result};
pub use label::Label;

/// Helpers of the crate's tests and benches, not part of its API.
#[doc(hidden)]
pub mod testing {
    /// A xorshift64 stream of numbers below the argument: reproducible inputs without a
    /// crate.
    pub fn xorshift(mut s: u64) -> impl FnMut(usize) -> usize {
        move |m: usize| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % m as u64) as usize
        }
    }
}
