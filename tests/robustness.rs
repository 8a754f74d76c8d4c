//! Bounded work per file: mutated real files and pathological ones (sparse preallocated
//! downloads, zero-run FLAC metadata, lying size fields) never end a run. For every
//! engine: exit 0, one row per file with the right size and content hash, and the same
//! row as the reference engine, column for column. Memory and time caps are measured by
//! ci/robustness on a release build, not here.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use musicdex::r#gen::mutate;
use serde_json::Value;

const ENGINES: &[&str] = &["sequential", "threads", "uring"];
const CHUNK: u64 = 64 * 1024;

/// MD5 of what the content hash covers (the first 64 KiB, and the last 64 KiB of a file
/// of at least 128 KiB), by coreutils' md5sum: an implementation not ours.
fn expected_content_hash(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let mut bytes = Vec::new();
    (&mut f).take(CHUNK).read_to_end(&mut bytes).unwrap();
    if size >= 2 * CHUNK {
        f.seek(SeekFrom::Start(size - CHUNK)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
    }
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum (coreutils)");
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

/// Rows keyed by file name, without the columns that differ between runs.
fn rows(db: &Path) -> BTreeMap<String, Value> {
    export(db)
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            for k in ["id", "indexed_at", "last_verified"] {
                o.remove(k);
            }
            (o["file_path"].as_str().unwrap().to_string(), r)
        })
        .collect()
}

/// Index `lib` with every engine; check each row against the file and against the
/// reference engine's row. Returns the reference rows.
fn index_everywhere(tmp: &Path, lib: &Path) -> BTreeMap<String, Value> {
    let files = mutate::files_under(lib);
    assert!(!files.is_empty());
    let mut reference: Option<BTreeMap<String, Value>> = None;
    for engine in ENGINES {
        let db = tmp.join(format!("{engine}.db"));
        let s = index_json(
            lib,
            &db,
            &["--engine", engine, "--ext", "*", "--threads", "2"],
        );
        assert_eq!(n(&s, "files_found"), files.len() as u64, "{engine}: {s}");
        let got = rows(&db);
        assert_eq!(got.len(), files.len(), "{engine}: a row per file");
        match &reference {
            None => {
                for f in &files {
                    let r = &got[f.to_str().unwrap()];
                    let size = fs::metadata(f).unwrap().len();
                    assert_eq!(r["file_size"], size, "{}", f.display());
                    assert_eq!(
                        r["file_content_hash"],
                        expected_content_hash(f).as_str(),
                        "{}",
                        f.display()
                    );
                }
                reference = Some(got);
            }
            Some(want) => {
                for (k, w) in want {
                    assert_eq!(w, &got[k], "{engine}: row {k} differs from the reference");
                }
            }
        }
    }
    reference.unwrap()
}

/// Write one pathological case and index it everywhere.
fn case(name: &str) -> (tempfile::TempDir, BTreeMap<String, Value>) {
    case_of(name, usize::MAX)
}

/// [`case`] keeping only the first `keep` of its files: a debug build parses slowly, and
/// ci/robustness runs every file on a release build.
fn case_of(name: &str, keep: usize) -> (tempfile::TempDir, BTreeMap<String, Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    for f in mutate::write_case(&lib, name, 17)
        .unwrap()
        .iter()
        .skip(keep)
    {
        fs::remove_file(f).unwrap();
    }
    let rows = index_everywhere(tmp.path(), &lib);
    (tmp, rows)
}

fn error_of(r: &Value) -> &str {
    r["error"].as_str().unwrap_or("")
}

/// A row whose tag parse was cut off: size and content hash kept, no tags, and the error
/// one of the budget's.
fn assert_budget_hit(r: &Value) {
    let e = error_of(r);
    assert!(
        e == "tags: needs more than 16 MiB beyond head and tail"
            || e == "tags: gave up after 1048576 reads (junk or zeros where the format expects data)",
        "{r}"
    );
    assert!(r["file_content_hash"].is_string(), "{r}");
    assert!(r["title"].is_null() && r["duration"].is_null(), "{r}");
}

#[test]
fn preallocated_3g_mp3_with_only_the_last_piece() {
    let (_t, rows) = case("prealloc-mp3-3g");
    let r = rows.values().next().unwrap();
    assert_eq!(r["file_size"], 3u64 << 30);
    assert_budget_hit(r);
}

#[test]
fn preallocated_3g_mp3_with_a_random_head() {
    let (_t, rows) = case("prealloc-mp3-3g-random-head");
    assert_budget_hit(rows.values().next().unwrap());
}

#[test]
fn flac_of_endless_empty_metadata_blocks() {
    let (_t, rows) = case("flac-zero-blocks-1g");
    assert_budget_hit(rows.values().next().unwrap());
}

#[test]
fn flac_with_a_hole_at_byte_42() {
    let (_t, rows) = case("flac-hole-at-42");
    let r = rows.values().next().unwrap();
    assert!(error_of(r).starts_with("tags: "), "{r}");
}

