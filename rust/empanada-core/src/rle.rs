//! Run-length objects (spec §1.2–1.5): runs over the C-order raveled index, half-open
//! `[start, start + run)`, int64 throughout so they interoperate with the reference's arrays.
//!
//! A label image is encoded in one linear scan into a columnar (CSR-like) set of objects;
//! set operations (intersection, IoU/IoA, union, vote) work on `(starts, runs)` pairs.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::hash::IdMap;
use crate::{Error, Label, Result};

/// Every object of a label image as runs, in columnar form.
///
/// Object `i` has id `ids[i]`, bounding box `boxes[i*2*ndim..(i+1)*2*ndim]` (lower corner
/// inclusive then upper corner exclusive, skimage `bbox` order), `counts[i]` voxels and runs
/// `starts[offsets[i]..offsets[i+1]]` / `runs[..]`, sorted by start. Objects are sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RleObjects {
    pub ndim: usize,
    pub ids: Vec<u64>,
    pub boxes: Vec<i64>,
    pub counts: Vec<i64>,
    pub offsets: Vec<i64>,
    pub starts: Vec<i64>,
    pub runs: Vec<i64>,
}

impl RleObjects {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

fn check_rank(param: &'static str, ndim: usize) -> Result<()> {
    if ndim == 2 || ndim == 3 {
        Ok(())
    } else {
        Err(Error::shape(
            param,
            format!("expected a 2D (y, x) or 3D (z, y, x) array, got {ndim} dimensions"),
        ))
    }
}

struct Slot {
    lo: [i64; 3],
    hi: [i64; 3],
    count: i64,
    nruns: usize,
    /// Index in the scan's run list of this object's latest run, to extend it when the
    /// object continues from the end of one row into the start of the next.
    last_run: usize,
}

/// Encodes every nonzero label of a 2D or 3D image into runs and boxes in one scan.
pub fn encode<L: Label>(labels: ArrayViewD<'_, L>) -> Result<RleObjects> {
    let ndim = labels.ndim();
    check_rank("labels", ndim)?;
    let shape = labels.shape().to_vec();
    let labels = labels.as_standard_layout();
    let data = labels.as_slice().expect("standard layout is contiguous");
    let mut out = RleObjects {
        ndim,
        offsets: vec![0],
        ..Default::default()
    };
    let width = shape[ndim - 1];
    if data.is_empty() || width == 0 {
        return Ok(out);
    }
    let height = shape[ndim - 2];

    let mut slots: Vec<Slot> = Vec::new();
    let mut index: IdMap<u64, u32> = IdMap::default();
    // Runs in scan order: (slot, start, length).
    let mut scan: Vec<(u32, i64, i64)> = Vec::new();
    let mut cached: Option<(L, u32)> = None;

    for (row, line) in data.chunks_exact(width).enumerate() {
        // Row coordinates of the leading axes, in the box's axis order.
        let (z, y) = if ndim == 3 {
            ((row / height) as i64, (row % height) as i64)
        } else {
            (0, row as i64)
        };
        let row_start = (row * width) as i64;
        let mut x = 0usize;
        while x < width {
            let v = line[x];
            if v.is_zero() {
                x += 1;
                continue;
            }
            let x0 = x;
            x += 1;
            while x < width && line[x] == v {
                x += 1;
            }
            if v.is_negative() {
                return Err(Error::invalid(
                    "labels",
                    "labels must be >= 0; negative ids are not object labels (cast or clip the array first)",
                ));
            }
            let slot = match cached {
                Some((c, s)) if c == v => s,
                _ => {
                    let next = slots.len() as u32;
                    let s = *index.entry(v.to_u64()).or_insert(next);
                    if s == next {
                        slots.push(Slot {
                            lo: [i64::MAX; 3],
                            hi: [i64::MIN; 3],
                            count: 0,
                            nruns: 0,
                            last_run: usize::MAX,
                        });
                    }
                    cached = Some((v, s));
                    s
                }
            };
            let sl = &mut slots[slot as usize];
            let start = row_start + x0 as i64;
            let len = (x - x0) as i64;
            let coords = [z, y, x0 as i64];
            let ends = [z + 1, y + 1, x as i64];
            for a in 0..3 {
                sl.lo[a] = sl.lo[a].min(coords[a]);
                sl.hi[a] = sl.hi[a].max(ends[a]);
            }
            sl.count += len;
            if x0 == 0 && sl.last_run != usize::MAX {
                let last = &mut scan[sl.last_run];
                if last.1 + last.2 == start {
                    last.2 += len;
                    continue;
                }
            }
            sl.last_run = scan.len();
            sl.nruns += 1;
            scan.push((slot, start, len));
        }
    }

    // Order objects by id, then scatter the runs (already sorted by start per object).
    let mut order: Vec<(u64, u32)> = index.into_iter().collect();
    order.sort_unstable();
    let n = order.len();
    let mut rank = vec![0u32; n];
    out.ids.reserve(n);
    out.counts.reserve(n);
    out.boxes.reserve(n * 2 * ndim);
    out.offsets.reserve(n);
    let mut cursor = vec![0usize; n];
    let mut total = 0usize;
    let first_axis = 3 - ndim;
    for (r, &(id, s)) in order.iter().enumerate() {
        let sl = &slots[s as usize];
        rank[s as usize] = r as u32;
        out.ids.push(id);
        out.counts.push(sl.count);
        out.boxes.extend_from_slice(&sl.lo[first_axis..]);
        out.boxes.extend_from_slice(&sl.hi[first_axis..]);
        cursor[r] = total;
        total += sl.nruns;
        out.offsets.push(total as i64);
    }
    out.starts = vec![0; total];
    out.runs = vec![0; total];
    for &(s, start, len) in &scan {
        let r = rank[s as usize] as usize;
        let at = cursor[r];
        cursor[r] += 1;
        out.starts[at] = start;
        out.runs[at] = len;
    }
    Ok(out)
}

/// Checks that `starts`/`runs` describe valid runs: same length, `runs >= 1`, `starts >= 0`
/// and ends that fit in int64.
pub fn check_runs(param: &'static str, starts: &[i64], runs: &[i64]) -> Result<()> {
    if starts.len() != runs.len() {
        return Err(Error::shape(
            param,
            format!(
                "starts and runs must have the same length, got {} and {}",
                starts.len(),
                runs.len()
            ),
        ));
    }
    for (&s, &r) in starts.iter().zip(runs) {
        if r < 1 {
            return Err(Error::invalid(
                param,
                format!("run lengths must be >= 1, got {r}; drop empty runs first"),
            ));
        }
        if s < 0 {
            return Err(Error::invalid(
                param,
                format!("run starts are raveled indices and must be >= 0, got {s}"),
            ));
        }
        if s.checked_add(r).is_none() {
            return Err(Error::invalid(
                param,
                format!("run {s} + {r} overflows int64"),
            ));
        }
    }
    Ok(())
}

/// Paints each object's runs with its id into a zeroed array of `shape`; later objects win
/// where runs of different objects overlap (as the reference's painting loop does).
pub fn decode<T: Label>(
    ids: &[u64],
    offsets: &[i64],
    starts: &[i64],
    runs: &[i64],
    shape: &[usize],
) -> Result<ArrayD<T>> {
    check_rank("shape", shape.len())?;
    let size = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::shape("shape", "the product of the shape overflows"))?;
    let mut out = vec![T::default(); size];
    paint(ids, offsets, starts, runs, &mut out)?;
    Ok(ArrayD::from_shape_vec(IxDyn(shape), out).expect("size matches shape"))
}

