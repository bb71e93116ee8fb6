//! Whole-array operations on 2D and 3D label images (0 = background): LUT relabelling,
//! sequential renumbering, size and extent filters, per-object hole filling and per-label
//! statistics. Every function reads the labels in place (any [`Label`] type) and returns a
//! new array of the same type and shape.
//!
//! Objects are ids, not connected components: a label split in two pieces is one object.

use crate::hash::{IdMap, IdSet};

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, CowArray, IxDyn};
use rayon::prelude::*;

use crate::{Error, Label, Result};

/// Elements per parallel task of the element-wise passes.
const CHUNK: usize = 1 << 16;
/// Largest key for which relabelling uses a dense table instead of a hash map.
const DENSE_LUT_MAX: u64 = 1 << 22;
/// Largest id for which statistics always use dense per-task tables.
const DENSE_STATS_MAX: u64 = 1 << 17;

/// The labels as a C-ordered slice plus their (z, y, x) extent; 2D images have z = 1.
struct Grid<'a, L> {
    data: CowArray<'a, L, IxDyn>,
    dims: [usize; 3],
    ndim: usize,
}

impl<'a, L: Label> Grid<'a, L> {
    fn new(labels: ArrayViewD<'a, L>) -> Result<Self> {
        let ndim = labels.ndim();
        let dims = crate::label::zyx("labels", labels.shape())?;
        let data = if labels.is_standard_layout() {
            CowArray::from(labels)
        } else {
            CowArray::from(labels.as_standard_layout().into_owned())
        };
        Ok(Grid { data, dims, ndim })
    }
    fn slice(&self) -> &[L] {
        self.data.as_slice().expect("standard layout")
    }
    fn shape(&self) -> Vec<usize> {
        self.data.shape().to_vec()
    }
    fn check_non_negative(&self) -> Result<()> {
        let neg = self
            .slice()
            .par_chunks(CHUNK)
            .any(|c| c.iter().fold(false, |a, v| a | v.is_negative()));
        if neg {
            return Err(negative_labels());
        }
        Ok(())
    }
}

fn negative_labels() -> Error {
    Error::invalid(
        "labels",
        "labels must be >= 0; negative ids are not object labels (cast or clip the array first)",
    )
}

fn widen_hint<L: Label>() -> String {
    format!(
        "the labels' dtype holds at most {}; widen it first, e.g. `labels.astype(np.uint32)` or `np.uint64`",
        L::MAX_U64
    )
}

