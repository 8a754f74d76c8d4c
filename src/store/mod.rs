//! The SQLite index: opening and migrating it, what it already knows, the batching
//! writer, and the read-side queries.

pub mod dataset;
pub mod moves;
pub mod query;
pub mod schema;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use crate::media::record::path_bytes;

/// Where the index lives unless `--db` says otherwise.
pub fn default_db_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MUSICDEX_DB").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|p| !p.is_empty())
                .context("neither MUSICDEX_DB, XDG_DATA_HOME nor HOME is set: pass --db")?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(data.join("musicdex/library.db"))
}

/// Process-wide SQLite settings, to be called once at the start of `main`, before any
/// connection exists (SQLite refuses them after its first initialisation, and they must
/// not race with another thread's SQLite call, so library code never calls this).
///
/// Memory statistics off: with them on, every SQLite allocation and free takes a global
/// mutex to count bytes, about 5% of the writer's CPU in a first load, and nothing in
/// musicdex reads the counts (`sqlite3_memory_used`, soft heap limits). Returns whether
/// the setting took (false when SQLite was already initialised: harmless, only slower).
pub fn configure_process() -> bool {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; the caller guarantees that no
        // other thread is inside SQLite (start of main, or a benchmark's setup).
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
        rc == rusqlite::ffi::SQLITE_OK
    })
}

/// Open (creating if needed) and migrate the index for writing.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    configure(&conn).with_context(|| format!("cannot use database {}", path.display()))?;
    schema::migrate(&mut conn).with_context(|| format!("database {}", path.display()))?;
    Ok(conn)
}

/// Open an existing index for queries; a missing file is an error, not a new index.
pub fn open_existing(path: &Path) -> Result<Connection> {
    if !path.exists() {
        anyhow::bail!(
            "no index at {} (run `musicdex index <LIBRARY>` first, or pass --db)",
            path.display()
        );
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {}", path.display()))?;
    configure(&conn)?;
    schema::migrate(&mut conn).with_context(|| format!("database {}", path.display()))?;
    Ok(conn)
}

/// Open an existing index for reading only: nothing is created, migrated or left behind
/// (no `-wal`/`-shm` files), and it works for a user who may read the file but not write
/// it or its folder. A missing or empty file is an error naming the path.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no index at {} (run `musicdex index <LIBRARY>` first, or pass --db)",
            path.display()
        ),
        Err(e) => anyhow::bail!("cannot read database {}: {e}", path.display()),
    };
    if meta.len() == 0 {
        anyhow::bail!(
            "{} is empty, not an index (run `musicdex index <LIBRARY>` to build one)",
            path.display()
        );
    }
    // With a `-wal` file present a writer may be at work (or died before folding it back):
    // read through it, sharing its `-shm`. Without one, the file alone is the whole index;
    // opening it immutable reads it without creating `-wal`/`-shm` beside it, which a
    // read-only user could not do and a writable folder would keep.
    // A first load writes through a rollback journal (`writer`): its `-journal` file is
    // there from its first commit to its last, and after a kill, until the next writer
    // rolls the interrupted batch back. An immutable read would see a half-written batch.
    let companion = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(p).ok()
    };
    let journal = companion("-journal");
    let live = companion("-wal").is_some() || journal.is_some();
    // A journal with bytes in it holds the pages of a batch that was being written: the
    // file alone is not an index then, and reading past the lock would show that batch
    // half-written.
    let torn = journal.is_some_and(|m| m.len() > 0);
    let conn = open_flags_ro(path, !live)
        .or_else(|e| {
            if live && !torn {
                open_flags_ro(path, true)
            } else {
                Err(e)
            }
        })
        .with_context(|| {
            if torn {
                format!(
                    "cannot open database {}: an interrupted `musicdex index` left its \
                     -journal beside it (run `musicdex index` once to roll it back)",
                    path.display()
                )
            } else {
                format!("cannot open database {}", path.display())
            }
        })?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| format!("{} is not a musicdex index", path.display()))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'library_index'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        anyhow::bail!("{} is not a musicdex index", path.display());
    }
    if version > schema::SCHEMA_VERSION {
        anyhow::bail!(
            "database {} has schema version {version}, newer than this musicdex understands \
             ({}); upgrade musicdex",
            path.display(),
            schema::SCHEMA_VERSION
        );
    }
    if version < schema::SCHEMA_VERSION {
        anyhow::bail!(
            "database {} has schema version {version} (this musicdex uses {}): run \
             `musicdex index` once to upgrade it",
            path.display(),
            schema::SCHEMA_VERSION
        );
    }
    Ok(conn)
}

