//! Element-wise median over a sliding window of slices (spec §5.3, design §3).
//!
//! Slices are pushed one at a time (any fixed shape, e.g. `(C, H, W)` probabilities);
//! each slice comes back exactly once, in order, tagged with its index. The queue holds
//! owned copies so the caller may reuse its buffers between pushes.
//!
//! Two modes:
//! * [`MedianMode::Recursive`] (default) reproduces the reference queue: when the queue
//!   holds `k` slices its middle slice is replaced by the median over the queue and stays
//!   there, so later medians see already-filtered values for the `m = (k - 1) / 2`
//!   preceding slices (for k = 3: `out[i] = median(out[i-1], raw[i], raw[i+1])`).
//! * [`MedianMode::Running`]: the textbook median over raw values,
//!   `out[i] = median(raw[i-m..=i+m])`.
//!
//! In both modes the first `m` and the last `m` slices of a stack are passed through
//! unfiltered, and the median of an odd count is one of the inputs (no interpolation), so
//! results equal the reference bit for bit.
//!
//! Short stacks (the design §3 fix). With `N < k` slices in total the reference never fills
//! its queue and loses slices (4 slices with k = 5 emit 0, 1, 3). Here a stack of `N < k`
//! slices is filtered exactly as if `kernel_size` had been `k' = N` for odd `N` and
//! `k' = N - 1` for even `N` (the largest odd kernel that fits), so every slice is emitted
//! once, in order. To make that possible nothing is emitted before the queue first holds `k`
//! slices (or before `finish` for a short stack): the first `m` slices are released together
//! with slice `m`, not as they arrive as in the reference. Values and order are unchanged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::{Error, Result};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;
/// Lanes of the vectorised compare-exchange network.
const LANES: usize = 32;
/// Largest kernel handled by a sorting network; larger ones use selection per element.
const MAX_NETWORK: usize = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MedianMode {
    Recursive,
    Running,
}

impl MedianMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "recursive" => Ok(MedianMode::Recursive),
            "running" => Ok(MedianMode::Running),
            other => Err(Error::invalid(
                "mode",
                format!(
                    "unknown mode {other:?}; use \"recursive\" (reference parity) or \"running\""
                ),
            )),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            MedianMode::Recursive => "recursive",
            MedianMode::Running => "running",
        }
    }
}

/// Slice buffers kept for reuse. Slices are megabytes; a fresh buffer per slice costs page
/// faults (the allocator returns freed blocks that large to the system) comparable to the
/// median itself. A pool can be shared with whoever produces the slices and whoever consumes
/// the filtered ones, so the same few buffers circulate.
#[derive(Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<f32>>>,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.free.lock().map_or(0, |v| v.len());
        write!(f, "BufferPool({n} free)")
    }
}

impl BufferPool {
    /// Buffers kept at most; more are freed.
    const KEEP: usize = 8;

    /// A buffer of `len` values whose content is unspecified (the caller overwrites it).
    pub fn take(&self, len: usize) -> Vec<f32> {
        let mut buf = self
            .free
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default();
        buf.truncate(len);
        buf.resize(len, 0.0);
        buf
    }

    /// A buffer holding a copy of `data`.
    pub fn copy_of(&self, data: &[f32]) -> Vec<f32> {
        let mut buf = self.take(0);
        buf.extend_from_slice(data);
        buf
    }

    /// Hands a buffer back for reuse.
    pub fn give(&self, buf: Vec<f32>) {
        if let Ok(mut v) = self.free.lock() {
            if v.len() < Self::KEEP {
                v.push(buf);
            }
        }
    }
}

/// One slice leaving the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub index: usize,
    pub data: Vec<f32>,
}

/// Streaming median filter over slices; see the module documentation.
#[derive(Debug, Clone)]
pub struct SliceMedianFilter {
    kernel: usize,
    mode: MedianMode,
    network: Vec<(usize, usize)>,
    shape: Option<Vec<usize>>,
    /// Raw slices (running mode) or raw/filtered slices (recursive mode), oldest first.
    queue: VecDeque<Vec<f32>>,
    /// Index of `queue[0]` in the stack.
    first: usize,
    filled: bool,
    finished: bool,
    pool: Arc<BufferPool>,
}

