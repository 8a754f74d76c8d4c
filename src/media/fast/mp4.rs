//! MP4/M4A: the `moov` box's audio properties and the iTunes `ilst` tags, exactly as
//! lofty 0.25.5 reads them (`mp4/read`, `mp4/moov.rs`, `mp4/properties.rs`,
//! `mp4/ilst/read.rs` and `Ilst::split_tag`).
//!
//! lofty walks the boxes with a cursor, not as a tree, and some of its loops leave the
//! cursor inside a box (after `trak/mdia`, after `udta/meta/ilst`) and carry on at the
//! `moov` level from there; this reader follows the same cursor. Where lofty would fail
//! (strict mode), swallow an error and stop early, or read past a box into its
//! neighbours, this reader declines instead: every box it answers for lies wholly inside
//! its parent, so lofty's looser checks pass too. Sizes of 0 ("to the end"), 64-bit
//! sizes where lofty mis-skips them, sample entries other than `mp4a` and `alac`, several
//! `ilst`s (lofty merges them) and anything not held are declines as well.

use std::borrow::Cow;
use std::time::Duration;

use lofty::id3::v1::GENRES;

use super::{Held, clean_text, year_of};
use crate::media::budget::{self, Limits};
use crate::media::tags::TagInfo;

/// Boxes walked and `stts` entries read, at most: lofty reads each with a few calls, so
/// this keeps a parse far below the budget's read limit (`budget::MAX_READS`).
const MAX_ATOMS: usize = 10_000;
const MAX_STTS_ENTRIES: u32 = 100_000;
/// `trak/mdia` boxes remembered for the audio-track search, at most.
const MAX_TRAKS: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Atom {
    start: usize,
    hdr: usize,
    len: usize,
    ident: [u8; 4],
}

impl Atom {
    fn data(&self) -> usize {
        self.start + self.hdr
    }
    fn end(&self) -> usize {
        self.start + self.len
    }
    fn is(&self, ident: &[u8; 4]) -> bool {
        &self.ident == ident
    }
}

/// lofty (after TagLib) accepts printable ASCII and '©' in an identifier, and fails a
/// strict parse on anything else.
fn valid_ident(b: u8) -> bool {
    (b' '..=b'~').contains(&b) || b == 0xA9
}

/// The box whose header starts at `pos` in `buf`, when it is well-formed and ends by
/// `limit`. `----` (freeform) is returned too: only `ilst` items may use it.
fn header(buf: &[u8], pos: usize, limit: usize) -> Option<Atom> {
    if pos.checked_add(8)? > limit {
        return None;
    }
    let h = buf.get(pos..pos + 8)?;
    let ident: [u8; 4] = h[4..8].try_into().ok()?;
    if !ident.iter().all(|&b| valid_ident(b)) {
        return None;
    }
    let (hdr, len) = match u32::from_be_bytes(h[..4].try_into().ok()?) {
        0 => return None,
        1 => {
            let wide = u64::from_be_bytes(buf.get(pos + 8..pos + 16)?.try_into().ok()?);
            (16, usize::try_from(wide).ok()?)
        }
        n => (8, n as usize),
    };
    if len < hdr || len > limit - pos {
        return None;
    }
    Some(Atom {
        start: pos,
        hdr,
        len,
        ident,
    })
}

/// [`header`] for boxes outside `ilst`: lofty parses any `----` as a freeform name.
fn atom(buf: &[u8], pos: usize, limit: usize) -> Option<Atom> {
    header(buf, pos, limit).filter(|a| !a.is(b"----"))
}

