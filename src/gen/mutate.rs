//! The robustness suite's files (`musicdex-dev gen-robustness`): seeded mutants of real audio
//! files, and pathological files as a batch scanner meets them (unfinished downloads that
//! were preallocated, junk heads, size fields that lie). The big ones are sparse, so a
//! 3 GiB file costs no disk. The same seed always writes the same bytes.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fastrand::Rng;

const MP3: &[u8] = include_bytes!("../../fixtures/templates/template.mp3");
const FLAC: &[u8] = include_bytes!("../../fixtures/templates/template.flac");
const M4A: &[u8] = include_bytes!("../../fixtures/templates/template.m4a");
const OGG: &[u8] = include_bytes!("../../fixtures/templates/template.ogg");
const OPUS: &[u8] = include_bytes!("../../fixtures/templates/template.opus");
const WAV: &[u8] = include_bytes!("../../fixtures/templates/template.wav");
const AIFF: &[u8] = include_bytes!("../../fixtures/templates/template.aiff");

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Extensions a mutant may be renamed to (a wrong extension is one of the mutations).
const EXTS: &[&str] = &["mp3", "flac", "m4a", "ogg", "opus", "wav", "aiff"];

/// One mutant of `data`: the bytes and a word for what was done (it goes in the name).
pub fn mutate(rng: &mut Rng, data: &[u8]) -> (Vec<u8>, &'static str) {
    let mut d = data.to_vec();
    let kind = match rng.u8(0..10) {
        0 => {
            // Headers are where a flip hurts: mostly the first 4 KiB.
            let span = if rng.bool() {
                d.len().min(4096)
            } else {
                d.len()
            };
            for _ in 0..rng.usize(1..=16) {
                if span > 0 {
                    let i = rng.usize(0..span);
                    d[i] ^= 1 << rng.u8(0..8);
                }
            }
            "flip"
        }
        1 => {
            let at = if d.is_empty() {
                0
            } else {
                rng.usize(0..d.len().min(8192))
            };
            let n = rng.usize(1..=512).min(d.len() - at);
            let fill = rng.u8(0..3);
            for b in &mut d[at..at + n] {
                *b = match fill {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.u8(..),
                };
            }
            "overwrite"
        }
        2 => {
            d.truncate(rng.usize(0..=d.len().min(512)));
            "cut-header"
        }
        3 => {
            d.truncate(rng.usize(0..=d.len()));
            "cut"
        }
        4..=6 => {
            if size_field(rng, &mut d) {
                "size-field"
            } else {
                let i = rng.usize(0..d.len().max(1)).min(d.len().saturating_sub(1));
                if let Some(b) = d.get_mut(i) {
                    *b = !*b;
                }
                "flip"
            }
        }
        7 => {
            if !d.is_empty() {
                let a = rng.usize(0..d.len());
                let b = (a + rng.usize(1..=4096)).min(d.len());
                let chunk = d[a..b].to_vec();
                let at = rng.usize(0..=d.len());
                d.splice(at..at, chunk);
            }
            "duplicate"
        }
        8 => {
            let n = rng.usize(1..=64 * 1024);
            d.extend((0..n).map(|_| rng.u8(..)));
            "junk-tail"
        }
        _ => {
            let n = rng.usize(1..=4096);
            let junk: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            d.splice(0..0, junk);
            "junk-head"
        }
    };
    (d, kind)
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// A lie in a size field of the container, for the formats the suite covers: ID3v2
/// synchsafe sizes, FLAC block lengths, MP4 box sizes (64-bit ones too), Ogg segment
/// tables, RIFF and AIFF chunk sizes. False when `d` is none of them.
fn size_field(rng: &mut Rng, d: &mut [u8]) -> bool {
    let lie = |rng: &mut Rng, len: usize| -> u32 {
        match rng.u8(0..4) {
            0 => 0,
            1 => u32::MAX,
            2 => (len as u32).saturating_mul(2),
            _ => rng.u32(..),
        }
    };
    if d.len() >= 10 && &d[..3] == b"ID3" {
        let v: [u8; 4] = match rng.u8(0..4) {
            0 => [0; 4],
            1 => [0x7f; 4],
            2 => [0xff; 4],
            _ => [
                rng.u8(0..0x80),
                rng.u8(0..0x80),
                rng.u8(0..0x80),
                rng.u8(0..0x80),
            ],
        };
        d[6..10].copy_from_slice(&v);
        return true;
    }
    if d.len() >= 8 && &d[..4] == b"fLaC" {
        let mut blocks = Vec::new();
        let mut p = 4;
        while p + 4 <= d.len() {
            blocks.push(p);
            let n = (be32(d, p).unwrap_or(0) & 0xff_ffff) as usize;
            if d[p] & 0x80 != 0 {
                break;
            }
            p += 4 + n;
        }
        let b = blocks[rng.usize(0..blocks.len())];
        match rng.u8(0..3) {
            0 => d[b] ^= 0x80, // the "last block" flag
            1 => d[b + 1..b + 4].copy_from_slice(&[0xff; 3]),
            _ => d[b + 1..b + 4].copy_from_slice(&rng.u32(..).to_be_bytes()[1..]),
        }
        return true;
    }
    if d.len() >= 16 && &d[4..8] == b"ftyp" {
        // Top-level boxes and the children of the first container among them.
        let mut boxes = Vec::new();
        let mut p = 0;
        while let Some(n) = be32(d, p) {
            boxes.push(p);
            if matches!(&d[p + 4..p + 8], b"moov" | b"trak" | b"udta") {
                let mut c = p + 8;
                while c < p + n as usize
                    && let Some(m) = be32(d, c)
                {
                    boxes.push(c);
                    if m < 8 {
                        break;
                    }
                    c += m as usize;
                }
            }
            if n < 8 {
                break;
            }
            p += n as usize;
        }
        let b = boxes[rng.usize(0..boxes.len())];
        let v = lie(rng, d.len());
        if rng.u8(0..4) == 0 && b + 16 <= d.len() {
            // A 64-bit size: size 1, then the large size where the payload began.
            d[b..b + 4].copy_from_slice(&1u32.to_be_bytes());
            let big = if rng.bool() { u64::MAX } else { rng.u64(..) };
            d[b + 8..b + 16].copy_from_slice(&big.to_be_bytes());
        } else {
            d[b..b + 4].copy_from_slice(&v.to_be_bytes());
        }
        return true;
    }
    if d.len() >= 28 && &d[..4] == b"OggS" {
        let pages: Vec<usize> = (0..d.len() - 27)
            .filter(|&i| &d[i..i + 4] == b"OggS")
            .collect();
        let p = pages[rng.usize(0..pages.len())];
        let nseg = d[p + 26] as usize;
        if nseg == 0 || rng.u8(0..3) == 0 {
            d[p + 26] = if rng.bool() { 255 } else { 0 };
        } else if let Some(s) = d.get_mut(p + 27 + rng.usize(0..nseg)) {
            *s = if rng.bool() { 255 } else { rng.u8(..) };
        }
        return true;
    }
    let (riff, form) = (d.starts_with(b"RIFF"), d.starts_with(b"FORM"));
    if (riff || form) && d.len() >= 20 {
        let mut chunks = vec![0usize];
        let mut p = 12;
        while p + 8 <= d.len() {
            chunks.push(p);
            let n = if riff { le32(d, p + 4) } else { be32(d, p + 4) }.unwrap_or(0) as usize;
            p = p.saturating_add(8 + n + (n & 1));
        }
        let c = chunks[rng.usize(0..chunks.len())];
        let v = lie(rng, d.len());
        let bytes = if riff {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        d[c + 4..c + 8].copy_from_slice(&bytes);
        return true;
    }
    false
}

/// Write `count` mutants of the files in `sources` (cycled in a seeded order) into `dir`.
/// Each is named `NNNNN-KIND-SOURCE.EXT`; one in seven gets a wrong extension.
pub fn write_mutants(dir: &Path, sources: &[PathBuf], seed: u64, count: usize) -> Result<()> {
    anyhow::ensure!(!sources.is_empty(), "no source files to mutate");
    fs::create_dir_all(dir)?;
    let mut rng = Rng::with_seed(seed);
    let mut order: Vec<usize> = (0..sources.len()).collect();
    rng.shuffle(&mut order);
    for i in 0..count {
        let src = &sources[order[i % order.len()]];
        let data = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        let (bytes, kind) = mutate(&mut rng, &data);
        let stem = src
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            })
            .unwrap_or_default();
        let stem: String = stem.chars().take(40).collect();
        let ext = if rng.u8(0..7) == 0 {
            EXTS[rng.usize(0..EXTS.len())].to_string()
        } else {
            src.extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mp3".into())
        };
        fs::write(dir.join(format!("{i:05}-{kind}-{stem}.{ext}")), bytes)?;
    }
    Ok(())
}

