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
use crate::store::writer::{
    Candidate, MaxRemoved, RootState, Writer, WriterOptions, mark_inactive, missing_candidates,
    record_scope, removal_policy,
};
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
        "INSERT INTO library_stats (started_at, roots, engine, status, pid)
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
    let candidates = missing_candidates(&known, &seen, &problems.skipped_dirs, &opts.walk.filter);
    let root_states = root_states(&conn, &roots, &known, &candidates)?;
    let decision = removal_policy(candidates, &root_states, opts.max_removed);
    mark_inactive(&mut conn, &decision.remove)?;
    let removed = decision.remove.len() as u64;
    record_devices(&conn, &root_states, &decision.accepted_roots, run_id)?;
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
    guard.logged = true;
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
        removal_refused: decision.refused,
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

/// Logs the run as failed unless it was logged as something else first.
struct RunGuard<'a> {
    db: &'a Path,
    run_id: i64,
    /// The run's end is in the log already.
    logged: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.logged {
            return;
        }
        if let Ok(conn) = rusqlite::Connection::open(self.db) {
            let _ = conn.busy_timeout(Duration::from_secs(10));
            let _ = conn.execute(
                "UPDATE library_stats SET status = 'failed', finished_at = ?1
                 WHERE id = ?2 AND status = 'running'",
                params![now_rfc3339(), self.run_id],
            );
        }
    }
}

/// Whether the process that logged a run is still running (on this machine).
pub fn process_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i64::from(i32::MAX) {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Close the runs a crash or `kill -9` left `running`: their process is gone.
pub fn close_abandoned_runs(conn: &rusqlite::Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT id, pid FROM library_stats WHERE status = 'running'")?;
    let stale: Vec<i64> = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .filter_map(|r| r.ok())
        .filter(|(_, pid)| !pid.is_some_and(process_alive))
        .map(|(id, _)| id)
        .collect();
    for id in stale {
        conn.execute(
            "UPDATE library_stats SET status = 'abandoned' WHERE id = ?1",
            [id],
        )?;
    }
    Ok(())
}

/// Per root: its active rows, its device now and as recorded at its last run.
fn root_states(
    conn: &rusqlite::Connection,
    roots: &[PathBuf],
    known: &Known,
    candidates: &[Candidate],
) -> Result<Vec<RootState>> {
    use std::os::unix::fs::MetadataExt;
    let mut states: Vec<RootState> = roots
        .iter()
        .map(|r| RootState {
            path: r.clone(),
            active: 0,
            active_after: 0,
            device: std::fs::metadata(r).ok().map(|m| m.dev()),
            recorded_device: None,
        })
        .collect();
    let trees: Vec<store::Subtree> = roots.iter().map(|r| store::Subtree::new(r)).collect();
    for (path, k) in known.iter() {
        if !k.active {
            continue;
        }
        if let Some(i) = trees.iter().position(|t| t.contains(path)) {
            states[i].active += 1;
        }
    }
    let mut count = conn.prepare(
        "SELECT count(*) FROM library_index WHERE is_active = 1
             AND (path_bytes = ?1 OR (path_bytes >= ?2 AND path_bytes < ?3))",
    )?;
    // Counted only for a root that misses files: the steady state pays nothing.
    for (st, tree) in states.iter_mut().zip(&trees) {
        st.active_after = st.active;
        if !candidates.iter().any(|c| tree.contains(&c.path)) {
            continue;
        }
        let exact = crate::media::record::path_bytes(&st.path).to_vec();
        let (lo, hi) = store::subtree_range(&exact);
        st.active_after = count.query_row((&exact, &lo, &hi), |r| r.get::<_, i64>(0))? as u64;
    }
    let mut stmt = conn.prepare("SELECT device FROM library_roots WHERE path_bytes = ?1")?;
    for st in &mut states {
        st.recorded_device = stmt
            .query_row([crate::media::record::path_bytes(&st.path)], |r| {
                r.get::<_, i64>(0)
            })
            .ok()
            .map(|d| d as u64);
    }
    Ok(states)
}

/// Remember the device of every root whose removals went through.
fn record_devices(
    conn: &rusqlite::Connection,
    states: &[RootState],
    accepted: &[PathBuf],
    run_id: i64,
) -> Result<()> {
    for st in states {
        let Some(dev) = st.device else { continue };
        if !accepted.contains(&st.path) {
            continue;
        }
        conn.execute(
            "INSERT INTO library_roots (path_bytes, path, device, last_run) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(path_bytes) DO UPDATE SET device = excluded.device,
                 last_run = excluded.last_run",
            params![
                crate::media::record::path_bytes(&st.path),
                st.path.to_string_lossy(),
                dev as i64,
                run_id
            ],
        )?;
    }
    Ok(())
}

/// One line on stderr, redrawn 10 times a second: counts, rates over the last few
/// seconds, and once the walk is over (every file found) an estimate of the time left.
/// Cleared when the run ends, by success, error or a stop signal, so the final message
/// stands alone.
fn progress_loop(
    counters: &Counters,
    written: &AtomicU64,
    done: &AtomicBool,
    expected: u64,
    stop: &engine::StopFlag,
) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut rate = Rate::default();
    // A stop request clears the line at once, before the engines wind down and the
    // "interrupted" message is printed.
    while !done.load(Ordering::Relaxed) && stop.requested().is_none() {
        let found = counters.found.load(Ordering::Relaxed);
        let read = counters.read.load(Ordering::Relaxed);
        let bytes = counters.bytes_read.load(Ordering::Relaxed);
        let w = written.load(Ordering::Relaxed);
        // The total is known once the walk has listed everything; before, the last run's
        // count is an estimate (shown with `~`).
        let total = if counters.walk.done.load(Ordering::Relaxed) {
            Some((
                counters.walk.listed.load(Ordering::Relaxed).max(found),
                true,
            ))
        } else if expected > 0 {
            Some((expected.max(found), false))
        } else {
            None
        };
        bar.set_message(progress_message(found, read, w, bytes, total, &mut rate));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// Files and bytes per second over a sliding window of about five seconds, so the rate
/// follows the disk rather than averaging the whole run.
#[derive(Default)]
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64, u64)>,
}

