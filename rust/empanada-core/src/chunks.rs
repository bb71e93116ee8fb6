//! Painting a class's objects into box-shaped blocks of the volume (spec §8.1: chunked label
//! writers), so a volume larger than memory is written block by block and never exists
//! densely.
//!
//! Objects are runs over the full volume's raveled index. A run is cut into `(z, y, x0..x1)`
//! row segments and clipped to a block arithmetically, so painting a block costs the runs
//! that touch it plus the rows it paints. A [`ChunkIndex`] lists, for every chunk of a
//! regular grid, the runs that touch it; painting every chunk through it costs
//! O(runs + painted voxels) in total, and chunks are independent so they paint in parallel.

use rayon::prelude::*;

use crate::rle::RleObjects;
use crate::{Error, Label, Result};

/// A regular grid of chunks over a `(z, y, x)` volume; edge chunks are clipped to the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkGrid {
    pub shape: [usize; 3],
    pub chunk: [usize; 3],
    /// Chunks per axis (`ceil(shape / chunk)`).
    pub dims: [usize; 3],
}

impl ChunkGrid {
    pub fn new(shape: [usize; 3], chunk: [usize; 3]) -> Result<Self> {
        if let Some(c) = chunk.iter().find(|&&c| c == 0) {
            return Err(Error::invalid(
                "chunks",
                format!("chunk sizes must be >= 1, got {c} in {chunk:?}"),
            ));
        }
        let dims = [0, 1, 2].map(|a| shape[a].div_ceil(chunk[a]));
        Ok(Self { shape, chunk, dims })
    }

    /// Number of chunks in the grid.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grid coordinates of the chunk with raveled grid index `k`.
    pub fn coord(&self, k: usize) -> [usize; 3] {
        let [_, gy, gx] = self.dims;
        [k / (gy * gx), (k / gx) % gy, k % gx]
    }

    /// Origin and (clipped) shape of the chunk at grid coordinates `c`.
    pub fn block(&self, c: [usize; 3]) -> ([usize; 3], [usize; 3]) {
        let origin = [0, 1, 2].map(|a| c[a] * self.chunk[a]);
        let shape = [0, 1, 2].map(|a| self.chunk[a].min(self.shape[a] - origin[a]));
        (origin, shape)
    }
}

/// The id each object is painted with: `1..N` in object order (`to_volume`), or the
/// objects' own ids (`stack_volume`).
pub fn object_ids(objects: &RleObjects, own_ids: bool) -> Vec<u64> {
    if own_ids {
        objects.ids.clone()
    } else {
        (1..=objects.len() as u64).collect()
    }
}

/// Checks that every id fits the output label type.
pub fn check_ids<T: Label>(ids: &[u64]) -> Result<()> {
    match ids.iter().max() {
        Some(&m) if m > T::MAX_U64 => Err(Error::overflow(
            "dtype",
            format!(
                "id {m} does not fit the output dtype (max {}); choose a wider dtype",
                T::MAX_U64
            ),
        )),
        _ => Ok(()),
    }
}

fn check_block(shape: [usize; 3], origin: [usize; 3], block: [usize; 3], len: usize) -> Result<()> {
    if block.contains(&0) {
        return Err(Error::invalid(
            "shape",
            format!("block sizes must be >= 1, got {block:?}"),
        ));
    }
    if (0..3).any(|a| origin[a].checked_add(block[a]).is_none_or(|e| e > shape[a])) {
        return Err(Error::shape(
            "origin",
            format!(
                "block at {origin:?} of shape {block:?} does not lie inside the volume {shape:?}"
            ),
        ));
    }
    let n: usize = block.iter().product();
    if n != len {
        return Err(Error::shape(
            "out",
            format!("the block {block:?} holds {n} voxels, the output buffer {len}"),
        ));
    }
    Ok(())
}

/// Paints the part of run `[s, s + r)` of a volume of `shape` that falls in the block at
/// `origin` of shape `block`; `out` is the block, raveled.
#[inline]
fn paint_run<T: Copy>(
    s: i64,
    r: i64,
    v: T,
    shape: [usize; 3],
    origin: [usize; 3],
    block: [usize; 3],
    out: &mut [T],
) {
    let (h, w) = (shape[1] as i64, shape[2] as i64);
    let [z0, y0, x0] = origin.map(|o| o as i64);
    let [z1, y1, x1] = [0, 1, 2].map(|a| (origin[a] + block[a]) as i64);
    let (bh, bw) = (block[1] as i64, block[2] as i64);
    let e = s + r;
    let (ra, rb) = (s / w, (e - 1) / w);
    for z in (ra / h).max(z0)..=(rb / h).min(z1 - 1) {
        let ya = (ra - z * h).max(y0);
        let yb = (rb - z * h).min(h - 1).min(y1 - 1);
        for y in ya..=yb {
            let base = (z * h + y) * w;
            let xa = (s - base).max(x0);
            let xb = (e - base).min(w).min(x1);
            if xa < xb {
                let off = (((z - z0) * bh + (y - y0)) * bw + (xa - x0)) as usize;
                out[off..off + (xb - xa) as usize].fill(v);
            }
        }
    }
}

