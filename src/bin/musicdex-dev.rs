//! Developer tools kept out of the product binary: fixture and benchmark generators and
//! the I/O roofline. CI scripts, benches and tests call this binary; users never need it.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use musicdex::dupes;
use musicdex::r#gen::{self, GenOptions, Mix};
use musicdex::index;
use musicdex::scan::{ExtFilter, WalkOptions};

#[derive(Parser)]
#[command(
    name = "musicdex-dev",
    version,
    about = "musicdex developer tools: generated libraries, synthetic indexes, roofline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks only: write a synthetic index of N rows (and optionally a folder of
    /// real files to vet against it).
    SynthIndex(dupes::synth::SynthOptions),
    /// Benchmark floor: walk, then read and MD5 the hashed bytes of every file, nothing
    /// else (no tags, no database). Bounds a full index, warm or cold.
    Roofline {
        /// Library folders to read.
        library: Vec<PathBuf>,
        /// Extensions, as for `musicdex index --ext`.
        #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
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
        /// How many files to write.
        #[arg(long)]
        files: usize,
        /// Seed of every random choice: the same seed writes the same library.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// What kind of files.
        #[arg(long, value_enum, default_value_t = MixArg::Music)]
        mix: MixArg,
        /// Writer threads, 1 to 1024 [default: cores available]; the output does not
        /// depend on it.
        #[arg(short = 'j', long, value_parser = parse_threads)]
        threads: Option<usize>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write the robustness suite: seeded mutants of SOURCES and the pathological cases
    /// (sparse partial downloads, lying size fields); see ci/robustness.
    GenRobustness {
        dir: PathBuf,
        /// Files or folders whose files are mutated.
        #[arg(long, required = true, num_args = 1..)]
        sources: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1500)]
        mutants: usize,
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

fn main() -> Result<()> {
    musicdex::store::configure_process();
    match Cli::parse().command {
        Command::SynthIndex(opts) => {
            println!("{}", serde_json::to_string(&dupes::synth::run(&opts)?)?);
        }
        Command::Roofline {
            library,
            ext,
            io_threads,
        } => {
            let walk = WalkOptions {
                follow_symlinks: false,
                filter: ext
                    .as_deref()
                    .map_or_else(|| Ok(ExtFilter::default()), ExtFilter::parse)?,
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
                    threads: threads.unwrap_or(0),
                },
            )?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                r#gen::print_report(&report);
            }
        }
        Command::GenRobustness {
            dir,
            sources,
            seed,
            mutants,
        } => {
            let files: Vec<PathBuf> = sources
                .iter()
                .flat_map(|s| r#gen::mutate::files_under(s))
                .collect();
            r#gen::mutate::write_suite(&dir, &files, seed, mutants)?;
        }
    }
    Ok(())
}

fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a thread count from 1 to 1024")),
    }
}
