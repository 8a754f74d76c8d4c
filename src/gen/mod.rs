//! Synthetic music libraries for benchmarks and tests (`musicdex-dev gen-library`).
//!
//! Every file is built from a real, untagged template per format (`fixtures/templates/`,
//! embedded at compile time) with its own tags, optional cover art and length. The same
//! options always produce a byte-identical tree: everything random comes from one seeded
//! plan, and each file carries its own seed so worker threads can write in any order.
//!
//! `Mix::Music` writes sparse files of 3–40 MB apparent size: real head and tail bytes, a
//! hole in the audio payload, and container length fields that cover the hole (see
//! [`formats`] for each format). `Mix::Small` writes every byte of files of 1–300 KB.

mod cover;
mod formats;
mod mp4;
pub mod mutate;
mod names;
pub(crate) mod ogg;
mod stream;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use fastrand::Rng;
use serde::Serialize;

pub use cover::CoverKind;

use cover::CoverTemplates;
use formats::{Layout, Request, Shape, Templates};

/// What kind of library to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// Sparse files of 3–40 MB apparent size, as a music library looks to the indexer.
    Music,
    /// Real files of 1–300 KB, for tests that care about file count rather than size.
    Small,
    /// Real, tagged files of a few KiB (no cover art, a few frames of audio), so a
    /// million of them fit on a small disk: the scale benchmark.
    Tiny,
}

impl std::str::FromStr for Mix {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "music" => Ok(Mix::Music),
            "small" => Ok(Mix::Small),
            "tiny" => Ok(Mix::Tiny),
            _ => anyhow::bail!("unknown mix {s:?} (expected music, small or tiny)"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub files: usize,
    pub seed: u64,
    pub mix: Mix,
    /// Writer threads; 0 means one per available core. Does not affect the output.
    pub threads: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            files: 1000,
            seed: 1,
            mix: Mix::Music,
            threads: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Mp3,
    Flac,
    M4a,
    Ogg,
    Opus,
    Wav,
    Aiff,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Mp3,
        Format::Flac,
        Format::M4a,
        Format::Ogg,
        Format::Opus,
        Format::Wav,
        Format::Aiff,
    ];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Flac => "flac",
            Format::M4a => "m4a",
            Format::Ogg => "ogg",
            Format::Opus => "opus",
            Format::Wav => "wav",
            Format::Aiff => "aiff",
        }
    }

    /// Share of files in percent, roughly what large personal libraries hold.
    fn share(self) -> u32 {
        match self {
            Format::Mp3 => 45,
            Format::Flac => 28,
            Format::M4a => 15,
            Format::Ogg => 5,
            Format::Opus => 3,
            Format::Wav => 2,
            Format::Aiff => 2,
        }
    }

    /// Apparent size range in MB for the music mix: lossless and PCM files are larger.
    fn music_mb(self) -> (u64, u64) {
        match self {
            Format::Mp3 | Format::M4a => (3, 12),
            Format::Ogg => (3, 10),
            Format::Opus => (3, 8),
            Format::Flac => (15, 40),
            Format::Wav | Format::Aiff => (20, 40),
        }
    }
}

/// The tags written into a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackTags {
    pub artist: String,
    pub title: String,
    pub album: String,
    pub album_artist: String,
    pub track: u32,
    pub track_total: u32,
    pub year: u32,
    pub genre: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// A valid file cut inside its container headers or leading tags.
    TruncatedHeader,
    /// Random bytes (no 0xFF, so no false MPEG frame sync) under an audio extension.
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CoverSpec {
    pub kind: CoverKind,
    /// Requested picture size in bytes (the template image is the floor).
    pub bytes: usize,
    /// Shared by an album's tracks, so they embed identical art as real rips do.
    seed: u64,
}

/// One planned file. [`plan`] returns these in generation order; tests use them as the
/// record of what was written.
#[derive(Clone, Debug, Serialize)]
pub struct FileSpec {
    /// Relative to the library root.
    pub path: PathBuf,
    pub format: Format,
    pub tags: TrackTags,
    pub cover: Option<CoverSpec>,
    /// Target apparent size. Music files hit it exactly (PCM to within a sample frame);
    /// small files land within an audio frame or Ogg page of it, and never carry less than
    /// about 1 KiB of audio, so the tiniest targets with cover art come out larger.
    pub target_bytes: u64,
    pub corrupt: Option<Corruption>,
    seed: u64,
}

/// What `generate` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct GenReport {
    pub dir: PathBuf,
    pub mix: Mix,
    pub seed: u64,
    pub files: usize,
    pub corrupt: usize,
    pub with_cover: usize,
    pub artists: usize,
    pub albums: usize,
    pub formats: BTreeMap<Format, usize>,
    /// Sum of file sizes as `stat` reports them.
    pub apparent_bytes: u64,
    /// Sum of allocated blocks (`st_blocks * 512`): what sparse files really occupy.
    pub disk_bytes: u64,
    pub threads: usize,
    pub elapsed_secs: f64,
}

const CORRUPT_PER_MILLE: u32 = 10;
const COVER_PERCENT: u32 = 60;

