//! The matching rules of `dupes` and `vet` (issue 12) on real encoded files: MP3s of
//! chosen bitrate and duration are built frame by frame here (silent MPEG-1 Layer III
//! frames, which any decoder plays), tagged with lofty, and read back by lofty before a
//! test relies on them; lossless copies come from the shared corpus.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};
use serde_json::Value;

const SAMPLE_RATE: u32 = 44_100;

/// MPEG-1 Layer III bitrate index of `kbps`.
fn bitrate_index(kbps: u32) -> u8 {
    let table = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    table
        .iter()
        .position(|&b| b == kbps)
        .unwrap_or_else(|| panic!("no MPEG-1 Layer III bitrate {kbps}")) as u8
}

/// Raw MP3 frames: `secs` seconds of silence at `kbps`, 44.1 kHz mono. `salt` goes into
/// the (unused) main-data bytes of the last frame, so equal-length streams can differ.
fn mp3_frames(kbps: u32, secs: f64, salt: u32) -> Vec<u8> {
    let frame_len = (144_000 * kbps / SAMPLE_RATE) as usize;
    let frames = (secs * SAMPLE_RATE as f64 / 1152.0).round() as usize;
    let mut out = Vec::with_capacity(frames * frame_len);
    for _ in 0..frames {
        let start = out.len();
        out.extend_from_slice(&[0xFF, 0xFB, bitrate_index(kbps) << 4, 0xC0]);
        out.resize(start + frame_len, 0);
    }
    let last = out.len() - 4;
    out[last..].copy_from_slice(&salt.to_le_bytes());
    out
}

/// Write an MP3 with exactly this artist and title and check lofty reads back the
/// tags, the bitrate and (within a frame) the duration.
fn mp3(path: &Path, kbps: u32, secs: f64, artist: &str, title: &str) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Silence is silence: since the audio hash (issue 15) equal streams are one
    // recording, so each file's stream is salted by its path to make it a song of its own.
    let salt = path_salt(path);
    fs::write(path, mp3_frames(kbps, secs, salt)).unwrap();
    let mut tag = Tag::new(TagType::Id3v2);
    tag.set_artist(artist.to_string());
    tag.set_title(title.to_string());
    tag.save_to_path(path, WriteOptions::default()).unwrap();
    let back = lofty::read_from_path(path).unwrap();
    let p = back.properties();
    assert_eq!(p.audio_bitrate(), Some(kbps), "{path:?}");
    let got = p.duration().as_secs_f64();
    // Frames are whole and unpadded: a fraction of a percent short.
    assert!(
        (got - secs).abs() < 0.05 + 0.005 * secs,
        "{path:?}: {got} s, wanted {secs}"
    );
    let t = back.primary_tag().unwrap();
    assert_eq!(t.artist().as_deref(), Some(artist));
    assert_eq!(t.title().as_deref(), Some(title));
    path.to_path_buf()
}

/// A corpus file retagged with exactly this artist and title.
fn corpus_copy(name: &str, dest: &Path, artist: &str, title: &str) -> PathBuf {
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(corpus().join("files/beets").join(name), dest).unwrap();
    let tf = lofty::read_from_path(dest).unwrap();
    let primary = tf.primary_tag_type();
    for t in tf.tags() {
        t.tag_type()
            .remove_from_path(dest, WriteOptions::default())
            .unwrap();
    }
    let mut tag = Tag::new(primary);
    tag.set_artist(artist.to_string());
    tag.set_title(title.to_string());
    tag.save_to_path(dest, WriteOptions::default()).unwrap();
    dest.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn dupes(db: &Path, by: &str) -> Value {
    let out = ok(&["dupes", "--db", s(db), "--by", by, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

/// Each group as (kind, sorted file names).
fn groups(report: &Value) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut names: Vec<String> = g["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let p = Path::new(f["path"].as_str().unwrap());
                    p.file_name().unwrap().to_str().unwrap().to_string()
                })
                .collect();
            names.sort();
            (g["kind"].as_str().unwrap().to_string(), names)
        })
        .collect();
    v.sort();
    v
}

fn g(kind: &str, names: &[&str]) -> (String, Vec<String>) {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort();
    (kind.to_string(), v)
}

fn vet(folder: &Path, db: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["vet", s(folder), "--db", s(db), "--json"];
    args.extend_from_slice(extra);
    let out = ok(&args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
}

fn verdict_of<'a>(report: &'a Value, path: &Path) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == s(path))
        .unwrap_or_else(|| panic!("{path:?} not in {report}"))
}

