//! Criterion benches of the 2D panoptic kernels on generated model outputs: discs with a
//! Gaussian centre peak and exact offsets, one object per ~8000 px (like the Python bench).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::panoptic::{find_centers, panoptic_2d, relabel_connected, Panoptic2dParams};
use ndarray::{Array2, Array3};

struct Outputs {
    sem: Array3<f32>,
    ctr: Array2<f32>,
    off: Array3<f32>,
}

/// Deterministic xorshift so the bench needs no rand crate.
fn rng(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn outputs(size: usize, coarse: bool) -> Outputs {
    let step = if coarse { 4 } else { 1 };
    let g = size / step;
    let mut sem = Array3::<f32>::from_elem((1, size, size), 0.05);
    let mut ctr = Array2::<f32>::zeros((g, g));
    let mut off = Array3::<f32>::zeros((2, g, g));
    let mut owner = Array2::<usize>::zeros((g, g));
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let n = size * size / 8000;
    let centres: Vec<(f64, f64, f64)> = (0..n)
        .map(|_| {
            (
                rng(&mut s) * size as f64,
                rng(&mut s) * size as f64,
                6.0 + 24.0 * rng(&mut s),
            )
        })
        .collect();
    for (i, &(cy, cx, r)) in centres.iter().enumerate() {
        let (y0, y1) = (
            ((cy - r).max(0.0)) as usize,
            ((cy + r) as usize + 1).min(size),
        );
        let (x0, x1) = (
            ((cx - r).max(0.0)) as usize,
            ((cx + r) as usize + 1).min(size),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let d2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                if d2 <= r * r {
                    sem[[0, y, x]] = 0.95;
                    if y % step == 0 && x % step == 0 {
                        owner[[y / step, x / step]] = i + 1;
                    }
                }
            }
        }
    }
    for ((gy, gx), &o) in owner.indexed_iter() {
        let (py, px) = ((gy * step) as f64, (gx * step) as f64);
        let mut best = 0f32;
        for &(cy, cx, _) in &centres {
            let d2 = (py - cy).powi(2) + (px - cx).powi(2);
            best = best.max((-d2 / 128.0).exp() as f32);
        }
        ctr[[gy, gx]] = best;
        if o > 0 {
            let (cy, cx, _) = centres[o - 1];
            off[[0, gy, gx]] = (cy - py) as f32;
            off[[1, gy, gx]] = (cx - px) as f32;
        }
    }
    Outputs { sem, ctr, off }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("panoptic_2d");
    group
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(3));
    for &(size, coarse) in &[(1024usize, true), (2048, true), (1024, false)] {
        let o = outputs(size, coarse);
        let p = Panoptic2dParams::default();
        let id = format!("{size}-{}", if coarse { "coarse" } else { "fine" });
        group.throughput(Throughput::Elements((size * size) as u64));
        group.bench_with_input(BenchmarkId::new("full", &id), &o, |b, o| {
            b.iter(|| panoptic_2d(o.sem.view(), o.ctr.view(), o.off.view(), &p).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("find_centers", &id), &o, |b, o| {
            b.iter(|| find_centers(o.ctr.view(), 0.1, 3))
        });
        let pan = panoptic_2d(o.sem.view(), o.ctr.view(), o.off.view(), &p).unwrap();
        group.bench_with_input(
            BenchmarkId::new("relabel_connected", &id),
            &pan,
            |b, pan| b.iter(|| relabel_connected(pan.view(), &[1], 10000).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
