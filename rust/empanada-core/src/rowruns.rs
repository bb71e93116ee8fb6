//! Runs of one value along a row, found through bit masks of where the value changes: the
//! compares vectorise, and walking the runs costs one data-dependent branch per 64 voxels
//! instead of one mispredicted loop exit per run.

/// Types whose `==` is the equality of their bits (integers and `bool`): rows of them are
/// compared as raw 2- or 4-byte lanes by [`for_each_run_eq`].
pub trait BitEq: Copy + PartialEq {}
impl BitEq for bool {}
impl BitEq for u8 {}
impl BitEq for i8 {}
impl BitEq for u16 {}
impl BitEq for i16 {}
impl BitEq for u32 {}
impl BitEq for i32 {}
impl BitEq for u64 {}
impl BitEq for i64 {}

/// Writes to `bits` (bit `p % 64` of word `p / 64`) whether `line[p + 1]` starts a new run,
/// for `p` in `0..line.len() - 1`. `same(a, b)`: whether two neighbours belong to one run.
///
/// 64 neighbour pairs at a time: a byte per pair from a plain loop (the compiler turns it
/// into vector compares and packs), then each 8 bytes to 8 bits by one multiply. Building
/// the bits directly with shifts compiled to shuffles that cost twice as much.
#[inline(always)]
fn change_mask<T: Copy + PartialEq>(line: &[T], same: impl Fn(T, T) -> bool, bits: &mut Vec<u64>) {
    // Byte k of `x` (0 or 1) to bit 56 + k: the partial products never overlap.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    words(line, bits, |ca: &[T; W], cb: &[T; W]| {
        let mut flag = [0u8; W];
        for k in 0..W {
            flag[k] = !same(ca[k], cb[k]) as u8;
        }
        let mut w = 0u64;
        for (q, c) in flag.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            w |= (x.wrapping_mul(GATHER) >> 56) << (8 * q);
        }
        w
    });
}

/// Neighbour pairs per word of change bits.
const W: usize = 64;

/// Fills `bits` as [`change_mask`] does, from `word`: the change bits of 64 pairs.
#[inline(always)]
fn words<T: Copy>(line: &[T], bits: &mut Vec<u64>, word: impl Fn(&[T; W], &[T; W]) -> u64) {
    let n = line.len().saturating_sub(1);
    bits.clear();
    bits.resize(n.div_ceil(W), 0);
    let (a, b) = (&line[..n], &line[1..]);
    let full = n / W;
    for (bw, (ca, cb)) in bits
        .iter_mut()
        .zip(a.chunks_exact(W).zip(b.chunks_exact(W)))
    {
        *bw = word(ca.try_into().expect("W"), cb.try_into().expect("W"));
    }
    // The tail (most of a row when rows are not a multiple of 64 long) through the same
    // vector code: the last 64 pairs of the row, shifted past the ones already done; in a
    // row shorter than that, padded with pairs of equal values, which never start a run.
    let rest = n - full * W;
    if rest > 0 {
        bits[full] = if n >= W {
            let s = n - W;
            let (la, lb): (&[T; W], &[T; W]) =
                (a[s..].try_into().expect("W"), b[s..].try_into().expect("W"));
            word(la, lb) >> (W - rest)
        } else {
            let (mut ta, mut tb) = ([line[0]; W], [line[0]; W]);
            ta[..rest].copy_from_slice(&a[full * W..]);
            tb[..rest].copy_from_slice(&b[full * W..]);
            word(&ta, &tb)
        };
    }
}

/// Calls `f(x0, x1)` for every maximal run `x0..x1` of `line` (background runs included),
/// left to right, where `same(a, b)` says whether two neighbours belong to one run. `bits`
/// is scratch space.
#[inline(always)]
pub(crate) fn for_each_run<T: Copy + PartialEq>(
    line: &[T],
    same: impl Fn(T, T) -> bool,
    bits: &mut Vec<u64>,
    f: impl FnMut(usize, usize),
) {
    if line.is_empty() {
        return;
    }
    change_mask(line, same, bits);
    walk(bits, line.len(), f);
}

