//! `musicdex index fixtures/library` (the README's first command) produces the rows the
//! fixture script says it wrote.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;

#[test]
fn fixture_library_is_indexed_as_written() {
    let fixtures = repo().join("fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("library.expected.json")).unwrap())
            .unwrap();
    let files = expected["files"].as_array().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.sqlite");
    let s = index_json(&fixtures.join("library"), &db, &[]);
    assert_eq!(n(&s, "files_found") as usize, files.len(), "{s}");
    assert_eq!(n(&s, "added") as usize, files.len());

    let root = musicdex::index::normalise_roots(&[fixtures.join("library")])
        .unwrap()
        .remove(0);
    let rows: HashMap<String, Value> = export(&db)
        .into_iter()
        .map(|r| {
            let p = r["file_path"].as_str().unwrap();
            let rel = p.strip_prefix(root.to_str().unwrap()).unwrap();
            (rel.trim_start_matches('/').to_string(), r)
        })
        .collect();
    for skipped in expected["skipped"].as_array().unwrap() {
        assert!(!rows.contains_key(skipped.as_str().unwrap()));
    }
    let mut errors = 0;
    for e in files {
        let rel = e["path"].as_str().unwrap();
        let r = rows.get(rel).unwrap_or_else(|| panic!("no row for {rel}"));
        assert_eq!(
            r["file_format"],
            e["extension"].as_str().unwrap().to_lowercase()
        );
        assert!(r["file_content_hash"].is_string(), "{rel}");
        if e["empty"].as_bool().unwrap() || e["truncated"].as_bool().unwrap() {
            if !r["error"].is_null() {
                errors += 1;
            }
            continue;
        }
        assert!(r["error"].is_null(), "{rel}: {}", r["error"]);
        for (ours, theirs) in [
            ("artist", "artist"),
            ("title", "title"),
            ("album", "album"),
            ("album_artist", "album_artist"),
            ("genre", "genre"),
            ("year", "year"),
            ("track_number", "track"),
        ] {
            assert_eq!(r[ours], e[theirs], "{rel}: {ours}");
        }
        let d = r["duration"].as_f64().unwrap();
        assert!(
            (d - e["duration"].as_f64().unwrap()).abs() < 0.1,
            "{rel}: {d}"
        );
        assert!(r["sample_rate"].as_u64().unwrap() > 0);
    }
    assert!(errors >= 1, "the empty file is recorded with its error");

    let stats: Value =
        serde_json::from_str(&ok(&["stats", "--db", db.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(stats["files"].as_u64().unwrap() as usize, files.len());
    assert!(stats["formats"].as_array().unwrap().len() >= 7);
}
