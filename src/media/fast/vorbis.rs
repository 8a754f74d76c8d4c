//! Vorbis comments (shared with FLAC) and Ogg Vorbis / Opus streams, read the way lofty
//! 0.25 reads them (`ogg/tag/read.rs`, `ogg/read.rs`, `ogg_pager`, `ogg/{vorbis,opus}/
//! properties.rs`), down to its quirks: no CRC check, packets reassembled from lacing
//! values alone, the last page found by a backward search for `OggS`.

use std::time::Duration;

use super::{Held, clean_text, year_of};
use crate::media::budget::{self, Limits};
use crate::media::tags::TagInfo;

/// Bytes a parse reads beyond head and tail, counted as `budget::Budgeted` counts them:
/// lofty would stop with the budget's error past `limits.max_tag_bytes`, so the caller
/// declines then.
pub(super) struct Cost {
    len: u64,
    used: u64,
}

impl Cost {
    pub(super) fn new(len: u64) -> Cost {
        Cost { len, used: 0 }
    }

    /// lofty reads `[start, end)` (clipped to the file, as `Budgeted` answers short).
    pub(super) fn add(&mut self, start: u64, end: u64) {
        let end = end.min(self.len);
        if start < end {
            self.used += budget::costs_beyond_first(self.len, start, end);
        }
    }

    pub(super) fn within(&self, limits: Limits) -> bool {
        self.used <= limits.max_tag_bytes
    }
}

/// The comments musicdex keeps, each the first of its `ItemKey` in lofty's generic `Tag`
/// (borrowed from the packet), and the track number as lofty leaves it.
#[derive(Default)]
pub(super) struct Fields<'a> {
    artist: Option<&'a str>,
    title: Option<&'a str>,
    album: Option<&'a str>,
    album_artist: Option<&'a str>,
    genre: Option<&'a str>,
    /// `DATE` (lofty's `RecordingDate`).
    date: Option<&'a str>,
    year: Option<&'a str>,
    release_date: Option<&'a str>,
    /// `ORIGINALDATE` or `ORIGINALYEAR`, whichever comes first.
    original_date: Option<&'a str>,
    track: Option<u32>,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Take `n` bytes off the front of `data`.
fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (a, b) = data.split_at(n);
    *data = b;
    Some(a)
}

/// One comment as lofty's reader sorts it (values UTF-8, trailing NULs dropped).
enum Comment<'a> {
    Track(&'a str),
    Disc(&'a str),
    Item(&'a [u8], &'a str),
}

/// Walk a comment block (vendor, count, `KEY=value` fields) as lofty's strict
/// `read_comments` does, handing each kept comment to `visit`. `None` where lofty fails
/// (lengths past the block, a vendor or value that is not UTF-8, a key with a byte outside
/// 0x20..=0x7D) or where `visit` gives up.
fn each_comment<'a>(
    mut data: &'a [u8],
    mut visit: impl FnMut(Comment<'a>) -> Option<()>,
) -> Option<()> {
    // lofty's running length: decreased by the strings, not by their length fields.
    let mut len = data.len() as u64;
    let vendor_len = le32(take(&mut data, 4)?);
    if u64::from(vendor_len) > len {
        return None;
    }
    std::str::from_utf8(take(&mut data, vendor_len as usize)?).ok()?;
    len -= u64::from(vendor_len);
    let count = le32(take(&mut data, 4)?);
    if count > (len >> 2) as u32 {
        return None;
    }
    for _ in 0..count {
        let n = le32(take(&mut data, 4)?);
        if u64::from(n) > len {
            return None;
        }
        let comment = take(&mut data, n as usize)?;
        len -= u64::from(n);
        let Some(eq) = comment.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&comment[..eq], &comment[eq + 1..]);
        // Pictures are not read (`read_cover_art(false)`): skipped unchecked.
        if key.eq_ignore_ascii_case(b"METADATA_BLOCK_PICTURE")
            || key.eq_ignore_ascii_case(b"COVERART")
        {
            continue;
        }
        let track = key.eq_ignore_ascii_case(b"TRACKNUMBER");
        let disc = key.eq_ignore_ascii_case(b"DISCNUMBER");
        if !track && !disc && !key.iter().all(|&c| (b' '..=b'}').contains(&c)) {
            return None;
        }
        let value = std::str::from_utf8(value).ok()?.trim_end_matches('\0');
        visit(if track {
            Comment::Track(value)
        } else if disc {
            Comment::Disc(value)
        } else {
            Comment::Item(key, value)
        })?;
    }
    Some(())
}

