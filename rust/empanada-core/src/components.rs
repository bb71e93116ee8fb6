//! Connected components of 2D (4/8) and 3D (6/18/26) label images.
//!
//! Run-based two-pass union-find: each row is cut into maximal runs of one nonzero value,
//! runs are linked to touching runs of the same value in the already-scanned neighbour rows,
//! and the final ids are painted run by run. Label volumes have long runs, so the union-find
//! works on a few runs per row instead of every voxel. Dense 3D labels in small slices, with
//! 26-connectivity, find their neighbour runs through per-column maps of recent rows instead
//! of searching.
//!
//! Multi-label: distinct values never merge; one value in two pieces gives two components.
//! Binary mode treats every nonzero value as one class. Components are numbered 1..N in
//! raster order of their first voxel, as `skimage.measure.label` and cc3d's multi-label path
//! do (cc3d's 2D bool path does not always; tests compare partitions there): run indices
//! follow raster order and every union keeps the smaller index as root.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

use crate::lanes::{eq_mask8, LANES};
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
    /// compares values in both modes. Once all rows are scanned, [`LANES`] padding values
    /// follow the runs' (see `same_valued`).
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
        // A row holds at most `width` runs, each written once.
        runs.span.reserve(width);
        runs.value.reserve(width);
        let (span, value) = (
            runs.span.spare_capacity_mut(),
            runs.value.spare_capacity_mut(),
        );
        // Every run is written and only a nonzero one kept: through `Vec::push` the lengths
        // lived on the stack, and a branch on zero mispredicts on sparse labels.
        let mut k = 0;
        let push = |x0: usize, x1: usize| {
            let v = line[x0];
            span[k].write((x0 as u32, x1 as u32));
            value[k].write(if binary { zero } else { v });
            k += (v != zero) as usize;
        };
        if binary {
            let same = |a: T, b: T| (a == zero) == (b == zero);
            for_each_run(line, same, &mut bits, push);
        } else {
            for_each_run_eq(line, &mut bits, push);
        }
        // SAFETY: the `k` slots past each length were written above, within the capacity
        // reserved.
        unsafe {
            runs.span.set_len(runs.span.len() + k);
            runs.value.set_len(runs.value.len() + k);
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
    /// The run lists (see [`Runs`]) as slices of their own: read through a `&Runs`, their
    /// pointers were loaded again after every store to `parent`.
    span: &'a [(u32, u32)],
    value: &'a [T],
    row_off: &'a [usize],
    height: usize,
    nbrs: &'static [Neighbour],
    /// 26-connectivity: a run covered by one same-valued run of an earlier row inherits
    /// that run's links (see `rows`).
    cover: bool,
    /// 18-connectivity: the same for a run covered by one of `(z-1, y)` (see `rows_n`).
    cover18: bool,
    /// Row length, for the covering tests at the ends of a row.
    width: u32,
    /// 26-connectivity through [`Linker::rows_c26_mapped`] (see `use_maps`).
    mapped: bool,
}

/// The shortcuts of [`Linker::rows_n`]: none, 26-connectivity's, 18-connectivity's.
const NO_SHORTCUT: u8 = 0;
const COVER26: u8 = 1;
const COVER18: u8 = 2;

