//! The reference way to read one file: std::fs, the head and tail hashed, then lofty
//! through the budgeted reader over the file. The sequential engine's only way, and every
//! other engine's fallback for a file that changes under it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::budget::{Budgeted, FileView, Limits};
use super::hash;
use super::problem::Problem;
use super::record::{FileRecord, Stat};
use super::sparse::Segment;
use super::tags::{self, Parsed};

/// Read the head and tail blocks that [`hash::content_hash`] covers. `size` is what
/// stat said; a file that shrank since is an error, never a hash of fewer bytes.
pub fn read_head_tail(file: &File, size: u64) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut head = vec![0u8; hash::head_len(size)];
    file.read_exact_at(&mut head, 0).map_err(short_read)?;
    let tail = match hash::tail_offset(size) {
        Some(off) => {
            let mut tail = vec![0u8; hash::CHUNK as usize];
            file.read_exact_at(&mut tail, off).map_err(short_read)?;
            Some(tail)
        }
        None => None,
    };
    Ok((head, tail))
}

/// The error a read past the end becomes: the file shrank after it was stat'ed.
pub fn short_read(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            e.kind(),
            "file shorter than its stat size (changed while read)",
        )
    } else {
        e
    }
}

/// The reference way to index one file: std::fs, then lofty reading from the path.
/// Slow and obviously right; the other engines must produce the same record.
pub fn read_reference(path: PathBuf, stat: Stat, limits: Limits) -> FileRecord {
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => return FileRecord::failed(path, stat, Problem::open(&e)),
    };
    read_reference_file(file, path, stat, limits)
}

/// The reference path from an already open file. The faster engines fall back to it
/// when a read comes up short, so a file that changes under them is recorded exactly as
/// the reference engine would have recorded it.
pub fn read_reference_file(file: File, path: PathBuf, stat: Stat, limits: Limits) -> FileRecord {
    let (content, held) = match read_head_tail(&file, stat.size) {
        Ok((h, t)) => {
            let content = hash::content_hash(&h, t.as_deref());
            // The parse reads head and tail from memory, like the other engines'.
            let mut held = vec![Segment { offset: 0, data: h }];
            if let (Some(off), Some(t)) = (hash::tail_offset(stat.size), t) {
                held.push(Segment {
                    offset: off,
                    data: t,
                });
            }
            (Ok(content), held)
        }
        Err(e) => (Err(Problem::read(&e)), Vec::new()),
    };
    let parsed = parse_file(&file, stat.size, &held, &path, limits);
    let readable = content.is_ok();
    let mut record = FileRecord::assemble(path, stat, content, parsed);
    if readable {
        let mut held = held;
        let (hash, len, _) = super::audio_hash::of_file(&file, stat.size, &mut held);
        record.audio_hash = hash;
        record.audio_len = len;
    }
    record
}

/// Parse through the budgeted reader over the file, with `held` (bytes of it already
/// read, sorted by offset) served from memory. Every engine's last resort, and the
/// reference engine's only way.
pub fn parse_file(
    file: &File,
    size: u64,
    held: &[Segment],
    path: &Path,
    limits: Limits,
) -> Result<Parsed, String> {
    tags::parse(
        &mut Budgeted::new(FileView::new(file, size, held), size, limits),
        path,
    )
}
