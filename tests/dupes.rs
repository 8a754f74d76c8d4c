//! End-to-end behaviour of `musicdex dupes` and `musicdex vet` on real, retagged audio
//! files and a real SQLite index.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::Tag;
use serde_json::Value;

/// Copy a corpus file to `dest` with exactly the given artist and title (no other
/// tags); `None` for both leaves the file untagged.
fn tagged(corpus_name: &str, dest: &Path, artist: Option<&str>, title: Option<&str>) -> PathBuf {
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(corpus().join("files/beets").join(corpus_name), dest).unwrap();
    distinct_audio(dest);
    retag(dest, artist, title);
    dest.to_path_buf()
}

/// Make the copy another recording: the tests here build different songs from one
/// corpus file, and since the audio hash (issue 15) the same audio under other tags is
/// the same recording. Four bytes in the middle of the audio payload change, chosen by
/// the path, so no two copies share it; an Ogg page gets its checksum back.
fn distinct_audio(path: &Path) {
    use musicdex::media::audio_hash::{Located, locate};
    use musicdex::media::sparse::Segment;
    let mut data = fs::read(path).unwrap();
    let held = [Segment {
        offset: 0,
        data: data.clone(),
    }];
    let Located::Found(p) = locate(data.len() as u64, &held) else {
        panic!("{path:?}: no audio payload");
    };
    let (a, b) = p.pieces[p.pieces.len() / 2];
    let at = (a + (b - a) / 2) as usize;
    let seed = path_salt(path);
    let at = at.min(b as usize - 4).max(a as usize);
    for (i, k) in seed.to_le_bytes().into_iter().enumerate() {
        data[at + i] ^= k;
    }
    if data.starts_with(b"OggS") {
        // The page holding `at`: the last capture pattern before it.
        let page = data[..at].windows(4).rposition(|w| w == b"OggS").unwrap();
        let segs = data[page + 26] as usize;
        let body: usize = data[page + 27..page + 27 + segs]
            .iter()
            .map(|&l| l as usize)
            .sum();
        let end = page + 27 + segs + body;
        data[page + 22..page + 26].fill(0);
        let crc = musicdex::r#gen::mutate::ogg_crc(&data[page..end]);
        data[page + 22..page + 26].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(path, data).unwrap();
}

fn retag(path: &Path, artist: Option<&str>, title: Option<&str>) {
    let tf = lofty::read_from_path(path).unwrap();
    let primary = tf.primary_tag_type();
    for t in tf.tags() {
        t.tag_type()
            .remove_from_path(path, WriteOptions::default())
            .unwrap();
    }
    if artist.is_some() || title.is_some() {
        let mut tag = Tag::new(primary);
        if let Some(a) = artist {
            tag.set_artist(a.to_string());
        }
        if let Some(t) = title {
            tag.set_title(t.to_string());
        }
        tag.save_to_path(path, WriteOptions::default()).unwrap();
    }
    // The copy must read back as written, or the test would prove nothing.
    let back = lofty::read_from_path(path).unwrap();
    let got = back.primary_tag().or(back.first_tag());
    assert_eq!(got.and_then(|t| t.artist()).as_deref(), artist, "{path:?}");
    assert_eq!(got.and_then(|t| t.title()).as_deref(), title, "{path:?}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn dupes(db: &Path, by: &str) -> Value {
    let out = ok(&["dupes", "--db", s(db), "--by", by, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

/// Each group as (kind, sorted paths).
fn groups(report: &Value) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut paths: Vec<String> = g["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string())
                .collect();
            paths.sort();
            (g["kind"].as_str().unwrap().to_string(), paths)
        })
        .collect();
    v.sort();
    v
}

fn paths(ps: &[&PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = ps.iter().map(|p| s(p).to_string()).collect();
    v.sort();
    v
}

fn group(kind: &str, ps: &[&PathBuf]) -> (String, Vec<String>) {
    (kind.to_string(), paths(ps))
}

#[test]
fn unicode_spellings_of_one_artist_are_one_artist() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let a = tagged(
        "full.mp3",
        &lib.join("a.mp3"),
        Some("BEYONCÉ"),
        Some("Halo"),
    );
    let b = tagged(
        "full.flac",
        &lib.join("b.flac"),
        Some("Beyoncé"),
        Some("Halo"),
    );
    let c = tagged(
        "full.ogg",
        &lib.join("c.ogg"),
        Some("Beyonce\u{301}"),
        Some("Halo (Radio Edit)"),
    );
    let d = tagged(
        "full.m4a",
        &lib.join("d.m4a"),
        Some("STRASSE"),
        Some("Song"),
    );
    let e = tagged("full.mp3", &lib.join("e.mp3"), Some("Straße"), Some("song"));
    // Same artist, another song; and another artist with the same title.
    tagged(
        "full.flac",
        &lib.join("f.flac"),
        Some("Beyoncé"),
        Some("Irreplaceable"),
    );
    tagged(
        "full.ogg",
        &lib.join("g.ogg"),
        Some("Beyonce"),
        Some("Halo"),
    );
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);

    assert_eq!(
        groups(&dupes(&db, "fuzzy")),
        vec![group("fuzzy", &[&a, &b, &c]), group("fuzzy", &[&d, &e])]
    );
    // The metadata hash lower-cases like Rust does: É and é agree, ß and SS do not.
    assert_eq!(
        groups(&dupes(&db, "metadata")),
        vec![group("metadata", &[&a, &b])]
    );
    // --by all: the fuzzy group {a, b, c} says more than the metadata group; nothing
    // shares content.
    let all = dupes(&db, "all");
    assert_eq!(
        groups(&all),
        vec![
            group("fuzzy", &[&a, &b, &c]),
            group("fuzzy", &[&d, &e]),
            group("metadata", &[&a, &b])
        ]
    );
    // Lossless first: the FLAC is the one to keep.
    let halo = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "fuzzy" && g["files"].as_array().unwrap().len() == 3)
        .unwrap();
    assert_eq!(halo["files"][0]["path"], s(&b));
    assert_eq!(halo["files"][0]["lossless"], true);
}

#[test]
fn files_whose_hash_failed_match_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let a = tagged("full.mp3", &lib.join("a.mp3"), Some("Artist"), Some("Song"));
    let b = tagged(
        "full.flac",
        &lib.join("b.flac"),
        Some("Artist"),
        Some("Song"),
    );
    let c = tagged("full.ogg", &lib.join("c.ogg"), Some("Artist"), Some("Song"));
    tagged("full.m4a", &lib.join("d.m4a"), Some("Other"), Some("Tune"));
    tagged("full.mp3", &lib.join("e.mp3"), Some("Else"), Some("Thing"));
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    assert_eq!(
        groups(&dupes(&db, "all")),
        vec![group("metadata", &[&a, &b, &c])]
    );

    // What the writer stores when reading a file fails: no content hash, an error.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let failed = conn
        .execute(
            "UPDATE library_index SET file_content_hash = NULL, error = 'read: Input/output error'
             WHERE filename IN ('b.flac', 'c.ogg', 'd.m4a', 'e.mp3')",
            [],
        )
        .unwrap();
    assert_eq!(failed, 4);
    drop(conn);
    // The replaced tool grouped every NULL hash together and matched b and c by tags.
    for by in ["content", "metadata", "fuzzy", "all"] {
        assert_eq!(groups(&dupes(&db, by)), vec![], "--by {by}");
    }

    // Vetting a file with the same tags only finds the readable library file.
    let new = tmp.path().join("new");
    let v = tagged("full.ogg", &new.join("x.ogg"), Some("Artist"), Some("Song"));
    let report = vet_json(&new, &db, &[]);
    let f = &report["files"][0];
    assert_eq!(f["path"], s(&v));
    assert_eq!(f["verdict"], "duplicate");
    assert_eq!(f["match"]["path"], s(&a));
    let other = tagged(
        "full.flac",
        &new.join("y.flac"),
        Some("Other"),
        Some("Tune"),
    );
    let report = vet_json(&new, &db, &[]);
    let f = find_file(&report, &other);
    assert_eq!(f["verdict"], "new");
}

