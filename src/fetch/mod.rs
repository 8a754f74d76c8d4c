//! HTTP fetching for the scraper: one pooled hyper-util client over
//! hyper-rustls (HTTP/2 by ALPN, HTTP/1.1 otherwise), with a global and a
//! per-host concurrency limit, timeouts, retries, redirects, decompression,
//! a body cap, charset decoding and robots.txt.

pub mod decode;
pub mod robots;
pub mod url;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{OnceCell, Semaphore};

pub use self::robots::Robots;
pub use self::url::Url;

pub const USER_AGENT: &str = concat!("musicdex/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Requests in flight across all hosts.
    pub concurrency: usize,
    /// Requests in flight to one host (connections on HTTP/1.1, streams on HTTP/2).
    pub per_host: usize,
    pub connect_timeout: Duration,
    /// Longest wait for the response head or for the next chunk of the body.
    pub read_timeout: Duration,
    /// Longest one attempt may take, body included.
    pub total_timeout: Duration,
    /// Extra attempts after the first, for connection errors, timeouts, 429 and 5xx.
    pub retries: u32,
    /// First backoff step; later ones double, with jitter.
    pub backoff_base: Duration,
    /// A `Retry-After` longer than this is not waited for: the request fails.
    pub max_retry_after: Duration,
    pub max_redirects: usize,
    pub max_body: usize,
    pub ca_file: Option<PathBuf>,
    pub respect_robots: bool,
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            // Why these numbers: docs/scrape.md ("Concurrency defaults").
            concurrency: 128,
            per_host: 64,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
            total_timeout: Duration::from_secs(30),
            retries: 3,
            backoff_base: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(120),
            max_redirects: 5,
            max_body: 10 * 1024 * 1024,
            ca_file: None,
            respect_robots: true,
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// What a caller accepts as a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `text/html` and `application/xhtml+xml` only.
    Html,
    /// Feeds and sitemaps: any XML or text type.
    Xml,
    /// robots.txt.
    Text,
}

#[derive(Debug, Clone)]
pub struct Page {
    /// After redirects.
    pub url: Url,
    pub status: u16,
    pub content_type: String,
    pub version: Version,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    InvalidUrl(String),
    Connect(String),
    Timeout(&'static str),
    Status(u16),
    TooManyRedirects,
    RedirectLoop(String),
    BodyTooLarge,
    NotHtml(String),
    Decode(String),
    RobotsDisallowed,
    /// robots.txt failed with a server or connection error; RFC 9309 then
    /// treats the whole site as disallowed.
    RobotsUnavailable(String),
    RetryAfterTooLong(u64),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl(u) => write!(f, "invalid URL {u}"),
            FetchError::Connect(e) => write!(f, "connection failed: {e}"),
            FetchError::Timeout(what) => write!(f, "timed out ({what})"),
            FetchError::Status(s) => write!(f, "HTTP status {s}"),
            FetchError::TooManyRedirects => write!(f, "too many redirects"),
            FetchError::RedirectLoop(u) => write!(f, "redirect loop at {u}"),
            FetchError::BodyTooLarge => write!(f, "body larger than the size cap"),
            FetchError::NotHtml(ct) => write!(f, "not HTML (content type {ct})"),
            FetchError::Decode(e) => write!(f, "cannot decode body: {e}"),
            FetchError::RobotsDisallowed => write!(f, "disallowed by robots.txt"),
            FetchError::RobotsUnavailable(e) => write!(
                f,
                "robots.txt unavailable ({e}), so the site counts as disallowed (RFC 9309; --ignore-robots overrides)"
            ),
            FetchError::RetryAfterTooLong(s) => write!(f, "server asked to retry after {s} s"),
        }
    }
}

impl std::error::Error for FetchError {}

impl FetchError {
    fn retryable(&self) -> bool {
        match self {
            FetchError::Connect(_) | FetchError::Timeout(_) => true,
            FetchError::Status(s) => *s == 429 || (500..600).contains(s) && *s != 501,
            _ => false,
        }
    }
}

/// Counters for the run summary and for tests that check behaviour
/// (how many attempts a retry took) rather than timings.
#[derive(Debug, Default)]
pub struct FetchStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub bytes: AtomicU64,
    /// Responses received (any version). Fewer than `requests` when an attempt got none:
    /// a timeout, a refused connection, or a request dropped when the run needed no more.
    pub responses: AtomicU64,
    pub http2: AtomicU64,
}

/// A per-host semaphore whose size can shrink: a 429 or 503 halves it, so a
/// server that says it is overloaded gets fewer parallel requests from then on.
struct HostLimit {
    sem: Semaphore,
    limit: AtomicUsize,
    /// Permits to retire as they come back, after a shrink.
    debt: AtomicUsize,
}