#[test]
fn mp3s_declaring_a_256m_id3v2_tag() {
    let (_t, rows) = case_of("id3-declares-256m", 2);
    assert_eq!(rows.len(), 2);
    for r in rows.values() {
        assert_eq!(r["file_size"], 300u64 << 20);
        assert!(error_of(r).starts_with("tags: "), "{r}");
    }
}

#[test]
fn partial_downloads_with_the_head_only_in_every_format() {
    let (_t, rows) = case("prealloc-head-only");
    assert_eq!(rows.len(), 7);
    for r in rows.values() {
        // Either the properties come from the head, or the parse stops at the budget.
        let e = error_of(r);
        assert!(e.is_empty() || e.starts_with("tags: "), "{r}");
    }
}

#[test]
fn partial_downloads_with_the_tail_only_in_every_format() {
    let (_t, rows) = case("prealloc-tail-only");
    assert_eq!(rows.len(), 7);
    for r in rows.values() {
        assert!(error_of(r).starts_with("tags: "), "{r}");
    }
}

#[test]
fn all_ff_files() {
    let (_t, rows) = case("all-ff");
    for r in rows.values() {
        assert_budget_hit(r);
    }
}

#[test]
fn ogg_with_100k_empty_pages() {
    let (_t, rows) = case("ogg-100k-empty-pages");
    let r = rows.values().next().unwrap();
    assert!(error_of(r).starts_with("tags: "), "{r}");
}

#[test]
fn a_valid_3g_wav_is_read_whole_from_head_and_tail() {
    let (_t, rows) = case("valid-wav-3g");
    let r = rows.values().next().unwrap();
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(r["title"], "Three gigabytes");
    assert_eq!(r["artist"], "Robustness");
    let d = r["duration"].as_f64().unwrap();
    assert!(
        (d - (3.0 * 1024.0 * 1024.0 * 1024.0 - 64.0) / 176_400.0).abs() < 0.01,
        "{d}"
    );
}

/// A tag that fits the default budget but not a smaller one: the row keeps what the
/// stat and the hash give, and says which budget it hit, on every engine.
#[test]
fn max_tag_bytes_is_honoured_by_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    // An ID3v2.4 tag of 3 MiB (a TXXX frame of junk text), then a real MP3.
    let template = fs::read(repo().join("fixtures/templates/template.mp3")).unwrap();
    let body = 3 << 20;
    let mut frame = b"TXXX".to_vec();
    let syncsafe = |n: u32| {
        [
            (n >> 21) as u8 & 0x7f,
            (n >> 14) as u8 & 0x7f,
            (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]
    };
    frame.extend_from_slice(&syncsafe(body + 3));
    frame.extend_from_slice(&[0, 0, 3, b'x', 0]);
    frame.extend(std::iter::repeat_n(b'y', body as usize - 2));
    let mut title = b"TIT2".to_vec();
    title.extend_from_slice(&syncsafe(6));
    title.extend_from_slice(b"\x00\x00\x03Big\x00\x00");
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe((title.len() + frame.len()) as u32));
    tag.extend_from_slice(&title);
    tag.extend_from_slice(&frame);
    tag.extend_from_slice(&template);
    fs::write(lib.join("big-tag.mp3"), &tag).unwrap();

    let all = index_everywhere(tmp.path(), &lib);
    let r = all.values().next().unwrap();
    assert!(r["error"].is_null(), "fits 16 MiB: {r}");
    assert_eq!(r["title"], "Big");

    let mut first: Option<Value> = None;
    for engine in ENGINES {
        let db = tmp.path().join(format!("small-{engine}.db"));
        index_json(
            &lib,
            &db,
            &[
                "--engine",
                engine,
                "--max-tag-bytes",
                "1M",
                "--threads",
                "2",
            ],
        );
        let got = rows(&db).into_values().next().unwrap();
        assert_eq!(
            error_of(&got),
            "tags: needs more than 1 MiB beyond head and tail",
            "{engine}: {got}"
        );
        assert_eq!(got["file_content_hash"], r["file_content_hash"]);
        assert_eq!(got["file_size"], tag.len() as u64);
        match &first {
            None => first = Some(got),
            Some(w) => assert_eq!(w, &got, "{engine}"),
        }
    }
}

/// Seeded mutants of the shared corpus, the fixtures and the templates.
#[test]
fn mutants_of_real_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let mut sources: Vec<PathBuf> = Vec::new();
    for root in [
        corpus().join("files"),
        repo().join("fixtures/library"),
        repo().join("fixtures/templates"),
    ] {
        sources.extend(mutate::files_under(&root));
    }
    sources.retain(|p| !p.to_string_lossy().ends_with(".json"));
    mutate::write_mutants(&lib, &sources, 20261201, 240).unwrap();
    let rows = index_everywhere(tmp.path(), &lib);
    // Most mutants still parse: the suite is not all errors.
    let clean = rows.values().filter(|r| r["error"].is_null()).count();
    assert!(clean > rows.len() / 4, "{clean} of {}", rows.len());
}
