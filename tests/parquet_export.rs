//! `export --format parquet`: two real indexes exported as two hosts of one dataset, read
//! back with the `parquet` crate and queried with DuckDB (the guide's own queries, via
//! tests/cross_server.py), every figure compared with the same one computed in SQLite.

mod common;

use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use common::*;
use musicdex::r#gen::{self, GenOptions, Mix};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

const NON_UTF8_NAME: &[u8] = b"caf\xe9 \xff.mp3";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    a_db: PathBuf,
    b_db: PathBuf,
    dataset: PathBuf,
    /// The path of the file deleted from host alpha after its first index.
    gone: PathBuf,
}

fn generate(dir: &Path, files: usize, seed: u64) {
    r#gen::generate(
        dir,
        &GenOptions {
            files,
            seed,
            mix: Mix::Small,
            threads: 1,
        },
    )
    .unwrap();
}

fn audio_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Two libraries of generated real audio files; beta holds copies of some of alpha's
/// files (a seeded choice, one of them twice, one under a name that is not UTF-8), alpha
/// holds one duplicate of its own, and one file copied to beta is then deleted from alpha
/// (an inactive row there).
fn two_hosts(seed: u64) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (a, b) = (root.join("alpha"), root.join("beta"));
    generate(&a, 40, seed);
    generate(&b, 30, seed + 1000);
    let mut rng = fastrand::Rng::with_seed(seed);
    let a_files = audio_files(&a);
    let mut chosen: Vec<PathBuf> = Vec::new();
    while chosen.len() < 8 {
        let f = &a_files[rng.usize(..a_files.len())];
        if !chosen.contains(f) {
            chosen.push(f.clone());
        }
    }
    let copies = b.join("from-alpha");
    fs::create_dir_all(&copies).unwrap();
    for (i, f) in chosen.iter().enumerate() {
        let name = format!("{i:02} {}", f.file_name().unwrap().to_string_lossy());
        fs::copy(f, copies.join(name)).unwrap();
    }
    fs::copy(
        &chosen[0],
        copies
            .join("again")
            .with_extension(chosen[0].extension().unwrap()),
    )
    .unwrap();
    let odd = copies.join(std::ffi::OsStr::from_bytes(NON_UTF8_NAME));
    fs::copy(&chosen[1], &odd).unwrap();
    fs::copy(
        &chosen[2],
        a.join("dup-in-alpha")
            .with_extension(chosen[2].extension().unwrap()),
    )
    .unwrap();

    let (a_db, b_db) = (root.join("a.db"), root.join("b.db"));
    index_json(&a, &a_db, &[]);
    index_json(&b, &b_db, &[]);
    let gone = chosen[3].clone();
    fs::remove_file(&gone).unwrap();
    let again = index_json(&a, &a_db, &[]);
    assert_eq!(n(&again, "removed"), 1, "{again}");

    Fixture {
        _tmp: tmp,
        dataset: root.join("dataset"),
        root,
        a_db,
        b_db,
        gone,
    }
}

fn export_parquet(db: &Path, out: &Path, host: &str) -> String {
    ok(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--host",
        host,
    ])
}

fn read_partition(file: &Path) -> (parquet::file::metadata::ParquetMetaData, Vec<RecordBatch>) {
    let f = fs::File::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let meta = builder.metadata().as_ref().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (meta, batches)
}

fn table_info(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT name, type FROM pragma_table_info('library_index') ORDER BY cid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every value of one column of a batch list, as SQLite values, for comparison.
fn column_values(batches: &[RecordBatch], name: &str) -> Vec<Sql> {
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        for i in 0..col.len() {
            out.push(if col.is_null(i) {
                Sql::Null
            } else {
                match col.data_type() {
                    DataType::Int64 => Sql::Integer(col.as_primitive::<Int64Type>().value(i)),
                    DataType::Float64 => Sql::Real(col.as_primitive::<Float64Type>().value(i)),
                    DataType::Utf8 => Sql::Text(col.as_string::<i32>().value(i).to_string()),
                    DataType::Binary => Sql::Blob(col.as_binary::<i32>().value(i).to_vec()),
                    other => panic!("unexpected type {other} for {name}"),
                }
            });
        }
    }
    out
}

