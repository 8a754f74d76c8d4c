//! The fetcher against real in-process servers on 127.0.0.1: TLS with
//! HTTP/1.1 and HTTP/2, retries, redirects, timeouts, size caps, content
//! types, encodings, robots.txt and the per-host limit.

mod blog_server;

use std::io::Write;
use std::time::Duration;

use blog_server::{Mode, Reply, Server};
use musicdex::fetch::{FetchConfig, FetchError, Fetcher, Url, Want};

fn config(server: &Server, dir: &tempfile::TempDir) -> FetchConfig {
    FetchConfig {
        ca_file: (server.mode != Mode::Http).then(|| server.write_ca(dir.path())),
        backoff_base: Duration::from_millis(20),
        ..FetchConfig::default()
    }
}

fn url(server: &Server, path: &str) -> Url {
    Url::parse(&format!("{}{}", server.base, path)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_negotiates_http2_by_alpn_and_http1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, want_h2) in [(Mode::Https2, true), (Mode::Https1, false)] {
        let server = Server::start(mode).await;
        server.page("/post/", "wp-post-deep-house.html");
        let f = Fetcher::new(config(&server, &dir)).unwrap();
        for _ in 0..3 {
            let page = f.get(&url(&server, "/post/"), Want::Html).await.unwrap();
            assert!(page.text.contains("Midnight EP"));
            assert_eq!(page.version == hyper::Version::HTTP_2, want_h2, "{mode:?}");
        }
        assert_eq!(server.h2_requests() > 0, want_h2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_refused_without_ca_file() {
    let server = Server::start(Mode::Https2).await;
    server.page("/", "wp-home.html");
    let f = Fetcher::new(FetchConfig {
        retries: 0,
        ..FetchConfig::default()
    })
    .unwrap();
    let err = f.get(&url(&server, "/"), Want::Html).await.unwrap_err();
    // robots.txt is the first request; its TLS failure is reported as the
    // connection error it is, not as a robots.txt problem.
    assert!(
        matches!(err, FetchError::Connect(ref m) if m.contains("certificate")),
        "{err}"
    );
    let f = Fetcher::new(FetchConfig {
        retries: 0,
        respect_robots: false,
        ..FetchConfig::default()
    })
    .unwrap();
    let err = f.get(&url(&server, "/"), Want::Html).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Connect(ref m) if m.contains("certificate")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_and_5xx_honouring_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Https2).await;
    let ok = Reply::Html(b"<html><title>ok</title></html>".to_vec());
    server.route(
        "/busy",
        Reply::FailThen {
            status: 429,
            times: 2,
            retry_after: Some("0".into()),
            then: Box::new(ok.clone()),
        },
    );
    server.route(
        "/flaky",
        Reply::FailThen {
            status: 503,
            times: 1,
            retry_after: None,
            then: Box::new(ok.clone()),
        },
    );
    server.route(
        "/down",
        Reply::FailThen {
            status: 500,
            times: 100,
            retry_after: None,
            then: Box::new(ok.clone()),
        },
    );
    server.route(
        "/later",
        Reply::FailThen {
            status: 429,
            times: 100,
            retry_after: Some("3600".into()),
            then: Box::new(ok),
        },
    );
    let f = Fetcher::new(FetchConfig {
        retries: 2,
        ..config(&server, &dir)
    })
    .unwrap();
    let busy = url(&server, "/busy");
    assert_eq!(f.host_limit_now(&busy), 64);
    f.get(&busy, Want::Html).await.unwrap();
    assert_eq!(server.hits("/busy"), 3);
    // Two 429s halved the host's limit twice.
    assert_eq!(f.host_limit_now(&busy), 16);
    f.get(&url(&server, "/flaky"), Want::Html).await.unwrap();
    assert_eq!(server.hits("/flaky"), 2);
    let err = f.get(&url(&server, "/down"), Want::Html).await.unwrap_err();
    assert_eq!(err, FetchError::Status(500));
    assert_eq!(server.hits("/down"), 3, "one try and two retries");
    // A Retry-After beyond the cap fails at once instead of stalling the run.
    let err = f
        .get(&url(&server, "/later"), Want::Html)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::RetryAfterTooLong(3600));
    assert_eq!(server.hits("/later"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_reported() {
    // Bind and drop to get a loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = Fetcher::new(FetchConfig {
        retries: 1,
        backoff_base: Duration::from_millis(10),
        respect_robots: false,
        ..FetchConfig::default()
    })
    .unwrap();
    let err = f
        .get(
            &Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            Want::Html,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err}");
    assert_eq!(
        f.stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_up_to_five_and_loops_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Http).await;
    for i in 0..8 {
        server.route(
            &format!("/r{i}"),
            Reply::Redirect(301, format!("/r{}", i + 1)),
        );
    }
    server.route("/r8", Reply::Html(b"<p>end</p>".to_vec()));
    server.route("/loop-a", Reply::Redirect(302, "/loop-b".into()));
    server.route(
        "/loop-b",
        Reply::Redirect(307, format!("{}/loop-a", server.base)),
    );
    let f = Fetcher::new(config(&server, &dir)).unwrap();
    let page = f.get(&url(&server, "/r3"), Want::Html).await.unwrap();
    assert_eq!(page.url.path(), "/r8");
    assert_eq!(
        f.get(&url(&server, "/r2"), Want::Html).await.unwrap_err(),
        FetchError::TooManyRedirects
    );
    let err = f
        .get(&url(&server, "/loop-a"), Want::Html)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::RedirectLoop(_)), "{err}");
    assert_eq!(server.hits("/loop-a"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_time_out_only_when_they_stall_past_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Https1).await;
    server.route(
        "/slow",
        Reply::Slow {
            first: b"<html><p>first".to_vec(),
            stall: Duration::from_millis(300),
            rest: b" second</p></html>".to_vec(),
        },
    );
    server.route(
        "/stuck",
        Reply::Slow {
            first: b"<html><p>first".to_vec(),
            stall: Duration::from_secs(600),
            rest: Vec::new(),
        },
    );
    let f = Fetcher::new(FetchConfig {
        read_timeout: Duration::from_secs(5),
        retries: 0,
        ..config(&server, &dir)
    })
    .unwrap();
    let page = f.get(&url(&server, "/slow"), Want::Html).await.unwrap();
    assert!(page.text.contains("first second"));
    let f = Fetcher::new(FetchConfig {
        read_timeout: Duration::from_millis(400),
        retries: 1,
        ..config(&server, &dir)
    })
    .unwrap();
    assert_eq!(
        f.get(&url(&server, "/stuck"), Want::Html)
            .await
            .unwrap_err(),
        FetchError::Timeout("body read")
    );
    assert_eq!(server.hits("/stuck"), 2, "a timeout is retried");
    let f = Fetcher::new(FetchConfig {
        total_timeout: Duration::from_millis(300),
        retries: 0,
        ..config(&server, &dir)
    })
    .unwrap();
    assert_eq!(
        f.get(&url(&server, "/stuck"), Want::Html)
            .await
            .unwrap_err(),
        FetchError::Timeout("total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_and_non_html_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Https2).await;
    server.route("/huge", Reply::Huge(11 * 1024 * 1024));
    server.route(
        "/declared",
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: vec![b' '; 2 * 1024 * 1024],
        },
    );
    server.route(
        "/track.mp3",
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "audio/mpeg".into())],
            body: b"ID3\x03\x00".to_vec(),
        },
    );
    server.route(
        "/untyped",
        Reply::Raw {
            status: 200,
            headers: vec![],
            body: b"\x89PNG\r\n".to_vec(),
        },
    );
    let f = Fetcher::new(config(&server, &dir)).unwrap();
    assert_eq!(
        f.get(&url(&server, "/huge"), Want::Html).await.unwrap_err(),
        FetchError::BodyTooLarge
    );
    let small = Fetcher::new(FetchConfig {
        max_body: 1024 * 1024,
        ..config(&server, &dir)
    })
    .unwrap();
    assert_eq!(
        small
            .get(&url(&server, "/declared"), Want::Html)
            .await
            .unwrap_err(),
        FetchError::BodyTooLarge
    );
    assert!(matches!(
        f.get(&url(&server, "/track.mp3"), Want::Html).await.unwrap_err(),
        FetchError::NotHtml(ct) if ct == "audio/mpeg"
    ));
    assert!(matches!(
        f.get(&url(&server, "/untyped"), Want::Html)
            .await
            .unwrap_err(),
        FetchError::NotHtml(_)
    ));
    // The client keeps working on the same pool after those aborted bodies.
    server.page("/after", "wp-home.html");
    assert!(f.get(&url(&server, "/after"), Want::Html).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_brotli_and_charsets_decode() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Https2).await;
    let raw = blog_server::fixture("wp-post-deep-house.html");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let enc = |ce: &str, body: Vec<u8>| Reply::Raw {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/html; charset=UTF-8".into()),
            ("content-encoding".into(), ce.into()),
        ],
        body,
    };
    server.route("/gz", enc("gzip", gz.finish().unwrap()));
    server.route(
        "/br",
        enc("br", blog_server::fixture("wp-post-deep-house.html.br")),
    );
    server.route(
        "/latin",
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: blog_server::fixture("wp-post-latin-cp1252.html"),
        },
    );
    server.route(
        "/bad-utf8",
        Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: b"<html><body><p>Genre: House \xff\xfe\xc3</p></body></html>".to_vec(),
        },
    );
    let f = Fetcher::new(config(&server, &dir)).unwrap();
    let want = String::from_utf8(raw).unwrap();
    assert_eq!(
        f.get(&url(&server, "/gz"), Want::Html).await.unwrap().text,
        want
    );
    assert_eq!(
        f.get(&url(&server, "/br"), Want::Html).await.unwrap().text,
        want
    );
    let latin = f
        .get(&url(&server, "/latin"), Want::Html)
        .await
        .unwrap()
        .text;
    assert!(latin.contains("Café del Mañana") && latin.contains("\u{201c}Platinum\u{201d}"));
    let bad = f
        .get(&url(&server, "/bad-utf8"), Want::Html)
        .await
        .unwrap()
        .text;
    assert!(bad.contains("Genre: House \u{fffd}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_is_obeyed_fetched_once_and_can_be_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Https2).await;
    server.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nDisallow: /private/\n",
    );
    server.page("/private/x/", "wp-home.html");
    server.page("/public/", "wp-home.html");
    let f = Fetcher::new(config(&server, &dir)).unwrap();
    let (private, public) = (url(&server, "/private/x/"), url(&server, "/public/"));
    let (a, b) = tokio::join!(f.get(&private, Want::Html), f.get(&public, Want::Html));
    assert_eq!(a.unwrap_err(), FetchError::RobotsDisallowed);
    assert!(b.is_ok());
    assert_eq!(server.hits("/robots.txt"), 1);
    assert_eq!(server.hits("/private/x/"), 0);
    let f = Fetcher::new(FetchConfig {
        respect_robots: false,
        ..config(&server, &dir)
    })
    .unwrap();
    assert!(
        f.get(&url(&server, "/private/x/"), Want::Html)
            .await
            .is_ok()
    );

    // A robots.txt that fails with 5xx means "disallow all" (RFC 9309).
    let down = Server::start(Mode::Http).await;
    down.route(
        "/robots.txt",
        Reply::FailThen {
            status: 503,
            times: 100,
            retry_after: None,
            then: Box::new(Reply::Html(Vec::new())),
        },
    );
    down.page("/", "wp-home.html");
    let f = Fetcher::new(FetchConfig {
        retries: 0,
        ..config(&down, &dir)
    })
    .unwrap();
    let err = f.get(&url(&down, "/"), Want::Html).await.unwrap_err();
    assert!(
        matches!(err, FetchError::RobotsUnavailable(ref m) if m.contains("503")),
        "{err}"
    );
    assert_eq!(down.hits("/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_delay_spaces_requests_to_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Mode::Http).await;
    server.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nCrawl-delay: 0.25\nDisallow: /private/\n",
    );
    for i in 0..4 {
        server.page(&format!("/p{i}/"), "wp-home.html");
    }
    let f = Fetcher::new(config(&server, &dir)).unwrap();
    let urls: Vec<Url> = (0..4).map(|i| url(&server, &format!("/p{i}/"))).collect();
    let started = std::time::Instant::now();
    let results = futures_join_all(&f, &urls).await;
    // Four requests asked for at once start 0, 0.25, 0.5 and 0.75 s in: the
    // delay is a floor, so this lower bound cannot fail on a slow machine.
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.max_in_flight(), 1);
    assert_eq!(server.hits("/robots.txt"), 1);
}