/// A zeroed buffer for a kernel's output. Large ones are advised to use transparent huge
/// pages before the first touch (numpy does the same for its arrays): with 4 KiB pages the
/// page faults of a fresh output cost more than a memory-bound pass itself.
pub(crate) fn zeroed_buffer<T: Copy + Default>(n: usize) -> Vec<T> {
    let v = vec![T::default(); n];
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = n * std::mem::size_of::<T>();
        if bytes >= 4 << 20 {
            let start = (v.as_ptr() as usize).div_ceil(PAGE) * PAGE;
            let end = (v.as_ptr() as usize + bytes) / PAGE * PAGE;
            extern "C" {
                fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
            }
            const MADV_HUGEPAGE: i32 = 14;
            // SAFETY: the range lies inside `v`'s allocation, is page aligned, and the advice
            // only changes how the kernel backs the pages; failure is harmless and ignored.
            unsafe {
                madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// relabel

enum Table<L> {
    /// `table[id]` for every id of a type of at most 16 bits (65536 entries).
    Full(Vec<L>),
    /// `table[id]` for ids up to `table.len() - 1`.
    Dense(Vec<L>),
    Sparse(IdMap<u64, L>),
}

/// A relabelling: the table plus what ids missing from it become (`None`: themselves).
struct Lut<L> {
    table: Table<L>,
    fallback: Option<L>,
}

/// Maps every label through `keys -> values`; labels not among the keys keep their value,
/// or become `default` when given. Fails when a value does not fit the labels' type.
pub fn relabel<L: Label>(
    labels: ArrayViewD<'_, L>,
    keys: &[u64],
    values: &[u64],
    default: Option<u64>,
) -> Result<ArrayD<L>> {
    let grid = Grid::new(labels)?;
    check_mapping::<L>(keys, values, default)?;
    let out = apply_lut(grid.slice(), keys, values, default)?;
    Ok(ArrayD::from_shape_vec(IxDyn(&grid.shape()), out).expect("shape of the input"))
}

/// [`relabel`] writing into `out` (C order, as many elements as `labels`) instead of a new
/// array: a reused buffer saves the page faults of fresh memory, which cost about as much as
/// the pass itself. Nothing is written when the arguments are rejected.
pub fn relabel_into<L: Label>(
    labels: ArrayViewD<'_, L>,
    keys: &[u64],
    values: &[u64],
    default: Option<u64>,
    out: &mut [L],
) -> Result<()> {
    let grid = Grid::new(labels)?;
    check_mapping::<L>(keys, values, default)?;
    if out.len() != grid.slice().len() {
        return Err(Error::shape(
            "out",
            format!(
                "expected {} elements (the shape of labels), got {}",
                grid.slice().len(),
                out.len()
            ),
        ));
    }
    if is_signed::<L>() {
        grid.check_non_negative()?;
    }
    let lut = Lut::<L>::new(keys, values, default, out.len());
    lut.map(Some(grid.slice()), out);
    Ok(())
}

/// [`relabel`] in place on a C-ordered 2D or 3D label array. Nothing is written when the
/// arguments are rejected.
pub fn relabel_in_place<L: Label>(
    mut labels: ArrayViewMutD<'_, L>,
    keys: &[u64],
    values: &[u64],
    default: Option<u64>,
) -> Result<()> {
    crate::label::zyx("labels", labels.shape())?;
    let data = labels.as_slice_mut().ok_or_else(|| {
        Error::invalid(
            "labels",
            "relabelling in place needs a C-contiguous array; pass a contiguous copy",
        )
    })?;
    check_mapping::<L>(keys, values, default)?;
    if is_signed::<L>() && any_negative(data) {
        return Err(negative_labels());
    }
    let lut = Lut::<L>::new(keys, values, default, data.len());
    lut.map(None, data);
    Ok(())
}

fn is_signed<L: Label>() -> bool {
    L::from_u64(u64::MAX).is_negative()
}

fn any_negative<L: Label>(data: &[L]) -> bool {
    data.par_chunks(CHUNK)
        .any(|c| c.iter().fold(false, |a, v| a | v.is_negative()))
}

/// Unique keys, and values and default that fit the labels' type.
fn check_mapping<L: Label>(keys: &[u64], values: &[u64], default: Option<u64>) -> Result<()> {
    if keys.len() != values.len() {
        return Err(Error::shape(
            "values",
            format!(
                "keys has {} entries but values has {}; pass one value per key",
                keys.len(),
                values.len()
            ),
        ));
    }
    let mut seen: IdSet<u64> = IdSet::default();
    for &k in keys {
        if !seen.insert(k) {
            return Err(Error::invalid(
                "keys",
                format!("key {k} appears more than once; keys must be unique"),
            ));
        }
    }
    if let Some(&v) = values.iter().find(|&&v| v > L::MAX_U64) {
        return Err(Error::overflow(
            "values",
            format!(
                "value {v} does not fit the labels' dtype: {}",
                widen_hint::<L>()
            ),
        ));
    }
    if let Some(d) = default {
        if d > L::MAX_U64 {
            return Err(Error::overflow(
                "default",
                format!(
                    "default {d} does not fit the labels' dtype: {}",
                    widen_hint::<L>()
                ),
            ));
        }
    }
    Ok(())
}

impl<L: Label> Lut<L> {
    /// The table for `keys -> values`; keys beyond the labels' range can never match and are
    /// dropped. Dense when the largest key is small (against the `n` labels to map).
    fn new(keys: &[u64], values: &[u64], default: Option<u64>, n: usize) -> Lut<L> {
        let pairs: Vec<(u64, L)> = keys
            .iter()
            .zip(values)
            .filter(|(&k, _)| k <= L::MAX_U64)
            .map(|(&k, &v)| (k, L::from_u64(v)))
            .collect();
        let max_key = pairs.iter().map(|p| p.0).max();
        let fallback = default.map(L::from_u64);
        let dense_cap = DENSE_LUT_MAX.min((n as u64).saturating_mul(4).max(1 << 16));
        let table = match max_key {
            Some(mk) if mk <= dense_cap => {
                // Small dtypes get a table over the whole 16-bit range so the pass has no
                // range test.
                let full = L::MAX_U64 <= u16::MAX as u64;
                let size = if full { 1 << 16 } else { mk + 1 };
                let mut table: Vec<L> = match fallback {
                    Some(f) => vec![f; size as usize],
                    None => (0..size).map(L::from_u64).collect(),
                };
                for &(k, v) in &pairs {
                    table[k as usize] = v;
                }
                if full {
                    Table::Full(table)
                } else {
                    Table::Dense(table)
                }
            }
            _ => Table::Sparse(pairs.into_iter().collect()),
        };
        Lut { table, fallback }
    }

    /// Maps `src` (or `dst` itself when `None`) into `dst`; returns whether a negative label
    /// was met (those are mapped as if unsigned and must be rejected by the caller).
    fn map(&self, src: Option<&[L]>, dst: &mut [L]) -> bool {
        let f = self.fallback;
        let chunk = |i: Option<&[L]>, o: &mut [L]| match (&self.table, i) {
            (Table::Full(t), i) => {
                let t: &[L; 1 << 16] = t[..].try_into().expect("65536 entries");
                if vector_path::<L>(2) {
                    // SAFETY: `vector_path` checked that `L` is a 2-byte integer and AVX2 is there.
                    unsafe {
                        match i {
                            Some(i) => map_full16_avx2::<L, true>(Some(i), o, t),
                            None => map_full16_avx2::<L, false>(None, o, t),
                        }
                    }
                } else {
                    map_each(i, o, |v| t[v.to_u64() as usize & 0xffff])
                }
            }
            // SAFETY: `vector_path` checked that `L` is a 4-byte integer and AVX2 is there.
            (Table::Dense(t), Some(i)) if vector_path::<L>(4) => unsafe {
                map_dense32_avx2::<L, true>(Some(i), o, t, f)
            },
            (Table::Dense(t), None) if vector_path::<L>(4) => unsafe {
                map_dense32_avx2::<L, false>(None, o, t, f)
            },
            (Table::Dense(t), i) => map_each(i, o, |v| dense_lookup(t, f, v)),
            (Table::Sparse(m), i) => map_runs(i, o, |v| match m.get(&v.to_u64()) {
                Some(&r) => r,
                None => f.unwrap_or(v),
            }),
        };
        match src {
            Some(src) => dst
                .par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .map(|(o, i)| chunk(Some(i), o))
                .reduce(|| false, |a, b| a | b),
            None => dst
                .par_chunks_mut(CHUNK)
                .map(|o| chunk(None, o))
                .reduce(|| false, |a, b| a | b),
        }
    }
}

#[inline(always)]
fn dense_lookup<L: Label>(table: &[L], fallback: Option<L>, v: L) -> L {
    let u = v.to_u64();
    if u < table.len() as u64 {
        table[u as usize]
    } else {
        fallback.unwrap_or(v)
    }
}

/// Maps `inp` (or `out` itself) through `f` into `out`, one cheap lookup per label (a dense
/// table read: cheaper than testing for a repeat). Returns whether a negative label was met.
#[inline(always)]
fn map_each<L: Label>(inp: Option<&[L]>, out: &mut [L], f: impl Fn(L) -> L) -> bool {
    let mut neg = false;
    match inp {
        Some(inp) => {
            for (o, &v) in out.iter_mut().zip(inp) {
                neg |= v.is_negative();
                *o = f(v);
            }
        }
        None => {
            for o in out.iter_mut() {
                neg |= o.is_negative();
                *o = f(*o);
            }
        }
    }
    neg
}

/// Whether the AVX2 kernels serve labels of type `L`: labels of `bytes` bytes (4 for
/// [`map_dense32_avx2`], 2 for [`map_full16_avx2`]) on an x86-64 CPU with AVX2.
fn vector_path<L: Label>(bytes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::mem::size_of::<L>() == bytes && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The AVX2 kernels' step pointers from element `head` on: into `out`, and from `inp` or,
/// in place, from `out` itself. Both come from one borrow each; in place they are the same
/// memory, each step read before it is written.
///
/// # Safety
/// `head` must lie within `out` (and `inp`, when given).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn step_pointers<L>(
    inp: Option<&[L]>,
    out: &mut [L],
    head: usize,
) -> (
    *const std::arch::x86_64::__m256i,
    *mut std::arch::x86_64::__m256i,
) {
    let dst = out.as_mut_ptr().add(head);
    let src = match inp {
        Some(i) => i.as_ptr().add(head),
        None => dst as *const L,
    };
    (src as *const _, dst as *mut _)
}

/// How far ahead of the step being mapped its input is prefetched, in 32-byte steps (2 KB).
/// On the project's VM a single thread left to the hardware prefetchers mapped slower than
/// its memory allows: asking ahead raised u32 into a buffer from 1.74 to 2.19 GVx/s on the
/// neurons and 1.87 to 2.55 on the VNC (A/B in one process); 16 to 256 steps all gave the
/// same. The same hint in the components' row scan and painting, and in the statistics'
/// scan, was no faster.
const PREFETCH_STEPS: usize = 64;

/// Writes one 32-byte step at the 32-byte aligned `dst`: streamed past the caches into a
/// separate output (`STREAM`), a plain store in place.
///
/// # Safety
/// `dst` must be valid for 32 bytes and 32-byte aligned; the CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn put<const STREAM: bool>(
    dst: *mut std::arch::x86_64::__m256i,
    r: std::arch::x86_64::__m256i,
) {
    use std::arch::x86_64::*;
    if STREAM {
        _mm256_stream_si256(dst, r);
    } else {
        _mm256_store_si256(dst, r);
    }
}

/// [`map_each`] through a dense table for 4-byte labels, eight labels a step. Label images
/// are mostly runs longer than a step, so a step holding at most two labels (the previous
/// step's last one, then its own last one) costs one scalar lookup; only steps across two
/// or more boundaries gather. Into a separate `out` (`STREAM`) the steps are written with
/// non-temporal stores: a plain store first reads the output's cache line (read for
/// ownership), so a separate output moves three bytes per byte written where streaming
/// moves two. In place (`inp` is `None`) the line was just read, so plain stores. Labels
/// past the table take `fallback` or stay themselves, as [`dense_lookup`]. Returns whether
/// a negative label was met.
///
/// # Safety
/// `L` must be a 4-byte integer type and the CPU must have AVX2 ([`vector_path`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_dense32_avx2<L: Label, const STREAM: bool>(
    inp: Option<&[L]>,
    out: &mut [L],
    table: &[L],
    fallback: Option<L>,
) -> bool {
    use std::arch::x86_64::*;
    let n = inp.map_or(out.len(), |i| i.len().min(out.len()));
    let scalar =
        |i: Option<&[L]>, o: &mut [L]| map_each(i, o, |v| dense_lookup(table, fallback, v));
    let lookup = |v: u32| dense_lookup(table, fallback, L::from_u64(v as u64)).to_u64() as u32;
    // Scalar up to a 64-byte boundary of `out` (a cache line, so that the two streamed
    // halves of a line leave together), then whole 8-label steps, scalar tail.
    let head = out.as_ptr().align_offset(64).min(n);
    let mut neg = scalar(inp.map(|i| &i[..head]), &mut out[..head]);
    let steps = (n - head) / 8;
    // Tables hold at most DENSE_LUT_MAX + 1 entries, so the length fits an i32.
    let last = _mm256_set1_epi32((table.len() - 1) as i32);
    let fb = fallback.map(|f| _mm256_set1_epi32(f.to_u64() as u32 as i32));
    let (src, dst) = step_pointers(inp, out, head);
    let base = table.as_ptr() as *const i32;
    let lane7 = _mm256_set1_epi32(7);
    let first = if steps > 0 { *(src as *const u32) } else { 0 };
    let mut prev = _mm256_set1_epi32(first as i32);
    let mut prev_mapped = _mm256_set1_epi32(lookup(first) as i32);
    let mut sign = prev;
    let mut step = |k: usize| {
        // A hint only: past the end it reads nothing, hence `wrapping_add`.
        _mm_prefetch::<_MM_HINT_T0>(src.wrapping_add(k + PREFETCH_STEPS) as *const i8);
        let v = _mm256_loadu_si256(src.add(k));
        let same = _mm256_cmpeq_epi32(v, prev);
        let end = _mm256_permutevar8x32_epi32(v, lane7);
        sign = _mm256_or_si256(sign, v);
        let r = if _mm256_movemask_epi8(_mm256_or_si256(same, _mm256_cmpeq_epi32(v, end))) == -1 {
            let end_mapped = _mm256_set1_epi32(lookup(_mm256_extract_epi32::<7>(v) as u32) as i32);
            let r = _mm256_blendv_epi8(end_mapped, prev_mapped, same);
            prev_mapped = end_mapped;
            r
        } else {
            // In the table when v <= len - 1 as unsigned.
            let inside = _mm256_cmpeq_epi32(_mm256_min_epu32(v, last), v);
            let otherwise = fb.unwrap_or(v);
            let r = _mm256_mask_i32gather_epi32::<4>(otherwise, base, v, inside);
            prev_mapped = _mm256_permutevar8x32_epi32(r, lane7);
            r
        };
        prev = end;
        r
    };
    // Four steps, two whole lines, mapped before any of them is stored: streamed a step at
    // a time, with the next step's work between a line's halves, u32 labels mapped into a
    // buffer at 1.74-1.87 GVx/s on the neurons against 2.09-2.55 a line at a time and some
    // 10 % more two lines at a time (A/B in one process), likely because the
    // write-combining buffers let half lines go.
    for k in (0..steps - steps % 4).step_by(4) {
        let (r0, r1, r2, r3) = (step(k), step(k + 1), step(k + 2), step(k + 3));
        put::<STREAM>(dst.add(k), r0);
        put::<STREAM>(dst.add(k + 1), r1);
        put::<STREAM>(dst.add(k + 2), r2);
        put::<STREAM>(dst.add(k + 3), r3);
    }
    for k in steps - steps % 4..steps {
        put::<STREAM>(dst.add(k), step(k));
    }
    // Negative labels only exist for signed `L`; callers ignore the flag otherwise.
    neg |= L::from_u64(u32::MAX as u64).is_negative()
        && _mm256_movemask_ps(_mm256_castsi256_ps(sign)) != 0;
    let tail = head + steps * 8;
    neg |= scalar(inp.map(|i| &i[tail..n]), &mut out[tail..n]);
    if STREAM {
        // Streamed stores are weakly ordered: fence them before the caller reads `out`.
        _mm_sfence();
    }
    neg
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn map_dense32_avx2<L: Label, const STREAM: bool>(
    inp: Option<&[L]>,
    out: &mut [L],
    table: &[L],
    fallback: Option<L>,
) -> bool {
    map_each(inp, out, |v| dense_lookup(table, fallback, v))
}

/// [`map_dense32_avx2`] for 2-byte labels through the full 16-bit table, sixteen labels a
/// step: a step holding at most two labels costs one scalar lookup and a blend, any other
/// step sixteen scalar lookups (there is no 16-bit gather). Returns whether a negative
/// label was met.
///
/// # Safety
/// `L` must be a 2-byte integer type and the CPU must have AVX2 ([`vector_path`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn map_full16_avx2<L: Label, const STREAM: bool>(
    inp: Option<&[L]>,
    out: &mut [L],
    table: &[L; 1 << 16],
) -> bool {
    use std::arch::x86_64::*;
    let n = inp.map_or(out.len(), |i| i.len().min(out.len()));
    // The table entry of a label's 16 bits, as those 16 bits.
    let lookup = |v: u16| table[v as usize].to_u64() as u16;
    let scalar =
        |i: Option<&[L]>, o: &mut [L]| map_each(i, o, |v| table[v.to_u64() as usize & 0xffff]);
    let head = out.as_ptr().align_offset(32).min(n);
    let mut neg = scalar(inp.map(|i| &i[..head]), &mut out[..head]);
    let steps = (n - head) / 16;
    let (src, dst) = step_pointers(inp, out, head);
    let first = if steps > 0 { *(src as *const u16) } else { 0 };
    let mut prev = _mm256_set1_epi16(first as i16);
    let mut prev_mapped = _mm256_set1_epi16(lookup(first) as i16);
    let mut sign = prev;
    for k in 0..steps {
        // A hint only: past the end it reads nothing, hence `wrapping_add`.
        _mm_prefetch::<_MM_HINT_T0>(src.wrapping_add(k + PREFETCH_STEPS) as *const i8);
        let v = _mm256_loadu_si256(src.add(k));
        let same = _mm256_cmpeq_epi16(v, prev);
        let e = _mm256_extract_epi16::<15>(v) as u16;
        let end = _mm256_set1_epi16(e as i16);
        sign = _mm256_or_si256(sign, v);
        let end_mapped = _mm256_set1_epi16(lookup(e) as i16);
        let r = if _mm256_movemask_epi8(_mm256_or_si256(same, _mm256_cmpeq_epi16(v, end))) == -1 {
            _mm256_blendv_epi8(end_mapped, prev_mapped, same)
        } else {
            let mut lanes = [0u16; 16];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
            for l in lanes.iter_mut() {
                *l = lookup(*l);
            }
            _mm256_loadu_si256(lanes.as_ptr() as *const __m256i)
        };
        prev = end;
        prev_mapped = end_mapped;
        put::<STREAM>(dst.add(k), r);
    }
    // Negative labels only exist for signed `L`: the top bit of a 16-bit lane.
    neg |= L::from_u64(u16::MAX as u64).is_negative()
        && _mm256_testz_si256(sign, _mm256_set1_epi16(i16::MIN)) == 0;
    let tail = head + steps * 16;
    neg |= scalar(inp.map(|i| &i[tail..n]), &mut out[tail..n]);
    if STREAM {
        // Streamed stores are weakly ordered: fence them before the caller reads `out`.
        _mm_sfence();
    }
    neg
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn map_full16_avx2<L: Label, const STREAM: bool>(
    inp: Option<&[L]>,
    out: &mut [L],
    table: &[L; 1 << 16],
) -> bool {
    map_each(inp, out, |v| table[v.to_u64() as usize & 0xffff])
}

/// Maps `inp` (or `out` itself) through `f` into `out`, one lookup per run of equal labels:
/// the lookup of the previous label is reused while the label repeats. Returns whether a
/// negative label was met.
#[inline(always)]
fn map_runs<L: Label>(inp: Option<&[L]>, out: &mut [L], f: impl Fn(L) -> L) -> bool {
    let mut neg = false;
    let (mut last, mut mapped) = match inp.map_or(out.first(), |i| i.first()) {
        Some(&v) => (v, f(v)),
        None => return false,
    };
    neg |= last.is_negative();
    let mut step = |v: L| {
        if v != last {
            neg |= v.is_negative();
            last = v;
            mapped = f(v);
        }
        mapped
    };
    match inp {
        Some(inp) => {
            for (o, &v) in out.iter_mut().zip(inp) {
                *o = step(v);
            }
        }
        None => {
            for o in out.iter_mut() {
                *o = step(*o);
            }
        }
    }
    neg
}

/// The relabelling pass into a fresh buffer.
fn apply_lut<L: Label>(
    data: &[L],
    keys: &[u64],
    values: &[u64],
    default: Option<u64>,
) -> Result<Vec<L>> {
    let lut = Lut::<L>::new(keys, values, default, data.len());
    let mut out = zeroed_buffer::<L>(data.len());
    if lut.map(Some(data), &mut out) {
        return Err(negative_labels());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// statistics

#[derive(Clone, Copy, Default)]
struct Acc {
    count: u64,
    lo: [u32; 3],
    hi: [u32; 3],
    sum: [u64; 3],
}

impl Acc {
    #[inline]
    fn add_run(&mut self, z: u32, y: u32, x0: u32, x1: u32) {
        let len = (x1 - x0) as u64;
        if self.count == 0 {
            self.lo = [z, y, x0];
            self.hi = [z + 1, y + 1, x1];
        } else {
            self.lo = [self.lo[0].min(z), self.lo[1].min(y), self.lo[2].min(x0)];
            self.hi = [
                self.hi[0].max(z + 1),
                self.hi[1].max(y + 1),
                self.hi[2].max(x1),
            ];
        }
        self.count += len;
        self.sum[0] += z as u64 * len;
        self.sum[1] += y as u64 * len;
        self.sum[2] += (x0 as u64 + x1 as u64 - 1) * len / 2;
    }
    fn merge(&mut self, o: &Acc) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        for a in 0..3 {
            self.lo[a] = self.lo[a].min(o.lo[a]);
            self.hi[a] = self.hi[a].max(o.hi[a]);
            self.sum[a] += o.sum[a];
        }
        self.count += o.count;
    }
}

/// Per-label statistics in ascending id order (background 0 excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelStats {
    pub ndim: usize,
    pub ids: Vec<u64>,
    pub counts: Vec<i64>,
    /// `[N, 2 * ndim]` row-major: lower corner (inclusive) then upper corner (exclusive).
    pub boxes: Vec<i64>,
    /// `[N, ndim]` row-major: mean voxel coordinate.
    pub centroids: Vec<f64>,
}

impl LabelStats {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Extent of object `i` along axis `a` (upper - lower).
    pub fn span(&self, i: usize, a: usize) -> i64 {
        self.boxes[i * 2 * self.ndim + self.ndim + a] - self.boxes[i * 2 * self.ndim + a]
    }
}

/// Voxel count, bounding box and centroid of every non-zero label, in one pass.
pub fn label_statistics<L: Label>(labels: ArrayViewD<'_, L>) -> Result<LabelStats> {
    let grid = Grid::new(labels)?;
    stats_of(&grid)
}

/// Scans rows `rows` (flat row index z * Y + y), calling `f(id, z, y, x0, x1)` once per run
/// of one non-zero label. Runs come from vectorised change masks, so the per-voxel work is
/// a compare and the per-run work one table update.
#[inline]
fn for_each_run<L: Label>(
    data: &[L],
    dims: [usize; 3],
    rows: std::ops::Range<usize>,
    mut f: impl FnMut(L, u32, u32, u32, u32),
) {
    let (ny, nx) = (dims[1], dims[2]);
    let mut bits = Vec::new();
    for r in rows {
        let (z, y) = ((r / ny) as u32, (r % ny) as u32);
        let row = &data[r * nx..(r + 1) * nx];
        crate::rowruns::for_each_run_eq(row, &mut bits, |x0, x1| {
            let v = row[x0];
            if !v.is_zero() {
                f(v, z, y, x0 as u32, x1 as u32);
            }
        });
    }
}

/// Row ranges for the parallel passes: a few tasks per thread, whole rows each.
fn row_tasks(dims: [usize; 3]) -> Vec<std::ops::Range<usize>> {
    let rows = dims[0] * dims[1];
    let tasks = (rayon::current_num_threads() * 4).clamp(1, rows.max(1));
    let per = rows.div_ceil(tasks).max(1);
    (0..rows)
        .step_by(per)
        .map(|s| s..(s + per).min(rows))
        .collect()
}

/// The accumulator of id `u` when the dense table `t` does not reach it yet: the table
/// grown up to `u` when `u <= cap`, else `u`'s entry of the sparse map. Out of line, so that
/// the per-run path stays small enough to be inlined into the row walk.
#[cold]
#[inline(never)]
fn acc_of_new_id<'a>(
    t: &'a mut Vec<Acc>,
    m: &'a mut IdMap<u64, Acc>,
    cap: u64,
    u: u64,
) -> &'a mut Acc {
    if u <= cap {
        t.resize(u as usize + 1, Acc::default());
        &mut t[u as usize]
    } else {
        m.entry(u).or_default()
    }
}

