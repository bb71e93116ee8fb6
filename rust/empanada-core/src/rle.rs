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
    let (mut i, mut j, mut total) = (0, 0, 0i64);
    while i < sa.len() && j < sb.len() {
        let (ea, eb) = (sa[i] + ra[i], sb[j] + rb[j]);
        total += (ea.min(eb) - sa[i].max(sb[j])).max(0);
        if ea <= eb {
            i += 1;
        } else {
            j += 1;
        }
    }
    Ok(total)
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
    // +1 at each start, -1 at each end; all events at one position apply before the count
    // is read, so touching ranges do not split the output.
    let mut events: Vec<(i64, i64)> =
        Vec::with_capacity(2 * rles.iter().map(|r| r.0.len()).sum::<usize>());
    for &(s, r) in rles {
        for (&s, &r) in s.iter().zip(r) {
            events.push((s, 1));
            events.push((s + r, -1));
        }
    }
    events.sort_by_key(|e| e.0);
    let thr = thr as i64;
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut count = 0i64;
    let mut open: Option<i64> = None;
    let mut k = 0;
    while k < events.len() {
        let pos = events[k].0;
        while k < events.len() && events[k].0 == pos {
            count += events[k].1;
            k += 1;
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
