//! `audio_hash`: the identity of a file's audio, blind to its tags. This module is the one
//! definition of where each format keeps its audio payload and of the hash over it.
//!
//! The payload is what lies between the leading tag or metadata region and the trailing
//! tag region (the README's table gives each format). The hash is the lower-case hex MD5
//! of the payload's first 64 KiB followed by its last 64 KiB, or of the whole payload when
//! it is shorter than 128 KiB. An unknown format, a payload that cannot be found within
//! the limits below, or an empty one, has no audio hash: the content hash alone must then
//! identify the file.
//!
//! Engines already hold the file's head and tail, so the work is split in two steps that
//! never touch the file themselves:
//! 1. [`locate`] reads only the [`Segment`]s held. Either it finds the payload, or it names
//!    the byte ranges it must see first ([`Located::Need`]: the next MP4 box header after a
//!    large `moov`, the Ogg pages, the frames after a large ID3v2 tag), and is called again
//!    once they are held.
//! 2. [`Payload::missing`] names the bytes of the payload's first and last 64 KiB not held
//!    yet (cover art pushes the payload's head past the head read); [`Payload::hash`]
//!    hashes once they are.
//!
//! [`step`] does both; [`audio_hash_of_file`] drives it with `pread`, as the reference.
//!
//! The answer depends only on the file's bytes, never on which of them happen to be held:
//! every decision that needs a byte not held asks for it instead of guessing. That is what
//! lets engines that hold different bytes write the same value. Work is bounded whatever a
//! header claims: structural reads stay within [`budget::max_tag_bytes`] (plus 128 KiB) of
//! either end of the file, walks visit a bounded number of boxes, chunks, blocks and
//! pages, nothing is allocated from a claimed size, and a size that runs past the end of
//! the file is cut there. (So a file whose tags exceed the tag budget has no audio hash;
//! `--max-tag-bytes` is the one setting the answer depends on.)

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use md5::{Digest, Md5};

use super::budget;
use super::hash::CHUNK;
use super::md5x8;
use super::sparse::{self, Segment};

/// The container whose payload rule applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Container {
    /// MPEG-1/2/2.5 layer I–III frames (`.mp3`, `.mp2`, `.mp1`).
    Mpeg,
    /// AAC in ADTS frames (`.aac`).
    Adts,
    Flac,
    /// Ogg Vorbis, Opus, Speex or FLAC: the packet data of the first logical stream.
    Ogg,
    /// MP4/M4A: the first non-empty top-level `mdat`.
    Mp4,
    /// RIFF/RF64 WAVE: the `data` chunk.
    Wav,
    /// AIFF/AIFC: the sample data of the `SSND` chunk.
    Aiff,
    /// Monkey's Audio.
    Ape,
    WavPack,
    /// Musepack SV7 (`MP+`) and SV8 (`MPCK`).
    Musepack,
    /// DSD stream file: the `data` chunk.
    Dsf,
}

/// Where the payload lies, and the file ranges the hash covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub container: Container,
    /// File offset of the payload's first byte.
    pub start: u64,
    /// File offset just past the payload's last byte.
    pub end: u64,
    /// Bytes in the payload, where known: always, except for an Ogg stream past 128 KiB
    /// (its middle pages are never walked). Not part of the hash, but a key beside it:
    /// two different PCM recordings with 64 KiB of digital silence at both ends (0.37 s
    /// of CD audio, common in rips) hash alike and differ in length.
    pub len: Option<u64>,
    /// `[start, end)` file ranges whose bytes, concatenated in this order, are hashed:
    /// at most 128 KiB in all. One or two ranges, except for Ogg (one per page body).
    pub pieces: Vec<(u64, u64)>,
}

/// What [`locate`] found out from the bytes held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Located {
    Found(Payload),
    /// Read these `(offset, len)` ranges, none of them held, and call [`locate`] again.
    Need(Vec<(u64, usize)>),
    /// No audio hash: unknown format, payload not locatable within the limits, or empty.
    None,
}

/// One step of the two: the hash, or the ranges to read before the next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Done(Option<String>),
    Read(Vec<(u64, usize)>),
}

/// Bytes hashed from each end of the payload.
const PART: u64 = CHUNK;
/// Bytes read past a structural miss: a header needs a few, the payload head that often
/// follows needs 64 KiB, and one read serves both.
const AHEAD: u64 = 64 << 10;
/// Top-level MP4 boxes, RIFF/AIFF chunks visited before giving up (real files: under 20).
const MAX_CHUNKS: usize = 64;
/// FLAC metadata blocks visited (real files: under 100; a zero-filled file has millions).
const MAX_FLAC_BLOCKS: usize = 1024;
/// Leading ID3v2 tags skipped (some taggers prepend a second one).
const MAX_ID3V2: usize = 8;
/// Trailing tags stripped (APEv2, Lyrics3, ID3v1, an appended ID3v2).
const MAX_TRAILERS: usize = 8;
/// After the leading tags, the first MPEG/ADTS frame is searched for in this window.
const SYNC_WINDOW: u64 = 64 << 10;
/// Ogg pages visited by one walk.
const MAX_PAGES: usize = 1 << 20;
/// Largest Ogg page: header, 255 lacing values, 255 × 255 body bytes.
const MAX_PAGE: u64 = 27 + 255 + 255 * 255;