fn stats_of<L: Label>(grid: &Grid<'_, L>) -> Result<LabelStats> {
    let data = grid.slice();
    let dims = grid.dims;
    let ndim = grid.ndim;
    if data.is_empty() {
        return Ok(LabelStats {
            ndim,
            ids: vec![],
            counts: vec![],
            boxes: vec![],
            centroids: vec![],
        });
    }
    if dims.iter().any(|&d| d > u32::MAX as usize / 2) {
        return Err(Error::shape("labels", "an axis longer than 2**31 voxels"));
    }
    // Ids up to `cap` go to per-task dense tables grown on demand (no pass for the largest
    // id first), larger ones to hash maps.
    let cap = DENSE_STATS_MAX.max(data.len() as u64 / 64);
    let parts: Vec<(Vec<Acc>, IdMap<u64, Acc>, bool)> = row_tasks(dims)
        .into_par_iter()
        .map(|rows| {
            let mut t: Vec<Acc> = Vec::new();
            let mut m: IdMap<u64, Acc> = IdMap::default();
            let mut neg = false;
            for_each_run(data, dims, rows, |id, z, y, x0, x1| {
                neg |= id.is_negative();
                let u = id.to_u64();
                match t.get_mut(u as usize) {
                    Some(a) => a.add_run(z, y, x0, x1),
                    None => acc_of_new_id(&mut t, &mut m, cap, u).add_run(z, y, x0, x1),
                }
            });
            (t, m, neg)
        })
        .collect();
    if parts.iter().any(|p| p.2) {
        return Err(negative_labels());
    }
    let size = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
    let mut total = vec![Acc::default(); size];
    let mut sparse: IdMap<u64, Acc> = IdMap::default();
    for (t, m, _) in &parts {
        for (a, b) in total.iter_mut().zip(t) {
            a.merge(b);
        }
        for (&k, a) in m {
            sparse.entry(k).or_default().merge(a);
        }
    }
    let mut acc: Vec<(u64, Acc)> = total
        .into_iter()
        .enumerate()
        .filter(|(_, a)| a.count > 0)
        .map(|(i, a)| (i as u64, a))
        .collect();
    // Sparse ids all exceed `cap`, hence every dense id.
    let mut rest: Vec<(u64, Acc)> = sparse.into_iter().collect();
    rest.sort_unstable_by_key(|p| p.0);
    acc.extend(rest);
    let first_axis = 3 - ndim;
    let n = acc.len();
    let mut stats = LabelStats {
        ndim,
        ids: Vec::with_capacity(n),
        counts: Vec::with_capacity(n),
        boxes: Vec::with_capacity(n * 2 * ndim),
        centroids: Vec::with_capacity(n * ndim),
    };
    for (id, a) in acc.drain(..) {
        stats.ids.push(id);
        stats.counts.push(a.count as i64);
        stats
            .boxes
            .extend(a.lo[first_axis..].iter().map(|&v| v as i64));
        stats
            .boxes
            .extend(a.hi[first_axis..].iter().map(|&v| v as i64));
        stats.centroids.extend(
            a.sum[first_axis..]
                .iter()
                .map(|&s| s as f64 / a.count as f64),
        );
    }
    Ok(stats)
}

