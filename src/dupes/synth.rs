//! A synthetic index for measuring `dupes` and `vet` at scale: rows are written
//! straight into `library_index` (no files behind them), with a distribution that looks
//! like a real library: ~10 files per artist on average with a long tail (the largest
//! artists hold thousands), some artists spelt several ways (case, accents, NFD),
//! exact copies, the same song in another format, edition variants and typos, untagged
//! files, files whose hash failed, and files no longer present.
//!
//! Optionally also writes a folder of real, tagged audio files to vet against it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::media::hash::metadata_hash;
use crate::media::record::Stat;
use crate::media::reference::read_reference;
use crate::store::{self, now_rfc3339};

/// Also the arguments of `musicdex-dev synth-index`.
#[derive(Clone, Debug, clap::Args)]
pub struct SynthOptions {
    #[arg(long)]
    pub rows: u64,
    #[arg(long)]
    pub db: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write --vet-files real files here, copies of --template retagged.
    #[arg(long, value_name = "DIR")]
    pub vet_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    pub vet_files: usize,
    /// Tagged audio file the vet files are copies of.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SynthSummary {
    pub rows: u64,
    pub artists: u64,
    pub content_copies: u64,
    pub same_tags_other_format: u64,
    pub title_variants: u64,
    pub untagged: u64,
    pub hash_failed: u64,
    pub inactive: u64,
    pub vet_files: u64,
    pub elapsed_secs: f64,
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "ven", "tu", "ri", "ma", "sel", "do", "ra", "ni", "qu", "be", "zo", "fa", "mi",
    "sha", "ter", "lin", "gor", "pe", "an", "el", "or", "us", "ta", "vi", "ne", "so", "har", "mon",
    "dar", "ki", "lu", "bra", "cho", "ess", "ston", "wil", "ber", "ga",
];

const EDITIONS: &[&str] = &[
    " (Original Mix)",
    " (Radio Edit)",
    " (Extended Mix)",
    " (Album Version)",
    " - Remastered",
    " - 2011 Remaster",
    " [Official]",
    " [HD]",
];

const FORMATS: &[(&str, u32, u32)] = &[
    ("mp3", 320, 44100),
    ("mp3", 192, 44100),
    ("flac", 900, 44100),
    ("flac", 1800, 96000),
    ("m4a", 256, 44100),
    ("ogg", 160, 44100),
    ("opus", 128, 48000),
];

struct Gen {
    rng: fastrand::Rng,
    words: Vec<String>,
    artists: Vec<String>,
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Gen {
    fn new(seed: u64, artists: usize) -> Gen {
        let mut rng = fastrand::Rng::with_seed(seed);
        let word = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(2..4))
                .map(|_| SYLLABLES[rng.usize(..SYLLABLES.len())])
                .collect()
        };
        let words: Vec<String> = (0..4000).map(|_| word(&mut rng)).collect();
        let artists = (0..artists)
            .map(|i| {
                let mut name: Vec<String> = (0..rng.usize(1..4))
                    .map(|_| capitalise(&word(&mut rng)))
                    .collect();
                // Artist numbers keep names distinct; real names collide less than
                // random syllables do.
                if i.is_multiple_of(3) {
                    name.push(format!("{}", i % 1000));
                }
                let mut name = name.join(" ");
                if i.is_multiple_of(29) {
                    name = name.replacen('e', "é", 1);
                }
                if i.is_multiple_of(31) {
                    name = name.replacen("ss", "ß", 1);
                }
                name
            })
            .collect();
        Gen {
            rng,
            words,
            artists,
        }
    }

    /// Long tail: u² puts ~0.3% of rows on the biggest artist, one or two on most.
    fn artist_index(&mut self) -> usize {
        let u = self.rng.f64();
        ((u * u) * self.artists.len() as f64) as usize
    }

    /// The spelling a file uses: mostly the canonical one; for some artists also
    /// upper-case or decomposed (NFD) spellings, as different taggers write them.
    fn spelling(&mut self, artist: usize) -> String {
        let name = &self.artists[artist];
        if artist.is_multiple_of(17) {
            match self.rng.u8(..10) {
                0 => return name.to_uppercase(),
                1 => return name.nfd().collect(),
                _ => {}
            }
        }
        name.clone()
    }

    fn title(&mut self) -> String {
        let n = 1 + self.rng.usize(..4);
        (0..n)
            .map(|_| capitalise(&self.words[self.rng.usize(..self.words.len())]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn variant(&mut self, title: &str) -> String {
        if self.rng.bool() {
            format!("{title}{}", EDITIONS[self.rng.usize(..EDITIONS.len())])
        } else {
            // One character replaced: a typo.
            let mut chars: Vec<char> = title.chars().collect();
            let at = self.rng.usize(..chars.len());
            chars[at] = self.rng.lowercase();
            chars.into_iter().collect()
        }
    }

    fn hash(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..))
    }
}

