//! One file, one row, nothing lost: roots, symlinks, filters, vanished volumes, retried
//! reads, read-only queries, stop signals and thread limits, each on real audio files and
//! a real SQLite file, through the real binary.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

const ENGINES: &[&str] = &["sequential", "threads", "uring"];

/// Real files from the shared corpus, `files` of them, in an Artist/Album layout.
fn library(dir: &Path, files: usize) -> PathBuf {
    let lib = dir.join("lib");
    let src = corpus().join("files/beets");
    let names = [
        "full.mp3",
        "full.flac",
        "full.ogg",
        "full.m4a",
        "full.opus",
        "full.aiff",
    ];
    for i in 0..files {
        let name = names[i % names.len()];
        let d = lib.join(format!("Artist {}/Album {}", i % 3, i % 2));
        fs::create_dir_all(&d).unwrap();
        fs::copy(src.join(name), d.join(format!("{i:02} {name}"))).unwrap();
    }
    fs::write(lib.join("notes.txt"), "not music").unwrap();
    lib.canonicalize().unwrap()
}

fn index_raw(roots: &[&Path], db: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("index").args(roots).arg("--db").arg(db);
    cmd.args(["--json"]).args(extra).env_remove("MUSICDEX_DB");
    cmd.output().unwrap()
}

/// Index and insist on success.
fn index(roots: &[&Path], db: &Path, extra: &[&str]) -> Value {
    let out = index_raw(roots, db, extra);
    assert!(
        out.status.success(),
        "index {roots:?} {extra:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every row: path → (active, size, content hash, error).
fn rows(db: &Path) -> BTreeMap<String, (u64, u64, Value, Value)> {
    export(db)
        .into_iter()
        .map(|r| {
            (
                r["file_path"].as_str().unwrap().to_string(),
                (
                    r["is_active"].as_u64().unwrap(),
                    r["file_size"].as_u64().unwrap(),
                    r["file_content_hash"].clone(),
                    r["error"].clone(),
                ),
            )
        })
        .collect()
}

fn active(db: &Path) -> Vec<String> {
    rows(db)
        .into_iter()
        .filter(|(_, r)| r.0 == 1)
        .map(|(p, _)| p)
        .collect()
}

/// The content hash as the README defines it, from the file's bytes.
fn md5_head_tail(path: &Path) -> String {
    let b = fs::read(path).unwrap();
    let head = &b[..b.len().min(65536)];
    let tail = (b.len() >= 131072).then(|| &b[b.len() - 65536..]);
    musicdex::media::hash::content_hash(head, tail)
}

/// Every audio file under `dir` (real files only), as stored paths.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_under(&e.path()));
        } else if t.is_file() && e.path().extension().is_some_and(|x| x != "txt") {
            out.push(e.path().to_str().unwrap().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn nested_and_repeated_roots_index_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let sub = lib.join("Artist 1");
    for engine in ENGINES {
        let db = tmp.path().join(format!("{engine}.db"));
        let s = index(&[&lib, &sub, &lib], &db, &["--engine", engine]);
        assert_eq!((n(&s, "files_found"), n(&s, "added")), (12, 12), "{s}");
        assert_eq!(active(&db), files_under(&lib));
        // A nested root first, on a fresh database: still each file once.
        let db2 = tmp.path().join(format!("{engine}-2.db"));
        let s = index(&[&sub, &lib], &db2, &["--engine", engine]);
        assert_eq!((n(&s, "files_found"), n(&s, "added")), (12, 12), "{s}");
        assert_eq!(export(&db2).len(), 12);
    }
}

#[test]
fn a_root_through_a_symlink_is_the_real_root() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 9);
    let link = tmp.path().join("liblink");
    symlink(&lib, &link).unwrap();
    let db = tmp.path().join("db");
    index(&[&lib], &db, &[]);
    let before = rows(&db);
    let s = index(&[&link], &db, &[]);
    assert_eq!((n(&s, "unchanged"), n(&s, "added")), (9, 0), "{s}");
    assert_eq!(n(&s, "removed"), 0);
    // `..` after a link is resolved after following it: liblink/../lib/Artist 0 is lib's.
    let dotdot = link.join("Artist 0/../Artist 0");
    let s = index(&[&dotdot], &db, &[]);
    assert_eq!((n(&s, "added"), n(&s, "removed")), (0, 0), "{s}");
    assert_eq!(
        rows(&db).keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let dupes = ok(&[
        "dupes",
        "--db",
        db.to_str().unwrap(),
        "--by",
        "content",
        "--json",
    ]);
    let d: Value = serde_json::from_str(dupes.trim()).unwrap();
    assert_eq!(d["groups"].as_array().map_or(0, Vec::len), 3, "{d}");
}

#[test]
fn a_root_that_links_to_a_file_is_that_file_in_every_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 6);
    let target = lib.join("Artist 1/Album 1/01 full.flac");
    let link = tmp.path().join("song.flac");
    symlink(&target, &link).unwrap();
    let size = fs::metadata(&target).unwrap().len();
    let mut first = None;
    for engine in ENGINES {
        let db = tmp.path().join(format!("{engine}.db"));
        let s = index(&[&link], &db, &["--engine", engine]);
        assert_eq!((n(&s, "files_found"), n(&s, "errors")), (1, 0), "{s}");
        let r = rows(&db);
        let row = &r[target.to_str().unwrap()];
        assert_eq!(row.1, size, "{engine}: the file's size, not the link's");
        assert_eq!(row.2, md5_head_tail(&target).as_str(), "{engine}");
        assert!(row.3.is_null(), "{engine}: {row:?}");
        match &first {
            None => first = Some(export(&db)),
            Some(f) => {
                let strip = |v: Vec<Value>| -> Vec<Value> {
                    v.into_iter()
                        .map(|mut r| {
                            for k in ["id", "indexed_at", "last_verified"] {
                                r.as_object_mut().unwrap().remove(k);
                            }
                            r
                        })
                        .collect()
                };
                assert_eq!(strip(f.clone()), strip(export(&db)), "{engine}");
            }
        }
    }
}

