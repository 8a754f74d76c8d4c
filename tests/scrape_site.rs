//! End to end: whole fixture blogs (WordPress and Blogger markup) served on
//! 127.0.0.1, scraped through the library entry and through the binary.

mod blog_server;

use std::time::Duration;

use blog_server::{Mode, Reply, Server};
use chrono::NaiveDate;
use musicdex::fetch::Url;
use musicdex::scrape::{Post, Quality, ScrapeConfig, scrape};

const WP_FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Deep Grooves</title><link>{{BASE}}/</link>
<item><title>Artist One &#8211; Midnight EP</title><link>{{BASE}}/2024/03/04/artist-one-midnight-ep/</link>
<pubDate>Mon, 04 Mar 2024 21:15:00 +0000</pubDate></item>
<item><title>Studio technology notes</title><link>{{BASE}}/2024/02/10/studio-technology-notes/</link></item>
</channel></rss>"#;

const WP_SITEMAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{{BASE}}/2024/03/04/artist-one-midnight-ep/</loc><lastmod>2024-03-06T08:00:00+01:00</lastmod></url>
<url><loc>{{BASE}}/2023/10/sitemap-only-ukg.html</loc><lastmod>2024-03-09</lastmod></url>
<url><loc>{{BASE}}/tag/house/</loc></url>
</urlset>"#;

/// The WordPress fixture blog: two listing pages, feed, sitemap, robots.txt
/// that hides /private/, a post that is gone, and a windows-1252 post.
async fn wordpress_blog(mode: Mode) -> Server {
    let s = Server::start(mode).await;
    s.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nDisallow: /private/\nDisallow: /wp-admin/\n\nSitemap: {{BASE}}/sitemap.xml\n",
    );
    s.page("/", "wp-home.html");
    s.page("/page/2/", "wp-page2.html");
    s.text("/feed/", "application/rss+xml; charset=UTF-8", WP_FEED);
    s.text("/sitemap.xml", "application/xml", WP_SITEMAP);
    s.page(
        "/2024/03/04/artist-one-midnight-ep/",
        "wp-post-deep-house.html",
    );
    s.page(
        "/2024/02/10/studio-technology-notes/",
        "wp-post-technology.html",
    );
    s.page("/2024/01/05/rollers-vol-3/", "wp-post-dnb.html");
    s.route(
        "/2023/12/01/tropical-latin-house-selection/",
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: blog_server::fixture("wp-post-latin-cp1252.html"),
        },
    );
    s.page("/2023/10/sitemap-only-ukg.html", "blogger-post.html");
    s.page("/private/members-only-pack/", "wp-post-deep-house.html");
    for taxonomy in [
        "/tag/house/",
        "/category/latin/",
        "/2023/12/01/sidebar-only-latin-mix/",
    ] {
        s.page(taxonomy, "wp-post-deep-house.html");
    }
    s
}

fn config(server: &Server, dir: &tempfile::TempDir) -> ScrapeConfig {
    let mut cfg = ScrapeConfig::new(Url::parse(&format!("{}/", server.base)).unwrap());
    if server.mode != Mode::Http {
        cfg.fetch.ca_file = Some(server.write_ca(dir.path()));
    }
    cfg.fetch.backoff_base = Duration::from_millis(20);
    cfg
}