/// A top-level box of the file, from the bytes held.
fn top_atom(held: &Held, pos: u64) -> Option<(u64, u64, [u8; 4])> {
    let len = held.file_len();
    if pos.checked_add(8)? > len {
        return None;
    }
    let h = held.get(pos, 8)?;
    let ident: [u8; 4] = h[4..8].try_into().ok()?;
    if !ident.iter().all(|&b| valid_ident(b)) || &ident == b"----" {
        return None;
    }
    let (hdr, size) = match u32::from_be_bytes(h[..4].try_into().ok()?) {
        0 => return None,
        1 => (
            16,
            u64::from_be_bytes(held.get(pos + 8, 8)?.try_into().ok()?),
        ),
        n => (8, u64::from(n)),
    };
    if size < hdr || size > len - pos {
        return None;
    }
    Some((hdr, size, ident))
}

/// A text value before decoding: most are UTF-8 and borrowed as they are.
#[derive(Clone, Copy)]
enum Text<'a> {
    Utf8(&'a str),
    Utf16(&'a [u8]),
}

/// UTF-16 as lofty decodes an `ilst` value: big-endian, byte-order marks dropped
/// wherever they are, an odd last byte ignored.
fn utf16_units(b: &[u8]) -> impl Iterator<Item = u16> + Clone + '_ {
    b.chunks_exact(2)
        .filter(|c| !matches!(c, [0xFF, 0xFE] | [0xFE, 0xFF]))
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
}

impl<'a> Text<'a> {
    /// The value as lofty's `Tag` holds it (trailing NULs already dropped).
    fn str(self) -> Cow<'a, str> {
        match self {
            Text::Utf8(s) => Cow::Borrowed(s),
            Text::Utf16(b) => {
                let s: String = char::decode_utf16(utf16_units(b))
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect();
                Cow::Owned(s.trim_end_matches('\0').to_string())
            }
        }
    }
}

/// What the `ilst` gives the generic tag, in lofty's order: the first text value of each
/// key wins (`Tag::get`), the last non-zero `trkn` number wins (`Tag::insert`).
#[derive(Default)]
struct Fields<'a> {
    artist: Option<Text<'a>>,
    title: Option<Text<'a>>,
    album: Option<Text<'a>>,
    album_artist: Option<Text<'a>>,
    genre: Option<Text<'a>>,
    recording_date: Option<Text<'a>>,
    release_date: Option<Text<'a>>,
    original_date: Option<Text<'a>>,
    track: Option<u16>,
    /// The first genre of the legacy `gnre` atoms, which lofty appends as `©gen`.
    gnre: Option<&'static str>,
    /// An `©gen` atom (exactly that name) with a value: lofty then drops `gnre`.
    has_gen_atom: bool,
    ilst_seen: bool,
}

/// Which generic key an `ilst` item's text lands in (`ItemKey::from_key` compares
/// ignoring ASCII case); only the keys `TagInfo` reads.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Artist,
    Title,
    Album,
    AlbumArtist,
    Genre,
    RecordingDate,
    ReleaseDate,
    OriginalDate,
    Other,
}

fn fourcc_key(ident: &[u8; 4]) -> Key {
    const KEYS: [(&[u8; 4], Key); 6] = [
        (b"\xa9ART", Key::Artist),
        (b"\xa9nam", Key::Title),
        (b"\xa9alb", Key::Album),
        (b"aART", Key::AlbumArtist),
        (b"\xa9gen", Key::Genre),
        (b"\xa9day", Key::RecordingDate),
    ];
    KEYS.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(ident))
        .map_or(Key::Other, |&(_, key)| key)
}

/// The key of `----:{mean}:{name}`, compared as lofty compares the joined string.
fn freeform_key(mean: &str, name: &str) -> Key {
    const KEYS: [(&str, Key); 2] = [
        ("com.apple.iTunes:RELEASEDATE", Key::ReleaseDate),
        ("com.apple.iTunes:ORIGINALDATE", Key::OriginalDate),
    ];
    for (k, key) in KEYS {
        if k.len() == mean.len() + 1 + name.len()
            && k.as_bytes()[mean.len()] == b':'
            && k[..mean.len()].eq_ignore_ascii_case(mean)
            && k[mean.len() + 1..].eq_ignore_ascii_case(name)
        {
            return key;
        }
    }
    Key::Other
}

