//! MPEG audio with an ID3v2.3/2.4 tag at the head (or none) and an optional ID3v1 tag at
//! the end, read as lofty 0.25.5 reads it (`mpeg/read.rs`, `mpeg/properties.rs`,
//! `id3/v2/*`, the `Id3v2Tag` → `Tag` split), for the layouts where every step of lofty's
//! strict parse is reproduced here. Everything else declines: ID3v2.2, tag-level
//! unsynchronisation, extended headers and footers, frame compression, encryption,
//! grouping, data length indicators, frames other than text and pictures (TXXX, COMM,
//! ...), a second ID3v2 tag, APE and Lyrics3 tags, ADTS streams, bytes not held and reads
//! the budget may refuse.

use lofty::id3::v1::GENRES;

use super::{Held, clean_text};
use crate::media::budget::{self, Limits, MAX_READS};
use crate::media::tags::TagInfo;

pub fn read(held: &Held, limits: Limits) -> Option<TagInfo> {
    let len = held.file_len();
    let head = held.get(0, 8)?;
    // An upper bound of lofty's read calls, which the budget counts too.
    let mut reads = 0u64;
    // lofty's probe takes any file with "ftyp" at offset 4 for MP4.
    if &head[4..8] == b"ftyp" {
        return None;
    }
    let (v2, tag_end) = if head.starts_with(b"ID3") {
        let (tag, end, tag_reads) = id3v2(held)?;
        probe_after_tag(held, end)?;
        reads += tag_reads;
        (Some(tag), end)
    } else if verify_sync(head[0], head[1]) && !adts(head[1]) {
        (None, 0)
    } else {
        return None;
    };

    // lofty reads four bytes after the tag to look for a second tag or an APE tag.
    let after = held.get(tag_end, 4)?;
    if after.starts_with(b"ID3") || after == b"APET" {
        return None;
    }
    let (first, first_off, head_touched) = find_first_frame(held, tag_end, &mut reads)?;

    // The end of the stream: before an ID3v1 tag; Lyrics3 and APE tags decline.
    let mut v1 = None;
    let mut end = len;
    if len >= 128 && held.get(len - 128, 3)? == b"TAG" {
        v1 = Some(Id3v1::parse(held.get(len - 128, 128)?)?);
        end = len - 128;
    }
    if end < 32 {
        return None;
    }
    if held.get(end - 9, 9)? == b"LYRICS200" || held.get(end - 32, 8)? == b"APETAGEX" {
        return None;
    }

    let xing_at = first_off + u64::from(first.data_start);
    let xing = held.get(xing_at, 32)?;
    let vbr = VbrHeader::read(xing);
    let mut tail_lo = end - 32;
    let props = properties(held, &first, first_off, end, vbr, &mut tail_lo)?;

    // Whatever lofty reads beyond the head and tail counts against the budget, some of
    // it twice (the probe and the parse both read past the tag): decline unless even
    // twice the bytes touched fit.
    let head_end = head_touched.max(tag_end + 1024).max(xing_at + 32).min(len);
    // The probe's sync search reads byte by byte; the reverse search a few reads a chunk.
    reads += 1100 + (len - tail_lo) / 256;
    let cost = budget::costs_beyond_first(len, 0, head_end)
        + budget::costs_beyond_first(len, tail_lo, len);
    if cost.saturating_mul(2) > limits.max_tag_bytes || reads > MAX_READS / 4 {
        return None;
    }

    let v2 = v2.unwrap_or_default();
    let v1 = v1.unwrap_or_default();
    let pick = |a: &Option<String>, b: &Option<String>| {
        a.as_deref()
            .and_then(clean_text)
            .or_else(|| b.as_deref().and_then(clean_text))
    };
    Some(TagInfo {
        artist: pick(&v2.artist.first(), &v1.artist),
        title: pick(&v2.title.first(), &v1.title),
        album: pick(&v2.album.first(), &v1.album),
        album_artist: v2.album_artist.first().as_deref().and_then(clean_text),
        genre: pick(&v2.genre(), &v1.genre.map(str::to_string)),
        track_number: v2.track().or(v1.track),
        year: v2.year().or(v1.year),
        duration: Some(props.duration),
        bitrate: Some(props.audio_bitrate),
        sample_rate: Some(first.sample_rate),
        channels: Some(if first.channel_mode == 3 { 1 } else { 2 }),
    })
}