// ---------------------------------------------------------------------------------------
// The two steps.

/// Step 1: where the payload of a file of `size` bytes lies, from the `held` segments
/// (sorted by offset; they may overlap).
pub fn locate(size: u64, held: &[Segment]) -> Located {
    let v = View { size, held };
    match find(&v) {
        Ok(Some(p)) if p.end > p.start => Located::Found(p),
        Ok(_) => Located::None,
        Err(miss) => {
            let end = if miss.sized {
                miss.end
            } else {
                miss.end.max(miss.start.saturating_add(AHEAD))
            };
            let plan = clip_to_gaps(size, held, miss.start, end);
            // A miss is a byte not held, so the plan is never empty; if it were, asking
            // again would loop.
            if plan.is_empty() {
                Located::None
            } else {
                Located::Need(plan)
            }
        }
    }
}

impl Payload {
    /// `(offset, len)` ranges of [`Payload::pieces`] not held yet.
    pub fn missing(&self, size: u64, held: &[Segment]) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        for &(s, e) in &self.pieces {
            out.extend(clip_to_gaps(size, held, s, e));
        }
        merge(out)
    }

    /// Step 2: the audio hash, or `None` while a piece is not held.
    pub fn hash(&self, size: u64, held: &[Segment]) -> Option<String> {
        let v = View { size, held };
        let mut md5 = Md5::new();
        for &(s, e) in &self.pieces {
            md5.update(v.get(s, (e - s) as usize).ok()??);
        }
        Some(hex(&md5.finalize()))
    }
}