/// [`for_each_run`] for runs of equal values. Rows of 2- and 4-byte values are compared
/// with SSE2 (every x86-64 CPU has it) as raw lanes whose compare masks are the bits
/// themselves: the generic path's byte flags and packing cost half the labelling's scan.
#[inline(always)]
pub(crate) fn for_each_run_eq<T: BitEq>(
    line: &[T],
    bits: &mut Vec<u64>,
    f: impl FnMut(usize, usize),
) {
    if line.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::mem::{align_of, size_of};
        // SAFETY (both casts): same size and alignment, and `BitEq` makes `==` on `T` the
        // equality of the lanes' bits.
        if size_of::<T>() == 4 && align_of::<T>() == align_of::<u32>() {
            let lanes =
                unsafe { std::slice::from_raw_parts(line.as_ptr() as *const u32, line.len()) };
            words(lanes, bits, sse2::word32);
            return walk(bits, line.len(), f);
        }
        if size_of::<T>() == 2 && align_of::<T>() == align_of::<u16>() {
            let lanes =
                unsafe { std::slice::from_raw_parts(line.as_ptr() as *const u16, line.len()) };
            words(lanes, bits, sse2::word16);
            return walk(bits, line.len(), f);
        }
    }
    change_mask(line, |a, b| a == b, bits);
    walk(bits, line.len(), f);
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Change bits of 64 pairs of 4-byte lanes: four lanes a compare, whose sign bits
    /// (`movmskps`) are the four bits.
    #[inline(always)]
    pub(super) fn word32(a: &[u32; 64], b: &[u32; 64]) -> u64 {
        let mut w = 0u64;
        for q in 0..16 {
            // SAFETY: SSE2 is part of x86-64; the loads read lanes 4q..4q+4 of 64.
            let m = unsafe {
                let va = _mm_loadu_si128(a.as_ptr().add(4 * q) as *const __m128i);
                let vb = _mm_loadu_si128(b.as_ptr().add(4 * q) as *const __m128i);
                _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(va, vb)))
            };
            w |= ((!m & 0xf) as u64) << (4 * q);
        }
        w
    }

    /// Change bits of 64 pairs of 2-byte lanes: two compares of eight lanes packed to
    /// sixteen bytes, whose sign bits (`pmovmskb`) are sixteen bits.
    #[inline(always)]
    pub(super) fn word16(a: &[u16; 64], b: &[u16; 64]) -> u64 {
        let mut w = 0u64;
        for q in 0..4 {
            // SAFETY: SSE2 is part of x86-64; the loads read lanes 16q..16q+16 of 64.
            let m = unsafe {
                let pa = a.as_ptr().add(16 * q) as *const __m128i;
                let pb = b.as_ptr().add(16 * q) as *const __m128i;
                let e0 = _mm_cmpeq_epi16(_mm_loadu_si128(pa), _mm_loadu_si128(pb));
                let e1 = _mm_cmpeq_epi16(_mm_loadu_si128(pa.add(1)), _mm_loadu_si128(pb.add(1)));
                _mm_movemask_epi8(_mm_packs_epi16(e0, e1))
            };
            w |= ((!m & 0xffff) as u64) << (16 * q);
        }
        w
    }
}

/// Calls `f(x0, x1)` for every run of a row of `len` values whose change bits are `bits`.
#[inline(always)]
fn walk(bits: &[u64], len: usize, mut f: impl FnMut(usize, usize)) {
    let mut x0 = 0;
    for (w, &word) in bits.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            let x = w * 64 + m.trailing_zeros() as usize + 1;
            f(x0, x);
            x0 = x;
            m &= m - 1;
        }
    }
    f(x0, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_rows() {
        for len in [0usize, 1, 2, 63, 64, 65, 127, 128, 129, 250] {
            let line: Vec<u8> = (0..len).map(|x| ((x * 7) / 5 % 3) as u8).collect();
            let mut bits = Vec::new();
            let mut got = Vec::new();
            for_each_run(&line, |a, b| a == b, &mut bits, |a, b| got.push((a, b)));
            let mut expect = Vec::new();
            let mut x0 = 0;
            for x in 1..=len {
                if x == len || line[x] != line[x0] {
                    expect.push((x0, x));
                    x0 = x;
                }
            }
            assert_eq!(got, expect, "len {len}");
        }
    }

    /// The runs of `line` by a plain loop.
    fn runs_of<T: PartialEq>(line: &[T]) -> Vec<(usize, usize)> {
        let mut expect = Vec::new();
        let mut x0 = 0;
        for x in 1..=line.len() {
            if x == line.len() || line[x] != line[x0] {
                expect.push((x0, x));
                x0 = x;
            }
        }
        expect
    }

    fn check_eq<T: BitEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
        for len in [
            0usize, 1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 250, 300,
        ] {
            // Runs of varying length, values whose high bits differ too.
            let line: Vec<T> = (0..len).map(|x| make((x * 7) / 5 % 5)).collect();
            let mut bits = Vec::new();
            let mut got = Vec::new();
            for_each_run_eq(&line, &mut bits, |a, b| got.push((a, b)));
            assert_eq!(got, runs_of(&line), "len {len}: {line:?}");
        }
    }

    #[test]
    fn runs_of_rows_by_lanes() {
        check_eq(|k| [0u16, 1, 0x8000, 0xffff, 0x0100][k]);
        check_eq(|k| [0i16, -1, i16::MIN, 1, 0x0100][k]);
        check_eq(|k| [0u32, 1, 0x8000_0000, u32::MAX, 0x0001_0000][k]);
        check_eq(|k| [0i32, -1, i32::MIN, 7, 0x0100_0000][k]);
        check_eq(|k| [0u8, 1, 0x80, 0xff, 2][k]);
        check_eq(|k| [0u64, 1, 1 << 63, u64::MAX, 1 << 32][k]);
        check_eq(|k| k % 2 == 1);
    }
}