fn sqlite_rows(conn: &Connection, sql: &str) -> Vec<Vec<Sql>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn to_json(v: &Sql) -> Value {
    match v {
        Sql::Null => Value::Null,
        Sql::Integer(n) => json!(n),
        Sql::Real(f) => json!(f),
        Sql::Text(s) => json!(s),
        Sql::Blob(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

#[test]
fn partition_holds_every_column_typed_and_exact() {
    let fx = two_hosts(7);
    let out = export_parquet(&fx.b_db, &fx.dataset, "beta.lan");
    assert!(out.contains("rows"), "{out}");
    let file = fx.dataset.join("host=beta.lan/part-00000.parquet");
    let (meta, batches) = read_partition(&file);
    let conn = Connection::open(&fx.b_db).unwrap();

    // Schema: the table's columns in table order, typed by declared type, then host, root.
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let cols = table_info(&conn);
    let mut expected: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    expected.extend(["host", "root"]);
    assert_eq!(names, expected);
    for (name, decl) in &cols {
        let want = match decl.as_str() {
            "INTEGER" => DataType::Int64,
            "REAL" => DataType::Float64,
            "TEXT" => DataType::Utf8,
            "BLOB" => DataType::Binary,
            other => panic!("{name}: add declared type {other} to this test"),
        };
        assert_eq!(
            schema.field_with_name(name).unwrap().data_type(),
            &want,
            "{name}"
        );
    }
    assert!(!schema.field_with_name("file_size").unwrap().is_nullable());
    assert!(schema.field_with_name("artist").unwrap().is_nullable());

    // Every row, every column, equal to SQLite's, in path order.
    let total: i64 = conn
        .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(meta.file_metadata().num_rows(), total);
    for (name, _) in &cols {
        let want: Vec<Sql> = sqlite_rows(
            &conn,
            &format!("SELECT \"{name}\" FROM library_index ORDER BY path_bytes"),
        )
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
        assert_eq!(column_values(&batches, name), want, "column {name}");
    }
    let hosts = column_values(&batches, "host");
    assert!(hosts.iter().all(|h| *h == Sql::Text("beta.lan".into())));
    let lib = fx.root.join("beta");
    assert!(
        column_values(&batches, "root")
            .iter()
            .all(|r| *r == Sql::Text(lib.to_str().unwrap().into()))
    );

    // The name that is not UTF-8 comes back as its exact bytes.
    let paths = column_values(&batches, "path_bytes");
    let mut odd = lib.join("from-alpha").into_os_string().into_vec();
    odd.push(b'/');
    odd.extend_from_slice(NON_UTF8_NAME);
    assert!(paths.contains(&Sql::Blob(odd)), "non-UTF-8 path missing");

    // zstd on every column chunk; no staging left behind.
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), Compression::ZSTD(_)),
                "{:?}",
                c.column_path()
            );
        }
    }
    assert!(!fx.dataset.join(".musicdex-staging").exists());
}