// ---------------------------------------------------------------------------------------
// renumber and filters

/// The renumbered labels and the mapping used (`keys[i] -> values[i]`, keys ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct Renumbered<L> {
    pub labels: ArrayD<L>,
    pub keys: Vec<L>,
    pub values: Vec<L>,
}

/// Maps the non-zero ids, in ascending order, to `start, start + 1, …`; 0 stays 0
/// (`skimage.segmentation.relabel_sequential(labels, offset=start)`).
pub fn renumber<L: Label>(labels: ArrayViewD<'_, L>, start: i64) -> Result<Renumbered<L>> {
    check_start(start)?;
    let grid = Grid::new(labels)?;
    let (keys, values) = mapping_of(&grid, start)?;
    let out = apply_lut(grid.slice(), &keys, &values, None)?;
    Ok(Renumbered {
        labels: ArrayD::from_shape_vec(IxDyn(&grid.shape()), out).expect("shape of the input"),
        keys: keys.into_iter().map(L::from_u64).collect(),
        values: values.into_iter().map(L::from_u64).collect(),
    })
}

/// The mapping [`renumber`] applies, `(keys, values)`: the non-zero ids in ascending order
/// and `start, start + 1, …`; for callers that relabel into their own buffer
/// ([`relabel_into`]). Fails when the new ids do not fit the labels' type.
pub fn renumber_mapping<L: Label>(
    labels: ArrayViewD<'_, L>,
    start: i64,
) -> Result<(Vec<u64>, Vec<u64>)> {
    check_start(start)?;
    mapping_of(&Grid::new(labels)?, start)
}