impl<'a> Fields<'a> {
    fn slot(&mut self, key: Key) -> Option<&mut Option<Text<'a>>> {
        Some(match key {
            Key::Artist => &mut self.artist,
            Key::Title => &mut self.title,
            Key::Album => &mut self.album,
            Key::AlbumArtist => &mut self.album_artist,
            Key::Genre => &mut self.genre,
            Key::RecordingDate => &mut self.recording_date,
            Key::ReleaseDate => &mut self.release_date,
            Key::OriginalDate => &mut self.original_date,
            Key::Other => return None,
        })
    }
}

/// Each non-empty `data` atom of an `ilst` item, `(type, content)`, from `start` to the
/// item's end; `None` where lofty's strict parse fails.
fn each_data<'a>(
    d: &'a [u8],
    start: usize,
    end: usize,
    mut f: impl FnMut(u32, &'a [u8]) -> Option<()>,
) -> Option<()> {
    let mut p = start;
    while p < end {
        let c = header(d, p, end)?;
        if c.hdr != 8 || c.len < 16 || !c.is(b"data") || d[c.start + 8] != 0 {
            return None;
        }
        let code = u32::from_be_bytes([0, d[c.start + 9], d[c.start + 10], d[c.start + 11]]);
        let content = &d[c.start + 16..c.end()];
        if !content.is_empty() {
            f(code, content)?;
        }
        p = c.end();
    }
    Some(())
}

/// A freeform item's `mean` or `name`: UTF-8, trailing NULs dropped.
fn freeform_chunk<'a>(
    d: &'a [u8],
    p: usize,
    end: usize,
    want: &[u8; 4],
) -> Option<(&'a str, usize)> {
    let c = header(d, p, end)?;
    if c.hdr != 8 || !c.is(want) || c.len < 12 {
        return None;
    }
    let s = std::str::from_utf8(&d[c.start + 12..c.end()]).ok()?;
    Some((s.trim_end_matches('\0'), c.end()))
}

fn parse_ilst<'a>(d: &'a [u8], f: &mut Fields<'a>) -> Option<()> {
    let mut pos = 0;
    while pos < d.len() {
        let item = header(d, pos, d.len())?;
        pos = item.end();
        let mut start = item.data();
        let key = if item.is(b"----") {
            if item.hdr != 8 {
                return None;
            }
            let (mean, p) = freeform_chunk(d, start, item.end(), b"mean")?;
            let (name, p) = freeform_chunk(d, p, item.end(), b"name")?;
            start = p;
            freeform_key(mean, name)
        } else {
            fourcc_key(&item.ident)
        };
        match &item.ident {
            b"free" | b"skip" | b"covr" => continue,
            b"gnre" => {
                each_data(d, start, item.end(), |_, content| {
                    if f.gnre.is_none() && content.len() >= 2 {
                        let i = usize::from(content[1]);
                        if i > 0 && i <= GENRES.len() {
                            f.gnre = Some(GENRES[i - 1]);
                        }
                    }
                    Some(())
                })?;
                continue;
            }
            b"plID" | b"cpil" | b"hdvd" | b"pcst" | b"pgap" | b"shwm" => {
                each_data(d, start, item.end(), |_, _| Some(()))?;
                continue;
            }
            _ => {}
        }
        let is_trkn = item.is(b"trkn");
        let mut any = false;
        each_data(d, start, item.end(), |code, content| {
            any = true;
            let text = match code {
                1 => Some(Text::Utf8(
                    std::str::from_utf8(content).ok()?.trim_end_matches('\0'),
                )),
                2 => {
                    if char::decode_utf16(utf16_units(content)).any(|c| c.is_err()) {
                        return None;
                    }
                    Some(Text::Utf16(content))
                }
                // lofty reads these as integers of 1 to 4 bytes and fails otherwise.
                21 | 22 if !(1..=4).contains(&content.len()) => return None,
                _ => None,
            };
            if is_trkn {
                // Only the binary pair is the track number; a text `trkn` is not.
                if code != 0 {
                    return None;
                }
                if content.len() >= 6 {
                    let n = u16::from_be_bytes([content[2], content[3]]);
                    if n > 0 {
                        f.track = Some(n);
                    }
                }
            } else if let (Some(text), Some(slot)) = (text, f.slot(key))
                && slot.is_none()
            {
                *slot = Some(text);
            }
            Some(())
        })?;
        if any && item.is(b"\xa9gen") {
            f.has_gen_atom = true;
        }
    }
    Some(())
}

