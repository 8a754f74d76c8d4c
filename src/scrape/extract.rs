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
    /// The page is a post: one dated entry with a title of its own (not a
    /// listing, archive, search or static page).
    #[serde(skip)]
    pub is_post: bool,
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

/// Words that mark a container as chrome (not the post) when they occur in
/// its id or one of its classes.
const CHROME_WORDS: &[&str] = &[
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
    "sharing",
    "social",
    "newsletter",
    "cookie",
    "popular",
    "recent",
    "latest-posts",
    "more-posts",
    "blogroll",
    "site-footer",
    "footer-widgets",
    "colophon",
    "masthead",
    "site-header",
    "author-box",
    "post-navigation",
    "jp-relatedposts",
];

/// Containers that are not the post: site navigation, sidebars, widgets,
/// related-post blocks, comments.
fn is_chrome(el: &scraper::node::Element) -> bool {
    match el.name() {
        "nav" | "aside" | "script" | "style" | "noscript" | "form" | "template" => return true,
        // Body classes describe the page ("has-sidebar", "has-main-navigation"),
        // not a part of it.
        "body" | "html" => return false,
        _ => {}
    }
    if let Some(role) = el.attr("role")
        && matches!(
            role,
            "navigation" | "complementary" | "banner" | "contentinfo" | "search"
        )
    {
        return true;
    }
    let words = el.id().into_iter().chain(el.classes());
    for w in words {
        let lowered;
        let mut w = if w.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = w.to_ascii_lowercase();
            lowered.as_str()
        } else {
            w
        };
        // WordPress marks a post's own taxonomy in its classes
        // ("category-recent-releases", "tag-social"): names, not chrome.
        if !w.starts_with("tag-cloud")
            && [
                "category-",
                "tag-",
                "format-",
                "status-",
                "label-",
                "postid-",
            ]
            .iter()
            .any(|p| w.starts_with(p))
        {
            continue;
        }
        // Page builders wrap everything, the post included, in their own
        // widgets: only the widget's kind says what it is.
        if let Some(rest) = w.strip_prefix("elementor-") {
            match rest.strip_prefix("widget-") {
                // Post grids beside a post are related or recent posts (an
                // archive's own grid is "archive-posts").
                Some("posts" | "loop-grid" | "loop-carousel") => return true,
                Some(kind) if kind != "container" && kind != "wrap" => w = kind,
                _ => continue,
            }
        } else if let Some(kind) = w.strip_prefix("wp-block-") {
            if kind == "query" || kind.starts_with("query-") {
                return true;
            }
            w = kind;
        }
        if CHROME_WORDS.iter().any(|n| w.contains(n)) {
            return true;
        }
    }
    false
}

/// Classes of the element that holds a post's text, across engines and themes.
const BODY_SEL: &str = "[class*=entry-content], [class*=post-content], [class*=post-body], \
     [class*=postbody], [class*=article-content], [class*=article-body], [class*=single_content], \
     [class*=single-content], [class*=entry-body], [itemprop~=articleBody]";

/// Containers of one post (or one entry of a listing).
fn is_entry(el: &scraper::node::Element) -> bool {
    el.name() == "article"
        || el.classes().any(|c| {
            matches!(
                c,
                "post" | "hentry" | "post-outer" | "type-post" | "h-entry" | "blog-post"
            )
        })
        || el
            .attr("itemprop")
            .is_some_and(|p| p.split_whitespace().any(|w| w == "blogPost"))
        || el.attr("itemtype").is_some_and(|t| {
            t.ends_with("/BlogPosting") || t.ends_with("/Article") || t.ends_with("/NewsArticle")
        })
}

/// Every node inside chrome (see `is_chrome`) or inside a site-level
/// `<header>`/`<footer>` (one not enclosed by an entry), found in one walk so
/// each lookup is a hash probe instead of an ancestor scan per link. The
/// element holding the page's main text and its ancestors are never chrome:
/// Blogger wraps its posts in a "widget", some themes in a
/// "content-sidebar-wrap".
struct Chrome {
    set: HashSet<ego_tree::NodeId>,
    /// The element with the page's main text (the longest post body).
    main: Option<ego_tree::NodeId>,
}

