//! The schema and its migrations. `PRAGMA user_version` holds the number of migrations
//! applied; each entry below is applied once, in order, inside one transaction.

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

/// Column names of the replaced tool are kept where it had them (`file_path`, `filename`,
/// `artist`, ..., `is_active`) so its users' queries keep working.
///
/// `path_bytes` is the key: the path exactly as the kernel returned it. `file_path` is the
/// same path as text; for the rare name that is not UTF-8 it holds a lossy rendering
/// (U+FFFD for the bad bytes) and `path_bytes` stays exact.
pub const MIGRATIONS: &[&str] = &[
    // 1: the index and its run log.
    "CREATE TABLE library_index (
        id                INTEGER PRIMARY KEY,
        path_bytes        BLOB    NOT NULL UNIQUE,
        file_path         TEXT    NOT NULL,
        filename          TEXT    NOT NULL,
        artist            TEXT,
        title             TEXT,
        album             TEXT,
        album_artist      TEXT,
        track_number      INTEGER,
        year              INTEGER,
        genre             TEXT,
        duration          REAL,
        bitrate           INTEGER,
        sample_rate       INTEGER,
        channels          INTEGER,
        file_format       TEXT    NOT NULL,
        file_size         INTEGER NOT NULL,
        file_mtime        INTEGER NOT NULL,
        file_content_hash TEXT,
        metadata_hash     TEXT    NOT NULL,
        indexed_at        TEXT    NOT NULL,
        last_verified     TEXT    NOT NULL,
        is_active         INTEGER NOT NULL DEFAULT 1,
        error             TEXT
    );
    CREATE INDEX idx_library_content_hash ON library_index(file_content_hash)
        WHERE file_content_hash IS NOT NULL;
    CREATE INDEX idx_library_metadata_hash ON library_index(metadata_hash);
    CREATE INDEX idx_library_file_path ON library_index(file_path);
    CREATE TABLE library_stats (
        id            INTEGER PRIMARY KEY,
        started_at    TEXT    NOT NULL,
        finished_at   TEXT,
        duration_secs REAL,
        roots         TEXT    NOT NULL,
        engine        TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        files_found   INTEGER NOT NULL DEFAULT 0,
        added         INTEGER NOT NULL DEFAULT 0,
        updated       INTEGER NOT NULL DEFAULT 0,
        unchanged     INTEGER NOT NULL DEFAULT 0,
        removed       INTEGER NOT NULL DEFAULT 0,
        errors        INTEGER NOT NULL DEFAULT 0
    );",
    // 2: duplicate finding and vetting. Partial indexes hold exactly the rows that may
    // match (active, content hash known; for fuzzy matching an artist and a title), so
    // the dupes and vet queries read an index, never the whole table. SQLite re-checks
    // the query's conditions on each row, so every column they name is in the index
    // (covering: no table lookups). The WHERE clauses are repeated verbatim in
    // `dupes::groups`, as SQLite needs in order to use a partial index.
    "CREATE INDEX idx_dupes_content ON library_index(file_content_hash, is_active)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_metadata ON library_index(metadata_hash, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_artist
        ON library_index(artist, title, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL
            AND artist IS NOT NULL AND title IS NOT NULL;
    CREATE TABLE vetting_history (
        id              INTEGER PRIMARY KEY,
        vetted_at       TEXT    NOT NULL,
        folder          TEXT    NOT NULL,
        engine          TEXT    NOT NULL,
        threshold       REAL    NOT NULL,
        duration_secs   REAL    NOT NULL,
        total_files     INTEGER NOT NULL,
        new_songs       INTEGER NOT NULL,
        duplicates      INTEGER NOT NULL,
        uncertain       INTEGER NOT NULL,
        unreadable      INTEGER NOT NULL,
        moved           INTEGER NOT NULL DEFAULT 0,
        export_dir      TEXT,
        move_dir        TEXT,
        dry_run         INTEGER NOT NULL DEFAULT 0
    );",
    // 3: every index is paid for on each insert. The partial indexes of migration 2
    // answer every lookup by content or metadata hash that musicdex makes (active rows),
    // so the full-table ones of migration 1 only slowed the writer down.
    "DROP INDEX idx_library_content_hash;
    DROP INDEX idx_library_metadata_hash;",
    // 4: the device each root was on at its last run, so an unmounted drive (its mount
    // point now an empty folder of another file system) is not taken for a deleted
    // library; and the process of each run, so a run left `running` by a crash or
    // `kill -9` is told from one still going.
    "CREATE TABLE library_roots (
        path_bytes BLOB    PRIMARY KEY,
        path       TEXT    NOT NULL,
        device     INTEGER NOT NULL,
        last_run   INTEGER
    );
    ALTER TABLE library_stats ADD COLUMN pid INTEGER;",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        bail!(
            "database schema version {version} is newer than this musicdex understands \
             ({SCHEMA_VERSION}); upgrade musicdex"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("schema migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