/// `udta` at the `moov` level: lofty looks for `meta` then `ilst` and carries on from
/// wherever that search stopped. Returns the cursor after it.
fn udta<'a>(m: &'a [u8], u: Atom, f: &mut Fields<'a>) -> Option<usize> {
    let len = u.len - u.hdr;
    // lofty counts from 8, not 0: its search stops 8 bytes before the end.
    let mut read = 8;
    let mut p = u.data();
    let mut meta = None;
    while read < len {
        let c = atom(m, p, u.end())?;
        if c.is(b"meta") {
            meta = Some(c);
            break;
        }
        read += c.len;
        p = c.end();
    }
    let Some(meta) = meta else {
        return Some(p);
    };
    if meta.hdr != 8 || meta.len < 16 {
        return None;
    }
    let probe = &m[meta.data()..meta.data() + 8];
    let full = !matches!(
        &probe[4..8],
        b"hdlr" | b"ilst" | b"mhdr" | b"ctry" | b"lang"
    );
    let (mut read, mut p) = if full {
        (12, meta.data() + 4)
    } else {
        (8, meta.data())
    };
    while read < meta.len {
        let c = atom(m, p, meta.end())?;
        if c.is(b"ilst") {
            if f.ilst_seen {
                return None;
            }
            f.ilst_seen = true;
            parse_ilst(&m[c.data()..c.end()], f)?;
            return Some(c.end());
        }
        read += c.len;
        p = c.end();
    }
    Some(p)
}

/// A reader over `stsd`'s content as lofty's cursor: seeks may pass the end, reads may not.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<u32> {
        self.take(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    }
    fn skip(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }
    /// The next box, as `AtomReader::next` inside `stsd` gives it: `Ok(None)` at the end,
    /// `Err` (decline) for anything lofty's strict reader might not take.
    fn next(&mut self) -> Result<Option<Atom>, ()> {
        if self.pos >= self.b.len() {
            return Ok(None);
        }
        let a = atom(self.b, self.pos, self.b.len()).ok_or(())?;
        self.pos = a.data();
        Ok(Some(a))
    }
}

#[derive(Default)]
struct Props {
    audio_bitrate: Option<u32>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
}

/// Which AAC audio object types lofty knows (`AudioObjectType::try_from`).
fn known_object_type(t: u8) -> bool {
    matches!(t, 1..=9 | 12..=17 | 19..=30 | 32..=46)
}

const SAMPLE_RATES: [u32; 15] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350, 0, 0,
];

fn descriptor_tag(c: &mut Cur) -> Option<u8> {
    let tag = c.u8()?;
    for _ in 0..4 {
        if c.u8()? & 0x80 == 0 {
            break;
        }
    }
    Some(tag)
}

