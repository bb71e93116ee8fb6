//! Run-length encode / decode / set operations on generated label images.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::rle;
use ndarray::{ArrayD, Dimension, IxDyn};
use std::hint::black_box;
use std::time::Duration;

/// Label cells of about `cell` voxels per side with wavy borders, a fifth of them background.
fn label_volume(shape: &[usize], cell: usize) -> ArrayD<u32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let (z, y, x) = if ix.ndim() == 3 {
            (ix[0], ix[1], ix[2])
        } else {
            (0, ix[0], ix[1])
        };
        let jx = x + (y * 7 + z * 3) % 5;
        let jy = y + (x * 5 + z) % 3;
        let key =
            ((z / cell) * 73_856_093) ^ ((jy / cell) * 19_349_663) ^ ((jx / cell) * 83_492_791);
        let h = (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        if h % 10 < 2 {
            0
        } else {
            (h % 5000 + 1) as u32
        }
    })
}

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
