//! Stack (3D) post-processing (spec §5.3–5.7): per-slice model outputs in, per-class sparse
//! 3D objects out.
//!
//! [`StackPipeline::push`] only checks and queues a slice; threads owned by the pipeline
//! post-process it while the caller runs the model on the next slice, in three stages: the
//! slice median over `sem` (one thread, slices in order); 2D panoptic post-processing
//! (force-connected, which is the reference's per-class CC of `pan_seg_to_rle_seg`) and
//! per-class runs ([`PANOPTIC_THREADS`] threads, several slices at once, each slice
//! independent); forward matching (one thread, slices put back in order). Every queue is
//! bounded, so a model faster than post-processing is slowed down instead of filling memory.
//! [`StackPipeline::finish`] matches backwards, assembles 3D objects per class, and applies
//! the size and extent filters.
//!
//! Memory: the median window of dense slices plus the sparse objects of every slice; no
//! dense volume is ever built.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ndarray::{ArrayView2, ArrayView3};

use crate::label::Label;
use crate::matching::{match_slice, next_label_after, MatchParams, Object2d, Plane, Tracker};
use crate::median::{BufferPool, MedianMode, SliceMedianFilter};
use crate::panoptic::{panoptic_2d_into, relabel_connected, Panoptic2dParams, PanopticScratch};
use crate::rle;
use crate::segmentation::{ClassObjects, Segmentation};
use crate::{Error, Result};

/// Slices queued between `push` and the median stage.
const QUEUE_SLICES: usize = 4;
/// Threads of the panoptic stage: slices post-processed at the same time.
pub const PANOPTIC_THREADS: usize = 2;

/// Everything a stack pipeline needs besides the slices.
#[derive(Debug, Clone, PartialEq)]
pub struct StackParams {
    /// Volume shape `(D, H, W)`.
    pub shape: [usize; 3],
    pub plane: Plane,
    /// Every class id to keep (thing and stuff).
    pub labels: Vec<u32>,
    /// 2D post-processing; `thing_list` and `label_divisor` are the stack's too. `crop` and
    /// `force_connected` are set by the pipeline.
    pub panoptic: Panoptic2dParams,
    pub median_kernel_size: i64,
    pub median_mode: MedianMode,
    pub merge_iou_thr: f64,
    pub merge_ioa_thr: f64,
}

impl StackParams {
    pub fn validate(&self) -> Result<()> {
        if self.shape.contains(&0) {
            return Err(Error::shape(
                "shape",
                format!("volume shape {:?} has an empty axis", self.shape),
            ));
        }
        if self.median_kernel_size < 1 || self.median_kernel_size % 2 == 0 {
            return Err(Error::invalid(
                "median_kernel_size",
                format!(
                    "must be an odd integer >= 1, got {} (1 disables filtering)",
                    self.median_kernel_size
                ),
            ));
        }
        let mut seen = self.labels.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != self.labels.len() || self.labels.is_empty() {
            return Err(Error::invalid(
                "labels",
                format!("must list each class id once, got {:?}", self.labels),
            ));
        }
        if let Some(t) = self
            .panoptic
            .thing_list
            .iter()
            .find(|t| !self.labels.contains(t))
        {
            return Err(Error::invalid(
                "thing_list",
                format!(
                    "thing class {t} is not in labels {:?}; add it there",
                    self.labels
                ),
            ));
        }
        if self.labels.contains(&0) {
            return Err(Error::invalid(
                "labels",
                "class 0 is background and cannot be segmented",
            ));
        }
        let top = (*seen.last().expect("non-empty") as u64 + 1)
            .checked_mul(self.panoptic.label_divisor)
            .filter(|&v| v <= i32::MAX as u64 + 1);
        if self.panoptic.label_divisor < 1 || top.is_none() {
            return Err(Error::invalid(
                "label_divisor",
                format!(
                    "must be >= 1 and keep (max class + 1) * label_divisor within int32, got {}",
                    self.panoptic.label_divisor
                ),
            ));
        }
        for c in &self.labels {
            self.match_params(*c).validate()?;
        }
        Ok(())
    }

