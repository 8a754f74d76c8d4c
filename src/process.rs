//! Process-wide state that only a binary sets up: signal handlers, rlimits, tuning read
//! from the environment. Library code never calls this; `main` does, and passes the
//! [`StopFlag`] it routes signals to and the typed tuning into the run.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::engine::StopFlag;
use crate::engine::uring::Tuning;

/// Where the handler sends a stop; a pointer so the handler does only atomic loads.
static TARGET: AtomicPtr<StopFlag> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_stop_signal(sig: libc::c_int) {
    let target = TARGET.load(Ordering::SeqCst);
    // SAFETY: TARGET only ever holds a `&'static StopFlag` (see install_stop_handlers).
    let first = target.is_null() || unsafe { &*target }.request(sig);
    if !first {
        // A second signal means now: the database is consistent at any instant.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Route the first Ctrl-C, SIGTERM (a service stop, `kill`) or SIGHUP (a closed terminal)
/// to `stop` instead of an abrupt exit; a second one exits at once.
pub fn install_stop_handlers(stop: &'static StopFlag) {
    TARGET.store(stop as *const StopFlag as *mut StopFlag, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls _exit, all async-signal-safe.
        unsafe {
            libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Raise the locked-memory soft limit to the hard limit: where ring memory is charged to
/// RLIMIT_MEMLOCK (unprivileged users), a low soft limit makes io_uring_setup fail.
pub fn raise_memlock() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
        }
    }
}

/// The ring's tuning overrides, for measuring: MUSICDEX_URING_WINDOW (files in flight per
/// ring), MUSICDEX_URING_IOWQ (io-wq workers per ring), MUSICDEX_URING_STATX (`ring` or
/// `sync`), MUSICDEX_URING_COOP=1, MUSICDEX_URING_LISTERS (threads listing folders ahead),
/// MUSICDEX_URING_REPORT=1 (per-ring counts on stderr). Unset or unparseable values keep the defaults.
pub fn uring_tuning_from_env() -> Tuning {
    let var = |k: &str| std::env::var(k).ok();
    let num = |k: &str| var(k).and_then(|v| v.parse::<usize>().ok());
    Tuning {
        window: num("MUSICDEX_URING_WINDOW"),
        iowq_workers: num("MUSICDEX_URING_IOWQ").map(|n| n as u32),
        ring_statx: match var("MUSICDEX_URING_STATX").as_deref() {
            Some("ring") => Some(true),
            Some("sync") => Some(false),
            _ => None,
        },
        coop_taskrun: var("MUSICDEX_URING_COOP").is_some_and(|v| v == "1"),
        listers: num("MUSICDEX_URING_LISTERS"),
        report: var("MUSICDEX_URING_REPORT").is_some_and(|v| v == "1"),
    }
}
