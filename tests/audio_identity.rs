//! The audio hash in the index (issue 15, items 2-5): retagged copies are one recording
//! for `dupes` and `vet`, a moved or renamed file keeps its row, and an index from before
//! the column keeps working. Real files (the templates, retagged with lofty), a real
//! SQLite file, the real binary.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Copy `src` to `dst` and give it other tags; with `cover`, a picture of that many
/// bytes (past the 64 KiB head for a large one).
fn retag(src: &Path, dst: &Path, title: &str, cover: Option<usize>) {
    use lofty::config::WriteOptions;
    use lofty::file::TaggedFileExt;
    use lofty::picture::{MimeType, Picture, PictureType};
    use lofty::prelude::*;
    use lofty::tag::Tag;

    fs::copy(src, dst).unwrap();
    let mut tf = lofty::read_from_path(dst).unwrap();
    if tf.primary_tag().is_none() {
        tf.insert_tag(Tag::new(tf.primary_tag_type()));
    }
    let tag = tf.primary_tag_mut().unwrap();
    tag.set_title(title.into());
    tag.set_artist(format!("Artist of {title}"));
    if let Some(n) = cover {
        let mut rng = fastrand::Rng::with_seed(n as u64);
        let mut data = vec![0xFF, 0xD8, 0xFF, 0xE0];
        data.extend((4..n).map(|_| rng.u8(..)));
        tag.push_picture(
            Picture::unchecked(data)
                .pic_type(PictureType::CoverFront)
                .mime_type(MimeType::Jpeg)
                .build(),
        );
    }
    tag.save_to_path(dst, WriteOptions::default()).unwrap();
}

/// A mono 16-bit WAV of `len` bytes of seeded noise.
fn wav(len: u32, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    wav_of((0..len).map(|_| rng.u8(..)).collect())
}

/// A mono 16-bit WAV holding `pcm`.
fn wav_of(pcm: Vec<u8>) -> Vec<u8> {
    let len = pcm.len() as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&44_100u32.to_le_bytes());
    b.extend_from_slice(&88_200u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&len.to_le_bytes());
    b.extend(pcm);
    b
}

fn template(ext: &str) -> PathBuf {
    repo().join(format!("fixtures/templates/template.{ext}"))
}

/// Rows of the export by file name.
fn by_name(db: &Path) -> BTreeMap<String, Value> {
    export(db)
        .into_iter()
        .map(|r| (r["filename"].as_str().unwrap().to_string(), r))
        .collect()
}

const FORMATS: &[&str] = &["mp3", "flac", "m4a", "ogg", "opus", "wav", "aiff"];

