//! Which objects' boxes meet a given box, without testing every object: a uniform grid of
//! cells, each listing the objects whose box meets it. Handling objects one by one, each in a
//! crop painted with its neighbours, would otherwise test every object per crop, which is
//! quadratic in the number of objects (20 000 small objects: seconds for a few milliseconds
//! of work).

use std::ops::Range;

use crate::rle::RleObjects;

/// The most entries (object, cell) the grid may hold before its cells are made coarser.
const MAX_ENTRIES: usize = 1 << 26;

/// See the module documentation.
pub struct BoxIndex {
    cell: [usize; 3],
    dims: [usize; 3],
    /// `offsets[c]..offsets[c + 1]` are the entries of cell `c` (raveled).
    offsets: Vec<usize>,
    /// Objects, ascending within each cell.
    entries: Vec<u32>,
}

/// The cells of edge `cell` that meet the voxels `lo..hi` (per axis, not empty).
fn cell_ranges(cell: [usize; 3], lo: [usize; 3], hi: [usize; 3]) -> [Range<usize>; 3] {
    [0, 1, 2].map(|a| lo[a] / cell[a]..(hi[a] - 1) / cell[a] + 1)
}

/// Calls `f` with the raveled index of every cell in `ranges` of a grid of `dims` cells.
fn for_each_cell([rz, ry, rx]: [Range<usize>; 3], dims: [usize; 3], mut f: impl FnMut(usize)) {
    for z in rz {
        for y in ry.clone() {
            for x in rx.clone() {
                f((z * dims[1] + y) * dims[2] + x);
            }
        }
    }
}

/// An object's box as half-open voxel ranges clipped to the volume, `None` when empty.
fn clipped(objects: &RleObjects, i: usize, shape: [usize; 3]) -> Option<([usize; 3], [usize; 3])> {
    let b = &objects.boxes[6 * i..6 * i + 6];
    let lo = [0, 1, 2].map(|a| b[a].clamp(0, shape[a] as i64) as usize);
    let hi = [0, 1, 2].map(|a| b[a + 3].clamp(0, shape[a] as i64) as usize);
    (0..3).all(|a| lo[a] < hi[a]).then_some((lo, hi))
}

impl BoxIndex {
    /// The index of `objects` (fewer than 2**32) in a volume of `shape`.
    pub fn new(objects: &RleObjects, shape: [usize; 3]) -> Self {
        Self::with_limit(objects, shape, MAX_ENTRIES)
    }

    /// [`BoxIndex::new`] with cells made coarser until at most `max_entries` entries (or
    /// one cell).
    fn with_limit(objects: &RleObjects, shape: [usize; 3], max_entries: usize) -> Self {
        let n = objects.len().max(1);
        let voxels: usize = shape.iter().product::<usize>().max(1);
        // Cubic cells of about `voxels / n` voxels, so there are about as many cells as
        // objects.
        let mut edge = ((voxels / n) as f64).cbrt().ceil().max(1.0) as usize;
        loop {
            let cell = shape.map(|s| edge.min(s.max(1)));
            let dims = [0, 1, 2].map(|a| shape[a].max(1).div_ceil(cell[a]));
            let boxes: Vec<_> = (0..objects.len())
                .filter_map(|i| clipped(objects, i, shape).map(|(lo, hi)| (i, lo, hi)))
                .collect();
            let total: usize = boxes
                .iter()
                .map(|&(_, lo, hi)| {
                    cell_ranges(cell, lo, hi)
                        .iter()
                        .map(|r| r.len())
                        .product::<usize>()
                })
                .sum();
            if total > max_entries && cell.iter().zip(&shape).any(|(c, s)| c < s) {
                edge *= 2;
                continue;
            }
            let ncells: usize = dims.iter().product();
            // Counting sort of the (cell, object) pairs: objects stay ascending per cell.
            let mut offsets = vec![0usize; ncells + 1];
            for &(_, lo, hi) in &boxes {
                for_each_cell(cell_ranges(cell, lo, hi), dims, |c| offsets[c + 1] += 1);
            }
            for c in 0..ncells {
                offsets[c + 1] += offsets[c];
            }
            let mut fill = offsets[..ncells].to_vec();
            let mut entries = vec![0u32; total];
            for &(i, lo, hi) in &boxes {
                for_each_cell(cell_ranges(cell, lo, hi), dims, |c| {
                    entries[fill[c]] = i as u32;
                    fill[c] += 1;
                });
            }
            return BoxIndex {
                cell,
                dims,
                offsets,
                entries,
            };
        }
    }

    /// Fills `out` with the objects, ascending, whose box meets `lo..hi` (per axis, inside
    /// the volume and not empty).
    pub fn meeting(
        &self,
        objects: &RleObjects,
        lo: [usize; 3],
        hi: [usize; 3],
        out: &mut Vec<usize>,
    ) {
        out.clear();
        for_each_cell(cell_ranges(self.cell, lo, hi), self.dims, |c| {
            let cell = &self.entries[self.offsets[c]..self.offsets[c + 1]];
            out.extend(cell.iter().map(|&i| i as usize));
        });
        out.sort_unstable();
        out.dedup();
        out.retain(|&i| {
            let b = &objects.boxes[6 * i..6 * i + 6];
            (0..3).all(|a| b[a] < hi[a] as i64 && b[a + 3] > lo[a] as i64)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_boxes_that_meet() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for round in 0..20 {
            let shape = [1 + next(30), 1 + next(70), 1 + next(70)];
            let n = next(300);
            let mut objects = RleObjects {
                ndim: 3,
                offsets: vec![0; n + 1],
                ..Default::default()
            };
            for _ in 0..n {
                // Boxes of every size, some past the volume's edge.
                let lo = shape.map(|s| next(s + 4) as i64 - 2);
                let hi = [0, 1, 2].map(|a| {
                    let reach = 1 + next(shape[a] + 2);
                    lo[a] + 1 + next(reach) as i64
                });
                objects
                    .boxes
                    .extend_from_slice(&[lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]]);
                objects.ids.push(objects.ids.len() as u64 + 1);
                objects.counts.push(1);
            }
            // A tight limit on the entries: coarser cells, down to one.
            let limit = [MAX_ENTRIES, 40][round % 2];
            let index = BoxIndex::with_limit(&objects, shape, limit);
            assert!(index.entries.len() <= limit || index.offsets.len() == 2);
            let mut got = Vec::new();
            for _ in 0..50 {
                let lo = shape.map(&mut next);
                let hi = [0, 1, 2].map(|a| lo[a] + 1 + next(shape[a] - lo[a]));
                index.meeting(&objects, lo, hi, &mut got);
                let want: Vec<usize> = (0..n)
                    .filter(|&i| {
                        let b = &objects.boxes[6 * i..6 * i + 6];
                        (0..3).all(|a| b[a] < hi[a] as i64 && b[a + 3] > lo[a] as i64)
                    })
                    .collect();
                assert_eq!(got, want, "round {round}, query {lo:?}..{hi:?}");
            }
        }
    }
}