    fn match_params(&self, class_id: u32) -> MatchParams {
        MatchParams {
            class_id,
            label_divisor: self.panoptic.label_divisor,
            merge_iou_thr: self.merge_iou_thr,
            merge_ioa_thr: self.merge_ioa_thr,
        }
    }

    /// `(number of slices, slice shape)` along the plane.
    pub fn slicing(&self) -> (usize, (usize, usize)) {
        self.plane.slicing(self.shape)
    }
}

/// One slice's objects per class, in the order of `StackParams::labels`.
type SliceObjects = Vec<Vec<Object2d>>;

/// A slice's panoptic map as objects per class (runs of each id; ids of other classes are
/// dropped).
fn split_classes<L: Label>(params: &StackParams, pan: ArrayView2<L>) -> Result<SliceObjects> {
    let objs = rle::encode(pan.into_dyn())?;
    let ld = params.panoptic.label_divisor;
    let labels = &params.labels;
    let mut per_class: SliceObjects = vec![Vec::new(); labels.len()];
    for i in 0..objs.len() {
        let id = objs.ids[i];
        let class = id / ld;
        let Some(k) = labels.iter().position(|&c| c as u64 == class) else {
            continue;
        };
        let (a, b) = (objs.offsets[i] as usize, objs.offsets[i + 1] as usize);
        let bx = &objs.boxes[4 * i..4 * i + 4];
        per_class[k].push(Object2d {
            label: id,
            bbox: [bx[0], bx[1], bx[2], bx[3]],
            area: objs.counts[i],
            starts: objs.starts[a..b].to_vec(),
            runs: objs.runs[a..b].to_vec(),
        });
    }
    Ok(per_class)
}

/// Per class: the forward-matched objects of every slice so far.
struct Forward {
    params: Arc<StackParams>,
    /// Index in `labels` of each class, sorted by class id for the panoptic split.
    thing: Vec<bool>,
    next_label: Vec<u64>,
    /// `slices[i][k]`: objects of class `labels[k]` in slice `i`.
    slices: Vec<Vec<Vec<Object2d>>>,
}

impl Forward {
    fn new(params: Arc<StackParams>) -> Self {
        let thing = params
            .labels
            .iter()
            .map(|c| params.panoptic.thing_list.contains(c))
            .collect();
        let next_label = params
            .labels
            .iter()
            .map(|&c| params.match_params(c).first_label())
            .collect();
        Forward {
            params,
            thing,
            next_label,
            slices: Vec::new(),
        }
    }

    /// Adds the next slice's panoptic map (already force-connected): split by class, match
    /// thing classes against the previous slice.
    fn add_panoptic<L: Label>(&mut self, pan: ArrayView2<L>) -> Result<()> {
        let per_class = split_classes(&self.params, pan)?;
        self.add_objects(per_class)
    }

    /// Adds the next slice's objects per class ([`split_classes`]): matches thing classes
    /// against the previous slice.
    fn add_objects(&mut self, mut per_class: SliceObjects) -> Result<()> {
        let (n, _) = self.params.slicing();
        if self.slices.len() >= n {
            return Err(Error::shape(
                "push",
                format!("the volume has only {n} slices along the plane"),
            ));
        }
        let labels = &self.params.labels;
        for (k, objects) in per_class.iter_mut().enumerate() {
            if !self.thing[k] {
                continue;
            }
            let p = self.params.match_params(labels[k]);
            match self.slices.last() {
                None => self.next_label[k] = next_label_after(objects, &p),
                Some(prev) => {
                    let taken = std::mem::take(objects);
                    *objects = match_slice(&prev[k], taken, &p, &mut self.next_label[k], true)?;
                }
            }
        }
        self.slices.push(per_class);
        Ok(())
    }

