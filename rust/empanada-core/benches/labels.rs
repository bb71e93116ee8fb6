//! Criterion benches of the label operations on generated volumes: blocky objects (8³ cells
//! with random ids, ~20 % background) so rows have realistic runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use empanada_core::labels;
use ndarray::{Array3, ArrayD};
use std::time::Duration;

fn blocks(shape: (usize, usize, usize), n_ids: u32) -> ArrayD<u32> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let cells = (shape.0 / 8 + 1) * (shape.1 / 8 + 1) * (shape.2 / 8 + 1);
    let ids: Vec<u32> = (0..cells)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (seed >> 33) as u32;
            if r < (1u32 << 31) / 5 {
                0
            } else {
                1 + r % n_ids
            }
        })
        .collect();
    let (cy, cx) = (shape.1 / 8 + 1, shape.2 / 8 + 1);
    Array3::from_shape_fn(shape, |(z, y, x)| ids[((z / 8) * cy + y / 8) * cx + x / 8]).into_dyn()
}

fn bench(c: &mut Criterion) {
    for (name, shape) in [("256^3", (256, 256, 256)), ("64x512x512", (64, 512, 512))] {
        let vol = blocks(shape, 30_000);
        let n = vol.len() as u64;
        let mut g = c.benchmark_group(format!("labels/{name}/u32"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500))
            .throughput(Throughput::Elements(n));
        let keys: Vec<u64> = (1..30_001).collect();
        let values: Vec<u64> = keys.iter().map(|k| k * 7 % 30_011).collect();
        g.bench_function("relabel_dense", |b| {
            b.iter(|| labels::relabel(vol.view(), &keys, &values, None).unwrap())
        });
        let big: Vec<u64> = keys.iter().map(|k| k * 1_000_003).collect();
        let vol_big = vol.mapv(|v| if v == 0 { 0 } else { v * 1_000_003 });
        g.bench_function("relabel_hash", |b| {
            b.iter(|| labels::relabel(vol_big.view(), &big, &values, None).unwrap())
        });
        g.bench_function("label_statistics", |b| {
            b.iter(|| labels::label_statistics(vol.view()).unwrap())
        });
        g.bench_function("renumber", |b| {
            b.iter(|| labels::renumber(vol.view(), 1).unwrap())
        });
        g.bench_function("remove_small_objects", |b| {
            b.iter(|| labels::remove_small_objects(vol.view(), 1000).unwrap())
        });
        g.bench_function("fill_holes", |b| {
            b.iter(|| labels::fill_holes(vol.view()).unwrap())
        });
        g.finish();
    }
    let vol16 = blocks((256, 256, 256), 30_000).mapv(|v| v as u16);
    let mut g = c.benchmark_group("labels/256^3/u16");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(vol16.len() as u64));
    let keys: Vec<u64> = (1..30_001).collect();
    let values: Vec<u64> = keys.iter().map(|k| k * 7 % 30_011).collect();
    g.bench_function("relabel_dense", |b| {
        b.iter(|| labels::relabel(vol16.view(), &keys, &values, None).unwrap())
    });
    g.bench_function("label_statistics", |b| {
        b.iter(|| labels::label_statistics(vol16.view()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
