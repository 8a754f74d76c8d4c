//! `musicdex dupes`: groups of active library files that are the same song.
//!
//! Every query reads one of the partial indexes of schema migration 2; the statements
//! are built in [`super::sql`]. Fuzzy matching is blocked per artist: titles are only
//! compared with titles of the same (folded) artist, never all files with all files.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::normalize::{artist_key, numbers_of_key, title_key};
use super::similarity::{Prepared, similarity_at_least};
use super::sql;

/// Confidence of a match by identical content (size, head and tail bytes).
pub const CONTENT_CONFIDENCE: f64 = 1.0;
/// Confidence of a match by identical artist and title tags and agreeing durations.
pub const METADATA_CONFIDENCE: f64 = 0.95;
/// The highest confidence of a tag or title match where a duration is unknown: such a
/// match is uncertain, never certain (`vet` treats 0.7 up to 0.95 as uncertain).
pub const UNKNOWN_DURATION_CONFIDENCE: f64 = 0.7;
/// Two durations agree when they differ by at most this many seconds...
pub const DURATION_TOLERANCE_SECS: f64 = 2.0;
/// ...or by at most this share of the longer one, whichever is more.
pub const DURATION_TOLERANCE_SHARE: f64 = 0.02;

/// A duration worth comparing: lofty reports 0 for files it could not time.
fn known(d: Option<f64>) -> Option<f64> {
    d.filter(|d| d.is_finite() && *d > 0.0)
}

/// Whether two durations agree within max(2 s, 2 %); `None` when either is unknown.
pub fn durations_agree(a: Option<f64>, b: Option<f64>) -> Option<bool> {
    let (a, b) = (known(a)?, known(b)?);
    let tolerance = DURATION_TOLERANCE_SECS.max(DURATION_TOLERANCE_SHARE * a.max(b));
    Some((a - b).abs() <= tolerance + 1e-9)
}

/// Split files that match by tags or title into groups whose durations all agree
/// pairwise: sorted by duration, a group runs while the longest is within tolerance of
/// the shortest (for one dimension that is complete linkage). Files of unknown duration
/// join the largest group, which then is only uncertain (the flag); alone, they form one
/// uncertain group.
pub fn split_by_duration(mut files: Vec<LibraryFile>) -> Vec<(Vec<LibraryFile>, bool)> {
    let (mut timed, untimed): (Vec<LibraryFile>, Vec<LibraryFile>) =
        files.drain(..).partition(|f| known(f.duration).is_some());
    timed.sort_by(|a, b| {
        a.duration
            .unwrap_or(0.0)
            .total_cmp(&b.duration.unwrap_or(0.0))
    });
    let mut out: Vec<(Vec<LibraryFile>, bool)> = Vec::new();
    for f in timed {
        match out.last_mut() {
            Some((g, _)) if durations_agree(g[0].duration, f.duration) == Some(true) => g.push(f),
            _ => out.push((vec![f], false)),
        }
    }
    if !untimed.is_empty() {
        match out.iter_mut().max_by_key(|(g, _)| g.len()) {
            Some((g, uncertain)) => {
                g.extend(untimed);
                *uncertain = true;
            }
            None => out.push((untimed, true)),
        }
    }
    out.retain(|(g, _)| g.len() > 1);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Content,
    /// The same audio payload (`media::audio_hash`): the same recording, different tags.
    Audio,
    Metadata,
    Fuzzy,
}

impl MatchKind {
    pub fn name(self) -> &'static str {
        match self {
            MatchKind::Content => "content",
            MatchKind::Audio => "audio",
            MatchKind::Metadata => "metadata",
            MatchKind::Fuzzy => "fuzzy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Content,
    Metadata,
    Fuzzy,
    All,
}

impl By {
    fn includes(self, kind: MatchKind) -> bool {
        match self {
            By::All => true,
            By::Content => matches!(kind, MatchKind::Content | MatchKind::Audio),
            By::Metadata => kind == MatchKind::Metadata,
            By::Fuzzy => kind == MatchKind::Fuzzy,
        }
    }
}

/// One library file as duplicate reports show it.
#[derive(Clone, Debug, Serialize)]
pub struct LibraryFile {
    #[serde(skip)]
    pub id: i64,
    pub path: String,
    pub artist: Option<String>,
    pub title: Option<String>,
    pub album: Option<String>,
    pub format: String,
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub size: u64,
    pub duration: Option<f64>,
    pub lossless: bool,
    /// Only read by `vet` (see `sql::vet_file_by_id`); empty otherwise.
    #[serde(skip)]
    pub path_bytes: Vec<u8>,
    /// The exact path as lower-case hex when it is not UTF-8 (`path` is then lossy, as
    /// in `export` and `errors`), else null.
    #[serde(rename = "path_bytes")]
    pub exact_path: Option<String>,
}

impl LibraryFile {
    /// From a row selected with the file columns of [`sql`] first.
    pub(crate) fn from_row(r: &Row) -> rusqlite::Result<LibraryFile> {
        LibraryFile::from_row_at(r, 0)
    }

