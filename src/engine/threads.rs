//! The thread-pool engine: the parallel walk, and per thread blocking statx, pread of
//! head and tail, MD5 and a tag parse from memory. The fallback where io_uring is refused.

use anyhow::Result;
use crossbeam_channel::Sender;

use super::file::{Triage, read_blocking, triage};
use super::{Batcher, EngineContext};
use crate::scan::WalkProblems;
use crate::scan::parallel::{DirBuf, Next, ParallelWalk};
use crate::store::writer::Change;

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>) -> Result<WalkProblems> {
    super::run_pool(ctx, tx, "read", |walk, tx| worker(ctx, walk, tx))
}

/// One blocking reader; also what a uring thread falls back to when its ring is refused.
pub(super) fn worker(
    ctx: &EngineContext,
    walk: &ParallelWalk,
    tx: Sender<Vec<Change>>,
) -> Result<()> {
    let mut out = Batcher::new(tx);
    let mut buf = DirBuf::default();
    while let Next::Batch(batch) = walk.next(true, &mut buf) {
        for name in &batch.names {
            let change = match triage(ctx, &batch.dir, name) {
                Triage::Done(c) => c,
                Triage::Read { path, stat, known } => Change::Record {
                    record: Box::new(read_blocking(&batch.dir, name, path, stat, ctx.counters)),
                    known,
                },
            };
            out.push(change)?;
        }
    }
    out.flush()
}
