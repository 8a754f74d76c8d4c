//! The `uring` backend of the pipeline ([`crate::engine::pipeline`]): thread per core, one
//! ring per thread, no sharing but the walk queue and the writer channel.
//!
//! Per file: statx (a plain syscall relative to the directory by default: warm, it is
//! cheaper than IORING_OP_STATX, which the kernel always punts to an io-wq thread); then
//! the pipeline decides; what it asks to read goes out as one hard-linked chain OPENAT
//! (into a direct descriptor, no fd table traffic) → FADVISE → READ … → CLOSE. Many files
//! are in flight at once: on a cold cache the win is the disk kept deep in requests, not
//! cheaper syscalls. MD5 and the tag parse run on the same thread from the bytes read.
//!
//! Folders are listed ahead of the rings by a few blocking threads
//! ([`ParallelWalk::list_ahead`]): cold, a ring that lists a folder itself stops feeding
//! the disk for the folder's inode and blocks (100k tiny files: 3.6-3.9 s of a ~10 s run
//! per ring, against ~0.1 s with four listers).
//!
//! IO_HARDLINK rather than IO_LINK: a short read (a file that shrank) would cancel the
//! rest of an IO_LINK chain, CLOSE included, leaking the slot. What to do with a short
//! read, a failed open, a file with no room left is the pipeline's call, not this file's.

mod chain;
#[cfg(test)]
pub mod fault;
mod pool;
mod ring;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use crossbeam_channel::Sender;
use io_uring::{IoUring, opcode, types};

use super::pipeline::{self, HASH_BATCH, Job, Next, Reads, Triage};
use super::{Batcher, EngineContext, file};
use crate::media::budget;
use crate::media::record::Stat;
use crate::media::sparse::Segment;
use crate::media::{FileRecord, md5x8};
use crate::scan::WalkProblems;
use crate::scan::parallel::{Batch, Dir, DirBuf, Next as Walked, ParallelWalk};
use crate::store::KnownFile;
use crate::store::writer::Change;
use pool::Pool;
use ring::build_ring;
pub use ring::{Config, Tuning, probe};

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>, cfg: Config) -> Result<WalkProblems> {
    let first = std::sync::atomic::AtomicBool::new(true);
    super::run_pool(ctx, tx, "ring", |walk, tx| {
        if cfg.listers == 0 || !first.swap(false, Ordering::Relaxed) {
            return worker(ctx, walk, tx, cfg);
        }
        // The first ring's thread owns the listers: they return when the walk is over,
        // and at the latest when this ring ends, whatever way it ends.
        std::thread::scope(|s| {
            for i in 0..cfg.listers {
                let spawned = std::thread::Builder::new()
                    .name(format!("musicdex-list-{i}"))
                    .stack_size(256 << 10)
                    .spawn_scoped(s, || walk.list_ahead());
                // Without listers the rings list for themselves: slower cold, no loss.
                if spawned.is_err() {
                    break;
                }
            }
            struct End<'w, 'a>(&'w ParallelWalk<'a>);
            impl Drop for End<'_, '_> {
                fn drop(&mut self) {
                    self.0.end_list_ahead();
                }
            }
            let _end = End(walk);
            worker(ctx, walk, tx, cfg)
        })
    })
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
        hashing: Vec::with_capacity(HASH_BATCH),
        audio_hashing: Vec::with_capacity(HASH_BATCH),
        pool: Pool::default(),
        target: MIN_WINDOW.min(cfg.window),
        since_wait: 0,
        ctx,
        cfg,
        out: Batcher::new(tx, ctx.stop),
        extra: 0,
        stats: Stats::default(),
    };
    // Teardown is RingWorker's Drop: it runs however `run` ends, error or panic, and
    // waits for the kernel before any buffer is freed.
    w.run(walk)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Free,
    /// The ring is stat'ing the file.
    Stat,
    /// A chain of reads is in flight.
    Read,
    /// First reads in, waiting for enough others to hash together.
    Hash,
    /// Parsed, the audio payload held, waiting for others to hash it with.
    AudioHash,
}