#[test]
fn untagged_intros_in_different_albums_are_not_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    tagged("full.mp3", &lib.join("Album A/01 Intro.mp3"), None, None);
    tagged("full.flac", &lib.join("Album B/01 Intro.flac"), None, None);
    tagged("full.ogg", &lib.join("Album C/01 Intro.ogg"), None, None);
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    // Same file stem, so the same no-metadata fallback hash: that must not group them.
    let rows = export(&db);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["metadata_hash"] == rows[0]["metadata_hash"])
    );
    assert_eq!(groups(&dupes(&db, "all")), vec![]);

    let new = tmp.path().join("new");
    let v = tagged("full.m4a", &new.join("01 Intro.m4a"), None, None);
    let report = vet_json(&new, &db, &[]);
    assert_eq!(find_file(&report, &v)["verdict"], "new");
    assert_eq!(report["counts"]["new"], 1);
}

#[test]
fn moved_renamed_and_retagged_files_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let a = tagged(
        "full.mp3",
        &lib.join("x/a.mp3"),
        Some("Artist"),
        Some("Song"),
    );
    let b = tagged(
        "full.flac",
        &lib.join("x/b.flac"),
        Some("Artist"),
        Some("Song"),
    );
    let a2 = lib.join("x/a copy.mp3");
    fs::copy(&a, &a2).unwrap();
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    assert_eq!(
        groups(&dupes(&db, "all")),
        vec![
            group("content", &[&a, &a2]),
            group("metadata", &[&a, &a2, &b])
        ]
    );

    // Move one file to another folder and rename another: only the new paths count.
    let moved = lib.join("y/a.mp3");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&a, &moved).unwrap();
    let renamed = lib.join("x/renamed.flac");
    fs::rename(&b, &renamed).unwrap();
    index_json(&lib, &db, &[]);
    assert_eq!(
        groups(&dupes(&db, "all")),
        vec![
            group("content", &[&a2, &moved]),
            group("metadata", &[&a2, &moved, &renamed])
        ]
    );

    // Retag the copy: different bytes, other tags, the same recording (audio hash).
    retag(&a2, Some("Artist"), Some("Another Song"));
    retag(&renamed, Some("ARTIST"), Some("Song (Album Version)"));
    index_json(&lib, &db, &[]);
    assert_eq!(
        groups(&dupes(&db, "all")),
        vec![
            group("audio", &[&a2, &moved]),
            group("fuzzy", &[&moved, &renamed])
        ]
    );
    // The moved and the renamed file kept their rows: none is left inactive.
    let inactive = export(&db)
        .into_iter()
        .filter(|r| r["is_active"] == 0)
        .count();
    assert_eq!(inactive, 0);
}

