//! Connected components of 2D (4/8) and 3D (6/18/26) label images.
//!
//! Run-based two-pass union-find: each row is cut into maximal runs of one nonzero value,
//! runs are linked to touching runs of the same value in the already-scanned neighbour rows,
//! and the final ids are painted run by run. Label volumes have long runs, so the union-find
//! works on a few runs per row instead of every voxel.
//!
//! Multi-label: distinct values never merge; one value in two pieces gives two components.
//! Binary mode treats every nonzero value as one class. Components are numbered 1..N in
//! raster order of their first voxel, as `skimage.measure.label` and cc3d's multi-label path
//! do (cc3d's 2D bool path does not always; tests compare partitions there): run indices
//! follow raster order and every union keeps the smaller index as root.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

use crate::rowruns::{for_each_run, for_each_run_eq, BitEq};
use crate::{Error, Result};

/// The element types a component labelling can read: any integer label, or `bool`.
pub trait Pixel: BitEq + Default + Send + Sync {}
impl<T: BitEq + Default + Send + Sync> Pixel for T {}

/// The allowed connectivities for a rank, default first.
pub fn allowed_connectivity(ndim: usize) -> &'static [u32] {
    match ndim {
        2 => &[8, 4],
        3 => &[26, 18, 6],
        _ => &[],
    }
}

/// A neighbour row already scanned: row offset (in rows, relative to the current row,
/// as (dz, dy)) and whether runs touching diagonally along x connect (`1`) or not (`0`).
type Neighbour = (isize, isize, u32);

fn neighbours(ndim: usize, connectivity: u32) -> &'static [Neighbour] {
    match (ndim, connectivity) {
        (2, 4) => &[(0, -1, 0)],
        (2, 8) => &[(0, -1, 1)],
        (3, 6) => &[(0, -1, 0), (-1, 0, 0)],
        (3, 18) => &[(0, -1, 1), (-1, -1, 0), (-1, 0, 1), (-1, 1, 0)],
        (3, 26) => &[(0, -1, 1), (-1, -1, 1), (-1, 0, 1), (-1, 1, 1)],
        _ => unreachable!("connectivity checked by the caller"),
    }
}

struct Runs<T> {
    /// `[x0, x1)` per run, rows concatenated in raster order.
    span: Vec<(u32, u32)>,
    /// The run's value; in binary mode the same (zero) for every run, so that the linker
    /// compares values in both modes.
    value: Vec<T>,
    /// `row_off[r]..row_off[r + 1]` are the runs of row `r`.
    row_off: Vec<usize>,
}

fn scan_rows<T: Pixel>(data: &[T], width: usize, binary: bool) -> Runs<T> {
    let zero = T::default();
    // Room for a run per 16 voxels up front: the pages are only touched when used, and
    // growing by copies would cost more than the scan on dense labels.
    let guess = data.len() / 16 + 1;
    let mut runs = Runs {
        span: Vec::with_capacity(guess),
        value: Vec::with_capacity(guess),
        row_off: Vec::with_capacity(data.len() / width + 1),
    };
    runs.row_off.push(0);
    let mut bits = Vec::new();
    for line in data.chunks_exact(width) {
        let (span, value) = (&mut runs.span, &mut runs.value);
        let push = |x0: usize, x1: usize| {
            let v = line[x0];
            if v != zero {
                span.push((x0 as u32, x1 as u32));
                value.push(if binary { zero } else { v });
            }
        };
        if binary {
            let same = |a: T, b: T| (a == zero) == (b == zero);
            for_each_run(line, same, &mut bits, push);
        } else {
            for_each_run_eq(line, &mut bits, push);
        }
        runs.row_off.push(runs.span.len());
    }
    runs
}

fn concat<T: Pixel>(parts: Vec<Runs<T>>) -> Runs<T> {
    let mut parts = parts.into_iter();
    let mut all = parts.next().expect("at least one block");
    for p in parts {
        let base = all.span.len();
        all.row_off.extend(p.row_off[1..].iter().map(|&o| o + base));
        all.span.extend_from_slice(&p.span);
        all.value.extend_from_slice(&p.value);
    }
    all
}

/// Links runs to touching runs of the same value (any run in binary mode: see `Runs`) in
/// already-scanned neighbour rows. Every link points the larger root at the smaller, so a
/// component's root is its first run in raster order.
struct Linker<'a, T> {
    runs: &'a Runs<T>,
    height: usize,
    nbrs: &'static [Neighbour],
    /// 26-connectivity: a run covered by one same-valued run of an earlier row inherits
    /// that run's links (see `rows`).
    cover: bool,
    /// 18-connectivity: the same for a run covered by one of `(z-1, y)` (see `rows_n`).
    cover18: bool,
    /// Row length, for the covering tests at the ends of a row.
    width: u32,
}

