//! Terminal output for `dupes` and `vet`. `--json` prints the report structs instead.

use std::io::{self, Write};
use std::path::Path;

use super::groups::{DupesReport, LibraryFile, MatchKind};
use super::vet::{Verdict, VetReport};
use crate::store::query::human_bytes;
// Names are data: a newline or escape sequence in one must not break the listing.
use crate::text::escape_control;

/// How many files of each kind `vet` lists on the terminal; the export has them all.
const LIST_LIMIT: usize = 20;

pub fn print_dupes(r: &DupesReport, out: &mut dyn Write) -> io::Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "{} content, {} audio (same recording, different tags), {} metadata, {} fuzzy \
         groups: {} files, {} redundant ({})",
        s.content_groups,
        s.audio_groups,
        s.metadata_groups,
        s.fuzzy_groups,
        s.files_in_groups,
        s.redundant_files,
        human_bytes(s.redundant_bytes)
    )?;
    for g in &r.groups {
        writeln!(out)?;
        writeln!(
            out,
            "[{} {:.0}%] {} files{}",
            g.kind.name(),
            g.confidence * 100.0,
            g.files.len(),
            if g.kind == MatchKind::Audio {
                " (same recording, different tags)"
            } else {
                ""
            }
        )?;
        for (i, f) in g.files.iter().enumerate() {
            writeln!(
                out,
                "  {} {}",
                if i == 0 { "keep" } else { "    " },
                file_line(f)
            )?;
        }
    }
    Ok(())
}

fn file_line(f: &LibraryFile) -> String {
    format!(
        "{:<5} {:>5} kbit/s {:>6} {:>8} {:>10}  {}",
        f.format,
        f.bitrate.map_or("?".into(), |b| b.to_string()),
        f.sample_rate
            .map_or("?".into(), |s| format!("{:.1}k", s as f64 / 1000.0)),
        duration(f.duration),
        human_bytes(f.size),
        escape_control(&f.path)
    )
}

/// "3:07.5", or "?:??" when lofty could not time the file.
fn duration(d: Option<f64>) -> String {
    match d.filter(|d| d.is_finite() && *d > 0.0) {
        Some(d) => {
            let tenths = (d * 10.0).round() as u64;
            format!("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10)
        }
        None => "?:??".to_string(),
    }
}

pub fn print_vet(r: &VetReport, out: &mut dyn Write) -> io::Result<()> {
    let c = &r.counts;
    writeln!(
        out,
        "vetted {} files in {} ({:.2}s)",
        c.total, r.folder, r.elapsed_secs
    )?;
    writeln!(out, "  new         {:>7}", c.new)?;
    if c.indexed > 0 {
        writeln!(
            out,
            "  indexed     {:>7}  (already in the library)",
            c.indexed
        )?;
    }
    writeln!(out, "  duplicate   {:>7}", c.duplicate)?;
    writeln!(out, "  upgrade     {:>7}", c.upgrade)?;
    writeln!(out, "  uncertain   {:>7}", c.uncertain)?;
    writeln!(out, "  unreadable  {:>7}", c.unreadable)?;
    if r.walk_errors > 0 {
        writeln!(
            out,
            "  warning: {} folders could not be read; their files were not vetted",
            r.walk_errors
        )?;
    }
    let folder = Path::new(&r.folder);
    let short = |p: &str| -> String {
        Path::new(p)
            .strip_prefix(folder)
            .map(|q| escape_control(&q.to_string_lossy()).into_owned())
            .unwrap_or_else(|_| escape_control(p).into_owned())
    };
    for (verdict, heading) in [
        (Verdict::Duplicate, "duplicates"),
        (
            Verdict::Upgrade,
            "upgrades (better than every library copy; kept)",
        ),
        (Verdict::Uncertain, "uncertain (review by hand)"),
        (Verdict::Unreadable, "unreadable"),
    ] {
        let chosen: Vec<_> = r.files.iter().filter(|f| f.verdict == verdict).collect();
        if chosen.is_empty() {
            continue;
        }
        writeln!(out, "{heading}:")?;
        for f in chosen.iter().take(LIST_LIMIT) {
            match (&f.matched, &f.error) {
                (Some(m), _) => writeln!(
                    out,
                    "  {}  = {} {:.0}%{}  {}  ({} {} kbit/s {} vs {} {} kbit/s {})",
                    short(&f.path),
                    m.kind.name(),
                    m.confidence * 100.0,
                    if m.certain { "" } else { " not certain" },
                    escape_control(&m.path),
                    f.format,
                    f.bitrate.map_or("?".into(), |b| b.to_string()),
                    duration(f.duration),
                    m.format,
                    m.bitrate.map_or("?".into(), |b| b.to_string()),
                    duration(m.duration),
                )?,
                (None, Some(e)) => writeln!(out, "  {}  ({e})", short(&f.path))?,
                (None, None) => writeln!(out, "  {}", short(&f.path))?,
            }
        }
        if chosen.len() > LIST_LIMIT {
            writeln!(
                out,
                "  ... and {} more (see --export or --json)",
                chosen.len() - LIST_LIMIT
            )?;
        }
    }
    if c.move_failed > 0 {
        writeln!(
            out,
            "  error: {} moves failed; those files were left where they were",
            c.move_failed
        )?;
    }
    if !r.moves.is_empty() {
        writeln!(out, "moves:")?;
        for m in &r.moves {
            writeln!(out, "  {}: {} -> {}", m.status, m.from, m.to)?;
        }
    }
    for e in &r.exported {
        writeln!(out, "wrote {e}")?;
    }
    Ok(())
}