/// Folders X1..X4 each link to the sibling folder Y/Z (and to the library's own Y/Z),
/// one also to a file in it; Z links back up (a loop). Every file once, under the same
/// path in every run and every engine.
#[test]
fn followed_links_give_each_file_one_stable_path() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 6);
    let outside = tmp.path().canonicalize().unwrap().join("outside/Y/Z");
    fs::create_dir_all(&outside).unwrap();
    let src = corpus().join("files/beets");
    for name in ["full.mp3", "full.flac", "full.ogg"] {
        fs::copy(src.join(name), outside.join(name)).unwrap();
    }
    symlink(outside.parent().unwrap(), outside.join("up")).unwrap();
    for x in ["X4", "X2", "X3", "X1"] {
        let d = lib.join(x);
        fs::create_dir_all(&d).unwrap();
        symlink(&outside, d.join("Z")).unwrap();
        symlink(lib.join("Artist 0"), d.join("inside")).unwrap();
    }
    symlink(outside.join("full.mp3"), lib.join("X1/direct.mp3")).unwrap();
    symlink(
        lib.join("Artist 2/Album 0/02 full.ogg"),
        lib.join("X1/in.ogg"),
    )
    .unwrap();
    let mut want = files_under(&lib);
    // Outside the root: under the first link to it in sorted order.
    for name in ["full.flac", "full.mp3", "full.ogg"] {
        want.push(lib.join("X1/Z").join(name).to_str().unwrap().to_string());
    }
    want.sort();
    for engine in ENGINES {
        let db = tmp.path().join(format!("{engine}.db"));
        for run in 0..3 {
            let s = index(&[&lib], &db, &["--follow-symlinks", "--engine", engine]);
            assert_eq!(
                n(&s, "files_found"),
                want.len() as u64,
                "{engine} run {run}: {s}"
            );
            assert_eq!(n(&s, "removed"), 0, "{engine} run {run}: {s}");
            assert_eq!(active(&db), want, "{engine} run {run}");
            assert_eq!(export(&db).len(), want.len(), "{engine}: no stale rows");
        }
    }
}