/// The shortcuts of [`Linker::rows_n`]: none, 26-connectivity's, 18-connectivity's.
const NO_SHORTCUT: u8 = 0;
const COVER26: u8 = 1;
const COVER18: u8 = 2;

/// Points the larger of `root` and the root of `j` at the smaller.
#[inline(always)]
fn join(parent: &mut [u32], base: usize, root: &mut u32, j: usize) {
    let rk = find(parent, base, j as u32);
    if rk < *root {
        parent[*root as usize - base] = rk;
        *root = rk;
    } else if rk > *root {
        parent[rk as usize - base] = *root;
    }
}

impl<T: Pixel> Linker<'_, T> {
    /// Links the runs of `rows` to neighbour rows inside `within`; `parent` holds the
    /// runs from index `base` on (a block's own slice, or all runs with `base == 0`).
    ///
    /// With 26-connectivity most links are redundant on dense labels: if the run `k` of
    /// the same value at `(z-1, y)` spans the whole of run `i`, every run of the rows
    /// `(z-1, y±1)` and `(z, y-1)` that touches `i` also touches `k` and was linked to it
    /// when its own row (or `k`'s) was scanned, so linking `i` to `k` alone is enough. If
    /// instead the same-valued run at `(z, y-1)` spans `i`, the runs of `(z-1, y-1)` and
    /// `(z-1, y)` touching `i` touch it too and only `(z-1, y+1)` is left. This is the
    /// run-based form of the decision tree of voxel-based labelling.
    fn rows(
        &self,
        parent: &mut [u32],
        base: usize,
        rows: std::ops::Range<usize>,
        within: std::ops::Range<usize>,
    ) {
        // The slot count as a constant, so that the loop over slots unrolls: its exit,
        // taken after 1 or 4 slots depending on the shortcut, was a frequent mispredict.
        // So are the shortcut and whether the runs are fresh: each variant is compiled on
        // its own, with the registers of the one in use only.
        if within.end > rows.start {
            self.rows_m::<true>(parent, base, rows, within)
        } else {
            self.rows_m::<false>(parent, base, rows, within)
        }
    }

    fn rows_m<const FRESH: bool>(
        &self,
        parent: &mut [u32],
        base: usize,
        rows: std::ops::Range<usize>,
        within: std::ops::Range<usize>,
    ) {
        match (self.nbrs.len(), self.cover, self.cover18) {
            (1, ..) => self.rows_n::<1, NO_SHORTCUT, FRESH>(parent, base, rows, within),
            (2, ..) => self.rows_n::<2, NO_SHORTCUT, FRESH>(parent, base, rows, within),
            (4, true, _) => self.rows_n::<4, COVER26, FRESH>(parent, base, rows, within),
            (4, _, true) => self.rows_n::<4, COVER18, FRESH>(parent, base, rows, within),
            // Four neighbour rows only come with 18- or 26-connectivity (`neighbours`).
            _ => unreachable!("the neighbour rows of `neighbours`"),
        }
    }

    /// [`Linker::rows`] for `N` neighbour rows, shortcut `MODE`, and runs not linked before
    /// (`FRESH`: not the border rows of a block, so each is its own root).
    fn rows_n<const N: usize, const MODE: u8, const FRESH: bool>(
        &self,
        parent: &mut [u32],
        base: usize,
        rows: std::ops::Range<usize>,
        within: std::ops::Range<usize>,
    ) {
        let runs = self.runs;
        let height = self.height as isize;
        // Per neighbour slot (index into `nbrs`): first run, end run, x widening; and the
        // first run that may still reach the current run.
        let mut nrows = [(0usize, 0usize, 0u32); N];
        let mut cursor = [0usize; N];
        for row in rows {
            let (a0, a1) = (runs.row_off[row], runs.row_off[row + 1]);
            if a0 == a1 {
                continue;
            }
            let (z, y) = ((row / self.height) as isize, (row % self.height) as isize);
            let mut any = false;
            for (k, &(dz, dy, e)) in self.nbrs.iter().enumerate() {
                nrows[k] = (0, 0, e);
                let (nz, ny) = (z + dz, y + dy);
                if nz < 0 || ny < 0 || ny >= height {
                    continue;
                }
                let nrow = (nz * height + ny) as usize;
                if !within.contains(&nrow) {
                    continue;
                }
                let (b0, b1) = (runs.row_off[nrow], runs.row_off[nrow + 1]);
                nrows[k] = (b0, b1, e);
                cursor[k] = b0;
                any |= b0 < b1;
            }
            if !any {
                if FRESH {
                    for i in a0..a1 {
                        parent[i - base] = i as u32;
                    }
                }
                continue;
            }
            for i in a0..a1 {
                let (x0, x1) = runs.span[i];
                let v = runs.value[i];
                let mut root = if FRESH {
                    parent[i - base] = i as u32;
                    i as u32
                } else {
                    find(parent, base, i as u32)
                };
                if N == 4 && MODE == COVER26 {
                    // Slots of 26-connectivity: 0 = (z, y-1), 2 = (z-1, y), 3 = (z-1, y+1).
                    if let Some(k) = self.covering(&nrows[2], &mut cursor[2], x0, x1, v) {
                        join(parent, base, &mut root, k);
                        continue;
                    }
                    if let Some(k) = self.covering(&nrows[0], &mut cursor[0], x0, x1, v) {
                        join(parent, base, &mut root, k);
                        self.scan(parent, base, &mut root, nrows[3], &mut cursor[3], i);
                        continue;
                    }
                }
                if N == 4 && MODE == COVER18 {
                    // Slots of 18-connectivity: 0 = (z, y-1) along x and diagonally,
                    // 1 = (z-1, y-1) straight, 2 = (z-1, y) along x and diagonally,
                    // 3 = (z-1, y+1) straight. If the same-valued run `k` at (z-1, y)
                    // spans `i`, a run of (z-1, y±1) touching `i` shares a column with `i`
                    // and so with `k`, and touches `k` in their plane: only (z, y-1) is
                    // left. Its runs touch `i` over `x0-1..x1+1`; they touch `k` only by
                    // sharing a column, which is certain when `k` spans that wider range
                    // too (clipped to the row), and then `k` alone is enough.
                    if let Some(k) = self.covering(&nrows[2], &mut cursor[2], x0, x1, v) {
                        join(parent, base, &mut root, k);
                        let (k0, k1) = runs.span[k];
                        if (k0 >= x0 && x0 > 0) || (k1 <= x1 && x1 < self.width) {
                            self.scan(parent, base, &mut root, nrows[0], &mut cursor[0], i);
                        }
                        continue;
                    }
                }
                for nb in 0..N {
                    self.scan(parent, base, &mut root, nrows[nb], &mut cursor[nb], i);
                }
            }
        }
    }

    /// Links run `i` (whose root is `root`) to the runs of one neighbour row that touch it.
    #[inline(always)]
    fn scan(
        &self,
        parent: &mut [u32],
        base: usize,
        root: &mut u32,
        (_, b1, e): (usize, usize, u32),
        cursor: &mut usize,
        i: usize,
    ) {
        let runs = self.runs;
        let (x0, x1) = runs.span[i];
        let v = runs.value[i];
        // First neighbour run that may reach x0 (ends, widened by e, after x0).
        let mut j = *cursor;
        while j < b1 && runs.span[j].1 + e <= x0 {
            j += 1;
        }
        *cursor = j;
        while j < b1 && runs.span[j].0 < x1 + e {
            if runs.value[j] == v {
                join(parent, base, root, j);
            }
            j += 1;
        }
    }

    /// The run of neighbour row `nrow` (widening 1) that has value `v` and spans `x0..x1`,
    /// if there is one; moves `cursor` up to `x0`.
    #[inline(always)]
    fn covering(
        &self,
        &(_, b1, _): &(usize, usize, u32),
        cursor: &mut usize,
        x0: u32,
        x1: u32,
        v: T,
    ) -> Option<usize> {
        let runs = self.runs;
        let mut j = *cursor;
        while j < b1 && runs.span[j].1 < x0 {
            j += 1;
        }
        *cursor = j;
        // `j` may end exactly at x0 (a diagonal touch); the run containing x0 is next.
        if j < b1 && runs.span[j].1 == x0 {
            j += 1;
        }
        (j < b1 && runs.span[j].0 <= x0 && runs.span[j].1 >= x1 && runs.value[j] == v).then_some(j)
    }
}