/// First index in `0..n` where `pred` turns false (`pred` true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Paints `objects` (of a volume of `shape`) with `ids` into the block at `origin` of shape
/// `block`; `out` is the raveled block, voxels no run covers are left as they are. Later
/// objects win where objects overlap, as in `Segmentation::to_volume`.
///
/// For a one-off block: objects whose box misses the block are skipped and each object's
/// runs (sorted by start, as [`RleObjects`] keeps them) are bisected to the block's raveled
/// range. To paint every chunk of a grid, use a [`ChunkIndex`].
pub fn paint_block<T: Label>(
    objects: &RleObjects,
    ids: &[u64],
    shape: [usize; 3],
    origin: [usize; 3],
    block: [usize; 3],
    out: &mut [T],
) -> Result<()> {
    check_objects(objects, ids)?;
    check_block(shape, origin, block, out.len())?;
    check_ids::<T>(ids)?;
    paint_listed(objects, ids, 0..ids.len(), shape, origin, block, out);
    Ok(())
}

/// [`paint_block`] for the objects `which` only (ascending, so that later objects still
/// win), its checks left to the caller: for one caller painting many blocks of objects it
/// has checked once, each with the few objects that reach it.
pub(crate) fn paint_listed<T: Label>(
    objects: &RleObjects,
    ids: &[u64],
    which: impl IntoIterator<Item = usize>,
    shape: [usize; 3],
    origin: [usize; 3],
    block: [usize; 3],
    out: &mut [T],
) {
    let [h, w] = [shape[1] as i64, shape[2] as i64];
    let lo = (origin[0] as i64 * h + origin[1] as i64) * w + origin[2] as i64;
    let last = [0, 1, 2].map(|a| (origin[a] + block[a] - 1) as i64);
    let hi = (last[0] * h + last[1]) * w + last[2] + 1;
    for i in which {
        let id = ids[i];
        let b = &objects.boxes[6 * i..6 * i + 6];
        if (0..3).any(|a| b[a] >= (origin[a] + block[a]) as i64 || b[a + 3] <= origin[a] as i64) {
            continue;
        }
        let (a, z) = (objects.offsets[i] as usize, objects.offsets[i + 1] as usize);
        let (starts, runs) = (&objects.starts[a..z], &objects.runs[a..z]);
        let first = partition(starts.len(), |j| starts[j] + runs[j] <= lo);
        let end = partition(starts.len(), |j| starts[j] < hi);
        let v = T::from_u64(id);
        for j in first..end.max(first) {
            paint_run(starts[j], runs[j], v, shape, origin, block, out);
        }
    }
}

pub(crate) fn check_objects(objects: &RleObjects, ids: &[u64]) -> Result<()> {
    let n = objects.len();
    if ids.len() != n {
        return Err(Error::shape(
            "ids",
            format!("expected one id per object ({n}), got {}", ids.len()),
        ));
    }
    if objects.offsets.len() != n + 1 || objects.boxes.len() != 6 * n {
        return Err(Error::shape(
            "objects",
            "expected 3D objects with boxes (N x 6) and offsets (N + 1)",
        ));
    }
    Ok(())
}

/// For every chunk of a grid that some run touches, the `(object, run)` pairs touching it,
/// in object order (so later objects still win where objects overlap).
#[derive(Debug, Clone)]
pub struct ChunkIndex {
    pub grid: ChunkGrid,
    /// Raveled grid indices of the touched chunks, ascending.
    pub touched: Vec<usize>,
    offsets: Vec<usize>,
    /// `(run index, object index)` of each chunk's runs, `offsets`-delimited.
    entries: Vec<(usize, u32)>,
}