#[test]
fn narrowing_ext_removes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let db = tmp.path().join("db");
    index(&[&lib], &db, &[]);
    let s = index(&[&lib], &db, &["--ext", "mp3"]);
    assert_eq!((n(&s, "files_found"), n(&s, "removed")), (2, 0), "{s}");
    assert_eq!(active(&db).len(), 12);
    // Followed links not followed this time were not looked for either.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(
        corpus().join("files/beets/full.wv"),
        other.join("linked.wv"),
    )
    .unwrap();
    symlink(&other, lib.join("other")).unwrap();
    let s = index(&[&lib], &db, &["--follow-symlinks"]);
    assert_eq!((n(&s, "added"), n(&s, "removed")), (1, 0), "{s}");
    let s = index(&[&lib], &db, &[]);
    assert_eq!((n(&s, "files_found"), n(&s, "removed")), (12, 0), "{s}");
    assert_eq!(active(&db).len(), 13);
    // A real deletion inside the filter is one.
    fs::remove_file(lib.join("Artist 0/Album 0/00 full.mp3")).unwrap();
    let s = index(&[&lib], &db, &["--ext", "mp3"]);
    assert_eq!((n(&s, "files_found"), n(&s, "removed")), (1, 1), "{s}");
}

fn refused(out: &Output, root: &Path) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n(&s, "removed"), 0, "{s}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("--max-removed"))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(root.to_str().unwrap()), "{stderr}");
    lines[0].to_string()
}

#[test]
fn an_emptied_root_is_not_a_deleted_library() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let db = tmp.path().join("db");
    index(&[&lib], &db, &[]);
    // The drive is unmounted: the mount point is an empty folder.
    let aside = tmp.path().join("aside");
    fs::rename(&lib, &aside).unwrap();
    fs::create_dir(&lib).unwrap();
    let out = index_raw(&[&lib], &db, &[]);
    let line = refused(&out, &lib);
    assert!(line.contains("12 of its 12"), "{line}");
    assert_eq!(active(&db).len(), 12);
    let stats: Value =
        serde_json::from_str(ok(&["stats", "--db", db.to_str().unwrap(), "--json"]).trim())
            .unwrap();
    assert_eq!(n(&stats, "files"), 12, "{stats}");
    // A share or a count below what is gone refuses too; a count above accepts.
    let out = index_raw(&[&lib], &db, &["--max-removed", "11"]);
    refused(&out, &lib);
    let s = index(&[&lib], &db, &["--max-removed", "12"]);
    assert_eq!(n(&s, "removed"), 12);
}

#[test]
fn max_removed_100_percent_accepts_a_real_deletion() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let db = tmp.path().join("db");
    index(&[&lib], &db, &[]);
    for f in files_under(&lib).iter().take(9) {
        fs::remove_file(f).unwrap();
    }
    refused(&index_raw(&[&lib], &db, &[]), &lib);
    assert_eq!(active(&db).len(), 12);
    let s = index(&[&lib], &db, &["--max-removed", "100%"]);
    assert_eq!((n(&s, "files_found"), n(&s, "removed")), (3, 9), "{s}");
    assert_eq!(active(&db).len(), 3);
    let out = index_raw(&[&lib], &db, &["--max-removed", "lots"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a share"));
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_root_on_another_device_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let db = tmp.path().join("db");
    index(&[&lib], &db, &[]);
    // A real file system over the root, holding all but one of the files: what a
    // different drive mounted at the same place looks like.
    let copy = tmp.path().join("copy");
    copy_tree(&lib, &copy);
    fs::remove_file(copy.join("Artist 0/Album 0/00 full.mp3")).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "musicdex-test"])
        .arg(&lib)
        .output()
        .is_ok_and(|o| o.status.success());
    let _guard = mounted.then(|| Mount(lib.clone()));
    if mounted {
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", copy.display()))
            .arg(&lib)
            .status()
            .unwrap();
        assert!(st.success());
    } else {
        // No right to mount here: the recorded device is made another one instead, and
        // the file removed, which is the same state seen from the index.
        eprintln!("cannot mount a tmpfs here; recording another device instead");
        fs::remove_file(lib.join("Artist 0/Album 0/00 full.mp3")).unwrap();
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE library_roots SET device = device + 1", [])
            .unwrap();
    }
    let out = index_raw(&[&lib], &db, &[]);
    let line = refused(&out, &lib);
    assert!(line.contains("another device"), "{line}");
    assert_eq!(
        active(&db).len(),
        12,
        "1 of 12 missing is within 50%, but moved"
    );
    // Accepted on purpose, the new device is recorded and later runs are ordinary.
    let s = index(&[&lib], &db, &["--max-removed", "100%"]);
    assert_eq!(n(&s, "removed"), 1);
    let s = index(&[&lib], &db, &[]);
    assert_eq!((n(&s, "unchanged"), n(&s, "removed")), (11, 0), "{s}");
}