/// Sets `buf[x0..x1]` to `v` in 32- and 16-wide stores that may run up to 31 elements past
/// `x1` (never past the end of `buf`): runs are short, so neither a `memset` call nor a
/// scalar tail per run pays, and the caller overwrites what lies past `x1` afterwards.
#[inline(always)]
fn set(buf: &mut [u32], mut x: usize, x1: usize, v: u32) {
    // The first 32 unconditionally: most runs of dense labels are shorter, and the exit of
    // an 8-wide loop after a varying count of steps was mispredicted about once per run.
    if x < x1 {
        if let Some(c) = buf.get_mut(x..x + 32) {
            c.copy_from_slice(&[v; 32]);
            x += 32;
        }
    }
    while x < x1 {
        match buf.get_mut(x..x + 16) {
            Some(c) => c.copy_from_slice(&[v; 16]),
            None => {
                buf[x..x1].fill(v);
                return;
            }
        }
        x += 16;
    }
}

/// Root of run `i` (path halving). `parent` holds runs `base..`; ids are global.
#[inline]
fn find(parent: &mut [u32], base: usize, mut i: u32) -> u32 {
    loop {
        let p = parent[i as usize - base];
        if p == i {
            return i;
        }
        let gp = parent[p as usize - base];
        // Most runs point at their root already: no store then.
        if gp == p {
            return p;
        }
        parent[i as usize - base] = gp;
        i = p;
    }
}

