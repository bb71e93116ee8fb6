//! The integer types a label image may hold. Kernels are generic over them so numpy
//! arrays of any integer dtype are read in place, never converted.

use std::hash::Hash;

use crate::rowruns::BitEq;

pub trait Label:
    Copy + Ord + Eq + Hash + Default + Send + Sync + std::fmt::Debug + BitEq + 'static
{
    const MAX_U64: u64;
    /// Signed types must not hold negative labels; callers check with `is_negative`.
    fn to_u64(self) -> u64;
    /// Truncating conversion; callers check against `MAX_U64` first.
    fn from_u64(v: u64) -> Self;
    fn is_negative(self) -> bool;
    #[inline]
    fn is_zero(self) -> bool {
        self == Self::default()
    }
}

macro_rules! impl_label_unsigned {
    ($($t:ty),*) => {$(
        impl Label for $t {
            const MAX_U64: u64 = <$t>::MAX as u64;
            #[inline] fn to_u64(self) -> u64 { self as u64 }
            #[inline] fn from_u64(v: u64) -> Self { v as $t }
            #[inline] fn is_negative(self) -> bool { false }
        }
    )*};
}
macro_rules! impl_label_signed {
    ($($t:ty),*) => {$(
        impl Label for $t {
            const MAX_U64: u64 = <$t>::MAX as u64;
            #[inline] fn to_u64(self) -> u64 { self as u64 }
            #[inline] fn from_u64(v: u64) -> Self { v as $t }
            #[inline] fn is_negative(self) -> bool { self < 0 }
        }
    )*};
}
impl_label_unsigned!(u8, u16, u32, u64);
impl_label_signed!(i8, i16, i32, i64);

/// Rejects negative labels in a signed label image (they have no meaning as ids).
pub fn check_non_negative<L: Label>(param: &'static str, data: &[L]) -> crate::Result<()> {
    if data.iter().any(|v| v.is_negative()) {
        return Err(crate::Error::invalid(
            param,
            "labels must be >= 0; negative ids are not object labels (cast or clip the array first)",
        ));
    }
    Ok(())
}

/// `(z, y, x)` sizes of a 2D (one plane) or 3D image; any other rank is a shape error naming
/// `param`.
pub(crate) fn zyx(param: &'static str, shape: &[usize]) -> crate::Result<[usize; 3]> {
    match *shape {
        [y, x] => Ok([1, y, x]),
        [z, y, x] => Ok([z, y, x]),
        _ => Err(crate::Error::shape(
            param,
            format!("expected a 2D (H, W) or 3D (D, H, W) array, got shape {shape:?}"),
        )),
    }
}
