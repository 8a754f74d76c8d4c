//! Blocking syscalls on one file the parallel walk found: the stat both backends make
//! (uring too, by default: warm, a plain statx is cheaper than the ring's), the open, and
//! the reads of the `threads` backend.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

use super::pipeline::{self, Reads, Triage};
use super::{Counters, EngineContext};
use crate::media::record::Stat;
use crate::media::sparse::Segment;
use crate::scan::parallel::Dir;

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

/// Stat with a blocking syscall, then the pipeline's decision.
pub fn triage(ctx: &EngineContext, dir: &Dir, name: &CStr) -> Triage {
    ctx.counters.found.fetch_add(1, Ordering::Relaxed);
    let path = dir.path_of(name);
    let known = ctx.known.get(&path).copied();
    let stat = stat_at(dir, name, ctx.walk.follow_symlinks);
    pipeline::triage(ctx, path, known, stat)
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

/// Read `(offset, len)` ranges of an open file with blocking syscalls, as the pipeline
/// asked for them.
pub fn read_ranges(file: &File, plan: &[(u64, usize)], counters: &Counters) -> Reads {
    let mut segments = Vec::with_capacity(plan.len());
    for &(offset, len) in plan {
        let Some(mut data) = zeroed(len) else {
            return Reads::NoRoom;
        };
        if file.read_exact_at(&mut data, offset).is_err() {
            return Reads::Short;
        }
        counters.add(&counters.bytes_read, len as u64);
        segments.push(Segment { offset, data });
    }
    Reads::Done(segments)
}

/// A buffer of `len` zeros, or `None` when the allocator refuses: one file's bytes never
/// end the run.
pub fn zeroed(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}