fn check_start(start: i64) -> Result<()> {
    if start < 1 {
        return Err(Error::invalid(
            "start",
            format!("must be >= 1 (0 is the background), got {start}"),
        ));
    }
    Ok(())
}

fn mapping_of<L: Label>(grid: &Grid<'_, L>, start: i64) -> Result<(Vec<u64>, Vec<u64>)> {
    let stats = stats_of(grid)?;
    let n = stats.ids.len() as u64;
    let start = start as u64;
    if n > 0 && start.saturating_add(n - 1) > L::MAX_U64 {
        return Err(Error::overflow(
            "labels",
            format!(
                "{n} objects starting at {start} need ids up to {}: {}",
                start as u128 + n as u128 - 1,
                widen_hint::<L>()
            ),
        ));
    }
    Ok((stats.ids, (start..start + n).collect()))
}

fn remove_where<L: Label>(
    grid: &Grid<'_, L>,
    stats: &LabelStats,
    remove: impl Fn(usize) -> bool,
) -> Result<ArrayD<L>> {
    let keys: Vec<u64> = (0..stats.len())
        .filter(|&i| remove(i))
        .map(|i| stats.ids[i])
        .collect();
    let zeros = vec![0u64; keys.len()];
    let out = apply_lut(grid.slice(), &keys, &zeros, None)?;
    Ok(ArrayD::from_shape_vec(IxDyn(&grid.shape()), out).expect("shape of the input"))
}

