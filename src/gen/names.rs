//! Plausible, seeded names for artists, albums, tracks and genres. About one artist in
//! eight gets a name with accents or CJK characters, because real libraries have them and
//! path handling, Unicode lower-casing and tag encodings must cope.

use std::collections::HashSet;

use fastrand::Rng;

const ADJECTIVES: &[&str] = &[
    "Silent",
    "Electric",
    "Golden",
    "Broken",
    "Velvet",
    "Hollow",
    "Crimson",
    "Distant",
    "Neon",
    "Paper",
    "Wild",
    "Frozen",
    "Lonely",
    "Burning",
    "Quiet",
    "Restless",
    "Blue",
    "Midnight",
    "Hidden",
    "Bright",
    "Empty",
    "Endless",
    "Fading",
    "Gentle",
    "Heavy",
    "Lucky",
    "Northern",
    "Open",
    "Pale",
    "Rusty",
    "Secret",
    "Shallow",
    "Strange",
    "Sweet",
    "Tender",
    "Violet",
    "Wandering",
    "Young",
    "Ancient",
    "Bitter",
    "Cosmic",
    "Dusty",
];

const NOUNS: &[&str] = &[
    "River",
    "Garden",
    "Machine",
    "Harbor",
    "Mirror",
    "Signal",
    "Forest",
    "Engine",
    "Shadow",
    "Ocean",
    "Window",
    "Lantern",
    "Desert",
    "Echo",
    "Feather",
    "Highway",
    "Island",
    "Letter",
    "Meadow",
    "Orchid",
    "Planet",
    "Rain",
    "Satellite",
    "Stone",
    "Thunder",
    "Valley",
    "Wave",
    "Winter",
    "Bridge",
    "Candle",
    "Comet",
    "Crown",
    "Dream",
    "Falcon",
    "Fire",
    "Ghost",
    "Horizon",
    "Moon",
    "Night",
    "Radio",
    "Road",
    "Summer",
    "Tide",
    "Tower",
    "Wolf",
    "Heart",
    "City",
    "Storm",
];

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kate",
    "Leo", "Maya", "Nico", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Victor", "Wendy",
    "Yara", "Zack", "Marcus", "Nina", "Oscar", "Lena",
];

const LAST: &[&str] = &[
    "Anderson", "Brooks", "Carter", "Dalton", "Ellis", "Fischer", "Gray", "Hayes", "Ingram",
    "Jensen", "Keller", "Lambert", "Morgan", "Novak", "Olsen", "Parker", "Reyes", "Sinclair",
    "Turner", "Vaughn", "Walsh", "Young", "Zimmer", "Moreau",
];

const NON_ASCII: &[&str] = &[
    "Zoë Delacroix",
    "Sigur Æsir",
    "Łukasz Wójcik",
    "Björn Ågren",
    "Motörbahn",
    "Café Señales",
    "Þórunn Ósk",
    "Dvořák Ensemble",
    "Ørsted Kvartet",
    "Ñandú",
    "Chloé Müller",
    "Mötley Crüz",
    "İstanbul Ekspres",
    "Ελένη Καραΐνδρου",
    "Орбита",
    "坂本光",
    "星野夜",
    "宇多田翼",
    "東京事変区",
    "김민지",
    "花と雨",
    "ÆON",
    "Sólstafir Nótt",
    "Françoise Hardé",
    "Jóga Ríkí",
];

const CJK_WORDS: &[&str] = &[
    "夜", "光", "海", "雨", "花", "星", "風", "空", "夢", "月", "雪", "森",
];

pub const GENRES: &[&str] = &[
    "Rock",
    "Pop",
    "Jazz",
    "Classical",
    "Electronic",
    "Hip-Hop",
    "R&B",
    "Folk",
    "Metal",
    "Punk",
    "Blues",
    "Country",
    "Reggae",
    "Soul",
    "Funk",
    "House",
    "Techno",
    "Ambient",
    "Indie",
    "Alternative",
    "Drum & Bass",
    "Post-Rock",
    "J-Pop",
    "K-Pop",
    "Soundtrack",
    "Música Popular",
    "Chanson",
    "Singer-Songwriter",
    "Trip-Hop",
    "Shoegaze",
];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.usize(..list.len())]
}

/// Returns `base`, or `base` with a numeric suffix, whichever is not yet in `seen`.
fn unique(seen: &mut HashSet<String>, base: String) -> String {
    if seen.insert(base.clone()) {
        return base;
    }
    (2..)
        .map(|n| format!("{base} {n}"))
        .find(|c| seen.insert(c.clone()))
        .expect("unbounded suffixes")
}

pub fn artist(rng: &mut Rng, seen: &mut HashSet<String>) -> String {
    let base = match rng.u8(..8) {
        0 => pick(rng, NON_ASCII).to_string(),
        1 | 2 => format!("{} {}", pick(rng, FIRST), pick(rng, LAST)),
        3 | 4 => format!("The {} {}s", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
        5 => format!("{} {}", pick(rng, NOUNS), pick(rng, NOUNS)),
        _ => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
    };
    unique(seen, base)
}

pub fn album(rng: &mut Rng, seen: &mut HashSet<String>) -> String {
    let base = match rng.u8(..10) {
        0 => format!("{}の{}", pick(rng, CJK_WORDS), pick(rng, CJK_WORDS)),
        1 | 2 => format!("{} of the {}", pick(rng, NOUNS), pick(rng, NOUNS)),
        3 => format!("The {}", pick(rng, NOUNS)),
        4 => format!("Édition {}", pick(rng, ADJECTIVES)),
        _ => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
    };
    unique(seen, base)
}

pub fn title(rng: &mut Rng, seen: &mut HashSet<String>) -> String {
    let base = match rng.u8(..10) {
        0 => format!("{}{}", pick(rng, CJK_WORDS), pick(rng, CJK_WORDS)),
        1 | 2 => format!("{} in the {}", pick(rng, NOUNS), pick(rng, NOUNS)),
        3 => format!(
            "{} {} {}",
            pick(rng, ADJECTIVES),
            pick(rng, ADJECTIVES),
            pick(rng, NOUNS)
        ),
        4 => format!("Song for {}", pick(rng, FIRST)),
        5 => format!("{} (Café Mix)", pick(rng, NOUNS)),
        _ => format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS)),
    };
    unique(seen, base)
}

/// A file or directory name component for `name`: no separators, no leading dot, and
/// short enough (in bytes) to stay under NAME_MAX with a prefix and extension.
pub fn path_component(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '-' } else { c })
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    let mut cut = out.len().min(120);
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out
}