    /// Backward matching, trackers, filters (spec §5.5–5.7).
    fn finish(self, min_size: i64, min_extent: i64) -> Result<Segmentation> {
        let p = &self.params;
        let (n, _) = p.slicing();
        if self.slices.len() != n {
            return Err(Error::shape(
                "finish",
                format!(
                    "{} slices were pushed but the volume has {n} along the {} plane",
                    self.slices.len(),
                    p.plane.name()
                ),
            ));
        }
        let nk = p.labels.len();
        let mut trackers: Vec<Tracker> = p
            .labels
            .iter()
            .map(|&c| Tracker::new(c, p.shape, p.plane))
            .collect();
        let mut later: Vec<Option<Vec<Object2d>>> = vec![None; nk];
        for (index, slice) in self.slices.into_iter().enumerate().rev() {
            for (k, objects) in slice.into_iter().enumerate() {
                let objects = match (&later[k], self.thing[k]) {
                    (Some(target), true) => {
                        let mp = p.match_params(p.labels[k]);
                        // Unmatched objects keep their labels: next_label is never used.
                        let mut unused = u64::MAX;
                        match_slice(target, objects, &mp, &mut unused, false)?
                    }
                    _ => objects,
                };
                trackers[k].update(&objects, index);
                later[k] = Some(objects);
            }
        }
        let mut seg = Segmentation::new(p.shape);
        for (k, mut tracker) in trackers.into_iter().enumerate() {
            // The reference filters every class here, then renumbers in tracker order and
            // filters thing classes again with the same thresholds, which removes nothing:
            // object order alone gives the final ids.
            tracker.filter(min_size, min_extent);
            seg.insert(ClassObjects {
                class_id: p.labels[k],
                thing: self.thing[k],
                objects: tracker.finish()?,
            })?;
        }
        Ok(seg)
    }
}

fn check_filters(min_size: i64, min_extent: i64) -> Result<()> {
    if min_size < 0 {
        return Err(Error::invalid(
            "min_size",
            format!("must be >= 0 voxels, got {min_size}"),
        ));
    }
    if min_extent < 0 {
        return Err(Error::invalid(
            "min_extent",
            format!("must be >= 0 voxels, got {min_extent}"),
        ));
    }
    Ok(())
}

/// One slice's model outputs, owned, in C order.
#[derive(Debug, Clone)]
pub struct SliceOutputs {
    /// `(C, h2, w2)` probabilities.
    pub sem_shape: [usize; 3],
    pub sem: Vec<f32>,
    /// `(h, w)`; `offsets` is `(2, h, w)`.
    pub ctr_shape: [usize; 2],
    pub ctr: Vec<f32>,
    pub offsets: Vec<f32>,
}

impl SliceOutputs {
    /// Copies views into an owned slice.
    pub fn from_views(
        sem: ArrayView3<f32>,
        ctr: ArrayView2<f32>,
        offsets: ArrayView3<f32>,
    ) -> Result<Self> {
        Self::from_views_in(sem, ctr, offsets, &BufferPool::default())
    }

    /// [`from_views`](Self::from_views) copying `sem` into a buffer of `pool`.
    fn from_views_in(
        sem: ArrayView3<f32>,
        ctr: ArrayView2<f32>,
        offsets: ArrayView3<f32>,
        pool: &BufferPool,
    ) -> Result<Self> {
        let (h, w) = ctr.dim();
        if offsets.dim() != (2, h, w) {
            return Err(Error::shape(
                "offsets",
                format!(
                    "expected (2, {h}, {w}) to match ctr_hmp, got {:?}",
                    offsets.shape()
                ),
            ));
        }
        let (c, h2, w2) = sem.dim();
        // One memcpy per array when C-contiguous (the usual case), an element walk otherwise.
        fn owned<D: ndarray::Dimension>(a: ndarray::ArrayView<f32, D>) -> Vec<f32> {
            match a.as_slice() {
                Some(s) => s.to_vec(),
                None => a.iter().copied().collect(),
            }
        }
        let sem = match sem.as_slice() {
            Some(s) => pool.copy_of(s),
            None => owned(sem),
        };
        Ok(SliceOutputs {
            sem_shape: [c, h2, w2],
            sem,
            ctr_shape: [h, w],
            ctr: owned(ctr),
            offsets: owned(offsets),
        })
    }
}

/// One median-filtered slice on its way to the panoptic stage.
struct Job {
    index: usize,
    sem_shape: [usize; 3],
    sem: Vec<f32>,
    outputs: SliceOutputs,
}

