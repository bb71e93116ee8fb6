//! Per-object erosion, dilation and hole filling of a segmentation (spec §5.6.3).
//!
//! The reference decodes each class to a dense volume and relabels it afterwards; design §3
//! asks to work per object or per chunk instead. Each object is handled in a crop around its
//! box, painted with every object of its class that reaches into the crop, so memory follows
//! the largest object, never the volume, and objects run in parallel. Erosion and dilation
//! instead take a grid of blocks with a halo when those hold fewer voxels than the crops
//! (crowded objects), so memory follows a block.
//!
//! - erode n: an object loses the voxels within n face-steps of anything that is not itself
//!   (background or another object); the volume border does not erode. An object eroded
//!   away disappears; pieces an erosion splits keep one id.
//! - dilate n: objects grow n face-steps into background only, all at once, step by step; a
//!   voxel reached by several objects in one step goes to the largest id.
//! - fill holes: each object's holes are filled per z-slice, background voxels only.

use ndarray::{ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::box_index::BoxIndex;
use crate::chunks::{check_objects, paint_listed};
use crate::labels::fill_holes;
use crate::morphology::{dilate_labels, erode_labels, erode_mask};
use crate::rle::RleObjects;
use crate::rowruns::for_each_run;
use crate::segmentation::{ClassObjects, Segmentation};
use crate::{Error, Result};

/// One per-object operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOp {
    Erode(usize),
    Dilate(usize),
    FillHoles,
}

/// `seg` after `erode` steps, then `dilate` steps, then hole filling (the reference's
/// order), each applied object by object; operations that are off are skipped.
pub fn apply_object_ops(
    seg: &Segmentation,
    erode: usize,
    dilate: usize,
    fill: bool,
) -> Result<Segmentation> {
    let ops = [
        (erode > 0).then_some(ObjectOp::Erode(erode)),
        (dilate > 0).then_some(ObjectOp::Dilate(dilate)),
        fill.then_some(ObjectOp::FillHoles),
    ];
    // Each step builds a new segmentation from the last one: no copy of `seg` up front.
    let mut out: Option<Segmentation> = None;
    for op in ops.into_iter().flatten() {
        out = Some(apply(out.as_ref().unwrap_or(seg), op)?);
    }
    Ok(out.unwrap_or_else(|| seg.clone()))
}

/// `seg` after one operation on every object of every class.
pub fn apply(seg: &Segmentation, op: ObjectOp) -> Result<Segmentation> {
    let mut out = Segmentation::new(seg.shape);
    for c in &seg.classes {
        out.insert(ClassObjects {
            class_id: c.class_id,
            thing: c.thing,
            objects: apply_class(&c.objects, seg.shape, op)?,
        })?;
    }
    Ok(out)
}

/// What is left of one object: its voxels as sorted runs of the raveled volume.
struct Piece {
    id: u64,
    bbox: [i64; 6],
    count: i64,
    starts: Vec<i64>,
    runs: Vec<i64>,
}

