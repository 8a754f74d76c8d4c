//! `musicdex vet`: classify every audio file of a folder of new music against the
//! library, without adding it to the library.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::artists::ArtistBlocks;
use super::groups::{
    CONTENT_CONFIDENCE, LibraryFile, METADATA_CONFIDENCE, MatchKind, UNKNOWN_DURATION_CONFIDENCE,
    durations_agree, is_lossless, rank,
};
use super::normalize::{artist_key, numbers_of_key, title_key};
use super::similarity::{Prepared, similarity_at_least};
use super::sql;
use crate::engine::{self, CHANNEL_BATCHES, Counters, EngineContext, EngineKind};
use crate::media::FileRecord;
use crate::media::record::path_bytes;
use crate::scan::{WalkOptions, WalkProblems};
use crate::store::writer::Change;
use crate::store::{Known, now_rfc3339};
use crate::text::escape_control_bytes;

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

/// Looks files up in the library. Artist blocks are loaded on first need: a folder of
/// untagged files never pays for them.
struct Classifier<'c> {
    conn: &'c Connection,
    threshold: f64,
    artists: Option<ArtistBlocks>,
    /// The vetted folder's path bytes with a trailing '/': library rows below it are the
    /// vetted files themselves (or their neighbours), never a match.
    folder_prefix: Vec<u8>,
}

/// What one lookup found: library files of one kind that match, best first.
struct Found {
    kind: MatchKind,
    confidence: f64,
    /// Durations agree (or content is identical); `false` when a duration is unknown.
    durations_known: bool,
    files: Vec<LibraryFile>,
}

impl<'c> Classifier<'c> {
    fn new(conn: &'c Connection, threshold: f64, folder: &Path) -> Classifier<'c> {
        let mut folder_prefix = path_bytes(folder).to_vec();
        if folder_prefix.last() != Some(&b'/') {
            folder_prefix.push(b'/');
        }
        Classifier {
            conn,
            threshold,
            artists: None,
            folder_prefix,
        }
    }

    fn outside(&self, f: &LibraryFile) -> bool {
        !f.path_bytes.starts_with(&self.folder_prefix)
    }

    fn classify(&mut self, rec: &FileRecord) -> Result<VetFile> {
        let mut file = VetFile {
            path: rec.path.to_string_lossy().into_owned(),
            path_bytes: exact_hex(&rec.path),
            path_buf: rec.path.clone(),
            verdict: Verdict::New,
            artist: rec.tags.artist.clone(),
            title: rec.tags.title.clone(),
            format: rec.format.clone(),
            bitrate: rec.tags.bitrate,
            duration: rec.tags.duration,
            matched: None,
            error: None,
        };
        let found = self.find(rec)?;
        match found {
            Some(found) => {
                let best = &found.files[0];
                let certain = match found.kind {
                    MatchKind::Content => true,
                    // by_duration: only agreeing durations (silent-ended PCM rips of
                    // different recordings hash alike, see media::audio_hash).
                    MatchKind::Audio => found.durations_known,
                    MatchKind::Metadata => found.durations_known,
                    MatchKind::Fuzzy => false,
                };
                file.verdict = if !found.durations_known || found.confidence < CERTAIN {
                    Verdict::Uncertain
                } else if found.kind != MatchKind::Content
                    && found.files.iter().all(|f| better(rec, f))
                {
                    Verdict::Upgrade
                } else {
                    Verdict::Duplicate
                };
                file.matched = Some(Match {
                    kind: found.kind,
                    confidence: found.confidence,
                    path: best.path.clone(),
                    path_bytes: best.exact_path.clone(),
                    artist: best.artist.clone(),
                    title: best.title.clone(),
                    format: best.format.clone(),
                    bitrate: best.bitrate,
                    duration: best.duration,
                    certain,
                });
            }
            None if rec.error.is_some() => {
                file.verdict = Verdict::Unreadable;
                file.error = rec.error.as_ref().map(ToString::to_string);
            }
            None if self.is_indexed(&rec.path)? => file.verdict = Verdict::Indexed,
            None => {}
        }
        Ok(file)
    }

    /// The strongest match of `rec` among library files outside the folder.
    fn find(&mut self, rec: &FileRecord) -> Result<Option<Found>> {
        // Identical bytes decide even when the tags could not be parsed.
        if let Some(hash) = &rec.content_hash {
            let files: Vec<LibraryFile> = self
                .rows(&sql::vet_by_content(), hash)?
                .into_iter()
                .filter(|f| f.size == rec.stat.size && same_bytes_if_small(&rec.path, f))
                .collect();
            if !files.is_empty() {
                return Ok(Some(Found {
                    kind: MatchKind::Content,
                    confidence: CONTENT_CONFIDENCE,
                    durations_known: true,
                    files,
                }));
            }
        }
        // The same recording under other tags: the same payload length too (silent-ended
        // PCM recordings hash alike), and certain once the durations agree.
        if let Some(hash) = &rec.audio_hash {
            let files = self.rows(&sql::vet_by_audio(rec.audio_len), hash)?;
            if let Some(found) = by_duration(rec, files, MatchKind::Audio, CONTENT_CONFIDENCE) {
                return Ok(Some(found));
            }
        }
        if rec.error.is_some() {
            return Ok(None);
        }
        let artist = rec.tags.artist.as_deref().unwrap_or("");
        let title = rec.tags.title.as_deref().unwrap_or("");
        if artist.trim().is_empty() && title.trim().is_empty() {
            // The metadata hash is the per-file fallback: it identifies nothing.
            return Ok(None);
        }
        let files = self.rows(&sql::vet_by_metadata(), &rec.metadata_hash)?;
        if let Some(found) = by_duration(rec, files, MatchKind::Metadata, METADATA_CONFIDENCE) {
            return Ok(Some(found));
        }
        self.fuzzy(rec, artist, title)
    }

    /// Active library rows returned by `sql` for `key`, outside the vetted folder, best
    /// quality first.
    fn rows(&self, sql: &str, key: &str) -> Result<Vec<LibraryFile>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut files: Vec<LibraryFile> = stmt
            .query_map([key], LibraryFile::from_row)?
            .filter(|f| f.as_ref().map_or(true, |f| self.outside(f)))
            .collect::<rusqlite::Result<_>>()?;
        rank(&mut files);
        Ok(files)
    }

