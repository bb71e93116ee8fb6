//! Which of eight consecutive labels equal a given one, as an 8-bit mask: one vector compare
//! for 1-, 2- and 4-byte labels instead of eight compares, each a store and an add.

use crate::rowruns::BitEq;

/// Labels [`eq_mask8`] reads at a time; callers leave this many readable past any start.
pub(crate) const LANES: usize = 8;

/// Bit `t` set iff `w[t] == v`, for `t` in `0..8`.
#[inline(always)]
pub(crate) fn eq_mask8<T: BitEq>(w: &[T; LANES], v: T) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::mem::transmute_copy as bits;
        use std::mem::{align_of, size_of};
        // SAFETY (the reads of lanes and of `v`'s bits): same size and alignment, and
        // `BitEq` makes `==` on `T` the equality of the bits.
        unsafe {
            match (size_of::<T>(), align_of::<T>()) {
                (1, 1) => return sse2::mask8x8(&*(w as *const T as *const _), bits(&v)),
                (2, 2) => return sse2::mask16x8(&*(w as *const T as *const _), bits(&v)),
                (4, 4) => return sse2::mask32x8(&*(w as *const T as *const _), bits(&v)),
                _ => {}
            }
        }
    }
    let mut m = 0u32;
    for (t, &x) in w.iter().enumerate() {
        m |= ((x == v) as u32) << t;
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::LANES;
    use std::arch::x86_64::*;

    // SAFETY (all three): SSE2 is part of x86-64; the loads read exactly the 8 lanes.

    #[inline(always)]
    pub(super) fn mask8x8(w: &[u8; LANES], v: u8) -> u32 {
        unsafe {
            let a = _mm_loadl_epi64(w.as_ptr() as *const __m128i);
            let e = _mm_cmpeq_epi8(a, _mm_set1_epi8(v as i8));
            (_mm_movemask_epi8(e) & 0xff) as u32
        }
    }

    /// Eight 2-byte compares packed to bytes, whose sign bits are the mask.
    #[inline(always)]
    pub(super) fn mask16x8(w: &[u16; LANES], v: u16) -> u32 {
        unsafe {
            let a = _mm_loadu_si128(w.as_ptr() as *const __m128i);
            let e = _mm_cmpeq_epi16(a, _mm_set1_epi16(v as i16));
            (_mm_movemask_epi8(_mm_packs_epi16(e, _mm_setzero_si128())) & 0xff) as u32
        }
    }

    /// Two compares of four 4-byte lanes packed to 2 and then to 1 byte a lane.
    #[inline(always)]
    pub(super) fn mask32x8(w: &[u32; LANES], v: u32) -> u32 {
        unsafe {
            let p = w.as_ptr() as *const __m128i;
            let s = _mm_set1_epi32(v as i32);
            let e0 = _mm_cmpeq_epi32(_mm_loadu_si128(p), s);
            let e1 = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(1)), s);
            let e = _mm_packs_epi16(_mm_packs_epi32(e0, e1), _mm_setzero_si128());
            (_mm_movemask_epi8(e) & 0xff) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: BitEq + std::fmt::Debug>(vals: &[T]) {
        for start in 0..=vals.len() - LANES {
            for &v in vals {
                let expect = (0..LANES).fold(0u32, |m, t| m | ((vals[start + t] == v) as u32) << t);
                assert_eq!(
                    eq_mask8(vals[start..start + LANES].try_into().unwrap(), v),
                    expect,
                    "{vals:?} at {start}, {v:?}"
                );
            }
        }
    }

    #[test]
    fn masks_match_plain_compares() {
        // Values that differ only in high bits or in sign, so a lane compare that looked at
        // part of a value, or packed with saturation wrongly, would fail.
        check(&[0u8, 1, 0x80, 0xff, 1, 2, 0x80, 0, 0, 0xff, 3]);
        check(&[
            true, false, false, true, true, true, false, true, false, false,
        ]);
        check(&[
            0u16, 1, 0x8000, 0xffff, 0x0100, 1, 0x8000, 0, 0x00ff, 0xff00, 1,
        ]);
        check(&[0i16, -1, i16::MIN, 1, 0x0100, -1, 0, i16::MAX, 1, -256]);
        check(&[
            0u32,
            1,
            0x8000_0000,
            u32::MAX,
            0x0001_0000,
            0x0000_8000,
            1,
            0x8000_0000,
            0x0001_0001,
            0,
        ]);
        check(&[
            0i32,
            -1,
            i32::MIN,
            7,
            0x0100_0000,
            -1,
            7,
            i32::MAX,
            0,
            0x8000,
        ]);
        check(&[0u64, 1, 1 << 63, u64::MAX, 1 << 32, 1, 0, 1 << 32, 5]);
    }
}