impl Piece {
    fn new(id: u64) -> Self {
        Piece {
            id,
            bbox: [i64::MAX, i64::MAX, i64::MAX, i64::MIN, i64::MIN, i64::MIN],
            count: 0,
            starts: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// Adds the `n` voxels from raveled index `s`, which lie in one row from `(z, y, x)`
    /// on, after every run added before. A run contiguous with the last one (a full-width
    /// row continued, or a row cut at a block's edge) extends it.
    fn push(&mut self, s: i64, n: i64, [z, y, x]: [i64; 3]) {
        match (self.starts.last(), self.runs.last_mut()) {
            (Some(&ls), Some(lr)) if ls + *lr == s => *lr += n,
            _ => {
                self.starts.push(s);
                self.runs.push(n);
            }
        }
        self.count += n;
        let (lo, hi) = ([z, y, x], [z + 1, y + 1, x + n]);
        for a in 0..3 {
            self.bbox[a] = self.bbox[a].min(lo[a]);
            self.bbox[a + 3] = self.bbox[a + 3].max(hi[a]);
        }
    }
}

fn apply_class(objects: &RleObjects, shape: [usize; 3], op: ObjectOp) -> Result<RleObjects> {
    if objects.len() >= u32::MAX as usize {
        return Err(Error::overflow(
            "objects",
            "more than 2**32 - 2 objects in one class",
        ));
    }
    let (order, rank) = ranks(objects);
    check_objects(objects, &rank)?;
    let index = BoxIndex::new(objects, shape);
    let pieces: Vec<Option<Piece>> = match BlockGrid::cheaper(objects, shape, op) {
        Some(grid) => grid.apply(objects, &rank, &order, &index)?,
        None => (0..objects.len())
            .into_par_iter()
            .map_init(Vec::new, |near, i| {
                object(objects, &rank, &index, near, shape, i, op)
            })
            .collect::<Result<_>>()?,
    };
    let mut out = RleObjects {
        ndim: 3,
        offsets: vec![0],
        ..Default::default()
    };
    for p in pieces.into_iter().flatten() {
        out.ids.push(p.id);
        out.boxes.extend_from_slice(&p.bbox);
        out.counts.push(p.count);
        out.starts.extend_from_slice(&p.starts);
        out.runs.extend_from_slice(&p.runs);
        out.offsets.push(out.starts.len() as i64);
    }
    Ok(out)
}

/// The objects in order of id, and each object's 1-based rank in that order. Crops and
/// blocks are painted with ranks, not ids: four bytes a voxel, and the rules "largest id
/// wins" (dilation) and "smaller id wins" (hole filling ties) compare ranks as they would
/// ids.
fn ranks(objects: &RleObjects) -> (Vec<usize>, Vec<u64>) {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|&i| (objects.ids[i], i));
    let mut rank = vec![0u64; objects.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as u64 + 1;
    }
    (order, rank)
}

/// Erosion or dilation of a whole class block by block. Each object's crop (see [`object`])
/// holds every object reaching into it, so crowded objects are eroded or dilated again for
/// each neighbour; a grid of blocks handles each voxel once. `n` steps look `n` voxels away,
/// so a block's core is exact when painted with a halo of `n` voxels.
struct BlockGrid {
    shape: [usize; 3],
    /// Core edge along each axis.
    core: [usize; 3],
    /// Erosion or dilation.
    op: ObjectOp,
    /// Its steps, capped at the sum of the sizes; also the halo.
    steps: usize,
    /// The blocks (raveled over the grid) with some object near enough.
    members: Vec<usize>,
}

impl BlockGrid {
    /// The grid for `op` when its blocks hold fewer voxels than the objects' crops; `None`
    /// for hole filling, which works per slice in the objects' own boxes.
    fn cheaper(objects: &RleObjects, shape: [usize; 3], op: ObjectOp) -> Option<Self> {
        let (grid, blocks, crops) = Self::plan(objects, shape, op)?;
        (blocks < crops).then_some(grid)
    }

    /// The grid for `op`, the voxels of its blocks and those of the objects' crops.
    fn plan(objects: &RleObjects, shape: [usize; 3], op: ObjectOp) -> Option<(Self, u128, u128)> {
        // No voxel is further than the sum of the sizes from another.
        let steps = match op {
            ObjectOp::Erode(n) | ObjectOp::Dilate(n) => n.min(shape.iter().sum()),
            ObjectOp::FillHoles => return None,
        };
        // How far outside its box an object changes voxels: dilation grows `steps` out,
        // erosion stays inside.
        let margin = crop_margin(op);
        let reach = match op {
            ObjectOp::Dilate(_) => steps,
            _ => 0,
        };
        let core = shape.map(|s| s.min(BLOCK_EDGE.max(4 * steps)).max(1));
        let nb = [0, 1, 2].map(|a| shape[a].div_ceil(core[a]));
        let mut near = vec![false; nb.iter().product()];
        let mut crops = 0u128;
        for i in 0..objects.len() {
            let b = &objects.boxes[6 * i..6 * i + 6];
            let (lo, hi) = (
                [0, 1, 2].map(|a| b[a].max(0) as usize),
                [0, 1, 2].map(|a| b[a + 3].max(0) as usize),
            );
            crops += (0..3)
                .map(|a| hi[a].saturating_add(margin).min(shape[a]) - lo[a].saturating_sub(margin))
                .map(|e| e as u128)
                .product::<u128>();
            // Blocks whose core meets the box widened by the reach.
            let first = [0, 1, 2].map(|a| lo[a].saturating_sub(reach) / core[a]);
            let end = [0, 1, 2].map(|a| ((hi[a] + reach).div_ceil(core[a])).min(nb[a]));
            for z in first[0]..end[0] {
                for y in first[1]..end[1] {
                    for x in first[2]..end[2] {
                        near[(z * nb[1] + y) * nb[2] + x] = true;
                    }
                }
            }
        }
        let members: Vec<usize> = (0..near.len()).filter(|&b| near[b]).collect();
        let grid = BlockGrid {
            shape,
            core,
            op,
            steps,
            members,
        };
        let blocks: u128 = (0..grid.members.len())
            .map(|k| {
                grid.extent(k)
                    .1
                    .iter()
                    .map(|&e| e as u128)
                    .product::<u128>()
            })
            .sum();
        Some((grid, blocks, crops))
    }