/// Pairs of titles that differ only in a number (and one edition-suffix family that is
/// one recording): the library of the first test.
const NUMBERED: &[(&str, &str)] = &[
    (
        "Another Brick in the Wall, Part 1",
        "Another Brick in the Wall, Part 2",
    ),
    ("Symphony No. 5 in C minor", "Symphony No. 6 in F major"),
    ("Piano Sonata 14", "Piano Sonata 18"),
    ("Sonata Op. 27 No. 1", "Sonata Op. 27 No. 2"),
    ("Greatest Hits Vol. II", "Greatest Hits Vol. III"),
    ("Revolution 1", "Revolution 9"),
    ("I. Allegro con brio", "II. Allegro con brio"),
    ("Part One", "Part Two"),
];

#[test]
fn numbered_titles_stay_apart_and_suffix_variants_group() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let mut n = 0;
    let mut next = |title: &str, secs: f64| {
        n += 1;
        mp3(
            &lib.join(format!("{n:02}.mp3")),
            128,
            secs,
            "The Band",
            title,
        );
        format!("{n:02}.mp3")
    };
    // Same duration within each pair: only the number tells them apart.
    for (a, b) in NUMBERED {
        next(a, 3.0);
        next(b, 3.0);
    }
    next("Revolution", 3.0);
    let levels = [
        next("Levels (Original Mix)", 4.0),
        next("Levels - Remastered", 4.0),
        next("Levels [HD]", 4.0),
    ];
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    // Even at a low threshold, numbers decide.
    for min in ["0.8", "0.5"] {
        let out = ok(&[
            "dupes",
            "--db",
            s(&db),
            "--by",
            "fuzzy",
            "--min-score",
            min,
            "--json",
        ]);
        let report: Value = serde_json::from_str(out.trim()).unwrap();
        let levels: Vec<&str> = levels.iter().map(String::as_str).collect();
        assert_eq!(
            groups(&report),
            vec![g("fuzzy", &levels)],
            "--min-score {min}"
        );
    }
    let levels: Vec<&str> = levels.iter().map(String::as_str).collect();
    assert_eq!(groups(&dupes(&db, "all")), vec![g("fuzzy", &levels)]);
    assert_eq!(groups(&dupes(&db, "metadata")), vec![]);
    assert_eq!(groups(&dupes(&db, "content")), vec![]);

    // vet: the other number of every pair is new, not uncertain; a suffix variant of a
    // library title is a duplicate (by title only: listed, not certain).
    let new = tmp.path().join("new");
    let mut incoming = Vec::new();
    for (i, (a, b)) in NUMBERED.iter().enumerate() {
        // Another number than both library titles: "Part 3" for Part 1 / Part 2.
        let third = a
            .replace('1', "3")
            .replace("No. 5", "No. 7")
            .replace(" 14", " 15");
        let third = third.replace("Vol. II", "Vol. IV").replace("I. ", "IV. ");
        let third = third.replace("One", "Three");
        assert!(&third != a && &third != b, "{third}");
        incoming.push(mp3(
            &new.join(format!("n{i}.mp3")),
            128,
            3.0,
            "The Band",
            &third,
        ));
    }
    let remix = mp3(
        &new.join("levels.mp3"),
        128,
        4.0,
        "The Band",
        "Levels (Radio Edit)",
    );
    let r = vet(&new, &db, &[]);
    for p in &incoming {
        let f = verdict_of(&r, p);
        assert_eq!(f["verdict"], "new", "{f}");
    }
    let f = verdict_of(&r, &remix);
    assert_eq!(f["verdict"], "duplicate", "{f}");
    assert_eq!(f["match"]["kind"], "fuzzy");
    assert_eq!(f["match"]["certain"], false);
}

#[test]
fn the_issue_example_part_2_is_not_a_duplicate_of_part_1() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let title = "Another Brick in the Wall";
    mp3(
        &lib.join("part1.mp3"),
        128,
        3.0,
        "Pink Floyd",
        &format!("{title}, Part 1"),
    );
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let new = tmp.path().join("incoming");
    let part2 = mp3(
        &new.join("part2.mp3"),
        128,
        9.0,
        "Pink Floyd",
        &format!("{title}, Part 2"),
    );
    let moved = tmp.path().join("moved");
    let r = vet(&new, &db, &["--move-duplicates-to", s(&moved)]);
    assert_eq!(verdict_of(&r, &part2)["verdict"], "new");
    assert_eq!(r["counts"]["moved"], 0);
    assert!(part2.exists());
}

