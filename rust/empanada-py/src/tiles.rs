//! Tile layout, overlap mask and stitching of per-tile panoptic maps.

use empanada_core::tiles::{self as core, Tile};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{InvalidArgumentError, ShapeError};
use crate::kernel::{self, dtype_name};

fn non_negative(param: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v)
        .map_err(|_| InvalidArgumentError::new_err(format!("{param}: must be >= 0, got {v}")))
}

fn to_layout(layout: Vec<(i64, i64, i64, i64)>) -> PyResult<Vec<Tile>> {
    layout
        .into_iter()
        .map(|(a, b, c, d)| {
            Ok([
                non_negative("layout", a)?,
                non_negative("layout", b)?,
                non_negative("layout", c)?,
                non_negative("layout", d)?,
            ])
        })
        .collect()
}

fn to_shape(shape: (i64, i64)) -> PyResult<(usize, usize)> {
    Ok((
        non_negative("shape", shape.0)?,
        non_negative("shape", shape.1)?,
    ))
}

/// Tiles `(y0, y1, x0, x1)` covering an `(h, w)` image (spec §4.1–4.2).
#[pyfunction]
#[pyo3(signature = (shape, tile_size, overlap = None))]
fn tile_layout(
    shape: (i64, i64),
    tile_size: i64,
    overlap: Option<i64>,
) -> PyResult<Vec<(usize, usize, usize, usize)>> {
    let shape = to_shape(shape)?;
    let tile_size = non_negative("tile_size", tile_size)?;
    let overlap = overlap.map(|b| non_negative("overlap", b)).transpose()?;
    let l = core::tile_layout(shape, tile_size, overlap).map_err(crate::errors::to_py)?;
    Ok(l.into_iter().map(|t| (t[0], t[1], t[2], t[3])).collect())
}

type RlePair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// The overlap region of a layout as runs over the raveled image.
#[pyfunction]
fn tile_overlap_rle<'py>(
    py: Python<'py>,
    shape: (i64, i64),
    layout: Vec<(i64, i64, i64, i64)>,
) -> PyResult<RlePair<'py>> {
    let shape = to_shape(shape)?;
    let layout = to_layout(layout)?;
    let (s, r) = kernel::run(py, || core::overlap_rle(shape, &layout))?;
    Ok((s.into_pyarray(py), r.into_pyarray(py)))
}

/// Stitches per-tile panoptic maps into one uint32 panoptic map (spec §4.3–4.4).
#[pyfunction]
#[pyo3(signature = (tiles, layout, shape, *, labels = vec![1], thing_list = vec![1], label_divisor = 10000))]
fn stitch_tiles<'py>(
    py: Python<'py>,
    tiles: Vec<Bound<'py, PyAny>>,
    layout: Vec<(i64, i64, i64, i64)>,
    shape: (i64, i64),
    labels: Vec<u32>,
    thing_list: Vec<u32>,
    label_divisor: i64,
) -> PyResult<Bound<'py, PyArray2<u32>>> {
    let shape = to_shape(shape)?;
    let layout = to_layout(layout)?;
    if label_divisor < 1 {
        return Err(InvalidArgumentError::new_err(format!(
            "label_divisor: must be >= 1, got {label_divisor}"
        )));
    }
    let Some(first) = tiles.first() else {
        return Err(InvalidArgumentError::new_err(
            "tiles: pass one panoptic map per layout entry, got none",
        ));
    };
    let out = crate::with_label_array!(first, "tiles", |arr0: T| {
        drop(arr0);
        let mut arrays = Vec::with_capacity(tiles.len());
        for (i, t) in tiles.iter().enumerate() {
            let a = t.cast::<PyArrayDyn<T>>().map_err(|_| {
                crate::errors::dtype_err(
                    "tiles",
                    &dtype_name(t),
                    &format!(
                        "{} (the dtype of tiles[0]; all tiles share one dtype, tile {i} differs)",
                        dtype_name(first)
                    ),
                )
            })?;
            if a.ndim() != 2 {
                return Err(ShapeError::new_err(format!(
                    "tiles: tile {i} must be a 2D (y, x) panoptic map, got shape {:?}",
                    a.shape()
                )));
            }
            arrays.push(a.readonly());
        }
        let views: Vec<numpy::ndarray::ArrayView2<'_, T>> = arrays
            .iter()
            .map(|a| {
                a.as_array()
                    .into_dimensionality::<numpy::ndarray::Ix2>()
                    .expect("rank checked")
            })
            .collect();
        kernel::run(py, || {
            core::stitch_tiles::<T>(
                &views,
                &layout,
                shape,
                &labels,
                &thing_list,
                label_divisor as u64,
            )
        })
    })?;
    Ok(out.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tile_layout, m)?)?;
    m.add_function(wrap_pyfunction!(tile_overlap_rle, m)?)?;
    m.add_function(wrap_pyfunction!(stitch_tiles, m)?)
}
