//! The content hash: the scalar MD5 of one head+tail (what the reference engine does per
//! file) against eight at once in AVX2 lanes (what the parallel engines do).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use musicdex::media::md5x8::{self, Parts};

fn content_hash(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..8)
        .map(|_| {
            let head = (0..65_536).map(|_| rng.u8(..)).collect();
            let tail = (0..65_536).map(|_| rng.u8(..)).collect();
            (head, tail)
        })
        .collect();
    let msgs: Vec<Parts> = files.iter().map(|(h, t)| [&h[..], &t[..]]).collect();
    let mut group = c.benchmark_group("content_hash_8_files");
    group.throughput(Throughput::Bytes(8 * 131_072));
    group.bench_function("scalar", |b| {
        b.iter(|| msgs.iter().map(md5x8::digest_one).collect::<Vec<_>>())
    });
    if md5x8::available() {
        group.bench_function("eight_lanes", |b| {
            b.iter(|| md5x8::digest_many(black_box(&msgs)))
        });
    } else {
        eprintln!("content_hash: no AVX2 on this CPU; the eight-lane path is not measured");
    }
    group.finish();
}

criterion_group!(benches, content_hash);
criterion_main!(benches);
