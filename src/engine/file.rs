//! One file after the walk found it: what the `threads` and `uring` engines share, so they
//! stat, decide, hash and parse exactly alike and differ only in how bytes arrive.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

use super::{Counters, EngineContext, decide};
use crate::media::FileRecord;
use crate::media::hash::{self, CHUNK};
use crate::media::record::{Stat, parse_file, read_reference_file};
use crate::media::sparse::{self, Attempt, Segment};
use crate::scan::parallel::Dir;
use crate::store::KnownFile;
use crate::store::writer::Change;

/// Stat relative to the open directory: no path walk, the cheapest stat there is.
/// Follows a symlink only when the walk does, as the reference engine's stat does.
pub fn stat_at(dir: &Dir, name: &CStr, follow: bool) -> io::Result<Stat> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    let st = rustix::fs::statx(&dir.fd, name, flags, StatxFlags::SIZE | StatxFlags::MTIME)?;
    Ok(Stat {
        size: st.stx_size,
        mtime_ns: st.stx_mtime.tv_sec * 1_000_000_000 + i64::from(st.stx_mtime.tv_nsec),
    })
}

/// What to do with a file once stat'ed: either a finished change, or read it.
pub enum Triage {
    Done(Change),
    Read {
        path: PathBuf,
        stat: Stat,
        known: Option<KnownFile>,
    },
}

/// Stat and decide, with the reference engine's error row for a file that vanished.
pub fn triage(ctx: &EngineContext, dir: &Dir, name: &CStr) -> Triage {
    ctx.counters.found.fetch_add(1, Ordering::Relaxed);
    let path = dir.path_of(name);
    let known = ctx.known.get(&path).copied();
    let stat = stat_at(dir, name, ctx.walk.follow_symlinks);
    triage_stat(ctx, path, known, stat)
}

/// The decision once the stat is in, however it was made.
pub fn triage_stat(
    ctx: &EngineContext,
    path: PathBuf,
    known: Option<KnownFile>,
    stat: io::Result<Stat>,
) -> Triage {
    match stat {
        Err(e) => Triage::Done(Change::Record {
            record: Box::new(FileRecord::failed(
                path,
                Stat {
                    size: 0,
                    mtime_ns: 0,
                },
                format!("stat: {e}"),
            )),
            known,
        }),
        Ok(stat) => match decide(known.as_ref(), stat, ctx.full) {
            Some(k) => Triage::Done(Change::Unchanged { known: k }),
            None => Triage::Read { path, stat, known },
        },
    }
}

/// The first reads of a file: the head, and the tail when the hash covers one. A file
/// under two chunks is read whole in one go, so its tags never need a second read.
pub fn first_reads(size: u64) -> impl Iterator<Item = (u64, usize)> {
    let head = if size < 2 * CHUNK { size } else { CHUNK };
    std::iter::once((0, head as usize)).chain(hash::tail_offset(size).map(|o| (o, CHUNK as usize)))
}

/// The bytes the content hash covers, from the segments of [`first_reads`] (in that order).
pub fn hashed(size: u64, first: &[Segment]) -> (&[u8], Option<&[u8]>) {
    let head = &first[0].data[..hash::head_len(size)];
    let tail = hash::tail_offset(size).map(|_| first[1].data.as_slice());
    (head, tail)
}

/// A file whose first reads are in: waiting for its hash, then its parse.
pub struct FirstRead {
    file: File,
    path: PathBuf,
    stat: Stat,
    segments: Vec<Segment>,
}

impl FirstRead {
    /// Parse the tags, fetching what the parse asks for, and build the record.
    pub fn finish(self, content: String, counters: &Counters) -> FileRecord {
        let FirstRead {
            file,
            path,
            stat,
            mut segments,
        } = self;
        for round in 0.. {
            match sparse::attempt(stat.size, &segments, &path, round) {
                Attempt::Parsed(parsed) => {
                    return FileRecord::assemble(path, stat, Ok(content), parsed);
                }
                Attempt::Fetch(plan) => {
                    for (offset, len) in plan {
                        let Some(mut data) = zeroed(len) else {
                            // No memory for it now: the same parse, from the file.
                            return parse_from_file(&file, path, stat, &segments, content);
                        };
                        if file.read_exact_at(&mut data, offset).is_err() {
                            return read_reference_file(file, path, stat);
                        }
                        counters.add(&counters.bytes_read, len as u64);
                        sparse::add_segment(&mut segments, Segment { offset, data });
                    }
                }
                Attempt::Stream => break,
            }
        }
        parse_from_file(&file, path, stat, &segments, content)
    }
}