/// "3/12" → (3, 12) as lofty splits a track or disc number; a part that is not a
/// number is `None`.
fn number_pair(value: &str) -> (Option<u32>, Option<u32>) {
    let mut parts = value.splitn(2, '/');
    let current = parts.next().and_then(|c| c.parse().ok());
    (current, parts.next().and_then(|c| c.parse().ok()))
}

impl<'a> Fields<'a> {
    /// The field a comment key maps to (`ItemKey::from_key`, case-insensitive).
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<&'a str>> {
        Some(match key.len() {
            4 if key.eq_ignore_ascii_case(b"DATE") => &mut self.date,
            4 if key.eq_ignore_ascii_case(b"YEAR") => &mut self.year,
            5 if key.eq_ignore_ascii_case(b"TITLE") => &mut self.title,
            5 if key.eq_ignore_ascii_case(b"ALBUM") => &mut self.album,
            5 if key.eq_ignore_ascii_case(b"GENRE") => &mut self.genre,
            6 if key.eq_ignore_ascii_case(b"ARTIST") => &mut self.artist,
            11 if key.eq_ignore_ascii_case(b"ALBUMARTIST") => &mut self.album_artist,
            11 if key.eq_ignore_ascii_case(b"RELEASEDATE") => &mut self.release_date,
            12 if key.eq_ignore_ascii_case(b"ALBUM ARTIST") => &mut self.album_artist,
            12 if key.eq_ignore_ascii_case(b"ORIGINALDATE")
                || key.eq_ignore_ascii_case(b"ORIGINALYEAR") =>
            {
                &mut self.original_date
            }
            _ => return None,
        })
    }
}

/// The fields of a comment block, or `None` where lofty's strict parse fails.
pub(super) fn read_comments(data: &[u8]) -> Option<Fields<'_>> {
    let mut f = Fields::default();
    // lofty's `VorbisComments::remove` swaps what it removes to the front, reordering the
    // other items; it runs when a track or disc number is set and these keys are already
    // there. Then which value comes first needs the whole list: `read_comments_listed`.
    let (mut tracknumber, mut tracknum, mut totaltracks, mut totaldiscs) =
        (false, false, false, false);
    let mut reordered = false;
    let done = each_comment(data, |c| {
        match c {
            Comment::Track(v) => {
                let (current, total) = number_pair(v);
                if current.is_some() && (tracknumber || tracknum) || total.is_some() && totaltracks
                {
                    reordered = true;
                    return None;
                }
                // A value whose part before '/' is not a number stays as text, which
                // never parses as one either.
                if current.is_some() {
                    f.track = current;
                }
                tracknumber = true;
            }
            Comment::Disc(v) => {
                if number_pair(v).1.is_some() && totaldiscs {
                    reordered = true;
                    return None;
                }
            }
            Comment::Item(key, value) => {
                tracknum |= key.eq_ignore_ascii_case(b"TRACKNUM");
                totaltracks |= key.eq_ignore_ascii_case(b"TOTALTRACKS");
                totaldiscs |= key.eq_ignore_ascii_case(b"TOTALDISCS");
                if let Some(slot) = f.slot(key)
                    && slot.is_none()
                {
                    *slot = Some(value);
                }
            }
        }
        Some(())
    });
    match done {
        Some(()) => Some(f),
        None if reordered => read_comments_listed(data),
        None => None,
    }
}

#[derive(Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Number(u32),
}

