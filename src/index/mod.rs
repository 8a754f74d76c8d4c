//! One `musicdex index` run: what the index knows, the engine, the writer, the run log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rusqlite::params;
use serde::Serialize;

use crate::engine::{self, CHANNEL_BATCHES, Counters, EngineContext, EngineKind};
use crate::scan::WalkOptions;
use crate::store::writer::{
    MaxRemoved, Writer, WriterOptions, mark_inactive, missing_candidates, record_scope,
    removal_policy,
};
use crate::store::{self, Known, now_rfc3339};

mod progress;
mod report;
mod runs;

use progress::progress_loop;
pub use report::{Usage, print_summary, rusage};
use runs::{RunGuard, record_devices, root_states};
pub use runs::{close_abandoned_runs, process_alive};

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
    /// The most of a root's rows one run may mark removed.
    pub max_removed: MaxRemoved,
    /// Ends the run cleanly when set (the binary routes SIGINT/SIGTERM/SIGHUP to it).
    pub stop: &'static engine::StopFlag,
    /// Ring tuning overrides, for measuring.
    pub uring: engine::uring::Tuning,
    /// What one file's tag parse may cost (`--max-tag-bytes`).
    pub limits: crate::media::budget::Limits,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub files_found: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// Files found under a new path that kept their row: moved or renamed in this run,
    /// or back after an earlier run marked them removed (see `store::moves`). Not
    /// counted in `added` or `removed`.
    pub moved: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub files_per_sec: f64,
    pub engine: &'static str,
    pub threads: usize,
    pub db: String,
    /// One line per root whose missing files were not marked removed (unmounted, moved
    /// to another device, or more gone than `--max-removed` allows); the run exits 1.
    pub removal_refused: Vec<String>,
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
    /// A first load into an empty index (its secondary indexes built after the rows):
    /// the journal it wrote through, `rollback`, or `wal` when another connection had the
    /// index open. Absent for a run into an index that held rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_load_journal: Option<&'static str>,
    pub files_read: u64,
    pub bytes_read: u64,
    /// Of `bytes_read`, what the audio hash read beyond the head and tail (threads and
    /// uring; the sequential engine reads by the reference path and counts none), and
    /// per file read.
    pub audio_extra_bytes: u64,
    pub audio_extra_bytes_per_file: f64,
    pub ring_ops: u64,
    pub user_cpu_secs: f64,
    pub sys_cpu_secs: f64,
    /// (user + sys) / (wall × cores available): 1.0 means every core busy all run.
    pub cpu_utilisation: f64,
    pub peak_rss_mb: f64,
    pub walk_errors: u64,
}

/// The roots of a run by the identity rules: real paths, repeated and nested roots merged
/// (see [`crate::scan::identity`]).
pub fn normalise_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    crate::scan::identity::resolve_roots(roots)
}