/// Paints each object's runs with its id into `out` (a raveled array), leaving voxels no
/// run covers as they are; later objects win where runs overlap. Everything is validated
/// before the first write.
pub fn paint<T: Label>(
    ids: &[u64],
    offsets: &[i64],
    starts: &[i64],
    runs: &[i64],
    out: &mut [T],
) -> Result<()> {
    check_runs("runs", starts, runs)?;
    if offsets.len() != ids.len() + 1 {
        return Err(Error::shape(
            "offsets",
            format!(
                "expected len(ids) + 1 = {} offsets, got {}",
                ids.len() + 1,
                offsets.len()
            ),
        ));
    }
    if offsets[0] != 0 || offsets[ids.len()] != starts.len() as i64 {
        return Err(Error::invalid(
            "offsets",
            format!(
                "offsets must start at 0 and end at len(starts) = {}",
                starts.len()
            ),
        ));
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::invalid("offsets", "offsets must be non-decreasing"));
    }
    if let Some(&id) = ids.iter().find(|&&id| id > T::MAX_U64) {
        return Err(Error::overflow(
            "ids",
            format!(
                "id {id} does not fit the output dtype (max {}); choose a wider dtype",
                T::MAX_U64
            ),
        ));
    }
    let size = out.len();
    if let Some((s, r)) = starts
        .iter()
        .zip(runs)
        .find(|(&s, &r)| (s + r) as u64 > size as u64)
    {
        return Err(Error::invalid(
            "starts",
            format!(
                "run [{s}, {}) is outside an array of {size} elements",
                s + r
            ),
        ));
    }
    for (i, &id) in ids.iter().enumerate() {
        let v = T::from_u64(id);
        let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
        for (&s, &r) in starts[a..b].iter().zip(&runs[a..b]) {
            out[s as usize..(s + r) as usize].fill(v);
        }
    }
    Ok(())
}