/// [`read_comments`] for the rare block where lofty reorders its items: the item list
/// kept whole and edited exactly as `VorbisComments` edits it.
fn read_comments_listed(data: &[u8]) -> Option<Fields<'_>> {
    type Items<'a> = Vec<(&'a [u8], Value<'a>)>;
    fn remove(items: &mut Items, key: &[u8]) {
        let mut split = 0;
        for read in 0..items.len() {
            if items[read].0.eq_ignore_ascii_case(key) {
                items.swap(split, read);
                split += 1;
            }
        }
        items.drain(..split);
    }
    fn insert<'a>(items: &mut Items<'a>, key: &'a [u8], value: Value<'a>) {
        items.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        items.push((key, value));
    }
    let mut items: Items = Vec::new();
    each_comment(data, |c| {
        match c {
            Comment::Track(v) => {
                let (current, total) = number_pair(v);
                if let Some(t) = total {
                    insert(&mut items, b"TRACKTOTAL", Value::Number(t));
                    remove(&mut items, b"TOTALTRACKS");
                }
                match current {
                    Some(n) => {
                        remove(&mut items, b"TRACKNUMBER");
                        remove(&mut items, b"TRACKNUM");
                        insert(&mut items, b"TRACKNUMBER", Value::Number(n));
                    }
                    None => items.push((b"TRACKNUMBER", Value::Text(v))),
                }
            }
            Comment::Disc(v) => {
                let (current, total) = number_pair(v);
                if let Some(t) = total {
                    insert(&mut items, b"DISCTOTAL", Value::Number(t));
                    remove(&mut items, b"TOTALDISCS");
                }
                match current {
                    Some(n) => insert(&mut items, b"DISCNUMBER", Value::Number(n)),
                    None => items.push((b"DISCNUMBER", Value::Text(v))),
                }
            }
            Comment::Item(key, value) => items.push((key, Value::Text(value))),
        }
        Some(())
    })?;
    let mut f = Fields::default();
    let mut track_seen = false;
    for &(key, value) in &items {
        if key.eq_ignore_ascii_case(b"TRACKNUMBER") {
            if !track_seen {
                track_seen = true;
                f.track = match value {
                    Value::Number(n) => Some(n),
                    Value::Text(s) => s.parse().ok(),
                };
            }
        } else if let Value::Text(s) = value
            && let Some(slot) = f.slot(key)
            && slot.is_none()
        {
            *slot = Some(s);
        }
    }
    Some(f)
}

impl Fields<'_> {
    /// The tag fields of `TagInfo` as `tags::from_tagged_file` fills them from the one tag.
    pub(super) fn fill(&self, info: &mut TagInfo) {
        info.artist = self.artist.and_then(clean_text);
        info.title = self.title.and_then(clean_text);
        info.album = self.album.and_then(clean_text);
        info.album_artist = self.album_artist.and_then(clean_text);
        info.genre = self.genre.and_then(clean_text);
        info.track_number = self.track;
        // `Tag::date()`: DATE if present (even if it does not parse), else YEAR.
        info.year = year_of(
            self.date.or(self.year),
            [self.year, self.date, self.release_date, self.original_date],
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Codec {
    Vorbis,
    Opus,
}

/// Header pages lofty may walk before the reader declines (each costs it ~9 reads).
const MAX_HEADER_PAGES: usize = 4096;
/// False `OggS` matches skipped in the search for the last page before declining.
const MAX_RETRIES: usize = 256;
/// lofty's backward search window: `ogg_pager::MAX_CONTENT_SIZE / 4`.
const SEARCH_WINDOW: u64 = 255 * 255 / 4;

/// Pages one header packet may span here (a comment packet with cover art spans many).
const MAX_PIECES: usize = 32;

/// One packet: its pieces as `(offset, len)` in the file.
struct Packet {
    pieces: [(u64, u64); MAX_PIECES],
    n: usize,
    len: u64,
}

impl Default for Packet {
    fn default() -> Packet {
        Packet {
            pieces: [(0, 0); MAX_PIECES],
            n: 0,
            len: 0,
        }
    }
}

impl Packet {
    fn push(&mut self, at: u64, len: u64) -> Option<()> {
        if len == 0 {
            return Some(());
        }
        // A packet over more pages than kept: lofty parses it.
        *self.pieces.get_mut(self.n)? = (at, len);
        self.n += 1;
        self.len += len;
        Some(())
    }

    /// The packet's bytes: borrowed when in one piece, else copied together.
    fn bytes<'a>(&self, held: &Held<'a>) -> Option<std::borrow::Cow<'a, [u8]>> {
        match self.n {
            0 => Some(std::borrow::Cow::Borrowed(&[])),
            1 => held
                .get(self.pieces[0].0, self.pieces[0].1 as usize)
                .map(std::borrow::Cow::Borrowed),
            _ => {
                let mut v = Vec::with_capacity(self.len as usize);
                for &(at, n) in &self.pieces[..self.n] {
                    v.extend_from_slice(held.get(at, n as usize)?);
                }
                Some(std::borrow::Cow::Owned(v))
            }
        }
    }
}