#[test]
fn min_score_controls_fuzzy_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let a = tagged(
        "full.mp3",
        &lib.join("a.mp3"),
        Some("Artist"),
        Some("Song Title"),
    );
    let b = tagged(
        "full.flac",
        &lib.join("b.flac"),
        Some("Artist"),
        Some("Song Titel"),
    );
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    // "song title" / "song titel": two edits in ten characters, similarity 0.8.
    assert_eq!(
        groups(&dupes(&db, "fuzzy")),
        vec![group("fuzzy", &[&a, &b])]
    );
    let strict = ok(&[
        "dupes",
        "--db",
        s(&db),
        "--by",
        "fuzzy",
        "--min-score",
        "0.85",
        "--json",
    ]);
    assert_eq!(
        groups(&serde_json::from_str(strict.trim()).unwrap()),
        vec![]
    );
    // The text output names the file to keep.
    let text = ok(&["dupes", "--db", s(&db)]);
    assert!(text.contains("[fuzzy 80%] 2 files"), "{text}");
    assert!(text.contains("keep flac"), "{text}");
}

fn vet_json(folder: &Path, db: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["vet", s(folder), "--db", s(db), "--json"];
    args.extend_from_slice(extra);
    let out = ok(&args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
}

fn find_file<'a>(report: &'a Value, path: &Path) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == s(path))
        .unwrap_or_else(|| panic!("{path:?} not in {report}"))
}

/// A library and a folder of new downloads with one file of every kind.
struct VetSetup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
    new: PathBuf,
    lib_full: PathBuf,
    lib_b: PathBuf,
    same_bytes: PathBuf,
    same_tags: PathBuf,
    edition: PathBuf,
    typo: PathBuf,
    other_song: PathBuf,
    untagged: PathBuf,
    garbage: PathBuf,
}