/// Points the larger of `root` and the root of `j` at the smaller.
#[inline(always)]
fn join(parent: &mut [u32], base: usize, root: &mut u32, j: usize) {
    let rk = find(parent, base, j as u32);
    // SAFETY: both roots are runs of `parent`'s block (see `find`).
    unsafe {
        if rk < *root {
            put(parent, *root as usize - base, rk);
            *root = rk;
        } else if rk > *root {
            put(parent, rk as usize - base, *root);
        }
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
            (4, true, _) if FRESH && self.mapped => {
                self.rows_c26_mapped(parent, base, rows, within)
            }
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
        let (span, value, row_off) = (self.span, self.value, self.row_off);
        let height = self.height as isize;
        // Per neighbour slot (index into `nbrs`): first run, end run, x widening; and the
        // first run that may still reach the current run.
        let mut nrows = [(0usize, 0usize, 0u32); N];
        let mut cursor = [0usize; N];
        for row in rows {
            let (a0, a1) = (row_off[row], row_off[row + 1]);
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
                let (b0, b1) = (row_off[nrow], row_off[nrow + 1]);
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
                let ((x0, x1), v) = (span[i], value[i]);
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
                        let (k0, k1) = span[k];
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

    /// [`Linker::rows_n`] for 26-connectivity and fresh runs, with the neighbour rows read
    /// through [`RowMaps`]: the run of a neighbour row holding `x0`, and the runs touching
    /// `i`, are one load each instead of a search. Each row takes two passes: the first
    /// sorts its runs, without branches, into covered by `(z-1, y)`, covered by `(z, y-1)`,
    /// and neither; the second links each class in its own loop, so that which class a run
    /// falls in is never a branch.
    fn rows_c26_mapped(
        &self,
        parent: &mut [u32],
        base: usize,
        rows: std::ops::Range<usize>,
        within: std::ops::Range<usize>,
    ) {
        let (span, value, row_off) = (self.span, self.value, self.row_off);
        let h = self.height;
        let w = self.width as usize;
        let slots = h + 2;
        let mut maps = RowMaps::new(w, slots);
        // Per class, the runs of the current row (and the covering run).
        let mut up: Vec<(u32, u32)> = vec![(0, 0); w];
        let mut side: Vec<(u32, u32)> = vec![(0, 0); w];
        let mut rest: Vec<u32> = vec![0; w];
        let mut other: Vec<u32> = vec![0; w];
        // The maps hold the rows of `rows` met so far, all of them: a neighbour row is held
        // when it lies in the slice (`y`) and at or after `rows.start`. The row's place in
        // its slice and its slot in the ring are kept up by steps, not divisions.
        debug_assert!(within.start == rows.start && within.end >= rows.end);
        let start = rows.start;
        // One row before `start`, so that each row steps onto its own place first.
        let (mut y, mut slot) = ((start + h - 1) % h, (start + slots - 1) % slots);
        for row in rows {
            (y, slot) = (if y + 1 == h { 0 } else { y + 1 }, wrap(slot + 1, slots));
            let (a0, a1) = (row_off[row], row_off[row + 1]);
            maps.build(row, slot, &span[a0..a1], a0);
            if a0 == a1 {
                continue;
            }
            // A neighbour `dz` slices back and `dy` rows on lies `dz h - dy` rows back, which
            // is `ds` slots on in the ring of `h + 2`.
            let left = maps.near(y > 0 && row > start, slot, slots - 1);
            let pm = maps.near(y > 0 && row > start + h, slot, 1);
            let pu = maps.near(row >= start + h, slot, 2);
            let pp = maps.near(y + 1 < h && row + 1 >= start + h, slot, 3);

            // Pass 1: classes, in two steps: covered by `(z-1, y)` or not, then the others
            // covered by `(z, y-1)` or not; about half the runs are covered from below, and
            // testing them against `(z, y-1)` too cost more than a second loop over the
            // rest. Every list gets the run, only its own end moves on; the ends are pointers
            // rather than counts from the lists' starts, which left too few registers for
            // the loop's own values.
            let (mut eu, mut eo) = (up.as_mut_ptr(), other.as_mut_ptr());
            let row_runs = span[a0..a1].iter().zip(&value[a0..a1]);
            for (i, (&(x0, x1), &v)) in (a0..).zip(row_runs) {
                let (ku, cu) = pu.covering(span, value, x0, x1, v);
                // SAFETY: each list holds at most the runs of the row before `i`, and a row
                // of `w` columns (the lists' length) has at most `w` runs.
                unsafe {
                    eu.write((i as u32, ku as u32));
                    eo.write(i as u32);
                    eu = eu.add(cu as usize);
                    eo = eo.add(!cu as usize);
                }
            }
            // SAFETY (here and below): each end lies within its list, at or after its start.
            let (nu, no) = unsafe {
                (
                    eu.offset_from(up.as_ptr()) as usize,
                    eo.offset_from(other.as_ptr()) as usize,
                )
            };
            let (mut es, mut er) = (side.as_mut_ptr(), rest.as_mut_ptr());
            for &i in &other[..no] {
                // SAFETY: `i` is a run; the lists as above.
                unsafe {
                    let ((x0, x1), v) = (at(span, i as usize), at(value, i as usize));
                    let (kl, cl) = left.covering(span, value, x0, x1, v);
                    es.write((i, kl as u32));
                    er.write(i);
                    es = es.add(cl as usize);
                    er = er.add(!cl as usize);
                }
            }
            let (ns, nr) = unsafe {
                (
                    es.offset_from(side.as_ptr()) as usize,
                    er.offset_from(rest.as_ptr()) as usize,
                )
            };
            // Pass 2: links. A covered run is fresh and its cover an earlier run, so it
            // takes the cover's root as its parent. (SAFETY of the unchecked accesses: `i`
            // is a run of this row, in the block's `parent`.)
            for &(i, k) in &up[..nu] {
                let root = find(parent, base, k);
                unsafe { put(parent, i as usize - base, root) };
            }
            for &(i, k) in &side[..ns] {
                let mut root = find(parent, base, k);
                let ((x0, x1), v) = unsafe {
                    put(parent, i as usize - base, root);
                    (at(span, i as usize), at(value, i as usize))
                };
                let r = pp.touching(x0, x1);
                let (mask, long) = same_valued(value, &r, v);
                join_masked(parent, base, &mut root, mask, [r.start]);
                if long {
                    join_rest(value, parent, base, &mut root, [r], v);
                }
            }
            for &i in &rest[..nr] {
                let i = i as usize;
                let mut root = i as u32;
                let ((x0, x1), v) = unsafe {
                    put(parent, i - base, root);
                    (at(span, i), at(value, i))
                };
                let r = [&left, &pm, &pu, &pp].map(|m| m.touching(x0, x1));
                let mut mask = 0;
                let mut long = false;
                for (g, r) in r.iter().enumerate() {
                    let (m, l) = same_valued(value, r, v);
                    mask |= m << (LANES * g);
                    long |= l;
                }
                join_masked(parent, base, &mut root, mask, r.each_ref().map(|r| r.start));
                if long {
                    join_rest(value, parent, base, &mut root, r, v);
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
        let (span, value) = (self.span, self.value);
        // SAFETY: `i` is a run, and `j` stays below `b1`, the end of a row's runs.
        unsafe {
            let ((x0, x1), v) = (at(span, i), at(value, i));
            // First neighbour run that may reach x0 (ends, widened by e, after x0).
            let mut j = *cursor;
            while j < b1 && at(span, j).1 + e <= x0 {
                j += 1;
            }
            *cursor = j;
            while j < b1 && at(span, j).0 < x1 + e {
                if at(value, j) == v {
                    join(parent, base, root, j);
                }
                j += 1;
            }
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
        let (span, value) = (self.span, self.value);
        // SAFETY: every read is of a run `j < b1`, the end of a row's runs.
        unsafe {
            let mut j = *cursor;
            while j < b1 && at(span, j).1 < x0 {
                j += 1;
            }
            *cursor = j;
            // `j` may end exactly at x0 (a diagonal touch); the run containing x0 is next.
            if j < b1 && at(span, j).1 == x0 {
                j += 1;
            }
            let hit = j < b1 && {
                let (k0, k1) = at(span, j);
                k0 <= x0 && k1 >= x1 && at(value, j) == v
            };
            hit.then_some(j)
        }
    }
}

/// The runs among the first [`LANES`] of `cand` with value `v`, as a mask, and whether
/// `cand` holds more than that (rows crowded with runs; [`join_rest`] takes the others).
/// `value` (`runs.value`) is padded with `LANES` values past its runs, so the read is always
/// whole.
#[inline(always)]
fn same_valued<T: Pixel>(value: &[T], cand: &std::ops::Range<usize>, v: T) -> (u32, bool) {
    let len = cand.end.saturating_sub(cand.start);
    let keep = (1u32 << len.min(LANES)) - 1;
    debug_assert!(cand.start + LANES <= value.len());
    // SAFETY: a candidate range starts at a run index or at the run count, and `value`
    // holds `LANES` values past the last run.
    let w = unsafe { &*(value.as_ptr().add(cand.start) as *const [T; LANES]) };
    (eq_mask8(w, v) & keep, len > LANES)
}

/// Joins `root` to run `starts[t / LANES] + t % LANES` for every bit `t` of `mask`: one
/// loop over the same-valued runs of all neighbour rows, so its exit is a single branch.
#[inline(always)]
fn join_masked<const G: usize>(
    parent: &mut [u32],
    base: usize,
    root: &mut u32,
    mut mask: u32,
    starts: [usize; G],
) {
    while mask != 0 {
        let t = mask.trailing_zeros() as usize;
        join(parent, base, root, starts[t / LANES] + t % LANES);
        mask &= mask - 1;
    }
}

/// Joins `root` to the same-valued runs of `cands` past their first [`LANES`].
#[cold]
#[inline(never)]
fn join_rest<T: Pixel, const G: usize>(
    value: &[T],
    parent: &mut [u32],
    base: usize,
    root: &mut u32,
    cands: [std::ops::Range<usize>; G],
    v: T,
) {
    for c in cands {
        let past = c.start + LANES;
        for (j, &u) in (past..).zip(value.get(past..c.end).unwrap_or_default()) {
            if u == v {
                join(parent, base, root, j);
            }
        }
    }
}

/// Where the runs of recent rows lie, per column, in a ring of `slots` rows: for a row
/// whose runs start at run `b`, `m[x] = 2 s - inside`, where `s` counts the row's runs
/// starting at or before `x` and `inside` says whether one of them holds `x`. The run holding
/// `x` is then `b + m[x] / 2` (`b + s - 1`), and the runs meeting columns `a..=c` are
/// `b + m[a] / 2` (`b + s(a) - inside(a)`) up to `b + (m[c] + 1) / 2` (`b + s(c)`): one
/// load and a shift each instead of a search along the row.
struct RowMaps {
    width: usize,
    stride: usize,
    map: Vec<u16>,
    /// The first run of the row each slot holds.
    base: Vec<usize>,
    /// All zeros: the map of a row with no runs.
    empty: Vec<u16>,
}

/// The map of one row; see [`RowMaps`].
struct Map<'a> {
    m: &'a [u16],
    b: usize,
    width: usize,
}

/// Slack past a row's end in [`RowMaps`], for [`fill16`]'s stores.
const MAP_SLACK: usize = 48;

/// The widest rows [`RowMaps`] can encode (`2 s + 1` in a `u16`).
const MAP_MAX_WIDTH: usize = (u16::MAX as usize - 1) / 2;

impl RowMaps {
    fn new(width: usize, slots: usize) -> Self {
        let stride = width + MAP_SLACK;
        RowMaps {
            width,
            stride,
            map: vec![0; slots * stride],
            base: vec![0; slots],
            empty: vec![0; stride],
        }
    }

    /// Maps row `row`, whose runs (in order) start at run `b`, into its slot (`row % slots`,
    /// which the caller keeps up without dividing).
    #[inline(always)]
    fn build(&mut self, row: usize, slot: usize, spans: &[(u32, u32)], b: usize) {
        debug_assert_eq!(slot, row % self.base.len());
        self.base[slot] = b;
        let m = &mut self.map[slot * self.stride..(slot + 1) * self.stride];
        let mut p = 0;
        for (k, &(x0, x1)) in spans.iter().enumerate() {
            let k = k as u16;
            // Dense labels leave no gap between runs: a predictable branch then.
            if p < x0 as usize {
                fill16(m, p, x0 as usize, 2 * k);
            }
            fill16(m, x0 as usize, x1 as usize, 2 * k + 1);
            p = x1 as usize;
        }
        fill16(m, p, self.width, 2 * spans.len() as u16);
    }

    /// The map `ds` slots on from `slot` (`ds < slots`) if `held`, else that of a row with
    /// no runs. A row of no runs that is held has a map of its own, whose run `b` (its
    /// covering candidate, never covering) is a run of a later row.
    #[inline(always)]
    fn near(&self, held: bool, slot: usize, ds: usize) -> Map<'_> {
        let s = wrap(slot + ds, self.base.len());
        if held {
            debug_assert!((s + 1) * self.stride <= self.map.len());
            Map {
                // SAFETY: `s` is a slot (`wrap`), and the map holds `slots * stride` entries.
                m: unsafe {
                    self.map
                        .get_unchecked(s * self.stride..(s + 1) * self.stride)
                },
                b: self.base[s],
                width: self.width,
            }
        } else {
            Map {
                m: &self.empty,
                b: 0,
                width: self.width,
            }
        }
    }
}

/// `s` wrapped into a ring of `n` slots, for `s < 2 n`.
#[inline(always)]
fn wrap(s: usize, n: usize) -> usize {
    if s >= n {
        s - n
    } else {
        s
    }
}

impl Map<'_> {
    /// The run holding `x0` (when none does, the first run after `x0`, or one past the
    /// row's runs: a run to read all the same), and whether it spans `x0..x1` with value `v`.
    #[inline(always)]
    fn covering<T: Pixel>(
        &self,
        span: &[(u32, u32)],
        value: &[T],
        x0: u32,
        x1: u32,
        v: T,
    ) -> (usize, bool) {
        // SAFETY: `x0 < width`, within the map; `k` is at most one past the mapped row's
        // runs (run 0 for a row not held), and the mapped row comes before the caller's
        // run, so `k` is at most that run.
        unsafe {
            let m = at(self.m, x0 as usize);
            let k = self.b + (m >> 1) as usize;
            let (end, val) = (at(span, k).1, at(value, k));
            (k, (m & 1 == 1) & (end >= x1) & (val == v))
        }
    }

    /// The runs that touch `x0..x1` along x or diagonally.
    #[inline(always)]
    fn touching(&self, x0: u32, x1: u32) -> std::ops::Range<usize> {
        // SAFETY: both columns are within the row, and so within the map.
        let (ma, mc) = unsafe {
            (
                at(self.m, x0.saturating_sub(1) as usize),
                at(self.m, (x1 as usize).min(self.width - 1)),
            )
        };
        self.b + (ma >> 1) as usize..self.b + ((mc as usize + 1) >> 1)
    }
}

/// Whether [`RowMaps`] pay for slices of `height` rows of `width` whose runs start at
/// `row_off`. A/B against the searching linker, one thread:
/// - a map costs its whole row to build and saves a search per run, so only rows crowded
///   with runs gain: on the neurons, labels dropped to thin them out, 1.05-1.08x at a run
///   per 23 columns of a row with runs, 0.98x at 39, 0.81x at 92; 0.84x on the VNC
///   mitochondria (a run per 650 columns);
/// - the previous slice's maps must stay in L2: the neurons tiled to larger slices gave
///   1.0x at 500² (a 0.55 MB ring) and 1000² (2.1 MB), 0.70x at 2000² (8 MB).
fn use_maps(row_off: &[usize], height: usize, width: usize) -> bool {
    let runs = row_off[row_off.len() - 1];
    let busy = row_off.windows(2).filter(|w| w[1] > w[0]).count();
    let ring = (height + 2) * (width + MAP_SLACK) * std::mem::size_of::<u16>();
    runs > 0
        && width <= MAP_MAX_WIDTH
        && ring <= MAP_RING_BYTES
        && runs * MAP_COLUMNS_PER_RUN >= busy * width
}

/// The most columns per run (over rows with runs) at which [`use_maps`] chooses the maps.
const MAP_COLUMNS_PER_RUN: usize = 32;

/// The largest ring of maps [`use_maps`] allows: half of a 512 KB L2, so that a slice's maps
/// are still there when the next slice reads them (the neurons' 250² slices take 150 KB).
const MAP_RING_BYTES: usize = 256 << 10;

/// Sets `buf[x..x1]` to `v`, storing up to [`MAP_SLACK`] elements past `x1`; a later fill
/// from `x1` on overwrites them.
#[inline(always)]
fn fill16(buf: &mut [u16], mut x: usize, x1: usize, v: u16) {
    buf[x..x + 32].copy_from_slice(&[v; 32]);
    x += 32;
    while x < x1 {
        buf[x..x + 16].copy_from_slice(&[v; 16]);
        x += 16;
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

/// Paints a row of `width` at `p` with `ids` over `spans` and zeros elsewhere, as the
/// checked loop of `connected_components_into` does for the rows near a task's end.
/// Without that loop's bounds checks the painting of the neurons ran a third fewer
/// instructions (36.5 M to 23.5 M a call).
///
/// # Safety
/// `p` must be valid for `width + 32` elements, and the spans must lie within `0..width`.
#[inline(always)]
unsafe fn paint_row(p: *mut u32, width: usize, spans: &[(u32, u32)], ids: &[u32]) {
    let mut x = 0;
    for (&(x0, x1), &v) in spans.iter().zip(ids) {
        let (x0, x1) = (x0 as usize, x1 as usize);
        debug_assert!(x <= x0 && x0 < x1 && x1 <= width);
        if x < x0 {
            fill_raw(p, x, x0, 0);
        }
        fill_raw(p, x0, x1, v);
        x = x1;
    }
    if x < width {
        fill_raw(p, x, width, 0);
    }
}

/// Sets `p[x..x1]` (`x < x1`) to `v` in 16-wide stores from `x` on, the first two without a
/// test (most runs are shorter than 32), up to 31 elements past `x1`.
///
/// # Safety
/// `p` must be valid for `x1 + 31` elements.
#[inline(always)]
unsafe fn fill_raw(p: *mut u32, mut x: usize, x1: usize, v: u32) {
    let q = p.add(x) as *mut [u32; 16];
    q.write_unaligned([v; 16]);
    q.add(1).write_unaligned([v; 16]);
    x += 32;
    while x < x1 {
        (p.add(x) as *mut [u32; 16]).write_unaligned([v; 16]);
        x += 16;
    }
}

/// `s[i]`, unchecked: for the linker's innermost loops, whose indices come from the run
/// lists and [`RowMaps`] by construction. The checks cost a third of the pass that sorts a
/// row's runs (cachegrind); debug builds, which the tests use, still make them.
///
/// # Safety
/// `i < s.len()`.
#[inline(always)]
unsafe fn at<T: Copy>(s: &[T], i: usize) -> T {
    debug_assert!(i < s.len(), "index {i} out of {}", s.len());
    *s.get_unchecked(i)
}

/// `s[i] = v`, unchecked as [`at`].
///
/// # Safety
/// `i < s.len()`.
#[inline(always)]
unsafe fn put<T>(s: &mut [T], i: usize, v: T) {
    debug_assert!(i < s.len(), "index {i} out of {}", s.len());
    *s.get_unchecked_mut(i) = v;
}

/// Root of run `i` (path halving). `parent` holds runs `base..`; ids are global.
#[inline]
fn find(parent: &mut [u32], base: usize, mut i: u32) -> u32 {
    // SAFETY: `i` and every parent are runs of `parent`'s block: links never leave it.
    unsafe {
        loop {
            let p = at(parent, i as usize - base);
            if p == i {
                return i;
            }
            let gp = at(parent, p as usize - base);
            // Most runs point at their root already: no store then.
            if gp == p {
                return p;
            }
            put(parent, i as usize - base, gp);
            i = p;
        }
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
    let mut runs = concat(parts);
    let n = runs.span.len();
    // Room for `eq_mask8`'s whole reads from any run index (see `same_valued`).
    runs.value.extend([T::default(); LANES]);
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
        span: &runs.span,
        value: &runs.value,
        row_off: &runs.row_off,
        height: height as usize,
        nbrs,
        cover: ndim == 3 && conn == 26,
        cover18: ndim == 3 && conn == 18,
        width: width as u32,
        mapped: ndim == 3 && conn == 26 && use_maps(&runs.row_off, height as usize, width),
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
                if off + width + 32 <= buf.len() {
                    // SAFETY: runs lie within their row (`x0 < x1 <= width`), and no store
                    // runs more than 31 elements past the row's end, still inside `buf`.
                    unsafe {
                        paint_row(
                            buf.as_mut_ptr().add(off),
                            width,
                            &runs.span[r0..r1],
                            &id[r0..r1],
                        )
                    };
                    continue;
                }
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

    /// 26-connected multi-label components voxel by voxel (union-find over the 13 earlier
    /// neighbours), numbered in raster order of their first voxel.
    fn oracle26(a: &Array3<u8>) -> (Vec<u32>, u32) {
        let (_, h, w) = a.dim();
        let idx = |z: usize, y: usize, x: usize| (z * h + y) * w + x;
        let mut parent: Vec<usize> = (0..a.len()).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                i = p[i];
            }
            i
        }
        for ((z, y, x), &v) in a.indexed_iter() {
            if v == 0 {
                continue;
            }
            for dz in -1isize..=0 {
                for dy in -1isize..=1 {
                    for dx in -1isize..=1 {
                        if (dz, dy, dx) >= (0, 0, 0) {
                            continue;
                        }
                        let (nz, ny, nx) = (z as isize + dz, y as isize + dy, x as isize + dx);
                        if nz < 0 || ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
                            continue;
                        }
                        let (nz, ny, nx) = (nz as usize, ny as usize, nx as usize);
                        if a[[nz, ny, nx]] == v {
                            let (r1, r2) = (
                                root(&mut parent, idx(z, y, x)),
                                root(&mut parent, idx(nz, ny, nx)),
                            );
                            parent[r1.max(r2)] = r1.min(r2);
                        }
                    }
                }
            }
        }
        let mut id = vec![0u32; a.len()];
        let mut n = 0;
        for (i, &v) in a.iter().enumerate() {
            if v != 0 {
                let r = root(&mut parent, i);
                if r == i {
                    n += 1;
                    id[i] = n;
                } else {
                    id[i] = id[r];
                }
            }
        }
        (id, n)
    }

    /// Labels drawn as short runs of a few values with gaps, a pseudo-random walk; with
    /// `zeros` of 8 runs long stretches of background instead.
    fn runs_volume(shape: (usize, usize, usize), seed: u64, zeros: usize) -> Array3<u8> {
        let mut s = seed;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        let mut a = Array3::<u8>::zeros(shape);
        let mut left = 0;
        let mut v = 0u8;
        for x in a.iter_mut() {
            if left == 0 {
                left = 1 + next() % 6;
                v = [0u8, 1, 1, 2, 2, 3][next() % 6];
                if next() % 8 < zeros {
                    (v, left) = (0, 10 * left);
                }
            }
            *x = v;
            left -= 1;
        }
        a
    }

    #[test]
    fn c26_against_voxel_oracle() {
        // Dense rows of small slices for the mapped linker; for the searching one, sparse
        // rows, rows longer than a map encodes, and slices whose maps overflow the ring.
        let shapes = [
            (5, 6, 7),
            (4, 9, 33),
            (3, 1, 50),
            (3, 4, 300),
            (3, 1, MAP_MAX_WIDTH + 5),
            (2, 3, MAP_MAX_WIDTH - 5),
        ];
        for (h, w) in [(1, MAP_MAX_WIDTH + 5), (3, MAP_MAX_WIDTH - 5), (600, 600)] {
            // One run per row: dense enough, so only the width or the ring rules them out.
            let row_off: Vec<usize> = (0..=2 * h).collect();
            assert!(!use_maps(&row_off, h, w), "{h} x {w}");
            assert!(use_maps(&row_off, h, 31), "{h} x 31");
        }
        let mut paths = [0; 2];
        for (t, &shape) in shapes.iter().enumerate() {
            for (seed, zeros) in (0..12u64).zip([0, 7].into_iter().cycle()) {
                let a = runs_volume(shape, seed * 31 + t as u64, zeros);
                let row_off = scan_rows(a.as_slice().unwrap(), shape.2, false).row_off;
                let mapped = use_maps(&row_off, shape.1, shape.2);
                paths[mapped as usize] += 1;
                let (o, n) = connected_components(a.view().into_dyn(), Some(26), false).unwrap();
                let msg = format!("{shape:?} seed {seed} mapped {mapped}");
                assert_eq!((o.into_raw_vec_and_offset().0, n), oracle26(&a), "{msg}");
            }
        }
        assert!(paths[0] >= 12 && paths[1] >= 12, "{paths:?}");
    }

    #[test]
    fn c26_mapped_rows_without_runs() {
        // Rows and whole slices of background among dense ones: the mapped linker maps them
        // too (their maps hold no runs), so a later row must find no run there, and the
        // rows beyond them must still find theirs.
        for seed in 0..8u64 {
            let mut a = runs_volume((7, 9, 40), seed, 0);
            for z in 0..7 {
                for y in 0..9 {
                    if z == 3 || (y + z + seed as usize).is_multiple_of(4) || (z == 0 && y == 0) {
                        a.slice_mut(ndarray::s![z, y, ..]).fill(0);
                    }
                }
            }
            let row_off = scan_rows(a.as_slice().unwrap(), 40, false).row_off;
            assert!(use_maps(&row_off, 9, 40), "seed {seed}");
            let (o, n) = connected_components(a.view().into_dyn(), Some(26), false).unwrap();
            assert_eq!(
                (o.into_raw_vec_and_offset().0, n),
                oracle26(&a),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn c26_runs_touching_many_runs_of_a_row() {
        // A long run of 1 over a row of single voxels alternating 1, 2, 3: the 1s are only
        // joined through the long run, and most lie past the first `LANES` candidates the
        // mapped linker tests at once. Each neighbour row of the long run in turn, and a
        // long run whose row (z, y-1) covers it, so that only (z-1, y+1) is searched.
        let w = 8 * LANES + 5;
        for (dz, dy) in [(0, -1), (-1, -1), (-1, 0), (-1, 1)] {
            for covered in [false, true] {
                let mut a = Array3::<u8>::zeros((2, 4, w));
                let (z, y) = (1usize, 2usize);
                let (nz, ny) = ((z as isize + dz) as usize, (y as isize + dy) as usize);
                for x in 0..w {
                    a[[nz, ny, x]] = [1, 2, 3][x % 3];
                    a[[z, y, x]] = 1;
                }
                if covered && (nz, ny) != (z, y - 1) {
                    for x in 0..w {
                        a[[z, y - 1, x]] = 1;
                    }
                }
                let row_off = scan_rows(a.as_slice().unwrap(), w, false).row_off;
                assert!(use_maps(&row_off, 4, w));
                let (o, n) = connected_components(a.view().into_dyn(), Some(26), false).unwrap();
                let msg = format!("row ({dz}, {dy}) covered {covered}");
                assert_eq!((o.into_raw_vec_and_offset().0, n), oracle26(&a), "{msg}");
            }
        }
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