/// `mp4a_properties`, after the sample entry's fixed fields.
fn mp4a(c: &mut Cur, p: &mut Props, duration_zero: bool) -> Option<()> {
    let Some(esds) = c.next().ok()? else {
        return Some(());
    };
    if !esds.is(b"esds") || c.u32()? != 0 {
        return Some(());
    }
    if descriptor_tag(c)? != 0x03 {
        return Some(());
    }
    c.skip(3);
    if descriptor_tag(c)? != 0x04 {
        return Some(());
    }
    c.u8()?;
    c.skip(8);
    let average_bitrate = c.u32()?;
    if descriptor_tag(c)? == 0x05 {
        let a = c.u8()?;
        let b = c.u8()?;
        let mut object_type = a >> 3;
        let mut frequency_index = ((a & 0x07) << 1) | (b >> 7);
        // Every arm below sets it (lofty's first guess is always overwritten).
        let channel_conf;
        let mut extended = false;
        if object_type == 31 {
            extended = true;
            object_type = 32 + ((a & 7) | (b >> 5));
            frequency_index = (b >> 1) & 0x0F;
        }
        if !known_object_type(object_type) {
            return None;
        }
        match frequency_index {
            0x0F => {
                let explicit = c.u24()?;
                let sample_rate;
                if extended {
                    sample_rate = explicit >> 1;
                    channel_conf = ((explicit >> 4) & 0x0F) as u8;
                } else {
                    sample_rate = explicit << 1;
                    let byte_c = c.u8()?;
                    channel_conf = ((explicit & 0x80) as u8 | (byte_c >> 1)) & 0x0F;
                }
                if sample_rate > 0 {
                    p.sample_rate = Some(sample_rate);
                }
            }
            i => {
                p.sample_rate = Some(SAMPLE_RATES[usize::from(i)]);
                if extended {
                    let byte_c = c.u8()?;
                    channel_conf = (b & 1) | (byte_c & 0xE0);
                } else {
                    channel_conf = (b >> 3) & 0x0F;
                }
            }
        }
        if channel_conf > 0 {
            p.channels = Some(channel_conf);
        }
        if object_type == 36 && c.take(5)? == b"\0ALS\0" {
            p.sample_rate = Some(c.u32()?);
            c.skip(4);
            let ch = c.u16()? as u8;
            // lofty adds one in u8 arithmetic: 255 would overflow.
            p.channels = Some(ch.checked_add(1)?);
        }
    }
    if average_bitrate > 0 || duration_zero {
        p.audio_bitrate = Some(average_bitrate / 1000);
    }
    Some(())
}

/// `alac_properties`: lofty reads it only when `stsd` is exactly 88 bytes long.
fn alac(c: &mut Cur, p: &mut Props) -> Option<()> {
    if c.b.len() != 80 {
        return Some(());
    }
    let Some(a) = c.next().ok()? else {
        return Some(());
    };
    if !a.is(b"alac") {
        return Some(());
    }
    c.skip(9);
    c.u8()?;
    c.skip(3);
    p.channels = Some(c.u8()?);
    c.skip(6);
    p.audio_bitrate = Some(c.u32()? / 1000);
    p.sample_rate = Some(c.u32()?);
    Some(())
}

/// `read_stsd`: the first sample entry, which must be `mp4a` or `alac`.
fn stsd(data: &[u8], p: &mut Props, duration_zero: bool) -> Option<()> {
    let mut c = Cur { b: data, pos: 4 };
    let entries = c.u32()?;
    if entries == 0 {
        return Some(());
    }
    let e = c.next().ok()??;
    if e.hdr != 8 {
        return None;
    }
    c.skip(8);
    let version = c.u16()?;
    if version > 2 {
        return None;
    }
    c.skip(6);
    p.channels = Some(c.u16()? as u8);
    c.skip(6);
    p.sample_rate = Some(c.u32()? >> 16);
    if version == 1 {
        c.skip(16);
    } else if version == 2 {
        let ext = c.u32()?;
        c.skip(32usize.checked_add(ext as usize)?);
    }
    match &e.ident {
        b"mp4a" => mp4a(&mut c, p, duration_zero),
        b"alac" => alac(&mut c, p),
        _ => None,
    }
}