/// The deterministic list of files `generate` writes for these options.
pub fn plan(opts: &GenOptions) -> Vec<FileSpec> {
    let mut rng = Rng::with_seed(opts.seed);
    let mut artists = HashSet::new();
    // Every compilation shares the "Various Artists" folder, so their titles must differ
    // across the whole library (a million files repeated one).
    let mut compilations = HashSet::new();
    let mut planned = HashSet::new();
    let mut songs: HashMap<String, HashSet<String>> = HashMap::new();
    let mut out = Vec::with_capacity(opts.files);
    let total_share: u32 = Format::ALL.iter().map(|f| f.share()).sum();

    while out.len() < opts.files {
        // One in twenty albums is a compilation: per-track artists under "Various Artists".
        let compilation = rng.u32(..20) == 0;
        let album_artist = if compilation {
            "Various Artists".to_string()
        } else {
            names::artist(&mut rng, &mut artists)
        };
        let genre = names::GENRES[rng.usize(..names::GENRES.len())].to_string();
        let albums = if compilation { 1 } else { rng.u32(1..=4) };
        let mut album_titles = HashSet::new();
        for _ in 0..albums {
            let titles = if compilation {
                &mut compilations
            } else {
                &mut album_titles
            };
            let album = names::album(&mut rng, titles);
            let year = rng.u32(1960..=2024);
            let tracks = rng.u32(6..=14).min((opts.files - out.len()) as u32);
            let cover = (rng.u32(..100) < COVER_PERCENT).then(|| CoverSpec {
                kind: if rng.u32(..5) == 0 {
                    CoverKind::Png
                } else {
                    CoverKind::Jpeg
                },
                bytes: rng.usize(50_000..=500_000),
                seed: rng.u64(..),
            });
            let dir = PathBuf::from(names::path_component(&album_artist))
                .join(names::path_component(&album));
            for track in 1..=tracks {
                let artist = if compilation {
                    names::artist(&mut rng, &mut artists)
                } else {
                    album_artist.clone()
                };
                // Titles are unique per artist, so (artist, title) is unique library-wide.
                let title = names::title(&mut rng, songs.entry(artist.clone()).or_default());
                let format = pick_format(&mut rng, total_share);
                let target_bytes = match opts.mix {
                    Mix::Music => {
                        let (lo, hi) = format.music_mb();
                        rng.u64(lo * 1_000_000..=hi * 1_000_000)
                    }
                    // Log-uniform: most files small, a few near the top, like real
                    // test corpora, and 200k of them fit in about 10 GB.
                    Mix::Small => (1024f64 * 300f64.powf(rng.f64())) as u64,
                    // 2–8 KiB, log-uniform.
                    Mix::Tiny => (2048f64 * 4f64.powf(rng.f64())) as u64,
                };
                let corrupt = (rng.u32(..1000) < CORRUPT_PER_MILLE).then(|| {
                    if rng.bool() {
                        Corruption::TruncatedHeader
                    } else {
                        Corruption::Garbage
                    }
                });
                let name = format!(
                    "{:02} {}.{}",
                    track,
                    names::path_component(&title),
                    format.extension()
                );
                // Names that differ only where path_component folds them: a number
                // keeps every planned file.
                let mut path = dir.join(&name);
                let mut n = 2;
                while !planned.insert(path.clone()) {
                    path = dir.join(format!("{n} {name}"));
                    n += 1;
                }
                out.push(FileSpec {
                    path,
                    format,
                    tags: TrackTags {
                        artist,
                        title,
                        album: album.clone(),
                        album_artist: album_artist.clone(),
                        track,
                        track_total: tracks,
                        year,
                        genre: genre.clone(),
                    },
                    cover,
                    target_bytes,
                    corrupt,
                    seed: rng.u64(..),
                });
            }
            if out.len() >= opts.files {
                break;
            }
        }
    }
    out
}

fn pick_format(rng: &mut Rng, total_share: u32) -> Format {
    let mut roll = rng.u32(..total_share);
    for f in Format::ALL {
        if roll < f.share() {
            return f;
        }
        roll -= f.share();
    }
    unreachable!("shares sum to total_share")
}

