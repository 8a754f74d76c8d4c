//! Migration 6 (the replaced tool's schema) on a database of the schema before it: every
//! row of every table kept, the facts moved to their new columns, the view's
//! `last_verified` unchanged. Rows come from a seeded generator: odd paths (non-UTF-8
//! bytes), mtimes before 1970 and far ahead, missing hashes, errors, inactive rows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use musicdex::store::schema::{MIGRATIONS, SCHEMA_VERSION, migrate};
use musicdex::store::{Known, tool_mtime};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

const BEFORE: usize = 5;

fn rows(conn: &Connection, sql: &str) -> Vec<BTreeMap<String, Value>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map([], |r| {
        let mut m = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.clone(), r.get::<_, Value>(i)?);
        }
        Ok(m)
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn opt_text(rng: &mut fastrand::Rng, pool: &[&str]) -> Option<String> {
    rng.bool()
        .then(|| pool[rng.usize(..pool.len())].to_string())
}

fn path(rng: &mut fastrand::Rng, root: &[u8]) -> Vec<u8> {
    let mut p = root.to_vec();
    for _ in 0..rng.usize(1..4) {
        p.extend_from_slice(b"/");
        for _ in 0..rng.usize(1..12) {
            p.push(loop {
                let b = rng.u8(1..);
                if b != b'/' {
                    break b;
                }
            });
        }
    }
    p.extend_from_slice(b".mp3");
    p
}

