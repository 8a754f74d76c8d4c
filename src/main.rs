use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "musicdex", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find posts on a music blog, keep the wanted genres, extract download links.
    Scrape(musicdex::scrape::ScrapeArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Scrape(args) => musicdex::scrape::run(args),
    }
}
