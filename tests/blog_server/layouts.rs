//! Blog pages in the shapes of the layouts found in the wild (WordPress Twenty
//! Seventeen, a block theme in the Twenty Twenty-Two..Four mould, Astra,
//! GeneratePress, Newspaper/tagDiv, Blogger, an Elementor Pro single
//! template), with their ground truth.
//!
//! Pages are built as element trees and rendered through `Style`, which
//! varies what a scraper must not depend on: class order, attribute order and
//! quoting, whitespace, extra wrapper elements, body classes, which head
//! metadata (Open Graph, `article:published_time`, JSON-LD) is present. Each
//! post puts its genres in one place (categories, tags, labels, a "Genre:" or
//! "Style:" line, the body text) and its date in the layout's own form; every
//! page carries decoy genre words, dates and download links in its chrome
//! (menus, tag clouds, related posts, comments, footers). Non-post pages
//! (about, contact, category, author and date archives) sit at URLs a
//! scraper cannot rule out by their path.
//!
//! `canonical()` renders the fixture files under fixtures/blog/layouts/;
//! `varied(seed)` renders unseen blogs for the generalisation test.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    Seventeen,
    BlockTheme,
    Astra,
    GeneratePress,
    Newspaper,
    Blogger,
    Elementor,
}

pub const LAYOUTS: [Layout; 7] = [
    Layout::Seventeen,
    Layout::BlockTheme,
    Layout::Astra,
    Layout::GeneratePress,
    Layout::Newspaper,
    Layout::Blogger,
    Layout::Elementor,
];

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Seventeen => "twentyseventeen",
            Layout::BlockTheme => "blocktheme",
            Layout::Astra => "astra",
            Layout::GeneratePress => "generatepress",
            Layout::Newspaper => "newspaper",
            Layout::Blogger => "blogger",
            Layout::Elementor => "elementor",
        }
    }

    fn is_blogger(self) -> bool {
        self == Layout::Blogger
    }
}

/// Genre names as blogs write them, with the default wanted genres each one
/// must yield (empty: a genre nobody asked for).
pub const GENRES: &[(&str, &[&str])] = &[
    ("Deep House", &["house", "deep house"]),
    ("Organic House", &["house", "organic house"]),
    ("Afro House", &["house", "afro house"]),
    ("Drum & Bass", &["drum and bass"]),
    ("DnB", &["drum and bass"]),
    ("Nu-Disco", &["nu disco"]),
    ("UK Garage", &["uk garage"]),
    ("Latin", &["latin"]),
    ("Ambient", &["ambient"]),
    ("Electronica", &["electronica"]),
    ("Indie Dance", &["indie dance", "dance"]),
    ("Progressive House", &["house", "progressive house"]),
    ("Techno", &[]),
    ("Trance", &[]),
    ("Dubstep", &[]),
    ("Downtempo", &[]),
    ("Hip Hop", &[]),
    ("Minimal", &[]),
];

/// Where a post names its genres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Categories,
    Tags,
    /// Blogger labels.
    Labels,
    GenreLine,
    StyleLine,
    /// Only in the prose.
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    pub label: &'static str,
}

#[derive(Debug, Clone)]
pub struct PostSpec {
    pub layout: Layout,
    pub path: String,
    pub title: String,
    pub day: NaiveDate,
    pub genres: Vec<&'static str>,
    pub place: Place,
    pub links: Vec<Link>,
    /// Which of the date forms the layout may use.
    pub date_form: usize,
    /// Share buttons and related posts inside the post body (Jetpack).
    pub body_chrome: bool,
    /// The layout's other common shape (Blogger: Contempo instead of the classic templates).
    pub variant: bool,
}

