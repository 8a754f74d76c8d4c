//! End-to-end behaviour of `musicdex index`, `stats` and `export` on real files and a real
//! SQLite database.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn src_of(name: &str) -> PathBuf {
    corpus().join("files/beets").join(name)
}

fn small_library(dir: &Path) -> PathBuf {
    // Real files from the shared corpus that parse cleanly, in an Artist/Album layout.
    let lib = dir.join("lib");
    let src = corpus().join("files/beets");
    for (i, name) in [
        "full.mp3",
        "full.flac",
        "full.ogg",
        "full.m4a",
        "full.opus",
        "full.aiff",
    ]
    .iter()
    .enumerate()
    {
        let d = lib.join(format!("Artist {}/Album", i % 2));
        fs::create_dir_all(&d).unwrap();
        fs::copy(src.join(name), d.join(format!("{i:02} {name}"))).unwrap();
    }
    fs::write(lib.join("notes.txt"), "not music").unwrap();
    lib
}

fn active_paths(db: &Path) -> Vec<String> {
    let mut v: Vec<String> = export(db)
        .into_iter()
        .filter(|r| r["is_active"] == 1)
        .map(|r| r["file_path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn content_hash_matches_md5sum_of_head_and_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    // Sizes around the two thresholds: below one chunk, between one and two, two and more.
    let big = corpus().join("files/beets/full.flac");
    let bytes = fs::read(&big).unwrap();
    let mut data = Vec::new();
    while data.len() < 300_000 {
        data.extend_from_slice(&bytes);
        data.extend_from_slice(&(data.len() as u64).to_le_bytes());
    }
    for size in [0usize, 100, 65_536, 100_000, 131_071, 131_072, 299_999] {
        fs::write(lib.join(format!("s{size}.flac")), &data[..size]).unwrap();
    }
    let db = tmp.path().join("db.sqlite");
    index_json(&lib, &db, &[]);
    let rows = export(&db);
    assert_eq!(rows.len(), 7);
    for r in rows {
        let p = r["file_path"].as_str().unwrap();
        let size = r["file_size"].as_u64().unwrap();
        let script = if size >= 131_072 {
            format!("(head -c 65536 '{p}'; tail -c 65536 '{p}') | md5sum")
        } else {
            format!("head -c 65536 '{p}' | md5sum")
        };
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let want = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            r["file_content_hash"].as_str().unwrap(),
            &want[..32],
            "{p} ({size} bytes)"
        );
    }
}

#[test]
fn incremental_runs_track_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = small_library(tmp.path());
    let db = tmp.path().join("db.sqlite");

    let s = index_json(&lib, &db, &[]);
    assert_eq!((n(&s, "files_found"), n(&s, "added")), (6, 6));
    assert_eq!(n(&s, "errors"), 0, "{s}");

    let s = index_json(&lib, &db, &[]);
    assert_eq!(
        (n(&s, "unchanged"), n(&s, "added"), n(&s, "updated")),
        (6, 0, 0)
    );
    assert_eq!(
        s["metrics"]["files_read"], 0,
        "unchanged files are not read again"
    );

    // Modify one (new content and mtime), delete one, add one, rename one.
    let a0 = lib.join("Artist 0/Album");
    let a1 = lib.join("Artist 1/Album");
    let modified = a0.join("00 full.mp3");
    let mut bytes = fs::read(&modified).unwrap();
    bytes.extend_from_slice(&[0u8; 10]);
    fs::write(&modified, bytes).unwrap();
    fs::remove_file(a0.join("02 full.ogg")).unwrap();
    fs::copy(corpus().join("files/beets/full.wv"), a1.join("10 new.wv")).unwrap();
    fs::rename(a1.join("01 full.flac"), a1.join("01 renamed.flac")).unwrap();

    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "files_found"), 6);
    assert_eq!(n(&s, "updated"), 1, "{s}");
    assert_eq!(n(&s, "added"), 1, "the new file: {s}");
    assert_eq!(n(&s, "moved"), 1, "the renamed file keeps its row: {s}");
    assert_eq!(n(&s, "removed"), 1, "the deleted file: {s}");
    assert_eq!(n(&s, "unchanged"), 3, "{s}");

    let rows = export(&db);
    assert_eq!(rows.len(), 7, "rows are never deleted");
    let inactive: Vec<&str> = rows
        .iter()
        .filter(|r| r["is_active"] == 0)
        .map(|r| r["filename"].as_str().unwrap())
        .collect();
    assert_eq!(inactive, ["02 full.ogg"]);

    // A file that comes back is reactivated; a file renamed back moves again.
    fs::copy(src_of("full.ogg"), a0.join("02 full.ogg")).unwrap();
    fs::rename(a1.join("01 renamed.flac"), a1.join("01 full.flac")).unwrap();
    let s = index_json(&lib, &db, &[]);
    assert_eq!(
        (n(&s, "added"), n(&s, "moved"), n(&s, "removed")),
        (1, 1, 0),
        "{s}"
    );
    assert_eq!(active_paths(&db).len(), 7);
    assert_eq!(export(&db).len(), 7);

    // --full reads everything again.
    let s = index_json(&lib, &db, &["--full"]);
    assert_eq!((n(&s, "updated"), n(&s, "unchanged")), (7, 0), "{s}");
}