fn verify_sync(a: u8, b: u8) -> bool {
    a == 0xFF && b >> 5 == 0b111
}

/// lofty's probe takes a frame sync whose second byte looks like this for ADTS (AAC).
fn adts(b: u8) -> bool {
    b & 0b10000 > 0 && b & 0b110 == 0
}

/// What lofty's probe does after an ID3v2 tag: another format's magic, or an ADTS sync
/// within its 1024-byte window, makes the file something else.
fn probe_after_tag(held: &Held, tag_end: u64) -> Option<()> {
    let len = held.file_len();
    let window_end = (tag_end + 1024).min(len);
    let window = held.get(tag_end, (window_end - tag_end) as usize)?;
    let ident = &window[..window.len().min(4)];
    if ident.starts_with(b"MAC")
        || ident == b"fLaC"
        || ident == b"MPCK"
        || ident.starts_with(b"MP+")
    {
        return None;
    }
    if let Some(i) = window.windows(2).position(|w| verify_sync(w[0], w[1]))
        && adts(window[i + 1])
    {
        return None;
    }
    Some(())
}

/// lofty's `find_next_frame`: a frame sync, a valid header, and the same header (under
/// its mask) where the frame ends; a mismatch resumes the search at that end. Returns the
/// header, its offset and how far the search read.
fn find_first_frame(held: &Held, start: u64, reads: &mut u64) -> Option<(Header, u64, u64)> {
    const HEADER_MASK: u32 = 0xFFFE_0C00;
    let rest = held.from(start)?;
    let byte = |at: u64| rest.get((at - start) as usize).copied();
    let u32_at = |at: u64| -> Option<u32> {
        let from = (at - start) as usize;
        rest.get(from..from + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut pos = start;
    loop {
        // search_for_frame_sync: byte by byte from `pos`.
        let mut i = pos;
        let sync = loop {
            // At the end of the file lofty's strict parse fails (no frame); before it,
            // the bytes are not held. Either way, decline.
            let (Some(a), Some(b)) = (byte(i), byte(i + 1)) else {
                return None;
            };
            if verify_sync(a, b) {
                break i;
            }
            i += 1;
        };
        *reads += sync + 2 - pos + 2;
        if *reads > MAX_READS / 4 {
            return None;
        }
        let data = u32_at(sync)?;
        match Header::read(data) {
            Some(h) => {
                let next = sync + u64::from(h.len);
                // Past the end of the file is lofty's "undetermined": no frame.
                let second = u32_at(next)?;
                if data & HEADER_MASK == second & HEADER_MASK {
                    return Some((h, sync, next + 4));
                }
                pos = next;
            }
            None => pos = sync + 4,
        }
    }
}

/// Duration (seconds) and audio bitrate (kbit/s) as lofty's `read_properties` gives them.
struct Props {
    duration: f64,
    audio_bitrate: u32,
}

fn millis(ms: u64) -> f64 {
    std::time::Duration::from_millis(ms).as_secs_f64()
}

fn div_round(a: u64, b: u64) -> u64 {
    (a + (b >> 1)) / b
}

fn properties(
    held: &Held,
    first: &Header,
    first_off: u64,
    stream_end_bound: u64,
    vbr: Option<VbrHeader>,
    tail_lo: &mut u64,
) -> Option<Props> {
    if let Some(v) = vbr
        && v.frames > 0
        && v.size > 0
    {
        let length = div_round(
            u64::from(first.samples) * 1000 * u64::from(v.frames),
            u64::from(first.sample_rate),
        );
        // lofty divides by the length: zero panics there.
        if length == 0 {
            return None;
        }
        return Some(Props {
            duration: millis(length),
            audio_bitrate: ((u64::from(v.size) * 8) / length) as u32,
        });
    }
    let is_cbr = matches!(vbr, Some(VbrHeader { info: true, .. }));
    let mut audio_bitrate = if is_cbr { first.bitrate } else { 0 };

    // rev_search_for_frame_header, chunk by chunk from the end of the stream.
    let mut last_off = stream_end_bound;
    let mut pos = stream_end_bound;
    let mut last = None;
    while pos > 0 {
        let bounds = pos.min(1024);
        pos -= bounds;
        *tail_lo = (*tail_lo).min(pos);
        let buf = held.get(pos, bounds as usize)?;
        let mut found = None;
        for r in (0..buf.len().saturating_sub(1)).rev() {
            if !verify_sync(buf[r], buf[r + 1]) || r + 4 > buf.len() {
                continue;
            }
            if let Some(h) = Header::read(u32::from_be_bytes([
                buf[r],
                buf[r + 1],
                buf[r + 2],
                buf[r + 3],
            ])) {
                found = Some((r as u64, h));
                break;
            }
        }
        if let Some((r, h)) = found {
            pos += r;
            last_off = pos;
            if h.version == first.version
                && h.layer == first.layer
                && h.sample_rate == first.sample_rate
            {
                last = Some(h);
                break;
            }
        }
    }
    let Some(last) = last else {
        return Some(Props {
            duration: 0.0,
            audio_bitrate,
        });
    };
    let stream_end = last_off + u64::from(last.len);
    if stream_end < first_off {
        return Some(Props {
            duration: 0.0,
            audio_bitrate,
        });
    }
    let stream_len = stream_end - first_off;
    if !is_cbr {
        audio_bitrate = first.bitrate;
    }
    let length = div_round(stream_len * 8, u64::from(audio_bitrate));
    Some(Props {
        duration: millis(length),
        audio_bitrate,
    })
}

const BITRATES: [[[u32; 16]; 3]; 2] = [
    [
        [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0,
        ],
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0,
        ],
        [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
        ],
    ],
    [
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0,
        ],
        [
            0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0,
        ],
        [
            0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0,
        ],
    ],
];
const SAMPLE_RATES: [[u32; 3]; 3] = [
    [44100, 48000, 32000],
    [22050, 24000, 16000],
    [11025, 12000, 8000],
];
const SAMPLES: [[u16; 2]; 3] = [[384, 384], [1152, 1152], [1152, 576]];
const SIDE_INFORMATION_SIZES: [[u32; 4]; 2] = [[32, 32, 32, 17], [17, 17, 17, 9]];
const PADDING_SIZES: [u32; 3] = [4, 1, 1];

