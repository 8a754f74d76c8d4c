//! The content and metadata hashes. This module is their only definition: every engine
//! calls it, so the rows they produce cannot drift apart.

use md5::{Digest, Md5};

/// Bytes hashed from each end of a file.
pub const CHUNK: u64 = 64 * 1024;

/// How many bytes the head read must return for a file of `size` bytes.
pub fn head_len(size: u64) -> usize {
    size.min(CHUNK) as usize
}

/// Offset of the tail block, or `None` when the file is too small to contribute one.
/// The replaced tool only hashed a tail for files of at least two chunks; a file between
/// one and two chunks contributes its first chunk alone. Keep that exactly.
pub fn tail_offset(size: u64) -> Option<u64> {
    (size >= 2 * CHUNK).then(|| size - CHUNK)
}

/// `file_content_hash`: MD5 of the head, followed by the tail when there is one.
pub fn content_hash(head: &[u8], tail: Option<&[u8]>) -> String {
    let mut h = Md5::new();
    h.update(head);
    if let Some(t) = tail {
        h.update(t);
    }
    hex(&h.finalize())
}

/// `metadata_hash`: MD5 of `artist|title`, trimmed and Unicode-lower-cased; files with
/// neither get a per-file fallback so that they never collide on an empty key.
pub fn metadata_hash(artist: Option<&str>, title: Option<&str>, file_stem: &str) -> String {
    let a = artist.unwrap_or("").trim().to_lowercase();
    let t = title.unwrap_or("").trim().to_lowercase();
    let key = if a.is_empty() && t.is_empty() {
        format!("NO_METADATA:{}", file_stem.to_lowercase())
    } else {
        format!("{a}|{t}")
    };
    hex(&Md5::digest(key.as_bytes()))
}

pub const NO_METADATA_PREFIX: &str = "NO_METADATA:";

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_known_vectors() {
        assert_eq!(content_hash(b"", None), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            content_hash(b"The quick brown fox ", Some(b"jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }

    #[test]
    fn tail_only_from_two_chunks() {
        assert_eq!(head_len(10), 10);
        assert_eq!(head_len(CHUNK * 3), CHUNK as usize);
        assert_eq!(tail_offset(CHUNK), None);
        assert_eq!(tail_offset(2 * CHUNK - 1), None);
        assert_eq!(tail_offset(2 * CHUNK), Some(CHUNK));
        assert_eq!(tail_offset(5 * CHUNK + 7), Some(4 * CHUNK + 7));
    }

    #[test]
    fn metadata_hash_folds_case_and_space() {
        let a = metadata_hash(Some(" BEYONCÉ "), Some("Halo"), "x");
        let b = metadata_hash(Some("beyoncé"), Some("halo "), "y");
        assert_eq!(a, b);
        assert_eq!(
            metadata_hash(None, Some(""), "01 Intro"),
            hex(&Md5::digest(b"NO_METADATA:01 intro"))
        );
        assert_ne!(
            metadata_hash(None, None, "01 Intro"),
            metadata_hash(None, None, "02 Intro")
        );
    }
}
