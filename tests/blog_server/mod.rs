//! An in-process blog server on 127.0.0.1 for the scraper's tests, bench and
//! bench-gate example: plain HTTP, HTTPS with HTTP/1.1 only, or HTTPS offering
//! HTTP/2 by ALPN, with a self-signed certificate made at start-up; injected
//! latency, failures, slow and oversized bodies, redirects.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    /// TLS with ALPN `http/1.1` only.
    Https1,
    /// TLS offering `h2` then `http/1.1`.
    Https2,
}

#[derive(Clone)]
pub enum Reply {
    Html(Vec<u8>),
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Redirect(u16, String),
    /// The first `times` requests get `status` (with `Retry-After` if given), then `then`.
    FailThen {
        status: u16,
        times: usize,
        retry_after: Option<String>,
        then: Box<Reply>,
    },
    /// Headers and `first`, a stall of `stall`, then `rest`.
    Slow {
        first: Vec<u8>,
        stall: Duration,
        rest: Vec<u8>,
    },
    /// `bytes` of HTML-ish filler streamed without a Content-Length.
    Huge(usize),
}

type Body = BoxBody<Bytes, std::io::Error>;

struct State {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
    latency: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
    h2_requests: AtomicUsize,
}

pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    pub mode: Mode,
    /// PEM of the self-signed certificate (empty for plain HTTP).
    pub cert_pem: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/blog")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn ok_body(b: Vec<u8>) -> Body {
    Full::new(Bytes::from(b))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