#[test]
fn indexing_one_folder_leaves_the_others_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = small_library(tmp.path());
    let db = tmp.path().join("db.sqlite");
    index_json(&lib, &db, &[]);
    let s = index_json(&lib.join("Artist 0"), &db, &[]);
    assert_eq!((n(&s, "files_found"), n(&s, "removed")), (3, 0));
    assert_eq!(active_paths(&db).len(), 6);
}

#[test]
fn non_utf8_paths_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    let raw: &[u8] = b"caf\xe9 \xff.mp3";
    let name = std::ffi::OsStr::from_bytes(raw);
    fs::copy(corpus().join("files/beets/full.mp3"), lib.join(name)).unwrap();
    fs::copy(
        corpus().join("files/beets/full.mp3"),
        lib.join("Beyoncé – Halo.mp3"),
    )
    .unwrap();
    let db = tmp.path().join("db.sqlite");
    index_json(&lib, &db, &[]);
    let rows = export(&db);
    let odd = rows
        .iter()
        .find(|r| r["path_bytes"].is_string())
        .expect("raw path row");
    let hex = odd["path_bytes"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    assert_eq!(path.file_name().unwrap().as_bytes(), raw);
    assert!(path.exists(), "stored bytes name the real file");
    let nice = rows.iter().find(|r| r["path_bytes"].is_null()).unwrap();
    assert!(
        nice["file_path"]
            .as_str()
            .unwrap()
            .ends_with("Beyoncé – Halo.mp3")
    );
    // A second run recognises both as unchanged.
    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "unchanged"), 2, "{s}");
}

#[test]
fn broken_files_are_indexed_with_their_error() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    fs::create_dir(&lib).unwrap();
    fs::write(lib.join("empty.mp3"), b"").unwrap();
    let flac = fs::read(corpus().join("files/beets/full.flac")).unwrap();
    fs::write(lib.join("truncated.flac"), &flac[..flac.len() / 3]).unwrap();
    fs::write(lib.join("garbage.ogg"), vec![0x5au8; 5000]).unwrap();
    let db = tmp.path().join("db.sqlite");
    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "files_found"), 3);
    let rows = export(&db);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert!(
            r["file_content_hash"].is_string(),
            "hash recorded even when tags fail: {r}"
        );
        if r["filename"] != "truncated.flac" {
            assert!(r["error"].as_str().unwrap().starts_with("tags:"), "{r}");
        }
    }
    let empty = rows.iter().find(|r| r["filename"] == "empty.mp3").unwrap();
    assert_eq!(
        empty["file_content_hash"],
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert!(n(&s, "errors") >= 2);
}

#[test]
fn symlinks_are_skipped_unless_followed_and_loops_end() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = small_library(tmp.path());
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::copy(
        corpus().join("files/beets/full.mp3"),
        outside.join("linked.mp3"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, lib.join("link-out")).unwrap();
    std::os::unix::fs::symlink(&lib, lib.join("Artist 0/loop")).unwrap();
    let db = tmp.path().join("db.sqlite");
    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "files_found"), 6);
    let db2 = tmp.path().join("db2.sqlite");
    let s = index_json(&lib, &db2, &["--follow-symlinks"]);
    assert_eq!(
        n(&s, "files_found"),
        7,
        "the linked folder once, the loop not at all: {s}"
    );
}