/// [`Payload::hash`] of many files at once, in order: `(payload, file size, held)`.
/// The parallel engines hold many files, so they hash eight to a batch, as they do the
/// content hash (see [`super::md5x8`]); the audio hash adds up to 128 KiB of MD5 per file.
pub fn hashes(items: &[(&Payload, u64, &[Segment])]) -> Vec<Option<String>> {
    // The bytes of each message: one or two pieces borrowed where a segment holds them,
    // Ogg's many page bodies gathered into one buffer.
    let bytes: Vec<Option<[Cow<'_, [u8]>; 2]>> = items
        .iter()
        .map(|&(p, size, held)| {
            let v = View { size, held };
            let get = |(s, e): (u64, u64)| v.get(s, (e - s) as usize).ok().flatten();
            match p.pieces.as_slice() {
                [] => Some([Cow::Borrowed(&[][..]), Cow::Borrowed(&[][..])]),
                [a] => Some([get(*a)?, Cow::Borrowed(&[][..])]),
                [a, b] => Some([get(*a)?, get(*b)?]),
                many => {
                    let mut all =
                        Vec::with_capacity(many.iter().map(|&(s, e)| (e - s) as usize).sum());
                    for &r in many {
                        all.extend_from_slice(&get(r)?);
                    }
                    Some([Cow::Owned(all), Cow::Borrowed(&[][..])])
                }
            }
        })
        .collect();
    let msgs: Vec<md5x8::Parts> = bytes
        .iter()
        .flatten()
        .map(|[a, b]| [&a[..], &b[..]])
        .collect();
    let mut digests = md5x8::digest_many(&msgs).into_iter();
    bytes
        .iter()
        .map(|b| b.as_ref().and_then(|_| digests.next()).map(|d| hex(&d)))
        .collect()
}

/// Both steps over the bytes held: the hash, or what to read first.
pub fn step(size: u64, held: &[Segment]) -> Step {
    match locate(size, held) {
        Located::None => Step::Done(None),
        Located::Need(r) => Step::Read(r),
        Located::Found(p) => {
            let missing = p.missing(size, held);
            if missing.is_empty() {
                Step::Done(p.hash(size, held))
            } else {
                Step::Read(missing)
            }
        }
    }
}

/// Run [`step`] to the end, reading with `read(offset, buf)` whatever it asks for and
/// adding it to `held`. Each round reads bytes not held before, so this ends.
pub fn drive(
    size: u64,
    held: &mut Vec<Segment>,
    mut read: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<Option<String>> {
    loop {
        match step(size, held) {
            Step::Done(h) => return Ok(h),
            Step::Read(ranges) => {
                for (offset, len) in ranges {
                    let mut data = Vec::new();
                    data.try_reserve_exact(len)
                        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
                    data.resize(len, 0);
                    read(offset, &mut data)?;
                    sparse::add_segment(held, Segment { offset, data });
                }
            }
        }
    }
}

/// The reference: the audio hash of a file, reading only what [`step`] asks for.
pub fn audio_hash_of_file(path: &Path) -> io::Result<Option<String>> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    drive(size, &mut Vec::new(), |off, buf| {
        file.read_exact_at(buf, off)
            .map_err(super::reference::short_read)
    })
}

/// The audio hash of an open file of `size` bytes (its stat size) whose `held` bytes are
/// read already: the rest is read from the file as [`step`] asks. Also returns the bytes
/// read beyond the engines' first reads. A read that fails or comes up short (the file
/// changed) gives no hash. With the hash, [`payload_len`].
pub fn of_file(
    file: &File,
    size: u64,
    held: &mut Vec<Segment>,
) -> (Option<String>, Option<u64>, u64) {
    let mut extra = 0;
    let hash = drive(size, held, |off, buf| {
        extra += beyond_head_and_tail(size, off, buf.len() as u64);
        file.read_exact_at(buf, off)
            .map_err(super::reference::short_read)
    })
    .ok()
    .flatten();
    let len = hash.as_ref().and_then(|_| payload_len(size, held));
    (hash, len, extra)
}

/// [`Payload::len`] once [`step`] is done with the bytes held.
pub fn payload_len(size: u64, held: &[Segment]) -> Option<u64> {
    match locate(size, held) {
        Located::Found(p) => p.len,
        _ => None,
    }
}

/// Bytes of `[off, off + len)` outside the first reads of the parallel engines: the
/// content hash's head and tail, or the whole file under two chunks.
pub fn beyond_head_and_tail(size: u64, off: u64, len: u64) -> u64 {
    budget::costs_beyond_first(size, off, off + len)
}

/// The audio hash of a file held whole in memory.
pub fn audio_hash_of_bytes(data: &[u8]) -> Option<String> {
    let held = [Segment {
        offset: 0,
        data: data.to_vec(),
    }];
    match step(data.len() as u64, &held) {
        Step::Done(h) => h,
        // Everything is held: nothing can be missing.
        Step::Read(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Reading the held bytes.

/// Bytes `[start, end)` needed and not held.
#[derive(Debug)]
struct Miss {
    start: u64,
    end: u64,
    /// The caller sized the read itself; otherwise [`AHEAD`] bytes are read.
    sized: bool,
}

impl Miss {
    /// Ask for `n` bytes from the miss on (at least the bytes missed).
    fn ahead(mut self, n: u64) -> Miss {
        self.end = self.end.max(self.start.saturating_add(n));
        self.sized = true;
        self
    }
}

type R<T> = Result<T, Miss>;

struct View<'a> {
    size: u64,
    held: &'a [Segment],
}

impl<'a> View<'a> {
    /// `len` bytes at `off`: `None` when they run past the end of the file; a [`Miss`]
    /// when some are not held.
    fn get(&self, off: u64, len: usize) -> R<Option<Cow<'a, [u8]>>> {
        let Some(end) = off.checked_add(len as u64).filter(|&e| e <= self.size) else {
            return Ok(None);
        };
        for s in self.held {
            if s.offset <= off && end <= s.offset + s.data.len() as u64 {
                let from = (off - s.offset) as usize;
                return Ok(Some(Cow::Borrowed(&s.data[from..from + len])));
            }
        }
        // Across segments that touch: assemble. Only small reads get here in practice.
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let mut pos = off;
        while pos < end {
            let best = self
                .held
                .iter()
                .filter(|s| s.offset <= pos && pos < s.offset + s.data.len() as u64)
                .max_by_key(|s| s.offset + s.data.len() as u64);
            let Some(s) = best else {
                return Err(Miss {
                    start: pos,
                    end,
                    sized: false,
                });
            };
            let n = (end.min(s.offset + s.data.len() as u64) - pos) as usize;
            let from = (pos - s.offset) as usize;
            out.extend_from_slice(&s.data[from..from + n]);
            pos += n as u64;
        }
        Ok(Some(Cow::Owned(out)))
    }

    /// The held bytes from `off` to the end of the segment that reaches furthest.
    fn held_from(&self, off: u64) -> Option<&'a [u8]> {
        self.held
            .iter()
            .filter(|s| s.offset <= off && off < s.offset + s.data.len() as u64)
            .max_by_key(|s| s.offset + s.data.len() as u64)
            .map(|s| &s.data[(off - s.offset) as usize..])
    }

    fn bytes<const N: usize>(&self, off: u64) -> R<Option<[u8; N]>> {
        Ok(self.get(off, N)?.map(|b| {
            let mut a = [0u8; N];
            a.copy_from_slice(&b);
            a
        }))
    }

    fn is(&self, off: u64, magic: &[u8]) -> R<bool> {
        Ok(self.get(off, magic.len())?.is_some_and(|b| *b == *magic))
    }
}

/// The parts of `[start, end)` no segment holds, as `(offset, len)`.
fn clip_to_gaps(size: u64, held: &[Segment], start: u64, end: u64) -> Vec<(u64, usize)> {
    let end = end.min(size);
    let mut covered: Vec<(u64, u64)> = held
        .iter()
        .map(|s| (s.offset, s.offset + s.data.len() as u64))
        .filter(|&(s, e)| s < end && e > start)
        .collect();
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut pos = start;
    for (s, e) in covered {
        if s > pos {
            out.push((pos, (s - pos) as usize));
        }
        pos = pos.max(e);
    }
    if pos < end {
        out.push((pos, (end - pos) as usize));
    }
    out
}

fn merge(mut ranges: Vec<(u64, usize)>) -> Vec<(u64, usize)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, usize)> = Vec::with_capacity(ranges.len());
    for (s, n) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.0 + last.1 as u64 => {
                let end = (s + n as u64).max(last.0 + last.1 as u64);
                last.1 = (end - last.0) as usize;
            }
            _ => out.push((s, n)),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]))
}

fn synchsafe(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, &x| {
        (x & 0x80 == 0).then_some((acc << 7) | u64::from(x))
    })
}