/// An MPEG frame header as lofty's `Header::read` decodes it (the fields used here).
#[derive(Clone, Copy, Debug)]
struct Header {
    /// 0 = MPEG-1, 1 = MPEG-2, 2 = MPEG-2.5.
    version: u8,
    /// 1..=3.
    layer: u8,
    bitrate: u32,
    sample_rate: u32,
    channel_mode: u8,
    data_start: u32,
    samples: u16,
    len: u32,
}

impl Header {
    fn read(data: u32) -> Option<Header> {
        let version: u8 = match (data >> 19) & 0b11 {
            0b00 => 2,
            0b10 => 1,
            0b11 => 0,
            _ => return None,
        };
        let version_index = usize::from(version != 0);
        let layer: u8 = match (data >> 17) & 0b11 {
            0b01 => 3,
            0b10 => 2,
            0b11 => 1,
            _ => return None,
        };
        let layer_index = usize::from(layer - 1);
        let bitrate = BITRATES[version_index][layer_index][((data >> 12) & 0xF) as usize];
        if bitrate == 0 {
            return None;
        }
        let sample_rate_index = (data >> 10) & 0b11;
        if sample_rate_index == 0b11 {
            return None;
        }
        let sample_rate = SAMPLE_RATES[usize::from(version)][sample_rate_index as usize];
        let padding = if (data >> 9) & 1 == 1 {
            PADDING_SIZES[layer_index]
        } else {
            0
        };
        let channel_mode = ((data >> 6) & 0b11) as u8;
        let samples = SAMPLES[layer_index][version_index];
        Some(Header {
            version,
            layer,
            bitrate,
            sample_rate,
            channel_mode,
            data_start: SIDE_INFORMATION_SIZES[version_index][usize::from(channel_mode)] + 4,
            samples,
            len: (u32::from(samples) * bitrate * 125 / sample_rate) + padding,
        })
    }
}