/// `ogg_pager::PageHeader::read` at `at`: the granule position and the segment table, or
/// why not: `Err(true)` for the errors lofty's last-page search skips (bad version, no
/// segments), `Err(false)` for the others (a short read). `None`: bytes not held.
#[allow(clippy::type_complexity)]
fn page_header<'a>(
    held: &Held<'a>,
    cost: &mut Cost,
    at: u64,
) -> Option<Result<(u64, &'a [u8]), bool>> {
    let len = held.file_len();
    let avail = len.saturating_sub(at);
    // Each field is its own read: near the end of the file lofty reads what there is,
    // then fails, unless a bad signature or version stops it first.
    if avail < 4 {
        cost.add(at, len);
        return Some(Err(false));
    }
    if held.get(at, 4)? != b"OggS" {
        cost.add(at, at + 4);
        return Some(Err(true));
    }
    if avail < 5 {
        cost.add(at, len);
        return Some(Err(false));
    }
    if held.get(at + 4, 1)?[0] != 0 {
        cost.add(at, at + 5);
        return Some(Err(true));
    }
    if avail < 27 {
        cost.add(at, len);
        return Some(Err(false));
    }
    let h = held.get(at, 27)?;
    cost.add(at, at + 27);
    let nseg = u64::from(h[26]);
    if nseg == 0 {
        return Some(Err(true));
    }
    if at + 27 + nseg > len {
        cost.add(at + 27, len);
        return Some(Err(false));
    }
    cost.add(at + 27, at + 27 + nseg);
    let abgp = u64::from_le_bytes(h[6..14].try_into().unwrap());
    Some(Ok((abgp, held.get(at + 27, nseg as usize)?)))
}

/// lofty's `rfind(b"OggS")` with a window of [`SEARCH_WINDOW`]: the last match starting in
/// `[end, start)` and ending by `start`. `Some(None)`: none; `None`: bytes not held.
fn rfind(held: &Held, cost: &mut Cost, start: u64, end: u64) -> Option<Option<u64>> {
    if start < end || start - end < 4 {
        return Some(None);
    }
    let step = SEARCH_WINDOW - 3;
    let mut cur = start;
    while cur > end {
        let n = SEARCH_WINDOW.min(cur - end);
        let from = cur - n;
        let window = held.get(from, n as usize)?;
        cost.add(from, cur);
        // memrchr finds the rare 'O' a vector at a time; comparing every 4-byte window
        // walked a whole tiny file back from its end (2.4% of a 100k-file index's CPU).
        let last = memchr::memrchr_iter(b'O', window).find(|&i| window[i..].starts_with(b"OggS"));
        if let Some(i) = last {
            return Some(Some(from + i as u64));
        }
        cur -= n.min(step);
    }
    Some(None)
}

/// `ogg::find_last_page`: the granule position of the last page, `Some(None)` when lofty
/// finds none (its error is swallowed: no duration), `None` to decline.
fn last_page_granule(held: &Held, cost: &mut Cost, header_end: u64) -> Option<Option<u64>> {
    let len = held.file_len();
    let Some(mut at) = rfind(held, cost, len, 0)? else {
        return Some(None);
    };
    for _ in 0..MAX_RETRIES {
        match page_header(held, cost, at)? {
            Ok((abgp, segs)) => {
                // `Page::read`: the header again, then the content.
                let body = segs.iter().map(|&s| u64::from(s)).sum::<u64>();
                let content = at + 27 + segs.len() as u64;
                cost.add(at, content);
                cost.add(content, content + body);
                return Some((content + body <= len).then_some(abgp));
            }
            Err(false) => return Some(None),
            Err(true) => match rfind(held, cost, at, header_end)? {
                Some(p) => at = p,
                None => return Some(None),
            },
        }
    }
    None
}

