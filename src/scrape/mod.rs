//! The blog scraper: discover posts, fetch them concurrently, keep the wanted
//! genres, extract download links.
//!
//! One coordinator loop owns all state; every fetch is a task in a `JoinSet`
//! that reports back an event. Posts are fetched the moment any source
//! (listing page, feed, sitemap) names them, and listing pages are requested
//! a few ahead of the one being evaluated, so discovery and fetching overlap
//! and the per-host limit, not the round trips, bounds the run time.

pub mod cli;
pub mod dates;
pub mod discover;
pub mod extract;
pub mod genres;
pub mod output;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::Serialize;
use tokio::task::{AbortHandle, JoinSet};

pub use self::cli::{ScrapeArgs, run};
use self::discover::{Listing, Paging};
pub use self::extract::{DownloadLink, Hosts, Post, Quality};
pub use self::genres::GenreMatcher;
use crate::fetch::{FetchConfig, FetchError, Fetcher, Url, Want};

#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub base: Url,
    pub matcher: GenreMatcher,
    pub hosts: Hosts,
    pub max_pages: usize,
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// Consecutive listing pages with no new post after which paging stops.
    pub stop_after_empty: usize,
    pub fetch: FetchConfig,
    pub progress: bool,
}

impl ScrapeConfig {
    pub fn new(base: Url) -> ScrapeConfig {
        ScrapeConfig {
            base,
            matcher: GenreMatcher::default_genres(),
            hosts: Hosts::new::<&str>(&[]),
            max_pages: 100,
            since: None,
            until: None,
            stop_after_empty: 3,
            fetch: FetchConfig::default(),
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorEntry {
    pub url: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub blog: String,
    pub listing_pages: usize,
    pub posts_found: usize,
    pub posts_fetched: usize,
    pub posts_matched: usize,
    pub links: usize,
    pub errors: usize,
    pub elapsed_secs: f64,
    pub pages_per_sec: f64,
    pub requests: u64,
    pub retries: u64,
    /// Responses received; `http2_requests` of them over HTTP/2.
    pub responses: u64,
    pub http2_requests: u64,
    pub error_details: Vec<ErrorEntry>,
}

#[derive(Debug)]
pub struct Report {
    /// Matching posts in the date range, newest first.
    pub posts: Vec<Post>,
    pub summary: Summary,
}

/// A listing page, and for page 1 that page read as a post when it is one.
type ListingResult = Result<(Listing, Option<Box<Post>>), FetchError>;

enum Event {
    /// A listing page; for page 1 also the page read as a post, when it is one.
    Listing(usize, Url, ListingResult),
    Feed(Url, Result<Vec<(String, Option<NaiveDate>)>, FetchError>),
    Sitemap(Url, usize, Result<discover::Sitemap, FetchError>),
    Post(Url, Result<Post, FetchError>),
}

struct Ctx {
    fetcher: Fetcher,
    cfg: ScrapeConfig,
}

fn spawn_listing(tasks: &mut JoinSet<Event>, ctx: &Arc<Ctx>, n: usize, url: Url) -> AbortHandle {
    let ctx = ctx.clone();
    tasks.spawn(async move {
        let res = match ctx.fetcher.get(&url, Want::Html).await {
            Ok(page) => {
                let c = ctx.clone();
                tokio::task::spawn_blocking(move || {
                    let listing = discover::parse_listing(&page.text, &page.url, &c.cfg.base);
                    // The URL given may be a post rather than a blog: the
                    // page itself tells (see `Post::is_post`).
                    let single = (n == 1)
                        .then(|| {
                            extract::extract(&page.text, &page.url, &c.cfg.matcher, &c.cfg.hosts)
                        })
                        .filter(|p| p.is_post)
                        .map(Box::new);
                    (listing, single)
                })
                .await
                .map_err(|e| FetchError::Decode(e.to_string()))
            }
            Err(e) => Err(e),
        };
        Event::Listing(n, url, res)
    })
}

fn spawn_feed(tasks: &mut JoinSet<Event>, ctx: &Arc<Ctx>, url: Url) {
    let ctx = ctx.clone();
    tasks.spawn(async move {
        let res = ctx
            .fetcher
            .get(&url, Want::Xml)
            .await
            .map(|p| discover::parse_feed(&p.text));
        Event::Feed(url, res)
    });
}

fn spawn_sitemap(tasks: &mut JoinSet<Event>, ctx: &Arc<Ctx>, url: Url, depth: usize) {
    let ctx = ctx.clone();
    tasks.spawn(async move {
        let res = ctx
            .fetcher
            .get(&url, Want::Xml)
            .await
            .map(|p| discover::parse_sitemap(&p.text));
        Event::Sitemap(url, depth, res)
    });
}

fn spawn_post(tasks: &mut JoinSet<Event>, ctx: &Arc<Ctx>, url: Url) {
    let ctx = ctx.clone();
    tasks.spawn(async move {
        let res = match ctx.fetcher.get(&url, Want::Html).await {
            Ok(page) => {
                let c = ctx.clone();
                // html5ever parsing is CPU work: keep it off the I/O threads.
                tokio::task::spawn_blocking(move || {
                    extract::extract(&page.text, &page.url, &c.cfg.matcher, &c.cfg.hosts)
                })
                .await
                .map_err(|e| FetchError::Decode(e.to_string()))
            }
            Err(e) => Err(e),
        };
        Event::Post(url, res)
    });
}

/// A key under which the same post reached through `www.`, `http:` or
/// without its trailing slash is one post.
fn post_key(u: &Url) -> String {
    format!(
        "{}{}?{}",
        u.host().trim_start_matches("www."),
        u.path().trim_end_matches('/'),
        u.query().unwrap_or("")
    )
}

/// Expected absences: a blog without a feed or sitemap, or past its last page.
fn is_absent(e: &FetchError) -> bool {
    matches!(e, FetchError::Status(404 | 410) | FetchError::NotHtml(_))
}

struct State {
    seen: HashSet<String>,
    /// Posts waiting for a slot; see `post_cap`.
    queue: VecDeque<Url>,
    posts_in_flight: usize,
    /// Post fetches in flight, kept a few below the per-host limit so that
    /// listing pages, feed and sitemaps (which find the next posts) never
    /// wait behind a full round of post fetches.
    post_cap: usize,
    found: usize,
    fetched: usize,
    listing_pages: usize,
    posts: Vec<Post>,
    errors: Vec<ErrorEntry>,
}

impl State {
    fn in_range(&self, cfg: &ScrapeConfig, day: Option<NaiveDate>) -> bool {
        match day {
            Some(d) => cfg.since.is_none_or(|s| d >= s) && cfg.until.is_none_or(|u| d <= u),
            None => true,
        }
    }

    /// Queues a post; true when it was new.
    fn offer(
        &mut self,
        tasks: &mut JoinSet<Event>,
        ctx: &Arc<Ctx>,
        url: Url,
        day: Option<NaiveDate>,
    ) -> bool {
        if !discover::is_post_url(&url, &ctx.cfg.base) || !self.seen.insert(post_key(&url)) {
            return false;
        }
        if !self.in_range(&ctx.cfg, day) {
            return false;
        }
        self.found += 1;
        self.queue.push_back(url);
        self.pump(tasks, ctx);
        true
    }

    fn pump(&mut self, tasks: &mut JoinSet<Event>, ctx: &Arc<Ctx>) {
        while self.posts_in_flight < self.post_cap
            && let Some(url) = self.queue.pop_front()
        {
            self.posts_in_flight += 1;
            spawn_post(tasks, ctx, url);
        }
    }
}

pub async fn scrape(cfg: ScrapeConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    let fetcher = Fetcher::new(cfg.fetch.clone())?;
    let window = (cfg.fetch.concurrency.min(cfg.fetch.per_host) / 8).clamp(1, 4);
    let ctx = Arc::new(Ctx { fetcher, cfg });
    let cfg = &ctx.cfg;
    let base = cfg.base.clone();
    let bar = progress_bar(cfg.progress);

    let slots = cfg.fetch.concurrency.min(cfg.fetch.per_host);
    let mut state = State {
        seen: HashSet::new(),
        queue: VecDeque::new(),
        posts_in_flight: 0,
        post_cap: slots.saturating_sub(window + 2).max(1),
        found: 0,
        fetched: 0,
        listing_pages: 0,
        posts: Vec::new(),
        errors: Vec::new(),
    };
    let mut tasks: JoinSet<Event> = JoinSet::new();

    // robots.txt first: it may forbid the blog, and it names the sitemaps.
    let mut sitemaps: Vec<Url> = Vec::new();
    if cfg.fetch.respect_robots {
        let robots = ctx.fetcher.robots(&base).await;
        if let Some(e) = &robots.unreachable {
            anyhow::bail!("cannot reach {}: {e}", base.origin());
        }
        if let Some(why) = &robots.unavailable {
            anyhow::bail!("{}", FetchError::RobotsUnavailable(why.clone()));
        }
        if !robots.allowed(&base.path_and_query()) {
            anyhow::bail!(
                "robots.txt of {} disallows {}; use --ignore-robots to override",
                base.origin(),
                base
            );
        }
        sitemaps.extend(
            robots
                .sitemaps
                .iter()
                .filter_map(|s| base.join(s))
                .filter(|s| s.same_site(&base)),
        );
    }
    if sitemaps.is_empty() {
        sitemaps.push(base.with_path_and_query("/sitemap.xml", None));
    }
    let mut listing_tasks: BTreeMap<usize, AbortHandle> = BTreeMap::new();
    listing_tasks.insert(1, spawn_listing(&mut tasks, &ctx, 1, base.clone()));
    // A URL below the site's root may be a single post: then nothing else is
    // to be fetched, so the sitemaps wait until page 1 has shown what it is.
    // At the root they go out at once, overlapping page 1.
    let mut deferred_sitemaps = Vec::new();
    if base.path() == "/" {
        for s in sitemaps {
            spawn_sitemap(&mut tasks, &ctx, s, 0);
        }
    } else {
        deferred_sitemaps = sitemaps;
    }

    let mut paging: Option<Paging> = None;
    let mut results: BTreeMap<usize, ListingResult> = BTreeMap::new();
    let mut urls: BTreeMap<usize, Url> = BTreeMap::new();
    let mut next_eval = 1usize;
    let mut next_issue = 2usize;
    let mut empty_streak = 0usize;
    let mut paging_done = false;
    let mut first_page_error: Option<FetchError> = None;
    let mut single_post = false;

    while let Some(joined) = tasks.join_next().await {
        let event = match joined {
            Ok(ev) => ev,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => {
                state.errors.push(ErrorEntry {
                    url: String::new(),
                    error: format!("task failed: {e}"),
                });
                continue;
            }
        };
        match event {
            Event::Listing(n, url, res) => {
                listing_tasks.remove(&n);
                urls.insert(n, url);
                results.insert(n, res);
                while let Some(res) = results.remove(&next_eval) {
                    let n = next_eval;
                    let url = urls.remove(&n).unwrap_or_else(|| base.clone());
                    next_eval += 1;
                    let mut new_posts = 0;
                    let mut all_old = false;
                    let mut next_link = None;
                    if n == 1 && !matches!(res, Ok((_, Some(_)))) {
                        for s in std::mem::take(&mut deferred_sitemaps) {
                            spawn_sitemap(&mut tasks, &ctx, s, 0);
                        }
                    }
                    match res {
                        Ok((_, Some(post))) => {
                            // Single-post mode: that post, no discovery.
                            tasks.abort_all();
                            listing_tasks.clear();
                            state.found = 1;
                            state.fetched = 1;
                            state.queue.clear();
                            state.posts = vec![*post];
                            single_post = true;
                            break;
                        }
                        Ok((listing, None)) => {
                            state.listing_pages += 1;
                            if n == 1 {
                                paging = Some(discover::paging_of(listing.next.as_ref()));
                                let feed = listing.feed.clone().unwrap_or_else(|| {
                                    let dir = format!("{}/", base.path().trim_end_matches('/'));
                                    base.with_path_and_query(&format!("{dir}feed/"), None)
                                });
                                spawn_feed(&mut tasks, &ctx, feed);
                            }
                            let dated: Vec<NaiveDate> =
                                listing.posts.iter().filter_map(|(_, d)| *d).collect();
                            all_old = cfg
                                .since
                                .is_some_and(|s| !dated.is_empty() && dated.iter().all(|d| *d < s));
                            for (post, day) in listing.posts {
                                if state.offer(&mut tasks, &ctx, post, day) {
                                    new_posts += 1;
                                }
                            }
                            next_link = listing.next;
                        }
                        Err(e) => {
                            if n == 1 {
                                first_page_error = Some(e.clone());
                                paging = Some(Paging::Path);
                            }
                            if n == 1 || !is_absent(&e) {
                                state.errors.push(ErrorEntry {
                                    url: url.to_string(),
                                    error: e.to_string(),
                                });
                            }
                        }
                    }
                    empty_streak = if new_posts == 0 { empty_streak + 1 } else { 0 };
                    if all_old || empty_streak >= cfg.stop_after_empty || n >= cfg.max_pages {
                        paging_done = true;
                    }
                    if paging == Some(Paging::Next)
                        && !paging_done
                        && let Some(next) = next_link
                    {
                        listing_tasks.insert(n + 1, spawn_listing(&mut tasks, &ctx, n + 1, next));
                    }
                }
                if single_post {
                    break;
                }
                if paging_done {
                    // Pages requested ahead that paging no longer needs.
                    for (_, task) in std::mem::take(&mut listing_tasks) {
                        task.abort();
                    }
                }
                if let Some(p @ (Paging::Path | Paging::Query)) = paging {
                    while !paging_done
                        && next_issue <= cfg.max_pages
                        && next_issue < next_eval + window
                    {
                        let url = discover::listing_url(&base, p, next_issue);
                        listing_tasks
                            .insert(next_issue, spawn_listing(&mut tasks, &ctx, next_issue, url));
                        next_issue += 1;
                    }
                }
            }
            Event::Feed(url, res) => match res {
                Ok(entries) => {
                    for (link, day) in entries {
                        if let Some(u) = base.join(&link) {
                            state.offer(&mut tasks, &ctx, u, day);
                        }
                    }
                }
                Err(e) if is_absent(&e) => {}
                Err(e) => state.errors.push(ErrorEntry {
                    url: url.to_string(),
                    error: e.to_string(),
                }),
            },
            Event::Sitemap(url, depth, res) => match res {
                Ok(map) => {
                    for (loc, lastmod) in map.urls {
                        // lastmod is on or after publication, so only `since` can prune here.
                        let too_old = cfg.since.zip(lastmod).is_some_and(|(s, m)| m < s);
                        if !too_old && let Some(u) = base.join(&loc) {
                            state.offer(&mut tasks, &ctx, u, None);
                        }
                    }
                    if depth < 2 {
                        for child in map
                            .sitemaps
                            .iter()
                            .filter(|s| discover::is_post_sitemap(s))
                            .take(50)
                        {
                            if let Some(u) = base.join(child).filter(|u| u.same_site(&base)) {
                                spawn_sitemap(&mut tasks, &ctx, u, depth + 1);
                            }
                        }
                    }
                }
                Err(e) if is_absent(&e) => {}
                Err(e) => state.errors.push(ErrorEntry {
                    url: url.to_string(),
                    error: e.to_string(),
                }),
            },
            Event::Post(url, res) => {
                bar.inc(1);
                state.posts_in_flight -= 1;
                state.pump(&mut tasks, &ctx);
                match res {
                    Ok(post) => {
                        state.fetched += 1;
                        let day = post.parsed_date.map(|d| d.day);
                        if post.is_post
                            && !post.matching_genres.is_empty()
                            && state.in_range(cfg, day)
                        {
                            state.posts.push(post);
                        }
                    }
                    Err(e) => state.errors.push(ErrorEntry {
                        url: url.to_string(),
                        error: e.to_string(),
                    }),
                }
            }
        }
        bar.set_length(state.found as u64);
        bar.set_message(format!(
            "listing pages {} · matched {} · errors {}",
            state.listing_pages,
            state.posts.len(),
            state.errors.len()
        ));
    }
    bar.finish_and_clear();

    if state.found == 0
        && let Some(e) = first_page_error
    {
        anyhow::bail!("cannot fetch {base}: {e}");
    }

    state.posts.sort_by(|a, b| {
        let (da, db) = (a.parsed_date.map(|d| d.day), b.parsed_date.map(|d| d.day));
        db.cmp(&da).then_with(|| a.url.cmp(&b.url))
    });
    let links: HashSet<&str> = state
        .posts
        .iter()
        .flat_map(|p| p.download_links.iter().map(|l| l.url.as_str()))
        .collect();
    let elapsed = started.elapsed();
    let stats = &ctx.fetcher.stats;
    let summary = Summary {
        blog: base.to_string(),
        listing_pages: state.listing_pages,
        posts_found: state.found,
        posts_fetched: state.fetched,
        posts_matched: state.posts.len(),
        links: links.len(),
        errors: state.errors.len(),
        elapsed_secs: round3(elapsed),
        pages_per_sec: round3_f(
            (state.listing_pages + state.fetched) as f64 / elapsed.as_secs_f64().max(1e-9),
        ),
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        responses: stats.responses.load(Ordering::Relaxed),
        http2_requests: stats.http2.load(Ordering::Relaxed),
        error_details: state.errors,
    };
    Ok(Report {
        posts: state.posts,
        summary,
    })
}

fn round3(d: Duration) -> f64 {
    round3_f(d.as_secs_f64())
}

fn round3_f(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn progress_bar(enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} posts {pos}/{len} [{elapsed}] {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
