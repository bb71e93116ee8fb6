//! Runs of one value along a row, found through bit masks of where the value changes: the
//! compares vectorise, and walking the runs costs one data-dependent branch per 64 voxels
//! instead of one mispredicted loop exit per run.

/// Writes to `bits` (bit `p % 64` of word `p / 64`) whether `line[p + 1]` starts a new run,
/// for `p` in `0..line.len() - 1`. `same(a, b)`: whether two neighbours belong to one run.
///
/// 64 neighbour pairs at a time: a byte per pair from a plain loop (the compiler turns it
/// into vector compares and packs), then each 8 bytes to 8 bits by one multiply. Building
/// the bits directly with shifts compiled to shuffles that cost twice as much.
#[inline(always)]
fn change_mask<T: Copy + PartialEq>(line: &[T], same: impl Fn(T, T) -> bool, bits: &mut Vec<u64>) {
    const W: usize = 64;
    // Byte k of `x` (0 or 1) to bit 56 + k: the partial products never overlap.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let n = line.len().saturating_sub(1);
    bits.clear();
    bits.resize(n.div_ceil(W), 0);
    let (a, b) = (&line[..n], &line[1..]);
    let word = |ca: &[T; W], cb: &[T; W]| {
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
    };
    let full = n / W;
    for (bw, (ca, cb)) in bits
        .iter_mut()
        .zip(a.chunks_exact(W).zip(b.chunks_exact(W)))
    {
        *bw = word(ca.try_into().expect("W"), cb.try_into().expect("W"));
    }
    // The tail (most of a row when rows are not a multiple of 64 long) through the same
    // vector code: padded with pairs of equal values, which never start a run.
    let rest = n - full * W;
    if rest > 0 {
        let (mut ta, mut tb) = ([line[0]; W], [line[0]; W]);
        ta[..rest].copy_from_slice(&a[full * W..]);
        tb[..rest].copy_from_slice(&b[full * W..]);
        bits[full] = word(&ta, &tb);
    }
}

/// Calls `f(x0, x1)` for every maximal run `x0..x1` of `line` (background runs included),
/// left to right. `bits` is scratch space; `_zero` (the background value) is no longer
/// needed since every 64-voxel block is compared in full.
#[inline(always)]
pub(crate) fn for_each_run<T: Copy + PartialEq>(
    line: &[T],
    _zero: T,
    same: impl Fn(T, T) -> bool,
    bits: &mut Vec<u64>,
    mut f: impl FnMut(usize, usize),
) {
    if line.is_empty() {
        return;
    }
    change_mask(line, same, bits);
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
    f(x0, line.len());
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
            for_each_run(&line, 0, |a, b| a == b, &mut bits, |a, b| got.push((a, b)));
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
}
