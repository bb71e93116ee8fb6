//! Connected components on generated label images at realistic sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::components::connected_components_into;
use ndarray::{ArrayD, Dimension, IxDyn};
use std::hint::black_box;
use std::time::Duration;

/// Label cells of about `cell` voxels per side with wavy borders, a fifth of them background:
/// long runs, many touching ids, like an instance segmentation.
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
    let mut g = c.benchmark_group("connected_components");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let cases: [(&str, Vec<usize>, u32); 4] = [
        ("2d_1024", vec![1024, 1024], 8),
        ("2d_1024", vec![1024, 1024], 4),
        ("3d_256", vec![256, 256, 256], 26),
        ("3d_256", vec![256, 256, 256], 6),
    ];
    for (name, shape, conn) in cases {
        let vol = label_volume(&shape, 24);
        g.throughput(Throughput::Elements(vol.len() as u64));
        // The output buffer is reused, as a streaming caller would: a fresh allocation's
        // page faults would otherwise dominate (the Python binding lets numpy allocate).
        let mut out = vec![0u32; vol.len()];
        g.bench_with_input(
            BenchmarkId::new(format!("{name}_c{conn}"), "multilabel"),
            &vol,
            |b, v| {
                b.iter(|| {
                    black_box(
                        connected_components_into(v.view(), &mut out, Some(conn), false).unwrap(),
                    )
                })
            },
        );
        let mask = vol.mapv(|v| v != 0);
        g.bench_with_input(
            BenchmarkId::new(format!("{name}_c{conn}"), "binary"),
            &mask,
            |b, v| {
                b.iter(|| {
                    black_box(
                        connected_components_into(v.view(), &mut out, Some(conn), true).unwrap(),
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
