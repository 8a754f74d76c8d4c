//! The single writer: every row of a run goes through one connection, in large
//! transactions with prepared statements, so SQLite is never the bottleneck and a killed
//! run leaves only whole batches behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::Receiver;
use rusqlite::{Connection, params};

use super::{Known, KnownFile, Seen, now_rfc3339, schema, subtree_range};
use crate::media::FileRecord;
use crate::media::record::path_bytes;

/// What an engine tells the writer about one file.
#[derive(Debug)]
pub enum Change {
    /// The file was read; `known` is what the index held before, if anything.
    Record {
        record: Box<FileRecord>,
        known: Option<KnownFile>,
    },
    /// Size and mtime match the index: the run saw it, and an active row needs no write
    /// (the run's scope in `run_scope` is the evidence; see `library_verified`).
    Unchanged { known: KnownFile },
}

#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Rows per transaction.
    pub batch_rows: usize,
    /// A transaction is also committed after this long, so an interrupted run keeps
    /// nearly all of its work.
    pub max_batch_age: Duration,
    /// The replaced tool's pipeline (one transaction per file, rollback journal,
    /// synchronous=FULL); only benchmarks use it, as the baseline it is.
    pub legacy_per_file_commit: bool,
    /// Into an empty index, build the secondary indexes once after the rows are in
    /// (one sorted build instead of a million random inserts).
    pub defer_indexes: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 4096,
            max_batch_age: Duration::from_secs(2),
            legacy_per_file_commit: false,
            defer_indexes: true,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct WriterReport {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub errors: u64,
    pub transactions: u64,
    pub busy: Duration,
    /// Rows inserted or updated: zero for a re-index of an unchanged library.
    pub rows_written: u64,
    /// Secondary indexes were dropped for a first load and built after it.
    pub deferred_indexes: bool,
}

/// A file the index did not hold when the run started.
const INSERT: &str = "INSERT INTO library_index (
        path_bytes, file_path, filename, artist, title, album, album_artist, track_number,
        year, genre, duration, bitrate, sample_rate, channels, file_format, file_size,
        file_mtime, file_content_hash, metadata_hash, indexed_at, last_verified, is_active,
        error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?20, 1, ?21)";

/// The same, should another process have indexed the path since the run loaded what the
/// index knew: the row is replaced, never duplicated, and the run goes on.
const UPSERT_SUFFIX: &str = " ON CONFLICT(path_bytes) DO UPDATE SET
        file_path = excluded.file_path, filename = excluded.filename,
        artist = excluded.artist, title = excluded.title, album = excluded.album,
        album_artist = excluded.album_artist, track_number = excluded.track_number,
        year = excluded.year, genre = excluded.genre, duration = excluded.duration,
        bitrate = excluded.bitrate, sample_rate = excluded.sample_rate,
        channels = excluded.channels, file_format = excluded.file_format,
        file_size = excluded.file_size, file_mtime = excluded.file_mtime,
        file_content_hash = excluded.file_content_hash,
        metadata_hash = excluded.metadata_hash, indexed_at = excluded.indexed_at,
        last_verified = excluded.last_verified, is_active = 1, error = excluded.error";

/// A file the index held, read again: by rowid, no lookup through the path key, and the
/// path columns left alone (the row was found by that very path), so the unique path
/// index is not touched.
const UPDATE: &str = "UPDATE library_index SET
        artist = ?4, title = ?5, album = ?6,
        album_artist = ?7, track_number = ?8, year = ?9, genre = ?10, duration = ?11,
        bitrate = ?12, sample_rate = ?13, channels = ?14, file_format = ?15, file_size = ?16,
        file_mtime = ?17, file_content_hash = ?18, metadata_hash = ?19, indexed_at = ?20,
        last_verified = ?20, is_active = 1, error = ?21
    WHERE id = ?22";

/// An unchanged file that had been marked missing is back.
const REACTIVATE: &str = "UPDATE library_index SET last_verified = ?1, is_active = 1 WHERE id = ?2";

pub struct Writer {
    conn: Connection,
    opts: WriterOptions,
    report: WriterReport,
    seen: Seen,
    written: Arc<AtomicU64>,
}

