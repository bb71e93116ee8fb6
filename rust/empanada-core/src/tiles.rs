//! Tiled 2D inference (spec §4): the tile layout, the overlap mask, and stitching per-tile
//! panoptic maps back into one image.
//!
//! The layout is cztile's "almost equal border, fixed total length" strategy per axis,
//! reproduced float for float. Stitching follows the reference's merge (design §3: parity):
//! any pixel overlap between objects of different tiles chains them into one object, and a
//! single-tile object lying more than 10 % in the overlap band is dropped.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::consensus::box_candidates;
use crate::label::{check_non_negative, Label};
use crate::rle::{self, RleObjects};
use crate::unionfind::{groups, join};
use crate::{Error, Result};

/// A tile as `(y0, y1, x0, x1)`, half-open.
pub type Tile = [usize; 4];

/// The default overlap (minimum border) for a tile size: `min(128, int(0.1 * T))`.
pub fn default_overlap(tile_size: usize) -> usize {
    128.min(tile_size / 10)
}

/// Tile ROIs `[start, end)` along one axis of length `n` for tiles of length `t <= n` with
/// minimum interior border `b` (spec §4.2). Every ROI has length exactly `t`.
pub fn axis_tiles(n: usize, t: usize, b: usize) -> Result<Vec<(usize, usize)>> {
    if t == 0 || t > n {
        return Err(Error::invalid(
            "tile_size",
            format!("tile length must be in 1..={n} along this axis, got {t}"),
        ));
    }
    if 2 * b >= t {
        return Err(Error::invalid(
            "overlap",
            format!(
                "the overlap ({b}) must be less than half the tile length ({t}) along every axis; \
                 lower overlap or raise tile_size (tiles are clamped to the image size)"
            ),
        ));
    }
    if n == t {
        return Ok(vec![(0, t)]);
    }
    let edge = t - b;
    let interior_tile = t - 2 * b;
    let interior = n.saturating_sub(2 * edge);
    let count = interior.div_ceil(interior_tile) + 2;
    let borders = 2 * count - 2;
    // The same float operations as cztile, so the floors agree exactly.
    let excess = 2.0 * edge as f64 + ((count - 2) * interior_tile) as f64 - n as f64;
    let frac = excess / borders as f64 + b as f64;
    let cumulative: Vec<i64> = (0..=borders)
        .map(|j| (j as f64 * frac).floor() as i64)
        .collect();
    let mut bounds = vec![0i64; count + 1];
    bounds[count] = n as i64;
    for (i, bound) in bounds.iter_mut().enumerate().take(count).skip(1) {
        *bound = (i * t) as i64 - cumulative[2 * i - 1];
    }
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let width = bounds[k + 1] - bounds[k];
        let left = if k == 0 {
            0
        } else if k == count - 1 {
            t as i64 - width
        } else {
            cumulative[2 * k] - cumulative[2 * k - 1]
        };
        let start = (bounds[k] - left) as usize;
        out.push((start, start + t));
    }
    Ok(out)
}

/// The 2D tile layout of an `(h, w)` image (spec §4.1–4.2): tile length clamped to the
/// image per axis, overlap defaulting to `min(128, int(0.1 * tile_size))`, tiles enumerated
/// x outer, y inner.
pub fn tile_layout(
    shape: (usize, usize),
    tile_size: usize,
    overlap: Option<usize>,
) -> Result<Vec<Tile>> {
    let (h, w) = shape;
    if h == 0 || w == 0 {
        return Err(Error::shape(
            "shape",
            format!("the image must not be empty, got {shape:?}"),
        ));
    }
    if tile_size == 0 {
        return Err(Error::invalid("tile_size", "must be >= 1 pixel"));
    }
    let b = overlap.unwrap_or_else(|| default_overlap(tile_size));
    let ys = axis_tiles(h, tile_size.min(h), b)?;
    let xs = axis_tiles(w, tile_size.min(w), b)?;
    Ok(xs
        .iter()
        .flat_map(|&(x0, x1)| ys.iter().map(move |&(y0, y1)| [y0, y1, x0, x1]))
        .collect())
}

fn check_layout(shape: (usize, usize), layout: &[Tile]) -> Result<()> {
    if shape.0 == 0 || shape.1 == 0 {
        return Err(Error::shape(
            "shape",
            format!("the image must not be empty, got {shape:?}"),
        ));
    }
    if layout.is_empty() {
        return Err(Error::invalid("layout", "pass at least one tile"));
    }
    for (i, t) in layout.iter().enumerate() {
        if t[0] >= t[1] || t[2] >= t[3] || t[1] > shape.0 || t[3] > shape.1 {
            return Err(Error::invalid(
                "layout",
                format!(
                    "tile {i} {t:?} is not a non-empty (y0, y1, x0, x1) box inside the image {shape:?}"
                ),
            ));
        }
    }
    Ok(())
}

