use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use musicdex::r#gen::{self, GenOptions, Mix};

#[derive(Parser)]
#[command(name = "musicdex", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> Result<()> {
    match Cli::parse().command {
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
        }
    }
    Ok(())
}