#[test]
fn a_permission_error_is_read_again_once_healed() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to drop to uid nobody");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 6);
    open_to_all(tmp.path());
    let locked = lib.join("Artist 1/Album 1/01 full.flac");
    for engine in ENGINES {
        let db = tmp.path().join(format!("{engine}.db"));
        let run = || {
            let out = musicdex_unprivileged()
                .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
                .args(["--json", "--engine", engine])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        chmod(&locked, 0o000);
        let s = run();
        assert_eq!(n(&s, "errors"), 1, "{engine}: {s}");
        let row = rows(&db)[locked.to_str().unwrap()].clone();
        assert!(
            row.3
                .as_str()
                .unwrap()
                .starts_with("open: Permission denied")
        );
        // chmod leaves size and mtime as they were.
        chmod(&locked, 0o666);
        let s = run();
        assert_eq!(
            (n(&s, "updated"), n(&s, "unchanged")),
            (1, 5),
            "{engine}: {s}"
        );
        assert_eq!(n(&s, "errors"), 0, "{engine}: {s}");
        let row = rows(&db)[locked.to_str().unwrap()].clone();
        assert!(row.3.is_null(), "{engine}: {row:?}");
        assert_eq!(row.2, md5_head_tail(&locked).as_str());
        let stats: Value =
            serde_json::from_str(ok(&["stats", "--db", db.to_str().unwrap(), "--json"]).trim())
                .unwrap();
        assert_eq!(n(&stats, "files_with_errors"), 0, "{stats}");
    }
}

