//! One indexed file as the engines produce it and the writer stores it.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::budget::{Budgeted, FileView};
use super::hash;
use super::sparse::Segment;
use super::tags::{self, Parsed, TagInfo};

/// Size and modification time: the two facts incremental runs compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl Stat {
    pub fn from_metadata(m: &std::fs::Metadata) -> Stat {
        Stat {
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileRecord {
    pub path: PathBuf,
    pub stat: Stat,
    /// `None` when the bytes could not be read; such a file matches nothing.
    pub content_hash: Option<String>,
    /// [`super::audio_hash`]: `None` for an unknown format, an unlocatable payload, or
    /// a file that could not be read.
    pub audio_hash: Option<String>,
    pub metadata_hash: String,
    pub tags: TagInfo,
    /// Lower-case extension.
    pub format: String,
    /// Why the file was not fully read, as recorded in the `error` column.
    pub error: Option<String>,
}

impl FileRecord {
    /// Assemble a record from what an engine found. Every engine calls this, so the
    /// error text and the fallback hash are the same whichever engine read the file.
    pub fn assemble(
        path: PathBuf,
        stat: Stat,
        content: Result<String, String>,
        parsed: Result<Parsed, String>,
    ) -> FileRecord {
        let mut errors = Vec::new();
        let content_hash = content.map_err(|e| errors.push(e)).ok();
        let tags = match parsed {
            Ok(p) => {
                errors.extend(p.error);
                p.info
            }
            Err(e) => {
                errors.push(e);
                TagInfo::default()
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let metadata_hash =
            hash::metadata_hash(tags.artist.as_deref(), tags.title.as_deref(), &stem);
        FileRecord {
            format: format_of(&path),
            path,
            stat,
            content_hash,
            audio_hash: None,
            metadata_hash,
            tags,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        }
    }

    /// A file that was listed but could not even be stat'ed or opened.
    pub fn failed(path: PathBuf, stat: Stat, error: String) -> FileRecord {
        let mut r = FileRecord::assemble(path, stat, Err(String::new()), Err(String::new()));
        r.error = Some(error);
        r
    }

    pub fn filename(&self) -> String {
        self.path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

pub fn format_of(path: &Path) -> String {
    path.extension()
        .map(|e| String::from_utf8_lossy(e.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default()
}

/// Path bytes exactly as the kernel gave them: the key that survives non-UTF-8 names.
pub fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

pub fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

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
pub fn read_reference(path: PathBuf, stat: Stat) -> FileRecord {
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => return FileRecord::failed(path, stat, format!("open: {e}")),
    };
    read_reference_file(file, path, stat)
}

/// The reference path from an already open file. The faster engines fall back to it
/// when a read comes up short, so a file that changes under them is recorded exactly as
/// the reference engine would have recorded it.
pub fn read_reference_file(file: File, path: PathBuf, stat: Stat) -> FileRecord {
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
        Err(e) => (Err(format!("read: {e}")), Vec::new()),
    };
    let parsed = parse_file(&file, stat.size, &held, &path);
    FileRecord::assemble(path, stat, content, parsed)
}

/// Parse through the budgeted reader over the file, with `held` (bytes of it already
/// read, sorted by offset) served from memory. Every engine's last resort, and the
/// reference engine's only way.
pub fn parse_file(file: &File, size: u64, held: &[Segment], path: &Path) -> Result<Parsed, String> {
    tags::parse(
        &mut Budgeted::new(FileView::new(file, size, held), size),
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_record_keeps_one_error() {
        let r = FileRecord::failed(
            PathBuf::from("/x/Song.MP3"),
            Stat {
                size: 0,
                mtime_ns: 0,
            },
            "open: gone".into(),
        );
        assert_eq!(r.error.as_deref(), Some("open: gone"));
        assert_eq!(r.format, "mp3");
        assert!(r.content_hash.is_none());
        assert_eq!(r.metadata_hash, hash::metadata_hash(None, None, "Song"));
    }
}
