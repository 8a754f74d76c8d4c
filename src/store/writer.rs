//! The single writer: every row of a run goes through one connection, in large
//! transactions with prepared statements, so SQLite is never the bottleneck and a killed
//! run leaves only whole batches behind.

use std::borrow::Cow;
use std::ffi::{CStr, c_int, c_uint};
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, ffi, params};

use super::{Known, KnownFile, Seen, Subtree, now_rfc3339, schema, subtree_range};
use crate::media::FileRecord;
use crate::media::record::path_bytes;
use crate::scan::ExtFilter;

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
    /// Into an empty index, build the secondary indexes, the unique path key among them,
    /// once after the rows are in (one sorted build instead of a million random inserts).
    pub defer_indexes: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            // 25 commits for 100k files at 4096; each rewrites the path-key pages it
            // touched into the WAL. `max_batch_age` still bounds what a kill can lose.
            batch_rows: 16_384,
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
    /// The first load wrote through a rollback journal (see `Writer::new`).
    pub rollback_journal: bool,
}

/// A file the index did not hold when the run started. `file_mtime` is the tool's ISO
/// text (?22), `file_mtime_ns` the exact value the incremental skip compares (?17).
const INSERT: &str = "INSERT INTO library_index (
        path_bytes, file_path, filename, artist, title, album, album_artist, track_number,
        year, genre, duration, bitrate, sample_rate, channels, file_format, file_size,
        file_mtime_ns, file_content_hash, metadata_hash, indexed_at, last_verified, is_active,
        error, file_mtime, audio_hash, audio_len)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20, ?20, 1, ?21, ?22, ?23, ?24)";

/// The same, should another process have indexed the path since the run loaded what the
/// index knew: the row is replaced, never duplicated, and the run goes on. (In a first
/// load the path key is built after the rows, and a path two processes both inserted is
/// kept once there: `schema::restore_secondary_indexes`.)
const UPSERT_SUFFIX: &str = " ON CONFLICT(path_bytes) DO UPDATE SET
        file_path = excluded.file_path, filename = excluded.filename,
        artist = excluded.artist, title = excluded.title, album = excluded.album,
        album_artist = excluded.album_artist, track_number = excluded.track_number,
        year = excluded.year, genre = excluded.genre, duration = excluded.duration,
        bitrate = excluded.bitrate, sample_rate = excluded.sample_rate,
        channels = excluded.channels, file_format = excluded.file_format,
        file_size = excluded.file_size, file_mtime = excluded.file_mtime,
        file_mtime_ns = excluded.file_mtime_ns,
        file_content_hash = excluded.file_content_hash,
        metadata_hash = excluded.metadata_hash, indexed_at = excluded.indexed_at,
        last_verified = excluded.last_verified, is_active = 1, error = excluded.error,
        audio_hash = excluded.audio_hash, audio_len = excluded.audio_len";

/// A file the index held, read again: by rowid, no lookup through the path key, and the
/// path columns left alone (the row was found by that very path), so the unique path
/// index is not touched. A row the replaced tool wrote (no `file_mtime_ns`) keeps its
/// `indexed_at` when the file is as the tool saw it: it is read only to gain musicdex's
/// facts.
const UPDATE: &str = "UPDATE library_index SET
        artist = ?4, title = ?5, album = ?6,
        album_artist = ?7, track_number = ?8, year = ?9, genre = ?10, duration = ?11,
        bitrate = ?12, sample_rate = ?13, channels = ?14, file_format = ?15, file_size = ?16,
        file_mtime_ns = ?17, file_content_hash = ?18, metadata_hash = ?19,
        indexed_at = CASE WHEN file_mtime_ns IS NULL AND file_size = ?16 AND file_mtime = ?22
            THEN indexed_at ELSE ?20 END,
        last_verified = ?20, is_active = 1, error = ?21, file_mtime = ?22, audio_hash = ?23,
        audio_len = ?24
    WHERE id = ?25";

