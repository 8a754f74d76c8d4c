//! The fast engines must write the rows the reference engine writes, column for column
//! (timestamps and row ids aside), on real files, on files whose tags sit beyond the head
//! and tail they read first, and when files and folders are unreadable or change mid-run.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const FAST: &[&str] = &["threads", "uring"];

/// Rows keyed by path, without the columns that legitimately differ between runs.
fn rows(db: &Path) -> BTreeMap<String, Value> {
    export(db)
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            for k in ["id", "indexed_at", "last_verified"] {
                o.remove(k);
            }
            let key = format!("{}|{}", o["file_path"], o["path_bytes"]);
            (key, r)
        })
        .collect()
}

fn assert_same_rows(want: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>, what: &str) {
    let wk: Vec<&String> = want.keys().collect();
    let gk: Vec<&String> = got.keys().collect();
    assert_eq!(wk, gk, "{what}: different files");
    for (k, w) in want {
        assert_eq!(w, &got[k], "{what}: row {k} differs");
    }
}

/// Index `lib` with every engine into fresh databases and compare with the reference.
/// Returns the summaries, reference first.
fn compare_engines(tmp: &Path, lib: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--threads", "3"];
    args.extend_from_slice(extra);
    let seq_db = tmp.join("sequential.db");
    let _ = fs::remove_file(&seq_db);
    let mut seq_args = args.clone();
    seq_args.extend(["--engine", "sequential"]);
    let mut summaries = vec![index_json(lib, &seq_db, &seq_args)];
    let want = rows(&seq_db);
    assert!(!want.is_empty());
    for engine in FAST {
        let db = tmp.join(format!("{engine}.db"));
        let _ = fs::remove_file(&db);
        let mut a = args.clone();
        a.extend(["--engine", engine]);
        let s = index_json(lib, &db, &a);
        assert_eq!(s["engine"], expected_engine(engine), "{s}");
        assert_eq!(n(&s, "files_found"), n(&summaries[0], "files_found"));
        assert_eq!(n(&s, "errors"), n(&summaries[0], "errors"), "{s}");
        assert_same_rows(&want, &rows(&db), engine);
        // An unchanged library is not read again.
        let again = index_json(lib, &db, &a);
        assert_eq!(n(&again, "unchanged"), want.len() as u64, "{again}");
        assert_eq!(again["metrics"]["files_read"], 0, "{again}");
        summaries.push(s);
    }
    summaries
}

#[test]
fn corpus_rows_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = corpus().join("files");
    let s = compare_engines(tmp.path(), &lib, &["--ext", "*"]);
    assert!(n(&s[0], "files_found") >= 150);
    if uring_works() {
        let uring = &s[2]["metrics"];
        assert!(uring["ring_ops"].as_u64().unwrap() > 0, "{uring}");
    }
}

/// Where io_uring is refused the `uring` engine runs as `threads`, legitimately.
fn uring_works() -> bool {
    musicdex::engine::uring::probe(&musicdex::engine::uring::Config::for_threads(
        2,
        &Default::default(),
    ))
    .is_ok()
}

fn expected_engine(engine: &str) -> &str {
    if engine == "uring" && !uring_works() {
        "threads"
    } else {
        engine
    }
}

/// A picture of `len` bytes that no parser will take for anything else.
fn picture_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    let mut x = seed | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Whether lofty could write the picture (it cannot for every format).
fn add_cover(path: &Path, len: usize, seed: u64) -> bool {
    use lofty::config::WriteOptions;
    use lofty::file::TaggedFileExt;
    use lofty::picture::{MimeType, Picture, PictureType};
    use lofty::prelude::*;
    use lofty::tag::Tag;

    let mut tf = lofty::read_from_path(path).unwrap();
    if tf.primary_tag().is_none() {
        tf.insert_tag(Tag::new(tf.primary_tag_type()));
    }
    let tag = tf.primary_tag_mut().unwrap();
    tag.set_title(format!("Title after a {len}-byte picture"));
    tag.set_artist("Cover Artist".into());
    tag.push_picture(
        Picture::unchecked(picture_bytes(len, seed))
            .pic_type(PictureType::CoverFront)
            .mime_type(MimeType::Jpeg)
            .build(),
    );
    tag.save_to_path(path, WriteOptions::default()).is_ok()
}

