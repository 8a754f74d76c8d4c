//! Genre matching on word boundaries, with aliases.
//!
//! Text is split into lowercase word tokens (letters and digits; `&` is a token
//! of its own), and a genre matches only as a whole run of tokens. So
//! "technology" never matches "techno", "warehouse" never matches "house" and
//! "platinum" never matches "latin", which substring matching got wrong.

use std::collections::HashMap;

/// The replaced tool's genre list, kept as the default.
pub const DEFAULT_GENRES: &[&str] = &[
    "house",
    "progressive house",
    "melodic",
    "indie dance",
    "bass house",
    "organic house",
    "drum and bass",
    "uk garage",
    "electro pop",
    "nu disco",
    "funky",
    "deep house",
    "tech house",
    "dance",
    "afro house",
    "brazilian",
    "latin",
    "electronica",
    "ambient",
];

/// (alias, canonical genre). Hyphens and apostrophes already split words, so
/// "nu-disco" and "drum'n'bass" need no entry of their own. Single common
/// words ("organic", "progressive", "funk") are left out on purpose: in body
/// text they mean something else far more often than a genre.
const ALIASES: &[(&str, &str)] = &[
    ("dnb", "drum and bass"),
    ("d&b", "drum and bass"),
    ("d n b", "drum and bass"),
    ("drum & bass", "drum and bass"),
    ("drum n bass", "drum and bass"),
    ("drumnbass", "drum and bass"),
    ("drum and base", "drum and bass"),
    ("ukg", "uk garage"),
    ("garage", "uk garage"),
    ("2 step", "uk garage"),
    ("2step", "uk garage"),
    ("prog", "progressive house"),
    ("prog house", "progressive house"),
    ("electropop", "electro pop"),
    ("synthpop", "electro pop"),
    ("synth pop", "electro pop"),
    ("nudisco", "nu disco"),
    ("deephouse", "deep house"),
    ("techhouse", "tech house"),
    ("afrohouse", "afro house"),
    ("indiedance", "indie dance"),
    ("brasil", "brazilian"),
    ("baile funk", "brazilian"),
];

/// Lowercase word tokens; `&` stands alone so "d&b" is `d & b`.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if c == '&' {
                out.push("&".to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `tokens` over already-lowercased text, borrowing instead of allocating,
/// with each token's joiner flag: true when a hyphen ties it to the next token
/// ("techno-logy", "nu-disco"), so a hyphenated word is matched as one word.
fn token_slices(lower: &str) -> (Vec<&str>, Vec<bool>) {
    let mut out = Vec::new();
    let mut joined = Vec::new();
    let mut start = None;
    let mut prev: Option<char> = None;
    for (i, c) in lower.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                // "a-b": the hyphen right before this token ties it to the previous one.
                if prev.is_some_and(is_hyphen)
                    && let Some(j) = joined.last_mut()
                    && hyphen_follows(lower, i)
                {
                    *j = true;
                }
                start = Some(i);
            }
        } else {
            if let Some(s) = start.take() {
                out.push(&lower[s..i]);
                joined.push(false);
            }
            if c == '&' {
                out.push(&lower[i..i + 1]);
                joined.push(false);
            }
        }
        prev = Some(c);
    }
    if let Some(s) = start {
        out.push(&lower[s..]);
        joined.push(false);
    }
    (out, joined)
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2011}')
}

/// True when the character before byte `i` is a hyphen that itself directly
/// follows a letter or digit (a word joiner, not a dash between spaces).
fn hyphen_follows(lower: &str, i: usize) -> bool {
    let mut back = lower[..i].chars().rev();
    back.next().is_some_and(is_hyphen) && back.next().is_some_and(char::is_alphanumeric)
}

/// The names in `names` that are neither a built-in genre nor an alias of one
/// (as written, for a warning: a typo there silently matches nothing).
pub fn unknown_names<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let known = |key: &str| {
        DEFAULT_GENRES
            .iter()
            .chain(ALIASES.iter().map(|(a, _)| a))
            .any(|k| tokens(k).join(" ") == key)
    };
    names
        .iter()
        .map(|n| n.as_ref().trim())
        .filter(|n| {
            let key = tokens(n).join(" ");
            !key.is_empty() && !known(&key)
        })
        .map(str::to_string)
        .collect()
}

#[derive(Debug, Clone)]
pub struct GenreMatcher {
    /// Canonical wanted genres, as the user wrote them (trimmed, lowercase).
    wanted: Vec<String>,
    /// First token → (pattern tokens, index into `wanted`).
    by_first: HashMap<String, Vec<(Vec<String>, usize)>>,
}