#[derive(Clone)]
struct Row {
    path: String,
    artist: Option<String>,
    title: Option<String>,
    album: Option<String>,
    track: Option<u32>,
    format: &'static str,
    bitrate: u32,
    sample_rate: u32,
    size: i64,
    content_hash: Option<String>,
    active: bool,
    error: Option<&'static str>,
}

const INSERT: &str = "INSERT INTO library_index (path_bytes, file_path, filename, artist, title,
        album, track_number, year, genre, duration, bitrate, sample_rate, channels,
        file_format, file_size, file_mtime, file_mtime_ns, file_content_hash, metadata_hash,
        indexed_at, last_verified, is_active, error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 2020, 'Electronic', 240.0, ?8, ?9, 2, ?10, ?11,
        '2023-11-14T22:13:20+00:00', 1700000000000000000, ?12, ?13, ?14, ?14, ?15, ?16)";

fn insert(stmt: &mut rusqlite::Statement, r: &Row, now: &str) -> Result<()> {
    let path = Path::new(&r.path);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let filename = path.file_name().unwrap_or_default().to_string_lossy();
    stmt.execute(params![
        r.path.as_bytes(),
        r.path,
        filename,
        r.artist,
        r.title,
        r.album,
        r.track,
        r.bitrate,
        r.sample_rate,
        r.format,
        r.size,
        r.content_hash,
        metadata_hash(r.artist.as_deref(), r.title.as_deref(), &stem),
        now,
        r.active,
        r.error,
    ])?;
    Ok(())
}

pub fn run(opts: &SynthOptions) -> Result<SynthSummary> {
    let started = Instant::now();
    if opts.db.exists() {
        bail!(
            "{} exists: synth-index only creates new indexes",
            opts.db.display()
        );
    }
    let mut conn = store::open(&opts.db)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    // Bulk load without the secondary indexes, then build each once, sorted: several
    // times faster than updating seven B-trees row by row.
    let indexes: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'index' AND tbl_name = 'library_index' AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))?;
    }

    let artists = (opts.rows / 10).max(1) as usize;
    let mut g = Gen::new(opts.seed, artists);
    let mut s = SynthSummary {
        artists: artists as u64,
        ..Default::default()
    };
    let now = now_rfc3339();
    // Recent originals that copies and variants are drawn from.
    let mut recent: Vec<(usize, Row)> = Vec::new();
    const RECENT: usize = 4096;
    let mut n: u64 = 0;
    while n < opts.rows {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(INSERT)?;
            let end = (n + 100_000).min(opts.rows);
            while n < end {
                let (a, mut row) = next_row(&mut g, &recent, n, &mut s);
                if g.rng.u8(..50) == 0 {
                    row.active = false;
                    s.inactive += 1;
                }
                insert(&mut stmt, &row, &now)?;
                if row.content_hash.is_some() && row.artist.is_some() {
                    if recent.len() < RECENT {
                        recent.push((a, row));
                    } else {
                        let i = g.rng.usize(..RECENT);
                        recent[i] = (a, row);
                    }
                }
                n += 1;
            }
        }
        tx.commit()?;
    }
    s.rows = n;

    if let Some(dir) = &opts.vet_dir {
        let template = opts
            .template
            .as_deref()
            .context("--vet-dir needs --template (a tagged audio file to copy)")?;
        s.vet_files = write_vet_folder(&mut conn, &mut g, dir, template, opts.vet_files, &now)?;
    }
    for (_, sql) in &indexes {
        conn.execute_batch(sql)?;
    }
    conn.execute_batch("ANALYZE")?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    s.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(s)
}

