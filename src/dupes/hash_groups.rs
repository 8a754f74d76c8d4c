//! `dupes` groups of rows sharing a content, audio or metadata key, read from the
//! partial indexes in key order.

use anyhow::Result;
use rusqlite::Connection;

use super::groups::{
    CONTENT_CONFIDENCE, DupeGroup, LibraryFile, METADATA_CONFIDENCE, MatchKind,
    UNKNOWN_DURATION_CONFIDENCE, rank, split_by_duration,
};
use super::sql;

/// Groups of rows sharing a content or metadata hash, read from the partial index in
/// key order.
pub(super) fn hash_groups(conn: &Connection, kind: MatchKind) -> Result<Vec<DupeGroup>> {
    let confidence = match kind {
        MatchKind::Metadata => METADATA_CONFIDENCE,
        _ => CONTENT_CONFIDENCE,
    };
    let mut stmt = conn.prepare(&sql::hash_groups(kind))?;
    let mut rows = stmt.query([])?;
    let mut groups = Vec::new();
    let mut key = String::new();
    let mut members: Vec<LibraryFile> = Vec::new();
    let mut flush = |key: &str, members: &mut Vec<LibraryFile>| {
        if kind == MatchKind::Metadata {
            // Blank-but-present tags (written by another tool) hash to the fallback
            // too; SQL only sees NULLs.
            members.retain(|f| !is_blank(&f.artist) || !is_blank(&f.title));
        }
        if members.len() > 1 {
            let files = std::mem::take(members);
            let parts = match kind {
                // The hash covers at most the first and last 64 KiB: files of other
                // sizes are other files.
                MatchKind::Content => split_by_size(files),
                // Two different PCM recordings with 64 KiB of silence at both ends hash
                // alike: only agreeing durations make them one recording, and an
                // unknown one makes the group uncertain.
                _ => split_by_duration(files),
            };
            for (mut files, uncertain) in parts {
                rank(&mut files);
                groups.push(DupeGroup {
                    kind,
                    key: key.to_string(),
                    confidence: if uncertain {
                        confidence.min(UNKNOWN_DURATION_CONFIDENCE)
                    } else {
                        confidence
                    },
                    files,
                });
            }
        }
        members.clear();
    };
    while let Some(r) = rows.next()? {
        let k: String = r.get(0)?;
        if k != key {
            flush(&key, &mut members);
            key = k;
        }
        members.push(LibraryFile::from_row_at(r, 1)?);
    }
    flush(&key, &mut members);
    Ok(groups)
}

/// Runs of equal size, two files or more (never uncertain).
fn split_by_size(mut files: Vec<LibraryFile>) -> Vec<(Vec<LibraryFile>, bool)> {
    files.sort_by_key(|f| f.size);
    let mut out: Vec<(Vec<LibraryFile>, bool)> = Vec::new();
    for f in files {
        match out.last_mut() {
            Some((g, _)) if g[0].size == f.size => g.push(f),
            _ => out.push((vec![f], false)),
        }
    }
    out.retain(|(g, _)| g.len() > 1);
    out
}

fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}
