//! `musicdex vet`: classify every audio file of a folder of new music against the
//! library, without adding it to the library. Classifying is in `classify`, the
//! lists in `export`, the moves in `moves`; this module runs them and records the run.

mod classify;
mod export;
mod moves;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::groups::MatchKind;
use super::sql;
use crate::engine::{self, CHANNEL_BATCHES, Counters, EngineContext, EngineKind};
use crate::media::FileRecord;
use crate::scan::{WalkOptions, WalkProblems};
use crate::store::writer::Change;
use crate::store::{Known, now_rfc3339};
use classify::Classifier;
use export::export;
use moves::move_duplicates;
pub use moves::move_no_replace;

/// Fuzzy matches from here up to [`CERTAIN`] are uncertain, as in the replaced tool.
pub const UNCERTAIN_FLOOR: f64 = 0.7;
/// Fuzzy matches at or above this are duplicates (listed, never moved).
pub const CERTAIN: f64 = 0.95;
/// A lossy incoming file with at least this times the bitrate of every lossy library
/// match is an upgrade.
pub const UPGRADE_BITRATE_RATIO: f64 = 1.5;

#[derive(Clone, Debug)]
pub struct VetOptions {
    pub folder: PathBuf,
    pub engine: EngineKind,
    pub threads: usize,
    pub walk: WalkOptions,
    /// Minimum title similarity for a fuzzy match to count at all.
    pub threshold: f64,
    pub export: Option<PathBuf>,
    pub move_duplicates_to: Option<PathBuf>,
    pub dry_run: bool,
    /// Draw a progress line on stderr while the folder is read.
    pub progress: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    New,
    /// No match elsewhere, but the file itself is in the index (the folder lies inside
    /// the library).
    Indexed,
    Duplicate,
    /// Matches library files but is better than every one of them: keep it.
    Upgrade,
    Uncertain,
    Unreadable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::New => "new",
            Verdict::Indexed => "indexed",
            Verdict::Duplicate => "duplicate",
            Verdict::Upgrade => "upgrade",
            Verdict::Uncertain => "uncertain",
            Verdict::Unreadable => "unreadable",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Match {
    pub kind: MatchKind,
    pub confidence: f64,
    /// The library file matched, the best quality one when several match equally.
    pub path: String,
    /// Its exact path as lower-case hex when it is not UTF-8 (`path` is lossy), else null.
    pub path_bytes: Option<String>,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub format: String,
    pub bitrate: Option<u32>,
    pub duration: Option<f64>,
    /// Identical content (size and hash), or identical tags with agreeing durations:
    /// only such duplicates are moved.
    pub certain: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct VetFile {
    pub path: String,
    /// The exact path as lower-case hex when it is not UTF-8 (`path` is lossy), else null.
    pub path_bytes: Option<String>,
    #[serde(skip)]
    pub path_buf: PathBuf,
    pub verdict: Verdict,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub format: String,
    pub bitrate: Option<u32>,
    pub duration: Option<f64>,
    #[serde(rename = "match")]
    pub matched: Option<Match>,
    /// Why an unreadable file could not be read or parsed.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    /// `from` and `to` exactly, as lower-case hex, when they are not UTF-8; else null.
    pub from_bytes: Option<String>,
    pub to_bytes: Option<String>,
    /// `moved`, `would move`, `skipped: target exists`, or `failed: <reason>`.
    pub status: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub total: u64,
    pub new: u64,
    pub indexed: u64,
    pub duplicate: u64,
    pub upgrade: u64,
    pub uncertain: u64,
    pub unreadable: u64,
    pub moved: u64,
    /// Moves that failed: the file stayed where it was; the exit status is non-zero.
    pub move_failed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct VetReport {
    pub folder: String,
    pub vetted_at: String,
    pub engine: &'static str,
    pub threshold: f64,
    pub counts: Counts,
    /// Directories below the folder that could not be read: their files are not vetted.
    pub walk_errors: u64,
    pub files: Vec<VetFile>,
    pub moves: Vec<Move>,
    pub exported: Vec<String>,
    pub history_id: i64,
    /// When this folder was last vetted before, by musicdex or by the replaced tool's
    /// `ImportVetter` (both write `vetting_history`).
    pub previously_vetted: Option<String>,
    pub elapsed_secs: f64,
}

/// Read every audio file below `folder` with the given engine, exactly as `index`
/// would, and return the records instead of writing them. An empty `Known` makes the
/// engine read every file. Files below `exclude` (the move destination) are dropped.
pub fn scan_folder(
    folder: &Path,
    kind: EngineKind,
    walk: &WalkOptions,
    threads: usize,
    progress: bool,
    exclude: Option<&Path>,
) -> Result<(Vec<FileRecord>, WalkProblems)> {
    let roots = [folder.to_path_buf()];
    let known = Known::default();
    let counters = Counters::default();
    let done = AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Change>>(CHANNEL_BATCHES);
    std::thread::scope(|s| {
        let engine = s.spawn(|| {
            let ctx = EngineContext {
                roots: &roots,
                walk,
                known: &known,
                full: true,
                threads: threads.max(1),
                counters: &counters,
                // vet writes nothing a stop would need to save; Ctrl-C ends it at once.
                stop: crate::engine::StopFlag::never(),
                uring: Default::default(),
                limits: Default::default(),
            };
            engine::run(kind, &ctx, tx)
        });
        if progress {
            s.spawn(|| progress_loop(&counters, &done));
        }
        let mut records = Vec::new();
        for batch in rx {
            for change in batch {
                if let Change::Record { record, .. } = change
                    && !exclude.is_some_and(|x| record.path.starts_with(x))
                {
                    records.push(*record);
                }
            }
        }
        let joined = engine.join();
        done.store(true, Ordering::Relaxed);
        let problems = match joined {
            Ok(r) => r?.0,
            Err(_) => bail!("the {} engine panicked", kind.name()),
        };
        records.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((records, problems))
    })
}

/// `vet` of a large folder takes seconds before it can say anything: show how far the
/// read has come, as `index` does.
fn progress_loop(counters: &Counters, done: &AtomicBool) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    while !done.load(Ordering::Relaxed) {
        let found = counters.found.load(Ordering::Relaxed);
        let read = counters.read.load(Ordering::Relaxed);
        let rate = read as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "vet: {read} of {found} files read · {rate:.0} files/s"
        ));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// Scan, classify, export, move, and record the run in `vetting_history`.
pub fn run(conn: &Connection, opts: &VetOptions) -> Result<VetReport> {
    let started = Instant::now();
    if !(0.0..=1.0).contains(&opts.threshold) {
        bail!("--threshold must be between 0 and 1");
    }
    let folder = crate::index::normalise_roots(std::slice::from_ref(&opts.folder))?
        .pop()
        .context("no folder")?;
    if !folder.is_dir() {
        bail!("{} is not a folder", folder.display());
    }
    let move_to = match &opts.move_duplicates_to {
        Some(to) => Some(
            std::path::absolute(to).with_context(|| format!("cannot resolve {}", to.display()))?,
        ),
        None => None,
    };
    // A destination inside the folder must not be vetted again next time (_dupes/_dupes).
    let (records, problems) = scan_folder(
        &folder,
        opts.engine,
        &opts.walk,
        opts.threads,
        opts.progress,
        move_to.as_deref(),
    )?;
    let vetted_at = now_rfc3339();

    let mut classifier = Classifier::new(conn, opts.threshold, &folder);
    let mut files = Vec::with_capacity(records.len());
    for rec in &records {
        files.push(classifier.classify(rec)?);
    }
    let mut counts = Counts {
        total: files.len() as u64,
        ..Counts::default()
    };
    for f in &files {
        match f.verdict {
            Verdict::New => counts.new += 1,
            Verdict::Indexed => counts.indexed += 1,
            Verdict::Duplicate => counts.duplicate += 1,
            Verdict::Upgrade => counts.upgrade += 1,
            Verdict::Uncertain => counts.uncertain += 1,
            Verdict::Unreadable => counts.unreadable += 1,
        }
    }

    let folder_text = folder.to_string_lossy().into_owned();
    let mut exported = Vec::new();
    if let Some(dir) = &opts.export {
        exported = export(dir, &folder, &vetted_at, &files)?;
    }
    let mut moves = Vec::new();
    if let Some(dir) = &move_to {
        moves = move_duplicates(&folder, dir, &files, opts.dry_run);
        counts.moved = moves.iter().filter(|m| m.status == "moved").count() as u64;
        counts.move_failed = moves
            .iter()
            .filter(|m| m.status.starts_with("failed"))
            .count() as u64;
    }

    let elapsed = started.elapsed().as_secs_f64();
    let previously_vetted: Option<String> = conn
        .query_row(sql::PREVIOUSLY_VETTED, [&folder_text], |r| r.get(0))
        .unwrap_or(None);
    let writable = history_connection(conn);
    let conn = writable.as_ref().unwrap_or(conn);
    let inserted = conn.execute(
        sql::INSERT_HISTORY,
        params![
            vetted_at,
            folder_text,
            opts.engine.name(),
            opts.threshold,
            elapsed,
            counts.total as i64,
            counts.new as i64,
            counts.duplicate as i64,
            counts.uncertain as i64,
            counts.unreadable as i64,
            counts.moved as i64,
            opts.export
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            opts.move_duplicates_to
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            opts.dry_run,
        ],
    );
    // A user who may only read the index gets one warning, not an error.
    let history_id = match inserted {
        Ok(_) => conn.last_insert_rowid(),
        Err(e) => {
            eprintln!("musicdex: vetting_history not recorded (the index is read-only here): {e}");
            0
        }
    };
    Ok(VetReport {
        folder: folder_text,
        vetted_at,
        engine: opts.engine.name(),
        threshold: opts.threshold,
        counts,
        walk_errors: problems.errors,
        files,
        moves,
        exported,
        history_id,
        previously_vetted,
        elapsed_secs: elapsed,
    })
}

/// The connection vet read through is read-only unless it moves files: for the one
/// history row, a writable one where the user may write the index (`None`: use the one
/// in hand, which then fails with the reason).
fn history_connection(conn: &Connection) -> Option<Connection> {
    if !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        return None;
    }
    let path = std::path::Path::new(conn.path().filter(|p| !p.is_empty())?);
    // Only where both the file and its folder may be written: SQLite opens a file it
    // cannot write read-only, and would then leave `-wal`/`-shm` files behind.
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    for p in [Some(path), folder].into_iter().flatten() {
        rustix::fs::access(p, rustix::fs::Access::WRITE_OK).ok()?;
    }
    crate::store::open_existing(path).ok()
}
