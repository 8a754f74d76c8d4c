//! The SQLite index: opening and migrating it, what it already knows, the batching
//! writer, and the read-side queries.

pub mod dataset;
pub mod query;
pub mod schema;
pub mod writer;

use std::collections::HashMap;
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
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let live = Path::new(&wal).exists();
    let conn = open_flags_ro(path, !live)
        .or_else(|e| {
            if live {
                open_flags_ro(path, true)
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("cannot open database {}", path.display()))?;
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
    conn.busy_timeout(Duration::from_secs(30))?;
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
    conn.busy_timeout(Duration::from_secs(30))?;
    // WAL: readers never block the writer, and a killed run leaves the last committed
    // batch intact. NORMAL is durable across process crashes; only an OS crash can
    // lose the last batches, which the next run re-indexes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    Ok(())
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
    pub retry: bool,
}

/// Every indexed file under the roots of a run, keyed by raw path bytes.
#[derive(Debug, Default)]
pub struct Known {
    pub files: HashMap<Box<[u8]>, KnownFile>,
}

impl Known {
    pub fn load(conn: &Connection, roots: &[PathBuf]) -> Result<Known> {
        let mut files = HashMap::new();
        let mut stmt = conn.prepare(
            "SELECT id, path_bytes, file_size, file_mtime, is_active,
                 error IS NOT NULL AND (error LIKE 'stat: %' OR error LIKE 'open: %'
                     OR error LIKE 'read: %')
             FROM library_index
             WHERE path_bytes = ?1 OR (path_bytes >= ?2 AND path_bytes < ?3)",
        )?;
        for root in roots {
            let exact = path_bytes(root).to_vec();
            let (lo, hi) = subtree_range(&exact);
            let rows = stmt.query_map((&exact, &lo, &hi), |r| {
                Ok((
                    r.get::<_, Vec<u8>>(1)?,
                    KnownFile {
                        id: r.get(0)?,
                        size: r.get::<_, i64>(2)? as u64,
                        mtime_ns: r.get(3)?,
                        active: r.get::<_, i64>(4)? != 0,
                        retry: r.get::<_, i64>(5)? != 0,
                    },
                ))
            })?;
            for row in rows {
                let (p, k) = row?;
                files.insert(p.into_boxed_slice(), k);
            }
        }
        Ok(Known { files })
    }

    pub fn get(&self, path: &Path) -> Option<&KnownFile> {
        self.files.get(path_bytes(path))
    }
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

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