    /// Origin and size of the `k`-th member block with its halo, clipped to the volume.
    fn extent(&self, k: usize) -> ([usize; 3], [usize; 3]) {
        let (c0, c1) = self.core_of(k);
        let origin = [0, 1, 2].map(|a| c0[a].saturating_sub(self.steps));
        let end = [0, 1, 2].map(|a| (c1[a] + self.steps).min(self.shape[a]));
        (origin, [0, 1, 2].map(|a| end[a] - origin[a]))
    }

    /// Start and end of the `k`-th member block's core.
    fn core_of(&self, k: usize) -> ([usize; 3], [usize; 3]) {
        let nb = [0, 1, 2].map(|a| self.shape[a].div_ceil(self.core[a]));
        let b = self.members[k];
        let at = [b / (nb[1] * nb[2]), (b / nb[2]) % nb[1], b % nb[2]];
        let start = [0, 1, 2].map(|a| at[a] * self.core[a]);
        (
            start,
            [0, 1, 2].map(|a| (start[a] + self.core[a]).min(self.shape[a])),
        )
    }

    /// Every object's piece after the erosion or dilation; `order` lists the objects by
    /// rank.
    fn apply(
        &self,
        objects: &RleObjects,
        rank: &[u64],
        order: &[usize],
        index: &BoxIndex,
    ) -> Result<Vec<Option<Piece>>> {
        let [_, h, w] = self.shape.map(|s| s as i64);
        // (object, start, length) of every row segment of every block's core.
        let mut segs: Vec<(u32, i64, i64)> = (0..self.members.len())
            .into_par_iter()
            .map_init(Vec::new, |near, k| -> Result<Vec<(u32, i64, i64)>> {
                let (origin, size) = self.extent(k);
                let crop = paint_crop(objects, rank, index, near, self.shape, origin, size);
                let view = ArrayView3::from_shape(size, &crop).expect("block of its shape");
                let done = match self.op {
                    ObjectOp::Erode(_) => erode_labels(view.into_dyn(), self.steps)?,
                    _ => dilate_labels(view.into_dyn(), self.steps)?,
                };
                let done = done.as_slice().expect("fresh array");
                let (c0, c1) = self.core_of(k);
                let mut out = Vec::new();
                let mut bits = Vec::new();
                for z in c0[0]..c1[0] {
                    for y in c0[1]..c1[1] {
                        let r = ((z - origin[0]) * size[1] + (y - origin[1])) * size[2];
                        let line = &done[r + c0[2] - origin[2]..r + c1[2] - origin[2]];
                        let row = (z as i64 * h + y as i64) * w + c0[2] as i64;
                        for_each_run(
                            line,
                            |a, b| a == b,
                            &mut bits,
                            |x0, x1| {
                                let v = line[x0];
                                if v != 0 {
                                    let i = order[v as usize - 1] as u32;
                                    out.push((i, row + x0 as i64, (x1 - x0) as i64));
                                }
                            },
                        );
                    }
                }
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?
            .concat();
        segs.par_sort_unstable();
        let mut pieces: Vec<Option<Piece>> = (0..objects.len()).map(|_| None).collect();
        for group in segs.chunk_by(|a, b| a.0 == b.0) {
            let i = group[0].0 as usize;
            let mut p = Piece::new(objects.ids[i]);
            for &(_, s, n) in group {
                p.push(s, n, [s / (h * w), (s / w) % h, s % w]);
            }
            pieces[i] = Some(p);
        }
        Ok(pieces)
    }
}

/// The core edge of [`BlockGrid`]'s blocks for few steps; more steps widen it to 4 halos,
/// so that the halo stays under half of a block's voxels.
const BLOCK_EDGE: usize = 64;

/// How far past an object's box its crop reaches for `op`, so that nothing outside the crop
/// can change the result: erosion looks one voxel past the object (the rest of the object's
/// own distance is inside its box); every object that reaches a voxel within n steps of
/// this one starts within 2n of its box. Saturating: any count past the volume's size grows
/// as far as there is room.
fn crop_margin(op: ObjectOp) -> usize {
    match op {
        ObjectOp::Erode(_) => 1,
        ObjectOp::Dilate(n) => n.saturating_mul(2),
        ObjectOp::FillHoles => 0,
    }
}

/// The block at `origin` of `size` (inside the volume, not empty) painted with the ranks of
/// the objects that reach into it; `near` is scratch.
fn paint_crop(
    objects: &RleObjects,
    rank: &[u64],
    index: &BoxIndex,
    near: &mut Vec<usize>,
    shape: [usize; 3],
    origin: [usize; 3],
    size: [usize; 3],
) -> Vec<u32> {
    let mut crop = vec![0u32; size.iter().product()];
    let end = [0, 1, 2].map(|a| origin[a] + size[a]);
    index.meeting(objects, origin, end, near);
    paint_listed(
        objects,
        rank,
        near.iter().copied(),
        shape,
        origin,
        size,
        &mut crop,
    );
    crop
}

/// Object `i` after `op`, or `None` when nothing is left of it.
fn object(
    objects: &RleObjects,
    rank: &[u64],
    index: &BoxIndex,
    near: &mut Vec<usize>,
    shape: [usize; 3],
    i: usize,
    op: ObjectOp,
) -> Result<Option<Piece>> {
    let margin = i64::try_from(crop_margin(op)).unwrap_or(i64::MAX);
    let b = &objects.boxes[6 * i..6 * i + 6];
    let origin = [0, 1, 2].map(|a| b[a].saturating_sub(margin).max(0) as usize);
    let end = [0, 1, 2].map(|a| (b[a + 3].saturating_add(margin)).min(shape[a] as i64) as usize);
    if (0..3).any(|a| end[a] <= origin[a]) {
        return Ok(None);
    }
    let size = [0, 1, 2].map(|a| end[a] - origin[a]);
    let crop = paint_crop(objects, rank, index, near, shape, origin, size);
    let own = rank[i] as u32;
    let view = ArrayView3::from_shape(size, &crop).expect("crop of its shape");
    let mask: Vec<bool> = match op {
        ObjectOp::Erode(n) => {
            let m = view.mapv(|v| v == own);
            erode_mask(m.view().into_dyn(), n)?
                .into_raw_vec_and_offset()
                .0
        }
        ObjectOp::Dilate(n) => dilate_labels(view.into_dyn(), n)?
            .iter()
            .map(|&v| v == own)
            .collect(),
        ObjectOp::FillHoles => {
            let plane = size[1] * size[2];
            let mut m = Vec::with_capacity(crop.len());
            for slice in crop.chunks_exact(plane) {
                let s = ArrayView2::from_shape((size[1], size[2]), slice).expect("plane");
                m.extend(fill_holes(s.into_dyn())?.iter().map(|&v| v == own));
            }
            m
        }
    };
    Ok(piece(&mask, size, origin, shape, objects.ids[i]))
}

/// The runs (of the raveled volume), box and count of a crop's mask.
fn piece(
    mask: &[bool],
    size: [usize; 3],
    origin: [usize; 3],
    shape: [usize; 3],
    id: u64,
) -> Option<Piece> {
    let (h, w) = (shape[1] as i64, shape[2] as i64);
    let mut p = Piece::new(id);
    let mut bits = Vec::new();
    for (r, line) in mask.chunks_exact(size[2]).enumerate() {
        let z = (origin[0] + r / size[1]) as i64;
        let y = (origin[1] + r % size[1]) as i64;
        let row = (z * h + y) * w + origin[2] as i64;
        for_each_run(
            line,
            |a, b| a == b,
            &mut bits,
            |x0, x1| {
                if line[x0] {
                    let x = (origin[2] + x0) as i64;
                    p.push(row + x0 as i64, (x1 - x0) as i64, [z, y, x]);
                }
            },
        );
    }
    (p.count > 0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn seg(vol: &Array3<i32>) -> Segmentation {
        Segmentation::from_labels(vol.view(), 1, true).unwrap()
    }

    #[test]
    fn erode_then_dilate_restores_a_cube_and_fill_closes_a_ring() {
        let mut vol = Array3::<i32>::zeros((7, 7, 7));
        vol.slice_mut(ndarray::s![1..6, 1..6, 1..6]).fill(3);
        let eroded = apply_object_ops(&seg(&vol), 1, 0, false).unwrap();
        assert_eq!(eroded.classes[0].objects.counts, vec![27]);
        assert_eq!(
            eroded.classes[0].objects.boxes,
            vec![2, 2, 2, 5, 5, 5],
            "a tight box"
        );
        let back = apply_object_ops(&eroded, 0, 1, false).unwrap();
        assert_eq!(back.classes[0].objects.counts, vec![27 + 6 * 9]);
        let mut ring = Array3::<i32>::zeros((1, 5, 5));
        ring.slice_mut(ndarray::s![.., 1..4, 1..4]).fill(1);
        ring[[0, 2, 2]] = 0;
        let filled = apply_object_ops(&seg(&ring), 0, 0, true).unwrap();
        assert_eq!(filled.classes[0].objects.counts, vec![9]);
        assert_eq!(filled.to_volume(1).unwrap()[[0, 2, 2]], 1);
    }

    #[test]
    fn blocks_and_crops_agree() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..12 {
            let shape = (1 + next(20), 1 + next(90), 1 + next(90));
            let mut vol = Array3::<i32>::zeros(shape);
            for id in 1..=(5 + next(120)) as i32 {
                let s = 1 + next(6);
                let (z, y, x) = (next(shape.0), next(shape.1), next(shape.2));
                let e = [
                    (z + s).min(shape.0),
                    (y + s).min(shape.1),
                    (x + s).min(shape.2),
                ];
                vol.slice_mut(ndarray::s![z..e[0], y..e[1], x..e[2]])
                    .fill(id);
            }
            let seg = seg(&vol);
            let objects = &seg.classes[0].objects;
            let shape = [shape.0, shape.1, shape.2];
            let (order, rank) = ranks(objects);
            let index = BoxIndex::new(objects, shape);
            let mut near = Vec::new();
            let ops = [1, 2, 3, 7, 40]
                .into_iter()
                .flat_map(|n| [ObjectOp::Dilate(n), ObjectOp::Erode(n)]);
            for op in ops {
                let (grid, ..) = BlockGrid::plan(objects, shape, op).unwrap();
                let blocks = grid.apply(objects, &rank, &order, &index).unwrap();
                for (i, b) in blocks.iter().enumerate() {
                    let c = object(objects, &rank, &index, &mut near, shape, i, op).unwrap();
                    let key = |p: &Option<Piece>| {
                        p.as_ref()
                            .map(|p| (p.id, p.bbox, p.count, p.starts.clone(), p.runs.clone()))
                    };
                    assert_eq!(key(b), key(&c), "round {round}, {op:?}, object {i}");
                }
            }
        }
    }

    #[test]
    fn full_width_rows_give_one_run() {
        let vol = Array3::<i32>::ones((2, 3, 4));
        let out = apply_object_ops(&seg(&vol), 0, 2, false).unwrap();
        let o = &out.classes[0].objects;
        assert_eq!((o.starts.clone(), o.runs.clone()), (vec![0], vec![24]));
    }
}
