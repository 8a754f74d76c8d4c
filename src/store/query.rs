//! Read-side queries: `stats` and `export`.

use std::io::Write;

use anyhow::Result;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct FormatCount {
    pub format: String,
    pub files: u64,
    pub share: f64,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_secs: Option<f64>,
    pub status: String,
    pub engine: String,
}

/// One row of `vetting_history`, whoever wrote it (`musicdex vet` or the replaced tool's
/// `ImportVetter`: the columns are the tool's).
#[derive(Debug, Serialize)]
pub struct VetRecord {
    pub vetted_at: String,
    pub import_folder: String,
    pub total_files: Option<i64>,
    pub new_songs: Option<i64>,
    pub duplicates_found: Option<i64>,
    pub uncertain_matches: Option<i64>,
    pub threshold_used: Option<f64>,
    /// `None` for a row the tool wrote.
    pub engine: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub files: u64,
    pub inactive_files: u64,
    pub files_with_errors: u64,
    /// Active rows with no audio hash: indexed before the column existed (a `--full` run
    /// fills them), or of a format whose payload cannot be located.
    pub files_without_audio_hash: u64,
    pub total_size_bytes: u64,
    pub formats: Vec<FormatCount>,
    pub distinct_artists: u64,
    pub distinct_albums: u64,
    pub last_run: Option<LastRun>,
    /// The latest vets, newest first.
    pub recent_vets: Vec<VetRecord>,
}

