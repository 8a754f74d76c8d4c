//! What makes musicdex hold at the scale of real libraries, end to end on generated real
//! audio files and a real SQLite file: an unchanged re-index writes no row yet keeps
//! `last_verified` meaningful, and a first load builds its indexes after the rows (and a
//! killed one gets them back).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;
use musicdex::store::schema::TOOL_TRIGGER;
use rusqlite::Connection;

fn tiny_library(dir: &Path, files: usize, seed: u64) -> std::path::PathBuf {
    let lib = dir.join("lib");
    dev_ok(&[
        "gen-library",
        lib.to_str().unwrap(),
        "--files",
        &files.to_string(),
        "--mix",
        "tiny",
        "--seed",
        &seed.to_string(),
        "--json",
    ]);
    lib
}

fn metric(v: &serde_json::Value, key: &str) -> u64 {
    v["metrics"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("metrics.{key} missing in {v}"))
}

/// (path, stored last_verified, derived last_verified, is_active) of every row.
fn verified(db: &Path) -> Vec<(String, String, String, i64)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT l.file_path, l.last_verified, v.last_verified, l.is_active
             FROM library_index l JOIN library_verified v ON v.id = l.id ORDER BY l.path_bytes",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn run_started(db: &Path, nth: i64) -> String {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT started_at FROM index_runs WHERE id = ?1",
            [nth],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn unchanged_reindex_writes_no_row_and_last_verified_follows_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tiny_library(tmp.path(), 240, 21);
    let db = tmp.path().join("x.db");

    let first = index_json(&lib, &db, &["--engine", "uring"]);
    let files = n(&first, "added");
    assert!(files >= 200, "{first}");
    assert!(metric(&first, "rows_written") >= files);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = index_json(&lib, &db, &["--engine", "uring"]);
    assert_eq!(n(&second, "unchanged"), files, "{second}");
    assert_eq!(metric(&second, "rows_written"), 0, "{second}");
    let (run1, run2) = (run_started(&db, 1), run_started(&db, 2));
    assert!(run2 > run1);
    let rows = verified(&db);
    assert_eq!(rows.len() as u64, files);
    for (path, stored, derived, active) in &rows {
        assert_eq!(*active, 1, "{path}");
        // The row was written by run 1 and confirmed by run 2 without a write.
        assert!(stored.as_str() >= run1.as_str() && stored.as_str() < run2.as_str());
        assert_eq!(derived, &run2, "{path}");
    }

    // One file changed, one gone: exactly one row rewritten and one marked missing; the
    // missing one keeps what it last had, the others move to run 3.
    let mut audio: Vec<_> = rows.iter().map(|r| r.0.clone()).collect();
    audio.sort();
    let (changed, gone) = (&audio[3], &audio[7]);
    let mut bytes = fs::read(changed).unwrap();
    bytes.extend_from_slice(b"appended");
    fs::write(changed, bytes).unwrap();
    fs::remove_file(gone).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let third = index_json(&lib, &db, &["--engine", "sequential"]);
    assert_eq!(n(&third, "updated"), 1, "{third}");
    assert_eq!(n(&third, "removed"), 1, "{third}");
    // The changed row, and the removal of the gone one.
    assert_eq!(metric(&third, "rows_written"), 1, "{third}");
    let run3 = run_started(&db, 3);
    for (path, stored, derived, active) in verified(&db) {
        if &path == gone {
            assert_eq!(active, 0);
            assert_eq!(
                derived, stored,
                "a missing file was last verified when last read"
            );
        } else if &path == changed {
            assert!(stored >= run3, "a read row stores its own time");
            assert_eq!(derived, stored);
        } else {
            assert_eq!(derived, run3, "{path}");
        }
    }

    // A run over a sub-folder confirms only what is below it.
    let sub = Path::new(&audio[0]).parent().unwrap().to_path_buf();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let fourth = index_json(&sub, &db, &[]);
    assert_eq!(metric(&fourth, "rows_written"), 0, "{fourth}");
    let run4 = run_started(&db, 4);
    for (path, _, derived, active) in verified(&db) {
        if active == 1 {
            let want = if Path::new(&path).starts_with(&sub) {
                &run4
            } else {
                &run3
            };
            assert_eq!(&derived, want, "{path}");
        }
    }
    // Export carries the derived value too.
    let exported = export(&db);
    let row = exported
        .iter()
        .find(|r| r["file_path"] == audio[0].as_str())
        .unwrap();
    assert_eq!(row["last_verified"], run4.as_str());
}

