//! Matching objects across slices (spec §5.4–5.5) and the 3D object store (spec §1.6).
//!
//! * [`linear_sum_assignment`]: the rectangular assignment problem solved by the shortest
//!   augmenting path method (Crouse 2016), the algorithm SciPy uses. Rows are augmented in
//!   order and columns scanned in the same order as there, so ties between equally good
//!   assignments resolve the same way and matching results equal the reference's.
//! * [`match_slice`]: one step of the reference's slice matcher: IoU via box-screened pairs,
//!   Hungarian assignment maximising total IoU, IoA fallback on the match object's area,
//!   new labels for the rest, and union of objects that end up with the same label.
//! * [`Tracker`]: 2D objects of slice `index` of a plane placed into the volume, accumulated
//!   per label in first-seen order (the order the final `1..N` numbering follows).

use crate::hash::IdMap;
use crate::rle;
use crate::unionfind::{groups, join};
use crate::{Error, Result};

/// Optimal assignment of rows to columns of a dense `nr x nc` cost matrix (row-major).
///
/// Returns `(rows, cols)` of `min(nr, nc)` pairs, rows ascending, minimising (or with
/// `maximize`, maximising) the total cost; equivalent to
/// `scipy.optimize.linear_sum_assignment(cost, maximize)`.
pub fn linear_sum_assignment(
    cost: &[f64],
    nr: usize,
    nc: usize,
    maximize: bool,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if cost.len() != nr * nc {
        return Err(Error::shape(
            "cost",
            format!("{} values for a {nr} x {nc} matrix", cost.len()),
        ));
    }
    if cost
        .iter()
        .any(|c| c.is_nan() || (maximize && *c == f64::INFINITY))
    {
        return Err(Error::non_finite(
            "cost",
            "contains NaN (or +inf when maximising); the assignment is undefined",
        ));
    }
    if nr == 0 || nc == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    // Work on the orientation with no more rows than columns, as a minimisation.
    let transpose = nc < nr;
    let (r, c) = if transpose { (nc, nr) } else { (nr, nc) };
    let sign = if maximize { -1.0 } else { 1.0 };
    let mut m = vec![0.0f64; r * c];
    for i in 0..nr {
        for j in 0..nc {
            let v = sign * cost[i * nc + j];
            if transpose {
                m[j * c + i] = v;
            } else {
                m[i * c + j] = v;
            }
        }
    }
    if m.contains(&f64::NEG_INFINITY) {
        return Err(Error::non_finite(
            "cost",
            "contains -inf (or +inf when maximising); the assignment is unbounded",
        ));
    }

    let mut u = vec![0.0f64; r];
    let mut v = vec![0.0f64; c];
    let mut spc = vec![f64::INFINITY; c];
    let mut path = vec![usize::MAX; c];
    let mut col4row = vec![usize::MAX; r];
    let mut row4col = vec![usize::MAX; c];
    let mut sr = vec![false; r];
    let mut sc = vec![false; c];
    let mut remaining = vec![0usize; c];

    for cur in 0..r {
        // Shortest augmenting path from row `cur` (Dijkstra on reduced costs).
        let mut min_val = 0.0f64;
        let mut i = cur;
        let mut num_remaining = c;
        for (it, slot) in remaining.iter_mut().enumerate() {
            *slot = c - it - 1;
        }
        sr.fill(false);
        sc.fill(false);
        spc.fill(f64::INFINITY);
        let sink = loop {
            let mut index = usize::MAX;
            let mut lowest = f64::INFINITY;
            sr[i] = true;
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let red = min_val + m[i * c + j] - u[i] - v[j];
                if red < spc[j] {
                    path[j] = i;
                    spc[j] = red;
                }
                if spc[j] < lowest || (spc[j] == lowest && row4col[j] == usize::MAX) {
                    lowest = spc[j];
                    index = it;
                }
            }
            min_val = lowest;
            if min_val == f64::INFINITY || index == usize::MAX {
                return Err(Error::invalid("cost", "the cost matrix is infeasible"));
            }
            let j = remaining[index];
            sc[j] = true;
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
            if row4col[j] == usize::MAX {
                break j;
            }
            i = row4col[j];
        };
        u[cur] += min_val;
        for ii in 0..r {
            if sr[ii] && ii != cur {
                u[ii] += min_val - spc[col4row[ii]];
            }
        }
        for jj in 0..c {
            if sc[jj] {
                v[jj] -= min_val - spc[jj];
            }
        }
        let mut j = sink;
        loop {
            let ii = path[j];
            row4col[j] = ii;
            std::mem::swap(&mut col4row[ii], &mut j);
            if ii == cur {
                break;
            }
        }
    }

    if transpose {
        // col4row maps original columns to original rows: report by ascending row.
        let mut pairs: Vec<(usize, usize)> = col4row
            .iter()
            .enumerate()
            .map(|(col, &row)| (row, col))
            .collect();
        pairs.sort_unstable();
        Ok(pairs.into_iter().unzip())
    } else {
        Ok(((0..r).collect(), col4row))
    }
}

