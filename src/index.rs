//! One `musicdex index` run: what the index knows, the engine, the writer, the run log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::params;
use serde::Serialize;

use crate::engine::{self, CHANNEL_BATCHES, Counters, EngineContext, EngineKind};
use crate::scan::WalkOptions;
use crate::store::writer::{Writer, WriterOptions, mark_missing, record_scope};
use crate::store::{self, Known, now_rfc3339};

#[derive(Clone, Debug)]
pub struct IndexOptions {
    pub roots: Vec<PathBuf>,
    pub db: PathBuf,
    pub engine: EngineKind,
    pub full: bool,
    pub walk: WalkOptions,
    pub threads: usize,
    pub progress: bool,
    pub writer: WriterOptions,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub files_found: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub files_per_sec: f64,
    pub engine: &'static str,
    pub threads: usize,
    pub db: String,
    pub metrics: Metrics,
}

/// Where the time and the machine went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    /// Loading what the index already holds.
    pub load_secs: f64,
    /// Walking, reading, hashing and parsing (the engine), overlapping the writer.
    pub scan_secs: f64,
    /// Time the writer spent inside transactions.
    pub write_busy_secs: f64,
    /// Rows the writer inserted or updated (none for an unchanged library).
    pub rows_written: u64,
    /// Marking vanished files and logging the run.
    pub finish_secs: f64,
    pub transactions: u64,
    pub files_read: u64,
    pub bytes_read: u64,
    pub ring_ops: u64,
    pub user_cpu_secs: f64,
    pub sys_cpu_secs: f64,
    /// (user + sys) / (wall × cores available): 1.0 means every core busy all run.
    pub cpu_utilisation: f64,
    pub peak_rss_mb: f64,
    pub walk_errors: u64,
}

/// Absolute, normalised roots without resolving symlinks: the paths the user gave are
/// the paths stored.
pub fn normalise_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for r in roots {
        if std::fs::symlink_metadata(r).is_err() {
            bail!("library path {} does not exist", r.display());
        }
        let abs =
            std::path::absolute(r).with_context(|| format!("cannot resolve {}", r.display()))?;
        let mut clean = PathBuf::new();
        for c in abs.components() {
            match c {
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                std::path::Component::CurDir => {}
                other => clean.push(other),
            }
        }
        out.push(clean);
    }
    Ok(out)
}

pub fn run(opts: &IndexOptions) -> Result<Summary> {
    let started = Instant::now();
    let rusage_start = rusage();
    let roots = normalise_roots(&opts.roots)?;
    let conn = store::open(&opts.db)?;
    let roots_text = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    conn.execute(
        "INSERT INTO library_stats (started_at, roots, engine, status) VALUES (?1, ?2, ?3, 'running')",
        params![now_rfc3339(), roots_text, opts.engine.name()],
    )
    .with_context(|| format!("cannot write to database {}", opts.db.display()))?;
    let run_id = conn.last_insert_rowid();

    let known = Known::load(&conn, &roots)?;
    engine::install_sigint_handler();
    let load_secs = started.elapsed().as_secs_f64();

    let counters = Counters::default();
    let written = Arc::new(AtomicU64::new(0));
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_BATCHES);
    let writer = Writer::new(conn, opts.writer.clone(), written.clone())?;
    let scan_started = Instant::now();

    let done = AtomicBool::new(false);
    let (engine_result, writer_result) = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("musicdex-writer".into())
            .spawn_scoped(s, move || writer.run(rx))
            .expect("spawn writer thread");
        if opts.progress {
            s.spawn(|| progress_loop(&counters, &written, &done));
        }
        let ctx = EngineContext {
            roots: &roots,
            walk: &opts.walk,
            known: &known,
            full: opts.full,
            threads: opts.threads.max(1),
            counters: &counters,
        };
        let engine_result = engine::run(opts.engine, &ctx, tx);
        let writer_result = writer.join();
        done.store(true, Ordering::Relaxed);
        (engine_result, writer_result)
    });
    let writer_result = match writer_result {
        Ok(r) => r,
        Err(_) => bail!("the database writer panicked"),
    };
    // A writer error explains an engine's "writer stopped", so report it first.
    let (mut conn, report, seen) = writer_result?;
    let (problems, engine_used) = match engine_result {
        Ok(p) => p,
        Err(e) => {
            // Whatever the writer committed stays; nothing is marked missing from a
            // partial walk.
            let status = if e.is::<engine::Interrupted>() {
                "interrupted"
            } else {
                "failed"
            };
            let _ = conn.execute(
                "UPDATE library_stats SET finished_at = ?1, status = ?2, added = ?3,
                    updated = ?4, unchanged = ?5, errors = ?6 WHERE id = ?7",
                params![
                    now_rfc3339(),
                    status,
                    report.added as i64,
                    report.updated as i64,
                    report.unchanged as i64,
                    report.errors as i64,
                    run_id
                ],
            );
            return Err(e);
        }
    };
    let scan_secs = scan_started.elapsed().as_secs_f64();

    let finish_started = Instant::now();
    let removed = mark_missing(&mut conn, &known, &seen, &problems.skipped_dirs)?;
    record_scope(&mut conn, run_id, &roots, &problems.skipped_dirs)?;
    let elapsed = started.elapsed().as_secs_f64();
    let found = counters.found.load(Ordering::Relaxed);
    let errors = report.errors + problems.errors;
    conn.execute(
        "UPDATE library_stats SET finished_at = ?1, duration_secs = ?2, status = 'complete',
            files_found = ?3, added = ?4, updated = ?5, unchanged = ?6, removed = ?7, errors = ?8,
            engine = ?10
         WHERE id = ?9",
        params![
            now_rfc3339(),
            elapsed,
            found as i64,
            report.added as i64,
            report.updated as i64,
            report.unchanged as i64,
            removed as i64,
            errors as i64,
            run_id,
            engine_used.name()
        ],
    )?;
    // Fold the WAL back so the database file alone is the index when we exit.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
    let finish_secs = finish_started.elapsed().as_secs_f64();

    let usage = rusage().since(&rusage_start);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(Summary {
        files_found: found,
        added: report.added,
        updated: report.updated,
        unchanged: report.unchanged,
        removed,
        errors,
        elapsed_secs: elapsed,
        files_per_sec: if elapsed > 0.0 {
            found as f64 / elapsed
        } else {
            0.0
        },
        engine: engine_used.name(),
        threads: opts.threads,
        db: opts.db.display().to_string(),
        metrics: Metrics {
            load_secs,
            scan_secs,
            write_busy_secs: report.busy.as_secs_f64(),
            rows_written: report.rows_written,
            finish_secs,
            transactions: report.transactions,
            files_read: counters.read.load(Ordering::Relaxed),
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            ring_ops: counters.ring_ops.load(Ordering::Relaxed),
            user_cpu_secs: usage.user,
            sys_cpu_secs: usage.sys,
            cpu_utilisation: if elapsed > 0.0 {
                (usage.user + usage.sys) / (elapsed * cores)
            } else {
                0.0
            },
            peak_rss_mb: usage.max_rss_kb as f64 / 1024.0,
            walk_errors: problems.errors,
        },
    })
}