/// The secondary indexes of `library_index` and its trigger: what a first load drops and
/// builds again.
fn index_names(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')
             AND tbl_name = 'library_index' AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn first_load_builds_indexes_after_and_a_killed_load_gets_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tiny_library(tmp.path(), 60, 4);
    let db = tmp.path().join("x.db");
    // The schema's secondary indexes, as a fresh database has them.
    drop(musicdex::store::open(&db).unwrap());
    let want = index_names(&db);
    assert!(
        want.iter().any(|n| n == "idx_dupes_content")
            && want.iter().any(|n| n == TOOL_TRIGGER)
            && !want.iter().any(|n| n == "idx_library_file_path"),
        "{want:?}"
    );

    let first = index_json(&lib, &db, &[]);
    assert!(first["metrics"]["rows_written"].as_u64().unwrap() > 0);
    assert_eq!(index_names(&db), want);
    let conn = Connection::open(&db).unwrap();
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM pending_indexes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);
    // The dupes query plan reads its partial index again.
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT file_content_hash FROM library_index
             WHERE is_active = 1 AND file_content_hash IS NOT NULL ORDER BY file_content_hash",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("idx_dupes_content"), "{plan}");

    // A load killed between dropping and rebuilding: the state it leaves behind, made
    // by the same function the writer calls. Reading commands open the index read-only
    // and leave it be; the next writable open (an index run) builds them again.
    musicdex::store::schema::drop_secondary_indexes(&conn).unwrap();
    drop(conn);
    assert!(index_names(&db).is_empty());
    ok(&["stats", "--db", db.to_str().unwrap()]);
    assert!(index_names(&db).is_empty());
    index_json(&lib, &db, &[]);
    assert_eq!(index_names(&db), want);

    // A second load into a non-empty index keeps its indexes throughout.
    let again = index_json(&lib, &db, &["--full"]);
    assert_eq!(n(&again, "updated"), n(&first, "added"));
    assert_eq!(index_names(&db), want);
}

/// A row inserted as the replaced tool's `database.py` inserts one: its columns only, no
/// `path_bytes`. Its file name is `x.mp3`, whatever the path.
fn tool_insert(conn: &Connection, path: &str) {
    conn.execute(
        "INSERT INTO library_index (file_path, filename, file_format, file_size,
            metadata_hash, indexed_at, file_mtime)
         VALUES (?1, 'x.mp3', 'mp3', 1, 'm', '2026-01-01T00:00:00', '2026-01-01T00:00:00')",
        [path],
    )
    .unwrap();
}

/// Rows whose path key is missing or is not their `file_path`'s bytes.
fn keyless(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM library_index
         WHERE path_bytes IS NULL OR path_bytes != CAST(file_path AS BLOB)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A first load drops only the tool's trigger, whose work it can make up afterwards: a
/// trigger of the user's own on `library_index` fires for every row the load inserts.
#[test]
fn a_trigger_of_the_users_own_fires_for_every_row_of_a_first_load() {
    let (_tmp, lib, db) = library_and_empty_index(300, 13);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE audit (id INTEGER);
             CREATE TRIGGER user_audit AFTER INSERT ON library_index
             BEGIN INSERT INTO audit VALUES (NEW.id); END;",
        )
        .unwrap();
    let want = index_names(&db);
    assert!(want.iter().any(|n| n == "user_audit"), "{want:?}");
    let run = index_json(&lib, &db, &[]);
    assert_eq!(n(&run, "added"), 300);
    assert_eq!(index_names(&db), want);
    let audited: i64 = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM audit JOIN library_index USING (id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 300);
    assert_eq!(soundness(&db), ("ok".into(), 300, 0));
}

