//! The writer alone: realistic rows (paths in an Artist/Album layout, tags, content and
//! metadata hashes, a few errors) through the real schema and its indexes into a real
//! SQLite file, no engine. `MUSICDEX_WRITER_ROWS` sets the rows per iteration (default
//! 1M, the scale; the target is >= 250k rows/s into the full schema).
//!
//! first_load: into an empty index, secondary indexes built after the rows (the
//!   default) and kept throughout (`defer_indexes: false`), to show what deferring buys.
//! reread: every row of a full index read again (UPDATE by id).
//! unchanged: every row confirmed unchanged: no row is written.
//! sqlite_floor: the least SQLite itself does for the same rows into the same schema,
//!   whoever writes them: the rows of a full index copied by one `INSERT ... SELECT`
//!   (no binding, no statement per row, one commit) into an empty index whose secondary
//!   indexes were dropped, then the same five builds a first load runs. No writer can
//!   beat it on this machine; the first_load figure is read against it.
//!
//! The figure is the writer's busy time (wall time inside transactions and index
//! builds); `MUSICDEX_WRITER_CLOCK=cpu` reports the writer thread's CPU time instead,
//! which a machine shared with other work disturbs far less. `MUSICDEX_SQLITE_MEMSTATUS=1`
//! keeps SQLite's memory statistics on (the library default; the binary turns them off),
//! to measure what turning them off buys.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use musicdex::media::FileRecord;
use musicdex::media::record::Stat;
use musicdex::media::tags::TagInfo;
use musicdex::store::writer::{Change, Writer, WriterOptions};
use musicdex::store::{self, Known, schema};

