//! Criterion benches of the slice median: steady-state pushes of 1024² slices (one class)
//! through the recursive and running filters.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::median::{MedianMode, SliceMedianFilter};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let shape = [1usize, 1024, 1024];
    let len: usize = shape.iter().product();
    let mut seed = 1u64;
    let slices: Vec<Vec<f32>> = (0..16)
        .map(|_| {
            (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 40) as f32 / (1u64 << 24) as f32
                })
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group("median/1024^2");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(len as u64));
    for (mode, name) in [
        (MedianMode::Recursive, "recursive"),
        (MedianMode::Running, "running"),
    ] {
        for k in [3i64, 5, 11] {
            let mut f = SliceMedianFilter::new(k, mode).unwrap();
            for s in &slices[..k as usize] {
                f.push(&shape, s).unwrap();
            }
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(name, k), &k, |b, _| {
                b.iter(|| {
                    i = (i + 1) % slices.len();
                    f.push(&shape, &slices[i]).unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
