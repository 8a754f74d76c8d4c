//! The progress line on stderr while a run indexes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{self, Counters};

/// One line on stderr, redrawn 10 times a second: counts, rates over the last few
/// seconds, and once the walk is over (every file found) an estimate of the time left.
/// Cleared when the run ends, by success, error or a stop signal, so the final message
/// stands alone.
pub(super) fn progress_loop(
    counters: &Counters,
    written: &AtomicU64,
    done: &AtomicBool,
    expected: u64,
    stop: &engine::StopFlag,
) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut rate = Rate::default();
    // A stop request clears the line at once, before the engines wind down and the
    // "interrupted" message is printed.
    while !done.load(Ordering::Relaxed) && stop.requested().is_none() {
        let found = counters.found.load(Ordering::Relaxed);
        let read = counters.read.load(Ordering::Relaxed);
        let bytes = counters.bytes_read.load(Ordering::Relaxed);
        let w = written.load(Ordering::Relaxed);
        // The total is known once the walk has listed everything; before, the last run's
        // count is an estimate (shown with `~`).
        let total = if counters.walk.done.load(Ordering::Relaxed) {
            Some((
                counters.walk.listed.load(Ordering::Relaxed).max(found),
                true,
            ))
        } else if expected > 0 {
            Some((expected.max(found), false))
        } else {
            None
        };
        bar.set_message(progress_message(found, read, w, bytes, total, &mut rate));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// Files and bytes per second over a sliding window of about five seconds, so the rate
/// follows the disk rather than averaging the whole run.
#[derive(Default)]
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64, u64)>,
}

impl Rate {
    fn push(&mut self, files: u64, bytes: u64) -> (f64, f64) {
        let now = Instant::now();
        self.samples.push_back((now, files, bytes));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_secs(5)
        {
            self.samples.pop_front();
        }
        let (t0, f0, b0) = self.samples[0];
        let secs = now.duration_since(t0).as_secs_f64();
        if secs < 0.2 {
            return (0.0, 0.0);
        }
        (
            (files - f0.min(files)) as f64 / secs,
            (bytes - b0.min(bytes)) as f64 / secs / 1048576.0,
        )
    }
}

fn progress_message(
    found: u64,
    read: u64,
    written: u64,
    bytes: u64,
    total: Option<(u64, bool)>,
    rate: &mut Rate,
) -> String {
    // The parallel engines count a file as found when they take it up (unchanged files
    // are never read), so `found` is the smooth measure of work done; the writer commits
    // in large transactions and moves in steps.
    let (fps, mibs) = rate.push(found, bytes);
    let mut msg = format!(
        "{found} found · {read} read · {written} saved · {fps:.0} files/s · {mibs:.1} MiB/s"
    );
    if let Some((total, exact)) = total
        && fps > 0.0
    {
        let left = total.saturating_sub(found) as f64 / fps;
        let approx = if exact { "" } else { "~" };
        msg.push_str(&format!(" · ETA {approx}{}", short_duration(left)));
    }
    msg
}

/// `1h02m`, `3m05s`, `12s`: short, so the line fits an 80-column terminal.
fn short_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_text() {
        assert_eq!(short_duration(0.4), "0s");
        assert_eq!(short_duration(59.4), "59s");
        assert_eq!(short_duration(185.0), "3m05s");
        assert_eq!(short_duration(3725.0), "1h02m");
        let mut rate = Rate::default();
        let first = progress_message(10, 5, 0, 1 << 20, Some((100, false)), &mut rate);
        // No rate from a single sample, hence no ETA yet.
        assert_eq!(first, "10 found · 5 read · 0 saved · 0 files/s · 0.0 MiB/s");
        std::thread::sleep(Duration::from_millis(250));
        let later = progress_message(60, 40, 0, 6 << 20, Some((100, false)), &mut rate);
        assert!(later.contains(" · ETA ~"), "{later}");
        let exact = progress_message(60, 40, 0, 6 << 20, Some((100, true)), &mut rate);
        assert!(exact.contains(" · ETA ") && !exact.contains('~'), "{exact}");
        let none = progress_message(60, 40, 0, 6 << 20, None, &mut rate);
        assert!(!none.contains("ETA"), "{none}");
    }
}