impl SliceMedianFilter {
    pub fn new(kernel_size: i64, mode: MedianMode) -> Result<Self> {
        Self::with_pool(kernel_size, mode, Arc::default())
    }

    /// A filter taking its slice buffers from `pool` and handing back those it drops.
    pub fn with_pool(kernel_size: i64, mode: MedianMode, pool: Arc<BufferPool>) -> Result<Self> {
        if kernel_size < 1 || kernel_size % 2 == 0 {
            return Err(Error::invalid(
                "kernel_size",
                format!("must be an odd integer >= 1, got {kernel_size} (1 disables filtering)"),
            ));
        }
        let kernel = kernel_size as usize;
        Ok(SliceMedianFilter {
            kernel,
            mode,
            network: median_network(kernel),
            shape: None,
            queue: VecDeque::with_capacity(kernel),
            first: 0,
            filled: false,
            finished: false,
            pool,
        })
    }

    pub fn kernel_size(&self) -> usize {
        self.kernel
    }
    pub fn mode(&self) -> MedianMode {
        self.mode
    }
    /// Shape of the slices, fixed by the first push.
    pub fn shape(&self) -> Option<&[usize]> {
        self.shape.as_deref()
    }

    /// Adds the next slice (`data` in C order of `shape`) and returns the slices it releases.
    pub fn push(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<Emitted>> {
        let buf = self.pool.copy_of(data);
        self.push_owned(shape, buf)
    }

    /// [`push`](Self::push) taking ownership of the slice buffer.
    pub fn push_owned(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Vec<Emitted>> {
        if self.finished {
            return Err(Error::invalid(
                "push",
                "the filter is finished; create a new SliceMedianFilter for another stack",
            ));
        }
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::shape(
                "array",
                format!("{} values for shape {shape:?}", data.len()),
            ));
        }
        match &self.shape {
            Some(s) if s.as_slice() != shape => {
                return Err(Error::shape(
                    "array",
                    format!(
                        "slice shape {shape:?} differs from the first slice's {s:?}; every slice of a stack must have the same shape"
                    ),
                ))
            }
            _ => {}
        }
        if !all_finite(&data) {
            return Err(Error::non_finite(
                "array",
                "slice holds NaN or infinity; probabilities must be finite (np.nan_to_num them first)",
            ));
        }
        if self.shape.is_none() {
            self.shape = Some(shape.to_vec());
        }

        let k = self.kernel;
        let mut out = Vec::new();
        if k == 1 {
            out.push(Emitted {
                index: self.first,
                data,
            });
            self.first += 1;
            return Ok(out);
        }
        if self.queue.len() == k {
            if let Some(old) = self.queue.pop_front() {
                self.pool.give(old);
            }
            self.first += 1;
        }
        self.queue.push_back(data);
        if self.queue.len() < k {
            return Ok(out);
        }
        let m = k / 2;
        if !self.filled {
            self.filled = true;
            for i in 0..m {
                out.push(Emitted {
                    index: self.first + i,
                    data: self.pool.copy_of(&self.queue[i]),
                });
            }
        }
        let med = {
            let srcs: Vec<&[f32]> = self.queue.iter().map(|v| v.as_slice()).collect();
            let mut dst = self.pool.take(n);
            median_into(&srcs, &self.network, &mut dst);
            dst
        };
        let emitted = match self.mode {
            MedianMode::Recursive => {
                let e = self.pool.copy_of(&med);
                let raw = std::mem::replace(&mut self.queue[m], med);
                self.pool.give(raw);
                e
            }
            MedianMode::Running => med,
        };
        out.push(Emitted {
            index: self.first + m,
            data: emitted,
        });
        Ok(out)
    }