fn post<'a>(posts: &'a [Post], path: &str) -> &'a Post {
    posts
        .iter()
        .find(|p| p.url.ends_with(path))
        .unwrap_or_else(|| {
            panic!(
                "no post {path} in {:#?}",
                posts.iter().map(|p| &p.url).collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordpress_blog_end_to_end_over_http2() {
    let dir = tempfile::tempdir().unwrap();
    let server = wordpress_blog(Mode::Https2).await;
    let report = scrape(config(&server, &dir)).await.unwrap();
    let s = &report.summary;
    let urls: Vec<&str> = report.posts.iter().map(|p| p.url.as_str()).collect();

    // deep-house, technology, rollers, latin, sitemap-only, private, gone-missing.
    assert_eq!(s.posts_found, 7, "{s:#?}");
    assert_eq!(s.posts_fetched, 5, "{s:#?}");
    assert_eq!(s.listing_pages, 2);
    assert_eq!(s.errors, 2, "{:#?}", s.error_details);
    assert!(
        s.error_details
            .iter()
            .any(|e| e.url.ends_with("/gone-missing/") && e.error.contains("404"))
    );
    assert!(
        s.error_details
            .iter()
            .any(|e| e.url.contains("/private/") && e.error.contains("robots"))
    );
    // Every response came over HTTP/2. An attempt that got none (slow under load, or
    // dropped once the run needed no more) is a request without a response.
    assert!(
        s.http2_requests > 0 && s.http2_requests == s.responses && s.responses <= s.requests,
        "{s:#?}"
    );
    assert_eq!(s.posts_matched, 4, "{urls:#?}");

    // Newest first; the technology post matched nothing despite its sidebar.
    assert!(
        urls[0].ends_with("/2023/10/sitemap-only-ukg.html"),
        "{urls:?}"
    );
    assert!(!urls.iter().any(|u| u.contains("technology")));

    let deep = post(&report.posts, "/2024/03/04/artist-one-midnight-ep/");
    assert_eq!(deep.title, "Artist One \u{2013} Midnight EP");
    assert_eq!(deep.date.as_deref(), Some("2024-03-04T22:15:00+01:00"));
    assert_eq!(
        deep.genres,
        ["Deep House", "Nu Disco", "Night Shift Records"]
    );
    assert_eq!(deep.matching_genres, ["house", "nu disco", "deep house"]);
    let links: Vec<(&str, &str, Quality)> = deep
        .download_links
        .iter()
        .map(|l| (l.url.as_str(), l.host.as_str(), l.quality))
        .collect();
    assert_eq!(
        links,
        [
            (
                "https://soundcloud.com/nightshift/midnight-ep-preview",
                "soundcloud.com",
                Quality::Other
            ),
            (
                "https://nfile.cc/aB3dE9/Artist_One_-_Midnight_EP",
                "nfile.cc",
                Quality::Flac
            ),
            (
                "https://krakenfiles.com/view/k9Fz/file.html",
                "krakenfiles.com",
                Quality::Flac
            ),
        ],
        "MP3 dropped next to FLAC; comment and sidebar links ignored"
    );

    let dnb = post(&report.posts, "/2024/01/05/rollers-vol-3/");
    assert_eq!(dnb.title, "Rollers Vol. 3");
    assert_eq!(dnb.date.as_deref(), Some("2024-01-05"));
    assert_eq!(dnb.genres, ["DnB", "Jungle", "Liquid", "Jump-Up"]);
    assert_eq!(dnb.matching_genres, ["drum and bass"]);
    assert_eq!(
        dnb.download_links
            .iter()
            .map(|l| (l.host.as_str(), l.quality))
            .collect::<Vec<_>>(),
        [
            ("we.tl", Quality::Mp3_320),
            ("drive.google.com", Quality::Mp3_320)
        ]
    );

    let latin = post(&report.posts, "/tropical-latin-house-selection/");
    assert_eq!(
        latin.title,
        "Tropical Latin House Selection \u{2014} Caf\u{e9} del Ma\u{f1}ana"
    );
    assert_eq!(latin.date.as_deref(), Some("2023-12-01T18:30:00+00:00"));
    assert_eq!(latin.matching_genres, ["house", "brazilian", "latin"]);
    assert_eq!(
        latin
            .download_links
            .iter()
            .map(|l| (l.host.as_str(), l.quality))
            .collect::<Vec<_>>(),
        [("rapidgator.net", Quality::Flac)]
    );

    let ukg = post(&report.posts, "/sitemap-only-ukg.html");
    assert_eq!(ukg.title, "Two Step Classics");
    assert_eq!(ukg.date.as_deref(), Some("2024-03-09"));
    assert_eq!(ukg.genres, ["UKG", "Garage", "2-Step", "Speed Garage"]);
    assert_eq!(ukg.matching_genres, ["uk garage"]);
    assert_eq!(ukg.download_links.len(), 2);
    assert!(
        ukg.download_links
            .iter()
            .all(|l| l.quality == Quality::Flac && l.host == "novafile.org")
    );

    // Never fetched: taxonomy pages, sidebar links, robots-disallowed posts.
    for p in [
        "/tag/house/",
        "/category/latin/",
        "/2023/12/01/sidebar-only-latin-mix/",
        "/private/members-only-pack/",
    ] {
        assert_eq!(server.hits(p), 0, "{p}");
    }
    assert_eq!(server.hits("/robots.txt"), 1);
    // Each post once, though listing, feed and sitemap all named some of them.
    assert_eq!(server.hits("/2024/03/04/artist-one-midnight-ep/"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_stops_paging_and_until_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = wordpress_blog(Mode::Http).await;
    let mut cfg = config(&server, &dir);
    cfg.since = NaiveDate::from_ymd_opt(2024, 1, 1);
    // One request at a time makes the order, and so what was requested, exact.
    cfg.fetch.concurrency = 1;
    let report = scrape(cfg).await.unwrap();
    let urls: Vec<&str> = report.posts.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(!urls.iter().any(|u| u.contains("latin")));
    // Page 2 listed only posts older than --since: its posts are skipped and paging stops.
    assert_eq!(server.hits("/page/2/"), 1);
    assert_eq!(server.hits("/page/3/"), 0);
    assert_eq!(
        server.hits("/2023/12/01/tropical-latin-house-selection/"),
        0
    );
    assert_eq!(server.hits("/2023/11/20/gone-missing/"), 0);
    assert_eq!(
        report.summary.errors, 1,
        "{:#?}",
        report.summary.error_details
    );

    let mut cfg = config(&server, &dir);
    cfg.until = NaiveDate::from_ymd_opt(2024, 1, 31);
    let report = scrape(cfg).await.unwrap();
    let mut urls: Vec<&str> = report.posts.iter().map(|p| p.url.as_str()).collect();
    urls.sort();
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls[0].ends_with("/tropical-latin-house-selection/"));
    assert!(urls[1].ends_with("/rollers-vol-3/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blogger_blog_follows_older_posts_links_over_http1() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(Mode::Https1).await;
    s.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nDisallow: /search\nAllow: /search?updated-max=\n",
    );
    s.page("/", "blogger-home.html");
    s.page(
        "/search?updated-max=2024-03-01T10:00:00-08:00&max-results=1",
        "blogger-page2.html",
    );
    s.page("/2024/03/two-step-classics.html", "blogger-post.html");
    s.route(
        "/2024/03/speed-garage-dubs.html",
        Reply::FailThen {
            status: 503,
            times: 1,
            retry_after: Some("0".into()),
            then: Box::new(Reply::Html(
                s.localize(&blog_server::fixture("broken.html")),
            )),
        },
    );
    s.text(
        "/feeds/posts/default",
        "application/atom+xml; charset=UTF-8",
        "<feed xmlns='http://www.w3.org/2005/Atom'><entry><published>2024-03-09T14:20:00.000-08:00</published>\
         <link rel='alternate' type='text/html' href='{{BASE}}/2024/03/two-step-classics.html'/></entry></feed>",
    );
    s.page("/p/about.html", "blogger-post.html");
    s.page("/2019/01/popular-sidebar-post.html", "blogger-post.html");
    let report = scrape(config(&s, &dir)).await.unwrap();
    let sum = &report.summary;
    assert_eq!(sum.errors, 0, "{:#?}", sum.error_details);
    assert_eq!(sum.listing_pages, 2);
    assert_eq!(sum.posts_found, 2);
    assert_eq!(sum.retries, 1);
    assert_eq!(sum.http2_requests, 0);
    assert_eq!(
        s.hits("/search?updated-max=2024-03-01T10:00:00-08:00&max-results=1"),
        1
    );
    assert_eq!(s.hits("/p/about.html"), 0);
    assert_eq!(s.hits("/2019/01/popular-sidebar-post.html"), 0);

    let broken = post(&report.posts, "/2024/03/speed-garage-dubs.html");
    assert!(
        broken.title.starts_with("Broken & Unclosed"),
        "{}",
        broken.title
    );
    assert_eq!(broken.matching_genres, ["house", "afro house"]);
    assert_eq!(
        broken.date.as_deref(),
        Some("2024-03-01"),
        "from the /YYYY/MM/ permalink"
    );
    assert_eq!(
        broken
            .download_links
            .iter()
            .map(|l| (l.host.as_str(), l.quality))
            .collect::<Vec<_>>(),
        [("krakenfiles.com", Quality::Flac)],
        "MP3 dropped beside FLAC; nothing from inside <script>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_permalinks_page_with_paged_query() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(Mode::Http).await;
    let listing = |posts: &[&str], next: Option<&str>| {
        let mut h = String::from("<html><body><main>");
        for p in posts {
            h.push_str(&format!(
                "<article class='post hentry'><h2 class='entry-title'><a href='{{{{BASE}}}}/?p={p}'>Post {p}</a></h2></article>"
            ));
        }
        if let Some(n) = next {
            h.push_str(&format!(
                "<a class='next page-numbers' href='{{{{BASE}}}}/?paged={n}'>Older</a>"
            ));
        }
        h.push_str("</main></body></html>");
        Reply::Html(s.localize(h.as_bytes()))
    };
    s.route("/", listing(&["1", "2"], Some("2")));
    s.route("/?paged=2", listing(&["3"], Some("3")));
    s.route("/?paged=3", listing(&["3", "2"], None));
    for p in 1..=3 {
        s.route(
            &format!("/?p={p}"),
            Reply::Html(format!("<html><title>Post {p}</title><body><article><time datetime='2024-0{p}-01'>day</time><p>Genre: Ambient</p></article></body></html>").into_bytes()),
        );
    }
    let mut cfg = config(&s, &dir);
    cfg.stop_after_empty = 2;
    let report = scrape(cfg).await.unwrap();
    assert_eq!(report.summary.posts_found, 3);
    assert_eq!(report.summary.posts_matched, 3);
    assert_eq!(s.hits("/?paged=2"), 1);
    assert_eq!(s.hits("/page/2/"), 0);
    assert!(
        report
            .posts
            .iter()
            .all(|p| p.matching_genres == ["ambient"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_writes_json_posts_text_report_and_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = wordpress_blog(Mode::Https2).await;
    let ca = server.write_ca(dir.path());
    let base = server.base.clone();
    let out_json = dir.path().join("posts.json");
    let out_txt = dir.path().join("report.txt");
    let (o1, o2) = (out_json.clone(), out_txt.clone());
    let (json_run, text_run) = tokio::task::spawn_blocking(move || {
        let run = |extra: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_musicdex"))
                .arg("scrape")
                .arg(&base)
                .arg("--ca-file")
                .arg(&ca)
                .args(extra)
                .output()
                .unwrap()
        };
        (
            run(&[
                "--out",
                o1.to_str().unwrap(),
                "--json",
                "--genres",
                "drum and bass,UKG",
            ]),
            run(&["--out", o2.to_str().unwrap(), "--format", "text"]),
        )
    })
    .await
    .unwrap();
    assert!(
        json_run.status.success(),
        "{}",
        String::from_utf8_lossy(&json_run.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&json_run.stdout).expect("one JSON object on stdout");
    for k in [
        "listing_pages",
        "posts_found",
        "posts_fetched",
        "posts_matched",
        "links",
        "errors",
        "elapsed_secs",
        "pages_per_sec",
    ] {
        assert!(summary.get(k).is_some(), "summary lacks {k}: {summary}");
    }
    assert_eq!(summary["posts_matched"], 2);
    let posts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let matched: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["matching_genres"][0].as_str().unwrap())
        .collect();
    assert_eq!(matched, ["uk garage", "drum and bass"]);

    assert!(
        text_run.status.success(),
        "{}",
        String::from_utf8_lossy(&text_run.stderr)
    );
    let stderr = String::from_utf8_lossy(&text_run.stderr);
    assert!(stderr.contains("matched 4"), "{stderr}");
    let report = std::fs::read_to_string(&out_txt).unwrap();
    assert!(report.contains("Title: Artist One \u{2013} Midnight EP\nURL: "));
    assert!(report.contains("Matching Genres: house, nu disco, deep house\nDate: 2024-03-04T22:15:00+01:00\nDownload Links:\n"));
    assert!(report.contains("All unique download links: 8"), "{report}");
    assert!(report.contains("Group 1 (links 1-8):"));

    // An unreachable blog is a failed run with a clear message.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = std::process::Command::new(env!("CARGO_BIN_EXE_musicdex"))
        .args([
            "scrape",
            &format!("http://127.0.0.1:{port}/"),
            "--retries",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!dead.status.success());
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert!(
        stderr.contains("cannot reach") && stderr.contains("connection"),
        "{stderr}"
    );
    assert!(!stderr.contains("robots"), "{stderr}");
}
