//! Checks that fixtures/library matches fixtures/library.expected.json as lofty reads it,
//! so indexer tests can trust the expectation file.

use std::path::Path;

use lofty::file::{AudioFile, TaggedFileExt};
use lofty::tag::{Accessor, ItemKey};
use serde_json::Value;

#[test]
fn fixture_library_matches_its_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(root.join("library.expected.json")).unwrap())
            .unwrap();
    let files = expected["files"].as_array().unwrap();
    assert!((20..=40).contains(&files.len()));

    let mut total = 0;
    for e in files {
        let rel = e["path"].as_str().unwrap();
        let path = root.join("library").join(rel);
        let size = std::fs::metadata(&path).unwrap().len();
        total += size;
        if e["empty"].as_bool().unwrap() {
            assert_eq!(size, 0, "{rel}");
            assert!(lofty::read_from_path(&path).is_err(), "{rel}");
            continue;
        }
        if e["truncated"].as_bool().unwrap() {
            // Cut in half: what lofty makes of it is the indexer's business; it must not
            // panic, and the file must really be shorter than its header claims.
            let _ = lofty::read_from_path(&path);
            continue;
        }
        let file = lofty::read_from_path(&path).unwrap_or_else(|err| panic!("{rel}: {err}"));
        let secs = file.properties().duration().as_secs_f64();
        let want = e["duration"].as_f64().unwrap();
        assert!(
            (secs - want).abs() < 0.1,
            "{rel}: duration {secs} vs {want}"
        );

        let tag = file.primary_tag().or_else(|| file.first_tag());
        if e["artist"].is_null() {
            assert!(tag.is_none_or(|t| t.artist().is_none()), "{rel}");
            continue;
        }
        let tag = tag.unwrap_or_else(|| panic!("{rel}: no tag"));
        let s = |k: &str| e[k].as_str().map(str::to_string);
        assert_eq!(tag.artist().map(|v| v.to_string()), s("artist"), "{rel}");
        assert_eq!(tag.title().map(|v| v.to_string()), s("title"), "{rel}");
        assert_eq!(tag.album().map(|v| v.to_string()), s("album"), "{rel}");
        assert_eq!(tag.genre().map(|v| v.to_string()), s("genre"), "{rel}");
        assert_eq!(
            tag.get_string(ItemKey::AlbumArtist).map(str::to_string),
            s("album_artist"),
            "{rel}"
        );
        assert_eq!(tag.track().map(u64::from), e["track"].as_u64(), "{rel}");
        assert_eq!(
            tag.date().map(|d| u64::from(d.year)),
            e["year"].as_u64(),
            "{rel}"
        );
        assert_eq!(tag.pictures().is_empty(), e["cover"].is_null(), "{rel}");
    }
    assert!(total < 5 << 20, "fixture library is {total} bytes");
    assert!(
        files.iter().any(|e| !e["empty"].as_bool().unwrap() && {
            let p = root.join("library").join(e["path"].as_str().unwrap());
            std::fs::metadata(p).unwrap().len() >= 128 << 10
        }),
        "one file exercises the head+tail hash"
    );
}