/// Stage 1: the slice median, in slice order; hands each filtered slice to the panoptic stage.
fn median_stage(
    rx: Receiver<SliceOutputs>,
    jobs: SyncSender<Job>,
    params: Arc<StackParams>,
    pool: Arc<BufferPool>,
    failed: Arc<AtomicBool>,
) -> Result<()> {
    let run = || -> Result<()> {
        let mut median =
            SliceMedianFilter::with_pool(params.median_kernel_size, params.median_mode, pool)?;
        // Heatmap and offsets wait here until the median releases their slice.
        let mut waiting: VecDeque<SliceOutputs> = VecDeque::new();
        // False once the later stages are gone (they stopped on an error they report).
        let emit =
            |emitted: Vec<crate::median::Emitted>, waiting: &mut VecDeque<SliceOutputs>| -> bool {
                for e in emitted {
                    let outputs = waiting
                        .pop_front()
                        .expect("one waiting slice per emitted slice");
                    let job = Job {
                        index: e.index,
                        sem_shape: outputs.sem_shape,
                        sem: e.data,
                        outputs,
                    };
                    if jobs.send(job).is_err() {
                        return false;
                    }
                }
                true
            };
        for mut s in rx {
            let sem = std::mem::take(&mut s.sem);
            let shape = s.sem_shape;
            waiting.push_back(s);
            let out = median.push_owned(&shape, sem)?;
            if !emit(out, &mut waiting) {
                return Ok(());
            }
        }
        let out = median.finish()?;
        emit(out, &mut waiting);
        Ok(())
    };
    let r = run();
    if r.is_err() {
        failed.store(true, Ordering::Release);
    }
    r
}

/// Stage 2 (one of [`PANOPTIC_THREADS`]): panoptic map and per-class objects of whichever
/// slice comes next; results go to the matching stage tagged with their slice index.
fn panoptic_stage(
    jobs: Arc<Mutex<Receiver<Job>>>,
    results: SyncSender<(usize, Result<SliceObjects>)>,
    params: Arc<StackParams>,
    pool: Arc<BufferPool>,
    failed: Arc<AtomicBool>,
) {
    let (_, crop) = params.slicing();
    let mut p2 = params.panoptic.clone();
    p2.crop = Some(crop);
    p2.force_connected = true;
    let mut scratch = PanopticScratch::default();
    let mut pan: Vec<i32> = Vec::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if failed.load(Ordering::Acquire) {
            return;
        }
        let objects = catch_unwind(AssertUnwindSafe(|| -> Result<SliceObjects> {
            let s = &job.outputs;
            let sem = ArrayView3::from_shape(job.sem_shape, &job.sem).expect("checked shape");
            let ctr = ArrayView2::from_shape(s.ctr_shape, &s.ctr).expect("checked shape");
            let [h, w] = s.ctr_shape;
            let off = ArrayView3::from_shape((2, h, w), &s.offsets).expect("checked shape");
            let shape = panoptic_2d_into(sem, ctr, off, &p2, &mut scratch, &mut pan)?;
            let map = ArrayView2::from_shape(shape, &pan).expect("one id per pixel");
            split_classes(&params, map)
        }))
        .unwrap_or_else(|_| Err(Error::invalid("push", "the stack worker panicked")));
        pool.give(job.sem);
        if results.send((job.index, objects)).is_err() {
            return;
        }
    }
}

/// Stage 3: forward matching, slices taken back in index order.
fn matching_stage(
    results: Receiver<(usize, Result<SliceObjects>)>,
    params: Arc<StackParams>,
    failed: Arc<AtomicBool>,
) -> Result<Forward> {
    let mut fwd = Forward::new(params);
    let mut early: BTreeMap<usize, Result<SliceObjects>> = BTreeMap::new();
    let run = || -> Result<()> {
        for (index, objects) in results {
            early.insert(index, objects);
            while let Some(objects) = early.remove(&fwd.slices.len()) {
                fwd.add_objects(objects?)?;
            }
        }
        Ok(())
    };
    let r = run();
    if r.is_err() {
        failed.store(true, Ordering::Release);
    }
    r.map(|_| fwd)
}