impl Chrome {
    fn of(doc: &Html) -> Chrome {
        let mut main: Option<(usize, ElementRef)> = None;
        for el in doc.select(sel!(BODY_SEL)) {
            let len: usize = el.text().map(|t| t.trim().len()).sum();
            if main.is_none_or(|(best, _)| len > best) && !in_comments(el) {
                main = Some((len, el));
            }
        }
        let keep: HashSet<ego_tree::NodeId> = main
            .map(|(_, el)| {
                std::iter::once(*el)
                    .chain(el.ancestors())
                    .map(|n| n.id())
                    .collect()
            })
            .unwrap_or_default();
        fn walk(
            node: NodeRef<Node>,
            mut inside: bool,
            mut in_entry: bool,
            keep: &HashSet<ego_tree::NodeId>,
            set: &mut HashSet<ego_tree::NodeId>,
        ) {
            if let Node::Element(e) = node.value() {
                if !inside
                    && !keep.contains(&node.id())
                    && (is_chrome(e) || matches!(e.name(), "header" | "footer") && !in_entry)
                {
                    inside = true;
                }
                if is_entry(e) {
                    in_entry = true;
                }
            }
            if inside {
                set.insert(node.id());
            }
            for c in node.children() {
                walk(c, inside, in_entry, keep, set);
            }
        }
        let mut set = HashSet::new();
        walk(doc.tree.root(), false, false, &keep, &mut set);
        Chrome {
            set,
            main: main.map(|(_, el)| el.id()),
        }
    }

    fn has(&self, el: ElementRef) -> bool {
        self.set.contains(&el.id())
    }

    fn has_node(&self, node: NodeRef<Node>) -> bool {
        self.set.contains(&node.id())
    }
}

/// Comment bodies reuse post-body classes on some themes; they are never the post.
fn in_comments(el: ElementRef) -> bool {
    std::iter::once(el)
        .chain(el.ancestors().filter_map(ElementRef::wrap))
        .any(|a| {
            a.value()
                .id()
                .into_iter()
                .chain(a.value().classes())
                .any(|c| c.to_ascii_lowercase().contains("comment"))
        })
}

/// The element holding the post itself: the entry around the main text, else
/// the first entry outside chrome, else `main`, else the whole page.
fn post_root<'a>(doc: &'a Html, chrome: &Chrome) -> ElementRef<'a> {
    if let Some(main) = chrome.main.and_then(|id| doc.tree.get(id)) {
        if let Some(entry) = main
            .ancestors()
            .filter_map(ElementRef::wrap)
            .filter(|a| is_entry(a.value()))
            .last()
        {
            return entry;
        }
        if let Some(m) = main
            .ancestors()
            .filter_map(ElementRef::wrap)
            .find(|a| a.value().name() == "main" || a.value().id() == Some("main"))
        {
            return m;
        }
    }
    doc.select(sel!("article, .hentry, .post-outer, .type-post, .post, [itemprop~=blogPost], main, #content, #main"))
        .find(|e| !chrome.has(*e))
        .unwrap_or_else(|| doc.root_element())
}

fn body_root<'a>(doc: &'a Html, root: ElementRef<'a>, chrome: &Chrome) -> ElementRef<'a> {
    chrome
        .main
        .and_then(|id| doc.tree.get(id))
        .and_then(ElementRef::wrap)
        .filter(|m| m.ancestors().any(|a| a.id() == root.id()))
        .or_else(|| root.select(sel!(BODY_SEL)).find(|e| !chrome.has(*e)))
        .unwrap_or(root)
}