/// Zeroes every object (id) with fewer than `min_size` voxels.
pub fn remove_small_objects<L: Label>(
    labels: ArrayViewD<'_, L>,
    min_size: i64,
) -> Result<ArrayD<L>> {
    if min_size < 0 {
        return Err(Error::invalid(
            "min_size",
            format!("must be >= 0 voxels, got {min_size}"),
        ));
    }
    let grid = Grid::new(labels)?;
    let stats = stats_of(&grid)?;
    remove_where(&grid, &stats, |i| stats.counts[i] < min_size)
}

/// Zeroes every object whose bounding box is shorter than `min_span` voxels along any axis
/// (spec §5.6: `span < min_span`, span = upper - lower of the exclusive box).
pub fn remove_pancakes<L: Label>(labels: ArrayViewD<'_, L>, min_span: i64) -> Result<ArrayD<L>> {
    if min_span < 0 {
        return Err(Error::invalid(
            "min_span",
            format!("must be >= 0 voxels, got {min_span}"),
        ));
    }
    let grid = Grid::new(labels)?;
    let stats = stats_of(&grid)?;
    let ndim = stats.ndim;
    remove_where(&grid, &stats, |i| {
        (0..ndim).any(|a| stats.span(i, a) < min_span)
    })
}

// ---------------------------------------------------------------------------------------
// fill holes