impl GenreMatcher {
    pub fn new<S: AsRef<str>>(wanted: &[S]) -> GenreMatcher {
        let mut list: Vec<String> = Vec::new();
        for g in wanted {
            let mut g = tokens(g.as_ref()).join(" ");
            // "--genres dnb" means drum and bass, with all its other spellings.
            if let Some((_, canonical)) = ALIASES.iter().find(|(a, _)| tokens(a).join(" ") == g) {
                g = canonical.to_string();
            }
            if !g.is_empty() && !list.contains(&g) {
                list.push(g);
            }
        }
        let mut by_first: HashMap<String, Vec<(Vec<String>, usize)>> = HashMap::new();
        let mut add = |phrase: &str, idx: usize| {
            let t = tokens(phrase);
            if let Some(first) = t.first() {
                by_first.entry(first.clone()).or_default().push((t, idx));
            }
        };
        for (i, g) in list.iter().enumerate() {
            add(g, i);
        }
        for (alias, canonical) in ALIASES {
            if let Some(i) = list.iter().position(|g| g == canonical) {
                add(alias, i);
            }
        }
        GenreMatcher {
            wanted: list,
            by_first,
        }
    }

    pub fn default_genres() -> GenreMatcher {
        GenreMatcher::new(DEFAULT_GENRES)
    }

    pub fn wanted(&self) -> &[String] {
        &self.wanted
    }

    /// Marks in `hits` (indexed like `wanted()`) each genre found in `text`.
    pub fn scan(&self, text: &str, hits: &mut [bool]) {
        // Lowercase once and slice tokens out of it: per-token Strings made
        // matching cost more than parsing the page.
        let lower = text.to_lowercase();
        let (toks, joined) = token_slices(&lower);
        for i in 0..toks.len() {
            // A match must cover whole hyphenated words: "techno-logy" is
            // not techno, while "nu-disco" is nu disco.
            if i > 0 && joined[i - 1] {
                continue;
            }
            if let Some(pats) = self.by_first.get(toks[i]) {
                for (pat, idx) in pats {
                    let end = i + pat.len();
                    if toks.len() >= end
                        && !joined[end - 1]
                        && pat.iter().zip(&toks[i..]).all(|(p, t)| p == t)
                    {
                        hits[*idx] = true;
                    }
                }
            }
        }
    }

    /// The wanted genres found in any of `texts`, in the order of `wanted()`.
    pub fn matches<S: AsRef<str>>(&self, texts: &[S]) -> Vec<String> {
        let mut hits = vec![false; self.wanted.len()];
        for t in texts {
            self.scan(t.as_ref(), &mut hits);
        }
        self.wanted
            .iter()
            .zip(hits)
            .filter(|&(_, h)| h)
            .map(|(g, _)| g.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Vec<String> {
        GenreMatcher::default_genres().matches(&[text])
    }

    #[test]
    fn borrowed_tokens_agree_with_owned() {
        let t = "Drum&Bass, NU-disco · Électro 2-step";
        assert_eq!(token_slices(&t.to_lowercase()).0, tokens(t));
    }

    #[test]
    fn word_boundaries() {
        assert!(m("The technology of warehouse parties, platinum edition").is_empty());
        assert_eq!(m("A techno-free HOUSE record"), vec!["house"]);
        assert!(m("house-proud, latin-based, a dance-off").is_empty());
        assert_eq!(
            m("Deep-House and a - house - mix"),
            vec!["house", "deep house"]
        );
        let t = GenreMatcher::new(&["techno"]);
        assert!(
            t.matches(&["Techno-logy", "techno-ish", "acid-techno"])
                .is_empty()
        );
        assert_eq!(t.matches(&["techno - live"]), vec!["techno"]);
        assert_eq!(m("latin grooves"), vec!["latin"]);
        assert!(m("Latinos").is_empty());
        assert!(m("ambiently").is_empty());
        assert!(m("dancefloor").is_empty());
    }

    #[test]
    fn aliases_map_to_canonical() {
        assert_eq!(m("Genre: DnB / Breaks"), vec!["drum and bass"]);
        assert_eq!(m("d&b"), vec!["drum and bass"]);
        assert_eq!(m("Drum & Bass"), vec!["drum and bass"]);
        assert_eq!(m("drum'n'bass"), vec!["drum and bass"]);
        assert_eq!(m("UKG"), vec!["uk garage"]);
        assert_eq!(m("garage"), vec!["uk garage"]);
        assert_eq!(m("prog"), vec!["progressive house"]);
        assert_eq!(m("Nu-Disco"), vec!["nu disco"]);
        assert_eq!(m("Electro-Pop"), vec!["electro pop"]);
        assert_eq!(m("Deep House"), vec!["house", "deep house"]);
    }

    #[test]
    fn unknown_names_are_reported_as_written() {
        assert_eq!(
            unknown_names(&["Deep-House", "dnb", " Techno-logy ", "ukg", "", "psytrance"]),
            vec!["Techno-logy", "psytrance"]
        );
    }

    #[test]
    fn aliases_only_for_wanted_genres() {
        let g = GenreMatcher::new(&["techno", "Drum-and-Bass"]);
        assert_eq!(g.wanted(), ["techno", "drum and bass"]);
        assert_eq!(
            g.matches(&["dnb and minimal techno"]),
            vec!["techno", "drum and bass"]
        );
        assert!(g.matches(&["ukg", "technology"]).is_empty());
        let g = GenreMatcher::new(&["UKG", "dnb"]);
        assert_eq!(g.wanted(), ["uk garage", "drum and bass"]);
        assert_eq!(
            g.matches(&["2-step garage", "Drum & Bass"]),
            ["uk garage", "drum and bass"]
        );
    }
}