/// Ogg Vorbis or Opus, as lofty reads the file whole (a stream lofty's probe does not
/// call Vorbis or Opus by its first page is declined).
pub fn read_ogg(held: &Held, limits: Limits) -> Option<TagInfo> {
    let len = held.file_len();
    let probe = held.get(0, 36)?;
    let codec = if &probe[29..35] == b"vorbis" {
        Codec::Vorbis
    } else if &probe[28..36] == b"OpusHead" {
        Codec::Opus
    } else {
        return None;
    };
    let (count, ident_sig, comment_sig): (usize, &[u8], &[u8]) = match codec {
        Codec::Vorbis => (3, b"\x01vorbis", b"\x03vorbis"),
        Codec::Opus => (2, b"OpusHead", b"OpusTags"),
    };
    let mut cost = Cost::new(len);
    // The probe's 36 bytes, and the first page header read once for itself.
    cost.add(0, 36);
    let first_abgp = match page_header(held, &mut cost, 0)? {
        Ok((abgp, _)) => abgp,
        Err(_) => return None,
    };

    // `Packets::read_count`: lacing values alone delimit packets, whatever the flags.
    let mut packets: [Packet; 3] = Default::default();
    let mut done = 0;
    let mut pos = 0u64;
    let mut pages = 0;
    'pages: while done < count {
        pages += 1;
        if pages > MAX_HEADER_PAGES {
            return None;
        }
        let Ok((_, segs)) = page_header(held, &mut cost, pos)? else {
            return None;
        };
        let mut data = pos + 27 + segs.len() as u64;
        // Bytes of the open packet on this page not yet read.
        let mut run = 0u64;
        for (i, &s) in segs.iter().enumerate() {
            run += u64::from(s);
            if s == 255 {
                continue;
            }
            if data + run > len {
                return None;
            }
            cost.add(data, data + run);
            packets[done].push(data, run)?;
            data += run;
            run = 0;
            done += 1;
            if done == count {
                let rest: u64 = segs[i + 1..].iter().map(|&s| u64::from(s)).sum();
                if i + 1 < segs.len() {
                    if data + rest > len {
                        return None;
                    }
                    cost.add(data, data + rest);
                    data += rest;
                }
                pos = data;
                break 'pages;
            }
        }
        // lofty reads a packet that goes on to the next page up to the page's end.
        if run != 0 {
            if data + run > len {
                return None;
            }
            cost.add(data, data + run);
            packets[done].push(data, run)?;
            data += run;
        }
        pos = data;
    }
    let header_end = pos;

    let ident = packets[0].bytes(held)?;
    let comment = packets[1].bytes(held)?;
    if !ident.starts_with(ident_sig) || !comment.starts_with(comment_sig) {
        return None;
    }
    let fields = read_comments(&comment[comment_sig.len()..])?;
    let mut info = TagInfo::default();
    fields.fill(&mut info);

    match codec {
        Codec::Vorbis => {
            let p = ident.get(7..28)?;
            let channels = p[4];
            let sample_rate = le32(&p[5..9]);
            let nominal = le32(&p[13..17]) as i32;
            let last = last_page_granule(held, &mut cost, header_end)?;
            let mut duration = Duration::ZERO;
            if let Some(last) = last
                && sample_rate > 0
            {
                let total = u128::from(last.saturating_sub(first_abgp));
                if total > 0 {
                    let sr = u128::from(sample_rate);
                    let ms = ((total * 1000 + (sr >> 1)) / sr) as u64;
                    duration = Duration::from_millis(ms);
                }
            }
            info.duration = Some(duration.as_secs_f64());
            info.bitrate = Some(if nominal > 0 {
                (nominal as u64 / 1000) as u32
            } else {
                0
            });
            info.sample_rate = Some(sample_rate);
            info.channels = Some(channels);
        }
        Codec::Opus => {
            let p = ident.get(8..19)?;
            let channels = p[1];
            let pre_skip = u16::from_le_bytes([p[2], p[3]]);
            let sample_rate = le32(&p[4..8]);
            let family = p[10];
            // lofty refuses these, and panics on a channel count it has no mask for.
            let max_channels = match family {
                0 => 2,
                1 => 8,
                _ => return None,
            };
            if channels == 0 || channels > max_channels {
                return None;
            }
            let last = last_page_granule(held, &mut cost, header_end)?;
            let mut duration = Duration::ZERO;
            let mut bitrate = 0;
            if let Some(last) = last {
                let total = last
                    .saturating_sub(first_abgp)
                    .saturating_sub(u64::from(pre_skip));
                if total > 0 {
                    // lofty computes in u64: an overflow panics in a debug build and wraps
                    // in a release one, and a zero length divides by zero. Decline both.
                    let ms = total.checked_mul(1000)?.checked_add(24000)? / 48000;
                    if ms == 0 {
                        return None;
                    }
                    let stream = len.checked_sub(ident.len() as u64 + comment.len() as u64)?;
                    duration = Duration::from_millis(ms);
                    bitrate = (stream.checked_mul(8)? / ms) as u32;
                    len.checked_mul(8)?;
                }
            }
            info.duration = Some(duration.as_secs_f64());
            info.bitrate = Some(bitrate);
            info.sample_rate = Some(sample_rate);
            info.channels = Some(channels);
        }
    }
    cost.within(limits).then_some(info)
}
