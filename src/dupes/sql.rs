//! Every statement `dupes` and `vet` run, built in one place.
//!
//! The dupes and vet queries read the partial indexes of schema migration 2 (and 7 for
//! the audio hash), whose WHERE clauses are the `*_ROWS` constants below: SQLite only
//! uses a partial index when the query repeats its condition verbatim, so every query
//! that must use one is assembled here from the same constants.

use super::groups::MatchKind;

/// Rows that may match by content: a file whose hash failed matches nothing.
const CONTENT_ROWS: &str = "is_active = 1 AND file_content_hash IS NOT NULL";
/// Rows that may match by audio hash (schema migration 6's index holds every row with one).
const AUDIO_ROWS: &str = "is_active = 1 AND audio_hash IS NOT NULL";
/// An audio group's key: the audio hash and the payload length (`?` where unknown).
const AUDIO_KEY: &str = "(audio_hash || '/' || coalesce(audio_len, '?'))";
/// Rows whose metadata hash may be grouped. The index cannot also exclude the
/// no-metadata fallback hash without holding artist and title; a metadata hash is
/// either a fallback for all its rows or for none, so [`HAS_TAGS`] on the rows read
/// back is exact.
const METADATA_ROWS: &str = CONTENT_ROWS;
/// Not the no-metadata fallback: an artist or a title.
const HAS_TAGS: &str = "(artist IS NOT NULL OR title IS NOT NULL)";
/// Rows that may match fuzzily: an artist to block on and a title to compare.
const ARTIST_ROWS: &str = "is_active = 1 AND file_content_hash IS NOT NULL
            AND artist IS NOT NULL AND title IS NOT NULL";

/// The columns `LibraryFile::from_row` reads, in its order.
const FILE_COLUMNS: &str = "id, file_path, artist, title, album, file_format, \
     bitrate, sample_rate, file_size, duration";
/// [`FILE_COLUMNS`] and the raw path, for `vet`, which must recognise the vetted file
/// itself; `dupes` holds hundreds of thousands of rows and does without.
const FILE_COLUMNS_AND_PATH: &str = "id, file_path, artist, title, album, \
     file_format, bitrate, sample_rate, file_size, duration, path_bytes";

/// `dupes`: the raw path of one row, for the few whose text path is lossy.
pub(crate) const PATH_BYTES_BY_ID: &str = "SELECT path_bytes FROM library_index WHERE id = ?1";

/// `dupes`: the group key then [`FILE_COLUMNS`] of every row sharing a content, audio or
/// metadata key with another, in key order.
pub(crate) fn hash_groups(kind: MatchKind) -> String {
    let (column, rows, extra) = match kind {
        MatchKind::Content => ("file_content_hash", CONTENT_ROWS, "1"),
        // The payload length beside the hash: silent-ended PCM recordings hash alike.
        MatchKind::Audio => (AUDIO_KEY, AUDIO_ROWS, "1"),
        MatchKind::Metadata => ("metadata_hash", METADATA_ROWS, HAS_TAGS),
        MatchKind::Fuzzy => unreachable!("fuzzy groups are not hash groups"),
    };
    format!(
        "SELECT {column}, {FILE_COLUMNS} FROM library_index
         WHERE {rows} AND {extra} AND {column} IN (
             SELECT {column} FROM library_index WHERE {rows}
             GROUP BY {column} HAVING count(*) > 1)
         ORDER BY {column}"
    )
}

/// Every raw artist spelling that may match fuzzily, with its number of rows.
pub(crate) fn artist_counts() -> String {
    format!("SELECT artist, count(*) FROM library_index WHERE {ARTIST_ROWS} GROUP BY artist")
}

/// `dupes`: (artist, id, title) of every row that may match fuzzily, in raw artist order.
pub(crate) fn artist_titles() -> String {
    format!("SELECT artist, id, title FROM library_index WHERE {ARTIST_ROWS} ORDER BY artist")
}

/// `dupes`: [`FILE_COLUMNS`] of one row.
pub(crate) fn file_by_id() -> String {
    format!("SELECT {FILE_COLUMNS} FROM library_index WHERE id = ?1")
}

