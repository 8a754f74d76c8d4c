//! MP4/M4A cases for the differential contract: files built from the template with `ilst`
//! items of many shapes (case-mixed names, UTF-8 and UTF-16 values, several values per
//! item, empty and NUL-padded values, `trkn` pairs, legacy `gnre`, freeform dates, cover
//! art, padding), audio properties varied (`mdhd` versions and timescales, `stts` shapes,
//! the decoder config's bitrate, sample-rate index and channels) and layouts varied
//! (`moov` before or after `mdat`, 64-bit sizes, `free` boxes, files past the head and
//! tail chunks), plus tags written by lofty itself. Every answer must equal lofty's strict
//! parse, and every file built without a deliberate defect must be answered.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use fastrand::Rng;
use lofty::config::{ParsingMode, WriteOptions};
use lofty::mp4::{Atom, AtomData, AtomIdent, Ilst};
use lofty::tag::items::Timestamp;
use lofty::tag::{Accessor, TagExt};

use super::tests::Tally;
use super::*;
use crate::media::budget::Limits;

const TEMPLATE: &[u8] = include_bytes!("../../../fixtures/templates/template.m4a");
const CONTAINERS: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf",
];

#[derive(Clone)]
enum Node {
    Leaf([u8; 4], Vec<u8>),
    Parent([u8; 4], Vec<Node>),
}

fn parse_nodes(mut d: &[u8]) -> Vec<Node> {
    let mut out = Vec::new();
    while d.len() >= 8 {
        let size = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
        let ident: [u8; 4] = d[4..8].try_into().unwrap();
        let body = &d[8..size];
        out.push(if CONTAINERS.contains(&&ident) {
            Node::Parent(ident, parse_nodes(body))
        } else {
            Node::Leaf(ident, body.to_vec())
        });
        d = &d[size..];
    }
    out
}

fn boxed(out: &mut Vec<u8>, ident: &[u8], body: &[u8], wide: bool) {
    if wide {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(ident);
        out.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
        out.extend_from_slice(ident);
    }
    out.extend_from_slice(body);
}

fn write_node(out: &mut Vec<u8>, n: &Node, wide: bool) {
    match n {
        Node::Leaf(id, body) => boxed(out, id, body, wide),
        Node::Parent(id, kids) => {
            let mut body = Vec::new();
            for k in kids {
                write_node(&mut body, k, false);
            }
            boxed(out, id, &body, wide);
        }
    }
}

fn find<'a>(nodes: &'a mut [Node], path: &[&[u8; 4]]) -> Option<&'a mut Node> {
    let (first, rest) = path.split_first()?;
    let n = nodes.iter_mut().find(|n| match n {
        Node::Leaf(id, _) | Node::Parent(id, _) => id == *first,
    })?;
    if rest.is_empty() {
        return Some(n);
    }
    match n {
        Node::Parent(_, kids) => find(kids, rest),
        Node::Leaf(..) => None,
    }
}

fn leaf<'a>(nodes: &'a mut [Node], path: &[&[u8; 4]]) -> &'a mut Vec<u8> {
    match find(nodes, path) {
        Some(Node::Leaf(_, body)) => body,
        _ => panic!("template lacks {path:?}"),
    }
}

fn data_atom(out: &mut Vec<u8>, code: u32, payload: &[u8]) {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(payload);
    boxed(out, b"data", &body, false);
}

