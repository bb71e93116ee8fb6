//! Criterion bench of instance matching (F1 / PQ): a blocky label volume against a copy
//! shifted by one voxel along x, so most objects overlap a partner at high IoU.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use empanada_core::metrics::match_instances;
use ndarray::Array3;
use std::time::Duration;

fn blocks(shape: (usize, usize, usize), shift: usize) -> Array3<u32> {
    let (cy, cx) = (shape.1 / 8 + 1, shape.2 / 8 + 2);
    Array3::from_shape_fn(shape, |(z, y, x)| {
        let cell = ((z / 8) * cy + y / 8) * cx + (x + shift) / 8;
        // ~20 % background cells, the rest distinct ids
        if cell.is_multiple_of(5) {
            0
        } else {
            cell as u32
        }
    })
}

fn bench(c: &mut Criterion) {
    let shape = (128, 256, 256);
    let (truth, pred) = (blocks(shape, 0), blocks(shape, 1));
    let mut g = c.benchmark_group("metrics/128x256x256");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(truth.len() as u64));
    for thr in [0.5, 0.3] {
        g.bench_function(format!("match_instances iou {thr}"), |b| {
            b.iter(|| {
                match_instances(pred.view().into_dyn(), truth.view().into_dyn(), thr).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