#[test]
fn a_duration_mismatch_breaks_a_metadata_match() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    mp3(&lib.join("song-3s.mp3"), 128, 3.0, "Artist", "Song");
    mp3(&lib.join("song-4s.mp3"), 160, 4.5, "Artist", "Song");
    mp3(&lib.join("song-12s.mp3"), 128, 12.0, "Artist", "Song");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let both = vec![g("metadata", &["song-3s.mp3", "song-4s.mp3"])];
    assert_eq!(groups(&dupes(&db, "metadata")), both);
    assert_eq!(groups(&dupes(&db, "all")), both);
    // The text report shows the durations.
    let text = ok(&["dupes", "--db", s(&db)]);
    assert!(text.contains("0:04.5"), "{text}");
    assert!(text.contains("0:03.0"), "{text}");
    assert!(!text.contains("0:12.0"), "{text}");

    let new = tmp.path().join("new");
    let long = mp3(&new.join("long.mp3"), 128, 30.0, "Artist", "Song");
    let close = mp3(&new.join("close.mp3"), 128, 11.0, "Artist", "Song");
    let r = vet(&new, &db, &[]);
    assert_eq!(verdict_of(&r, &long)["verdict"], "new");
    let f = verdict_of(&r, &close);
    assert_eq!(f["verdict"], "duplicate", "{f}");
    assert_eq!(f["match"]["kind"], "metadata");
    assert_eq!(f["match"]["certain"], true);
    assert!(
        f["match"]["path"]
            .as_str()
            .unwrap()
            .ends_with("song-12s.mp3")
    );
    let text = ok(&["vet", s(&new), "--db", s(&db)]);
    assert!(text.contains("0:11.0 vs mp3 128 kbit/s 0:12.0"), "{text}");
}

#[test]
fn a_chain_of_similar_titles_does_not_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    // clara–yara 0.857 and maya–yara 0.846 reach 0.8; clara–maya (0.786) does not.
    mp3(&lib.join("clara.mp3"), 128, 3.0, "Artist", "Song for Clara");
    mp3(&lib.join("maya.mp3"), 128, 3.0, "Artist", "Song for Maya");
    mp3(&lib.join("yara.mp3"), 128, 3.0, "Artist", "Song for Yara");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let got = groups(&dupes(&db, "fuzzy"));
    assert_eq!(got, vec![g("fuzzy", &["clara.mp3", "yara.mp3"])]);
    // Complete linkage: the group's confidence is its weakest pair.
    let r = dupes(&db, "all");
    let c = r["groups"][0]["confidence"].as_f64().unwrap();
    assert!((c - (1.0 - 2.0 / 14.0)).abs() < 1e-9, "{c}");
}

#[test]
fn small_files_with_the_same_first_64_kib_but_other_sizes_are_not_content_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    // 128 kbit/s is 16 000 bytes a second: 5 s and 6 s are 80 and 96 KB, between one
    // and two 64 KiB chunks, where only the first chunk is hashed.
    let a = mp3(&lib.join("a.mp3"), 128, 5.0, "Artist", "Small");
    // b is a with one more second of frames: the same first 64 KiB by construction
    // (lofty's tag frame order need not repeat between two writes).
    let b = lib.join("b.mp3");
    let mut bytes = fs::read(&a).unwrap();
    bytes.extend(mp3_frames(128, 1.0, 0));
    fs::write(&b, &bytes).unwrap();
    let secs = lofty::read_from_path(&b)
        .unwrap()
        .properties()
        .duration()
        .as_secs_f64();
    assert!((secs - 6.0).abs() < 0.1, "{secs}");
    let (la, lb) = (
        fs::metadata(&a).unwrap().len(),
        fs::metadata(&b).unwrap().len(),
    );
    assert!(la > 65_536 && lb < 131_072 && la != lb, "{la} {lb}");
    assert_eq!(
        fs::read(&a).unwrap()[..65_536],
        fs::read(&b).unwrap()[..65_536]
    );
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let rows = export(&db);
    assert_eq!(rows[0]["file_content_hash"], rows[1]["file_content_hash"]);
    assert_eq!(groups(&dupes(&db, "content")), vec![]);
    // Same tags, durations 1 s apart: a metadata match, not a content one.
    assert_eq!(
        groups(&dupes(&db, "all")),
        vec![g("metadata", &["a.mp3", "b.mp3"])]
    );

    // vet: a byte copy of b matches b by content; a file of a's size with a's first
    // 64 KiB but other bytes after them is no content match of a.
    let new = tmp.path().join("new");
    fs::create_dir_all(&new).unwrap();
    let copy_b = new.join("copy-b.mp3");
    fs::copy(&b, &copy_b).unwrap();
    let other = new.join("other.mp3");
    let mut bytes = fs::read(&a).unwrap();
    *bytes.last_mut().unwrap() = 0x5a;
    fs::write(&other, &bytes).unwrap();
    assert_eq!(fs::metadata(&other).unwrap().len(), la);
    assert_ne!(fs::read(&other).unwrap(), fs::read(&a).unwrap());
    let r = vet(&new, &db, &[]);
    let f = verdict_of(&r, &copy_b);
    assert_eq!(f["match"]["kind"], "content", "{f}");
    assert_eq!(f["match"]["path"], s(&b));
    let f = verdict_of(&r, &other);
    assert_eq!(f["match"]["kind"], "metadata", "{f}");
    assert_eq!(f["match"]["certain"], true, "{f}");
}