/// One object of one slice: its label, 2D box `(y1, x1, y2, x2)`, size and runs over the
/// slice's raveled index (sorted, disjoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object2d {
    pub label: u64,
    pub bbox: [i64; 4],
    pub area: i64,
    pub starts: Vec<i64>,
    pub runs: Vec<i64>,
}

/// Parameters of [`match_slice`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchParams {
    pub class_id: u32,
    pub label_divisor: u64,
    pub merge_iou_thr: f64,
    pub merge_ioa_thr: f64,
}

impl MatchParams {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("merge_iou_thr", self.merge_iou_thr),
            ("merge_ioa_thr", self.merge_ioa_thr),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(
                    if name == "merge_iou_thr" {
                        "merge_iou_thr"
                    } else {
                        "merge_ioa_thr"
                    },
                    format!("must lie in [0, 1], got {v}"),
                ));
            }
        }
        if self.label_divisor < 1 {
            return Err(Error::invalid("label_divisor", "must be >= 1"));
        }
        Ok(())
    }

    /// First label of the class's id range (`c*L + 1`).
    pub fn first_label(&self) -> u64 {
        self.class_id as u64 * self.label_divisor + 1
    }
}

/// The label a matcher starts numbering new objects from after seeing its first slice.
pub fn next_label_after(first: &[Object2d], p: &MatchParams) -> u64 {
    first
        .iter()
        .map(|o| o.label + 1)
        .max()
        .unwrap_or(p.first_label())
}

fn boxes_overlap(a: &[i64; 4], b: &[i64; 4]) -> bool {
    a[0].max(b[0]) < a[2].min(b[2]) && a[1].max(b[1]) < a[3].min(b[3])
}

fn merge_box(a: &mut [i64; 4], b: &[i64; 4]) {
    a[0] = a[0].min(b[0]);
    a[1] = a[1].min(b[1]);
    a[2] = a[2].max(b[2]);
    a[3] = a[3].max(b[3]);
}

/// Maximum-IoU assignment of an `n x m` matrix, solved per connected component of its
/// positive entries.
///
/// Pairs across components score 0, and matching keeps only pairs above a positive IoU
/// threshold, so the pairs that matter are those of the whole-matrix optimum; solving each
/// component on its own turns one O((n+m)^3) problem per slice into many tiny ones. Only
/// exact ties between equally good assignments could be resolved differently from SciPy on
/// the whole matrix. Pairs with IoU 0 are never returned.
pub fn assign_by_components(iou: &[f64], n: usize, m: usize) -> Result<Vec<(usize, usize)>> {
    let mut parent: Vec<usize> = (0..n + m).collect();
    for r in 0..n {
        for c in 0..m {
            if iou[r * m + c] > 0.0 {
                join(&mut parent, r, n + c);
            }
        }
    }
    // Nodes 0..n are rows, n..n+m columns; members come out ascending.
    let comps = groups(&mut parent).into_iter().filter_map(|g| {
        let split = g.partition_point(|&x| x < n);
        let (rows, cols) = g.split_at(split);
        (!rows.is_empty() && !cols.is_empty()).then(|| {
            (
                rows.to_vec(),
                cols.iter().map(|&c| c - n).collect::<Vec<_>>(),
            )
        })
    });
    let mut pairs = Vec::new();
    for (rows, cols) in comps {
        let sub: Vec<f64> = rows
            .iter()
            .flat_map(|&r| cols.iter().map(move |&c| iou[r * m + c]))
            .collect();
        let (rr, cc) = linear_sum_assignment(&sub, rows.len(), cols.len(), true)?;
        for (i, j) in rr.into_iter().zip(cc) {
            let (r, c) = (rows[i], cols[j]);
            if iou[r * m + c] > 0.0 {
                pairs.push((r, c));
            }
        }
    }
    Ok(pairs)
}

/// One overlapping (target, object) pair of [`match_slice`].
struct Pair {
    t: usize,
    o: usize,
    iou: f64,
    ioa: f32,
}