/// One file in flight; its index is its direct-descriptor slot.
#[derive(Default)]
struct Slot {
    phase: Phase,
    dir: Option<Arc<Dir>>,
    name: CString,
    /// While the ring stats the file: its path and what the index knew of it.
    listed: Option<(PathBuf, Option<KnownFile>)>,
    /// Once stat'ed and to be read: the pipeline's state of the file.
    job: Option<Job>,
    /// What each READ of the chain in flight fills: an offset and a buffer whose spare
    /// capacity the kernel writes (never zero-filled first: that cost as much as a copy).
    reading: Vec<(u64, Vec<u8>, usize)>,
    /// Results of the chain in flight: OPENAT, FADVISE, the READs, CLOSE.
    results: Vec<i32>,
    waiting: usize,
    statx: Option<Box<libc::statx>>,
    /// Bytes held beyond head and tail, counted in [`RingWorker::extra`].
    extra: u64,
}

impl Slot {
    fn job(&mut self) -> &mut Job {
        self.job.as_mut().expect("a file to read in this slot")
    }
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

struct RingWorker<'a> {
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Slots whose first reads are in, hashed together once there are eight of them or
    /// nothing else is in flight.
    hashing: Vec<usize>,
    /// Slots whose audio payload is held after the parse, hashed together the same way.
    audio_hashing: Vec<usize>,
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
    stats: Stats,
}

/// What one ring did, for [`Config::report`]: how deep it kept the device, and where its
/// thread waited.
#[derive(Default, Debug)]
struct Stats {
    /// Calls that waited for a completion, and those that waited on a device.
    waits: u64,
    device_waits: u64,
    /// Files with requests in the ring, summed at each wait (divided by `waits`: the
    /// depth the ring was kept at), and the most.
    depth_sum: u64,
    depth_max: usize,
    wait_time: std::time::Duration,
    /// Time in the walk: taking batches, and listing folders when none were listed.
    walk_time: std::time::Duration,
    walk_calls: u64,
    /// Time in blocking stats, and the stats that waited on a device.
    stat_time: std::time::Duration,
    stat_waits: u64,
    /// Time submitting without waiting.
    submit_time: std::time::Duration,
}

/// What one ring's files may hold beyond their heads and tails, whatever their number or
/// what they declare: a parse that would need more reads from the file instead
/// (the pipeline's parse from the file). With the window's heads and tails and the pool, this keeps a
/// ring's buffers under ~70 MiB.
const RING_FETCH_CAP: u64 = 32 << 20;