/// A structural read at `off` is allowed within the tag budget of either end of the file.
fn in_reach(size: u64, off: u64) -> bool {
    let reach = budget::DEFAULT_MAX_TAG_BYTES.saturating_add(2 * CHUNK);
    off <= reach || size.saturating_sub(off) <= reach
}

/// The contiguous payload `[start, end)`: its first and last 64 KiB, or all of it.
fn contiguous(container: Container, start: u64, end: u64) -> Option<Payload> {
    if end <= start {
        return None;
    }
    let pieces = if end - start < 2 * PART {
        vec![(start, end)]
    } else {
        vec![(start, start + PART), (end - PART, end)]
    };
    Some(Payload {
        container,
        start,
        end,
        len: Some(end - start),
        pieces,
    })
}

// ---------------------------------------------------------------------------------------
// Per format.

fn find(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    if v.is(0, b"fLaC")? {
        return flac(v, 0);
    }
    if v.is(0, b"OggS")? {
        return ogg(v);
    }
    if v.is(4, b"ftyp")? {
        return mp4(v);
    }
    if let Some(h) = v.bytes::<12>(0)?
        && matches!(&h[..4], b"RIFF" | b"RF64" | b"BW64")
        && &h[8..] == b"WAVE"
    {
        return wav(v);
    }
    if let Some(h) = v.bytes::<12>(0)?
        && &h[..4] == b"FORM"
        && matches!(&h[8..], b"AIFF" | b"AIFC")
    {
        return aiff(v);
    }
    if v.is(0, b"DSD ")? {
        return dsf(v);
    }
    // ASF (WMA) and anything else with a header of its own is not a frame stream.
    if v.is(0, &[0x30, 0x26, 0xb2, 0x75])? {
        return Ok(None);
    }
    // Everything else may start with ID3v2 tags: skip them, then look again.
    let start = skip_id3v2(v, 0)?;
    if start >= size || !in_reach(size, start) {
        return Ok(None);
    }
    if v.is(start, b"fLaC")? {
        return flac(v, start);
    }
    let end = strip_trailers(v, start, size)?;
    if end <= start {
        return Ok(None);
    }
    if v.is(start, b"MAC ")? {
        return Ok(contiguous(Container::Ape, start, end));
    }
    if v.is(start, b"wvpk")? {
        return Ok(contiguous(Container::WavPack, start, end));
    }
    if v.is(start, b"MPCK")? || v.is(start, b"MP+")? {
        return Ok(contiguous(Container::Musepack, start, end));
    }
    frames(v, start, end)
}

/// Past the ID3v2 tags at `at` (each with its footer and padding, as its size says).
fn skip_id3v2(v: &View, mut at: u64) -> R<u64> {
    for _ in 0..MAX_ID3V2 {
        // A size that points far away is not followed: the caller gives up there.
        if !in_reach(v.size, at) {
            break;
        }
        let Some(h) = v.bytes::<10>(at)? else { break };
        if &h[..3] != b"ID3" || h[3] == 0xff || h[4] == 0xff {
            break;
        }
        let Some(n) = synchsafe(&h[6..10]) else { break };
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        at = at.saturating_add(10 + n + footer);
    }
    Ok(at)
}

/// The end of the audio once the trailing tags of `[start, end)` are stripped: APEv2
/// (by its footer's size), Lyrics3 v1/v2, ID3v1 (and its `TAG+` extension), an appended
/// ID3v2 (by its footer), in any order.
fn strip_trailers(v: &View, start: u64, mut end: u64) -> R<u64> {
    for _ in 0..MAX_TRAILERS {
        let room = end - start;
        if room >= 128 && v.is(end - 128, b"TAG")? {
            end -= 128;
            if end - start >= 227 && v.is(end - 227, b"TAG+")? {
                end -= 227;
            }
            continue;
        }
        if room >= 32
            && let Some(f) = v.bytes::<32>(end - 32)?
            && &f[..8] == b"APETAGEX"
        {
            let n = u64::from(le32(&f[12..16]));
            let header = if le32(&f[20..24]) & 0x8000_0000 != 0 {
                32
            } else {
                0
            };
            let total = n + header;
            if n < 32 || total > room {
                break;
            }
            end -= total;
            continue;
        }
        if room >= 15
            && let Some(f) = v.bytes::<15>(end - 15)?
            && &f[6..] == b"LYRICS200"
            && let Some(n) = std::str::from_utf8(&f[..6])
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            && n + 15 <= room
            && v.is(end - 15 - n, b"LYRICSBEGIN")?
        {
            end -= n + 15;
            continue;
        }
        if room >= 20 && v.is(end - 9, b"LYRICSEND")? {
            // v1 has no size: its start is searched for in the 5,100 bytes it may span.
            let from = end.saturating_sub(9 + 5100).max(start);
            let Some(text) = v.get(from, (end - 9 - from) as usize)? else {
                break;
            };
            match text.windows(11).rposition(|w| w == b"LYRICSBEGIN") {
                Some(i) => {
                    end = from + i as u64;
                    continue;
                }
                None => break,
            }
        }
        if room >= 20
            && let Some(f) = v.bytes::<10>(end - 10)?
            && &f[..3] == b"3DI"
            && let Some(n) = synchsafe(&f[6..10])
            && n + 20 <= room
        {
            end -= n + 20;
            continue;
        }
        break;
    }
    Ok(end)
}