#[test]
fn unreadable_directory_is_reported_and_its_files_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = small_library(tmp.path());
    let db = tmp.path().join("db.sqlite");
    // Root ignores permission bits, so run as nobody when we are root.
    let as_nobody = unsafe { libc::geteuid() } == 0;
    if as_nobody {
        open_to_all(tmp.path());
    }
    let run = |extra: &[&str]| -> (Value, String) {
        let mut cmd = musicdex_unprivileged();
        cmd.args([
            "index",
            lib.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--json",
        ]);
        cmd.args(extra);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (s, _) = run(&[]);
    assert_eq!(n(&s, "files_found"), 6);
    let locked = lib.join("Artist 1");
    chmod(&locked, 0o000);
    let (s, stderr) = run(&[]);
    chmod(&locked, 0o777);
    assert!(
        stderr.contains("cannot read directory") && stderr.contains("Artist 1"),
        "{stderr}"
    );
    assert_eq!(n(&s, "files_found"), 3);
    assert_eq!(
        n(&s, "removed"),
        0,
        "files below an unreadable folder are not gone: {s}"
    );
    assert!(n(&s, "errors") >= 1);
    assert_eq!(active_paths(&db).len(), 6);
}

#[test]
fn clear_errors_for_bad_invocations() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.sqlite");
    let out = musicdex(&["index", "/nonexistent/music", "--db", db.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/music"), "{err}");

    let lib = small_library(tmp.path());
    let out = musicdex(&[
        "index",
        lib.to_str().unwrap(),
        "--db",
        "/proc/self/nope/db.sqlite",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );

    // A database written by a newer musicdex is refused, not clobbered.
    index_json(&lib, &db, &[]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let out = musicdex(&["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn default_database_location_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = small_library(tmp.path());
    let xdg = tmp.path().join("xdg");
    let out = Command::new(bin())
        .args(["index", lib.to_str().unwrap(), "--json"])
        .env_remove("MUSICDEX_DB")
        .env("XDG_DATA_HOME", &xdg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let db = xdg.join("musicdex/library.db");
    assert!(db.exists());
    let stats: Value =
        serde_json::from_str(&ok(&["stats", "--db", db.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(stats["files"], 6);
    assert_eq!(stats["formats"].as_array().unwrap().len(), 6);
    assert!(stats["total_size_bytes"].as_u64().unwrap() > 0);
    assert!(stats["distinct_artists"].as_u64().unwrap() >= 1);
    assert_eq!(stats["last_run"]["status"], "complete");
    let csv = ok(&["export", "--db", db.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(csv.lines().count(), 7);
    assert!(csv.lines().next().unwrap().contains("file_content_hash"));
    let human = ok(&["stats", "--db", db.to_str().unwrap()]);
    assert!(human.starts_with("6 active files"), "{human}");
}

#[test]
fn kill_mid_run_leaves_a_consistent_database() {
    interrupt_mid_run(libc::SIGKILL);
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_completes() {
    interrupt_mid_run(libc::SIGINT);
}

fn interrupt_mid_run(signal: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let src: Vec<PathBuf> = ["full.mp3", "full.flac", "full.ogg", "full.m4a"]
        .iter()
        .map(|n| corpus().join("files/beets").join(n))
        .collect();
    // Enough files that the run is still going after its first committed batch.
    let total = 8000;
    for i in 0..total {
        let d = lib.join(format!("a{}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&d).unwrap();
        }
        let s = &src[i % src.len()];
        fs::copy(
            s,
            d.join(format!("{i}.{}", s.extension().unwrap().to_str().unwrap())),
        )
        .unwrap();
    }
    let db = tmp.path().join("db.sqlite");
    let mut child = Command::new(bin())
        .args([
            "index",
            lib.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some batches have been committed (or after a few seconds at most).
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if let Ok(c) = rusqlite::Connection::open(&db)
            && let Ok(n) = c.query_row("SELECT count(*) FROM library_index", [], |r| {
                r.get::<_, i64>(0)
            })
            && n > 0
        {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    if signal == libc::SIGKILL {
        assert_eq!(
            status.signal(),
            Some(9),
            "the run ended before it could be killed"
        );
    } else {
        assert_eq!(
            status.code(),
            Some(130),
            "Ctrl-C is a clean stop with exit 130"
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    if signal == libc::SIGINT {
        let st: String = conn
            .query_row(
                "SELECT status FROM index_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(st, "interrupted");
    }
    let partial: i64 = conn
        .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
        .unwrap();
    assert!(
        (partial as usize) < total,
        "interrupted mid-run, so only part was written"
    );
    drop(conn);
    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "files_found") as usize, total);
    let rows = export(&db);
    assert_eq!(rows.len(), total);
    assert!(
        rows.iter()
            .all(|r| r["is_active"] == 1 && r["error"].is_null())
    );
}
