//! The shared corpus of real-world files (including fuzz crashers and OOM repros): every
//! file gets exactly one row, nothing panics or hangs, and where mutagen and ffprobe agree
//! on a field, musicdex agrees too.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;

/// Fields where both oracles agree but musicdex is right to differ, with the reason
/// (decided from the bytes of the file).
const ORACLES_WRONG: &[(&str, &str, &str)] = &[
    (
        "lofty/assets/zero/zero.mp4",
        "duration",
        "no audio track at all: musicdex records no duration and the error saying why; \
         0 s is not a length the file states",
    ),
    (
        "lofty/assets/zero/zero.wav",
        "duration",
        "no data chunk: as above, null duration with the error, not 0 s",
    ),
];

/// Fields where the oracles are right and musicdex (through lofty 0.25) is not. Listed so
/// the gap is visible and the rest stays checked; each one is a lofty limitation.
const KNOWN_GAPS: &[(&str, &str, &str)] = &[
    (
        "beets/full.dsf",
        "*",
        "lofty 0.25 cannot read DSF; dsf is not a default extension",
    ),
    ("beets/empty.dsf", "*", "as above"),
    ("beets/unparseable.dsf", "*", "as above"),
    (
        "beets/unparseable.ape",
        "year",
        "the APE tag's Year is 'Oct 3, 1995'; lofty drops an APE year it cannot parse \
         before musicdex sees the text",
    ),
    ("beets/unparseable.mpc", "year", "same APE year as above"),
    ("beets/unparseable.wv", "year", "same APE year as above"),
    (
        "beets/no_ext",
        "duration",
        "CBR MP3 without a Xing header: lofty estimates 1.224 s from the stream where \
         both oracles estimate 1.35 s",
    ),
    (
        "lofty/assets/issue_87_duplicate_id3v2.mp3",
        "artist",
        "two ID3v2 tags: lofty keeps the second, the oracles the first",
    ),
];

fn load(name: &str) -> HashMap<String, Value> {
    let text = std::fs::read_to_string(corpus().join("expected").join(name)).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn norm_text(v: &Value) -> Option<String> {
    v.as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn track_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.split('/').next()?.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[test]
fn corpus_rows_agree_with_the_oracles() {
    let files = corpus().join("files");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("corpus.db");
    let summary = index_json(&files, &db, &["--ext", "*", "--no-progress"]);
    let mutagen = load("mutagen.jsonl");
    let ffprobe = load("ffprobe.jsonl");
    assert_eq!(n(&summary, "files_found") as usize, mutagen.len());

    let rows = export(&db);
    assert_eq!(rows.len(), mutagen.len(), "one row per corpus file");
    // The same normalisation the indexer applies (absolute, `..` folded, links kept).
    let root = musicdex::index::normalise_roots(std::slice::from_ref(&files))
        .unwrap()
        .remove(0);
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in &rows {
        let full = row["file_path"].as_str().unwrap();
        let rel = full
            .strip_prefix(root.to_str().unwrap())
            .unwrap()
            .trim_start_matches('/');
        let (m, f) = (&mutagen[rel], &ffprobe[rel]);
        assert!(row["file_content_hash"].is_string() || row["error"].is_string());
        // Agreement means both oracles read the file: two errors agree on nothing.
        if !m["error"].is_null() || !f["error"].is_null() {
            continue;
        }
        let exempt = |field: &str| {
            ORACLES_WRONG
                .iter()
                .chain(KNOWN_GAPS)
                .any(|(p, fld, _)| *p == rel && (*fld == field || *fld == "*"))
        };
        for (field, ours) in [
            ("artist", "artist"),
            ("title", "title"),
            ("album", "album"),
            ("genre", "genre"),
        ] {
            let (a, b) = (norm_text(&m[field]), norm_text(&f[field]));
            if a == b && !exempt(field) {
                checked += 1;
                let got = norm_text(&row[ours]);
                if got != a {
                    failures.push(format!("{rel}: {field}: oracles {a:?}, musicdex {got:?}"));
                }
            }
        }
        let (a, b) = (m["year"].as_i64(), f["year"].as_i64());
        if a == b && !exempt("year") {
            checked += 1;
            if row["year"].as_i64() != a {
                failures.push(format!(
                    "{rel}: year: oracles {a:?}, musicdex {}",
                    row["year"]
                ));
            }
        }
        let (a, b) = (track_of(&m["track"]), track_of(&f["track"]));
        if a == b && !exempt("track") {
            checked += 1;
            if row["track_number"].as_i64() != a {
                failures.push(format!(
                    "{rel}: track: oracles {a:?}, musicdex {}",
                    row["track_number"]
                ));
            }
        }
        if let (Some(a), Some(b)) = (m["duration"].as_f64(), f["duration"].as_f64())
            && (a - b).abs() <= 0.1
            && !exempt("duration")
        {
            checked += 1;
            match row["duration"].as_f64() {
                Some(d) if (d - a).abs() <= 0.1 || (d - b).abs() <= 0.1 => {}
                other => failures.push(format!(
                    "{rel}: duration: oracles {a}/{b}, musicdex {other:?} ({})",
                    row["error"]
                )),
            }
        }
    }
    assert!(checked > 500, "only {checked} field comparisons made");
    assert!(
        failures.is_empty(),
        "{} disagreements out of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