#[test]
fn vet_of_a_folder_inside_the_library_judges_against_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let outside = mp3(
        &lib.join("Artist/x.mp3"),
        128,
        3.0,
        "Artist",
        "Morning Light",
    );
    let inbox = lib.join("inbox");
    // Two copies of one song inside the folder, and a copy of a song outside it.
    let y1 = mp3(&inbox.join("y.mp3"), 128, 3.0, "Artist", "Evening Rain");
    let y2 = inbox.join("y copy.mp3");
    fs::copy(&y1, &y2).unwrap();
    let x2 = inbox.join("x again.mp3");
    fs::copy(&outside, &x2).unwrap();
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);

    let dest = inbox.join("_dupes");
    let r = vet(&inbox, &db, &["--move-duplicates-to", s(&dest)]);
    assert_eq!(r["counts"]["total"], 3, "{r}");
    assert_eq!(verdict_of(&r, &y1)["verdict"], "indexed");
    assert_eq!(verdict_of(&r, &y2)["verdict"], "indexed");
    let f = verdict_of(&r, &x2);
    assert_eq!(f["verdict"], "duplicate");
    assert_eq!(f["match"]["path"], s(&outside));
    assert_eq!(r["counts"]["moved"], 1);
    assert!(y1.exists() && y2.exists() && !x2.exists());
    assert!(dest.join("x again.mp3").exists());
    // The destination lies inside the folder: it is not vetted again.
    let r = vet(&inbox, &db, &["--move-duplicates-to", s(&dest)]);
    assert_eq!(r["counts"]["total"], 2, "{r}");
    assert_eq!(r["counts"]["moved"], 0);
    assert!(!dest.join("_dupes").exists());
}

#[test]
fn better_copies_are_upgrades_and_never_move() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let lib_mp3 = mp3(&lib.join("tune.mp3"), 128, 1.0, "Artist", "Tune");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let new = tmp.path().join("new");
    let flac = corpus_copy("full.flac", &new.join("tune.flac"), "Artist", "Tune");
    let hi = mp3(&new.join("tune-320.mp3"), 320, 1.0, "Artist", "Tune");
    let same = mp3(&new.join("tune-160.mp3"), 160, 1.0, "Artist", "Tune");
    let lower = mp3(&new.join("tune-64.mp3"), 64, 1.0, "Artist", "Tune");
    let exp = tmp.path().join("export");
    let dest = tmp.path().join("moved");
    let r = vet(
        &new,
        &db,
        &["--export", s(&exp), "--move-duplicates-to", s(&dest)],
    );
    for (p, verdict) in [
        (&flac, "upgrade"),
        (&hi, "upgrade"),
        (&same, "duplicate"),
        (&lower, "duplicate"),
    ] {
        let f = verdict_of(&r, p);
        assert_eq!(f["verdict"], verdict, "{f}");
        assert_eq!(f["match"]["path"], s(&lib_mp3), "{f}");
    }
    assert_eq!(r["counts"]["upgrade"], 2);
    assert_eq!(r["counts"]["moved"], 2);
    assert!(flac.exists() && hi.exists() && !same.exists() && !lower.exists());
    let upgrades = fs::read_to_string(exp.join("upgrades.txt")).unwrap();
    assert!(upgrades.contains("# count: 2"), "{upgrades}");
    assert!(
        upgrades.contains(&format!("{}\tmetadata", s(&flac))),
        "{upgrades}"
    );
    assert!(upgrades.contains("mp3/320\tmp3/128"), "{upgrades}");
    let text = ok(&["vet", s(&new), "--db", s(&db)]);
    assert!(
        text.contains("upgrades (better than every library copy; kept):"),
        "{text}"
    );
}