/// The pipeline's threads.
struct Workers {
    median: JoinHandle<Result<()>>,
    panoptic: Vec<JoinHandle<()>>,
    matching: JoinHandle<Result<Forward>>,
}

impl Workers {
    fn start(
        params: &Arc<StackParams>,
        pool: &Arc<BufferPool>,
        failed: &Arc<AtomicBool>,
    ) -> Result<(SyncSender<SliceOutputs>, Self)> {
        let cannot = |e: std::io::Error| {
            Error::invalid("StackPipeline", format!("cannot start worker: {e}"))
        };
        let (tx, rx) = sync_channel(QUEUE_SLICES);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(PANOPTIC_THREADS);
        let (res_tx, res_rx) = sync_channel(2 * PANOPTIC_THREADS);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (p, f) = (params.clone(), failed.clone());
        let matching = std::thread::Builder::new()
            .name("empanada-stack-match".into())
            .spawn(move || matching_stage(res_rx, p, f))
            .map_err(cannot)?;
        let mut panoptic = Vec::with_capacity(PANOPTIC_THREADS);
        for _ in 0..PANOPTIC_THREADS {
            let (j, r, p, b, f) = (
                jobs_rx.clone(),
                res_tx.clone(),
                params.clone(),
                pool.clone(),
                failed.clone(),
            );
            panoptic.push(
                std::thread::Builder::new()
                    .name("empanada-stack-2d".into())
                    .spawn(move || panoptic_stage(j, r, p, b, f))
                    .map_err(cannot)?,
            );
        }
        drop(res_tx);
        let (p, b, f) = (params.clone(), pool.clone(), failed.clone());
        let median = std::thread::Builder::new()
            .name("empanada-stack".into())
            .spawn(move || median_stage(rx, jobs_tx, p, b, f))
            .map_err(cannot)?;
        Ok((
            tx,
            Workers {
                median,
                panoptic,
                matching,
            },
        ))
    }

    /// Waits for every thread (the input queue must be closed first). The matching stage's
    /// error comes first (it is about the earliest slice), then the median's, then a panic.
    fn join(self) -> Result<Forward> {
        let panicked = || Error::invalid("finish", "the stack worker panicked");
        let median = self.median.join();
        let mut panic = median.is_err();
        for h in self.panoptic {
            panic |= h.join().is_err();
        }
        let fwd = self.matching.join().map_err(|_| panicked())??;
        median.map_err(|_| panicked())??;
        if panic {
            return Err(panicked());
        }
        Ok(fwd)
    }
}

/// Streaming stack post-processing; see the module documentation.
pub struct StackPipeline {
    params: Arc<StackParams>,
    tx: Option<SyncSender<SliceOutputs>>,
    workers: Option<Workers>,
    pool: Arc<BufferPool>,
    failed: Arc<AtomicBool>,
    n_pushed: usize,
    first: Option<([usize; 3], [usize; 2])>,
}

impl StackPipeline {
    pub fn new(params: StackParams) -> Result<Self> {
        params.validate()?;
        let params = Arc::new(params);
        let failed = Arc::new(AtomicBool::new(false));
        let pool = Arc::new(BufferPool::default());
        let (tx, workers) = Workers::start(&params, &pool, &failed)?;
        Ok(StackPipeline {
            params,
            tx: Some(tx),
            workers: Some(workers),
            pool,
            failed,
            n_pushed: 0,
            first: None,
        })
    }

    pub fn params(&self) -> &StackParams {
        &self.params
    }
    pub fn n_pushed(&self) -> usize {
        self.n_pushed
    }
    pub fn is_finished(&self) -> bool {
        self.tx.is_none()
    }

    fn closed() -> Error {
        Error::invalid(
            "push",
            "the pipeline is finished (or failed earlier); create a new StackPipeline",
        )
    }

    /// Joins the workers after a failure and returns their error.
    fn worker_error(&mut self) -> Error {
        self.tx = None;
        match self.workers.take().map(Workers::join) {
            Some(Err(e)) => e,
            _ => Self::closed(),
        }
    }