fn vet_setup() -> VetSetup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let lib = root.join("lib");
    let lib_full = lib.join("The Artist/full.mp3");
    fs::create_dir_all(lib_full.parent().unwrap()).unwrap();
    fs::copy(corpus().join("files/beets/full.mp3"), &lib_full).unwrap();
    let lib_b = tagged(
        "full.flac",
        &lib.join("B/song.flac"),
        Some("Artist B"),
        Some("Song Title"),
    );
    let db = root.join("db");
    index_json(&lib, &db, &[]);

    let new = root.join("new");
    let same_bytes = new.join("Dl 1/sub/full.mp3");
    fs::create_dir_all(same_bytes.parent().unwrap()).unwrap();
    fs::copy(&lib_full, &same_bytes).unwrap();
    // full.ogg from the corpus is tagged "the artist" / "full" like full.mp3.
    let same_tags = new.join("Dl 1/full.ogg");
    fs::copy(corpus().join("files/beets/full.ogg"), &same_tags).unwrap();
    let edition = tagged(
        "full.m4a",
        &new.join("Dl 2/edition.m4a"),
        Some("ARTIST B"),
        Some("Song Title (Radio Edit)"),
    );
    let typo = tagged(
        "full.mp3",
        &new.join("Dl 2/typo.mp3"),
        Some("Artist B"),
        Some("Song Titel"),
    );
    let other_song = tagged(
        "full.mp3",
        &new.join("Dl 2/other.mp3"),
        Some("Artist B"),
        Some("Completely Different"),
    );
    let untagged = tagged("full.flac", &new.join("01 Intro.flac"), None, None);
    let garbage = new.join("broken.mp3");
    fs::write(&garbage, vec![0x5au8; 5000]).unwrap();
    fs::write(new.join("notes.txt"), "not music").unwrap();
    VetSetup {
        _tmp: tmp,
        root,
        db,
        new,
        lib_full,
        lib_b,
        same_bytes,
        same_tags,
        edition,
        typo,
        other_song,
        untagged,
        garbage,
    }
}

#[test]
fn vet_classifies_every_file_and_records_the_run() {
    let t = vet_setup();
    let exp = t.root.join("export");
    let r = vet_json(&t.new, &t.db, &["--export", s(&exp)]);
    assert_eq!(r["counts"]["total"], 7);
    assert_eq!(r["counts"]["new"], 2);
    assert_eq!(r["counts"]["duplicate"], 3);
    assert_eq!(r["counts"]["uncertain"], 1);
    assert_eq!(r["counts"]["unreadable"], 1);

    let check =
        |p: &Path, verdict: &str, kind: Option<&str>, conf: Option<f64>, lib: Option<&Path>| {
            let f = find_file(&r, p);
            assert_eq!(f["verdict"], verdict, "{f}");
            assert_eq!(f["match"]["kind"].as_str(), kind, "{f}");
            assert_eq!(f["match"]["confidence"].as_f64(), conf, "{f}");
            assert_eq!(f["match"]["path"].as_str(), lib.map(s), "{f}");
        };
    check(
        &t.same_bytes,
        "duplicate",
        Some("content"),
        Some(1.0),
        Some(&t.lib_full),
    );
    check(
        &t.same_tags,
        "duplicate",
        Some("metadata"),
        Some(0.95),
        Some(&t.lib_full),
    );
    check(
        &t.edition,
        "duplicate",
        Some("fuzzy"),
        Some(1.0),
        Some(&t.lib_b),
    );
    check(
        &t.typo,
        "uncertain",
        Some("fuzzy"),
        Some(0.8),
        Some(&t.lib_b),
    );
    check(&t.other_song, "new", None, None, None);
    check(&t.untagged, "new", None, None, None);
    check(&t.garbage, "unreadable", None, None, None);
    assert!(
        find_file(&r, &t.garbage)["error"]
            .as_str()
            .unwrap()
            .contains("tags")
    );

    // The export: a header, then one line per file.
    let read = |name: &str| fs::read_to_string(exp.join(name)).unwrap();
    let new_songs = read("new_songs.txt");
    let lines: Vec<&str> = new_songs.lines().collect();
    assert_eq!(lines[0], "# musicdex vet: new songs");
    assert_eq!(lines[1], format!("# folder: {}", s(&t.new)));
    assert!(lines[2].starts_with("# time: 20"), "{}", lines[2]);
    assert_eq!(lines[3], "# count: 2");
    let body: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with('#'))
        .copied()
        .collect();
    assert_eq!(body, vec![s(&t.untagged), s(&t.other_song)]);
    let dups = read("duplicates.txt");
    assert!(dups.contains("# count: 3"), "{dups}");
    assert!(
        dups.contains(&format!(
            "{}\tcontent\t1.00\t{}",
            s(&t.same_bytes),
            s(&t.lib_full)
        )),
        "{dups}"
    );
    assert!(
        dups.contains(&format!(
            "{}\tmetadata\t0.95\t{}",
            s(&t.same_tags),
            s(&t.lib_full)
        )),
        "{dups}"
    );
    let unc = read("uncertain.txt");
    assert!(unc.contains("# count: 1"), "{unc}");
    assert!(
        unc.contains(&format!("{}\tfuzzy\t0.80\t{}", s(&t.typo), s(&t.lib_b))),
        "{unc}"
    );
    assert!(read("unreadable.txt").contains(s(&t.garbage)));

    // Vetting indexed nothing.
    assert_eq!(export(&t.db).len(), 2);

    // The history row.
    let conn = rusqlite::Connection::open(&t.db).unwrap();
    let row: (String, i64, i64, i64, i64, i64, f64, Option<String>) = conn
        .query_row(
            "SELECT import_folder, total_files, new_songs, duplicates_found,
                    uncertain_matches, unreadable, threshold_used, export_dir
             FROM vetting_history",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        row,
        (
            s(&t.new).to_string(),
            7,
            2,
            3,
            1,
            1,
            0.8,
            Some(s(&exp).to_string())
        )
    );
    drop(conn);

    // A higher threshold drops the typo below fuzzy matching: new, not uncertain.
    let strict = vet_json(&t.new, &t.db, &["--threshold", "0.9"]);
    assert_eq!(find_file(&strict, &t.typo)["verdict"], "new");
    assert_eq!(strict["counts"]["uncertain"], 0);
    let conn = rusqlite::Connection::open(&t.db).unwrap();
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM vetting_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2);
}

