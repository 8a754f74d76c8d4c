//! The command line: parse, call the library, print.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use musicdex::dupes::{self, By};
use musicdex::engine::EngineKind;
use musicdex::index::{self, IndexOptions};
use musicdex::scan::{ExtFilter, WalkOptions};
use musicdex::store::writer::{MaxRemoved, WriterOptions};
use musicdex::store::{self, query};

/// Where the process's stop signals go; `index` hands it to the run.
static STOP: musicdex::engine::StopFlag = musicdex::engine::StopFlag::new();

/// The engine `index` and `vet` use unless `--engine` says otherwise.
const DEFAULT_ENGINE: EngineKind = EngineKind::Uring;

#[derive(Parser)]
#[command(
    name = "musicdex",
    version,
    about = "Index huge music libraries into SQLite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk libraries, hash and read tags of every audio file, and update the index.
    Index {
        /// Library folders (or single files) to index.
        #[arg(required = true)]
        library: Vec<PathBuf>,
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DEFAULT_ENGINE)]
        engine: EngineKind,
        /// Worker threads, 1 to 1024 [default: cores available]
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Read every file again, even when size and mtime are unchanged.
        #[arg(long)]
        full: bool,
        /// Print the summary as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Print per-stage time, CPU, memory and I/O figures.
        #[arg(long)]
        metrics: bool,
        /// Never draw a progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Follow symbolic links (loops are detected and skipped).
        #[arg(long)]
        follow_symlinks: bool,
        /// Extensions: `mp3,flac` restricts to those; `+dsf,-wav` edits the default set.
        #[arg(long, value_name = "LIST")]
        ext: Option<String>,
        /// The most of a root's indexed files one run may mark removed, as a share
        /// (`50%`) or a count (`200`); beyond it none are, and the run exits 1.
        /// `100%` accepts any removal, also on a root that moved to another device.
        #[arg(long, value_name = "SHARE|COUNT", default_value = "50%", value_parser = MaxRemoved::parse)]
        max_removed: MaxRemoved,
        /// Benchmark baseline: one transaction per file with synchronous=FULL, as the
        /// replaced tool did.
        #[arg(long, hide = true)]
        legacy_commit: bool,
        /// Most bytes a tag parse may read from one file beyond the head and tail every
        /// file is read for (`16M`, `512K` or bytes); a file needing more is recorded
        /// with an error.
        #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
        max_tag_bytes: u64,
    },
    /// Summarise the index.
    Stats {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Groups of library files that are the same song, best quality first.
    Dupes {
        #[arg(long)]
        db: Option<PathBuf>,
        /// Identical content, identical artist and title tags, similar titles by the
        /// same artist, or all three.
        #[arg(long, value_enum, default_value_t = By::All)]
        by: By,
        /// Minimum title similarity (0..1) for fuzzy groups.
        #[arg(long, default_value_t = 0.8)]
        min_score: f64,
        #[arg(long)]
        json: bool,
    },
    /// Classify the audio files of a folder as new, duplicate, uncertain or unreadable
    /// against the library, without indexing them.
    Vet {
        folder: PathBuf,
        #[arg(long)]
        db: Option<PathBuf>,
        /// Minimum title similarity (0..1) for a fuzzy match; fuzzy matches from 0.95
        /// are duplicates, from 0.7 to 0.95 uncertain.
        #[arg(long, default_value_t = 0.8)]
        threshold: f64,
        #[arg(long)]
        json: bool,
        /// Write new_songs.txt, duplicates.txt, uncertain.txt and unreadable.txt here.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Move certain duplicates here, keeping their paths relative to FOLDER; an
        /// existing file is never replaced.
        #[arg(long, value_name = "DIR")]
        move_duplicates_to: Option<PathBuf>,
        /// With --move-duplicates-to: list what would move, move nothing.
        #[arg(long, requires = "move_duplicates_to")]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = DEFAULT_ENGINE)]
        engine: EngineKind,
        /// Worker threads, 1 to 1024 [default: cores available]
        #[arg(long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Extensions, as for `index --ext`.
        #[arg(long, value_name = "LIST")]
        ext: Option<String>,
    },
    /// Write every indexed row to stdout or --out; Parquet as one host's partition of a
    /// dataset folder (DIR/host=NAME/part-00000.parquet).
    Export {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = query::ExportFormat::Jsonl)]
        format: query::ExportFormat,
        /// A file for jsonl and csv; the dataset folder for parquet (required there).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Parquet: the partition to write or replace [default: this machine's host name]
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Find posts on a music blog, keep the wanted genres, extract download links.
    Scrape(musicdex::scrape::ScrapeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The process owns its panic hook: quiet for lofty panics, which become row errors.
    musicdex::media::tags::install_quiet_panic_hook();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("musicdex: {e:#}");
            if let Some(i) = e.downcast_ref::<musicdex::engine::Interrupted>() {
                ExitCode::from(i.exit_code())
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Index {
            library,
            db,
            engine,
            threads,
            full,
            json,
            metrics,
            no_progress,
            follow_symlinks,
            ext,
            max_removed,
            legacy_commit,
            max_tag_bytes,
        } => {
            musicdex::media::budget::set_max_tag_bytes(max_tag_bytes);
            // First, so a stop asked for at any point of the run ends it cleanly.
            musicdex::process::install_stop_handlers(&STOP);
            musicdex::process::raise_memlock();
            let filter = ext_filter(ext)?;
            let opts = IndexOptions {
                roots: library,
                db: index::db_path_or_default(db.as_deref())?,
                engine,
                full,
                walk: WalkOptions {
                    follow_symlinks,
                    filter,
                },
                threads: threads.unwrap_or_else(cores),
                progress: !no_progress && !json && std::io::stderr().is_terminal(),
                writer: WriterOptions {
                    legacy_per_file_commit: legacy_commit,
                    ..Default::default()
                },
                max_removed,
                stop: &STOP,
                uring: musicdex::process::uring_tuning_from_env(),
            };
            let summary = index::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                index::print_summary(&summary, metrics);
            }
            if !summary.removal_refused.is_empty() {
                for line in &summary.removal_refused {
                    eprintln!("musicdex: {line}");
                }
                return Ok(ExitCode::from(1));
            }
        }
        Command::Stats { db, json } => {
            let conn = store::open_read_only(&index::db_path_or_default(db.as_deref())?)?;
            let s = query::stats(&conn)?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                query::print_stats(&s);
            }
        }
        Command::Export {
            db,
            format,
            out,
            host,
        } => export(db, format, out, host)?,
        Command::Dupes {
            db,
            by,
            min_score,
            json,
        } => {
            let conn = store::open_read_only(&index::db_path_or_default(db.as_deref())?)?;
            let report = dupes::groups::find(&conn, &dupes::DupesOptions { by, min_score })?;
            print_report(json, &report, dupes::report::print_dupes)?;
        }
        Command::Vet {
            folder,
            db,
            threshold,
            json,
            export,
            move_duplicates_to,
            dry_run,
            engine,
            threads,
            ext,
        } => {
            let path = index::db_path_or_default(db.as_deref())?;
            // Moving files is the one vet that must write (what moved, where).
            let conn = if move_duplicates_to.is_some() && !dry_run {
                store::open_existing(&path)?
            } else {
                store::open_read_only(&path)?
            };
            // vet reads through io_uring by default, as index does.
            musicdex::process::raise_memlock();
            let opts = dupes::VetOptions {
                folder,
                engine,
                threads: threads.unwrap_or_else(cores),
                walk: WalkOptions {
                    follow_symlinks: false,
                    filter: ext_filter(ext)?,
                },
                threshold,
                export,
                move_duplicates_to,
                dry_run,
                progress: !json && std::io::stderr().is_terminal(),
            };
            let report = dupes::vet::run(&conn, &opts)?;
            print_report(json, &report, dupes::report::print_vet)?;
            if report.counts.move_failed > 0 {
                eprintln!(
                    "musicdex: {} moves failed (see the report)",
                    report.counts.move_failed
                );
                return Ok(ExitCode::from(1));
            }
        }
        Command::Scrape(args) => musicdex::scrape::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a thread count from 1 to 1024")),
    }
}

