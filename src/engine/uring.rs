//! The io_uring engine: thread per core, one ring per thread, no sharing but the walk
//! queue and the writer channel.
//!
//! Per file: statx (a plain syscall relative to the directory by default: warm, it is
//! cheaper than IORING_OP_STATX, which the kernel always punts to an io-wq thread); if
//! size and mtime match the index, done; else one hard-linked chain OPENAT (into a direct
//! descriptor, no fd table traffic) → READ head → READ tail → CLOSE. Many files are in
//! flight at once: on a cold cache the win is the disk kept deep in requests, not cheaper
//! syscalls. MD5 and the tag parse run on the same thread from the bytes the chain read;
//! when the parse needs bytes from the middle (big cover art), another chain fetches them.
//!
//! IO_HARDLINK rather than IO_LINK: a short read (a file that shrank) would cancel the
//! rest of an IO_LINK chain, CLOSE included, leaking the slot. Anything unexpected (a
//! short read, a failed read) sends that one file down the reference path, so a file that
//! changes under us is recorded as the reference engine would record it.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use crossbeam_channel::Sender;
use io_uring::{IoUring, Probe, opcode, squeue, types};

use super::file::{
    Triage, batch_hashes, first_reads, open_failed, open_for_read, parse_from_file, triage,
    triage_stat,
};
use super::{Batcher, EngineContext};
use crate::media::budget;
use crate::media::record::{Stat, read_reference};
use crate::media::sparse::{self, Attempt, Segment};
use crate::media::{FileRecord, md5x8};
use crate::scan::WalkProblems;
use crate::scan::parallel::{Batch, Dir, DirBuf, Next, ParallelWalk};
use crate::store::KnownFile;
use crate::store::writer::Change;

/// Tuning, fixed at start.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Files in flight per ring.
    pub window: usize,
    /// io-wq bounded workers per ring (opens of uncached names and reads the kernel cannot
    /// do asynchronously run there); 0 leaves the kernel default.
    pub iowq_workers: u32,
    /// Stat through the ring (IORING_OP_STATX) instead of a plain statx syscall: always,
    /// never, or (`None`) while the thread is waiting on I/O. Warm, the syscall is cheaper
    /// (the ring punts every STATX to an io-wq thread); cold, a blocking statx per file
    /// serialises the inode reads (measured on 10k files: 17.0 s sync vs 10.5 s ring).
    pub ring_statx: Option<bool>,
    pub coop_taskrun: bool,
    /// Faults to inject, for the tests of teardown.
    #[cfg(test)]
    pub fault: fault::Fault,
}

/// Overrides of the ring's tuning, for measuring, not for users. The library never reads
/// the environment: the binary fills this (`musicdex::process::uring_tuning_from_env`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    pub window: Option<usize>,
    pub iowq_workers: Option<u32>,
    /// See [`Config::ring_statx`].
    pub ring_statx: Option<bool>,
    /// Set up rings with COOP_TASKRUN (see `build_ring`).
    pub coop_taskrun: bool,
}

impl Config {
    pub fn for_threads(threads: usize, tuning: &Tuning) -> Config {
        // 128 files in flight over all rings keeps a disk busy (measured: one ring with
        // window 64 ≈ 24k files/s cold, two rings of 64 ≈ the disk's limit); per ring at
        // most 64, since buffers (192 KiB per slot) are what the window costs in memory.
        let window = tuning
            .window
            .unwrap_or_else(|| (128 / threads.max(1)).clamp(16, 64))
            .clamp(1, 1024);
        // 64 bounded io-wq workers per ring: cold, 10k files took 10.5 s with the default
        // limit and 7.5 s with 64 (the punted STATX and OPENAT calls run there).
        let iowq_workers = tuning.iowq_workers.unwrap_or(64);
        Config {
            window,
            iowq_workers,
            ring_statx: tuning.ring_statx,
            coop_taskrun: tuning.coop_taskrun,
            #[cfg(test)]
            fault: fault::Fault::default(),
        }
    }

    fn ring_entries(&self) -> u32 {
        ((self.window * 4) as u32).next_power_of_two().max(64)
    }
}

