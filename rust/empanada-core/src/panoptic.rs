//! 2D Panoptic-DeepLab post-processing (spec §3.2–3.8): harden the semantic map, find
//! centres by max-pool NMS, group pixels to the nearest predicted centre, merge semantic and
//! instance maps, crop, and renumber thing instances by 8-connected components.
//!
//! Every step reproduces the reference's arithmetic, so label maps match it bit for bit:
//! distances are `sqrt(fma(dx, dx, dy * dy))` in f32 (what torch's 2-element norm computes),
//! argmin ties go to the lowest centre index, and the >20-centre chunked path's 1e5 distance
//! ceiling is kept.

use ndarray::{Array2, ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::label::Label;

/// Parameters of [`panoptic_2d`]; defaults are the plugin widget's (design §3).
#[derive(Debug, Clone, PartialEq)]
pub struct Panoptic2dParams {
    pub thing_list: Vec<u32>,
    pub label_divisor: u64,
    pub confidence_thr: f32,
    pub nms_threshold: f32,
    pub nms_kernel: usize,
    pub stuff_area: usize,
    pub void_label: i32,
    pub force_connected: bool,
    /// The inference downsampling factor `s` (a power of two): the semantic map is `s` (fine)
    /// or `4s` (coarse) times the heatmap's resolution.
    pub upsampling: usize,
    /// Output shape `(H, W)` to crop to (the image before padding); `None` keeps all.
    pub crop: Option<(usize, usize)>,
}

impl Default for Panoptic2dParams {
    fn default() -> Self {
        Self {
            thing_list: vec![1],
            label_divisor: 10000,
            confidence_thr: 0.5,
            nms_threshold: 0.1,
            nms_kernel: 3,
            stuff_area: 64,
            void_label: 0,
            force_connected: true,
            upsampling: 1,
            crop: None,
        }
    }
}

/// The reference switches from one distance matrix to chunks of 20 centres above this many
/// centres; the chunked path starts from a 1e5 distance and only accepts strictly smaller
/// ones, so a pixel whose every centre is ≥ 1e5 away keeps id 0 there.
const CHUNKED_ABOVE: usize = 20;
const CHUNKED_START_DISTANCE: f32 = 1e5;

/// Class map from probabilities (spec §3.2): threshold for one channel, argmax (first
/// maximum wins) for several.
pub fn harden(sem: ArrayView3<f32>, confidence_thr: f32) -> Array2<u32> {
    let (_, h, w) = sem.dim();
    let mut out = Vec::new();
    harden_into(sem, confidence_thr, &mut out);
    Array2::from_shape_vec((h, w), out).expect("one class per pixel")
}

/// Resizes `buf` to `n` elements without clearing what the caller overwrites anyway.
fn reuse<T: Copy + Default>(buf: &mut Vec<T>, n: usize) -> &mut [T] {
    buf.truncate(n);
    buf.resize(n, T::default());
    buf
}

/// [`harden`] into a reused buffer (`h * w` classes, C order).
fn harden_into(sem: ArrayView3<f32>, confidence_thr: f32, out: &mut Vec<u32>) {
    let (c, h, w) = sem.dim();
    let out = reuse(out, h * w);
    let sem = sem.as_standard_layout();
    let data = sem.as_slice().expect("standard layout");
    let plane = h * w;
    out.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            let base = y * w;
            if c == 1 {
                for (x, v) in row.iter_mut().enumerate() {
                    *v = (data[base + x] >= confidence_thr) as u32;
                }
            } else {
                for (x, v) in row.iter_mut().enumerate() {
                    let mut best = data[base + x];
                    let mut arg = 0u32;
                    for ch in 1..c {
                        let p = data[ch * plane + base + x];
                        if p > best {
                            best = p;
                            arg = ch as u32;
                        }
                    }
                    *v = arg;
                }
            }
        });
}

