//! Ortho-plane consensus (spec §6): three per-plane segmentations of one volume (xy, xz, yz
//! stacks) voted into one.
//!
//! Thing classes go through the object-graph clustering of §6.3, stuff classes through the
//! voxel vote of §6.4. Objects are the sparse runs of [`Segmentation`]; nothing is decoded
//! densely. Connected components of the object graph are independent, so they run in
//! parallel and are concatenated in the reference's order afterwards.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::rle::{self, RleObjects};
use crate::segmentation::{ClassObjects, Segmentation};
use crate::unionfind::{groups, join};
use crate::{Error, Result};

/// Clusters whose average cross IoU exceeds this are linked in the cluster graph (§6.2).
pub const MIN_IOU: f64 = 1e-2;
/// … or whose average cross intersection (voxels) exceeds this.
pub const MIN_OVERLAP: f64 = 100.0;

/// Parameters of [`orthoplane_consensus`] (spec §6.2; defaults are the widget's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsensusParams {
    /// Votes a voxel needs to be kept, `1..=views`.
    pub pixel_vote_thr: usize,
    /// Detections with IoU above this form one cluster, in `[0, 1]`.
    pub cluster_iou_thr: f64,
    /// Keep objects seen in a single view ("bypass").
    pub allow_one_view: bool,
    /// Consensus instances with fewer voxels are removed (thing classes only).
    pub min_size: i64,
    /// Consensus instances whose box is shorter than this along any axis are removed.
    pub min_extent: i64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            pixel_vote_thr: 2,
            cluster_iou_thr: 0.75,
            allow_one_view: false,
            min_size: 500,
            min_extent: 5,
        }
    }
}

impl ConsensusParams {
    fn check(&self, views: usize) -> Result<()> {
        if self.pixel_vote_thr < 1 || self.pixel_vote_thr > views {
            return Err(Error::invalid(
                "pixel_vote_thr",
                format!(
                    "must be between 1 and the number of views ({views}), got {}",
                    self.pixel_vote_thr
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.cluster_iou_thr) {
            return Err(Error::invalid(
                "cluster_iou_thr",
                format!("must be in [0, 1], got {}", self.cluster_iou_thr),
            ));
        }
        if self.min_size < 0 {
            return Err(Error::invalid(
                "min_size",
                format!("must be >= 0 voxels, got {}", self.min_size),
            ));
        }
        if self.min_extent < 0 {
            return Err(Error::invalid(
                "min_extent",
                format!("must be >= 0 voxels, got {}", self.min_extent),
            ));
        }
        Ok(())
    }
}

/// One consensus object: box `(z1, y1, x1, z2, y2, x2)` and sorted disjoint runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    bbox: [i64; 6],
    starts: Vec<i64>,
    runs: Vec<i64>,
}

fn merge_box(a: &mut [i64; 6], b: &[i64]) {
    for k in 0..3 {
        a[k] = a[k].min(b[k]);
        a[k + 3] = a[k + 3].max(b[k + 3]);
    }
}

/// A detection: object `i` of view `view`.
#[derive(Clone, Copy)]
struct Node<'a> {
    view: usize,
    objects: &'a RleObjects,
    index: usize,
}

impl<'a> Node<'a> {
    fn bbox(&self) -> &'a [i64] {
        &self.objects.boxes[6 * self.index..6 * self.index + 6]
    }
    fn rle(&self) -> rle::Rle<'a> {
        let (a, b) = (
            self.objects.offsets[self.index] as usize,
            self.objects.offsets[self.index + 1] as usize,
        );
        (&self.objects.starts[a..b], &self.objects.runs[a..b])
    }
}

/// An object-graph edge: nodes `a < b`, mask IoU and intersection (voxels).
#[derive(Clone, Copy, Debug)]
struct Edge {
    a: usize,
    b: usize,
    iou: f64,
    overlap: i64,
}

