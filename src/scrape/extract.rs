//! What a post page yields: title, date, genres, download links.

use std::collections::HashSet;
use std::sync::LazyLock;

use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node, Selector};
use serde::Serialize;

use super::dates::{self, PostDate};
use super::genres::GenreMatcher;
use crate::fetch::Url;

macro_rules! sel {
    ($s:expr) => {{
        static S: LazyLock<Selector> =
            LazyLock::new(|| Selector::parse($s).expect("static selector"));
        &*S
    }};
}

/// File hosts whose links count as downloads (a `--hosts` list adds more).
pub const DEFAULT_HOSTS: &[&str] = &[
    "zippyshare.com",
    "krakenfiles.com",
    "we.tl",
    "wetransfer.com",
    "drive.google.com",
    "mega.nz",
    "mega.co.nz",
    "mediafire.com",
    "sendspace.com",
    "turbobit.net",
    "rapidgator.net",
    "rg.to",
    "uploaded.net",
    "ul.to",
    "hypeddit.com",
    "nfile.cc",
    "novafile.org",
    "novafile.com",
    "dropbox.com",
    "soundcloud.com",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Quality {
    #[serde(rename = "FLAC")]
    Flac,
    #[serde(rename = "MP3-320")]
    Mp3_320,
    #[serde(rename = "other")]
    Other,
}

impl Quality {
    pub fn label(self) -> &'static str {
        match self {
            Quality::Flac => "FLAC",
            Quality::Mp3_320 => "MP3-320",
            Quality::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadLink {
    pub url: String,
    pub host: String,
    pub quality: Quality,
}

#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub url: String,
    pub title: String,
    pub date: Option<String>,
    pub genres: Vec<String>,
    pub matching_genres: Vec<String>,
    pub download_links: Vec<DownloadLink>,
    #[serde(skip)]
    pub parsed_date: Option<PostDate>,
}

/// Domain list for download links; a host matches a domain or any subdomain of it.
#[derive(Debug, Clone)]
pub struct Hosts(Vec<String>);

impl Hosts {
    pub fn new<S: AsRef<str>>(extra: &[S]) -> Hosts {
        let mut v: Vec<String> = DEFAULT_HOSTS.iter().map(|s| s.to_string()).collect();
        for e in extra {
            let e = e
                .as_ref()
                .trim()
                .trim_start_matches("www.")
                .to_ascii_lowercase();
            if !e.is_empty() && !v.contains(&e) {
                v.push(e);
            }
        }
        Hosts(v)
    }

    pub fn classify(&self, host: &str) -> Option<&str> {
        let host = host.trim_start_matches("www.");
        self.0
            .iter()
            .find(|d| host == d.as_str() || host.ends_with(&format!(".{d}")))
            .map(String::as_str)
    }
}

/// Containers that are not the post: site navigation, sidebars, widgets,
/// related-post blocks, comments.
fn is_chrome(el: &scraper::node::Element) -> bool {
    if matches!(
        el.name(),
        "nav" | "aside" | "script" | "style" | "noscript" | "form" | "template"
    ) {
        return true;
    }
    let words = el.id().into_iter().chain(el.classes());
    for w in words {
        let lowered;
        let w = if w.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = w.to_ascii_lowercase();
            lowered.as_str()
        } else {
            w
        };
        if [
            "sidebar",
            "widget",
            "related",
            "comment",
            "menu",
            "navbar",
            "navigation",
            "breadcrumb",
            "tagcloud",
            "tag-cloud",
            "share",
            "social",
            "newsletter",
            "cookie",
            "popular",
            "recent",
            "blogroll",
            "site-footer",
            "footer-widgets",
            "colophon",
            "masthead",
            "site-header",
        ]
        .iter()
        .any(|n| w.contains(n))
        {
            return true;
        }
    }
    false
}

/// Every node inside chrome (see `is_chrome`) or inside a site-level
/// `<header>`/`<footer>` (one not enclosed by an article-like element),
/// found in one walk so each lookup is a hash probe instead of an ancestor
/// scan per link.
struct Chrome(HashSet<ego_tree::NodeId>);

impl Chrome {
    fn of(doc: &Html) -> Chrome {
        fn walk(
            node: NodeRef<Node>,
            mut inside: bool,
            mut in_article: bool,
            set: &mut HashSet<ego_tree::NodeId>,
        ) {
            if let Node::Element(e) = node.value() {
                if !inside
                    && (is_chrome(e) || matches!(e.name(), "header" | "footer") && !in_article)
                {
                    inside = true;
                }
                if e.name() == "article"
                    || e.classes()
                        .any(|c| matches!(c, "post" | "hentry" | "post-outer" | "type-post"))
                {
                    in_article = true;
                }
            }
            if inside {
                set.insert(node.id());
            }
            for c in node.children() {
                walk(c, inside, in_article, set);
            }
        }
        let mut set = HashSet::new();
        walk(doc.tree.root(), false, false, &mut set);
        Chrome(set)
    }

    fn has(&self, el: ElementRef) -> bool {
        self.0.contains(&el.id())
    }
}

/// A `<header>`/`<footer>` belongs to the site (not the post) when no
/// article-like element encloses it.
fn is_site_level(el: ElementRef) -> bool {
    !el.ancestors().filter_map(ElementRef::wrap).any(|a| {
        a.value().name() == "article"
            || a.value()
                .classes()
                .any(|c| matches!(c, "post" | "hentry" | "post-outer" | "type-post"))
    })
}

/// The element holding the post itself.
fn post_root<'a>(doc: &'a Html, chrome: &Chrome) -> ElementRef<'a> {
    let candidates = sel!(
        "article, .hentry, .post-outer, .type-post, .post, [itemprop=blogPost], main, #content, #main"
    );
    doc.select(candidates)
        .find(|e| !chrome.has(*e))
        .unwrap_or_else(|| doc.root_element())
}

