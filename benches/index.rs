//! Indexing throughput of each engine on generated libraries (`--mix music`: sparse files
//! of 3–40 MB with real heads and tails, 60% with cover art), 1k and 10k files.
//!
//! warm: the library is in the page cache (one untimed run first); every iteration is a
//! full index into a fresh database. cold: the page cache is dropped before every
//! iteration, which needs root; otherwise the cold group says so and is skipped.
//! Ratios between engines are what matter: `ci/bench-gate` checks them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use musicdex::engine::EngineKind;
use musicdex::r#gen::{GenOptions, Mix, generate};
use musicdex::index::{self, IndexOptions};
use musicdex::scan::WalkOptions;
use musicdex::store::writer::WriterOptions;

const ENGINES: [EngineKind; 3] = [
    EngineKind::Sequential,
    EngineKind::Threads,
    EngineKind::Uring,
];

fn library(root: &Path, files: usize) -> PathBuf {
    let dir = root.join(format!("lib{files}"));
    generate(
        &dir,
        &GenOptions {
            files,
            seed: 11,
            mix: Mix::Music,
            threads: 0,
        },
    )
    .expect("generate library");
    dir
}

fn index_once(lib: &Path, db: &Path, engine: EngineKind) -> Duration {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let opts = IndexOptions {
        roots: vec![lib.to_path_buf()],
        db: db.to_path_buf(),
        engine,
        full: true,
        walk: WalkOptions::default(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        progress: false,
        writer: WriterOptions::default(),
        max_removed: Default::default(),
        stop: musicdex::engine::StopFlag::never(),
        uring: Default::default(),
        limits: Default::default(),
    };
    let started = Instant::now();
    let s = index::run(&opts).expect("index run");
    assert!(s.files_found > 0);
    started.elapsed()
}

fn can_drop_caches() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    root && std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

fn drop_caches() {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches");
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("bench.db");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for files in [1_000usize, 10_000] {
        let lib = library(tmp.path(), files);
        let mut warm = c.benchmark_group(format!("index/warm/{files}-music/{cores}-cores"));
        warm.sample_size(10);
        index_once(&lib, &db, EngineKind::Sequential);
        for engine in ENGINES {
            warm.bench_with_input(
                BenchmarkId::from_parameter(engine.name()),
                &engine,
                |b, &e| b.iter_custom(|iters| (0..iters).map(|_| index_once(&lib, &db, e)).sum()),
            );
        }
        warm.finish();

        if !can_drop_caches() {
            eprintln!("index/cold: skipped, dropping the page cache needs root");
            continue;
        }
        let mut cold = c.benchmark_group(format!("index/cold/{files}-music/{cores}-cores"));
        cold.sample_size(10);
        for engine in ENGINES {
            cold.bench_with_input(
                BenchmarkId::from_parameter(engine.name()),
                &engine,
                |b, &e| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                drop_caches();
                                index_once(&lib, &db, e)
                            })
                            .sum()
                    })
                },
            );
        }
        cold.finish();
    }
}

criterion_group!(index_benches, benches);
criterion_main!(index_benches);
