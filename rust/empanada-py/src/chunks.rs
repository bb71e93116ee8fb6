//! Binding of `empanada_core::chunks`: painting a segmentation class block by block.

use empanada_core::chunks::{self as core, ChunkGrid, ChunkIndex};
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{to_py, InvalidArgumentError, ShapeError};
use crate::kernel::{self, not_contiguous};
use crate::segmentation::Segmentation;

type Triple = (usize, usize, usize);

/// Chunk sizes from one int (cubic) or three ints.
fn chunk_spec(chunks: &Bound<'_, PyAny>) -> PyResult<[usize; 3]> {
    let bad = |what: String| {
        InvalidArgumentError::new_err(format!(
            "chunks: {what}; pass one positive int (cubic chunks) or three, e.g. 256 or (64, 256, 256)"
        ))
    };
    let v: Vec<i64> = if let Ok(c) = chunks.extract::<i64>() {
        vec![c; 3]
    } else if let Ok(v) = chunks.extract::<Vec<i64>>() {
        v
    } else {
        return Err(bad(format!("got {}", chunks.repr()?)));
    };
    if v.len() != 3 {
        return Err(bad(format!("got {} sizes {v:?}", v.len())));
    }
    if let Some(c) = v.iter().find(|&&c| c < 1) {
        return Err(bad(format!("sizes must be >= 1, got {c} in {v:?}")));
    }
    Ok([v[0] as usize, v[1] as usize, v[2] as usize])
}

fn triple(param: &str, v: Vec<i64>) -> PyResult<[usize; 3]> {
    if v.len() != 3 {
        return Err(ShapeError::new_err(format!(
            "{param}: expected 3 values (z, y, x), got {v:?}"
        )));
    }
    if v.iter().any(|&c| c < 0) {
        return Err(InvalidArgumentError::new_err(format!(
            "{param}: values must be >= 0, got {v:?}"
        )));
    }
    Ok([v[0] as usize, v[1] as usize, v[2] as usize])
}

