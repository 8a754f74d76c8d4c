//! A view of a file that holds only some of its bytes (the head and tail the engines read
//! anyway, plus whatever was fetched later), so lofty can parse from memory.
//!
//! The view reports the file's true length. A read that lands in a range it does not hold
//! fails, and the range is written down in [`Misses`], which the caller owns: the engine
//! fetches those bytes and parses again. A gap is never served as zeros: lofty would then
//! crawl through the zeros or, worse, return a corrupt picture without any error.

use std::cell::RefCell;
use std::io;
use std::path::Path;

use super::budget::{self, Budgeted, Limits, Source};
use super::fast;
use super::tags::{self, Parsed};

/// Byte ranges `[start, end)` a parse asked for and the view did not hold.
#[derive(Debug, Default)]
pub struct Misses(RefCell<Vec<(u64, u64)>>);

impl Misses {
    pub fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.0.borrow_mut())
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    fn record(&self, start: u64, end: u64) {
        self.0.borrow_mut().push((start, end));
    }
}

/// Bytes of a file starting at `offset`.
#[derive(Clone, Debug)]
pub struct Segment {
    pub offset: u64,
    pub data: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// The bytes held, as a [`Source`] for the budgeted reader lofty gets.
pub struct SparseView<'a> {
    segments: &'a [Segment],
    misses: &'a Misses,
    /// The segment that served the last read: lofty reads on from where it was, often a
    /// byte at a time (an MP3 frame-sync search), and this makes each such read a copy.
    last: usize,
}

impl<'a> SparseView<'a> {
    /// `segments` must be sorted by offset; they may overlap.
    pub fn new(segments: &'a [Segment], misses: &'a Misses) -> SparseView<'a> {
        debug_assert!(segments.windows(2).all(|w| w[0].offset <= w[1].offset));
        SparseView {
            segments,
            misses,
            last: 0,
        }
    }
}

impl Source for SparseView<'_> {
    fn fill(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if let Some(s) = self.segments.get(self.last)
            && s.offset <= offset
            && end <= s.end()
        {
            let from = (offset - s.offset) as usize;
            buf.copy_from_slice(&s.data[from..from + buf.len()]);
            return Ok(());
        }
        let mut pos = offset;
        while pos < end {
            // The segment reaching furthest past `pos` serves the most bytes at once.
            let best = self
                .segments
                .iter()
                .enumerate()
                .filter(|(_, s)| s.offset <= pos && pos < s.end())
                .max_by_key(|(_, s)| s.end());
            let Some((i, s)) = best else {
                self.misses.record(pos, end);
                return Err(io::Error::other(format!("bytes {pos}..{end} not loaded")));
            };
            let n = (end.min(s.end()) - pos) as usize;
            let from = (pos - s.offset) as usize;
            let at = (pos - offset) as usize;
            buf[at..at + n].copy_from_slice(&s.data[from..from + n]);
            pos += n as u64;
            self.last = i;
        }
        Ok(())
    }
}

/// Rounds of fetching before the parse reads from the file instead ([`Attempt::Stream`]).
pub const MAX_ROUNDS: u32 = 6;
/// Below this size, any miss loads the whole file: one read beats several rounds.
pub const WHOLE_FILE_BELOW: u64 = 1 << 20;
/// Most bytes beyond the head and tail one file may hold in memory; a parse that needs
/// more reads them from the file through a small window instead. With the budget this is
/// what bounds memory per file in flight, whatever the file claims.
pub const FETCH_CAP: u64 = 8 << 20;
/// Bytes fetched past a miss in the first round; doubled every round, since lofty often
/// reads a picture's header before the picture itself.
// Small on purpose: after a large tag the parser wants a few frame headers, not the audio;
// a large readahead there was the bulk of the bytes copied for nothing.
const READAHEAD: u64 = 16 * 1024;