/// Labels the connected components of a 2D or 3D image.
///
/// Returns the `uint32` component image and the number of components. `connectivity`
/// defaults to 8 (2D) or 26 (3D).
pub fn connected_components<T: Pixel>(
    labels: ArrayViewD<'_, T>,
    connectivity: Option<u32>,
    binary: bool,
) -> Result<(ArrayD<u32>, u32)> {
    let mut out = ArrayD::zeros(labels.raw_dim());
    let n = connected_components_into(
        labels,
        out.as_slice_mut().expect("fresh array is contiguous"),
        connectivity,
        binary,
    )?;
    Ok((out, n))
}

/// [`connected_components`] writing into `out` (C order, as many elements as `labels`),
/// which is overwritten entirely. Lets the caller own the allocation: a fresh buffer's page
/// faults can cost more than the labelling itself.
pub fn connected_components_into<T: Pixel>(
    labels: ArrayViewD<'_, T>,
    out: &mut [u32],
    connectivity: Option<u32>,
    binary: bool,
) -> Result<u32> {
    let ndim = labels.ndim();
    let allowed = allowed_connectivity(ndim);
    if allowed.is_empty() {
        return Err(Error::shape(
            "labels",
            format!("expected a 2D (y, x) or 3D (z, y, x) array, got {ndim} dimensions"),
        ));
    }
    let conn = connectivity.unwrap_or(allowed[0]);
    if !allowed.contains(&conn) {
        return Err(Error::invalid(
            "connectivity",
            format!("must be one of {allowed:?} for a {ndim}D array, got {conn}"),
        ));
    }
    let shape = labels.shape().to_vec();
    let labels = labels.as_standard_layout();
    let data = labels.as_slice().expect("standard layout is contiguous");
    let width = shape[ndim - 1];
    if out.len() != data.len() {
        return Err(Error::shape(
            "out",
            format!("expected {} elements, got {}", data.len(), out.len()),
        ));
    }
    if data.is_empty() {
        return Ok(0);
    }
    if width > u32::MAX as usize {
        return Err(Error::shape(
            "labels",
            "rows longer than 2**32 - 1 are not supported",
        ));
    }
    let height = shape[ndim - 2] as isize;

    let rows = data.len() / width;
    // Independent blocks of whole slices (3D) or rows (2D), scanned and linked in parallel;
    // the links across block borders are added afterwards.
    let unit = if ndim == 3 { height as usize } else { 1 };
    let units = rows / unit;
    let nblocks = if data.len() < (1 << 20) {
        1
    } else {
        rayon::current_num_threads().min(units).max(1)
    };
    let bounds: Vec<usize> = (0..=nblocks).map(|b| b * units / nblocks * unit).collect();
    let parts: Vec<Runs<T>> = bounds
        .par_windows(2)
        .map(|w| scan_rows(&data[w[0] * width..w[1] * width], width, binary))
        .collect();
    let runs = concat(parts);
    let n = runs.span.len();
    if n >= u32::MAX as usize {
        return Err(Error::overflow(
            "labels",
            "more than 2**32 - 2 runs; the image is too large to label with uint32 ids",
        ));
    }
    // Zeroed pages straight from the allocator: the linker's first pass sets every run's
    // own entry before anything reads it, so an initialising pass would only cost.
    let mut parent: Vec<u32> = vec![0; n];
    let nbrs = neighbours(ndim, conn);
    let link = Linker {
        runs: &runs,
        height: height as usize,
        nbrs,
        cover: ndim == 3 && conn == 26,
        cover18: ndim == 3 && conn == 18,
        width: width as u32,
    };
    {
        let mut slices = Vec::with_capacity(nblocks);
        let mut rest = &mut parent[..];
        for w in bounds.windows(2) {
            let (a, b) = (runs.row_off[w[0]], runs.row_off[w[1]]);
            let (head, tail) = rest.split_at_mut(b - a);
            slices.push((w[0], w[1], a, head));
            rest = tail;
        }
        slices.into_par_iter().for_each(|(r0, r1, base, par)| {
            link.rows(par, base, r0..r1, r0..usize::MAX);
        });
    }
    for w in bounds.windows(2).skip(1) {
        link.rows(&mut parent, 0, w[0]..(w[0] + unit).min(w[1]), 0..w[0]);
    }

    // Roots are the smallest run index of each component, met first in raster order. The
    // ids replace the parents in place: every parent is an earlier run, already resolved.
    let mut next: u32 = 0;
    for i in 0..n {
        let p = parent[i] as usize;
        parent[i] = if p == i {
            if next == u32::MAX {
                return Err(Error::overflow(
                    "labels",
                    "more than 2**32 - 1 components do not fit uint32 ids",
                ));
            }
            next += 1;
            next
        } else {
            parent[p]
        };
    }
    let id = parent;

    // Whole rows per task, painted in order: a row's stores may run past its end into the
    // next row, which overwrites them.
    let rows_per_task = (1usize << 14).div_ceil(width);
    out.par_chunks_mut(width * rows_per_task)
        .enumerate()
        .for_each(|(t, buf)| {
            for (r, off) in (0..buf.len()).step_by(width).enumerate() {
                let row = t * rows_per_task + r;
                let (r0, r1) = (runs.row_off[row], runs.row_off[row + 1]);
                let mut x = off;
                for (&(x0, x1), &v) in runs.span[r0..r1].iter().zip(&id[r0..r1]) {
                    let (x0, x1) = (off + x0 as usize, off + x1 as usize);
                    set(buf, x, x0, 0);
                    set(buf, x0, x1, v);
                    x = x1;
                }
                set(buf, x, off + width, 0);
            }
        });
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    fn cc2(a: &Array2<u8>, c: u32) -> (Vec<u32>, u32) {
        let (o, n) = connected_components(a.view().into_dyn(), Some(c), false).unwrap();
        (o.into_raw_vec_and_offset().0, n)
    }

    #[test]
    fn diagonal_touch_2d() {
        let a = Array2::from_shape_vec((2, 2), vec![1u8, 0, 0, 1]).unwrap();
        assert_eq!(cc2(&a, 4), (vec![1, 0, 0, 2], 2));
        assert_eq!(cc2(&a, 8), (vec![1, 0, 0, 1], 1));
    }

    #[test]
    fn multi_label_keeps_ids_apart() {
        let a = Array2::from_shape_vec((2, 3), vec![1u8, 2, 1, 1, 2, 0]).unwrap();
        assert_eq!(cc2(&a, 4), (vec![1, 2, 3, 1, 2, 0], 3));
        assert_eq!(cc2(&a, 8), (vec![1, 2, 3, 1, 2, 0], 3));
        let (o, n) = connected_components(a.view().into_dyn(), Some(4), true).unwrap();
        assert_eq!(
            (o.into_raw_vec_and_offset().0, n),
            (vec![1, 1, 1, 1, 1, 0], 1)
        );
    }

    #[test]
    fn connectivity_3d() {
        // (0,0,0) and (1,1,1): corner touch; (0,0,0) and (1,1,0): edge touch.
        let mut a = Array3::<u8>::zeros((2, 2, 2));
        a[[0, 0, 0]] = 1;
        a[[1, 1, 1]] = 1;
        let n = |a: &Array3<u8>, c| {
            connected_components(a.view().into_dyn(), Some(c), false)
                .unwrap()
                .1
        };
        assert_eq!((n(&a, 6), n(&a, 18), n(&a, 26)), (2, 2, 1));
        a[[1, 1, 1]] = 0;
        a[[1, 1, 0]] = 1;
        assert_eq!((n(&a, 6), n(&a, 18), n(&a, 26)), (2, 1, 1));
    }

    #[test]
    fn bad_connectivity() {
        let a = Array2::<u8>::zeros((2, 2));
        assert!(matches!(
            connected_components(a.view().into_dyn(), Some(6), false),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
