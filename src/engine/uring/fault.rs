//! Fault injection for the teardown tests: a `submit` that fails, a panic with
//! requests queued, and a record of what the teardown found and did.

use std::sync::atomic::{AtomicUsize, Ordering};

const CANARY: u8 = 0xa5;

#[derive(Clone, Copy, Debug, Default)]
pub struct Fault {
    /// Make the n-th call of `submit` (from 0, over all rings) fail.
    pub fail_submit_at: Option<usize>,
    /// Panic right after the n-th push, its requests queued and not submitted.
    pub panic_after_push: Option<usize>,
    pub log: Option<&'static Log>,
}

#[derive(Debug, Default)]
pub struct Log {
    pub submits: AtomicUsize,
    pub pushes: AtomicUsize,
    pub outstanding_at_drop: AtomicUsize,
    pub reaped_in_drain: AtomicUsize,
    /// Buffers of reads completed in the drain that still held the canary: memory the
    /// kernel never wrote, which is what a read that outlived its buffer looks like.
    pub canaries_left: AtomicUsize,
    pub canaries_checked: AtomicUsize,
}

impl Fault {
    pub(super) fn submit_fails(&self) -> bool {
        let (Some(at), Some(log)) = (self.fail_submit_at, self.log) else {
            return false;
        };
        log.submits.fetch_add(1, Ordering::SeqCst) == at
    }

    pub(super) fn pushed(&self) {
        if let (Some(at), Some(log)) = (self.panic_after_push, self.log)
            && log.pushes.fetch_add(1, Ordering::SeqCst) == at
        {
            panic!("injected panic with requests queued");
        }
    }
}

/// Fill the spare capacity a read will write with the canary.
pub(super) fn paint(buf: &mut Vec<u8>, len: usize) {
    buf.spare_capacity_mut()[..len]
        .iter_mut()
        .for_each(|b| *b = std::mem::MaybeUninit::new(CANARY));
}

/// After the drain: every read that completed whole wrote its buffer.
pub(super) fn check_canaries(slots: &[super::Slot], log: &Log) {
    for slot in slots {
        for (k, (_, buf, len)) in slot.reading.iter().enumerate() {
            // Only reads the kernel reports as done whole.
            let res = slot.results.get(k + super::READ_OPS_FROM).copied();
            if res != Some(*len as i32) || *len < 64 {
                continue;
            }
            // SAFETY: painted up to len before the read was queued; written since.
            let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr(), *len) };
            log.canaries_checked.fetch_add(1, Ordering::SeqCst);
            if bytes.iter().all(|&b| b == CANARY) {
                log.canaries_left.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