/// Rows (and columns) covered by at least two distinct tile ranges along that axis.
fn bands(ranges: impl Iterator<Item = (usize, usize)>) -> Result<Vec<(i64, i64)>> {
    let mut unique: Vec<(i64, i64)> = ranges.map(|(a, b)| (a as i64, (b - a) as i64)).collect();
    unique.sort_unstable();
    unique.dedup();
    let rles: Vec<rle::Rle<'_>> = unique
        .iter()
        .map(|r| (std::slice::from_ref(&r.0), std::slice::from_ref(&r.1)))
        .collect();
    let (s, r) = rle::vote(&rles, 2)?;
    Ok(s.into_iter().zip(r).map(|(s, r)| (s, s + r)).collect())
}

/// The overlap region of a layout (spec §4.2 `overlap_rle`): full-width rows covered by two
/// or more distinct y-ranges and full-height columns covered by two or more distinct
/// x-ranges, as sorted disjoint runs over the raveled `(h, w)` image.
pub fn overlap_rle(shape: (usize, usize), layout: &[Tile]) -> Result<(Vec<i64>, Vec<i64>)> {
    check_layout(shape, layout)?;
    let (h, w) = (shape.0 as i64, shape.1 as i64);
    let rows = bands(layout.iter().map(|t| (t[0], t[1])))?;
    let cols = bands(layout.iter().map(|t| (t[2], t[3])))?;
    let mut starts = Vec::new();
    let mut runs = Vec::new();
    for &(a, b) in &rows {
        starts.push(a * w);
        runs.push((b - a) * w);
    }
    for y in 0..h {
        for &(a, b) in &cols {
            starts.push(y * w + a);
            runs.push(b - a);
        }
    }
    rle::union(&[(&starts, &runs)])
}

/// Per-pixel overlap membership, for counting an object's pixels in the overlap region
/// without materialising the (h × bands) runs of the overlap RLE.
struct OverlapMask {
    width: i64,
    row_in: Vec<bool>,
    /// `col_prefix[x]` = overlap columns among `0..x`.
    col_prefix: Vec<i64>,
}

impl OverlapMask {
    fn new(shape: (usize, usize), layout: &[Tile]) -> Result<Self> {
        let mut row_in = vec![false; shape.0];
        for (a, b) in bands(layout.iter().map(|t| (t[0], t[1])))? {
            row_in[a as usize..b as usize].fill(true);
        }
        let mut col_in = vec![false; shape.1];
        for (a, b) in bands(layout.iter().map(|t| (t[2], t[3])))? {
            col_in[a as usize..b as usize].fill(true);
        }
        let mut col_prefix = vec![0i64; shape.1 + 1];
        for x in 0..shape.1 {
            col_prefix[x + 1] = col_prefix[x] + col_in[x] as i64;
        }
        Ok(Self {
            width: shape.1 as i64,
            row_in,
            col_prefix,
        })
    }

    /// Pixels of the runs inside the overlap region.
    fn count(&self, starts: &[i64], runs: &[i64]) -> i64 {
        let mut total = 0;
        for (&s, &r) in starts.iter().zip(runs) {
            let (mut s, end) = (s, s + r);
            while s < end {
                let (y, x) = (s / self.width, s % self.width);
                let x_end = (x + end - s).min(self.width);
                total += if self.row_in[y as usize] {
                    x_end - x
                } else {
                    self.col_prefix[x_end as usize] - self.col_prefix[x as usize]
                };
                s += x_end - x;
            }
        }
        total
    }
}

/// One object of one tile in image coordinates: (class, id, box (y1, x1, y2, x2), starts, runs).
type TileObject = (u32, u64, [i64; 4], Vec<i64>, Vec<i64>);

/// One tile's objects in global coordinates, by class.
struct TileObjects {
    /// Objects ordered by class then id: (class, id, box (y1, x1, y2, x2), starts, runs).
    objects: Vec<TileObject>,
}