// MPEG audio and ADTS frames.

#[derive(Clone, Copy, PartialEq, Eq)]
struct Frame {
    len: u64,
    /// What stays the same from frame to frame of one stream.
    kind: (u8, u8, u8),
    adts: bool,
    mpeg1: bool,
    mono: bool,
}

fn mpeg_frame(h: &[u8]) -> Option<Frame> {
    if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (h[1] >> 3) & 3;
    let layer = (h[1] >> 1) & 3;
    if layer == 0 {
        // Layer bits 00 with the MPEG-4/2 ID: an ADTS header (seven bytes).
        if h[1] & 0xf6 != 0xf0 {
            return None;
        }
        let sr = (h[2] >> 2) & 0xf;
        let len = (u64::from(h[3] & 3) << 11) | (u64::from(h[4]) << 3) | u64::from(h[5] >> 5);
        if sr >= 13 || len < 7 {
            return None;
        }
        return Some(Frame {
            len,
            kind: (h[2] >> 6, sr, 0xff),
            adts: true,
            mpeg1: false,
            mono: false,
        });
    }
    let br_idx = usize::from(h[2] >> 4);
    let sr_idx = usize::from((h[2] >> 2) & 3);
    if version == 1 || br_idx == 0 || br_idx == 15 || sr_idx == 3 || h[3] & 3 == 2 {
        return None;
    }
    const BR: [[u32; 14]; 5] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    const SR: [[u32; 3]; 3] = [
        [11025, 12000, 8000],
        [22050, 24000, 16000],
        [44100, 48000, 32000],
    ];
    let mpeg1 = version == 3;
    let table = match (mpeg1, layer) {
        (true, 3) => 0,
        (true, 2) => 1,
        (true, _) => 2,
        (false, 3) => 3,
        (false, _) => 4,
    };
    let br = u64::from(BR[table][br_idx - 1]) * 1000;
    let sr = u64::from(
        SR[if version == 0 {
            0
        } else {
            usize::from(version) - 1
        }][sr_idx],
    );
    let pad = u64::from((h[2] >> 1) & 1);
    let len = match layer {
        3 => (12 * br / sr + pad) * 4,
        1 if !mpeg1 => 72 * br / sr + pad,
        _ => 144 * br / sr + pad,
    };
    Some(Frame {
        len,
        kind: (version, layer, sr_idx as u8),
        adts: false,
        mpeg1,
        mono: h[3] >> 6 == 3,
    })
}

/// A frame at `at` that two more frames of the same stream follow (or the payload's end
/// comes first): random bytes rarely pass three headers in a row.
fn confirmed(v: &View, at: u64, end: u64) -> R<Option<Frame>> {
    let Some(first) = header_at(v, at, end)? else {
        return Ok(None);
    };
    let mut next = at + first.len;
    for _ in 0..2 {
        if next + 7 > end {
            break;
        }
        match header_at(v, next, end)? {
            Some(f) if f.kind == first.kind => next += f.len,
            _ => return Ok(None),
        }
    }
    Ok(Some(first))
}

fn header_at(v: &View, at: u64, end: u64) -> R<Option<Frame>> {
    if at + 7 > end {
        return Ok(None);
    }
    Ok(v.bytes::<7>(at)?.and_then(|h| mpeg_frame(&h)))
}

fn frames(v: &View, start: u64, end: u64) -> R<Option<Payload>> {
    let stop = end.min(start + SYNC_WINDOW);
    let mut at = start;
    while at < stop {
        // Most bytes are not 0xFF: look at one byte before a whole header.
        if v.bytes::<1>(at)? == Some([0xff])
            && let Some(f) = confirmed(v, at, end)?
        {
            let container = if f.adts {
                Container::Adts
            } else {
                Container::Mpeg
            };
            let mut first = at;
            if !f.adts && info_frame(v, at, f)? {
                first += f.len;
            }
            return Ok(contiguous(container, first, end));
        }
        at += 1;
    }
    Ok(None)
}

/// A Xing/Info (LAME) or VBRI header frame: stream facts, not audio, and rewritten by
/// remuxing tools.
fn info_frame(v: &View, at: u64, f: Frame) -> R<bool> {
    let side = match (f.mpeg1, f.mono) {
        (true, false) => 32,
        (true, true) => 17,
        (false, false) => 17,
        (false, true) => 9,
    };
    if let Some(tag) = v.bytes::<4>(at + 4 + side)?
        && (&tag == b"Xing" || &tag == b"Info")
    {
        return Ok(true);
    }
    v.is(at + 36, b"VBRI")
}

// Formats with a header of their own.

fn flac(v: &View, magic: u64) -> R<Option<Payload>> {
    let mut at = magic + 4;
    for _ in 0..MAX_FLAC_BLOCKS {
        if !in_reach(v.size, at) {
            return Ok(None);
        }
        let Some(h) = v.bytes::<4>(at)? else {
            return Ok(None);
        };
        at += 4 + u64::from(be32(&h) & 0xff_ffff);
        if h[0] & 0x80 != 0 {
            if at >= v.size {
                return Ok(None);
            }
            let end = strip_trailers(v, at, v.size)?;
            return Ok(contiguous(Container::Flac, at, end));
        }
    }
    Ok(None)
}