#[test]
fn duckdb_runs_the_guide_and_agrees_with_sqlite() {
    let fx = two_hosts(21);
    export_parquet(&fx.a_db, &fx.dataset, "alpha");
    export_parquet(&fx.b_db, &fx.dataset, "beta.lan");

    // Incoming: two hashes of alpha, two of beta, the deleted file's (still on beta), and
    // two that exist nowhere.
    let a = Connection::open(&fx.a_db).unwrap();
    let b = Connection::open(&fx.b_db).unwrap();
    let hash_of = |c: &Connection, extra: &str| -> Vec<String> {
        c.prepare(&format!(
            "SELECT file_content_hash FROM library_index WHERE file_content_hash IS NOT NULL {extra}"
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let gone = fx.gone.to_str().unwrap().replace('\'', "''");
    let mut incoming = hash_of(&a, "AND is_active = 1 ORDER BY path_bytes LIMIT 2");
    incoming.extend(hash_of(&b, "ORDER BY path_bytes DESC LIMIT 2"));
    incoming.extend(hash_of(&a, &format!("AND file_path = '{gone}'")));
    assert_eq!(incoming.len(), 5);
    incoming.push("0123456789abcdef0123456789abcdef".into());
    incoming.push("ffffffffffffffffffffffffffffffff".into());
    let incoming_file = fx.root.join("incoming.txt");
    fs::write(&incoming_file, incoming.join("\n") + "\n").unwrap();

    let doc = repo().join("docs/cross-server.md");
    let run = Command::new("python3")
        .arg(repo().join("tests/cross_server.py"))
        .arg(&doc)
        .arg(&fx.dataset)
        .arg(&incoming_file)
        .output()
        .expect("run python3");
    assert!(
        run.status.success(),
        "tests/cross_server.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let duck: Value = serde_json::from_slice(&run.stdout).unwrap();
    let rows = |name: &str| duck[name]["rows"].clone();

    // The same figures from the SQLite files, merged into one database as the
    // dataset merges them.
    let merged = Connection::open(fx.root.join("merged.db")).unwrap();
    merged
        .execute_batch(&format!(
            "ATTACH '{}' AS a; ATTACH '{}' AS b;
             CREATE TABLE files AS
                 SELECT 'alpha' AS host, * FROM a.library_index
                 UNION ALL SELECT 'beta.lan', * FROM b.library_index;
             CREATE TABLE incoming (file_content_hash TEXT);",
            fx.a_db.display(),
            fx.b_db.display()
        ))
        .unwrap();
    for h in &incoming {
        merged
            .execute("INSERT INTO incoming VALUES (?1)", [h])
            .unwrap();
    }
    let sqlite = |sql: &str| -> Value {
        Value::Array(
            sqlite_rows(&merged, sql)
                .iter()
                .map(|r| Value::Array(r.iter().map(to_json).collect()))
                .collect(),
        )
    };

    let totals = sqlite(
        "SELECT host, count(*), sum(file_size), count(DISTINCT file_content_hash), count(error)
         FROM files WHERE is_active = 1 GROUP BY host ORDER BY host",
    );
    assert_eq!(rows("totals_per_host"), totals);
    assert_eq!(totals.as_array().unwrap().len(), 2);

    let pairs = sqlite(
        "WITH f AS (SELECT host, file_path, file_size, file_content_hash FROM files
                    WHERE is_active = 1 AND file_content_hash IS NOT NULL)
         SELECT a.file_content_hash, a.file_size, a.host, a.file_path, b.host, b.file_path
         FROM f a JOIN f b ON a.file_content_hash = b.file_content_hash
          AND a.file_size = b.file_size AND a.host < b.host
         ORDER BY 1, 3, 4, 5, 6",
    );
    assert_eq!(rows("cross_host_duplicates"), pairs);
    // Seven of alpha's files are still on both hosts (the eighth was deleted from
    // alpha), one twice on beta, one twice on alpha: at least 7 + 1 + 1 + 1 pairs.
    let n_pairs = pairs.as_array().unwrap().len();
    assert!(n_pairs >= 10, "only {n_pairs} cross-host pairs");
    let lossy = String::from_utf8_lossy(NON_UTF8_NAME).into_owned();
    assert!(
        pairs.to_string().contains(&lossy),
        "non-UTF-8 copy not paired"
    );
    assert!(
        !pairs.to_string().contains(fx.gone.to_str().unwrap()),
        "an inactive file was paired"
    );

    let anywhere = sqlite(
        "SELECT i.file_content_hash, f.host, f.file_path FROM incoming i
         JOIN files f ON f.file_content_hash = i.file_content_hash
         WHERE f.is_active = 1 ORDER BY 1, 2, 3",
    );
    assert_eq!(rows("incoming_anywhere"), anywhere);
    let new = sqlite(
        "SELECT i.file_content_hash FROM incoming i WHERE NOT EXISTS (
             SELECT 1 FROM files f WHERE f.file_content_hash = i.file_content_hash
             AND f.is_active = 1) ORDER BY 1",
    );
    assert_eq!(rows("incoming_new"), new);
    assert_eq!(new.as_array().unwrap().len(), 2, "{new}");
}

#[test]
fn reexport_replaces_the_partition_and_a_failed_one_keeps_it() {
    let fx = two_hosts(33);
    export_parquet(&fx.a_db, &fx.dataset, "alpha");
    export_parquet(&fx.b_db, &fx.dataset, "beta.lan");
    let a_file = fx.dataset.join("host=alpha/part-00000.parquet");
    let b_file = fx.dataset.join("host=beta.lan/part-00000.parquet");
    let b_before = fs::read(&b_file).unwrap();

    // More files on alpha: the re-export holds the new count, beta is untouched, and
    // what a killed export of alpha left in staging (its process gone) is cleared.
    generate(&fx.root.join("alpha/more"), 5, 99);
    index_json(&fx.root.join("alpha"), &fx.a_db, &[]);
    let killed = fx.dataset.join(".musicdex-staging/host=alpha.99999999");
    fs::create_dir_all(&killed).unwrap();
    fs::copy(&a_file, killed.join("part-00000.parquet")).unwrap();
    export_parquet(&fx.a_db, &fx.dataset, "alpha");
    let count: i64 = Connection::open(&fx.a_db)
        .unwrap()
        .query_row("SELECT count(*) FROM library_index", [], |r| r.get(0))
        .unwrap();
    let (meta, _) = read_partition(&a_file);
    assert_eq!(meta.file_metadata().num_rows(), count);
    assert_eq!(fs::read(&b_file).unwrap(), b_before);
    let entries: Vec<_> = fs::read_dir(&fx.dataset)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["host=alpha", "host=beta.lan"]);

    // A value that does not fit its declared type: a clear error, the old partition stays.
    let a_before = fs::read(&a_file).unwrap();
    let bad = fx.root.join("bad.db");
    fs::copy(&fx.a_db, &bad).unwrap();
    Connection::open(&bad)
        .unwrap()
        .execute(
            "UPDATE library_index SET year = 'nineteen' WHERE id = (SELECT min(id) FROM library_index)",
            [],
        )
        .unwrap();
    let out = musicdex(&[
        "export",
        "--db",
        bad.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        fx.dataset.to_str().unwrap(),
        "--host",
        "alpha",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("column year") && err.contains("declared INTEGER"),
        "{err}"
    );
    assert_eq!(fs::read(&a_file).unwrap(), a_before);
    assert!(!fx.dataset.join(".musicdex-staging").exists());
}

#[test]
fn a_column_added_to_the_table_is_exported() {
    let fx = two_hosts(45);
    let db = fx.root.join("wider.db");
    fs::copy(&fx.a_db, &db).unwrap();
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "ALTER TABLE library_index ADD COLUMN later_hash TEXT;
             ALTER TABLE library_index ADD COLUMN tool_score REAL;
             UPDATE library_index SET later_hash = 'a' || id, tool_score = id / 4.0;",
        )
        .unwrap();
    export_parquet(&db, &fx.dataset, "wide");
    let (_, batches) = read_partition(&fx.dataset.join("host=wide/part-00000.parquet"));
    let conn = Connection::open(&db).unwrap();
    // audio_hash is in the schema now (migration 6), exported like any column.
    for col in ["later_hash", "tool_score", "audio_hash", "audio_len"] {
        let want: Vec<Sql> = sqlite_rows(
            &conn,
            &format!("SELECT {col} FROM library_index ORDER BY path_bytes"),
        )
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
        assert_eq!(column_values(&batches, col), want, "{col}");
    }
}

#[test]
fn parquet_needs_a_folder_and_out_works_for_text_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    generate(&lib, 6, 5);
    let db = tmp.path().join("x.db");
    index_json(&lib, &db, &[]);
    let dbs = db.to_str().unwrap();

    let out = musicdex(&["export", "--db", dbs, "--format", "parquet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs --out DIR") && err.contains("stdout"),
        "{err}"
    );

    let out = musicdex(&["export", "--db", dbs, "--host", "nas"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format parquet"));

    let ds = tmp.path().join("ds");
    for bad in ["a/b", "..", "x y", ""] {
        let out = musicdex(&[
            "export",
            "--db",
            dbs,
            "--format",
            "parquet",
            "--out",
            ds.to_str().unwrap(),
            "--host",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name a partition"));
    }
    assert!(!ds.exists(), "a refused export created its folder");

    // Without --host the partition is this machine's host name (refused, like --host,
    // where the name could not be a partition).
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let out = musicdex(&[
        "export",
        "--db",
        dbs,
        "--format",
        "parquet",
        "--out",
        ds.to_str().unwrap(),
    ]);
    if musicdex::store::dataset::check_host(host).is_ok() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            ds.join(format!("host={host}"))
                .join("part-00000.parquet")
                .exists()
        );
    } else {
        assert_eq!(out.status.code(), Some(1), "host name {host:?}");
    }

    for format in ["jsonl", "csv"] {
        let file = tmp.path().join(format!("out.{format}"));
        let stdout = ok(&["export", "--db", dbs, "--format", format]);
        let printed = ok(&[
            "export",
            "--db",
            dbs,
            "--format",
            format,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(printed.is_empty());
        assert_eq!(fs::read_to_string(&file).unwrap(), stdout, "{format}");
        assert_eq!(stdout.lines().count(), 6 + usize::from(format == "csv"));
    }
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
