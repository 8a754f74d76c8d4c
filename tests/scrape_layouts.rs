//! The scraper on the layouts real blogs use. Two sites, both served on
//! 127.0.0.1 and scraped end to end:
//!
//! - the fixture sites (fixtures/blog/layouts/<layout>/, one blog per layout,
//!   with their ground truth in pages.json): every figure ≥ 0.95 per layout;
//! - unseen blogs from `layouts::varied_site` (every layout mixed into one
//!   blog, class and attribute order, quoting, whitespace, wrappers and head
//!   metadata varied by seed): every figure ≥ 0.9 per layout.
//!
//! Figures: posts precision and recall (kept = a post with a wanted genre),
//! genre, title and date accuracy over the kept true posts, download-link
//! precision and recall over them; non-post pages are never kept.
//!
//! `MUSICDEX_WRITE_LAYOUT_FIXTURES=1 cargo test --test scrape_layouts
//! write_fixtures -- --ignored` rewrites the fixture files.

mod blog_server;
#[path = "blog_server/layouts.rs"]
mod layouts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use blog_server::{Mode, Reply, Server};
use layouts::{LAYOUTS, Layout, PageKind};
use musicdex::fetch::Url;
use musicdex::scrape::{Report, ScrapeConfig, scrape};
use serde::{Deserialize, Serialize};

/// One page of a test site with what a scraper must make of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Truth {
    path: String,
    file: String,
    layout: String,
    /// "post", "about", "contact", "archive-…" or "home".
    kind: String,
    title: Option<String>,
    /// YYYY-MM-DD.
    day: Option<String>,
    genres: Vec<String>,
    links: Vec<String>,
}

impl Truth {
    fn is_post(&self) -> bool {
        self.kind == "post"
    }
    /// A post the default genres keep.
    fn wanted(&self) -> bool {
        self.is_post() && !self.genres.is_empty()
    }
}

struct SitePages {
    truth: Vec<Truth>,
    html: BTreeMap<String, String>,
    sitemap: String,
}

fn from_generated(site: &layouts::Site) -> SitePages {
    let mut truth = Vec::new();
    let mut html = BTreeMap::new();
    for (i, p) in site.pages.iter().enumerate() {
        let file = format!("{i:02}-{}.html", kind_name(&p.kind));
        let (title, day, genres, links) = match &p.kind {
            PageKind::Post(s) => (
                Some(s.title.clone()),
                Some(s.day.format("%Y-%m-%d").to_string()),
                s.expected_genres().into_iter().collect(),
                s.links.iter().map(|l| l.url.clone()).collect(),
            ),
            _ => (None, None, Vec::new(), Vec::new()),
        };
        truth.push(Truth {
            path: p.path.clone(),
            file: file.clone(),
            layout: p.layout.name().to_string(),
            kind: kind_name(&p.kind),
            title,
            day,
            genres,
            links,
        });
        html.insert(file, p.html.clone());
    }
    SitePages {
        truth,
        html,
        sitemap: site.sitemap(),
    }
}

fn kind_name(k: &PageKind) -> String {
    match k {
        PageKind::Post(_) => "post".into(),
        PageKind::About => "about".into(),
        PageKind::Contact => "contact".into(),
        PageKind::Archive(a) => format!("archive-{a}"),
        PageKind::Home => "home".into(),
    }
}

fn fixture_root() -> PathBuf {
    blog_server::fixture_dir().join("layouts")
}

fn load_fixture(layout: Layout) -> SitePages {
    let dir = fixture_root().join(layout.name());
    let truth: Vec<Truth> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("pages.json"))
            .unwrap_or_else(|e| panic!("{}/pages.json: {e}", dir.display())),
    )
    .unwrap();
    let html = truth
        .iter()
        .map(|t| {
            (
                t.file.clone(),
                std::fs::read_to_string(dir.join(&t.file)).unwrap(),
            )
        })
        .collect();
    let sitemap = std::fs::read_to_string(dir.join("sitemap.xml")).unwrap();
    SitePages {
        truth,
        html,
        sitemap,
    }
}

async fn serve(site: &SitePages) -> Server {
    let s = Server::start(Mode::Http).await;
    s.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nDisallow: /wp-admin/\n\nSitemap: {{BASE}}/sitemap.xml\n",
    );
    s.text("/sitemap.xml", "application/xml", &site.sitemap);
    for t in &site.truth {
        s.route(
            &t.path,
            Reply::Html(s.localize(site.html[&t.file].as_bytes())),
        );
    }
    s
}

fn config(server: &Server, path: &str) -> ScrapeConfig {
    let mut cfg = ScrapeConfig::new(Url::parse(&format!("{}{path}", server.base)).unwrap());
    cfg.fetch.backoff_base = Duration::from_millis(20);
    cfg
}

