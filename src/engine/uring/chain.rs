//! The ring side of the uring backend: queueing a file's chain, submitting, reaping
//! completions, and the teardown that never frees a buffer the kernel may still write.

use std::io;
use std::os::fd::AsRawFd;
#[cfg(test)]
use std::sync::atomic::Ordering;

use anyhow::Result;
use io_uring::{opcode, squeue, types};

#[cfg(test)]
use super::fault;
use super::{IO_WAIT, MIN_WINDOW, OP_BITS, OP_STATX, READ_OPS_FROM, RingWorker};
use crate::engine::pipeline::Reads;

impl RingWorker<'_> {
    /// OPENAT → FADVISE → READ each `(offset, buffer, len)` → CLOSE, hard-linked.
    pub(super) fn submit_chain(
        &mut self,
        s: usize,
        reads: Vec<(u64, Vec<u8>, usize)>,
    ) -> Result<()> {
        // A chain is queued whole or not at all, so one longer than the submission queue
        // could never be (a refetch plan has no fixed bound): no room, as the pipeline
        // hears it.
        if reads.len() + READ_OPS_FROM + 1 > self.sq_capacity() {
            for (_, buf, _) in reads {
                self.pool.put(buf);
            }
            return self.reads_done(s, Reads::NoRoom);
        }
        let slot = &mut self.slots[s];
        let dir = slot.dir.as_ref().expect("slot has its directory");
        let fixed = types::Fixed(s as u32);
        let mut entries = Vec::with_capacity(reads.len() + 2);
        let dest = types::DestinationSlot::try_from_slot_target(s as u32)
            .map_err(|_| anyhow::anyhow!("direct descriptor slot out of range"))?;
        entries.push(
            opcode::OpenAt::new(types::Fd(dir.fd.as_raw_fd()), slot.name.as_ptr())
                .file_index(Some(dest))
                .flags(libc::O_RDONLY)
                .build()
                .flags(squeue::Flags::IO_HARDLINK),
        );
        // No readahead: it would read (and, in the holes of sparse files, zero-fill) up
        // to read_ahead_kb past each head, several MiB that nothing uses; measured cold,
        // it cost more CPU than everything else together.
        entries.push(
            opcode::Fadvise::new(fixed, 0, libc::POSIX_FADV_RANDOM)
                .build()
                .flags(squeue::Flags::IO_HARDLINK),
        );
        slot.reading.clear();
        for (offset, mut buf, len) in reads {
            debug_assert!(buf.is_empty() && buf.capacity() >= len);
            #[cfg(test)]
            if self.cfg.fault.log.is_some() {
                fault::paint(&mut buf, len);
            }
            entries.push(
                opcode::Read::new(fixed, buf.as_mut_ptr(), len as u32)
                    .offset(offset)
                    .build()
                    .flags(squeue::Flags::IO_HARDLINK),
            );
            slot.reading.push((offset, buf, len));
        }
        entries.push(opcode::Close::new(fixed).build());
        for (op, e) in entries.iter_mut().enumerate() {
            *e = e.clone().user_data(((s as u64) << OP_BITS) | op as u64);
        }
        slot.results.clear();
        slot.results.resize(entries.len(), i32::MIN);
        self.push(s, &entries)
    }

    pub(super) fn sq_capacity(&mut self) -> usize {
        self.ring.submission().capacity()
    }

    /// `submit`, where the tests can make it fail.
    fn submit(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if self.cfg.fault.submit_fails() {
            return Err(io::Error::other("injected submit failure"));
        }
        self.ring.submit()
    }

    /// Queue `entries` of slot `s` as a unit (a chain split across two submissions would
    /// lose its links), and count them as waiting the moment they are queued: not before,
    /// since a push that failed queued nothing to wait for; not later, since a queued entry
    /// reaches the kernel with the next submit, whoever makes it.
    pub(super) fn push(&mut self, s: usize, entries: &[squeue::Entry]) -> Result<()> {
        anyhow::ensure!(
            entries.len() <= self.sq_capacity(),
            "a chain of {} requests cannot fit a submission queue of {}",
            entries.len(),
            self.sq_capacity()
        );
        loop {
            // SAFETY: every pointer in the entries (names, buffers, statx) lives in a slot
            // that is neither freed nor reused until all of its completions are reaped
            // (RingWorker's Drop waits for them, or leaks the slots).
            let pushed = unsafe { self.ring.submission().push_multiple(entries) };
            if pushed.is_ok() {
                self.slots[s].waiting = entries.len();
                break;
            }
            // The queue is full: hand it to the kernel, again if interrupted. Any other
            // error (EBUSY: completions must be reaped first) ends the worker, whose
            // teardown reaps and waits.
            match self.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        #[cfg(test)]
        self.cfg.fault.pushed();
        self.ctx
            .counters
            .add(&self.ctx.counters.ring_ops, entries.len() as u64);
        Ok(())
    }

    pub(super) fn wait_and_reap(&mut self) -> Result<()> {
        // Submit without waiting first: if completions are already there, the disk keeps
        // up with this window; if not, more files in flight would keep it busier.
        let t = std::time::Instant::now();
        let submit = self.submit();
        self.stats.submit_time += t.elapsed();
        let submitted = match submit {
            Ok(_) => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => false,
            Err(e) => return Err(e.into()),
        };
        let mut waited = false;
        if !submitted || self.ring.completion().is_empty() {
            let depth = self.in_flight();
            self.stats.waits += 1;
            self.stats.depth_sum += depth as u64;
            self.stats.depth_max = self.stats.depth_max.max(depth);
            let t = std::time::Instant::now();
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // The completion queue is full: reaping below makes room.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e.into()),
            }
            // Warm, a chain's later links complete as soon as this thread runs their task
            // work, within microseconds; only a wait on a device counts as waiting.
            let took = t.elapsed();
            self.stats.wait_time += took;
            waited = took > IO_WAIT;
            self.stats.device_waits += u64::from(waited);
        }
        if waited {
            self.grow();
        } else {
            // Shrink only after a long run of never waiting: with many files in flight
            // some completions are nearly always ready, even when the disk is the limit.
            self.since_wait += 1;
            if self.since_wait >= 256 {
                self.since_wait = 0;
                self.target = (self.target / 2).max(MIN_WINDOW.min(self.cfg.window));
            }
        }
        let mut done = Vec::new();
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            let s = (ud >> OP_BITS) as usize;
            let op = ud & OP_STATX;
            let slot = &mut self.slots[s];
            if op == OP_STATX {
                slot.results.clear();
                slot.results.push(cqe.result());
            } else {
                slot.results[op as usize] = cqe.result();
            }
            slot.waiting -= 1;
            if slot.waiting == 0 {
                done.push(s);
            }
        }
        for s in done {
            self.step(s)?;
        }
        Ok(())
    }

    /// Requests queued or in flight, over all slots.
    pub(super) fn outstanding(&self) -> usize {
        self.slots.iter().map(|s| s.waiting).sum()
    }

    /// Wait for every request queued or in flight, so no buffer is freed under the kernel.
    /// Interrupted and busy waits are retried; returns false if the kernel refused to
    /// wait, when requests may still be running.
    fn drain(&mut self) -> bool {
        let mut failures = 0;
        while self.outstanding() > 0 {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // EBUSY: the completion queue is full; reaping below makes room.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(_) => {
                    failures += 1;
                    if failures >= 3 {
                        return false;
                    }
                }
            }
            for cqe in self.ring.completion() {
                let s = (cqe.user_data() >> OP_BITS) as usize;
                let op = (cqe.user_data() & OP_STATX) as usize;
                if let Some(slot) = self.slots.get_mut(s) {
                    slot.waiting = slot.waiting.saturating_sub(1);
                    if op as u64 != OP_STATX
                        && let Some(r) = slot.results.get_mut(op)
                    {
                        *r = cqe.result();
                    }
                    #[cfg(test)]
                    if let Some(log) = self.cfg.fault.log {
                        log.reaped_in_drain.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        true
    }
}

impl Drop for RingWorker<'_> {
    /// However the worker ends (done, an error, a panic), the kernel may still be writing
    /// into slot buffers through io-wq: wait for it, and if it cannot be waited for, leak
    /// the slots (buffers, names, statx) rather than free memory it may write.
    fn drop(&mut self) {
        #[cfg(test)]
        if let Some(log) = self.cfg.fault.log {
            log.outstanding_at_drop
                .fetch_add(self.outstanding(), Ordering::SeqCst);
        }
        if self.outstanding() == 0 {
            return;
        }
        if self.drain() {
            #[cfg(test)]
            if let Some(log) = self.cfg.fault.log {
                fault::check_canaries(&self.slots, log);
            }
        } else {
            eprintln!("musicdex: io_uring requests could not be waited for; leaking their buffers");
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}
