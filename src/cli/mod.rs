//! Helpers of the command line that main.rs keeps out of its way: pipe-safe output and
//! the maintenance subcommands.

pub mod maintain;
pub mod out;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Result, bail};

/// Whether the real user may access `p` as `mode` (R_OK, W_OK); `None` when the question
/// does not apply (the path is absent). Only EACCES/EROFS count as "no".
fn may(p: &Path, mode: libc::c_int) -> Option<bool> {
    let c = CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(c.as_ptr(), mode) } == 0 {
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EACCES) | Some(libc::EROFS) => Some(false),
        _ => None,
    }
}

/// Say "permission denied", with the path once, before SQLite says "unable to open
/// database file" (error code 14) with the path twice and no reason. `write`: the command
/// writes (a WAL database also needs to create files beside it).
pub fn check_db_access(db: &Path, write: bool) -> Result<()> {
    if may(db, libc::R_OK) == Some(false) {
        bail!(
            "cannot open database {}: permission denied (reading it)",
            db.display()
        );
    }
    if !write {
        return Ok(());
    }
    if may(db, libc::W_OK) == Some(false) {
        bail!("cannot write database {}: permission denied", db.display());
    }
    // The nearest folder that exists is where the database, its parents or its -wal
    // file will be created.
    let mut dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    while !dir.exists() {
        match dir.parent() {
            Some(d) if !d.as_os_str().is_empty() => dir = d,
            _ => break,
        }
    }
    if may(dir, libc::W_OK) == Some(false) {
        bail!(
            "cannot write database {}: permission denied (folder {} is not writable)",
            db.display(),
            dir.display()
        );
    }
    Ok(())
}
