//! Criterion benches of the face-neighbour morphology on a generated volume of sparse
//! blobs (cubes of 6-14 voxels a side over ~10 % of the volume, like organelles), at the
//! step counts of the 3D filters' range (spec §5.6.3: 0-50), and the per-object filters
//! (`apply_object_ops`) on the same blobs as a segmentation; then erosion and dilation of
//! crowded blobs (neurons-like: most voxels in some object, objects pressed together).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use empanada_core::morphology::{dilate_labels, erode_labels, erode_mask};
use empanada_core::object_ops::apply_object_ops;
use empanada_core::segmentation::Segmentation;
use ndarray::Array3;
use std::time::Duration;

fn blobs(shape: (usize, usize, usize), n: u32) -> Array3<u32> {
    let mut next = common::xorshift(0x2545_f491_4f6c_dd1d);
    let mut vol = Array3::zeros(shape);
    for id in 1..=n {
        let s = 6 + next(9);
        let (z, y, x) = (next(shape.0), next(shape.1), next(shape.2));
        for zz in z..(z + s).min(shape.0) {
            for yy in y..(y + s).min(shape.1) {
                for xx in x..(x + s).min(shape.2) {
                    vol[[zz, yy, xx]] = id;
                }
            }
        }
    }
    vol
}

fn bench(c: &mut Criterion) {
    let vol = blobs((64, 512, 512), 1_600);
    let mask = vol.mapv(|v| v != 0).into_dyn();
    let seg = Segmentation::from_labels(vol.view(), 1, true).unwrap();
    let vol = vol.into_dyn();
    let mut g = c.benchmark_group("morphology/64x512x512");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(vol.len() as u64));
    for steps in [1usize, 3, 10, 50] {
        g.bench_function(format!("erode_mask_{steps}"), |b| {
            b.iter(|| erode_mask(mask.view(), steps).unwrap())
        });
        g.bench_function(format!("dilate_labels_{steps}"), |b| {
            b.iter(|| dilate_labels(vol.view(), steps).unwrap())
        });
    }
    for (erode, dilate, fill) in [(2, 0, false), (0, 2, false), (0, 8, false), (0, 0, true)] {
        g.bench_function(
            format!("apply_object_ops_e{erode}_d{dilate}_f{}", fill as u8),
            |b| b.iter(|| apply_object_ops(&seg, erode, dilate, fill).unwrap()),
        );
    }
    g.finish();

    let vol = blobs((64, 256, 256), 6_000);
    let seg = Segmentation::from_labels(vol.view(), 1, true).unwrap();
    let vol = vol.into_dyn();
    let mut g = c.benchmark_group("morphology/crowded_64x256x256");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(vol.len() as u64));
    for steps in [1usize, 3, 10] {
        g.bench_function(format!("erode_labels_{steps}"), |b| {
            b.iter(|| erode_labels(vol.view(), steps).unwrap())
        });
    }
    for (erode, dilate) in [(1, 0), (2, 0), (5, 0), (0, 2)] {
        g.bench_function(format!("apply_object_ops_e{erode}_d{dilate}"), |b| {
            b.iter(|| apply_object_ops(&seg, erode, dilate, false).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