/// Runs of a strictly increasing list of flat indices: a run starts wherever
/// `idx[i] != idx[i-1] + 1`.
pub fn from_indices(indices: &[i64]) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut starts = Vec::new();
    let mut runs = Vec::new();
    let Some(&first) = indices.first() else {
        return Ok((starts, runs));
    };
    if first < 0 {
        return Err(Error::invalid(
            "indices",
            format!("flat indices must be >= 0, got {first}"),
        ));
    }
    let mut start = first;
    let mut prev = first;
    for &i in &indices[1..] {
        if i <= prev {
            return Err(Error::invalid(
                "indices",
                "flat indices must be strictly increasing; pass np.unique(indices)",
            ));
        }
        if i != prev + 1 {
            starts.push(start);
            runs.push(prev - start + 1);
            start = i;
        }
        prev = i;
    }
    starts.push(start);
    runs.push(prev - start + 1);
    Ok((starts, runs))
}

/// One RLE as runs sorted by start and checked disjoint: the input itself when it is
/// sorted already (the common case, checked in the same pass), else a sorted copy in `buf`.
fn sorted_runs<'a>(
    param: &'static str,
    starts: &'a [i64],
    runs: &'a [i64],
    buf: &'a mut (Vec<i64>, Vec<i64>),
) -> Result<(&'a [i64], &'a [i64])> {
    check_runs(param, starts, runs)?;
    if starts.windows(2).all(|w| w[0] <= w[1]) {
        check_disjoint(param, starts, runs)?;
        return Ok((starts, runs));
    }
    let mut order: Vec<(i64, i64)> = starts.iter().copied().zip(runs.iter().copied()).collect();
    order.sort_unstable();
    (buf.0, buf.1) = order.into_iter().unzip();
    check_disjoint(param, &buf.0, &buf.1)?;
    Ok((&buf.0, &buf.1))
}

fn check_disjoint(param: &'static str, starts: &[i64], runs: &[i64]) -> Result<()> {
    for k in 1..starts.len() {
        let end = starts[k - 1] + runs[k - 1];
        if end > starts[k] {
            return Err(Error::invalid(
                param,
                format!(
                    "runs of one object must not overlap, got [{}, {end}) and [{}, {}); merge them with rle_union first",
                    starts[k - 1],
                    starts[k],
                    starts[k] + runs[k]
                ),
            ));
        }
    }
    Ok(())
}

fn size(runs: &[i64]) -> i64 {
    runs.iter().sum()
}

/// Number of indices in both RLEs. Runs need not be sorted but must not overlap within one RLE.
pub fn intersection(
    starts_a: &[i64],
    runs_a: &[i64],
    starts_b: &[i64],
    runs_b: &[i64],
) -> Result<i64> {
    let (mut buf_a, mut buf_b) = Default::default();
    let (sa, ra) = sorted_runs("runs_a", starts_a, runs_a, &mut buf_a)?;
    let (sb, rb) = sorted_runs("runs_b", starts_b, runs_b, &mut buf_b)?;
    Ok(intersection_sorted(sa, ra, sb, rb))
}

