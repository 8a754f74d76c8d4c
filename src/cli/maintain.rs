//! `errors`, `prune` and `forget`: looking at and trimming the index on purpose.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::Connection;
use serde::Serialize;

use musicdex::store;
use musicdex::text::{escape_control, hex};

#[derive(Debug, Serialize)]
pub struct FailedFile {
    /// The path as text (U+FFFD for bytes that are not UTF-8).
    pub path: String,
    /// The exact path as lower-case hex when it is not UTF-8, else null.
    pub path_bytes: Option<String>,
    pub error: String,
    pub last_verified: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorsReport {
    pub files: Vec<FailedFile>,
}

/// The active files whose last read failed, by path.
pub fn errors(conn: &Connection) -> Result<ErrorsReport> {
    let mut stmt = conn.prepare(
        "SELECT path_bytes, error, last_verified FROM library_index
         WHERE is_active = 1 AND error IS NOT NULL ORDER BY path_bytes",
    )?;
    let files = stmt
        .query_map([], |r| {
            let bytes: Vec<u8> = r.get(0)?;
            let exact = std::str::from_utf8(&bytes).is_ok();
            Ok(FailedFile {
                path: String::from_utf8_lossy(&bytes).into_owned(),
                path_bytes: (!exact).then(|| hex(&bytes)),
                error: r.get(1)?,
                last_verified: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ErrorsReport { files })
}

pub fn print_errors(r: &ErrorsReport, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &r.files {
        writeln!(
            out,
            "{}: {}",
            escape_control(&f.path),
            escape_control(&f.error)
        )?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Removed {
    /// Rows deleted from the index.
    pub rows: u64,
    pub dry_run: bool,
}

/// A root as the index spells it: the real path when it still exists (as `index` stores
/// them), else the absolute path given, so a library that is gone can still be named.
fn index_path(p: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(real) => Ok(real),
        Err(_) => std::path::absolute(p).with_context(|| format!("bad path {}", p.display())),
    }
}

/// `WHERE` clause and parameters for rows at or below any of `roots` (all rows if none).
fn under_roots(roots: &[PathBuf]) -> Result<(String, Vec<Vec<u8>>)> {
    if roots.is_empty() {
        return Ok(("1".into(), Vec::new()));
    }
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for r in roots {
        let exact = musicdex::media::record::path_bytes(&index_path(r)?).to_vec();
        let (lo, hi) = store::subtree_range(&exact);
        let n = args.len();
        parts.push(format!(
            "(path_bytes = ?{} OR (path_bytes >= ?{} AND path_bytes < ?{}))",
            n + 1,
            n + 2,
            n + 3
        ));
        args.extend([exact, lo, hi]);
    }
    Ok((format!("({})", parts.join(" OR ")), args))
}

/// Delete inactive rows (files missing at their last walk), only those: optionally only
/// rows last seen more than `older_than_days` ago, and only under `roots`.
pub fn prune(
    conn: &mut Connection,
    older_than_days: Option<u32>,
    roots: &[PathBuf],
    dry_run: bool,
) -> Result<Removed> {
    let (roots_sql, args) = under_roots(roots)?;
    let mut sql = format!("FROM library_index WHERE is_active = 0 AND {roots_sql}");
    let mut cutoff = None;
    if let Some(days) = older_than_days {
        // last_verified is RFC 3339 UTC in one fixed format, so text order is time order.
        let t = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        cutoff = Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        sql.push_str(&format!(" AND last_verified < ?{}", args.len() + 1));
    }
    let mut values: Vec<&dyn rusqlite::ToSql> =
        args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
    if let Some(c) = &cutoff {
        values.push(c);
    }
    let tx = conn.transaction()?;
    let rows = if dry_run {
        tx.query_row(&format!("SELECT count(*) {sql}"), values.as_slice(), |r| {
            r.get::<_, i64>(0)
        })? as u64
    } else {
        tx.execute(&format!("DELETE {sql}"), values.as_slice())? as u64
    };
    tx.commit()?;
    Ok(Removed { rows, dry_run })
}

/// Delete every row of the index at or below `root`, active or not, and its recorded
/// device. Refused without `yes`, saying how many rows it would delete.
pub fn forget(conn: &mut Connection, root: &Path, yes: bool) -> Result<Removed> {
    let root = index_path(root)?;
    let (roots_sql, args) = under_roots(std::slice::from_ref(&root))?;
    let values: Vec<&dyn rusqlite::ToSql> =
        args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
    let tx = conn.transaction()?;
    let n: i64 = tx.query_row(
        &format!("SELECT count(*) FROM library_index WHERE {roots_sql}"),
        values.as_slice(),
        |r| r.get(0),
    )?;
    if n == 0 {
        bail!("no indexed files at or below {}", root.display());
    }
    if !yes {
        bail!(
            "forget would delete all {n} rows at or below {}; run again with --yes to do it",
            root.display()
        );
    }
    let rows = tx.execute(
        &format!("DELETE FROM library_index WHERE {roots_sql}"),
        values.as_slice(),
    )? as u64;
    tx.execute(
        &format!("DELETE FROM library_roots WHERE {roots_sql}"),
        values.as_slice(),
    )?;
    tx.commit()?;
    Ok(Removed {
        rows,
        dry_run: false,
    })
}

/// After a deletion the freed pages are reused by later runs; a checkpoint folds the WAL
/// back so the database file alone is the index, as after `index`.
pub fn checkpoint(conn: &Connection) {
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}