/// Walk the chunks from `at`, each a `header`-byte header that `decode` turns into
/// `(header length, body size)`, until `want(header, body offset, body size)` finds the
/// payload. `even`: bodies are padded to an even length (RIFF, AIFF).
fn find_chunk(
    v: &View,
    mut at: u64,
    header: usize,
    mut decode: impl FnMut(&[u8]) -> Option<(u64, u64)>,
    mut want: impl FnMut(&[u8], u64, u64) -> R<Option<(u64, u64)>>,
    even: bool,
) -> R<Option<(u64, u64)>> {
    for _ in 0..MAX_CHUNKS {
        if !in_reach(v.size, at) {
            return Ok(None);
        }
        let Some(h) = v.get(at, header)? else {
            return Ok(None);
        };
        let Some((hdr, body)) = decode(&h) else {
            return Ok(None);
        };
        if let Some(found) = want(&h, at + hdr, body)? {
            return Ok(Some(found));
        }
        let pad = u64::from(even) & body;
        at = match at
            .checked_add(hdr)
            .and_then(|a| a.checked_add(body))
            .and_then(|a| a.checked_add(pad))
        {
            Some(a) => a,
            None => return Ok(None),
        };
    }
    Ok(None)
}

fn mp4(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    let mut at = 0u64;
    for _ in 0..MAX_CHUNKS {
        if !in_reach(size, at) {
            return Ok(None);
        }
        let Some(h) = v.bytes::<8>(at)? else {
            return Ok(None);
        };
        let (header, total) = match u64::from(be32(&h)) {
            0 => (8, size - at),
            1 => match v.bytes::<8>(at + 8)? {
                Some(l) if be64(&l) >= 16 => (16, be64(&l)),
                _ => return Ok(None),
            },
            2..=7 => return Ok(None),
            n => (8, n),
        };
        if &h[4..] == b"mdat" {
            let (start, end) = (at + header, at.saturating_add(total).min(size));
            if end > start {
                return Ok(contiguous(Container::Mp4, start, end));
            }
        }
        at = match at.checked_add(total) {
            Some(a) => a,
            None => return Ok(None),
        };
    }
    Ok(None)
}

fn wav(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    let mut ds64_data: Option<u64> = None;
    let found = find_chunk(
        v,
        12,
        8,
        |h| Some((8, u64::from(le32(&h[4..])))),
        |h, body_at, body| {
            if &h[..4] == b"ds64" {
                ds64_data = v.get(body_at + 8, 8)?.map(|b| le64(&b));
            }
            if &h[..4] != b"data" {
                return Ok(None);
            }
            let body = match ds64_data {
                Some(n) if body == 0xffff_ffff => n,
                _ => body,
            };
            Ok(Some((body_at, body_at.saturating_add(body).min(size))))
        },
        true,
    )?;
    Ok(found.and_then(|(s, e)| contiguous(Container::Wav, s, e)))
}

fn aiff(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    let found = find_chunk(
        v,
        12,
        8,
        |h| Some((8, u64::from(be32(&h[4..])))),
        |h, body_at, body| {
            if &h[..4] != b"SSND" {
                return Ok(None);
            }
            // Sample data starts after the offset and block-size fields, plus the offset.
            let Some(o) = v.bytes::<4>(body_at)? else {
                return Ok(None);
            };
            let start = body_at + 8 + u64::from(be32(&o));
            let end = body_at.saturating_add(body).min(size);
            Ok(Some((start, end)))
        },
        true,
    )?;
    Ok(found.and_then(|(s, e)| contiguous(Container::Aiff, s, e)))
}

fn dsf(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    let found = find_chunk(
        v,
        0,
        12,
        |h| le64(&h[4..]).checked_sub(12).map(|b| (12, b)),
        |h, body_at, body| {
            Ok((&h[..4] == b"data").then(|| (body_at, body_at.saturating_add(body).min(size))))
        },
        false,
    )?;
    Ok(found.and_then(|(s, e)| contiguous(Container::Dsf, s, e)))
}

// Ogg.

#[derive(Clone, Copy, Debug)]
struct Page {
    at: u64,
    serial: u32,
    bos: bool,
    segments: u8,
    body_at: u64,
    end: u64,
}

/// A page header at `at` (capture pattern, version 0, lacing within the file).
fn page_at(v: &View, at: u64) -> R<Option<Page>> {
    let Some(h) = v.bytes::<27>(at)? else {
        return Ok(None);
    };
    if &h[..4] != b"OggS" || h[4] != 0 {
        return Ok(None);
    }
    let segments = h[26];
    let Some(lacing) = v.get(at + 27, usize::from(segments))? else {
        return Ok(None);
    };
    let body: u64 = lacing.iter().map(|&b| u64::from(b)).sum();
    let body_at = at + 27 + u64::from(segments);
    if body_at + body > v.size {
        return Ok(None);
    }
    Ok(Some(Page {
        at,
        serial: le32(&h[14..18]),
        bos: h[5] & 2 != 0,
        segments,
        body_at,
        end: body_at + body,
    }))
}