impl Server {
    pub async fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        Self::start_on(listener, mode)
    }

    pub fn start_on(listener: TcpListener, mode: Mode) -> Server {
        let addr = listener.local_addr().unwrap();
        let (acceptor, cert_pem) = match mode {
            Mode::Http => (None, String::new()),
            Mode::Https1 | Mode::Https2 => {
                let ck = rcgen::generate_simple_self_signed(vec![
                    "127.0.0.1".to_string(),
                    "localhost".to_string(),
                ])
                .expect("self-signed certificate");
                let key =
                    rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(vec![ck.cert.der().clone()], key)
                    .expect("server TLS config");
                cfg.alpn_protocols = if mode == Mode::Https2 {
                    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
                } else {
                    vec![b"http/1.1".to_vec()]
                };
                (
                    Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
                    ck.cert.pem(),
                )
            }
        };
        let scheme = if mode == Mode::Http { "http" } else { "https" };
        let state = Arc::new(State {
            routes: Mutex::new(HashMap::new()),
            hits: Mutex::new(HashMap::new()),
            latency: Mutex::new(Duration::ZERO),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            h2_requests: AtomicUsize::new(0),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let st = st.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            base: format!("{scheme}://{addr}"),
            mode,
            cert_pem,
            state,
            task,
        }
    }

    pub fn set_latency(&self, d: Duration) {
        *self.state.latency.lock().unwrap() = d;
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// Fills in `{{BASE}}` and `{{HOST}}` so fixture links point at this server.
    pub fn localize(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let host = self.addr.to_string();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"{{BASE}}") {
                out.extend_from_slice(self.base.as_bytes());
                i += 8;
            } else if bytes[i..].starts_with(b"{{HOST}}") {
                out.extend_from_slice(host.as_bytes());
                i += 8;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    pub fn page(&self, path: &str, fixture_name: &str) {
        self.route(path, Reply::Html(self.localize(&fixture(fixture_name))));
    }

    pub fn text(&self, path: &str, content_type: &str, body: &str) {
        self.route(
            path,
            Reply::Raw {
                status: 200,
                headers: vec![("content-type".into(), content_type.into())],
                body: self.localize(body.as_bytes()),
            },
        );
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn h2_requests(&self) -> usize {
        self.state.h2_requests.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Writes the certificate to `dir` for `--ca-file`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, &self.cert_pem).unwrap();
        p
    }
}

struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    st.requests.fetch_add(1, Ordering::SeqCst);
    if req.version() == hyper::Version::HTTP_2 {
        st.h2_requests.fetch_add(1, Ordering::SeqCst);
    }
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&st);
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let hit = {
        let mut hits = st.hits.lock().unwrap();
        let n = hits.entry(pq.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let latency = *st.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let reply = {
        let routes = st.routes.lock().unwrap();
        routes.get(&pq).or_else(|| routes.get(&path)).cloned()
    };
    let Some(reply) = reply else {
        return Ok(Response::builder()
            .status(404)
            .header("content-type", "text/html")
            .body(ok_body(b"<h1>Not found</h1>".to_vec()))
            .unwrap());
    };
    Ok(render(reply, hit).await)
}

async fn render(reply: Reply, hit: usize) -> Response<Body> {
    match reply {
        Reply::Html(b) => Response::builder()
            .header("content-type", "text/html; charset=UTF-8")
            .body(ok_body(b))
            .unwrap(),
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            let mut r = Response::builder().status(status);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(ok_body(body)).unwrap()
        }
        Reply::Redirect(status, to) => Response::builder()
            .status(status)
            .header("location", to)
            .body(ok_body(Vec::new()))
            .unwrap(),
        Reply::FailThen {
            status,
            times,
            retry_after,
            then,
        } => {
            if hit <= times {
                let mut r = Response::builder()
                    .status(status)
                    .header("content-type", "text/html");
                if let Some(ra) = retry_after {
                    r = r.header("retry-after", ra);
                }
                r.body(ok_body(b"<h1>busy</h1>".to_vec())).unwrap()
            } else {
                Box::pin(render(*then, hit)).await
            }
        }
        Reply::Slow { first, stall, rest } => {
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
            tokio::spawn(async move {
                if tx.send_data(Bytes::from(first)).await.is_err() {
                    return;
                }
                tokio::time::sleep(stall).await;
                let _ = tx.send_data(Bytes::from(rest)).await;
            });
            Response::builder()
                .header("content-type", "text/html; charset=UTF-8")
                .body(body.boxed())
                .unwrap()
        }
        Reply::Huge(total) => {
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
            tokio::spawn(async move {
                let chunk = Bytes::from(b"<p>filler filler filler filler</p>\n".repeat(2048));
                let mut sent = 0;
                while sent < total {
                    if tx.send_data(chunk.clone()).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            });
            Response::builder()
                .header("content-type", "text/html")
                .body(body.boxed())
                .unwrap()
        }
    }
}

/// A WordPress-style blog of `n` posts, `per_page` to a listing page, with
/// robots.txt, feed and sitemap, built from the fixture post so each page has
/// realistic markup and size.
pub fn synthetic_blog(server: &Server, n: usize, per_page: usize) {
    let template = String::from_utf8(fixture("wp-post-deep-house.html")).unwrap();
    let genres = [
        "Deep House",
        "Drum and Bass",
        "UK Garage",
        "Techno",
        "Afro House",
        "Ambient",
    ];
    let slug = |i: usize| {
        format!(
            "/2024/{:02}/{:02}/release-{i}/",
            1 + (i / 28) % 12,
            1 + i % 28
        )
    };
    for i in 0..n {
        let genre = genres[i % genres.len()];
        let html = template
            .replace(
                "Artist One &#8211; Midnight EP",
                &format!("Artist {i} &#8211; Release {i}"),
            )
            .replace("/2024/03/04/artist-one-midnight-ep/", &slug(i))
            .replace("Deep House / Nu-Disco", genre)
            .replace("aB3dE9", &format!("n{i}"))
            .replace("XyZ123", &format!("m{i}"));
        server.route(&slug(i), Reply::Html(server.localize(html.as_bytes())));
    }
    let pages = n.div_ceil(per_page);
    for p in 1..=pages {
        let mut body = String::from(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Synthetic Grooves</title>\
             <link rel=\"alternate\" type=\"application/rss+xml\" href=\"{{BASE}}/feed/\"></head>\
             <body class=\"blog\"><main id=\"main\">",
        );
        for i in (p - 1) * per_page..(p * per_page).min(n) {
            body.push_str(&format!(
                "<article class=\"post type-post hentry\"><h2 class=\"entry-title\">\
                 <a href=\"{{{{BASE}}}}{}\" rel=\"bookmark\">Release {i}</a></h2>\
                 <div class=\"entry-content\"><p>New music.</p></div></article>",
                slug(i)
            ));
        }
        if p < pages {
            body.push_str(&format!(
                "<nav class=\"navigation pagination\"><a class=\"next page-numbers\" href=\"{{{{BASE}}}}/page/{}/\">Older</a></nav>",
                p + 1
            ));
        }
        body.push_str("</main><aside class=\"widget-area\"><a href=\"{{BASE}}/tag/house/\">House</a></aside></body></html>");
        let path = if p == 1 {
            "/".to_string()
        } else {
            format!("/page/{p}/")
        };
        server.route(&path, Reply::Html(server.localize(body.as_bytes())));
    }
    let mut feed = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Synthetic</title>",
    );
    for i in 0..n.min(10) {
        feed.push_str(&format!(
            "<item><title>Release {i}</title><link>{{{{BASE}}}}{}</link></item>",
            slug(i)
        ));
    }
    feed.push_str("</channel></rss>");
    server.text("/feed/", "application/rss+xml; charset=UTF-8", &feed);
    let mut sitemap = String::from(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
    );
    for i in 0..n {
        sitemap.push_str(&format!("<url><loc>{{{{BASE}}}}{}</loc></url>", slug(i)));
    }
    sitemap.push_str("</urlset>");
    server.text("/sitemap.xml", "application/xml", &sitemap);
    server.text(
        "/robots.txt",
        "text/plain",
        "User-agent: *\nDisallow: /wp-admin/\nSitemap: {{BASE}}/sitemap.xml\n",
    );
}