/// The latest `limit` rows of `vetting_history`, newest first (the tool's order).
pub fn vetting_history(conn: &Connection, limit: u32) -> Result<Vec<VetRecord>> {
    let mut stmt = conn.prepare(
        "SELECT vetted_at, import_folder, total_files, new_songs, duplicates_found,
            uncertain_matches, threshold_used, engine
         FROM vetting_history ORDER BY vetted_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(VetRecord {
                vetted_at: r.get(0)?,
                import_folder: r.get(1)?,
                total_files: r.get(2)?,
                new_songs: r.get(3)?,
                duplicates_found: r.get(4)?,
                uncertain_matches: r.get(5)?,
                threshold_used: r.get(6)?,
                engine: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn stats(conn: &Connection) -> Result<Stats> {
    let (files, size, errors): (i64, i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(file_size), 0), count(error)
         FROM library_index WHERE is_active = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let no_audio: i64 = conn.query_row(
        "SELECT count(*) FROM library_index WHERE is_active = 1 AND audio_hash IS NULL",
        [],
        |r| r.get(0),
    )?;
    let inactive: i64 = conn.query_row(
        "SELECT count(*) FROM library_index WHERE is_active = 0",
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT file_format, count(*) FROM library_index WHERE is_active = 1
         GROUP BY file_format ORDER BY count(*) DESC, file_format",
    )?;
    let formats = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .map(|row| {
            row.map(|(format, n)| FormatCount {
                format,
                files: n as u64,
                share: if files > 0 {
                    n as f64 / files as f64
                } else {
                    0.0
                },
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Names are compared case-folded in Rust: SQLite's lower() only knows ASCII.
    let mut artists = std::collections::HashSet::new();
    let mut albums = std::collections::HashSet::new();
    let mut stmt = conn.prepare(
        "SELECT artist, coalesce(album_artist, artist), album FROM library_index
         WHERE is_active = 1 AND (artist IS NOT NULL OR album IS NOT NULL)",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let artist: Option<String> = r.get(0)?;
        let album_artist: Option<String> = r.get(1)?;
        let album: Option<String> = r.get(2)?;
        if let Some(a) = artist {
            artists.insert(a.trim().to_lowercase());
        }
        if let Some(al) = album {
            albums.insert((
                album_artist.unwrap_or_default().trim().to_lowercase(),
                al.trim().to_lowercase(),
            ));
        }
    }
    let last_run = conn
        .query_row(
            "SELECT started_at, finished_at, duration_secs, status, engine, pid
             FROM index_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                let mut status: String = r.get(3)?;
                // A run whose process is gone (kill -9, a crash) is not running; the
                // next index run closes it as abandoned.
                if status == "running"
                    && !r
                        .get::<_, Option<i64>>(5)?
                        .is_some_and(crate::index::process_alive)
                {
                    status = "abandoned".into();
                }
                Ok(LastRun {
                    started_at: r.get(0)?,
                    finished_at: r.get(1)?,
                    duration_secs: r.get(2)?,
                    status,
                    engine: r.get(4)?,
                })
            },
        )
        .ok();
    Ok(Stats {
        files: files as u64,
        inactive_files: inactive as u64,
        files_with_errors: errors as u64,
        files_without_audio_hash: no_audio as u64,
        total_size_bytes: size as u64,
        formats,
        distinct_artists: artists.len() as u64,
        distinct_albums: albums.len() as u64,
        last_run,
        recent_vets: vetting_history(conn, 5)?,
    })
}

/// The stats as text, written to `out` so a closed pipe is an error the caller can end
/// on quietly. Active files are those present at their last walk; inactive ones were
/// missing (kept until `musicdex prune`); errors are among the active ones.
pub fn print_stats(s: &Stats, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} active files ({} with read errors, see `musicdex errors`), {}; {} inactive rows \
         (files gone, see `musicdex prune`)",
        s.files,
        s.files_with_errors,
        human_bytes(s.total_size_bytes),
        s.inactive_files,
    )?;
    writeln!(
        out,
        "{} active files without an audio hash (indexed before it existed: `index --full` \
         fills them; or a format without a locatable payload)",
        s.files_without_audio_hash
    )?;
    for f in &s.formats {
        writeln!(
            out,
            "  {:<6} {:>9}  {:>5.1}%",
            crate::text::escape_control(&f.format),
            f.files,
            f.share * 100.0
        )?;
    }
    writeln!(
        out,
        "{} artists, {} albums",
        s.distinct_artists, s.distinct_albums
    )?;
    match &s.last_run {
        Some(r) => writeln!(
            out,
            "last index: {} ({}, {}{})",
            r.started_at,
            r.status,
            r.engine,
            r.duration_secs
                .map(|d| format!(", {d:.2}s"))
                .unwrap_or_default()
        ),
        None => writeln!(out, "never indexed"),
    }?;
    for v in &s.recent_vets {
        let n = |x: Option<i64>| x.map_or_else(|| "?".to_string(), |x| x.to_string());
        writeln!(
            out,
            "vetted {} ({}): {} files, {} new, {} duplicates, {} uncertain{}",
            crate::text::escape_control(&v.import_folder),
            v.vetted_at,
            n(v.total_files),
            n(v.new_songs),
            n(v.duplicates_found),
            n(v.uncertain_matches),
            if v.engine.is_none() {
                " (by music-tools)"
            } else {
                ""
            },
        )?;
    }
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    /// A hive-partitioned dataset folder (`--out DIR`), see `store::dataset`.
    Parquet,
}

/// Every column of every indexed row (inactive ones too, with `is_active` saying so).
/// `path_bytes` is written as lower-case hex only when the path is not valid UTF-8;
/// otherwise it is null and `file_path` is exact.
pub fn export(conn: &Connection, format: ExportFormat, out: &mut dyn Write) -> Result<()> {
    if format == ExportFormat::Parquet {
        anyhow::bail!("Parquet is not a stream: it is written into a dataset folder (--out DIR)");
    }
    let mut stmt = conn.prepare("SELECT * FROM library_verified ORDER BY path_bytes")?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    if format == ExportFormat::Csv {
        let header: Vec<String> = names.iter().map(|n| csv_field(n)).collect();
        writeln!(out, "{}", header.join(","))?;
    }
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut obj = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i)? {
                ValueRef::Null => serde_json::Value::Null,
                ValueRef::Integer(n) => n.into(),
                ValueRef::Real(f) => f.into(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                ValueRef::Blob(b) => match std::str::from_utf8(b) {
                    Ok(_) if name == "path_bytes" => serde_json::Value::Null,
                    _ => hex(b).into(),
                },
            };
            obj.insert(name.clone(), v);
        }
        match format {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &obj)?;
                writeln!(out)?;
            }
            ExportFormat::Parquet => unreachable!("refused above"),
            ExportFormat::Csv => {
                let fields: Vec<String> = names
                    .iter()
                    .map(|n| match &obj[n] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => csv_field(s),
                        other => other.to_string(),
                    })
                    .collect();
                writeln!(out, "{}", fields.join(","))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `export` into a file: written beside it under a temporary name and renamed over it
/// when complete, so a failed export never leaves a truncated file behind.
pub fn export_to_file(
    conn: &Connection,
    format: ExportFormat,
    path: &std::path::Path,
) -> Result<()> {
    use anyhow::Context;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = std::io::BufWriter::new(file);
        export(conn, format, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot create {}", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