#[test]
fn retagged_copies_share_the_audio_hash_in_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    for ext in FORMATS {
        fs::copy(template(ext), lib.join(format!("orig.{ext}"))).unwrap();
        retag(
            &template(ext),
            &lib.join(format!("retag.{ext}")),
            "Other",
            None,
        );
        // 100 KB of cover: the payload starts past the 64 KiB head (the file, under
        // 128 KiB, is read whole by the parallel engines' first reads).
        retag(
            &template(ext),
            &lib.join(format!("cover.{ext}")),
            "Cover",
            Some(100_000),
        );
        // 200 KB of cover: a file larger than head and tail; the parse fetches the tag,
        // and with it the payload's head.
        retag(
            &template(ext),
            &lib.join(format!("big.{ext}")),
            "Big",
            Some(200_000),
        );
    }
    // 300 KB of PCM, then tags with a cover appended after the audio: the tail read
    // holds the tags, not the payload's last 64 KiB.
    fs::write(lib.join("long.wav"), wav(300_000, 7)).unwrap();
    retag(
        &lib.join("long.wav"),
        &lib.join("long-cover.wav"),
        "Long",
        Some(100_000),
    );
    // Different audio: the same template with one payload byte near the end flipped.
    let mut other = fs::read(template("wav")).unwrap();
    let at = other.len() - 10;
    other[at] ^= 0x55;
    fs::write(lib.join("other.wav"), other).unwrap();

    let mut per_engine = Vec::new();
    for engine in ["sequential", "threads", "uring"] {
        let db = tmp.path().join(format!("{engine}.db"));
        let summary = index_json(&lib, &db, &["--engine", engine, "--threads", "2"]);
        let extra = summary["metrics"]["audio_extra_bytes"].as_u64().unwrap();
        if engine != "sequential" {
            // The parse has fetched most of what the audio hash needs (it walks the
            // chunks to the appended tag); what is left is counted.
            assert!(extra > 0, "{engine}: {summary}");
        }
        let rows = by_name(&db);
        for ext in FORMATS {
            let o = &rows[&format!("orig.{ext}")];
            let audio = o["audio_hash"].as_str();
            assert!(audio.is_some_and(|a| a.len() == 32), "{ext}: {o}");
            for copy in ["retag", "cover", "big"] {
                let c = &rows[&format!("{copy}.{ext}")];
                assert_eq!(c["audio_hash"].as_str(), audio, "{engine} {copy}.{ext}");
                assert_ne!(
                    c["file_content_hash"], o["file_content_hash"],
                    "{copy}.{ext}"
                );
            }
        }
        assert_ne!(
            rows["other.wav"]["audio_hash"],
            rows["orig.wav"]["audio_hash"]
        );
        assert_eq!(
            rows["long.wav"]["audio_hash"],
            rows["long-cover.wav"]["audio_hash"]
        );
        assert!(rows["long.wav"]["audio_hash"].is_string());
        // The reference path of the module agrees with what the index holds.
        for (name, row) in &rows {
            let want = musicdex::media::audio_hash::audio_hash_of_file(&lib.join(name)).unwrap();
            assert_eq!(row["audio_hash"].as_str(), want.as_deref(), "{name}");
        }
        let hashes: BTreeMap<String, Value> = rows
            .into_iter()
            .map(|(k, v)| (k, v["audio_hash"].clone()))
            .collect();
        per_engine.push(hashes);
    }
    assert_eq!(per_engine[0], per_engine[1], "threads");
    assert_eq!(per_engine[0], per_engine[2], "uring");

    // dupes: one audio group per template format with its four copies, and the long
    // WAV pair; none holds other.wav.
    let db = tmp.path().join("sequential.db");
    let out = ok(&["dupes", "--db", s(&db), "--by", "content", "--json"]);
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let audio: Vec<&Value> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "audio")
        .collect();
    assert_eq!(audio.len(), FORMATS.len() + 1, "{report}");
    assert_eq!(report["summary"]["audio_groups"], FORMATS.len() as u64 + 1);
    for g in audio {
        let files = g["files"].as_array().unwrap();
        let long = files[0]["path"].as_str().unwrap().contains("long");
        assert_eq!(files.len(), if long { 2 } else { 4 }, "{g}");
        assert!(
            files
                .iter()
                .all(|f| !f["path"].as_str().unwrap().contains("other.wav"))
        );
    }
    let text = ok(&["dupes", "--db", s(&db), "--by", "content"]);
    assert!(
        text.contains("[audio 100%] 4 files (same recording, different tags)"),
        "{text}"
    );
}

#[test]
fn an_audio_group_equal_to_a_content_group_is_not_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    fs::copy(template("flac"), lib.join("a.flac")).unwrap();
    fs::copy(template("flac"), lib.join("b.flac")).unwrap();
    let db = tmp.path().join("i.db");
    index_json(&lib, &db, &[]);
    let out = ok(&["dupes", "--db", s(&db), "--by", "content", "--json"]);
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let kinds: Vec<&str> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["content"], "{report}");
}