/// Audio files under `root` (every file, whatever its extension: the suite renames).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    if root.is_file() {
        return vec![root.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// A sparse file of `len` bytes holding `parts` (offset, bytes); the rest is a hole.
fn sparse(path: &Path, len: u64, parts: &[(u64, &[u8])]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(len)?;
    for (off, bytes) in parts {
        f.seek(SeekFrom::Start(*off))?;
        f.write_all(bytes)?;
    }
    Ok(())
}

/// The pathological cases, by name. Each is written by [`write_case`].
pub const CASES: &[&str] = &[
    "prealloc-mp3-3g",
    "prealloc-mp3-3g-random-head",
    "flac-zero-blocks-1g",
    "flac-hole-at-42",
    "id3-declares-256m",
    "prealloc-head-only",
    "prealloc-tail-only",
    "all-ff",
    "ogg-100k-empty-pages",
    "valid-wav-3g",
];

/// Write pathological case `name` into `dir` (created). Returns the files written.
pub fn write_case(dir: &Path, name: &str, seed: u64) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut rng = Rng::with_seed(seed);
    let p = |f: &str| dir.join(f);
    let mut out = Vec::new();
    match name {
        // A BitTorrent client preallocated 3 GiB and has the last piece only.
        "prealloc-mp3-3g" | "prealloc-mp3-3g-random-head" => {
            let len = 3 * GIB;
            let head: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
            let tail = &MP3[..MP3.len().min(64 * KIB as usize)];
            let mut parts = vec![(len - tail.len() as u64, tail)];
            if name.ends_with("random-head") {
                parts.push((0, &head[..]));
            }
            out.push(p(&format!("{name}.mp3")));
            sparse(&out[0], len, &parts)?;
        }
        // `fLaC` and a STREAMINFO not marked last, then zeros: endless empty blocks.
        "flac-zero-blocks-1g" => {
            let mut head = FLAC[..42].to_vec();
            head[4] &= 0x7f;
            out.push(p("flac-zero-blocks-1g.flac"));
            sparse(&out[0], GIB, &[(0, &head)])?;
        }
        // A real FLAC's first 42 bytes, a hole, its frames at the end.
        "flac-hole-at-42" => {
            let len = 21 * MIB;
            let rest = &FLAC[42..];
            out.push(p("flac-hole-at-42.flac"));
            sparse(
                &out[0],
                len,
                &[(0, &FLAC[..42]), (len - rest.len() as u64, rest)],
            )?;
        }
        // Eight 300 MiB MP3s whose ID3v2 header declares a 256 MiB tag.
        "id3-declares-256m" => {
            let size: u32 = 256 << 20;
            let syncsafe = [
                (size >> 21) as u8 & 0x7f,
                (size >> 14) as u8 & 0x7f,
                (size >> 7) as u8 & 0x7f,
                size as u8 & 0x7f,
            ];
            let mut head = b"ID3\x04\x00\x00".to_vec();
            head.extend_from_slice(&syncsafe);
            let title = b"\x03Declared huge";
            head.extend_from_slice(b"TIT2");
            head.extend_from_slice(&(title.len() as u32).to_be_bytes());
            head.extend_from_slice(&[0, 0]);
            head.extend_from_slice(title);
            let len = 300 * MIB;
            for i in 0..8 {
                let f = p(&format!("id3-declares-256m-{i}.mp3"));
                sparse(&f, len, &[(0, &head), (len - MP3.len() as u64, MP3)])?;
                out.push(f);
            }
        }
        // Downloads that have only their first piece, or only their last, per format.
        "prealloc-head-only" | "prealloc-tail-only" => {
            let len = GIB;
            for (ext, t) in [
                ("flac", FLAC),
                ("m4a", M4A),
                ("ogg", OGG),
                ("opus", OPUS),
                ("wav", WAV),
                ("aiff", AIFF),
                ("mp3", MP3),
            ] {
                let f = p(&format!("{name}.{ext}"));
                let at = if name.ends_with("head-only") {
                    0
                } else {
                    len - t.len() as u64
                };
                sparse(&f, len, &[(at, t)])?;
                out.push(f);
            }
        }
        // Every byte 0xFF: an MP3 frame sync everywhere.
        "all-ff" => {
            for ext in ["mp3", "flac"] {
                let f = p(&format!("all-ff.{ext}"));
                fs::write(&f, vec![0xffu8; (16 * MIB) as usize])?;
                out.push(f);
            }
        }
        // The identification page of a real Ogg Vorbis file, 100k empty pages, the rest.
        "ogg-100k-empty-pages" => {
            let first_len = 27 + OGG[26] as usize;
            let first_len = first_len
                + OGG[27..first_len]
                    .iter()
                    .map(|&b| b as usize)
                    .sum::<usize>();
            let serial = le32(OGG, 14).unwrap_or(0);
            let mut data = OGG[..first_len].to_vec();
            for seq in 0..100_000u32 {
                let mut page = Vec::with_capacity(27);
                page.extend_from_slice(b"OggS\x00\x01");
                page.extend_from_slice(&0u64.to_le_bytes());
                page.extend_from_slice(&serial.to_le_bytes());
                page.extend_from_slice(&(seq + 1).to_le_bytes());
                page.extend_from_slice(&[0; 4]);
                page.push(0);
                let crc = ogg_crc(&page);
                page[22..26].copy_from_slice(&crc.to_le_bytes());
                data.extend_from_slice(&page);
            }
            data.extend_from_slice(&OGG[first_len..]);
            out.push(p("ogg-100k-empty-pages.ogg"));
            fs::write(&out[0], data)?;
        }
        // A valid 3 GiB WAV (silence) with its title in a LIST chunk after the audio.
        "valid-wav-3g" => {
            let data_len: u32 = (3 * GIB - 64) as u32;
            let mut head = WAV[..36].to_vec(); // RIFF header and the fmt chunk
            head.extend_from_slice(b"data");
            head.extend_from_slice(&data_len.to_le_bytes());
            let mut info = b"INFO".to_vec();
            for (id, text) in [
                (b"INAM", &b"Three gigabytes\0"[..]),
                (b"IART", b"Robustness\0"),
            ] {
                info.extend_from_slice(id);
                info.extend_from_slice(&(text.len() as u32).to_le_bytes());
                info.extend_from_slice(text);
                if text.len() % 2 == 1 {
                    info.push(0);
                }
            }
            let mut list = b"LIST".to_vec();
            list.extend_from_slice(&(info.len() as u32).to_le_bytes());
            list.extend_from_slice(&info);
            let len = head.len() as u64 + u64::from(data_len) + list.len() as u64;
            head[4..8].copy_from_slice(&((len - 8) as u32).to_le_bytes());
            out.push(p("valid-wav-3g.wav"));
            sparse(
                &out[0],
                len,
                &[(0, &head), (len - list.len() as u64, &list)],
            )?;
        }
        _ => anyhow::bail!("unknown case {name:?} (known: {})", CASES.join(", ")),
    }
    Ok(out)
}

