//! `musicdex vet`: classify every audio file of a folder of new music against the
//! library, without adding it to the library.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::groups::{
    ARTIST_ROWS, ArtistBlocks, CONTENT_CONFIDENCE, CONTENT_ROWS, FILE_COLUMNS_AND_PATH, HAS_TAGS,
    LibraryFile, METADATA_CONFIDENCE, METADATA_ROWS, MatchKind, rank,
};
use super::normalize::{artist_key, title_key};
use super::similarity::{Prepared, similarity_at_least};
use crate::engine::{self, CHANNEL_BATCHES, Counters, EngineContext, EngineKind};
use crate::media::FileRecord;
use crate::media::record::path_bytes;
use crate::scan::{WalkOptions, WalkProblems};
use crate::store::writer::Change;
use crate::store::{Known, now_rfc3339};

/// Fuzzy matches from here up to [`CERTAIN`] are uncertain, as in the replaced tool.
pub const UNCERTAIN_FLOOR: f64 = 0.7;
/// Fuzzy matches at or above this are duplicates.
pub const CERTAIN: f64 = 0.95;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    New,
    Duplicate,
    Uncertain,
    Unreadable,
}

#[derive(Clone, Debug, Serialize)]
pub struct Match {
    pub kind: MatchKind,
    pub confidence: f64,
    /// The library file matched, the best quality one when several match equally.
    pub path: String,
    pub artist: Option<String>,
    pub title: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VetFile {
    pub path: String,
    #[serde(skip)]
    pub path_buf: PathBuf,
    pub verdict: Verdict,
    pub artist: Option<String>,
    pub title: Option<String>,
    #[serde(rename = "match")]
    pub matched: Option<Match>,
    /// Why an unreadable file could not be read or parsed.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    /// `moved`, `would move`, `skipped: target exists`, or `failed: <reason>`.
    pub status: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub total: u64,
    pub new: u64,
    pub duplicate: u64,
    pub uncertain: u64,
    pub unreadable: u64,
    pub moved: u64,
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
    pub elapsed_secs: f64,
}

/// Read every audio file below `folder` with the given engine, exactly as `index`
/// would, and return the records instead of writing them. An empty `Known` makes the
/// engine read every file.
pub fn scan_folder(
    folder: &Path,
    kind: EngineKind,
    walk: &WalkOptions,
    threads: usize,
) -> Result<(Vec<FileRecord>, WalkProblems)> {
    let roots = [folder.to_path_buf()];
    let known = Known::default();
    let counters = Counters::default();
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
            };
            engine::run(kind, &ctx, tx)
        });
        let mut records = Vec::new();
        for batch in rx {
            for change in batch {
                if let Change::Record { record, .. } = change {
                    records.push(*record);
                }
            }
        }
        let problems = match engine.join() {
            Ok(r) => r?.0,
            Err(_) => bail!("the {} engine panicked", kind.name()),
        };
        records.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((records, problems))
    })
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
    let (records, problems) = scan_folder(&folder, opts.engine, &opts.walk, opts.threads)?;
    let vetted_at = now_rfc3339();

    let mut classifier = Classifier::new(conn, opts.threshold);
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
            Verdict::Duplicate => counts.duplicate += 1,
            Verdict::Uncertain => counts.uncertain += 1,
            Verdict::Unreadable => counts.unreadable += 1,
        }
    }

    let folder_text = folder.to_string_lossy().into_owned();
    let mut exported = Vec::new();
    if let Some(dir) = &opts.export {
        exported = export(dir, &folder_text, &vetted_at, &files)?;
    }
    let mut moves = Vec::new();
    if let Some(dir) = &opts.move_duplicates_to {
        moves = move_duplicates(&folder, dir, &files, opts.dry_run)?;
        counts.moved = moves.iter().filter(|m| m.status == "moved").count() as u64;
    }

    let elapsed = started.elapsed().as_secs_f64();
    let writable = history_connection(conn);
    let conn = writable.as_ref().unwrap_or(conn);
    let inserted = conn.execute(
        "INSERT INTO vetting_history (vetted_at, folder, engine, threshold, duration_secs,
            total_files, new_songs, duplicates, uncertain, unreadable, moved, export_dir,
            move_dir, dry_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
}