/// Pairs of boxes from different sources whose intersection volume is > 0 (touching boxes
/// are not candidates), as `(i, j)` with `i < j`, sorted.
///
/// Boxes are binned on a uniform grid (cells about the median box size); a pair is only
/// compared in the cells both boxes cover, and reported in the one cell holding the lower
/// corner of its intersection, so each pair comes out once without a set.
pub(crate) fn box_candidates(boxes: &[&[i64]], sources: &[usize]) -> Vec<(usize, usize)> {
    let n = boxes.len();
    let nd = boxes.first().map_or(0, |b| b.len() / 2);
    if n < 2 || nd == 0 {
        return Vec::new();
    }
    let overlap =
        |bi: &[i64], bj: &[i64]| (0..nd).all(|a| bi[a].max(bj[a]) < bi[a + nd].min(bj[a + nd]));
    // Grid: origin at the lowest corner, cell edge per axis = the median extent (at least
    // 1), widened until the grid has at most ~4n cells.
    let mut origin = vec![i64::MAX; nd];
    let mut top = vec![i64::MIN; nd];
    let mut cell = vec![1i64; nd];
    for a in 0..nd {
        let mut ext: Vec<i64> = boxes.iter().map(|b| (b[a + nd] - b[a]).max(1)).collect();
        let mid = ext.len() / 2;
        cell[a] = *ext.select_nth_unstable(mid).1;
        for b in boxes {
            origin[a] = origin[a].min(b[a]);
            top[a] = top[a].max(b[a + nd]);
        }
    }
    let dims = |cell: &[i64]| -> Vec<usize> {
        (0..nd)
            .map(|a| ((top[a] - origin[a]).max(1) as u64).div_ceil(cell[a] as u64) as usize)
            .collect()
    };
    let mut dim = dims(&cell);
    while dim.iter().map(|&d| d as f64).product::<f64>() > 4.0 * n as f64 + 64.0 {
        cell.iter_mut().for_each(|c| *c *= 2);
        dim = dims(&cell);
    }
    let cell_of = |a: usize, v: i64| (((v - origin[a]) / cell[a]) as usize).min(dim[a] - 1);
    // Cells covered by a box: [cell_of(lo), cell_of(hi - 1)] per axis (empty boxes: none).
    let range = |b: &[i64]| -> Option<Vec<(usize, usize)>> {
        (0..nd)
            .map(|a| (b[a + nd] > b[a]).then(|| (cell_of(a, b[a]), cell_of(a, b[a + nd] - 1))))
            .collect()
    };
    let flat = |idx: &[usize]| idx.iter().zip(&dim).fold(0usize, |f, (&i, &d)| f * d + i);
    let total: usize = dim.iter().product();
    let for_cells = |r: &[(usize, usize)], f: &mut dyn FnMut(usize)| {
        let mut idx: Vec<usize> = r.iter().map(|p| p.0).collect();
        loop {
            f(flat(&idx));
            let mut a = nd;
            loop {
                if a == 0 {
                    return;
                }
                a -= 1;
                if idx[a] < r[a].1 {
                    idx[a] += 1;
                    break;
                }
                idx[a] = r[a].0;
            }
        }
    };
    // CSR of box indices per cell, ascending within a cell.
    let ranges: Vec<Option<Vec<(usize, usize)>>> = boxes.iter().map(|b| range(b)).collect();
    let mut start = vec![0usize; total + 1];
    for r in ranges.iter().flatten() {
        for_cells(r, &mut |c| start[c + 1] += 1);
    }
    for c in 0..total {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut members = vec![0usize; start[total]];
    for (i, r) in ranges.iter().enumerate() {
        if let Some(r) = r {
            for_cells(r, &mut |c| {
                members[fill[c]] = i;
                fill[c] += 1;
            });
        }
    }
    let mut out: Vec<(usize, usize)> = (0..total)
        .into_par_iter()
        .with_min_len(64)
        .flat_map_iter(|c| {
            let m = &members[start[c]..start[c + 1]];
            let (boxes, overlap, cell_of, flat) = (boxes, &overlap, &cell_of, &flat);
            m.iter().enumerate().flat_map(move |(k, &i)| {
                m[k + 1..].iter().filter_map(move |&j| {
                    let (bi, bj) = (boxes[i], boxes[j]);
                    if sources[i] == sources[j] || !overlap(bi, bj) {
                        return None;
                    }
                    let corner: Vec<usize> =
                        (0..nd).map(|a| cell_of(a, bi[a].max(bj[a]))).collect();
                    (flat(&corner) == c).then_some((i, j))
                })
            })
        })
        .collect();
    out.par_sort_unstable();
    out
}

/// Greedy cluster merging (§6.3 d) on a cluster graph of `members.len()` nodes.
///
/// Repeatedly takes the node with the most neighbours (ties: lowest index). If its largest
/// neighbour has strictly more members it is pushed into every neighbour (its members are
/// added to each, so a detection can end up in several clusters) and removed; otherwise it
/// absorbs all its neighbours, which are removed.
///
/// Fix of the reference (design §3): when neighbours are absorbed, their links to nodes
/// outside the absorbed group (second-order links) are re-attached to the surviving node,
/// as upstream intends; upstream adds that edge to the neighbour being deleted, so those
/// links vanish and the second neighbours stay separate clusters. With the fix the loop
/// continues on the re-linked graph, so a chain of overlapping clusters is merged until no
/// links remain. Edge weights play no part in this loop, only adjacency and cluster sizes.
///
/// The node with the most neighbours is kept at the end of an ordered set keyed by
/// (degree, reversed index), so each step costs a logarithm instead of a scan of all nodes.
fn merge_clusters(members: &mut [Vec<usize>], adj: &mut [Vec<usize>]) -> Vec<bool> {
    use std::cmp::Reverse;
    use std::collections::BTreeSet;
    let n = members.len();
    let mut alive = vec![true; n];
    let mut queue: BTreeSet<(usize, Reverse<usize>)> = (0..n)
        .filter(|&i| !adj[i].is_empty())
        .map(|i| (adj[i].len(), Reverse(i)))
        .collect();
    // Changes node i's neighbour list, keeping its key in the queue current.
    let rekey = |queue: &mut BTreeSet<(usize, Reverse<usize>)>,
                 adj: &mut [Vec<usize>],
                 i: usize,
                 f: &mut dyn FnMut(&mut Vec<usize>)| {
        if !adj[i].is_empty() {
            queue.remove(&(adj[i].len(), Reverse(i)));
        }
        f(&mut adj[i]);
        if !adj[i].is_empty() {
            queue.insert((adj[i].len(), Reverse(i)));
        }
    };
    let mut is_nbr = vec![false; n];
    while let Some((_, Reverse(mc))) = queue.pop_last() {
        let nbrs = std::mem::take(&mut adj[mc]);
        let biggest = nbrs.iter().map(|&j| members[j].len()).max().unwrap_or(0);
        if biggest > members[mc].len() {
            let pushed = std::mem::take(&mut members[mc]);
            for &j in &nbrs {
                rekey(&mut queue, adj, j, &mut |a| a.retain(|&x| x != mc));
                union_sorted(&mut members[j], &pushed);
            }
            members[mc] = pushed;
            alive[mc] = false;
        } else {
            for &j in &nbrs {
                is_nbr[j] = true;
            }
            let mut second: Vec<usize> = Vec::new();
            for &j in &nbrs {
                let m = std::mem::take(&mut members[j]);
                union_sorted(&mut members[mc], &m);
                alive[j] = false;
                if !adj[j].is_empty() {
                    queue.remove(&(adj[j].len(), Reverse(j)));
                }
                for s in std::mem::take(&mut adj[j]) {
                    if s != mc {
                        rekey(&mut queue, adj, s, &mut |a| a.retain(|&x| x != j));
                        if !is_nbr[s] {
                            second.push(s);
                        }
                    }
                }
            }
            for &j in &nbrs {
                is_nbr[j] = false;
            }
            second.sort_unstable();
            second.dedup();
            for &s in &second {
                rekey(&mut queue, adj, s, &mut |a| a.push(mc));
            }
            adj[mc] = second;
            if !adj[mc].is_empty() {
                queue.insert((adj[mc].len(), Reverse(mc)));
            }
        }
    }
    alive
}

fn union_sorted(dst: &mut Vec<usize>, src: &[usize]) {
    dst.extend_from_slice(src);
    dst.sort_unstable();
    dst.dedup();
}

/// One connected component of the object graph → its consensus instances (§6.3 a–f).
fn component_instances(
    comp: &[usize],
    edges: &[Edge],
    nodes: &[Node<'_>],
    min_cluster_size: usize,
    cluster_iou_thr: f64,
    vote_thr: usize,
) -> Result<Vec<Instance>> {
    if comp.len() < min_cluster_size {
        return Ok(Vec::new());
    }
    let local = |g: usize| comp.binary_search(&g).expect("edge inside its component");
    let m = comp.len();
    let local_edges: Vec<(usize, usize, f64, i64)> = edges
        .iter()
        .map(|e| (local(e.a), local(e.b), e.iou, e.overlap))
        .collect();

    // b. clusters: components of the edges with IoU above the threshold.
    let mut parent: Vec<usize> = (0..m).collect();
    for &(a, b, iou, _) in &local_edges {
        if iou > cluster_iou_thr {
            join(&mut parent, a, b);
        }
    }
    let mut clusters = groups(&mut parent);
    let k = clusters.len();
    let mut cluster_of = vec![0usize; m];
    for (c, members) in clusters.iter().enumerate() {
        for &x in members {
            cluster_of[x] = c;
        }
    }

    // c. cluster graph: average edge weight over all cross pairs (missing edges count 0).
    let mut sums: Vec<((usize, usize), f64, i64)> = local_edges
        .iter()
        .filter(|e| cluster_of[e.0] != cluster_of[e.1])
        .map(|&(a, b, iou, ov)| {
            let (ca, cb) = (cluster_of[a], cluster_of[b]);
            ((ca.min(cb), ca.max(cb)), iou, ov)
        })
        .collect();
    sums.sort_by_key(|s| s.0);
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut i = 0;
    while i < sums.len() {
        let key = sums[i].0;
        let (mut iou, mut ov) = (0.0f64, 0i64);
        while i < sums.len() && sums[i].0 == key {
            iou += sums[i].1;
            ov += sums[i].2;
            i += 1;
        }
        let pairs = (clusters[key.0].len() * clusters[key.1].len()) as f64;
        if iou / pairs > MIN_IOU || ov as f64 / pairs > MIN_OVERLAP {
            adj[key.0].push(key.1);
            adj[key.1].push(key.0);
        }
    }

    // d. greedy merging.
    let alive = merge_clusters(&mut clusters, &mut adj);

    // e. vote within each surviving cluster (clusters are independent).
    let candidates: Vec<Instance> = clusters
        .par_iter()
        .enumerate()
        .filter(|(c, members)| alive[*c] && members.len() >= min_cluster_size)
        .map(|(_, members)| -> Result<Option<Instance>> {
            let nodes_of: Vec<&Node<'_>> = members.iter().map(|&x| &nodes[comp[x]]).collect();
            let rles: Vec<rle::Rle<'_>> = nodes_of.iter().map(|n| n.rle()).collect();
            let (starts, runs) = rle::vote(&rles, vote_thr)?;
            if starts.is_empty() {
                return Ok(None);
            }
            let mut bbox: [i64; 6] = nodes_of[0].bbox().try_into().expect("3D box");
            for n in &nodes_of[1..] {
                merge_box(&mut bbox, n.bbox());
            }
            Ok(Some(Instance { bbox, starts, runs }))
        })
        .collect::<Result<Vec<Option<Instance>>>>()?
        .into_iter()
        .flatten()
        .collect();

    // f. union of candidates that overlap more than trivially.
    if candidates.len() < 2 {
        return Ok(candidates);
    }
    // Only candidates whose boxes overlap can share a voxel (a candidate's box is the union
    // of its members' boxes, so it holds every voxel it voted).
    let c = candidates.len();
    let sizes: Vec<i64> = candidates.iter().map(|x| x.runs.iter().sum()).collect();
    let boxes: Vec<&[i64]> = candidates.iter().map(|x| &x.bbox[..]).collect();
    let own: Vec<usize> = (0..c).collect();
    let mut parent: Vec<usize> = (0..c).collect();
    for (a, b) in box_candidates(&boxes, &own) {
        let (x, y) = (&candidates[a], &candidates[b]);
        let inter = rle::intersection_sorted(&x.starts, &x.runs, &y.starts, &y.runs);
        let union = sizes[a] + sizes[b] - inter;
        let iou = inter as f64 / union as f64;
        if iou > MIN_IOU || inter as f64 > MIN_OVERLAP {
            join(&mut parent, a, b);
        }
    }
    let mut out = Vec::new();
    for g in groups(&mut parent) {
        if g.len() == 1 {
            out.push(candidates[g[0]].clone());
            continue;
        }
        let mut bbox = candidates[g[0]].bbox;
        for &x in &g[1..] {
            merge_box(&mut bbox, &candidates[x].bbox);
        }
        let rles: Vec<rle::Rle<'_>> = g
            .iter()
            .map(|&x| {
                (
                    candidates[x].starts.as_slice(),
                    candidates[x].runs.as_slice(),
                )
            })
            .collect();
        let (starts, runs) = rle::union(&rles)?;
        out.push(Instance { bbox, starts, runs });
    }
    Ok(out)
}

/// Instance consensus of one thing class over any number of views (§6.3), before the size
/// and extent filters. Instances come out in the reference's order: components of the
/// object graph by their first detection, then the overlap groups within each.
fn instance_consensus(views: &[&RleObjects], p: &ConsensusParams) -> Result<Vec<Instance>> {
    let v = views.len();
    let min_cluster_size = if p.allow_one_view { 1 } else { v / 2 + 1 };
    // A vote below the majority clusters maximally (§6.3 step 2).
    let cluster_iou_thr = if p.pixel_vote_thr < min_cluster_size {
        0.0
    } else {
        p.cluster_iou_thr
    };
    let nodes: Vec<Node<'_>> = views
        .iter()
        .enumerate()
        .flat_map(|(view, objects)| {
            (0..objects.len()).map(move |index| Node {
                view,
                objects,
                index,
            })
        })
        .collect();
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let boxes: Vec<&[i64]> = nodes.iter().map(|n| n.bbox()).collect();
    let sources: Vec<usize> = nodes.iter().map(|n| n.view).collect();
    let pairs = box_candidates(&boxes, &sources);
    let edges: Vec<Edge> = pairs
        .par_iter()
        .filter_map(|&(a, b)| {
            let ((sa, ra), (sb, rb)) = (nodes[a].rle(), nodes[b].rle());
            let inter = rle::intersection_sorted(sa, ra, sb, rb);
            let union = nodes[a].objects.counts[nodes[a].index]
                + nodes[b].objects.counts[nodes[b].index]
                - inter;
            (inter > 0).then(|| Edge {
                a,
                b,
                iou: if union > 0 {
                    inter as f64 / union as f64
                } else {
                    0.0
                },
                overlap: inter,
            })
        })
        .collect();

    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    for e in &edges {
        join(&mut parent, e.a, e.b);
    }
    let comps = groups(&mut parent);
    let mut comp_of = vec![0usize; nodes.len()];
    for (c, members) in comps.iter().enumerate() {
        for &x in members {
            comp_of[x] = c;
        }
    }
    let mut comp_edges: Vec<Vec<Edge>> = vec![Vec::new(); comps.len()];
    for e in edges {
        comp_edges[comp_of[e.a]].push(e);
    }
    let per_comp: Vec<Vec<Instance>> = comps
        .par_iter()
        .zip(comp_edges.par_iter())
        .map(|(comp, edges)| {
            component_instances(
                comp,
                edges,
                &nodes,
                min_cluster_size,
                cluster_iou_thr,
                p.pixel_vote_thr,
            )
        })
        .collect::<Result<_>>()?;
    Ok(per_comp.into_iter().flatten().collect())
}

/// Semantic consensus of one stuff class (§6.4): the voxels covered by at least
/// `pixel_vote_thr` views, box = union of the views' boxes. Fewer views holding the class
/// than the threshold give an empty result (the reference crashes there; design §3), and so
/// does an empty vote (the reference keeps a zero-voxel object, which paints nothing).
fn semantic_consensus(views: &[&RleObjects], thr: usize) -> Result<Vec<Instance>> {
    let mut bbox: Option<[i64; 6]> = None;
    let mut rles: Vec<rle::Rle<'_>> = Vec::new();
    for o in views {
        if o.len() > 1 {
            return Err(Error::invalid(
                "segs",
                format!(
                    "a semantic (stuff) class holds at most one object per view, got {}",
                    o.len()
                ),
            ));
        }
        for i in 0..o.len() {
            let b = &o.boxes[6 * i..6 * i + 6];
            match bbox.as_mut() {
                None => bbox = Some(b.try_into().expect("3D box")),
                Some(m) => merge_box(m, b),
            }
            let (a, z) = (o.offsets[i] as usize, o.offsets[i + 1] as usize);
            rles.push((&o.starts[a..z], &o.runs[a..z]));
        }
    }
    let Some(bbox) = bbox else {
        return Ok(Vec::new());
    };
    let (starts, runs) = rle::vote(&rles, thr)?;
    if starts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Instance { bbox, starts, runs }])
}

