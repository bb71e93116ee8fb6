// Criterion benches of block painting: every touched 64³ chunk of a volume of ellipsoids,
// through the chunk index (what the zarr writer does) and one-off `paint_block` calls.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use empanada_core::chunks::{object_ids, paint_block, paint_volume, ChunkGrid, ChunkIndex};
use empanada_core::rle;
use ndarray::Array3;
use rayon::prelude::*;

fn ellipsoids(n: usize, count: usize) -> Array3<u32> {
    let mut v = Array3::<u32>::zeros((n, n, n));
    let mut seed = 12345u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    for id in 1..=count as u32 {
        let c = [rnd() * n as f64, rnd() * n as f64, rnd() * n as f64];
        let r = [4.0 + rnd() * 16.0, 4.0 + rnd() * 16.0, 4.0 + rnd() * 16.0];
        let lo = [0, 1, 2].map(|a| (c[a] - r[a]).max(0.0) as usize);
        let hi = [0, 1, 2].map(|a| ((c[a] + r[a]) as usize + 1).min(n));
        for z in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for x in lo[2]..hi[2] {
                    let d = [z as f64 - c[0], y as f64 - c[1], x as f64 - c[2]];
                    if (0..3).map(|a| (d[a] / r[a]).powi(2)).sum::<f64>() <= 1.0 {
                        v[[z, y, x]] = id;
                    }
                }
            }
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let n = 256;
    let v = ellipsoids(n, 300);
    let o = rle::encode(v.view().into_dyn()).unwrap();
    let ids = object_ids(&o, false);
    let shape = [n, n, n];
    let grid = ChunkGrid::new(shape, [64, 64, 64]).unwrap();
    let mut g = c.benchmark_group("chunks_256");
    g.sample_size(10)
        .measurement_time(std::time::Duration::from_secs(3))
        .throughput(Throughput::Elements((n * n * n) as u64));
    g.bench_function("index_build_64", |b| {
        b.iter(|| ChunkIndex::build(&o, grid).unwrap())
    });
    let index = ChunkIndex::build(&o, grid).unwrap();
    g.bench_function("paint_all_chunks_64_indexed", |b| {
        b.iter(|| {
            (0..index.len())
                .into_par_iter()
                .map(|t| {
                    let (_, block) = index.block(t);
                    let mut out = vec![0i32; block.iter().product()];
                    index.paint_chunk(t, &o, &ids, &mut out).unwrap();
                    out[0]
                })
                .sum::<i32>()
        })
    });
    g.bench_function("paint_all_chunks_64_paint_block", |b| {
        b.iter(|| {
            (0..grid.len())
                .into_par_iter()
                .map(|k| {
                    let (origin, block) = grid.block(grid.coord(k));
                    let mut out = vec![0i32; block.iter().product()];
                    paint_block(&o, &ids, shape, origin, block, &mut out).unwrap();
                    out[0]
                })
                .sum::<i32>()
        })
    });
    g.bench_function("paint_volume", |b| {
        let mut out = vec![0i32; n * n * n];
        b.iter(|| paint_volume(&o, &ids, shape, &mut out).unwrap())
    });
    g.bench_function("rle_paint_serial", |b| {
        let mut out = vec![0i32; n * n * n];
        b.iter(|| rle::paint(&ids, &o.offsets, &o.starts, &o.runs, &mut out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