/// One class's objects painted into the block at `origin` of `shape`, as a new array.
#[pyfunction]
#[pyo3(signature = (seg, class_id, origin, shape, *, dtype = None, own_ids = false))]
fn paint_block<'py>(
    py: Python<'py>,
    seg: PyRef<'py, Segmentation>,
    class_id: u32,
    origin: Vec<i64>,
    shape: Vec<i64>,
    dtype: Option<&Bound<'py, PyAny>>,
    own_ids: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let name = match dtype {
        Some(d) => crate::kernel::numpy_dtype_name(d)?,
        None => "int32".to_string(),
    };
    let (origin, block) = (triple("origin", origin)?, triple("shape", shape)?);
    let inner = &seg.inner;
    let c = inner.class(class_id).map_err(to_py)?;
    let ids = core::object_ids(&c.objects, own_ids);
    crate::with_dtype_name!(name.as_str(), "dtype", |T| {
        let out = kernel::run(py, || {
            let n = block.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let mut out = vec![T::default(); n.unwrap_or(0)];
            core::paint_block(&c.objects, &ids, inner.shape, origin, block, &mut out)?;
            Ok(Array3::from_shape_vec(block, out).expect("size matches"))
        })?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// Grid coordinates (K, 3) of the chunks of a `chunks`-sized grid that a class's objects touch.
#[pyfunction]
fn chunks_touched<'py>(
    py: Python<'py>,
    seg: PyRef<'py, Segmentation>,
    class_id: u32,
    chunks: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let chunk = chunk_spec(chunks)?;
    let inner = &seg.inner;
    let c = inner.class(class_id).map_err(to_py)?;
    let index = kernel::run(py, || {
        ChunkIndex::build(&c.objects, ChunkGrid::new(inner.shape, chunk)?)
    })?;
    Ok(coords(&index).into_pyarray(py).into_any())
}

fn coords(index: &ChunkIndex) -> Array2<i64> {
    let mut a = Array2::zeros((index.len(), 3));
    for (t, &k) in index.touched.iter().enumerate() {
        let c = index.grid.coord(k);
        for d in 0..3 {
            a[[t, d]] = c[d] as i64;
        }
    }
    a
}

/// Paints one class into an existing C-contiguous (z, y, x) integer array, z-slab parallel.
#[pyfunction]
#[pyo3(signature = (seg, class_id, out, *, own_ids = false))]
fn paint_into(
    py: Python<'_>,
    seg: PyRef<'_, Segmentation>,
    class_id: u32,
    out: &Bound<'_, PyAny>,
    own_ids: bool,
) -> PyResult<()> {
    let inner = &seg.inner;
    let c = inner.class(class_id).map_err(to_py)?;
    let ids = core::object_ids(&c.objects, own_ids);
    let name = match out.getattr("dtype") {
        Ok(d) => d.getattr("name")?.extract::<String>()?,
        Err(_) => return Err(kernel::wrong_dtype("out", out, "a numpy integer array")),
    };
    crate::with_dtype_name!(name.as_str(), "out", |T| {
        let arr = out
            .cast::<PyArrayDyn<T>>()
            .map_err(|_| kernel::wrong_dtype("out", out, kernel::LABEL_DTYPES))?;
        if arr.shape() != inner.shape {
            return Err(ShapeError::new_err(format!(
                "out: expected shape {:?} (the segmentation's), got {:?}",
                inner.shape,
                arr.shape()
            )));
        }
        if !arr.is_c_contiguous() {
            return Err(not_contiguous("out"));
        }
        let mut rw = arr.try_readwrite().map_err(|_| {
            InvalidArgumentError::new_err("out: the array is not writeable or already borrowed")
        })?;
        let slice = rw.as_slice_mut().map_err(|_| not_contiguous("out"))?;
        kernel::run(py, || {
            core::paint_volume(&c.objects, &ids, inner.shape, slice)
        })
    })
}

/// The touched chunks of one class on a chunk grid, painted one at a time (for writers that
/// store chunk by chunk). Painting all of them costs O(runs + painted voxels).
#[pyclass(module = "empanada_rs._core", frozen, name = "ChunkPainter")]
pub struct ChunkPainter {
    seg: Py<Segmentation>,
    class_id: u32,
    ids: Vec<u64>,
    dtype: String,
    index: ChunkIndex,
}

impl ChunkPainter {
    fn paint_typed<T: empanada_core::Label + numpy::Element>(
        &self,
        py: Python<'_>,
        t: usize,
    ) -> PyResult<Array3<T>> {
        let seg = self.seg.get();
        let c = seg.inner.class(self.class_id).map_err(to_py)?;
        kernel::run(py, || {
            if t >= self.index.len() {
                return Err(empanada_core::Error::invalid(
                    "i",
                    format!(
                        "chunk {t} out of range: {} chunks are touched",
                        self.index.len()
                    ),
                ));
            }
            let (_, block) = self.index.block(t);
            let mut out = vec![T::default(); block.iter().product()];
            self.index.paint_chunk(t, &c.objects, &self.ids, &mut out)?;
            Ok(Array3::from_shape_vec(block, out).expect("size matches"))
        })
    }
}

#[pymethods]
impl ChunkPainter {
    #[new]
    #[pyo3(signature = (seg, class_id, chunks, *, dtype = None, own_ids = false))]
    fn new(
        py: Python<'_>,
        seg: Bound<'_, Segmentation>,
        class_id: u32,
        chunks: &Bound<'_, PyAny>,
        dtype: Option<&Bound<'_, PyAny>>,
        own_ids: bool,
    ) -> PyResult<Self> {
        let chunk = chunk_spec(chunks)?;
        let dtype = match dtype {
            Some(d) => crate::kernel::numpy_dtype_name(d)?,
            None => "int32".to_string(),
        };
        let s = seg.get();
        let c = s.inner.class(class_id).map_err(to_py)?;
        let ids = core::object_ids(&c.objects, own_ids);
        crate::with_dtype_name!(dtype.as_str(), "dtype", |T| {
            core::check_ids::<T>(&ids).map_err(to_py)
        })?;
        let index = kernel::run(py, || {
            ChunkIndex::build(&c.objects, ChunkGrid::new(s.inner.shape, chunk)?)
        })?;
        Ok(Self {
            seg: seg.unbind(),
            class_id,
            ids,
            dtype,
            index,
        })
    }

    /// Chunk sizes (z, y, x).
    #[getter]
    fn chunks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.index.grid.chunk)
    }

    /// Chunks per axis.
    #[getter]
    fn grid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.index.grid.dims)
    }

    #[getter]
    fn dtype(&self) -> &str {
        &self.dtype
    }

    fn __len__(&self) -> usize {
        self.index.len()
    }

    /// Grid coordinates (K, 3) of the touched chunks, in raveled grid order.
    fn touched<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        coords(&self.index).into_pyarray(py).into_any()
    }

    /// Origin and shape of the `i`-th touched chunk.
    fn block(&self, i: usize) -> PyResult<(Triple, Triple)> {
        if i >= self.index.len() {
            return Err(InvalidArgumentError::new_err(format!(
                "i: chunk {i} out of range: {} chunks are touched",
                self.index.len()
            )));
        }
        let (o, b) = self.index.block(i);
        Ok(((o[0], o[1], o[2]), (b[0], b[1], b[2])))
    }

    /// The `i`-th touched chunk, painted (a new array of its block's shape).
    fn paint<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        crate::with_dtype_name!(self.dtype.as_str(), "dtype", |T| {
            Ok(self.paint_typed::<T>(py, i)?.into_pyarray(py).into_any())
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "ChunkPainter(class_id={}, chunks={:?}, dtype={}, touched={} of {})",
            self.class_id,
            self.index.grid.chunk,
            self.dtype,
            self.index.len(),
            self.index.grid.len()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(paint_block, m)?)?;
    m.add_function(wrap_pyfunction!(chunks_touched, m)?)?;
    m.add_function(wrap_pyfunction!(paint_into, m)?)?;
    m.add_class::<ChunkPainter>()
}
