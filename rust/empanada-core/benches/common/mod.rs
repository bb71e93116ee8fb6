//! Inputs shared by the criterion benches.

// Each bench uses only some of these.
#![allow(dead_code, unused_imports)]

use ndarray::{ArrayD, Dimension, IxDyn};

/// Label cells of about `cell` voxels per side with wavy borders, a fifth of them background:
/// long runs, many touching ids, like an instance segmentation.
pub fn label_volume(shape: &[usize], cell: usize) -> ArrayD<u32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let (z, y, x) = if ix.ndim() == 3 {
            (ix[0], ix[1], ix[2])
        } else {
            (0, ix[0], ix[1])
        };
        let jx = x + (y * 7 + z * 3) % 5;
        let jy = y + (x * 5 + z) % 3;
        let key =
            ((z / cell) * 73_856_093) ^ ((jy / cell) * 19_349_663) ^ ((jx / cell) * 83_492_791);
        let h = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        if h % 10 < 2 {
            0
        } else {
            (h % 5000 + 1) as u32
        }
    })
}

pub use empanada_core::testing::xorshift;