/// The parse of a hashed file that reads what it lacks from the file itself: for a file
/// whose parse needs more than a backend holds for it. Same bytes, same budget, so the
/// same row as a parse from memory.
pub fn parse_from_file(
    file: &File,
    path: PathBuf,
    stat: Stat,
    held: &[Segment],
    content: String,
) -> FileRecord {
    let parsed = parse_file(file, stat.size, held, &path);
    FileRecord::assemble(path, stat, Ok(content), parsed)
}

/// Open a file the walk found, relative to its directory, to read its bytes. No
/// readahead: past the head it reads (or zero-fills, in sparse files) megabytes nothing
/// uses.
pub fn open_for_read(dir: &Dir, name: &CStr) -> io::Result<File> {
    let fd = rustix::fs::openat(
        &dir.fd,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Advice only; a failure changes nothing.
    let _ = rustix::fs::fadvise(&fd, 0, None, rustix::fs::Advice::Random);
    Ok(File::from(fd))
}

/// The row of a file that could not be opened: one text, whichever backend tried.
pub fn open_failed(path: PathBuf, stat: Stat, e: io::Error) -> FileRecord {
    FileRecord::failed(path, stat, format!("open: {e}"))
}

/// The content hashes of files given as (size, first-read segments), eight at a time in
/// the lanes of one MD5 kernel: how both backends hash.
pub fn batch_hashes<'a>(files: impl IntoIterator<Item = (u64, &'a [Segment])>) -> Vec<String> {
    let inputs: Vec<_> = files
        .into_iter()
        .map(|(size, first)| hashed(size, first))
        .collect();
    hash::content_hashes(&inputs)
}

/// A buffer of `len` zeros, or `None` when the allocator refuses: one file's bytes never
/// end the run.
pub fn zeroed(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

/// Open a file and read what it is hashed from, with blocking syscalls. A file that
/// cannot be opened, or changed since its stat, comes back as its finished record.
pub fn read_first(
    dir: &Dir,
    name: &CStr,
    path: PathBuf,
    stat: Stat,
    counters: &Counters,
) -> Result<FirstRead, Box<FileRecord>> {
    let file = match open_for_read(dir, name) {
        Ok(file) => file,
        Err(e) => return Err(Box::new(open_failed(path, stat, e))),
    };
    counters.read.fetch_add(1, Ordering::Relaxed);
    let mut segments = Vec::with_capacity(2);
    for (offset, len) in first_reads(stat.size) {
        // At most two chunks: if even that cannot be had, the reference path says so.
        let Some(mut data) = zeroed(len) else {
            return Err(Box::new(read_reference_file(file, path, stat)));
        };
        if file.read_exact_at(&mut data, offset).is_err() {
            // Changed since the stat: the reference path records it exactly as the
            // reference engine would.
            return Err(Box::new(read_reference_file(file, path, stat)));
        }
        counters.add(&counters.bytes_read, len as u64);
        segments.push(Segment { offset, data });
    }
    Ok(FirstRead {
        file,
        path,
        stat,
        segments,
    })
}

/// Hash a batch of files together, then parse each; each record comes out with what it
/// was queued with.
pub fn finish_batch<K>(files: Vec<(FirstRead, K)>, counters: &Counters) -> Vec<(FileRecord, K)> {
    let hashes = batch_hashes(
        files
            .iter()
            .map(|(f, _)| (f.stat.size, f.segments.as_slice())),
    );
    files
        .into_iter()
        .zip(hashes)
        .map(|((f, k), h)| (f.finish(h, counters), k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::record::read_reference;
    use std::sync::Arc;

    fn open_dir(path: &std::path::Path) -> Dir {
        Dir {
            fd: rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            path: path.to_path_buf(),
        }
    }

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
        let dir = Arc::new(open_dir(tmp.path()));
        let counters = Counters::default();
        for (name, data, cut) in [
            ("small.flac", &bytes, bytes.len() / 2),
            ("big.flac", &big, 100_000),
            ("big2.flac", &big, 10),
            ("gone.flac", &big, usize::MAX),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, data).unwrap();
            let cname = std::ffi::CString::new(name).unwrap();
            let stat = stat_at(&dir, &cname, false).unwrap();
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
            let fast = match read_first(&dir, &cname, path.clone(), stat, &counters) {
                Ok(first) => finish_batch(vec![(first, ())], &counters).remove(0).0,
                Err(record) => *record,
            };
            let reference = read_reference(path, stat);
            assert_eq!(fast, reference, "{name}");
            assert!(fast.error.is_some(), "{name}: {fast:?}");
        }
    }
}
