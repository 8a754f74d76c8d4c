//! The MP3 reader against lofty over seeded, generated files: ID3v2.3 and 2.4 tags of
//! many shapes (every text encoding, multiple values, duplicate frames, track and date
//! shapes lofty treats in its own ways, numeric genres, pictures, padding, frames and
//! flags the reader declines), junk before the first frame, Xing/Info/VBRI headers,
//! ID3v1 tags, streams cut to a few frames. Every answer must be lofty's; and the reader
//! must answer for the plain shapes, or a reader that declines everything would pass.

use fastrand::Rng;

use super::tests::Tally;
use std::path::Path;

const TEMPLATE: &[u8] = include_bytes!("../../../fixtures/templates/template.mp3");

const TEXTS: &[&str] = &[
    "Title",
    "Björk Guðmundsdóttir",
    "東京事変",
    "",
    "   ",
    "a\0b",
    "\0second",
    "trailing\0\0",
    "Ünïcödé ñ",
    "emoji 🎵",
    "x",
    "Long long long long long long long long long long long long long long value",
];
const DESCRIPTIONS: &[&str] = &[
    "",
    "MusicBrainz Album Id",
    "replaygain_track_gain",
    "ALBUMARTIST",
    "album artist",
    "tit2",
    "Tcon",
    "TRCK",
    "tdrc",
    "Year",
    "Ünïcödé",
    "iTunNORM",
];
const TRACKS: &[&str] = &[
    "3",
    "3/12",
    " 4 ",
    "x",
    "3/x",
    "",
    "0",
    "+5",
    "3\x005",
    "7/",
    "/7",
    "12/12/12",
    "4294967296",
];
const GENRES: &[&str] = &[
    "Rock",
    "(13)",
    "13",
    "(13)Pop",
    "((foo)",
    "RX",
    "CR",
    "255",
    "\0Rock",
    "Rock\0Pop",
    "(999)",
    "()",
    "191",
    "192",
    "Electronic",
    "",
];
const DATES: &[&str] = &[
    "2001",
    "2001-02-03",
    "2001-13-01",
    "2001-02-03T04:05:06",
    "2001-02-03T04:05",
    "2001.02",
    "01",
    "",
    "20010203",
    "2001-02-03T25",
    "abcd",
    "1999 ",
    "0000",
    "2001-02-32",
    "2001-00",
    "2001-02-03T04:05:06 and more text",
    "2001\x002002",
];

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(0..from.len())]
}

/// `text` in ID3v2 encoding `enc` (0 Latin-1, 1 UTF-16 with BOM, 2 UTF-16BE, 3 UTF-8);
/// sometimes with a trailing terminator, as some taggers write.
fn encode(rng: &mut Rng, enc: u8, text: &str) -> Vec<u8> {
    let mut out = vec![enc];
    match enc {
        0 => out.extend(
            text.chars()
                .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }),
        ),
        1 => {
            let le = rng.bool();
            // Each value of a multi-value frame carries its own BOM.
            for (i, part) in text.split('\0').enumerate() {
                if i > 0 {
                    out.extend([0, 0]);
                }
                out.extend(if le { [0xFF, 0xFE] } else { [0xFE, 0xFF] });
                for u in part.encode_utf16() {
                    out.extend(if le { u.to_le_bytes() } else { u.to_be_bytes() });
                }
            }
        }
        2 => out.extend(text.encode_utf16().flat_map(u16::to_be_bytes)),
        _ => out.extend(text.as_bytes()),
    }
    if rng.u8(0..6) == 0 {
        out.extend(if enc == 1 || enc == 2 {
            &[0u8, 0][..]
        } else {
            &[0u8][..]
        });
    }
    out
}