/// Writes the library for `opts` into `dir`, which must be empty or not exist yet (stale
/// files from another seed would make the tree non-reproducible).
pub fn generate(dir: &Path, opts: &GenOptions) -> Result<GenReport> {
    let started = Instant::now();
    if dir.exists() {
        ensure!(
            fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none(),
            "{} is not empty; gen-library only writes into an empty or new directory",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let templates = Templates::load().context("parsing embedded audio templates")?;
    let covers = CoverTemplates::load().context("parsing embedded cover templates")?;
    let specs = plan(opts);

    let mut dirs: Vec<&Path> = specs.iter().filter_map(|s| s.path.parent()).collect();
    dirs.dedup();
    for d in &dirs {
        fs::create_dir_all(dir.join(d)).with_context(|| format!("creating {}", d.display()))?;
    }

    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let totals = Mutex::new((0u64, 0u64));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let (mut apparent, mut disk) = (0u64, 0u64);
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = specs.get(i) else { break };
                    let path = dir.join(&spec.path);
                    match write_file(&path, spec, opts.mix, &templates, &covers) {
                        Ok((a, d)) => {
                            apparent += a;
                            disk += d;
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .expect("poisoned")
                                .get_or_insert(e.context(path.display().to_string()));
                        }
                    }
                }
                let mut t = totals.lock().expect("poisoned");
                t.0 += apparent;
                t.1 += disk;
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("poisoned") {
        return Err(e);
    }
    let (apparent_bytes, disk_bytes) = totals.into_inner().expect("poisoned");

    let mut formats = BTreeMap::new();
    for s in &specs {
        *formats.entry(s.format).or_insert(0) += 1;
    }
    let albums: HashSet<&Path> = dirs.iter().copied().collect();
    let artists: HashSet<&str> = specs.iter().map(|s| s.tags.artist.as_str()).collect();
    Ok(GenReport {
        dir: dir.to_path_buf(),
        mix: opts.mix,
        seed: opts.seed,
        files: specs.len(),
        corrupt: specs.iter().filter(|s| s.corrupt.is_some()).count(),
        with_cover: specs
            .iter()
            .filter(|s| s.cover.is_some() && s.corrupt.is_none())
            .count(),
        artists: artists.len(),
        albums: albums.len(),
        formats,
        apparent_bytes,
        disk_bytes,
        threads,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// The layout of one planned file (before any corruption is applied).
fn layout(spec: &FileSpec, mix: Mix, templates: &Templates, covers: &CoverTemplates) -> Layout {
    let mut rng = Rng::with_seed(spec.seed);
    let cover = spec.cover.filter(|_| mix != Mix::Tiny).map(|c| {
        // Small files keep their art in proportion to their size.
        let bytes = match mix {
            Mix::Music => c.bytes,
            Mix::Small | Mix::Tiny => c.bytes.min(spec.target_bytes as usize / 3),
        };
        covers.build(c.kind, bytes, &mut Rng::with_seed(c.seed))
    });
    let (shape, padding) = match mix {
        Mix::Music => (
            Shape::Sparse {
                head_audio: rng.usize(64 << 10..192 << 10),
                tail_audio: rng.usize(64 << 10..128 << 10),
            },
            rng.usize(..4096),
        ),
        Mix::Small => (Shape::Dense, rng.usize(..512)),
        Mix::Tiny => (Shape::Dense, rng.usize(..64)),
    };
    let req = Request {
        tags: &spec.tags,
        cover: cover.as_ref(),
        target: spec.target_bytes,
        shape,
        padding,
        moov_at_end: rng.u32(..10) < 3,
    };
    templates.build(spec.format, &req)
}

/// Writes one file; returns its apparent size and allocated bytes.
fn write_file(
    path: &Path,
    spec: &FileSpec,
    mix: Mix,
    templates: &Templates,
    covers: &CoverTemplates,
) -> Result<(u64, u64)> {
    let layout = match spec.corrupt {
        None => layout(spec, mix, templates, covers),
        Some(kind) => {
            let mut rng = Rng::with_seed(spec.seed ^ 0xc0ff_ee00);
            let head = match kind {
                Corruption::TruncatedHeader => {
                    let full = layout(spec, mix, templates, covers);
                    let cut = rng.usize(8..full.header_end.max(9));
                    full.head[..cut.min(full.head.len())].to_vec()
                }
                Corruption::Garbage => {
                    let mut bytes = vec![0; rng.usize(1024..64 << 10)];
                    rng.fill(&mut bytes);
                    for b in &mut bytes {
                        if *b == 0xff {
                            *b = 0xfe;
                        }
                    }
                    bytes
                }
            };
            Layout {
                head,
                gap: 0,
                tail: Vec::new(),
                header_end: 0,
            }
        }
    };

    // create_new: two specs mapping to one path would be a planning bug, not an overwrite.
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .context("creating file")?;
    f.write_all(&layout.head)?;
    if layout.gap > 0 {
        // Seeking past the end and writing leaves a hole: no blocks for the gap.
        f.seek(SeekFrom::Current(layout.gap as i64))?;
        if layout.tail.is_empty() {
            f.set_len(layout.len())?;
        }
    }
    f.write_all(&layout.tail)?;
    let meta = f.metadata()?;
    debug_assert_eq!(meta.len(), layout.len());
    Ok((meta.len(), meta.blocks() * 512))
}

/// The report as people read it.
pub fn print_report(report: &GenReport) {
    println!(
        "generated {} files ({} corrupt, {} with cover art) in {:.1}s into {}",
        report.files,
        report.corrupt,
        report.with_cover,
        report.elapsed_secs,
        report.dir.display()
    );
    let formats: Vec<String> = report
        .formats
        .iter()
        .map(|(f, n)| format!("{} {n}", f.extension()))
        .collect();
    println!(
        "apparent size {:.1} GiB, on disk {:.1} GiB; {}",
        report.apparent_bytes as f64 / (1u64 << 30) as f64,
        report.disk_bytes as f64 / (1u64 << 30) as f64,
        formats.join(", ")
    );
}
