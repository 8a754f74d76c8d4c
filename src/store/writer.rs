//! The single writer: every row of a run goes through one connection, in large
//! transactions with prepared statements, so SQLite is never the bottleneck and a killed
//! run leaves only whole batches behind.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::Receiver;
use rusqlite::{Connection, params};

use super::{Known, KnownFile, now_rfc3339, subtree_range};
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
    /// Size and mtime match the index: only confirm it is still there.
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
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 4096,
            max_batch_age: Duration::from_secs(2),
            legacy_per_file_commit: false,
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
}

const UPSERT: &str = "INSERT INTO library_index (
        path_bytes, file_path, filename, artist, title, album, album_artist, track_number,
        year, genre, duration, bitrate, sample_rate, channels, file_format, file_size,
        file_mtime, file_content_hash, metadata_hash, indexed_at, last_verified, is_active,
        error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?20, 1, ?21)
    ON CONFLICT(path_bytes) DO UPDATE SET
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

const CONFIRM: &str = "UPDATE library_index SET last_verified = ?1, is_active = 1 WHERE id = ?2";

pub struct Writer {
    conn: Connection,
    opts: WriterOptions,
    report: WriterReport,
    seen: HashSet<i64>,
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
        Ok(Writer {
            conn,
            opts,
            report: WriterReport::default(),
            seen: HashSet::new(),
            written,
        })
    }

    /// Drain the channel until every engine thread has hung up.
    pub fn run(
        mut self,
        rx: Receiver<Vec<Change>>,
    ) -> Result<(Connection, WriterReport, HashSet<i64>)> {
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
        Ok((self.conn, self.report, self.seen))
    }

    fn commit(&mut self, pending: &mut Vec<Change>, now: &str) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let n = pending.len() as u64;
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            let mut confirm = tx.prepare_cached(CONFIRM)?;
            for change in pending.drain(..) {
                match change {
                    Change::Record { record, known } => {
                        let r = &*record;
                        let t = &r.tags;
                        upsert.execute(params![
                            path_bytes(&r.path),
                            r.path.to_string_lossy(),
                            r.filename(),
                            t.artist,
                            t.title,
                            t.album,
                            t.album_artist,
                            t.track_number,
                            t.year,
                            t.genre,
                            t.duration,
                            t.bitrate,
                            t.sample_rate,
                            t.channels,
                            r.format,
                            r.stat.size as i64,
                            r.stat.mtime_ns,
                            r.content_hash,
                            r.metadata_hash,
                            now,
                            r.error,
                        ])?;
                        match known {
                            Some(k) => {
                                self.seen.insert(k.id);
                                if k.active {
                                    self.report.updated += 1;
                                } else {
                                    self.report.added += 1;
                                }
                            }
                            None => self.report.added += 1,
                        }
                        if r.error.is_some() {
                            self.report.errors += 1;
                        }
                    }
                    Change::Unchanged { known } => {
                        confirm.execute(params![now, known.id])?;
                        self.seen.insert(known.id);
                        if known.active {
                            self.report.unchanged += 1;
                        } else {
                            self.report.added += 1;
                        }
                    }
                }
            }
        }
        tx.commit()?;
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
    seen: &HashSet<i64>,
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
        for (path, k) in &known.files {
            if !k.active || seen.contains(&k.id) {
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