/// `(target, object, intersection)` of every pair with a nonzero intersection, sorted.
///
/// Targets are binned by box on a grid of `CELL`-pixel cells; each object looks only at
/// the targets in the cells its box covers (once each), so the cost follows the pairs of
/// nearby objects, not all `n x m`.
fn overlapping_pairs(target: &[Object2d], objects: &[Object2d]) -> Vec<(usize, usize, i64)> {
    const CELL: i64 = 32;
    let mut out = Vec::new();
    if target.is_empty() || objects.is_empty() {
        return out;
    }
    let (r_end, c_end) = target
        .iter()
        .fold((1, 1), |(r, c), t| (r.max(t.bbox[2]), c.max(t.bbox[3])));
    let (gr, gc) = ((r_end + CELL - 1) / CELL, (c_end + CELL - 1) / CELL);
    // Cells a box covers, clipped to the grid (empty when it lies outside).
    let cells = |b: &[i64; 4]| {
        let (r0, r1) = ((b[0] / CELL).max(0), ((b[2] - 1) / CELL).min(gr - 1));
        let (c0, c1) = ((b[1] / CELL).max(0), ((b[3] - 1) / CELL).min(gc - 1));
        (r0..=r1).flat_map(move |r| (c0..=c1).map(move |c| (r * gc + c) as usize))
    };
    let n_cells = (gr * gc) as usize;
    let mut head = vec![0usize; n_cells + 1];
    for t in target {
        for k in cells(&t.bbox) {
            head[k + 1] += 1;
        }
    }
    for k in 0..n_cells {
        head[k + 1] += head[k];
    }
    let mut fill = head.clone();
    let mut members = vec![0usize; head[n_cells]];
    for (ti, t) in target.iter().enumerate() {
        for k in cells(&t.bbox) {
            members[fill[k]] = ti;
            fill[k] += 1;
        }
    }
    let mut seen = vec![usize::MAX; target.len()];
    for (mi, o) in objects.iter().enumerate() {
        for k in cells(&o.bbox) {
            for &ti in &members[head[k]..head[k + 1]] {
                if seen[ti] == mi {
                    continue;
                }
                seen[ti] = mi;
                let t = &target[ti];
                if !boxes_overlap(&t.bbox, &o.bbox) {
                    continue;
                }
                // Objects come from `rle::encode` or `rle::union`: sorted, disjoint runs.
                let inter = rle::intersection_sorted(&t.starts, &t.runs, &o.starts, &o.runs);
                if inter > 0 {
                    out.push((ti, mi, inter));
                }
            }
        }
    }
    out.sort_unstable_by_key(|&(t, o, _)| (t, o));
    out
}

/// [`assign_by_components`] on the sparse pairs (sorted by target, then object, all with
/// IoU > 0): the same components, sub-matrices and assignments; `(row, col, iou)` out.
fn assign_sparse(pairs: &[Pair], n: usize, m: usize) -> Result<Vec<(usize, usize, f64)>> {
    let mut parent: Vec<usize> = (0..n + m).collect();
    let mut row_start = vec![0usize; n + 1];
    for q in pairs {
        join(&mut parent, q.t, n + q.o);
        row_start[q.t + 1] += 1;
    }
    for r in 0..n {
        row_start[r + 1] += row_start[r];
    }
    let mut col_pos = vec![usize::MAX; m];
    let mut out = Vec::new();
    for g in groups(&mut parent) {
        let split = g.partition_point(|&x| x < n);
        let (rows, cols) = g.split_at(split);
        if rows.is_empty() || cols.is_empty() {
            continue;
        }
        for (j, &c) in cols.iter().enumerate() {
            col_pos[c - n] = j;
        }
        let nc = cols.len();
        let mut sub = vec![0.0f64; rows.len() * nc];
        for (i, &r) in rows.iter().enumerate() {
            for q in &pairs[row_start[r]..row_start[r + 1]] {
                sub[i * nc + col_pos[q.o]] = q.iou;
            }
        }
        let (rr, cc) = linear_sum_assignment(&sub, rows.len(), nc, true)?;
        for (i, j) in rr.into_iter().zip(cc) {
            let v = sub[i * nc + j];
            if v > 0.0 {
                out.push((rows[i], cols[j] - n, v));
            }
        }
    }
    Ok(out)
}