fn build_ring(cfg: &Config) -> io::Result<IoUring> {
    let entries = cfg.ring_entries();
    // SINGLE_ISSUER: only this thread submits (a hint; older kernels refuse it, so retry
    // without). COOP_TASKRUN is left off by default: it defers the next link of every
    // chain until this thread enters the kernel, which it does only between files.
    let mut b = IoUring::builder();
    b.setup_cqsize(entries * 2).setup_single_issuer();
    if cfg.coop_taskrun {
        b.setup_coop_taskrun();
    }
    let ring = b
        .build(entries)
        .or_else(|_| IoUring::builder().setup_cqsize(entries * 2).build(entries))?;
    ring.submitter().register_files_sparse(cfg.window as u32)?;
    if cfg.iowq_workers > 0 {
        let mut max = [cfg.iowq_workers, 0];
        // Not fatal: the default limit is only slower.
        let _ = ring.submitter().register_iowq_max_workers(&mut max);
    }
    Ok(ring)
}

/// Whether this process may use io_uring the way the engine does: a ring, every opcode it
/// needs, and a table of direct descriptors. The error says why not. An unprivileged
/// process needs its RLIMIT_MEMLOCK raised first (`musicdex::process::raise_memlock`).
pub fn probe(cfg: &Config) -> io::Result<()> {
    let ring = build_ring(cfg)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [
        (opcode::OpenAt::CODE, "OPENAT"),
        (opcode::Read::CODE, "READ"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Statx::CODE, "STATX"),
        (opcode::Fadvise::CODE, "FADVISE"),
    ] {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("kernel lacks IORING_OP_{name}"),
            ));
        }
    }
    Ok(())
}

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>, cfg: Config) -> Result<WalkProblems> {
    super::run_pool(ctx, tx, "ring", |walk, tx| worker(ctx, walk, tx, cfg))
}

fn worker(
    ctx: &EngineContext,
    walk: &ParallelWalk,
    tx: Sender<Vec<Change>>,
    cfg: Config,
) -> Result<()> {
    let ring = match build_ring(&cfg) {
        Ok(r) => r,
        Err(e) => {
            // The probe passed, so this is a limit reached by the rings before this one:
            // this thread works with blocking syscalls instead.
            eprintln!(
                "musicdex: a ring could not be set up ({e}); one thread reads without io_uring"
            );
            return super::threads::worker(ctx, walk, tx);
        }
    };
    let mut w = RingWorker {
        ring,
        slots: (0..cfg.window).map(|_| Slot::default()).collect(),
        free: (0..cfg.window).rev().collect(),
        hashing: Vec::with_capacity(md5x8::LANES),
        pool: Pool::default(),
        target: MIN_WINDOW.min(cfg.window),
        since_wait: 0,
        ctx,
        cfg,
        out: Batcher::new(tx, ctx.stop),
        extra: 0,
    };
    // Teardown is RingWorker's Drop: it runs however `run` ends, error or panic, and
    // waits for the kernel before any buffer is freed.
    w.run(walk)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Free,
    Stat,
    First,
    /// Read, waiting for enough others to hash together.
    Hash,
    Refetch,
}

/// One file in flight; its index is its direct-descriptor slot.
#[derive(Default)]
struct Slot {
    phase: Phase,
    dir: Option<Arc<Dir>>,
    name: CString,
    path: PathBuf,
    stat: Option<Stat>,
    known: Option<KnownFile>,
    /// Bytes held, sorted by offset.
    segments: Vec<Segment>,
    /// What each READ of the chain in flight fills: an offset and a buffer whose spare
    /// capacity the kernel writes (never zero-filled first: that cost as much as a copy).
    reading: Vec<(u64, Vec<u8>, usize)>,
    /// Results of the chain in flight: OPENAT, FADVISE, the READs, CLOSE.
    results: Vec<i32>,
    waiting: usize,
    content: Option<String>,
    round: u32,
    statx: Option<Box<libc::statx>>,
    /// Bytes held beyond head and tail, counted in [`RingWorker::extra`].
    extra: u64,
}

