//! Bounded work per file. Every engine hands lofty the same reader, [`Budgeted`], over
//! some [`Source`] of the file's bytes (the file itself, or the parts of it already in
//! memory), so a parse stops at the same byte on every engine and the row reads the same.
//!
//! Two limits, both counted, never timed (a clock would make rows differ between engines
//! and between runs):
//! - bytes: beyond the head and tail every engine reads anyway, a parse may read at most
//!   [`Limits::max_tag_bytes`] (16 MiB unless `--max-tag-bytes` says otherwise);
//! - reads: a parse may make at most [`MAX_READS`] read calls, whatever their size. This
//!   is what cuts off lofty's loops over zeros (a FLAC of empty metadata blocks costs one
//!   4-byte header read per block), which the byte limit alone would allow for seconds.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use super::reference::short_read;
use super::sparse::Segment;

/// Bytes beyond head and tail one parse may read unless `--max-tag-bytes` says otherwise.
pub const DEFAULT_MAX_TAG_BYTES: u64 = 16 << 20;
/// Read calls one parse may make. Measured with the sequential engine: at most 141 per
/// file on a generated music library, 22,593 for the largest WMA of the shared corpus and
/// 339,390 for its Musepack SV5 file (lofty reads it in small pieces): a threefold margin.
/// 1M small reads take about 0.1 s in a release build.
pub const MAX_READS: u64 = 1 << 20;

/// What one parse may cost, given by the caller (`--max-tag-bytes`) and passed down from
/// the run's options to every engine, so two runs in one process can differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes beyond head and tail one parse may read.
    pub max_tag_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_tag_bytes: DEFAULT_MAX_TAG_BYTES,
        }
    }
}

/// `16 MiB`, `1536 KiB` or `1000 bytes`: the budget as the row's error states it.
pub fn human(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Which limit a parse hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Bytes(u64),
    Reads(u64),
}

impl Exceeded {
    /// The text recorded in the row's `error` column.
    pub fn message(self) -> String {
        match self {
            Exceeded::Bytes(n) => {
                format!("tags: needs more than {} beyond head and tail", human(n))
            }
            Exceeded::Reads(n) => {
                format!(
                    "tags: gave up after {n} reads (junk or zeros where the format expects data)"
                )
            }
        }
    }
}