    /// Checks a slice against the plane and the first slice.
    pub fn check_slice(&self, s: &SliceOutputs) -> Result<()> {
        let (n, (h, w)) = self.params.slicing();
        let [c, h2, w2] = s.sem_shape;
        if c == 0 || h2 < h || w2 < w {
            return Err(Error::shape(
                "sem",
                format!(
                    "expected (C >= 1, >= {h}, >= {w}) for {} slices of a {:?} volume, got {:?}",
                    self.params.plane.name(),
                    self.params.shape,
                    s.sem_shape
                ),
            ));
        }
        if s.sem.len() != c * h2 * w2
            || s.ctr.len() != s.ctr_shape[0] * s.ctr_shape[1]
            || s.offsets.len() != 2 * s.ctr.len()
        {
            return Err(Error::shape(
                "sem",
                "buffer sizes do not match their shapes",
            ));
        }
        if let Some((ss, cs)) = self.first {
            if ss != s.sem_shape || cs != s.ctr_shape {
                return Err(Error::shape(
                    "sem",
                    format!(
                        "slice shapes {:?}/{:?} differ from the first slice's {ss:?}/{cs:?}",
                        s.sem_shape, s.ctr_shape
                    ),
                ));
            }
        }
        if self.n_pushed >= n {
            return Err(Error::shape(
                "push",
                format!(
                    "the volume has only {n} slices along the {} plane",
                    self.params.plane.name()
                ),
            ));
        }
        Ok(())
    }

    /// Queues one slice; blocks only while the queue is full. An error the worker hit on an
    /// earlier slice is returned here (or by [`finish`](Self::finish)).
    pub fn push_owned(&mut self, s: SliceOutputs) -> Result<()> {
        if self.tx.is_none() {
            return Err(Self::closed());
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(self.worker_error());
        }
        self.check_slice(&s)?;
        let first = (s.sem_shape, s.ctr_shape);
        let tx = self.tx.as_ref().expect("checked");
        if tx.send(s).is_err() {
            return Err(self.worker_error());
        }
        self.first.get_or_insert(first);
        self.n_pushed += 1;
        Ok(())
    }

    /// [`push_owned`](Self::push_owned) copying from views.
    pub fn push(
        &mut self,
        sem: ArrayView3<f32>,
        ctr: ArrayView2<f32>,
        offsets: ArrayView3<f32>,
    ) -> Result<()> {
        self.push_owned(SliceOutputs::from_views_in(sem, ctr, offsets, &self.pool)?)
    }

    /// Ends the stack: waits for the worker, matches backwards, builds and filters the 3D
    /// objects. Objects of each class come in the reference's final order, ids `c*L+k`.
    pub fn finish(&mut self, min_size: i64, min_extent: i64) -> Result<Segmentation> {
        check_filters(min_size, min_extent)?;
        if self.tx.is_none() {
            return Err(Error::invalid(
                "finish",
                "the pipeline is already finished (or failed earlier); create a new StackPipeline",
            ));
        }
        self.tx = None;
        let fwd = match self.workers.take() {
            Some(w) => w.join()?,
            None => return Err(Self::closed()),
        };
        fwd.finish(min_size, min_extent)
    }
}

impl Drop for StackPipeline {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.workers.take() {
            let _ = w.join();
        }
    }
}