/// Relabels the objects of one slice against `target` (the previous, already relabelled
/// slice), as the reference's `RLEMatcher.__call__` (spec §5.4 steps 1–4).
///
/// Objects come back in the order their label first occurs in `objects`; objects that get
/// the same label are merged. With `assign_new`, unmatched objects get `next_label++`
/// (an error once that leaves the class's id range), otherwise they keep their label.
pub fn match_slice(
    target: &[Object2d],
    objects: Vec<Object2d>,
    p: &MatchParams,
    next_label: &mut u64,
    assign_new: bool,
) -> Result<Vec<Object2d>> {
    let (n, m) = (target.len(), objects.len());
    // IoU in f64 and IoA rounded to f32, as the reference's matrices hold them; only the
    // overlapping pairs, sorted by (target, object): every other entry is 0.
    let pairs: Vec<Pair> = overlapping_pairs(target, &objects)
        .into_iter()
        .map(|(t, o, inter)| {
            let (ta, oa) = (target[t].area, objects[o].area);
            Pair {
                t,
                o,
                iou: inter as f64 / (ta + oa - inter) as f64,
                ioa: (inter as f64 / oa as f64) as f32,
            }
        })
        .collect();
    let mut assigned: Vec<Option<u64>> = vec![None; m];
    // A threshold of 0 also accepts the zero-IoU pairs the whole-matrix optimum makes among
    // leftovers, which only the whole matrix reproduces.
    let matched: Vec<(usize, usize, f64)> = if p.merge_iou_thr > 0.0 {
        assign_sparse(&pairs, n, m)?
    } else if n > 0 && m > 0 {
        let mut iou = vec![0.0f64; n * m];
        for q in &pairs {
            iou[q.t * m + q.o] = q.iou;
        }
        let (rows, cols) = linear_sum_assignment(&iou, n, m, true)?;
        rows.into_iter()
            .zip(cols)
            .map(|(r, c)| (r, c, iou[r * m + c]))
            .collect()
    } else {
        Vec::new()
    };
    for (r, c, v) in matched {
        if v >= p.merge_iou_thr {
            assigned[c] = Some(target[r].label);
        }
    }
    // Per object, the first maximum of its IoA column, as argmax over the dense column
    // gives it: pairs come by ascending target, and entries off the pairs are 0, so with
    // no pair the argmax is target 0 at IoA 0.
    let mut best_ioa: Vec<Option<(f32, usize)>> =
        vec![if n > 0 { Some((0.0, 0)) } else { None }; m];
    let mut has_pair = vec![false; m];
    for q in &pairs {
        let b = &mut best_ioa[q.o];
        if !has_pair[q.o] || q.ioa > b.map_or(0.0, |x| x.0) {
            *b = Some((q.ioa, q.t));
            has_pair[q.o] = true;
        }
    }
    let ioa_thr = p.merge_ioa_thr as f32;
    let class_end = (p.class_id as u64 + 1) * p.label_divisor;

    let mut out: Vec<Object2d> = Vec::with_capacity(m);
    let mut slot: IdMap<u64, usize> = IdMap::default();
    let mut pending: Vec<Vec<Object2d>> = Vec::new();
    for (mi, obj) in objects.into_iter().enumerate() {
        let label = if let Some(l) = assigned[mi] {
            l
        } else {
            match best_ioa[mi] {
                Some((a, ti)) if a >= ioa_thr => target[ti].label,
                _ if assign_new => {
                    let l = *next_label;
                    if l >= class_end {
                        return Err(Error::overflow(
                            "label_divisor",
                            format!(
                                "class {} needs more than {} object ids across the stack; raise label_divisor",
                                p.class_id,
                                p.label_divisor - 1
                            ),
                        ));
                    }
                    *next_label += 1;
                    l
                }
                _ => obj.label,
            }
        };
        match slot.get(&label) {
            Some(&k) => pending[k].push(obj),
            None => {
                slot.insert(label, out.len());
                out.push(Object2d { label, ..obj });
                pending.push(Vec::new());
            }
        }
    }
    for (o, extra) in out.iter_mut().zip(pending) {
        if extra.is_empty() {
            continue;
        }
        let mut parts: Vec<rle::Rle<'_>> = vec![(&o.starts, &o.runs)];
        parts.extend(
            extra
                .iter()
                .map(|e| (e.starts.as_slice(), e.runs.as_slice())),
        );
        let (starts, runs) = rle::union(&parts)?;
        for e in &extra {
            merge_box(&mut o.bbox, &e.bbox);
        }
        o.area = runs.iter().sum();
        o.starts = starts;
        o.runs = runs;
    }
    Ok(out)
}

/// The plane a stack is sliced along (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// `vol[i, :, :]`, slices `(H, W)`.
    Xy,
    /// `vol[:, i, :]`, slices `(D, W)`.
    Xz,
    /// `vol[:, :, i]`, slices `(D, H)`.
    Yz,
}