/// First run at or after `from` whose end exceeds `x` (runs sorted and disjoint, so their
/// ends ascend): a few linear steps, then galloping, then a binary search.
#[inline]
fn skip_to(starts: &[i64], runs: &[i64], from: usize, x: i64) -> usize {
    let n = starts.len();
    let end = |k: usize| starts[k] + runs[k];
    let mut lo = from;
    for _ in 0..4 {
        if lo >= n || end(lo) > x {
            return lo;
        }
        lo += 1;
    }
    let mut step = 4;
    let mut hi = lo;
    while hi < n && end(hi) <= x {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    let (mut lo, mut hi) = (lo, hi.min(n));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if end(mid) <= x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// [`intersection`] of two RLEs already known to be sorted and disjoint (not checked).
///
/// Runs of one object that lie between two runs of the other (other rows or slices of a
/// box only partly shared) are skipped by galloping, so objects that merely touch cost
/// about the logarithm of their runs instead of all of them.
pub fn intersection_sorted(sa: &[i64], ra: &[i64], sb: &[i64], rb: &[i64]) -> i64 {
    let (na, nb) = (sa.len(), sb.len());
    if na == 0 || nb == 0 {
        return 0;
    }
    let hi = (sa[na - 1] + ra[na - 1]).min(sb[nb - 1] + rb[nb - 1]);
    let mut i = skip_to(sa, ra, 0, sb[0]);
    let mut j = skip_to(sb, rb, 0, sa[0]);
    let mut total = 0i64;
    while i < na && j < nb {
        let (a0, b0) = (sa[i], sb[j]);
        if a0.max(b0) >= hi {
            break;
        }
        let (a1, b1) = (a0 + ra[i], b0 + rb[j]);
        if a1 <= b0 {
            i = skip_to(sa, ra, i + 1, b0);
            continue;
        }
        if b1 <= a0 {
            j = skip_to(sb, rb, j + 1, a0);
            continue;
        }
        total += a1.min(b1) - a0.max(b0);
        if a1 <= b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// Whether every object's runs are sorted by start and disjoint.
pub(crate) fn objects_sorted(o: &RleObjects) -> bool {
    o.offsets.windows(2).all(|w| {
        let (a, b) = (w[0] as usize, w[1] as usize);
        (a + 1..b).all(|k| o.starts[k - 1] + o.runs[k - 1] <= o.starts[k])
    })
}

/// `o` with each object's runs sorted by start; an error if runs of one object overlap.
pub(crate) fn sort_objects(o: &RleObjects) -> Result<RleObjects> {
    let mut out = o.clone();
    for w in o.offsets.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        let mut buf = Default::default();
        let (s, r) = sorted_runs("objects", &o.starts[a..b], &o.runs[a..b], &mut buf)?;
        out.starts[a..b].copy_from_slice(s);
        out.runs[a..b].copy_from_slice(r);
    }
    Ok(out)
}

/// `inter / (size_a + size_b - inter)`; 0.0 when both are empty (the reference gives NaN).
pub fn iou(starts_a: &[i64], runs_a: &[i64], starts_b: &[i64], runs_b: &[i64]) -> Result<f64> {
    let inter = intersection(starts_a, runs_a, starts_b, runs_b)?;
    let union = size(runs_a) + size(runs_b) - inter;
    Ok(if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    })
}

/// `inter / size_b` (the area of the *second* argument); 0.0 when `b` is empty.
pub fn ioa(starts_a: &[i64], runs_a: &[i64], starts_b: &[i64], runs_b: &[i64]) -> Result<f64> {
    let inter = intersection(starts_a, runs_a, starts_b, runs_b)?;
    let area = size(runs_b);
    Ok(if area == 0 {
        0.0
    } else {
        inter as f64 / area as f64
    })
}

/// A borrowed RLE.
pub type Rle<'a> = (&'a [i64], &'a [i64]);

fn split(ranges: Vec<(i64, i64)>) -> (Vec<i64>, Vec<i64>) {
    ranges.into_iter().map(|(s, e)| (s, e - s)).unzip()
}

/// Union of RLEs as sorted disjoint runs; ranges that overlap or touch are merged.
pub fn union(rles: &[Rle<'_>]) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut ranges = Vec::with_capacity(rles.iter().map(|r| r.0.len()).sum());
    for &(s, r) in rles {
        check_runs("rles", s, r)?;
        ranges.extend(s.iter().zip(r).map(|(&s, &r)| (s, s + r)));
    }
    // Inputs are usually sorted already: the stable sort merges presorted stretches in
    // linear time where an unstable one would not.
    ranges.sort();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Ok(split(merged))
}

/// Indices covered by at least `thr` input ranges, as sorted disjoint runs. `thr == 1` is the
/// union; fewer than `thr` non-empty inputs give an empty result (as the reference does).
pub fn vote(rles: &[Rle<'_>], thr: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    if thr < 1 {
        return Err(Error::invalid("thr", "vote threshold must be >= 1"));
    }
    for &(s, r) in rles {
        check_runs("rles", s, r)?;
    }
    let nonempty = rles.iter().filter(|r| !r.0.is_empty()).count();
    if nonempty < thr {
        return Ok((Vec::new(), Vec::new()));
    }
    if thr == 1 {
        return union(rles);
    }
    if let Some(out) = vote_bitmap(rles, thr) {
        return Ok(out);
    }
    vote_sweep(rles, thr)
}

/// [`vote`] by sorting the run starts and ends and sweeping them.
fn vote_sweep(rles: &[Rle<'_>], thr: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    // +1 at each start, -1 at each end; all events at one position apply before the count
    // is read, so touching ranges do not split the output. Each input's starts (and ends)
    // ascend, so the stable sorts merge presorted stretches.
    let total: usize = rles.iter().map(|r| r.0.len()).sum();
    let mut ups: Vec<i64> = Vec::with_capacity(total);
    let mut downs: Vec<i64> = Vec::with_capacity(total);
    for &(s, r) in rles {
        ups.extend_from_slice(s);
        downs.extend(s.iter().zip(r).map(|(&s, &r)| s + r));
    }
    ups.sort();
    downs.sort();
    let thr = thr as i64;
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut count = 0i64;
    let mut open: Option<i64> = None;
    let (mut i, mut j) = (0, 0);
    while i < ups.len() || j < downs.len() {
        let pos = match (ups.get(i), downs.get(j)) {
            (Some(&u), Some(&d)) => u.min(d),
            (Some(&u), None) => u,
            (None, Some(&d)) => d,
            (None, None) => unreachable!(),
        };
        while i < ups.len() && ups[i] == pos {
            count += 1;
            i += 1;
        }
        while j < downs.len() && downs[j] == pos {
            count -= 1;
            j += 1;
        }
        match (open, count >= thr) {
            (None, true) => open = Some(pos),
            (Some(s), false) => {
                out.push((s, pos));
                open = None;
            }
            _ => {}
        }
    }
    Ok(split(out))
}

/// [`vote`] on bit planes over the span of the inputs, without sorting: plane `t` holds the
/// indices covered at least `t + 1` times, and adding a run ORs `plane[t-1] & run` into
/// `plane[t]` from the top plane down. `None` (use the sweep) when the span is large for
/// the number of runs.
fn vote_bitmap(rles: &[Rle<'_>], thr: usize) -> Option<(Vec<i64>, Vec<i64>)> {
    let total: usize = rles.iter().map(|r| r.0.len()).sum();
    let lo = rles.iter().filter_map(|r| r.0.iter().min()).min()?;
    let hi = rles
        .iter()
        .flat_map(|(s, r)| s.iter().zip(*r).map(|(&s, &r)| s + r))
        .max()?;
    let words = ((hi - lo) as u64).div_ceil(64);
    if words > 8 * total as u64 + 4096 || thr > 64 {
        return None;
    }
    let words = words as usize;
    let mut planes = vec![0u64; thr * words];
    for &(s, r) in rles {
        for (&s, &r) in s.iter().zip(r) {
            let (a, b) = ((s - lo) as usize, (s + r - lo) as usize);
            let (wa, wb) = (a / 64, (b - 1) / 64);
            for w in wa..=wb {
                let from = if w == wa { a % 64 } else { 0 };
                let to = if w == wb { (b - 1) % 64 + 1 } else { 64 };
                let mask = (u64::MAX >> (64 - (to - from))) << from;
                for t in (1..thr).rev() {
                    let below = planes[(t - 1) * words + w];
                    planes[t * words + w] |= below & mask;
                }
                planes[w] |= mask;
            }
        }
    }
    let top = &planes[(thr - 1) * words..];
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut open: Option<i64> = None;
    let mut w = 0;
    while w < words {
        // Long stretches of empty words are skipped in one (vectorised) search.
        if open.is_none() && top[w] == 0 {
            match top[w..].iter().position(|&x| x != 0) {
                Some(d) => w += d,
                None => break,
            }
        }
        let x = top[w];
        let base = lo + 64 * w as i64;
        w += 1;
        let mut bit = 0u32;
        while bit < 64 {
            match open {
                None => {
                    let y = x >> bit;
                    if y == 0 {
                        break;
                    }
                    bit += y.trailing_zeros();
                    open = Some(base + bit as i64);
                }
                Some(start) => {
                    let y = !x >> bit;
                    if y == 0 {
                        break;
                    }
                    bit += y.trailing_zeros();
                    out.push((start, base + bit as i64));
                    open = None;
                }
            }
        }
    }
    if let Some(start) = open {
        out.push((start, lo + 64 * words as i64));
    }
    Some(split(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn encode_continues_runs_across_rows() {
        let a = Array2::from_shape_vec((2, 3), vec![0u8, 5, 5, 5, 0, 7]).unwrap();
        let e = encode(a.view().into_dyn()).unwrap();
        assert_eq!(e.ids, vec![5, 7]);
        assert_eq!(e.starts, vec![1, 5]);
        assert_eq!(e.runs, vec![3, 1]);
        assert_eq!(e.offsets, vec![0, 1, 2]);
        assert_eq!(e.counts, vec![3, 1]);
        assert_eq!(e.boxes, vec![0, 0, 2, 3, 1, 2, 2, 3]);
        let d: ArrayD<u8> = decode(&e.ids, &e.offsets, &e.starts, &e.runs, &[2, 3]).unwrap();
        assert_eq!(d, a.into_dyn());
    }

    #[test]
    fn set_ops() {
        let (sa, ra) = (vec![10, 0], vec![5, 5]);
        let (sb, rb) = (vec![3], vec![10]);
        assert_eq!(intersection(&sa, &ra, &sb, &rb).unwrap(), 5);
        assert_eq!(
            union(&[(&sa, &ra), (&sb, &rb)]).unwrap(),
            (vec![0], vec![15])
        );
        assert_eq!(
            vote(&[(&sa, &ra), (&sb, &rb)], 2).unwrap(),
            (vec![3, 10], vec![2, 3])
        );
        assert_eq!(
            from_indices(&[1, 2, 3, 7]).unwrap(),
            (vec![1, 7], vec![3, 1])
        );
    }

    #[test]
    fn galloping_intersection_equals_the_plain_merge() {
        let seed = std::cell::Cell::new(7u64);
        let rnd = |m: u64| {
            seed.set(
                seed.get()
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
            (seed.get() >> 33) % m
        };
        let runs_of = |n: usize, gap: u64, len: u64| {
            let (mut s, mut r, mut at) = (Vec::new(), Vec::new(), rnd(50) as i64);
            for _ in 0..n {
                at += rnd(gap) as i64;
                let l = 1 + rnd(len) as i64;
                s.push(at);
                r.push(l);
                at += l;
            }
            (s, r)
        };
        for case in 0..400 {
            let (gap, len) = [(3, 3), (40, 5), (400, 2), (2, 60)][case % 4];
            let (sa, ra) = runs_of(rnd(60) as usize, gap, len);
            let (sb, rb) = runs_of(rnd(60) as usize, gap + rnd(100), len);
            let (mut i, mut j, mut plain) = (0, 0, 0i64);
            while i < sa.len() && j < sb.len() {
                let (ea, eb) = (sa[i] + ra[i], sb[j] + rb[j]);
                plain += (ea.min(eb) - sa[i].max(sb[j])).max(0);
                if ea <= eb {
                    i += 1;
                } else {
                    j += 1;
                }
            }
            assert_eq!(
                intersection_sorted(&sa, &ra, &sb, &rb),
                plain,
                "case {case}"
            );
            assert_eq!(
                intersection_sorted(&sb, &rb, &sa, &ra),
                plain,
                "case {case}"
            );
        }
    }

    #[test]
    fn bitmap_vote_equals_the_sweep() {
        let mut seed = 11u64;
        let mut rnd = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for case in 0..300 {
            let k = 1 + rnd(7) as usize;
            let lists: Vec<(Vec<i64>, Vec<i64>)> = (0..k)
                .map(|_| {
                    let (mut s, mut r, mut at) = (Vec::new(), Vec::new(), rnd(100) as i64);
                    for _ in 0..rnd(30) {
                        at += rnd(90) as i64;
                        let l = 1 + rnd(150) as i64;
                        s.push(at);
                        r.push(l);
                        at += l;
                    }
                    (s, r)
                })
                .collect();
            let rles: Vec<Rle<'_>> = lists.iter().map(|(s, r)| (&s[..], &r[..])).collect();
            for thr in 1..=k {
                let want = vote_sweep(&rles, thr).unwrap();
                if let Some(got) = vote_bitmap(&rles, thr) {
                    assert_eq!(got, want, "case {case} thr {thr}");
                }
            }
        }
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(
            intersection(&[0], &[0], &[], &[]),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            decode::<u8>(&[300], &[0, 1], &[0], &[1], &[2, 2]),
            Err(Error::LabelOverflow { .. })
        ));
        assert!(matches!(
            decode::<u8>(&[3], &[0, 1], &[3], &[2], &[2, 2]),
            Err(Error::InvalidArgument { .. })
        ));
        let a = ndarray::Array2::<i8>::from_shape_vec((1, 2), vec![1, -1]).unwrap();
        assert!(encode(a.view().into_dyn()).is_err());
    }
}
