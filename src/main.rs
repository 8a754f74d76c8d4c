//! The command line: parse, call the library, print.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use musicdex::engine::EngineKind;
use musicdex::r#gen::{self, GenOptions, Mix};
use musicdex::index::{self, IndexOptions};
use musicdex::scan::{ExtFilter, WalkOptions};
use musicdex::store::writer::WriterOptions;
use musicdex::store::{self, query};

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
        #[arg(long, value_enum, default_value_t = EngineKind::Uring)]
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
    /// Write every indexed row to stdout.
    Export {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = query::ExportFormat::Jsonl)]
        format: query::ExportFormat,
    },
    /// Benchmark ceiling: read and MD5 the hashed bytes of every file, nothing else.
    #[command(hide = true)]
    Roofline {
        library: Vec<PathBuf>,
        #[arg(long, value_name = "LIST")]
        ext: Option<String>,
        /// Blocking reader threads.
        #[arg(long, default_value_t = 64)]
        io_threads: usize,
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
    Music,
    Small,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("musicdex: {e:#}");
            ExitCode::from(1)
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
            let filter = match ext {
                Some(spec) => ExtFilter::parse(&spec)?,
                None => ExtFilter::default(),
            };
            let opts = IndexOptions {
                roots: library,
                db: index::db_path_or_default(db.as_deref())?,
                engine,
                full,
                walk: WalkOptions {
                    follow_symlinks,
                    filter,
                },
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
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
        Command::Roofline {
            library,
            ext,
            io_threads,
        } => {
            let walk = WalkOptions {
                follow_symlinks: false,
                filter: match ext {
                    Some(spec) => ExtFilter::parse(&spec)?,
                    None => ExtFilter::default(),
                },
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
                println!(
                    "generated {} files ({} corrupt, {} with cover art) in {:.1}s into {}",
                    report.files,
                    report.corrupt,
                    report.with_cover,
                    report.elapsed_secs,
                    report.dir.display()
                );
                println!(
                    "apparent size {:.1} GiB, on disk {:.1} GiB; formats {:?}",
                    report.apparent_bytes as f64 / (1u64 << 30) as f64,
                    report.disk_bytes as f64 / (1u64 << 30) as f64,
                    report.formats
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
