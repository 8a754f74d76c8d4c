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
    // `dupes::sql`, as SQLite needs in order to use a partial index.
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
    // 5: at the scale of real libraries. `idx_library_file_path` duplicated the unique
    // `path_bytes` key on every insert. An unchanged file is no longer rewritten on each
    // run: a complete run records its roots (and the directories it could not read) in
    // `run_scope`, and `library_verified` (every column of `library_index`) derives
    // `last_verified` from them: the replaced tool's `last_verified` queries read the
    // view. `pending_indexes` holds the secondary indexes a first load dropped until they
    // are built again, so a killed load gets them back on the next open.
    "DROP INDEX idx_library_file_path;
    CREATE TABLE run_scope (
        run_id     INTEGER NOT NULL REFERENCES library_stats(id),
        kind       TEXT    NOT NULL CHECK (kind IN ('root', 'skipped')),
        path_bytes BLOB    NOT NULL,
        lo         BLOB    NOT NULL,
        hi         BLOB    NOT NULL
    );
    CREATE INDEX idx_run_scope_run ON run_scope(run_id);
    CREATE TABLE pending_indexes (
        name TEXT PRIMARY KEY,
        sql  TEXT NOT NULL
    );
    CREATE VIEW library_verified AS
    SELECT
        l.id,
        l.path_bytes,
        l.file_path,
        l.filename,
        l.artist,
        l.title,
        l.album,
        l.album_artist,
        l.track_number,
        l.year,
        l.genre,
        l.duration,
        l.bitrate,
        l.sample_rate,
        l.channels,
        l.file_format,
        l.file_size,
        l.file_mtime,
        l.file_content_hash,
        l.metadata_hash,
        l.indexed_at,
        max(l.last_verified, coalesce((
            SELECT max(s.started_at) FROM run_scope r JOIN library_stats s ON s.id = r.run_id
            WHERE l.is_active = 1 AND r.kind = 'root' AND s.status = 'complete'
              AND (l.path_bytes = r.path_bytes
                   OR (l.path_bytes >= r.lo AND l.path_bytes < r.hi))
              AND NOT EXISTS (
                  SELECT 1 FROM run_scope k WHERE k.run_id = r.run_id AND k.kind = 'skipped'
                    AND (l.path_bytes = k.path_bytes
                         OR (l.path_bytes >= k.lo AND l.path_bytes < k.hi)))
        ), '')) AS last_verified,
        l.is_active,
        l.error
    FROM library_index l;",
    // 6: the replaced tool's schema where it has one, so its own code (statistics,
    // duplicate checker, vetter) keeps working on a musicdex index. `library_index` holds
    // the tool's sixteen columns with its types and formats first (`file_mtime`,
    // `indexed_at`, `last_verified` as Python's `isoformat()` text), then musicdex's own
    // facts: `file_mtime_ns` decides the incremental skip (NULL: unknown, read again) and
    // `path_bytes` is the exact key (NULL only for a row the tool inserted; the trigger
    // fills it from `file_path`). `library_stats` becomes the tool's table (one row per
    // index run); musicdex's run log moves to `index_runs`. `vetting_history` gets the
    // tool's columns, musicdex's extras after them. `tool_mtime` is a function musicdex
    // registers on its connection: the ISO text the tool writes for an mtime.
    "DROP VIEW library_verified;
    CREATE TABLE library_index_v6 (
        id                INTEGER PRIMARY KEY,
        file_path         TEXT    NOT NULL,
        filename          TEXT    NOT NULL,
        artist            TEXT,
        title             TEXT,
        album             TEXT,
        year              INTEGER,
        duration          REAL,
        file_format       TEXT    NOT NULL,
        file_size         INTEGER NOT NULL,
        metadata_hash     TEXT    NOT NULL,
        file_content_hash TEXT,
        indexed_at        TEXT    NOT NULL,
        file_mtime        TEXT    NOT NULL,
        last_verified     TEXT,
        is_active         INTEGER NOT NULL DEFAULT 1,
        path_bytes        BLOB    UNIQUE,
        file_mtime_ns     INTEGER,
        album_artist      TEXT,
        track_number      INTEGER,
        genre             TEXT,
        bitrate           INTEGER,
        sample_rate       INTEGER,
        channels          INTEGER,
        error             TEXT
    );
    INSERT INTO library_index_v6 (id, file_path, filename, artist, title, album, year,
        duration, file_format, file_size, metadata_hash, file_content_hash, indexed_at,
        file_mtime, last_verified, is_active, path_bytes, file_mtime_ns, album_artist,
        track_number, genre, bitrate, sample_rate, channels, error)
    SELECT id, file_path, filename, artist, title, album, year, duration, file_format,
        file_size, metadata_hash, file_content_hash, indexed_at, tool_mtime(file_mtime),
        last_verified, is_active, path_bytes, file_mtime, album_artist, track_number, genre,
        bitrate, sample_rate, channels, error
    FROM library_index ORDER BY id;
    DROP TABLE library_index;
    ALTER TABLE library_index_v6 RENAME TO library_index;
    CREATE INDEX idx_dupes_content ON library_index(file_content_hash, is_active)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_metadata ON library_index(metadata_hash, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_artist
        ON library_index(artist, title, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL
            AND artist IS NOT NULL AND title IS NOT NULL;
    CREATE TRIGGER library_index_tool_insert AFTER INSERT ON library_index
    WHEN NEW.path_bytes IS NULL
    BEGIN
        UPDATE library_index SET path_bytes = CAST(NEW.file_path AS BLOB) WHERE id = NEW.id;
    END;
    ALTER TABLE library_stats RENAME TO index_runs;
    CREATE TABLE library_stats (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        total_files       INTEGER,
        total_size        INTEGER,
        formats_breakdown TEXT,
        artists_count     INTEGER,
        albums_count      INTEGER,
        last_index_time   TEXT,
        index_duration    REAL,
        created_at        TEXT
    );
    CREATE TABLE vetting_history_v6 (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        import_folder     TEXT    NOT NULL,
        total_files       INTEGER,
        duplicates_found  INTEGER,
        new_songs         INTEGER,
        uncertain_matches INTEGER,
        threshold_used    REAL,
        vetted_at         TEXT    NOT NULL,
        engine            TEXT,
        duration_secs     REAL,
        unreadable        INTEGER,
        moved             INTEGER NOT NULL DEFAULT 0,
        export_dir        TEXT,
        move_dir          TEXT,
        dry_run           INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO vetting_history_v6 (id, import_folder, total_files, duplicates_found,
        new_songs, uncertain_matches, threshold_used, vetted_at, engine, duration_secs,
        unreadable, moved, export_dir, move_dir, dry_run)
    SELECT id, folder, total_files, duplicates, new_songs, uncertain, threshold, vetted_at,
        engine, duration_secs, unreadable, moved, export_dir, move_dir, dry_run
    FROM vetting_history ORDER BY id;
    DROP TABLE vetting_history;
    ALTER TABLE vetting_history_v6 RENAME TO vetting_history;
    CREATE INDEX idx_vetting_history_date ON vetting_history(vetted_at DESC);
    CREATE VIEW library_verified AS
    SELECT
        l.id,
        l.file_path,
        l.filename,
        l.artist,
        l.title,
        l.album,
        l.year,
        l.duration,
        l.file_format,
        l.file_size,
        l.metadata_hash,
        l.file_content_hash,
        l.indexed_at,
        l.file_mtime,
        nullif(max(coalesce(l.last_verified, ''), coalesce((
            SELECT max(s.started_at) FROM run_scope r JOIN index_runs s ON s.id = r.run_id
            WHERE l.is_active = 1 AND r.kind = 'root' AND s.status = 'complete'
              AND (l.path_bytes = r.path_bytes
                   OR (l.path_bytes >= r.lo AND l.path_bytes < r.hi))
              AND NOT EXISTS (
                  SELECT 1 FROM run_scope k WHERE k.run_id = r.run_id AND k.kind = 'skipped'
                    AND (l.path_bytes = k.path_bytes
                         OR (l.path_bytes >= k.lo AND l.path_bytes < k.hi)))
        ), '')), '') AS last_verified,
        l.is_active,
        l.path_bytes,
        l.file_mtime_ns,
        l.album_artist,
        l.track_number,
        l.genre,
        l.bitrate,
        l.sample_rate,
        l.channels,
        l.error
    FROM library_index l;",
    // 7: the audio hash (media::audio_hash): identity that survives retagging, and the
    // key that recognises a moved file; beside it the payload's length, without which two
    // silent-ended PCM recordings would be one. NULL on rows indexed before it existed,
    // until a `--full` run or a re-read fills it. A partial covering index, like those of
    // migration 2, answers `dupes` and `vet` (the WHERE is `dupes::sql::AUDIO_ROWS`);
    // moves look rows up by id and path. The view lists the table's columns by name, so
    // it is rebuilt with the new ones last, in table order.
    "ALTER TABLE library_index ADD COLUMN audio_hash TEXT;
    ALTER TABLE library_index ADD COLUMN audio_len INTEGER;
    CREATE INDEX idx_dupes_audio ON library_index(audio_hash, audio_len, is_active)
        WHERE is_active = 1 AND audio_hash IS NOT NULL;
    DROP VIEW library_verified;
    CREATE VIEW library_verified AS
    SELECT
        l.id,
        l.file_path,
        l.filename,
        l.artist,
        l.title,
        l.album,
        l.year,
        l.duration,
        l.file_format,
        l.file_size,
        l.metadata_hash,
        l.file_content_hash,
        l.indexed_at,
        l.file_mtime,
        nullif(max(coalesce(l.last_verified, ''), coalesce((
            SELECT max(s.started_at) FROM run_scope r JOIN index_runs s ON s.id = r.run_id
            WHERE l.is_active = 1 AND r.kind = 'root' AND s.status = 'complete'
              AND (l.path_bytes = r.path_bytes
                   OR (l.path_bytes >= r.lo AND l.path_bytes < r.hi))
              AND NOT EXISTS (
                  SELECT 1 FROM run_scope k WHERE k.run_id = r.run_id AND k.kind = 'skipped'
                    AND (l.path_bytes = k.path_bytes
                         OR (l.path_bytes >= k.lo AND l.path_bytes < k.hi)))
        ), '')), '') AS last_verified,
        l.is_active,
        l.path_bytes,
        l.file_mtime_ns,
        l.album_artist,
        l.track_number,
        l.genre,
        l.bitrate,
        l.sample_rate,
        l.channels,
        l.error,
        l.audio_hash,
        l.audio_len
    FROM library_index l;",
    // 8: the unique path key becomes an index of its own, `idx_library_path`, instead of
    // the column's UNIQUE constraint, whose index SQLite cannot drop: a first load now
    // drops it with the other secondary indexes and builds it once after the rows, sorted,
    // where before every new path went into a B-tree at a random place and every commit
    // rewrote the pages it touched. The table is rebuilt with the same columns in the
    // same order, every row and id kept; the trigger, the partial indexes and the view
    // come back as they were.
    "DROP VIEW library_verified;
    CREATE TABLE library_index_v8 (
        id                INTEGER PRIMARY KEY,
        file_path         TEXT    NOT NULL,
        filename          TEXT    NOT NULL,
        artist            TEXT,
        title             TEXT,
        album             TEXT,
        year              INTEGER,
        duration          REAL,
        file_format       TEXT    NOT NULL,
        file_size         INTEGER NOT NULL,
        metadata_hash     TEXT    NOT NULL,
        file_content_hash TEXT,
        indexed_at        TEXT    NOT NULL,
        file_mtime        TEXT    NOT NULL,
        last_verified     TEXT,
        is_active         INTEGER NOT NULL DEFAULT 1,
        path_bytes        BLOB,
        file_mtime_ns     INTEGER,
        album_artist      TEXT,
        track_number      INTEGER,
        genre             TEXT,
        bitrate           INTEGER,
        sample_rate       INTEGER,
        channels          INTEGER,
        error             TEXT,
        audio_hash        TEXT,
        audio_len         INTEGER
    );
    INSERT INTO library_index_v8 (id, file_path, filename, artist, title, album, year,
        duration, file_format, file_size, metadata_hash, file_content_hash, indexed_at,
        file_mtime, last_verified, is_active, path_bytes, file_mtime_ns, album_artist,
        track_number, genre, bitrate, sample_rate, channels, error, audio_hash, audio_len)
    SELECT id, file_path, filename, artist, title, album, year, duration, file_format,
        file_size, metadata_hash, file_content_hash, indexed_at, file_mtime, last_verified,
        is_active, path_bytes, file_mtime_ns, album_artist, track_number, genre, bitrate,
        sample_rate, channels, error, audio_hash, audio_len
    FROM library_index ORDER BY id;
    DROP TABLE library_index;
    ALTER TABLE library_index_v8 RENAME TO library_index;
    CREATE UNIQUE INDEX idx_library_path ON library_index(path_bytes);
    CREATE INDEX idx_dupes_content ON library_index(file_content_hash, is_active)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_metadata ON library_index(metadata_hash, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL;
    CREATE INDEX idx_dupes_artist
        ON library_index(artist, title, is_active, file_content_hash)
        WHERE is_active = 1 AND file_content_hash IS NOT NULL
            AND artist IS NOT NULL AND title IS NOT NULL;
    CREATE INDEX idx_dupes_audio ON library_index(audio_hash, audio_len, is_active)
        WHERE is_active = 1 AND audio_hash IS NOT NULL;
    CREATE TRIGGER library_index_tool_insert AFTER INSERT ON library_index
    WHEN NEW.path_bytes IS NULL
    BEGIN
        UPDATE library_index SET path_bytes = CAST(NEW.file_path AS BLOB) WHERE id = NEW.id;
    END;
    CREATE VIEW library_verified AS
    SELECT
        l.id,
        l.file_path,
        l.filename,
        l.artist,
        l.title,
        l.album,
        l.year,
        l.duration,
        l.file_format,
        l.file_size,
        l.metadata_hash,
        l.file_content_hash,
        l.indexed_at,
        l.file_mtime,
        nullif(max(coalesce(l.last_verified, ''), coalesce((
            SELECT max(s.started_at) FROM run_scope r JOIN index_runs s ON s.id = r.run_id
            WHERE l.is_active = 1 AND r.kind = 'root' AND s.status = 'complete'
              AND (l.path_bytes = r.path_bytes
                   OR (l.path_bytes >= r.lo AND l.path_bytes < r.hi))
              AND NOT EXISTS (
                  SELECT 1 FROM run_scope k WHERE k.run_id = r.run_id AND k.kind = 'skipped'
                    AND (l.path_bytes = k.path_bytes
                         OR (l.path_bytes >= k.lo AND l.path_bytes < k.hi)))
        ), '')), '') AS last_verified,
        l.is_active,
        l.path_bytes,
        l.file_mtime_ns,
        l.album_artist,
        l.track_number,
        l.genre,
        l.bitrate,
        l.sample_rate,
        l.channels,
        l.error,
        l.audio_hash,
        l.audio_len
    FROM library_index l;",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Drop the secondary indexes of `library_index` for a bulk load, remembering each one
/// in `pending_indexes` in the same transaction. The replaced tool's trigger goes too:
/// an AFTER INSERT trigger makes every INSERT a multi-write statement, which SQLite runs
/// under a statement journal, copying the page it appends to into that journal once per
/// row (with the trigger's sub-program, ~12% of the writer's CPU in a first load). Our
/// rows never need it (they carry `path_bytes`); a row the tool inserts meanwhile gets its
/// key when the trigger is rebuilt (`build_pending`). Only that trigger: what another
/// trigger would have done for the load's rows cannot be made up afterwards.
pub fn drop_secondary_indexes(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    if let Err(e) = conn.execute(
        "INSERT OR REPLACE INTO pending_indexes (name, sql)
            SELECT name, sql FROM sqlite_master
            WHERE tbl_name = 'library_index' AND sql IS NOT NULL
                AND (type = 'index' OR (type = 'trigger' AND name = ?1))",
        [TOOL_TRIGGER],
    ) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    let names: Vec<String> = conn
        .prepare("SELECT name FROM pending_indexes")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        let quoted = name.replace('"', "\"\"");
        let kind = if name == TOOL_TRIGGER {
            "TRIGGER"
        } else {
            "INDEX"
        };
        if let Err(e) = conn.execute_batch(&format!("DROP {kind} IF EXISTS \"{quoted}\"")) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// Page cache, in KiB, while the indexes a bulk load dropped are built. The sorter of an
/// index build keeps up to this much of its keys in memory, then hands the sorted run to a
/// worker thread and spills it to a temporary file: small enough that the runs of a
/// large load are sorted on every core while the table is still being scanned. Measured
/// on the five builds of a 1M-row index (a copy of a real index, the bundled SQLite, A B
/// B A): 8.2-8.8 s with a 16 MB cache and temporary files in memory, where one thread did
/// everything, against 3.9 s with 2 MB and the runs on disk; peak RSS 128 -> 12 MB.
/// `MUSICDEX_BUILD_CACHE_KIB` overrides it (a test takes it down to the sorter's floor,
/// 1 MiB of keys, so that a small load spills).
const BUILD_CACHE_KIB: i64 = 2_048;

fn build_cache_kib() -> i64 {
    std::env::var("MUSICDEX_BUILD_CACHE_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&k: &i64| k > 0)
        .unwrap_or(BUILD_CACHE_KIB)
}

/// Where the sorter of an index build keeps the runs it spills.
#[derive(Clone, Copy)]
enum Spill {
    /// Temporary files (`SQLITE_TMPDIR`, `TMPDIR`, else `/var/tmp`), sorted by worker
    /// threads. SQLite sorts on one thread whenever its temporary files live in memory.
    Files,
    /// In memory, on one thread: the way out when no temporary file can be written.
    Memory,
}

/// Build every index a bulk load dropped (no-op when none is pending).
pub fn restore_secondary_indexes(conn: &Connection) -> Result<()> {
    let pending: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM pending_indexes")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if pending.is_empty() {
        return Ok(());
    }
    let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    let temp_store: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?;
    let threads: i64 = conn.query_row("PRAGMA threads", [], |r| r.get(0))?;
    let built = match build_pending(conn, &pending, Spill::Files) {
        Err(e) if spill_failed(&e) => {
            eprintln!(
                "musicdex: the index builds failed ({e}), perhaps for want of room for \
                 their sort runs in the temporary folder; sorting in memory instead \
                 (SQLITE_TMPDIR chooses that folder; it needs about the size of the \
                 largest index)"
            );
            build_pending(conn, &pending, Spill::Memory)
        }
        other => other,
    };
    let restored = conn
        .pragma_update(None, "cache_size", cache)
        .and_then(|()| conn.pragma_update(None, "temp_store", temp_store))
        .and_then(|()| conn.pragma_update(None, "threads", threads));
    built
        .and_then(|()| Ok(restored?))
        .context("building the indexes of a first load")
}

/// The error of a build whose sort runs found no temporary file to go to: the folder is
/// missing, unwritable or full. The same build in memory can still succeed.
fn spill_failed(e: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode::{CannotOpen, DiskFull, ReadOnly, SystemIoFailure};
    matches!(e.downcast_ref::<rusqlite::Error>(), Some(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, CannotOpen | DiskFull | ReadOnly | SystemIoFailure))
}

/// Build `pending` in one transaction, the sorter spilling as `spill` says.
fn build_pending(conn: &Connection, pending: &[(String, String)], spill: Spill) -> Result<()> {
    // temp_store cannot change inside a transaction.
    let (temp_store, threads) = match spill {
        Spill::Files => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            ("FILE", cores.min(8) as i64)
        }
        Spill::Memory => ("MEMORY", 0),
    };
    conn.pragma_update(None, "temp_store", temp_store)?;
    conn.pragma_update(None, "threads", threads)?;
    conn.pragma_update(None, "cache_size", -build_cache_kib())?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // The path key before the trigger: the trigger's catch-up below finds the rows it
    // missed through that key.
    let mut order: Vec<&(String, String)> = pending.iter().collect();
    order.sort_by_key(|(name, _)| (name == TOOL_TRIGGER, name != PATH_KEY));
    let built = order.into_iter().try_for_each(|(name, sql)| {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type IN ('index', 'trigger')
                AND name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if !exists && name == TOOL_TRIGGER {
            catch_up_tool_trigger(conn)?;
            conn.execute_batch(sql)?;
        } else if !exists {
            build_index(conn, name, sql)?;
        }
        conn.execute("DELETE FROM pending_indexes WHERE name = ?1", [name])?;
        Ok::<_, rusqlite::Error>(())
    });
    if let Err(e) = built {
        // A full disk or an I/O error may have rolled the transaction back already.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(e.into());
    }
    super::commit_waiting(conn)
}

/// The unique path key, which a first load also builds after the rows.
pub const PATH_KEY: &str = "idx_library_path";

/// The trigger that gives a row the replaced tool inserts its `path_bytes`.
pub const TOOL_TRIGGER: &str = "library_index_tool_insert";

/// Do what the tool's trigger would have done for the rows inserted while a bulk load
/// had it dropped: a row the tool inserted during the load gets its path key, and (as the
/// tool's later write of the same path) replaces a row that already held that path.
/// The path key exists by now, so the usual case (no such row) costs one index probe.
fn catch_up_tool_trigger(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE OR REPLACE library_index SET path_bytes = CAST(file_path AS BLOB)
        WHERE path_bytes IS NULL",
        [],
    )?;
    Ok(())
}

/// Build one index. Without the path key nothing stops a second path row: one walk lists
/// a path once, but two runs loading the same empty index at once may each insert it. The
/// row written last stands (it holds the later read of the same file), the earlier ones go,
/// and the key is built.
fn build_index(conn: &Connection, name: &str, sql: &str) -> rusqlite::Result<()> {
    match conn.execute_batch(sql) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation && name == PATH_KEY =>
        {
            conn.execute(
                "DELETE FROM library_index WHERE path_bytes IS NOT NULL AND id NOT IN (
                    SELECT max(id) FROM library_index WHERE path_bytes IS NOT NULL
                    GROUP BY path_bytes)",
                [],
            )?;
            conn.execute_batch(sql)
        }
        other => other,
    }
}

pub fn migrate(conn: &mut Connection) -> Result<()> {
    register_functions(conn)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        bail!(
            "database schema version {version} is newer than this musicdex understands \
             ({SCHEMA_VERSION}); upgrade musicdex"
        );
    }
    if version == 0 && table_exists(conn, "library_index")? {
        return take_over(conn);
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("schema migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    restore_secondary_indexes(conn)?;
    Ok(())
}

/// The SQL functions the migrations call (only they: the tool's code reads the same file
/// without them).
pub fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "tool_mtime",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(super::tool_mtime(ctx.get::<i64>(0)?)),
    )?;
    Ok(())
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// The columns the replaced tool's `LibraryDatabase.create_tables` gives each table.
const TOOL_TABLES: &[(&str, &[&str])] = &[
    (
        "library_index",
        &[
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
            "is_active",
        ],
    ),
    (
        "library_stats",
        &[
            "id",
            "total_files",
            "total_size",
            "formats_breakdown",
            "artists_count",
            "albums_count",
            "last_index_time",
            "index_duration",
            "created_at",
        ],
    ),
    (
        "vetting_history",
        &[
            "id",
            "import_folder",
            "total_files",
            "duplicates_found",
            "new_songs",
            "uncertain_matches",
            "threshold_used",
            "vetted_at",
        ],
    ),
];

/// Take over a database the replaced tool wrote (`library_index` present, no musicdex
/// schema version): in one transaction, its tables are set aside, musicdex's schema is
/// built by the very migrations a new index runs, and every row is copied in with its id.
/// The tool's rows carry no musicdex facts (`file_mtime_ns` NULL) and hashes of its own
/// (a SHA-256 content hash, `HASH_FAILED` placeholders), so the next index run reads
/// each file once; `indexed_at` stays where the file did not change. Any failure, or a
/// kill, leaves the tool's database exactly as it was.
fn take_over(conn: &mut Connection) -> Result<()> {
    for (table, want) in TOOL_TABLES {
        if !table_exists(conn, table)? {
            // The tool creates all three together; an older one may lack a table.
            if *table == "library_index" {
                bail!("library_index is missing");
            }
            continue;
        }
        let have = columns(conn, table)?;
        if let Some(missing) = want.iter().find(|c| !have.iter().any(|h| h == *c)) {
            bail!(
                "this database has a {table} table without column {missing}: neither a \
                 musicdex index nor one the music-tools library indexer wrote; left untouched"
            );
        }
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let present: Vec<&str> = TOOL_TABLES
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| table_exists(&tx, t).unwrap_or(false))
        .collect();
    // The tool's indexes would clash by name with the ones the migrations create.
    let indexes: Vec<String> = tx
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
             AND tbl_name IN ('library_index', 'library_stats', 'vetting_history')",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in indexes {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    for t in &present {
        tx.execute_batch(&format!("ALTER TABLE {t} RENAME TO tool_{t}"))?;
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        tx.execute_batch(sql)
            .with_context(|| format!("schema migration {}", i + 1))?;
    }
    tx.execute_batch(
        "INSERT INTO library_index (id, file_path, filename, artist, title, album, year,
            duration, file_format, file_size, metadata_hash, file_content_hash, indexed_at,
            file_mtime, last_verified, is_active, path_bytes, file_mtime_ns)
        SELECT id, file_path, coalesce(filename, ''), artist, title, album, year, duration,
            coalesce(file_format, ''), coalesce(file_size, 0), coalesce(metadata_hash, ''),
            file_content_hash, coalesce(indexed_at, ''), coalesce(file_mtime, ''),
            last_verified, coalesce(is_active, 1), CAST(file_path AS BLOB), NULL
        FROM tool_library_index ORDER BY id;
        DROP TABLE tool_library_index;",
    )
    .context("copying the tool's library_index")?;
    if present.contains(&"library_stats") {
        tx.execute_batch(
            "INSERT INTO library_stats (id, total_files, total_size, formats_breakdown,
                artists_count, albums_count, last_index_time, index_duration, created_at)
            SELECT id, total_files, total_size, formats_breakdown, artists_count,
                albums_count, last_index_time, index_duration, created_at
            FROM tool_library_stats ORDER BY id;
            DROP TABLE tool_library_stats;",
        )
        .context("copying the tool's library_stats")?;
    }
    if present.contains(&"vetting_history") {
        tx.execute_batch(
            "INSERT INTO vetting_history (id, import_folder, total_files, duplicates_found,
                new_songs, uncertain_matches, threshold_used, vetted_at)
            SELECT id, import_folder, total_files, duplicates_found, new_songs,
                uncertain_matches, threshold_used, vetted_at
            FROM tool_vetting_history ORDER BY id;
            DROP TABLE tool_vetting_history;",
        )
        .context("copying the tool's vetting_history")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    // A test build can die here, everything done but the commit, as a `kill -9` would:
    // the take-over test checks the tool's database comes back untouched.
    #[cfg(debug_assertions)]
    if std::env::var_os("MUSICDEX_TEST_KILL_IN_TAKEOVER").is_some() {
        // SAFETY: sends SIGKILL to this very process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn index_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_first_load_drops_the_path_key_and_gets_it_back_one_row_per_path() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert!(index_exists(&conn, PATH_KEY));
        drop_secondary_indexes(&conn).unwrap();
        assert!(!index_exists(&conn, PATH_KEY));
        // Two loads racing on one empty index: paths from a small pool, some written twice
        // or more. Seeded; the last id written for each path is what must remain.
        let mut rng = fastrand::Rng::with_seed(5);
        let mut last: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut insert = conn
            .prepare(
                "INSERT INTO library_index (path_bytes, file_path, filename, file_format,
                    file_size, file_mtime, metadata_hash, indexed_at, is_active)
                 VALUES (?1, '', '', 'mp3', 1, '', '', '', 1)",
            )
            .unwrap();
        for _ in 0..3000 {
            let p = format!("/m/{}/{}.mp3", rng.u32(..20), rng.u32(..100)).into_bytes();
            insert.execute([&p]).unwrap();
            last.insert(p, conn.last_insert_rowid());
        }
        drop(insert);
        assert!(last.len() < 2000, "the pool repeats paths");
        restore_secondary_indexes(&conn).unwrap();
        assert!(index_exists(&conn, PATH_KEY));
        let mut stmt = conn
            .prepare("SELECT path_bytes, id FROM library_index ORDER BY path_bytes")
            .unwrap();
        let rows: BTreeMap<Vec<u8>, i64> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, last);
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM pending_indexes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pending, 0);
        // The key holds again.
        let (p, _) = last.iter().next().unwrap();
        let dup = conn.execute(
            "INSERT INTO library_index (path_bytes, file_path, filename, file_format,
                file_size, file_mtime, metadata_hash, indexed_at, is_active)
             VALUES (?1, '', '', 'mp3', 1, '', '', '', 1)",
            [p],
        );
        assert!(dup.is_err());
    }
}