/// The Ogg page checksum: CRC-32, polynomial 0x04c11db7, not reflected, zero start.
pub fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The whole suite: `mutants` mutants of `sources` under `dir/mutants`, and every
/// pathological case under `dir/cases/NAME`.
pub fn write_suite(dir: &Path, sources: &[PathBuf], seed: u64, mutants: usize) -> Result<()> {
    write_mutants(&dir.join("mutants"), sources, seed, mutants)?;
    for (i, name) in CASES.iter().enumerate() {
        write_case(
            &dir.join("cases").join(name),
            name,
            seed.wrapping_add(i as u64),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_every_format_gets_its_size_lie() {
        for t in [MP3, FLAC, M4A, OGG, OPUS, WAV, AIFF] {
            let a = mutate(&mut Rng::with_seed(7), t);
            let b = mutate(&mut Rng::with_seed(7), t);
            assert_eq!(a, b);
        }
        // The untagged MP3 template has no ID3v2 header: give it one.
        let mut id3 = b"ID3\x04\x00\x00\x00\x00\x01\x00".to_vec();
        id3.extend_from_slice(MP3);
        for t in [&id3[..], FLAC, M4A, OGG, OPUS, WAV, AIFF] {
            let mut rng = Rng::with_seed(3);
            let mut changed = 0;
            for _ in 0..20 {
                let mut d = t.to_vec();
                assert!(size_field(&mut rng, &mut d), "{:?}", &t[..4]);
                changed += usize::from(d != t);
            }
            assert!(changed >= 15, "{:?}: {changed}", &t[..4]);
        }
    }

    #[test]
    fn the_ogg_checksum_matches_a_real_page() {
        let first_len = 27 + OGG[26] as usize;
        let first_len = first_len
            + OGG[27..first_len]
                .iter()
                .map(|&b| b as usize)
                .sum::<usize>();
        let mut page = OGG[..first_len].to_vec();
        let want = le32(&page, 22).unwrap();
        page[22..26].fill(0);
        assert_eq!(ogg_crc(&page), want);
    }
}