/// Entries (see `is_entry`) outside chrome and not inside another entry: one
/// on a post, several on a listing.
fn top_level_entries(doc: &Html, chrome: &Chrome) -> Vec<ego_tree::NodeId> {
    fn walk(node: NodeRef<Node>, chrome: &Chrome, out: &mut Vec<ego_tree::NodeId>) {
        if chrome.has_node(node) {
            return;
        }
        if let Node::Element(e) = node.value()
            && is_entry(e)
        {
            out.push(node.id());
            return;
        }
        for c in node.children() {
            walk(c, chrome, out);
        }
    }
    let mut out = Vec::new();
    walk(doc.tree.root(), chrome, &mut out);
    out
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
fn visible_text(root: ElementRef, chrome: &Chrome) -> String {
    fn walk(node: NodeRef<Node>, chrome: &Chrome, out: &mut String) {
        if chrome.has_node(node) {
            return;
        }
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                if matches!(e.name(), "script" | "style" | "noscript" | "template") {
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
                    walk(c, chrome, out);
                }
                if block {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(*root, chrome, &mut out);
    out
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text_of(el: ElementRef) -> String {
    clean(&el.text().collect::<String>())
}

/// What a JSON-LD `BlogPosting`/`Article` says about the page.
#[derive(Debug, Default)]
struct LdPost {
    headline: Option<String>,
    published: Option<String>,
    /// `articleSection` and `keywords`: the post's categories and tags.
    terms: Vec<String>,
}

fn json_ld(doc: &Html) -> Option<LdPost> {
    fn is_post_type(v: &serde_json::Value) -> bool {
        let t = |s: &str| {
            matches!(
                s,
                "BlogPosting" | "Article" | "NewsArticle" | "SocialMediaPosting"
            )
        };
        match v.get("@type") {
            Some(serde_json::Value::String(s)) => t(s),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).any(t),
            _ => false,
        }
    }
    fn find(v: &serde_json::Value, depth: usize) -> Option<&serde_json::Value> {
        if depth > 4 {
            return None;
        }
        match v {
            serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, depth + 1)),
            serde_json::Value::Object(o) => {
                if is_post_type(v) {
                    return Some(v);
                }
                o.get("@graph").and_then(|g| find(g, depth + 1))
            }
            _ => None,
        }
    }
    fn strings(v: Option<&serde_json::Value>, split: bool) -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) if split => {
                s.split(',').map(|x| x.trim().to_string()).collect()
            }
            Some(serde_json::Value::String(s)) => vec![s.trim().to_string()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str())
                .map(|x| x.trim().to_string())
                .collect(),
            _ => Vec::new(),
        }
    }
    for script in doc.select(sel!("script[type='application/ld+json']")) {
        let raw: String = script.text().collect();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.trim()) else {
            continue;
        };
        if let Some(post) = find(&v, 0) {
            let mut terms = strings(post.get("articleSection"), false);
            terms.extend(strings(post.get("keywords"), true));
            terms.retain(|t| !t.is_empty());
            return Some(LdPost {
                headline: post.get("headline").and_then(|h| h.as_str()).map(clean),
                published: post
                    .get("datePublished")
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
                terms,
            });
        }
    }
    None
}

/// Body classes of listing and static pages (WordPress, Blogger).
const NON_POST_BODY: &[&str] = &[
    "home",
    "blog",
    "archive",
    "category",
    "tag",
    "tax",
    "search",
    "search-results",
    "author",
    "date",
    "error404",
    "page",
    "index-view",
    "label-view",
    "search-view",
    "archive-view",
    "static-page-view",
];

