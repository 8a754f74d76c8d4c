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
            "SELECT id, path_bytes, file_size, file_mtime, is_active FROM library_index
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