/// Mount a small tmpfs at `dir`; `false` (with a message) where mounting is refused.
fn mount_tmpfs(dir: &Path) -> bool {
    fs::create_dir_all(dir).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(dir)
        .status();
    match st {
        Ok(st) if st.success() => true,
        other => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs at {dir:?} ({other:?}); cross-file-system move not tested"
            );
            false
        }
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_move_across_file_systems_keeps_mtime_and_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    mp3(&lib.join("a.mp3"), 128, 8.0, "Artist", "Song");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let new = tmp.path().join("new");
    // Over 128 KiB; below 1.5 times the library's bitrate, so not an upgrade.
    let dup = mp3(&new.join("sub/a.mp3"), 160, 8.0, "Artist", "Song");
    let dup2 = mp3(&new.join("b.mp3"), 128, 8.5, "Artist", "Song");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_234_567_890);
    for p in [&dup, &dup2] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    fs::set_permissions(&dup, fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(&dup2, fs::Permissions::from_mode(0o604)).unwrap();
    let bytes = fs::read(&dup).unwrap();

    let mnt = tmp.path().join("mnt");
    if !mount_tmpfs(&mnt) {
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let r = vet(&new, &db, &["--move-duplicates-to", s(&mnt)]);
    assert_eq!(r["counts"]["moved"], 2, "{r}");
    for (from, to, mode) in [
        (&dup, mnt.join("sub/a.mp3"), 0o640),
        (&dup2, mnt.join("b.mp3"), 0o604),
    ] {
        assert!(!from.exists());
        let m = fs::metadata(&to).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{to:?}");
        assert_eq!(m.modified().unwrap(), mtime, "{to:?}");
    }
    assert_eq!(fs::read(mnt.join("sub/a.mp3")).unwrap(), bytes);
}

#[test]
fn a_failed_move_is_reported_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    mp3(&lib.join("a.mp3"), 128, 3.0, "Artist", "Song");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let new = tmp.path().join("new");
    let dup = mp3(&new.join("sub/a.mp3"), 128, 3.0, "Artist", "Song");
    let ok_dup = mp3(&new.join("b.mp3"), 128, 3.2, "Artist", "Song");
    // A file where the move needs a folder: even root cannot move there.
    let dest = tmp.path().join("dest");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("sub"), "in the way").unwrap();
    let out = musicdex(&[
        "vet",
        s(&new),
        "--db",
        s(&db),
        "--move-duplicates-to",
        s(&dest),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("failed: cannot create folder"), "{stdout}");
    assert!(stdout.contains("1 moves failed"), "{stdout}");
    assert!(stderr.contains("moves failed"), "{stderr}");
    // Nothing lost: the failed file stays, the other moved, the obstacle is untouched.
    assert!(dup.exists());
    assert!(!ok_dup.exists() && dest.join("b.mp3").exists());
    assert_eq!(fs::read_to_string(dest.join("sub")).unwrap(), "in the way");
    // With --json too.
    let out = musicdex(&[
        "vet",
        s(&new),
        "--db",
        s(&db),
        "--move-duplicates-to",
        s(&dest),
        "--json",
    ]);
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["counts"]["move_failed"], 1);
}

#[test]
fn vet_shows_progress_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    mp3(&lib.join("a.mp3"), 128, 3.0, "Artist", "Song");
    let db = tmp.path().join("db");
    index_json(&lib, &db, &[]);
    let new = tmp.path().join("new");
    for i in 0..20 {
        mp3(
            &new.join(format!("{i}.mp3")),
            128,
            1.0,
            "Artist",
            &format!("Tune {i}"),
        );
    }
    // script(1) gives the command a pseudo-terminal as stderr.
    let cmd = format!("'{}' vet '{}' --db '{}'", bin().display(), s(&new), s(&db));
    let out = match std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: no script(1) to provide a terminal ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("files read"), "{text}");
    assert!(text.contains("files/s"), "{text}");
    assert!(text.contains("vetted 20 files"), "{text}");
    // Not with --json, and not when stderr is no terminal.
    let piped = musicdex(&["vet", s(&new), "--db", s(&db)]);
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("files read"));
}
