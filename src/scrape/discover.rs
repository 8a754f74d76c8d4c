//! Finding post URLs: listing pages, RSS/Atom feeds, sitemaps.

use std::sync::LazyLock;

use chrono::NaiveDate;
use scraper::{ElementRef, Html, Selector};

use super::dates;
use crate::fetch::Url;

macro_rules! sel {
    ($s:expr) => {{
        static S: LazyLock<Selector> =
            LazyLock::new(|| Selector::parse($s).expect("static selector"));
        &*S
    }};
}

/// How a blog numbers its listing pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// WordPress pretty permalinks: `{base}page/N/`.
    Path,
    /// WordPress plain permalinks: `{base}?paged=N`.
    Query,
    /// Only "older posts" links (Blogger's `updated-max`): follow them one by one.
    Next,
}

#[derive(Debug, Default)]
pub struct Listing {
    /// Post URLs with the date shown next to them, when there is one.
    pub posts: Vec<(Url, Option<NaiveDate>)>,
    pub next: Option<Url>,
    pub feed: Option<Url>,
}

/// The URL of listing page `n` (1 is the blog's front page).
pub fn listing_url(base: &Url, paging: Paging, n: usize) -> Url {
    let dir = if base.path().ends_with('/') {
        base.path().to_string()
    } else {
        format!("{}/", base.path())
    };
    match (paging, n) {
        (_, 1) | (Paging::Next, _) => base.clone(),
        (Paging::Path, n) => base.with_path_and_query(&format!("{dir}page/{n}/"), None),
        (Paging::Query, n) => base.with_path_and_query(&dir, Some(&format!("paged={n}"))),
    }
}

pub fn paging_of(next: Option<&Url>) -> Paging {
    match next {
        Some(u)
            if u.query()
                .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("paged="))) =>
        {
            Paging::Query
        }
        Some(u) if u.path().contains("/page/") => Paging::Path,
        Some(_) => Paging::Next,
        None => Paging::Path,
    }
}

/// True for a URL that can be a post of the blog at `base`: same site, under
/// the blog's path, and not a taxonomy, author, feed, comment, search,
/// login, admin, listing or static-asset URL.
pub fn is_post_url(url: &Url, base: &Url) -> bool {
    if !url.same_site(base) {
        return false;
    }
    let path = url.path().to_ascii_lowercase();
    let base_dir = base.path().trim_end_matches('/');
    if !path.starts_with(base_dir) {
        return false;
    }
    if path.trim_end_matches('/') == base_dir {
        // The front page itself, unless it is a plain-permalink post (`?p=123`).
        return url
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("p=")));
    }
    const SEGMENTS: &[&str] = &[
        "tag",
        "tags",
        "category",
        "categories",
        "author",
        "feed",
        "feeds",
        "comments",
        "search",
        "label",
        "wp-admin",
        "wp-content",
        "wp-includes",
        "wp-json",
        "login",
        "signin",
        "signup",
        "register",
        "cart",
        "account",
        "trackback",
        "embed",
        "attachment",
        "page",
        "p",
        "archive",
        "archives",
        "cdn-cgi",
        "xmlrpc.php",
        "wp-login.php",
    ];
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs
        .iter()
        .any(|s| SEGMENTS.contains(s) || s.starts_with("comment-page-") || s.starts_with("wp-"))
    {
        return false;
    }
    const EXTENSIONS: &[&str] = &[
        "css", "js", "json", "xml", "rss", "atom", "png", "jpg", "jpeg", "gif", "webp", "svg",
        "ico", "bmp", "pdf", "zip", "rar", "7z", "mp3", "flac", "wav", "m4a", "mp4", "woff",
        "woff2", "ttf", "eot", "txt", "php",
    ];
    if let Some(last) = segs.last()
        && let Some((_, ext)) = last.rsplit_once('.')
        && EXTENSIONS.contains(&ext)
    {
        return false;
    }
    if let Some(q) = url.query() {
        const KEYS: &[&str] = &[
            "s",
            "replytocom",
            "share",
            "paged",
            "cat",
            "tag",
            "author",
            "feed",
            "updated-max",
            "max-results",
            "action",
            "redirect_to",
            "q",
            "search",
            "by-date",
        ];
        if q.split('&')
            .any(|kv| KEYS.contains(&kv.split('=').next().unwrap_or("")))
        {
            return false;
        }
    }
    true
}

