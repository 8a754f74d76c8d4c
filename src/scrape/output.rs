//! The two output formats: JSON (an array of posts) and the replaced tool's
//! text report.

use std::io::{self, Write};

use super::{Post, Summary};

pub fn write_json(posts: &[Post], mut w: impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut w, posts)?;
    writeln!(w)
}

/// Per post: Title, URL, Genres, Matching Genres, Date, Download Links; then
/// every unique link, in groups of 20 (the size a download manager takes in
/// one paste).
pub fn write_text(posts: &[Post], mut w: impl Write) -> io::Result<()> {
    let rule = "-".repeat(80);
    for p in posts {
        writeln!(w, "Title: {}", p.title)?;
        writeln!(w, "URL: {}", p.url)?;
        writeln!(w, "Genres: {}", p.genres.join(", "))?;
        writeln!(w, "Matching Genres: {}", p.matching_genres.join(", "))?;
        writeln!(w, "Date: {}", p.date.as_deref().unwrap_or("unknown"))?;
        writeln!(w, "Download Links:")?;
        if p.download_links.is_empty() {
            writeln!(w, "  (none)")?;
        }
        for l in &p.download_links {
            writeln!(w, "  [{}] {} ({})", l.quality.label(), l.url, l.host)?;
        }
        writeln!(w, "{rule}")?;
    }
    let mut unique: Vec<&str> = Vec::new();
    for l in posts.iter().flat_map(|p| &p.download_links) {
        if !unique.contains(&l.url.as_str()) {
            unique.push(&l.url);
        }
    }
    writeln!(w)?;
    writeln!(w, "All unique download links: {}", unique.len())?;
    for (i, group) in unique.chunks(20).enumerate() {
        writeln!(w)?;
        writeln!(
            w,
            "Group {} (links {}-{}):",
            i + 1,
            i * 20 + 1,
            i * 20 + group.len()
        )?;
        for u in group {
            writeln!(w, "{u}")?;
        }
    }
    Ok(())
}

pub fn write_summary_human(s: &Summary, mut w: impl Write) -> io::Result<()> {
    writeln!(
        w,
        "listing pages {} · posts found {} · fetched {} · matched {} · links {} · errors {} · {:.2} s · {:.1} pages/s",
        s.listing_pages,
        s.posts_found,
        s.posts_fetched,
        s.posts_matched,
        s.links,
        s.errors,
        s.elapsed_secs,
        s.pages_per_sec
    )?;
    for e in s.error_details.iter().take(10) {
        writeln!(w, "  error: {} — {}", e.url, e.error)?;
    }
    if s.error_details.len() > 10 {
        writeln!(w, "  … and {} more errors", s.error_details.len() - 10)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::{DownloadLink, Quality};

    fn post(i: usize, links: usize) -> Post {
        Post {
            url: format!("https://b/{i}/"),
            title: format!("Post {i}"),
            date: Some("2024-01-02".into()),
            genres: vec!["House".into(), "Deep House".into()],
            matching_genres: vec!["house".into()],
            download_links: (0..links)
                .map(|j| DownloadLink {
                    url: format!("https://mega.nz/file/{i}-{j}"),
                    host: "mega.nz".into(),
                    quality: Quality::Flac,
                })
                .collect(),
            parsed_date: None,
            is_post: true,
        }
    }

    #[test]
    fn text_report_groups_links_by_twenty() {
        let posts: Vec<Post> = (0..5).map(|i| post(i, 9)).collect();
        let mut out = Vec::new();
        write_text(&posts, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Title: Post 0\nURL: https://b/0/\nGenres: House, Deep House\nMatching Genres: house\nDate: 2024-01-02\nDownload Links:\n  [FLAC] https://mega.nz/file/0-0 (mega.nz)"));
        assert!(s.contains("All unique download links: 45"));
        assert!(s.contains("Group 1 (links 1-20):"));
        assert!(s.contains("Group 3 (links 41-45):"));
        assert!(!s.contains("Group 4"));
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        write_json(&[post(1, 1)], &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let p = &v[0];
        for k in [
            "url",
            "title",
            "date",
            "genres",
            "matching_genres",
            "download_links",
        ] {
            assert!(p.get(k).is_some(), "{k}");
        }
        assert!(p.get("parsed_date").is_none());
        assert_eq!(p["download_links"][0]["quality"], "FLAC");
        assert_eq!(p["download_links"][0]["host"], "mega.nz");
    }
}