impl<'c> Classifier<'c> {
    fn new(conn: &'c Connection, threshold: f64) -> Classifier<'c> {
        Classifier {
            conn,
            threshold,
            artists: None,
        }
    }

    fn classify(&mut self, rec: &FileRecord) -> Result<VetFile> {
        let mut file = VetFile {
            path: rec.path.to_string_lossy().into_owned(),
            path_buf: rec.path.clone(),
            verdict: Verdict::New,
            artist: rec.tags.artist.clone(),
            title: rec.tags.title.clone(),
            matched: None,
            error: None,
        };
        let own = path_bytes(&rec.path);
        // Identical bytes decide even when the tags could not be parsed.
        if let Some(hash) = &rec.content_hash {
            let sql = format!(
                "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index
                 WHERE file_content_hash = ?1 AND {CONTENT_ROWS}"
            );
            if let Some(m) = self.best(&sql, hash, own)? {
                file.verdict = Verdict::Duplicate;
                file.matched = Some(matched(MatchKind::Content, CONTENT_CONFIDENCE, m));
                return Ok(file);
            }
        }
        if let Some(e) = &rec.error {
            file.verdict = Verdict::Unreadable;
            file.error = Some(e.clone());
            return Ok(file);
        }
        let artist = rec.tags.artist.as_deref().unwrap_or("");
        let title = rec.tags.title.as_deref().unwrap_or("");
        if artist.trim().is_empty() && title.trim().is_empty() {
            // The metadata hash is the per-file fallback: it identifies nothing.
            return Ok(file);
        }
        let sql = format!(
            "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index
             WHERE metadata_hash = ?1 AND {METADATA_ROWS} AND {HAS_TAGS}"
        );
        if let Some(m) = self.best(&sql, &rec.metadata_hash, own)? {
            file.verdict = Verdict::Duplicate;
            file.matched = Some(matched(MatchKind::Metadata, METADATA_CONFIDENCE, m));
            return Ok(file);
        }
        if let Some((score, m)) = self.fuzzy(artist, title, own)? {
            if score >= CERTAIN {
                file.verdict = Verdict::Duplicate;
            } else if score >= UNCERTAIN_FLOOR {
                file.verdict = Verdict::Uncertain;
            }
            if file.verdict != Verdict::New {
                file.matched = Some(matched(MatchKind::Fuzzy, score, m));
            }
        }
        Ok(file)
    }

    /// The best quality active library file returned by `sql` for `key`, other than
    /// the vetted file itself (a folder inside the library is vetted against the rest).
    fn best(&self, sql: &str, key: &str, own: &[u8]) -> Result<Option<LibraryFile>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut files: Vec<LibraryFile> = stmt
            .query_map([key], LibraryFile::from_row)?
            .filter(|f| f.as_ref().map_or(true, |f| f.path_bytes != own))
            .collect::<rusqlite::Result<_>>()?;
        rank(&mut files);
        Ok(files.into_iter().next())
    }

    /// The most similar title by the same (folded) artist, when it reaches the
    /// threshold.
    fn fuzzy(
        &mut self,
        artist: &str,
        title: &str,
        own: &[u8],
    ) -> Result<Option<(f64, LibraryFile)>> {
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
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, title FROM library_index WHERE artist = ?1 AND {ARTIST_ROWS}"
        ))?;
        let mut scored: Vec<(f64, i64)> = Vec::new();
        for spelling in &block.spellings {
            let mut rows = stmt.query([spelling])?;
            while let Some(r) = rows.next()? {
                let t: String = r.get(1)?;
                let s =
                    similarity_at_least(&wanted, &Prepared::new(&title_key(&t)), self.threshold);
                if let Some(s) = s {
                    scored.push((s, r.get(0)?));
                }
            }
        }
        // Highest similarity first; among equals, the best quality file.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut by_id = self.conn.prepare_cached(&format!(
            "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index WHERE id = ?1"
        ))?;
        let mut i = 0;
        while i < scored.len() {
            let score = scored[i].0;
            let mut tier = Vec::new();
            while i < scored.len() && scored[i].0 == score {
                let f = by_id.query_row([scored[i].1], LibraryFile::from_row)?;
                if f.path_bytes != own {
                    tier.push(f);
                }
                i += 1;
            }
            rank(&mut tier);
            if let Some(f) = tier.into_iter().next() {
                return Ok(Some((score, f)));
            }
        }
        Ok(None)
    }
}