fn open_flags_ro(path: &Path, immutable: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = if immutable {
        let uri = format!("file:{}?immutable=1", uri_path(path));
        Connection::open_with_flags(uri, flags)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(busy_timeout())?;
    // Opening is lazy: touch the schema now, so a refusal shows here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// A path as the path part of an SQLite URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(busy_timeout())?;
    // WAL: readers never block the writer, and a killed run leaves the last committed
    // batch intact. NORMAL is durable across process crashes; only an OS crash can
    // lose the last batches, which the next run re-indexes.
    // Not waiting: a first load may hold the index in a rollback journal (`writer`), and
    // holds a transaction nearly all the time. Waiting for the whole load would make every
    // other command wait with it; reading and writing work in the loader's mode (SQLite
    // takes the locks), and the loader puts the index back in WAL mode when it is done.
    switch_journal(conn, "wal", false)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    Ok(())
}

/// How long a connection waits for another's lock before it reports the index busy: 30 s,
/// or `MUSICDEX_BUSY_TIMEOUT_MS`.
pub(crate) fn busy_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("MUSICDEX_BUSY_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(30))
    })
}

/// COMMIT, for as long as readers hold it up. In WAL mode none can; in a first load's
/// rollback journal (`writer`) a commit needs every reader gone, and one that kept a read
/// transaction open past the busy timeout failed the load, where the batch was whole and
/// only had to wait: after a busy COMMIT SQLite keeps the transaction, to be committed
/// again, and no new reader comes in meanwhile (the committer holds the pending lock). A
/// second Ctrl-C stops the process at once, the index consistent. Any other error rolls
/// the transaction back.
pub(crate) fn commit_waiting(conn: &Connection) -> Result<()> {
    let mut told = false;
    loop {
        match conn.execute_batch("COMMIT") {
            Ok(()) => return Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                if !told {
                    eprintln!(
                        "musicdex: waiting for another connection to end its read of the \
                         index (a first load writes through a rollback journal, and its \
                         commit needs every reader gone; Ctrl-C twice stops now, whole \
                         batches stay)"
                    );
                    told = true;
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
    }
}

/// `f` on `conn` without waiting for another connection's lock (a busy one fails at
/// once), the busy timeout put back after.
pub(crate) fn without_waiting<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.busy_timeout(Duration::ZERO)?;
    let out = f(conn);
    conn.busy_timeout(busy_timeout())?;
    out
}

/// Put the index in journal mode `mode` (`wal`, or `truncate` for a first load), with
/// the `synchronous` that mode needs: NORMAL in WAL, FULL in a rollback journal (synced
/// before the database is written, so an OS crash mid-commit cannot tear the file). The
/// switch needs the index to itself: another connection holding it makes it give up at
/// once, or with `wait` after the busy timeout. Whether the index is in `mode` now.
pub(crate) fn switch_journal(conn: &Connection, mode: &str, wait: bool) -> Result<bool> {
    let mut now: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !now.eq_ignore_ascii_case(mode) {
        let switch = |c: &Connection| {
            c.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| {
                r.get::<_, String>(0)
            })
        };
        let switched = if wait {
            switch(conn)
        } else {
            without_waiting(conn, switch)
        };
        match switched {
            Ok(m) => now = m,
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let wal = now.eq_ignore_ascii_case("wal");
    conn.pragma_update(None, "synchronous", if wal { "NORMAL" } else { "FULL" })?;
    Ok(now.eq_ignore_ascii_case(mode))
}

/// What the index holds about one file, enough to decide whether to read it again.
#[derive(Clone, Copy, Debug)]
pub struct KnownFile {
    pub id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub active: bool,
    /// The last read failed at stat, open or read (permissions, I/O): read it again even
    /// when size and mtime are unchanged, since fixing the cause (chmod) leaves them be.
    /// Also a row the replaced tool wrote: no `file_mtime_ns`, a content hash of its own.
    pub retry: bool,
    /// Position in [`Known`]: the writer marks the file seen by it, in a bit set.
    pub slot: u32,
}

/// Every indexed file under the roots of a run, keyed by raw path bytes.
///
/// Built for a million files and more: every path lives in one byte arena and a
/// linear-probing table of slot numbers finds it, so a file costs its path plus about
/// 50 bytes (a `HashMap<Box<[u8]>, _>` cost ~480 with its allocations).
#[derive(Debug, Default)]
pub struct Known {
    arena: Vec<u8>,
    /// End of each path in `arena`; a path starts where the previous one ends.
    ends: Vec<u64>,
    files: Vec<KnownFile>,
    /// Slot + 1 of each path, 0 for an empty entry; the length is a power of two.
    table: Vec<u32>,
}

impl Known {
    pub fn load(conn: &Connection, roots: &[PathBuf]) -> Result<Known> {
        let mut known = Known::default();
        const UNDER: &str = "path_bytes = ?1 OR (path_bytes >= ?2 AND path_bytes < ?3)";
        // When the roots hold most of the index, one pass over the table in rowid order
        // beats a lookup per row through the path key (100k rows: 0.13-0.20 s against
        // 0.32-0.37 s, page cache warm); counting through the key reads the index only.
        let total: i64 = conn.query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))?;
        let mut under = 0i64;
        for root in roots {
            let exact = path_bytes(root).to_vec();
            let (lo, hi) = subtree_range(&exact);
            under += conn.query_row(
                &format!("SELECT count(*) FROM library_index WHERE {UNDER}"),
                (&exact, &lo, &hi),
                |r| r.get::<_, i64>(0),
            )?;
        }
        let scan = if 2 * under >= total {
            "NOT INDEXED"
        } else {
            ""
        };
        // Only what the decision needs, read without an allocation per row.
        let mut stmt = conn.prepare(&format!(
            "SELECT id, path_bytes, file_size, coalesce(file_mtime_ns, 0), is_active,
                 (error IS NOT NULL AND (error LIKE 'stat: %' OR error LIKE 'open: %'
                     OR error LIKE 'read: %'))
                 OR file_mtime_ns IS NULL
                 OR coalesce(length(file_content_hash), 32) <> 32
             FROM library_index {scan}
             WHERE {UNDER}"
        ))?;
        for root in roots {
            let exact = path_bytes(root).to_vec();
            let (lo, hi) = subtree_range(&exact);
            let mut rows = stmt.query((&exact, &lo, &hi))?;
            while let Some(r) = rows.next()? {
                let path = r.get_ref(1)?.as_blob()?;
                // Overlapping roots list a file twice; it is one file.
                if known.find(path).is_some() {
                    continue;
                }
                known.push(
                    path,
                    r.get(0)?,
                    r.get::<_, i64>(2)? as u64,
                    r.get(3)?,
                    r.get::<_, i64>(4)? != 0,
                    r.get::<_, i64>(5)? != 0,
                )?;
            }
        }
        Ok(known)
    }

    fn push(
        &mut self,
        path: &[u8],
        id: i64,
        size: u64,
        mtime_ns: i64,
        active: bool,
        retry: bool,
    ) -> Result<()> {
        let slot = u32::try_from(self.files.len())
            .ok()
            .filter(|&s| s < u32::MAX)
            .context("more than four billion files under the roots of one run")?;
        self.arena.extend_from_slice(path);
        self.ends.push(self.arena.len() as u64);
        self.files.push(KnownFile {
            id,
            size,
            mtime_ns,
            active,
            retry,
            slot,
        });
        // Keep the table at most half full: short probe sequences, 8 bytes a file.
        if self.table.len() < 2 * self.files.len() {
            self.rehash((2 * self.files.len()).next_power_of_two().max(1024));
        } else {
            self.place(slot);
        }
        Ok(())
    }

    fn rehash(&mut self, len: usize) {
        self.table = vec![0; len];
        for slot in 0..self.files.len() as u32 {
            self.place(slot);
        }
    }

    fn place(&mut self, slot: u32) {
        let mask = self.table.len() - 1;
        let mut i = hash_path(self.path(slot)) as usize & mask;
        while self.table[i] != 0 {
            i = (i + 1) & mask;
        }
        self.table[i] = slot + 1;
    }

    fn path(&self, slot: u32) -> &[u8] {
        let s = slot as usize;
        let start = if s == 0 { 0 } else { self.ends[s - 1] as usize };
        &self.arena[start..self.ends[s] as usize]
    }

    fn find(&self, path: &[u8]) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut i = hash_path(path) as usize & mask;
        loop {
            match self.table[i] {
                0 => return None,
                e if self.path(e - 1) == path => return Some(e - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    pub fn get(&self, path: &Path) -> Option<&KnownFile> {
        self.find(path_bytes(path)).map(|s| &self.files[s as usize])
    }

    /// Number of files known.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every known file with its path bytes, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &KnownFile)> {
        self.files.iter().map(|k| (self.path(k.slot), k))
    }
}

/// The known files a run has seen, one bit each.
#[derive(Debug, Default, Clone)]
pub struct Seen(Vec<u64>);

impl Seen {
    pub fn insert(&mut self, k: &KnownFile) {
        let (w, b) = (k.slot as usize / 64, k.slot % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    pub fn contains(&self, k: &KnownFile) -> bool {
        let (w, b) = (k.slot as usize / 64, k.slot % 64);
        self.0.get(w).is_some_and(|x| x & (1 << b) != 0)
    }
}

/// A fast 64-bit hash of path bytes (eight bytes a step, multiply-mix): SipHash would
/// cost more than the probe it serves, and paths are not chosen by an attacker.
fn hash_path(p: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = p.len() as u64 ^ K;
    let mut chunks = p.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 29)
}

/// A path and everything below it, matched on raw path bytes.
#[derive(Clone, Debug)]
pub struct Subtree {
    exact: Vec<u8>,
    lo: Vec<u8>,
    hi: Vec<u8>,
}

impl Subtree {
    pub fn new(dir: &Path) -> Subtree {
        let exact = path_bytes(dir).to_vec();
        let (lo, hi) = subtree_range(&exact);
        Subtree { exact, lo, hi }
    }

    pub fn contains(&self, p: &[u8]) -> bool {
        p == self.exact.as_slice() || (p >= self.lo.as_slice() && p < self.hi.as_slice())
    }
}

/// Byte range [lo, hi) of every path strictly below `dir`: `dir/` up to `dir0`
/// ('0' is the byte after '/').
pub fn subtree_range(dir: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let base = dir.strip_suffix(b"/").unwrap_or(dir);
    let mut lo = base.to_vec();
    lo.push(b'/');
    let mut hi = base.to_vec();
    hi.push(b'0');
    (lo, hi)
}

/// Now, as the replaced tool writes its timestamps (`datetime.now(timezone.utc)
/// .isoformat()`: microseconds, `+00:00`), so its code parses ours and text order stays
/// time order across rows either wrote.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// The replaced tool's `file_mtime` for an mtime in nanoseconds, byte for byte:
/// `datetime.fromtimestamp(os.stat(p).st_mtime, tz=timezone.utc).isoformat()`. Python's
/// `st_mtime` is the double `sec + nsec * 1e-9`, and `fromtimestamp` rounds its fraction
/// to microseconds half to even; the tool's incremental check compares that datetime with
/// the one it parses back, so anything else would make it re-read every musicdex row.
pub fn tool_mtime(ns: i64) -> String {
    let sec = ns.div_euclid(1_000_000_000);
    let nsec = ns.rem_euclid(1_000_000_000);
    let d = sec as f64 + nsec as f64 * 1e-9;
    let mut whole = d.trunc();
    let mut us = ((d - whole) * 1e6).round_ties_even();
    if us >= 1e6 {
        us -= 1e6;
        whole += 1.0;
    } else if us < 0.0 {
        us += 1e6;
        whole -= 1.0;
    }
    let Some(t) = chrono::DateTime::from_timestamp(whole as i64, 0) else {
        // Beyond chrono's years: no datetime the tool could parse either.
        return String::new();
    };
    // Digits by hand: the writer formats one per row, and `format` parses its pattern
    // string each time (about 2% of a first load's writer CPU).
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut String, n: u32, width: u32) {
        for i in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(i) % 10) as u8));
        }
    }
    let year = t.year();
    let mut out = if (0..=9999).contains(&year) {
        let mut out = String::with_capacity(32);
        digits(&mut out, year as u32, 4);
        let (mo, d, h, mi, s) = (t.month(), t.day(), t.hour(), t.minute(), t.second());
        for (sep, n) in [('-', mo), ('-', d), ('T', h), (':', mi), (':', s)] {
            out.push(sep);
            digits(&mut out, n, 2);
        }
        out
    } else {
        // Years of other widths or signed: chrono's own rendering, as before.
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    };
    if us != 0.0 {
        out.push('.');
        digits(&mut out, us as u32, 6);
    }
    out.push_str("+00:00");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn random_path(rng: &mut fastrand::Rng, root: &[u8]) -> Vec<u8> {
        let mut p = root.to_vec();
        for _ in 0..rng.usize(1..4) {
            p.extend_from_slice(b"/");
            // Any byte but '/' and NUL, non-UTF-8 ones included.
            for _ in 0..rng.usize(1..40) {
                p.push(loop {
                    let b = rng.u8(1..);
                    if b != b'/' {
                        break b;
                    }
                });
            }
        }
        p
    }

    #[test]
    fn tool_mtime_is_what_python_writes() {
        // Expected: datetime.fromtimestamp(sec + nsec * 1e-9, tz=timezone.utc).isoformat()
        // in Python 3.11, for (sec, nsec) = divmod(ns, 10**9).
        for (ns, want) in [
            (0, "1970-01-01T00:00:00+00:00"),
            (1_700_000_000_000_000_000, "2023-11-14T22:13:20+00:00"),
            (
                1_796_130_359_059_342_649,
                "2026-12-01T13:05:59.059343+00:00",
            ),
            (1_700_000_000_999_999_600, "2023-11-14T22:13:21+00:00"),
            (1_700_000_000_000_000_500, "2023-11-14T22:13:20+00:00"),
            (
                1_700_000_000_000_001_500,
                "2023-11-14T22:13:20.000001+00:00",
            ),
            (
                1_700_000_000_000_002_500,
                "2023-11-14T22:13:20.000002+00:00",
            ),
            (-1_500_000_000, "1969-12-31T23:59:58.500000+00:00"),
            (
                1_234_567_890_123_456_789,
                "2009-02-13T23:31:30.123457+00:00",
            ),
            (
                4_102_444_800_000_000_999,
                "2100-01-01T00:00:00.000001+00:00",
            ),
        ] {
            assert_eq!(tool_mtime(ns), want, "{ns}");
        }
    }

    #[test]
    fn known_finds_exactly_what_the_index_holds_under_the_roots() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let mut rng = fastrand::Rng::with_seed(10);
        let mut want: HashMap<Vec<u8>, (i64, u64, i64, bool)> = HashMap::new();
        let mut outside = Vec::new();
        let mut insert = conn
            .prepare(
                "INSERT INTO library_index (path_bytes, file_path, filename, file_format,
                    file_size, file_mtime, file_mtime_ns, metadata_hash, indexed_at,
                    last_verified, is_active)
                 VALUES (?1, '', '', 'mp3', ?2, '', ?3, '', '', '', ?4)",
            )
            .unwrap();
        for i in 0..20_000 {
            let root: &[u8] = match i % 3 {
                0 => b"/music/a",
                1 => b"/music/b",
                _ => b"/music/a b", // shares a prefix with a root, lies outside it
            };
            let p = random_path(&mut rng, root);
            if want.contains_key(&p) || outside.contains(&p) {
                continue;
            }
            let (size, mtime, active) = (rng.u64(..1 << 40), rng.i64(..), rng.bool());
            insert.execute((&p, size as i64, mtime, active)).unwrap();
            let id = conn.last_insert_rowid();
            if i % 3 == 2 {
                outside.push(p);
            } else {
                want.insert(p, (id, size, mtime, active));
            }
        }
        drop(insert);
        // The second root twice: overlapping roots list a file once.
        let roots = ["/music/a", "/music/b", "/music/b/"].map(PathBuf::from);
        let known = Known::load(&conn, &roots).unwrap();
        assert_eq!(known.len(), want.len());
        let mut seen = Seen::default();
        for (p, &(id, size, mtime_ns, active)) in &want {
            let k = known.get(Path::new(OsStr::from_bytes(p))).expect("known");
            assert_eq!(
                (k.id, k.size, k.mtime_ns, k.active),
                (id, size, mtime_ns, active)
            );
            if id % 2 == 0 {
                seen.insert(k);
            }
        }
        for p in &outside {
            assert!(known.get(Path::new(OsStr::from_bytes(p))).is_none());
        }
        for _ in 0..5000 {
            let p = random_path(&mut rng, b"/music/a");
            assert_eq!(
                known.get(Path::new(OsStr::from_bytes(&p))).map(|k| k.id),
                want.get(&p).map(|w| w.0)
            );
        }
        let mut listed = 0;
        for (p, k) in known.iter() {
            assert_eq!(want[p].0, k.id);
            assert_eq!(seen.contains(k), k.id % 2 == 0);
            listed += 1;
        }
        assert_eq!(listed, want.len());

        // A small part of the index: read through the path key, same answer.
        // The deepest path (ties broken by bytes): its folder is a small part whatever
        // order the map iterates in.
        let some = want
            .keys()
            .max_by_key(|p| (p.iter().filter(|&&b| b == b'/').count(), (*p).clone()))
            .unwrap()
            .clone();
        let dir = &some[..some.iter().rposition(|&b| b == b'/').unwrap()];
        let part = Known::load(&conn, &[PathBuf::from(OsStr::from_bytes(dir))]).unwrap();
        let expect = want
            .keys()
            .filter(|p| p.starts_with(dir) && p.get(dir.len()) == Some(&b'/'))
            .count();
        assert!(expect >= 1 && expect < want.len() / 2);
        assert_eq!(part.len(), expect);
        assert!(part.get(Path::new(OsStr::from_bytes(&some))).is_some());
    }
}