/// What one file may still fetch into memory, given what it holds beyond head and tail.
pub fn allowance(len: u64, segments: &[Segment], limits: Limits) -> u64 {
    let held: u64 = segments
        .iter()
        .map(|s| budget::costs_beyond_first(len, s.offset, s.end()))
        .sum();
    // Fetching more than the parse may read is waste: the budget, plus room for the
    // readahead, caps it below FETCH_CAP when the budget is small.
    let cap = FETCH_CAP.min(limits.max_tag_bytes.saturating_mul(2) + WHOLE_FILE_BELOW);
    cap.saturating_sub(held)
}

/// Ranges `(offset, len)` to read so that the next parse gets past `misses`: each miss is
/// widened by a readahead that grows with `round` (less where `allowance` runs out),
/// clipped to the bytes not yet held, and merged; for small files, every byte not held.
/// `None` when the misses alone need more than `allowance`.
pub fn plan_fetch(
    len: u64,
    segments: &[Segment],
    misses: &[(u64, u64)],
    round: u32,
    allowance: u64,
) -> Option<Vec<(u64, usize)>> {
    let gaps = gaps(len, segments);
    if len < WHOLE_FILE_BELOW {
        let plan = clip_merge(&gaps, &gaps);
        return (total(&plan) <= allowance.max(WHOLE_FILE_BELOW)).then_some(plan);
    }
    // Fourfold per round: a long Ogg comment packet (base64 cover art over many pages)
    // is reached in a few rounds, yet a frame header costs only 16 KiB.
    let mut ahead = READAHEAD << (2 * round.min(MAX_ROUNDS));
    loop {
        let wanted: Vec<(u64, u64)> = misses
            .iter()
            .map(|&(s, e)| (s, e.max(s.saturating_add(ahead)).min(len)))
            .collect();
        let plan = clip_merge(&wanted, &gaps);
        if total(&plan) <= allowance {
            return Some(plan);
        }
        if ahead == 0 {
            return None;
        }
        ahead /= 4;
        if ahead < 4096 {
            ahead = 0;
        }
    }
}

fn total(plan: &[(u64, usize)]) -> u64 {
    plan.iter().map(|&(_, n)| n as u64).sum()
}

