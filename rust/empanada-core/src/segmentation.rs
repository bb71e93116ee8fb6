//! Sparse 3D segmentations: per class, objects as runs over the volume's raveled index.
//!
//! This is what the 3D stages exchange (stack pipeline → consensus → writers) so that no
//! stage needs a dense copy of the volume. Each object keeps the id it was given (the
//! panoptic `c*L+k` of the intermediate stacks, or a label volume's own ids); final ids are
//! `1..N` in object order.

use ndarray::{Array3, ArrayView3};

use crate::label::Label;
use crate::rle::{self, RleObjects};
use crate::{Error, Result};

/// The objects of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassObjects {
    pub class_id: u32,
    /// Instance ("thing") class, or a semantic ("stuff") class holding at most one object.
    pub thing: bool,
    /// 3D objects (`ndim == 3`), each with its id, box, voxel count and sorted runs.
    pub objects: RleObjects,
}

/// Per-class sparse objects of one `(z, y, x)` volume; classes sorted by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub shape: [usize; 3],
    pub classes: Vec<ClassObjects>,
}

fn voxels(shape: [usize; 3]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::shape("shape", "the volume's size overflows"))
}

impl Segmentation {
    /// An empty segmentation of a volume.
    pub fn new(shape: [usize; 3]) -> Self {
        Self {
            shape,
            classes: Vec::new(),
        }
    }

    /// Adds one class's objects, checking them against the volume.
    pub fn insert(&mut self, class: ClassObjects) -> Result<()> {
        if class.objects.ndim != 3 && !class.objects.is_empty() {
            return Err(Error::shape(
                "objects",
                "objects of a 3D segmentation need 3D boxes",
            ));
        }
        if self.classes.iter().any(|c| c.class_id == class.class_id) {
            return Err(Error::invalid(
                "class_id",
                format!("class {} is already present", class.class_id),
            ));
        }
        let o = &class.objects;
        let n = o.ids.len();
        if o.offsets.len() != n + 1 || o.counts.len() != n || o.boxes.len() != 6 * n {
            return Err(Error::shape(
                "objects",
                "ids, counts, boxes (N x 6) and offsets (N + 1) must describe the same N objects",
            ));
        }
        rle::check_runs("objects", &o.starts, &o.runs)?;
        let size = voxels(self.shape)? as i64;
        if let Some(s) = o.starts.iter().zip(&o.runs).find(|(&s, &r)| s + r > size) {
            return Err(Error::invalid(
                "objects",
                format!(
                    "run starting at {} lies outside the volume {:?}",
                    s.0, self.shape
                ),
            ));
        }
        let at = self
            .classes
            .partition_point(|c| c.class_id < class.class_id);
        self.classes.insert(at, class);
        Ok(())
    }

    /// Objects given as a dense label volume (0 = background), ids kept.
    pub fn from_labels<L: Label>(
        volume: ArrayView3<L>,
        class_id: u32,
        thing: bool,
    ) -> Result<Self> {
        let (d, h, w) = volume.dim();
        let objects = rle::encode(volume.into_dyn())?;
        let objects = if objects.ndim == 3 {
            objects
        } else {
            RleObjects { ndim: 3, ..objects }
        };
        if !thing && objects.len() > 1 {
            return Err(Error::invalid(
                "thing",
                format!(
                    "a semantic class holds one object, the volume has {}",
                    objects.len()
                ),
            ));
        }
        let mut seg = Self::new([d, h, w]);
        seg.insert(ClassObjects {
            class_id,
            thing,
            objects,
        })?;
        Ok(seg)
    }

    pub fn class(&self, class_id: u32) -> Result<&ClassObjects> {
        self.classes
            .iter()
            .find(|c| c.class_id == class_id)
            .ok_or_else(|| {
                let have: Vec<u32> = self.classes.iter().map(|c| c.class_id).collect();
                Error::invalid(
                    "class_id",
                    format!("no class {class_id} in this segmentation (has {have:?})"),
                )
            })
    }

