//! Process-wide state that only a binary sets up: signal handlers. Library code never
//! calls this; `main` does, and passes the [`StopFlag`] it routes signals to into the run.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::engine::StopFlag;

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
