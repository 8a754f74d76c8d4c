//! `musicdex scrape`: arguments and the entry point the binary calls.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use super::{GenreMatcher, Hosts, ScrapeConfig, output};
use crate::fetch::{FetchConfig, Url};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

/// Find posts on a music blog, keep the wanted genres, extract download links.
#[derive(Debug, Clone, Args)]
pub struct ScrapeArgs {
    /// The blog's front page, e.g. https://blog.example/ (a blog under a path works too).
    pub blog_url: String,
    /// Comma-separated genres to keep [default: the replaced tool's list].
    #[arg(long, value_delimiter = ',')]
    pub genres: Option<Vec<String>>,
    /// Extra file-host domains whose links count as downloads (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Most listing pages to read.
    #[arg(long, default_value_t = 100)]
    pub max_pages: usize,
    /// Keep posts dated on or after this day (YYYY-MM-DD); paging stops at older posts.
    #[arg(long, value_parser = parse_day)]
    pub since: Option<NaiveDate>,
    /// Keep posts dated on or before this day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day)]
    pub until: Option<NaiveDate>,
    /// Requests in flight across all hosts.
    #[arg(long, default_value_t = FetchConfig::default().concurrency)]
    pub concurrency: usize,
    /// Requests in flight to one host; halved each time the host answers 429 or 503.
    #[arg(long, default_value_t = FetchConfig::default().per_host)]
    pub per_host: usize,
    /// Write the posts here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How the posts are written: JSON, or text for reading.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Longest one request attempt may take, in seconds (connect ≤ 10 s and
    /// read stalls ≤ 20 s are capped by it too).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Retries after a connection error, timeout, 429 or 5xx.
    #[arg(long, default_value_t = FetchConfig::default().retries)]
    pub retries: u32,
    /// Extra trusted CA certificates (PEM), for a self-hosted blog.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Do not fetch or obey robots.txt.
    #[arg(long)]
    pub ignore_robots: bool,
    /// Print the run summary as JSON on standard output: one object, or with no --out one
    /// object {"summary": …, "posts": […]} holding the posts too.
    #[arg(long)]
    pub json: bool,
}

fn parse_day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("expected YYYY-MM-DD: {e}"))
}

impl ScrapeArgs {
    pub fn to_config(&self) -> anyhow::Result<ScrapeConfig> {
        let mut raw = self.blog_url.trim().to_string();
        if !raw.contains("://") {
            raw = format!("https://{raw}");
        }
        let base =
            Url::parse(&raw).with_context(|| format!("not an http(s) URL: {}", self.blog_url))?;
        anyhow::ensure!(
            self.timeout > 0.0 && self.timeout.is_finite(),
            "--timeout must be positive"
        );
        anyhow::ensure!(
            self.concurrency > 0 && self.per_host > 0,
            "--concurrency and --per-host must be at least 1"
        );
        if let (Some(s), Some(u)) = (self.since, self.until) {
            anyhow::ensure!(s <= u, "--since {s} is after --until {u}");
        }
        let total = Duration::from_secs_f64(self.timeout);
        let defaults = FetchConfig::default();
        let fetch = FetchConfig {
            concurrency: self.concurrency,
            per_host: self.per_host,
            connect_timeout: defaults.connect_timeout.min(total),
            read_timeout: defaults.read_timeout.min(total),
            total_timeout: total,
            retries: self.retries,
            ca_file: self.ca_file.clone(),
            respect_robots: !self.ignore_robots,
            ..defaults
        };
        let matcher = match &self.genres {
            Some(g) => {
                // Still used (a blog may well use a genre we do not list), but
                // a typo would otherwise match nothing without a word.
                for name in super::genres::unknown_names(g) {
                    eprintln!(
                        "warning: --genres: \"{name}\" is neither a built-in genre nor an alias \
                         of one; it matches only as written, on word boundaries"
                    );
                }
                GenreMatcher::new(g)
            }
            None => GenreMatcher::default_genres(),
        };
        anyhow::ensure!(!matcher.wanted().is_empty(), "--genres names no genre");
        Ok(ScrapeConfig {
            matcher,
            hosts: Hosts::new(&self.hosts),
            max_pages: self.max_pages.max(1),
            since: self.since,
            until: self.until,
            fetch,
            progress: std::io::stderr().is_terminal(),
            ..ScrapeConfig::new(base)
        })
    }
}

/// Runs `musicdex scrape`.
pub fn run(args: ScrapeArgs) -> anyhow::Result<()> {
    let cfg = args.to_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(super::scrape(cfg))?;
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        match args.format {
            Format::Json => output::write_json(&report.posts, &mut *w),
            Format::Text => output::write_text(&report.posts, &mut *w),
        }
    };
    match &args.out {
        Some(path) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            write(&mut f)
                .and_then(|_| f.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None if args.json => {
            // One JSON document on stdout, so a pipe into jq gets both.
            #[derive(serde::Serialize)]
            struct Both<'a> {
                summary: &'a super::Summary,
                posts: &'a [super::Post],
            }
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(
                &mut out,
                &Both {
                    summary: &report.summary,
                    posts: &report.posts,
                },
            )?;
            writeln!(out)?;
            return Ok(());
        }
        None => {
            let mut out = std::io::stdout().lock();
            write(&mut out).context("cannot write to standard output")?;
        }
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report.summary)?;
        writeln!(out)?;
    } else {
        output::write_summary_human(&report.summary, std::io::stderr().lock())?;
    }
    Ok(())
}