/// `find_audio_trak`, `Mdhd::parse`, `Minf::parse` and the bitrate arithmetic of
/// `read_properties`.
fn properties(
    m: &[u8],
    traks: &[Atom],
    file_len: u64,
    mdat_len: Option<u64>,
    walked: &mut usize,
) -> Option<(Duration, Props, Option<u32>)> {
    let mut audio = false;
    let mut mdhd = None;
    let mut minf = None;
    for mdia in traks {
        if audio {
            break;
        }
        mdhd = None;
        minf = None;
        if mdia.hdr != 8 {
            return None;
        }
        let mut read = 8;
        let mut p = mdia.data();
        while read < mdia.len {
            let c = atom(m, p, mdia.end())?;
            *walked += 1;
            read += c.len;
            p = c.end();
            match &c.ident {
                b"mdhd" => mdhd = Some(c),
                b"hdlr" if c.len >= 20 => {
                    if c.hdr != 8 {
                        return None;
                    }
                    if &m[c.start + 16..c.start + 20] == b"soun" {
                        audio = true;
                    }
                }
                b"minf" => {
                    // lofty reads on inside `minf` as if its children were `mdia`'s.
                    if read != mdia.len {
                        return None;
                    }
                    minf = Some(c);
                }
                _ => {}
            }
        }
    }
    if !audio {
        return None;
    }
    let mdhd = mdhd?;
    let b = &m[mdhd.data()..mdhd.end()];
    let (timescale, duration) = match b.first()? {
        1 => {
            let b = b.get(..32)?;
            (
                u32::from_be_bytes(b[20..24].try_into().ok()?),
                u64::from_be_bytes(b[24..32].try_into().ok()?),
            )
        }
        _ => {
            let b = b.get(..20)?;
            (
                u32::from_be_bytes(b[12..16].try_into().ok()?),
                u64::from(u32::from_be_bytes(b[16..20].try_into().ok()?)),
            )
        }
    };
    let mut millis = 0;
    if timescale > 0 {
        millis = duration
            .checked_mul(1000)?
            .checked_add(u64::from(timescale >> 1))?
            / u64::from(timescale);
    }
    let length = Duration::from_millis(millis);
    let mut props = Props::default();
    let Some(minf) = minf else {
        return Some((length, props, None));
    };
    // find_child_atom(stbl)
    let mut p = minf.data();
    let mut rem = minf.len - minf.hdr;
    let mut stbl = None;
    while rem >= 8 {
        let c = atom(m, p, minf.end())?;
        *walked += 1;
        if c.is(b"stbl") {
            stbl = Some(c);
            break;
        }
        rem -= c.len;
        p = c.end();
    }
    let Some(stbl) = stbl else {
        return Some((length, props, None));
    };
    let mut stsd_data = None;
    // (entries, the first entry's sample duration)
    let mut stts = None;
    let mut p = stbl.data();
    while p < stbl.end() {
        let c = atom(m, p, stbl.end())?;
        *walked += 1;
        p = c.end();
        let body = &m[c.data()..c.end()];
        match &c.ident {
            b"stsd" => stsd_data = Some(body),
            b"stts" => {
                // lofty reads as many entries as the count says, past the box if need be.
                let count = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
                if count > MAX_STTS_ENTRIES || body.len() != 8 + 8 * count as usize {
                    return None;
                }
                let first = body
                    .get(12..16)
                    .map(|d| u32::from_be_bytes(d.try_into().unwrap()));
                stts = Some((count, first));
            }
            _ => {}
        }
    }
    let Some(stsd_data) = stsd_data else {
        return Some((length, props, None));
    };
    stsd(stsd_data, &mut props, millis == 0)?;
    let mut overall = None;
    if duration > 0 {
        let mdat_len = mdat_len?;
        if let Some((count, first)) = stts
            && !(count == 1 && first == Some(1))
        {
            let bps = (u128::from(mdat_len) * 8 * u128::from(timescale)) / u128::from(duration);
            props.audio_bitrate = Some(bps as u32 / 1000);
        }
        if millis == 0 {
            return Some((length, props, None));
        }
        let ms = u128::from(millis);
        overall = Some((u128::from(file_len.checked_mul(8)?) / ms) as u32);
        if matches!(props.audio_bitrate, None | Some(0)) {
            props.audio_bitrate = Some((u128::from(mdat_len.checked_mul(8)?) / ms) as u32);
        }
    }
    Some((length, props, overall))
}

