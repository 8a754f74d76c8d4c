//! `musicdex dupes`: groups of active library files that are the same song.
//!
//! Every query reads one of the partial indexes of schema migration 2; the statements
//! are built in [`super::sql`]. Fuzzy matching is blocked per artist: titles are only
//! compared with titles of the same (folded) artist, never all files with all files.
//! This module holds the types, the ranking and [`find`], which runs the hash groups
//! (`hash_groups`) and the fuzzy clusters (`fuzzy`, blocked by `artists`).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::fuzzy::{Cluster, fetch_clusters, fuzzy_clusters};
use super::hash_groups::hash_groups;
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
pub(super) fn lap(since: &mut Instant) -> f64 {
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

impl LibraryFile {
    /// [`LibraryFile::from_row`] for a row whose file columns start at `offset`.
    pub(super) fn from_row_at(r: &Row, offset: usize) -> rusqlite::Result<LibraryFile> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