/// Centre detection (spec §3.3): values `<= threshold` become −1, a `k×k` max-pool (stride 1,
/// padding `k/2`, the extra row/column of even kernels dropped) keeps positions equal to
/// their window maximum, and the positive ones are the centres, in raster order.
pub fn find_centers(
    ctr: ArrayView2<f32>,
    threshold: f32,
    nms_kernel: usize,
) -> Vec<(usize, usize)> {
    let (h, w) = ctr.dim();
    if h == 0 || w == 0 {
        return Vec::new();
    }
    let ctr = ctr.as_standard_layout();
    let src = ctr.as_slice().expect("standard layout");
    let t: Vec<f32> = src
        .iter()
        .map(|&v| if v > threshold { v } else { -1.0 })
        .collect();
    let pad = nms_kernel / 2;
    // Window of output i: input rows [i - pad, i - pad + k - 1], clipped to the image.
    let span = |i: usize, n: usize| {
        let lo = i.saturating_sub(pad);
        let hi = (i + nms_kernel).saturating_sub(pad).min(n);
        (lo, hi)
    };
    let mut rowmax = vec![0f32; h * w];
    rowmax.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let row = &t[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            let (lo, hi) = span(x, w);
            *o = row[lo..hi]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
        }
    });
    let peaks: Vec<Vec<(usize, usize)>> = (0..h)
        .into_par_iter()
        .map(|y| {
            let (lo, hi) = span(y, h);
            let mut found = Vec::new();
            for x in 0..w {
                let v = t[y * w + x];
                if v <= 0.0 {
                    continue;
                }
                let pooled = (lo..hi)
                    .map(|yy| rowmax[yy * w + x])
                    .fold(f32::NEG_INFINITY, f32::max);
                if v == pooled {
                    found.push((y, x));
                }
            }
            found
        })
        .collect();
    peaks.into_iter().flatten().collect()
}

/// f32 distance exactly as the reference's `torch.norm` over (dy, dx) computes it.
#[inline]
fn torch_distance(cy: f32, cx: f32, qy: f32, qx: f32) -> f32 {
    let dy = cy - qy;
    let dx = cx - qx;
    dx.mul_add(dx, dy * dy).sqrt()
}

/// Centres bucketed on a square grid so a nearest-centre query visits only nearby buckets.
///
/// Exactness: buckets are visited in rings of growing Chebyshev radius; a ring is skipped
/// only when the exact geometric lower bound of its distance exceeds the best f32 distance
/// found by a margin far above f32 rounding, so every centre that could win (or tie) under
/// the reference's arithmetic is evaluated with that arithmetic, in index order on ties.
struct CentreGrid {
    cy: Vec<f32>,
    cx: Vec<f32>,
    cell: f64,
    y0: f64,
    x0: f64,
    rows: usize,
    cols: usize,
    /// Centre indices per bucket (CSR), ascending within a bucket.
    start: Vec<u32>,
    members: Vec<u32>,
    /// Distance a winner must beat (the chunked reference path's 1e5 ceiling, or ∞).
    ceiling: f32,
}

