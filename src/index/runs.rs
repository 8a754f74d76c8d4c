//! The run log (`index_runs`): a run that ends any way but cleanly is logged failed,
//! a run whose process is gone is closed as abandoned; and per root, the device it was
//! on, so an unmounted or moved library is never taken for a deleted one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use rusqlite::params;

use crate::store::writer::{Candidate, RootState};
use crate::store::{self, Known, now_rfc3339};

/// Logs the run as failed unless it was logged as something else first.
pub(super) struct RunGuard<'a> {
    pub(super) db: &'a Path,
    pub(super) run_id: i64,
    /// The run's end is in the log already.
    pub(super) logged: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.logged {
            return;
        }
        if let Ok(conn) = rusqlite::Connection::open(self.db) {
            let _ = conn.busy_timeout(Duration::from_secs(10));
            let _ = conn.execute(
                "UPDATE index_runs SET status = 'failed', finished_at = ?1
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
    let mut stmt = conn.prepare("SELECT id, pid FROM index_runs WHERE status = 'running'")?;
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
            "UPDATE index_runs SET status = 'abandoned' WHERE id = ?1",
            [id],
        )?;
    }
    Ok(())
}

/// Per root: its active rows, its device now and as recorded at its last run.
pub(super) fn root_states(
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
pub(super) fn record_devices(
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