/// An unchanged file that had been marked missing is back.
const REACTIVATE: &str = "UPDATE library_index SET last_verified = ?1, is_active = 1 WHERE id = ?2";

/// Pages the WAL may hold before a commit folds it back into the database while the
/// writer runs (SQLite's default is 1000). Each checkpoint reads the WAL, writes the pages
/// and syncs both files: a 100k-file first load ran 25 checkpoints and 50 fsyncs at the
/// default, 5 and 11 at 16384 (64 MiB). Crash safety is the WAL's either way; the run
/// ends with a full checkpoint (`index::run`), and the default comes back after.
const RUN_AUTOCHECKPOINT_PAGES: i64 = 16_384;
const DEFAULT_AUTOCHECKPOINT_PAGES: i64 = 1000;

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
        if !opts.legacy_per_file_commit {
            conn.pragma_update(None, "wal_autocheckpoint", RUN_AUTOCHECKPOINT_PAGES)?;
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
                // A first load writes through a rollback journal instead of the WAL.
                // Pages past the file's end at a transaction's start need no journal, and
                // a first load only appends: rows and index builds reach the file once,
                // where through the WAL each was written twice and the builds' checkpoint
                // copied it all back in the run's tail, one core idle (100k tiny files:
                // the last 0.35 s of 2.7 s). A kill leaves a journal the next writer rolls
                // back: only whole batches stay. While it lasts a reader holds up a commit
                // (`store::commit_waiting`). With another connection on the index the
                // switch is not made and the load goes through the WAL, as before.
                report.rollback_journal = super::switch_journal(&conn, "truncate", false)?;
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
        // A record is a dozen allocations (path, hashes, tags), made by the engine's
        // threads; freeing them was ~10% of the writer's CPU, partly waiting on the
        // allocator's locks of the arenas they came from. The writer is the one stage
        // every row goes through, so another thread frees them. Bounded: a lagging
        // freer holds the writer back rather than the records piling up.
        std::thread::scope(|s| {
            let (tx, spent) = crossbeam_channel::bounded::<Vec<Change>>(1);
            let freer = std::thread::Builder::new()
                .name("musicdex-free".into())
                .stack_size(64 << 10)
                .spawn_scoped(s, move || spent.iter().for_each(drop));
            // Without the thread (none to be had) the writer frees them itself, as it
            // does in the replaced tool's pipeline (a transaction per file: a send per
            // file would only add to the baseline). The sender lives in this frame:
            // however `drain` ends, even in a panic, it goes and the freer returns, so
            // the scope can end.
            let tx = (freer.is_ok() && !self.opts.legacy_per_file_commit).then_some(tx);
            self.drain(rx, tx.as_ref())
        })?;
        self.finish()
    }

    fn drain(
        &mut self,
        rx: Receiver<Vec<Change>>,
        freer: Option<&Sender<Vec<Change>>>,
    ) -> Result<()> {
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
                            self.commit(&mut pending, &now, freer)?;
                            oldest = Instant::now();
                        }
                    }
                    if !pending.is_empty() && oldest.elapsed() >= self.opts.max_batch_age {
                        self.commit(&mut pending, &now, freer)?;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.commit(&mut pending, &now, freer)?;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.commit(&mut pending, &now, freer)
    }

    /// After the last row: the indexes a first load deferred, and the journal back.
    fn finish(mut self) -> Result<(Connection, WriterReport, Seen)> {
        if self.report.deferred_indexes {
            // Inside the writer's time: building them is part of what the load costs.
            let started = Instant::now();
            schema::restore_secondary_indexes(&self.conn)?;
            self.report.busy += started.elapsed();
        }
        if !self.opts.legacy_per_file_commit {
            self.conn
                .pragma_update(None, "wal_autocheckpoint", DEFAULT_AUTOCHECKPOINT_PAGES)?;
        }
        if self.report.rollback_journal {
            // A reader still reading after the busy timeout leaves the index in the
            // rollback journal's mode (consistent); the next `store::open` puts it back.
            super::switch_journal(&self.conn, "wal", true)?;
        }
        Ok((self.conn, self.report, self.seen))
    }

    fn commit(
        &mut self,
        pending: &mut Vec<Change>,
        now: &str,
        freer: Option<&Sender<Vec<Change>>>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let n = pending.len() as u64;
        let mut tx = self.conn.transaction()?;
        let before = tx.total_changes();
        {
            let mut insert = StaticInsert::new(&tx)?;
            let mut update = tx.prepare_cached(UPDATE)?;
            let mut reactivate = tx.prepare_cached(REACTIVATE)?;
            for change in pending.iter() {
                match change {
                    Change::Record { record, known } => {
                        let r = &**record;
                        let t = &r.tags;
                        let path = text(path_bytes(&r.path));
                        // Borrowed, not a String per row: names are UTF-8 nearly always.
                        let filename = text(r.path.file_name().unwrap_or_default().as_bytes());
                        let size = r.stat.size as i64;
                        let mtime = super::tool_mtime(r.stat.mtime_ns);
                        macro_rules! row {
                            ($($extra:expr),*) => {
                                params![
                                    path_bytes(&r.path), path, filename, t.artist, t.title,
                                    t.album, t.album_artist, t.track_number, t.year, t.genre,
                                    t.duration, t.bitrate, t.sample_rate, t.channels, r.format,
                                    size, r.stat.mtime_ns, r.content_hash, r.metadata_hash, now,
                                    r.error, mtime, r.audio_hash,
                                    r.audio_len.map(|n| n as i64) $(, $extra)*
                                ]
                            };
                        }
                        match known {
                            Some(k) => {
                                update.execute(row!(k.id))?;
                                self.seen.insert(k);
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
                        self.seen.insert(known);
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
        // The transaction outlives a busy COMMIT: `commit_waiting` commits it again.
        tx.set_drop_behavior(rusqlite::DropBehavior::Ignore);
        drop(tx);
        super::commit_waiting(&self.conn)?;
        match freer {
            // Inside the busy time: the writer waits here when the freer lags.
            Some(freer) => {
                let _ = freer.send(std::mem::replace(
                    pending,
                    Vec::with_capacity(pending.capacity()),
                ));
            }
            None => pending.clear(),
        }
        self.report.rows_written += changed;
        self.report.transactions += 1;
        self.report.busy += started.elapsed();
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// The INSERT of a new row, its texts and blobs bound where they lie (`SQLITE_STATIC`).
/// rusqlite binds every one `SQLITE_TRANSIENT`, which SQLite copies into a buffer of its
/// own: a malloc, a copy and a free for each of a row's dozen texts. Without them the
/// writer thread's CPU in a first load fell 6-9% (writer bench, CPU clock: 200k rows,
/// A B B A A B, 2.26-2.34 -> 2.12-2.16 s; 1M rows, 10.85 -> 9.84 s), CPU the engine's
/// threads get back on a machine of few cores. (Its wall time is held by the builds and
/// the syncs, and did not move.)
struct StaticInsert<'c> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _conn: PhantomData<&'c Connection>,
}

impl<'c> StaticInsert<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<StaticInsert<'c>> {
        // SAFETY: the handle of a connection borrowed for as long as this statement lives
        // (`'c`); the statement is finalized in `drop`, before the borrow ends.
        let db = unsafe { conn.handle() };
        let mut stmt = std::ptr::null_mut();
        // SAFETY: a live handle, the SQL with its exact length, and an out pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                INSERT.as_ptr().cast(),
                INSERT.len() as c_int,
                ffi::SQLITE_PREPARE_PERSISTENT as c_uint,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(StaticInsert {
                stmt,
                _conn: PhantomData,
            }),
            _ => Err(sqlite_error(db, rc)),
        }
    }

    /// Insert one row of `values`. The bindings are cleared before this returns, so the
    /// statement never keeps a pointer into values that may be gone by its next run.
    fn execute(&mut self, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
        let stmt = self.stmt.as_ptr();
        let mut rc = ffi::SQLITE_OK;
        for (i, v) in values.iter().enumerate() {
            let ndx = (i + 1) as c_int;
            let out = v.to_sql()?;
            // A borrowed text lives in `values`, past the step below; an owned one (an
            // error's text) only in `out`, so SQLite copies it.
            let (value, dtor) = match &out {
                ToSqlOutput::Borrowed(v) => (*v, ffi::SQLITE_STATIC()),
                ToSqlOutput::Owned(v) => (ValueRef::from(v), ffi::SQLITE_TRANSIENT()),
                _ => {
                    return Err(rusqlite::Error::ToSqlConversionFailure(
                        format!("parameter {ndx}: not a plain value").into(),
                    ));
                }
            };
            // SAFETY: a prepared statement; each pointer and length comes from one live
            // slice, kept as long as `dtor` says (see above).
            rc = unsafe {
                match value {
                    ValueRef::Null => ffi::sqlite3_bind_null(stmt, ndx),
                    ValueRef::Integer(n) => ffi::sqlite3_bind_int64(stmt, ndx, n),
                    ValueRef::Real(x) => ffi::sqlite3_bind_double(stmt, ndx, x),
                    ValueRef::Text(t) => ffi::sqlite3_bind_text64(
                        stmt,
                        ndx,
                        t.as_ptr().cast(),
                        t.len() as u64,
                        dtor,
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    ValueRef::Blob(b) => {
                        ffi::sqlite3_bind_blob64(stmt, ndx, b.as_ptr().cast(), b.len() as u64, dtor)
                    }
                }
            };
            if rc != ffi::SQLITE_OK {
                break;
            }
        }
        // SAFETY: a prepared statement, stepped at most once, then reset and unbound.
        unsafe {
            if rc == ffi::SQLITE_OK {
                rc = ffi::sqlite3_step(stmt);
            }
            // The message before the reset, which may replace it.
            let failed =
                (rc != ffi::SQLITE_DONE).then(|| sqlite_error(ffi::sqlite3_db_handle(stmt), rc));
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
            failed.map_or(Ok(()), Err)
        }
    }
}

impl Drop for StaticInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement `new` prepared, finalized once, its connection still open.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The error `rc` with the connection's message for it.
fn sqlite_error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: a live handle; its message is copied before anything else runs on it.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg))
}

/// A path as text: borrowed when it is UTF-8 (nearly always; `from_utf8` checks ASCII
/// runs word-wide, where a lossy conversion walks it chunk by chunk), else with U+FFFD
/// for the bad bytes, as the `file_path` column promises.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// How many of a root's active rows one run may mark removed (`--max-removed`), like
/// rsync's `--max-delete`: a share (`50%`) or a count (`200`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxRemoved {
    Percent(f64),
    Count(u64),
}

impl Default for MaxRemoved {
    fn default() -> Self {
        MaxRemoved::Percent(50.0)
    }
}

impl MaxRemoved {
    pub fn parse(s: &str) -> Result<MaxRemoved, String> {
        let t = s.trim();
        let bad = || format!("'{s}' is neither a share (like 50%) nor a count (like 200)");
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("'{s}': a share is between 0% and 100%"));
            }
            Ok(MaxRemoved::Percent(v))
        } else {
            t.parse().map(MaxRemoved::Count).map_err(|_| bad())
        }
    }

    /// Whether a user accepted any removal whatever, even on another device.
    pub fn accepts_all(self) -> bool {
        matches!(self, MaxRemoved::Percent(p) if p >= 100.0)
    }

    fn exceeded(self, removed: u64, active: u64) -> bool {
        match self {
            MaxRemoved::Percent(p) => removed as f64 > active as f64 * p / 100.0,
            MaxRemoved::Count(c) => removed > c,
        }
    }
}

