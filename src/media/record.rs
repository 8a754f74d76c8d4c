//! One indexed file as the engines produce it and the writer stores it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::hash;
use super::problem::{Problem, Problems};
use super::tags::{Parsed, TagInfo};

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
    /// Bytes in the audio payload, where known (`audio_hash::Payload::len`).
    pub audio_len: Option<u64>,
    pub metadata_hash: String,
    pub tags: TagInfo,
    /// Lower-case extension.
    pub format: String,
    /// Why the file was not fully read; its text is the `error` column.
    pub error: Option<Problems>,
}

impl FileRecord {
    /// Assemble a record from what an engine found. Every engine calls this, so the
    /// error text and the fallback hash are the same whichever engine read the file.
    pub fn assemble(
        path: PathBuf,
        stat: Stat,
        content: Result<String, Problem>,
        parsed: Result<Parsed, String>,
    ) -> FileRecord {
        let mut errors = Vec::new();
        let content_hash = content.map_err(|e| errors.push(e)).ok();
        let tags = match parsed {
            Ok(p) => {
                errors.extend(p.error.map(Problem::tags));
                p.info
            }
            Err(e) => {
                errors.push(Problem::tags(e));
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
            audio_len: None,
            metadata_hash,
            tags,
            error: Problems::from_vec(errors),
        }
    }

    /// A file that was listed but could not even be stat'ed or opened.
    pub fn failed(path: PathBuf, stat: Stat, problem: Problem) -> FileRecord {
        let nothing = Parsed {
            info: TagInfo::default(),
            error: None,
        };
        FileRecord::assemble(path, stat, Err(problem), Ok(nothing))
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
            Problem::open(&std::io::Error::other("gone")),
        );
        let error = r.error.as_ref().unwrap();
        assert_eq!(error.to_string(), "open: gone");
        assert_eq!(
            error.kinds().collect::<Vec<_>>(),
            [super::super::problem::ProblemKind::Open(
                std::io::ErrorKind::Other
            )]
        );
        assert_eq!(r.format, "mp3");
        assert!(r.content_hash.is_none());
        assert_eq!(r.metadata_hash, hash::metadata_hash(None, None, "Song"));
    }
}