pub fn read(held: &Held, limits: Limits) -> Option<TagInfo> {
    let file_len = held.file_len();
    let cost = |s: u64, e: u64| budget::costs_beyond_first(file_len, s, e);
    let (fhdr, flen, fident) = top_atom(held, 0)?;
    // A huge ftyp could make lofty's content guess see another format in its first byte.
    if &fident != b"ftyp" || fhdr != 8 || !(12..=1 << 20).contains(&flen) {
        return None;
    }
    std::str::from_utf8(held.get(8, 4)?).ok()?;
    let mut spent = cost(0, 36.min(file_len));
    let mut walked = 0;
    let (mut moov, mut mdat) = (None, None);
    let mut pos = flen;
    while (moov.is_none() || mdat.is_none()) && pos < file_len {
        let (hdr, len, ident) = top_atom(held, pos)?;
        spent += cost(pos, pos + hdr);
        match &ident {
            b"moov" if moov.is_none() => moov = Some((pos, hdr, len)),
            b"mdat" if mdat.is_none() => mdat = Some(len - hdr),
            _ => {}
        }
        pos += len;
        walked += 1;
        if walked > MAX_ATOMS {
            return None;
        }
    }
    let (mstart, mhdr, mlen) = moov?;
    let m = held.get(mstart, usize::try_from(mlen).ok()?)?;
    spent += cost(mstart, mstart + mlen);
    // lofty reads most of `moov` once and a few headers twice: twice everything bounds it.
    if spent.saturating_mul(2) > limits.max_tag_bytes {
        return None;
    }

    let mut f = Fields::default();
    let mut traks = [Atom {
        start: 0,
        hdr: 0,
        len: 0,
        ident: [0; 4],
    }; MAX_TRAKS];
    let mut ntraks = 0;
    let mut p = mhdr as usize;
    while p < m.len() {
        let a = atom(m, p, m.len())?;
        walked += 1;
        if walked > MAX_ATOMS {
            return None;
        }
        match &a.ident {
            b"trak" => {
                let mut q = a.data();
                let mut rem = a.len - a.hdr;
                let mut mdia = None;
                while rem >= 8 {
                    let c = atom(m, q, a.end())?;
                    walked += 1;
                    if c.is(b"mdia") {
                        mdia = Some(c);
                        break;
                    }
                    rem -= c.len;
                    q = c.end();
                }
                match mdia {
                    Some(c) => {
                        *traks.get_mut(ntraks)? = c;
                        ntraks += 1;
                        p = c.end();
                    }
                    // Bytes left over would be read as the next box by lofty.
                    None if rem != 0 => return None,
                    None => p = q,
                }
            }
            b"udta" => p = udta(m, a, &mut f)?,
            _ => p = a.end(),
        }
    }

    let (length, props, overall) = properties(m, &traks[..ntraks], file_len, mdat, &mut walked)?;
    if walked > MAX_ATOMS {
        return None;
    }

    let text = |t: Option<Text>| t.and_then(|t| clean_text(&t.str()));
    let recording = f.recording_date.map(Text::str);
    let (release, original) = (
        f.release_date.map(Text::str),
        f.original_date.map(Text::str),
    );
    let year = year_of(
        recording.as_deref(),
        [
            None,
            recording.as_deref(),
            release.as_deref(),
            original.as_deref(),
        ],
    );
    let genre = match f.genre {
        Some(t) => text(Some(t)),
        None if !f.has_gen_atom => f.gnre.and_then(clean_text),
        None => None,
    };
    Some(TagInfo {
        artist: text(f.artist),
        title: text(f.title),
        album: text(f.album),
        album_artist: text(f.album_artist),
        track_number: f.track.map(u32::from),
        year,
        genre,
        duration: Some(length.as_secs_f64()),
        bitrate: props.audio_bitrate.or(overall),
        sample_rate: props.sample_rate,
        channels: props.channels,
    })
}
