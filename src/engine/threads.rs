//! The `threads` backend of the pipeline: the parallel walk, and per thread blocking
//! statx, pread of what the pipeline asks for, MD5 and the tag parse. The fallback where
//! io_uring is refused.

use std::ffi::CStr;
use std::fs::File;
use std::sync::atomic::Ordering;

use anyhow::Result;
use crossbeam_channel::Sender;

use super::file::{open_for_read, read_ranges, triage};
use super::pipeline::{self, HASH_BATCH, Job, Next, Reads, Triage};
use super::{Batcher, Counters, EngineContext};
use crate::media::FileRecord;
use crate::scan::WalkProblems;
use crate::scan::parallel::{Dir, DirBuf, Next as Walked, ParallelWalk};
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
    let mut out = Batcher::new(tx, ctx.stop);
    let mut buf = DirBuf::default();
    let mut hashing: Vec<Opened> = Vec::with_capacity(HASH_BATCH);
    loop {
        // Never sit on read files while waiting for other threads to list directories.
        let next = match walk.next(false, &mut buf) {
            Walked::Empty => {
                finish_batch(&mut hashing, ctx.counters, &mut out)?;
                walk.next(true, &mut buf)
            }
            n => n,
        };
        let Walked::Batch(batch) = next else { break };
        for name in &batch.names {
            match triage(ctx, &batch.dir, name) {
                Triage::Done(c) => out.push(c)?,
                Triage::Read(job) => match first_reads(ctx, &batch.dir, name, job) {
                    Ok(opened) => {
                        hashing.push(opened);
                        if hashing.len() == HASH_BATCH {
                            finish_batch(&mut hashing, ctx.counters, &mut out)?;
                        }
                    }
                    Err(change) => out.push(change)?,
                },
            }
        }
    }
    finish_batch(&mut hashing, ctx.counters, &mut out)?;
    out.flush()
}

/// A job whose first reads are in, with its file still open for what the parse needs.
pub(super) struct Opened {
    job: Job,
    file: Option<File>,
}

/// Open a file and make its first reads. A file that cannot be opened, or changed since
/// its stat, comes back as its finished change.
pub(super) fn first_reads(
    ctx: &EngineContext,
    dir: &Dir,
    name: &CStr,
    mut job: Job,
) -> Result<Opened, Change> {
    ctx.counters.read.fetch_add(1, Ordering::Relaxed);
    let (file, next) = match open_for_read(dir, name) {
        Ok(file) => {
            let plan = job.first_reads();
            (Some(file), Next::Read(plan))
        }
        Err(e) => (None, job.reads_done(Reads::OpenFailed(e))),
    };
    let mut opened = Opened { job, file };
    match drive(&mut opened, next, ctx.counters) {
        None => Ok(opened),
        Some(record) => Err(opened.job.change(record, ctx.counters)),
    }
}

/// Carry a job as far as blocking syscalls take it: to its hash (`None`), or to its record.
fn drive(o: &mut Opened, mut next: Next, counters: &Counters) -> Option<Box<FileRecord>> {
    loop {
        next = match next {
            Next::Read(plan) => {
                let file = o.file.as_ref().expect("reads only after the open");
                o.job.reads_done(read_ranges(file, &plan, counters))
            }
            Next::Hash => return None,
            Next::FromFile => return Some(o.job.from_file(o.file.as_ref())),
            Next::Reference => return Some(o.job.reference(o.file.take())),
            Next::Done(record) => return Some(record),
        }
    }
}

/// Hash the files read together, then parse each to its record.
pub(super) fn finish_batch(
    batch: &mut Vec<Opened>,
    counters: &Counters,
    out: &mut Batcher,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    pipeline::hash_together(batch.iter_mut().map(|o| &mut o.job));
    for mut o in batch.drain(..) {
        let next = o.job.parse();
        let record = drive(&mut o, next, counters).expect("hashed once");
        out.push(o.job.change(record, counters))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TestRun;
    use crate::media::reference::read_reference;
    use crate::scan::WalkOptions;
    use rustix::fs::{Mode, OFlags};

    #[test]
    fn a_file_changed_after_its_stat_is_recorded_as_the_reference_records_it() {
        let tmp = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/library/Daft Punk/Discovery/02 Aerodynamic.flac");
        let bytes = std::fs::read(src).unwrap();
        let mut big = bytes.clone();
        while big.len() < 300_000 {
            big.extend_from_slice(&bytes);
        }
        let dir = Dir {
            fd: rustix::fs::open(
                tmp.path(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap(),
            path: tmp.path().to_path_buf(),
        };
        let test = TestRun::new(tmp.path().to_path_buf(), WalkOptions::default());
        let (ctx, counters) = (test.ctx(), &test.counters);
        for (name, data, cut) in [
            ("small.flac", &bytes, bytes.len() / 2),
            ("big.flac", &big, 100_000),
            ("big2.flac", &big, 10),
            ("gone.flac", &big, usize::MAX),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, data).unwrap();
            let cname = std::ffi::CString::new(name).unwrap();
            let Triage::Read(job) = triage(&ctx, &dir, &cname) else {
                panic!("{name}: a new file is read");
            };
            let stat = job.stat;
            if cut == usize::MAX {
                std::fs::remove_file(&path).unwrap();
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(cut as u64)
                    .unwrap();
            }
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut out = Batcher::new(tx, ctx.stop);
            match first_reads(&ctx, &dir, &cname, job) {
                Ok(opened) => finish_batch(&mut vec![opened], counters, &mut out).unwrap(),
                Err(change) => out.push(change).unwrap(),
            }
            out.flush().unwrap();
            let changes: Vec<Change> = rx.try_iter().flatten().collect();
            let [Change::Record { record, .. }] = &changes[..] else {
                panic!("{name}: one record: {changes:?}");
            };
            assert_eq!(
                **record,
                read_reference(path, stat, Default::default()),
                "{name}"
            );
            assert!(record.error.is_some(), "{name}: {record:?}");
        }
    }
}