/// §4.3 for one tile: force-connected components of the thing classes, runs per object,
/// translated into the image. Runs are split at the tile's row ends before the shift (the
/// reference shifts only run starts, so a run continuing from one tile row into the next
/// would cover pixels right of the tile; its ids and merge are otherwise unchanged).
fn tile_objects<L: Label>(
    tile: ArrayView2<'_, L>,
    t: &Tile,
    width: usize,
    labels: &[u32],
    things: &[u32],
    label_divisor: u64,
) -> Result<TileObjects> {
    let relabelled = crate::panoptic::relabel_connected(tile, things, label_divisor)?;
    let enc: RleObjects = rle::encode(relabelled.view().into_dyn())?;
    let tw = (t[3] - t[2]) as i64;
    let (y0, x0, w) = (t[0] as i64, t[2] as i64, width as i64);
    let mut objects = Vec::new();
    for i in 0..enc.len() {
        let id = enc.ids[i];
        let class = id / label_divisor;
        if class > u32::MAX as u64 || !labels.contains(&(class as u32)) {
            continue;
        }
        let b = &enc.boxes[4 * i..4 * i + 4];
        let bbox = [b[0] + y0, b[1] + x0, b[2] + y0, b[3] + x0];
        let (a, z) = (enc.offsets[i] as usize, enc.offsets[i + 1] as usize);
        let mut starts = Vec::with_capacity(z - a);
        let mut runs = Vec::with_capacity(z - a);
        for (&s, &r) in enc.starts[a..z].iter().zip(&enc.runs[a..z]) {
            let (mut s, end) = (s, s + r);
            while s < end {
                let (y, x) = (s / tw, s % tw);
                let len = (tw - x).min(end - s);
                starts.push((y + y0) * w + x + x0);
                runs.push(len);
                s += len;
            }
        }
        objects.push((class as u32, id, bbox, starts, runs));
    }
    objects.sort_by_key(|o| (o.0, o.1));
    Ok(TileObjects { objects })
}

/// Merged objects of one class: (id, runs).
type Merged = Vec<(u64, Vec<i64>, Vec<i64>)>;

/// §4.4 for a thing class: objects of different tiles that share a pixel are one object
/// (union of the connected component); a single-tile object with more than 10 % of its
/// pixels in the overlap region is dropped; ids count up from the smallest id seen.
fn merge_things(objs: &[(usize, &TileObject)], mask: &OverlapMask) -> Result<Merged> {
    if objs.is_empty() {
        return Ok(Vec::new());
    }
    let boxes: Vec<&[i64]> = objs.iter().map(|o| o.1 .2.as_slice()).collect();
    let sources: Vec<usize> = objs.iter().map(|o| o.0).collect();
    let pairs = box_candidates(&boxes, &sources);
    let linked: Vec<bool> = pairs
        .par_iter()
        .map(|&(a, b)| {
            let (x, y) = (objs[a].1, objs[b].1);
            Ok(rle::intersection(&x.3, &x.4, &y.3, &y.4)? > 0)
        })
        .collect::<Result<_>>()?;
    let mut parent: Vec<usize> = (0..objs.len()).collect();
    for (&(a, b), &l) in pairs.iter().zip(&linked) {
        if l {
            join(&mut parent, a, b);
        }
    }
    let first = objs.iter().map(|o| o.1 .1).min().expect("non-empty");
    let comps = groups(&mut parent);
    let merged: Vec<Option<(Vec<i64>, Vec<i64>)>> = comps
        .par_iter()
        .map(|comp| {
            if comp.len() == 1 {
                let o = objs[comp[0]].1;
                let size: i64 = o.4.iter().sum();
                let inside = mask.count(&o.3, &o.4);
                // IoA(overlap, object) > 0.1, as the reference computes it.
                if inside as f64 / size as f64 > 0.1 {
                    return Ok(None);
                }
                return Ok(Some((o.3.clone(), o.4.clone())));
            }
            let rles: Vec<rle::Rle<'_>> = comp
                .iter()
                .map(|&i| (objs[i].1 .3.as_slice(), objs[i].1 .4.as_slice()))
                .collect();
            rle::union(&rles).map(Some)
        })
        .collect::<Result<_>>()?;
    Ok((first..)
        .zip(merged.into_iter().flatten())
        .map(|(id, (s, r))| (id, s, r))
        .collect())
}