impl ChunkIndex {
    /// Buckets the runs of `objects` (of a volume of `grid.shape`) by the chunks they touch.
    pub fn build(objects: &RleObjects, grid: ChunkGrid) -> Result<Self> {
        let n = objects.len();
        if objects.offsets.len() != n + 1 {
            return Err(Error::shape(
                "objects",
                "expected N + 1 offsets for N objects",
            ));
        }
        if n > u32::MAX as usize {
            return Err(Error::invalid(
                "objects",
                "more than 2^32 objects in one class",
            ));
        }
        let size: usize = grid.shape.iter().product();
        if let Some(j) = (0..objects.starts.len())
            .find(|&j| (objects.starts[j] + objects.runs[j]) as usize > size)
        {
            return Err(Error::invalid(
                "objects",
                format!("run {j} lies outside the volume {:?}", grid.shape),
            ));
        }
        let mut pairs: Vec<(usize, usize, u32)> = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let (a, b) = (objects.offsets[i] as usize, objects.offsets[i + 1] as usize);
                let mut out = Vec::new();
                let mut seen = Vec::new();
                for j in a..b {
                    seen.clear();
                    chunks_of_run(objects.starts[j], objects.runs[j], &grid, &mut seen);
                    seen.sort_unstable();
                    seen.dedup();
                    out.extend(seen.iter().map(|&k| (k, j, i as u32)));
                }
                out
            })
            .collect();
        pairs.par_sort_unstable_by_key(|&(k, j, _)| (k, j));
        let mut touched = Vec::new();
        let mut offsets = vec![0];
        for (p, &(k, _, _)) in pairs.iter().enumerate() {
            if touched.last() != Some(&k) {
                if p > 0 {
                    offsets.push(p);
                }
                touched.push(k);
            }
        }
        if !pairs.is_empty() {
            offsets.push(pairs.len());
        }
        let entries = pairs.into_iter().map(|(_, j, i)| (j, i)).collect();
        Ok(Self {
            grid,
            touched,
            offsets,
            entries,
        })
    }

    /// Number of touched chunks.
    pub fn len(&self) -> usize {
        self.touched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }

    /// Origin and shape of the `t`-th touched chunk.
    pub fn block(&self, t: usize) -> ([usize; 3], [usize; 3]) {
        self.grid.block(self.grid.coord(self.touched[t]))
    }

    /// Paints the `t`-th touched chunk into `out` (its raveled block, see [`Self::block`]).
    pub fn paint_chunk<T: Label>(
        &self,
        t: usize,
        objects: &RleObjects,
        ids: &[u64],
        out: &mut [T],
    ) -> Result<()> {
        if t >= self.len() {
            return Err(Error::invalid(
                "chunk",
                format!("chunk {t} out of range: {} chunks are touched", self.len()),
            ));
        }
        check_objects(objects, ids)?;
        check_ids::<T>(ids)?;
        let (origin, block) = self.block(t);
        check_block(self.grid.shape, origin, block, out.len())?;
        self.paint_unchecked(t, objects, ids, origin, block, out);
        Ok(())
    }

    fn paint_unchecked<T: Label>(
        &self,
        t: usize,
        objects: &RleObjects,
        ids: &[u64],
        origin: [usize; 3],
        block: [usize; 3],
        out: &mut [T],
    ) {
        for &(j, i) in &self.entries[self.offsets[t]..self.offsets[t + 1]] {
            let v = T::from_u64(ids[i as usize]);
            let (s, r) = (objects.starts[j], objects.runs[j]);
            paint_run(s, r, v, self.grid.shape, origin, block, out);
        }
    }
}

/// Pushes the raveled grid index of every chunk run `[s, s + r)` touches (with repeats).
fn chunks_of_run(s: i64, r: i64, grid: &ChunkGrid, out: &mut Vec<usize>) {
    let (h, w) = (grid.shape[1] as i64, grid.shape[2] as i64);
    let [cz, cy, cx] = grid.chunk.map(|c| c as i64);
    let [_, gy, gx] = grid.dims;
    let e = s + r;
    let (ra, rb) = (s / w, (e - 1) / w);
    let mut row = ra;
    while row <= rb {
        let (z, y) = (row / h, row % h);
        let base = row * w;
        let xa = (s - base).max(0);
        let xb = (e - base).min(w);
        let k0 = ((z / cz) as usize * gy + (y / cy) as usize) * gx;
        for c in (xa / cx)..=((xb - 1) / cx) {
            out.push(k0 + c as usize);
        }
        row = if xa == 0 && xb == w {
            // The following full rows of this chunk row touch the same chunks: skip them.
            let chunk_row_end = z * h + ((y / cy + 1) * cy).min(h);
            chunk_row_end.min(rb).max(row + 1)
        } else {
            row + 1
        };
    }
}