impl CentreGrid {
    fn new(cy: Vec<f32>, cx: Vec<f32>) -> Self {
        let k = cy.len();
        let (mut ymin, mut ymax, mut xmin, mut xmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for i in 0..k {
            ymin = ymin.min(cy[i] as f64);
            ymax = ymax.max(cy[i] as f64);
            xmin = xmin.min(cx[i] as f64);
            xmax = xmax.max(cx[i] as f64);
        }
        let (span_y, span_x) = ((ymax - ymin).max(1.0), (xmax - xmin).max(1.0));
        // About two centres per bucket.
        let cell = ((span_y * span_x * 2.0 / k.max(1) as f64).sqrt()).max(1.0);
        let rows = (span_y / cell) as usize + 1;
        let cols = (span_x / cell) as usize + 1;
        let mut count = vec![0u32; rows * cols + 1];
        let bucket = |i: usize| {
            let r = (((cy[i] as f64 - ymin) / cell) as usize).min(rows - 1);
            let c = (((cx[i] as f64 - xmin) / cell) as usize).min(cols - 1);
            r * cols + c
        };
        for i in 0..k {
            count[bucket(i) + 1] += 1;
        }
        for b in 0..rows * cols {
            count[b + 1] += count[b];
        }
        let mut fill = count.clone();
        let mut members = vec![0u32; k];
        for i in 0..k {
            let b = bucket(i);
            members[fill[b] as usize] = i as u32;
            fill[b] += 1;
        }
        let ceiling = if k > CHUNKED_ABOVE {
            CHUNKED_START_DISTANCE
        } else {
            f32::INFINITY
        };
        Self {
            cy,
            cx,
            cell,
            y0: ymin,
            x0: xmin,
            rows,
            cols,
            start: count,
            members,
            ceiling,
        }
    }

    /// 1-based index of the nearest centre under the reference's arithmetic and tie rule,
    /// or 0 where no centre is below the ceiling.
    fn nearest(&self, qy: f32, qx: f32) -> u32 {
        let (fy, fx) = (
            (qy as f64 - self.y0) / self.cell,
            (qx as f64 - self.x0) / self.cell,
        );
        let br = fy.floor().clamp(0.0, (self.rows - 1) as f64) as i64;
        let bc = fx.floor().clamp(0.0, (self.cols - 1) as f64) as i64;
        let mut best = self.ceiling;
        let mut arg = u32::MAX;
        let max_ring = self.rows.max(self.cols) as i64;
        for ring in 0..=max_ring {
            if ring > 0 && best.is_finite() {
                // Every centre in this ring or beyond lies outside the block of buckets
                // [br-ring+1, br+ring] x [bc-ring+1, bc+ring]; its distance to q is at least
                // q's distance to that block's border (0 if q lies outside the block).
                let top = (br - ring + 1) as f64 * self.cell + self.y0;
                let bottom = (br + ring) as f64 * self.cell + self.y0;
                let left = (bc - ring + 1) as f64 * self.cell + self.x0;
                let right = (bc + ring) as f64 * self.cell + self.x0;
                let (y, x) = (qy as f64, qx as f64);
                let bound = (y - top).min(bottom - y).min(x - left).min(right - x);
                if bound > best as f64 * (1.0 + 1e-5) + 1e-3 {
                    break;
                }
            }
            let (r0, r1) = (br - ring, br + ring);
            let (c0, c1) = (bc - ring, bc + ring);
            for r in r0.max(0)..=r1.min(self.rows as i64 - 1) {
                let on_edge_row = r == r0 || r == r1;
                let mut c = c0.max(0);
                while c <= c1.min(self.cols as i64 - 1) {
                    let b = r as usize * self.cols + c as usize;
                    for &i in &self.members[self.start[b] as usize..self.start[b + 1] as usize] {
                        let d = torch_distance(self.cy[i as usize], self.cx[i as usize], qy, qx);
                        if d < best || (d == best && arg != u32::MAX && i < arg) {
                            best = d;
                            arg = i;
                        }
                    }
                    // Inner rows only visit the ring's two edge columns.
                    c = if on_edge_row || c == c1 { c + 1 } else { c1 };
                }
            }
        }
        if arg == u32::MAX {
            0
        } else {
            arg + 1
        }
    }
}

/// Instance cells (spec §3.4) on the heatmap grid, computed only where `needed` is set.
fn group_pixels(
    offsets: ArrayView3<f32>,
    centers: &[(usize, usize)],
    step: f32,
    needed: &[bool],
) -> Vec<u32> {
    let (_, h, w) = offsets.dim();
    let offsets = offsets.as_standard_layout();
    let off = offsets.as_slice().expect("standard layout");
    let plane = h * w;
    let mut cells = vec![0u32; plane];
    if centers.is_empty() {
        return cells;
    }
    let grid = CentreGrid::new(
        centers.iter().map(|&(y, _)| step * y as f32).collect(),
        centers.iter().map(|&(_, x)| step * x as f32).collect(),
    );
    cells.par_chunks_mut(w).enumerate().for_each(|(i, row)| {
        let py = step * i as f32;
        for (j, cell) in row.iter_mut().enumerate() {
            let p = i * w + j;
            if needed[p] {
                *cell = grid.nearest(py + off[p], step * j as f32 + off[plane + p]);
            }
        }
    });
    cells
}

fn validate(
    sem: &ArrayView3<f32>,
    ctr: &ArrayView2<f32>,
    offsets: &ArrayView3<f32>,
    p: &Panoptic2dParams,
) -> Result<(usize, bool)> {
    let (c, hs, ws) = sem.dim();
    let (h, w) = ctr.dim();
    if c == 0 {
        return Err(Error::shape(
            "sem",
            "has 0 channels; expected (C, H, W) with C >= 1",
        ));
    }
    if hs == 0 || ws == 0 {
        return Err(Error::shape(
            "sem",
            format!("is empty ({c}, {hs}, {ws}); pass a non-empty map"),
        ));
    }
    if offsets.dim() != (2, h, w) {
        return Err(Error::shape(
            "offsets",
            format!(
                "has shape {:?}; expected (2, {h}, {w}) to match ctr_hmp",
                offsets.shape()
            ),
        ));
    }
    if p.nms_kernel < 1 {
        return Err(Error::invalid(
            "nms_kernel",
            "must be >= 1 (the NMS window size in heatmap cells)",
        ));
    }
    if p.upsampling == 0 || !p.upsampling.is_power_of_two() {
        return Err(Error::invalid(
            "upsampling",
            format!(
                "is {}; must be a power of two (1, 2, 4, …, 64)",
                p.upsampling
            ),
        ));
    }
    if p.label_divisor < 2 {
        return Err(Error::invalid(
            "label_divisor",
            "must be >= 2 (ids are class * label_divisor + instance)",
        ));
    }
    if !(0.0..=1.0).contains(&p.confidence_thr) {
        return Err(Error::invalid(
            "confidence_thr",
            format!("is {}; must be in [0, 1]", p.confidence_thr),
        ));
    }
    if !p.nms_threshold.is_finite() {
        return Err(Error::invalid("nms_threshold", "must be a finite number"));
    }
    if p.thing_list.contains(&0) {
        return Err(Error::invalid(
            "thing_list",
            "class 0 is background and cannot be a thing class",
        ));
    }
    // Which grid: the heatmap is at the semantic map's resolution / s (fine) or / 4s (coarse).
    let fine = hs == h * p.upsampling && ws == w * p.upsampling;
    let coarse = hs == h * 4 * p.upsampling && ws == w * 4 * p.upsampling;
    if !fine && !coarse {
        return Err(Error::shape(
            "ctr_hmp",
            format!(
                "has shape ({h}, {w}) but sem is ({hs}, {ws}) with upsampling={}: ctr_hmp must be \
                 sem's size / upsampling (fine) or / (4 * upsampling) (coarse)",
                p.upsampling
            ),
        ));
    }
    if let Some((ch, cw)) = p.crop {
        if ch > hs || cw > ws {
            return Err(Error::shape(
                "crop",
                format!("({ch}, {cw}) exceeds the map ({hs}, {ws})"),
            ));
        }
    }
    check_finite("sem", sem)?;
    check_finite("ctr_hmp", ctr)?;
    check_finite("offsets", offsets)?;
    let max_class = if c == 1 { 1 } else { c as u64 - 1 };
    let top = (max_class + 1)
        .checked_mul(p.label_divisor)
        .filter(|&v| v <= i32::MAX as u64 + 1);
    if top.is_none() {
        return Err(Error::overflow(
            "label_divisor",
            format!(
                "{} classes x label_divisor {} exceeds the int32 id range; lower label_divisor",
                max_class + 1,
                p.label_divisor
            ),
        ));
    }
    Ok((if fine { p.upsampling } else { 4 * p.upsampling }, fine))
}

fn check_finite<D: ndarray::Dimension>(
    param: &'static str,
    values: &ndarray::ArrayView<f32, D>,
) -> Result<()> {
    let bad = match values.as_slice() {
        Some(v) => v
            .par_chunks(1 << 16)
            .any(|c| c.iter().fold(false, |b, x| b | !x.is_finite())),
        None => values.iter().any(|v| !v.is_finite()),
    };
    if bad {
        return Err(Error::non_finite(
            param,
            "contains NaN or infinity; check the model output (e.g. np.nan_to_num) before post-processing",
        ));
    }
    Ok(())
}

/// Full 2D post-processing of one image's model outputs (spec §3.1 steps 6–10).
///
/// `sem` is `(C, H, W)` probabilities (C = 1: foreground probability; C > 1: softmax with
/// background at channel 0); `ctr` is `(h, w)` and `offsets` `(2, h, w)` at `H/s` (fine) or
/// `H/4s` (coarse). Returns int32 panoptic ids `class * label_divisor + instance`.
pub fn panoptic_2d(
    sem: ArrayView3<f32>,
    ctr: ArrayView2<f32>,
    offsets: ArrayView3<f32>,
    p: &Panoptic2dParams,
) -> Result<Array2<i32>> {
    let mut out = Vec::new();
    let shape = panoptic_2d_into(
        sem,
        ctr,
        offsets,
        p,
        &mut PanopticScratch::default(),
        &mut out,
    )?;
    Ok(Array2::from_shape_vec(shape, out).expect("one id per pixel"))
}

/// Buffers [`panoptic_2d_into`] reuses from call to call. A thread that post-processes slice
/// after slice keeps one: fresh multi-megabyte buffers cost page faults (the allocator hands
/// freed memory back to the system) that took longer than the post-processing itself.
#[derive(Debug, Default)]
pub struct PanopticScratch {
    classes: Vec<u32>,
    comps: Vec<u32>,
}

/// [`panoptic_2d`] writing the ids into `out` (resized to the output, C order) with the
/// scratch buffers of `scratch`; returns the output shape `(H, W)`.
pub fn panoptic_2d_into(
    sem: ArrayView3<f32>,
    ctr: ArrayView2<f32>,
    offsets: ArrayView3<f32>,
    p: &Panoptic2dParams,
    scratch: &mut PanopticScratch,
    out: &mut Vec<i32>,
) -> Result<(usize, usize)> {
    let (ratio, fine) = validate(&sem, &ctr, &offsets, p)?;
    let (_, hs, ws) = sem.dim();
    let (h, w) = ctr.dim();
    harden_into(sem, p.confidence_thr, &mut scratch.classes);
    let cls = scratch.classes.as_slice();

    let mut things: Vec<u32> = p.thing_list.clone();
    things.sort_unstable();
    things.dedup();
    let n_cls = sem.dim().0.max(2);
    let mut is_thing = vec![false; n_cls];
    for &t in &things {
        if (t as usize) < n_cls {
            is_thing[t as usize] = true;
        }
    }

    // Only cells whose upsampled block holds a thing pixel need a nearest-centre search.
    let centers = if things.is_empty() {
        Vec::new()
    } else {
        find_centers(ctr, p.nms_threshold, p.nms_kernel)
    };
    let mut needed = vec![false; h * w];
    if !centers.is_empty() {
        needed.par_chunks_mut(w).enumerate().for_each(|(i, row)| {
            for yy in i * ratio..(i + 1) * ratio {
                let srow = &cls[yy * ws..(yy + 1) * ws];
                for (j, n) in row.iter_mut().enumerate() {
                    if !*n
                        && srow[j * ratio..(j + 1) * ratio]
                            .iter()
                            .any(|&c| is_thing[c as usize])
                    {
                        *n = true;
                    }
                }
            }
        });
    }
    let step = if fine { 1.0 } else { 4.0 };
    let cells = group_pixels(offsets, &centers, step, &needed);
    let k = centers.len();

    // One pass for both histograms: thing pixels per (cell id, thing class) for the mode
    // vote, and pixels per class for the stuff-area test.
    let nt = things.len();
    let thing_index: Vec<usize> = (0..n_cls)
        .map(|c| {
            things
                .iter()
                .position(|&t| t as usize == c)
                .unwrap_or(usize::MAX)
        })
        .collect();
    let (votes, areas) = (0..hs)
        .into_par_iter()
        .fold(
            || (vec![0u64; (k + 1) * nt.max(1)], vec![0u64; n_cls]),
            |(mut votes, mut areas), y| {
                let crow = &cells[(y / ratio) * w..(y / ratio + 1) * w];
                for (x, &c) in cls[y * ws..(y + 1) * ws].iter().enumerate() {
                    areas[c as usize] += 1;
                    let ti = thing_index[c as usize];
                    if ti != usize::MAX {
                        let u = crow[x / ratio] as usize;
                        if u > 0 {
                            votes[u * nt + ti] += 1;
                        }
                    }
                }
                (votes, areas)
            },
        )
        .reduce(
            || (vec![0u64; (k + 1) * nt.max(1)], vec![0u64; n_cls]),
            |(mut va, mut aa), (vb, ab)| {
                va.iter_mut().zip(vb).for_each(|(a, b)| *a += b);
                aa.iter_mut().zip(ab).for_each(|(a, b)| *a += b);
                (va, aa)
            },
        );

    // Instance ids in ascending cell order (= centre raster order), numbered per class;
    // the class is the mode of the vote, ties to the smallest class id.
    let ld = p.label_divisor;
    let mut new_id = vec![p.void_label; k + 1];
    let mut counters = vec![0u64; nt.max(1)];
    for u in 1..=k {
        let row = &votes[u * nt..(u + 1) * nt];
        let mut best = 0u64;
        let mut arg = usize::MAX;
        for (ti, &n) in row.iter().enumerate() {
            if n > best {
                best = n;
                arg = ti;
            }
        }
        if arg == usize::MAX {
            continue;
        }
        counters[arg] += 1;
        if counters[arg] >= ld {
            return Err(Error::overflow(
                "label_divisor",
                format!(
                    "class {} has {} or more instances, which spill into the next class's ids; \
                     raise label_divisor",
                    things[arg], ld
                ),
            ));
        }
        new_id[u] = (things[arg] as u64 * ld + counters[arg]) as i32;
    }
    let stuff_id: Vec<i32> = (0..n_cls)
        .map(|c| {
            if is_thing[c] || areas[c] < p.stuff_area as u64 {
                p.void_label
            } else {
                (c as u64 * ld) as i32
            }
        })
        .collect();

    let (oh, ow) = p.crop.unwrap_or((hs, ws));
    let ids = reuse(out, oh * ow);
    if ow > 0 {
        ids.par_chunks_mut(ow).enumerate().for_each(|(y, orow)| {
            let crow = &cells[(y / ratio) * w..(y / ratio + 1) * w];
            let srow = &cls[y * ws..y * ws + ow];
            for (x, (o, &c)) in orow.iter_mut().zip(srow).enumerate() {
                *o = if is_thing[c as usize] {
                    new_id[crow[x / ratio] as usize]
                } else {
                    stuff_id[c as usize]
                };
            }
        });
    }
    if p.force_connected && !things.is_empty() {
        relabel_connected_in_place(ids, (oh, ow), &things, ld, &mut scratch.comps)?;
    }
    Ok((oh, ow))
}

/// Per thing class, 8-connected multi-label components renumbered `c*L + k`, k = 1.. in
/// raster order of each component's first pixel (spec §1.4 step 2, §3.8). Pixels outside
/// every thing class's id range are kept as they are.
///
/// The components are those of `components::connected_components_into` on the map with
/// every non-thing pixel cleared; it numbers them in raster order of their first pixel, so
/// numbering them per class in that order is one more pass.
pub fn relabel_connected<L: Label>(
    panoptic: ArrayView2<L>,
    thing_list: &[u32],
    label_divisor: u64,
) -> Result<Array2<L>> {
    let (h, w) = panoptic.dim();
    let mut out = match panoptic.as_slice() {
        Some(s) => s.to_vec(),
        None => panoptic.iter().copied().collect(),
    };
    relabel_connected_in_place(&mut out, (h, w), thing_list, label_divisor, &mut Vec::new())?;
    Ok(Array2::from_shape_vec((h, w), out).expect("same size"))
}

/// [`relabel_connected`] on a C-order `(h, w)` map in place; `comps` is a reused buffer for
/// the component ids.
fn relabel_connected_in_place<L: Label>(
    data: &mut [L],
    (h, w): (usize, usize),
    thing_list: &[u32],
    label_divisor: u64,
    comps: &mut Vec<u32>,
) -> Result<()> {
    if label_divisor < 1 {
        return Err(Error::invalid("label_divisor", "must be >= 1"));
    }
    if thing_list.contains(&0) {
        return Err(Error::invalid(
            "thing_list",
            "class 0 is background and cannot be a thing class",
        ));
    }
    crate::label::check_non_negative("panoptic", data)?;
    let is_thing = |v: L| -> bool {
        let c = v.to_u64() / label_divisor;
        !v.is_zero() && thing_list.iter().any(|&t| t as u64 == c)
    };
    // Labels come in runs: one class test per change of value.
    let mut last: Option<(L, bool)> = None;
    let mut keep = |v: L| -> bool {
        match last {
            Some((u, k)) if u == v => k,
            _ => {
                let k = is_thing(v);
                last = Some((v, k));
                k
            }
        }
    };
    // Components never join different values, so where every nonzero pixel is a thing (the
    // usual map) they are labelled on the map itself; otherwise on a copy holding the thing
    // pixels only.
    let mixed = data.iter().any(|&v| !v.is_zero() && !keep(v));
    let comps = reuse(comps, h * w);
    let n = if mixed {
        let things: Vec<L> = data
            .iter()
            .map(|&v| if keep(v) { v } else { L::default() })
            .collect();
        let view = ndarray::ArrayView2::from_shape((h, w), &things).expect("same size");
        crate::components::connected_components_into(view.into_dyn(), comps, Some(8), false)?
    } else {
        let view = ndarray::ArrayView2::from_shape((h, w), &*data).expect("same size");
        crate::components::connected_components_into(view.into_dyn(), comps, Some(8), false)?
    };

    // Components are numbered in raster order of their first pixel, so the first pixel of
    // component k + 1 is the first one after component k's whose id exceeds k.
    let mut new_value: Vec<L> = Vec::with_capacity(n as usize + 1);
    new_value.push(L::default());
    let mut counters: crate::hash::IdMap<u64, u64> = crate::hash::IdMap::default();
    for (i, &c) in comps.iter().enumerate() {
        if c as usize != new_value.len() {
            continue;
        }
        let class = data[i].to_u64() / label_divisor;
        let k = counters.entry(class).or_insert(0);
        *k += 1;
        if *k >= label_divisor {
            return Err(Error::overflow(
                "label_divisor",
                format!("class {class} has {label_divisor} or more connected instances; raise label_divisor"),
            ));
        }
        let id = class * label_divisor + *k;
        if id > L::MAX_U64 {
            return Err(Error::overflow(
                "panoptic",
                format!("id {id} does not fit the array's dtype; use a wider integer dtype"),
            ));
        }
        new_value.push(L::from_u64(id));
    }
    debug_assert_eq!(new_value.len(), n as usize + 1);
    data.par_chunks_mut(w.max(1))
        .zip(comps.par_chunks(w.max(1)))
        .with_min_len(32)
        .for_each(|(d, c)| {
            for (v, &c) in d.iter_mut().zip(c) {
                if c != 0 {
                    *v = new_value[c as usize];
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};

    #[test]
    fn plateau_peaks_are_all_kept() {
        let ctr = array![[0.5f32, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.9]];
        assert_eq!(
            find_centers(ctr.view(), 0.1, 3),
            vec![(0, 0), (0, 1), (2, 2)]
        );
    }

    #[test]
    fn even_kernel_window_looks_up_and_left() {
        // k = 2: the window of (i, j) is rows i-1..=i, cols j-1..=j, so (1, 1) sees (0, 0)
        // but (0, 0) never sees (1, 1).
        let ctr = array![[0.3f32, 0.0], [0.0, 0.2]];
        assert_eq!(find_centers(ctr.view(), 0.1, 2), vec![(0, 0)]);
        let ctr = array![[0.2f32, 0.0], [0.0, 0.3]];
        assert_eq!(find_centers(ctr.view(), 0.1, 2), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn threshold_is_strict() {
        let ctr = array![[0.1f32]];
        assert!(find_centers(ctr.view(), 0.1, 3).is_empty());
    }

    #[test]
    fn no_centres_leaves_things_void_and_keeps_stuff() {
        let sem = Array3::<f32>::from_elem((1, 8, 8), 0.9);
        let ctr = Array2::<f32>::zeros((2, 2));
        let off = Array3::<f32>::zeros((2, 2, 2));
        let out = panoptic_2d(
            sem.view(),
            ctr.view(),
            off.view(),
            &Panoptic2dParams::default(),
        )
        .unwrap();
        assert!(out.iter().all(|&v| v == 0));
        let p = Panoptic2dParams {
            thing_list: vec![],
            ..Default::default()
        };
        let out = panoptic_2d(sem.view(), ctr.view(), off.view(), &p).unwrap();
        assert!(out.iter().all(|&v| v == 10000));
    }

    #[test]
    fn disconnected_instance_splits() {
        let pan = array![[10001i32, 0, 10001], [0, 0, 0], [10002, 10002, 0]];
        let out = relabel_connected(pan.view(), &[1], 10000).unwrap();
        assert_eq!(out, array![[10001, 0, 10002], [0, 0, 0], [10003, 10003, 0]]);
    }

    #[test]
    fn touching_instances_stay_apart() {
        let pan = array![[10002i32, 10001], [10001, 10002]];
        let out = relabel_connected(pan.view(), &[1], 10000).unwrap();
        // Diagonal neighbours of equal value join (8-connectivity).
        assert_eq!(out, array![[10001, 10002], [10002, 10001]]);
    }

    #[test]
    fn bad_kernel_is_an_error() {
        let sem = Array3::<f32>::zeros((1, 4, 4));
        let ctr = Array2::<f32>::zeros((1, 1));
        let off = Array3::<f32>::zeros((2, 1, 1));
        let p = Panoptic2dParams {
            nms_kernel: 0,
            ..Default::default()
        };
        let e = panoptic_2d(sem.view(), ctr.view(), off.view(), &p).unwrap_err();
        assert_eq!(e.param(), "nms_kernel");
    }

    #[test]
    fn nan_is_an_error() {
        let mut sem = Array3::<f32>::zeros((1, 4, 4));
        sem[[0, 1, 1]] = f32::NAN;
        let ctr = Array2::<f32>::zeros((1, 1));
        let off = Array3::<f32>::zeros((2, 1, 1));
        let e = panoptic_2d(
            sem.view(),
            ctr.view(),
            off.view(),
            &Panoptic2dParams::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::NonFinite { param: "sem", .. }));
    }
}