/// Post links on a listing page. Entry containers (`article`, `.hentry`,
/// Blogger's `.post-outer`) give the title link and the date shown; without
/// them, `rel=bookmark` and heading links.
pub fn parse_listing(html: &str, page_url: &Url, base: &Url) -> Listing {
    let doc = Html::parse_document(html);
    let mut listing = Listing::default();
    let push = |listing: &mut Listing, href: Option<&str>, date: Option<NaiveDate>| {
        if let Some(u) = href.and_then(|h| page_url.join(h))
            && is_post_url(&u, base)
            && !listing.posts.iter().any(|(p, _)| *p == u)
        {
            listing.posts.push((u, date));
        }
    };
    let entries = sel!("article, .hentry, .post-outer, .type-post, .blog-post, .post");
    let title_link = sel!("a[rel~=bookmark], .entry-title a, .post-title a, h1 a, h2 a, h3 a");
    let entry_date = sel!("time[datetime], abbr.published[title], .published[title]");
    for entry in doc.select(entries) {
        if in_sidebar(entry) {
            continue;
        }
        let Some(link) = entry.select(title_link).next() else {
            continue;
        };
        let date = entry
            .select(entry_date)
            .filter_map(|t| t.attr("datetime").or(t.attr("title")))
            .find_map(dates::parse_machine)
            .map(|d| d.day);
        push(&mut listing, link.attr("href"), date);
    }
    if listing.posts.is_empty() {
        for a in doc.select(sel!("a[rel~=bookmark], h2 a, h3 a")) {
            if !in_sidebar(a) {
                push(&mut listing, a.attr("href"), None);
            }
        }
    }
    let next = sel!(
        "link[rel=next], a[rel=next], a.next, .nav-previous a, .older-posts a, a.blog-pager-older-link, \
         .pagination .next, .nav-links a.next"
    );
    listing.next = doc
        .select(next)
        .filter_map(|a| a.attr("href"))
        .filter_map(|h| page_url.join(h))
        .find(|u| u.same_site(base) && u != page_url);
    let feed = sel!(
        "link[rel=alternate][type='application/rss+xml'], link[rel=alternate][type='application/atom+xml']"
    );
    listing.feed = doc
        .select(feed)
        .filter_map(|l| l.attr("href"))
        .filter_map(|h| page_url.join(h))
        .find(|u| !u.path().contains("comments"));
    listing
}

fn in_sidebar(el: ElementRef) -> bool {
    std::iter::once(el)
        .chain(el.ancestors().filter_map(ElementRef::wrap))
        .any(|a| {
            let v = a.value();
            matches!(v.name(), "aside" | "nav" | "footer")
                || v.id().into_iter().chain(v.classes()).any(|c| {
                    ["sidebar", "widget", "related", "menu"]
                        .iter()
                        .any(|n| c.contains(n))
                })
        })
}

/// Elements named `name` (any namespace prefix): (attributes, inner text).
/// Feeds and sitemaps are simple enough that a tag scanner beats pulling in
/// an XML parser, and it shrugs off the broken XML real blogs serve.
fn xml_elements<'a>(xml: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(lt) = xml[pos..].find('<') {
        let start = pos + lt + 1;
        pos = start;
        let rest = &xml[start..];
        let tag_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        let local = tag.rsplit(':').next().unwrap_or(tag);
        if !local.eq_ignore_ascii_case(name) || tag.starts_with('/') {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let attrs = &rest[tag_end..gt];
        if attrs.ends_with('/') {
            out.push((attrs.trim_end_matches('/'), ""));
            pos = start + gt + 1;
            continue;
        }
        let inner_start = start + gt + 1;
        let close = format!("</{tag}>");
        let Some(close_at) = xml[inner_start..].find(&close) else {
            break;
        };
        out.push((attrs, &xml[inner_start..inner_start + close_at]));
        pos = inner_start + close_at + close.len();
    }
    out
}