#[derive(Clone, Copy)]
struct VbrHeader {
    /// An "Info" header (CBR) rather than "Xing" or "VBRI".
    info: bool,
    frames: u32,
    size: u32,
}

impl VbrHeader {
    fn read(b: &[u8]) -> Option<VbrHeader> {
        let be = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        match &b[..4] {
            b"Xing" | b"Info" => (b[7] & 0x03 == 0x03).then(|| VbrHeader {
                info: &b[..4] == b"Info",
                frames: be(8),
                size: be(12),
            }),
            b"VBRI" => Some(VbrHeader {
                info: false,
                size: be(10),
                frames: be(14),
            }),
            _ => None,
        }
    }
}

/// The ID3v1 fields lofty's `Tag` gets from the tag at the end of the file.
#[derive(Default)]
struct Id3v1 {
    title: Option<String>,
    artist: Option<String>,
    album: Option<String>,
    year: Option<i32>,
    track: Option<u32>,
    genre: Option<&'static str>,
}

impl Id3v1 {
    fn parse(t: &[u8]) -> Option<Id3v1> {
        let r = &t[3..];
        let text = |d: &[u8]| -> Option<String> {
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            (end > 0).then(|| d[..end].iter().map(|&c| c as char).collect())
        };
        let digits = r[90..94].iter().take_while(|c| c.is_ascii_digit()).count();
        // A year that is not four digits fails lofty's strict parse.
        if digits != 4 {
            return None;
        }
        let year = r[90..94]
            .iter()
            .fold(0u16, |y, c| y * 10 + u16::from(c - b'0'));
        // The year goes into the tag as text ("999" for 0999), which lofty reads back as a
        // date only with four digits.
        let year = (year >= 1000).then_some(i32::from(year));
        let track = (r[122] == 0 && r[123] != 0).then_some(u32::from(r[123]));
        Some(Id3v1 {
            title: text(&r[..30]),
            artist: text(&r[30..60]),
            album: text(&r[60..90]),
            year,
            track,
            genre: GENRES.get(usize::from(r[124])).copied(),
        })
    }
}

/// The last value of one text frame as lofty's frame list keeps it: a later frame with
/// the same ID replaces an earlier one, unless it is empty and the earlier one is not.
#[derive(Default)]
struct Slot(Option<String>);

impl Slot {
    fn put(&mut self, v: String) {
        match &self.0 {
            Some(old) if v.is_empty() && !old.is_empty() => {}
            _ => self.0 = Some(v),
        }
    }

    /// The tag's first item: the value up to the first NUL (ID3v2.4's separator).
    fn first(&self) -> Option<String> {
        self.0
            .as_deref()
            .map(|v| v.split('\0').next().unwrap_or("").to_string())
    }
}

/// A timestamp frame: its year when lofty's `verify` keeps it, `None` when it drops it.
#[derive(Default)]
struct Stamp {
    seen: bool,
    year: Option<i32>,
    month: bool,
}

