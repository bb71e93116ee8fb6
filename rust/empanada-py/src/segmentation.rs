//! Binding of `empanada_core::segmentation::Segmentation` as an immutable Python class.

use empanada_core::rle::RleObjects;
use empanada_core::segmentation::{ClassObjects, Segmentation as CoreSegmentation};
use numpy::ndarray::{Array2, Ix3};
use numpy::{IntoPyArray, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{InvalidArgumentError, ShapeError};
use crate::kernel::{self, not_contiguous};
use crate::morphology::step_count;

/// Per-class sparse 3D objects of one (z, y, x) volume.
#[pyclass(module = "empanada_rs._core", frozen, name = "Segmentation")]
pub struct Segmentation {
    pub inner: CoreSegmentation,
}

fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?
        .ok_or_else(|| InvalidArgumentError::new_err(format!("objects: missing key {key:?}")))
}

#[pymethods]
impl Segmentation {
    /// Objects of one class from a dense (z, y, x) label volume; 0 is background, ids kept.
    #[staticmethod]
    #[pyo3(signature = (volume, class_id = 1, *, thing = true))]
    fn from_labels(
        py: Python<'_>,
        volume: &Bound<'_, PyAny>,
        class_id: u32,
        thing: bool,
    ) -> PyResult<Self> {
        let inner = crate::with_label_array!(volume, "volume", |arr: T| {
            if arr.ndim() != 3 {
                return Err(ShapeError::new_err(format!(
                    "volume: expected a 3D (z, y, x) array, got shape {:?}",
                    arr.shape()
                )));
            }
            if !arr.is_c_contiguous() {
                return Err(not_contiguous("volume"));
            }
            let v = arr
                .as_array()
                .into_dimensionality::<Ix3>()
                .expect("rank checked");
            kernel::run(py, || {
                CoreSegmentation::from_labels::<T>(v, class_id, thing)
            })
        })?;
        Ok(Self { inner })
    }

    /// One class from columnar objects (keys ids, boxes (N, 6), offsets, starts, runs, as
    /// `rle_encode` returns them for a 3D array).
    #[staticmethod]
    #[pyo3(signature = (shape, class_id, objects, *, thing = true))]
    fn from_objects(
        py: Python<'_>,
        shape: (usize, usize, usize),
        class_id: u32,
        objects: &Bound<'_, PyDict>,
        thing: bool,
    ) -> PyResult<Self> {
        let ids: PyReadonlyArray1<u64> = item(objects, "ids")?.extract()?;
        let boxes: PyReadonlyArray2<i64> = item(objects, "boxes")?.extract()?;
        let offsets: PyReadonlyArray1<i64> = item(objects, "offsets")?.extract()?;
        let starts: PyReadonlyArray1<i64> = item(objects, "starts")?.extract()?;
        let runs: PyReadonlyArray1<i64> = item(objects, "runs")?.extract()?;
        if boxes.shape()[1] != 6 && boxes.shape()[0] > 0 {
            return Err(ShapeError::new_err(format!(
                "objects['boxes']: expected shape (N, 6), got {:?}",
                boxes.shape()
            )));
        }
        let o = RleObjects {
            ndim: 3,
            ids: ids.as_array().to_vec(),
            boxes: boxes.as_array().iter().copied().collect(),
            counts: Vec::new(),
            offsets: offsets.as_array().to_vec(),
            starts: starts.as_array().to_vec(),
            runs: runs.as_array().to_vec(),
        };
        let inner = kernel::run(py, move || {
            let mut o = o;
            if o.offsets.len() == o.ids.len() + 1
                && o.offsets.windows(2).all(|w| w[0] <= w[1])
                && o.offsets.last().copied() == Some(o.runs.len() as i64)
            {
                o.counts = o
                    .offsets
                    .windows(2)
                    .map(|w| o.runs[w[0] as usize..w[1] as usize].iter().sum())
                    .collect();
            }
            let mut seg = CoreSegmentation::new([shape.0, shape.1, shape.2]);
            seg.insert(ClassObjects {
                class_id,
                thing,
                objects: o,
            })?;
            Ok(seg)
        })?;
        Ok(Self { inner })
    }

