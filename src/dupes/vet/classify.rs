//! `vet`: classify one incoming file against the library.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Result;
use rusqlite::Connection;

use super::export::exact_hex;
use super::{CERTAIN, Match, UNCERTAIN_FLOOR, UPGRADE_BITRATE_RATIO, Verdict, VetFile};
use crate::dupes::artists::ArtistBlocks;
use crate::dupes::groups::{
    CONTENT_CONFIDENCE, LibraryFile, METADATA_CONFIDENCE, MatchKind, UNKNOWN_DURATION_CONFIDENCE,
    durations_agree, is_lossless, rank,
};
use crate::dupes::normalize::{artist_key, numbers_of_key, title_key};
use crate::dupes::similarity::{Prepared, similarity_at_least};
use crate::dupes::sql;
use crate::media::FileRecord;
use crate::media::record::path_bytes;

/// Looks files up in the library. Artist blocks are loaded on first need: a folder of
/// untagged files never pays for them.
pub(super) struct Classifier<'c> {
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
    pub(super) fn new(conn: &'c Connection, threshold: f64, folder: &Path) -> Classifier<'c> {
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

    pub(super) fn classify(&mut self, rec: &FileRecord) -> Result<VetFile> {
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