fn to_objects(instances: Vec<Instance>) -> RleObjects {
    let mut o = RleObjects {
        ndim: 3,
        offsets: vec![0],
        ..Default::default()
    };
    for (k, inst) in instances.into_iter().enumerate() {
        o.ids.push(k as u64 + 1);
        o.boxes.extend_from_slice(&inst.bbox);
        o.counts.push(inst.runs.iter().sum());
        o.starts.extend_from_slice(&inst.starts);
        o.runs.extend_from_slice(&inst.runs);
        o.offsets.push(o.starts.len() as i64);
    }
    o
}

/// Ortho-plane consensus of per-plane segmentations of one volume (spec §6; the reference's
/// `tracker_consensus` per class).
///
/// `views` are the xy, xz and yz results (any number ≥ 1 works; the majority is
/// `views / 2 + 1`). Every class present in any view is in the output: thing classes by the
/// instance algorithm of §6.3 followed by the size filter (voxel count `< min_size` removed)
/// and the pancake filter (box span `< min_extent` along any axis removed; the box is the
/// union of the members' boxes, not recomputed after voting, as in the reference); stuff
/// classes by the vote of §6.4 (no filters). A class must be thing or stuff in every view
/// that holds it. Output ids are `1..N` per class in the reference's order (the reference
/// keeps the gaps the filters leave; painted volumes differ only by that renumbering).
///
/// Differences from the reference (design §3): second-order links are kept in greedy
/// cluster merging (see [`merge_clusters`]), and a stuff class held by fewer views than
/// the vote threshold gives an empty result instead of an exception.
pub fn orthoplane_consensus(views: &[&Segmentation], p: &ConsensusParams) -> Result<Segmentation> {
    let Some(first) = views.first() else {
        return Err(Error::invalid("segs", "pass at least one segmentation"));
    };
    p.check(views.len())?;
    let shape = first.shape;
    if let Some(s) = views.iter().find(|s| s.shape != shape) {
        return Err(Error::shape(
            "segs",
            format!(
                "all views must segment the same volume, got shapes {:?} and {:?}",
                shape, s.shape
            ),
        ));
    }
    let mut class_ids: Vec<(u32, bool)> = views
        .iter()
        .flat_map(|s| s.classes.iter().map(|c| (c.class_id, c.thing)))
        .collect();
    class_ids.sort_unstable();
    class_ids.dedup();
    if let Some(w) = class_ids.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::invalid(
            "segs",
            format!(
                "class {} is a thing class in one view and a stuff class in another",
                w[0].0
            ),
        ));
    }
    let empty = RleObjects {
        ndim: 3,
        offsets: vec![0],
        ..Default::default()
    };
    let mut out = Segmentation::new(shape);
    for (class_id, thing) in class_ids {
        // The set operations below need each object's runs sorted and disjoint: checked once
        // here (objects built by this crate always are; others are sorted).
        let objs: Vec<Cow<'_, RleObjects>> = views
            .iter()
            .map(|s| {
                let o = s
                    .classes
                    .iter()
                    .find(|c| c.class_id == class_id)
                    .map_or(&empty, |c| &c.objects);
                if rle::objects_sorted(o) {
                    Ok(Cow::Borrowed(o))
                } else {
                    rle::sort_objects(o).map(Cow::Owned)
                }
            })
            .collect::<Result<_>>()?;
        let objs: Vec<&RleObjects> = objs.iter().map(|o| o.as_ref()).collect();
        let instances = if thing {
            instance_consensus(&objs, p)?
                .into_iter()
                .filter(|i| {
                    i.runs.iter().sum::<i64>() >= p.min_size
                        && (0..3).all(|a| i.bbox[a + 3] - i.bbox[a] >= p.min_extent)
                })
                .collect()
        } else {
            semantic_consensus(&objs, p.pixel_vote_thr)?
        };
        out.insert(ClassObjects {
            class_id,
            thing,
            objects: to_objects(instances),
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        let members = (0..n).map(|i| vec![i]).collect();
        let adj = (0..n)
            .map(|i| {
                let mut a = Vec::new();
                if i > 0 {
                    a.push(i - 1);
                }
                if i + 1 < n {
                    a.push(i + 1);
                }
                a
            })
            .collect();
        (members, adj)
    }

    #[test]
    fn second_order_links_are_kept() {
        // A-B-C-D: B absorbs A and C; the reference loses C-D and keeps {D} apart.
        let (mut members, mut adj) = chain(4);
        let alive = merge_clusters(&mut members, &mut adj);
        assert_eq!(alive, vec![false, true, false, false]);
        assert_eq!(members[1], vec![0, 1, 2, 3]);
    }

    #[test]
    fn bigger_neighbour_takes_the_node() {
        // 0 (1 member) linked to 1 (2 members) and 2 (3 members): 0 is pushed into both.
        let mut members = vec![vec![0], vec![1, 2], vec![3, 4, 5]];
        let mut adj = vec![vec![1, 2], vec![0], vec![0]];
        let alive = merge_clusters(&mut members, &mut adj);
        assert_eq!(alive, vec![false, true, true]);
        assert_eq!(members[1], vec![0, 1, 2]);
        assert_eq!(members[2], vec![0, 3, 4, 5]);
    }

    #[test]
    fn sweep_finds_overlapping_boxes_only() {
        let b0 = [0i64, 0, 0, 2, 2, 2];
        let b1 = [1i64, 1, 1, 3, 3, 3];
        let b2 = [2i64, 0, 0, 4, 2, 2]; // touches b0 along z: not a candidate
        let b3 = [0i64, 0, 0, 2, 2, 2]; // same source as b0
        let boxes: Vec<&[i64]> = vec![&b0, &b1, &b2, &b3];
        let pairs = box_candidates(&boxes, &[0, 1, 2, 0]);
        assert_eq!(pairs, vec![(0, 1), (1, 2), (1, 3)]);
    }

    #[test]
    fn bad_params() {
        let s = Segmentation::new([2, 2, 2]);
        let p = ConsensusParams {
            pixel_vote_thr: 4,
            ..Default::default()
        };
        assert!(orthoplane_consensus(&[&s, &s, &s], &p).is_err());
        let p = ConsensusParams {
            cluster_iou_thr: 1.5,
            ..Default::default()
        };
        assert!(orthoplane_consensus(&[&s, &s, &s], &p).is_err());
        let t = Segmentation::new([2, 2, 3]);
        assert!(orthoplane_consensus(&[&s, &s, &t], &ConsensusParams::default()).is_err());
    }
}