    /// One segmentation holding the classes of all `parts` (same shape, distinct classes).
    #[staticmethod]
    fn combine(py: Python<'_>, parts: Vec<PyRef<'_, Segmentation>>) -> PyResult<Self> {
        let Some(first) = parts.first() else {
            return Err(InvalidArgumentError::new_err(
                "parts: pass at least one segmentation",
            ));
        };
        let shape = first.inner.shape;
        let classes: Vec<ClassObjects> = parts
            .iter()
            .flat_map(|p| p.inner.classes.iter().cloned())
            .collect();
        if let Some(p) = parts.iter().find(|p| p.inner.shape != shape) {
            return Err(ShapeError::new_err(format!(
                "parts: shapes differ ({:?} and {:?})",
                shape, p.inner.shape
            )));
        }
        let inner = kernel::run(py, move || {
            let mut seg = CoreSegmentation::new(shape);
            for c in classes {
                seg.insert(c)?;
            }
            Ok(seg)
        })?;
        Ok(Self { inner })
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape)
    }

    #[getter]
    fn class_ids(&self) -> Vec<u32> {
        self.inner.classes.iter().map(|c| c.class_id).collect()
    }

    fn is_thing(&self, class_id: u32) -> PyResult<bool> {
        Ok(self
            .inner
            .class(class_id)
            .map_err(crate::errors::to_py)?
            .thing)
    }

    fn n_objects(&self, class_id: u32) -> PyResult<usize> {
        Ok(self
            .inner
            .class(class_id)
            .map_err(crate::errors::to_py)?
            .objects
            .len())
    }

    /// One class's objects in columnar form: ids, boxes (N, 6), counts, offsets, starts, runs.
    fn objects<'py>(&self, py: Python<'py>, class_id: u32) -> PyResult<Bound<'py, PyDict>> {
        let o = &self
            .inner
            .class(class_id)
            .map_err(crate::errors::to_py)?
            .objects;
        let d = PyDict::new(py);
        d.set_item("ids", o.ids.clone().into_pyarray(py))?;
        let boxes = Array2::from_shape_vec((o.len(), 6), o.boxes.clone()).expect("6 per object");
        d.set_item("boxes", boxes.into_pyarray(py))?;
        d.set_item("counts", o.counts.clone().into_pyarray(py))?;
        d.set_item("offsets", o.offsets.clone().into_pyarray(py))?;
        d.set_item("starts", o.starts.clone().into_pyarray(py))?;
        d.set_item("runs", o.runs.clone().into_pyarray(py))?;
        Ok(d)
    }

    /// One class's object table without a dense volume: ids 1..N in object order, voxel
    /// counts, tight boxes (N, 6: z0, y0, x0, z1, y1, x1) and centroids (N, 3).
    fn statistics<'py>(&self, py: Python<'py>, class_id: u32) -> PyResult<Bound<'py, PyDict>> {
        let (boxes, cents) = kernel::run(py, || self.inner.object_statistics(class_id))?;
        let o = &self
            .inner
            .class(class_id)
            .map_err(crate::errors::to_py)?
            .objects;
        let n = o.len();
        let d = PyDict::new(py);
        d.set_item("ids", (1..=n as u64).collect::<Vec<u64>>().into_pyarray(py))?;
        d.set_item("counts", o.counts.clone().into_pyarray(py))?;
        let boxes = Array2::from_shape_vec((n, 6), boxes).expect("6 per object");
        d.set_item("boxes", boxes.into_pyarray(py))?;
        let cents = Array2::from_shape_vec((n, 3), cents).expect("3 per object");
        d.set_item("centroids", cents.into_pyarray(py))?;
        Ok(d)
    }

    /// One class as an int32 (z, y, x) volume, ids 1..N in object order.
    fn to_volume<'py>(
        &self,
        py: Python<'py>,
        class_id: u32,
    ) -> PyResult<Bound<'py, PyArray3<i32>>> {
        let v = kernel::run(py, || self.inner.to_volume(class_id))?;
        Ok(v.into_pyarray(py))
    }

    /// Every class painted with the objects' own ids (the panoptic c*L+k stack), int32.
    fn stack_volume<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<i32>>> {
        let v = kernel::run(py, || self.inner.stack_volume())?;
        Ok(v.into_pyarray(py))
    }

    /// Every object after `erode` face-step erosions, then `dilate` dilations into
    /// background, then per-slice hole filling, each object in a crop around its box.
    #[pyo3(signature = (*, erode = 0, dilate = 0, fill_holes = false))]
    fn apply_object_ops(
        &self,
        py: Python<'_>,
        erode: i64,
        dilate: i64,
        fill_holes: bool,
    ) -> PyResult<Self> {
        let erode = step_count("erode", erode)?;
        let dilate = step_count("dilate", dilate)?;
        let inner = kernel::run(py, || {
            empanada_core::object_ops::apply_object_ops(&self.inner, erode, dilate, fill_holes)
        })?;
        Ok(Self { inner })
    }

    fn __repr__(&self) -> String {
        let parts: Vec<String> = self
            .inner
            .classes
            .iter()
            .map(|c| {
                format!(
                    "{}{}: {}",
                    c.class_id,
                    if c.thing { "" } else { " (stuff)" },
                    c.objects.len()
                )
            })
            .collect();
        let [d, h, w] = self.inner.shape;
        format!(
            "Segmentation(shape=({d}, {h}, {w}), objects={{{}}})",
            parts.join(", ")
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Segmentation>()
}