/// An Artist/Album library of real files, some with cover art far larger than the head
/// and tail the engines read first.
fn library_with_big_art(root: &Path) -> (PathBuf, u64) {
    let lib = root.join("lib");
    let src = corpus().join("files/beets");
    let names = [
        "full.mp3",
        "full.flac",
        "full.m4a",
        "full.ogg",
        "full.opus",
        "full.aiff",
        "full.wv",
        "full.ape",
        "full.mpc",
        "image.flac",
        "image.m4a",
        "image.mp3",
    ];
    let mut first_reads = 0u64;
    for (i, name) in names.iter().enumerate() {
        let dir = lib.join(format!("Artist {}/Album {}", i % 3, i % 2));
        fs::create_dir_all(&dir).unwrap();
        for (j, art) in [0usize, 300_000, 3_000_000].into_iter().enumerate() {
            let p = dir.join(format!("{i:02}-{j} {name}"));
            fs::copy(src.join(name), &p).unwrap();
            if art > 0 && !add_cover(&p, art, (i * 3 + j) as u64) {
                // Unwritable format: keep a pristine copy.
                fs::copy(src.join(name), &p).unwrap();
            }
            let size = fs::metadata(&p).unwrap().len();
            first_reads += size.min(128 * 1024);
        }
    }
    (lib, first_reads)
}

#[test]
fn big_cover_art_is_fetched_not_guessed() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, first_reads) = library_with_big_art(tmp.path());
    let s = compare_engines(tmp.path(), &lib, &[]);
    assert_eq!(n(&s[0], "errors"), 0, "{}", s[0]);
    // The rows are right only if the missing middles were fetched: more than the head and
    // tail of every file were read.
    for fast in &s[1..] {
        let read = fast["metrics"]["bytes_read"].as_u64().unwrap();
        assert!(
            read > first_reads,
            "{}: {read} <= {first_reads}",
            fast["engine"]
        );
    }
    let rows = rows(&tmp.path().join("threads.db"));
    let titled = rows
        .values()
        .filter(|r| {
            r["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Title after a 3000000"))
        })
        .count();
    assert!(titled >= 8, "tags behind big pictures were read: {titled}");
}

#[test]
fn stat_through_the_ring_gives_identical_rows() {
    // The engine stats through the ring only while it waits on I/O (a cold cache), which
    // a test cannot arrange; force it.
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _) = library_with_big_art(tmp.path());
    std::fs::write(lib.join("Artist 0/vanishing.mp3"), b"x").unwrap();
    let seq = tmp.path().join("seq.db");
    index_json(&lib, &seq, &["--engine", "sequential"]);
    for mode in ["ring", "sync"] {
        let db = tmp.path().join(format!("statx-{mode}.db"));
        let out = Command::new(bin())
            .env("MUSICDEX_URING_STATX", mode)
            .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
            .args(["--json", "--engine", "uring"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_same_rows(&rows(&seq), &rows(&db), mode);
    }
}

#[test]
fn symlinks_followed_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _) = library_with_big_art(tmp.path());
    std::os::unix::fs::symlink(&lib, lib.join("Artist 0/loop")).unwrap();
    std::os::unix::fs::symlink(
        lib.join("Artist 1/Album 1/01-0 full.flac"),
        lib.join("linked.flac"),
    )
    .unwrap();
    let s = compare_engines(tmp.path(), &lib, &["--follow-symlinks"]);
    // The loop adds nothing, and the link to a file inside the root adds nothing either:
    // that file is indexed once, under its real path.
    assert_eq!(n(&s[0], "files_found"), 36);
}