impl Plane {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "xy" => Ok(Plane::Xy),
            "xz" => Ok(Plane::Xz),
            "yz" => Ok(Plane::Yz),
            other => Err(Error::invalid(
                "plane",
                format!("unknown plane {other:?}; use \"xy\", \"xz\" or \"yz\""),
            )),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Plane::Xy => "xy",
            Plane::Xz => "xz",
            Plane::Yz => "yz",
        }
    }
    /// The volume axis slices are taken along.
    pub fn axis(self) -> usize {
        match self {
            Plane::Xy => 0,
            Plane::Xz => 1,
            Plane::Yz => 2,
        }
    }
    /// `(number of slices, slice shape)` of a `(D, H, W)` volume.
    pub fn slicing(self, shape: [usize; 3]) -> (usize, (usize, usize)) {
        let [d, h, w] = shape;
        match self {
            Plane::Xy => (d, (h, w)),
            Plane::Xz => (h, (d, w)),
            Plane::Yz => (w, (d, h)),
        }
    }
}

/// A 3D object being assembled from slices.
#[derive(Debug, Clone)]
struct Track {
    label: u64,
    bbox: [i64; 6],
    count: i64,
    /// xy, xz: voxel runs. yz: the slices' own 2D runs (flat in the `(z, y)` slice), one
    /// stretch per slice, listed in `slices`.
    starts: Vec<i64>,
    runs: Vec<i64>,
    /// yz only: `(slice index, end of its stretch in starts/runs)` in the order added.
    slices: Vec<(i64, usize)>,
}

/// The 3D objects of one class, keyed by label in first-seen order (spec §1.6).
#[derive(Debug, Clone)]
pub struct Tracker {
    pub class_id: u32,
    shape: [usize; 3],
    plane: Plane,
    tracks: Vec<Track>,
    index: IdMap<u64, usize>,
}

/// Finished 3D objects in tracker order: labels, boxes `(z1, y1, x1, z2, y2, x2)`, sizes and
/// runs sorted by start.
pub type Objects3d = crate::rle::RleObjects;

impl Tracker {
    pub fn new(class_id: u32, shape: [usize; 3], plane: Plane) -> Self {
        Tracker {
            class_id,
            shape,
            plane,
            tracks: Vec::new(),
            index: IdMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Adds the objects of slice `index` of the tracker's plane.
    pub fn update(&mut self, objects: &[Object2d], index: usize) {
        let [_, h, w] = self.shape;
        let (hw, w) = ((h * w) as i64, w as i64);
        let idx = index as i64;
        for o in objects {
            let [r1, c1, r2, c2] = o.bbox;
            let bbox = match self.plane {
                Plane::Xy => [idx, r1, c1, idx + 1, r2, c2],
                Plane::Xz => [r1, idx, c1, r2, idx + 1, c2],
                Plane::Yz => [r1, c1, idx, r2, c2, idx + 1],
            };
            let k = *self.index.entry(o.label).or_insert_with(|| {
                self.tracks.push(Track {
                    label: o.label,
                    bbox,
                    count: 0,
                    starts: Vec::new(),
                    runs: Vec::new(),
                    slices: Vec::new(),
                });
                self.tracks.len() - 1
            });
            let t = &mut self.tracks[k];
            for a in 0..3 {
                t.bbox[a] = t.bbox[a].min(bbox[a]);
                t.bbox[a + 3] = t.bbox[a + 3].max(bbox[a + 3]);
            }
            t.count += o.area;
            match self.plane {
                Plane::Xy => {
                    t.starts.extend(o.starts.iter().map(|s| s + idx * hw));
                    t.runs.extend_from_slice(&o.runs);
                }
                Plane::Xz => {
                    // Slice rows are z, columns x; a 2D run may wrap from one row into the
                    // next, which is not contiguous in the volume: split it at row ends.
                    for (&s, &r) in o.starts.iter().zip(&o.runs) {
                        let (mut s, mut r) = (s, r);
                        while r > 0 {
                            let (z, x) = (s / w, s % w);
                            let take = r.min(w - x);
                            t.starts.push(z * hw + idx * w + x);
                            t.runs.push(take);
                            s += take;
                            r -= take;
                        }
                    }
                }
                Plane::Yz => {
                    // Rows are z, columns y: a slice's run is a column of voxels, not a
                    // voxel run. Keep the slice's runs; finish turns them into x-runs.
                    t.starts.extend_from_slice(&o.starts);
                    t.runs.extend_from_slice(&o.runs);
                    t.slices.push((idx, t.starts.len()));
                }
            }
        }
    }

    /// Drops objects with fewer than `min_size` voxels or a box shorter than `min_extent`
    /// along any axis (spec §5.6), keeping the order of the rest.
    pub fn filter(&mut self, min_size: i64, min_extent: i64) {
        self.tracks.retain(|t| {
            t.count >= min_size && (0..3).all(|a| t.bbox[a + 3] - t.bbox[a] >= min_extent)
        });
        self.index = self
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.label, i))
            .collect();
    }