impl PostSpec {
    /// The default wanted genres this post must match.
    pub fn expected_genres(&self) -> BTreeSet<String> {
        self.genres
            .iter()
            .flat_map(|g| {
                GENRES
                    .iter()
                    .find(|(n, _)| n == g)
                    .map(|(_, w)| w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub enum PageKind {
    Post(PostSpec),
    About,
    Contact,
    /// A category, label or author archive, or a date archive.
    Archive(&'static str),
    Home,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub path: String,
    pub layout: Layout,
    pub kind: PageKind,
    pub html: String,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub pages: Vec<Page>,
}

impl Site {
    pub fn posts(&self) -> impl Iterator<Item = &PostSpec> {
        self.pages.iter().filter_map(|p| match &p.kind {
            PageKind::Post(s) => Some(s),
            _ => None,
        })
    }

    pub fn sitemap(&self) -> String {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
        );
        for p in &self.pages {
            if !matches!(p.kind, PageKind::Home) {
                let _ = writeln!(s, "<url><loc>{{{{BASE}}}}{}</loc></url>", p.path);
            }
        }
        s.push_str("</urlset>\n");
        s
    }
}

// ---------------------------------------------------------------- element trees

#[derive(Debug, Clone)]
pub enum N {
    El(&'static str, Vec<(&'static str, String)>, Vec<N>),
    Text(String),
}

fn el(tag: &'static str, attrs: &[(&'static str, &str)], kids: Vec<N>) -> N {
    N::El(
        tag,
        attrs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        kids,
    )
}

fn t(s: &str) -> N {
    N::Text(escape(s))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const VOID: &[&str] = &["meta", "link", "br", "img", "input", "hr"];
const BLOCK: &[&str] = &[
    "div", "section", "article", "main", "header", "footer", "aside", "nav", "ul", "li", "h1",
    "h2", "h3", "p", "body", "head", "html", "form", "ol",
];
/// Wrappers themes and page builders add, none of them meaningful.
const WRAPPERS: &[&str] = &[
    "wrap",
    "inner",
    "container",
    "row",
    "col-md-8",
    "grid-x",
    "ct-container",
    "inside-wrap",
    "box",
    "clearfix",
];

/// How a page is written out.
pub struct Style {
    rng: fastrand::Rng,
    /// 0: `"`, 1: `'`, 2: unquoted where HTML allows, 3: a mix.
    quoting: u8,
    shuffle: bool,
    /// 0: none between blocks, 1: newline and indent, 2: random runs.
    spacing: u8,
    /// Chance of an extra wrapper around a block child.
    wrap: f64,
    /// Body classes and head metadata kept with this chance.
    pub keep_meta: f64,
}

impl Style {
    pub fn canonical() -> Style {
        Style {
            rng: fastrand::Rng::with_seed(7),
            quoting: 0,
            shuffle: false,
            spacing: 1,
            wrap: 0.0,
            keep_meta: 1.0,
        }
    }

    pub fn varied(seed: u64) -> Style {
        let mut rng = fastrand::Rng::with_seed(seed);
        Style {
            quoting: rng.u8(0..4),
            shuffle: true,
            spacing: rng.u8(0..3),
            wrap: [0.0, 0.15, 0.35][rng.usize(0..3)],
            keep_meta: [0.5, 0.8, 1.0][rng.usize(0..3)],
            rng,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || self.rng.f64() < p
    }

    fn space(&mut self, depth: usize, out: &mut String) {
        match self.spacing {
            0 => {}
            1 => {
                out.push('\n');
                out.push_str(&"  ".repeat(depth.min(12)));
            }
            _ => {
                for _ in 0..self.rng.usize(0..4) {
                    out.push([' ', '\n', '\t'][self.rng.usize(0..3)]);
                }
            }
        }
    }

    fn attr(&mut self, k: &str, v: &str, out: &mut String) {
        let mut v = v.to_string();
        if k == "class" && self.shuffle {
            let mut parts: Vec<&str> = v.split_whitespace().collect();
            self.rng.shuffle(&mut parts);
            v = parts.join(" ");
        }
        let q = match self.quoting {
            3 => self.rng.u8(0..3),
            q => q,
        };
        let bare = !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:/%?".contains(c))
            && !v.ends_with('/');
        let v = v.replace('&', "&amp;");
        match q {
            2 if bare => {
                let _ = write!(out, " {k}={v}");
            }
            1 => {
                let _ = write!(out, " {k}='{}'", v.replace('\'', "&#39;"));
            }
            _ => {
                let _ = write!(out, " {k}=\"{}\"", v.replace('"', "&quot;"));
            }
        }
    }

    pub fn render(&mut self, n: &N) -> String {
        let mut out = String::from("<!DOCTYPE html>");
        self.node(n, 0, &mut out);
        out.push('\n');
        out
    }

    fn node(&mut self, n: &N, depth: usize, out: &mut String) {
        match n {
            N::Text(s) => out.push_str(s),
            N::El(tag, attrs, kids) => {
                let wrapped = depth > 2
                    && BLOCK.contains(tag)
                    && !matches!(*tag, "li" | "head" | "body" | "html" | "p")
                    && self.wrap > 0.0
                    && self.chance(self.wrap);
                if wrapped {
                    let cls = WRAPPERS[self.rng.usize(0..WRAPPERS.len())];
                    out.push_str("<div");
                    self.attr("class", cls, out);
                    out.push('>');
                }
                out.push('<');
                out.push_str(tag);
                let mut attrs = attrs.clone();
                if self.shuffle {
                    self.rng.shuffle(&mut attrs);
                }
                for (k, v) in &attrs {
                    self.attr(k, v, out);
                }
                out.push('>');
                if VOID.contains(tag) {
                    if wrapped {
                        out.push_str("</div>");
                    }
                    return;
                }
                let block_kids = BLOCK.contains(tag) && *tag != "p" && !tag.starts_with('h');
                for k in kids {
                    if block_kids && matches!(k, N::El(..)) {
                        self.space(depth + 1, out);
                    }
                    self.node(k, depth + 1, out);
                }
                if block_kids {
                    self.space(depth, out);
                }
                let _ = write!(out, "</{tag}>");
                if wrapped {
                    out.push_str("</div>");
                }
            }
        }
    }
}

// ---------------------------------------------------------------- content

const ARTISTS: &[&str] = &[
    "Mira Okafor",
    "The Lantern Set",
    "Kobe Vance",
    "Alma Rey",
    "Northside Unit",
    "Teo Marsh",
    "Lune Atelier",
    "Sasha Pryor",
    "Cold Harbour",
    "Ines Vatra",
    "Delta Moor",
    "Yuki Hale",
    "Rae & The Tides",
];
const RELEASES: &[&str] = &[
    "Night Swim EP",
    "Copper Lines",
    "Open Water",
    "Second Light LP",
    "Paper Moons",
    "Field Notes Vol. 2",
    "Slow Orbit",
    "Glass Harbour EP",
    "Midnight Tram",
    "Lowlands",
];
/// Prose free of any genre word or alias.
const FILLER: &[&str] = &[
    "Fresh from the label, mastered for long nights.",
    "Twelve tracks with patient intros and warm pads.",
    "The B-side is the one to watch, a slow builder with a great break.",
    "Pressed on vinyl too, but the digital version has two extra cuts.",
    "Recorded over one winter in a converted chapel.",
    "Full credits and artwork inside the archive.",
    "Support the artist and buy the record if you enjoy it.",
];
const HOSTS: &[&str] = &[
    "https://mega.nz/file/",
    "https://krakenfiles.com/view/",
    "https://nfile.cc/",
    "https://www.mediafire.com/file/",
];
/// Genre words the chrome carries around every page.
const DECOYS: &[&str] = &[
    "Latin",
    "Ambient",
    "Drum and Bass",
    "Afro House",
    "Funky",
    "Melodic",
];

pub fn human_date(day: NaiveDate, form: usize) -> String {
    match form % 7 {
        0 => day.format("%B %-d, %Y").to_string(),
        1 => day.format("%-d %B %Y").to_string(),
        2 => day.format("%Y-%m-%d").to_string(),
        3 => day.format("%d.%m.%Y").to_string(),
        4 => day.format("%A, %B %-d, %Y").to_string(),
        5 => day.format("%b %-d, %Y").to_string(),
        _ => day.format("%-d %b %Y").to_string(),
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn machine(day: NaiveDate, hour: u32) -> String {
    format!("{}T{hour:02}:15:00+00:00", day.format("%Y-%m-%d"))
}

// ---------------------------------------------------------------- chrome

fn menu(base_classes: &str) -> N {
    el(
        "nav",
        &[("class", base_classes), ("aria-label", "Primary")],
        vec![el(
            "ul",
            &[("class", "menu")],
            ["Deep House", "Drum and Bass", "Latin", "About"]
                .iter()
                .map(|m| {
                    el(
                        "li",
                        &[("class", "menu-item")],
                        vec![el(
                            "a",
                            &[("href", &format!("/genre/{}/", slug(m)))],
                            vec![t(m)],
                        )],
                    )
                })
                .collect(),
        )],
    )
}

fn tag_cloud(wrapper: &'static str, classes: &str, blogger: bool) -> N {
    let links = DECOYS
        .iter()
        .map(|d| {
            let href = if blogger {
                format!("/search/label/{}", d.replace(' ', "%20"))
            } else {
                format!("/tag/{}/", slug(d))
            };
            el(
                "a",
                &[("href", &href), ("class", "tag-cloud-link")],
                vec![t(d)],
            )
        })
        .collect();
    el(
        wrapper,
        &[("class", classes)],
        vec![el("h2", &[], vec![t("Tags")]), el("div", &[], links)],
    )
}

/// Recent posts with dates and a download link: all of it chrome.
fn recent(wrapper: &'static str, classes: &str, day: NaiveDate) -> N {
    el(
        wrapper,
        &[("class", classes)],
        vec![
            el("h2", &[], vec![t("Recent Posts")]),
            el(
                "ul",
                &[],
                vec![
                    el(
                        "li",
                        &[],
                        vec![
                            el(
                                "a",
                                &[("href", "/best-of-afro-house-2019/")],
                                vec![t("Best of Afro House 2019")],
                            ),
                            el(
                                "span",
                                &[("class", "post-date")],
                                vec![t(&human_date(day - chrono::Days::new(400), 0))],
                            ),
                        ],
                    ),
                    el(
                        "li",
                        &[],
                        vec![el(
                            "a",
                            &[("href", "https://mega.nz/folder/sidebar-archive")],
                            vec![t("Our FLAC archive (Latin & Funky)")],
                        )],
                    ),
                ],
            ),
        ],
    )
}

fn comments(wrapper_classes: &str, id: &str, day: NaiveDate) -> N {
    el(
        "div",
        &[("class", wrapper_classes), ("id", id)],
        vec![
            el("h2", &[("class", "comments-title")], vec![t("2 thoughts")]),
            el(
                "ol",
                &[("class", "comment-list")],
                vec![
                    el(
                        "li",
                        &[("class", "comment")],
                        vec![
                            el(
                                "time",
                                &[("datetime", &machine(day - chrono::Days::new(900), 3))],
                                vec![t("long ago")],
                            ),
                            el(
                                "div",
                                &[("class", "comment-content")],
                                vec![el(
                                    "p",
                                    &[],
                                    vec![t(
                                        "Sounds more like Melodic Latin to me. Genre: Drum and Bass?",
                                    )],
                                )],
                            ),
                        ],
                    ),
                    el(
                        "li",
                        &[("class", "comment")],
                        vec![el(
                            "div",
                            &[("class", "comment-content")],
                            vec![el(
                                "p",
                                &[],
                                vec![
                                    t("FLAC mirror: "),
                                    el(
                                        "a",
                                        &[(
                                            "href",
                                            "https://krakenfiles.com/view/comment-mirror/file.html",
                                        )],
                                        vec![t("here")],
                                    ),
                                ],
                            )],
                        )],
                    ),
                ],
            ),
        ],
    )
}

fn site_footer(tag: &'static str, classes: &str) -> N {
    el(
        tag,
        &[("class", classes), ("id", "colophon")],
        vec![el(
            "p",
            &[],
            vec![t(
                "Ambient, Funky and Afro House since March 4, 2009. © Groove Ledger",
            )],
        )],
    )
}

// ---------------------------------------------------------------- post parts

struct Parts {
    title: N,
    date: N,
    body: N,
    cats: Vec<N>,
    tags: Vec<N>,
}

fn body_children(spec: &PostSpec, rng: &mut fastrand::Rng) -> Vec<N> {
    let mut kids = Vec::new();
    let mut p1 = FILLER[rng.usize(0..FILLER.len())].to_string();
    if spec.place == Place::Body {
        let names = spec.genres.join(" and ");
        let artist = ARTISTS[rng.usize(0..ARTISTS.len())];
        p1 = match rng.usize(0..3) {
            0 => format!("{p1} A fine {names} record from {artist}."),
            1 => format!("Pure {names} from start to end. {p1}"),
            _ => format!("{p1} If you like {names}, this one is for you."),
        };
    }
    kids.push(el("p", &[], vec![t(&p1)]));
    let sep = [" / ", ", ", " | "][rng.usize(0..3)];
    let names = spec.genres.join(sep);
    match spec.place {
        Place::GenreLine => kids.push(match rng.usize(0..3) {
            0 => el(
                "p",
                &[],
                vec![
                    el("strong", &[], vec![t("Genre:")]),
                    t(&format!(" {names}")),
                ],
            ),
            1 => el("p", &[], vec![t(&format!("Genres: {names}"))]),
            _ => el(
                "p",
                &[],
                vec![el("b", &[], vec![t("Genre")]), t(&format!(" – {names}"))],
            ),
        }),
        Place::StyleLine => kids.push(el(
            "p",
            &[],
            vec![
                t("Label: Quiet Room Records"),
                el("br", &[], vec![]),
                el("b", &[], vec![t("Style")]),
                t(&format!(": {names}")),
                el("br", &[], vec![]),
                t("Tracks: 12"),
            ],
        )),
        _ => {}
    }
    kids.push(el("p", &[], vec![t(FILLER[rng.usize(0..FILLER.len())])]));
    let mut dl = vec![
        el("strong", &[], vec![t(spec.links[0].label)]),
        el("br", &[], vec![]),
    ];
    for (i, l) in spec.links.iter().enumerate() {
        if i > 0 {
            dl.push(t(" | "));
        }
        dl.push(el(
            "a",
            &[("href", &l.url), ("target", "_blank"), ("rel", "noopener")],
            vec![t(&format!("Part {}", i + 1))],
        ));
    }
    kids.push(el("p", &[], dl));
    if spec.body_chrome {
        // Jetpack puts its share buttons and related posts inside the post body.
        kids.push(el(
            "div",
            &[("class", "sharedaddy sd-sharing-enabled")],
            vec![el(
                "div",
                &[("class", "sd-block sd-social")],
                vec![
                    el("h3", &[("class", "sd-title")], vec![t("Share this:")]),
                    el(
                        "a",
                        &[
                            ("class", "share-twitter"),
                            ("href", "https://twitter.com/intent/tweet?text=Latin"),
                        ],
                        vec![t("Latin vibes? Tweet it")],
                    ),
                ],
            )],
        ));
        kids.push(el(
            "div",
            &[("id", "jp-relatedposts"), ("class", "jp-relatedposts")],
            vec![
                el(
                    "h3",
                    &[("class", "jp-relatedposts-headline")],
                    vec![t("Related")],
                ),
                el(
                    "div",
                    &[("class", "jp-relatedposts-post")],
                    vec![
                        el(
                            "h4",
                            &[("class", "jp-relatedposts-post-title")],
                            vec![el(
                                "a",
                                &[("href", "/best-ambient-2019/")],
                                vec![t("Best Ambient of 2019")],
                            )],
                        ),
                        el(
                            "p",
                            &[("class", "jp-relatedposts-post-date")],
                            vec![t("March 4, 2019")],
                        ),
                        el(
                            "p",
                            &[("class", "jp-relatedposts-post-context")],
                            vec![t("Genre: Drum and Bass")],
                        ),
                        el(
                            "a",
                            &[("href", "https://mega.nz/file/related-decoy")],
                            vec![t("FLAC")],
                        ),
                    ],
                ),
            ],
        ));
    }
    kids
}

fn term_links(spec: &PostSpec, want: Place, rel: &str, kind: &str) -> Vec<N> {
    let mut names: Vec<&str> = if spec.place == want {
        spec.genres.clone()
    } else {
        Vec::new()
    };
    // Every post has some category; when genres are elsewhere it names none.
    if names.is_empty() && kind == "category" {
        names.push("New Releases");
    }
    names
        .iter()
        .map(|n| {
            let href = if kind == "label" {
                format!("/search/label/{}", n.replace(' ', "%20"))
            } else {
                format!("/{kind}/{}/", slug(n))
            };
            el("a", &[("href", &href), ("rel", rel)], vec![t(n)])
        })
        .collect()
}

fn join_commas(links: Vec<N>) -> Vec<N> {
    let mut out = Vec::new();
    for (i, l) in links.into_iter().enumerate() {
        if i > 0 {
            out.push(t(", "));
        }
        out.push(l);
    }
    out
}

fn head(spec: Option<&PostSpec>, title: &str, site: &str, style: &mut Style, page_type: &str) -> N {
    let mut kids = vec![
        el("meta", &[("charset", "utf-8")], vec![]),
        el("title", &[], vec![t(&format!("{title} – {site}"))]),
        el(
            "link",
            &[
                ("rel", "alternate"),
                ("type", "application/rss+xml"),
                ("href", "/feed/"),
            ],
            vec![],
        ),
    ];
    if style.chance(style.keep_meta) {
        kids.push(el(
            "meta",
            &[("property", "og:site_name"), ("content", site)],
            vec![],
        ));
        kids.push(el(
            "meta",
            &[
                ("property", "og:title"),
                ("content", &format!("{title} – {site}")),
            ],
            vec![],
        ));
        kids.push(el(
            "meta",
            &[("property", "og:type"), ("content", page_type)],
            vec![],
        ));
    }
    if let Some(spec) = spec {
        if style.chance(style.keep_meta * 0.6) {
            kids.push(el(
                "meta",
                &[
                    ("property", "article:published_time"),
                    ("content", &machine(spec.day, 20)),
                ],
                vec![],
            ));
        }
        if style.chance(style.keep_meta * 0.5) {
            let (section, keywords): (Vec<&str>, Vec<&str>) = match spec.place {
                Place::Categories => (spec.genres.clone(), vec![]),
                Place::Tags | Place::Labels => (vec!["New Releases"], spec.genres.clone()),
                _ => (vec!["New Releases"], vec![]),
            };
            let ld = serde_json::json!({
                "@context": "https://schema.org",
                "@graph": [
                    {"@type": "WebPage", "name": title, "datePublished": "2001-01-01T00:00:00+00:00"},
                    {"@type": if spec.layout.is_blogger() { "BlogPosting" } else { "Article" },
                     "headline": title, "datePublished": machine(spec.day, 20),
                     "articleSection": section, "keywords": keywords}
                ]
            });
            kids.push(el(
                "script",
                &[("type", "application/ld+json")],
                vec![N::Text(ld.to_string())],
            ));
        }
    } else if style.chance(style.keep_meta * 0.5) {
        // Pages carry a WebPage with a date too: no post for all that.
        let ld = serde_json::json!({"@context": "https://schema.org", "@type": "WebPage", "name": title,
            "datePublished": "2012-03-04T10:00:00+00:00"});
        kids.push(el(
            "script",
            &[("type", "application/ld+json")],
            vec![N::Text(ld.to_string())],
        ));
    }
    el("head", &[], kids)
}

fn body_el(classes: &str, kids: Vec<N>) -> N {
    el("body", &[("class", classes)], kids)
}

/// Drops the body classes unless `keep_meta`'s chance keeps them.
fn keep_body_class(body: N, style: &mut Style) -> N {
    match body {
        N::El(tag, attrs, kids) if !style.chance(style.keep_meta) => N::El(
            tag,
            attrs.into_iter().filter(|(k, _)| *k != "class").collect(),
            kids,
        ),
        b => b,
    }
}

// ---------------------------------------------------------------- layouts

const SITE: &str = "Groove Ledger";

fn post_page(spec: &PostSpec, style: &mut Style) -> String {
    let mut rng =
        fastrand::Rng::with_seed(spec.day.num_days_from_ce() as u64 ^ spec.title.len() as u64);
    let day = spec.day;
    let form = spec.date_form;
    let body_kids = body_children(spec, &mut rng);
    let cats = term_links(spec, Place::Categories, "category tag", "category");
    let tags = term_links(spec, Place::Tags, "tag", "tag");
    let labels = term_links(spec, Place::Labels, "tag", "label");
    let wp_body = "post-template-default single single-post postid-41 single-format-standard";
    let cat_class = format!(
        "post-41 post type-post status-publish format-standard hentry category-{} tag-social",
        slug(spec.genres[0])
    );
    let title = spec.title.as_str();
    let html_kids = |style: &mut Style, body: N| {
        let h = head(Some(spec), title, SITE, style, "article");
        vec![h, keep_body_class(body, style)]
    };
    let tree = match spec.layout {
        Layout::Seventeen => {
            let date = el(
                "span",
                &[("class", "posted-on")],
                vec![
                    el(
                        "span",
                        &[("class", "screen-reader-text")],
                        vec![t("Posted on")],
                    ),
                    el(
                        "a",
                        &[("href", &spec.path), ("rel", "bookmark")],
                        vec![
                            el(
                                "time",
                                &[
                                    ("class", "entry-date published"),
                                    ("datetime", &machine(day, 21)),
                                ],
                                vec![t(&human_date(day, form))],
                            ),
                            el(
                                "time",
                                &[
                                    ("class", "updated"),
                                    ("datetime", &machine(day + chrono::Days::new(30), 9)),
                                ],
                                vec![t(&human_date(day + chrono::Days::new(30), form))],
                            ),
                        ],
                    ),
                ],
            );
            let article = el(
                "article",
                &[("id", "post-41"), ("class", &cat_class)],
                vec![
                    el(
                        "header",
                        &[("class", "entry-header")],
                        vec![
                            el("div", &[("class", "entry-meta")], vec![date]),
                            el("h1", &[("class", "entry-title")], vec![t(title)]),
                        ],
                    ),
                    el("div", &[("class", "entry-content")], body_kids),
                    el(
                        "footer",
                        &[("class", "entry-footer")],
                        vec![el(
                            "span",
                            &[("class", "cat-tags-links")],
                            vec![
                                el("span", &[("class", "cat-links")], join_commas(cats)),
                                el("span", &[("class", "tags-links")], join_commas(tags)),
                            ],
                        )],
                    ),
                ],
            );
            let page = el(
                "div",
                &[("id", "page"), ("class", "site")],
                vec![
                    el(
                        "header",
                        &[
                            ("id", "masthead"),
                            ("class", "site-header"),
                            ("role", "banner"),
                        ],
                        vec![
                            el(
                                "div",
                                &[("class", "site-branding")],
                                vec![el("p", &[("class", "site-title")], vec![t(SITE)])],
                            ),
                            menu("main-navigation"),
                        ],
                    ),
                    el(
                        "div",
                        &[("class", "site-content-contain")],
                        vec![el(
                            "div",
                            &[("id", "content"), ("class", "site-content")],
                            vec![el(
                                "div",
                                &[("class", "wrap")],
                                vec![
                                    el(
                                        "div",
                                        &[("id", "primary"), ("class", "content-area")],
                                        vec![el(
                                            "main",
                                            &[("id", "main"), ("class", "site-main")],
                                            vec![
                                                article,
                                                el(
                                                    "nav",
                                                    &[("class", "navigation post-navigation")],
                                                    vec![el(
                                                        "a",
                                                        &[("href", "/older-post/")],
                                                        vec![t("Previous: Latin Nights")],
                                                    )],
                                                ),
                                                comments("comments-area", "comments", day),
                                            ],
                                        )],
                                    ),
                                    el(
                                        "aside",
                                        &[
                                            ("id", "secondary"),
                                            ("class", "widget-area"),
                                            ("role", "complementary"),
                                        ],
                                        vec![
                                            tag_cloud("section", "widget widget_tag_cloud", false),
                                            recent("section", "widget widget_recent_entries", day),
                                        ],
                                    ),
                                ],
                            )],
                        )],
                    ),
                    site_footer("footer", "site-footer"),
                ],
            );
            el(
                "html",
                &[("lang", "en")],
                html_kids(
                    style,
                    body_el(&format!("{wp_body} has-sidebar colors-light"), vec![page]),
                ),
            )
        }
        Layout::BlockTheme => {
            let main = el(
                "main",
                &[("class", "wp-block-group"), ("style", "margin-top:0")],
                vec![
                    el(
                        "div",
                        &[("class", "wp-block-group alignfull")],
                        vec![
                            el("h1", &[("class", "wp-block-post-title")], vec![t(title)]),
                            el(
                                "div",
                                &[("class", "wp-block-post-date")],
                                vec![el(
                                    "time",
                                    &[("datetime", &machine(day, 18))],
                                    vec![t(&human_date(day, form))],
                                )],
                            ),
                        ],
                    ),
                    el(
                        "div",
                        &[(
                            "class",
                            "entry-content wp-block-post-content is-layout-constrained",
                        )],
                        body_kids,
                    ),
                    el(
                        "div",
                        &[("class", "wp-block-group")],
                        vec![
                            el(
                                "div",
                                &[("class", "taxonomy-category wp-block-post-terms")],
                                join_commas(cats),
                            ),
                            el(
                                "div",
                                &[("class", "taxonomy-post_tag wp-block-post-terms")],
                                join_commas(tags),
                            ),
                        ],
                    ),
                    el(
                        "div",
                        &[("class", "wp-block-comments")],
                        vec![comments("wp-block-comment-template", "comments", day)],
                    ),
                    el(
                        "div",
                        &[("class", "wp-block-query")],
                        vec![el(
                            "ul",
                            &[("class", "wp-block-post-template")],
                            vec![el(
                                "li",
                                &[(
                                    "class",
                                    "wp-block-post post-7 post type-post hentry category-latin",
                                )],
                                vec![
                                    el(
                                        "h2",
                                        &[("class", "wp-block-post-title")],
                                        vec![el(
                                            "a",
                                            &[("href", "/latin-nights/")],
                                            vec![t("Latin Nights")],
                                        )],
                                    ),
                                    el(
                                        "div",
                                        &[("class", "wp-block-post-date")],
                                        vec![el(
                                            "time",
                                            &[("datetime", "2019-05-05T10:00:00+00:00")],
                                            vec![t("May 5, 2019")],
                                        )],
                                    ),
                                ],
                            )],
                        )],
                    ),
                ],
            );
            let page = el(
                "div",
                &[("class", "wp-site-blocks")],
                vec![
                    el(
                        "header",
                        &[("class", "wp-block-template-part")],
                        vec![
                            el("p", &[("class", "wp-block-site-title")], vec![t(SITE)]),
                            menu("wp-block-navigation"),
                        ],
                    ),
                    main,
                    site_footer("footer", "wp-block-template-part"),
                ],
            );
            el(
                "html",
                &[("lang", "en")],
                html_kids(
                    style,
                    body_el(
                        &format!("wp-singular {wp_body} wp-theme-twentytwentyfour"),
                        vec![page],
                    ),
                ),
            )
        }
        Layout::Astra => {
            let article = el(
                "article",
                &[
                    ("id", "post-41"),
                    ("class", &format!("{cat_class} ast-article-single")),
                    ("itemtype", "https://schema.org/CreativeWork"),
                    ("itemscope", "itemscope"),
                ],
                vec![el(
                    "div",
                    &[("class", "ast-post-format- single-layout-1")],
                    vec![
                        el(
                            "header",
                            &[("class", "entry-header")],
                            vec![
                                el(
                                    "h1",
                                    &[("class", "entry-title"), ("itemprop", "headline")],
                                    vec![t(title)],
                                ),
                                el(
                                    "div",
                                    &[("class", "entry-meta")],
                                    vec![
                                        el(
                                            "span",
                                            &[("class", "posted-on")],
                                            vec![
                                                el(
                                                    "span",
                                                    &[
                                                        ("class", "published"),
                                                        ("itemprop", "datePublished"),
                                                    ],
                                                    vec![t(&human_date(day, form))],
                                                ),
                                                el(
                                                    "span",
                                                    &[
                                                        ("class", "updated"),
                                                        ("itemprop", "dateModified"),
                                                    ],
                                                    vec![t(&human_date(
                                                        day + chrono::Days::new(3),
                                                        form,
                                                    ))],
                                                ),
                                            ],
                                        ),
                                        t(" / "),
                                        el("span", &[("class", "cat-links")], join_commas(cats)),
                                    ],
                                ),
                            ],
                        ),
                        el(
                            "div",
                            &[("class", "entry-content clear"), ("itemprop", "text")],
                            body_kids,
                        ),
                        el(
                            "footer",
                            &[("class", "entry-footer")],
                            vec![el("span", &[("class", "tags-links")], join_commas(tags))],
                        ),
                    ],
                )],
            );
            let page = el(
                "div",
                &[("id", "page"), ("class", "hfeed site")],
                vec![
                    el(
                        "header",
                        &[
                            ("id", "masthead"),
                            ("class", "site-header header-main-layout-1"),
                        ],
                        vec![
                            el(
                                "div",
                                &[("class", "ast-site-identity")],
                                vec![el("span", &[("class", "site-title")], vec![t(SITE)])],
                            ),
                            menu("main-header-bar-navigation"),
                        ],
                    ),
                    el(
                        "div",
                        &[("id", "content"), ("class", "site-content")],
                        vec![el(
                            "div",
                            &[("class", "ast-container")],
                            vec![
                                el(
                                    "div",
                                    &[("id", "primary"), ("class", "content-area primary")],
                                    vec![el(
                                        "main",
                                        &[("id", "main"), ("class", "site-main")],
                                        vec![
                                            article,
                                            el(
                                                "div",
                                                &[("class", "ast-single-related-posts-container")],
                                                vec![el(
                                                    "article",
                                                    &[(
                                                        "class",
                                                        "ast-related-post post-9 post type-post hentry",
                                                    )],
                                                    vec![
                                                        el(
                                                            "h3",
                                                            &[(
                                                                "class",
                                                                "ast-related-post-title entry-title",
                                                            )],
                                                            vec![el(
                                                                "a",
                                                                &[("href", "/afro-house-weekly/")],
                                                                vec![t("Afro House Weekly")],
                                                            )],
                                                        ),
                                                        el(
                                                            "div",
                                                            &[("class", "entry-content")],
                                                            vec![el(
                                                                "p",
                                                                &[],
                                                                vec![t("Funky and Melodic picks.")],
                                                            )],
                                                        ),
                                                    ],
                                                )],
                                            ),
                                            comments("comments-area", "comments", day),
                                        ],
                                    )],
                                ),
                                el(
                                    "div",
                                    &[("id", "secondary"), ("class", "widget-area secondary")],
                                    vec![el(
                                        "div",
                                        &[("class", "sidebar-main")],
                                        vec![
                                            tag_cloud("aside", "widget widget_tag_cloud", false),
                                            recent("aside", "widget widget_recent_entries", day),
                                        ],
                                    )],
                                ),
                            ],
                        )],
                    ),
                    site_footer("footer", "site-footer"),
                ],
            );
            el(
                "html",
                &[("lang", "en-US")],
                html_kids(
                    style,
                    body_el(
                        &format!("{wp_body} ast-single-post ast-right-sidebar astra-4.6"),
                        vec![page],
                    ),
                ),
            )
        }
        Layout::GeneratePress => {
            let article = el(
                "article",
                &[
                    ("id", "post-41"),
                    ("class", &cat_class),
                    ("itemtype", "https://schema.org/CreativeWork"),
                    ("itemscope", ""),
                ],
                vec![el(
                    "div",
                    &[("class", "inside-article")],
                    vec![
                        el(
                            "header",
                            &[("class", "entry-header")],
                            vec![
                                el(
                                    "h1",
                                    &[("class", "entry-title"), ("itemprop", "headline")],
                                    vec![t(title)],
                                ),
                                el(
                                    "div",
                                    &[("class", "entry-meta")],
                                    vec![
                                        el(
                                            "span",
                                            &[("class", "posted-on")],
                                            vec![el(
                                                "time",
                                                &[
                                                    ("class", "entry-date published"),
                                                    ("datetime", &machine(day, 7)),
                                                    ("itemprop", "datePublished"),
                                                ],
                                                vec![t(&human_date(day, form))],
                                            )],
                                        ),
                                        t(" "),
                                        el(
                                            "span",
                                            &[("class", "byline")],
                                            vec![
                                                t("by "),
                                                el(
                                                    "span",
                                                    &[("class", "author vcard")],
                                                    vec![t("selector")],
                                                ),
                                            ],
                                        ),
                                    ],
                                ),
                            ],
                        ),
                        el(
                            "div",
                            &[("class", "entry-content"), ("itemprop", "text")],
                            body_kids,
                        ),
                        el(
                            "footer",
                            &[("class", "entry-meta"), ("aria-label", "Entry meta")],
                            vec![
                                el(
                                    "span",
                                    &[("class", "cat-links")],
                                    [
                                        vec![el(
                                            "span",
                                            &[("class", "screen-reader-text")],
                                            vec![t("Categories ")],
                                        )],
                                        join_commas(cats),
                                    ]
                                    .concat(),
                                ),
                                t(" "),
                                el("span", &[("class", "tags-links")], join_commas(tags)),
                                el(
                                    "nav",
                                    &[("id", "nav-below"), ("class", "post-navigation")],
                                    vec![el(
                                        "a",
                                        &[("href", "/next-one/")],
                                        vec![t("Ambient Sunday")],
                                    )],
                                ),
                            ],
                        ),
                    ],
                )],
            );
            let page = el(
                "div",
                &[],
                vec![
                    el(
                        "header",
                        &[("class", "site-header"), ("id", "masthead")],
                        vec![el(
                            "div",
                            &[("class", "inside-header grid-container")],
                            vec![
                                el("p", &[("class", "main-title")], vec![t(SITE)]),
                                menu("main-navigation"),
                            ],
                        )],
                    ),
                    el(
                        "div",
                        &[
                            ("class", "site grid-container container hfeed"),
                            ("id", "page"),
                        ],
                        vec![el(
                            "div",
                            &[("class", "site-content"), ("id", "content")],
                            vec![
                                el(
                                    "div",
                                    &[("class", "content-area"), ("id", "primary")],
                                    vec![el(
                                        "main",
                                        &[("class", "site-main"), ("id", "main")],
                                        vec![article, comments("comments-area", "comments", day)],
                                    )],
                                ),
                                el(
                                    "div",
                                    &[
                                        ("class", "widget-area sidebar is-right-sidebar"),
                                        ("id", "right-sidebar"),
                                    ],
                                    vec![el(
                                        "div",
                                        &[("class", "inside-right-sidebar")],
                                        vec![
                                            tag_cloud(
                                                "aside",
                                                "widget inner-padding widget_tag_cloud",
                                                false,
                                            ),
                                            recent(
                                                "aside",
                                                "widget inner-padding widget_recent_entries",
                                                day,
                                            ),
                                        ],
                                    )],
                                ),
                            ],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "site-footer")],
                        vec![site_footer("footer", "site-info")],
                    ),
                ],
            );
            el(
                "html",
                &[("lang", "en-US")],
                html_kids(
                    style,
                    body_el(
                        &format!(
                            "{wp_body} wp-embed-responsive right-sidebar nav-float-right separate-containers"
                        ),
                        vec![page],
                    ),
                ),
            )
        }
        Layout::Newspaper => {
            let article = el(
                "article",
                &[
                    ("id", "post-41"),
                    ("class", &cat_class),
                    ("itemscope", ""),
                    ("itemtype", "https://schema.org/Article"),
                ],
                vec![
                    el(
                        "div",
                        &[("class", "td-post-header")],
                        vec![
                            el(
                                "ul",
                                &[("class", "td-category")],
                                cats.into_iter()
                                    .map(|c| el("li", &[("class", "entry-category")], vec![c]))
                                    .collect(),
                            ),
                            el(
                                "header",
                                &[("class", "td-post-title")],
                                vec![
                                    el("h1", &[("class", "entry-title")], vec![t(title)]),
                                    el(
                                        "div",
                                        &[("class", "td-module-meta-info")],
                                        vec![
                                            el(
                                                "div",
                                                &[("class", "td-post-author-name")],
                                                vec![t("By selector")],
                                            ),
                                            el(
                                                "span",
                                                &[("class", "td-post-date")],
                                                vec![el(
                                                    "time",
                                                    &[
                                                        (
                                                            "class",
                                                            "entry-date updated td-module-date",
                                                        ),
                                                        ("datetime", &machine(day, 12)),
                                                    ],
                                                    vec![t(&human_date(day, form))],
                                                )],
                                            ),
                                        ],
                                    ),
                                ],
                            ),
                        ],
                    ),
                    el(
                        "div",
                        &[("class", "td-post-sharing-top")],
                        vec![el(
                            "a",
                            &[("href", "https://twitter.com/share")],
                            vec![t("Share Latin")],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "td-post-content tagdiv-type")],
                        body_kids,
                    ),
                    el(
                        "footer",
                        &[],
                        vec![el(
                            "div",
                            &[("class", "td-post-source-tags")],
                            vec![el(
                                "ul",
                                &[("class", "td-tags td-post-small-box clearfix")],
                                [
                                    vec![el("li", &[], vec![el("span", &[], vec![t("TAGS")])])],
                                    tags.into_iter().map(|a| el("li", &[], vec![a])).collect(),
                                ]
                                .concat(),
                            )],
                        )],
                    ),
                ],
            );
            let page = el(
                "div",
                &[("id", "td-outer-wrap"), ("class", "td-theme-wrap")],
                vec![
                    el(
                        "div",
                        &[("class", "td-header-wrap td-header-style-1")],
                        vec![el(
                            "div",
                            &[("class", "td-header-menu-wrap-full")],
                            vec![menu("td-main-menu")],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "td-main-content-wrap td-container-wrap")],
                        vec![el(
                            "div",
                            &[("class", "td-container td-post-template-default")],
                            vec![
                                el(
                                    "div",
                                    &[("class", "td-crumb-container")],
                                    vec![el(
                                        "div",
                                        &[("class", "entry-crumbs")],
                                        vec![el(
                                            "a",
                                            &[("href", "/category/latin/")],
                                            vec![t("Latin")],
                                        )],
                                    )],
                                ),
                                el(
                                    "div",
                                    &[("class", "td-pb-row")],
                                    vec![
                                        el(
                                            "div",
                                            &[
                                                ("class", "td-pb-span8 td-main-content"),
                                                ("role", "main"),
                                            ],
                                            vec![el(
                                                "div",
                                                &[("class", "td-ss-main-content")],
                                                vec![
                                                    article,
                                                    el(
                                                        "div",
                                                        &[(
                                                            "class",
                                                            "td_block_wrap td_block_related_posts",
                                                        )],
                                                        vec![el(
                                                            "div",
                                                            &[(
                                                                "class",
                                                                "td_module_related_posts td-animation-stack",
                                                            )],
                                                            vec![el(
                                                                "h3",
                                                                &[(
                                                                    "class",
                                                                    "entry-title td-module-title",
                                                                )],
                                                                vec![el(
                                                                    "a",
                                                                    &[("href", "/ambient-sunday/")],
                                                                    vec![t("Ambient Sunday")],
                                                                )],
                                                            )],
                                                        )],
                                                    ),
                                                    comments("comments", "comments", day),
                                                ],
                                            )],
                                        ),
                                        el(
                                            "div",
                                            &[
                                                ("class", "td-pb-span4 td-main-sidebar"),
                                                ("role", "complementary"),
                                            ],
                                            vec![
                                                tag_cloud(
                                                    "aside",
                                                    "td_block_template_1 widget widget_tag_cloud",
                                                    false,
                                                ),
                                                recent(
                                                    "aside",
                                                    "td_block_template_1 widget widget_recent_entries",
                                                    day,
                                                ),
                                            ],
                                        ),
                                    ],
                                ),
                            ],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "td-footer-wrapper")],
                        vec![site_footer("div", "td-footer-bottom-full")],
                    ),
                ],
            );
            el(
                "html",
                &[("lang", "en-US")],
                html_kids(
                    style,
                    body_el(
                        &format!("{wp_body} td-standard-pack global-block-template-1"),
                        vec![page],
                    ),
                ),
            )
        }
        Layout::Blogger if spec.variant => {
            let article = el(
                "article",
                &[("class", "post-outer-container")],
                vec![
                    el(
                        "div",
                        &[("class", "post-outer")],
                        vec![el(
                            "div",
                            &[("class", "post")],
                            vec![
                                el("h3", &[("class", "post-title entry-title")], vec![t(title)]),
                                el(
                                    "div",
                                    &[("class", "post-header")],
                                    vec![el(
                                        "div",
                                        &[("class", "post-header-line-1")],
                                        vec![el(
                                            "span",
                                            &[("class", "byline post-timestamp")],
                                            vec![el(
                                                "a",
                                                &[
                                                    ("class", "timestamp-link"),
                                                    ("href", &spec.path),
                                                    ("rel", "bookmark"),
                                                    ("title", "permanent link"),
                                                ],
                                                vec![el(
                                                    "time",
                                                    &[
                                                        ("class", "published"),
                                                        (
                                                            "datetime",
                                                            &format!(
                                                                "{}T14:20:00-08:00",
                                                                day.format("%Y-%m-%d")
                                                            ),
                                                        ),
                                                        (
                                                            "title",
                                                            &format!(
                                                                "{}T14:20:00-08:00",
                                                                day.format("%Y-%m-%d")
                                                            ),
                                                        ),
                                                    ],
                                                    vec![t(&day.format("%B %d, %Y").to_string())],
                                                )],
                                            )],
                                        )],
                                    )],
                                ),
                                el(
                                    "div",
                                    &[("class", "post-body-container")],
                                    vec![el(
                                        "div",
                                        &[
                                            ("class", "post-body entry-content float-container"),
                                            ("id", "post-body-4410"),
                                        ],
                                        body_kids,
                                    )],
                                ),
                                el(
                                    "div",
                                    &[("class", "post-footer")],
                                    vec![el(
                                        "div",
                                        &[("class", "post-footer-line post-footer-line-1")],
                                        vec![el(
                                            "span",
                                            &[("class", "byline post-labels")],
                                            [
                                                vec![el(
                                                    "span",
                                                    &[("class", "byline-label")],
                                                    vec![t("Labels:")],
                                                )],
                                                labels,
                                            ]
                                            .concat(),
                                        )],
                                    )],
                                ),
                            ],
                        )],
                    ),
                    el(
                        "section",
                        &[("class", "comments embed"), ("id", "comments")],
                        vec![comments("comment-thread", "comment-holder", day)],
                    ),
                ],
            );
            let page = el(
                "div",
                &[("class", "page")],
                vec![el(
                    "div",
                    &[("class", "page_body")],
                    vec![el(
                        "div",
                        &[("class", "centered")],
                        vec![
                            el(
                                "header",
                                &[("class", "centered-top-container")],
                                vec![
                                    el("h1", &[("class", "title")], vec![t(SITE)]),
                                    menu("centered-top"),
                                ],
                            ),
                            el(
                                "main",
                                &[
                                    ("class", "centered-bottom"),
                                    ("id", "main"),
                                    ("role", "main"),
                                ],
                                vec![el(
                                    "div",
                                    &[("class", "main section"), ("id", "page_body")],
                                    vec![el(
                                        "div",
                                        &[("class", "widget Blog"), ("id", "Blog1")],
                                        vec![el(
                                            "div",
                                            &[("class", "blog-posts hfeed container")],
                                            vec![article],
                                        )],
                                    )],
                                )],
                            ),
                            el(
                                "aside",
                                &[
                                    ("class", "sidebar-container container sidebar-invisible"),
                                    ("role", "complementary"),
                                ],
                                vec![
                                    tag_cloud("div", "widget Label", true),
                                    recent("div", "widget PopularPosts", day),
                                ],
                            ),
                            site_footer("footer", "footer"),
                        ],
                    )],
                )],
            );
            el(
                "html",
                &[("dir", "ltr")],
                html_kids(
                    style,
                    body_el("version-1-3-3 variant-indie_light", vec![page]),
                ),
            )
        }
        Layout::Blogger => {
            let id = "post-body-4410";
            let stamp = if form.is_multiple_of(2) {
                el(
                    "abbr",
                    &[
                        ("class", "published"),
                        ("itemprop", "datePublished"),
                        (
                            "title",
                            &format!("{}T14:20:00-08:00", day.format("%Y-%m-%d")),
                        ),
                    ],
                    vec![t("2:20 PM")],
                )
            } else {
                el("span", &[("class", "timestamp-text")], vec![t("2:20 PM")])
            };
            let post = el(
                "div",
                &[("class", "post-outer")],
                vec![el(
                    "div",
                    &[
                        ("class", "post hentry uncustomized-post-template"),
                        ("itemprop", "blogPost"),
                        ("itemscope", "itemscope"),
                        ("itemtype", "http://schema.org/BlogPosting"),
                    ],
                    vec![
                        el(
                            "h3",
                            &[("class", "post-title entry-title"), ("itemprop", "name")],
                            vec![t(title)],
                        ),
                        el(
                            "div",
                            &[("class", "post-header")],
                            vec![el("div", &[("class", "post-header-line-1")], vec![])],
                        ),
                        el(
                            "div",
                            &[
                                ("class", "post-body entry-content"),
                                ("id", id),
                                ("itemprop", "description articleBody"),
                            ],
                            body_kids,
                        ),
                        el(
                            "div",
                            &[("class", "post-footer")],
                            vec![
                                el(
                                    "div",
                                    &[("class", "post-footer-line post-footer-line-1")],
                                    vec![
                                        el(
                                            "span",
                                            &[("class", "post-author vcard")],
                                            vec![t("Posted by selector")],
                                        ),
                                        el(
                                            "span",
                                            &[("class", "post-timestamp")],
                                            vec![
                                                t(" at "),
                                                el(
                                                    "a",
                                                    &[
                                                        ("class", "timestamp-link"),
                                                        ("href", &spec.path),
                                                        ("rel", "bookmark"),
                                                        ("title", "permanent link"),
                                                    ],
                                                    vec![stamp],
                                                ),
                                            ],
                                        ),
                                        el(
                                            "span",
                                            &[("class", "post-comment-link")],
                                            vec![el(
                                                "a",
                                                &[("href", "#comments")],
                                                vec![t("2 comments")],
                                            )],
                                        ),
                                    ],
                                ),
                                el(
                                    "div",
                                    &[("class", "post-footer-line post-footer-line-2")],
                                    vec![el(
                                        "span",
                                        &[("class", "post-labels")],
                                        [vec![t("Labels: ")], join_commas(labels)].concat(),
                                    )],
                                ),
                            ],
                        ),
                    ],
                )],
            );
            let page = el(
                "div",
                &[("class", "content-outer")],
                vec![
                    el(
                        "header",
                        &[],
                        vec![el(
                            "div",
                            &[("class", "header section"), ("id", "header")],
                            vec![el(
                                "div",
                                &[("class", "widget Header"), ("id", "Header1")],
                                vec![el(
                                    "h1",
                                    &[("class", "title")],
                                    vec![el("a", &[("href", "/")], vec![t(SITE)])],
                                )],
                            )],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "tabs-outer")],
                        vec![el(
                            "div",
                            &[("class", "widget PageList"), ("id", "PageList1")],
                            vec![menu("tabs")],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "main-outer")],
                        vec![el(
                            "div",
                            &[("class", "main section"), ("id", "main")],
                            vec![el(
                                "div",
                                &[("class", "widget Blog"), ("id", "Blog1")],
                                vec![
                                    el(
                                        "div",
                                        &[("class", "blog-posts hfeed")],
                                        vec![el(
                                            "div",
                                            &[("class", "date-outer")],
                                            vec![
                                                el(
                                                    "h2",
                                                    &[("class", "date-header")],
                                                    vec![el(
                                                        "span",
                                                        &[],
                                                        vec![t(&human_date(day, 4))],
                                                    )],
                                                ),
                                                el("div", &[("class", "date-posts")], vec![post]),
                                            ],
                                        )],
                                    ),
                                    comments("comments", "comments", day),
                                    el(
                                        "div",
                                        &[("class", "blog-pager"), ("id", "blog-pager")],
                                        vec![el(
                                            "a",
                                            &[
                                                ("class", "blog-pager-older-link"),
                                                ("href", "/2019/01/older.html"),
                                            ],
                                            vec![t("Older Post")],
                                        )],
                                    ),
                                ],
                            )],
                        )],
                    ),
                    el(
                        "div",
                        &[("class", "sidebar section"), ("id", "sidebar-right-1")],
                        vec![
                            tag_cloud("div", "widget Label", true),
                            recent("div", "widget PopularPosts", day),
                        ],
                    ),
                    site_footer("footer", "footer-outer"),
                ],
            );
            el(
                "html",
                &[("class", "v2"), ("dir", "ltr")],
                html_kids(style, body_el("variant-indie item-view", vec![page])),
            )
        }
        Layout::Elementor => {
            let widget = |kind: &str, kids: Vec<N>| {
                el(
                    "div",
                    &[
                        (
                            "class",
                            &format!(
                                "elementor-element elementor-element-3f2a elementor-widget elementor-widget-{kind}"
                            ),
                        ),
                        ("data-widget_type", &format!("{kind}.default")),
                    ],
                    vec![el("div", &[("class", "elementor-widget-container")], kids)],
                )
            };
            let info = widget(
                "post-info",
                vec![el(
                    "ul",
                    &[(
                        "class",
                        "elementor-inline-items elementor-icon-list-items elementor-post-info",
                    )],
                    vec![
                        el(
                            "li",
                            &[
                                (
                                    "class",
                                    "elementor-icon-list-item elementor-repeater-item-1a",
                                ),
                                ("itemprop", "datePublished"),
                            ],
                            vec![el(
                                "span",
                                &[(
                                    "class",
                                    "elementor-icon-list-text elementor-post-info__item elementor-post-info__item--type-date",
                                )],
                                vec![t(&human_date(day, form))],
                            )],
                        ),
                        el(
                            "li",
                            &[
                                (
                                    "class",
                                    "elementor-icon-list-item elementor-repeater-item-2b",
                                ),
                                ("itemprop", "about"),
                            ],
                            vec![el(
                                "span",
                                &[(
                                    "class",
                                    "elementor-icon-list-text elementor-post-info__item elementor-post-info__item--type-terms",
                                )],
                                vec![el(
                                    "span",
                                    &[("class", "elementor-post-info__terms-list")],
                                    join_commas(cats),
                                )],
                            )],
                        ),
                    ],
                )],
            );
            let single = el(
                "div",
                &[
                    ("data-elementor-type", "single-post"),
                    ("data-elementor-id", "321"),
                    (
                        "class",
                        &format!("elementor elementor-321 elementor-location-single {cat_class}"),
                    ),
                ],
                vec![el(
                    "section",
                    &[(
                        "class",
                        "elementor-section elementor-top-section elementor-element",
                    )],
                    vec![el(
                        "div",
                        &[("class", "elementor-container elementor-column-gap-default")],
                        vec![
                            el(
                                "div",
                                &[(
                                    "class",
                                    "elementor-column elementor-col-66 elementor-top-column",
                                )],
                                vec![el(
                                    "div",
                                    &[(
                                        "class",
                                        "elementor-widget-wrap elementor-element-populated",
                                    )],
                                    vec![
                                        widget(
                                            "theme-post-title",
                                            vec![el(
                                                "h1",
                                                &[(
                                                    "class",
                                                    "elementor-heading-title elementor-size-default",
                                                )],
                                                vec![t(title)],
                                            )],
                                        ),
                                        info,
                                        widget("theme-post-content", body_kids),
                                        widget(
                                            "post-info",
                                            vec![el(
                                                "span",
                                                &[("class", "elementor-post-info__terms-list")],
                                                join_commas(tags),
                                            )],
                                        ),
                                        widget(
                                            "posts",
                                            vec![el(
                                                "article",
                                                &[(
                                                    "class",
                                                    "elementor-post post-8 post type-post hentry",
                                                )],
                                                vec![
                                                    el(
                                                        "h3",
                                                        &[("class", "elementor-post__title")],
                                                        vec![el(
                                                            "a",
                                                            &[("href", "/latin-nights/")],
                                                            vec![t("Latin Nights")],
                                                        )],
                                                    ),
                                                    el(
                                                        "span",
                                                        &[("class", "elementor-post-date")],
                                                        vec![t("May 5, 2019")],
                                                    ),
                                                    el(
                                                        "a",
                                                        &[(
                                                            "href",
                                                            "https://mega.nz/file/elementor-related",
                                                        )],
                                                        vec![t("FLAC")],
                                                    ),
                                                ],
                                            )],
                                        ),
                                        widget(
                                            "post-comments",
                                            vec![comments("comments-area", "comments", day)],
                                        ),
                                    ],
                                )],
                            ),
                            el(
                                "div",
                                &[(
                                    "class",
                                    "elementor-column elementor-col-33 elementor-top-column",
                                )],
                                vec![el(
                                    "div",
                                    &[("class", "elementor-widget-wrap")],
                                    vec![
                                        widget(
                                            "sidebar",
                                            vec![tag_cloud(
                                                "section",
                                                "widget widget_tag_cloud",
                                                false,
                                            )],
                                        ),
                                        widget(
                                            "wp-widget-recent-posts",
                                            vec![recent("div", "recent-posts", day)],
                                        ),
                                    ],
                                )],
                            ),
                        ],
                    )],
                )],
            );
            let page = vec![
                el(
                    "header",
                    &[
                        ("data-elementor-type", "header"),
                        ("class", "elementor elementor-12 elementor-location-header"),
                    ],
                    vec![widget("nav-menu", vec![menu("elementor-nav-menu--main")])],
                ),
                single,
                el(
                    "footer",
                    &[
                        ("data-elementor-type", "footer"),
                        ("class", "elementor elementor-13 elementor-location-footer"),
                    ],
                    vec![site_footer("div", "elementor-widget-text-editor")],
                ),
            ];
            el(
                "html",
                &[("lang", "en-US")],
                html_kids(
                    style,
                    body_el(
                        &format!(
                            "{wp_body} elementor-default elementor-template-full-width elementor-page-321"
                        ),
                        page,
                    ),
                ),
            )
        }
    };
    style.render(&tree)
}

/// An entry on a listing page: title linking to the post, date, excerpt.
fn entry(layout: Layout, path: &str, title: &str, day: NaiveDate) -> N {
    let excerpt = el("p", &[], vec![t(FILLER[path.len() % FILLER.len()])]);
    match layout {
        Layout::Blogger => el(
            "div",
            &[("class", "date-outer")],
            vec![
                el(
                    "h2",
                    &[("class", "date-header")],
                    vec![el("span", &[], vec![t(&human_date(day, 4))])],
                ),
                el(
                    "div",
                    &[("class", "post-outer")],
                    vec![el(
                        "div",
                        &[("class", "post hentry"), ("itemprop", "blogPost")],
                        vec![
                            el(
                                "h3",
                                &[("class", "post-title entry-title")],
                                vec![el("a", &[("href", path)], vec![t(title)])],
                            ),
                            el(
                                "div",
                                &[("class", "post-body entry-content")],
                                vec![excerpt],
                            ),
                        ],
                    )],
                ),
            ],
        ),
        Layout::BlockTheme => el(
            "li",
            &[(
                "class",
                "wp-block-post post-3 post type-post status-publish hentry",
            )],
            vec![
                el(
                    "h2",
                    &[("class", "wp-block-post-title")],
                    vec![el("a", &[("href", path)], vec![t(title)])],
                ),
                el(
                    "div",
                    &[("class", "wp-block-post-date")],
                    vec![el(
                        "time",
                        &[("datetime", &machine(day, 9))],
                        vec![t(&human_date(day, 0))],
                    )],
                ),
                el("div", &[("class", "wp-block-post-excerpt")], vec![excerpt]),
            ],
        ),
        Layout::Elementor => el(
            "article",
            &[(
                "class",
                "elementor-post elementor-grid-item post-3 post type-post",
            )],
            vec![
                el(
                    "h3",
                    &[("class", "elementor-post__title")],
                    vec![el("a", &[("href", path)], vec![t(title)])],
                ),
                el(
                    "div",
                    &[("class", "elementor-post__meta-data")],
                    vec![el(
                        "span",
                        &[("class", "elementor-post-date")],
                        vec![t(&human_date(day, 0))],
                    )],
                ),
                el(
                    "div",
                    &[("class", "elementor-post__excerpt")],
                    vec![excerpt],
                ),
            ],
        ),
        _ => el(
            "article",
            &[(
                "class",
                "post-3 post type-post status-publish format-standard hentry",
            )],
            vec![
                el(
                    "header",
                    &[("class", "entry-header")],
                    vec![
                        el(
                            "h2",
                            &[("class", "entry-title")],
                            vec![el(
                                "a",
                                &[("href", path), ("rel", "bookmark")],
                                vec![t(title)],
                            )],
                        ),
                        el(
                            "div",
                            &[("class", "entry-meta")],
                            vec![el(
                                "time",
                                &[
                                    ("class", "entry-date published"),
                                    ("datetime", &machine(day, 9)),
                                ],
                                vec![t(&human_date(day, 0))],
                            )],
                        ),
                    ],
                ),
                el("div", &[("class", "entry-summary")], vec![excerpt]),
            ],
        ),
    }
}

/// A page in the layout's frame: header with menu, `content`, sidebar, footer.
fn framed(
    layout: Layout,
    title: &str,
    body_class: &str,
    content: Vec<N>,
    style: &mut Style,
    with_sidebar: bool,
) -> String {
    let day = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut kids = vec![el(
        "header",
        &[("class", "site-header"), ("id", "masthead")],
        vec![
            el("p", &[("class", "site-title")], vec![t(SITE)]),
            menu("main-navigation"),
        ],
    )];
    let main = match layout {
        Layout::Blogger => el(
            "div",
            &[("class", "main-outer")],
            vec![el(
                "div",
                &[("class", "widget Blog"), ("id", "Blog1")],
                vec![el("div", &[("class", "blog-posts hfeed")], content)],
            )],
        ),
        Layout::BlockTheme => el("main", &[("class", "wp-block-group")], content),
        Layout::Elementor => el(
            "div",
            &[
                ("data-elementor-type", "archive"),
                ("class", "elementor elementor-location-archive"),
            ],
            vec![el(
                "div",
                &[("class", "elementor-widget elementor-widget-archive-posts")],
                vec![el(
                    "div",
                    &[("class", "elementor-widget-container")],
                    content,
                )],
            )],
        ),
        _ => el(
            "div",
            &[("id", "primary"), ("class", "content-area")],
            vec![el(
                "main",
                &[("id", "main"), ("class", "site-main")],
                content,
            )],
        ),
    };
    kids.push(main);
    if with_sidebar {
        kids.push(el(
            "aside",
            &[("class", "widget-area sidebar")],
            vec![
                tag_cloud("section", "widget widget_tag_cloud", layout.is_blogger()),
                recent("section", "widget", day),
            ],
        ));
    }
    kids.push(site_footer("footer", "site-footer"));
    let html = el("html", &[("lang", "en")], {
        let h = head(None, title, SITE, style, "website");
        let b = body_el(
            body_class,
            vec![el("div", &[("id", "page"), ("class", "site")], kids)],
        );
        vec![h, keep_body_class(b, style)]
    });
    style.render(&html)
}

fn listing_page(
    layout: Layout,
    heading: Option<&str>,
    posts: &[&PostSpec],
    body_class: &str,
    style: &mut Style,
) -> String {
    let mut content = Vec::new();
    if let Some(h) = heading {
        content.push(el(
            "header",
            &[("class", "page-header")],
            vec![el(
                "h1",
                &[("class", "page-title archive-title")],
                vec![t(h)],
            )],
        ));
    }
    let entries: Vec<N> = posts
        .iter()
        .map(|p| entry(layout, &p.path, &p.title, p.day))
        .collect();
    if layout == Layout::BlockTheme {
        content.push(el("ul", &[("class", "wp-block-post-template")], entries));
    } else {
        content.extend(entries);
    }
    framed(
        layout,
        heading.unwrap_or(SITE),
        body_class,
        content,
        style,
        true,
    )
}

fn static_page(layout: Layout, title: &str, text: &str, style: &mut Style) -> String {
    let body = el(
        "div",
        &[("class", "entry-content")],
        vec![
            el("p", &[], vec![t(text)]),
            el(
                "p",
                &[],
                vec![t("Write to us any time; we answer within a week.")],
            ),
        ],
    );
    let content = match layout {
        Layout::Blogger => vec![el(
            "div",
            &[("class", "post-outer")],
            vec![el(
                "div",
                &[("class", "post hentry")],
                vec![
                    el("h3", &[("class", "post-title entry-title")], vec![t(title)]),
                    el(
                        "div",
                        &[("class", "post-body entry-content")],
                        vec![el("p", &[], vec![t(text)])],
                    ),
                ],
            )],
        )],
        Layout::BlockTheme => vec![
            el("h1", &[("class", "wp-block-post-title")], vec![t(title)]),
            el(
                "div",
                &[("class", "entry-content wp-block-post-content")],
                vec![el("p", &[], vec![t(text)])],
            ),
        ],
        _ => vec![el(
            "article",
            &[("class", "post-2 page type-page status-publish hentry")],
            vec![
                el(
                    "header",
                    &[("class", "entry-header")],
                    vec![el("h1", &[("class", "entry-title")], vec![t(title)])],
                ),
                body,
            ],
        )],
    };
    framed(
        layout,
        title,
        "page-template-default page page-id-2",
        content,
        style,
        layout != Layout::Elementor,
    )
}

// ---------------------------------------------------------------- sites

fn make_post(layout: Layout, i: usize, rng: &mut fastrand::Rng, varied: bool) -> PostSpec {
    let day =
        NaiveDate::from_ymd_opt(2021 + rng.i32(0..4), rng.u32(1..13), rng.u32(1..29)).unwrap();
    let title = format!(
        "{} – {}",
        ARTISTS[(i + rng.usize(0..ARTISTS.len())) % ARTISTS.len()],
        RELEASES[(i * 3 + rng.usize(0..RELEASES.len())) % RELEASES.len()]
    );
    let places: &[Place] = if layout.is_blogger() {
        &[
            Place::Labels,
            Place::GenreLine,
            Place::StyleLine,
            Place::Body,
        ]
    } else {
        &[
            Place::Categories,
            Place::Tags,
            Place::GenreLine,
            Place::StyleLine,
            Place::Body,
        ]
    };
    let place = if varied {
        places[rng.usize(0..places.len())]
    } else {
        places[i % places.len()]
    };
    let mut genres: Vec<&'static str> = Vec::new();
    for _ in 0..rng.usize(1..3) {
        let g = GENRES[rng.usize(0..GENRES.len())].0;
        if !genres.contains(&g) {
            genres.push(g);
        }
    }
    let labels: [&str; 3] = ["FLAC", "MP3 320", "Download"];
    let label = labels[rng.usize(0..labels.len())];
    let links = (0..rng.usize(1..4))
        .map(|j| Link {
            url: format!(
                "{}{}{}x{j}",
                HOSTS[rng.usize(0..HOSTS.len())],
                slug(&title),
                day.ordinal()
            ),
            label,
        })
        .collect();
    let post_slug = format!("{}-{i}", slug(&title));
    let path = if layout.is_blogger() {
        format!("/{}/{:02}/{post_slug}.html", day.year(), day.month())
    } else if rng.bool() || !varied {
        format!(
            "/{}/{:02}/{:02}/{post_slug}/",
            day.year(),
            day.month(),
            day.day()
        )
    } else {
        format!("/{post_slug}/")
    };
    PostSpec {
        layout,
        path,
        title,
        day,
        genres,
        place,
        links,
        date_form: rng.usize(0..7),
        body_chrome: if varied {
            rng.bool()
        } else {
            i.is_multiple_of(3)
        },
        variant: if varied { rng.bool() } else { i % 2 == 1 },
    }
}

/// Posts and non-post pages of one layout (`varied`: also mixed into one blog
/// by `varied_site`).
fn layout_pages(
    layout: Layout,
    n_posts: usize,
    rng: &mut fastrand::Rng,
    style: &mut Style,
    varied: bool,
    prefix: &str,
) -> Vec<Page> {
    let mut pages = Vec::new();
    let posts: Vec<PostSpec> = (0..n_posts)
        .map(|i| {
            let mut p = make_post(layout, i, rng, varied);
            p.path = format!("{prefix}{}", p.path);
            p
        })
        .collect();
    for p in &posts {
        pages.push(Page {
            path: p.path.clone(),
            layout,
            kind: PageKind::Post(p.clone()),
            html: post_page(p, style),
        });
    }
    let refs: Vec<&PostSpec> = posts.iter().collect();
    let about = if layout.is_blogger() {
        format!("{prefix}/p/about.html")
    } else {
        format!("{prefix}/about-us/")
    };
    pages.push(Page {
        path: about,
        layout,
        kind: PageKind::About,
        html: static_page(layout, "About", "We post Drum and Bass, Deep House and Latin since March 4, 2012. Genre: everything good.", style),
    });
    pages.push(Page {
        path: format!("{prefix}/contact/"),
        layout,
        kind: PageKind::Contact,
        html: static_page(
            layout,
            "Contact",
            "Promos for Afro House and Ambient go to the address below, dated 2024-01-02.",
            style,
        ),
    });
    let first = &refs[..refs.len().min(3)];
    pages.push(Page {
        path: format!("{prefix}/genre/deep-house/"),
        layout,
        kind: PageKind::Archive("category"),
        html: listing_page(
            layout,
            Some("Category: Deep House"),
            first,
            "archive category category-deep-house",
            style,
        ),
    });
    pages.push(Page {
        path: format!("{prefix}/dj/selector/"),
        layout,
        kind: PageKind::Archive("author"),
        html: listing_page(
            layout,
            Some("Author: selector"),
            &refs[refs.len() - 2..],
            "archive author author-selector",
            style,
        ),
    });
    pages.push(Page {
        path: format!("{prefix}/search-results/deep-house/"),
        layout,
        kind: PageKind::Archive("search"),
        html: listing_page(
            layout,
            Some("Search Results for: deep house"),
            &refs[1..2],
            "search search-results",
            style,
        ),
    });
    // A date archive holding a single post: its URL has a date, its one entry
    // has a date and a title, and it is still a listing.
    let one = refs[0];
    pages.push(Page {
        path: format!("{prefix}/{}/{:02}/", one.day.year(), one.day.month()),
        layout,
        kind: PageKind::Archive("date"),
        html: listing_page(
            layout,
            Some(&format!("Month: {}", one.day.format("%B %Y"))),
            &[one],
            "archive date",
            style,
        ),
    });
    pages
}

fn home(layout: Layout, pages: &[Page], style: &mut Style, path: &str) -> Page {
    let posts: Vec<&PostSpec> = pages
        .iter()
        .filter_map(|p| match &p.kind {
            PageKind::Post(s) => Some(s),
            _ => None,
        })
        .collect();
    Page {
        path: path.to_string(),
        layout,
        kind: PageKind::Home,
        html: listing_page(layout, None, &posts, "home blog", style),
    }
}

/// One fixture site per layout, in canonical markup.
pub fn canonical(layout: Layout) -> Site {
    let mut rng = fastrand::Rng::with_seed(1000 + layout as u64);
    let mut style = Style::canonical();
    let mut pages = layout_pages(layout, 10, &mut rng, &mut style, false, "");
    let h = home(layout, &pages, &mut style, "/");
    pages.push(h);
    Site {
        name: layout.name().to_string(),
        pages,
    }
}

/// An unseen blog mixing every layout, with every markup variation on.
pub fn varied_site(seed: u64, posts_per_layout: usize) -> Site {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pages = Vec::new();
    for (i, layout) in LAYOUTS.iter().enumerate() {
        let mut style = Style::varied(seed.wrapping_mul(31).wrapping_add(i as u64));
        let prefix = format!("/s{i}");
        pages.extend(layout_pages(
            *layout,
            posts_per_layout,
            &mut rng,
            &mut style,
            true,
            &prefix,
        ));
    }
    let mut style = Style::varied(seed ^ 0xabc);
    let h = home(LAYOUTS[(seed % 7) as usize], &pages, &mut style, "/");
    pages.push(h);
    Site {
        name: format!("unseen-{seed}"),
        pages,
    }
}