/// A root of the run, as the removal policy sees it.
#[derive(Clone, Debug)]
pub struct RootState {
    pub path: PathBuf,
    /// Rows of this root active before the run.
    pub active: u64,
    /// Rows of this root active after the writer, before any is marked removed: the
    /// files found (new ones included) and the rows kept as not looked for.
    pub active_after: u64,
    /// The root's device now and at the last run that recorded one.
    pub device: Option<u64>,
    pub recorded_device: Option<u64>,
}

/// A row the run looked for and did not find.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub id: i64,
    pub path: Box<[u8]>,
}

/// What the policy decided: the rows to mark inactive, and per refused root one line.
#[derive(Clone, Debug, Default)]
pub struct RemovalDecision {
    pub remove: Vec<i64>,
    pub refused: Vec<String>,
    /// Roots whose removals went through (their device may be recorded).
    pub accepted_roots: Vec<PathBuf>,
}

/// The removal policy, on the candidates alone: a root that would lose more than
/// `max` of its active rows, or whose device changed since the last run, loses none (an
/// unmounted drive leaves an empty folder; a remount may show another file system).
pub fn removal_policy(
    candidates: Vec<Candidate>,
    roots: &[RootState],
    max: MaxRemoved,
) -> RemovalDecision {
    let mut per_root: Vec<Vec<i64>> = vec![Vec::new(); roots.len()];
    let trees: Vec<Subtree> = roots.iter().map(|r| Subtree::new(&r.path)).collect();
    for c in candidates {
        if let Some(i) = trees.iter().position(|t| t.contains(&c.path)) {
            per_root[i].push(c.id);
        }
    }
    let mut d = RemovalDecision::default();
    for (root, ids) in roots.iter().zip(per_root) {
        let n = ids.len() as u64;
        let moved = matches!((root.device, root.recorded_device), (Some(a), Some(b)) if a != b);
        // Files that vanished beyond those that appeared: a move or a rename within the
        // root is no loss, an emptied folder is a loss of everything.
        let remaining = root.active_after.saturating_sub(n);
        let lost = root.active.saturating_sub(remaining);
        let why = if n == 0 || max.accepts_all() {
            None
        } else if moved {
            Some(format!(
                "is on another device than at the last run (was {}, now {})",
                root.recorded_device.unwrap_or(0),
                root.device.unwrap_or(0)
            ))
        } else if lost > 0 && max.exceeded(lost, root.active) {
            Some(format!(
                "would lose {lost} of its {} indexed files, more than --max-removed allows",
                root.active
            ))
        } else {
            None
        };
        match why {
            Some(why) => d.refused.push(format!(
                "{} {why}: marked none of its {n} missing files removed (unmounted? pass \
                 --max-removed 100% if they really are gone)",
                root.path.display()
            )),
            None => {
                d.remove.extend(ids);
                d.accepted_roots.push(root.path.clone());
            }
        }
    }
    d
}

