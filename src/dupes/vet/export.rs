//! `vet --export`: the lists of the classified files, one file per verdict.

use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Verdict, VetFile};
use crate::text::escape_control_bytes;

/// Write `new_songs.txt`, `already_indexed.txt`, `duplicates.txt`, `upgrades.txt`,
/// `uncertain.txt` and `unreadable.txt`: a `#` header (folder, time, count, columns),
/// then one file per line; columns are separated by tabs. Paths are written with their
/// exact bytes (a name that is not UTF-8 stays as it is on disk); only control
/// characters are escaped, so a tab or newline in a name cannot break a line.
pub(super) fn export(
    dir: &Path,
    folder: &Path,
    at: &str,
    files: &[VetFile],
) -> Result<Vec<String>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    const MATCH_COLUMNS: &str = "path, match, confidence, library path, certain, \
         duration, library duration, format/bitrate, library format/bitrate";
    let lists: [(&str, &str, Verdict, &str); 6] = [
        ("new_songs.txt", "new songs", Verdict::New, "path"),
        (
            "already_indexed.txt",
            "files already in the index",
            Verdict::Indexed,
            "path",
        ),
        (
            "duplicates.txt",
            "duplicates",
            Verdict::Duplicate,
            MATCH_COLUMNS,
        ),
        (
            "upgrades.txt",
            "better copies of library files (never moved)",
            Verdict::Upgrade,
            MATCH_COLUMNS,
        ),
        (
            "uncertain.txt",
            "uncertain matches",
            Verdict::Uncertain,
            MATCH_COLUMNS,
        ),
        (
            "unreadable.txt",
            "unreadable files",
            Verdict::Unreadable,
            "path, error",
        ),
    ];
    let secs = |d: Option<f64>| d.map_or("?".to_string(), |d| format!("{d:.1}"));
    let quality = |format: &str, bitrate: Option<u32>| {
        format!("{format}/{}", bitrate.map_or("?".into(), |b| b.to_string()))
    };
    let mut written = Vec::new();
    for (name, what, verdict, columns) in lists {
        let path = dir.join(name);
        let chosen: Vec<&VetFile> = files.iter().filter(|f| f.verdict == verdict).collect();
        let mut out = io::BufWriter::new(
            fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        writeln!(out, "# musicdex vet: {what}")?;
        out.write_all(b"# folder: ")?;
        out.write_all(&escape_control_bytes(folder.as_os_str().as_bytes()))?;
        writeln!(out)?;
        writeln!(out, "# time: {at}")?;
        writeln!(out, "# count: {}", chosen.len())?;
        writeln!(out, "# columns (tab-separated): {columns}")?;
        for f in chosen {
            out.write_all(&escape_control_bytes(f.path_buf.as_os_str().as_bytes()))?;
            match (&f.matched, &f.error) {
                (Some(m), _) => {
                    write!(out, "\t{}\t{:.2}\t", m.kind.name(), m.confidence)?;
                    let theirs = m.path_bytes.as_deref().map_or_else(
                        || m.path.as_bytes().to_vec(),
                        |hex| unhex(hex).unwrap_or_else(|| m.path.as_bytes().to_vec()),
                    );
                    out.write_all(&escape_control_bytes(&theirs))?;
                    writeln!(
                        out,
                        "\t{}\t{}\t{}\t{}\t{}",
                        if m.certain { "certain" } else { "not certain" },
                        secs(f.duration),
                        secs(m.duration),
                        quality(&f.format, f.bitrate),
                        quality(&m.format, m.bitrate),
                    )?
                }
                (None, Some(e)) => writeln!(out, "\t{}", e.replace(['\t', '\n'], " "))?,
                (None, None) => writeln!(out)?,
            }
        }
        out.flush()?;
        written.push(path.to_string_lossy().into_owned());
    }
    Ok(written)
}

/// The bytes of [`exact_hex`]'s output.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The exact form of a path for JSON: lower-case hex when it is not UTF-8, else None
/// (the `path` beside it is then exact).
pub(super) fn exact_hex(p: &Path) -> Option<String> {
    let b = p.as_os_str().as_bytes();
    std::str::from_utf8(b).is_err().then(|| crate::text::hex(b))
}
