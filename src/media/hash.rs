//! The content and metadata hashes. This module is their only definition: every engine
//! calls it, so the rows they produce cannot drift apart.

use md5::{Digest, Md5};

use super::md5x8;

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
    hex(&md5x8::digest_one(&[head, tail.unwrap_or(&[])]))
}

/// [`content_hash`] of many files at once, in order: `(head, tail)` pairs. The parallel
/// engines hold many files, so they hash them sixteen to a batch (see [`super::md5x8`]).
pub fn content_hashes(files: &[(&[u8], Option<&[u8]>)]) -> Vec<String> {
    let msgs: Vec<md5x8::Parts> = files.iter().map(|(h, t)| [*h, t.unwrap_or(&[])]).collect();
    md5x8::digest_many(&msgs).iter().map(|d| hex(d)).collect()
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
    fn batched_hashes_equal_one_by_one() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
        let files: Vec<(&[u8], Option<&[u8]>)> = vec![
            (&big[..65_536], Some(&big[134_464..])),
            (b"", None),
            (&big[..100], None),
            (&big[1..65_537], Some(&big[1000..66_536])),
            (&big[..65_536], Some(&big[..65_536])),
        ];
        let one_by_one: Vec<String> = files.iter().map(|(h, t)| content_hash(h, *t)).collect();
        assert_eq!(content_hashes(&files), one_by_one);
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