fn next_row(g: &mut Gen, recent: &[(usize, Row)], n: u64, s: &mut SynthSummary) -> (usize, Row) {
    let kind = g.rng.u16(..1000);
    let (fmt, bitrate, rate) = FORMATS[g.rng.usize(..FORMATS.len())];
    let size = (bitrate as i64 * 1000 / 8) * 240 + g.rng.i64(0..100_000);
    if !recent.is_empty() && kind < 110 {
        let (a, orig) = &recent[g.rng.usize(..recent.len())];
        let mut row = orig.clone();
        row.path = format!("/synth/Copies/{n}/{}", file_name(&row));
        if kind < 40 {
            s.content_copies += 1;
        } else if kind < 80 {
            s.same_tags_other_format += 1;
            row.format = fmt;
            row.bitrate = bitrate;
            row.sample_rate = rate;
            row.size = size;
            row.content_hash = Some(g.hash());
            row.artist = Some(g.spelling(*a));
            row.path = format!("/synth/Other formats/{n}/{}", file_name(&row));
        } else {
            s.title_variants += 1;
            let title = g.variant(row.title.as_deref().unwrap_or("x"));
            row.title = Some(title);
            row.content_hash = Some(g.hash());
            row.path = format!("/synth/Variants/{n}/{}", file_name(&row));
        }
        return (*a, row);
    }
    let a = g.artist_index();
    let album = format!("{} {}", capitalise(&g.words[a % g.words.len()]), n % 7);
    let mut row = Row {
        path: String::new(),
        artist: Some(g.spelling(a)),
        title: Some(g.title()),
        album: Some(album),
        track: Some(1 + (n % 14) as u32),
        format: fmt,
        bitrate,
        sample_rate: rate,
        size,
        content_hash: Some(g.hash()),
        active: true,
        error: None,
    };
    if kind < 130 {
        // Untagged: "01 Intro.mp3" in many albums, the replaced tool's false positive.
        s.untagged += 1;
        row.artist = None;
        row.title = None;
        row.path = format!(
            "/synth/Untagged/{}/{:02} Intro.{}",
            n,
            1 + n % 3,
            row.format
        );
        return (a, row);
    }
    if kind < 135 {
        s.hash_failed += 1;
        row.content_hash = None;
        row.error = Some("read: Input/output error (os error 5)");
        if kind < 133 {
            row.artist = None;
            row.title = None;
        }
    }
    let artist_dir = g.artists[a].clone();
    // The row number keeps paths unique when an artist repeats a title.
    row.path = format!(
        "/synth/{}/{}/{n} {}",
        artist_dir,
        row.album.as_deref().unwrap_or(""),
        file_name(&row)
    );
    (a, row)
}

fn file_name(r: &Row) -> String {
    format!(
        "{:02} {}.{}",
        r.track.unwrap_or(0),
        r.title.as_deref().unwrap_or("Unknown").replace('/', "_"),
        r.format
    )
}

/// Real files to vet: 10% byte-identical to a library row (inserted for them), 20%
/// tagged like a library row, 10% an edition or typo variant of one, 5% unreadable, the
/// rest new songs by known and unknown artists.
fn write_vet_folder(
    conn: &mut Connection,
    g: &mut Gen,
    dir: &Path,
    template: &Path,
    count: usize,
    now: &str,
) -> Result<u64> {
    use lofty::config::WriteOptions;
    use lofty::prelude::*;
    use lofty::tag::Tag;

    fs::create_dir_all(dir)?;
    let max_id: i64 = conn.query_row("SELECT max(id) FROM library_index", [], |r| r.get(0))?;
    let ext = crate::media::record::format_of(template);
    let tx = conn.transaction()?;
    {
        let mut pick = tx.prepare(
            "SELECT artist, title FROM library_index
             WHERE id >= ?1 AND artist IS NOT NULL AND title IS NOT NULL
                AND file_content_hash IS NOT NULL AND is_active = 1
             LIMIT 1",
        )?;
        let mut insert_stmt = tx.prepare(INSERT)?;
        for i in 0..count {
            let sub = dir.join(format!("Download {:02}", i % 20));
            fs::create_dir_all(&sub)?;
            let kind = g.rng.u8(..100);
            let path = sub.join(format!("{i:04}.{ext}"));
            if kind < 5 {
                let junk: Vec<u8> = (0..4096).map(|_| g.rng.u8(..)).collect();
                fs::write(&path, junk)?;
                continue;
            }
            let (artist, title) = if kind < 40 {
                let id = g.rng.i64(1..=max_id);
                let (a, t): (String, String) =
                    pick.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let t = if kind >= 30 { g.variant(&t) } else { t };
                (a, t)
            } else if kind < 70 {
                let a = g.artist_index();
                (g.artists[a].clone(), g.title())
            } else {
                (format!("New Artist {i}"), g.title())
            };
            fs::copy(template, &path)
                .with_context(|| format!("cannot copy {}", template.display()))?;
            let tf = lofty::read_from_path(&path)?;
            let primary = tf.primary_tag_type();
            for t in tf.tags() {
                t.tag_type()
                    .remove_from_path(&path, WriteOptions::default())?;
            }
            let mut tag = Tag::new(primary);
            tag.set_artist(artist.clone());
            tag.set_title(title.clone());
            tag.save_to_path(&path, WriteOptions::default())?;
            if kind < 15 {
                // The library already holds these very bytes elsewhere.
                let stat = Stat::from_metadata(&fs::metadata(&path)?);
                let rec = read_reference(path.clone(), stat, Default::default());
                let row = Row {
                    path: format!("/synth/Vetted before/{i:04}.{ext}"),
                    artist: Some(artist),
                    title: Some(title),
                    album: None,
                    track: None,
                    format: "mp3",
                    bitrate: 320,
                    sample_rate: 44100,
                    size: stat.size as i64,
                    content_hash: rec.content_hash,
                    active: true,
                    error: None,
                };
                insert(&mut insert_stmt, &row, now)?;
            }
        }
    }
    tx.commit()?;
    Ok(count as u64)
}