/// What every engine must store for a file: its real path, its size, and the hash of its
/// own bytes, computed here from the file rather than taken from an engine.
fn assert_rows_are_the_files(db: &Path, want: &[PathBuf]) {
    let mut got: Vec<(String, u64, String)> = export(db)
        .into_iter()
        .map(|r| {
            assert!(r["error"].is_null(), "{r}");
            (
                r["file_path"].as_str().unwrap().to_string(),
                r["file_size"].as_u64().unwrap(),
                r["file_content_hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, u64, String)> = want
        .iter()
        .map(|p| {
            let b = fs::read(p).unwrap();
            let head = &b[..b.len().min(65536)];
            let tail = (b.len() >= 131072).then(|| &b[b.len() - 65536..]);
            (
                p.to_str().unwrap().to_string(),
                b.len() as u64,
                musicdex::media::hash::content_hash(head, tail),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn symlinked_roots_and_links_to_files_give_the_expected_rows() {
    let tmp = tempfile::tempdir().unwrap();
    // Real files of every common format, some with cover art (no big art: the fetch
    // path has its own test, and this one is about paths).
    let lib = tmp.path().join("lib");
    let src = corpus().join("files/beets");
    for (i, name) in ["full.mp3", "full.flac", "full.m4a", "full.ogg", "full.opus"]
        .iter()
        .chain(&["image.flac", "image.m4a", "image.mp3", "full.wv"])
        .enumerate()
    {
        let dir = lib.join(format!("Artist {}/Album {}", i % 3, i % 2));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(src.join(name), dir.join(format!("{i:02}-{} {name}", i % 3))).unwrap();
    }
    let lib = lib.canonicalize().unwrap();
    let mut files = Vec::new();
    let mut stack = vec![lib.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    // A root through a link: every engine stores the real paths, and the same rows.
    let link = tmp.path().join("liblink");
    std::os::unix::fs::symlink(&lib, &link).unwrap();
    let s = compare_engines(tmp.path(), &link, &[]);
    assert_eq!(n(&s[0], "files_found"), files.len() as u64);
    for engine in ["sequential", "threads", "uring"] {
        assert_rows_are_the_files(&tmp.path().join(format!("{engine}.db")), &files);
    }
    // A root that is a link to a file: that file, not the link.
    let target = lib.join("Artist 1/Album 1/01-1 full.flac");
    let one = tmp.path().join("one.flac");
    std::os::unix::fs::symlink(&target, &one).unwrap();
    compare_engines(tmp.path(), &one, &[]);
    for engine in ["sequential", "threads", "uring"] {
        assert_rows_are_the_files(
            &tmp.path().join(format!("{engine}.db")),
            std::slice::from_ref(&target),
        );
    }
}

/// Run `musicdex index` as uid nobody when we are root (root ignores permission bits).
fn index_as_user(lib: &Path, db: &Path, engine: &str) -> (Value, String) {
    let mut cmd = musicdex_unprivileged();
    cmd.args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    cmd.args(["--json", "--threads", "2", "--engine", engine]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{engine}: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn unreadable_files_and_folders_give_identical_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _) = library_with_big_art(tmp.path());
    open_to_all(tmp.path());
    let as_root = unsafe { libc::geteuid() } == 0;
    // Unreadable files, and a folder that cannot be listed.
    chmod(&lib.join("Artist 0/Album 0/00-1 full.mp3"), 0o000);
    chmod(&lib.join("Artist 2/Album 1/05-2 full.aiff"), 0o000);
    chmod(&lib.join("Artist 1/Album 0"), 0o311);
    let mut want = None;
    for engine in ["sequential", "threads", "uring"] {
        let db = tmp.path().join(format!("perm-{engine}.db"));
        let (s, stderr) = index_as_user(&lib, &db, engine);
        if as_root {
            assert!(
                stderr.contains("cannot read directory") && stderr.contains("Artist 1/Album 0"),
                "{engine}: {stderr}"
            );
        }
        let got = rows(&db);
        let denied = got
            .values()
            .filter(|r| {
                r["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("open: Permission denied"))
            })
            .count();
        if as_root {
            assert_eq!(denied, 2, "{engine}: {s}");
        }
        match &want {
            None => want = Some((s, got)),
            Some((ws, w)) => {
                assert_same_rows(w, &got, engine);
                assert_eq!(n(&s, "errors"), n(ws, "errors"), "{engine}");
            }
        }
    }
    chmod(&lib.join("Artist 1/Album 0"), 0o777);
}

/// Files deleted, truncated and rewritten while the engine runs: the run completes, and
/// every row describes the file as it was before or after, or carries the error a reader
/// would have met.
#[test]
fn files_changing_mid_run_are_recorded_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let src = corpus().join("files/beets");
    let names = [
        "full.mp3",
        "full.flac",
        "full.m4a",
        "full.ogg",
        "image.flac",
    ];
    let mut files = Vec::new();
    for i in 0..400 {
        let dir = lib.join(format!("A{}/B{}", i % 7, i % 11));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{i:03} {}", names[i % names.len()]));
        fs::copy(src.join(names[i % names.len()]), &p).unwrap();
        files.push(p);
    }
    let before: BTreeMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect();
    for engine in FAST {
        // Restore the tree, then race the engine.
        for (p, bytes) in &before {
            fs::write(p, bytes).unwrap();
        }
        let db = tmp.path().join(format!("race-{engine}.db"));
        let _ = fs::remove_file(&db);
        let child = Command::new(bin())
            .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
            .args(["--json", "--threads", "2", "--engine", engine])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut errors = [0usize; 3];
        for (i, p) in files.iter().enumerate() {
            // Spread over the run, so some files change between their stat and their read.
            std::thread::sleep(std::time::Duration::from_millis(1));
            match i % 4 {
                0 => drop(fs::remove_file(p)),
                1 => {
                    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                    f.set_len(before[p].len() as u64 / 3).unwrap();
                }
                2 => {
                    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                    f.set_len(1000).unwrap();
                }
                _ => {}
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for r in export(&db) {
            let p = PathBuf::from(r["file_path"].as_str().unwrap());
            let old = &before[&p];
            let size = r["file_size"].as_u64().unwrap();
            match r["error"].as_str() {
                Some(e) if e.starts_with("stat: ") || e.starts_with("open: ") => {
                    errors[e.starts_with("open: ") as usize] += 1;
                    assert!(e.contains("No such file"), "{engine}: {r}")
                }
                Some(e) if e.starts_with("read: ") => {
                    errors[2] += 1;
                    assert!(e.contains("shorter than its stat size"), "{engine}: {r}");
                    assert!(r["file_content_hash"].is_null());
                }
                _ => {
                    // Read whole: size is the old one or one of the truncations, and the
                    // hash is that of those bytes.
                    let len = size as usize;
                    assert!(
                        len == old.len() || len == old.len() / 3 || len == 1000,
                        "{engine}: {r}"
                    );
                    let bytes = &old[..len.min(old.len())];
                    let head = &bytes[..bytes.len().min(65536)];
                    let tail = (bytes.len() >= 131072).then(|| &bytes[bytes.len() - 65536..]);
                    let want = musicdex::media::hash::content_hash(head, tail);
                    assert_eq!(r["file_content_hash"], want.as_str(), "{engine}: {r}");
                }
            }
        }
        eprintln!("{engine}: stat/open/read errors met mid-run: {errors:?}");
    }
}

#[test]
fn uring_falls_back_to_threads_when_refused() {
    // As an unprivileged user, ring memory counts against RLIMIT_MEMLOCK: with a limit of
    // zero io_uring_setup fails, as it does under seccomp or io_uring_disabled.
    if unsafe { libc::geteuid() } != 0 || Command::new("prlimit").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root (to drop to nobody) and prlimit");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _) = library_with_big_art(tmp.path());
    open_to_all(tmp.path());
    let db = tmp.path().join("refused.db");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["prlimit", "--memlock=0:0"])
        .arg(bin_for_nobody())
        .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
        .args(["--json", "--engine", "uring"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("io_uring unavailable").count(),
        1,
        "one notice: {stderr}"
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["engine"], "threads", "{s}");
    assert_eq!(s["metrics"]["ring_ops"], 0);
    let seq = tmp.path().join("seq.db");
    index_json(&lib, &seq, &["--engine", "sequential"]);
    assert_same_rows(&rows(&seq), &rows(&db), "fallback");
}

/// The audio hash done in batches after the parse (issue 15): one folder that one thread
/// takes as one batch of sixteen, mixing music-mix files whose cover pushes the payload
/// past the head read, small files whose payload follows a big cover, files with no
/// audio hash, and unreadable ones. Every engine writes the reference's rows, and every
/// audio hash is the module's reference; a retagged copy keeps its original's.
#[test]
fn audio_hash_batches_mix_big_covers_files_without_one_and_unreadable_ones() {
    use musicdex::media::audio_hash::audio_hash_of_file;
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("gen");
    dev_ok(&[
        "gen-library",
        generated.to_str().unwrap(),
        "--files",
        "9",
        "--mix",
        "music",
        "--seed",
        "4",
    ]);
    let lib = tmp.path().join("lib");
    let dir = lib.join("One batch");
    fs::create_dir_all(&dir).unwrap();
    let mut stack = vec![generated];
    let mut i = 0;
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let ext = p.extension().unwrap().to_str().unwrap().to_owned();
                fs::rename(&p, dir.join(format!("gen{i:02}.{ext}"))).unwrap();
                i += 1;
            }
        }
    }
    assert_eq!(i, 9);
    let beets = corpus().join("files/beets");
    for (k, name) in ["full.mp3", "full.flac", "full.ogg"]
        .into_iter()
        .enumerate()
    {
        let p = dir.join(format!("cover-{name}"));
        fs::copy(beets.join(name), &p).unwrap();
        assert!(add_cover(&p, 300_000, k as u64), "{name}");
    }
    fs::copy(beets.join("full.mp3"), dir.join("full.mp3")).unwrap();
    let mut rng = fastrand::Rng::with_seed(4);
    let noise: Vec<u8> = (0..200_000).map(|_| rng.u8(..)).collect();
    fs::write(dir.join("noise.mp3"), noise).unwrap();
    fs::write(dir.join("notes.txt"), "not audio\n").unwrap();
    fs::copy(dir.join("cover-full.flac"), dir.join("locked.flac")).unwrap();
    open_to_all(tmp.path());
    chmod(&dir.join("locked.flac"), 0o000);

    let as_root = unsafe { libc::geteuid() } == 0;
    let mut want: Option<BTreeMap<String, Value>> = None;
    for engine in ["sequential", "threads", "uring"] {
        let db = tmp.path().join(format!("{engine}.db"));
        let mut cmd = musicdex_unprivileged();
        cmd.args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()]);
        cmd.args(["--json", "--threads", "1", "--ext", "*", "--engine", engine]);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(n(&s, "files_found"), 16, "{s}");
        if engine != "sequential" {
            // The payloads past the head were read after the parse.
            assert!(n(&s["metrics"], "audio_extra_bytes") > 0, "{engine}: {s}");
        }
        let got = rows(&db);
        match &want {
            Some(w) => assert_same_rows(w, &got, engine),
            None => want = Some(got.clone()),
        }
        let by_name: BTreeMap<&str, &Value> = got
            .values()
            .map(|r| (r["filename"].as_str().unwrap(), r))
            .collect();
        for (name, r) in &by_name {
            if *name == "locked.flac" {
                if as_root {
                    let e = r["error"].as_str().unwrap_or_default();
                    assert!(e.starts_with("open: Permission denied"), "{r}");
                }
                continue;
            }
            let reference = audio_hash_of_file(&dir.join(name)).unwrap();
            assert_eq!(
                r["audio_hash"].as_str(),
                reference.as_deref(),
                "{engine} {name}"
            );
            if ["noise.mp3", "notes.txt"].contains(name) {
                assert!(reference.is_none(), "{name}");
            }
        }
        assert_eq!(
            by_name["cover-full.mp3"]["audio_hash"],
            by_name["full.mp3"]["audio_hash"]
        );
        assert_ne!(
            by_name["cover-full.mp3"]["file_content_hash"],
            by_name["full.mp3"]["file_content_hash"]
        );
    }
}