const OP_BITS: u64 = 16;
/// Position of the first READ in a chain (after OPENAT and FADVISE).
const READ_OPS_FROM: usize = 2;
const OP_STATX: u64 = (1 << OP_BITS) - 1;
/// Files in flight when reads complete as fast as they are asked for (a warm cache): a
/// small window keeps each file's bytes in the CPU cache from the kernel's copy to the
/// MD5, which a window of 64 files (12 MiB of buffers) does not. One hash batch: eight
/// files are read while the eight before them are hashed (measured warm on 10k files,
/// best of 3: 1.00 s with 4, 0.96 s with 8, 1.10 s with 16).
const MIN_WINDOW: usize = md5x8::LANES;
/// A wait for completions longer than this was a wait on the device, not on task work.
const IO_WAIT: std::time::Duration = std::time::Duration::from_micros(100);

/// Read buffers of finished files, reused: fresh large allocations cost page faults and
/// a kernel copy into cold memory, more than the copy itself.
#[derive(Default)]
struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    /// Enough for every slot's head and tail plus some cover art, per ring.
    const MAX_BYTES: usize = 24 << 20;
    const MAX_BUF: usize = 4 << 20;

    /// An empty buffer with room for `len` bytes, or `None` when the allocator refuses
    /// (that file then reads another way; the run goes on).
    fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        let fit = self
            .bufs
            .iter()
            .enumerate()
            .rev()
            .take(8)
            .find(|(_, b)| b.capacity() >= len)
            .map(|(i, _)| i);
        match fit {
            Some(i) => {
                let b = self.bufs.swap_remove(i);
                self.bytes -= b.capacity();
                Some(b)
            }
            None => {
                let mut b = Vec::new();
                b.try_reserve_exact(len).ok()?;
                Some(b)
            }
        }
    }

    fn put(&mut self, mut b: Vec<u8>) {
        let cap = b.capacity();
        if cap <= Self::MAX_BUF && self.bytes + cap <= Self::MAX_BYTES {
            b.clear();
            self.bytes += cap;
            self.bufs.push(b);
        }
    }
}

struct RingWorker<'a> {
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Slots whose first reads are in, hashed together once there are eight of them or
    /// nothing else is in flight.
    hashing: Vec<usize>,
    /// Read buffers of finished files, reused so the hot path does not allocate.
    pool: Pool,
    /// Files to keep in flight now, between MIN_WINDOW and `cfg.window`: grows while the
    /// thread waits on I/O, shrinks while completions are ready whenever it looks.
    target: usize,
    since_wait: u32,
    ctx: &'a EngineContext<'a>,
    cfg: Config,
    out: Batcher<'a>,
    /// Bytes all slots hold beyond head and tail; at most [`RING_FETCH_CAP`].
    extra: u64,
}

/// What one ring's files may hold beyond their heads and tails, whatever their number or
/// what they declare: a parse that would need more reads from the file instead
/// ([`RingWorker::stream`]). With the window's heads and tails and the pool, this keeps a
/// ring's buffers under ~70 MiB.
const RING_FETCH_CAP: u64 = 32 << 20;

