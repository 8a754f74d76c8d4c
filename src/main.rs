//! The command line: parse, call the library, print.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

mod cli;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

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

const EXIT_CODES: &str = "\
Exit status:
  0    success (also when stdout is closed early, as by `| head`); files that
       could not be read are counted and listed by `musicdex errors`
  1    error (bad database, unreadable root, refused removal, --max-removed)
  2    bad command line
  129  stopped by SIGHUP, 130 by Ctrl-C, 143 by SIGTERM: what was indexed is kept";

#[derive(Parser)]
#[command(
    name = "musicdex",
    version,
    about = "Index huge music libraries into SQLite",
    long_about = "Index huge music libraries into SQLite: walk, hash and read the tags of \
                  every audio file, then find duplicates, vet new folders against the \
                  library, and export.",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Print nothing but results and errors (no progress, no summary).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (for `index`: the per-stage figures of --metrics).
    #[arg(short, long, global = true)]
    verbose: bool,
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
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// How files are read: io_uring, a thread pool, or the one-thread reference.
        #[arg(long, value_enum, default_value_t = DEFAULT_ENGINE)]
        engine: EngineKind,
        /// Worker threads, 1 to 1024 [default: cores available]
        #[arg(short = 'j', long, value_parser = parse_threads)]
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
        /// Never draw the progress line (it is drawn only on a terminal, on stderr).
        #[arg(long)]
        no_progress: bool,
        /// Follow symbolic links (loops are detected and skipped).
        #[arg(short = 'L', long)]
        follow_symlinks: bool,
        /// Also take hidden files and folders (names starting with `.`, macOS `._*`).
        #[arg(short = 'H', long)]
        hidden: bool,
        /// Extensions: `mp3,flac` restricts to those; `+dsf,-wav` edits the default set;
        /// `*` takes every file. `-e -wav` works without `=`.
        #[arg(short = 'e', long, value_name = "LIST", allow_hyphen_values = true)]
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
    /// Summarise the index: active files, read errors, inactive rows, formats, last run.
    Stats {
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the indexed files whose last read failed, with the reason.
    Errors {
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Print one JSON object on stdout (exact bytes of non-UTF-8 paths as hex).
        #[arg(long)]
        json: bool,
    },
    /// Delete inactive rows (files missing at their last walk), and only those.
    Prune {
        /// Only under these folders [default: the whole index].
        root: Vec<PathBuf>,
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Only rows last seen more than DAYS days ago.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36500))]
        older_than: Option<u32>,
        /// Count what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Delete every row at or below ROOT (active or not), e.g. a library given up.
    Forget {
        /// The folder to forget (it need not exist any more).
        root: PathBuf,
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Really delete; without it, only say how many rows would go.
        #[arg(long)]
        yes: bool,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `musicdex completions bash > ~/.local/share/bash-completion/completions/musicdex`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (musicdex.1 and one per subcommand) into DIR, or musicdex.1 to stdout.
    Man {
        /// Folder for the pages [default: print musicdex.1 on stdout].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Groups of library files that are the same song, best quality first.
    Dupes {
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Identical content, identical artist and title tags, similar titles by the
        /// same artist, or all three.
        #[arg(long, value_enum, default_value_t = By::All)]
        by: By,
        /// Minimum title similarity (0..1) for fuzzy groups.
        #[arg(short = 's', long, default_value_t = 0.8, value_parser = parse_unit)]
        min_score: f64,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Classify the audio files of a folder as new, duplicate, uncertain or unreadable
    /// against the library, without indexing them.
    Vet {
        /// The folder of new files to classify (it is read, never indexed).
        folder: PathBuf,
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Minimum title similarity (0..1) for a fuzzy match; fuzzy matches from 0.95
        /// are duplicates, from 0.7 to 0.95 uncertain.
        #[arg(short = 't', long, default_value_t = 0.8, value_parser = parse_unit)]
        threshold: f64,
        /// Print one JSON object on stdout.
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
        /// How files are read, as for `index --engine`.
        #[arg(long, value_enum, default_value_t = DEFAULT_ENGINE)]
        engine: EngineKind,
        /// Worker threads, 1 to 1024 [default: cores available]
        #[arg(short = 'j', long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Also take hidden files and folders (names starting with `.`, macOS `._*`).
        #[arg(short = 'H', long)]
        hidden: bool,
        /// Extensions, as for `index --ext`.
        #[arg(short = 'e', long, value_name = "LIST", allow_hyphen_values = true)]
        ext: Option<String>,
    },
    /// Write every indexed row (inactive ones too, `is_active` says which) to stdout or
    /// --out; Parquet as one host's partition of a dataset folder
    /// (DIR/host=NAME/part-00000.parquet).
    Export {
        /// Database file [default: $MUSICDEX_DB, else $XDG_DATA_HOME/musicdex/library.db]
        #[arg(long, env = "MUSICDEX_DB", hide_env_values = true)]
        db: Option<PathBuf>,
        /// Output format: JSON lines or CSV with a header; non-UTF-8 paths exact in
        /// `path_bytes` (hex).
        #[arg(long, value_enum, default_value_t = query::ExportFormat::Jsonl)]
        format: query::ExportFormat,
        /// A file for jsonl and csv; the dataset folder for parquet (required there).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Parquet: the partition to write or replace [default: this machine's host name]
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Same as `--format jsonl`, the convention of every other command.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Find posts on a music blog, keep the wanted genres, extract download links.
    Scrape(musicdex::scrape::ScrapeArgs),
}

fn main() -> ExitCode {
    // Before any connection: SQLite takes process-wide settings only before it starts.
    musicdex::store::configure_process();
    cli::out::install_pipe_panic_hook();
    let cli = Cli::parse();
    // The process owns its panic hook: quiet for lofty panics, which become row errors.
    musicdex::media::tags::install_quiet_panic_hook();
    match run(cli) {
        Ok(code) => code,
        Err(e) if cli::out::is_broken_pipe(&e) => cli::out::quiet_exit(),
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
    let (quiet, verbose) = (cli.quiet, cli.verbose);
    let mut out = cli::out::Stdout::new();
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
            hidden,
            ext,
            max_removed,
            legacy_commit,
            max_tag_bytes,
        } => {
            // First, so a stop asked for at any point of the run ends it cleanly.
            musicdex::process::install_stop_handlers(&STOP);
            musicdex::process::raise_memlock();
            let db = index::db_path_or_default(db.as_deref())?;
            cli::check_db_access(&db, true)?;
            // Kept for the hint below: a list that matches nothing is most often a typo.
            let ext_given = ext.clone();
            let filter = ext_filter(ext)?.with_hidden(hidden).excluding_db(&db);
            let opts = IndexOptions {
                roots: library,
                db,
                engine,
                full,
                walk: WalkOptions {
                    follow_symlinks,
                    filter,
                },
                threads: threads.unwrap_or_else(cores),
                progress: !no_progress && !json && !quiet && std::io::stderr().is_terminal(),
                writer: WriterOptions {
                    legacy_per_file_commit: legacy_commit,
                    ..Default::default()
                },
                max_removed,
                stop: &STOP,
                uring: musicdex::process::uring_tuning_from_env(),
                limits: musicdex::media::budget::Limits { max_tag_bytes },
            };
            let summary = index::run(&opts)?;
            if summary.files_found == 0
                && let Some(ext) = ext_given
            {
                eprintln!("musicdex: warning: no file matched --ext '{ext}'");
            }
            if json {
                writeln!(out, "{}", serde_json::to_string(&summary)?)?;
            } else if !quiet {
                index::print_summary(&summary, metrics || verbose, &mut out)?;
            }
            out.flush()?;
            if !summary.removal_refused.is_empty() {
                for line in &summary.removal_refused {
                    eprintln!("musicdex: {line}");
                }
                return Ok(ExitCode::from(1));
            }
        }
        Command::Stats { db, json } => {
            let conn = open_read_only(db)?;
            let s = query::stats(&conn)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&s)?)?;
            } else {
                query::print_stats(&s, &mut out)?;
            }
        }
        Command::Errors { db, json } => {
            let conn = open_read_only(db)?;
            let r = cli::maintain::errors(&conn)?;
            print_report(json, &r, cli::maintain::print_errors)?;
        }
        Command::Prune {
            root,
            db,
            older_than,
            dry_run,
            json,
        } => {
            let mut conn = open_existing(db)?;
            let r = cli::maintain::prune(&mut conn, older_than, &root, dry_run)?;
            cli::maintain::checkpoint(&conn);
            if json {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            } else if !quiet {
                let verb = if dry_run { "would delete" } else { "deleted" };
                writeln!(out, "{verb} {} inactive rows", r.rows)?;
            }
        }
        Command::Forget {
            root,
            db,
            yes,
            json,
        } => {
            let mut conn = open_existing(db)?;
            let r = cli::maintain::forget(&mut conn, &root, yes)?;
            cli::maintain::checkpoint(&conn);
            if json {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            } else if !quiet {
                writeln!(out, "deleted {} rows", r.rows)?;
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "musicdex", &mut out);
        }
        Command::Man { out: dir } => match dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                clap_mangen::generate_to(Cli::command(), &dir)?;
            }
            None => clap_mangen::Man::new(Cli::command()).render(&mut out)?,
        },
        Command::Export {
            db,
            format,
            out: out_path,
            host,
            json,
        } => {
            let format = if json {
                query::ExportFormat::Jsonl
            } else {
                format
            };
            export(db, format, out_path, host, &mut out)?;
        }
        Command::Dupes {
            db,
            by,
            min_score,
            json,
        } => {
            let conn = open_read_only(db)?;
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
            hidden,
            ext,
        } => {
            let path = index::db_path_or_default(db.as_deref())?;
            // Moving files is the one vet that must write (what moved, where).
            let conn = if move_duplicates_to.is_some() && !dry_run {
                cli::check_db_access(&path, true)?;
                store::open_existing(&path)?
            } else {
                cli::check_db_access(&path, false)?;
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
                    filter: ext_filter(ext)?.with_hidden(hidden).excluding_db(&path),
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
    w: &mut impl std::io::Write,
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
        let conn = open_read_only(db)?;
        let s = dataset::export(&conn, &dataset::ParquetOptions { dir, host })?;
        writeln!(
            w,
            "wrote {} rows ({} columns, {} row groups, {}) to {} in {:.2}s",
            s.rows,
            s.columns,
            s.row_groups,
            query::human_bytes(s.bytes),
            s.file.display(),
            s.secs
        )?;
        return Ok(());
    }
    if host.is_some() {
        anyhow::bail!("--host names a Parquet partition: it needs --format parquet");
    }
    let conn = open_read_only(db)?;
    match out {
        Some(path) => query::export_to_file(&conn, format, &path)?,
        None => query::export(&conn, format, w)?,
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

/// A share from 0 to 1 (similarity scores); NaN and infinities are refused.
fn parse_unit(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a number from 0 to 1")),
    }
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
    let mut out = cli::out::Stdout::new();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        text(report, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// The index for a command that only reads it.
fn open_read_only(db: Option<PathBuf>) -> Result<rusqlite::Connection> {
    let path = index::db_path_or_default(db.as_deref())?;
    cli::check_db_access(&path, false)?;
    store::open_read_only(&path)
}

/// The index for a command that changes it (it must exist).
fn open_existing(db: Option<PathBuf>) -> Result<rusqlite::Connection> {
    let path = index::db_path_or_default(db.as_deref())?;
    cli::check_db_access(&path, true)?;
    store::open_existing(&path)
}