    /// Fill [`LibraryFile::exact_path`] from `path_bytes` when that was selected.
    fn with_exact_path(mut self) -> LibraryFile {
        if std::str::from_utf8(&self.path_bytes).is_err() {
            self.exact_path = Some(crate::text::hex(&self.path_bytes));
        }
        self
    }

    /// Sort key, best first: lossless over lossy, then bitrate, sample rate, size; the
    /// path breaks ties so the order is stable.
    fn quality_order(a: &LibraryFile, b: &LibraryFile) -> std::cmp::Ordering {
        b.lossless
            .cmp(&a.lossless)
            .then(b.bitrate.unwrap_or(0).cmp(&a.bitrate.unwrap_or(0)))
            .then(b.sample_rate.unwrap_or(0).cmp(&a.sample_rate.unwrap_or(0)))
            .then(b.size.cmp(&a.size))
            .then(a.path.cmp(&b.path))
    }
}

/// Rank files best first, so the first is the one to keep.
pub fn rank(files: &mut [LibraryFile]) {
    files.sort_by(LibraryFile::quality_order);
}

/// Whether a format is lossless. MP4 holds either AAC (at most 512 kbit/s per channel
/// pair in practice) or ALAC (typically 700+), so its bitrate decides.
pub fn is_lossless(format: &str, bitrate: Option<u32>) -> bool {
    match format {
        "flac" | "wav" | "aiff" | "aif" | "aifc" | "ape" | "wv" | "dsf" | "dff" | "tta" => true,
        "m4a" | "mp4" | "m4b" | "alac" => bitrate.is_some_and(|b| b >= 600),
        _ => false,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DupeGroup {
    pub kind: MatchKind,
    /// The content hash, the audio hash and payload length (`hash/len`), the metadata
    /// hash, or the folded artist and title.
    pub key: String,
    /// 1.0 for content, 0.95 for metadata; for fuzzy groups the lowest title similarity
    /// of any pair in the group. At most 0.7 when a member's duration is unknown.
    pub confidence: f64,
    /// Best quality first: keep the first.
    pub files: Vec<LibraryFile>,
}

#[derive(Clone, Copy, Debug)]
pub struct DupesOptions {
    pub by: By,
    /// Minimum title similarity for fuzzy groups.
    pub min_score: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DupesSummary {
    pub content_groups: u64,
    /// Same recording, different tags: equal audio hash, not already a content group.
    pub audio_groups: u64,
    pub metadata_groups: u64,
    pub fuzzy_groups: u64,
    pub files_in_groups: u64,
    /// Files beyond the best of each group.
    pub redundant_files: u64,
    pub redundant_bytes: u64,
    /// Artists (after folding) whose titles were compared.
    pub artist_blocks: u64,
    pub title_comparisons: u64,
    pub elapsed_secs: f64,
    /// Where the time went, for benchmarks. With `--by all` the fuzzy phases but the
    /// fetch run beside the content and metadata phases, on a second connection.
    pub timings: Timings,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    pub content_secs: f64,
    pub metadata_secs: f64,
    /// Reading the artist spellings (the first of the two fuzzy passes).
    pub fuzzy_artists_secs: f64,
    /// The (artist, title) index scan and clustering, which overlap.
    pub fuzzy_scan_secs: f64,
    /// Of which comparing titles.
    pub fuzzy_cluster_secs: f64,
    /// Reading the rows of the fuzzy groups.
    pub fuzzy_fetch_secs: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DupesReport {
    pub by: By,
    pub min_score: f64,
    pub summary: DupesSummary,
    pub groups: Vec<DupeGroup>,
}

pub fn find(conn: &Connection, opts: &DupesOptions) -> Result<DupesReport> {
    let started = Instant::now();
    let want_fuzzy = opts.by.includes(MatchKind::Fuzzy);
    let want_hashes = opts.by != By::Fuzzy;
    // Fuzzy clustering does not depend on the hash groups until its clusters are
    // filtered, so with --by all it runs on a second connection (WAL lets readers run
    // side by side) while this one reads the hash groups: two cores, two scans.
    let second_db = conn
        .path()
        .filter(|p| want_fuzzy && want_hashes && !p.is_empty())
        .map(std::path::PathBuf::from);
    std::thread::scope(|s| {
        let background = second_db.map(|path| {
            s.spawn(move || -> Result<(Vec<Cluster>, DupesSummary)> {
                let conn = crate::store::open_read_only(&path)?;
                let mut summary = DupesSummary::default();
                let clusters = fuzzy_clusters(&conn, opts.min_score, &mut summary)?;
                Ok((clusters, summary))
            })
        });

        let mut summary = DupesSummary::default();
        let mut groups = Vec::new();
        // With --by all a group that repeats one already reported (every member in
        // the same content group, or the same metadata group) adds nothing.
        let mut content_of: HashMap<i64, usize> = HashMap::new();
        let mut metadata_of: HashMap<i64, usize> = HashMap::new();
        let mut phase = Instant::now();
        if opts.by.includes(MatchKind::Content) {
            for g in hash_groups(conn, MatchKind::Content)? {
                for f in &g.files {
                    content_of.insert(f.id, groups.len());
                }
                summary.content_groups += 1;
                groups.push(g);
            }
        }
        if opts.by.includes(MatchKind::Audio) {
            for g in hash_groups(conn, MatchKind::Audio)? {
                let ids: Vec<i64> = g.files.iter().map(|f| f.id).collect();
                if same_group(&ids, &content_of) {
                    continue;
                }
                // Audio groups count as content for the later phases: a metadata group
                // of the same files repeats one.
                for f in &g.files {
                    content_of.insert(f.id, groups.len());
                }
                summary.audio_groups += 1;
                groups.push(g);
            }
        }
        summary.timings.content_secs = lap(&mut phase);
        if opts.by.includes(MatchKind::Metadata) {
            for g in hash_groups(conn, MatchKind::Metadata)? {
                let ids: Vec<i64> = g.files.iter().map(|f| f.id).collect();
                if same_group(&ids, &content_of) {
                    continue;
                }
                for f in &g.files {
                    metadata_of.insert(f.id, groups.len());
                }
                summary.metadata_groups += 1;
                groups.push(g);
            }
        }
        summary.timings.metadata_secs = lap(&mut phase);
        if want_fuzzy {
            let (mut clusters, fuzzy) = match background {
                Some(h) => match h.join() {
                    Ok(r) => r?,
                    Err(_) => anyhow::bail!("fuzzy matching panicked"),
                },
                None => {
                    let mut fuzzy = DupesSummary::default();
                    let clusters = fuzzy_clusters(conn, opts.min_score, &mut fuzzy)?;
                    (clusters, fuzzy)
                }
            };
            summary.artist_blocks = fuzzy.artist_blocks;
            summary.title_comparisons = fuzzy.title_comparisons;
            let t = &mut summary.timings;
            t.fuzzy_artists_secs = fuzzy.timings.fuzzy_artists_secs;
            t.fuzzy_scan_secs = fuzzy.timings.fuzzy_scan_secs;
            t.fuzzy_cluster_secs = fuzzy.timings.fuzzy_cluster_secs;
            clusters
                .retain(|c| !same_group(&c.ids, &content_of) && !same_group(&c.ids, &metadata_of));
            let mut fuzzy = fetch_clusters(conn, clusters)?;
            // Splitting by duration can leave a part that repeats a hash group.
            fuzzy.retain(|g| {
                let ids: Vec<i64> = g.files.iter().map(|f| f.id).collect();
                !same_group(&ids, &content_of) && !same_group(&ids, &metadata_of)
            });
            summary.timings.fuzzy_fetch_secs = lap(&mut phase);
            summary.fuzzy_groups = fuzzy.len() as u64;
            groups.extend(fuzzy);
        }
        for g in &groups {
            summary.files_in_groups += g.files.len() as u64;
            summary.redundant_files += g.files.len() as u64 - 1;
            summary.redundant_bytes += g.files[1..].iter().map(|f| f.size).sum::<u64>();
        }
        exact_paths(conn, &mut groups)?;
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        Ok(DupesReport {
            by: opts.by,
            min_score: opts.min_score,
            summary,
            groups,
        })
    })
}

/// The exact bytes of every grouped path the index stored lossily. `file_path` is the
/// UTF-8 form, with U+FFFD where the name was not UTF-8; only such paths (rare) are
/// looked up, so `dupes` keeps reading the narrow columns for the rest.
fn exact_paths(conn: &Connection, groups: &mut [DupeGroup]) -> Result<()> {
    let mut stmt = None;
    for f in groups.iter_mut().flat_map(|g| g.files.iter_mut()) {
        if f.exact_path.is_some() || !f.path.contains('\u{FFFD}') {
            continue;
        }
        let stmt = match &mut stmt {
            Some(s) => s,
            None => stmt.insert(conn.prepare(sql::PATH_BYTES_BY_ID)?),
        };
        let bytes: Vec<u8> = stmt.query_row([f.id], |r| r.get(0))?;
        if std::str::from_utf8(&bytes).is_err() {
            f.exact_path = Some(crate::text::hex(&bytes));
        }
    }
    Ok(())
}

/// Seconds since `*since`, which is reset to now.
fn lap(since: &mut Instant) -> f64 {
    let now = Instant::now();
    let secs = (now - *since).as_secs_f64();
    *since = now;
    secs
}

/// Whether all `ids` are members of one and the same group of `of`.
fn same_group(ids: &[i64], of: &HashMap<i64, usize>) -> bool {
    let first = of.get(&ids[0]);
    first.is_some() && ids.iter().all(|id| of.get(id) == first)
}

/// Groups of rows sharing a content or metadata hash, read from the partial index in
/// key order.
fn hash_groups(conn: &Connection, kind: MatchKind) -> Result<Vec<DupeGroup>> {
    let confidence = match kind {
        MatchKind::Metadata => METADATA_CONFIDENCE,
        _ => CONTENT_CONFIDENCE,
    };
    let mut stmt = conn.prepare(&sql::hash_groups(kind))?;
    let mut rows = stmt.query([])?;
    let mut groups = Vec::new();
    let mut key = String::new();
    let mut members: Vec<LibraryFile> = Vec::new();
    let mut flush = |key: &str, members: &mut Vec<LibraryFile>| {
        if kind == MatchKind::Metadata {
            // Blank-but-present tags (written by another tool) hash to the fallback
            // too; SQL only sees NULLs.
            members.retain(|f| !is_blank(&f.artist) || !is_blank(&f.title));
        }
        if members.len() > 1 {
            let files = std::mem::take(members);
            let parts = match kind {
                // The hash covers at most the first and last 64 KiB: files of other
                // sizes are other files.
                MatchKind::Content => split_by_size(files),
                // Two different PCM recordings with 64 KiB of silence at both ends hash
                // alike: only agreeing durations make them one recording, and an
                // unknown one makes the group uncertain.
                _ => split_by_duration(files),
            };
            for (mut files, uncertain) in parts {
                rank(&mut files);
                groups.push(DupeGroup {
                    kind,
                    key: key.to_string(),
                    confidence: if uncertain {
                        confidence.min(UNKNOWN_DURATION_CONFIDENCE)
                    } else {
                        confidence
                    },
                    files,
                });
            }
        }
        members.clear();
    };
    while let Some(r) = rows.next()? {
        let k: String = r.get(0)?;
        if k != key {
            flush(&key, &mut members);
            key = k;
        }
        members.push(LibraryFile::from_row_at(r, 1)?);
    }
    flush(&key, &mut members);
    Ok(groups)
}

/// Runs of equal size, two files or more (never uncertain).
fn split_by_size(mut files: Vec<LibraryFile>) -> Vec<(Vec<LibraryFile>, bool)> {
    files.sort_by_key(|f| f.size);
    let mut out: Vec<(Vec<LibraryFile>, bool)> = Vec::new();
    for f in files {
        match out.last_mut() {
            Some((g, _)) if g[0].size == f.size => g.push(f),
            _ => out.push((vec![f], false)),
        }
    }
    out.retain(|(g, _)| g.len() > 1);
    out
}

fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

impl LibraryFile {
    /// [`LibraryFile::from_row`] for a row whose file columns start at `offset`.
    fn from_row_at(r: &Row, offset: usize) -> rusqlite::Result<LibraryFile> {
        let format: String = r.get(offset + 5)?;
        let bitrate: Option<u32> = r.get(offset + 6)?;
        Ok(LibraryFile {
            id: r.get(offset)?,
            path: r.get(offset + 1)?,
            artist: r.get(offset + 2)?,
            title: r.get(offset + 3)?,
            album: r.get(offset + 4)?,
            lossless: is_lossless(&format, bitrate),
            format,
            bitrate,
            sample_rate: r.get(offset + 7)?,
            size: r.get::<_, i64>(offset + 8)?.max(0) as u64,
            duration: r.get(offset + 9)?,
            path_bytes: if r.as_ref().column_count() > offset + 10 {
                r.get(offset + 10)?
            } else {
                Vec::new()
            },
            exact_path: None,
        }
        .with_exact_path())
    }
}

/// Every raw artist spelling in the index that may match fuzzily, grouped by folded
/// key. The index is ordered by raw bytes, so "BEYONCÉ" and "Beyoncé" are far apart in
/// it; this map is what brings them together.
pub(crate) struct ArtistBlocks {
    /// Raw spelling → (block number, rows with that spelling).
    pub raw: HashMap<String, (u32, u64)>,
    by_key: HashMap<String, u32>,
    /// Per block: folded key, raw spellings, rows.
    pub blocks: Vec<ArtistBlock>,
}

pub(crate) struct ArtistBlock {
    pub key: String,
    pub spellings: Vec<String>,
    pub rows: u64,
}

impl ArtistBlocks {
    pub fn load(conn: &Connection) -> Result<ArtistBlocks> {
        let mut stmt = conn.prepare(&sql::artist_counts())?;
        let mut rows = stmt.query([])?;
        let mut by_key: HashMap<String, u32> = HashMap::new();
        let mut out = ArtistBlocks {
            raw: HashMap::new(),
            by_key: HashMap::new(),
            blocks: Vec::new(),
        };
        while let Some(r) = rows.next()? {
            let artist: String = r.get(0)?;
            let n = r.get::<_, i64>(1)? as u64;
            let key = artist_key(&artist);
            if key.is_empty() {
                continue;
            }
            let block = *by_key.entry(key.clone()).or_insert_with(|| {
                out.blocks.push(ArtistBlock {
                    key,
                    spellings: Vec::new(),
                    rows: 0,
                });
                (out.blocks.len() - 1) as u32
            });
            let b = &mut out.blocks[block as usize];
            b.spellings.push(artist.clone());
            b.rows += n;
            out.raw.insert(artist, (block, n));
        }
        out.by_key = by_key;
        Ok(out)
    }

    pub fn block_of(&self, artist: &str) -> Option<&ArtistBlock> {
        // The common case: the exact spelling is in the index.
        if let Some((b, _)) = self.raw.get(artist) {
            return Some(&self.blocks[*b as usize]);
        }
        let b = self.by_key.get(&artist_key(artist))?;
        Some(&self.blocks[*b as usize])
    }
}

/// Distinct titles above this many in one artist block are compared only within
/// sub-blocks that share their first or last two characters: a pair similar enough to
/// matter almost always agrees at one end, and "Various Artists" with 50k titles must
/// not cost 10⁹ comparisons.
const LARGE_BLOCK: usize = 2000;

/// A fuzzy group before its rows are read.
struct Cluster {
    artist_key: String,
    confidence: f64,
    ids: Vec<i64>,
}

/// Fuzzy clusters: per artist block, titles grouped by exact normalised key, then keys
/// joined while every pair reaches `min_score` with the same numbers (complete linkage;
/// see [`cluster_titles`]).
fn fuzzy_clusters(
    conn: &Connection,
    min_score: f64,
    summary: &mut DupesSummary,
) -> Result<Vec<Cluster>> {
    let mut phase = Instant::now();
    let artists = ArtistBlocks::load(conn)?;
    summary.timings.fuzzy_artists_secs = lap(&mut phase);
    // One pass over the (artist, title) index in raw artist order. A block whose only
    // spelling has been read completely is processed at once; blocks with several
    // spellings wait until all of them have been read.
    let mut stmt = conn.prepare(&sql::artist_titles())?;
    let mut rows = stmt.query([])?;
    let mut pending: HashMap<u32, (usize, Vec<(i64, String)>)> = HashMap::new();
    let mut current: Option<(String, Vec<(i64, String)>)> = None;
    let mut clusters: Vec<Cluster> = Vec::new();

    let mut finish_spelling = |artist: String,
                               entries: Vec<(i64, String)>,
                               clusters: &mut Vec<Cluster>,
                               summary: &mut DupesSummary| {
        let Some(&(block, _)) = artists.raw.get(&artist) else {
            return;
        };
        let b = &artists.blocks[block as usize];
        if b.rows < 2 {
            return;
        }
        let entries = if b.spellings.len() == 1 {
            entries
        } else {
            let slot = pending.entry(block).or_default();
            slot.0 += 1;
            slot.1.extend(entries);
            if slot.0 < b.spellings.len() {
                return;
            }
            pending.remove(&block).map(|s| s.1).unwrap_or_default()
        };
        summary.artist_blocks += 1;
        let started = Instant::now();
        let found = cluster_titles(&entries, min_score, summary);
        summary.timings.fuzzy_cluster_secs += started.elapsed().as_secs_f64();
        for (confidence, ids) in found {
            clusters.push(Cluster {
                artist_key: b.key.clone(),
                confidence,
                ids,
            });
        }
    };

    while let Some(r) = rows.next()? {
        let artist = r.get_ref(0)?.as_str()?;
        let id: i64 = r.get(1)?;
        let title: String = r.get(2)?;
        match &mut current {
            Some((a, entries)) if a == artist => entries.push((id, title)),
            _ => {
                if let Some((a, entries)) = current.take() {
                    finish_spelling(a, entries, &mut clusters, summary);
                }
                current = Some((artist.to_string(), vec![(id, title)]));
            }
        }
    }
    if let Some((a, entries)) = current.take() {
        finish_spelling(a, entries, &mut clusters, summary);
    }
    drop(rows);
    summary.timings.fuzzy_scan_secs = lap(&mut phase);
    Ok(clusters)
}

/// Read the rows of fuzzy clusters and rank them.
fn fetch_clusters(conn: &Connection, clusters: Vec<Cluster>) -> Result<Vec<DupeGroup>> {
    // Read the members in rowid order: neighbouring rows share pages, where cluster
    // order would jump around the table.
    let mut wanted: Vec<(i64, usize)> = clusters
        .iter()
        .enumerate()
        .flat_map(|(c, cluster)| cluster.ids.iter().map(move |&id| (id, c)))
        .collect();
    wanted.sort_unstable();
    let mut members: Vec<Vec<LibraryFile>> = vec![Vec::new(); clusters.len()];
    let mut by_id = conn.prepare(&sql::file_by_id())?;
    for (id, c) in wanted {
        members[c].push(by_id.query_row([id], LibraryFile::from_row)?);
    }
    let mut groups = Vec::with_capacity(clusters.len());
    for (cluster, files) in clusters.into_iter().zip(members) {
        // Similar titles of different lengths are different recordings (or edits).
        for (mut files, uncertain) in split_by_duration(files) {
            rank(&mut files);
            let title = files[0].title.as_deref().map(title_key).unwrap_or_default();
            groups.push(DupeGroup {
                kind: MatchKind::Fuzzy,
                key: format!("{} - {}", cluster.artist_key, title),
                confidence: if uncertain {
                    cluster.confidence.min(UNKNOWN_DURATION_CONFIDENCE)
                } else {
                    cluster.confidence
                },
                files,
            });
        }
    }
    Ok(groups)
}

/// Cluster one artist's titles. Returns (lowest similarity of any pair, member ids) for
/// every cluster of two or more files.
///
/// Complete linkage: every pair of titles in a cluster is similar enough and has the
/// same numbers ([`numbers_of_key`]), so a chain "Song for Clara" – "Song for Maya" –
/// "Song for Yara" whose ends differ more than allowed never becomes one cluster.
pub(crate) fn cluster_titles(
    entries: &[(i64, String)],
    min_score: f64,
    summary: &mut DupesSummary,
) -> Vec<(f64, Vec<i64>)> {
    // Identical normalised titles first: sorted together, no comparisons.
    let mut keyed: Vec<(String, i64)> = entries
        .iter()
        .filter_map(|(id, title)| {
            let k = title_key(title);
            (!k.is_empty()).then_some((k, *id))
        })
        .collect();
    keyed.sort_unstable();
    // Distinct keys as runs of `keyed`: key i is keyed[starts[i]..starts[i + 1]].
    let mut starts: Vec<usize> = Vec::with_capacity(keyed.len() + 1);
    for (x, (k, _)) in keyed.iter().enumerate() {
        if x == 0 || keyed[x - 1].0 != *k {
            starts.push(x);
        }
    }
    let n = starts.len();
    starts.push(keyed.len());
    if n == keyed.len() && n < 2 {
        return Vec::new();
    }
    let prepared: Vec<Prepared> = starts[..n]
        .iter()
        .map(|&x| Prepared::new(&keyed[x].0))
        .collect();
    let numbers: Vec<Vec<u64>> = starts[..n]
        .iter()
        .map(|&x| numbers_of_key(&keyed[x].0))
        .collect();
    // Similar pairs (i < j) and their similarity.
    let mut edges: HashMap<(u32, u32), f64> = HashMap::new();

    let mut compare_within = |members: &mut Vec<usize>, edges: &mut HashMap<(u32, u32), f64>| {
        members.sort_by_key(|&i| prepared[i].len());
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                // Sorted by length: once j is too long for i, so is every later one.
                if (prepared[i].len() as f64) < min_score * prepared[j].len() as f64 - 1e-9 {
                    break;
                }
                // "Part 1" and "Part 2" are two works, whatever the letters say.
                // (Lengths first: most titles have none, and slices compare by memcmp.)
                if numbers[i].len() != numbers[j].len()
                    || (!numbers[i].is_empty() && numbers[i] != numbers[j])
                {
                    continue;
                }
                summary.title_comparisons += 1;
                if let Some(s) = similarity_at_least(&prepared[i], &prepared[j], min_score) {
                    edges.insert((i.min(j) as u32, i.max(j) as u32), s);
                }
            }
        }
    };
    if n <= LARGE_BLOCK {
        let mut all: Vec<usize> = (0..n).collect();
        compare_within(&mut all, &mut edges);
    } else {
        for end in [Ends::First, Ends::Last] {
            let mut buckets: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, &x) in starts[..n].iter().enumerate() {
                buckets.entry(end.of(&keyed[x].0)).or_default().push(i);
            }
            for members in buckets.values_mut() {
                compare_within(members, &mut edges);
            }
        }
    }

    // Agglomerate, most similar pair first; two clusters merge only when every pair
    // across them is an edge. Ties are broken by key order, so the result is stable.
    // Most blocks have no edge at all: only keys on an edge get a member list.
    let mut order: Vec<((u32, u32), f64)> = edges.iter().map(|(&k, &v)| (k, v)).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut cluster_of: Vec<u32> = (0..n as u32).collect();
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut low: HashMap<u32, f64> = HashMap::new();
    for ((i, j), _) in order {
        let (ci, cj) = (cluster_of[i as usize], cluster_of[j as usize]);
        if ci == cj {
            continue;
        }
        let mi = members.remove(&ci).unwrap_or_else(|| vec![ci]);
        let mj = members.remove(&cj).unwrap_or_else(|| vec![cj]);
        let mut cross_low = 1.0f64;
        let complete = mi.iter().all(|&a| {
            mj.iter().all(|&b| match edges.get(&(a.min(b), a.max(b))) {
                Some(&s) => {
                    cross_low = cross_low.min(s);
                    true
                }
                None => false,
            })
        });
        if !complete {
            members.insert(ci, mi);
            members.insert(cj, mj);
            continue;
        }
        let (keep, mut kept, gone, moved) = if mi.len() >= mj.len() {
            (ci, mi, cj, mj)
        } else {
            (cj, mj, ci, mi)
        };
        for &m in &moved {
            cluster_of[m as usize] = keep;
        }
        kept.extend(moved);
        members.insert(keep, kept);
        let l = [low.remove(&gone), low.get(&keep).copied(), Some(cross_low)]
            .into_iter()
            .flatten()
            .fold(1.0f64, f64::min);
        low.insert(keep, l);
    }

    let mut slot_of_cluster = vec![usize::MAX; n];
    let mut out: Vec<(f64, Vec<i64>)> = Vec::new();
    for i in 0..n {
        let c = cluster_of[i] as usize;
        if slot_of_cluster[c] == usize::MAX {
            slot_of_cluster[c] = out.len();
            out.push((low.get(&(c as u32)).copied().unwrap_or(1.0), Vec::new()));
        }
        let ids = keyed[starts[i]..starts[i + 1]].iter().map(|(_, id)| *id);
        out[slot_of_cluster[c]].1.extend(ids);
    }
    out.retain(|(_, ids)| ids.len() > 1);
    out
}

#[derive(Clone, Copy)]
enum Ends {
    First,
    Last,
}

impl Ends {
    fn of(self, k: &str) -> String {
        match self {
            Ends::First => k.chars().take(2).collect(),
            Ends::Last => {
                let mut v: Vec<char> = k.chars().rev().take(2).collect();
                v.reverse();
                v.into_iter().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dupes::similarity::similarity;

    fn entries(titles: &[&str]) -> Vec<(i64, String)> {
        titles
            .iter()
            .enumerate()
            .map(|(i, t)| (i as i64, t.to_string()))
            .collect()
    }

    fn clusters(titles: &[&str], min: f64) -> Vec<Vec<i64>> {
        let mut s = DupesSummary::default();
        let mut out: Vec<Vec<i64>> = cluster_titles(&entries(titles), min, &mut s)
            .into_iter()
            .map(|(_, mut ids)| {
                ids.sort();
                ids
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn titles_cluster_by_similarity() {
        let got = clusters(
            &[
                "Crazy in Love",
                "Crazy In Love (Radio Edit)",
                "Halo",
                "Crazy in Luv",
                "Single Ladies",
                "Halo [HD]",
                "Irreplaceable",
            ],
            0.8,
        );
        assert_eq!(got, vec![vec![0, 1, 3], vec![2, 5]]);
        // Stricter: the misspelling (0.85) no longer joins.
        assert_eq!(
            clusters(&["Crazy in Love", "Crazy in Luv", "Crazy in love"], 0.9),
            vec![vec![0, 2]]
        );
    }

    #[test]
    fn large_blocks_still_find_near_titles() {
        let mut rng = fastrand::Rng::with_seed(11);
        let word = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(3..9))
                .map(|_| rng.alphabetic().to_ascii_lowercase())
                .collect()
        };
        let mut titles: Vec<String> = (0..LARGE_BLOCK + 500)
            .map(|_| format!("{} {} {}", word(&mut rng), word(&mut rng), word(&mut rng)))
            .collect();
        let n = titles.len() as i64;
        // An edition suffix, a typo at the end, a typo at the start.
        titles.push(format!("{} (Remastered 2011)", titles[7]));
        titles.push(format!("{}x", titles[42]));
        titles.push(format!("x{}", &titles[99][1..]));
        let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
        let got = clusters(&refs, 0.9);
        assert_eq!(got, vec![vec![7, n], vec![42, n + 1], vec![99, n + 2]]);
    }

    #[test]
    fn quality_ranking() {
        let f = |path: &str, format: &str, bitrate: u32, rate: u32, size: u64| LibraryFile {
            id: 0,
            path: path.into(),
            artist: None,
            title: None,
            album: None,
            format: format.into(),
            bitrate: Some(bitrate),
            sample_rate: Some(rate),
            size,
            duration: None,
            lossless: is_lossless(format, Some(bitrate)),
            path_bytes: Vec::new(),
            exact_path: None,
        };
        let mut files = vec![
            f("a", "mp3", 320, 44100, 10),
            f("b", "m4a", 256, 44100, 9),
            f("c", "flac", 900, 44100, 30),
            f("d", "mp3", 320, 48000, 10),
            f("e", "m4a", 800, 44100, 25),
            f("f", "mp3", 320, 48000, 11),
        ];
        rank(&mut files);
        let order: String = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(order, "cefdab");
    }

    #[test]
    fn chains_of_similar_titles_do_not_merge() {
        // Clara–Yara and Yara–Maya are within 0.8, Clara–Maya is not.
        let t = ["Song for Clara", "Song for Maya", "Song for Yara"];
        let mut s = DupesSummary::default();
        let sim = |a: usize, b: usize| similarity(&title_key(t[a]), &title_key(t[b]));
        assert!(sim(0, 1) < 0.8);
        assert!(sim(0, 2) >= 0.8 && sim(1, 2) >= 0.8);
        let got = cluster_titles(&entries(&t), 0.8, &mut s);
        assert_eq!(got.len(), 1, "{got:?}");
        let mut ids = got[0].1.clone();
        ids.sort();
        // The closer pair (Clara–Yara, 0.857 over 0.846) wins; Maya stays alone.
        assert_eq!(ids, vec![0, 2]);
        // Every pair of every cluster matches, over many seeded blocks of near titles.
        let mut rng = fastrand::Rng::with_seed(12);
        for _ in 0..200 {
            let base: String = (0..rng.usize(6..12)).map(|_| rng.lowercase()).collect();
            let titles: Vec<String> = (0..rng.usize(3..12))
                .map(|_| {
                    let mut c: Vec<char> = base.chars().collect();
                    for _ in 0..rng.usize(0..4) {
                        let at = rng.usize(..c.len());
                        c[at] = rng.lowercase();
                    }
                    c.into_iter().collect()
                })
                .collect();
            let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
            for (low, ids) in cluster_titles(&entries(&refs), 0.8, &mut s) {
                for &a in &ids {
                    for &b in &ids {
                        let sim = similarity(&titles[a as usize], &titles[b as usize]);
                        assert!(sim >= 0.8 && sim >= low - 1e-9, "{titles:?} {ids:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn numbered_titles_never_cluster() {
        for pair in [
            [
                "Another Brick in the Wall, Part 1",
                "Another Brick in the Wall, Part 2",
            ],
            ["Symphony No. 5", "Symphony No. 6"],
            ["Piano Sonata 14", "Piano Sonata 18"],
            ["Op. 27 No. 1", "Op. 27 No. 2"],
            ["Greatest Hits Vol. II", "Greatest Hits Vol. III"],
            ["Revolution 1", "Revolution 9"],
            ["Revolution 1", "Revolution"],
            ["I. Allegro con brio", "II. Allegro con brio"],
        ] {
            assert_eq!(clusters(&pair, 0.5), Vec::<Vec<i64>>::new(), "{pair:?}");
        }
        // The same number, however written, and edition suffixes still group.
        assert_eq!(
            clusters(
                &[
                    "Another Brick in the Wall, Part 2",
                    "Another Brick In The Wall (Part II)"
                ],
                0.8
            ),
            vec![vec![0, 1]]
        );
        assert_eq!(
            clusters(
                &[
                    "Revolution 9 (Original Mix)",
                    "Revolution 9 - Remastered",
                    "Revolution 9 [HD]"
                ],
                0.8
            ),
            vec![vec![0, 1, 2]]
        );
    }

    fn timed(id: i64, duration: Option<f64>) -> LibraryFile {
        LibraryFile {
            id,
            path: id.to_string(),
            artist: None,
            title: None,
            album: None,
            format: "mp3".into(),
            bitrate: Some(128),
            sample_rate: Some(44100),
            size: 1,
            duration,
            lossless: false,
            path_bytes: Vec::new(),
            exact_path: None,
        }
    }

    #[test]
    fn durations_split_groups() {
        assert_eq!(durations_agree(Some(3.0), Some(5.0)), Some(true));
        assert_eq!(durations_agree(Some(3.0), Some(5.1)), Some(false));
        // 2 % of 300 s is 6 s.
        assert_eq!(durations_agree(Some(300.0), Some(294.0)), Some(true));
        assert_eq!(durations_agree(Some(300.0), Some(293.0)), Some(false));
        assert_eq!(durations_agree(None, Some(3.0)), None);
        assert_eq!(durations_agree(Some(0.0), Some(0.0)), None);
        let ids = |parts: Vec<(Vec<LibraryFile>, bool)>| -> Vec<(Vec<i64>, bool)> {
            parts
                .into_iter()
                .map(|(g, u)| {
                    let mut v: Vec<i64> = g.iter().map(|f| f.id).collect();
                    v.sort();
                    (v, u)
                })
                .collect()
        };
        let got = split_by_duration(vec![
            timed(1, Some(3.0)),
            timed(2, Some(9.0)),
            timed(3, Some(4.5)),
            timed(4, Some(10.0)),
            timed(5, Some(200.0)),
        ]);
        assert_eq!(ids(got), vec![(vec![1, 3], false), (vec![2, 4], false)]);
        // A chain 3, 4.9, 6.8: the ends are 3.8 s apart.
        let got = split_by_duration(vec![
            timed(1, Some(3.0)),
            timed(2, Some(4.9)),
            timed(3, Some(6.8)),
        ]);
        assert_eq!(ids(got), vec![(vec![1, 2], false)]);
        let got = split_by_duration(vec![
            timed(1, None),
            timed(2, Some(4.0)),
            timed(3, Some(4.5)),
        ]);
        assert_eq!(ids(got), vec![(vec![1, 2, 3], true)]);
        let got = split_by_duration(vec![timed(1, None), timed(2, None)]);
        assert_eq!(ids(got), vec![(vec![1, 2], true)]);
    }
}