fn frame(out: &mut Vec<u8>, v4: bool, id: &[u8], body: &[u8], flags: u16) {
    out.extend_from_slice(id);
    let n = body.len() as u32;
    if v4 {
        out.extend([
            (n >> 21) as u8 & 0x7f,
            (n >> 14) as u8 & 0x7f,
            (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]);
    } else {
        out.extend(n.to_be_bytes());
    }
    out.extend(flags.to_be_bytes());
    out.extend_from_slice(body);
}

/// A random ID3v2 tag; mostly shapes the reader answers for, sometimes ones it declines.
fn id3v2(rng: &mut Rng) -> Vec<u8> {
    let v4 = rng.bool();
    let mut frames = Vec::new();
    let n = rng.usize(0..9);
    for _ in 0..n {
        let enc = match rng.u8(0..20) {
            0 => 5,
            1..=4 => 0,
            5..=9 => 1,
            10..=11 => 2,
            _ => 3,
        };
        let flags = if rng.u8(0..25) == 0 {
            1u16 << rng.u32(0..16)
        } else {
            0
        };
        let (id, text): (&[u8], &str) = match rng.u8(0..26) {
            0..=2 => (b"TIT2", pick(rng, TEXTS)),
            3..=4 => (b"TPE1", pick(rng, TEXTS)),
            5 => (b"TALB", pick(rng, TEXTS)),
            6 => (b"TPE2", pick(rng, TEXTS)),
            7..=8 => (b"TRCK", pick(rng, TRACKS)),
            9..=10 => (b"TCON", pick(rng, GENRES)),
            11..=12 => (if v4 { b"TDRC" } else { b"TYER" }, pick(rng, DATES)),
            13 => (b"TDRL", pick(rng, DATES)),
            14 => (if v4 { b"TDOR" } else { b"TORY" }, pick(rng, DATES)),
            15 => (b"TSSE", pick(rng, TEXTS)),
            16 => (b"TLEN", "12345"),
            17 => (
                if rng.bool() { b"TDAT" } else { b"TIME" },
                [
                    "0302", "3213", "0313", "2460", "1259", "+1+2", "12", "", "ab12",
                ][rng.usize(0..9)],
            ),
            18 => {
                let desc = pick(rng, DESCRIPTIONS);
                let value = pick(rng, TEXTS);
                let mut body = encode(rng, enc, desc);
                if enc == 1 || enc == 2 {
                    body.extend([0, 0]);
                } else {
                    body.push(0);
                }
                if rng.bool() {
                    body.extend(&encode(rng, enc, value)[1..]);
                } else if enc == 1 {
                    // Only the description carries a byte order mark.
                    body.extend(value.encode_utf16().flat_map(u16::to_le_bytes));
                }
                frame(&mut frames, v4, b"TXXX", &body, flags);
                continue;
            }
            19 => {
                let mut body = vec![enc];
                body.extend([b"eng", b"XXX", b"\0\0\0"][rng.usize(0..3)]);
                let desc = pick(rng, DESCRIPTIONS);
                body.extend(&encode(rng, enc, desc)[1..]);
                if enc == 1 || enc == 2 {
                    body.extend([0, 0]);
                } else {
                    body.push(0);
                }
                if rng.u8(0..3) == 0 {
                    body.extend(pick(rng, TEXTS).encode_utf16().flat_map(u16::to_be_bytes));
                } else {
                    let text = pick(rng, TEXTS);
                    body.extend(&encode(rng, enc, text)[1..]);
                }
                if rng.u8(0..5) == 0 {
                    body.truncate(rng.usize(0..body.len()));
                }
                let id: &[u8] = if rng.bool() { b"COMM" } else { b"USLT" };
                frame(&mut frames, v4, id, &body, flags);
                continue;
            }
            20 => (b"TDRC", pick(rng, DATES)),
            21 => {
                let bodies: [&[u8]; 8] = [
                    b"http://musicbrainz.org\0abc-123",
                    b"\0abc",
                    b"owner\0",
                    b"http://x.org/",
                    b"http://x.org/\0",
                    b"http://x.org/\0junk",
                    b"\0",
                    b"",
                ];
                let body = bodies[rng.usize(0..bodies.len())];
                let id: &[u8] = [b"UFID", b"PRIV", b"WOAR", b"WCOM"][rng.usize(0..4)];
                frame(&mut frames, v4, id, body, flags);
                continue;
            }
            _ => {
                let mut body = vec![0u8];
                body.extend(b"image/png\0\x03Cover\0");
                body.extend((0..rng.usize(0..3000)).map(|_| rng.u8(..)));
                frame(&mut frames, v4, b"APIC", &body, flags);
                continue;
            }
        };
        let body = if rng.u8(0..40) == 0 {
            Vec::new()
        } else {
            let mut b = encode(rng, enc, text);
            if (enc == 1 || enc == 2) && rng.u8(0..20) == 0 {
                b.push(b'x');
            }
            b
        };
        frame(&mut frames, v4, id, &body, flags);
    }
    frames.resize(frames.len() + [0, 0, 10, 100, 1000][rng.usize(0..5)], 0);
    let mut out = b"ID3".to_vec();
    out.push(if v4 { 4 } else { 3 });
    out.push(0);
    out.push(if rng.u8(0..30) == 0 {
        1 << rng.u32(4..8)
    } else {
        0
    });
    let n = frames.len() as u32;
    out.extend([
        (n >> 21) as u8 & 0x7f,
        (n >> 14) as u8 & 0x7f,
        (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ]);
    out.extend(frames);
    out
}

fn id3v1(rng: &mut Rng) -> Vec<u8> {
    let mut t = vec![0u8; 128];
    t[..3].copy_from_slice(b"TAG");
    for (at, s) in [
        (3, pick(rng, TEXTS)),
        (33, pick(rng, TEXTS)),
        (63, pick(rng, TEXTS)),
    ] {
        let b: Vec<u8> = s
            .chars()
            .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
            .take(30)
            .collect();
        t[at..at + b.len()].copy_from_slice(&b);
    }
    let year: &[u8; 4] = [b"1999", b"0999", b"\0\0\0\0", b"2024", b"19x9"][rng.usize(0..5)];
    t[93..97].copy_from_slice(year);
    if rng.bool() {
        t[125] = 0;
        t[126] = rng.u8(..);
    } else {
        t[97..127].fill(b'c');
    }
    t[127] = rng.u8(..);
    t
}

/// The template's frames (MPEG-1 Layer III, CBR, no VBR header), `frames` of them.
fn audio(rng: &mut Rng, frames: usize) -> Vec<u8> {
    let mut pos = 0;
    for _ in 0..frames {
        let h = &TEMPLATE[pos..pos + 4];
        if h[0] != 0xff {
            break;
        }
        let kbps = [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ][usize::from(h[2] >> 4)];
        let rate = [44100, 48000, 32000][usize::from((h[2] >> 2) & 3)];
        pos += 144_000 * kbps / rate + usize::from((h[2] >> 1) & 1);
        if pos + 4 > TEMPLATE.len() {
            break;
        }
    }
    let mut out = TEMPLATE[..pos].to_vec();
    // A Xing, Info or VBRI header where lofty looks for one (after the side information).
    match rng.u8(0..6) {
        0 | 1 => {
            let at = 4 + 32;
            let tag: &[u8] = if rng.bool() { b"Xing" } else { b"Info" };
            out[at..at + 4].copy_from_slice(tag);
            out[at + 4..at + 8].copy_from_slice(&[0, 0, 0, rng.u8(0..16)]);
            out[at + 8..at + 12].copy_from_slice(&rng.u32(0..2000).to_be_bytes());
            out[at + 12..at + 16].copy_from_slice(&rng.u32(0..5_000_000).to_be_bytes());
        }
        2 => {
            let at = 4 + 32;
            out[at..at + 4].copy_from_slice(b"VBRI");
            out[at + 10..at + 14].copy_from_slice(&rng.u32(0..5_000_000).to_be_bytes());
            out[at + 14..at + 18].copy_from_slice(&rng.u32(0..2000).to_be_bytes());
        }
        _ => {}
    }
    out
}

fn file(rng: &mut Rng) -> Vec<u8> {
    let mut out = if rng.u8(0..8) == 0 {
        Vec::new()
    } else {
        id3v2(rng)
    };
    match rng.u8(0..10) {
        0 => out.extend(vec![0u8; rng.usize(1..50)]),
        1 => out.extend((0..rng.usize(1..50)).map(|_| rng.u8(..))),
        _ => {}
    }
    let frames = [1, 2, 3, 5, 8, 40, 1000][rng.usize(0..7)];
    out.extend(audio(rng, frames));
    match rng.u8(0..10) {
        0 => out.extend((0..rng.usize(1..300)).map(|_| rng.u8(..))),
        1..=3 => out.extend(id3v1(rng)),
        _ => {}
    }
    out
}

#[test]
fn generated_mp3s_agree_with_lofty() {
    let mut rng = Rng::with_seed(0x1d3);
    let mut tally = Tally::default();
    let path = Path::new("g.mp3");
    for _ in 0..2500 {
        let data = file(&mut rng);
        if let Some(dump) = std::env::var_os("I10M_DUMP") {
            std::fs::write(dump, &data).unwrap();
        }
        tally.check(&data, path);
    }
    // Most generated files are plain shapes the reader must answer for.
    let share = tally.share("mp3");
    eprintln!("mp3 reader answered for {share:.3}");
    assert!(share >= 0.3, "the mp3 reader answered for only {share:.3}");
}

/// Tags lofty itself writes (ID3v2.4 and, converted on the way out, ID3v2.3; ID3v1
/// beside them) onto the template, through its accessors and as raw frames, each in a
/// random text encoding.
#[test]
fn lofty_written_tags_agree_with_lofty() {
    use lofty::TextEncoding;
    use lofty::config::WriteOptions;
    use lofty::id3::v1::Id3v1Tag;
    use lofty::id3::v2::{ExtendedTextFrame, Frame, FrameId, Id3v2Tag, TextInformationFrame};
    use lofty::tag::{Accessor, TagExt};

    let mut rng = Rng::with_seed(0x10f7);
    let dir = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    let encodings = [
        TextEncoding::Latin1,
        TextEncoding::UTF16,
        TextEncoding::UTF16BE,
        TextEncoding::UTF8,
    ];
    for i in 0..150 {
        let path = dir.path().join(format!("w{i}.mp3"));
        let frames = [2, 5, 40][rng.usize(0..3)];
        std::fs::write(&path, audio(&mut rng, frames)).unwrap();
        let mut tag = Id3v2Tag::default();
        let enc = encodings[rng.usize(0..4)];
        for id in ["TIT2", "TPE1", "TALB", "TPE2", "TCON", "TRCK", "TSSE"] {
            if rng.u8(0..4) == 0 {
                continue;
            }
            let value = match id {
                "TRCK" => pick(&mut rng, TRACKS),
                "TCON" => pick(&mut rng, GENRES),
                _ => pick(&mut rng, TEXTS),
            };
            // Latin-1 cannot carry every value: lofty refuses to write it then.
            let enc = if enc == TextEncoding::Latin1 && value.chars().any(|c| c as u32 > 255) {
                TextEncoding::UTF8
            } else {
                enc
            };
            let frame = TextInformationFrame::new(FrameId::new(id).unwrap(), enc, value);
            tag.insert(Frame::Text(frame));
        }
        match rng.u8(0..4) {
            0 => tag.set_date(lofty::tag::items::Timestamp {
                year: rng.u16(1900..2030),
                ..Default::default()
            }),
            1 => {
                let date = pick(&mut rng, DATES);
                if let Ok(ts) = date.parse() {
                    tag.set_date(ts);
                }
            }
            _ => {}
        }
        if rng.bool() {
            let desc = pick(&mut rng, DESCRIPTIONS);
            let value = pick(&mut rng, TEXTS);
            tag.insert(Frame::UserText(ExtendedTextFrame::new(
                TextEncoding::UTF16,
                desc,
                value,
            )));
        }
        if rng.bool() {
            tag.set_comment(pick(&mut rng, TEXTS).to_string());
        }
        let v3 = rng.bool();
        let opts = WriteOptions::default()
            .use_id3v23(v3)
            .preferred_padding(rng.u32(0..2000));
        tag.save_to_path(&path, opts).unwrap();
        if rng.bool() {
            let mut v1 = Id3v1Tag::new();
            v1.title = Some("v1 title".into());
            v1.artist = Some("v1 artist".into());
            v1.year = Some(rng.u16(0..3000));
            v1.track_number = Some(rng.u8(1..=255));
            v1.genre = Some(rng.u8(..));
            v1.save_to_path(&path, WriteOptions::default()).unwrap();
        }
        tally.check_file(&path);
    }
    let share = tally.share("mp3");
    eprintln!("mp3 reader answered for {share:.3}");
    assert!(share >= 0.3, "the mp3 reader answered for only {share:.3}");
}
