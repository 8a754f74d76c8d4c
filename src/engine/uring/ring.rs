//! Setting up one ring: the tuning, the ring itself with its direct-descriptor table,
//! and the probe that decides whether the engine can use io_uring at all.

use std::io;

use io_uring::{IoUring, Probe, opcode};

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
    /// Threads listing folders ahead of the rings ([`ParallelWalk::list_ahead`]).
    ///
    /// [`ParallelWalk::list_ahead`]: crate::scan::parallel::ParallelWalk::list_ahead
    pub listers: usize,
    /// Print each ring's counts at its end (in-flight depth, waits, time listing).
    pub report: bool,
    /// Faults to inject, for the tests of teardown.
    #[cfg(test)]
    pub fault: super::fault::Fault,
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
    /// See [`Config::listers`].
    pub listers: Option<usize>,
    /// See [`Config::report`].
    pub report: bool,
}

/// Threads listing folders ahead of the rings, by default.
const LISTERS: usize = 4;

impl Config {
    pub fn for_threads(threads: usize, tuning: &Tuning) -> Config {
        // The most files in flight per ring; warm, a ring keeps MIN_WINDOW and grows only
        // while it waits on the device. 512 over all rings: with folders listed ahead,
        // two rings of 64 waited on the disk with their windows full (100k tiny files,
        // cold: 2.7 s of waiting per ring, mean depth 62.5 of 64; 256 each: 0.5 s). Per
        // ring at most 256: the slots' heads and tails are what the window costs in memory.
        let window = tuning
            .window
            .unwrap_or_else(|| (512 / threads.max(1)).clamp(16, 256))
            .clamp(1, 1024);
        // 64 bounded io-wq workers per ring: cold, 10k files took 10.5 s with the default
        // limit and 7.5 s with 64 (the punted STATX and OPENAT calls run there).
        let iowq_workers = tuning.iowq_workers.unwrap_or(64);
        Config {
            window,
            iowq_workers,
            ring_statx: tuning.ring_statx,
            coop_taskrun: tuning.coop_taskrun,
            listers: tuning.listers.unwrap_or(LISTERS).min(64),
            report: tuning.report,
            #[cfg(test)]
            fault: super::fault::Fault::default(),
        }
    }

    pub(super) fn ring_entries(&self) -> u32 {
        ((self.window * 4) as u32).next_power_of_two().max(64)
    }
}

pub(super) fn build_ring(cfg: &Config) -> io::Result<IoUring> {
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