fn export(
    db: Option<PathBuf>,
    format: query::ExportFormat,
    out: Option<PathBuf>,
    host: Option<String>,
) -> Result<()> {
    use musicdex::store::dataset;
    // Arguments are checked before the database is opened: a mistake costs nothing.
    if format == query::ExportFormat::Parquet {
        let Some(dir) = out else {
            anyhow::bail!(
                "--format parquet needs --out DIR: Parquet is a file format, not a stream, \
                 so it cannot go to stdout (it is written to DIR/host=NAME/part-00000.parquet)"
            );
        };
        let host = match host {
            Some(h) => {
                dataset::check_host(&h)?;
                h
            }
            None => dataset::local_hostname()?,
        };
        let conn = store::open_read_only(&index::db_path_or_default(db.as_deref())?)?;
        let s = dataset::export(&conn, &dataset::ParquetOptions { dir, host })?;
        println!(
            "wrote {} rows ({} columns, {} row groups, {}) to {} in {:.2}s",
            s.rows,
            s.columns,
            s.row_groups,
            query::human_bytes(s.bytes),
            s.file.display(),
            s.secs
        );
        return Ok(());
    }
    if host.is_some() {
        anyhow::bail!("--host names a Parquet partition: it needs --format parquet");
    }
    let conn = store::open_read_only(&index::db_path_or_default(db.as_deref())?)?;
    match out {
        Some(path) => query::export_to_file(&conn, format, &path)?,
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            query::export(&conn, format, &mut out)?;
        }
    }
    Ok(())
}

/// `16M`, `512K`, `1G` or a plain number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("unknown unit in {s:?}: use K, M or G")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {s:?}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {s:?}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(1024))
}

fn ext_filter(spec: Option<String>) -> Result<ExtFilter> {
    match spec {
        Some(spec) => ExtFilter::parse(&spec),
        None => Ok(ExtFilter::default()),
    }
}

/// One JSON document with `--json`, else the human-readable text.
fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: fn(&T, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        text(report, &mut out)?;
    }
    out.flush()?;
    Ok(())
}