#[test]
fn vet_moves_a_retagged_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let new = tmp.path().join("new");
    let dest = tmp.path().join("dupes");
    fs::create_dir(&lib).unwrap();
    fs::create_dir(&new).unwrap();
    fs::copy(template("mp3"), lib.join("song.mp3")).unwrap();
    fs::copy(template("flac"), lib.join("tune.flac")).unwrap();
    // Other tags and a cover: not a content match, not a metadata match.
    retag(
        &template("mp3"),
        &new.join("x.mp3"),
        "Unrelated",
        Some(90_000),
    );
    retag(&template("flac"), &new.join("y.flac"), "Unrelated 2", None);
    let db = tmp.path().join("i.db");
    index_json(&lib, &db, &[]);
    let out = ok(&[
        "vet",
        s(&new),
        "--db",
        s(&db),
        "--json",
        "--move-duplicates-to",
        s(&dest),
    ]);
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    for f in r["files"].as_array().unwrap() {
        assert_eq!(f["verdict"], "duplicate", "{f}");
        assert_eq!(f["match"]["kind"], "audio", "{f}");
        assert_eq!(f["match"]["certain"], true, "{f}");
    }
    assert!(dest.join("x.mp3").is_file() && dest.join("y.flac").is_file());
    assert!(!new.join("x.mp3").exists());
}

/// Index a library, move a folder and rename two files, index again: the rows are the
/// same rows under new paths.
#[test]
fn moved_and_renamed_files_keep_their_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let db = tmp.path().join("i.db");
    fs::create_dir_all(lib.join("A/Album")).unwrap();
    fs::create_dir_all(lib.join("B")).unwrap();
    let mut rng = fastrand::Rng::with_seed(4);
    // Distinct audio: a template with one payload byte changed per copy (WAV: the data
    // chunk runs to the end), and the formats as they are.
    let base = fs::read(template("wav")).unwrap();
    for i in 0..5 {
        let mut b = base.clone();
        let at = b.len() - 1 - rng.usize(..1000);
        b[at] = b[at].wrapping_add(1 + i as u8);
        fs::write(lib.join(format!("A/Album/{i:02}.wav")), b).unwrap();
    }
    for ext in FORMATS {
        fs::copy(template(ext), lib.join(format!("B/t.{ext}"))).unwrap();
    }
    index_json(&lib, &db, &[]);
    let before = by_name(&db);
    let id_of = |rows: &BTreeMap<String, Value>, name: &str| rows[name]["id"].as_i64().unwrap();

    fs::rename(lib.join("A/Album"), lib.join("B/Album moved")).unwrap();
    fs::rename(lib.join("B/t.mp3"), lib.join("B/renamed.mp3")).unwrap();
    fs::rename(lib.join("B/t.flac"), lib.join("A/renamed.flac")).unwrap();
    let s2 = index_json(&lib, &db, &[]);
    assert_eq!(
        (n(&s2, "moved"), n(&s2, "removed"), n(&s2, "added")),
        (7, 0, 0),
        "{s2}"
    );
    let after = export(&db);
    assert_eq!(after.len(), 12, "no row added");
    let after = by_name(&db);
    for i in 0..5 {
        let name = format!("{i:02}.wav");
        assert_eq!(id_of(&after, &name), id_of(&before, &name));
        assert_eq!(after[&name]["indexed_at"], before[&name]["indexed_at"]);
        assert!(
            after[&name]["file_path"]
                .as_str()
                .unwrap()
                .contains("B/Album moved/")
        );
        assert_eq!(after[&name]["is_active"], 1);
    }
    assert_eq!(id_of(&after, "renamed.mp3"), id_of(&before, "t.mp3"));
    assert_eq!(id_of(&after, "renamed.flac"), id_of(&before, "t.flac"));
    // The text summary says it too, and a third run changes nothing.
    let text = ok(&["index", s(&lib), "--db", s(&db)]);
    assert!(text.contains(" 0 moved"), "{text}");
    assert_eq!(export(&db).len(), 12);
}