#[test]
fn vet_moves_certain_duplicates_only_and_never_overwrites() {
    let t = vet_setup();
    let dest = t.root.join("dupes");
    let rel = |p: &Path| p.strip_prefix(&t.new).unwrap().to_path_buf();

    // Dry run: lists the two certain duplicates (same bytes; same tags and duration),
    // moves nothing. The title-only match (edition) is a duplicate but never moves.
    let r = vet_json(
        &t.new,
        &t.db,
        &["--move-duplicates-to", s(&dest), "--dry-run"],
    );
    let moves = r["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 2);
    assert!(
        moves.iter().all(|m| m["status"] == "would move"),
        "{moves:?}"
    );
    assert_eq!(r["counts"]["moved"], 0);
    assert!(!dest.exists());
    for p in [&t.same_bytes, &t.same_tags, &t.edition] {
        assert!(p.exists());
    }

    // One target already exists: that file stays where it is, the other one moves.
    let occupied = dest.join(rel(&t.same_tags));
    fs::create_dir_all(occupied.parent().unwrap()).unwrap();
    fs::write(&occupied, "someone else's file").unwrap();
    let before = fs::read(&t.same_bytes).unwrap();
    let r = vet_json(&t.new, &t.db, &["--move-duplicates-to", s(&dest)]);
    assert_eq!(r["counts"]["moved"], 1);
    let status = |p: &Path| {
        r["moves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["from"] == s(p))
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(&t.same_bytes), "moved");
    assert_eq!(status(&t.same_tags), "skipped: target exists");
    assert_eq!(
        fs::read_to_string(&occupied).unwrap(),
        "someone else's file"
    );
    assert!(t.same_tags.exists());
    assert!(!t.same_bytes.exists());
    assert_eq!(fs::read(dest.join(rel(&t.same_bytes))).unwrap(), before);
    // Fuzzy, uncertain, new and unreadable files are never moved.
    for p in [&t.edition, &t.typo, &t.other_song, &t.untagged, &t.garbage] {
        assert!(p.exists(), "{p:?}");
    }
    let conn = rusqlite::Connection::open(&t.db).unwrap();
    let moved: Vec<(i64, i64)> = conn
        .prepare("SELECT moved, dry_run FROM vetting_history ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(moved, vec![(0, 1), (1, 0)]);
}

#[test]
fn vetting_a_folder_inside_the_library_does_not_match_files_with_themselves() {
    let t = vet_setup();
    let lib = t.lib_b.parent().unwrap().parent().unwrap();
    let r = vet_json(lib, &t.db, &[]);
    assert_eq!(r["counts"]["total"], 2);
    // Each file matches only itself: already indexed, not new.
    assert_eq!(r["counts"]["indexed"], 2, "{r}");
    assert_eq!(r["counts"]["new"], 0, "{r}");
}

#[test]
fn vet_text_summary_and_errors() {
    let t = vet_setup();
    let text = ok(&["vet", s(&t.new), "--db", s(&t.db)]);
    assert!(text.contains("vetted 7 files"), "{text}");
    assert!(text.contains("duplicate         3"), "{text}");
    assert!(text.contains("Dl 2/typo.mp3  = fuzzy 80%"), "{text}");
    let out = musicdex(&["vet", s(&t.root.join("missing")), "--db", s(&t.db)]);
    assert!(!out.status.success());
    let out = musicdex(&["vet", s(&t.new), "--db", s(&t.root.join("no.db"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no index"));
    let out = musicdex(&["vet", s(&t.new), "--db", s(&t.db), "--dry-run"]);
    assert!(
        !out.status.success(),
        "--dry-run needs --move-duplicates-to"
    );
}