/// The rows the run looked for and did not find: active, not seen, not below a folder the
/// walk could not read, inside the extension filter, and gone from the disk (a file
/// still there was not looked for: a symlinked path not followed this time, say).
pub fn missing_candidates(
    known: &Known,
    seen: &Seen,
    skipped_dirs: &[PathBuf],
    filter: &ExtFilter,
) -> Vec<Candidate> {
    let skipped: Vec<Subtree> = skipped_dirs.iter().map(|d| Subtree::new(d)).collect();
    let mut out = Vec::new();
    for (path, k) in known.iter() {
        if !k.active || seen.contains(k) {
            continue;
        }
        let p: &[u8] = path;
        if skipped.iter().any(|t| t.contains(p)) {
            continue;
        }
        let os = std::path::Path::new(std::ffi::OsStr::from_bytes(p));
        if !filter.matches(os) || std::fs::symlink_metadata(os).is_ok() {
            continue;
        }
        out.push(Candidate {
            id: k.id,
            path: path.into(),
        });
    }
    out
}

/// Mark the given rows inactive. Rows are never deleted.
pub fn mark_inactive(conn: &mut Connection, ids: &[i64]) -> Result<u64> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare("UPDATE library_index SET is_active = 0 WHERE id = ?1")?;
        for id in ids {
            stmt.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(ids.len() as u64)
}