fn crc_ok(v: &View, p: &Page) -> R<bool> {
    let Some(bytes) = v.get(p.at, (p.end - p.at) as usize)? else {
        return Ok(false);
    };
    let stored = le32(&bytes[22..26]);
    let mut crc = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (22..26).contains(&i) { 0 } else { b };
        crc = (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize];
    }
    Ok(crc == stored)
}

/// The Ogg CRC-32: polynomial 0x04c11db7, not reflected.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The first page with a valid checksum starting in `[from, from + MAX_PAGE)`.
fn sync(v: &View, from: u64) -> R<Option<Page>> {
    let stop = from.saturating_add(MAX_PAGE).min(v.size);
    let mut at = from;
    while at < stop {
        // Only an 'O' can start a page: skip to the next one in the bytes held rather
        // than asking the view byte by byte (a profile of the engines found it there).
        // A byte not held is asked for, as before.
        match v.held_from(at) {
            Some(run) => {
                let run = &run[..run.len().min((stop - at) as usize)];
                match run.iter().position(|&b| b == b'O') {
                    Some(i) => at += i as u64,
                    None => {
                        at += run.len() as u64;
                        continue;
                    }
                }
            }
            None => {
                if !v.is(at, b"O")? {
                    at += 1;
                    continue;
                }
            }
        }
        if let Some(p) = page_at(v, at)?
            && crc_ok(v, &p)?
        {
            return Ok(Some(p));
        }
        at += 1;
    }
    Ok(None)
}

/// The page after the one ending at `at`: the header there, else the next page with a
/// valid checksum (a damaged stretch is skipped, as a player would).
fn next_page(v: &View, at: u64) -> R<Option<Page>> {
    match page_at(v, at)? {
        Some(p) => Ok(Some(p)),
        None => sync(v, at + 1),
    }
}

/// How a codec's header packets end.
enum Headers {
    Count(u32),
    /// FLAC-in-Ogg with an unknown count: metadata packets until one flagged last.
    FlacUntilLast,
}

fn ogg_headers(first_packet: &[u8]) -> Option<Headers> {
    let p = first_packet;
    if p.starts_with(b"\x01vorbis") {
        Some(Headers::Count(3))
    } else if p.starts_with(b"OpusHead") {
        Some(Headers::Count(2))
    } else if p.starts_with(b"Speex   ") && p.len() >= 72 {
        Some(Headers::Count(2u32.saturating_add(le32(&p[68..72]))))
    } else if p.starts_with(b"\x7fFLAC") && p.len() >= 14 {
        let n = u16::from_be_bytes([p[7], p[8]]);
        if p[13] & 0x80 != 0 {
            Some(Headers::Count(1))
        } else if n == 0 {
            Some(Headers::FlacUntilLast)
        } else {
            Some(Headers::Count(1 + u32::from(n)))
        }
    } else {
        None
    }
}

/// Audio packet data gathered by a walk, as file ranges. Only the ranges of its first
/// 128 KiB and of its last 64 KiB are kept, whatever the number of pages walked.
#[derive(Default)]
struct Gathered {
    first: Vec<(u64, u64)>,
    last: VecDeque<(u64, u64)>,
    last_bytes: u64,
    bytes: u64,
}

impl Gathered {
    fn push(&mut self, s: u64, e: u64) {
        if e <= s {
            return;
        }
        if self.bytes < 2 * PART {
            let cut = e.min(s + (2 * PART - self.bytes));
            if let Some(l) = self.first.last_mut()
                && l.1 == s
            {
                l.1 = cut;
            } else {
                self.first.push((s, cut));
            }
        }
        self.bytes += e - s;
        if let Some(l) = self.last.back_mut()
            && l.1 == s
        {
            l.1 = e;
        } else {
            self.last.push_back((s, e));
        }
        self.last_bytes += e - s;
        while let Some(&(fs, fe)) = self.last.front()
            && self.last_bytes - (fe - fs) >= PART
        {
            self.last_bytes -= fe - fs;
            self.last.pop_front();
        }
    }

    fn start(&self) -> Option<u64> {
        self.first.first().map(|p| p.0)
    }

    fn end(&self) -> Option<u64> {
        self.last.back().map(|p| p.1)
    }

    /// The first `n` bytes (`n` at most 128 KiB).
    fn head(&self, n: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut left = n;
        for &(s, e) in &self.first {
            if left == 0 {
                break;
            }
            let take = (e - s).min(left);
            out.push((s, s + take));
            left -= take;
        }
        out
    }

    /// The last `n` bytes (`n` at most 64 KiB).
    fn tail(&self, n: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut left = n;
        for &(s, e) in self.last.iter().rev() {
            if left == 0 {
                break;
            }
            let take = (e - s).min(left);
            out.push((e - take, e));
            left -= take;
        }
        out.reverse();
        out
    }

    /// What the hash covers when this is the whole payload.
    fn pieces(&self) -> Vec<(u64, u64)> {
        if self.bytes < 2 * PART {
            self.first.clone()
        } else {
            let mut p = self.head(PART);
            p.extend(self.tail(PART));
            p
        }
    }
}

/// Where a front walk stopped.
struct Front {
    serial: u32,
    audio: Gathered,
    /// End of the last page walked; `None` when the walk reached the end of the stream.
    stopped_at: Option<u64>,
}