async fn futures_join_all(
    f: &Fetcher,
    urls: &[Url],
) -> Vec<Result<musicdex::fetch::Page, FetchError>> {
    let (a, b, c, d) = tokio::join!(
        f.get(&urls[0], Want::Html),
        f.get(&urls[1], Want::Html),
        f.get(&urls[2], Want::Html),
        f.get(&urls[3], Want::Html)
    );
    vec![a, b, c, d]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_limit_bounds_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [Mode::Https1, Mode::Https2] {
        let server = Server::start(mode).await;
        server.set_latency(Duration::from_millis(100));
        for i in 0..24 {
            server.route(&format!("/p{i}"), Reply::Html(b"<p>x</p>".to_vec()));
        }
        let f = std::sync::Arc::new(
            Fetcher::new(FetchConfig {
                per_host: 3,
                concurrency: 64,
                respect_robots: false,
                ..config(&server, &dir)
            })
            .unwrap(),
        );
        let mut set = tokio::task::JoinSet::new();
        for i in 0..24 {
            let f = f.clone();
            let u = url(&server, &format!("/p{i}"));
            set.spawn(async move { f.get(&u, Want::Html).await.map(|_| ()) });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        assert!(
            server.max_in_flight() <= 3,
            "{mode:?}: {}",
            server.max_in_flight()
        );
        assert!(
            server.max_in_flight() >= 2,
            "{mode:?}: requests never overlapped"
        );
    }
}