pub fn extract(html: &str, page_url: &Url, matcher: &GenreMatcher, hosts: &Hosts) -> Post {
    let doc = Html::parse_document(html);
    let chrome = Chrome::of(&doc);
    let root = post_root(&doc, &chrome);
    let body = body_root(&doc, root, &chrome);
    let ld = json_ld(&doc);
    let (title, title_links_away) = title(&doc, root, page_url, &chrome, ld.as_ref());
    let (date, dated_by_page) = date(&doc, root, page_url, &chrome, ld.as_ref());

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
        "a[rel~=tag], a[rel~=category], [class*=tags-links] a, [class*=cat-links] a, [class*=post-labels] a, \
         [class*=post-tags] a, [class*=entry-tags] a, [class*=post-categories] a, [class*=entry-categories] a, \
         [class*=td-category] a, a[class*=entry-category], [class*=post-terms] a, [class*=taxonomy-] a, \
         [class*=td-tags] a, a[href*='/tag/'], a[href*='/category/'], a[href*='/search/label/']"
    );
    for a in root.select(taxonomy) {
        if !chrome.has(a) {
            push_genre(&text_of(a));
        }
    }
    for m in doc.select(sel!(
        "meta[property='article:tag'], meta[property='article:section']"
    )) {
        if let Some(c) = m.attr("content") {
            push_genre(c);
        }
    }
    if let Some(ld) = &ld {
        for t in &ld.terms {
            push_genre(t);
        }
    }
    let text = visible_text(body, &chrome);
    for line in text.lines() {
        if let Some(v) = genre_line(line) {
            for g in v.split([',', '/', '|', ';']) {
                push_genre(g);
            }
        }
    }
    let mut sources: Vec<&str> = genres.iter().map(String::as_str).collect();
    sources.push(&text);
    let matching_genres = matcher.matches(&sources);
    let download_links = download_links(root, page_url, hosts, &chrome);

    let listing_body = doc.select(sel!("body")).next().is_some_and(|b| {
        b.value()
            .classes()
            .any(|c| NON_POST_BODY.contains(&c.to_ascii_lowercase().as_str()))
    });
    let is_post = !title.is_empty()
        && dated_by_page
        && !title_links_away
        && !listing_body
        && top_level_entries(&doc, &chrome).len() <= 1;
    Post {
        url: page_url.to_string(),
        title,
        date: date.map(|d| d.render()),
        genres,
        matching_genres,
        download_links,
        parsed_date: date,
        is_post,
    }
}

/// The value of a "Genre: …" / "Style - …" line.
fn genre_line(line: &str) -> Option<&str> {
    let line = line.trim();
    let lower = line.to_ascii_lowercase();
    ["genres", "genre", "styles", "style"].iter().find_map(|p| {
        let rest = lower.strip_prefix(p)?;
        let trimmed = rest.trim_start();
        let sep = trimmed.chars().next()?;
        if !matches!(sep, ':' | '-' | '–' | '—') {
            return None;
        }
        let at = line.len() - trimmed.len() + sep.len_utf8();
        Some(line[at..].trim())
    })
}

fn meta(doc: &Html, selector: &Selector) -> Option<String> {
    doc.select(selector)
        .filter_map(|m| m.attr("content"))
        .map(clean)
        .find(|s| !s.is_empty())
}

/// The post's title, and whether the entry's own heading links to another
/// page (a listing's excerpt, not the post itself).
fn title(
    doc: &Html,
    root: ElementRef,
    page_url: &Url,
    chrome: &Chrome,
    ld: Option<&LdPost>,
) -> (String, bool) {
    let mut site_names: Vec<String> = Vec::new();
    if let Some(s) = meta(doc, sel!("meta[property='og:site_name']")) {
        site_names.push(s);
    }
    for el in doc.select(sel!(
        ".site-title, #site-title, .header h1, #header h1, .blog-title"
    )) {
        site_names.push(text_of(el));
    }
    let heading = root
        .select(sel!(
            "[itemprop=headline], [class*=entry-title], [class*=post-title], [class*=post_title], \
             [class*=heading-title], [class*=__title], h1"
        ))
        .filter(|e| !chrome.has(*e))
        .map(|e| {
            // A wrapper ("td-post-title") holds the heading and more.
            if matches!(e.value().name(), "h1" | "h2" | "h3" | "h4") {
                e
            } else {
                e.select(sel!("h1, h2, h3")).next().unwrap_or(e)
            }
        })
        .find(|e| !text_of(*e).is_empty())
        .or_else(|| {
            root.select(sel!("h1, h2, h3"))
                .filter(|e| !chrome.has(*e))
                .find(|e| !text_of(*e).is_empty())
        });
    // An excerpt's heading (or its permalink) leads to the post; a post's
    // own heading leads nowhere or to itself.
    let body_id = chrome.main;
    let away = |a: ElementRef| {
        a.attr("href")
            .and_then(|x| page_url.join(x))
            .is_some_and(|u| !same_page(&u, page_url))
    };
    let links_away = heading.is_some_and(|h| h.select(sel!("a[href]")).any(away))
        || root
            .select(sel!("a[rel~=bookmark][href]"))
            .filter(|a| !chrome.has(*a))
            .filter(|a| body_id.is_none_or(|b| !a.ancestors().any(|x| x.id() == b)))
            .any(away);
    let raw = meta(doc, sel!("meta[property='og:title']"))
        .or_else(|| ld.and_then(|l| l.headline.clone()))
        .or_else(|| heading.map(text_of))
        .or_else(|| {
            doc.select(sel!("h1"))
                .find(|e| !chrome.has(*e))
                .map(text_of)
        })
        .or_else(|| doc.select(sel!("title")).next().map(text_of))
        .unwrap_or_default();
    (
        strip_site_name(&raw, &site_names, page_url.host()),
        links_away,
    )
}