fn progress_loop(counters: &Counters, written: &AtomicU64, done: &AtomicBool) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    while !done.load(Ordering::Relaxed) {
        let found = counters.found.load(Ordering::Relaxed);
        let read = counters.read.load(Ordering::Relaxed);
        let w = written.load(Ordering::Relaxed);
        bar.set_message(format!("{found} found · {read} read · {w} written"));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub user: f64,
    pub sys: f64,
    pub max_rss_kb: i64,
}

impl Usage {
    fn since(&self, start: &Usage) -> Usage {
        Usage {
            user: self.user - start.user,
            sys: self.sys - start.sys,
            max_rss_kb: self.max_rss_kb,
        }
    }
}

/// CPU time and peak RSS of this process so far.
pub fn rusage() -> Usage {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    }
}

pub fn print_summary(s: &Summary, metrics: bool) {
    println!(
        "{} files found: {} added, {} updated, {} unchanged, {} removed, {} errors",
        s.files_found, s.added, s.updated, s.unchanged, s.removed, s.errors
    );
    println!(
        "{:.2}s, {:.0} files/s ({} engine, {} threads) → {}",
        s.elapsed_secs, s.files_per_sec, s.engine, s.threads, s.db
    );
    if metrics {
        let m = &s.metrics;
        println!("  load index     {:>9.3}s", m.load_secs);
        println!("  scan (engine)  {:>9.3}s", m.scan_secs);
        println!(
            "  writer busy    {:>9.3}s in {} transactions, {} rows written",
            m.write_busy_secs, m.transactions, m.rows_written
        );
        println!("  finish         {:>9.3}s", m.finish_secs);
        println!("  files read     {:>9}", m.files_read);
        println!(
            "  bytes hashed   {:>9.1} MiB",
            m.bytes_read as f64 / 1048576.0
        );
        println!("  ring ops       {:>9}", m.ring_ops);
        println!(
            "  cpu            {:>9.2}s user + {:.2}s sys = {:.0}% of all cores",
            m.user_cpu_secs,
            m.sys_cpu_secs,
            m.cpu_utilisation * 100.0
        );
        println!("  peak rss       {:>9.1} MiB", m.peak_rss_mb);
    }
}

pub fn db_path_or_default(db: Option<&Path>) -> Result<PathBuf> {
    match db {
        Some(p) => Ok(p.to_path_buf()),
        None => store::default_db_path(),
    }
}