fn rows() -> usize {
    std::env::var("MUSICDEX_WRITER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

const ROOT: &str = "/srv/music";

/// Row `i` of a library of 12-track albums by 40-album artists; `round` varies what
/// a re-read finds (hashes, sizes) without moving the path.
fn record(i: usize, round: u64) -> FileRecord {
    let mut rng = fastrand::Rng::with_seed(i as u64 ^ (round << 40));
    let (artist, album, track) = (i / 480, i / 12, i % 12 + 1);
    let ext = ["mp3", "flac", "m4a", "ogg", "opus"][rng.usize(..5)];
    let title = format!("Song {i} of the {} Collection", rng.u32(..1000));
    let path = PathBuf::from(format!(
        "{ROOT}/Artist {artist:05}/Album {album:07} ({})/{track:02} {title}.{ext}",
        1960 + rng.u32(..60)
    ));
    let hex = |rng: &mut fastrand::Rng| format!("{:016x}{:016x}", rng.u64(..), rng.u64(..));
    FileRecord {
        stat: Stat {
            size: rng.u64(2_000_000..60_000_000),
            mtime_ns: 1_600_000_000_000_000_000 + rng.i64(..100_000_000_000_000_000),
        },
        content_hash: Some(hex(&mut rng)),
        // As real files: the audio payload of nearly every file is found and hashed
        // (fixtures 30 of 31, the shared corpus 113 of 133), so its index is as full as
        // the others.
        audio_hash: (rng.u32(..20) != 0).then(|| hex(&mut rng)),
        audio_len: Some(rng.u64(1_000_000..50_000_000)),
        metadata_hash: hex(&mut rng),
        tags: TagInfo {
            artist: Some(format!("Artist {artist:05}")),
            title: Some(title),
            album: Some(format!("Album {album:07}")),
            album_artist: rng.bool().then(|| format!("Artist {artist:05}")),
            track_number: Some(track as u32),
            year: Some(1960 + rng.i32(..60)),
            genre: Some(["Rock", "Jazz", "Electronic", "Folk"][rng.usize(..4)].into()),
            duration: Some(rng.f64() * 400.0),
            bitrate: Some(128 + rng.u32(..1300)),
            sample_rate: Some(44_100),
            channels: Some(2),
        },
        format: ext.into(),
        error: (rng.u32(..1000) == 0).then(|| {
            musicdex::media::problem::Problem::tags("tags: truncated frame".into()).into()
        }),
        path,
    }
}

/// The order rows reach the writer: folder by folder as the walk lists them, and the
/// folders in no sorted order (getdents returns an ext4 directory in hash order, and
/// parallel walkers interleave), so the unique path key takes inserts all over its tree.
fn walk_order(n: usize) -> Vec<usize> {
    let mut albums: Vec<usize> = (0..n.div_ceil(12)).collect();
    fastrand::Rng::with_seed(3).shuffle(&mut albums);
    albums
        .into_iter()
        .flat_map(|a| a * 12..(a * 12 + 12).min(n))
        .collect()
}

fn fresh(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn cpu_clock() -> bool {
    std::env::var_os("MUSICDEX_WRITER_CLOCK").is_some_and(|v| v == "cpu")
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Push `n` changes made by `make` through a real writer; returns its busy time (inside
/// transactions and building deferred indexes), not the time spent waiting for rows, or
/// with `MUSICDEX_WRITER_CLOCK=cpu` the CPU time of the writer's thread.
fn write(
    db: &Path,
    n: usize,
    opts: WriterOptions,
    make: impl Fn(usize) -> Change + Send,
) -> Duration {
    let order = walk_order(n);
    let conn = store::open(db).expect("open");
    let writer = Writer::new(conn, opts, Arc::new(AtomicU64::new(0))).expect("writer");
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Change>>(64);
    let cpu_before = thread_cpu();
    let (conn, report, _) = std::thread::scope(|s| {
        s.spawn(move || {
            for chunk in order.chunks(256) {
                tx.send(chunk.iter().map(|&i| make(i)).collect())
                    .expect("send");
            }
        });
        writer.run(rx).expect("writer run")
    });
    let cpu = thread_cpu() - cpu_before;
    drop(conn);
    assert!(report.rows_written as usize <= n);
    if cpu_clock() { cpu } else { report.busy }
}

/// SQLite's floor for the rows of the full index `src` (see the module's head): the copy
/// and the builds, each timed.
fn sqlite_floor(src: &Path, dst: &Path) -> (Duration, Duration) {
    fresh(dst);
    let conn = store::open(dst).expect("open");
    schema::drop_secondary_indexes(&conn).expect("drop the indexes");
    // As a first load writes: a rollback journal, synchronous=FULL (`Writer::new`).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))
        .expect("journal");
    assert_eq!(mode, "truncate");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.execute("ATTACH ?1 AS src", [src.to_str().expect("utf-8 path")])
        .expect("attach");
    let started = std::time::Instant::now();
    conn.execute_batch(
        "BEGIN IMMEDIATE;
        INSERT INTO main.library_index SELECT * FROM src.library_index;
        COMMIT;",
    )
    .expect("copy");
    let copy = started.elapsed();
    conn.execute_batch("DETACH src").expect("detach");
    let started = std::time::Instant::now();
    schema::restore_secondary_indexes(&conn).expect("builds");
    let builds = started.elapsed();
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM pending_indexes", [], |r| r.get(0))
        .expect("pending");
    assert_eq!(pending, 0);
    (copy, builds)
}

fn load(db: &Path) -> Known {
    let conn = store::open(db).expect("open");
    Known::load(&conn, &[PathBuf::from(ROOT)]).expect("load")
}

fn bench(c: &mut Criterion) {
    // Before the first connection, as the binary does at the start of `main`.
    if std::env::var_os("MUSICDEX_SQLITE_MEMSTATUS").is_none_or(|v| v != "1") {
        assert!(
            store::configure_process(),
            "SQLite was initialised before the bench"
        );
    }
    let n = rows();
    let tmp =
        tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/tmp".into())).expect("tempdir");
    let db = tmp.path().join("w.db");
    let mut g = c.benchmark_group("writer");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(n as u64));

    for (name, defer) in [("first_load", true), ("first_load_indexed", false)] {
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fresh(&db);
                    let opts = WriterOptions {
                        defer_indexes: defer,
                        ..Default::default()
                    };
                    total += write(&db, n, opts, |i| Change::Record {
                        record: Box::new(record(i, 0)),
                        known: None,
                    });
                }
                total
            })
        });
    }

    // A full index to re-read and confirm.
    fresh(&db);
    write(&db, n, WriterOptions::default(), |i| Change::Record {
        record: Box::new(record(i, 0)),
        known: None,
    });
    let known = load(&db);
    assert_eq!(known.len(), n);

    let floor_db = tmp.path().join("floor.db");
    let mut best: Option<(Duration, Duration)> = None;
    g.bench_function(BenchmarkId::new("sqlite_floor", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (copy, builds) = sqlite_floor(&db, &floor_db);
                if best.is_none_or(|(c, b)| copy + builds < c + b) {
                    best = Some((copy, builds));
                }
                total += copy + builds;
            }
            total
        })
    });
    if let Some((copy, builds)) = best {
        eprintln!(
            "writer/sqlite_floor/{n}: best {:.2} s = copy {:.2} s + five builds {:.2} s",
            (copy + builds).as_secs_f64(),
            copy.as_secs_f64(),
            builds.as_secs_f64()
        );
    }
    fresh(&floor_db);
    let mut round = 0;
    g.bench_function(BenchmarkId::new("reread", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let known = &known;
                total += write(&db, n, WriterOptions::default(), move |i| {
                    let r = record(i, round);
                    let mut again = record(i, 0);
                    again.stat = r.stat;
                    again.content_hash = r.content_hash;
                    let k = known.get(&again.path).copied();
                    assert!(k.is_some());
                    Change::Record {
                        record: Box::new(again),
                        known: k,
                    }
                });
            }
            total
        })
    });
    g.bench_function(BenchmarkId::new("unchanged", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let known = &known;
                total += write(&db, n, WriterOptions::default(), move |i| {
                    Change::Unchanged {
                        known: *known.get(&record(i, 0).path).expect("known"),
                    }
                });
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