/// Two identical copies, one moved: the moved one matches two rows (its own former row
/// and the copy that stayed, which is not missing) — only the missing row is a
/// candidate, so it moves. Two identical copies both moved, to two new names: each
/// missing row matches two new files: remove + add.
#[test]
fn ambiguous_moves_fall_back_to_remove_and_add() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let db = tmp.path().join("i.db");
    fs::create_dir_all(lib.join("x")).unwrap();
    fs::copy(template("ogg"), lib.join("x/one.ogg")).unwrap();
    fs::copy(template("ogg"), lib.join("x/two.ogg")).unwrap();
    fs::copy(template("mp3"), lib.join("x/keep.mp3")).unwrap();
    fs::copy(template("flac"), lib.join("x/keep.flac")).unwrap();
    index_json(&lib, &db, &[]);
    let before = by_name(&db);

    // One of the pair moved: one missing row, one new file.
    fs::rename(lib.join("x/one.ogg"), lib.join("one moved.ogg")).unwrap();
    let s1 = index_json(&lib, &db, &[]);
    assert_eq!(
        (n(&s1, "moved"), n(&s1, "removed"), n(&s1, "added")),
        (1, 0, 0),
        "{s1}"
    );
    let rows = by_name(&db);
    assert_eq!(rows["one moved.ogg"]["id"], before["one.ogg"]["id"]);

    // Both copies moved at once: two missing rows, two new files, all four alike.
    fs::rename(lib.join("one moved.ogg"), lib.join("x/1.ogg")).unwrap();
    fs::rename(lib.join("x/two.ogg"), lib.join("x/2.ogg")).unwrap();
    let s2 = index_json(&lib, &db, &["--max-removed", "100%"]);
    assert_eq!(
        (n(&s2, "moved"), n(&s2, "removed"), n(&s2, "added")),
        (0, 2, 2),
        "{s2}"
    );
    let all = export(&db);
    let active: Vec<&Value> = all.iter().filter(|r| r["is_active"] == 1).collect();
    assert_eq!(active.len(), 4);
    assert_eq!(all.len(), 6, "two rows removed, two added");
}

/// A file deleted in one run and back under another name in a later one gets its old
/// row back; an index written before the audio hash existed opens, reports the rows
/// without one, and a `--full` run fills them.
#[test]
fn across_runs_and_from_an_older_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let db = tmp.path().join("i.db");
    let parked = tmp.path().join("parked.m4a");
    fs::create_dir(&lib).unwrap();
    for ext in FORMATS {
        fs::copy(template(ext), lib.join(format!("t.{ext}"))).unwrap();
    }
    index_json(&lib, &db, &[]);
    let before = by_name(&db);
    fs::rename(lib.join("t.m4a"), &parked).unwrap();
    let s1 = index_json(&lib, &db, &[]);
    assert_eq!(n(&s1, "removed"), 1, "{s1}");
    fs::rename(&parked, lib.join("back.m4a")).unwrap();
    let s2 = index_json(&lib, &db, &[]);
    assert_eq!((n(&s2, "moved"), n(&s2, "added")), (1, 0), "{s2}");
    let rows = by_name(&db);
    assert_eq!(rows["back.m4a"]["id"], before["t.m4a"]["id"]);
    assert_eq!(rows["back.m4a"]["is_active"], 1);
    assert_eq!(export(&db).len(), FORMATS.len());

    // Rows indexed before the column existed hold no audio hash.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("UPDATE library_index SET audio_hash = NULL", [])
            .unwrap();
    }
    let unchanged = index_json(&lib, &db, &[]);
    assert_eq!(n(&unchanged, "unchanged"), FORMATS.len() as u64);
    let stats: Value =
        serde_json::from_str(ok(&["stats", "--db", s(&db), "--json"]).trim()).unwrap();
    assert_eq!(stats["files_without_audio_hash"], FORMATS.len() as u64);
    let text = ok(&["stats", "--db", s(&db)]);
    assert!(
        text.contains("7 active files without an audio hash"),
        "{text}"
    );
    index_json(&lib, &db, &["--full"]);
    let stats: Value =
        serde_json::from_str(ok(&["stats", "--db", s(&db), "--json"]).trim()).unwrap();
    assert_eq!(stats["files_without_audio_hash"], 0);
    let rows = by_name(&db);
    assert!(rows.values().all(|r| r["audio_hash"].is_string()));
}