#[derive(Default)]
struct Id3v2 {
    title: Slot,
    artist: Slot,
    album: Slot,
    album_artist: Slot,
    genre: Slot,
    track: Slot,
    recording: Stamp,
    release: Stamp,
    original: Stamp,
}

impl Id3v2 {
    /// lofty's `split_pair` for TRCK: "n" or "n/m" (or "n\0m"), both numbers.
    fn track(&self) -> Option<u32> {
        let v = self.track.0.as_deref()?;
        let mut split = v.splitn(2, ['\0', '/']);
        let number = split.next()?.trim();
        if number.is_empty() {
            return None;
        }
        let n = number.parse::<u32>().ok()?;
        if let Some(total) = split.next() {
            let total = total.trim();
            if total.is_empty() || total.parse::<u32>().is_err() {
                return None;
            }
        }
        Some(n)
    }

    /// The first genre of TCON as lofty's `GenresIter` gives it.
    fn genre(&self) -> Option<String> {
        let v = self.genre.0.as_deref()?;
        if v.is_empty() {
            return None;
        }
        let g = if let Some(idx) = v.find('\0') {
            &v[..idx]
        } else if v.starts_with('(') && v.contains(')') {
            let mut end = v.find(')').unwrap_or(0);
            if v.starts_with("((") {
                end += 1;
            }
            &v[1..end]
        } else {
            v
        };
        Some(parse_genre(g).to_string())
    }

    /// `year_of` over the split tag: the recording date, then the release date, then the
    /// original release date (each present only when lofty's `verify` kept it).
    fn year(&self) -> Option<i32> {
        self.recording
            .year
            .or(self.release.year)
            .or(self.original.year)
    }
}

fn parse_genre(g: &str) -> &str {
    if g.len() > 3 {
        return g;
    }
    if let Ok(id) = g.parse::<usize>() {
        return GENRES.get(id).copied().unwrap_or(g);
    }
    match g {
        "RX" => "Remix",
        "CR" => "Cover",
        _ => g,
    }
}