impl RingWorker<'_> {
    /// Slots taken, by files in flight or waiting for their hash.
    fn busy(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Files with requests in the ring.
    fn in_flight(&self) -> usize {
        self.busy() - self.hashing.len() - self.audio_hashing.len()
    }

    /// The thread waited on a device: more files in flight would have kept it busier.
    pub(super) fn grow(&mut self) {
        self.target = (self.target * 2).min(self.cfg.window);
        self.since_wait = 0;
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
                        let t = std::time::Instant::now();
                        let next = walk.next(self.busy() == 0, &mut dirbuf);
                        self.stats.walk_time += t.elapsed();
                        self.stats.walk_calls += 1;
                        match next {
                            Walked::Batch(b) => {
                                current = Some((b, 0));
                                continue;
                            }
                            Walked::Empty => break,
                            Walked::Done => {
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
                if !self.audio_hashing.is_empty() {
                    self.hash_audio_pending()?;
                    continue;
                }
                if walk_done {
                    break;
                }
                continue;
            }
            self.wait_and_reap()?;
        }
        if self.cfg.report {
            let st = &self.stats;
            eprintln!(
                "musicdex: ring {:?}: waits {} (on a device {}), mean depth at a wait {:.1}, \
                 max {}, waiting {:.3} s, in the walk {:.3} s over {} calls, blocking stats \
                 {:.3} s ({} waited on a device), submitting {:.3} s, window {}",
                std::thread::current().name().unwrap_or("?"),
                st.waits,
                st.device_waits,
                st.depth_sum as f64 / st.waits.max(1) as f64,
                st.depth_max,
                st.wait_time.as_secs_f64(),
                st.walk_time.as_secs_f64(),
                st.walk_calls,
                st.stat_time.as_secs_f64(),
                st.stat_waits,
                st.submit_time.as_secs_f64(),
                self.target,
            );
        }
        self.out.flush()
    }

    /// Begin one file: stat it (or queue the stat), and hand it to the pipeline.
    fn start(&mut self, dir: Arc<Dir>, name: CString) -> Result<()> {
        let ctx = self.ctx;
        let io_bound = self.target > MIN_WINDOW;
        if self.cfg.ring_statx.unwrap_or(io_bound) {
            ctx.counters.found.fetch_add(1, Ordering::Relaxed);
            let s = self.free.pop().expect("a free slot");
            let path = dir.path_of(&name);
            let slot = &mut self.slots[s];
            slot.listed = Some((path.clone(), ctx.known.get(&path).copied()));
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
        let t = std::time::Instant::now();
        let triage = file::triage(ctx, &dir, &name);
        let took = t.elapsed();
        self.stats.stat_time += took;
        // Counted, not acted on: growing the window here (so stats go through the
        // ring) measured slower cold on a shared machine (io-wq threads compete for CPU).
        self.stats.stat_waits += u64::from(took > IO_WAIT);
        match triage {
            Triage::Done(c) => self.out.push(c),
            Triage::Read(job) => {
                let s = self.free.pop().expect("a free slot");
                let slot = &mut self.slots[s];
                slot.dir = Some(dir);
                slot.name = name;
                self.read_first(s, job)
            }
        }
    }

    fn read_first(&mut self, s: usize, job: Job) -> Result<()> {
        self.ctx.counters.read.fetch_add(1, Ordering::Relaxed);
        let plan = job.first_reads();
        self.slots[s].job = Some(job);
        self.advance(s, Next::Read(plan))
    }

    /// Do what the pipeline asks next for the file in slot `s`.
    fn advance(&mut self, s: usize, next: Next) -> Result<()> {
        match next {
            Next::Read(plan) => self.read(s, plan),
            Next::Hash => {
                self.slots[s].phase = Phase::Hash;
                self.hashing.push(s);
                if self.hashing.len() == HASH_BATCH {
                    self.hash_pending()?;
                }
                Ok(())
            }
            Next::AudioHash => {
                self.slots[s].phase = Phase::AudioHash;
                self.audio_hashing.push(s);
                if self.audio_hashing.len() == HASH_BATCH {
                    self.hash_audio_pending()?;
                }
                Ok(())
            }
            Next::FromFile => {
                // Blocking this thread, for the rare file whose parse needs more than the
                // ring may hold for it.
                let slot = &mut self.slots[s];
                let dir = slot.dir.as_ref().expect("slot has its directory");
                let file = file::open_for_read(dir, slot.name.as_c_str()).ok();
                let record = slot.job().from_file(file.as_ref());
                self.finish(s, record)
            }
            Next::Reference => {
                let record = self.slots[s].job().reference(None);
                self.finish(s, record)
            }
            Next::Done(record) => self.finish(s, record),
        }
    }

    /// Queue the chain that reads `plan`, if this ring has room for it.
    fn read(&mut self, s: usize, plan: Vec<(u64, usize)>) -> Result<()> {
        let first = self.slots[s].job().first();
        let want: u64 = plan.iter().map(|&(_, n)| n as u64).sum();
        if !first && self.extra + want > RING_FETCH_CAP {
            return self.reads_done(s, Reads::NoRoom);
        }
        let mut reads = Vec::with_capacity(plan.len());
        for (offset, len) in plan {
            match self.pool.take(len) {
                Some(buf) => reads.push((offset, buf, len)),
                None => {
                    for (_, buf, _) in reads {
                        self.pool.put(buf);
                    }
                    return self.reads_done(s, Reads::NoRoom);
                }
            }
        }
        self.slots[s].phase = Phase::Read;
        self.submit_chain(s, reads)
    }

    /// Tell the pipeline how the reads of slot `s` went, and do what it says next.
    fn reads_done(&mut self, s: usize, reads: Reads) -> Result<()> {
        let next = self.slots[s].job().reads_done(reads);
        self.advance(s, next)
    }

    /// A slot's requests are all complete: move its file on.
    fn step(&mut self, s: usize) -> Result<()> {
        let ctx = self.ctx;
        let slot = &mut self.slots[s];
        match slot.phase {
            Phase::Free => unreachable!("completion for a free slot"),
            Phase::Hash | Phase::AudioHash => {
                unreachable!("no requests in flight while waiting for the hash")
            }
            Phase::Stat => {
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
                let (path, known) = slot.listed.take().expect("listed before its stat");
                match pipeline::triage(ctx, path, known, stat) {
                    Triage::Done(c) => {
                        self.release(s);
                        self.out.push(c)
                    }
                    Triage::Read(job) => self.read_first(s, job),
                }
            }
            Phase::Read => {
                let open = slot.results[0];
                let reading = std::mem::take(&mut slot.reading);
                let complete = open >= 0
                    && reading.iter().enumerate().all(|(k, &(_, _, len))| {
                        let res = slot.results[k + READ_OPS_FROM];
                        res >= 0 && res as usize == len
                    });
                if !complete {
                    for (_, buf, _) in reading {
                        self.pool.put(buf);
                    }
                    let reads = if open < 0 {
                        Reads::OpenFailed(io::Error::from_raw_os_error(-open))
                    } else {
                        Reads::Short
                    };
                    return self.reads_done(s, reads);
                }
                let size = slot.job().stat.size;
                let mut segments = Vec::with_capacity(reading.len());
                for (offset, mut data, len) in reading {
                    // SAFETY: the kernel wrote exactly `len` bytes into the spare capacity.
                    unsafe { data.set_len(len) };
                    ctx.counters.add(&ctx.counters.bytes_read, len as u64);
                    let extra = budget::costs_beyond_first(size, offset, offset + len as u64);
                    slot.extra += extra;
                    self.extra += extra;
                    segments.push(Segment { offset, data });
                }
                self.reads_done(s, Reads::Done(segments))
            }
        }
    }

    /// Hash the files waiting for it together, then parse each.
    fn hash_pending(&mut self) -> Result<()> {
        let queued = std::mem::take(&mut self.hashing);
        pipeline::hash_together(
            self.slots
                .iter_mut()
                .filter(|slot| slot.phase == Phase::Hash)
                .map(Slot::job),
        );
        for &s in &queued {
            let next = self.slots[s].job().parse();
            self.advance(s, next)?;
        }
        self.hashing = queued;
        self.hashing.clear();
        Ok(())
    }

    /// Hash the audio payloads waiting for it together, then record each file.
    fn hash_audio_pending(&mut self) -> Result<()> {
        let queued = std::mem::take(&mut self.audio_hashing);
        pipeline::hash_audio_together(
            self.slots
                .iter_mut()
                .filter(|slot| slot.phase == Phase::AudioHash)
                .map(Slot::job),
        );
        for &s in &queued {
            let next = self.slots[s].job().audio_hashed();
            self.advance(s, next)?;
        }
        self.audio_hashing = queued;
        self.audio_hashing.clear();
        Ok(())
    }

    fn finish(&mut self, s: usize, record: Box<FileRecord>) -> Result<()> {
        let counters = self.ctx.counters;
        let change = self.slots[s].job().change(record, counters);
        self.release(s);
        self.out.push(change)
    }

    fn release(&mut self, s: usize) {
        let slot = &mut self.slots[s];
        slot.phase = Phase::Free;
        slot.dir = None;
        slot.listed = None;
        slot.reading.clear();
        self.extra -= std::mem::take(&mut slot.extra);
        if let Some(mut job) = slot.job.take() {
            for buf in job.take_buffers() {
                self.pool.put(buf);
            }
        }
        self.free.push(s);
    }
}