impl Rate {
    fn push(&mut self, files: u64, bytes: u64) -> (f64, f64) {
        let now = Instant::now();
        self.samples.push_back((now, files, bytes));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_secs(5)
        {
            self.samples.pop_front();
        }
        let (t0, f0, b0) = self.samples[0];
        let secs = now.duration_since(t0).as_secs_f64();
        if secs < 0.2 {
            return (0.0, 0.0);
        }
        (
            (files - f0.min(files)) as f64 / secs,
            (bytes - b0.min(bytes)) as f64 / secs / 1048576.0,
        )
    }
}

fn progress_message(
    found: u64,
    read: u64,
    written: u64,
    bytes: u64,
    total: Option<(u64, bool)>,
    rate: &mut Rate,
) -> String {
    // The parallel engines count a file as found when they take it up (unchanged files
    // are never read), so `found` is the smooth measure of work done; the writer commits
    // in large transactions and moves in steps.
    let (fps, mibs) = rate.push(found, bytes);
    let mut msg = format!(
        "{found} found · {read} read · {written} saved · {fps:.0} files/s · {mibs:.1} MiB/s"
    );
    if let Some((total, exact)) = total
        && fps > 0.0
    {
        let left = total.saturating_sub(found) as f64 / fps;
        let approx = if exact { "" } else { "~" };
        msg.push_str(&format!(" · ETA {approx}{}", short_duration(left)));
    }
    msg
}

/// `1h02m`, `3m05s`, `12s`: short, so the line fits an 80-column terminal.
fn short_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
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

/// The summary as text. Written to `out` (not printed) so a closed pipe is an error the
/// caller can end on quietly.
pub fn print_summary(
    s: &Summary,
    metrics: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} files found: {} added, {} updated, {} unchanged, {} removed, {} errors",
        s.files_found, s.added, s.updated, s.unchanged, s.removed, s.errors
    )?;
    writeln!(
        out,
        "{:.2}s, {:.0} files/s ({} engine, {} threads) → {}",
        s.elapsed_secs,
        s.files_per_sec,
        s.engine,
        s.threads,
        crate::text::escape_control(&s.db)
    )?;
    if metrics {
        let m = &s.metrics;
        writeln!(out, "  load index         {:>9.3}s", m.load_secs)?;
        writeln!(out, "  walk+read+parse    {:>9.3}s", m.scan_secs)?;
        writeln!(
            out,
            "  writer busy        {:>9.3}s in {} transactions, {} rows written",
            m.write_busy_secs, m.transactions, m.rows_written
        )?;
        writeln!(out, "  mark removed, log  {:>9.3}s", m.finish_secs)?;
        writeln!(out, "  files opened       {:>9}", m.files_read)?;
        // Head and tail for the hash plus the tag blocks the parser asked for: what was
        // read from disk, more than the bytes that went through MD5.
        writeln!(
            out,
            "  bytes read         {:>9.1} MiB",
            m.bytes_read as f64 / 1048576.0
        )?;
        writeln!(out, "  io_uring ops       {:>9}", m.ring_ops)?;
        writeln!(
            out,
            "  cpu                {:>9.2}s user + {:.2}s sys = {:.0}% of all cores",
            m.user_cpu_secs,
            m.sys_cpu_secs,
            m.cpu_utilisation * 100.0
        )?;
        writeln!(out, "  peak memory (rss)  {:>9.1} MiB", m.peak_rss_mb)?;
    }
    Ok(())
}

pub fn db_path_or_default(db: Option<&Path>) -> Result<PathBuf> {
    match db {
        Some(p) => Ok(p.to_path_buf()),
        None => store::default_db_path(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_text() {
        assert_eq!(short_duration(0.4), "0s");
        assert_eq!(short_duration(59.4), "59s");
        assert_eq!(short_duration(185.0), "3m05s");
        assert_eq!(short_duration(3725.0), "1h02m");
        let mut rate = Rate::default();
        let first = progress_message(10, 5, 0, 1 << 20, Some((100, false)), &mut rate);
        // No rate from a single sample, hence no ETA yet.
        assert_eq!(first, "10 found · 5 read · 0 saved · 0 files/s · 0.0 MiB/s");
        std::thread::sleep(Duration::from_millis(250));
        let later = progress_message(60, 40, 0, 6 << 20, Some((100, false)), &mut rate);
        assert!(later.contains(" · ETA ~"), "{later}");
        let exact = progress_message(60, 40, 0, 6 << 20, Some((100, true)), &mut rate);
        assert!(exact.contains(" · ETA ") && !exact.contains('~'), "{exact}");
        let none = progress_message(60, 40, 0, 6 << 20, None, &mut rate);
        assert!(!none.contains("ETA"), "{none}");
    }
}
