//! A `Read + Seek` view of a file that holds only some of its bytes (the head and tail the
//! engines read anyway, plus whatever was fetched later), so lofty can parse from memory.
//!
//! The view reports the file's true length. A read that lands in a range it does not hold
//! fails, and the range is written down in [`Misses`], which the caller owns: the engine
//! fetches those bytes and parses again. A gap is never served as zeros: lofty would then
//! crawl through the zeros or, worse, return a corrupt picture without any error.

use std::cell::RefCell;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

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
#[derive(Debug)]
pub struct Segment {
    pub offset: u64,
    pub data: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

pub struct SparseReader<'a> {
    len: u64,
    pos: u64,
    segments: &'a [Segment],
    misses: &'a Misses,
}

impl<'a> SparseReader<'a> {
    /// `segments` must be sorted by offset; they may overlap.
    pub fn new(len: u64, segments: &'a [Segment], misses: &'a Misses) -> SparseReader<'a> {
        debug_assert!(segments.windows(2).all(|w| w[0].offset <= w[1].offset));
        SparseReader {
            len,
            pos: 0,
            segments,
            misses,
        }
    }
}

impl Read for SparseReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        // The segment reaching furthest past `pos` serves the most bytes in one call.
        let best = self
            .segments
            .iter()
            .filter(|s| s.offset <= self.pos && self.pos < s.end())
            .max_by_key(|s| s.end());
        match best {
            Some(s) => {
                let from = (self.pos - s.offset) as usize;
                let n = buf.len().min(s.data.len() - from);
                buf[..n].copy_from_slice(&s.data[from..from + n]);
                self.pos += n as u64;
                Ok(n)
            }
            None => {
                let end = (self.pos + buf.len() as u64).min(self.len);
                self.misses.record(self.pos, end);
                Err(io::Error::other(format!(
                    "bytes {}..{} not loaded",
                    self.pos, end
                )))
            }
        }
    }
}

impl Seek for SparseReader<'_> {
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
            // What lseek says, so an error row reads as the reference engine's does.
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// Rounds of fetching before the whole file is read instead.
pub const MAX_ROUNDS: u32 = 6;
/// Below this size, any miss loads the whole file: one read beats several rounds.
pub const WHOLE_FILE_BELOW: u64 = 1 << 20;
/// Bytes fetched past a miss in the first round; doubled every round, since lofty often
/// reads a picture's header before the picture itself.
// Small on purpose: after a large tag the parser wants a few frame headers, not the audio;
// a large readahead there was the bulk of the bytes copied for nothing.
const READAHEAD: u64 = 16 * 1024;

