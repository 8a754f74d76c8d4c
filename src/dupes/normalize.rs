//! Text normalisation for comparing names: Unicode NFC plus full case folding, so that
//! "BEYONCÉ", "Beyoncé" and a decomposed "Beyonce\u{301}" are one artist and "Straße"
//! equals "STRASSE". SQLite's `lower()` only knows ASCII, so all of this happens here.

use unicode_normalization::UnicodeNormalization;

/// Case-fold one character into `out`. `char::to_lowercase` covers nearly all of
/// Unicode's CaseFolding.txt; the entries below are the ones where full folding differs
/// from lower-casing (a lower-case letter with an upper-case form that lower-cases to
/// something else, or a one-to-many fold).
fn fold_char(c: char, out: &mut String) {
    let folded: &str = match c {
        'ß' | 'ẞ' => "ss",
        'ſ' => "s",
        'ς' => "σ",
        'µ' => "μ",
        'ϐ' => "β",
        'ϑ' => "θ",
        'ϕ' => "φ",
        'ϖ' => "π",
        'ϰ' => "κ",
        'ϱ' => "ρ",
        'ϵ' => "ε",
        'ẛ' => "ṡ",
        '\u{345}' | 'ι' => "ι",
        'ŉ' => "ʼn",
        'և' => "եւ",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' | 'ﬆ' => "st",
        // Typographic variants that tag editors and download sites mix freely.
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' | '`' | '´' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201F}' | '\u{2033}' => "\"",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        _ => {
            out.extend(c.to_lowercase());
            return;
        }
    };
    out.push_str(folded);
}

/// NFC, full case folding, NFC again (folding can produce sequences that compose), and
/// whitespace runs collapsed to one space, trimmed.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        // ASCII is already NFC and folds to its ASCII lower case: the common case,
        // several times faster than the general path (and equal to it, see the tests).
        let mut out = String::with_capacity(s.len());
        let mut pending_space = false;
        for b in s.bytes() {
            if b.is_ascii_whitespace() || b.is_ascii_control() {
                pending_space = !out.is_empty();
            } else {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                out.push(if b == b'`' {
                    '\''
                } else {
                    b.to_ascii_lowercase() as char
                });
            }
        }
        return out;
    }
    fold_general(s)
}

fn fold_general(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s.nfc() {
        fold_char(c, &mut folded);
    }
    let mut out = String::with_capacity(folded.len());
    let mut pending_space = false;
    for c in folded.nfc() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// The key two artist names must share to be "the same artist". Empty when the name is
/// blank: a missing artist is not an artist.
pub fn artist_key(artist: &str) -> String {
    fold(artist)
}

/// Words that, alone in a bracket or after " - ", only describe the edition of a
/// recording ("(Original Mix)", "[Official HD Video]", "- 2011 Remaster").
const EDITION_WORDS: &[&str] = &[
    "original",
    "mix",
    "radio",
    "edit",
    "extended",
    "version",
    "album",
    "single",
    "remastered",
    "remaster",
    "digital",
    "digitally",
    "official",
    "video",
    "audio",
    "music",
    "lyric",
    "lyrics",
    "with",
    "hd",
    "hq",
    "4k",
    "explicit",
    "clean",
];

/// Whether a bracket's or dash suffix's (folded) content is only edition noise. Years
/// count as noise ("Remastered 2009"), but a phrase of years alone does not: "(1999)"
/// may be part of a title.
fn is_edition_noise(content: &str) -> bool {
    let mut edition_word = false;
    for word in content
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if EDITION_WORDS.contains(&word) {
            edition_word = true;
        } else if !is_year(word) {
            return false;
        }
    }
    edition_word
}

fn is_year(w: &str) -> bool {
    w.len() == 4
        && (w.starts_with("19") || w.starts_with("20"))
        && w.bytes().all(|b| b.is_ascii_digit())
}

/// Remove edition suffixes (and leading edition brackets) from a folded title,
/// repeatedly: "song (radio edit) [hd]" → "song".
fn strip_edition(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        let stripped = strip_bracket_suffix(t)
            .or_else(|| strip_dash_suffix(t))
            .or_else(|| strip_bracket_prefix(t));
        match stripped {
            Some(rest) if !rest.trim().is_empty() => s = rest,
            _ => return t,
        }
    }
}

fn strip_bracket_suffix(t: &str) -> Option<&str> {
    let open = match t.chars().last()? {
        ')' => '(',
        ']' => '[',
        '}' => '{',
        _ => return None,
    };
    let start = t.rfind(open)?;
    is_edition_noise(&t[start + 1..t.len() - 1]).then(|| &t[..start])
}