/// The ID3v2 tag at offset 0, where it ends and a bound of lofty's read calls for it
/// (some of its string reads are byte by byte), or `None` where lofty's strict parse could
/// differ.
fn id3v2(held: &Held) -> Option<(Id3v2, u64, u64)> {
    let h = held.get(0, 10)?;
    let v4 = match h[3] {
        3 => false,
        4 => true,
        _ => return None,
    };
    // Unsynchronisation, extended header, footer.
    if h[5] & 0xD0 != 0 || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = h[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b));
    if 10 + size > held.file_len() {
        return None;
    }
    let body = held.get(10, size as usize)?;
    let mut tag = Id3v2::default();
    let mut pos = 0usize;
    let mut reads = 0u64;
    let (mut tdat, mut time) = (Slot::default(), Slot::default());
    while body.len() - pos >= 10 {
        let fh = &body[pos..pos + 10];
        if fh[0] == 0 {
            break;
        }
        if !fh[..4]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return None;
        }
        let size = if v4 {
            if fh[4..8].iter().any(|b| b & 0x80 != 0) {
                return None;
            }
            fh[4..8].iter().fold(0u32, |a, &b| (a << 7) | u32::from(b))
        } else {
            u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]])
        } as usize;
        let flags = u16::from_be_bytes([fh[8], fh[9]]);
        let mut id: [u8; 4] = [fh[0], fh[1], fh[2], fh[3]];
        if !v4 {
            match &id {
                b"TYER" => id = *b"TDRC",
                b"TORY" => id = *b"TDOR",
                b"IPLS" => return None,
                _ => {}
            }
        }
        let start = pos + 10;
        let end = start.saturating_add(size).min(body.len());
        pos = start.saturating_add(size).min(body.len());
        if &id == b"APIC" {
            // Skipped with io::copy, in 8 KiB reads.
            reads += 16 + (end - start) as u64 / 1024;
            continue;
        }
        reads += 16 + (end - start) as u64;
        if size == 0 {
            return None;
        }
        let bad_flags = if v4 { 0x004F } else { 0x00E0 };
        if flags & bad_flags != 0 {
            return None;
        }
        let content = &body[start..end];
        match &id {
            b"COMM" | b"USLT" => {
                language_frame(content)?;
                continue;
            }
            // Latin-1 owner (lofty's strict parse wants one), then binary to the end.
            b"UFID" => {
                if content.first().is_none_or(|&b| b == 0) {
                    return None;
                }
                continue;
            }
            b"PRIV" => continue,
            // A URL up to a NUL: lofty leaves whatever follows the NUL unread and reads the
            // next frame header from it.
            [b'W', ..] if &id != b"WXXX" => {
                if content
                    .iter()
                    .position(|&b| b == 0)
                    .is_some_and(|i| i + 1 != content.len())
                {
                    return None;
                }
                continue;
            }
            b"TXXX" => {
                let description = user_text_frame(content)?;
                // A description naming one of the keys kept here adds an item lofty
                // reads before or after the frame's own: not reproduced.
                if KEYS_OF_OURS
                    .iter()
                    .any(|k| description.eq_ignore_ascii_case(k))
                {
                    return None;
                }
                continue;
            }
            _ => {}
        }
        let text_like = (id[0] == b'T' && !matches!(&id, b"TXXX" | b"TIPL" | b"TMCL"))
            || matches!(&id, b"GRP1" | b"MVNM" | b"MVIN");
        if !text_like {
            return None;
        }
        let stamp = match &id {
            b"TDRC" => Some(&mut tag.recording),
            b"TDRL" => Some(&mut tag.release),
            b"TDOR" => Some(&mut tag.original),
            b"TDEN" | b"TDTG" => None,
            _ => {
                let slot = match &id {
                    b"TIT2" => Some(&mut tag.title),
                    b"TPE1" => Some(&mut tag.artist),
                    b"TALB" => Some(&mut tag.album),
                    b"TPE2" => Some(&mut tag.album_artist),
                    b"TCON" => Some(&mut tag.genre),
                    b"TRCK" => Some(&mut tag.track),
                    b"TDAT" if !v4 => Some(&mut tdat),
                    b"TIME" if !v4 => Some(&mut time),
                    _ => None,
                };
                match slot {
                    Some(slot) => slot.put(decode(content)?),
                    None => validate(content)?,
                }
                continue;
            }
        };
        // A timestamp frame: strict parse or decline.
        let value = decode(content)?;
        let ts = timestamp(&value)?;
        if let Some(stamp) = stamp {
            // Different timestamp frames with one ID are all kept, in an order that
            // depends on their values: not reproduced.
            if stamp.seen {
                return None;
            }
            stamp.seen = true;
            stamp.year = ts.0;
            stamp.month = ts.1;
        }
    }
    if !v4 && tag.recording.seen {
        v3_recording_date(&mut tag.recording, &tdat, &time);
    }
    Some((tag, 10 + size, reads))
}

/// lofty's `construct_tdrc_from_v3`: an ID3v2.3 year (TYER, now TDRC) takes its month and
/// day from TDAT ("DDMM") and its time from TIME ("HHMM"); the date becomes an item only
/// if `verify` accepts it. A date that already has a month is dropped.
fn v3_recording_date(stamp: &mut Stamp, tdat: &Slot, time: &Slot) {
    if stamp.month {
        stamp.year = None;
        return;
    }
    let pair = |s: &Slot| -> Option<(u8, u8)> {
        let v = s.0.as_deref()?;
        if v.len() != 4 || !v.is_ascii() {
            return None;
        }
        Some((v[..2].parse().ok()?, v[2..].parse().ok()?))
    };
    let Some((day, month)) = pair(tdat) else {
        return;
    };
    let mut ok = month <= 12 && day <= 31;
    if let Some((hour, minute)) = pair(time) {
        ok &= hour <= 23 && minute <= 59;
    }
    if !ok {
        stamp.year = None;
    }
}