/// Mark inactive what the run looked for and did not find, within the removal policy.
pub fn mark_missing(
    conn: &mut Connection,
    known: &Known,
    seen: &Seen,
    skipped_dirs: &[PathBuf],
    filter: &ExtFilter,
    roots: &[RootState],
    max: MaxRemoved,
) -> Result<RemovalDecision> {
    let candidates = missing_candidates(known, seen, skipped_dirs, filter);
    let decision = removal_policy(candidates, roots, max);
    mark_inactive(conn, &decision.remove)?;
    Ok(decision)
}

/// The replaced tool's `library_stats` row for a finished run, filled as its
/// `LibraryIndexer.index_library` fills it: the totals of `get_statistics()` (active
/// rows), the formats as `json.dumps` writes them, then the run's end and duration.
pub fn record_library_stats(conn: &Connection, index_duration_secs: f64) -> Result<()> {
    use std::collections::{BTreeMap, HashSet};
    // The tool's four queries in one pass over the table (it pays four scans). Distinct
    // names are compared as SQLite's count(DISTINCT) compares them: byte for byte; the
    // formats come in SQLite's GROUP BY order (bytes).
    let (mut files, mut size) = (0i64, 0i64);
    let mut formats: BTreeMap<String, i64> = BTreeMap::new();
    let mut artists: HashSet<String> = HashSet::new();
    let mut albums: HashSet<String> = HashSet::new();
    let mut stmt = conn.prepare(
        "SELECT file_format, file_size, artist, album FROM library_index WHERE is_active = 1",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        files += 1;
        size += r.get::<_, Option<i64>>(1)?.unwrap_or(0);
        let format = value_text(r.get_ref(0)?).unwrap_or_default();
        match formats.get_mut(format.as_ref()) {
            Some(n) => *n += 1,
            None => {
                formats.insert(format.into_owned(), 1);
            }
        }
        for (col, set) in [(2, &mut artists), (3, &mut albums)] {
            if let Some(name) = value_text(r.get_ref(col)?)
                && !set.contains(name.as_ref())
            {
                set.insert(name.into_owned());
            }
        }
    }
    let formats: Vec<(String, i64)> = formats.into_iter().collect();
    let breakdown = python_json_object(&formats);
    let (artists, albums) = (artists.len() as i64, albums.len() as i64);
    let now = now_rfc3339();
    conn.execute(
        "INSERT INTO library_stats (total_files, total_size, formats_breakdown, artists_count,
            albums_count, last_index_time, index_duration, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
        params![
            files,
            size,
            breakdown,
            artists,
            albums,
            now,
            index_duration_secs
        ],
    )?;
    Ok(())
}