/// Paints one class into a whole raveled `(z, y, x)` volume `out`, slab-parallel over z;
/// voxels no run covers are left as they are.
pub fn paint_volume<T: Label>(
    objects: &RleObjects,
    ids: &[u64],
    shape: [usize; 3],
    out: &mut [T],
) -> Result<()> {
    check_objects(objects, ids)?;
    check_ids::<T>(ids)?;
    check_block(shape, [0; 3], shape, out.len()).map_err(|e| match e {
        Error::Shape { msg, .. } => Error::shape("out", msg),
        e => e,
    })?;
    if out.is_empty() {
        return Ok(());
    }
    // Slabs are contiguous in `out`; each bisects the objects' runs to its own range.
    let slabs = (rayon::current_num_threads() * 4).clamp(1, shape[0]);
    let depth = shape[0].div_ceil(slabs);
    let plane = shape[1] * shape[2];
    out.par_chunks_mut(depth * plane)
        .enumerate()
        .try_for_each(|(k, part)| {
            let origin = [k * depth, 0, 0];
            let block = [part.len() / plane, shape[1], shape[2]];
            paint_block(objects, ids, shape, origin, block, part)
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rle;
    use ndarray::Array3;

    fn sample() -> (Array3<u16>, RleObjects) {
        let mut v = Array3::<u16>::zeros((5, 7, 9));
        for ((z, y, x), p) in v.indexed_iter_mut() {
            *p = ((z * 3 + y * 5 + x * 7) % 11 / 3) as u16 * 4;
        }
        v.slice_mut(ndarray::s![1..3, .., ..]).fill(9);
        let o = rle::encode(v.view().into_dyn()).unwrap();
        (v, o)
    }

    #[test]
    fn chunks_reassemble_the_volume() {
        let (v, o) = sample();
        let shape = [5, 7, 9];
        let ids = object_ids(&o, true);
        for chunk in [[1, 1, 1], [2, 3, 4], [5, 7, 9], [6, 8, 10], [1, 7, 2]] {
            let grid = ChunkGrid::new(shape, chunk).unwrap();
            let index = ChunkIndex::build(&o, grid).unwrap();
            let mut full = Array3::<u16>::zeros((5, 7, 9));
            let mut direct = Array3::<u16>::zeros((5, 7, 9));
            for k in 0..grid.len() {
                let (origin, block) = grid.block(grid.coord(k));
                let mut buf = vec![0u16; block.iter().product()];
                paint_block(&o, &ids, shape, origin, block, &mut buf).unwrap();
                let b = Array3::from_shape_vec(block, buf).unwrap();
                direct
                    .slice_mut(ndarray::s![
                        origin[0]..origin[0] + block[0],
                        origin[1]..origin[1] + block[1],
                        origin[2]..origin[2] + block[2]
                    ])
                    .assign(&b);
                assert_eq!(
                    index.touched.binary_search(&k).is_ok(),
                    b.iter().any(|&x| x != 0)
                );
            }
            for t in 0..index.len() {
                let (origin, block) = index.block(t);
                let mut buf = vec![0u16; block.iter().product()];
                index.paint_chunk(t, &o, &ids, &mut buf).unwrap();
                full.slice_mut(ndarray::s![
                    origin[0]..origin[0] + block[0],
                    origin[1]..origin[1] + block[1],
                    origin[2]..origin[2] + block[2]
                ])
                .assign(&Array3::from_shape_vec(block, buf).unwrap());
            }
            assert_eq!(full, v, "chunk {chunk:?}");
            assert_eq!(direct, v, "chunk {chunk:?}");
        }
        let mut whole = vec![0u16; v.len()];
        paint_volume(&o, &ids, shape, &mut whole).unwrap();
        assert_eq!(whole, v.iter().copied().collect::<Vec<_>>());
    }

    #[test]
    fn bad_inputs() {
        let (_, o) = sample();
        assert!(ChunkGrid::new([5, 7, 9], [0, 1, 1]).is_err());
        let ids = object_ids(&o, false);
        let mut buf = vec![0u8; 8];
        assert!(paint_block(&o, &ids, [5, 7, 9], [4, 0, 0], [2, 2, 2], &mut buf).is_err());
        let big = vec![300u64; ids.len()];
        assert!(matches!(
            paint_block(&o, &big, [5, 7, 9], [0, 0, 0], [2, 2, 2], &mut buf),
            Err(Error::LabelOverflow { .. })
        ));
    }
}
