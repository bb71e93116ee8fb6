//! Criterion benches of tile layout and tile stitching on a 4096² map of discs cut into
//! 1024² tiles.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use empanada_core::tiles::{stitch_tiles, tile_layout};
use ndarray::{s, Array2};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let n = 4096usize;
    let mut img = Array2::<i32>::zeros((n, n));
    let mut st = 0x9E37_79B9_7F4A_7C15u64;
    for k in 1..600 {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        let (cy, cx, r) = (
            (st % n as u64) as i64,
            ((st >> 20) % n as u64) as i64,
            5 + ((st >> 40) % 35) as i64,
        );
        for y in (cy - r).max(0)..(cy + r).min(n as i64) {
            for x in (cx - r).max(0)..(cx + r).min(n as i64) {
                if (y - cy).pow(2) + (x - cx).pow(2) < r * r {
                    img[[y as usize, x as usize]] = 1000 + k;
                }
            }
        }
    }
    let layout = tile_layout((n, n), 1024, None).unwrap();
    let tiles: Vec<Array2<i32>> = layout
        .iter()
        .map(|t| img.slice(s![t[0]..t[1], t[2]..t[3]]).to_owned())
        .collect();
    let views: Vec<_> = tiles.iter().map(|t| t.view()).collect();
    let mut g = c.benchmark_group("tiles");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements((n * n) as u64));
    g.bench_function("stitch_4096_t1024", |b| {
        b.iter(|| stitch_tiles(&views, &layout, (n, n), &[1], &[1], 1000).unwrap())
    });
    g.bench_function("layout_4096_t1024", |b| {
        b.iter(|| tile_layout((n, n), 1024, None).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
