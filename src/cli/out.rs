//! Standard output for a tool that is piped into `head`: a reader that stops reading is
//! not an error, so a closed stdout ends the command quietly with success.

use std::io::{self, BufWriter, Write};

/// Buffered stdout on which a broken pipe exits the process with status 0 and nothing on
/// stderr. Every print path of the command line writes through one of these.
pub struct Stdout {
    // Not a held lock: other threads (the scraper's) may print while a command runs.
    inner: BufWriter<io::Stdout>,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            inner: BufWriter::new(io::stdout()),
        }
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

fn check<T>(r: io::Result<T>) -> io::Result<T> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => quiet_exit(),
        r => r,
    }
}

/// The reader went away: there is nobody to tell, and nothing was lost.
pub fn quiet_exit() -> ! {
    std::process::exit(0)
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        check(self.inner.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        check(self.inner.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        check(self.inner.flush())
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Whether an error is, at bottom, a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

/// `println!` panics on a closed stdout. Code outside the command line (the scraper, the
/// generator's report) still prints that way, so that one panic becomes the same quiet
/// exit; every other panic keeps the default report.
pub fn install_pipe_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            quiet_exit();
        }
        default(info);
    }));
}
