//! robots.txt as RFC 9309 defines it: the group for our product token (or `*`),
//! longest-match rule wins, `Allow` wins a tie, `*` and `$` wildcards.

#[derive(Debug, Clone, Default)]
pub struct Robots {
    rules: Vec<Rule>,
    disallow_all: bool,
    /// `Sitemap:` lines, which are global to the file.
    pub sitemaps: Vec<String>,
    /// Why robots.txt could not be read, when that made everything disallowed.
    pub unavailable: Option<String>,
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

    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut sitemaps = Vec::new();
        // (agents of the group, rules), in file order.
        let mut groups: Vec<(Vec<String>, Vec<Rule>)> = Vec::new();
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
                        groups.push((Vec::new(), Vec::new()));
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
                "sitemap" => sitemaps.push(value.to_string()),
                _ => {}
            }
        }
        let ours: Vec<Rule> = groups
            .iter()
            .filter(|(agents, _)| {
                agents
                    .iter()
                    .any(|a| a != "*" && agent.contains(a.as_str()))
            })
            .flat_map(|(_, r)| r.iter().cloned())
            .collect();
        let has_ours = groups.iter().any(|(agents, _)| {
            agents
                .iter()
                .any(|a| a != "*" && agent.contains(a.as_str()))
        });
        let rules = if has_ours {
            ours
        } else {
            groups
                .iter()
                .filter(|(agents, _)| agents.iter().any(|a| a == "*"))
                .flat_map(|(_, r)| r.iter().cloned())
                .collect()
        };
        Robots {
            rules,
            sitemaps,
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
}