    /// The objects in tracker order, runs sorted (and yz pixels re-encoded into runs).
    pub fn finish(self) -> Result<Objects3d> {
        let mut out = Objects3d {
            ndim: 3,
            offsets: vec![0],
            ..Default::default()
        };
        let mut bits = Vec::new();
        for t in self.tracks {
            let (starts, runs) = match self.plane {
                Plane::Yz => yz_runs(&t, self.shape, &mut bits),
                _ => {
                    let mut pairs: Vec<(i64, i64)> = t.starts.into_iter().zip(t.runs).collect();
                    pairs.sort();
                    pairs.into_iter().unzip()
                }
            };
            out.ids.push(t.label);
            out.boxes.extend_from_slice(&t.bbox);
            out.counts.push(t.count);
            out.starts.extend_from_slice(&starts);
            out.runs.extend_from_slice(&runs);
            out.offsets.push(out.starts.len() as i64);
        }
        Ok(out)
    }
}

/// The voxel runs of a yz track: its slices' pixels set in a bitmap over its box, one
/// word-aligned bit row per `(z, y)` along x, read back in `(z, y, x)` order. Runs that
/// touch in the flat index (across words, or across rows when the box spans the width)
/// are joined, as `rle::from_indices` of the sorted voxel indices would.
fn yz_runs(t: &Track, shape: [usize; 3], bits: &mut Vec<u64>) -> (Vec<i64>, Vec<i64>) {
    let [_, h, w] = shape;
    let (h, w) = (h as i64, w as i64);
    let hw = h * w;
    let [z1, y1, x1, z2, y2, x2] = t.bbox;
    let (dy, dx) = (y2 - y1, x2 - x1);
    let n_rows = ((z2 - z1) * dy) as usize;
    let wpr = (dx as usize).div_ceil(64);
    bits.clear();
    bits.resize(n_rows * wpr, 0);
    let mut from = 0;
    for &(idx, end) in &t.slices {
        let bx = (idx - x1) as usize;
        let (word, bit) = (bx / 64, 1u64 << (bx % 64));
        for (&s, &r) in t.starts[from..end].iter().zip(&t.runs[from..end]) {
            let (mut z, mut y) = (s / h, s % h);
            for _ in 0..r {
                let row = ((z - z1) * dy + (y - y1)) as usize;
                bits[row * wpr + word] |= bit;
                y += 1;
                if y == h {
                    y = 0;
                    z += 1;
                }
            }
        }
        from = end;
    }
    let mut starts: Vec<i64> = Vec::new();
    let mut runs: Vec<i64> = Vec::new();
    let mut push = |s: i64, r: i64| match (starts.last(), runs.last_mut()) {
        (Some(&ls), Some(lr)) if ls + *lr == s => *lr += r,
        _ => {
            starts.push(s);
            runs.push(r);
        }
    };
    for row in 0..n_rows {
        let (z, y) = (z1 + row as i64 / dy, y1 + row as i64 % dy);
        let base = z * hw + y * w + x1;
        for (k, &word) in bits[row * wpr..(row + 1) * wpr].iter().enumerate() {
            let mut word = word;
            let mut at = 0u32;
            while word != 0 {
                let skip = word.trailing_zeros();
                word >>= skip;
                at += skip;
                let len = word.trailing_ones();
                push(base + (k as i64) * 64 + at as i64, len as i64);
                // len may be 64: shift in two steps.
                word = (word >> (len - 1)) >> 1;
                at += len;
            }
        }
    }
    (starts, runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(cost: &[f64], nr: usize, nc: usize) -> f64 {
        // Best total over every injective map of the smaller side into the larger.
        fn rec(
            cost: &[f64],
            nr: usize,
            nc: usize,
            row: usize,
            used: &mut Vec<bool>,
            acc: f64,
            best: &mut f64,
        ) {
            let k = nr.min(nc);
            let assigned = used.iter().filter(|u| **u).count();
            if assigned == k {
                *best = best.max(acc);
                return;
            }
            if row == nr {
                return;
            }
            // Either leave this row unassigned (when rows outnumber columns) or assign it.
            if nr - row > k - assigned {
                rec(cost, nr, nc, row + 1, used, acc, best);
            }
            for j in 0..nc {
                if !used[j] {
                    used[j] = true;
                    rec(cost, nr, nc, row + 1, used, acc + cost[row * nc + j], best);
                    used[j] = false;
                }
            }
        }
        let mut best = f64::NEG_INFINITY;
        rec(cost, nr, nc, 0, &mut vec![false; nc], 0.0, &mut best);
        best
    }

    #[test]
    fn assignment_is_optimal_on_small_matrices() {
        let mut seed = 7u64;
        for trial in 0..400 {
            let nr = 1 + trial % 5;
            let nc = 1 + (trial / 5) % 5;
            let cost: Vec<f64> = (0..nr * nc)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Few distinct values: many ties.
                    ((seed >> 33) % 4) as f64 / 4.0
                })
                .collect();
            let (rows, cols) = linear_sum_assignment(&cost, nr, nc, true).unwrap();
            assert_eq!(rows.len(), nr.min(nc));
            let mut seen = vec![false; nc];
            for &c in &cols {
                assert!(!seen[c]);
                seen[c] = true;
            }
            assert!(rows.windows(2).all(|w| w[0] < w[1]));
            let total: f64 = rows
                .iter()
                .zip(&cols)
                .map(|(&r, &c)| cost[r * nc + c])
                .sum();
            let best = brute_force(&cost, nr, nc);
            assert!((total - best).abs() < 1e-12, "{total} vs {best}");
        }
    }

    #[test]
    fn assignment_rejects_nan() {
        assert!(linear_sum_assignment(&[f64::NAN], 1, 1, true).is_err());
        assert!(linear_sum_assignment(&[1.0], 1, 2, true).is_err());
    }

    fn obj(label: u64, bbox: [i64; 4], starts: Vec<i64>, runs: Vec<i64>) -> Object2d {
        let area = runs.iter().sum();
        Object2d {
            label,
            bbox,
            area,
            starts,
            runs,
        }
    }

    #[test]
    fn split_pieces_merge_into_the_target_label() {
        let p = MatchParams {
            class_id: 1,
            label_divisor: 100,
            merge_iou_thr: 0.25,
            merge_ioa_thr: 0.25,
        };
        // 1 x 10 slice: target covers 0..8, the match has two pieces 0..3 and 5..8.
        let target = vec![obj(101, [0, 0, 1, 8], vec![0], vec![8])];
        let objects = vec![
            obj(101, [0, 0, 1, 3], vec![0], vec![3]),
            obj(102, [0, 5, 1, 8], vec![5], vec![3]),
        ];
        let mut next = 102;
        let out = match_slice(&target, objects, &p, &mut next, true).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].label, 101);
        assert_eq!(
            (out[0].starts.clone(), out[0].runs.clone()),
            (vec![0, 5], vec![3, 3])
        );
        assert_eq!(out[0].bbox, [0, 0, 1, 8]);
        assert_eq!(next, 102);
    }

    #[test]
    fn trackers_place_slices_in_the_volume() {
        // Volume (2, 3, 4); one object per plane, index 1.
        let o = obj(5, [0, 1, 2, 3], vec![1, 5], vec![2, 2]);
        let mut t = Tracker::new(1, [2, 3, 4], Plane::Xy);
        t.update(std::slice::from_ref(&o), 1);
        let r = t.finish().unwrap();
        assert_eq!(r.starts, vec![13, 17]);
        assert_eq!(r.boxes, vec![1, 0, 1, 2, 2, 3]);
        // xz: slice (D=2, W=4); a run wrapping from row 0 into row 1 splits.
        let o = obj(5, [0, 0, 2, 4], vec![3], vec![2]);
        let mut t = Tracker::new(1, [2, 3, 4], Plane::Xz);
        t.update(std::slice::from_ref(&o), 2);
        let r = t.finish().unwrap();
        assert_eq!((r.starts, r.runs), (vec![11, 20], vec![1, 1]));
        // yz: slice (D=2, H=3); pixel (z=1, y=0) and (z=1, y=1) at x=3.
        let o = obj(5, [1, 0, 2, 2], vec![3], vec![2]);
        let mut t = Tracker::new(1, [2, 3, 4], Plane::Yz);
        t.update(std::slice::from_ref(&o), 3);
        let r = t.finish().unwrap();
        assert_eq!((r.starts, r.runs), (vec![15, 19], vec![1, 1]));
        assert_eq!(r.boxes, vec![1, 0, 3, 2, 2, 4]);
    }

    #[test]
    fn grid_pairs_equal_all_pairs() {
        let mut st = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = |n: i64| {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            (st % n as u64) as i64
        };
        let w = 200i64;
        for _ in 0..40 {
            let (n_t, n_o) = (rnd(30) as usize, rnd(30) as usize);
            let mut make = |k: usize| -> Vec<Object2d> {
                (0..k)
                    .map(|i| {
                        let (r, c) = (rnd(150), rnd(w - 1));
                        let (h, wd) = (1 + rnd(70), 1 + rnd(w - c));
                        let starts: Vec<i64> = (r..r + h).map(|y| y * w + c).collect();
                        obj(
                            i as u64 + 1,
                            [r, c, r + h, c + wd],
                            starts,
                            vec![wd; h as usize],
                        )
                    })
                    .collect()
            };
            let t = make(n_t);
            let o = make(n_o);
            let mut want = Vec::new();
            for (ti, a) in t.iter().enumerate() {
                for (mi, b) in o.iter().enumerate() {
                    let inter = rle::intersection(&a.starts, &a.runs, &b.starts, &b.runs).unwrap();
                    if inter > 0 {
                        want.push((ti, mi, inter));
                    }
                }
            }
            assert_eq!(overlapping_pairs(&t, &o), want);
        }
    }

    #[test]
    fn zero_ioa_threshold_takes_the_first_target_without_overlap() {
        // The dense IoA argmax of an all-zero column is target 0.
        let t = vec![
            obj(7, [0, 0, 1, 2], vec![0], vec![2]),
            obj(8, [3, 0, 4, 2], vec![12], vec![2]),
        ];
        let o = vec![obj(1, [2, 0, 3, 2], vec![8], vec![2])];
        let p = MatchParams {
            class_id: 0,
            label_divisor: 1000,
            merge_iou_thr: 0.25,
            merge_ioa_thr: 0.0,
        };
        let mut next = 100;
        let out = match_slice(&t, o, &p, &mut next, true).unwrap();
        assert_eq!(out[0].label, 7);
        assert_eq!(next, 100);
    }

    #[test]
    fn yz_tracks_equal_sorted_voxel_indices() {
        // Random per-slice masks of a few labels, added in reverse slice order as the
        // backward pass does; the runs must be those of the sorted voxel indices.
        let mut st = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: u64| {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st % n
        };
        for trial in 0..60 {
            let (d, h, w) = (
                1 + rnd(6) as usize,
                1 + rnd(7) as usize,
                1 + rnd(150) as usize,
            );
            let dense = trial % 3 == 0;
            let mut t = Tracker::new(1, [d, h, w], Plane::Yz);
            let mut voxels: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
            for x in (0..w).rev() {
                let mut objects = Vec::new();
                for label in 1..=3u64 {
                    let pix: Vec<i64> = (0..(d * h) as i64)
                        .filter(|_| rnd(if dense { 4 } else { 9 }) == 0 && rnd(3) == label - 1)
                        .collect();
                    if pix.is_empty() {
                        continue;
                    }
                    let (starts, runs) = rle::from_indices(&pix).unwrap();
                    let hh = h as i64;
                    let (r1, r2) = (pix[0] / hh, pix[pix.len() - 1] / hh + 1);
                    let c1 = pix.iter().map(|p| p % hh).min().unwrap();
                    let c2 = pix.iter().map(|p| p % hh).max().unwrap() + 1;
                    let o = obj(label, [r1, c1, r2, c2], starts, runs);
                    objects.push(o);
                    let v = voxels.entry(label).or_default();
                    v.extend(
                        pix.iter()
                            .map(|p| (p / hh) * (h * w) as i64 + (p % hh) * w as i64 + x as i64),
                    );
                }
                // Labels in varying first-seen order.
                if rnd(2) == 0 {
                    objects.reverse();
                }
                t.update(&objects, x);
            }
            let labels: Vec<u64> = t.tracks.iter().map(|tr| tr.label).collect();
            let r = t.finish().unwrap();
            assert_eq!(r.ids, labels);
            for (i, label) in labels.iter().enumerate() {
                let mut v = voxels[label].clone();
                v.sort();
                let (a, b) = (r.offsets[i] as usize, r.offsets[i + 1] as usize);
                let want = rle::from_indices(&v).unwrap();
                assert_eq!((r.starts[a..b].to_vec(), r.runs[a..b].to_vec()), want);
                assert_eq!(r.counts[i], v.len() as i64);
            }
        }
    }

    #[test]
    fn assignment_by_components_equals_the_whole_matrix_optimum() {
        let mut st = 0x1234_5678_9ABC_DEF1u64;
        let mut rnd = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            (st >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..300 {
            let (n, m) = (1 + (rnd() * 12.0) as usize, 1 + (rnd() * 12.0) as usize);
            // Sparse positive entries, distinct values (no ties), like IoUs of nearby objects.
            let iou: Vec<f64> = (0..n * m)
                .map(|_| if rnd() < 0.2 { rnd() } else { 0.0 })
                .collect();
            let (rows, cols) = linear_sum_assignment(&iou, n, m, true).unwrap();
            let mut whole: Vec<(usize, usize)> = rows
                .into_iter()
                .zip(cols)
                .filter(|&(r, c)| iou[r * m + c] > 0.0)
                .collect();
            let mut parts = assign_by_components(&iou, n, m).unwrap();
            whole.sort_unstable();
            parts.sort_unstable();
            assert_eq!(whole, parts, "{n}x{m}: {iou:?}");
        }
    }
}
