//! Stopping a run early. The library never installs signal handlers: the binary owns the
//! process (see `musicdex::process`) and hands a [`StopFlag`] to the run, which every
//! engine checks through its `Batcher`, so a stop ends all of them at the next file and
//! the writer commits what it has.

use std::sync::atomic::{AtomicI32, Ordering};

/// Zero while the run may go on; else the signal (or any positive reason code) that asked
/// it to stop.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicI32);

impl StopFlag {
    /// `const` so a binary can keep one in a `static` that a signal handler reaches.
    pub const fn new() -> StopFlag {
        StopFlag(AtomicI32::new(0))
    }

    /// A flag nobody sets, for runs that cannot be stopped early (vet, benches).
    pub fn never() -> &'static StopFlag {
        static NEVER: StopFlag = StopFlag::new();
        &NEVER
    }

    /// Ask for a stop because of `signal`. Returns false if a stop was already asked for.
    /// Only an atomic swap: safe to call from a signal handler.
    pub fn request(&self, signal: i32) -> bool {
        self.0
            .compare_exchange(0, signal.max(1), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The signal that asked for the stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }
}

/// The error an engine returns when it stopped because a stop was requested (Ctrl-C,
/// SIGTERM, SIGHUP).
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
}

impl Interrupted {
    /// 128 + the signal, as a shell reports a process killed by it: 130 for Ctrl-C, 143
    /// for SIGTERM, 129 for SIGHUP.
    pub fn exit_code(&self) -> u8 {
        (128 + self.signal) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; what was indexed is saved and the next run completes the work")
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_wins_and_is_reported() {
        let f = StopFlag::new();
        assert_eq!(f.requested(), None);
        assert!(f.request(libc::SIGTERM));
        assert!(!f.request(libc::SIGINT));
        assert_eq!(f.requested(), Some(libc::SIGTERM));
        assert_eq!(
            Interrupted {
                signal: libc::SIGHUP
            }
            .exit_code(),
            129
        );
    }
}
