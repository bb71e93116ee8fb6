//! Criterion benches of the ortho-plane consensus: three views of the same ellipsoids, each
//! view shifted by a voxel so clusters and votes do real work.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::consensus::{orthoplane_consensus, ConsensusParams};
use empanada_core::segmentation::Segmentation;
use ndarray::Array3;
use std::time::Duration;

fn views(n: usize, objects: usize) -> Vec<Segmentation> {
    let mut rnd = common::xorshift(0x2545_F491_4F6C_DD1D);
    let balls: Vec<[usize; 4]> = (0..objects)
        .map(|_| [rnd(n), rnd(n), rnd(n), 4 + rnd(9)])
        .collect();
    (0..3)
        .map(|shift| {
            let mut v = Array3::<u32>::zeros((n, n, n));
            for (i, &[z, y, x, r]) in balls.iter().enumerate() {
                let (z, y, x) = ((z + shift).min(n - 1), y, x);
                let lo = |c: usize| c.saturating_sub(r);
                let hi = |c: usize| (c + r + 1).min(n);
                for zz in lo(z)..hi(z) {
                    for yy in lo(y)..hi(y) {
                        for xx in lo(x)..hi(x) {
                            let d = |a: usize, b: usize| (a as i64 - b as i64).pow(2);
                            if d(zz, z) + d(yy, y) + d(xx, x) <= (r * r) as i64 {
                                v[[zz, yy, xx]] = i as u32 + 1;
                            }
                        }
                    }
                }
            }
            Segmentation::from_labels(v.view(), 1, true).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("orthoplane_consensus");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for &(n, objects) in &[(128usize, 64usize), (256, 512)] {
        let v = views(n, objects);
        let refs: Vec<&Segmentation> = v.iter().collect();
        let p = ConsensusParams {
            min_size: 100,
            min_extent: 3,
            ..Default::default()
        };
        g.throughput(Throughput::Elements((n * n * n) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}^3-{objects}")),
            &refs,
            |b, refs| b.iter(|| orthoplane_consensus(refs, &p).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
