//! Connected components on generated label images at realistic sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use empanada_core::components::connected_components_into;
mod common;
use common::label_volume;
use std::hint::black_box;
use std::time::Duration;

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
