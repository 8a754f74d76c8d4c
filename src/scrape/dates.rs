//! Post dates in the forms blogs print them.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};

/// A post date: always a calendar day, and the exact instant when the page
/// gave one (with its own UTC offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostDate {
    pub day: NaiveDate,
    pub instant: Option<DateTime<FixedOffset>>,
}

impl PostDate {
    pub fn day(day: NaiveDate) -> PostDate {
        PostDate { day, instant: None }
    }

    /// RFC 3339 when the time is known, `YYYY-MM-DD` otherwise.
    pub fn render(&self) -> String {
        match self.instant {
            Some(t) => t.to_rfc3339(),
            None => self.day.format("%Y-%m-%d").to_string(),
        }
    }
}

/// Machine-readable dates: `article:published_time`, `time[datetime]`,
/// sitemap `lastmod`, Atom `published`, RSS `pubDate`.
pub fn parse_machine(s: &str) -> Option<PostDate> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(PostDate {
            day: t.date_naive(),
            instant: Some(t),
        });
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(PostDate {
                day: t.date_naive(),
                instant: Some(t),
            });
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(PostDate {
            day: t.date_naive(),
            instant: Some(t),
        });
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(PostDate::day(t.date()));
        }
    }
    let head = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .ok()
        .map(PostDate::day)
}

/// `/YYYY/MM/DD/` in a URL path (WordPress permalinks).
pub fn from_url_day(path: &str) -> Option<NaiveDate> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(3).find_map(|w| {
        let y = parse_num(w[0], 4)?;
        let m = parse_num(w[1], 2)?;
        let d = parse_num(w[2], 2)?;
        NaiveDate::from_ymd_opt(y as i32, m, d)
    })
}

/// `/YYYY/MM/` in a URL path (Blogger permalinks): the first of that month.
pub fn from_url_month(path: &str) -> Option<NaiveDate> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(2).find_map(|w| {
        let y = parse_num(w[0], 4)?;
        let m = parse_num(w[1], 2)?;
        if !(1990..=2100).contains(&y) {
            return None;
        }
        NaiveDate::from_ymd_opt(y as i32, m, 1)
    })
}

fn parse_num(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn month(word: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let w = word.to_ascii_lowercase();
    let w = w.trim_end_matches('.');
    if w.len() < 3 {
        return None;
    }
    NAMES
        .iter()
        .position(|n| {
            *n == w || (w.len() >= 3 && n.starts_with(w) && (w.len() == 3 || w == "sept"))
        })
        .map(|i| i as u32 + 1)
}

fn day_num(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &w[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") || digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

/// The first human-written date in `text`: "March 4, 2024", "4th March 2024",
/// "Mar 4 2024", "2024-03-04", "04.03.2024" (day first).
pub fn from_text(text: &str) -> Option<NaiveDate> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(d) = iso_or_dotted(w) {
            return Some(d);
        }
        let year = |j: usize| -> Option<i32> {
            let y = words.get(j)?.trim_end_matches(['.', ';', ')']);
            parse_num(y, 4)
                .map(|y| y as i32)
                .filter(|y| (1990..=2100).contains(y))
        };
        if let Some(m) = month(w) {
            if let (Some(d), Some(y)) = (words.get(i + 1).and_then(|x| day_num(x)), year(i + 2))
                && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
            {
                return Some(date);
            }
        } else if let Some(d) = day_num(w) {
            let mut j = i + 1;
            if words.get(j).is_some_and(|x| x.eq_ignore_ascii_case("of")) {
                j += 1;
            }
            if let (Some(m), Some(y)) = (words.get(j).and_then(|x| month(x)), year(j + 1))
                && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
            {
                return Some(date);
            }
        }
    }
    None
}

fn iso_or_dotted(w: &str) -> Option<NaiveDate> {
    let w = w.trim_matches(|c: char| !c.is_ascii_digit());
    if w.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(w, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(w, "%d.%m.%Y"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn machine_dates_keep_their_offset() {
        let p = parse_machine("2024-03-04T23:30:00+02:00").unwrap();
        assert_eq!(p.day, d(2024, 3, 4));
        assert_eq!(p.render(), "2024-03-04T23:30:00+02:00");
        let p = parse_machine("2024-03-04T23:30:00-0500").unwrap();
        assert_eq!(p.instant.unwrap().offset().local_minus_utc(), -5 * 3600);
        assert_eq!(
            parse_machine("Mon, 04 Mar 2024 10:00:00 +0000")
                .unwrap()
                .day,
            d(2024, 3, 4)
        );
        assert_eq!(parse_machine("2024-03-04").unwrap().render(), "2024-03-04");
        assert_eq!(
            parse_machine("2024-03-04 10:11:12").unwrap().day,
            d(2024, 3, 4)
        );
        assert!(parse_machine("yesterday").is_none());
    }

    #[test]
    fn url_dates() {
        assert_eq!(from_url_day("/2023/11/05/some-post/"), Some(d(2023, 11, 5)));
        assert_eq!(from_url_day("/2023/13/05/x/"), None);
        assert_eq!(
            from_url_month("/2023/11/some-post.html"),
            Some(d(2023, 11, 1))
        );
        assert_eq!(from_url_month("/1234/56/x"), None);
    }

    #[test]
    fn text_dates() {
        assert_eq!(
            from_text("Posted on Monday, March 4, 2024 by dj"),
            Some(d(2024, 3, 4))
        );
        assert_eq!(from_text("4th March 2024"), Some(d(2024, 3, 4)));
        assert_eq!(from_text("the 21st of Sept 2023"), Some(d(2023, 9, 21)));
        assert_eq!(from_text("Dec. 1, 2022"), Some(d(2022, 12, 1)));
        assert_eq!(from_text("released 2021-07-09."), Some(d(2021, 7, 9)));
        assert_eq!(from_text("am 09.07.2021"), Some(d(2021, 7, 9)));
        assert_eq!(from_text("may the 4th be with you, 320 kbps"), None);
    }
}