    /// Ends the stack and returns the slices still held (see the module doc for stacks
    /// shorter than the kernel).
    pub fn finish(&mut self) -> Result<Vec<Emitted>> {
        if self.finished {
            return Err(Error::invalid(
                "finish",
                "the filter is already finished; create a new SliceMedianFilter for another stack",
            ));
        }
        self.finished = true;
        let queue = std::mem::take(&mut self.queue);
        if self.filled {
            let m = self.kernel / 2;
            let first = self.first;
            return Ok(queue
                .into_iter()
                .enumerate()
                .skip(m + 1)
                .map(|(i, data)| Emitted {
                    index: first + i,
                    data,
                })
                .collect());
        }
        // Fewer than `kernel` slices in the whole stack: shrink to the largest odd kernel.
        let n = queue.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let shrunk = if n % 2 == 1 { n } else { n - 1 };
        let mut inner = SliceMedianFilter::with_pool(shrunk as i64, self.mode, self.pool.clone())?;
        let shape = self.shape.clone().unwrap_or_default();
        let mut out = Vec::with_capacity(n);
        for data in queue {
            out.extend(inner.push_owned(&shape, data)?);
        }
        out.extend(inner.finish()?);
        Ok(out)
    }
}

/// Filters a whole stack along axis 0 (`stack` holds `n_slices` slices of `slice_len`
/// values each, C order) and returns the filtered stack in the same layout.
pub fn median_filter_slices(
    stack: &[f32],
    n_slices: usize,
    slice_shape: &[usize],
    kernel_size: i64,
    mode: MedianMode,
) -> Result<Vec<f32>> {
    let mut filt = SliceMedianFilter::new(kernel_size, mode)?;
    let len: usize = slice_shape.iter().product();
    if stack.len() != n_slices * len {
        return Err(Error::shape(
            "stack",
            format!(
                "{} values for {n_slices} slices of shape {slice_shape:?}",
                stack.len()
            ),
        ));
    }
    let mut out = vec![0f32; stack.len()];
    let mut put = |es: Vec<Emitted>| {
        for e in es {
            out[e.index * len..(e.index + 1) * len].copy_from_slice(&e.data);
        }
    };
    for i in 0..n_slices {
        let es = filt.push(slice_shape, &stack[i * len..(i + 1) * len])?;
        put(es);
    }
    put(filt.finish()?);
    Ok(out)
}

fn all_finite(data: &[f32]) -> bool {
    data.par_chunks(CHUNK)
        .all(|c| c.iter().fold(true, |acc, v| acc & v.is_finite()))
}

#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}
#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// Compare-exchange pairs (odd-even transposition sort) that can influence the middle
/// position; everything that cannot reach it is pruned.
fn median_network(k: usize) -> Vec<(usize, usize)> {
    if k > MAX_NETWORK {
        return Vec::new();
    }
    let mut pairs = Vec::new();
    for round in 0..k {
        let mut i = round % 2;
        while i + 1 < k {
            pairs.push((i, i + 1));
            i += 2;
        }
    }
    let mut needed = vec![false; k];
    needed[k / 2] = true;
    let mut kept = Vec::new();
    for &(i, j) in pairs.iter().rev() {
        if needed[i] || needed[j] {
            needed[i] = true;
            needed[j] = true;
            kept.push((i, j));
        }
    }
    kept.reverse();
    kept
}

/// Element-wise median of an odd number of equally long slices into `dst` (as long).
fn median_into(srcs: &[&[f32]], network: &[(usize, usize)], dst: &mut [f32]) {
    dst.par_chunks_mut(CHUNK).enumerate().for_each(|(c, d)| {
        let off = c * CHUNK;
        let parts: Vec<&[f32]> = srcs.iter().map(|s| &s[off..off + d.len()]).collect();
        median_chunk(&parts, network, d);
    });
}