fn strip_bracket_prefix(t: &str) -> Option<&str> {
    let close = match t.chars().next()? {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        _ => return None,
    };
    let end = t.find(close)?;
    is_edition_noise(&t[1..end]).then(|| &t[end + close.len_utf8()..])
}

fn strip_dash_suffix(t: &str) -> Option<&str> {
    // Dashes were folded to '-'; require spaces around it so "Jay-Z" and "Re-Edit"
    // stay whole.
    let at = t.rfind(" - ")?;
    is_edition_noise(&t[at + 3..]).then(|| &t[..at])
}

/// The form titles are compared in: folded, edition suffixes removed, punctuation
/// dropped, single spaces. A title that is nothing but an edition marker keeps its
/// words rather than becoming empty.
pub fn title_key(title: &str) -> String {
    let folded = fold(title);
    let core = strip_edition(&folded);
    let mut out = String::with_capacity(core.len());
    for word in core
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Words after which a number word counts as a number ("Part Two", "Volume One").
const DESIGNATORS: &[&str] = &[
    "part", "pt", "vol", "volume", "no", "nr", "nos", "number", "op", "opus", "movement", "mvt",
    "act", "book", "chapter", "disc", "cd", "track", "symphony", "sonata", "concerto", "suite",
    "scene", "episode", "side", "chapitre", "teil", "parte",
];

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// A word of at most 16 bytes as one integer: every title word is checked against the
/// lists above, and with a million titles string comparisons show up in a profile.
const fn packed(w: &str) -> Option<u128> {
    let b = w.as_bytes();
    if b.len() > 16 {
        return None;
    }
    let mut v = 0u128;
    let mut i = 0;
    while i < b.len() {
        v |= (b[i] as u128) << (8 * i);
        i += 1;
    }
    Some(v)
}

const fn pack_all<const N: usize>(words: &[&str]) -> [u128; N] {
    let mut out = [0u128; N];
    let mut i = 0;
    while i < N {
        out[i] = match packed(words[i]) {
            Some(v) => v,
            None => panic!("word longer than 16 bytes"),
        };
        i += 1;
    }
    out
}

const DESIGNATORS_PACKED: [u128; DESIGNATORS.len()] = pack_all(DESIGNATORS);
const NUMBER_WORDS_PACKED: [u128; NUMBER_WORDS.len()] = pack_all(NUMBER_WORDS);

/// The value of a lower-case Roman numeral from 1 to 39 in canonical form ("iv", not
/// "iiii"), which covers parts, volumes and movements. "mix" or "dvd" are not numerals:
/// only i, v and x are accepted.
fn roman(w: &str) -> Option<u32> {
    const ONES: [&str; 10] = ["", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix"];
    if w.is_empty() || w.len() > 6 || !w.bytes().all(|b| matches!(b, b'i' | b'v' | b'x')) {
        return None;
    }
    let tens = w.bytes().take_while(|&b| b == b'x').count().min(3);
    let rest = &w[tens..];
    let ones = ONES.iter().position(|o| *o == rest)?;
    Some(tens as u32 * 10 + ones as u32)
}

/// The numbers of a title, in order: digit runs, Roman numerals ("Vol. II", a movement's
/// "IV." prefix) and number words after a designator ("Part Two"), as values, so that
/// "Part 2", "Part II" and "Part Two" agree and "Part 1" and "Part 2" do not. Edition
/// suffixes are gone first ([`title_key`]): "(Remastered 2011)" adds no number. Two
/// titles whose numbers differ are different works, however similar their letters.
pub fn title_numbers(title: &str) -> Vec<u64> {
    numbers_of_key(&title_key(title))
}

/// [`title_numbers`] of a title already passed through [`title_key`].
pub fn numbers_of_key(key: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after_designator = false;
    for word in key.split(' ') {
        let mut digits_seen = false;
        let mut value: Option<u64> = None;
        for b in word.bytes() {
            if b.is_ascii_digit() {
                let d = u64::from(b - b'0');
                value = Some(value.unwrap_or(0).saturating_mul(10).saturating_add(d));
                digits_seen = true;
            } else if let Some(v) = value.take() {
                // "op27no1": each digit run is a number of its own.
                out.push(v);
            }
        }
        if let Some(v) = value {
            out.push(v);
        }
        if !digits_seen {
            if let Some(v) = roman(word) {
                out.push(u64::from(v));
            } else if after_designator
                && let Some(v) =
                    packed(word).and_then(|w| NUMBER_WORDS_PACKED.iter().position(|n| *n == w))
            {
                out.push(v as u64);
            }
        }
        after_designator = packed(word).is_some_and(|w| DESIGNATORS_PACKED.contains(&w));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folding_beyond_ascii() {
        assert_eq!(artist_key("BEYONCÉ"), artist_key("Beyoncé"));
        assert_eq!(artist_key("Straße"), "strasse");
        assert_eq!(artist_key("STRASSE"), artist_key("straße"));
        assert_eq!(artist_key("ΣΊΣΥΦΟΣ"), artist_key("σίσυφος"));
        assert_eq!(artist_key("ﬁsh"), "fish");
        assert_ne!(artist_key("Beyoncé"), artist_key("Beyonce"));
    }

    #[test]
    fn nfd_and_nfc_spellings_match() {
        let nfc = "Beyonc\u{e9}";
        let nfd = "Beyonce\u{301}";
        assert_ne!(nfc, nfd);
        assert_eq!(artist_key(nfc), artist_key(nfd));
        assert_eq!(title_key("Cafe\u{301} del Mar"), title_key("CAFÉ DEL MAR"));
    }

    #[test]
    fn ascii_fast_path_equals_general_path() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let s: String = (0..rng.usize(0..16))
                .map(|_| rng.u8(0..128) as char)
                .collect();
            assert_eq!(fold(&s), fold_general(&s), "{s:?}");
        }
    }

    #[test]
    fn whitespace_and_typography() {
        assert_eq!(artist_key("  Daft   Punk\t"), "daft punk");
        assert_eq!(title_key("Don’t Stop"), title_key("Don't Stop"));
        assert_eq!(artist_key(""), "");
        assert_eq!(artist_key("   "), "");
    }

    #[test]
    fn edition_suffixes_are_removed() {
        for t in [
            "Levels (Original Mix)",
            "Levels (Radio Edit)",
            "Levels (Extended)",
            "Levels (Extended Mix)",
            "Levels (Album Version)",
            "Levels - Remastered",
            "Levels - 2011 Remaster",
            "Levels (Remastered 2009)",
            "Levels [Official]",
            "Levels [HD]",
            "Levels [Official HD Video]",
            "Levels (Radio Edit) [HD]",
            "[HD] Levels",
            "LEVELS",
            "Levels!",
        ] {
            assert_eq!(title_key(t), "levels", "{t}");
        }
    }

    #[test]
    fn meaningful_brackets_stay() {
        assert_eq!(
            title_key("Levels (Skrillex Remix)"),
            "levels skrillex remix"
        );
        assert_eq!(title_key("Levels (Live)"), "levels live");
        assert_eq!(
            title_key("Levels (Acoustic Version)"),
            "levels acoustic version"
        );
        assert_eq!(title_key("Party Like (1999)"), "party like 1999");
        assert_eq!(title_key("Jay-Z - Intro"), "jay z intro");
        // Nothing but an edition marker: keep it rather than compare empty titles.
        assert_eq!(title_key("(Radio Edit)"), "radio edit");
        assert_eq!(title_key("Radio Edit"), "radio edit");
    }

    #[test]
    fn numbers_in_titles() {
        assert_eq!(title_numbers("Another Brick in the Wall, Part 2"), vec![2]);
        assert_eq!(
            title_numbers("Another Brick in the Wall (Part II)"),
            vec![2]
        );
        assert_eq!(
            title_numbers("Another Brick in the Wall - Part Two"),
            vec![2]
        );
        assert_eq!(
            title_numbers("Piano Sonata No. 14 in C-sharp minor, Op. 27 No. 2"),
            vec![14, 27, 2]
        );
        assert_eq!(title_numbers("Op.27 No.1"), vec![27, 1]);
        assert_eq!(title_numbers("Vol. III"), vec![3]);
        assert_eq!(title_numbers("IV. Allegro con brio"), vec![4]);
        assert_eq!(title_numbers("XXXIX"), vec![39]);
        assert_eq!(title_numbers("Revolution"), Vec::<u64>::new());
        assert_eq!(title_numbers("Revolution 9"), vec![9]);
        // Edition suffixes carry no number; years in them neither.
        assert_eq!(title_numbers("Levels (Remastered 2011)"), Vec::<u64>::new());
        assert_eq!(title_numbers("Levels - 2011 Remaster"), Vec::<u64>::new());
        // Not numerals: words that merely use the letters, number words without a
        // designator.
        assert_eq!(title_numbers("Mix It Up"), Vec::<u64>::new());
        assert_eq!(title_numbers("Civil War"), Vec::<u64>::new());
        assert_eq!(title_numbers("One"), Vec::<u64>::new());
        assert_eq!(title_numbers("Track 01"), vec![1]);
        assert_eq!(title_numbers("iiii"), Vec::<u64>::new());
    }
}