/// Matches slices that are already segmented (a `(N, h, w)` stack of 2D instance labels,
/// 0 = background, each slice's ids independent) into 3D objects of class 1 with the stack
/// pipeline's rules: each slice's objects are its 8-connected pieces of each id, then
/// forward and backward matching, trackers and filters.
pub fn match_slices<L: Label>(
    slices: ArrayView3<L>,
    plane: Plane,
    label_divisor: u64,
    merge_iou_thr: f64,
    merge_ioa_thr: f64,
    min_size: i64,
    min_extent: i64,
) -> Result<Segmentation> {
    check_filters(min_size, min_extent)?;
    let (n, h, w) = slices.dim();
    let shape = match plane {
        Plane::Xy => [n, h, w],
        Plane::Xz => [h, n, w],
        Plane::Yz => [h, w, n],
    };
    let params = StackParams {
        shape,
        plane,
        labels: vec![1],
        panoptic: Panoptic2dParams {
            thing_list: vec![1],
            label_divisor,
            ..Default::default()
        },
        median_kernel_size: 1,
        median_mode: MedianMode::Recursive,
        merge_iou_thr,
        merge_ioa_thr,
    };
    if shape.contains(&0) {
        return Ok(Segmentation::new(shape));
    }
    params.validate()?;
    let mut fwd = Forward::new(Arc::new(params));
    for s in slices.outer_iter() {
        let mut pan = ndarray::Array2::<i64>::zeros((h, w));
        for (o, &v) in pan.iter_mut().zip(s.iter()) {
            if v.is_negative() {
                return Err(Error::invalid("slices", "labels must be >= 0"));
            }
            let v = v.to_u64();
            if v > 0 {
                if v >= label_divisor {
                    return Err(Error::overflow(
                        "label_divisor",
                        format!("slice id {v} must be < label_divisor {label_divisor}; raise it"),
                    ));
                }
                *o = (label_divisor + v) as i64;
            }
        }
        let pan = relabel_connected(pan.view(), &[1], label_divisor)?;
        fwd.add_panoptic(pan.view())?;
    }
    fwd.finish(min_size, min_extent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(shape: [usize; 3], k: i64) -> StackParams {
        StackParams {
            shape,
            plane: Plane::Xy,
            labels: vec![1],
            panoptic: Panoptic2dParams::default(),
            median_kernel_size: k,
            median_mode: MedianMode::Recursive,
            merge_iou_thr: 0.25,
            merge_ioa_thr: 0.25,
        }
    }

    /// A 16x16 slice with a foreground square and one centre in it (coarse 4x4 grid).
    fn slice(on: bool) -> SliceOutputs {
        let mut sem = vec![0.1f32; 256];
        let mut ctr = vec![0f32; 16];
        if on {
            for y in 4..12 {
                for x in 4..12 {
                    sem[y * 16 + x] = 0.9;
                }
            }
            ctr[2 * 4 + 2] = 1.0;
        }
        SliceOutputs {
            sem_shape: [1, 16, 16],
            sem,
            ctr_shape: [4, 4],
            ctr,
            offsets: vec![0.0; 32],
        }
    }

    #[test]
    fn one_object_through_the_stack() {
        let mut p = StackPipeline::new(params([10, 16, 16], 3)).unwrap();
        for z in 0..10 {
            p.push_owned(slice((2..8).contains(&z))).unwrap();
        }
        let seg = p.finish(1, 1).unwrap();
        let c = seg.class(1).unwrap();
        assert_eq!(c.objects.ids, vec![10001]);
        assert_eq!(c.objects.boxes, vec![2, 4, 4, 8, 12, 12]);
        assert_eq!(c.objects.counts, vec![6 * 64]);
        // Extent filter: 6 slices < 7.
        let mut p = StackPipeline::new(params([10, 16, 16], 3)).unwrap();
        for z in 0..10 {
            p.push_owned(slice((2..8).contains(&z))).unwrap();
        }
        assert!(p.finish(1, 7).unwrap().class(1).unwrap().objects.is_empty());
    }

    #[test]
    fn worker_errors_reach_the_caller() {
        let mut p = StackPipeline::new(params([3, 16, 16], 1)).unwrap();
        let mut bad = slice(true);
        bad.sem[5] = f32::NAN;
        let r = p
            .push_owned(bad)
            .and_then(|_| p.push_owned(slice(true)))
            .and_then(|_| p.push_owned(slice(true)))
            .and_then(|_| p.finish(0, 0).map(|_| ()));
        assert!(matches!(r, Err(Error::NonFinite { .. })));
        assert!(p.push_owned(slice(true)).is_err());
    }

    #[test]
    fn bad_parameters() {
        let mut q = params([3, 16, 16], 2);
        assert!(StackPipeline::new(q.clone()).is_err());
        q.median_kernel_size = 3;
        q.merge_iou_thr = 2.0;
        assert!(StackPipeline::new(q.clone()).is_err());
        q.merge_iou_thr = 0.5;
        q.panoptic.thing_list = vec![2];
        assert!(StackPipeline::new(q).is_err());
    }
}
