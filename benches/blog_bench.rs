//! Helper for `ci/bench-scrape`:
//!
//! - `blog_bench serve --posts 100 --per-page 10 --latency-ms 100 --mode https2 --cert-out ca.pem`
//!   serves a synthetic WordPress blog on 127.0.0.1 (the tests' server),
//!   prints its base URL on the first line of stdout, and exits after
//!   `--lifetime-secs` (default 900) so a forgotten server cannot linger.
//! - `blog_bench parse --seconds 3` runs extraction over the fixture pages on
//!   one thread and prints pages/s per core.

#[path = "../tests/blog_server/mod.rs"]
mod blog_server;

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use musicdex::fetch::Url;
use musicdex::scrape::{GenreMatcher, Hosts, extract};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Http,
    Https1,
    Https2,
}

#[derive(Subcommand)]
enum Cmd {
    Serve {
        #[arg(long, default_value_t = 100)]
        posts: usize,
        #[arg(long, default_value_t = 10)]
        per_page: usize,
        #[arg(long, default_value_t = 100)]
        latency_ms: u64,
        #[arg(long, value_enum, default_value_t = ModeArg::Https2)]
        mode: ModeArg,
        /// Where to write the self-signed certificate (PEM) for `--ca-file`.
        #[arg(long)]
        cert_out: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 900)]
        lifetime_secs: u64,
    },
    Parse {
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve {
            posts,
            per_page,
            latency_ms,
            mode,
            cert_out,
            lifetime_secs,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mode = match mode {
                    ModeArg::Http => blog_server::Mode::Http,
                    ModeArg::Https1 => blog_server::Mode::Https1,
                    ModeArg::Https2 => blog_server::Mode::Https2,
                };
                let server = blog_server::Server::start(mode).await;
                blog_server::synthetic_blog(&server, posts, per_page);
                server.set_latency(Duration::from_millis(latency_ms));
                if let Some(p) = cert_out {
                    std::fs::write(p, &server.cert_pem)?;
                }
                let mut out = std::io::stdout();
                writeln!(out, "{}/", server.base)?;
                out.flush()?;
                tokio::time::sleep(Duration::from_secs(lifetime_secs)).await;
                anyhow::Ok(())
            })
        }
        Cmd::Parse { seconds } => {
            let pages = fixture_pages();
            let matcher = GenreMatcher::default_genres();
            let hosts = Hosts::new::<&str>(&[]);
            let budget = Duration::from_secs_f64(seconds);
            let start = Instant::now();
            let mut n = 0u64;
            let mut bytes = 0u64;
            while start.elapsed() < budget {
                for (url, html) in &pages {
                    let post = extract::extract(html, url, &matcher, &hosts);
                    std::hint::black_box(post);
                    n += 1;
                    bytes += html.len() as u64;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "HTML parsing + extraction: {:.0} pages/s per core ({} fixture pages, avg {:.1} KiB, {:.1} MiB/s, 1 thread)",
                n as f64 / secs,
                pages.len(),
                bytes as f64 / n as f64 / 1024.0,
                bytes as f64 / secs / (1024.0 * 1024.0)
            );
            Ok(())
        }
    }
}

/// Every post fixture, decoded as the fetcher would, plus the synthetic
/// blog's post size class.
fn fixture_pages() -> Vec<(Url, String)> {
    let base = "https://blog.example";
    let mut pages = Vec::new();
    for (name, path) in [
        (
            "wp-post-deep-house.html",
            "/2024/03/04/artist-one-midnight-ep/",
        ),
        (
            "wp-post-technology.html",
            "/2024/02/10/studio-technology-notes/",
        ),
        ("wp-post-dnb.html", "/2024/01/05/rollers-vol-3/"),
        (
            "wp-post-latin-cp1252.html",
            "/2023/12/01/tropical-latin-house-selection/",
        ),
        ("blogger-post.html", "/2024/03/two-step-classics.html"),
        ("broken.html", "/2024/03/speed-garage-dubs.html"),
    ] {
        let raw = blog_server::fixture(name);
        let text = musicdex::fetch::decode::to_text(&raw, "text/html").replace("{{BASE}}", base);
        pages.push((Url::parse(&format!("{base}{path}")).unwrap(), text));
    }
    pages
}