fn flip_case(rng: &mut Rng, ident: &[u8; 4]) -> [u8; 4] {
    let mut id = *ident;
    if rng.u8(0..4) == 0 {
        for b in &mut id {
            if rng.bool() {
                *b = if b.is_ascii_lowercase() {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
            }
        }
    }
    id
}

fn text(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "Neon",
        "Lights",
        "So What",
        "Beyoncé",
        "坂本龍一",
        "Ωmega",
        "AC/DC",
        "x",
    ];
    match rng.u8(0..12) {
        0 => String::new(),
        1 => "   ".into(),
        2 => "\0".into(),
        3 => format!("{}\0\0", WORDS[rng.usize(..WORDS.len())]),
        4 => WORDS[rng.usize(..WORDS.len())].repeat(rng.usize(20..120)),
        5 => format!("  {} ", WORDS[rng.usize(..WORDS.len())]),
        _ => {
            let n = rng.usize(1..4);
            (0..n)
                .map(|_| WORDS[rng.usize(..WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

fn date(rng: &mut Rng) -> String {
    const DATES: &[&str] = &[
        "2001",
        "2001-03-04",
        "1999-12-31T10:20:30",
        " 1987",
        "87",
        "Oct 3, 1995",
        "2001/03/04",
        "20010304",
        "abcd",
        "19 7",
        "2001-3-4",
        "2001 ",
        "",
        "  ",
        "2001-03-04T",
        "1995.05.06",
        "12345",
        "2001-13-45",
        "2001T1030",
        "\t2004-05",
    ];
    if rng.u8(0..4) == 0 {
        return format!("{}", rng.u16(1000..2100));
    }
    DATES[rng.usize(..DATES.len())].to_string()
}

/// A text value as one `data` atom; `bad` is set when the bytes are deliberately invalid.
fn text_data(rng: &mut Rng, out: &mut Vec<u8>, s: &str, bad: &mut bool) {
    match rng.u8(0..20) {
        0..=13 => data_atom(out, 1, s.as_bytes()),
        14..=16 => {
            let mut b = Vec::new();
            if rng.bool() {
                b.extend_from_slice(&[0xFE, 0xFF]);
            }
            for u in s.encode_utf16() {
                b.extend_from_slice(&u.to_be_bytes());
            }
            if rng.u8(0..4) == 0 {
                b.push(0x41);
            }
            data_atom(out, 2, &b);
        }
        17 => data_atom(out, 0, s.as_bytes()),
        18 => {
            let n = rng.usize(1..=4);
            data_atom(
                out,
                21,
                &s.as_bytes()
                    .iter()
                    .copied()
                    .chain([7; 4])
                    .take(n)
                    .collect::<Vec<_>>(),
            );
        }
        _ => {
            // Invalid UTF-8: lofty's strict parse fails, so the reader must decline.
            *bad = true;
            data_atom(out, 1, &[0x41, 0xFF, 0xFE, 0x42]);
        }
    }
}

fn ilst(rng: &mut Rng, bad: &mut bool) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(0..12) {
        let mut item = Vec::new();
        let kind = rng.u8(0..16);
        let ident: [u8; 4] = match kind {
            0..=7 => {
                const TEXT: &[&[u8; 4]] = &[
                    b"\xa9ART", b"\xa9nam", b"\xa9alb", b"aART", b"\xa9gen", b"\xa9day",
                    b"\xa9cmt", b"\xa9wrt",
                ];
                let pick = TEXT[rng.usize(..TEXT.len())];
                let id = flip_case(rng, pick);
                for _ in 0..rng.usize(1..=3) {
                    let v = if &id.to_ascii_lowercase() == b"\xa9day" {
                        date(rng)
                    } else {
                        text(rng)
                    };
                    text_data(rng, &mut item, &v, bad);
                }
                id
            }
            8 | 9 => {
                for _ in 0..rng.usize(1..=2) {
                    let mut p = vec![0u8; if rng.u8(0..5) == 0 { 4 } else { 8 }];
                    let cur = if rng.u8(0..5) == 0 { 0 } else { rng.u16(1..40) };
                    p[2..4].copy_from_slice(&cur.to_be_bytes());
                    if p.len() >= 6 {
                        p[4..6].copy_from_slice(&rng.u16(0..40).to_be_bytes());
                    }
                    data_atom(&mut item, 0, &p);
                }
                *b"trkn"
            }
            10 => {
                for _ in 0..rng.usize(1..=2) {
                    data_atom(&mut item, 0, &[0, rng.u8(0..200)]);
                }
                *b"gnre"
            }
            11 | 12 => {
                let mut mean = Vec::new();
                let m = if rng.u8(0..4) == 0 {
                    "COM.apple.itunes"
                } else {
                    "com.apple.iTunes"
                };
                boxed(
                    &mut mean,
                    b"mean",
                    &[&[0u8; 4][..], m.as_bytes()].concat(),
                    false,
                );
                const NAMES: &[&str] = &[
                    "RELEASEDATE",
                    "ORIGINALDATE",
                    "originaldate",
                    "MOOD",
                    "DATE",
                ];
                let name = NAMES[rng.usize(..NAMES.len())];
                boxed(
                    &mut mean,
                    b"name",
                    &[&[0u8; 4][..], name.as_bytes()].concat(),
                    false,
                );
                item.extend_from_slice(&mean);
                let v = date(rng);
                text_data(rng, &mut item, &v, bad);
                *b"----"
            }
            13 => {
                let n = rng.usize(16..3000);
                data_atom(&mut item, 13, &vec![0xD8; n]);
                *b"covr"
            }
            14 => {
                data_atom(&mut item, 21, &[rng.u8(..)]);
                *b"cpil"
            }
            _ => {
                item.extend_from_slice(&vec![0; rng.usize(0..40)]);
                *b"free"
            }
        };
        if rng.u8(0..10) == 0 && &ident != b"free" {
            // An empty data atom: lofty skips it.
            data_atom(&mut item, 1, b"");
        }
        boxed(&mut out, &ident, &item, false);
    }
    out
}

fn udta(rng: &mut Rng, bad: &mut bool) -> Node {
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(b"mdirappl");
    hdlr.extend_from_slice(&[0; 9]);
    let mut meta_body = Vec::new();
    let full = rng.u8(0..6) != 0;
    if full {
        meta_body.extend_from_slice(&[0; 4]);
    }
    boxed(&mut meta_body, b"hdlr", &hdlr, false);
    let items = ilst(rng, bad);
    boxed(&mut meta_body, b"ilst", &items, rng.u8(0..8) == 0);
    if rng.bool() {
        boxed(&mut meta_body, b"free", &vec![0; rng.usize(0..200)], false);
    }
    let mut kids = Vec::new();
    if rng.u8(0..5) == 0 {
        kids.push(Node::Leaf(*b"XTRA", vec![1; rng.usize(0..30)]));
    }
    kids.push(Node::Leaf(*b"meta", meta_body));
    Node::Parent(*b"udta", kids)
}

/// One generated file and whether it carries a deliberate defect.
fn build(rng: &mut Rng) -> (Vec<u8>, bool) {
    let mut bad = false;
    let top = parse_nodes(TEMPLATE);
    let mut ftyp = Vec::new();
    let mut moov = Vec::new();
    let mut mdat = Vec::new();
    for n in &top {
        match n {
            Node::Leaf(id, body) if id == b"ftyp" => boxed(&mut ftyp, id, body, false),
            Node::Leaf(id, body) if *id == *b"mdat" => mdat = body.clone(),
            Node::Parent(id, kids) if *id == *b"moov" => moov = kids.clone(),
            _ => {}
        }
    }
    moov.retain(|n| !matches!(n, Node::Parent(id, _) if id == b"udta"));

    // The media header: version, timescale, duration.
    let mdhd = leaf(&mut moov, &[b"trak", b"mdia", b"mdhd"]);
    let timescale = match rng.u8(0..8) {
        0 => 0,
        1 => 1000,
        2 => 48000,
        3 => rng.u32(1..1_000_000),
        _ => 44100,
    };
    let duration: u64 = match rng.u8(0..8) {
        0 => 0,
        1 => rng.u64(1..100),
        _ => rng.u64(1..(u64::from(timescale.max(1)) * 600)),
    };
    let lang = mdhd[mdhd.len() - 4..].to_vec();
    let mut m = Vec::new();
    if rng.u8(0..3) == 0 {
        m.extend_from_slice(&[1, 0, 0, 0]);
        m.extend_from_slice(&[0; 16]);
        m.extend_from_slice(&timescale.to_be_bytes());
        m.extend_from_slice(&duration.to_be_bytes());
    } else {
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&timescale.to_be_bytes());
        m.extend_from_slice(&(duration as u32).to_be_bytes());
    }
    m.extend_from_slice(&lang);
    *mdhd = m;

    // The sample table's durations: one entry of 1 means "no durations" to lofty.
    let stts = leaf(&mut moov, &[b"trak", b"mdia", b"minf", b"stbl", b"stts"]);
    match rng.u8(0..4) {
        0 => {
            *stts = [0u32, 1, 5000, 1]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect()
        }
        1 => {
            *stts = [0u32, 1, 5000, 1024]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect()
        }
        _ => {}
    }

    // The decoder config: average bitrate, sample-rate index, channels.
    let stsd = leaf(&mut moov, &[b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
    let esds = stsd.windows(4).position(|w| w == b"esds").unwrap();
    let avg = esds + 4 + 4 + 5 + 3 + 5 + 1 + 1 + 3 + 4;
    let bitrate = if rng.bool() { 0 } else { rng.u32(..400_000) };
    stsd[avg..avg + 4].copy_from_slice(&bitrate.to_be_bytes());
    let asc = avg + 4 + 5;
    if rng.bool() {
        // AAC LC, a sample-rate index of 0-14 (13 and 14 mean 0 Hz), 0-7 channels.
        let index = rng.u8(0..15);
        let channels = rng.u8(0..8);
        stsd[asc] = (2 << 3) | (index >> 1);
        stsd[asc + 1] = ((index & 1) << 7) | (channels << 3);
    }
    let channel_field = esds - 4 - 36 + 24;
    if rng.u8(0..4) == 0 {
        stsd[channel_field..channel_field + 2].copy_from_slice(&rng.u16(0..9).to_be_bytes());
    }

    if rng.u8(0..8) != 0 {
        let u = udta(rng, &mut bad);
        if rng.bool() {
            moov.push(u);
        } else {
            moov.insert(0, u);
        }
    }
    if rng.u8(0..10) == 0 {
        moov.push(Node::Leaf(*b"free", vec![0; rng.usize(0..64)]));
    }
    let mut moov_bytes = Vec::new();
    write_node(
        &mut moov_bytes,
        &Node::Parent(*b"moov", moov),
        rng.u8(0..6) == 0,
    );

    // Past two chunks, only the head and the tail are held.
    if rng.u8(0..4) == 0 {
        mdat.resize(mdat.len() + rng.usize(100_000..300_000), 0x21);
    }
    let mut mdat_bytes = Vec::new();
    boxed(&mut mdat_bytes, b"mdat", &mdat, rng.u8(0..6) == 0);

    let mut file = ftyp;
    if rng.u8(0..5) == 0 {
        boxed(&mut file, b"free", &vec![0; rng.usize(0..100)], false);
    }
    if rng.u8(0..3) == 0 {
        file.extend_from_slice(&mdat_bytes);
        file.extend_from_slice(&moov_bytes);
    } else {
        file.extend_from_slice(&moov_bytes);
        file.extend_from_slice(&mdat_bytes);
    }
    (file, bad)
}

fn answered(data: &[u8], path: &Path) -> bool {
    let whole = [Segment {
        offset: 0,
        data: data.to_vec(),
    }];
    read(
        &Held::new(data.len() as u64, &whole),
        path,
        Limits::default(),
    )
    .is_some()
}

#[test]
fn generated_m4a_files_agree_with_lofty() {
    let mut rng = Rng::with_seed(1010);
    let mut tally = Tally::default();
    let (mut valid, mut declined) = (0, Vec::new());
    for i in 0..500 {
        let (data, bad) = build(&mut rng);
        let ext = ["m4a", "m4a", "m4a", "mp4", "m4b"][i % 5];
        let path = PathBuf::from(format!("g{i}.{ext}"));
        tally.check(&data, &path);
        if !bad {
            valid += 1;
            if !answered(&data, &path) {
                declined.push(i);
            }
        }
    }
    assert!(valid > 150, "only {valid} well-formed files");
    assert!(
        declined.is_empty(),
        "declined {} of {valid} well-formed files: {:?}",
        declined.len(),
        &declined[..declined.len().min(20)]
    );
    assert!(tally.share("m4a") > 0.7);
}

#[test]
fn mutants_of_generated_m4a_files_agree_with_lofty() {
    let mut rng = Rng::with_seed(2024);
    let mut tally = Tally::default();
    for i in 0..400 {
        let (data, _) = build(&mut rng);
        let (bytes, _) = crate::r#gen::mutate::mutate(&mut rng, &data);
        tally.check(&bytes, &PathBuf::from(format!("m{i}.m4a")));
    }
}

#[test]
fn tags_written_by_lofty_agree_with_lofty() {
    let mut rng = Rng::with_seed(77);
    let mut tally = Tally::default();
    let mut written = 0;
    for i in 0..60 {
        let (base, _) = build(&mut rng);
        let mut ilst = Ilst::new();
        ilst.set_artist(text(&mut rng));
        ilst.set_title(text(&mut rng));
        if rng.bool() {
            ilst.set_album(text(&mut rng));
        }
        if rng.bool() {
            ilst.set_genre(text(&mut rng));
        }
        if rng.bool() {
            ilst.set_track(rng.u32(1..30));
        }
        if rng.bool() {
            ilst.insert(Atom::new(
                AtomIdent::Fourcc(*b"\xa9day"),
                AtomData::UTF8(date(&mut rng)),
            ));
        }
        if rng.bool() {
            let values = (0..rng.usize(2..4))
                .map(|_| AtomData::UTF8(text(&mut rng)))
                .collect();
            if let Some(a) = Atom::from_collection(AtomIdent::Fourcc(*b"aART"), values) {
                ilst.insert(a);
            }
        }
        if rng.bool() {
            ilst.insert(Atom::new(
                AtomIdent::Freeform {
                    mean: "com.apple.iTunes".into(),
                    name: "RELEASEDATE".into(),
                },
                AtomData::UTF8(date(&mut rng)),
            ));
        }
        let mut file = Cursor::new(base);
        if ilst.save_to(&mut file, WriteOptions::default()).is_err() {
            continue;
        }
        written += 1;
        let data = file.into_inner();
        let path = PathBuf::from(format!("w{i}.m4a"));
        tally.check(&data, &path);
        assert!(answered(&data, &path), "w{i}: lofty's own tag was declined");
    }
    assert!(written >= 50, "only {written} files written");
}

#[test]
fn the_year_agrees_with_lofty_timestamps() {
    let mut rng = Rng::with_seed(5);
    const ALPHABET: &[u8] = b"0123456789 -.T:/a\t";
    for i in 0..20_000 {
        let s: String = if i % 4 == 0 {
            date(&mut rng)
        } else {
            (0..rng.usize(0..24))
                .map(|_| {
                    let b = ALPHABET[rng.usize(..ALPHABET.len())];
                    char::from(if rng.u8(0..3) == 0 {
                        rng.u8(b'0'..=b'9')
                    } else {
                        b
                    })
                })
                .collect()
        };
        let want = Timestamp::parse(&mut s.as_bytes(), ParsingMode::Relaxed)
            .ok()
            .flatten()
            .map(|t| t.year);
        assert_eq!(super::timestamp_year(&s), want, "{s:?}");
    }
}