/// `vet`: [`FILE_COLUMNS_AND_PATH`] of the rows with content hash `?1`.
pub(crate) fn vet_by_content() -> String {
    format!(
        "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index
                 WHERE file_content_hash = ?1 AND {CONTENT_ROWS}"
    )
}

/// `vet`: [`FILE_COLUMNS_AND_PATH`] of the rows with audio hash `?1` and the payload
/// length `len` (unknown matches only unknown).
pub(crate) fn vet_by_audio(len: Option<u64>) -> String {
    let len = len.map_or("IS NULL".to_string(), |n| format!("= {n}"));
    format!(
        "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index
                 WHERE audio_hash = ?1 AND {AUDIO_ROWS} AND audio_len {len}"
    )
}

/// `vet`: [`FILE_COLUMNS_AND_PATH`] of the tagged rows with metadata hash `?1`.
pub(crate) fn vet_by_metadata() -> String {
    format!(
        "SELECT {FILE_COLUMNS_AND_PATH} FROM library_index
             WHERE metadata_hash = ?1 AND {METADATA_ROWS} AND {HAS_TAGS}"
    )
}

/// `vet`: whether the raw path `?1` is an active row.
pub(crate) const VET_IS_INDEXED: &str =
    "SELECT 1 FROM library_index WHERE path_bytes = ?1 AND is_active = 1";

/// `vet`: (id, title) of the rows with the raw artist spelling `?1` that may match fuzzily.
pub(crate) fn vet_titles_of_artist() -> String {
    format!("SELECT id, title FROM library_index WHERE artist = ?1 AND {ARTIST_ROWS}")
}

/// `vet`: [`FILE_COLUMNS_AND_PATH`] of one row.
pub(crate) fn vet_file_by_id() -> String {
    format!("SELECT {FILE_COLUMNS_AND_PATH} FROM library_index WHERE id = ?1")
}

/// `vet`: when the folder `?1` was last vetted.
pub(crate) const PREVIOUSLY_VETTED: &str =
    "SELECT max(vetted_at) FROM vetting_history WHERE import_folder = ?1";

/// `vet`: the history row of one run.
pub(crate) const INSERT_HISTORY: &str =
    "INSERT INTO vetting_history (vetted_at, import_folder, engine, threshold_used,
            duration_secs, total_files, new_songs, duplicates_found, uncertain_matches,
            unreadable, moved, export_dir, move_dir, dry_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows.join("\n")
    }

    #[test]
    fn queries_read_the_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("db")).unwrap();
        for (sql, index) in [
            (
                format!(
                    "SELECT file_content_hash FROM library_index WHERE {CONTENT_ROWS}
                     GROUP BY file_content_hash HAVING count(*) > 1"
                ),
                "COVERING INDEX idx_dupes_content",
            ),
            (
                format!(
                    "SELECT metadata_hash FROM library_index WHERE {METADATA_ROWS}
                     GROUP BY metadata_hash HAVING count(*) > 1"
                ),
                "COVERING INDEX idx_dupes_metadata",
            ),
            (artist_counts(), "idx_dupes_artist"),
            (artist_titles(), "idx_dupes_artist"),
            (
                format!("SELECT id, title FROM library_index WHERE artist = 'x' AND {ARTIST_ROWS}"),
                "idx_dupes_artist",
            ),
            (
                format!(
                    "SELECT {FILE_COLUMNS} FROM library_index
                     WHERE file_content_hash = 'x' AND {CONTENT_ROWS}"
                ),
                "idx_dupes_content",
            ),
            (
                format!(
                    "SELECT {FILE_COLUMNS} FROM library_index
                     WHERE metadata_hash = 'x' AND {METADATA_ROWS}"
                ),
                "idx_dupes_metadata",
            ),
        ] {
            let p = plan(&conn, &sql);
            assert!(p.contains(index), "{sql}\n{p}");
            assert!(
                !p.contains("TEMP B-TREE"),
                "sorts instead of using the index: {sql}\n{p}"
            );
        }
    }
}
