//! Engines turn the roots of a run into [`Change`]s for the writer. The sequential engine
//! is the reference; every other engine must produce the same rows.

pub mod file;
pub mod pipeline;
pub mod roofline;
pub mod sequential;
pub mod stop;
pub mod threads;
pub mod uring;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use crossbeam_channel::Sender;
use serde::Serialize;

use crate::media::budget::Limits;
use crate::scan::{self, WalkOptions, WalkProblems};
use crate::store::Known;
use crate::store::writer::Change;

pub use stop::{Interrupted, StopFlag};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One thread, std::fs, lofty reading from the path: the reference.
    Sequential,
    /// A pool of threads doing blocking syscalls: the fallback where io_uring is refused.
    Threads,
    /// One io_uring per core; falls back to `threads` where io_uring is refused.
    Uring,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Sequential => "sequential",
            EngineKind::Threads => "threads",
            EngineKind::Uring => "uring",
        }
    }
}

/// Changes are sent in batches of this many, so the channel is not the bottleneck.
pub const SEND_BATCH: usize = 256;
/// Batches in flight between the engines and the writer: bounds memory whatever the size
/// of the library.
pub const CHANNEL_BATCHES: usize = 64;

/// Counters every engine keeps; the progress display and `--metrics` read them.
#[derive(Debug, Default)]
pub struct Counters {
    pub found: AtomicU64,
    pub read: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Bytes the audio hash read beyond the first reads (the threads and uring engines).
    pub audio_bytes: AtomicU64,
    pub ring_ops: AtomicU64,
    /// Files listed and whether the walk is over, for the progress line's ETA.
    pub walk: crate::scan::WalkTally,
}

impl Counters {
    pub fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct EngineContext<'a> {
    pub roots: &'a [PathBuf],
    pub walk: &'a WalkOptions,
    pub known: &'a Known,
    /// Read every file, even when size and mtime match.
    pub full: bool,
    pub threads: usize,
    pub counters: &'a Counters,
    /// Checked before every change is sent; set by whoever owns the process's signals.
    pub stop: &'a StopFlag,
    /// Ring tuning overrides (the uring engine only).
    pub uring: uring::Tuning,
    /// What one file's tag parse may cost.
    pub limits: Limits,
}

/// What an engine context borrows, owned: one thread, every file read, for unit tests.
#[cfg(test)]
pub(crate) struct TestRun {
    pub roots: Vec<PathBuf>,
    pub walk: WalkOptions,
    pub known: Known,
    pub counters: Counters,
}

#[cfg(test)]
impl TestRun {
    pub fn new(root: PathBuf, walk: WalkOptions) -> TestRun {
        TestRun {
            roots: vec![root],
            walk,
            known: Known::default(),
            counters: Counters::default(),
        }
    }

    pub fn ctx(&self) -> EngineContext<'_> {
        EngineContext {
            roots: &self.roots,
            walk: &self.walk,
            known: &self.known,
            full: true,
            threads: 1,
            counters: &self.counters,
            stop: StopFlag::never(),
            uring: Default::default(),
            limits: Default::default(),
        }
    }
}

/// Buffers changes and sends them in batches.
pub struct Batcher<'a> {
    tx: Sender<Vec<Change>>,
    buf: Vec<Change>,
    stop: &'a StopFlag,
}

impl<'a> Batcher<'a> {
    pub fn new(tx: Sender<Vec<Change>>, stop: &'a StopFlag) -> Batcher<'a> {
        Batcher {
            tx,
            buf: Vec::with_capacity(SEND_BATCH),
            stop,
        }
    }

    pub fn push(&mut self, c: Change) -> Result<()> {
        if let Some(signal) = self.stop.requested() {
            self.flush()?;
            return Err(Interrupted { signal }.into());
        }
        self.buf.push(c);
        if self.buf.len() >= SEND_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(SEND_BATCH));
            self.tx
                .send(batch)
                .map_err(|_| anyhow::anyhow!("the database writer stopped"))?;
        }
        Ok(())
    }
}

/// Run `kind` over the context's roots. Returns what the walk could not read and the
/// engine that actually ran: `uring` falls back to `threads`, with a one-line notice,
/// where io_uring is refused (seccomp, `kernel.io_uring_disabled`, RLIMIT_MEMLOCK, an old
/// kernel).
pub fn run(
    kind: EngineKind,
    ctx: &EngineContext,
    tx: Sender<Vec<Change>>,
) -> Result<(WalkProblems, EngineKind)> {
    match kind {
        EngineKind::Sequential => Ok((sequential::run(ctx, tx)?, kind)),
        EngineKind::Threads => Ok((threads::run(ctx, tx)?, kind)),
        EngineKind::Uring => {
            let cfg = uring::Config::for_threads(ctx.threads, &ctx.uring);
            match uring::probe(&cfg) {
                Ok(()) => Ok((uring::run(ctx, tx, cfg)?, kind)),
                Err(e) => {
                    eprintln!("musicdex: io_uring unavailable ({e}); using the threads engine");
                    Ok((threads::run(ctx, tx)?, EngineKind::Threads))
                }
            }
        }
    }
}

/// Run `worker` on `ctx.threads` named threads over one parallel walk. The first worker
/// to fail stops the walk, so the others finish their files and return.
pub(crate) fn run_pool<F>(
    ctx: &EngineContext,
    tx: Sender<Vec<Change>>,
    name: &str,
    worker: F,
) -> Result<WalkProblems>
where
    F: Fn(&scan::parallel::ParallelWalk, Sender<Vec<Change>>) -> Result<()> + Sync,
{
    let walk =
        scan::parallel::ParallelWalk::new(ctx.roots, ctx.walk).with_tally(&ctx.counters.walk);
    let mut spawn_error = None;
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let mut workers = Vec::with_capacity(ctx.threads.max(1));
        for i in 0..ctx.threads.max(1) {
            let tx = tx.clone();
            let (walk, worker) = (&walk, &worker);
            let spawned = std::thread::Builder::new()
                .name(format!("musicdex-{name}-{i}"))
                .spawn_scoped(s, move || {
                    let r = worker(walk, tx);
                    if r.is_err() {
                        walk.stop();
                    }
                    r
                });
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    // Out of threads or memory: the ones running stop at their next file.
                    spawn_error = Some(anyhow::anyhow!(
                        "cannot start engine thread {} of {}: {e}",
                        i + 1,
                        ctx.threads
                    ));
                    walk.stop();
                    break;
                }
            }
        }
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an engine thread panicked")))
            })
            .collect()
    });
    drop(tx);
    if let Some(e) = spawn_error {
        return Err(e);
    }
    for r in results {
        r?;
    }
    Ok(walk.into_problems())
}
