//! Runs of one value along a row, found through bit masks of where the value changes: the
//! compares vectorise, and walking the runs costs one data-dependent branch per 64 voxels
//! instead of one mispredicted loop exit per run.

/// Writes to `bits` (bit `p % 64` of word `p / 64`) whether `line[p + 1]` starts a new run,
/// for `p` in `0..line.len() - 1`. `same(a, b)`: whether two neighbours belong to one run;
/// two `zero`s always do, so blocks of background (most of a sparse mask) are skipped after
/// one cheap test.
#[inline(always)]
fn change_mask<T: Copy + PartialEq>(
    line: &[T],
    zero: T,
    same: impl Fn(T, T) -> bool,
    bits: &mut Vec<u64>,
) {
    const K: usize = 16;
    let n = line.len().saturating_sub(1);
    bits.clear();
    bits.resize(n.div_ceil(64), 0);
    let (a, b) = (&line[..n], &line[1..]);
    for (c, (ca, cb)) in a.chunks_exact(K).zip(b.chunks_exact(K)).enumerate() {
        let ca: &[T; K] = ca.try_into().expect("K elements");
        let cb: &[T; K] = cb.try_into().expect("K elements");
        let mut nz = 0u32;
        for k in 0..K {
            nz |= (ca[k] != zero) as u32 | (cb[k] != zero) as u32;
        }
        if nz == 0 {
            continue;
        }
        let mut m = 0u32;
        for k in 0..K {
            m |= (!same(ca[k], cb[k]) as u32) << k;
        }
        bits[c / 4] |= (m as u64) << (16 * (c % 4));
    }
    for p in n / K * K..n {
        bits[p / 64] |= (!same(a[p], b[p]) as u64) << (p % 64);
    }
}

/// Calls `f(x0, x1)` for every maximal run `x0..x1` of `line` (background runs included),
/// left to right. `same(zero, zero)` must hold. `bits` is scratch space.
#[inline(always)]
pub(crate) fn for_each_run<T: Copy + PartialEq>(
    line: &[T],
    zero: T,
    same: impl Fn(T, T) -> bool,
    bits: &mut Vec<u64>,
    mut f: impl FnMut(usize, usize),
) {
    if line.is_empty() {
        return;
    }
    change_mask(line, zero, same, bits);
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
