//! Criterion benches of the stack path: a whole StackPipeline run (push every slice,
//! finish) on generated model outputs, the slice matcher alone via `match_slices` on
//! pre-labelled slices, and the assignment solver.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::matching::{linear_sum_assignment, Plane};
use empanada_core::median::MedianMode;
use empanada_core::panoptic::Panoptic2dParams;
use empanada_core::stack::{match_slices, SliceOutputs, StackParams, StackPipeline};
use ndarray::Array3;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ball ids of random spheres in an `n^3` volume (about one per 20^3 voxels).
fn spheres(n: usize, seed: u64) -> (Array3<u16>, Vec<[f64; 4]>) {
    let mut rng = Rng(seed);
    let count = (n * n * n / 8000).max(4);
    let balls: Vec<[f64; 4]> = (0..count)
        .map(|_| {
            [
                rng.next() * n as f64,
                rng.next() * n as f64,
                rng.next() * n as f64,
                4.0 + rng.next() * 8.0,
            ]
        })
        .collect();
    let mut vol = Array3::<u16>::zeros((n, n, n));
    for (i, b) in balls.iter().enumerate() {
        let r = b[3];
        let lo = |c: f64| ((c - r).floor().max(0.0)) as usize;
        let hi = |c: f64| ((c + r).ceil() as usize + 1).min(n);
        for z in lo(b[0])..hi(b[0]) {
            for y in lo(b[1])..hi(b[1]) {
                for x in lo(b[2])..hi(b[2]) {
                    let d = (z as f64 - b[0]).powi(2)
                        + (y as f64 - b[1]).powi(2)
                        + (x as f64 - b[2]).powi(2);
                    if d <= r * r && vol[[z, y, x]] == 0 {
                        vol[[z, y, x]] = (i + 1) as u16;
                    }
                }
            }
        }
    }
    (vol, balls)
}

/// Model-like outputs per z slice: foreground probability, a Gaussian per ball centre on
/// the 1/4 grid, offsets towards it.
fn outputs(vol: &Array3<u16>, balls: &[[f64; 4]]) -> Vec<SliceOutputs> {
    let n = vol.dim().0;
    let g = n / 4;
    (0..n)
        .map(|z| {
            let sem: Vec<f32> = vol
                .index_axis(ndarray::Axis(0), z)
                .iter()
                .map(|&v| if v > 0 { 0.9 } else { 0.1 })
                .collect();
            let mut ctr = vec![0f32; g * g];
            let mut off = vec![0f32; 2 * g * g];
            for (i, b) in balls.iter().enumerate() {
                if (z as f64 - b[0]).abs() > b[3] {
                    continue;
                }
                for gy in 0..g {
                    for gx in 0..g {
                        let (py, px) = ((gy * 4) as f64, (gx * 4) as f64);
                        let d2 = (py - b[1]).powi(2) + (px - b[2]).powi(2);
                        let v = (-d2 / (2.0 * 9.0)).exp() as f32;
                        let k = gy * g + gx;
                        ctr[k] = ctr[k].max(v);
                        if vol[[z, gy * 4, gx * 4]] == (i + 1) as u16 {
                            off[k] = (b[1] - py) as f32;
                            off[g * g + k] = (b[2] - px) as f32;
                        }
                    }
                }
            }
            SliceOutputs {
                sem_shape: [1, n, n],
                sem,
                ctr_shape: [g, g],
                ctr,
                offsets: off,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for n in [64usize, 128] {
        let (vol, balls) = spheres(n, n as u64);
        let outs = outputs(&vol, &balls);
        g.throughput(Throughput::Elements((n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("pipeline", n), &n, |b, &n| {
            b.iter(|| {
                let mut p = StackPipeline::new(StackParams {
                    shape: [n, n, n],
                    plane: Plane::Xy,
                    labels: vec![1],
                    panoptic: Panoptic2dParams::default(),
                    median_kernel_size: 3,
                    median_mode: MedianMode::Recursive,
                    merge_iou_thr: 0.25,
                    merge_ioa_thr: 0.25,
                })
                .unwrap();
                for s in &outs {
                    p.push_owned(s.clone()).unwrap();
                }
                p.finish(500, 5).unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("match_slices", n), &n, |b, _| {
            b.iter(|| match_slices(vol.view(), Plane::Xy, 1 << 16, 0.25, 0.25, 0, 1).unwrap())
        });
    }
    let mut rng = Rng(3);
    for k in [50usize, 200] {
        let cost: Vec<f64> = (0..k * k)
            .map(|_| {
                let v = rng.next();
                if v < 0.95 {
                    0.0
                } else {
                    v
                }
            })
            .collect();
        g.throughput(Throughput::Elements((k * k) as u64));
        g.bench_with_input(BenchmarkId::new("assignment", k), &k, |b, &k| {
            b.iter(|| linear_sum_assignment(&cost, k, k, true).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