fn body_root<'a>(root: ElementRef<'a>, chrome: &Chrome) -> ElementRef<'a> {
    root.select(sel!(".entry-content, .post-body, .post-content, .entry, .article-content, [itemprop=articleBody]"))
        .find(|e| !chrome.has(*e))
        .unwrap_or(root)
}

const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "header",
    "footer",
];

/// Visible text with a newline at each block boundary and `<br>`, leaving
/// out chrome and site-level headers/footers.
pub fn visible_text(root: ElementRef) -> String {
    fn walk(node: NodeRef<Node>, out: &mut String) {
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                if is_chrome(e) {
                    return;
                }
                if matches!(e.name(), "footer" | "header")
                    && ElementRef::wrap(node).is_some_and(is_site_level)
                {
                    return;
                }
                if e.name() == "br" {
                    out.push('\n');
                    return;
                }
                let block = BLOCKS.contains(&e.name());
                if block {
                    out.push('\n');
                }
                for c in node.children() {
                    walk(c, out);
                }
                if block {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(*root, &mut out);
    out
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text_of(el: ElementRef) -> String {
    clean(&el.text().collect::<String>())
}

pub fn extract(html: &str, page_url: &Url, matcher: &GenreMatcher, hosts: &Hosts) -> Post {
    let doc = Html::parse_document(html);
    let chrome = Chrome::of(&doc);
    let root = post_root(&doc, &chrome);
    let body = body_root(root, &chrome);
    let title = title(&doc, page_url, &chrome);
    let date = date(&doc, root, page_url, &chrome);

    let mut genres: Vec<String> = Vec::new();
    let mut genre_keys: HashSet<String> = HashSet::new();
    let mut push_genre = |g: &str| {
        let g = clean(g);
        // "Nu-Disco" and "nu disco" are one genre.
        let key = super::genres::tokens(&g).join(" ");
        if !key.is_empty() && g.len() <= 60 && genre_keys.insert(key) {
            genres.push(g);
        }
    };
    let taxonomy = sel!(
        "a[rel~=tag], a[rel~=category], .tags-links a, .cat-links a, .post-labels a, .post-tags a, .entry-tags a, \
         .post-categories a, .entry-categories a, a[href*='/tag/'], a[href*='/category/'], a[href*='/search/label/']"
    );
    for a in root.select(taxonomy) {
        if !chrome.has(a) {
            push_genre(&text_of(a));
        }
    }
    let text = visible_text(body);
    for line in text.lines() {
        let line = line.trim();
        let lower = line.to_ascii_lowercase();
        let value = ["genres:", "genre:", "styles:", "style:"]
            .iter()
            .find_map(|p| lower.starts_with(p).then(|| &line[p.len()..]));
        if let Some(v) = value {
            for g in v.split([',', '/', '|', ';']) {
                push_genre(g);
            }
        }
    }
    let mut sources: Vec<&str> = genres.iter().map(String::as_str).collect();
    sources.push(&text);
    let matching_genres = matcher.matches(&sources);
    let download_links = download_links(root, page_url, hosts, &chrome);
    Post {
        url: page_url.to_string(),
        title,
        date: date.map(|d| d.render()),
        genres,
        matching_genres,
        download_links,
        parsed_date: date,
    }
}

fn meta(doc: &Html, selector: &Selector) -> Option<String> {
    doc.select(selector)
        .filter_map(|m| m.attr("content"))
        .map(clean)
        .find(|s| !s.is_empty())
}

fn title(doc: &Html, page_url: &Url, chrome: &Chrome) -> String {
    let mut site_names: Vec<String> = Vec::new();
    if let Some(s) = meta(doc, sel!("meta[property='og:site_name']")) {
        site_names.push(s);
    }
    for el in doc.select(sel!(
        ".site-title, #site-title, .header h1, #header h1, .blog-title"
    )) {
        site_names.push(text_of(el));
    }
    let raw = meta(doc, sel!("meta[property='og:title']"))
        .or_else(|| {
            doc.select(sel!(".entry-title, .post-title, article h1, article h2"))
                .find(|e| !chrome.has(*e))
                .map(text_of)
        })
        .or_else(|| {
            doc.select(sel!("h1"))
                .find(|e| !chrome.has(*e))
                .map(text_of)
        })
        .or_else(|| doc.select(sel!("title")).next().map(text_of))
        .unwrap_or_default();
    strip_site_name(&raw, &site_names, page_url.host())
}

/// Drops a " | Site Name" style suffix (or prefix) when it is the site's name.
pub fn strip_site_name(title: &str, site_names: &[String], host: &str) -> String {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let host_label = squash(
        host.trim_start_matches("www.")
            .split('.')
            .next()
            .unwrap_or(""),
    );
    let is_site = |part: &str| {
        let p = squash(part);
        !p.is_empty() && (site_names.iter().any(|s| squash(s) == p) || p == host_label)
    };
    let mut t = title.trim().to_string();
    for sep in [" | ", " – ", " — ", " - ", " :: ", " » ", " · ", " ~ "] {
        if let Some(i) = t.rfind(sep)
            && is_site(&t[i + sep.len()..])
        {
            t.truncate(i);
        }
        if let Some(i) = t.find(sep)
            && is_site(&t[..i])
        {
            t = t[i + sep.len()..].to_string();
        }
    }
    t.trim().to_string()
}

fn date(doc: &Html, root: ElementRef, page_url: &Url, chrome: &Chrome) -> Option<PostDate> {
    let published = sel!(
        "meta[property='article:published_time'], meta[itemprop=datePublished], meta[name='article:published_time']"
    );
    if let Some(d) = doc
        .select(published)
        .filter_map(|m| m.attr("content"))
        .find_map(dates::parse_machine)
    {
        return Some(d);
    }
    let timed = sel!(
        "time.published[datetime], time.entry-date[datetime], time[itemprop=datePublished], time[datetime]"
    );
    if let Some(d) = root
        .select(timed)
        .filter(|t| !chrome.has(*t))
        .filter_map(|t| t.attr("datetime"))
        .find_map(dates::parse_machine)
    {
        return Some(d);
    }
    if let Some(d) = root
        .select(sel!(
            "abbr.published[title], .published[title], [itemprop=datePublished][content]"
        ))
        .filter_map(|t| t.attr("title").or(t.attr("content")))
        .find_map(dates::parse_machine)
    {
        return Some(d);
    }
    if let Some(day) = dates::from_url_day(page_url.path()) {
        return Some(PostDate::day(day));
    }
    // Blogger prints the day in a header just above the post.
    let dated =
        sel!(".date-header, .entry-meta, .post-meta, .posted-on, .post-date, .entry-date, .byline");
    if let Some(day) = doc
        .select(dated)
        .filter(|e| !chrome.has(*e))
        .find_map(|e| dates::from_text(&text_of(e)))
    {
        return Some(PostDate::day(day));
    }
    if let Some(day) = dates::from_url_month(page_url.path()) {
        return Some(PostDate::day(day));
    }
    dates::from_text(&visible_text(root)).map(PostDate::day)
}

/// Classifies a link from its own words (URL, anchor text, title) first and
/// the label written before it ("FLAC: <a>") second.
pub fn classify_quality(own: &str, label: &str) -> Quality {
    fn of(text: &str) -> Option<Quality> {
        let t = text.to_ascii_lowercase();
        let words: Vec<&str> = t
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);
        if has("flac")
            || has("lossless")
            || words
                .iter()
                .any(|w| w.starts_with("flac") || w.ends_with("flac"))
        {
            return Some(Quality::Flac);
        }
        let low_rate = [
            "128", "128k", "128kbps", "192", "192k", "192kbps", "256", "256k", "256kbps",
        ];
        if low_rate.iter().any(|w| has(w)) {
            return Some(Quality::Other);
        }
        if has("mp3")
            || has("320")
            || has("320k")
            || has("320kbps")
            || words.iter().any(|w| w.starts_with("mp3"))
        {
            return Some(Quality::Mp3_320);
        }
        None
    }
    of(own).or_else(|| of(label)).unwrap_or(Quality::Other)
}

/// The label written just before a link: the text back to the previous line
/// break that has words before it ("FLAC:<br><a>" and "FLAC: <a>" both
/// work, and a run of links on one line shares its label), or a short
/// heading or paragraph right above it.
fn label_before(a: ElementRef) -> String {
    let has_words = |s: &str| s.chars().any(char::is_alphanumeric);
    let mut node: NodeRef<Node> = *a;
    let mut label = String::new();
    for _ in 0..3 {
        for sib in node.prev_siblings() {
            match sib.value() {
                Node::Text(t) => label.insert_str(0, t),
                Node::Element(e) if matches!(e.name(), "br" | "hr") && has_words(&label) => {
                    return clean(&label);
                }
                Node::Element(e) if matches!(e.name(), "a" | "br" | "hr") => {}
                Node::Element(e) if BLOCKS.contains(&e.name()) => {
                    if !has_words(&label) && e.name() != "div" {
                        let t = ElementRef::wrap(sib).map(text_of).unwrap_or_default();
                        if t.len() <= 60 {
                            label = t;
                        }
                    }
                    return clean(&label);
                }
                Node::Element(_) => {
                    let t = ElementRef::wrap(sib)
                        .map(|e| e.text().collect::<String>())
                        .unwrap_or_default();
                    label.insert_str(0, &t);
                }
                _ => {}
            }
            if label.len() > 160 {
                return clean(&label);
            }
        }
        if has_words(&label) {
            break;
        }
        // Nothing before the link at this level: climb out of inline wrappers
        // (<strong><a>) and single-link paragraphs.
        match node.parent() {
            Some(p) if ElementRef::wrap(p).is_some_and(|e| e.value().name() != "body") => node = p,
            _ => break,
        }
    }
    clean(&label)
}

fn download_links(
    root: ElementRef,
    page_url: &Url,
    hosts: &Hosts,
    chrome: &Chrome,
) -> Vec<DownloadLink> {
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for a in root.select(sel!("a[href]")) {
        if chrome.has(a) {
            continue;
        }
        let Some(url) = a.attr("href").and_then(|h| page_url.join(h)) else {
            continue;
        };
        let Some(host) = hosts.classify(url.host()) else {
            continue;
        };
        let url_s = url.to_string();
        if !seen.insert(url_s.clone()) {
            continue;
        }
        let own = format!("{} {} {}", url_s, text_of(a), a.attr("title").unwrap_or(""));
        let quality = classify_quality(&own, &label_before(a));
        links.push(DownloadLink {
            url: url_s,
            host: host.to_string(),
            quality,
        });
    }
    // One post is one release: with a FLAC link there, its MP3 copy is noise.
    if links.iter().any(|l| l.quality == Quality::Flac) {
        links.retain(|l| l.quality != Quality::Mp3_320);
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_from_own_words_then_label() {
        assert_eq!(
            classify_quality("https://mega.nz/x Artist-EP-FLAC.zip", ""),
            Quality::Flac
        );
        assert_eq!(
            classify_quality("https://nfile.cc/abc Download", "MP3 320:"),
            Quality::Mp3_320
        );
        assert_eq!(
            classify_quality("https://nfile.cc/abc Download", "FLAC / Lossless"),
            Quality::Flac
        );
        assert_eq!(
            classify_quality("https://x/y 128 kbps", "FLAC"),
            Quality::Other
        );
        assert_eq!(
            classify_quality("https://soundcloud.com/a/b", "Preview"),
            Quality::Other
        );
        assert_eq!(
            classify_quality("https://x/Album_320kbps.rar", ""),
            Quality::Mp3_320
        );
    }

    #[test]
    fn hosts_match_subdomains_only_on_dot_boundary() {
        let h = Hosts::new(&["files.example.org"]);
        assert_eq!(h.classify("www.mediafire.com"), Some("mediafire.com"));
        assert_eq!(h.classify("dl.dropbox.com"), Some("dropbox.com"));
        assert_eq!(h.classify("notmediafire.com"), None);
        assert_eq!(h.classify("files.example.org"), Some("files.example.org"));
    }

    #[test]
    fn site_name_suffix_is_stripped() {
        let names = vec!["Deep Grooves".to_string()];
        assert_eq!(
            strip_site_name("Artist - Track | Deep Grooves", &names, "x.com"),
            "Artist - Track"
        );
        assert_eq!(
            strip_site_name("Artist - Track – deepgrooves", &[], "deepgrooves.net"),
            "Artist - Track"
        );
        assert_eq!(
            strip_site_name("Deep Grooves: Artist - Track", &names, "x.com"),
            "Deep Grooves: Artist - Track"
        );
        assert_eq!(
            strip_site_name("Artist - Track", &[], "blog.com"),
            "Artist - Track"
        );
    }
}
