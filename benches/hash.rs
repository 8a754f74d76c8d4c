//! The content hash: the scalar MD5 of one head+tail (what the reference engine does per
//! file) against eight at once in AVX2 lanes, and sixteen at once in AVX-512 lanes (what
//! the parallel engines do, on a CPU that has it), over the same sixteen files.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use musicdex::media::md5x8::{self, Parts};

fn content_hash(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..16)
        .map(|_| {
            let head = (0..65_536).map(|_| rng.u8(..)).collect();
            let tail = (0..65_536).map(|_| rng.u8(..)).collect();
            (head, tail)
        })
        .collect();
    let msgs: Vec<Parts> = files.iter().map(|(h, t)| [&h[..], &t[..]]).collect();
    let mut group = c.benchmark_group("content_hash_16_files");
    group.throughput(Throughput::Bytes(16 * 131_072));
    group.bench_function("scalar", |b| {
        b.iter(|| msgs.iter().map(md5x8::digest_one).collect::<Vec<_>>())
    });
    if md5x8::available() {
        group.bench_function("eight_lanes", |b| {
            b.iter(|| {
                msgs.chunks(8)
                    .flat_map(|m| md5x8::digest_many(black_box(m)))
                    .collect::<Vec<_>>()
            })
        });
        if md5x8::available16() {
            group.bench_function("sixteen_lanes", |b| {
                b.iter(|| md5x8::digest_many(black_box(&msgs)))
            });
        } else {
            eprintln!("content_hash: no AVX-512F on this CPU; sixteen lanes not measured");
        }
    } else {
        eprintln!("content_hash: no AVX2 on this CPU; the eight-lane path is not measured");
    }
    group.finish();
}

criterion_group!(benches, content_hash);
criterion_main!(benches);