/// TXXX descriptions lofty's `ItemKey::from_key` maps (ASCII case aside) to a key this
/// reader fills.
const KEYS_OF_OURS: &[&str] = &[
    "TIT2",
    "TPE1",
    "TALB",
    "TPE2",
    "ALBUMARTIST",
    "ALBUM ARTIST",
    "TCON",
    "TRCK",
    "TDRC",
    "TDRL",
    "TDOR",
];

/// lofty's `read_to_terminator`: the text up to a NUL (a NUL pair on a pair boundary for
/// UTF-16) and what follows it; without a terminator, everything (an odd last byte of
/// UTF-16 is consumed and lost).
fn split_terminated(raw: &[u8], wide: bool) -> (&[u8], &[u8]) {
    if !wide {
        return match raw.iter().position(|&b| b == 0) {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &[]),
        };
    }
    let mut i = 0;
    while i + 2 <= raw.len() {
        if raw[i] == 0 && raw[i + 1] == 0 {
            return (&raw[..i], &raw[i + 2..]);
        }
        i += 2;
    }
    (&raw[..i], &[])
}

/// A terminated string (a description) as lofty decodes it: its text and the byte order
/// mark it began with (`[0, 0]` when empty), or `None` where lofty fails.
fn decode_terminated(enc: u8, bytes: &[u8]) -> Option<(String, [u8; 2])> {
    if bytes.is_empty() {
        return Some((String::new(), [0, 0]));
    }
    let bom = if enc == 1 {
        [bytes[0], bytes[1]]
    } else {
        [0, 0]
    };
    Some((decode_raw(enc, bytes)?, bom))
}

/// COMM and USLT (lofty's `LanguageFrame::parse`): only whether lofty decodes them
/// matters, their items are not kept.
fn language_frame(content: &[u8]) -> Option<()> {
    let (&enc, rest) = content.split_first()?;
    if enc > 3 {
        return None;
    }
    let rest = rest.get(3..)?;
    let (desc, after) = split_terminated(rest, enc == 1 || enc == 2);
    let (_, bom) = decode_terminated(enc, desc)?;
    let endianness: Option<fn([u8; 2]) -> u16> = match (enc, bom) {
        (1, [0xFF, 0xFE]) => Some(u16::from_le_bytes),
        (1, [0xFE, 0xFF]) => Some(u16::from_be_bytes),
        _ => None,
    };
    match endianness {
        Some(unit) => {
            let (raw, left) = split_terminated(after, true);
            // lofty reads this value only to its terminator and the next frame header
            // from what is left: its parse goes astray.
            if !left.is_empty() {
                return None;
            }
            match raw {
                [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes)?,
                [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes)?,
                _ => utf16(raw, unit)?,
            };
        }
        None => {
            decode_raw(enc, after)?;
        }
    }
    Some(())
}

/// TXXX (lofty's `ExtendedTextFrame::parse`): its description, or `None` where lofty
/// fails.
fn user_text_frame(content: &[u8]) -> Option<String> {
    let (&enc, rest) = content.split_first()?;
    if enc > 3 {
        return None;
    }
    let (desc, after) = split_terminated(rest, enc == 1 || enc == 2);
    let (description, desc_bom) = decode_terminated(enc, desc)?;
    if enc != 1 {
        decode_raw(enc, after)?;
    } else if !after.is_empty() {
        // The description's byte order mark serves when the value has none.
        let bom = if after.starts_with(&[0xFF, 0xFE]) || after.starts_with(&[0xFE, 0xFF]) {
            [after[0], after[1]]
        } else {
            desc_bom
        };
        match bom {
            [0xFF, 0xFE] => utf16(after, u16::from_le_bytes)?,
            [0xFE, 0xFF] => utf16(after, u16::from_be_bytes)?,
            _ => return None,
        };
    }
    Some(description)
}