/// Where a [`Budgeted`] reader gets bytes: fill `buf` exactly from `offset`, or fail.
pub trait Source {
    fn fill(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Bytes already in memory (tests, and files read whole).
impl Source for &[u8] {
    fn fill(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match self.get(start..).and_then(|s| s.get(..buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// The reader lofty gets. It keeps the position itself (a seek is never a syscall),
/// answers every read in full up to the stated length (so the calls lofty makes do not
/// depend on how the source holds the bytes) and counts what the parse costs.
pub struct Budgeted<S> {
    source: S,
    len: u64,
    pos: u64,
    /// Ranges `[start, end)` that cost nothing: the head and tail already read.
    free: [(u64, u64); 2],
    max_bytes: u64,
    used: u64,
    reads: u64,
    exceeded: Cell<Option<Exceeded>>,
}

impl<S: Source> Budgeted<S> {
    /// A reader over a file of `len` bytes whose head and tail (as [`first_ranges`]
    /// gives them) are free.
    pub fn new(source: S, len: u64, limits: Limits) -> Budgeted<S> {
        Budgeted {
            source,
            len,
            pos: 0,
            free: first_ranges(len),
            max_bytes: limits.max_tag_bytes,
            used: 0,
            reads: 0,
            exceeded: Cell::new(None),
        }
    }

    /// Start a new parse: rewind and reset the counts (not a limit already hit).
    pub fn restart(&mut self) {
        self.pos = 0;
        self.used = 0;
        self.reads = 0;
    }

    /// The limit the parse hit, if it hit one. Whatever lofty made of the failed read
    /// (some paths swallow it), the row must say this instead.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded.get()
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    fn trip(&self, e: Exceeded) -> io::Error {
        self.exceeded.set(Some(e));
        io::Error::other(e.message())
    }

    fn costs(&self, start: u64, end: u64) -> u64 {
        outside(&self.free, start, end)
    }
}

/// Bytes of `[start, end)` in a file of `len` bytes beyond its head and tail.
pub fn costs_beyond_first(len: u64, start: u64, end: u64) -> u64 {
    outside(&first_ranges(len), start, end)
}

fn outside(free: &[(u64, u64); 2], start: u64, end: u64) -> u64 {
    let overlap: u64 = free
        .iter()
        .map(|&(s, e)| end.min(e).saturating_sub(start.max(s)))
        .sum();
    end.saturating_sub(start).saturating_sub(overlap)
}

/// The head and tail every engine reads before parsing (the ranges the content hash
/// covers, and a file under two chunks whole).
pub fn first_ranges(len: u64) -> [(u64, u64); 2] {
    let chunk = super::hash::CHUNK;
    if len < 2 * chunk {
        [(0, len), (len, len)]
    } else {
        [(0, chunk), (len - chunk, len)]
    }
}

impl<S: Source> Read for Budgeted<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.exceeded.get() {
            return Err(io::Error::other(e.message()));
        }
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        self.reads += 1;
        if self.reads > MAX_READS {
            return Err(self.trip(Exceeded::Reads(MAX_READS)));
        }
        let n = (buf.len() as u64).min(self.len - self.pos);
        let cost = self.costs(self.pos, self.pos + n);
        if self.used + cost > self.max_bytes {
            return Err(self.trip(Exceeded::Bytes(self.max_bytes)));
        }
        self.used += cost;
        self.source.fill(self.pos, &mut buf[..n as usize])?;
        self.pos += n;
        Ok(n as usize)
    }
}

impl<S: Source> Seek for Budgeted<S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            // What lseek says, so an error row reads the same from every source.
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// Bytes of an open file: the segments already read, then a window of [`WINDOW`] bytes
/// read with one `pread` each time a read falls outside it. lofty's many small reads
/// (frame headers, block headers) are then copies, not syscalls, and its seeks cost
/// nothing; a read larger than the window goes straight into lofty's buffer.
pub struct FileView<'a> {
    file: &'a File,
    len: u64,
    segments: &'a [Segment],
    window: Vec<u8>,
    window_at: u64,
}

/// Bytes per `pread` for reads outside what is held.
pub const WINDOW: usize = 64 << 10;

impl<'a> FileView<'a> {
    /// `segments` hold bytes of `file` already read, sorted by offset.
    pub fn new(file: &'a File, len: u64, segments: &'a [Segment]) -> FileView<'a> {
        FileView {
            file,
            len,
            segments,
            window: Vec::new(),
            window_at: 0,
        }
    }
}

impl Source for FileView<'_> {
    fn fill(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        for held in self
            .segments
            .iter()
            .map(|s| (s.offset, s.data.as_slice()))
            .chain(std::iter::once((self.window_at, self.window.as_slice())))
        {
            if held.0 <= offset && end <= held.0 + held.1.len() as u64 {
                let from = (offset - held.0) as usize;
                buf.copy_from_slice(&held.1[from..from + buf.len()]);
                return Ok(());
            }
        }
        if buf.len() >= WINDOW {
            return self.file.read_exact_at(buf, offset).map_err(short_read);
        }
        let want = (WINDOW as u64)
            .min(self.len.saturating_sub(offset))
            .max(buf.len() as u64);
        if self.window.capacity() < WINDOW {
            self.window
                .try_reserve_exact(WINDOW)
                .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        }
        self.window.resize(want as usize, 0);
        self.window_at = offset;
        if let Err(e) = self.file.read_exact_at(&mut self.window, offset) {
            self.window.clear();
            return Err(short_read(e));
        }
        buf.copy_from_slice(&self.window[..buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(data: &[u8], max: u64) -> Budgeted<&[u8]> {
        let mut r = Budgeted::new(data, data.len() as u64, Limits::default());
        r.max_bytes = max;
        r
    }

    #[test]
    fn head_and_tail_are_free_the_middle_is_counted() {
        let chunk = crate::media::hash::CHUNK as usize;
        let data: Vec<u8> = (0..3 * chunk).map(|i| i as u8).collect();
        let mut r = reader(&data, 100);
        let mut buf = vec![0u8; chunk];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, data[..chunk]);
        r.seek(SeekFrom::End(-(chunk as i64))).unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, data[2 * chunk..]);
        r.seek(SeekFrom::Start(chunk as u64 - 10)).unwrap();
        let mut small = [0u8; 110];
        r.read_exact(&mut small).unwrap();
        assert_eq!(small[..], data[chunk - 10..chunk + 100]);
        assert_eq!(r.used, 100);
        assert!(r.read(&mut [0u8; 1]).is_err());
        assert_eq!(r.exceeded(), Some(Exceeded::Bytes(100)));
        // Tripped stays tripped until the engine reads the verdict.
        r.seek(SeekFrom::Start(0)).unwrap();
        assert!(r.read(&mut [0u8; 1]).is_err());
        assert_eq!(
            Exceeded::Bytes(16 << 20).message(),
            "tags: needs more than 16 MiB beyond head and tail"
        );
    }

    #[test]
    fn a_small_file_is_all_free_but_reads_are_counted() {
        let data = vec![7u8; 1000];
        let mut r = reader(&data, 0);
        let mut b = [0u8; 1];
        for _ in 0..MAX_READS {
            r.seek(SeekFrom::Start(5)).unwrap();
            r.read_exact(&mut b).unwrap();
        }
        assert!(r.read(&mut b).is_err());
        assert_eq!(r.exceeded(), Some(Exceeded::Reads(MAX_READS)));
    }

    #[test]
    fn reads_are_answered_in_full_and_stop_at_the_end() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut r = reader(&data, 0);
        r.seek(SeekFrom::Start(250)).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 6);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert!(r.seek(SeekFrom::Current(-1000)).is_err());
    }

    #[test]
    fn file_view_serves_held_bytes_and_windows_the_rest() {
        let tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        std::io::Write::write_all(&mut &tmp, &data).unwrap();
        let segs = [Segment {
            offset: 0,
            data: data[..1000].to_vec(),
        }];
        let mut v = FileView::new(&tmp, data.len() as u64, &segs);
        for (off, n) in [
            (10u64, 20usize),
            (5000, 100),
            (5050, 10),
            (200_000, 70_000),
            (299_990, 10),
        ] {
            let mut buf = vec![0u8; n];
            v.fill(off, &mut buf).unwrap();
            assert_eq!(buf, data[off as usize..off as usize + n], "{off}+{n}");
        }
        assert!(v.fill(299_995, &mut [0u8; 10]).is_err());
    }
}