/// A database at the schema just before the audio hash, with a row in it, is migrated
/// by the next `index` run: the row stays, without an audio hash until it is read again.
#[test]
fn the_migration_keeps_older_rows() {
    use musicdex::store::schema::MIGRATIONS;
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("old.db");
    let at = MIGRATIONS
        .iter()
        .position(|m| m.contains("ADD COLUMN audio_hash"))
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // The tool-schema migration calls the function musicdex registers.
        musicdex::store::schema::register_functions(&conn).unwrap();
        for m in &MIGRATIONS[..at] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", at as i64).unwrap();
        conn.execute(
            "INSERT INTO library_index (path_bytes, file_path, filename, file_format,
                file_size, file_mtime, file_content_hash, metadata_hash, indexed_at,
                last_verified)
             VALUES (CAST('/old/a.mp3' AS BLOB), '/old/a.mp3', 'a.mp3', 'mp3', 5, 1, 'c',
                'm', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    }
    // Read-only commands ask for one `index` run to upgrade; an empty root touches
    // nothing outside it.
    let out = musicdex(&["stats", "--db", s(&db)]);
    assert!(!out.status.success());
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    index_json(&empty, &db, &[]);
    let stats: Value =
        serde_json::from_str(ok(&["stats", "--db", s(&db), "--json"]).trim()).unwrap();
    assert_eq!(stats["files"], 1, "{stats}");
    assert_eq!(stats["files_without_audio_hash"], 1, "{stats}");
    let rows = export(&db);
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["audio_hash"].is_null(), "{}", rows[0]);
    assert_eq!(rows[0]["file_path"], "/old/a.mp3");
}

/// Two different recordings that start and end with 64 KiB of digital silence have equal
/// audio hashes; their payload lengths differ, and neither `dupes` nor `vet` takes them
/// for one recording, though their durations agree within the usual tolerance.
#[test]
fn silent_ended_recordings_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let new = tmp.path().join("new");
    fs::create_dir(&lib).unwrap();
    fs::create_dir(&new).unwrap();
    let silent = |noise: usize, seed: u64| {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut pcm = vec![0u8; 64 << 10];
        pcm.extend((0..noise).map(|_| rng.u8(..)));
        pcm.extend(vec![0u8; 64 << 10]);
        wav_of(pcm)
    };
    fs::write(lib.join("a.wav"), silent(100_000, 1)).unwrap();
    fs::write(lib.join("b.wav"), silent(120_000, 2)).unwrap();
    fs::write(new.join("c.wav"), silent(110_000, 3)).unwrap();
    let db = tmp.path().join("i.db");
    index_json(&lib, &db, &[]);
    let rows = by_name(&db);
    let (a, b) = (&rows["a.wav"], &rows["b.wav"]);
    assert_eq!(
        a["audio_hash"], b["audio_hash"],
        "the limit this test is about"
    );
    assert!(a["audio_hash"].is_string());
    assert_eq!(a["audio_len"], (128 << 10) + 100_000);
    assert_eq!(b["audio_len"], (128 << 10) + 120_000);
    let out = ok(&["dupes", "--db", s(&db), "--by", "content", "--json"]);
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["groups"], serde_json::json!([]), "{report}");
    let out = ok(&["vet", s(&new), "--db", s(&db), "--json"]);
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    let f = &r["files"][0];
    assert_eq!(f["verdict"], "new", "{f}");
    assert!(f["match"].is_null(), "{f}");
}