/// Ranges `(offset, len)` to read so that the next parse gets past `misses`: each miss is
/// widened by a readahead that grows with `round`, clipped to the bytes not yet held, and
/// merged. From round [`MAX_ROUNDS`] on (or for small files) it is every byte not held.
pub fn plan_fetch(
    len: u64,
    segments: &[Segment],
    misses: &[(u64, u64)],
    round: u32,
) -> Vec<(u64, usize)> {
    let gaps = gaps(len, segments);
    let wanted: Vec<(u64, u64)> = if round >= MAX_ROUNDS || len < WHOLE_FILE_BELOW {
        gaps.clone()
    } else {
        // Fourfold per round: a long Ogg comment packet (base64 cover art over many
        // pages) is reached in a few rounds, yet a frame header costs only 16 KiB.
        let ahead = READAHEAD << (2 * round);
        misses
            .iter()
            .map(|&(s, e)| (s, e.max(s.saturating_add(ahead)).min(len)))
            .collect()
    };
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (ws, we) in wanted {
        for &(gs, ge) in &gaps {
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
}

/// Parse from `segments`; whatever the outcome, if the parser asked for bytes the view
/// lacks, the result is not trusted (lofty may have skipped over the error) and the
/// missing ranges are returned instead.
pub fn attempt(len: u64, segments: &[Segment], path: &Path, round: u32) -> Attempt {
    if round == 0
        && let Some(plan) = id3v2_remainder(len, segments)
    {
        return Attempt::Fetch(plan);
    }
    let misses = Misses::default();
    let result = tags::parse_partial(
        &mut SparseReader::new(len, segments, &misses),
        path,
        &|| !misses.is_empty(),
    );
    let missed = misses.take();
    if missed.is_empty() {
        return Attempt::Parsed(result);
    }
    let plan = plan_fetch(len, segments, &missed, round);
    if plan.is_empty() {
        // Everything is held and still a miss: cannot happen with a correct view, but a
        // loop here must end.
        Attempt::Parsed(result)
    } else {
        Attempt::Fetch(plan)
    }
}

/// An ID3v2 tag at the start states its own size, and lofty reads it whole: when it
/// runs past the head (cover art, mostly), fetch the rest, and a little of the audio
/// after it, before the first parse rather than after a parse that fails.
fn id3v2_remainder(len: u64, segments: &[Segment]) -> Option<Vec<(u64, usize)>> {
    let head = segments.first().filter(|s| s.offset == 0)?;
    let h = head.data.get(..10)?;
    if &h[..3] != b"ID3" || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = h[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    let end = (10 + size + footer + READAHEAD).min(len);
    let held = head.end();
    if end <= held {
        return None;
    }
    let plan = plan_fetch(len, segments, &[(held, end)], 0);
    (!plan.is_empty()).then_some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(offset: u64, data: &[u8]) -> Segment {
        Segment {
            offset,
            data: data.to_vec(),
        }
    }

    #[test]
    fn serves_held_bytes_and_reports_the_gap() {
        let segs = [seg(0, b"head"), seg(10, b"tail")];
        let misses = Misses::default();
        let mut r = SparseReader::new(14, &segs, &misses);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"head");
        let err = r.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("not loaded"));
        assert_eq!(misses.take(), vec![(4, 12)]);
        assert_eq!(r.seek(SeekFrom::End(-4)).unwrap(), 10);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"tail");
        assert!(misses.take().is_empty());
        assert!(r.seek(SeekFrom::Current(-100)).is_err());
        assert_eq!(r.seek(SeekFrom::Start(100)).unwrap(), 100);
        assert_eq!(
            r.read(&mut buf).unwrap(),
            0,
            "past the end is EOF, not a miss"
        );
    }

    #[test]
    fn never_returns_zeros_for_a_gap() {
        let segs = [seg(0, &[1; 4]), seg(8, &[2; 4])];
        let misses = Misses::default();
        let mut r = SparseReader::new(12, &segs, &misses);
        let mut buf = [9u8; 12];
        assert!(r.read_exact(&mut buf).is_err());
        assert!(!misses.take().is_empty());
    }

    #[test]
    fn overlapping_segments_serve_the_longest_run() {
        let segs = [seg(0, &[1; 4]), seg(2, &[2; 6])];
        let misses = Misses::default();
        let mut r = SparseReader::new(8, &segs, &misses);
        r.seek(SeekFrom::Start(3)).unwrap();
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [2; 5]);
    }

    #[test]
    fn plans_grow_then_take_everything() {
        let len = 10 << 20;
        let segs = [seg(0, &[0; 100]), seg(len - 100, &[0; 100])];
        let p = plan_fetch(len, &segs, &[(200, 210)], 0);
        assert_eq!(p, vec![(200, READAHEAD as usize)]);
        let p = plan_fetch(len, &segs, &[(200, 210)], 2);
        assert_eq!(p, vec![(200, (READAHEAD << 4) as usize)]);
        // Clipped to the gap and merged.
        let p = plan_fetch(
            len,
            &segs,
            &[(len - 150, len - 50), (len - 140, len - 120)],
            0,
        );
        assert_eq!(p, vec![(len - 150, 50)]);
        let p = plan_fetch(len, &segs, &[(200, 210)], MAX_ROUNDS);
        assert_eq!(p, vec![(100, (len - 200) as usize)]);
        // A small file is read whole at the first miss.
        let segs = [seg(0, &[0; 100])];
        assert_eq!(plan_fetch(5000, &segs, &[(300, 301)], 0), vec![(100, 4900)]);
        assert!(plan_fetch(100, &segs, &[(50, 60)], 0).is_empty());
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
            id3v2_remainder(len, &segs),
            Some(vec![(65536, (tag_end + READAHEAD - 65536) as usize)])
        );
        // A tag within the head, or no tag, needs nothing.
        let mut small = b"ID3\x04\x00\x00\x00\x00\x01\x00".to_vec();
        small.resize(65536, 0);
        assert_eq!(id3v2_remainder(len, &[seg(0, &small)]), None);
        assert_eq!(id3v2_remainder(len, &[seg(0, &[0xff; 64])]), None);
        // A size byte with the high bit set is not a synchsafe size: no guess.
        let mut bad = b"ID3\x04\x00\x00\x80\x12\x27\x60".to_vec();
        bad.resize(100, 0);
        assert_eq!(id3v2_remainder(len, &[seg(0, &bad)]), None);
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