fn xml_text(inner: &str) -> String {
    let s = inner.trim();
    let s = s
        .strip_prefix("<![CDATA[")
        .and_then(|x| x.strip_suffix("]]>"))
        .unwrap_or(s);
    unescape(s.trim())
}

fn xml_attr(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let quote = v.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = v[1..].find(quote)?;
                return Some(unescape(&v[1..1 + end]));
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Post links of an RSS 2.0 or Atom feed, with their publication dates.
pub fn parse_feed(xml: &str) -> Vec<(String, Option<NaiveDate>)> {
    let mut out = Vec::new();
    for (_, item) in xml_elements(xml, "item") {
        let link = xml_elements(item, "link")
            .first()
            .map(|(_, t)| xml_text(t))
            .filter(|l| !l.is_empty())
            .or_else(|| xml_elements(item, "guid").first().map(|(_, t)| xml_text(t)));
        let date = xml_elements(item, "pubDate")
            .first()
            .and_then(|(_, t)| dates::parse_machine(&xml_text(t)))
            .map(|d| d.day);
        if let Some(l) = link {
            out.push((l, date));
        }
    }
    for (_, entry) in xml_elements(xml, "entry") {
        let links = xml_elements(entry, "link");
        let link = links
            .iter()
            .find(|(a, _)| xml_attr(a, "rel").is_none_or(|r| r == "alternate"))
            .and_then(|(a, _)| xml_attr(a, "href"));
        let date = ["published", "updated"]
            .iter()
            .find_map(|n| {
                xml_elements(entry, n)
                    .first()
                    .and_then(|(_, t)| dates::parse_machine(&xml_text(t)))
            })
            .map(|d| d.day);
        if let Some(l) = link {
            out.push((l, date));
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct Sitemap {
    pub urls: Vec<(String, Option<NaiveDate>)>,
    /// Child sitemaps of a sitemap index.
    pub sitemaps: Vec<String>,
}

pub fn parse_sitemap(xml: &str) -> Sitemap {
    let mut map = Sitemap::default();
    for (_, u) in xml_elements(xml, "url") {
        if let Some((_, loc)) = xml_elements(u, "loc").first() {
            let lastmod = xml_elements(u, "lastmod")
                .first()
                .and_then(|(_, t)| dates::parse_machine(&xml_text(t)))
                .map(|d| d.day);
            map.urls.push((xml_text(loc), lastmod));
        }
    }
    for (_, s) in xml_elements(xml, "sitemap") {
        if let Some((_, loc)) = xml_elements(s, "loc").first() {
            map.sitemaps.push(xml_text(loc));
        }
    }
    map
}

/// Child sitemaps that list taxonomies, authors or static pages hold no posts.
pub fn is_post_sitemap(url: &str) -> bool {
    let u = url.to_ascii_lowercase();
    ![
        "taxonom",
        "categor",
        "tag",
        "author",
        "user",
        "page-sitemap",
        "-pages-",
    ]
    .iter()
    .any(|w| u.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn post_url_filter() {
        let base = u("https://blog.example/");
        for ok in [
            "https://blog.example/2024/03/04/artist-ep/",
            "https://www.blog.example/artist-ep/",
            "https://blog.example/2024/03/artist-ep.html",
            "https://blog.example/?p=123",
        ] {
            assert!(is_post_url(&u(ok), &base), "{ok}");
        }
        for bad in [
            "https://blog.example/",
            "https://other.example/2024/03/04/x/",
            "https://blog.example/tag/house/",
            "https://blog.example/category/deep-house/",
            "https://blog.example/author/dj/",
            "https://blog.example/feed/",
            "https://blog.example/2024/03/04/x/feed/",
            "https://blog.example/x/comment-page-2/",
            "https://blog.example/?s=house",
            "https://blog.example/wp-login.php",
            "https://blog.example/wp-content/uploads/cover.jpg",
            "https://blog.example/page/2/",
            "https://blog.example/search/label/House",
            "https://blog.example/p/about.html",
            "https://blog.example/x/?replytocom=5",
            "https://blog.example/style.css",
        ] {
            assert!(!is_post_url(&u(bad), &base), "{bad}");
        }
        let sub = u("https://site.example/blog/");
        assert!(is_post_url(&u("https://site.example/blog/post-1/"), &sub));
        assert!(!is_post_url(&u("https://site.example/shop/item/"), &sub));
    }

    #[test]
    fn listing_urls() {
        let base = u("https://b.example/blog");
        assert_eq!(
            listing_url(&base, Paging::Path, 3).to_string(),
            "https://b.example/blog/page/3/"
        );
        assert_eq!(
            listing_url(&base, Paging::Query, 2).to_string(),
            "https://b.example/blog/?paged=2"
        );
        assert_eq!(listing_url(&base, Paging::Path, 1), base);
        assert_eq!(
            paging_of(Some(&u("https://b.example/?paged=2"))),
            Paging::Query
        );
        assert_eq!(
            paging_of(Some(&u("https://b.example/page/2/"))),
            Paging::Path
        );
        assert_eq!(
            paging_of(Some(&u(
                "https://b.example/search?updated-max=2024-01-01T00:00:00Z"
            ))),
            Paging::Next
        );
    }

    #[test]
    fn feeds_rss_and_atom() {
        let rss = r#"<?xml version="1.0"?><rss><channel><title>x</title><link>https://b/</link>
            <item><title>A</title><link>https://b/2024/01/02/a/</link><pubDate>Tue, 02 Jan 2024 10:00:00 +0000</pubDate></item>
            <item><title>B</title><link><![CDATA[https://b/b/?x=1&y=2]]></link></item>
            <item><guid isPermaLink="true">https://b/c/</guid></item></channel></rss>"#;
        let f = parse_feed(rss);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].0, "https://b/2024/01/02/a/");
        assert_eq!(f[0].1, NaiveDate::from_ymd_opt(2024, 1, 2));
        assert_eq!(f[1].0, "https://b/b/?x=1&y=2");
        assert_eq!(f[2].0, "https://b/c/");
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel='replies' href='https://b/c#comments'/>
            <link rel='alternate' type='text/html' href='https://b/2024/02/x.html'/><published>2024-02-03T04:05:06.000-08:00</published></entry></feed>"#;
        let f = parse_feed(atom);
        assert_eq!(
            f,
            vec![(
                "https://b/2024/02/x.html".to_string(),
                NaiveDate::from_ymd_opt(2024, 2, 3)
            )]
        );
    }

    #[test]
    fn sitemaps_and_indexes() {
        let s = parse_sitemap(
            "<urlset><url><loc>https://b/a/</loc><lastmod>2024-01-01</lastmod></url><url><loc>https://b/x/?a=1&amp;b=2</loc></url></urlset>",
        );
        assert_eq!(
            s.urls[0],
            (
                "https://b/a/".to_string(),
                NaiveDate::from_ymd_opt(2024, 1, 1)
            )
        );
        assert_eq!(s.urls[1].0, "https://b/x/?a=1&b=2");
        let idx = parse_sitemap(
            "<sitemapindex><sitemap><loc>https://b/wp-sitemap-posts-post-1.xml</loc></sitemap>\
             <sitemap><loc>https://b/wp-sitemap-taxonomies-category-1.xml</loc></sitemap></sitemapindex>",
        );
        assert_eq!(idx.sitemaps.len(), 2);
        assert!(is_post_sitemap(&idx.sitemaps[0]));
        assert!(!is_post_sitemap(&idx.sitemaps[1]));
    }
}