/// `wanted` ranges intersected with `gaps`, sorted and merged, as `(offset, len)`.
fn clip_merge(wanted: &[(u64, u64)], gaps: &[(u64, u64)]) -> Vec<(u64, usize)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(ws, we) in wanted {
        for &(gs, ge) in gaps {
            let (s, e) = (ws.max(gs), we.min(ge));
            if s < e {
                out.push((s, e));
            }
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .map(|(s, e)| (s, (e - s) as usize))
        .collect()
}

/// The ranges of `[0, len)` no segment covers.
fn gaps(len: u64, segments: &[Segment]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut covered = 0u64;
    for s in segments {
        if s.offset > covered {
            out.push((covered, s.offset.min(len)));
        }
        covered = covered.max(s.end());
        if covered >= len {
            break;
        }
    }
    if covered < len {
        out.push((covered, len));
    }
    out.retain(|&(s, e)| s < e);
    out
}

/// Insert fetched bytes keeping the segments sorted.
pub fn add_segment(segments: &mut Vec<Segment>, seg: Segment) {
    let at = segments.partition_point(|s| s.offset <= seg.offset);
    segments.insert(at, seg);
}

/// One parse attempt over the bytes held so far.
pub enum Attempt {
    Parsed(Result<Parsed, String>),
    /// The parse touched bytes not held: fetch these `(offset, len)` ranges and try again.
    Fetch(Vec<(u64, usize)>),
    /// The parse needs more than one file may hold in memory, or too many rounds: parse
    /// from the file itself ([`super::budget::FileView`]) with the segments held. The
    /// result is the same; only where the bytes come from differs.
    Stream,
}

/// Parse from `segments`; whatever the outcome, if the parser asked for bytes the view
/// lacks, the result is not trusted (lofty may have skipped over the error) and the
/// missing ranges are returned instead.
pub fn attempt(len: u64, segments: &[Segment], path: &Path, round: u32, limits: Limits) -> Attempt {
    if round == 0
        && let Some(plan) = id3v2_remainder(len, segments, limits)
    {
        return Attempt::Fetch(plan);
    }
    if let Some(info) = fast::read(&fast::Held::new(len, segments), path, limits) {
        return Attempt::Parsed(Ok(Parsed { info, error: None }));
    }
    let misses = Misses::default();
    let mut reader = Budgeted::new(SparseView::new(segments, &misses), len, limits);
    let result = tags::parse_partial(&mut reader, path, &|| !misses.is_empty());
    let missed = misses.take();
    if missed.is_empty() {
        return Attempt::Parsed(result);
    }
    if round >= MAX_ROUNDS {
        return Attempt::Stream;
    }
    match plan_fetch(
        len,
        segments,
        &missed,
        round,
        allowance(len, segments, limits),
    ) {
        // Everything is held and still a miss: cannot happen with a correct view, but a
        // loop here must end.
        Some(plan) if plan.is_empty() => Attempt::Parsed(result),
        Some(plan) => Attempt::Fetch(plan),
        None => Attempt::Stream,
    }
}

/// An ID3v2 tag at the start states its own size, and lofty reads it whole: when it
/// runs past the head (cover art, mostly), fetch the rest, and a little of the audio
/// after it, before the first parse rather than after a parse that fails. A size that
/// runs past the end of the file, or past what a parse may read or a file may hold, is
/// not fetched on trust: the parse then asks for what it really reads.
fn id3v2_remainder(len: u64, segments: &[Segment], limits: Limits) -> Option<Vec<(u64, usize)>> {
    let head = segments.first().filter(|s| s.offset == 0)?;
    let h = head.data.get(..10)?;
    if &h[..3] != b"ID3" || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = h[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    let tag_end = 10 + size + footer;
    if tag_end > len || size > limits.max_tag_bytes {
        return None;
    }
    let end = (tag_end + READAHEAD).min(len);
    let held = head.end();
    if end <= held {
        return None;
    }
    let plan = plan_fetch(
        len,
        segments,
        &[(held, end)],
        0,
        allowance(len, segments, limits),
    )?;
    (!plan.is_empty()).then_some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Limits = Limits {
        max_tag_bytes: budget::DEFAULT_MAX_TAG_BYTES,
    };

    fn seg(offset: u64, data: &[u8]) -> Segment {
        Segment {
            offset,
            data: data.to_vec(),
        }
    }

    fn fill(v: &mut SparseView, off: u64, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        v.fill(off, &mut buf).map(|_| buf)
    }

    #[test]
    fn serves_held_bytes_and_reports_the_gap() {
        let segs = [seg(0, b"head"), seg(10, b"tail")];
        let misses = Misses::default();
        let mut v = SparseView::new(&segs, &misses);
        assert_eq!(fill(&mut v, 0, 4).unwrap(), b"head");
        let err = fill(&mut v, 2, 8).unwrap_err();
        assert!(err.to_string().contains("not loaded"));
        assert_eq!(misses.take(), vec![(4, 10)]);
        assert_eq!(fill(&mut v, 11, 3).unwrap(), b"ail");
        assert!(misses.take().is_empty());
    }

    #[test]
    fn never_returns_zeros_for_a_gap() {
        let segs = [seg(0, &[1; 4]), seg(8, &[2; 4])];
        let misses = Misses::default();
        let mut v = SparseView::new(&segs, &misses);
        assert!(fill(&mut v, 0, 12).is_err());
        assert_eq!(misses.take(), vec![(4, 12)]);
    }

    #[test]
    fn overlapping_segments_serve_the_longest_run() {
        let segs = [seg(0, &[1; 4]), seg(2, &[2; 6])];
        let misses = Misses::default();
        let mut v = SparseView::new(&segs, &misses);
        assert_eq!(fill(&mut v, 3, 5).unwrap(), [2; 5]);
        assert_eq!(fill(&mut v, 1, 6).unwrap(), [1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn plans_grow_within_the_allowance() {
        let len = 10 << 20;
        let all = u64::MAX;
        let segs = [seg(0, &[0; 100]), seg(len - 100, &[0; 100])];
        let p = plan_fetch(len, &segs, &[(200, 210)], 0, all);
        assert_eq!(p, Some(vec![(200, READAHEAD as usize)]));
        let p = plan_fetch(len, &segs, &[(200, 210)], 2, all);
        assert_eq!(p, Some(vec![(200, (READAHEAD << 4) as usize)]));
        // Clipped to the gap and merged.
        let p = plan_fetch(
            len,
            &segs,
            &[(len - 150, len - 50), (len - 140, len - 120)],
            0,
            all,
        );
        assert_eq!(p, Some(vec![(len - 150, 50)]));
        // Never the rest of the file: the readahead shrinks to fit the allowance, and
        // misses that do not fit are refused.
        let p = plan_fetch(len, &segs, &[(200, 210)], MAX_ROUNDS, 5000);
        assert_eq!(p, Some(vec![(200, 4096)]));
        let p = plan_fetch(len, &segs, &[(200, 210)], 0, 100);
        assert_eq!(p, Some(vec![(200, 10)]));
        assert_eq!(plan_fetch(len, &segs, &[(200, 300_000)], 0, 5000), None);
        // A small file is read whole at the first miss.
        let segs = [seg(0, &[0; 100])];
        assert_eq!(
            plan_fetch(5000, &segs, &[(300, 301)], 0, 0),
            Some(vec![(100, 4900)])
        );
        assert_eq!(plan_fetch(100, &segs, &[(50, 60)], 0, 0), Some(vec![]));
    }

    #[test]
    fn what_a_file_holds_beyond_head_and_tail_is_bounded() {
        let len = 100 << 20;
        let chunk = crate::media::hash::CHUNK;
        let segs = [
            seg(0, &vec![0; chunk as usize]),
            seg(len - chunk, &vec![0; chunk as usize]),
        ];
        assert_eq!(allowance(len, &segs, D), FETCH_CAP);
        let mut segs = segs.to_vec();
        add_segment(&mut segs, seg(1 << 20, &vec![0; 1 << 20]));
        assert_eq!(allowance(len, &segs, D), FETCH_CAP - (1 << 20));
    }

    #[test]
    fn an_id3v2_tag_past_the_head_is_fetched_before_parsing() {
        let len = 8 << 20;
        // Tag of 300_000 bytes (synchsafe 0x00 0x12 0x27 0x60), no footer.
        let mut head = b"ID3\x04\x00\x00\x00\x12\x27\x60".to_vec();
        head.resize(65536, 0);
        let segs = [seg(0, &head), seg(len - 65536, &[0; 65536])];
        let tag_end = 10 + 300_000;
        assert_eq!(
            id3v2_remainder(len, &segs, D),
            Some(vec![(65536, (tag_end + READAHEAD - 65536) as usize)])
        );
        // A tag within the head, or no tag, needs nothing.
        let mut small = b"ID3\x04\x00\x00\x00\x00\x01\x00".to_vec();
        small.resize(65536, 0);
        assert_eq!(id3v2_remainder(len, &[seg(0, &small)], D), None);
        assert_eq!(id3v2_remainder(len, &[seg(0, &[0xff; 64])], D), None);
        // A declared size past the end of the file, or past the budget, is not trusted.
        assert_eq!(id3v2_remainder(200_000, &segs[..1], D), None);
        let mut huge = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec();
        huge.resize(65536, 0);
        assert_eq!(id3v2_remainder(1 << 30, &[seg(0, &huge)], D), None);
        // A size byte with the high bit set is not a synchsafe size: no guess.
        let mut bad = b"ID3\x04\x00\x00\x80\x12\x27\x60".to_vec();
        bad.resize(100, 0);
        assert_eq!(id3v2_remainder(len, &[seg(0, &bad)], D), None);
    }

    #[test]
    fn segments_stay_sorted() {
        let mut v = vec![seg(0, b"a"), seg(100, b"b")];
        add_segment(&mut v, seg(50, b"c"));
        add_segment(&mut v, seg(200, b"d"));
        let offs: Vec<u64> = v.iter().map(|s| s.offset).collect();
        assert_eq!(offs, vec![0, 50, 100, 200]);
    }
}
