//! robots.txt as RFC 9309 defines it: the group for our product token (or `*`),
//! longest-match rule wins, `Allow` wins a tie, `*` and `$` wildcards; plus
//! the non-standard but widespread `Crawl-delay` of the group that applies.

use std::time::Duration;

/// Longest `Crawl-delay` honoured: a larger value is capped rather than
/// letting one line stall a run for hours.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Default)]
pub struct Robots {
    rules: Vec<Rule>,
    disallow_all: bool,
    /// `Sitemap:` lines, which are global to the file.
    pub sitemaps: Vec<String>,
    /// Why robots.txt could not be read, when that made everything disallowed.
    pub unavailable: Option<String>,
    /// Set when robots.txt failed because the site itself could not be
    /// reached (connection, TLS or timeout): that error, not robots.txt, is
    /// what the user needs to see.
    pub unreachable: Option<super::FetchError>,
    /// Seconds to leave between requests to this host (`Crawl-delay`).
    pub crawl_delay: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    pattern: String,
}

impl Robots {
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// RFC 9309 §2.3.1.4: when robots.txt is unreachable for a server error,
    /// the crawler must assume a complete disallow.
    pub fn disallow_all(reason: String) -> Robots {
        Robots {
            disallow_all: true,
            unavailable: Some(reason),
            ..Robots::default()
        }
    }

    /// The site itself could not be reached while fetching robots.txt.
    pub fn unreachable(e: super::FetchError) -> Robots {
        Robots {
            unreachable: Some(e.clone()),
            ..Robots::disallow_all(e.to_string())
        }
    }

    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut sitemaps = Vec::new();
        // (agents of the group, rules, crawl delay), in file order.
        let mut groups: Vec<(Vec<String>, Vec<Rule>, Option<Duration>)> = Vec::new();
        let mut in_agent_lines = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !in_agent_lines {
                        groups.push((Vec::new(), Vec::new(), None));
                    }
                    in_agent_lines = true;
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agent_lines = false;
                    if let Some(g) = groups.last_mut()
                        && !value.is_empty()
                    {
                        g.1.push(Rule {
                            allow: key == "allow",
                            pattern: value.to_string(),
                        });
                    }
                }
                "crawl-delay" => {
                    in_agent_lines = false;
                    if let Some(g) = groups.last_mut()
                        && let Ok(secs) = value.parse::<f64>()
                        && secs.is_finite()
                        && secs > 0.0
                    {
                        g.2 = Some(Duration::from_secs_f64(secs).min(MAX_CRAWL_DELAY));
                    }
                }
                "sitemap" => sitemaps.push(value.to_string()),
                _ => {}
            }
        }
        let is_ours = |agents: &[String]| {
            agents
                .iter()
                .any(|a| a != "*" && agent.contains(a.as_str()))
        };
        let has_ours = groups.iter().any(|(agents, _, _)| is_ours(agents));
        let applies = |agents: &[String]| {
            if has_ours {
                is_ours(agents)
            } else {
                agents.iter().any(|a| a == "*")
            }
        };
        let rules = groups
            .iter()
            .filter(|(agents, _, _)| applies(agents))
            .flat_map(|(_, r, _)| r.iter().cloned())
            .collect();
        let crawl_delay = groups
            .iter()
            .filter(|(agents, _, _)| applies(agents))
            .filter_map(|(_, _, d)| *d)
            .max();
        Robots {
            rules,
            sitemaps,
            crawl_delay,
            ..Robots::default()
        }
    }

    /// `path` is the path plus query of the URL.
    pub fn allowed(&self, path: &str) -> bool {
        if self.disallow_all {
            return false;
        }
        if path == "/robots.txt" {
            return true;
        }
        let mut best: Option<(usize, bool)> = None;
        for rule in &self.rules {
            if pattern_matches(&rule.pattern, path) {
                let len = rule.pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, rule.allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut pat = pattern.as_bytes().to_vec();
    if !anchored {
        pat.push(b'*');
    }
    wildcard_match(&pat, path.as_bytes())
}

/// Iterative glob match where `*` is the only metacharacter.
fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &str = "\
User-agent: *
Disallow: /wp-admin/
Allow: /wp-admin/admin-ajax.php
Disallow: /*?s=
Disallow: /*.pdf$

User-agent: badbot
Disallow: /

Sitemap: https://blog.example/sitemap.xml
";

    #[test]
    fn star_group_applies_to_us() {
        let r = Robots::parse(TXT, "musicdex/0.1");
        assert!(r.allowed("/2024/01/02/post/"));
        assert!(!r.allowed("/wp-admin/options.php"));
        assert!(r.allowed("/wp-admin/admin-ajax.php"));
        assert!(!r.allowed("/?s=house"));
        assert!(!r.allowed("/files/a.pdf"));
        assert!(r.allowed("/files/a.pdf?x=1"));
        assert_eq!(r.sitemaps, vec!["https://blog.example/sitemap.xml"]);
    }

    #[test]
    fn specific_group_overrides_star() {
        let r = Robots::parse(TXT, "BadBot/2.0");
        assert!(!r.allowed("/anything"));
        let txt = "User-agent: musicdex\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n";
        let r = Robots::parse(txt, "musicdex/0.1");
        assert!(r.allowed("/public"));
        assert!(!r.allowed("/private/x"));
    }

    #[test]
    fn grouped_agents_and_empty_disallow() {
        let txt = "User-agent: a\nUser-agent: *\nDisallow:\n";
        assert!(Robots::parse(txt, "musicdex").allowed("/x"));
        assert!(!Robots::disallow_all("503".into()).allowed("/x"));
        assert!(Robots::allow_all().allowed("/x"));
    }

    #[test]
    fn crawl_delay_of_the_applying_group() {
        let txt =
            "User-agent: *\nCrawl-delay: 2.5\nDisallow: /x\n\nUser-agent: other\nCrawl-delay: 9\n";
        let r = Robots::parse(txt, "musicdex/0.1");
        assert_eq!(r.crawl_delay, Some(Duration::from_millis(2500)));
        assert!(!r.allowed("/x/y"));
        let r = Robots::parse(
            "User-agent: musicdex\nCrawl-delay: 1\n\nUser-agent: *\nCrawl-delay: 7\n",
            "musicdex/0.1",
        );
        assert_eq!(r.crawl_delay, Some(Duration::from_secs(1)));
        let r = Robots::parse(
            "User-agent: *\nCrawl-delay: 100000\nCrawl-delay: soon\n",
            "m",
        );
        assert_eq!(r.crawl_delay, Some(MAX_CRAWL_DELAY));
        assert_eq!(Robots::parse(TXT, "m").crawl_delay, None);
    }
}