impl Writer {
    pub fn new(conn: Connection, opts: WriterOptions, written: Arc<AtomicU64>) -> Result<Writer> {
        if opts.legacy_per_file_commit {
            // Python's sqlite3 defaults, which the replaced tool ran with: a rollback
            // journal and synchronous=FULL, committed after every file.
            let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
            anyhow::ensure!(
                mode.eq_ignore_ascii_case("delete"),
                "journal_mode stayed {mode}"
            );
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let mut report = WriterReport::default();
        if opts.defer_indexes && !opts.legacy_per_file_commit {
            let empty: bool =
                conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM library_index)", [], |r| {
                    r.get(0)
                })?;
            if empty {
                schema::drop_secondary_indexes(&conn)?;
                report.deferred_indexes = true;
            }
        }
        Ok(Writer {
            conn,
            opts,
            report,
            seen: Seen::default(),
            written,
        })
    }

    /// Drain the channel until every engine thread has hung up.
    pub fn run(mut self, rx: Receiver<Vec<Change>>) -> Result<(Connection, WriterReport, Seen)> {
        let now = now_rfc3339();
        let per_tx = if self.opts.legacy_per_file_commit {
            1
        } else {
            self.opts.batch_rows
        };
        let mut pending: Vec<Change> = Vec::with_capacity(per_tx);
        let mut oldest = Instant::now();
        loop {
            let timeout = self.opts.max_batch_age.saturating_sub(oldest.elapsed());
            match rx.recv_timeout(if pending.is_empty() {
                Duration::from_secs(3600)
            } else {
                timeout
            }) {
                Ok(batch) => {
                    if pending.is_empty() {
                        oldest = Instant::now();
                    }
                    for change in batch {
                        pending.push(change);
                        if pending.len() >= per_tx {
                            self.commit(&mut pending, &now)?;
                            oldest = Instant::now();
                        }
                    }
                    if !pending.is_empty() && oldest.elapsed() >= self.opts.max_batch_age {
                        self.commit(&mut pending, &now)?;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.commit(&mut pending, &now)?;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.commit(&mut pending, &now)?;
        if self.report.deferred_indexes {
            // Inside the writer's time: building them is part of what the load costs.
            let started = Instant::now();
            schema::restore_secondary_indexes(&self.conn)?;
            self.report.busy += started.elapsed();
        }
        Ok((self.conn, self.report, self.seen))
    }

    fn commit(&mut self, pending: &mut Vec<Change>, now: &str) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let n = pending.len() as u64;
        let tx = self.conn.transaction()?;
        let before = tx.total_changes();
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut update = tx.prepare_cached(UPDATE)?;
            let mut reactivate = tx.prepare_cached(REACTIVATE)?;
            for change in pending.drain(..) {
                match change {
                    Change::Record { record, known } => {
                        let r = &*record;
                        let t = &r.tags;
                        let path = r.path.to_string_lossy();
                        let filename = r.filename();
                        let size = r.stat.size as i64;
                        macro_rules! row {
                            ($($extra:expr),*) => {
                                params![
                                    path_bytes(&r.path), path, filename, t.artist, t.title,
                                    t.album, t.album_artist, t.track_number, t.year, t.genre,
                                    t.duration, t.bitrate, t.sample_rate, t.channels, r.format,
                                    size, r.stat.mtime_ns, r.content_hash, r.metadata_hash, now,
                                    r.error $(, $extra)*
                                ]
                            };
                        }
                        match known {
                            Some(k) => {
                                update.execute(row!(k.id))?;
                                self.seen.insert(&k);
                                if k.active {
                                    self.report.updated += 1;
                                } else {
                                    self.report.added += 1;
                                }
                            }
                            None => {
                                match insert.execute(row!()) {
                                    Err(rusqlite::Error::SqliteFailure(e, _))
                                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                                    {
                                        let sql = format!("{INSERT}{UPSERT_SUFFIX}");
                                        tx.prepare_cached(&sql)?.execute(row!())?;
                                    }
                                    other => {
                                        other?;
                                    }
                                }
                                self.report.added += 1;
                            }
                        }
                        if r.error.is_some() {
                            self.report.errors += 1;
                        }
                    }
                    Change::Unchanged { known } => {
                        self.seen.insert(&known);
                        if known.active {
                            self.report.unchanged += 1;
                        } else {
                            reactivate.execute(params![now, known.id])?;
                            self.report.added += 1;
                        }
                    }
                }
            }
        }
        let changed = tx.total_changes() - before;
        tx.commit()?;
        self.report.rows_written += changed;
        self.report.transactions += 1;
        self.report.busy += started.elapsed();
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// Mark inactive every file the index held under the run's roots that the run did not
/// see, except below directories the walk could not read: those files are not known to
/// be gone. Rows are never deleted.
pub fn mark_missing(
    conn: &mut Connection,
    known: &Known,
    seen: &Seen,
    skipped_dirs: &[PathBuf],
) -> Result<u64> {
    let skipped: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = skipped_dirs
        .iter()
        .map(|d| {
            let exact = path_bytes(d).to_vec();
            let (lo, hi) = subtree_range(&exact);
            (exact, lo, hi)
        })
        .collect();
    let tx = conn.transaction()?;
    let mut removed = 0;
    {
        let mut stmt = tx.prepare("UPDATE library_index SET is_active = 0 WHERE id = ?1")?;
        for (path, k) in known.iter() {
            if !k.active || seen.contains(k) {
                continue;
            }
            let p: &[u8] = path;
            if skipped.iter().any(|(exact, lo, hi)| {
                p == exact.as_slice() || (p >= lo.as_slice() && p < hi.as_slice())
            }) {
                continue;
            }
            stmt.execute([k.id])?;
            removed += 1;
        }
    }
    tx.commit()?;
    Ok(removed)
}

/// Record what a complete run confirmed: every active file below its roots, except
/// below the directories it could not read. Older scopes of the same root that the new
/// one covers entirely are dropped, so the table stays as small as the set of roots.
pub fn record_scope(
    conn: &mut Connection,
    run_id: i64,
    roots: &[PathBuf],
    skipped_dirs: &[PathBuf],
) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut add = tx.prepare(
            "INSERT INTO run_scope (run_id, kind, path_bytes, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        if skipped_dirs.is_empty() {
            let mut older = tx.prepare(
                "DELETE FROM run_scope WHERE run_id IN (
                    SELECT run_id FROM run_scope WHERE kind = 'root' AND path_bytes = ?1
                    AND run_id < ?2
                    AND run_id NOT IN (SELECT run_id FROM run_scope
                        WHERE kind = 'root' AND path_bytes <> ?1))",
            )?;
            for root in roots {
                older.execute(params![path_bytes(root), run_id])?;
            }
        }
        for (kind, dirs) in [("root", roots), ("skipped", skipped_dirs)] {
            for d in dirs {
                let exact = path_bytes(d).to_vec();
                let (lo, hi) = subtree_range(&exact);
                add.execute(params![run_id, kind, exact, lo, hi])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}