/// Stitches per-tile panoptic maps into one `(h, w)` panoptic map (spec §4.3–4.4).
///
/// `tiles[i]` is the panoptic map of `layout[i]` (its own shape). Per tile the thing
/// classes of `thing_list` are split into 8-connected components renumbered `c*L+k`;
/// classes outside `labels` are ignored. Thing classes are merged across tiles as in
/// [`merge_things`]; a stuff class is the union of every tile's pixels with the first id
/// seen (tile order, then ascending id). Classes are painted in `labels` order, later
/// classes winning contested pixels; force-connect is not re-applied after the merge.
pub fn stitch_tiles<L: Label>(
    tiles: &[ArrayView2<'_, L>],
    layout: &[Tile],
    shape: (usize, usize),
    labels: &[u32],
    thing_list: &[u32],
    label_divisor: u64,
) -> Result<Array2<u32>> {
    check_layout(shape, layout)?;
    if tiles.len() != layout.len() {
        return Err(Error::invalid(
            "tiles",
            format!(
                "got {} tiles for a layout of {}; pass one panoptic map per layout entry",
                tiles.len(),
                layout.len()
            ),
        ));
    }
    for (i, (tile, t)) in tiles.iter().zip(layout).enumerate() {
        if tile.dim() != (t[1] - t[0], t[3] - t[2]) {
            return Err(Error::shape(
                "tiles",
                format!(
                    "tile {i} has shape {:?} but its layout entry {t:?} is {:?}",
                    tile.dim(),
                    (t[1] - t[0], t[3] - t[2])
                ),
            ));
        }
    }
    if label_divisor < 1 {
        return Err(Error::invalid("label_divisor", "must be >= 1"));
    }
    if labels.contains(&0) {
        return Err(Error::invalid(
            "labels",
            "class 0 is background and cannot be a label",
        ));
    }
    let things: Vec<u32> = labels
        .iter()
        .copied()
        .filter(|c| thing_list.contains(c))
        .collect();
    let per_tile: Vec<TileObjects> = tiles
        .par_iter()
        .zip(layout.par_iter())
        .map(|(tile, t)| {
            let std = tile.as_standard_layout();
            check_non_negative("tiles", std.as_slice().expect("standard layout"))?;
            tile_objects(std.view(), t, shape.1, labels, &things, label_divisor)
        })
        .collect::<Result<_>>()?;
    let mask = OverlapMask::new(shape, layout)?;

    let mut out = vec![0u32; shape.0 * shape.1];
    let mut seen = Vec::new();
    for &class in labels {
        if seen.contains(&class) {
            continue;
        }
        seen.push(class);
        let objs: Vec<(usize, &TileObject)> = per_tile
            .iter()
            .enumerate()
            .flat_map(|(ti, t)| {
                t.objects
                    .iter()
                    .filter(|o| o.0 == class)
                    .map(move |o| (ti, o))
            })
            .collect();
        let merged: Merged = if things.contains(&class) {
            merge_things(&objs, &mask)?
        } else if let Some(first) = objs.first() {
            let rles: Vec<rle::Rle<'_>> = objs
                .iter()
                .map(|o| (o.1 .3.as_slice(), o.1 .4.as_slice()))
                .collect();
            let (s, r) = rle::union(&rles)?;
            vec![(first.1 .1, s, r)]
        } else {
            Vec::new()
        };
        for (id, s, r) in merged {
            if id > u32::MAX as u64 {
                return Err(Error::overflow(
                    "label_divisor",
                    format!("id {id} does not fit the uint32 output"),
                ));
            }
            for (&s, &r) in s.iter().zip(&r) {
                out[s as usize..(s + r) as usize].fill(id as u32);
            }
        }
    }
    Ok(Array2::from_shape_vec(shape, out).expect("size of the image"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(
            axis_tiles(3000, 1024, 102).unwrap(),
            vec![(0, 1024), (659, 1683), (1318, 2342), (1976, 3000)]
        );
        assert_eq!(
            axis_tiles(2048, 1024, 102).unwrap(),
            vec![(0, 1024), (512, 1536), (1024, 2048)]
        );
        assert_eq!(
            axis_tiles(5000, 2048, 128).unwrap(),
            vec![(0, 2048), (1476, 3524), (2952, 5000)]
        );
        assert!(axis_tiles(100, 50, 25).is_err());
    }

    #[test]
    fn layout_is_x_outer() {
        let l = tile_layout((20, 30), 16, Some(2)).unwrap();
        assert_eq!(l[0], [0, 16, 0, 16]);
        assert_eq!(l[1][2], 0);
        assert_eq!(l[1][0], 4);
    }

    #[test]
    fn overlap_count_matches_rle() {
        let layout = tile_layout((20, 30), 16, Some(2)).unwrap();
        let (s, r) = overlap_rle((20, 30), &layout).unwrap();
        let mask = OverlapMask::new((20, 30), &layout).unwrap();
        let all_s = vec![0i64];
        let all_r = vec![600i64];
        assert_eq!(
            mask.count(&all_s, &all_r),
            rle::intersection(&s, &r, &all_s, &all_r).unwrap()
        );
    }
}
