//! What a run cost (CPU time and peak memory) and its summary as text.

use super::Summary;

#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub user: f64,
    pub sys: f64,
    pub max_rss_kb: i64,
}

impl Usage {
    pub(super) fn since(&self, start: &Usage) -> Usage {
        Usage {
            user: self.user - start.user,
            sys: self.sys - start.sys,
            max_rss_kb: self.max_rss_kb,
        }
    }
}

/// CPU time and peak RSS of this process so far.
pub fn rusage() -> Usage {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    }
}

/// The summary as text. Written to `out` (not printed) so a closed pipe is an error the
/// caller can end on quietly.
pub fn print_summary(
    s: &Summary,
    metrics: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} files found: {} added, {} updated, {} unchanged, {} removed, {} moved, {} errors",
        s.files_found, s.added, s.updated, s.unchanged, s.removed, s.moved, s.errors
    )?;
    writeln!(
        out,
        "{:.2}s, {:.0} files/s ({} engine, {} threads) → {}",
        s.elapsed_secs,
        s.files_per_sec,
        s.engine,
        s.threads,
        crate::text::escape_control(&s.db)
    )?;
    if metrics {
        let m = &s.metrics;
        writeln!(out, "  load index         {:>9.3}s", m.load_secs)?;
        writeln!(out, "  walk+read+parse    {:>9.3}s", m.scan_secs)?;
        writeln!(
            out,
            "  writer busy        {:>9.3}s in {} transactions, {} rows written",
            m.write_busy_secs, m.transactions, m.rows_written
        )?;
        if let Some(journal) = m.first_load_journal {
            writeln!(
                out,
                "  first load         indexes built after the rows, {journal} journal"
            )?;
        }
        writeln!(out, "  mark removed, log  {:>9.3}s", m.finish_secs)?;
        writeln!(out, "  files opened       {:>9}", m.files_read)?;
        // Head and tail for the hash plus the tag blocks the parser asked for: what was
        // read from disk, more than the bytes that went through MD5.
        writeln!(
            out,
            "  bytes read         {:>9.1} MiB",
            m.bytes_read as f64 / 1048576.0
        )?;
        writeln!(
            out,
            "  audio hash extra   {:>9.1} MiB, {:.0} B per file read",
            m.audio_extra_bytes as f64 / 1048576.0,
            m.audio_extra_bytes_per_file
        )?;
        writeln!(out, "  io_uring ops       {:>9}", m.ring_ops)?;
        writeln!(
            out,
            "  cpu                {:>9.2}s user + {:.2}s sys = {:.0}% of all cores",
            m.user_cpu_secs,
            m.sys_cpu_secs,
            m.cpu_utilisation * 100.0
        )?;
        writeln!(out, "  peak memory (rss)  {:>9.1} MiB", m.peak_rss_mb)?;
    }
    Ok(())
}