impl RingWorker<'_> {
    /// Slots taken, by files in flight or waiting for their hash.
    fn busy(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Files with requests in the ring.
    fn in_flight(&self) -> usize {
        self.busy() - self.hashing.len()
    }

    fn run(&mut self, walk: &ParallelWalk) -> Result<()> {
        let mut dirbuf = DirBuf::default();
        let mut current: Option<(Batch, usize)> = None;
        let mut walk_done = false;
        loop {
            // Fill the window.
            while self.in_flight() < self.target && !self.free.is_empty() && !walk_done {
                let (dir, name) = match &mut current {
                    Some((b, i)) if *i < b.names.len() => {
                        *i += 1;
                        (b.dir.clone(), b.names[*i - 1].clone())
                    }
                    _ => {
                        current = None;
                        match walk.next(self.busy() == 0, &mut dirbuf) {
                            Next::Batch(b) => {
                                current = Some((b, 0));
                                continue;
                            }
                            Next::Empty => break,
                            Next::Done => {
                                walk_done = true;
                                break;
                            }
                        }
                    }
                };
                self.start(dir, name)?;
            }
            if self.in_flight() == 0 {
                if !self.hashing.is_empty() {
                    self.hash_pending()?;
                    continue;
                }
                if walk_done {
                    break;
                }
                continue;
            }
            self.wait_and_reap()?;
        }
        self.out.flush()
    }

    /// Begin one file: stat it (or queue the stat), decide, and queue its first chain.
    fn start(&mut self, dir: Arc<Dir>, name: CString) -> Result<()> {
        let ctx = self.ctx;
        let io_bound = self.target > MIN_WINDOW;
        if self.cfg.ring_statx.unwrap_or(io_bound) {
            ctx.counters.found.fetch_add(1, Ordering::Relaxed);
            let s = self.free.pop().expect("a free slot");
            let path = dir.path_of(&name);
            let slot = &mut self.slots[s];
            slot.known = ctx.known.get(&path).copied();
            slot.path = path;
            slot.name = name;
            slot.phase = Phase::Stat;
            let statx = slot
                .statx
                .get_or_insert_with(|| Box::new(unsafe { std::mem::zeroed() }));
            let flags = if ctx.walk.follow_symlinks {
                0
            } else {
                libc::AT_SYMLINK_NOFOLLOW
            };
            let e = opcode::Statx::new(
                types::Fd(dir.fd.as_raw_fd()),
                slot.name.as_ptr(),
                (&mut **statx as *mut libc::statx).cast(),
            )
            .flags(flags)
            .mask(libc::STATX_SIZE | libc::STATX_MTIME)
            .build()
            .user_data(((s as u64) << OP_BITS) | OP_STATX);
            slot.dir = Some(dir);
            return self.push(s, &[e]);
        }
        match triage(ctx, &dir, &name) {
            Triage::Done(c) => self.out.push(c),
            Triage::Read { path, stat, known } => {
                let s = self.free.pop().expect("a free slot");
                let slot = &mut self.slots[s];
                slot.dir = Some(dir);
                slot.name = name;
                slot.path = path;
                slot.known = known;
                self.read_first(s, stat)
            }
        }
    }

    fn read_first(&mut self, s: usize, stat: Stat) -> Result<()> {
        self.ctx.counters.read.fetch_add(1, Ordering::Relaxed);
        let slot = &mut self.slots[s];
        slot.stat = Some(stat);
        slot.phase = Phase::First;
        slot.round = 0;
        slot.content = None;
        slot.segments.clear();
        let mut reads = Vec::with_capacity(2);
        for (offset, len) in first_reads(stat.size) {
            match self.pool.take(len) {
                Some(buf) => reads.push((offset, buf, len)),
                None => {
                    for (_, buf, _) in reads {
                        self.pool.put(buf);
                    }
                    let path = std::mem::take(&mut self.slots[s].path);
                    return self.finish(s, read_reference(path, stat));
                }
            }
        }
        self.submit_chain(s, reads)
    }

    /// OPENAT → FADVISE → READ each `(offset, buffer, len)` → CLOSE, hard-linked.
    fn submit_chain(&mut self, s: usize, reads: Vec<(u64, Vec<u8>, usize)>) -> Result<()> {
        // A chain is queued whole or not at all, so one longer than the submission queue
        // could never be: that file is read by the reference path instead (a refetch plan
        // has no fixed bound).
        if reads.len() + READ_OPS_FROM + 1 > self.sq_capacity() {
            for (_, buf, _) in reads {
                self.pool.put(buf);
            }
            let slot = &mut self.slots[s];
            let stat = slot.stat.expect("stat'ed before reading");
            let path = std::mem::take(&mut slot.path);
            return self.finish(s, read_reference(path, stat));
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

    fn sq_capacity(&mut self) -> usize {
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
    fn push(&mut self, s: usize, entries: &[squeue::Entry]) -> Result<()> {
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

    fn wait_and_reap(&mut self) -> Result<()> {
        // Submit without waiting first: if completions are already there, the disk keeps
        // up with this window; if not, more files in flight would keep it busier.
        let submitted = match self.submit() {
            Ok(_) => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => false,
            Err(e) => return Err(e.into()),
        };
        let mut waited = false;
        if !submitted || self.ring.completion().is_empty() {
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
            waited = t.elapsed() > IO_WAIT;
        }
        if waited {
            self.target = (self.target * 2).min(self.cfg.window);
            self.since_wait = 0;
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

    /// A slot's requests are all complete: move its file on.
    fn step(&mut self, s: usize) -> Result<()> {
        let ctx = self.ctx;
        match self.slots[s].phase {
            Phase::Free => unreachable!("completion for a free slot"),
            Phase::Stat => {
                let slot = &mut self.slots[s];
                let res = slot.results[0];
                let stat = if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    let st = slot.statx.as_ref().expect("statx buffer");
                    Ok(Stat {
                        size: st.stx_size,
                        mtime_ns: st.stx_mtime.tv_sec * 1_000_000_000
                            + i64::from(st.stx_mtime.tv_nsec),
                    })
                };
                let path = std::mem::take(&mut slot.path);
                match triage_stat(ctx, path, slot.known, stat) {
                    Triage::Done(c) => {
                        self.release(s);
                        self.out.push(c)
                    }
                    Triage::Read { path, stat, .. } => {
                        self.slots[s].path = path;
                        self.read_first(s, stat)
                    }
                }
            }
            Phase::First | Phase::Refetch => {
                let slot = &mut self.slots[s];
                let stat = slot.stat.expect("stat'ed before reading");
                let open = slot.results[0];
                if open < 0 {
                    let path = std::mem::take(&mut slot.path);
                    let record = if slot.phase == Phase::First {
                        open_failed(path, stat, io::Error::from_raw_os_error(-open))
                    } else {
                        // Opened a moment ago and gone now: the reference path says what
                        // it finds.
                        read_reference(path, stat)
                    };
                    return self.finish(s, record);
                }
                let mut complete = true;
                for (k, (offset, mut data, len)) in
                    std::mem::take(&mut slot.reading).into_iter().enumerate()
                {
                    let res = slot.results[k + READ_OPS_FROM];
                    if res < 0 || res as usize != len {
                        complete = false;
                        continue;
                    }
                    // SAFETY: the kernel wrote exactly `res` bytes into the spare capacity.
                    unsafe { data.set_len(res as usize) };
                    ctx.counters.add(&ctx.counters.bytes_read, res as u64);
                    let extra = budget::costs_beyond_first(stat.size, offset, offset + len as u64);
                    slot.extra += extra;
                    self.extra += extra;
                    sparse::add_segment(&mut slot.segments, Segment { offset, data });
                }
                if !complete {
                    let path = std::mem::take(&mut slot.path);
                    return self.finish(s, read_reference(path, stat));
                }
                if slot.phase == Phase::First {
                    slot.phase = Phase::Hash;
                    self.hashing.push(s);
                    if self.hashing.len() == md5x8::LANES {
                        self.hash_pending()?;
                    }
                    return Ok(());
                }
                self.parse(s)
            }
            Phase::Hash => unreachable!("no requests in flight while waiting for the hash"),
        }
    }

    /// Hash the files waiting for it together, then parse each.
    fn hash_pending(&mut self) -> Result<()> {
        let queued = std::mem::take(&mut self.hashing);
        let hashes = batch_hashes(queued.iter().map(|&s| {
            let slot = &self.slots[s];
            (slot.stat.expect("stat'ed").size, slot.segments.as_slice())
        }));
        for (&s, h) in queued.iter().zip(hashes) {
            self.slots[s].content = Some(h);
        }
        for &s in &queued {
            self.parse(s)?;
        }
        self.hashing = queued;
        self.hashing.clear();
        Ok(())
    }

    /// Parse a hashed file's tags from the bytes held; fetch more if the parse needs them.
    fn parse(&mut self, s: usize) -> Result<()> {
        let slot = &mut self.slots[s];
        let stat = slot.stat.expect("stat'ed before reading");
        match sparse::attempt(stat.size, &slot.segments, &slot.path, slot.round) {
            Attempt::Parsed(parsed) => {
                let path = std::mem::take(&mut slot.path);
                let content = slot.content.take().expect("hashed after the first chain");
                let record = FileRecord::assemble(path, stat, Ok(content), parsed);
                self.finish(s, record)
            }
            Attempt::Fetch(plan) => {
                let want: u64 = plan.iter().map(|&(_, n)| n as u64).sum();
                if self.extra + want > RING_FETCH_CAP {
                    return self.stream(s);
                }
                let mut reads = Vec::with_capacity(plan.len());
                for (offset, len) in plan {
                    match self.pool.take(len) {
                        Some(buf) => reads.push((offset, buf, len)),
                        None => {
                            for (_, buf, _) in reads {
                                self.pool.put(buf);
                            }
                            return self.stream(s);
                        }
                    }
                }
                let slot = &mut self.slots[s];
                slot.round += 1;
                slot.phase = Phase::Refetch;
                self.submit_chain(s, reads)
            }
            Attempt::Stream => self.stream(s),
        }
    }

    /// Parse a hashed file from the file itself, blocking this thread: for the rare file
    /// whose parse needs more than the ring may hold for it. Same bytes, same budget, so
    /// the same row as any other way.
    fn stream(&mut self, s: usize) -> Result<()> {
        let slot = &mut self.slots[s];
        let stat = slot.stat.expect("stat'ed before reading");
        let path = std::mem::take(&mut slot.path);
        let dir = slot.dir.as_ref().expect("slot has its directory");
        let record = match open_for_read(dir, slot.name.as_c_str()) {
            Ok(file) => {
                let content = slot.content.take().expect("hashed after the first chain");
                parse_from_file(&file, path, stat, &slot.segments, content)
            }
            // Gone since it was read: the reference path says what it finds.
            Err(_) => read_reference(path, stat),
        };
        self.finish(s, record)
    }

    fn finish(&mut self, s: usize, record: FileRecord) -> Result<()> {
        let known = self.slots[s].known;
        self.release(s);
        self.out.push(Change::Record {
            record: Box::new(record),
            known,
        })
    }

    fn release(&mut self, s: usize) {
        let slot = &mut self.slots[s];
        slot.phase = Phase::Free;
        slot.dir = None;
        slot.known = None;
        slot.content = None;
        slot.reading.clear();
        self.extra -= std::mem::take(&mut slot.extra);
        for seg in slot.segments.drain(..) {
            self.pool.put(seg.data);
        }
        self.free.push(s);
    }

    /// Requests queued or in flight, over all slots.
    fn outstanding(&self) -> usize {
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

#[cfg(test)]
pub mod fault {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Counters, StopFlag};
    use crate::scan::WalkOptions;
    use crate::store::Known;
    use std::path::Path;

    fn library() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library")
    }

    fn ring_usable() -> bool {
        let ok = probe(&Config::for_threads(1, &Tuning::default())).is_ok();
        if !ok {
            eprintln!("skipped: io_uring is refused here");
        }
        ok
    }

    /// Run the ring engine on one thread over the fixture library with `fault`; returns
    /// what `run` returned and the changes sent.
    fn run_with(fault: fault::Fault) -> (Result<WalkProblems>, usize) {
        let roots = [library()];
        let walk = WalkOptions {
            follow_symlinks: false,
            filter: crate::scan::ExtFilter::parse("*").unwrap(),
        };
        let known = Known::default();
        let counters = Counters::default();
        let ctx = EngineContext {
            roots: &roots,
            walk: &walk,
            known: &known,
            full: true,
            threads: 1,
            counters: &counters,
            stop: StopFlag::never(),
            uring: Tuning::default(),
        };
        let mut cfg = Config::for_threads(1, &Tuning::default());
        cfg.ring_statx = Some(false);
        cfg.fault = fault;
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = run(&ctx, tx, cfg);
        (r, rx.try_iter().map(|b| b.len()).sum())
    }

    fn log() -> &'static fault::Log {
        Box::leak(Box::default())
    }

    #[test]
    fn a_failed_submit_drains_what_was_queued() {
        if !ring_usable() {
            return;
        }
        let log = log();
        let (r, _) = run_with(fault::Fault {
            fail_submit_at: Some(0),
            log: Some(log),
            ..Default::default()
        });
        let e = r.expect_err("the injected failure ends the run");
        assert!(
            format!("{e:#}").contains("injected submit failure"),
            "{e:#}"
        );
        let outstanding = log.outstanding_at_drop.load(Ordering::SeqCst);
        // The window was filled before the first submit: every chain was still queued.
        assert!(outstanding >= 4, "{outstanding}");
        assert_eq!(log.reaped_in_drain.load(Ordering::SeqCst), outstanding);
        assert!(log.canaries_checked.load(Ordering::SeqCst) > 0);
        assert_eq!(log.canaries_left.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panic_mid_flight_drains_before_buffers_are_freed() {
        if !ring_usable() {
            return;
        }
        let log = log();
        let (r, _) = run_with(fault::Fault {
            panic_after_push: Some(5),
            log: Some(log),
            ..Default::default()
        });
        let e = r.expect_err("the injected panic ends the run");
        assert!(format!("{e:#}").contains("panicked"), "{e:#}");
        let outstanding = log.outstanding_at_drop.load(Ordering::SeqCst);
        // At least the chain queued right before the panic.
        assert!(outstanding >= 4, "{outstanding}");
        assert_eq!(log.reaped_in_drain.load(Ordering::SeqCst), outstanding);
        assert_eq!(log.canaries_left.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn without_faults_nothing_is_left_at_teardown() {
        if !ring_usable() {
            return;
        }
        let log = log();
        let (r, sent) = run_with(fault::Fault {
            log: Some(log),
            ..Default::default()
        });
        r.unwrap();
        assert!(sent >= 10, "{sent}");
        assert_eq!(log.outstanding_at_drop.load(Ordering::SeqCst), 0);
        assert!(
            log.pushes.load(Ordering::SeqCst) == 0,
            "no push hook without a fault"
        );
    }

    #[test]
    fn a_chain_longer_than_the_queue_is_read_by_the_reference_path() {
        if !ring_usable() {
            return;
        }
        let file = library().join("Daft Punk/Discovery/02 Aerodynamic.flac");
        let dir_path = file.parent().unwrap();
        let known = Known::default();
        let counters = Counters::default();
        let walk = WalkOptions::default();
        let roots = [dir_path.to_path_buf()];
        let ctx = EngineContext {
            roots: &roots,
            walk: &walk,
            known: &known,
            full: true,
            threads: 1,
            counters: &counters,
            stop: StopFlag::never(),
            uring: Tuning::default(),
        };
        let mut cfg = Config::for_threads(1, &Tuning::default());
        cfg.window = 2;
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut w = RingWorker {
            ring: build_ring(&cfg).unwrap(),
            slots: (0..cfg.window).map(|_| Slot::default()).collect(),
            free: (0..cfg.window).rev().collect(),
            hashing: Vec::new(),
            pool: Pool::default(),
            target: 1,
            since_wait: 0,
            extra: 0,
            ctx: &ctx,
            cfg,
            out: Batcher::new(tx, ctx.stop),
        };
        let fd = rustix::fs::open(
            dir_path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let stat = Stat::from_metadata(&meta);
        let s = w.free.pop().unwrap();
        let slot = &mut w.slots[s];
        slot.dir = Some(Arc::new(Dir {
            fd,
            path: dir_path.to_path_buf(),
        }));
        slot.name = CString::new("02 Aerodynamic.flac").unwrap();
        slot.path = file.clone();
        slot.stat = Some(stat);
        let cap = w.sq_capacity();
        // One read per 16 bytes of the file's start: far more than the queue holds.
        let reads: Vec<_> = (0..cap as u64)
            .map(|i| (i * 16, Vec::with_capacity(16), 16))
            .collect();
        w.submit_chain(s, reads).unwrap();
        assert_eq!(w.outstanding(), 0, "nothing was queued");
        assert_eq!(w.free.len(), 2, "the slot was released");
        w.out.flush().unwrap();
        drop(w);
        let changes: Vec<Change> = rx.try_iter().flatten().collect();
        let [Change::Record { record, .. }] = &changes[..] else {
            panic!("one record: {changes:?}");
        };
        // Every engine's records get their audio hash on the way to the writer.
        let mut want = read_reference(file, stat);
        crate::media::audio_hash::fill(&mut want);
        assert_eq!(**record, want);
        assert!(record.content_hash.is_some());
    }
}
