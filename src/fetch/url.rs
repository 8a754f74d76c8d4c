//! Absolute http(s) URLs and RFC 3986 reference resolution.
//!
//! `http::Uri` cannot resolve a relative `href` against a page, and the `url`
//! crate drags in the whole IDNA/ICU stack; blogs only need http(s) URLs with
//! ASCII hosts, so this small type covers it.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Url {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

impl Url {
    /// Parses an absolute `http` or `https` URL; anything else is `None`.
    pub fn parse(input: &str) -> Option<Url> {
        let s = input.trim();
        let colon = s.find(':')?;
        let scheme = s[..colon].to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let rest = s[colon + 1..].strip_prefix("//")?;
        let rest = rest.split('#').next().unwrap_or("");
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let authority = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = split_host_port(authority)?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c))
        {
            return None;
        }
        let tail = &rest[auth_end..];
        let (path, query) = match tail.find('?') {
            Some(q) => (&tail[..q], Some(&tail[q + 1..])),
            None => (tail, None),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        Some(Url {
            port: port.filter(|&p| p != default_port),
            scheme,
            host: host.to_ascii_lowercase(),
            path: normalize_path(if path.is_empty() { "/" } else { path }),
            query: query.map(encode_component),
        })
    }

    /// Resolves `reference` (an `href`, a `Location` header) against `self`.
    pub fn join(&self, reference: &str) -> Option<Url> {
        let r = reference.trim();
        let r = r.split('#').next().unwrap_or("");
        if let Some(colon) = r.find(':') {
            let scheme = &r[..colon];
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !r[..colon].contains('/')
            {
                return Url::parse(r);
            }
        }
        if let Some(rest) = r.strip_prefix("//") {
            return Url::parse(&format!("{}://{}", self.scheme, rest));
        }
        let mut out = self.clone();
        if r.is_empty() {
            return Some(out);
        }
        let (path, query) = match r.find('?') {
            Some(q) => (&r[..q], Some(&r[q + 1..])),
            None => (r, None),
        };
        if path.is_empty() {
            out.query = query.map(encode_component);
            return Some(out);
        }
        let merged = if path.starts_with('/') {
            path.to_string()
        } else {
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{path}")
        };
        out.path = normalize_path(&merged);
        out.query = query.map(encode_component);
        Some(out)
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// `scheme://host[:port]`, the unit robots.txt and connection limits apply to.
    pub fn origin(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{}", self.scheme, self.host, p),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    pub fn with_path_and_query(&self, path: &str, query: Option<&str>) -> Url {
        Url {
            path: normalize_path(path),
            query: query.map(encode_component),
            ..self.clone()
        }
    }

    /// True when both URLs belong to the same site, treating `www.` as the same host.
    pub fn same_site(&self, other: &Url) -> bool {
        fn bare(h: &str) -> &str {
            h.strip_prefix("www.").unwrap_or(h)
        }
        bare(&self.host) == bare(&other.host) && self.port == other.port
    }

    pub fn to_uri(&self) -> Option<hyper::Uri> {
        self.to_string().parse().ok()
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Url {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        let rest = &authority[end + 1..];
        return match rest.strip_prefix(':') {
            Some(p) if !p.is_empty() => Some((host, Some(p.parse().ok()?))),
            _ => Some((host, None)),
        };
    }
    match authority.rfind(':') {
        Some(i) if i + 1 < authority.len() => {
            Some((&authority[..i], Some(authority[i + 1..].parse().ok()?)))
        }
        Some(i) => Some((&authority[..i], None)),
        None => Some((authority, None)),
    }
}

/// Percent-encodes what `http::Uri` refuses (spaces, quotes, non-ASCII) and
/// leaves existing escapes alone, so a URL copied from HTML can be requested.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 §5.2.4 dot-segment removal plus encoding.
fn normalize_path(path: &str) -> String {
    let path = encode_component(path);
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *seg {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalizes() {
        let x = u("HTTPS://Blog.Example.COM:443/a/./b/../c?x=1#frag");
        assert_eq!(x.to_string(), "https://blog.example.com/a/c?x=1");
        assert_eq!(u("http://h:8080").to_string(), "http://h:8080/");
        assert_eq!(u("http://user:pw@h/p").host(), "h");
        assert_eq!(u("http://[::1]:99/x").origin(), "http://[::1]:99");
        assert!(Url::parse("mailto:a@b").is_none());
        assert!(Url::parse("ftp://h/").is_none());
        assert!(Url::parse("http://bad host/").is_none());
        assert_eq!(u("http://h/a b/é").path(), "/a%20b/%C3%A9");
    }

    #[test]
    fn resolves_references_per_rfc3986() {
        let base = u("http://a/b/c/d;p?q");
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../../g", "http://a/g"),
            ("https://other/x", "https://other/x"),
        ];
        for (r, want) in cases {
            assert_eq!(base.join(r).unwrap().to_string(), want, "ref {r:?}");
        }
        assert!(base.join("javascript:void(0)").is_none());
        assert!(base.join("mailto:x@y").is_none());
    }

    #[test]
    fn same_site_ignores_www() {
        assert!(u("https://www.blog.com/x").same_site(&u("https://blog.com/")));
        assert!(!u("https://blog.com/").same_site(&u("https://blog.org/")));
        assert!(u("https://blog.com/").to_uri().is_some());
    }
}