fn median_chunk(srcs: &[&[f32]], network: &[(usize, usize)], dst: &mut [f32]) {
    let k = srcs.len();
    match k {
        1 => dst.copy_from_slice(srcs[0]),
        3 => {
            for (i, d) in dst.iter_mut().enumerate() {
                let (a, b, c) = (srcs[0][i], srcs[1][i], srcs[2][i]);
                *d = fmax(fmin(a, b), fmin(fmax(a, b), c));
            }
        }
        _ if k <= MAX_NETWORK => {
            let mut lanes = [[0f32; LANES]; MAX_NETWORK];
            let mut start = 0;
            while start < dst.len() {
                let w = LANES.min(dst.len() - start);
                for (row, s) in lanes.iter_mut().zip(srcs) {
                    row[..w].copy_from_slice(&s[start..start + w]);
                }
                for &(i, j) in network {
                    let (lo, hi) = lanes.split_at_mut(j);
                    let (a, b) = (&mut lo[i], &mut hi[0]);
                    for l in 0..LANES {
                        let (x, y) = (a[l], b[l]);
                        a[l] = fmin(x, y);
                        b[l] = fmax(x, y);
                    }
                }
                dst[start..start + w].copy_from_slice(&lanes[k / 2][..w]);
                start += w;
            }
        }
        _ => {
            let mut scratch = vec![0f32; k];
            for (i, d) in dst.iter_mut().enumerate() {
                for (t, s) in scratch.iter_mut().zip(srcs) {
                    *t = s[i];
                }
                let (_, med, _) = scratch.select_nth_unstable_by(k / 2, |a, b| a.total_cmp(b));
                *d = *med;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw: &[f32], k: i64, mode: MedianMode) -> (Vec<usize>, Vec<f32>) {
        let mut f = SliceMedianFilter::new(k, mode).unwrap();
        let mut idx = Vec::new();
        let mut vals = Vec::new();
        for &v in raw {
            for e in f.push(&[1], &[v]).unwrap() {
                idx.push(e.index);
                vals.push(e.data[0]);
            }
        }
        for e in f.finish().unwrap() {
            idx.push(e.index);
            vals.push(e.data[0]);
        }
        (idx, vals)
    }

    #[test]
    fn worked_example_of_the_spec() {
        let raw = [0.5, 0.0, 0.9, 0.0, 0.9, 0.0, 0.5];
        let (idx, rec) = run(&raw, 3, MedianMode::Recursive);
        assert_eq!(idx, (0..7).collect::<Vec<_>>());
        assert_eq!(rec, vec![0.5; 7]);
        let (_, run_) = run(&raw, 3, MedianMode::Running);
        assert_eq!(run_, vec![0.5, 0.5, 0.0, 0.9, 0.0, 0.5, 0.5]);
    }

    #[test]
    fn short_stack_uses_largest_odd_kernel() {
        let raw = [0.1, 0.9, 0.2, 0.8];
        let (idx, a) = run(&raw, 5, MedianMode::Recursive);
        assert_eq!(idx, vec![0, 1, 2, 3]);
        let (_, b) = run(&raw, 3, MedianMode::Recursive);
        assert_eq!(a, b);
        let (idx, c) = run(&raw[..2], 7, MedianMode::Running);
        assert_eq!(idx, vec![0, 1]);
        assert_eq!(c, vec![0.1, 0.9]);
    }

    #[test]
    fn networks_select_the_median() {
        let mut seed = 12345u64;
        for k in (3..=21).step_by(2) {
            let net = median_network(k);
            for len in [1usize, 31, 32, 33, 100] {
                let srcs: Vec<Vec<f32>> = (0..k)
                    .map(|_| {
                        (0..len)
                            .map(|_| {
                                seed = seed
                                    .wrapping_mul(6364136223846793005)
                                    .wrapping_add(1442695040888963407);
                                ((seed >> 40) % 7) as f32
                            })
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[f32]> = srcs.iter().map(|v| v.as_slice()).collect();
                let mut got = vec![0f32; len];
                median_into(&refs, &net, &mut got);
                for i in 0..len {
                    let mut col: Vec<f32> = srcs.iter().map(|s| s[i]).collect();
                    col.sort_by(|a, b| a.total_cmp(b));
                    assert_eq!(got[i], col[k / 2], "k={k} len={len} i={i}");
                }
            }
        }
    }

    #[test]
    fn bad_input() {
        assert!(SliceMedianFilter::new(2, MedianMode::Recursive).is_err());
        assert!(SliceMedianFilter::new(0, MedianMode::Recursive).is_err());
        assert!(MedianMode::parse("mean").is_err());
        let mut f = SliceMedianFilter::new(3, MedianMode::Recursive).unwrap();
        assert!(matches!(
            f.push(&[2], &[0.0, f32::NAN]),
            Err(Error::NonFinite { .. })
        ));
        f.push(&[2], &[0.0, 1.0]).unwrap();
        assert!(matches!(f.push(&[1], &[0.0]), Err(Error::Shape { .. })));
        f.finish().unwrap();
        assert!(f.push(&[2], &[0.0, 1.0]).is_err());
        assert!(f.finish().is_err());
    }
}
