//! The thread-pool engine: the parallel walk, and per thread blocking statx, pread of
//! head and tail, MD5 and a tag parse from memory. The fallback where io_uring is refused.

use anyhow::Result;
use crossbeam_channel::Sender;

use super::file::{FirstRead, Triage, finish_batch, read_first, triage};
use super::{Batcher, EngineContext};
use crate::media::md5x8;
use crate::scan::WalkProblems;
use crate::scan::parallel::{DirBuf, Next, ParallelWalk};
use crate::store::KnownFile;
use crate::store::writer::Change;

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>) -> Result<WalkProblems> {
    super::run_pool(ctx, tx, "read", |walk, tx| worker(ctx, walk, tx))
}

/// One blocking reader; also what a uring thread falls back to when its ring is refused.
/// Files are read a few at a time and hashed together (eight lanes of one MD5 kernel),
/// then parsed.
pub(super) fn worker(
    ctx: &EngineContext,
    walk: &ParallelWalk,
    tx: Sender<Vec<Change>>,
) -> Result<()> {
    let mut out = Batcher::new(tx, ctx.stop);
    let mut buf = DirBuf::default();
    let mut pending = Pending::default();
    loop {
        // Never sit on read files while waiting for other threads to list directories.
        let next = match walk.next(false, &mut buf) {
            Next::Empty => {
                pending.flush(ctx, &mut out)?;
                walk.next(true, &mut buf)
            }
            n => n,
        };
        let Next::Batch(batch) = next else { break };
        for name in &batch.names {
            match triage(ctx, &batch.dir, name) {
                Triage::Done(c) => out.push(c)?,
                Triage::Read { path, stat, known } => {
                    match read_first(&batch.dir, name, path, stat, ctx.counters) {
                        Ok(first) => {
                            pending.0.push((first, known));
                            if pending.0.len() == md5x8::LANES {
                                pending.flush(ctx, &mut out)?;
                            }
                        }
                        Err(record) => out.push(Change::Record { record, known })?,
                    }
                }
            }
        }
    }
    pending.flush(ctx, &mut out)?;
    out.flush()
}

/// Files read and waiting to be hashed together, with what the index knew of each.
#[derive(Default)]
struct Pending(Vec<(FirstRead, Option<KnownFile>)>);

impl Pending {
    fn flush(&mut self, ctx: &EngineContext, out: &mut Batcher) -> Result<()> {
        for (record, known) in finish_batch(std::mem::take(&mut self.0), ctx.counters) {
            out.push(Change::Record {
                record: Box::new(record),
                known,
            })?;
        }
        Ok(())
    }
}