fn matched(kind: MatchKind, confidence: f64, f: LibraryFile) -> Match {
    Match {
        kind,
        confidence,
        path: f.path,
        artist: f.artist,
        title: f.title,
    }
}

/// Write `new_songs.txt`, `duplicates.txt`, `uncertain.txt` and `unreadable.txt`:
/// a `#` header (folder, time, count, columns), then one file per line; columns are
/// separated by tabs.
fn export(dir: &Path, folder: &str, at: &str, files: &[VetFile]) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lists: [(&str, &str, Verdict, &str); 4] = [
        ("new_songs.txt", "new songs", Verdict::New, "path"),
        (
            "duplicates.txt",
            "duplicates",
            Verdict::Duplicate,
            "path, match, confidence, library path",
        ),
        (
            "uncertain.txt",
            "uncertain matches",
            Verdict::Uncertain,
            "path, match, confidence, library path",
        ),
        (
            "unreadable.txt",
            "unreadable files",
            Verdict::Unreadable,
            "path, error",
        ),
    ];
    let mut written = Vec::new();
    for (name, what, verdict, columns) in lists {
        let path = dir.join(name);
        let chosen: Vec<&VetFile> = files.iter().filter(|f| f.verdict == verdict).collect();
        let mut out = io::BufWriter::new(
            fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        writeln!(out, "# musicdex vet: {what}")?;
        writeln!(out, "# folder: {folder}")?;
        writeln!(out, "# time: {at}")?;
        writeln!(out, "# count: {}", chosen.len())?;
        writeln!(out, "# columns (tab-separated): {columns}")?;
        for f in chosen {
            match (&f.matched, &f.error) {
                (Some(m), _) => writeln!(
                    out,
                    "{}\t{}\t{:.2}\t{}",
                    f.path,
                    m.kind.name(),
                    m.confidence,
                    m.path
                )?,
                (None, Some(e)) => writeln!(out, "{}\t{}", f.path, e.replace(['\t', '\n'], " "))?,
                (None, None) => writeln!(out, "{}", f.path)?,
            }
        }
        out.flush()?;
        written.push(path.to_string_lossy().into_owned());
    }
    Ok(written)
}

/// Move the certain duplicates below `to`, keeping their paths relative to `folder`.
/// An existing target is never replaced and nothing is deleted: a file only leaves its
/// place once it exists, complete, at the target.
fn move_duplicates(
    folder: &Path,
    to: &Path,
    files: &[VetFile],
    dry_run: bool,
) -> Result<Vec<Move>> {
    let to = std::path::absolute(to).with_context(|| format!("cannot resolve {}", to.display()))?;
    let mut moves = Vec::new();
    for f in files.iter().filter(|f| f.verdict == Verdict::Duplicate) {
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
            status,
        });
    }
    Ok(moves)
}

/// Rename without replacing (renameat2 RENAME_NOREPLACE). Across file systems, copy
/// into a file created exclusively, sync it, and only then remove the source.
pub fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
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

fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = fs::File::open(from)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied = io::copy(&mut src, &mut dst).and_then(|n| dst.sync_all().map(|()| n));
    match copied {
        Ok(n) if n == src.metadata()?.len() => fs::remove_file(from),
        Ok(_) => {
            let _ = fs::remove_file(to);
            Err(io::Error::other("source changed while copied"))
        }
        Err(e) => {
            let _ = fs::remove_file(to);
            Err(e)
        }
    }
}