pub fn run(opts: &IndexOptions) -> Result<Summary> {
    let started = Instant::now();
    let rusage_start = rusage();
    let roots = normalise_roots(&opts.roots)?;
    let conn = store::open(&opts.db)?;
    close_abandoned_runs(&conn)?;
    let roots_text = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    conn.execute(
        "INSERT INTO index_runs (started_at, roots, engine, status, pid)
         VALUES (?1, ?2, ?3, 'running', ?4)",
        params![
            now_rfc3339(),
            roots_text,
            opts.engine.name(),
            std::process::id()
        ],
    )
    .with_context(|| format!("cannot write to database {}", opts.db.display()))?;
    let run_id = conn.last_insert_rowid();
    // Whatever ends this function early (an error, a panic) logs the run as failed.
    let mut guard = RunGuard {
        db: &opts.db,
        run_id,
        logged: false,
    };

    let known = Known::load(&conn, &roots)?;
    // Rows this run inserts have larger ids: the move pairing looks only at those.
    let last_id_before: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) FROM library_index", [], |r| {
            r.get(0)
        })?;
    let load_secs = started.elapsed().as_secs_f64();

    let counters = Counters::default();
    let written = Arc::new(AtomicU64::new(0));
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_BATCHES);
    let writer = Writer::new(conn, opts.writer.clone(), written.clone())?;
    let scan_started = Instant::now();

    let done = AtomicBool::new(false);
    let (engine_result, writer_result) = std::thread::scope(|s| {
        let writer = match std::thread::Builder::new()
            .name("musicdex-writer".into())
            .spawn_scoped(s, move || writer.run(rx))
        {
            Ok(w) => w,
            Err(e) => {
                let e = anyhow::anyhow!("cannot start the database writer thread: {e}");
                return (Err(e), None);
            }
        };
        if opts.progress {
            // A progress line is a nicety: no thread for it, no progress line.
            let _ = std::thread::Builder::new()
                .name("musicdex-progress".into())
                .spawn_scoped(s, || {
                    // The files the index holds under these roots: the likely total until
                    // the walk has listed everything.
                    let expected = known.iter().filter(|(_, k)| k.active).count() as u64;
                    progress_loop(&counters, &written, &done, expected, opts.stop)
                });
        }
        let ctx = EngineContext {
            roots: &roots,
            walk: &opts.walk,
            known: &known,
            full: opts.full,
            threads: opts.threads.max(1),
            counters: &counters,
            stop: opts.stop,
            uring: opts.uring,
            limits: opts.limits,
        };
        let engine_result = engine::run(opts.engine, &ctx, tx);
        let writer_result = writer.join();
        done.store(true, Ordering::Relaxed);
        (engine_result, Some(writer_result))
    });
    let writer_result = match writer_result {
        Some(Ok(r)) => r,
        Some(Err(_)) => bail!("the database writer panicked"),
        None => {
            return Err(engine_result
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("no writer")));
        }
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
                "UPDATE index_runs SET finished_at = ?1, status = ?2, added = ?3,
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
    let candidates = missing_candidates(&known, &seen, &problems.skipped_dirs, &opts.walk.filter);
    let moves = store::moves::resolve(&mut conn, candidates, last_id_before, &roots)?;
    let moved = moves.moved + moves.reactivated;
    let candidates = moves.missing;
    let mut report = report;
    report.added = report.added.saturating_sub(moved);
    let root_states = root_states(&conn, &roots, &known, &candidates)?;
    let decision = removal_policy(candidates, &root_states, opts.max_removed);
    mark_inactive(&mut conn, &decision.remove)?;
    let removed = decision.remove.len() as u64;
    record_devices(&conn, &root_states, &decision.accepted_roots, run_id)?;
    record_scope(&mut conn, run_id, &roots, &problems.skipped_dirs)?;
    let elapsed = started.elapsed().as_secs_f64();
    let found = counters.found.load(Ordering::Relaxed);
    let errors = report.errors + problems.errors;
    store::writer::record_library_stats(&conn, elapsed)?;
    conn.execute(
        "UPDATE index_runs SET finished_at = ?1, duration_secs = ?2, status = 'complete',
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
    guard.logged = true;
    // Fold the WAL back so the database file alone is the index when we exit. Not at the
    // price of waiting for a reader (the whole busy timeout, 30 s, for one that keeps a
    // read open): a WAL that could not be folded now is folded by the next writer.
    let _ = store::without_waiting(&conn, |c| {
        c.pragma_update(None, "wal_checkpoint", "TRUNCATE")
    });
    let finish_secs = finish_started.elapsed().as_secs_f64();

    let usage = rusage().since(&rusage_start);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(Summary {
        files_found: found,
        added: report.added,
        updated: report.updated,
        unchanged: report.unchanged,
        removed,
        moved,
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
        removal_refused: decision.refused,
        metrics: Metrics {
            load_secs,
            scan_secs,
            write_busy_secs: report.busy.as_secs_f64(),
            rows_written: report.rows_written,
            finish_secs,
            transactions: report.transactions,
            first_load_journal: report
                .deferred_indexes
                .then_some(if report.rollback_journal {
                    "rollback"
                } else {
                    "wal"
                }),
            files_read: counters.read.load(Ordering::Relaxed),
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            audio_extra_bytes: counters.audio_bytes.load(Ordering::Relaxed),
            audio_extra_bytes_per_file: counters.audio_bytes.load(Ordering::Relaxed) as f64
                / counters.read.load(Ordering::Relaxed).max(1) as f64,
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

pub fn db_path_or_default(db: Option<&Path>) -> Result<PathBuf> {
    match db {
        Some(p) => Ok(p.to_path_buf()),
        None => store::default_db_path(),
    }
}