#[derive(Debug, Default, Clone)]
struct Score {
    kept_true: usize,
    kept: usize,
    wanted: usize,
    genre_ok: usize,
    title_ok: usize,
    date_ok: usize,
    link_hits: usize,
    links_found: usize,
    links_expected: usize,
    non_posts_kept: Vec<String>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Score {
    fn figures(&self) -> [(&'static str, f64); 7] {
        [
            ("posts precision", ratio(self.kept_true, self.kept)),
            ("posts recall", ratio(self.kept_true, self.wanted)),
            ("genres", ratio(self.genre_ok, self.kept_true)),
            ("titles", ratio(self.title_ok, self.kept_true)),
            ("dates", ratio(self.date_ok, self.kept_true)),
            ("links precision", ratio(self.link_hits, self.links_found)),
            ("links recall", ratio(self.link_hits, self.links_expected)),
        ]
    }
}

/// Scores per layout.
fn score(site: &SitePages, report: &Report) -> BTreeMap<String, Score> {
    let mut out: BTreeMap<String, Score> = BTreeMap::new();
    let path_of = |url: &str| Url::parse(url).unwrap().path().to_string();
    for t in site.truth.iter().filter(|t| t.wanted()) {
        out.entry(t.layout.clone()).or_default().wanted += 1;
    }
    for p in &report.posts {
        let path = path_of(&p.url);
        let Some(t) = site.truth.iter().find(|t| t.path == path) else {
            panic!("kept a page the site does not have: {}", p.url);
        };
        let sc = out.entry(t.layout.clone()).or_default();
        sc.kept += 1;
        if !t.is_post() {
            sc.non_posts_kept.push(t.path.clone());
            continue;
        }
        if !t.wanted() {
            continue;
        }
        sc.kept_true += 1;
        let got: BTreeSet<&str> = p.matching_genres.iter().map(String::as_str).collect();
        let want: BTreeSet<&str> = t.genres.iter().map(String::as_str).collect();
        if got == want {
            sc.genre_ok += 1;
        } else {
            eprintln!("genres {}: got {got:?}, want {want:?}", t.path);
        }
        if Some(&p.title) == t.title.as_ref() {
            sc.title_ok += 1;
        } else {
            eprintln!("title {}: got {:?}, want {:?}", t.path, p.title, t.title);
        }
        if p.parsed_date.map(|d| d.day.format("%Y-%m-%d").to_string()) == t.day {
            sc.date_ok += 1;
        } else {
            eprintln!("date {}: got {:?}, want {:?}", t.path, p.date, t.day);
        }
        let got: BTreeSet<&str> = p.download_links.iter().map(|l| l.url.as_str()).collect();
        let want: BTreeSet<&str> = t.links.iter().map(String::as_str).collect();
        sc.links_found += got.len();
        sc.links_expected += want.len();
        sc.link_hits += got.intersection(&want).count();
        if got != want {
            eprintln!("links {}: got {got:?}, want {want:?}", t.path);
        }
    }
    for t in site.truth.iter().filter(|t| t.wanted()) {
        if !report.posts.iter().any(|p| path_of(&p.url) == t.path) {
            eprintln!("missed {} ({})", t.path, t.layout);
        }
    }
    out
}

fn check(scores: &BTreeMap<String, Score>, floor: f64, what: &str) {
    let mut failures = Vec::new();
    for (layout, sc) in scores {
        let figs = sc.figures();
        println!(
            "{what} {layout:>16}: {}",
            figs.iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (n, v) in figs {
            if v < floor {
                failures.push(format!("{layout}: {n} {v:.2} < {floor}"));
            }
        }
        if !sc.non_posts_kept.is_empty() {
            failures.push(format!(
                "{layout}: non-post pages kept: {:?}",
                sc.non_posts_kept
            ));
        }
        assert!(sc.wanted >= 3, "{layout}: too few wanted posts to measure");
    }
    assert!(failures.is_empty(), "{what}:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_sites_per_layout() {
    let mut all = BTreeMap::new();
    for layout in LAYOUTS {
        let site = load_fixture(layout);
        let server = serve(&site).await;
        let report = scrape(config(&server, "/")).await.unwrap();
        assert_eq!(
            report.summary.errors, 0,
            "{:#?}",
            report.summary.error_details
        );
        // Every page but the front page is offered by the sitemap, so all are
        // fetched; the Blogger static page's /p/ path is refused by its URL.
        let offered = site
            .truth
            .iter()
            .filter(|t| t.kind != "home" && !t.path.contains("/p/"))
            .count();
        assert_eq!(report.summary.posts_fetched, offered, "{}", layout.name());
        all.extend(score(&site, &report));
    }
    assert_eq!(all.len(), LAYOUTS.len());
    check(&all, 0.95, "fixtures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unseen_blogs_mixing_every_layout() {
    let mut total: BTreeMap<String, Score> = BTreeMap::new();
    for seed in [11u64, 2024, 90210] {
        let site = from_generated(&layouts::varied_site(seed, 8));
        let server = serve(&site).await;
        let report = scrape(config(&server, "/")).await.unwrap();
        assert_eq!(
            report.summary.errors, 0,
            "{:#?}",
            report.summary.error_details
        );
        for (layout, sc) in score(&site, &report) {
            let t = total.entry(layout).or_default();
            t.kept_true += sc.kept_true;
            t.kept += sc.kept;
            t.wanted += sc.wanted;
            t.genre_ok += sc.genre_ok;
            t.title_ok += sc.title_ok;
            t.date_ok += sc.date_ok;
            t.link_hits += sc.link_hits;
            t.links_found += sc.links_found;
            t.links_expected += sc.links_expected;
            t.non_posts_kept.extend(sc.non_posts_kept);
        }
    }
    assert_eq!(total.len(), LAYOUTS.len());
    check(&total, 0.9, "unseen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_url_is_scraped_as_that_post() {
    let site = load_fixture(Layout::Astra);
    let server = serve(&site).await;
    let post = site.truth.iter().find(|t| t.wanted()).unwrap();
    let report = scrape(config(&server, &post.path)).await.unwrap();
    assert_eq!(report.summary.posts_found, 1);
    assert_eq!(report.summary.listing_pages, 0);
    assert_eq!(report.posts.len(), 1);
    assert_eq!(Some(&report.posts[0].title), post.title.as_ref());
    assert_eq!(server.hits("/sitemap.xml"), 0, "no discovery");
    // Every other page untouched.
    for t in site.truth.iter().filter(|t| t.path != post.path) {
        assert_eq!(server.hits(&t.path), 0, "{}", t.path);
    }

    // An about page given directly is not a post: nothing is kept.
    let about = site.truth.iter().find(|t| t.kind == "about").unwrap();
    let report = scrape(config(&server, &about.path)).await.unwrap();
    assert!(report.posts.is_empty());
}

#[test]
fn genres_warns_about_unknown_names_and_keeps_hyphenated_words_whole() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let site = load_fixture(Layout::GeneratePress);
    let server = rt.block_on(serve(&site));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_musicdex"))
        .args([
            "scrape",
            &format!("{}/", server.base),
            "--genres",
            "Deep-House,Techno-logy,ukg",
            "--format",
            "text",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\"Techno-logy\" is neither a built-in genre nor an alias"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"Deep-House\""), "{stderr}");
    assert!(!stderr.contains("\"ukg\""), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kept = site
        .truth
        .iter()
        .filter(|t| {
            t.is_post()
                && t.genres
                    .iter()
                    .any(|g| g == "deep house" || g == "uk garage")
        })
        .count();
    assert!(kept > 0);
    assert_eq!(stdout.matches("Title: ").count(), kept, "{stdout}");
    drop(rt);
}

#[test]
fn json_without_out_prints_summary_and_posts_as_one_object() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let site = load_fixture(Layout::Newspaper);
    let server = rt.block_on(serve(&site));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_musicdex"))
        .args(["scrape", &format!("{}/", server.base), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = site.truth.iter().filter(|t| t.wanted()).count();
    assert_eq!(v["summary"]["posts_matched"], kept);
    assert_eq!(v["posts"].as_array().unwrap().len(), kept);
    drop(rt);
}

/// The committed fixtures are the generator's canonical rendering, byte for byte, so the
/// per-layout figures and the fixture pages cannot drift apart. With
/// `MUSICDEX_WRITE_LAYOUT_FIXTURES=1` the test rewrites them instead of comparing.
#[test]
fn fixtures_are_the_canonical_rendering() {
    let write = std::env::var_os("MUSICDEX_WRITE_LAYOUT_FIXTURES").is_some();
    for layout in LAYOUTS {
        let site = from_generated(&layouts::canonical(layout));
        let dir = fixture_root().join(layout.name());
        let mut files: Vec<(String, String)> = site.html.clone().into_iter().collect();
        files.push(("sitemap.xml".into(), site.sitemap.clone()));
        files.push((
            "pages.json".into(),
            serde_json::to_string_pretty(&site.truth).unwrap() + "\n",
        ));
        if write {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, body) in &files {
                std::fs::write(dir.join(file), body).unwrap();
            }
            continue;
        }
        for (file, body) in &files {
            let on_disk = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(
                &on_disk == body,
                "{}/{file} differs from the generator (MUSICDEX_WRITE_LAYOUT_FIXTURES=1 rewrites)",
                layout.name()
            );
        }
    }
}