/// A database at schema 5 holding rows in every table.
fn populate(conn: &mut Connection, rng: &mut fastrand::Rng) {
    for (i, sql) in MIGRATIONS[..BEFORE].iter().enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .unwrap();
        tx.commit().unwrap();
    }
    let names = ["Björk", "坂本龍一", "Motörhead", "A", " spaced ", "ΣΑΣ"];
    let tx = conn.transaction().unwrap();
    for run in 1..=6i64 {
        let status = ["complete", "failed", "running", "abandoned", "interrupted"][rng.usize(..5)];
        tx.execute(
            "INSERT INTO library_stats (started_at, finished_at, duration_secs, roots, engine,
                status, files_found, added, updated, unchanged, removed, errors, pid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                format!("2026-0{run}-01T10:00:00.000Z"),
                rng.bool().then(|| format!("2026-0{run}-01T10:05:00.000Z")),
                rng.bool().then(|| rng.f64() * 100.0),
                "/m/a\n/m/b",
                ["uring", "threads", "sequential"][rng.usize(..3)],
                status,
                rng.i64(0..1000),
                rng.i64(0..1000),
                rng.i64(0..1000),
                rng.i64(0..1000),
                rng.i64(0..1000),
                rng.i64(0..1000),
                rng.bool().then(|| rng.i64(1..100_000)),
            ],
        )
        .unwrap();
        for (kind, p) in [
            ("root", &b"/m/a"[..]),
            ("root", b"/m/b"),
            ("skipped", b"/m/a/x"),
        ] {
            if rng.bool() {
                let (lo, hi) = musicdex::store::subtree_range(p);
                tx.execute(
                    "INSERT INTO run_scope (run_id, kind, path_bytes, lo, hi)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run, kind, p, lo, hi],
                )
                .unwrap();
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3000 {
        let root: &[u8] = if rng.bool() { b"/m/a" } else { b"/m/b" };
        let p = path(rng, root);
        if !seen.insert(p.clone()) {
            continue;
        }
        let mtime = match rng.u8(..4) {
            0 => rng.i64(-5_000_000_000_000_000_000..0),
            1 => rng.i64(..4_000_000_000_000_000_000),
            _ => rng.i64(1_500_000_000_000_000_000..1_800_000_000_000_000_000),
        };
        let hash: Option<String> = rng.bool().then(|| {
            (0..32)
                .map(|_| "0123456789abcdef".as_bytes()[rng.usize(..16)] as char)
                .collect()
        });
        tx.execute(
            "INSERT INTO library_index (path_bytes, file_path, filename, artist, title, album,
                album_artist, track_number, year, genre, duration, bitrate, sample_rate,
                channels, file_format, file_size, file_mtime, file_content_hash, metadata_hash,
                indexed_at, last_verified, is_active, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            params![
                p,
                String::from_utf8_lossy(&p),
                "f.mp3",
                opt_text(rng, &names),
                opt_text(rng, &names),
                opt_text(rng, &names),
                opt_text(rng, &names),
                rng.bool().then(|| rng.i64(1..30)),
                rng.bool().then(|| rng.i64(1900..2100)),
                opt_text(rng, &["Rock", "R&B"]),
                rng.bool().then(|| rng.f64() * 600.0),
                rng.bool().then(|| rng.i64(8..1500)),
                rng.bool().then(|| rng.i64(8000..192_000)),
                rng.bool().then(|| rng.i64(1..8)),
                ["mp3", "flac", "m4a"][rng.usize(..3)],
                rng.i64(0..1 << 40),
                mtime,
                hash,
                format!("{:032x}", rng.u128(..)),
                format!("2026-0{}-01T09:00:00.000Z", rng.u8(1..7)),
                format!("2026-0{}-01T09:30:00.000Z", rng.u8(1..7)),
                rng.bool(),
                rng.bool().then(|| "read: I/O error".to_string()),
            ],
        )
        .unwrap();
    }
    for i in 0..4 {
        tx.execute(
            "INSERT INTO vetting_history (vetted_at, folder, engine, threshold, duration_secs,
                total_files, new_songs, duplicates, uncertain, unreadable, moved, export_dir,
                move_dir, dry_run)
             VALUES (?1, ?2, 'uring', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                format!("2026-0{}-02T10:00:00.000Z", i + 1),
                format!("/in/{i}"),
                rng.f64(),
                rng.f64() * 10.0,
                rng.i64(0..100),
                rng.i64(0..100),
                rng.i64(0..100),
                rng.i64(0..100),
                rng.i64(0..100),
                rng.i64(0..100),
                rng.bool().then(|| "/out".to_string()),
                rng.bool().then(|| "/dupes".to_string()),
                rng.bool(),
            ],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO library_roots (path_bytes, path, device, last_run) VALUES (?1, ?2, ?3, ?4)",
        params![&b"/m/a"[..], "/m/a", 2049, 3],
    )
    .unwrap();
    tx.commit().unwrap();
}

#[test]
fn migration_6_keeps_every_row() {
    for seed in [1u64, 2, 3] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut conn = Connection::open_in_memory().unwrap();
        populate(&mut conn, &mut rng);
        let index = rows(&conn, "SELECT * FROM library_index ORDER BY id");
        let verified = rows(
            &conn,
            "SELECT id, last_verified FROM library_verified ORDER BY id",
        );
        let runs = rows(&conn, "SELECT * FROM library_stats ORDER BY id");
        let scope = rows(&conn, "SELECT * FROM run_scope ORDER BY rowid");
        let vets = rows(&conn, "SELECT * FROM vetting_history ORDER BY id");
        let roots = rows(&conn, "SELECT * FROM library_roots");
        assert!(index.len() > 2500 && runs.len() == 6 && vets.len() == 4);

        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // Migration 6 (the tool's schema) and every later one (7: the audio columns).
        assert!(SCHEMA_VERSION as usize > BEFORE);

        let after = rows(&conn, "SELECT * FROM library_index ORDER BY id");
        assert_eq!(after.len(), index.len());
        for (old, new) in index.iter().zip(&after) {
            for (k, v) in old {
                match k.as_str() {
                    "file_mtime" => {
                        let Value::Integer(ns) = v else {
                            panic!("{v:?}")
                        };
                        assert_eq!(new["file_mtime_ns"], Value::Integer(*ns));
                        assert_eq!(new["file_mtime"], Value::Text(tool_mtime(*ns)));
                    }
                    _ => assert_eq!(&new[k], v, "column {k}"),
                }
            }
        }
        // The tool's sixteen columns come first, in its order.
        let names: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('library_index') ORDER BY cid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            names[..16],
            [
                "id",
                "file_path",
                "filename",
                "artist",
                "title",
                "album",
                "year",
                "duration",
                "file_format",
                "file_size",
                "metadata_hash",
                "file_content_hash",
                "indexed_at",
                "file_mtime",
                "last_verified",
                "is_active"
            ]
        );
        assert_eq!(
            rows(
                &conn,
                "SELECT id, last_verified FROM library_verified ORDER BY id"
            ),
            verified,
            "library_verified's last_verified"
        );
        assert_eq!(rows(&conn, "SELECT * FROM index_runs ORDER BY id"), runs);
        assert_eq!(rows(&conn, "SELECT * FROM run_scope ORDER BY rowid"), scope);
        assert_eq!(rows(&conn, "SELECT * FROM library_roots"), roots);
        let new_vets = rows(&conn, "SELECT * FROM vetting_history ORDER BY id");
        assert_eq!(new_vets.len(), vets.len());
        for (old, new) in vets.iter().zip(&new_vets) {
            for (k, v) in old {
                let renamed = match k.as_str() {
                    "folder" => "import_folder",
                    "duplicates" => "duplicates_found",
                    "uncertain" => "uncertain_matches",
                    "threshold" => "threshold_used",
                    k => k,
                };
                assert_eq!(&new[renamed], v, "vetting_history.{k}");
            }
        }
        assert_eq!(
            conn.query_row("SELECT count(*) FROM library_stats", [], |r| r
                .get::<_, i64>(0))
                .unwrap(),
            0,
            "the tool's library_stats starts empty: it describes index runs to come"
        );

        // The incremental decision reads the moved mtime; a clean row is not re-read.
        let known = Known::load(&conn, &[PathBuf::from("/m/a"), PathBuf::from("/m/b")]).unwrap();
        assert_eq!(known.len(), index.len());
        let by_path: std::collections::HashMap<&[u8], &BTreeMap<String, Value>> = index
            .iter()
            .map(|r| match &r["path_bytes"] {
                Value::Blob(b) => (b.as_slice(), r),
                v => panic!("{v:?}"),
            })
            .collect();
        for (p, k) in known.iter() {
            let old = by_path[p];
            assert_eq!(old["file_mtime"], Value::Integer(k.mtime_ns));
            // Only the read error asks for a retry: musicdex's own hashes are 32 hex digits.
            assert_eq!(k.retry, old["error"] != Value::Null);
        }
    }
}
