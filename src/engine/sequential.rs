//! The reference engine: one thread, std::fs, lofty reading from the path.

use std::fs;
use std::sync::atomic::Ordering;

use anyhow::Result;
use crossbeam_channel::Sender;

use super::pipeline::{Triage, triage};
use super::{Batcher, EngineContext};

use crate::media::record::Stat;
use crate::media::reference::read_reference;
use crate::scan::{WalkProblems, walk_sequential};
use crate::store::writer::Change;

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>) -> Result<WalkProblems> {
    let mut out = Batcher::new(tx, ctx.stop);
    let mut failure = None;
    let problems = walk_sequential(ctx.roots, ctx.walk, |path| {
        ctx.counters.found.fetch_add(1, Ordering::Relaxed);
        let meta = if ctx.walk.follow_symlinks {
            fs::metadata(&path)
        } else {
            fs::symlink_metadata(&path)
        };
        let known = ctx.known.get(&path).copied();
        // Listed a moment ago and gone now: an error row, not a crash (triage).
        let change = match triage(ctx, path, known, meta.map(|m| Stat::from_metadata(&m))) {
            Triage::Done(change) => change,
            Triage::Read(job) => {
                let (stat, known) = (job.stat, job.known);
                let record = read_reference(job.path, stat, ctx.limits);
                ctx.counters.read.fetch_add(1, Ordering::Relaxed);
                let hashed = crate::media::hash::head_len(stat.size) as u64
                    + crate::media::hash::tail_offset(stat.size)
                        .map_or(0, |_| crate::media::hash::CHUNK);
                ctx.counters.bytes_read.fetch_add(hashed, Ordering::Relaxed);
                Change::Record {
                    record: Box::new(record),
                    known,
                }
            }
        };
        if let Err(e) = out.push(change) {
            failure = Some(e);
            return false;
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    out.flush()?;
    Ok(problems)
}