/// A text frame's value as lofty decodes it (encoding byte, then text to the end), or
/// `None` where lofty's decode fails.
fn decode(content: &[u8]) -> Option<String> {
    let (&enc, raw) = content.split_first()?;
    decode_raw(enc, raw)
}

/// lofty's `decode_text` of `raw` (not terminated) in encoding `enc`.
fn decode_raw(enc: u8, raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return (enc <= 3).then(String::new);
    }
    let mut s = match enc {
        0 => raw.iter().map(|&c| c as char).collect::<String>(),
        1 => {
            if raw.len() < 2 || !raw.len().is_multiple_of(2) {
                return None;
            }
            match [raw[0], raw[1]] {
                [0xFE, 0xFF] => utf16(raw, u16::from_be_bytes)?,
                [0xFF, 0xFE] => utf16(raw, u16::from_le_bytes)?,
                _ => return None,
            }
        }
        2 => utf16(raw, u16::from_be_bytes)?,
        3 => std::str::from_utf8(raw).ok()?.to_string(),
        _ => return None,
    };
    let keep = s.trim_end_matches('\0').len();
    s.truncate(keep);
    Some(s)
}

/// UTF-16 as lofty decodes it: every unit that is a byte order mark in either order is
/// dropped (wherever it is), an odd last byte is ignored, unpaired surrogates fail.
fn utf16(raw: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    let units = raw
        .chunks_exact(2)
        .filter(|c| !matches!(c, [0xFF, 0xFE] | [0xFE, 0xFF]))
        .map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// A frame whose value is not kept: only whether lofty decodes it matters.
fn validate(content: &[u8]) -> Option<()> {
    let (&enc, raw) = content.split_first()?;
    match enc {
        0 => Some(()),
        3 => std::str::from_utf8(raw).ok().map(|_| ()),
        1 | 2 => decode(content).map(|_| ()),
        _ => None,
    }
}

/// lofty's strict `Timestamp::parse` of a timestamp frame's value: `None` when it fails
/// (the file is declined); else the year when `verify` keeps the frame as an item (`None`
/// when it drops it), and whether it has a month.
fn timestamp(value: &str) -> Option<(Option<i32>, bool)> {
    let all = value.as_bytes();
    // Only the first 19 bytes are read.
    let c = &all[..all.len().min(19)];
    if c.len() < 4 || !c[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = c[..4]
        .iter()
        .fold(0u16, |y, d| y * 10 + u16::from(d - b'0'));
    let has_seps = c.iter().any(|&b| matches!(b, b'-' | b'.' | b':'));
    let mut rest = &c[4..];
    let mut fields: [Option<u8>; 5] = [None; 5];
    // Month, day, hour, minute, second, each with the separator lofty expects first.
    let seps: [Option<u8>; 5] = [
        has_seps.then_some(b'-'),
        has_seps.then_some(b'-'),
        Some(b'T'),
        has_seps.then_some(b':'),
        has_seps.then_some(b':'),
    ];
    for (field, sep) in fields.iter_mut().zip(seps) {
        if rest.is_empty() {
            break;
        }
        if let Some(sep) = sep {
            // A different separator of the same group, or none, fails strictly.
            if rest[0] != sep {
                return None;
            }
            rest = &rest[1..];
        }
        if rest.len() < 2 || !rest[..2].iter().all(u8::is_ascii_digit) {
            return None;
        }
        *field = Some((rest[0] - b'0') * 10 + (rest[1] - b'0'));
        rest = &rest[2..];
    }
    let [month, day, hour, minute, second] = fields;
    let ok = |f: Option<u8>, limit: u8, parent: Option<u8>| match f {
        Some(v) => parent.is_some() && v <= limit,
        None => true,
    };
    let verified = ok(month, 12, Some(0))
        && ok(day, 31, month)
        && ok(hour, 23, day)
        && ok(minute, 59, hour)
        && ok(second, 59, minute);
    Some((verified.then_some(i32::from(year)), month.is_some()))
}