impl HostLimit {
    fn new(n: usize) -> HostLimit {
        HostLimit {
            sem: Semaphore::new(n),
            limit: AtomicUsize::new(n),
            debt: AtomicUsize::new(0),
        }
    }

    fn shrink(&self) {
        let mut cur = self.limit.load(Ordering::Relaxed);
        loop {
            let new = (cur / 2).max(1);
            if new == cur {
                return;
            }
            match self
                .limit
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    let owed = cur - new;
                    let taken = self.sem.forget_permits(owed);
                    self.debt.fetch_add(owed - taken, Ordering::AcqRel);
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn release(&self) {
        let paid = self
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok();
        if !paid {
            self.sem.add_permits(1);
        }
    }
}

struct HostPermit(Arc<HostLimit>);

impl Drop for HostPermit {
    fn drop(&mut self) {
        self.0.release();
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub struct Fetcher {
    client: HttpsClient,
    cfg: FetchConfig,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<HostLimit>>>,
    robots: Mutex<HashMap<String, Arc<OnceCell<Arc<Robots>>>>>,
    /// Per origin, the earliest start of the next request under `Crawl-delay`.
    pace: Mutex<HashMap<String, tokio::time::Instant>>,
    pub stats: FetchStats,
}

struct Head {
    status: StatusCode,
    headers: HeaderMap,
    version: Version,
    body: Vec<u8>,
}

impl Fetcher {
    pub fn new(cfg: FetchConfig) -> anyhow::Result<Fetcher> {
        anyhow::ensure!(
            cfg.concurrency > 0 && cfg.per_host > 0,
            "concurrency limits must be at least 1"
        );
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &cfg.ca_file {
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("cannot read CA file {}: {e}", path.display()))?
            {
                let cert = cert
                    .map_err(|e| anyhow::anyhow!("bad certificate in {}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| {
                    anyhow::anyhow!("unusable certificate in {}: {e}", path.display())
                })?;
                added += 1;
            }
            anyhow::ensure!(added > 0, "no certificate found in {}", path.display());
        }
        // ring, chosen explicitly: the aws-lc-rs default costs ~35 s of C compile.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(cfg.per_host)
            .build(connector);
        Ok(Fetcher {
            client,
            global: Arc::new(Semaphore::new(cfg.concurrency)),
            hosts: Mutex::new(HashMap::new()),
            robots: Mutex::new(HashMap::new()),
            pace: Mutex::new(HashMap::new()),
            stats: FetchStats::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// GET `url`, following redirects, checking robots.txt on every hop.
    pub async fn get(&self, url: &Url, want: Want) -> Result<Page, FetchError> {
        self.get_inner(url, want, self.cfg.respect_robots).await
    }

    /// The robots.txt rules for `url`'s origin, fetched once per origin.
    ///
    /// Boxed with an explicit `Send`: fetching robots.txt goes through
    /// `get_inner`, which calls this, and the compiler cannot infer `Send`
    /// through that cycle.
    pub fn robots<'a>(
        &'a self,
        url: &'a Url,
    ) -> Pin<Box<dyn Future<Output = Arc<Robots>> + Send + 'a>> {
        Box::pin(async move {
            let origin = url.origin();
            let cell = self
                .robots
                .lock()
                .unwrap()
                .entry(origin)
                .or_default()
                .clone();
            cell.get_or_init(|| async {
                let robots_url = url.with_path_and_query("/robots.txt", None);
                let robots = match self.get_inner(&robots_url, Want::Text, false).await {
                    Ok(page) => Robots::parse(&page.text, &self.cfg.user_agent),
                    Err(FetchError::Status(s)) if (400..500).contains(&s) && s != 429 => {
                        Robots::allow_all()
                    }
                    Err(FetchError::NotHtml(_)) | Err(FetchError::Decode(_)) => Robots::allow_all(),
                    Err(e @ (FetchError::Connect(_) | FetchError::Timeout(_))) => {
                        Robots::unreachable(e)
                    }
                    Err(e) => Robots::disallow_all(e.to_string()),
                };
                Arc::new(robots)
            })
            .await
            .clone()
        })
    }

    async fn get_inner(
        &self,
        url: &Url,
        want: Want,
        check_robots: bool,
    ) -> Result<Page, FetchError> {
        let mut current = url.clone();
        let mut visited = vec![current.clone()];
        let mut hops = 0;
        loop {
            if check_robots {
                let robots = self.robots(&current).await;
                // A site that cannot be reached: its connection error, not
                // robots.txt, is the news.
                if let Some(e) = &robots.unreachable {
                    return Err(e.clone());
                }
                if let Some(why) = &robots.unavailable {
                    return Err(FetchError::RobotsUnavailable(why.clone()));
                }
                if !robots.allowed(&current.path_and_query()) {
                    return Err(FetchError::RobotsDisallowed);
                }
                if let Some(delay) = robots.crawl_delay {
                    self.pace(&current, delay).await;
                }
            }
            let head = self.with_retries(&current, want).await?;
            if head.status.is_redirection()
                && let Some(loc) = head.headers.get(header::LOCATION)
            {
                let loc = String::from_utf8_lossy(loc.as_bytes()).into_owned();
                let next = current.join(&loc).ok_or(FetchError::InvalidUrl(loc))?;
                if visited.contains(&next) {
                    return Err(FetchError::RedirectLoop(next.to_string()));
                }
                hops += 1;
                if hops > self.cfg.max_redirects {
                    return Err(FetchError::TooManyRedirects);
                }
                visited.push(next.clone());
                current = next;
                continue;
            }
            if !head.status.is_success() {
                return Err(FetchError::Status(head.status.as_u16()));
            }
            let content_type = header_str(&head.headers, header::CONTENT_TYPE);
            let text = decode::to_text(&head.body, &content_type);
            return Ok(Page {
                url: current,
                status: head.status.as_u16(),
                content_type,
                version: head.version,
                text,
            });
        }
    }

    async fn with_retries(&self, url: &Url, want: Want) -> Result<Head, FetchError> {
        let host = self.host_limit(url);
        let mut attempt = 0u32;
        loop {
            let result = {
                let _host = HostPermit({
                    let p = host
                        .sem
                        .acquire()
                        .await
                        .expect("host semaphore is never closed");
                    p.forget();
                    host.clone()
                });
                let _global = self
                    .global
                    .acquire()
                    .await
                    .expect("global semaphore is never closed");
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(self.cfg.total_timeout, self.attempt(url, want)).await {
                    Ok(r) => r,
                    Err(_) => Err(FetchError::Timeout("total")),
                }
            };
            let (err, retry_after) = match result {
                Ok(head)
                    if head.status == StatusCode::TOO_MANY_REQUESTS
                        || head.status.is_server_error() =>
                {
                    if matches!(head.status.as_u16(), 429 | 503) {
                        host.shrink();
                    }
                    let ra = retry_after(&head.headers);
                    (FetchError::Status(head.status.as_u16()), ra)
                }
                Ok(head) => return Ok(head),
                Err(e) => (e, None),
            };
            if !err.retryable() || attempt >= self.cfg.retries {
                return Err(err);
            }
            let delay = match retry_after {
                Some(d) if d > self.cfg.max_retry_after => {
                    return Err(FetchError::RetryAfterTooLong(d.as_secs()));
                }
                Some(d) => d,
                None => backoff(self.cfg.backoff_base, attempt),
            };
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, url: &Url, want: Want) -> Result<Head, FetchError> {
        let uri = url
            .to_uri()
            .ok_or_else(|| FetchError::InvalidUrl(url.to_string()))?;
        let accept = match want {
            Want::Html => "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            Want::Xml => {
                "application/rss+xml,application/atom+xml,application/xml,text/xml;q=0.9,*/*;q=0.1"
            }
            Want::Text => "text/plain,*/*;q=0.1",
        };
        let req = Request::get(uri)
            .header(header::USER_AGENT, &self.cfg.user_agent)
            .header(header::ACCEPT, accept)
            .header(header::ACCEPT_ENCODING, "gzip, br, deflate")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        let resp = match tokio::time::timeout(self.cfg.read_timeout, self.client.request(req)).await
        {
            Err(_) => return Err(FetchError::Timeout("response head")),
            Ok(Err(e)) => return Err(FetchError::Connect(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let version = resp.version();
        self.stats.responses.fetch_add(1, Ordering::Relaxed);
        if version == Version::HTTP_2 {
            self.stats.http2.fetch_add(1, Ordering::Relaxed);
        }
        let headers = resp.headers().clone();
        if !status.is_success() {
            // Error and redirect bodies are not read: dropping the response
            // is cheaper than draining a possibly large page.
            return Ok(Head {
                status,
                headers,
                version,
                body: Vec::new(),
            });
        }
        let content_type = header_str(&headers, header::CONTENT_TYPE);
        if !acceptable(&content_type, want) {
            return Err(FetchError::NotHtml(content_type));
        }
        let declared: Option<u64> = header_str(&headers, header::CONTENT_LENGTH).parse().ok();
        if declared.is_some_and(|n| n > self.cfg.max_body as u64) {
            return Err(FetchError::BodyTooLarge);
        }
        let mut body = resp.into_body();
        let mut raw = Vec::new();
        loop {
            let frame = match tokio::time::timeout(self.cfg.read_timeout, body.frame()).await {
                Err(_) => return Err(FetchError::Timeout("body read")),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(FetchError::Connect(error_chain(&e))),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if raw.len() + data.len() > self.cfg.max_body {
                    return Err(FetchError::BodyTooLarge);
                }
                raw.extend_from_slice(&data);
            }
        }
        self.stats
            .bytes
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        let encoding = header_str(&headers, header::CONTENT_ENCODING);
        let body = decode::decompress(raw, &encoding, self.cfg.max_body).map_err(|e| match e {
            decode::DecodeError::TooLarge => FetchError::BodyTooLarge,
            other => FetchError::Decode(format!("{other:?}")),
        })?;
        if content_type.is_empty() && want == Want::Html && !looks_like_html(&body) {
            return Err(FetchError::NotHtml("(none, body is not markup)".into()));
        }
        Ok(Head {
            status,
            headers,
            version,
            body,
        })
    }

    /// Waits for this request's turn under the host's `Crawl-delay`: each
    /// request takes the next free slot, `delay` after the previous one.
    async fn pace(&self, url: &Url, delay: Duration) {
        let slot = {
            let mut next = self.pace.lock().unwrap();
            let now = tokio::time::Instant::now();
            let at = next.get(&url.origin()).copied().unwrap_or(now).max(now);
            next.insert(url.origin(), at + delay);
            at
        };
        tokio::time::sleep_until(slot).await;
    }

    fn host_limit(&self, url: &Url) -> Arc<HostLimit> {
        self.hosts
            .lock()
            .unwrap()
            .entry(url.origin())
            .or_insert_with(|| Arc::new(HostLimit::new(self.cfg.per_host)))
            .clone()
    }

    /// The current per-host limit for `url`'s origin (after any shrinking).
    pub fn host_limit_now(&self, url: &Url) -> usize {
        self.host_limit(url).limit.load(Ordering::Relaxed)
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .unwrap_or_default()
}

fn acceptable(content_type: &str, want: Want) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() {
        return true;
    }
    match want {
        Want::Html => mime == "text/html" || mime == "application/xhtml+xml",
        Want::Xml => mime.ends_with("xml") || mime.starts_with("text/"),
        Want::Text => mime.starts_with("text/"),
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start) == Some(&b'<') || body[start..].starts_with(b"\xef\xbb\xbf<")
}

/// `Retry-After` as delta-seconds or an HTTP-date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = header_str(headers, header::RETRY_AFTER);
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(&v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Exponential backoff with "equal jitter": half the step fixed, half random,
/// so retries from many tasks spread out but never collapse to zero.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let step = base
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(10));
    let half = step / 2;
    half + half.mul_f64(fastrand::f64())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(100)).to_rfc2822();
        h.insert(header::RETRY_AFTER, future.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(90) && d <= Duration::from_secs(100));
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let base = Duration::from_millis(100);
        for attempt in 0..10 {
            let d = backoff(base, attempt);
            let step = (base * (1 << attempt.min(6))).min(Duration::from_secs(10));
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn content_type_gate() {
        assert!(acceptable("text/html; charset=utf-8", Want::Html));
        assert!(acceptable("application/xhtml+xml", Want::Html));
        assert!(!acceptable("application/json", Want::Html));
        assert!(!acceptable("audio/mpeg", Want::Html));
        assert!(acceptable("application/rss+xml", Want::Xml));
        assert!(!acceptable("image/png", Want::Xml));
        assert!(looks_like_html(b"  \n<!doctype html>"));
        assert!(!looks_like_html(b"ID3\x03"));
    }

    #[test]
    fn host_limit_shrinks_and_retires_permits() {
        let h = HostLimit::new(8);
        // Four permits out, then the server says 429.
        for _ in 0..4 {
            h.sem.try_acquire().unwrap().forget();
        }
        h.shrink();
        assert_eq!(h.limit.load(Ordering::Relaxed), 4);
        // The 4 idle permits were forgotten at once; nothing is owed.
        assert_eq!(h.sem.available_permits(), 0);
        for _ in 0..4 {
            h.release();
        }
        assert_eq!(h.sem.available_permits(), 4);
        h.shrink();
        h.shrink();
        h.shrink();
        assert_eq!(h.limit.load(Ordering::Relaxed), 1);
        assert_eq!(h.sem.available_permits(), 1);
    }
}