    /// Tight boxes `(z0, y0, x0, z1, y1, x1)` (ends exclusive) and centroids `(z, y, x)` of
    /// one class's objects, in object order, from their runs (no dense volume). Stored
    /// boxes can be looser: a consensus object keeps the union of its views' boxes.
    pub fn object_statistics(&self, class_id: u32) -> Result<(Vec<i64>, Vec<f64>)> {
        use rayon::prelude::*;
        let o = &self.class(class_id)?.objects;
        let [_, h, w] = self.shape.map(|v| v as i64);
        let per: Vec<([i64; 6], [f64; 3])> = (0..o.len())
            .into_par_iter()
            .map(|i| {
                let (a, b) = (o.offsets[i] as usize, o.offsets[i + 1] as usize);
                let mut bx = [i64::MAX, i64::MAX, i64::MAX, i64::MIN, i64::MIN, i64::MIN];
                let (mut sz, mut sy, mut sx, mut n) = (0f64, 0f64, 0f64, 0f64);
                for k in a..b {
                    let (mut p, end) = (o.starts[k], o.starts[k] + o.runs[k]);
                    // A run may wrap from one row (or slice) to the next: split it per row.
                    while p < end {
                        let (z, rem) = (p / (h * w), p % (h * w));
                        let (y, x0) = (rem / w, rem % w);
                        let x1 = (x0 + end - p).min(w);
                        let len = (x1 - x0) as f64;
                        bx[0] = bx[0].min(z);
                        bx[1] = bx[1].min(y);
                        bx[2] = bx[2].min(x0);
                        bx[3] = bx[3].max(z + 1);
                        bx[4] = bx[4].max(y + 1);
                        bx[5] = bx[5].max(x1);
                        sz += z as f64 * len;
                        sy += y as f64 * len;
                        sx += (x0 + x1 - 1) as f64 * len / 2.0;
                        n += len;
                        p += x1 - x0;
                    }
                }
                let n = n.max(1.0);
                (bx, [sz / n, sy / n, sx / n])
            })
            .collect();
        let boxes = per.iter().flat_map(|p| p.0).collect();
        let cents = per.iter().flat_map(|p| p.1).collect();
        Ok((boxes, cents))
    }

    /// One class as an int32 volume with ids `1..N` in object order.
    pub fn to_volume(&self, class_id: u32) -> Result<Array3<i32>> {
        let c = self.class(class_id)?;
        let n = c.objects.len();
        if n as u64 > i32::MAX as u64 {
            return Err(Error::overflow(
                "class_id",
                format!("{n} objects exceed the int32 id range"),
            ));
        }
        let ids: Vec<u64> = (1..=n as u64).collect();
        self.paint(&[(&c.objects, &ids)])
    }

    /// Every class painted with the objects' own ids (the panoptic `c*L+k` stack).
    pub fn stack_volume(&self) -> Result<Array3<i32>> {
        let layers: Vec<(&RleObjects, &[u64])> = self
            .classes
            .iter()
            .map(|c| (&c.objects, c.objects.ids.as_slice()))
            .collect();
        self.paint(&layers)
    }

    fn paint(&self, layers: &[(&RleObjects, &[u64])]) -> Result<Array3<i32>> {
        let mut out = vec![0i32; voxels(self.shape)?];
        for (o, ids) in layers {
            crate::chunks::paint_volume(o, ids, self.shape, &mut out)?;
        }
        Ok(Array3::from_shape_vec(self.shape, out).expect("size matches shape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_with_renumbering() {
        let mut v = Array3::<u16>::zeros((2, 3, 4));
        v[[0, 0, 0]] = 7;
        v[[1, 2, 3]] = 7;
        v[[0, 1, 1]] = 3;
        let seg = Segmentation::from_labels(v.view(), 1, true).unwrap();
        assert_eq!(seg.class(1).unwrap().objects.ids, vec![3, 7]);
        let out = seg.to_volume(1).unwrap();
        assert_eq!(out[[0, 1, 1]], 1);
        assert_eq!(out[[0, 0, 0]], 2);
        assert_eq!(out[[1, 2, 3]], 2);
        assert_eq!(seg.stack_volume().unwrap().mapv(|x| x as u16), v);
        assert!(seg.to_volume(2).is_err());
    }
}