/// Walk from the first page: find the first logical stream, skip its header packets, and
/// gather its audio packet data until `want` bytes (or the end).
fn ogg_front(v: &View, want: u64) -> R<Option<Front>> {
    let reach = budget::DEFAULT_MAX_TAG_BYTES.saturating_add(2 * CHUNK);
    let Some(first) = page_at(v, 0)? else {
        return Ok(None);
    };
    if !first.bos {
        return Ok(None);
    }
    let lead = v
        .get(first.body_at, (first.end - first.body_at).min(80) as usize)?
        .map(|b| b.into_owned())
        .unwrap_or_default();
    let Some(mut headers) = ogg_headers(&lead) else {
        return Ok(None);
    };
    let serial = first.serial;
    let mut audio = Gathered::default();
    let mut page = Some(first);
    let mut packet_start = true;
    for _ in 0..MAX_PAGES {
        let Some(p) = page else {
            return Ok(Some(Front {
                serial,
                audio,
                stopped_at: None,
            }));
        };
        let in_headers = !matches!(headers, Headers::Count(0));
        if in_headers && p.at > reach {
            return Ok(None);
        }
        // Header packets (a comment with cover art spans many pages) are walked page by
        // page: ask for reads that grow with the distance covered. Audio is read up to
        // what is still wanted, with room for the page headers.
        let ask = if !in_headers {
            let left = want - audio.bytes;
            left.saturating_add(left / 16 + 4096).min(4 << 20)
        } else {
            p.at.clamp(AHEAD, 4 << 20)
        };
        let grow = |m: Miss| m.ahead(ask);
        if p.serial == serial {
            let lacing = v
                .get(p.at + 27, usize::from(p.segments))
                .map_err(grow)?
                .map(|b| b.into_owned())
                .unwrap_or_default();
            let mut at = p.body_at;
            for &l in &lacing {
                let seg_end = at + u64::from(l);
                let in_header = match headers {
                    Headers::Count(0) => false,
                    Headers::Count(_) => true,
                    Headers::FlacUntilLast => true,
                };
                if in_header {
                    if seg_end > reach {
                        return Ok(None);
                    }
                    if packet_start
                        && matches!(headers, Headers::FlacUntilLast)
                        && let Some([b]) = v.bytes::<1>(at).map_err(grow)?
                        && b & 0x80 != 0
                    {
                        // This metadata packet is the last header.
                        headers = Headers::Count(1);
                    }
                    if l < 255 {
                        if let Headers::Count(n) = &mut headers {
                            *n -= 1;
                        }
                        packet_start = true;
                    } else {
                        packet_start = false;
                    }
                } else {
                    audio.push(at, seg_end);
                }
                at = seg_end;
            }
            if audio.bytes >= want {
                return Ok(Some(Front {
                    serial,
                    audio,
                    stopped_at: Some(p.end),
                }));
            }
        }
        page = next_page(v, p.end).map_err(grow)?;
    }
    Ok(None)
}

/// The stream's audio data from the first page with a valid checksum at or after `from`
/// to the end of the file.
fn ogg_back(v: &View, from: u64, serial: u32) -> R<Option<Gathered>> {
    let Some(mut p) = sync(v, from)? else {
        return Ok(None);
    };
    let mut audio = Gathered::default();
    for _ in 0..MAX_PAGES {
        if p.serial == serial {
            audio.push(p.body_at, p.end);
        }
        match next_page(v, p.end)? {
            Some(n) => p = n,
            None => return Ok(Some(audio)),
        }
    }
    Ok(None)
}

fn ogg(v: &View) -> R<Option<Payload>> {
    let size = v.size;
    let Some(front) = ogg_front(v, PART)? else {
        return Ok(None);
    };
    let whole = |front: Front| -> Option<Payload> {
        let a = &front.audio;
        Some(Payload {
            container: Container::Ogg,
            start: a.start()?,
            end: a.end()?,
            len: Some(a.bytes),
            pieces: a.pieces(),
        })
    };
    let Some(front_end) = front.stopped_at else {
        return Ok(whole(front));
    };
    // From the end: a window that holds 64 KiB of packet data plus the page headers
    // around it, doubled until it does. Once it reaches back to where the front walk
    // stopped, the two would overlap: walk the whole stream from the front instead.
    let mut back = PART + PART / 4;
    loop {
        let from = size.saturating_sub(back);
        if from <= front_end || back > budget::DEFAULT_MAX_TAG_BYTES {
            if from > front_end {
                return Ok(None);
            }
            let Some(all) = ogg_front(v, u64::MAX)? else {
                return Ok(None);
            };
            return Ok(whole(all));
        }
        if let Some(tail) = ogg_back(v, from, front.serial)?
            && tail.bytes >= PART
        {
            let mut pieces = front.audio.head(PART);
            let (Some(start), Some(end)) = (front.audio.start(), tail.end()) else {
                return Ok(None);
            };
            pieces.extend(tail.tail(PART));
            return Ok(Some(Payload {
                container: Container::Ogg,
                start,
                end,
                len: None,
                pieces,
            }));
        }
        back *= 2;
    }
}

#[cfg(test)]
mod tests;
