//! Scraper benchmarks: HTML extraction per fixture page (parse throughput),
//! genre matching, and a whole 100-post scrape from a loopback HTTPS/HTTP2
//! blog with no injected latency (client overhead; the 20x latency gate
//! lives in ci/bench-scrape).

#[path = "../tests/blog_server/mod.rs"]
mod blog_server;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use musicdex::fetch::Url;
use musicdex::scrape::{GenreMatcher, Hosts, ScrapeConfig, extract, scrape};

fn extraction(c: &mut Criterion) {
    let matcher = GenreMatcher::default_genres();
    let hosts = Hosts::new::<&str>(&[]);
    let mut group = c.benchmark_group("extract");
    for name in [
        "wp-post-deep-house.html",
        "wp-post-technology.html",
        "wp-post-latin-cp1252.html",
        "blogger-post.html",
        "broken.html",
    ] {
        let raw = blog_server::fixture(name);
        let html = musicdex::fetch::decode::to_text(&raw, "text/html")
            .replace("{{BASE}}", "https://blog.example");
        let url = Url::parse("https://blog.example/2024/03/04/post/").unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| black_box(extract::extract(&html, &url, &matcher, &hosts)))
        });
    }
    group.finish();
}

fn genres(c: &mut Criterion) {
    let matcher = GenreMatcher::default_genres();
    let text = String::from_utf8(blog_server::fixture("wp-post-deep-house.html")).unwrap();
    let mut group = c.benchmark_group("genres");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("match_page_text", |b| {
        b.iter(|| black_box(matcher.matches(&[text.as_str()])))
    });
    group.finish();
}

fn whole_scrape(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, cfg) = rt.block_on(async {
        let server = blog_server::Server::start(blog_server::Mode::Https2).await;
        blog_server::synthetic_blog(&server, 100, 10);
        let mut cfg = ScrapeConfig::new(Url::parse(&format!("{}/", server.base)).unwrap());
        cfg.fetch.ca_file = Some(server.write_ca(dir.path()));
        (server, cfg)
    });
    let mut group = c.benchmark_group("scrape");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_posts_loopback_h2", |b| {
        b.iter(|| {
            let report = rt.block_on(scrape(cfg.clone())).unwrap();
            assert_eq!(report.summary.posts_fetched, 100);
            black_box(report)
        })
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, extraction, genres, whole_scrape);
criterion_main!(benches);