    /// Whether the file itself is an active row of the index.
    fn is_indexed(&self, path: &Path) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(sql::VET_IS_INDEXED)?;
        Ok(stmt.exists([path_bytes(path)])?)
    }

    /// The most similar titles by the same (folded) artist with the same numbers and no
    /// disagreeing duration, when they reach the threshold.
    fn fuzzy(&mut self, rec: &FileRecord, artist: &str, title: &str) -> Result<Option<Found>> {
        let key = title_key(title);
        if artist_key(artist).is_empty() || key.is_empty() {
            return Ok(None);
        }
        if self.artists.is_none() {
            self.artists = Some(ArtistBlocks::load(self.conn)?);
        }
        let Some(block) = self.artists.as_ref().and_then(|a| a.block_of(artist)) else {
            return Ok(None);
        };
        let wanted = Prepared::new(&key);
        let numbers = numbers_of_key(&key);
        let mut stmt = self.conn.prepare_cached(&sql::vet_titles_of_artist())?;
        let mut scored: Vec<(f64, i64)> = Vec::new();
        for spelling in &block.spellings {
            let mut rows = stmt.query([spelling])?;
            while let Some(r) = rows.next()? {
                let t: String = r.get(1)?;
                let k = title_key(&t);
                // "Part 2" never matches "Part 1", however close the letters.
                if numbers_of_key(&k) != numbers {
                    continue;
                }
                let s = similarity_at_least(&wanted, &Prepared::new(&k), self.threshold);
                if let Some(s) = s.filter(|&s| s >= UNCERTAIN_FLOOR) {
                    scored.push((s, r.get(0)?));
                }
            }
        }
        // Highest similarity first; the first tier with a file that may match wins.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut by_id = self.conn.prepare_cached(&sql::vet_file_by_id())?;
        let mut i = 0;
        while i < scored.len() {
            let score = scored[i].0;
            let mut tier = Vec::new();
            while i < scored.len() && scored[i].0 == score {
                let f = by_id.query_row([scored[i].1], LibraryFile::from_row)?;
                if self.outside(&f) {
                    tier.push(f);
                }
                i += 1;
            }
            rank(&mut tier);
            if let Some(found) = by_duration(rec, tier, MatchKind::Fuzzy, score) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// The files whose durations agree with `rec`'s; failing those, the ones whose duration
/// (or `rec`'s) is unknown, as an uncertain match; `None` when all disagree.
fn by_duration(
    rec: &FileRecord,
    files: Vec<LibraryFile>,
    kind: MatchKind,
    confidence: f64,
) -> Option<Found> {
    let mut agree = Vec::new();
    let mut unknown = Vec::new();
    for f in files {
        match durations_agree(rec.tags.duration, f.duration) {
            Some(true) => agree.push(f),
            Some(false) => {}
            None => unknown.push(f),
        }
    }
    if !agree.is_empty() {
        return Some(Found {
            kind,
            confidence,
            durations_known: true,
            files: agree,
        });
    }
    (!unknown.is_empty()).then(|| Found {
        kind,
        confidence: confidence.min(UNKNOWN_DURATION_CONFIDENCE),
        durations_known: false,
        files: unknown,
    })
}

/// Whether the incoming file is a better copy than library file `f`: lossless over
/// lossy, or a lossy file with at least [`UPGRADE_BITRATE_RATIO`] times its bitrate.
fn better(rec: &FileRecord, f: &LibraryFile) -> bool {
    let lossless = is_lossless(&rec.format, rec.tags.bitrate);
    if f.lossless {
        return false;
    }
    if lossless {
        return true;
    }
    match (rec.tags.bitrate, f.bitrate) {
        (Some(mine), Some(theirs)) if theirs > 0 => {
            f64::from(mine) >= UPGRADE_BITRATE_RATIO * f64::from(theirs)
        }
        _ => false,
    }
}

/// For files shorter than two hash chunks the content hash does not cover every byte
/// (64 KiB to 128 KiB: the first 64 KiB only), so a match there is only certain once
/// the bytes are compared. Larger files are trusted to their head, tail and size.
fn same_bytes_if_small(path: &Path, f: &LibraryFile) -> bool {
    if f.size >= 2 * crate::media::hash::CHUNK || f.size <= crate::media::hash::CHUNK {
        return true;
    }
    let theirs = Path::new(std::ffi::OsStr::from_bytes(&f.path_bytes));
    match (fs::read(path), fs::read(theirs)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Write `new_songs.txt`, `already_indexed.txt`, `duplicates.txt`, `upgrades.txt`,
/// `uncertain.txt` and `unreadable.txt`: a `#` header (folder, time, count, columns),
/// then one file per line; columns are separated by tabs. Paths are written with their
/// exact bytes (a name that is not UTF-8 stays as it is on disk); only control
/// characters are escaped, so a tab or newline in a name cannot break a line.
fn export(dir: &Path, folder: &Path, at: &str, files: &[VetFile]) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    const MATCH_COLUMNS: &str = "path, match, confidence, library path, certain, \
         duration, library duration, format/bitrate, library format/bitrate";
    let lists: [(&str, &str, Verdict, &str); 6] = [
        ("new_songs.txt", "new songs", Verdict::New, "path"),
        (
            "already_indexed.txt",
            "files already in the index",
            Verdict::Indexed,
            "path",
        ),
        (
            "duplicates.txt",
            "duplicates",
            Verdict::Duplicate,
            MATCH_COLUMNS,
        ),
        (
            "upgrades.txt",
            "better copies of library files (never moved)",
            Verdict::Upgrade,
            MATCH_COLUMNS,
        ),
        (
            "uncertain.txt",
            "uncertain matches",
            Verdict::Uncertain,
            MATCH_COLUMNS,
        ),
        (
            "unreadable.txt",
            "unreadable files",
            Verdict::Unreadable,
            "path, error",
        ),
    ];
    let secs = |d: Option<f64>| d.map_or("?".to_string(), |d| format!("{d:.1}"));
    let quality = |format: &str, bitrate: Option<u32>| {
        format!("{format}/{}", bitrate.map_or("?".into(), |b| b.to_string()))
    };
    let mut written = Vec::new();
    for (name, what, verdict, columns) in lists {
        let path = dir.join(name);
        let chosen: Vec<&VetFile> = files.iter().filter(|f| f.verdict == verdict).collect();
        let mut out = io::BufWriter::new(
            fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        writeln!(out, "# musicdex vet: {what}")?;
        out.write_all(b"# folder: ")?;
        out.write_all(&escape_control_bytes(folder.as_os_str().as_bytes()))?;
        writeln!(out)?;
        writeln!(out, "# time: {at}")?;
        writeln!(out, "# count: {}", chosen.len())?;
        writeln!(out, "# columns (tab-separated): {columns}")?;
        for f in chosen {
            out.write_all(&escape_control_bytes(f.path_buf.as_os_str().as_bytes()))?;
            match (&f.matched, &f.error) {
                (Some(m), _) => {
                    write!(out, "\t{}\t{:.2}\t", m.kind.name(), m.confidence)?;
                    let theirs = m.path_bytes.as_deref().map_or_else(
                        || m.path.as_bytes().to_vec(),
                        |hex| unhex(hex).unwrap_or_else(|| m.path.as_bytes().to_vec()),
                    );
                    out.write_all(&escape_control_bytes(&theirs))?;
                    writeln!(
                        out,
                        "\t{}\t{}\t{}\t{}\t{}",
                        if m.certain { "certain" } else { "not certain" },
                        secs(f.duration),
                        secs(m.duration),
                        quality(&f.format, f.bitrate),
                        quality(&m.format, m.bitrate),
                    )?
                }
                (None, Some(e)) => writeln!(out, "\t{}", e.replace(['\t', '\n'], " "))?,
                (None, None) => writeln!(out)?,
            }
        }
        out.flush()?;
        written.push(path.to_string_lossy().into_owned());
    }
    Ok(written)
}

/// The bytes of [`exact_hex`]'s output.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The exact form of a path for JSON: lower-case hex when it is not UTF-8, else None
/// (the `path` beside it is then exact).
fn exact_hex(p: &Path) -> Option<String> {
    let b = p.as_os_str().as_bytes();
    std::str::from_utf8(b).is_err().then(|| crate::text::hex(b))
}

/// Move the certain duplicates below `to`, keeping their paths relative to `folder`.
/// An existing target is never replaced and nothing is deleted: a file only leaves its
/// place once it exists, complete, at the target. Upgrades, fuzzy and uncertain
/// matches stay.
fn move_duplicates(folder: &Path, to: &Path, files: &[VetFile], dry_run: bool) -> Vec<Move> {
    let mut moves = Vec::new();
    let certain = files.iter().filter(|f| {
        f.verdict == Verdict::Duplicate && f.matched.as_ref().is_some_and(|m| m.certain)
    });
    for f in certain {
        let rel = f.path_buf.strip_prefix(folder).unwrap_or(&f.path_buf);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        let target = to.join(rel);
        let status = if dry_run {
            if target.symlink_metadata().is_ok() {
                "skipped: target exists".to_string()
            } else {
                "would move".to_string()
            }
        } else {
            match move_no_replace(&f.path_buf, &target) {
                Ok(()) => "moved".to_string(),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    "skipped: target exists".to_string()
                }
                Err(e) => format!("failed: {e}"),
            }
        };
        moves.push(Move {
            from: f.path.clone(),
            to: target.to_string_lossy().into_owned(),
            from_bytes: f.path_bytes.clone(),
            to_bytes: exact_hex(&target),
            status,
        });
    }
    moves
}

/// Rename without replacing (renameat2 RENAME_NOREPLACE). Across file systems, copy
/// into a file created exclusively, verify it, and only then remove the source.
/// `AlreadyExists` means the target exists; every other error is a failure, after which
/// the source is untouched.
pub fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        // Not AlreadyExists: a file in the way of a folder is a failure, not "target
        // exists".
        fs::create_dir_all(parent).map_err(|e| {
            io::Error::other(format!("cannot create folder {}: {e}", parent.display()))
        })?;
    }
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(rustix::io::Errno::XDEV) => copy_then_remove(from, to),
        // File systems without RENAME_NOREPLACE: link() never replaces either.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => match fs::hard_link(from, to) {
            Ok(()) => fs::remove_file(from),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(_) => copy_then_remove(from, to),
        },
        Err(e) => Err(e.into()),
    }
}