fn dir_listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn reading_commands_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 12);
    let dbdir = tmp.path().join("ro");
    fs::create_dir(&dbdir).unwrap();
    let db = dbdir.join("library.db");
    index(&[&lib], &db, &[]);
    let incoming = tmp.path().join("incoming");
    fs::create_dir(&incoming).unwrap();
    fs::copy(
        lib.join("Artist 0/Album 0/00 full.mp3"),
        incoming.join("again.mp3"),
    )
    .unwrap();
    open_to_all(tmp.path());
    let bytes = fs::read(&db).unwrap();
    let dbs = db.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["stats", "--db", dbs],
        &["export", "--db", dbs],
        &["export", "--db", dbs, "--format", "csv"],
        &["dupes", "--db", dbs],
        &["vet", incoming.to_str().unwrap(), "--db", dbs, "--json"],
    ];
    for (mode, dirmode) in [(0o444, 0o555), (0o444, 0o777)] {
        chmod(&db, mode);
        chmod(&dbdir, dirmode);
        let before = dir_listing(&dbdir);
        for args in commands {
            let out = musicdex_unprivileged().args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{args:?} in a {dirmode:o} folder: {stderr}"
            );
            assert!(!out.stdout.is_empty(), "{args:?}");
            if args[0] == "vet" {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v["counts"]["duplicate"], 1, "{v}");
                if unsafe { libc::geteuid() } == 0 {
                    assert_eq!(
                        stderr.matches("vetting_history not recorded").count(),
                        1,
                        "one warning: {stderr}"
                    );
                }
            } else {
                assert!(stderr.is_empty(), "{args:?}: {stderr}");
            }
            assert_eq!(dir_listing(&dbdir), before, "{args:?} left files behind");
        }
        assert_eq!(fs::read(&db).unwrap(), bytes, "the index was not modified");
    }
    chmod(&dbdir, 0o777);
    chmod(&db, 0o644);
    // Where it may write, vet records its run.
    let out = musicdex(&["vet", incoming.to_str().unwrap(), "--db", dbs, "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(n(&v, "history_id") > 0, "{v}");
    // A missing or empty database: one line naming it, and still no file made.
    let empty = tmp.path().join("empty.db");
    fs::write(&empty, b"").unwrap();
    let missing = tmp.path().join("missing.db");
    for cmd in ["stats", "export", "dupes"] {
        for p in [&empty, &missing] {
            let out = musicdex(&[cmd, "--db", p.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(1), "{cmd} {p:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(stderr.contains(p.to_str().unwrap()), "{stderr}");
        }
        assert_eq!(fs::metadata(&empty).unwrap().len(), 0);
        assert!(!missing.exists());
    }
}

#[test]
fn bad_thread_counts_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 3);
    let db = tmp.path().join("db");
    for bad in ["0", "1025", "100000", "-1", "many"] {
        for engine in ENGINES {
            let arg = format!("--threads={bad}");
            let out = index_raw(&[&lib], &db, &[&arg, "--engine", engine]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
            assert!(stderr.contains("from 1 to 1024"), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    assert!(!db.exists(), "nothing was started");
    let s = index(&[&lib], &db, &["--threads", "1024", "--engine", "threads"]);
    assert_eq!(n(&s, "files_found"), 3);
}

#[test]
fn a_thread_that_cannot_start_is_an_error_and_a_failed_run() {
    if unsafe { libc::geteuid() } != 0 || Command::new("prlimit").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root (to drop to nobody) and prlimit");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), 6);
    open_to_all(tmp.path());
    for engine in ["threads", "uring"] {
        let db = tmp.path().join(format!("{engine}.db"));
        // RLIMIT_NPROC counts every thread of the user: a few are all it may have.
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["prlimit", "--nproc=3:3"])
            .arg(bin_for_nobody())
            .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
            .args(["--json", "--threads", "64", "--engine", engine])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{engine}: {stderr}");
        assert!(stderr.contains("cannot start"), "{engine}: {stderr}");
        assert!(!stderr.contains("panicked"), "{engine}: {stderr}");
        assert_eq!(last_status(&db), "failed", "{engine}");
    }
}

fn last_status(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT status FROM index_runs ORDER BY id DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Start a run over a large library and signal it once it is under way.
fn signal_mid_run(lib: &Path, db: &Path, signal: i32) -> std::process::ExitStatus {
    let mut child = Command::new(bin())
        .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
        .args(["--json", "--engine", "sequential"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if let Ok(c) = rusqlite::Connection::open(db)
            && let Ok(n) = c.query_row(
                "SELECT count(*) FROM index_runs WHERE status = 'running'",
                [],
                |r| r.get::<_, i64>(0),
            )
            && n > 0
        {
            // Into the files, well before their end (about 2 s in a debug build).
            std::thread::sleep(std::time::Duration::from_millis(200));
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap()
}

#[test]
fn sigterm_and_sighup_stop_cleanly_and_kill_9_is_closed_later() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("gen");
    let total = 1500;
    dev_ok(&[
        "gen-library",
        lib.to_str().unwrap(),
        "--files",
        "1500",
        "--mix",
        "small",
    ]);
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let db = tmp.path().join(format!("{signal}.db"));
        let status = signal_mid_run(&lib, &db, signal);
        assert_eq!(status.code(), Some(code), "signal {signal}");
        assert_eq!(last_status(&db), "interrupted");
        let c = rusqlite::Connection::open(&db).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let partial: i64 = c
            .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
            .unwrap();
        assert!((partial as usize) < total, "stopped mid-run");
        drop(c);
        let s = index(&[&lib], &db, &["--engine", "sequential"]);
        assert_eq!(n(&s, "files_found") as usize, total);
        assert_eq!(export(&db).len(), total);
    }
    // kill -9: nothing can log it; stats calls it abandoned, the next run closes it.
    let db = tmp.path().join("killed.db");
    use std::os::unix::process::ExitStatusExt;
    let status = signal_mid_run(&lib, &db, libc::SIGKILL);
    assert_eq!(status.signal(), Some(9));
    assert_eq!(last_status(&db), "running");
    let stats: Value =
        serde_json::from_str(ok(&["stats", "--db", db.to_str().unwrap(), "--json"]).trim())
            .unwrap();
    assert_eq!(stats["last_run"]["status"], "abandoned", "{stats}");
    index(&[&lib], &db, &["--engine", "sequential"]);
    let c = rusqlite::Connection::open(&db).unwrap();
    let statuses: Vec<String> = c
        .prepare("SELECT status FROM index_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["abandoned", "complete"]);
}