/// A generated library of tiny files, where many files share their audio (one short
/// recording under many tags), reorganised: a seeded half of its top folders moved
/// under `reorganised/`, a few files renamed in place. Every moved file whose exact bytes
/// no other moved file shares keeps its row; those that share them (the generator makes a
/// few exact copies) fall back to remove + add. The expectation comes from the rows before
/// the move, not from the pairing code.
#[test]
fn a_reorganised_generated_library_keeps_its_rows() {
    for seed in [3u64, 11] {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        let db = tmp.path().join("i.db");
        dev_ok(&[
            "gen-library",
            s(&lib),
            "--files",
            "1500",
            "--mix",
            "tiny",
            "--seed",
            &seed.to_string(),
        ]);
        index_json(&lib, &db, &[]);
        let before: BTreeMap<String, Value> = export(&db)
            .into_iter()
            .map(|r| (r["file_path"].as_str().unwrap().to_string(), r))
            .collect();
        let audio: std::collections::HashSet<&str> = before
            .values()
            .filter_map(|r| r["audio_hash"].as_str())
            .collect();
        assert!(
            audio.len() * 3 < before.len() * 2,
            "the tiny mix shares audio widely: {} hashes for {} files",
            audio.len(),
            before.len()
        );

        let mut rng = fastrand::Rng::with_seed(seed);
        let dest = lib.join("reorganised");
        fs::create_dir(&dest).unwrap();
        // (old path, new path) of every file that moves.
        let mut moves: Vec<(String, String)> = Vec::new();
        let mut tops: Vec<PathBuf> = fs::read_dir(&lib)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() && *p != dest)
            .collect();
        tops.sort();
        for top in tops {
            if rng.bool() {
                continue;
            }
            let to = dest.join(top.file_name().unwrap());
            let old = format!("{}/", s(&top));
            let new = format!("{}/", s(&to));
            for p in before.keys().filter(|p| p.starts_with(&old)) {
                moves.push((p.clone(), p.replacen(&old, &new, 1)));
            }
            fs::rename(&top, &to).unwrap();
        }
        // A few renames in place among the files that stayed.
        let stayed: Vec<String> = before
            .keys()
            .filter(|p| !moves.iter().any(|(o, _)| o == *p))
            .cloned()
            .collect();
        for p in stayed.iter().step_by(97) {
            let (stem, ext) = p.rsplit_once('.').unwrap();
            let to = format!("{stem} (renamed).{ext}");
            fs::rename(p, &to).unwrap();
            moves.push((p.clone(), to));
        }
        assert!(moves.len() > 300, "{} moved", moves.len());

        // Moved files sharing size and content hash with another moved file are ambiguous.
        let key = |p: &str| {
            let r = &before[p];
            (
                r["file_size"].as_i64(),
                r["file_content_hash"].as_str().map(str::to_string),
            )
        };
        let mut count: BTreeMap<_, usize> = BTreeMap::new();
        for (o, _) in &moves {
            *count.entry(key(o)).or_default() += 1;
        }
        let certain: Vec<&(String, String)> =
            moves.iter().filter(|(o, _)| count[&key(o)] == 1).collect();
        let ambiguous = (moves.len() - certain.len()) as u64;

        let s2 = index_json(&lib, &db, &["--max-removed", "100%"]);
        assert_eq!(
            (n(&s2, "moved"), n(&s2, "removed"), n(&s2, "added")),
            (certain.len() as u64, ambiguous, ambiguous),
            "seed {seed}, {} moved of which {ambiguous} ambiguous: {s2}",
            moves.len()
        );
        let after: BTreeMap<String, Value> = export(&db)
            .into_iter()
            .filter(|r| r["is_active"] == 1)
            .map(|r| (r["file_path"].as_str().unwrap().to_string(), r))
            .collect();
        assert_eq!(after.len(), before.len());
        for (o, new) in certain {
            assert_eq!(after[new.as_str()]["id"], before[o]["id"], "{o} -> {new}");
            assert_eq!(after[new.as_str()]["indexed_at"], before[o]["indexed_at"]);
        }
    }
}