/// The move across file systems: copy into a new file, keep mode and times, sync, read
/// the copy back and compare size and MD5 with the source's, sync the folder entry, and
/// only then remove the source. On any failure the partial copy (ours, created
/// exclusively) is removed and the source stays.
fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = fs::File::open(from)?;
    let meta = src.metadata()?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied = (|| -> io::Result<()> {
        let (n, src_md5) = copy_hashing(&mut src, &mut dst)?;
        if n != meta.len() || src.metadata()?.len() != meta.len() {
            return Err(io::Error::other("source changed while copied"));
        }
        dst.set_permissions(meta.permissions())?;
        dst.set_times(
            fs::FileTimes::new()
                .set_modified(meta.modified()?)
                .set_accessed(meta.accessed()?),
        )?;
        dst.sync_all()?;
        let mut back = fs::File::open(to)?;
        let (m, dst_md5) = copy_hashing(&mut back, &mut io::sink())?;
        if m != n || dst_md5 != src_md5 {
            return Err(io::Error::other(
                "the copy does not read back as the source",
            ));
        }
        if let Some(parent) = to.parent() {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    match copied {
        Ok(()) => fs::remove_file(from),
        Err(e) => {
            let _ = fs::remove_file(to);
            Err(e)
        }
    }
}

/// Copy `from` to `to`, returning the byte count and the MD5 of what was copied.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<(u64, [u8; 16])> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        md5.update(&buf[..got]);
        to.write_all(&buf[..got])?;
        n += got as u64;
    }
    to.flush()?;
    Ok((n, md5.finalize().into()))
}