/// A column's value as text (NULL: `None`); text is what these columns hold.
fn value_text(v: rusqlite::types::ValueRef<'_>) -> Option<std::borrow::Cow<'_, str>> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t)),
        other => Some(format!("{other:?}").into()),
    }
}

/// `json.dumps` of a `{str: int}` dict with Python's defaults: `", "` and `": "`
/// separators, ASCII only (`\uXXXX`, surrogate pairs beyond the BMP).
pub fn python_json_object(items: &[(String, i64)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        for c in k.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push_str(&format!("\": {v}"));
    }
    out.push('}');
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the shipped fixtures read as a run whose index knew nothing sees it.
    fn read_fixtures() -> Vec<FileRecord> {
        let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/library");
        let test = crate::engine::TestRun::new(lib, Default::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        crate::engine::sequential::run(&test.ctx(), tx).unwrap();
        let mut records: Vec<FileRecord> = rx
            .into_iter()
            .flatten()
            .map(|c| match c {
                Change::Record {
                    record,
                    known: None,
                } => *record,
                _ => panic!("an empty index knows no file"),
            })
            .collect();
        records.sort_by(|a, b| a.path.cmp(&b.path));
        records
    }

    fn write(conn: Connection, records: &[FileRecord]) -> (Connection, WriterReport) {
        let writer = Writer::new(conn, WriterOptions::default(), Default::default()).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let changes = records.iter().map(|r| Change::Record {
            record: Box::new(r.clone()),
            known: None,
        });
        tx.send(changes.collect()).unwrap();
        drop(tx);
        let (conn, report, _) = writer.run(rx).unwrap();
        (conn, report)
    }

    type Stored = (
        i64,
        Vec<u8>,
        String,
        String,
        Option<String>,
        i64,
        Option<String>,
    );

    /// What the index holds of each row, in path order.
    fn stored(conn: &Connection) -> Vec<Stored> {
        let mut q = conn
            .prepare(
                "SELECT id, path_bytes, file_path, filename, artist, file_size, error
                 FROM library_index ORDER BY path_bytes",
            )
            .unwrap();
        q.query_map([], |r| Stored::try_from(r))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The values a new row is inserted with are bound where they lie, not copied
    /// (`StaticInsert`): each must still be the record's own when stored, the error text
    /// made for the binding included. And a path that another process indexed after this
    /// run loaded what the index knew goes through the upsert: updated in place, never a
    /// second row, the run going on.
    #[test]
    fn new_rows_hold_their_records_values_and_a_path_indexed_meanwhile_is_not_doubled() {
        let records = read_fixtures();
        assert!(records.len() >= 30, "{}", records.len());
        assert!(records.iter().any(|r| r.error.is_some()));
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("i.db");
        let (conn, first) = write(super::super::open(&db).unwrap(), &records);
        assert!(first.deferred_indexes, "into an empty index: a first load");
        let rows = stored(&conn);
        assert_eq!(rows.len(), records.len());
        for (r, (_, key, path, name, artist, size, error)) in records.iter().zip(&rows) {
            let want = r.path.to_str().unwrap();
            assert_eq!(key.as_slice(), want.as_bytes());
            assert_eq!(path, want);
            assert_eq!(name, r.path.file_name().unwrap().to_str().unwrap());
            assert_eq!(artist, &r.tags.artist);
            assert_eq!(*size as u64, r.stat.size);
            assert_eq!(error, &r.error.as_ref().map(|e| e.to_string()));
        }

        // The same files again as new, into the index that now holds them all.
        let (conn, again) = write(conn, &records);
        assert!(!again.deferred_indexes);
        assert_eq!(again.added, records.len() as u64);
        assert_eq!(
            stored(&conn),
            rows,
            "every path updated in place, no row added"
        );
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    fn root(path: &str, active: u64, dev: u64, was: u64) -> RootState {
        RootState {
            path: PathBuf::from(path),
            active,
            active_after: active,
            device: Some(dev),
            recorded_device: Some(was),
        }
    }

    fn cands(paths: &[&str]) -> Vec<Candidate> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                id: i as i64,
                path: p.as_bytes().into(),
            })
            .collect()
    }

    #[test]
    fn formats_as_python_json_dumps() {
        // Expected strings from Python 3: json.dumps({...}).
        assert_eq!(python_json_object(&[]), "{}");
        let items = [
            ("flac".to_string(), 3),
            ("mp3".to_string(), 10),
            ("a\"b\\c\u{1}é😀\u{7f}".to_string(), 1),
        ];
        assert_eq!(
            python_json_object(&items),
            r#"{"flac": 3, "mp3": 10, "a\"b\\c\u0001\u00e9\ud83d\ude00\u007f": 1}"#
        );
    }

    #[test]
    fn max_removed_parses() {
        assert_eq!(MaxRemoved::parse("50%"), Ok(MaxRemoved::Percent(50.0)));
        assert_eq!(MaxRemoved::parse("12"), Ok(MaxRemoved::Count(12)));
        assert!(MaxRemoved::parse("101%").is_err());
        assert!(MaxRemoved::parse("lots").is_err());
        assert!(MaxRemoved::parse("-3").is_err());
    }

    #[test]
    fn policy_per_root() {
        // Seeded variety: random shares removed from three roots, checked against the rule.
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..200 {
            let active = [rng.u64(1..40), rng.u64(1..40), rng.u64(1..40)];
            let gone: Vec<u64> = active.iter().map(|&a| rng.u64(0..=a)).collect();
            let pct = rng.u64(0..=100) as f64;
            let roots: Vec<RootState> = (0..3)
                .map(|i| root(&format!("/m/r{i}"), active[i], 1, 1))
                .collect();
            let mut paths = Vec::new();
            for (i, &g) in gone.iter().enumerate() {
                for f in 0..g {
                    paths.push(format!("/m/r{i}/f{f}.mp3"));
                }
            }
            paths.push("/elsewhere/x.mp3".into());
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let d = removal_policy(cands(&refs), &roots, MaxRemoved::Percent(pct));
            let want: u64 = (0..3)
                .filter(|&i| (gone[i] as f64) <= active[i] as f64 * pct / 100.0)
                .map(|i| gone[i])
                .sum();
            assert_eq!(d.remove.len() as u64, want);
            let refused = (0..3)
                .filter(|&i| gone[i] > 0 && (gone[i] as f64) > active[i] as f64 * pct / 100.0)
                .count();
            assert_eq!(d.refused.len(), refused, "{d:?}");
        }
    }

    #[test]
    fn moves_within_a_root_are_no_loss() {
        // 2 of 3 files renamed: 2 rows missing, 2 new rows found.
        let mut r = root("/m/a", 3, 1, 1);
        r.active_after = 5;
        let d = removal_policy(
            cands(&["/m/a/x.mp3", "/m/a/y.mp3"]),
            &[r.clone()],
            MaxRemoved::default(),
        );
        assert_eq!((d.remove.len(), d.refused.len()), (2, 0));
        // 2 of 3 deleted, 1 new: a loss of 1 of 3 is within 50%; with none new it is not.
        r.active_after = 4;
        let d = removal_policy(
            cands(&["/m/a/x.mp3", "/m/a/y.mp3"]),
            &[r.clone()],
            MaxRemoved::default(),
        );
        assert_eq!(d.remove.len(), 2);
        r.active_after = 3;
        let d = removal_policy(
            cands(&["/m/a/x.mp3", "/m/a/y.mp3"]),
            &[r],
            MaxRemoved::default(),
        );
        assert_eq!((d.remove.len(), d.refused.len()), (0, 1));
    }

    #[test]
    fn device_change_and_acceptance() {
        let roots = [root("/m/a", 10, 2, 1), root("/m/b", 10, 1, 1)];
        let c = cands(&["/m/a/1.mp3", "/m/b/1.mp3", "/m/ab/1.mp3"]);
        let d = removal_policy(c.clone(), &roots, MaxRemoved::default());
        assert_eq!(d.remove, vec![1]);
        assert_eq!(d.refused.len(), 1);
        assert!(
            d.refused[0].starts_with("/m/a is on another device"),
            "{d:?}"
        );
        let d = removal_policy(c.clone(), &roots, MaxRemoved::Percent(100.0));
        assert_eq!(d.remove, vec![0, 1]);
        let d = removal_policy(c, &roots, MaxRemoved::Count(0));
        assert!(d.remove.is_empty());
        assert_eq!(d.refused.len(), 2);
        let d = removal_policy(cands(&["/m/b/1.mp3"]), &roots, MaxRemoved::default());
        assert_eq!(d.remove, vec![0]);
        assert!(
            d.refused.is_empty(),
            "a moved root with nothing missing is fine"
        );
    }
}