/// A run of one value in one row: `x0..x1`.
#[derive(Clone, Copy)]
struct Run<L> {
    x0: u32,
    x1: u32,
    val: L,
}

/// A face-connected region of one value (background included).
#[derive(Clone, Copy)]
struct Segment<L> {
    val: L,
    size: u64,
    lo: [u32; 3],
    hi: [u32; 3],
}

fn find(parent: &mut [u32], mut a: u32) -> u32 {
    while parent[a as usize] != a {
        let p = parent[parent[a as usize] as usize];
        parent[a as usize] = p;
        a = p;
    }
    a
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

/// Fills the holes of every object's own mask and paints only background voxels.
///
/// A hole of object `A` is a face-connected region of non-`A` voxels (the connectivity
/// `scipy.ndimage.binary_fill_holes` uses for the background) that does not reach the
/// border of the array, exactly what `binary_fill_holes(labels == A)` fills. Of a hole,
/// only the voxels that are 0 are set to `A`; other objects inside it are left alone (the
/// reference paints the whole filled bounding box, neighbours included; design §3). A 0
/// voxel inside holes of several objects (nested objects) goes to the object whose hole is
/// smallest, i.e. the innermost one; ties go to the smaller id. 3D images are filled in
/// 3D (6-connected background); pass 2D slices for per-slice filling.
pub fn fill_holes<L: Label>(labels: ArrayViewD<'_, L>) -> Result<ArrayD<L>> {
    let grid = Grid::new(labels)?;
    grid.check_non_negative()?;
    let data = grid.slice();
    let shape = grid.shape();
    if data.is_empty() {
        return Ok(ArrayD::from_shape_vec(IxDyn(&shape), vec![]).expect("empty"));
    }
    let [nz, ny, nx] = grid.dims;
    let nrows = nz * ny;

    // 1. Runs of equal value per row (all values, background included).
    let mut row_ptr = Vec::with_capacity(nrows + 1);
    let mut runs: Vec<Run<L>> = Vec::new();
    row_ptr.push(0usize);
    for r in 0..nrows {
        let row = &data[r * nx..(r + 1) * nx];
        let mut x0 = 0usize;
        for x in 1..=nx {
            if x == nx || row[x] != row[x0] {
                runs.push(Run {
                    x0: x0 as u32,
                    x1: x as u32,
                    val: row[x0],
                });
                x0 = x;
            }
        }
        row_ptr.push(runs.len());
    }
    if runs.len() >= u32::MAX as usize {
        return Err(Error::shape("labels", "too many runs for hole filling"));
    }

    // 2. Union equal-valued runs that touch across rows; record contacts of different values.
    let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
    let mut contacts: Vec<(u32, u32)> = Vec::new();
    for r in 0..nrows {
        let (cur_a, cur_b) = (row_ptr[r], row_ptr[r + 1]);
        for i in cur_a + 1..cur_b {
            contacts.push(((i - 1) as u32, i as u32));
        }
        let (z, y) = (r / ny, r % ny);
        let mut prevs = Vec::with_capacity(2);
        if y > 0 {
            prevs.push(r - 1);
        }
        if z > 0 {
            prevs.push(r - ny);
        }
        for p in prevs {
            let (mut i, pe) = (row_ptr[p], row_ptr[p + 1]);
            let mut j = cur_a;
            while i < pe && j < cur_b {
                let (a, b) = (runs[i], runs[j]);
                if a.val == b.val {
                    union(&mut parent, i as u32, j as u32);
                } else {
                    contacts.push((i as u32, j as u32));
                }
                match a.x1.cmp(&b.x1) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
    }

    // 3. Segments: one per union-find root.
    let mut seg_of_run = vec![u32::MAX; runs.len()];
    let mut segs: Vec<Segment<L>> = Vec::new();
    for r in 0..nrows {
        let (z, y) = ((r / ny) as u32, (r % ny) as u32);
        for i in row_ptr[r]..row_ptr[r + 1] {
            let root = find(&mut parent, i as u32) as usize;
            if seg_of_run[root] == u32::MAX {
                seg_of_run[root] = segs.len() as u32;
                segs.push(Segment {
                    val: runs[i].val,
                    size: 0,
                    lo: [u32::MAX; 3],
                    hi: [0; 3],
                });
            }
            let s = seg_of_run[root];
            seg_of_run[i] = s;
            let run = runs[i];
            let seg = &mut segs[s as usize];
            seg.size += (run.x1 - run.x0) as u64;
            seg.lo = [seg.lo[0].min(z), seg.lo[1].min(y), seg.lo[2].min(run.x0)];
            seg.hi = [
                seg.hi[0].max(z + 1),
                seg.hi[1].max(y + 1),
                seg.hi[2].max(run.x1),
            ];
        }
    }
    drop(parent);

    // 4. Segment adjacency (CSR).
    let mut edges: Vec<(u32, u32)> = contacts
        .into_iter()
        .map(|(a, b)| {
            let (sa, sb) = (seg_of_run[a as usize], seg_of_run[b as usize]);
            (sa.min(sb), sa.max(sb))
        })
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let nseg = segs.len();
    let mut deg = vec![0usize; nseg + 1];
    for &(a, b) in &edges {
        deg[a as usize + 1] += 1;
        deg[b as usize + 1] += 1;
    }
    for i in 0..nseg {
        deg[i + 1] += deg[i];
    }
    let offs = deg;
    let mut fill = offs.clone();
    let mut adj = vec![0u32; offs[nseg]];
    for &(a, b) in &edges {
        adj[fill[a as usize]] = b;
        fill[a as usize] += 1;
        adj[fill[b as usize]] = a;
        fill[b as usize] += 1;
    }
    drop(edges);
    drop(fill);

    // 5. Holes per object: components of non-object segments that stay inside the box.
    let mut objects: IdMap<u64, Vec<u32>> = IdMap::default();
    for (i, s) in segs.iter().enumerate() {
        if !s.val.is_zero() {
            objects.entry(s.val.to_u64()).or_default().push(i as u32);
        }
    }
    let objects: Vec<(u64, Vec<u32>)> = objects.into_iter().collect();
    let check_z = grid.ndim == 3;
    let graph: Graph<'_, L> = (&segs, &offs, &adj);
    let candidates: Vec<(u32, u64, u64)> = objects
        .par_iter()
        .flat_map_iter(|(id, own)| holes_of(graph, *id, own, check_z))
        .collect();

    // 6. Innermost (smallest hole, then smallest id) wins each background segment.
    let mut winner: IdMap<u32, (u64, u64)> = IdMap::default();
    for (seg, size, id) in candidates {
        let e = winner.entry(seg).or_insert((size, id));
        if (size, id) < *e {
            *e = (size, id);
        }
    }
    let mut out = data.to_vec();
    if !winner.is_empty() {
        for r in 0..nrows {
            for i in row_ptr[r]..row_ptr[r + 1] {
                if let Some(&(_, id)) = winner.get(&seg_of_run[i]) {
                    let run = runs[i];
                    out[r * nx + run.x0 as usize..r * nx + run.x1 as usize].fill(L::from_u64(id));
                }
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("shape of the input"))
}

type Graph<'a, L> = (&'a [Segment<L>], &'a [usize], &'a [u32]);

/// `(background segment, hole size, id)` for every background segment in a hole of `id`.
fn holes_of<L: Label>(
    (segs, offs, adj): Graph<'_, L>,
    id: u64,
    own: &[u32],
    check_z: bool,
) -> Vec<(u32, u64, u64)> {
    let mut lo = [u32::MAX; 3];
    let mut hi = [0u32; 3];
    for &s in own {
        let s = &segs[s as usize];
        for a in 0..3 {
            lo[a] = lo[a].min(s.lo[a]);
            hi[a] = hi[a].max(s.hi[a]);
        }
    }
    let first_axis = if check_z { 0 } else { 1 };
    let inside = |s: &Segment<L>| (first_axis..3).all(|a| s.lo[a] > lo[a] && s.hi[a] < hi[a]);
    let is_own = |s: u32| segs[s as usize].val.to_u64() == id;

    let mut out = Vec::new();
    // Segment -> component index; a component reached again from another seed is one that
    // stopped early because it escaped, so reaching it means escaping too.
    let mut visited: IdMap<u32, usize> = IdMap::default();
    let mut ncomp = 0usize;
    let mut stack = Vec::new();
    let mut comp = Vec::new();
    for &o in own {
        for &seed in &adj[offs[o as usize]..offs[o as usize + 1]] {
            if is_own(seed) || visited.contains_key(&seed) {
                continue;
            }
            let c = ncomp;
            ncomp += 1;
            visited.insert(seed, c);
            stack.clear();
            comp.clear();
            stack.push(seed);
            let mut escaped = false;
            'bfs: while let Some(s) = stack.pop() {
                if !inside(&segs[s as usize]) {
                    escaped = true;
                    break;
                }
                comp.push(s);
                for &t in &adj[offs[s as usize]..offs[s as usize + 1]] {
                    if is_own(t) {
                        continue;
                    }
                    match visited.get(&t) {
                        None => {
                            visited.insert(t, c);
                            stack.push(t);
                        }
                        Some(&other) if other != c => {
                            escaped = true;
                            break 'bfs;
                        }
                        Some(_) => {}
                    }
                }
            }
            if escaped {
                continue;
            }
            let size: u64 = comp.iter().map(|&s| segs[s as usize].size).sum();
            out.extend(
                comp.iter()
                    .filter(|&&s| segs[s as usize].val.is_zero())
                    .map(|&s| (s, size, id)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn relabel_dense_and_sparse() {
        let a = array![[0u32, 1, 2], [3, 1_000_000_000, 2]].into_dyn();
        let r = relabel(a.view(), &[1, 1_000_000_000], &[5, 6], None).unwrap();
        assert_eq!(r, array![[0u32, 5, 2], [3, 6, 2]].into_dyn());
        let r = relabel(a.view(), &[2], &[7], Some(0)).unwrap();
        assert_eq!(r, array![[0u32, 0, 7], [0, 0, 7]].into_dyn());
        assert!(matches!(
            relabel(a.view(), &[1, 1], &[2, 3], None),
            Err(Error::InvalidArgument { .. })
        ));
        let b = array![[1u8, 2]].into_dyn();
        assert!(matches!(
            relabel(b.view(), &[1], &[256], None),
            Err(Error::LabelOverflow { .. })
        ));
    }

    #[test]
    fn stats_and_renumber() {
        let a = array![[0i32, 7, 7], [9, 0, 7]].into_dyn();
        let s = label_statistics(a.view()).unwrap();
        assert_eq!(s.ids, vec![7, 9]);
        assert_eq!(s.counts, vec![3, 1]);
        assert_eq!(s.boxes, vec![0, 1, 2, 3, 1, 0, 2, 1]);
        assert_eq!(s.centroids, vec![1.0 / 3.0, 5.0 / 3.0, 1.0, 0.0]);
        let r = renumber(a.view(), 1).unwrap();
        assert_eq!(r.labels, array![[0i32, 1, 1], [2, 0, 1]].into_dyn());
        assert_eq!(r.keys, vec![7, 9]);
        let neg = array![[0i32, -1]].into_dyn();
        assert!(label_statistics(neg.view()).is_err());
        assert!(relabel(neg.view(), &[], &[], None).is_err());
    }

    #[test]
    fn fill_holes_keeps_neighbours() {
        let mut a = Array2::<u16>::zeros((7, 7));
        for i in 1..6 {
            a[[1, i]] = 1;
            a[[5, i]] = 1;
            a[[i, 1]] = 1;
            a[[i, 5]] = 1;
        }
        a[[3, 3]] = 2;
        let f = fill_holes(a.view().into_dyn()).unwrap();
        let mut expect = a.clone();
        for y in 2..5 {
            for x in 2..5 {
                if (y, x) != (3, 3) {
                    expect[[y, x]] = 1;
                }
            }
        }
        assert_eq!(f, expect.into_dyn());
    }
}
