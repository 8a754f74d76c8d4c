//! The command line: parse, call the library, print.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use musicdex::dupes::{self, By};
use musicdex::engine::EngineKind;
use musicdex::r#gen::{self, GenOptions, Mix};
use musicdex::index::{self, IndexOptions};
use musicdex::scan::{ExtFilter, WalkOptions};
use musicdex::store::writer::WriterOptions;
use musicdex::store::{self, query};

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
        /// Worker threads [default: cores available]
        #[arg(long)]
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
        /// Benchmark baseline: one transaction per file with synchronous=FULL, as the
        /// replaced tool did.
        #[arg(long, hide = true)]
        legacy_commit: bool,
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
        /// Worker threads [default: cores available]
        #[arg(long)]
        threads: Option<usize>,
        /// Extensions, as for `index --ext`.
        #[arg(long, value_name = "LIST")]
        ext: Option<String>,
    },
    /// Benchmarks only: write a synthetic index of N rows (and optionally a folder of
    /// real files to vet against it).
    #[command(hide = true)]
    SynthIndex {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_name = "DIR")]
        vet_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        vet_files: usize,
        /// Tagged audio file the vet files are copies of.
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
    },
    /// Write every indexed row to stdout.
    Export {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = query::ExportFormat::Jsonl)]
        format: query::ExportFormat,
    },
    /// Find posts on a music blog, keep the wanted genres, extract download links.
    Scrape(musicdex::scrape::ScrapeArgs),
    /// Benchmark floor: walk, then read and MD5 the hashed bytes of every file, nothing
    /// else (no tags, no database). Bounds a full index, warm or cold.
    #[command(hide = true)]
    Roofline {
        library: Vec<PathBuf>,
        #[arg(long, value_name = "LIST")]
        ext: Option<String>,
        /// Blocking reader threads (default: one per core when a probe finds the library
        /// in the page cache, 64 when it does not).
        #[arg(long)]
        io_threads: Option<usize>,
    },
    /// Generate a synthetic, seed-deterministic library for benchmarks and tests.
    GenLibrary {
        /// Directory to create (must be empty or absent).
        dir: PathBuf,
        #[arg(long)]
        files: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = MixArg::Music)]
        mix: MixArg,
        /// Writer threads (default: one per core); the output does not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MixArg {
    /// Sparse files of 3–40 MB: real head and tail, a hole between.
    Music,
    /// Real files of 1–300 KB, for tests of file count.
    Small,
    /// Real, tagged files of 2–8 KiB: a million fit on a small disk.
    Tiny,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("musicdex: {e:#}");
            if e.is::<musicdex::engine::Interrupted>() {
                ExitCode::from(130)
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
            legacy_commit,
        } => {
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
            };
            let summary = index::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                index::print_summary(&summary, metrics);
            }
        }
        Command::Stats { db, json } => {
            let conn = store::open_existing(&index::db_path_or_default(db.as_deref())?)?;
            let s = query::stats(&conn)?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                query::print_stats(&s);
            }
        }
        Command::Export { db, format } => {
            let conn = store::open_existing(&index::db_path_or_default(db.as_deref())?)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            query::export(&conn, format, &mut out)?;
        }
        Command::Dupes {
            db,
            by,
            min_score,
            json,
        } => {
            let conn = store::open_existing(&index::db_path_or_default(db.as_deref())?)?;
            let report = dupes::groups::find(&conn, &dupes::DupesOptions { by, min_score })?;
            print_report(json, &report, dupes::report::print_dupes)?;
        }
        Command::SynthIndex {
            rows,
            db,
            seed,
            vet_dir,
            vet_files,
            template,
        } => {
            let opts = dupes::synth::SynthOptions {
                rows,
                db,
                seed,
                vet_dir,
                vet_files,
                template,
            };
            println!("{}", serde_json::to_string(&dupes::synth::run(&opts)?)?);
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
            let conn = store::open_existing(&index::db_path_or_default(db.as_deref())?)?;
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
            };
            let report = dupes::vet::run(&conn, &opts)?;
            print_report(json, &report, dupes::report::print_vet)?;
        }
        Command::Scrape(args) => musicdex::scrape::run(args)?,
        Command::Roofline {
            library,
            ext,
            io_threads,
        } => {
            let walk = WalkOptions {
                follow_symlinks: false,
                filter: ext_filter(ext)?,
            };
            let roots = index::normalise_roots(&library)?;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let r = musicdex::engine::roofline::run(&roots, &walk, cores, io_threads);
            println!("{}", serde_json::to_string(&r)?);
        }
        Command::GenLibrary {
            dir,
            files,
            seed,
            mix,
            threads,
            json,
        } => {
            let mix = match mix {
                MixArg::Music => Mix::Music,
                MixArg::Small => Mix::Small,
                MixArg::Tiny => Mix::Tiny,
            };
            let report = r#gen::generate(
                &dir,
                &GenOptions {
                    files,
                    seed,
                    mix,
                    threads,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                r#gen::print_report(&report);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
