//! Run-length encode / decode / set operations on generated label images.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::rle;
mod common;
use common::label_volume;
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rle");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (name, shape) in [
        ("2d_1024", vec![1024, 1024]),
        ("3d_256", vec![256, 256, 256]),
    ] {
        let vol = label_volume(&shape, 24);
        g.throughput(Throughput::Elements(vol.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), &vol, |b, v| {
            b.iter(|| black_box(rle::encode(v.view()).unwrap()))
        });
        let e = rle::encode(vol.view()).unwrap();
        // Painting into a reused buffer: the kernel without a fresh allocation's page faults
        // (the Python binding lets numpy allocate).
        let mut out = vec![0u32; vol.len()];
        g.bench_with_input(BenchmarkId::new("decode", name), &e, |b, e| {
            b.iter(|| {
                rle::paint::<u32>(&e.ids, &e.offsets, &e.starts, &e.runs, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
    // Intersection of two large objects (every other run of one long stripe pattern, shifted).
    let n = 200_000i64;
    let (sa, ra): (Vec<i64>, Vec<i64>) = (0..n).map(|i| (i * 10, 6)).unzip();
    let (sb, rb): (Vec<i64>, Vec<i64>) = (0..n).map(|i| (i * 10 + 3, 5)).unzip();
    g.throughput(Throughput::Elements(2 * n as u64));
    g.bench_function(BenchmarkId::new("intersection", "2x200k_runs"), |b| {
        b.iter(|| black_box(rle::intersection(&sa, &ra, &sb, &rb).unwrap()))
    });
    let views = [(&sa[..], &ra[..]), (&sb[..], &rb[..]), (&sa[..], &rb[..])];
    g.bench_function(BenchmarkId::new("vote_thr2", "3x200k_runs"), |b| {
        b.iter(|| black_box(rle::vote(&views, 2).unwrap()))
    });
    g.bench_function(BenchmarkId::new("union", "3x200k_runs"), |b| {
        b.iter(|| black_box(rle::union(&views).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