fn same_page(a: &Url, b: &Url) -> bool {
    a.host().trim_start_matches("www.") == b.host().trim_start_matches("www.")
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        && a.query() == b.query()
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

/// The post's date, and whether it is the post's own: stated by the page's
/// markup or the entry's date line, or a permalink date beside a post body
/// (not a date somewhere in the prose).
fn date(
    doc: &Html,
    root: ElementRef,
    page_url: &Url,
    chrome: &Chrome,
    ld: Option<&LdPost>,
) -> (Option<PostDate>, bool) {
    let published = sel!(
        "meta[property='article:published_time'], meta[itemprop=datePublished], meta[name='article:published_time']"
    );
    if let Some(d) = doc
        .select(published)
        .filter_map(|m| m.attr("content"))
        .find_map(dates::parse_machine)
    {
        return (Some(d), true);
    }
    if let Some(d) = ld
        .and_then(|l| l.published.as_deref())
        .and_then(dates::parse_machine)
    {
        return (Some(d), true);
    }
    // tagDiv prints the publication day as "entry-date updated": only an
    // element marked as nothing but the update is the modification time.
    let is_modified = |e: &ElementRef| {
        let classes: Vec<String> = e.value().classes().map(str::to_ascii_lowercase).collect();
        let has = |w: &str| classes.iter().any(|c| c.contains(w));
        has("modified")
            || has("updated") && !has("published") && !has("entry-date")
            || e.attr("itemprop") == Some("dateModified")
    };
    // Published first: a theme may print the modification time beside it.
    for timed in [
        sel!(
            "time.published[datetime], [itemprop=datePublished][datetime], time[class*=published][datetime]"
        ),
        sel!("time[datetime]"),
    ] {
        if let Some(d) = root
            .select(timed)
            .filter(|t| !chrome.has(*t) && !is_modified(t))
            .filter_map(|t| t.attr("datetime"))
            .find_map(dates::parse_machine)
        {
            return (Some(d), true);
        }
    }
    if let Some(d) = root
        .select(sel!(
            "abbr.published[title], .published[title], [itemprop=datePublished][content]"
        ))
        .filter(|t| !chrome.has(*t))
        .filter_map(|t| t.attr("title").or(t.attr("content")))
        .find_map(dates::parse_machine)
    {
        return (Some(d), true);
    }
    // Dates printed as text: in the entry, or (Blogger) in a header just above it.
    let dated = sel!(
        "[class*=date], [class*=posted-on], [class*=published], [class*=byline], [class*=entry-meta], \
         [class*=post-meta], [itemprop=datePublished], time"
    );
    let in_root = root.select(dated);
    let above = doc
        .select(sel!(".date-header, [class*=date-header]"))
        .filter(|e| !root.ancestors().any(|a| a.id() == e.id()));
    // Text pieces are joined with spaces and modification dates left out:
    // Astra prints "<span>May 2, 2024</span><span class=updated>May 5, 2024</span>"
    // with nothing between them.
    let date_text = |e: ElementRef| -> String {
        let mut out = String::new();
        for n in e.descendants() {
            if let Node::Text(t) = n.value()
                && !n
                    .ancestors()
                    .take_while(|a| a.id() != e.id())
                    .filter_map(ElementRef::wrap)
                    .any(|a| is_modified(&a))
            {
                out.push(' ');
                out.push_str(t);
            }
        }
        out
    };
    if let Some(day) = in_root
        .chain(above)
        .filter(|e| !chrome.has(*e) && !is_modified(e))
        .find_map(|e| dates::from_text(&date_text(e)))
    {
        return (Some(PostDate::day(day)), true);
    }
    // A permalink date counts as the post's own only beside a post body (see
    // `extract`): the URL alone never makes a page a post.
    let url_day =
        dates::from_url_day(page_url.path()).or_else(|| dates::from_url_month(page_url.path()));
    if let Some(day) = url_day {
        return (Some(PostDate::day(day)), chrome.main.is_some());
    }
    (
        dates::from_text(&visible_text(root, chrome)).map(PostDate::day),
        false,
    )
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

    fn page(html: &str, path: &str) -> Post {
        let url = Url::parse(&format!("https://blog.example{path}")).unwrap();
        extract(
            html,
            &url,
            &GenreMatcher::default_genres(),
            &Hosts::new::<&str>(&[]),
        )
    }

    #[test]
    fn genre_lines_take_colon_or_dash() {
        assert_eq!(genre_line("Genre: Deep House"), Some("Deep House"));
        assert_eq!(
            genre_line("  Genres – Latin, Afro House"),
            Some("Latin, Afro House")
        );
        assert_eq!(genre_line("Style - UKG"), Some("UKG"));
        assert_eq!(genre_line("Generic: nothing"), None);
        assert_eq!(genre_line("Stylesheet: x"), None);
    }

    #[test]
    fn a_post_is_one_dated_entry_with_its_own_title() {
        let post = "<html><body class='single'><article class='post hentry'><h1 class='entry-title'>Night Swim</h1>\
            <time datetime='2024-03-04T10:00:00+00:00'>March 4</time><div class='entry-content'><p>Genre: Latin</p></div>\
            </article><div class='comments-area'><p>Genre: Ambient</p></div></body></html>";
        let p = page(post, "/night-swim/");
        assert!(p.is_post);
        assert_eq!(p.matching_genres, ["latin"]);
        assert_eq!(p.title, "Night Swim");
        // The same entry as a listing's excerpt: its heading leads elsewhere.
        let excerpt = post.replace(
            "Night Swim</h1>",
            "<a href='/night-swim/'>Night Swim</a></h1>",
        );
        assert!(!page(&excerpt, "/2024/03/").is_post);
        assert!(page(&excerpt, "/night-swim/").is_post);
        // Undated: an about page, even at a dated permalink-looking URL without a body.
        let about = "<html><body><article class='page type-page hentry'><h1 class='entry-title'>About</h1>\
            <div class='entry-content'><p>Drum and bass since March 4, 2012.</p></div></article></body></html>";
        let p = page(about, "/about/");
        assert!(!p.is_post);
        assert_eq!(p.matching_genres, ["drum and bass"]);
        // Two entries: a listing.
        let two = format!(
            "<html><body>{0}{0}</body></html>",
            "<article class='post'><h2>T</h2>\
            <time datetime='2024-03-04'>x</time><div class='entry-content'>y</div></article>"
        );
        assert!(!page(&two, "/genre/latin/").is_post);
    }

    #[test]
    fn chrome_by_role_widget_kind_and_not_by_body_or_taxonomy_classes() {
        let html = "<html><body class='has-sidebar has-main-navigation'>\
            <div class='elementor elementor-location-single post type-post category-recent-picks tag-social'>\
            <div class='elementor-widget elementor-widget-theme-post-title'><h1 class='elementor-heading-title'>T</h1></div>\
            <div class='elementor-widget elementor-widget-post-info'><span class='elementor-post-info__item--type-date'>4 March 2024</span></div>\
            <div class='elementor-widget elementor-widget-theme-post-content'><div class='elementor-widget-container'>\
            <p>Style: Afro House</p><a href='https://mega.nz/file/a'>FLAC</a></div></div>\
            <div class='elementor-widget elementor-widget-post-comments'><p>Genre: Latin</p><a href='https://mega.nz/file/c'>x</a></div>\
            <div role='complementary'><a rel='tag' href='/tag/ambient/'>Ambient</a></div></div></body></html>";
        let p = page(html, "/t/");
        assert!(p.is_post);
        assert_eq!(p.date.as_deref(), Some("2024-03-04"));
        assert_eq!(p.matching_genres, ["house", "afro house"]);
        assert_eq!(p.download_links.len(), 1);
        assert_eq!(p.download_links[0].url, "https://mega.nz/file/a");
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