/// The replaced tool inserts rows without `path_bytes`; its trigger gives them the key.
/// A first load drops that trigger with the indexes (an INSERT under a trigger copies a
/// page into a statement journal per row), so a row the tool inserts during the load
/// must get its key when the trigger comes back, and, as the later write of a path the
/// load also wrote, take that path's place.
#[test]
fn a_row_the_tool_inserts_during_a_first_load_gets_its_path_key_when_the_trigger_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tiny_library(tmp.path(), 40, 11);
    let db = tmp.path().join("x.db");
    index_json(&lib, &db, &[]);
    let want = index_names(&db);
    let conn = Connection::open(&db).unwrap();
    let rows = |conn: &Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
            .unwrap()
    };
    let before = rows(&conn);
    let (ours_id, ours): (i64, String) = conn
        .query_row(
            "SELECT id, file_path FROM library_index ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();

    // The state inside a first load, made by the function the writer calls.
    musicdex::store::schema::drop_secondary_indexes(&conn).unwrap();
    assert!(index_names(&db).is_empty());
    // The tool's INSERT, as its database.py writes it: no path_bytes. One path is new,
    // one is a path the load also wrote, and one the tool writes twice.
    let new = format!("{}/Tool Added/new one.mp3", lib.display());
    let twice = format!("{}/Tool Added/twice.mp3", lib.display());
    for path in [&new, &ours, &twice, &twice] {
        tool_insert(&conn, path);
    }
    drop(conn);

    // The next writable open builds what the load left pending, the trigger last.
    drop(musicdex::store::open(&db).unwrap());
    assert_eq!(index_names(&db), want);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(rows(&conn), before + 2, "one row per path");
    assert_eq!(keyless(&conn), 0);
    for path in [&new, &ours, &twice] {
        let (n, format): (i64, String) = conn
            .query_row(
                "SELECT count(*), max(file_format) FROM library_index WHERE path_bytes = ?1",
                [path.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, format.as_str()), (1, "mp3"), "{path}");
    }
    let gone: bool = conn
        .query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM library_index WHERE id = ?1)",
            [ours_id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(gone, "the tool's later write of {ours} took its place");
    assert_eq!(soundness(&db), ("ok".into(), before + 2, 0));

    // The trigger works again: the tool's next row gets its key at once.
    let later = format!("{}/Tool Added/later.mp3", lib.display());
    tool_insert(&conn, &later);
    let key: Vec<u8> = conn
        .query_row(
            "SELECT path_bytes FROM library_index WHERE file_path = ?1",
            [&later],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(key, later.as_bytes());
}

/// The replaced tool writing while musicdex first-loads the same index: whatever the
/// interleaving (between the load's batches, with the trigger gone, or after its builds,
/// with the trigger back), every row ends with its path key, the trigger and the indexes
/// are there, and nothing is lost.
#[test]
fn the_tool_writing_during_a_first_load_loses_no_row_and_every_row_gets_its_key() {
    let (_tmp, lib, db) = library_and_empty_index(4000, 12);
    let mut child = spawn_index(&lib, &db, &[]);
    wait_for_rollback_journal(&mut child, &db);
    let tool = Connection::open(&db).unwrap();
    tool.busy_timeout(std::time::Duration::from_secs(60))
        .unwrap();
    // IMMEDIATE: the write lock first, so the tool waits its turn between the load's
    // transactions (the load waits for it the same way).
    let mut tool_paths = Vec::new();
    while child.try_wait().unwrap().is_none() && tool_paths.len() < 500 {
        let path = format!("{}/Tool Added/{:04}.mp3", lib.display(), tool_paths.len());
        tool.execute_batch("BEGIN IMMEDIATE").unwrap();
        tool_insert(&tool, &path);
        tool.execute_batch("COMMIT").unwrap();
        tool_paths.push(path);
    }
    drop(tool);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n(&run, "added"), 4000);
    assert!(!tool_paths.is_empty());

    let t = tool_paths.len() as i64;
    assert_eq!(soundness(&db), ("ok".into(), 4000 + t, 0));
    assert!(index_names(&db).iter().any(|n| n == TOOL_TRIGGER));
    let conn = Connection::open(&db).unwrap();
    let (tool_rows, mid_load): (i64, i64) = conn
        .query_row(
            "SELECT
                (SELECT count(DISTINCT path_bytes) FROM library_index WHERE filename = 'x.mp3'),
                (SELECT count(*) FROM library_index WHERE filename = 'x.mp3' AND id < (
                    SELECT max(id) FROM library_index WHERE filename != 'x.mp3'))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((keyless(&conn), tool_rows), (0, t));
    // How many of the tool's rows went in between the load's own (the trigger gone).
    eprintln!("tool rows: {t}, of which written during the load's rows: {mid_load}");
}

/// The journal mode the index file is in (asking does not change it).
fn journal_mode(db: &Path) -> String {
    Connection::open(db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// The index file's `integrity_check`, its rows, and the index builds still pending.
fn soundness(db: &Path) -> (String, i64, i64) {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT (SELECT integrity_check FROM pragma_integrity_check),
                    (SELECT count(*) FROM library_index), (SELECT count(*) FROM pending_indexes)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// A tiny library of `files` files and, beside it, an index with its schema but no row:
/// a reader never meets a file without one, and the next run is still a first load.
fn library_and_empty_index(files: usize, seed: u64) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tiny_library(tmp.path(), files, seed);
    let db = tmp.path().join("x.db");
    drop(musicdex::store::open(&db).unwrap());
    (tmp, lib, db)
}

/// `musicdex index LIB --db DB --json` started, its stdout and stderr piped.
fn spawn_index(lib: &Path, db: &Path, env: &[(&str, &str)]) -> Child {
    Command::new(bin())
        .args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
        .arg("--json")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until the load `child` runs has left WAL mode (before its first transaction).
fn wait_for_rollback_journal(child: &mut Child, db: &Path) {
    while !in_rollback_journal(db) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the load ended before it left WAL mode"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Whether the index file is out of WAL mode: leaving it rewrites the header's format
/// bytes (18 and 19) from 2 to 1.
fn in_rollback_journal(db: &Path) -> bool {
    let mut header = [0u8; 20];
    fs::File::open(db)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| header[18] == 1 && header[19] == 1)
}

#[test]
fn a_first_load_writes_through_a_rollback_journal_and_readers_work_throughout() {
    let (tmp, lib, db) = library_and_empty_index(4000, 6);
    assert_eq!(journal_mode(&db), "wal");

    let mut child = spawn_index(&lib, &db, &[]);
    // Read-only commands while the load writes: each reads through SQLite's locks (the
    // `-journal` beside the file says a writer is at work) and succeeds. They start once
    // the load has left WAL mode: one that had the index open then would have kept the
    // load in WAL mode (as the end of this test shows).
    wait_for_rollback_journal(&mut child, &db);
    let mut reads = 0;
    while child.try_wait().unwrap().is_none() {
        ok(&["stats", "--db", db.to_str().unwrap()]);
        reads += 1;
    }
    assert!(reads >= 1);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        first["metrics"]["first_load_journal"], "rollback",
        "{first}"
    );
    assert_eq!(n(&first, "added"), 4000);
    // Back in WAL mode, no journal left, every row and index in.
    assert_eq!(journal_mode(&db), "wal");
    assert!(!tmp.path().join("x.db-journal").exists());
    let (check, rows, pending) = soundness(&db);
    assert_eq!(check, "ok");
    assert_eq!((rows, pending), (4000, 0));

    // A run into an index that holds rows is no first load: WAL throughout.
    let again = index_json(&lib, &db, &["--full"]);
    assert!(
        again["metrics"].get("first_load_journal").is_none(),
        "{again}"
    );
    assert_eq!(n(&again, "updated"), 4000);

    // With another connection holding the index open the switch cannot be made: the
    // first load goes through the WAL, as it did before, and loses nothing.
    let other = tmp.path().join("held.db");
    let holder = musicdex::store::open(&other).unwrap();
    let held = index_json(&lib, &other, &[]);
    assert_eq!(held["metrics"]["first_load_journal"], "wal", "{held}");
    let rows: i64 = holder
        .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4000);
    drop(holder);
    assert_eq!(journal_mode(&other), "wal");
}

#[test]
fn a_reader_holding_up_a_first_load_makes_it_wait_not_fail() {
    let (_tmp, lib, db) = library_and_empty_index(3000, 8);
    // A busy timeout far shorter than the reader's hold below: each COMMIT gives up many
    // times before the reader goes.
    let mut child = spawn_index(&lib, &db, &[("MUSICDEX_BUSY_TIMEOUT_MS", "200")]);
    // Once the load has left WAL mode a reader opens a read transaction, which the
    // load's commit of its rows meets.
    wait_for_rollback_journal(&mut child, &db);
    let reader = Connection::open(&db).unwrap();
    reader
        .busy_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
        .unwrap();
    // Held until the load says it waits (it must commit its rows at some point, and
    // cannot while this read is open), or for a minute if it never does.
    let stderr = child.stderr.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let line = line.unwrap();
            if line.contains("waiting for another connection to end its read") {
                let _ = said.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let waited = heard
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_ok();
    // Past ten busy timeouts: the commit kept waiting rather than give up.
    std::thread::sleep(std::time::Duration::from_secs(2));
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);

    let out = child.wait_with_output().unwrap();
    let stderr = lines.join().unwrap();
    assert!(waited, "the load never met the reader: {stderr}");
    assert!(out.status.success(), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["metrics"]["first_load_journal"], "rollback", "{run}");
    assert_eq!(n(&run, "added"), 3000);
    let (check, rows, _) = soundness(&db);
    assert_eq!((check.as_str(), rows), ("ok", 3000));
    assert_eq!(journal_mode(&db), "wal");
}

/// `musicdex index LIB --db DB --json` with SQLite's temporary files in `tmpdir`, the
/// index builds spilling their sort runs once they hold 1 KiB of keys (the sorter's floor,
/// 1 MiB, then applies). With `room`, `tmpdir` is a tmpfs of that size mounted for this
/// run alone (`unshare -rm`); None if this machine cannot make one.
fn index_spilling_to(lib: &Path, db: &Path, tmpdir: &Path, room: Option<&str>) -> Option<Output> {
    let mut cmd = match room {
        Some(size) => {
            let mut c = Command::new("unshare");
            c.args(["-rm", "sh", "-c"])
                .arg(r#"mount -t tmpfs -o size="$1" none "$2" && shift 2 && exec "$@""#)
                .arg("sh")
                .arg(size)
                .arg(tmpdir)
                .arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.args(["index", lib.to_str().unwrap(), "--db", db.to_str().unwrap()])
        .args(["--json", "--no-progress"])
        .env("SQLITE_TMPDIR", tmpdir)
        .env("MUSICDEX_BUILD_CACHE_KIB", "1");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if room.is_some() && !out.status.success() && stderr.contains("unshare") {
        return None;
    }
    Some(out)
}

/// Every index of a fresh schema is there, none pending, every row in, the file sound.
fn assert_built(db: &Path, want: &[String], rows: i64) {
    assert_eq!(index_names(db), want);
    assert_eq!(soundness(db), ("ok".to_string(), rows, 0));
}

#[test]
fn index_builds_sort_through_temporary_files_and_fall_back_to_memory_without_room() {
    const NOTICE: &str = "sorting in memory instead";
    // Paths of ~500 bytes, so that 3000 files' path keys pass the sorter's 1 MiB floor.
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("a".repeat(200)).join("b".repeat(200));
    let lib = tiny_library(&deep, 3000, 9);
    let db = tmp.path().join("x.db");
    drop(musicdex::store::open(&db).unwrap());
    let want = index_names(&db);
    let pristine = tmp.path().join("pristine.db");
    fs::copy(&db, &pristine).unwrap();

    // Room enough: the runs go to temporary files, and nothing is said.
    let roomy = tmp.path().join("roomy");
    fs::create_dir(&roomy).unwrap();
    let out = index_spilling_to(&lib, &db, &roomy, None).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(NOTICE), "{stderr}");
    assert_built(&db, &want, 3000);

    // A temporary folder with no room for one run: the builds say so, sort in memory,
    // and the load completes, where it used to fail at every run with its indexes pending.
    fs::copy(&pristine, &db).unwrap();
    for suffix in ["-wal", "-shm", "-journal"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let full = tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    let Some(out) = index_spilling_to(&lib, &db, &full, Some("16k")) else {
        eprintln!("skipped: `unshare -rm` cannot mount a tmpfs on this machine");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(NOTICE), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(n(&run, "added"), 3000);
    assert_built(&db, &want, 3000);
}
