//! Tags and audio properties read without lofty, for the layouts that make up nearly all
//! of a real library (ID3v2.3/2.4 MP3, FLAC, Ogg Vorbis and Opus, MP4/M4A), straight from
//! the bytes the fast engines already hold.
//!
//! Why: at 100k small files lofty's parse is most of the engines' CPU (its generic tag
//! model allocates per item and maps every key through a long string match), and the
//! sequential reference pays it alike, so it bounds what the fast engines can gain.
//!
//! The contract, which the differential tests in `tests.rs` hold over the shared corpus,
//! the fixtures, generated libraries and their mutants: for any file, [`read`] either
//! declines (`None`) or returns exactly the [`TagInfo`] that lofty's strict parse
//! ([`super::tags::parse`]) returns with no error. Anything a reader is not certain of
//! (a layout it does not know, a field it would have to guess, bytes it does not hold, a
//! structure bigger than the budget) is a decline, and lofty parses the file as before.
//! The reference engine never uses this module: it stays the oracle.

use std::path::Path;

use super::budget::Limits;
use super::sparse::Segment;
use super::tags::{TagInfo, leading_year};

mod flac;
mod mp3;
mod mp4;
mod vorbis;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mp3;
#[cfg(test)]
mod tests_mp4;
#[cfg(test)]
mod tests_vorbis;

/// The bytes held of one file: sorted segments (they may overlap) and the file's length.
#[derive(Clone, Copy)]
pub struct Held<'a> {
    len: u64,
    segments: &'a [Segment],
}

impl<'a> Held<'a> {
    pub fn new(len: u64, segments: &'a [Segment]) -> Held<'a> {
        Held { len, segments }
    }

    /// The file's length, as the stat gave it.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// `n` bytes at `offset`, when one segment holds them all and they lie inside the
    /// file; `None` otherwise (the caller declines).
    pub fn get(&self, offset: u64, n: usize) -> Option<&'a [u8]> {
        let end = offset.checked_add(n as u64)?;
        if end > self.len {
            return None;
        }
        self.segments
            .iter()
            .find(|s| s.offset <= offset && end <= s.offset + s.data.len() as u64)
            .map(|s| {
                let from = (offset - s.offset) as usize;
                &s.data[from..from + n]
            })
    }

    /// Everything held from `offset` to the end of the segment that holds `offset`
    /// (clipped to the file's length).
    pub fn from(&self, offset: u64) -> Option<&'a [u8]> {
        self.segments
            .iter()
            .filter(|s| s.offset <= offset && offset < s.offset + s.data.len() as u64)
            .max_by_key(|s| s.offset + s.data.len() as u64)
            .map(|s| {
                let from = (offset - s.offset) as usize;
                let end = (s.data.len() as u64).min(self.len.saturating_sub(s.offset)) as usize;
                &s.data[from.min(end)..end]
            })
    }
}

/// Tags and properties of the file, or `None` when lofty must parse it (see the module
/// documentation). `path` gives the extension lofty starts its guess from.
///
/// A reader that panics on some input has a bug, and a file must never end a run: in a
/// release build the panic is a decline (lofty then parses the file, and records its
/// error if it has one); debug builds, which the tests run, let it through so that the
/// differential and engine tests see it.
pub fn read(held: &Held, path: &Path, limits: Limits) -> Option<TagInfo> {
    if cfg!(debug_assertions) {
        return dispatch(held, path, limits);
    }
    super::tags::quietly(|| dispatch(held, path, limits))
        .ok()
        .flatten()
}

fn dispatch(held: &Held, path: &Path, limits: Limits) -> Option<TagInfo> {
    let ext = path.extension()?.as_encoded_bytes();
    let is = |names: &[&str]| names.iter().any(|n| ext.eq_ignore_ascii_case(n.as_bytes()));
    let head = held.get(0, 12)?;
    // Per file on the hot path: compared in place, no lower-cased copy of the extension.
    if is(&["mp3"]) {
        mp3::read(held, limits)
    } else if is(&["flac"]) && head.starts_with(b"fLaC") {
        flac::read(held, limits)
    } else if is(&["ogg", "opus", "oga"]) && head.starts_with(b"OggS") {
        vorbis::read_ogg(held, limits)
    } else if is(&["m4a", "mp4", "m4b", "aac"]) && &head[4..8] == b"ftyp" {
        mp4::read(held, limits)
    } else {
        None
    }
}

/// A text value as `tags::from_tagged_file` keeps it: trailing NULs dropped, and a value
/// that is blank after that counts as absent.
pub fn clean_text(s: &str) -> Option<String> {
    let s = s.trim_end_matches('\0');
    (!s.trim().is_empty()).then(|| s.to_string())
}

/// The year as `tags::year_of` takes it from one tag: the date item through lofty's
/// relaxed timestamp parse (`Tag::date`), else the first of `items` (year, recording,
/// release, original release date, in that order) with a standalone four-digit year.
pub fn year_of(date: Option<&str>, items: [Option<&str>; 4]) -> Option<i32> {
    date.and_then(timestamp_year)
        .map(i32::from)
        .or_else(|| items.into_iter().flatten().find_map(leading_year))
}

/// The year lofty's `Timestamp::parse(_, ParsingMode::Relaxed)` gives (what `Tag::date`
/// uses for Vorbis comments and MP4 items), `None` where it returns `Ok(None)` or an
/// error. ID3v2 frames go through lofty's strict parse instead (`mp3::timestamp`).
pub fn timestamp_year(s: &str) -> Option<u16> {
    const SEPARATORS: &[u8] = b"-.T:";
    let b = s.as_bytes();
    let skip = b.iter().position(|c| !c.is_ascii_whitespace())?;
    let content = &b[skip..b.len().min(skip + 19)];
    let seps = content
        .iter()
        .any(|&c| c != b'T' && SEPARATORS.contains(&c));
    if content.len() < 4 {
        return None;
    }
    let mut year: Option<u16> = None;
    for &c in &content[..4] {
        if c == b' ' {
            continue;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        year = Some(year.unwrap_or(0) * 10 + u16::from(c - b'0'));
    }
    let year = year?;
    let mut rest = &content[4..];
    let date_sep: Option<&[u8]> = seps.then_some(b"-.");
    let time_sep: Option<&[u8]> = seps.then_some(b":");
    for sep in [
        date_sep,
        date_sep,
        Some(b"T".as_slice()),
        time_sep,
        time_sep,
    ] {
        // One segment of two: `Some(true)` read, `Some(false)` stop, `None` an error.
        let go = (|| {
            if rest.is_empty() {
                return Some(false);
            }
            if let Some(sep) = sep {
                let c = rest[0];
                rest = &rest[1..];
                if !sep.contains(&c) {
                    return Some(false);
                }
            }
            if rest.len() < 2 {
                return Some(false);
            }
            let mut digits = false;
            let mut used = 0;
            for &c in &rest[..2] {
                if c == b' ' {
                    used += 1;
                    continue;
                }
                if !c.is_ascii_digit() {
                    if sep.is_some() && SEPARATORS.contains(&c) {
                        break;
                    }
                    return None;
                }
                digits = true;
                used += 1;
            }
            if !digits {
                return Some(false);
            }
            rest = &rest[used..];
            Some(true)
        })();
        match go {
            None => return None,
            Some(false) => break,
            Some(true) => {}
        }
    }
    Some(year)
}
