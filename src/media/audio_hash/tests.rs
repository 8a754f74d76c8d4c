//! Real files (fixtures, the shared corpus, generated libraries, copies retagged with
//! lofty, mutants), synthetic tag layouts with known payloads, and an independent Python
//! implementation for the container formats.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use fastrand::Rng;

use super::*;
use crate::r#gen::mutate;
use crate::media::hash;
use crate::media::reference::read_head_tail;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_files() -> PathBuf {
    std::env::var_os("MUSICDEX_SHARED")
        .map_or_else(|| repo().join("../shared"), PathBuf::from)
        .join("corpus/files")
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut m = Md5::new();
    for p in parts {
        m.update(p);
    }
    hex(&m.finalize())
}

/// The definition applied to a payload held in memory.
fn expected(payload: &[u8]) -> String {
    let n = payload.len();
    if n < 2 * PART as usize {
        md5_hex(&[payload])
    } else {
        md5_hex(&[&payload[..PART as usize], &payload[n - PART as usize..]])
    }
}

/// The hash as an engine will get it: head and tail held first (what it read for the
/// content hash), the rest read on request. Also counts the bytes read beyond them.
fn from_head_tail(path: &Path) -> (Option<String>, u64) {
    let (h, n, _) = from_head_tail_rounds(path);
    (h, n)
}

/// [`from_head_tail`], with the number of read rounds (each a batch of ranges).
fn from_head_tail_rounds(path: &Path) -> (Option<String>, u64, usize) {
    let file = File::open(path).unwrap();
    let size = file.metadata().unwrap().len();
    let (h, t) = read_head_tail(&file, size).unwrap();
    let mut held = vec![Segment { offset: 0, data: h }];
    if let (Some(off), Some(t)) = (hash::tail_offset(size), t) {
        held.push(Segment {
            offset: off,
            data: t,
        });
    }
    let mut extra = 0u64;
    let mut rounds = 0;
    let got = loop {
        match step(size, &held) {
            Step::Done(h) => break h,
            Step::Read(ranges) => {
                rounds += 1;
                assert!(!ranges.is_empty());
                for (offset, len) in ranges {
                    // The contract: only bytes not held, inside the file.
                    assert!(len > 0 && offset + len as u64 <= size);
                    assert_eq!(
                        clip_to_gaps(size, &held, offset, offset + len as u64),
                        [(offset, len)]
                    );
                    let mut data = vec![0u8; len];
                    file.read_exact_at(&mut data, offset).unwrap();
                    extra += len as u64;
                    sparse::add_segment(&mut held, Segment { offset, data });
                }
            }
        }
    };
    (got, extra, rounds)
}

/// The same hash from segments chosen at random: the answer must not depend on which
/// bytes happen to be held.
fn from_random_segments(data: &[u8], rng: &mut Rng) -> Option<String> {
    let size = data.len() as u64;
    let mut held = Vec::new();
    for _ in 0..rng.usize(0..4) {
        if data.is_empty() {
            break;
        }
        let s = rng.usize(0..data.len());
        let e = (s + rng.usize(1..40_000)).min(data.len());
        sparse::add_segment(
            &mut held,
            Segment {
                offset: s as u64,
                data: data[s..e].to_vec(),
            },
        );
    }
    drive(size, &mut held, |off, buf| {
        buf.copy_from_slice(&data[off as usize..off as usize + buf.len()]);
        Ok(())
    })
    .unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    mutate::files_under(dir)
}

fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The container each extension must be found as.
fn container_for(ext: &str) -> Option<Container> {
    Some(match ext {
        "mp3" | "mp2" | "mp1" => Container::Mpeg,
        "aac" => Container::Adts,
        "flac" => Container::Flac,
        "ogg" | "opus" | "spx" | "oga" => Container::Ogg,
        "m4a" | "mp4" => Container::Mp4,
        "wav" => Container::Wav,
        "aif" | "aiff" => Container::Aiff,
        "ape" => Container::Ape,
        "wv" => Container::WavPack,
        "mpc" => Container::Musepack,
        "dsf" => Container::Dsf,
        _ => return None,
    })
}

fn payload_of(data: &[u8]) -> Located {
    let held = [Segment {
        offset: 0,
        data: data.to_vec(),
    }];
    locate(data.len() as u64, &held)
}

/// Every audio file of the fixtures has an audio hash, found as its extension says; the
/// three ways of driving the steps agree.
#[test]
fn every_fixture_file_has_an_audio_hash() {
    let mut files = files_under(&repo().join("fixtures/library"));
    files.extend(files_under(&repo().join("fixtures/templates")));
    let mut seen = 0;
    for f in files {
        let e = ext(&f);
        let Some(want) = container_for(&e) else {
            continue;
        };
        let data = fs::read(&f).unwrap();
        if data.is_empty() {
            assert_eq!(audio_hash_of_file(&f).unwrap(), None);
            continue;
        }
        let Located::Found(p) = payload_of(&data) else {
            panic!("{}: no payload", f.display());
        };
        assert_eq!(p.container, want, "{}", f.display());
        if p.container != Container::Ogg {
            assert_eq!(p.len, Some(p.end - p.start), "{}", f.display());
        }
        let whole = audio_hash_of_bytes(&data);
        assert!(whole.is_some(), "{}", f.display());
        assert_eq!(audio_hash_of_file(&f).unwrap(), whole, "{}", f.display());
        let (h, _, rounds) = from_head_tail_rounds(&f);
        assert_eq!(h, whole, "{}", f.display());
        assert!(rounds <= 3, "{}: {rounds} rounds", f.display());
        seen += 1;
    }
    assert!(seen >= 30, "{seen}");
}

/// Corpus files with no audio hash, and why (decided from the bytes).
const CORPUS_NONE: &[(&str, &str)] = &[
    ("beets/empty.wma", "ASF: no payload rule"),
    ("beets/full.wma", "ASF"),
    ("beets/image.wma", "ASF"),
    ("beets/no_ext_not_music", "text, not audio"),
    ("beets/pure.wma", "ASF"),
    ("beets/unparseable.wma", "ASF"),
    (
        "lofty/assets/ilst_trailing_padding.m4a",
        "ftyp and moov only: no mdat box at all",
    ),
    (
        "lofty/assets/minimal/mpc_sv5.mpc",
        "Musepack SV4-6 has no magic bytes to tell it from noise",
    ),
    ("lofty/assets/zero/zero.aiff", "the SSND chunk is empty"),
    (
        "lofty/assets/zero/zero.mp3",
        "an ID3v2 tag is the whole file: no frame follows it",
    ),
    ("lofty/assets/zero/zero.mp4", "no mdat box"),
    ("lofty/assets/zero/zero.wav", "no data chunk"),
];

/// Every file of the shared corpus: no panic, the same answer however driven, the
/// container its extension says, and no audio hash only where listed.
#[test]
fn shared_corpus() {
    let root = corpus_files();
    assert!(
        root.is_dir(),
        "the shared corpus is missing at {} (set MUSICDEX_SHARED)",
        root.display()
    );
    let mut none = Vec::new();
    let mut by_hash: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rng = Rng::with_seed(15);
    for f in files_under(&root) {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let data = fs::read(&f).unwrap();
        let whole = audio_hash_of_bytes(&data);
        assert_eq!(audio_hash_of_file(&f).unwrap(), whole, "{rel}");
        assert_eq!(from_head_tail(&f).0, whole, "{rel}");
        assert_eq!(from_random_segments(&data, &mut rng), whole, "{rel}");
        if rel.contains("/fuzz/") {
            continue;
        }
        match (&whole, payload_of(&data)) {
            (Some(h), Located::Found(p)) => {
                if let Some(want) = container_for(&ext(&f)) {
                    assert_eq!(p.container, want, "{rel}");
                }
                by_hash.entry(h.clone()).or_default().push(rel);
            }
            _ => none.push(rel),
        }
    }
    let listed: Vec<String> = CORPUS_NONE.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(none, listed, "files without an audio hash");
    for (h, files) in &by_hash {
        if files.len() > 1 {
            println!("{h} {files:?}");
        }
    }
    // beets ships each format as one encoding under several tag sets: one group each.
    let group_of = |f: &str| {
        by_hash
            .iter()
            .find(|(_, v)| v.iter().any(|x| x == f))
            .map(|(h, _)| h.clone())
    };
    for (ext, names) in [
        (
            "flac",
            &["full", "empty", "image", "min", "partial", "unparseable"][..],
        ),
        (
            "m4a",
            &[
                "full",
                "empty",
                "image",
                "min",
                "partial",
                "t_time",
                "unparseable",
            ],
        ),
        (
            "ogg",
            &["full", "empty", "image", "coverart", "year", "unparseable"],
        ),
        ("mp3", &["full", "min", "partial", "date", "bpm"]),
        ("mp3", &["empty", "image", "image-jpeg", "unparseable"]),
        ("aiff", &["full", "empty", "unparseable"]),
        ("ape", &["full", "empty", "image", "unparseable"]),
        ("wv", &["full", "empty", "unparseable"]),
        ("mpc", &["full", "empty", "unparseable"]),
    ] {
        let first = group_of(&format!("beets/{}.{ext}", names[0]));
        assert!(first.is_some(), "{ext}");
        for n in names {
            assert_eq!(
                group_of(&format!("beets/{n}.{ext}")),
                first,
                "beets/{n}.{ext}"
            );
        }
    }
    // Different encodings differ (compared byte by byte: the frames differ from the
    // first few bytes of audio on).
    for (a, b) in [
        ("beets/full.mp3", "beets/empty.mp3"),
        ("beets/full.flac", "beets/whitenoise.flac"),
        ("beets/full.opus", "beets/whitenoise.opus"),
        ("beets/full.m4a", "beets/full.alac.m4a"),
    ] {
        assert_ne!(group_of(a), group_of(b), "{a} {b}");
        assert!(group_of(a).is_some() && group_of(b).is_some());
    }
}

/// The independent Python reading of the container formats agrees on every such file of
/// the fixtures and the shared corpus (fuzz files included: both must cut lying sizes at
/// the end of the file the same way).
#[test]
fn container_formats_agree_with_the_python_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path());
    let mut files = files_under(&repo().join("fixtures"));
    files.extend(files_under(&corpus_files()));
    files.extend(files_under(&lib));
    let oracle_exts = [
        "wav", "aif", "aiff", "flac", "m4a", "mp4", "ogg", "opus", "spx", "dsf",
    ];
    files.retain(|f| {
        oracle_exts.contains(&ext(f).as_str()) && !f.to_string_lossy().contains("/lofty/fuzz/")
    });
    assert!(files.len() > 100, "{}", files.len());
    let out = std::process::Command::new("python3")
        .arg(repo().join("src/media/audio_hash/oracle.py"))
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), files.len());
    let mut some = 0;
    for (f, line) in files.iter().zip(lines) {
        let (h, p) = line.split_once(' ').unwrap();
        assert_eq!(Path::new(p), f.as_path());
        let want = (h != "-").then(|| h.to_string());
        some += usize::from(want.is_some());
        assert_eq!(audio_hash_of_file(f).unwrap(), want, "{}", f.display());
    }
    assert!(some > 90, "{some}");
    // Ogg streams past 128 KiB, whose last 64 KiB are found by walking back from the end,
    // are among them.
    let long_ogg = files
        .iter()
        .filter(|f| {
            matches!(payload_of(&fs::read(f).unwrap()), Located::Found(p)
                if p.container == Container::Ogg && p.pieces.iter().map(|(s, e)| e - s).sum::<u64>() == 2 * PART)
        })
        .count();
    assert!(long_ogg >= 2, "{long_ogg}");
}

/// A generated library of real files up to 300 KB (payloads past 128 KiB among them,
/// some deliberately corrupt).
fn generated(dir: &Path) -> PathBuf {
    let lib = dir.join("gen");
    crate::r#gen::generate(
        &lib,
        &crate::r#gen::GenOptions {
            files: 100,
            seed: 15,
            mix: crate::r#gen::Mix::Small,
            threads: 1,
        },
    )
    .unwrap();
    lib
}

fn picture(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::with_seed(seed);
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    v.extend((4..len).map(|_| rng.u8(..)));
    v
}

/// A copy of `src` with its tags replaced by lofty: `title`, and a cover of `cover`
/// bytes when asked. False where lofty cannot write this file.
fn retag(src: &Path, dst: &Path, title: &str, cover: Option<usize>) -> bool {
    use lofty::config::WriteOptions;
    use lofty::file::TaggedFileExt;
    use lofty::picture::{MimeType, Picture, PictureType};
    use lofty::prelude::*;
    use lofty::tag::Tag;

    fs::copy(src, dst).unwrap();
    let Ok(mut tf) = lofty::read_from_path(dst) else {
        return false;
    };
    if tf.primary_tag().is_none() {
        tf.insert_tag(Tag::new(tf.primary_tag_type()));
    }
    let tag = tf.primary_tag_mut().unwrap();
    tag.set_title(title.into());
    tag.set_artist(format!("Artist of {title}"));
    if let Some(n) = cover {
        tag.push_picture(
            Picture::unchecked(picture(n, n as u64))
                .pic_type(PictureType::CoverFront)
                .mime_type(MimeType::Jpeg)
                .build(),
        );
    }
    tag.save_to_path(dst, WriteOptions::default()).is_ok()
}

fn file_md5(p: &Path) -> String {
    md5_hex(&[&fs::read(p).unwrap()])
}

fn content_hash_of(p: &Path) -> String {
    let f = File::open(p).unwrap();
    let (h, t) = read_head_tail(&f, f.metadata().unwrap().len()).unwrap();
    hash::content_hash(&h, t.as_deref())
}

/// The same audio under different tags written by lofty, one copy with a cover larger
/// than the head read: equal audio hashes, different file and content hashes. Real files
/// of every format the templates and the corpus hold, and generated ones whose payload
/// passes 128 KiB (so the first and last 64 KiB are what is hashed).
#[test]
fn retagged_copies_keep_their_audio_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path());
    let mut sources = files_under(&repo().join("fixtures/templates"));
    sources.retain(|f| ext(f) != "jpg" && ext(f) != "png");
    for rel in [
        "beets/full.ape",
        "beets/full.wv",
        "beets/full.mpc",
        "lofty/assets/minimal/full_test.aac",
        "lofty/assets/minimal/full_test.spx",
        "lofty/assets/minimal/full_test.mp2",
        // Payloads past 128 KiB.
        "lofty/assets/644_empty_id3v2.wav",
        "lofty/assets/minimal/full_test.aiff",
        "lofty/assets/minimal/mp4_codec_als.mp4",
    ] {
        sources.push(corpus_files().join(rel));
    }
    // Generated files past 128 KiB of payload, one per format, that lofty reads.
    let mut big: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files_under(&lib) {
        if fs::metadata(&f).unwrap().len() > 150_000
            && lofty::read_from_path(&f).is_ok()
            && audio_hash_of_file(&f).unwrap().is_some()
        {
            big.entry(ext(&f)).or_insert(f);
        }
    }
    assert!(big.len() >= 4, "{:?}", big.keys());
    sources.extend(big.into_values());

    let mut extra: BTreeMap<String, Vec<(u64, u64, usize)>> = BTreeMap::new();
    let mut pushed_past_head = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let e = ext(src);
        let a = tmp.path().join(format!("{i}-a.{e}"));
        let b = tmp.path().join(format!("{i}-b.{e}"));
        assert!(retag(src, &a, "First title", None), "{}", src.display());
        assert!(
            retag(src, &b, "A much longer second title", Some(100_000)),
            "{}",
            src.display()
        );
        let orig = audio_hash_of_file(src).unwrap();
        assert!(orig.is_some(), "{}", src.display());
        for copy in [&a, &b] {
            let (h, n, rounds) = from_head_tail_rounds(copy);
            assert_eq!(h, orig, "{} as {}", src.display(), copy.display());
            assert_eq!(audio_hash_of_file(copy).unwrap(), orig);
            let size = fs::metadata(copy).unwrap().len();
            extra.entry(e.clone()).or_default().push((size, n, rounds));
        }
        assert_ne!(file_md5(&a), file_md5(&b), "{}", src.display());
        assert_ne!(
            content_hash_of(&a),
            content_hash_of(&b),
            "{}",
            src.display()
        );
        if let Located::Found(p) = payload_of(&fs::read(&b).unwrap())
            && p.start > CHUNK
        {
            pushed_past_head.push(e);
        }
    }
    // The large cover pushed the payload past the head read wherever tags come first.
    for e in ["mp3", "flac", "ogg", "opus", "m4a", "aac"] {
        assert!(
            pushed_past_head.contains(&e.to_string()),
            "{e}: {pushed_past_head:?}"
        );
    }
    for (e, n) in &extra {
        println!("{e}: (size, bytes read beyond head and tail, rounds) per copy {n:?}");
    }
}

/// Different audio: a changed byte in the payload changes the hash, one in the tags
/// does not.
#[test]
fn a_changed_payload_byte_changes_the_hash() {
    let mut rng = Rng::with_seed(1515);
    for f in files_under(&repo().join("fixtures/library")) {
        let data = fs::read(&f).unwrap();
        let Located::Found(p) = payload_of(&data) else {
            continue;
        };
        let orig = audio_hash_of_bytes(&data);
        for &(s, e) in &p.pieces {
            let mut d = data.clone();
            let at = rng.u64(s..e) as usize;
            d[at] ^= 0x10;
            assert_ne!(audio_hash_of_bytes(&d), orig, "{} byte {at}", f.display());
        }
        // A byte of the leading tags (past their headers), where there are some.
        if p.start > 4096 && p.container != Container::Ogg {
            let mut d = data.clone();
            let at = rng.u64(p.start / 2..p.start - 16) as usize;
            d[at] ^= 0x10;
            let h = audio_hash_of_bytes(&d);
            if h.is_some() {
                assert_eq!(h, orig, "{} byte {at}", f.display());
            }
        }
    }
}

fn id3v2(body_len: usize, footer: bool) -> Vec<u8> {
    let n = body_len as u32;
    let mut t = b"ID3\x04\x00".to_vec();
    t.push(if footer { 0x10 } else { 0 });
    t.extend([
        (n >> 21) as u8 & 0x7f,
        (n >> 14) as u8 & 0x7f,
        (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ]);
    let mut body = b"TIT2\x00\x00\x00\x06\x00\x00\x03Title".to_vec();
    body.resize(body_len, 0); // padding
    t.extend(body);
    if footer {
        let mut f = t[..10].to_vec();
        f[..3].copy_from_slice(b"3DI");
        t.extend(f);
    }
    t
}

fn apev2(items: &[u8], header: bool) -> Vec<u8> {
    let size = (items.len() + 32) as u32;
    // Bit 31: the tag has a header; bit 29: this block is the header.
    let has_header: u32 = if header { 0x8000_0000 } else { 0 };
    let block = |flags: u32| {
        let mut b = b"APETAGEX".to_vec();
        b.extend(2000u32.to_le_bytes());
        b.extend(size.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b.extend([0u8; 8]);
        b
    };
    let mut t = Vec::new();
    if header {
        t.extend(block(has_header | 0x2000_0000));
    }
    t.extend(items);
    t.extend(block(has_header));
    t
}

fn id3v1() -> Vec<u8> {
    let mut t = b"TAG".to_vec();
    t.extend(b"Some title");
    t.resize(128, 0);
    t
}

fn lyrics3v2() -> Vec<u8> {
    let mut t = b"LYRICSBEGININD00002".to_vec();
    t.extend(b"11");
    let n = t.len();
    t.extend(format!("{n:06}").as_bytes());
    t.extend(b"LYRICS200");
    t
}

/// An MP3 stream wrapped in every leading and trailing tag the definition strips, and
/// an Info (LAME) or VBRI frame: the hash is that of the bare frames.
#[test]
fn mpeg_tags_and_info_frames_are_not_payload() {
    let frames = fs::read(repo().join("fixtures/templates/template.mp3")).unwrap();
    let want = expected(&frames);
    assert_eq!(audio_hash_of_bytes(&frames), Some(want.clone()));
    let first = mpeg_frame(&frames[..7]).unwrap();
    let info = |tag: &[u8], at: usize| {
        let mut f = frames[..first.len as usize].to_vec();
        f[4..].fill(0);
        f[at..at + 4].copy_from_slice(tag);
        f
    };
    let lyrics1 = {
        let mut t = b"LYRICSBEGINsome words".to_vec();
        t.extend(b"LYRICSEND");
        t
    };
    let heads: Vec<Vec<u8>> = vec![
        Vec::new(),
        id3v2(300, false),
        id3v2(70_000, true),
        [id3v2(50, false), id3v2(2000, false)].concat(),
        [id3v2(100, false), info(b"Info", 36)].concat(),
        [id3v2(100, false), info(b"Xing", 36)].concat(),
        info(b"VBRI", 36),
        // Junk between the tag and the first frame.
        [id3v2(100, false), vec![0u8; 777]].concat(),
    ];
    let tails: Vec<Vec<u8>> = vec![
        Vec::new(),
        id3v1(),
        apev2(b"items of an APE tag", true),
        [apev2(&vec![7u8; 90_000], false), id3v1()].concat(),
        [lyrics3v2(), id3v1()].concat(),
        [lyrics1, id3v1()].concat(),
        // An ID3v2 appended at the end, found by its footer.
        id3v2(500, true),
    ];
    for (i, h) in heads.iter().enumerate() {
        for (j, t) in tails.iter().enumerate() {
            let file = [h.as_slice(), &frames, t].concat();
            assert_eq!(
                audio_hash_of_bytes(&file),
                Some(want.clone()),
                "head {i} tail {j}"
            );
        }
    }
    // ADTS: the same tags around real AAC frames.
    let aac = fs::read(corpus_files().join("lofty/assets/minimal/untagged.aac")).unwrap();
    let Located::Found(p) = payload_of(&aac) else {
        panic!("untagged.aac")
    };
    assert_eq!(
        (p.container, p.start, p.end),
        (Container::Adts, 0, aac.len() as u64)
    );
    let tagged = [id3v2(4000, false), aac.clone(), apev2(b"x", true), id3v1()].concat();
    assert_eq!(audio_hash_of_bytes(&tagged), Some(expected(&aac)));
}

/// Container formats built around a known payload: the hash is the definition's over
/// exactly those bytes, first and last 64 KiB past 128 KiB.
#[test]
fn container_payloads_are_exactly_the_audio_chunk() {
    let mut rng = Rng::with_seed(7);
    for len in [1usize, 1000, 131_071, 131_072, 300_001] {
        let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let want = Some(expected(&payload));
        // WAV: fmt, the data chunk (odd length padded), a LIST chunk after it.
        let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0".to_vec();
        wav.extend([1, 0, 1, 0, 0x44, 0xac, 0, 0, 0x88, 0x58, 1, 0, 2, 0, 16, 0]);
        wav.extend(b"data");
        wav.extend((len as u32).to_le_bytes());
        wav.extend(&payload);
        if len % 2 == 1 {
            wav.push(0);
        }
        wav.extend(b"LIST\x04\0\0\0INFO");
        assert_eq!(audio_hash_of_bytes(&wav), want, "wav {len}");
        let Located::Found(p) = payload_of(&wav) else {
            panic!("wav {len}")
        };
        assert_eq!(p.len, Some(len as u64));
        // AIFF: SSND with a data offset of 4.
        let mut aiff = b"FORM\0\0\0\0AIFFSSND".to_vec();
        aiff.extend(((len + 12) as u32).to_be_bytes());
        aiff.extend(4u32.to_be_bytes());
        aiff.extend(0u32.to_be_bytes());
        aiff.extend([9u8; 4]);
        aiff.extend(&payload);
        assert_eq!(audio_hash_of_bytes(&aiff), want, "aiff {len}");
        // MP4: ftyp, a moov with a big cover, mdat with a 64-bit size.
        let mut mp4 = b"\0\0\0\x10ftypM4A \0\0\0\0".to_vec();
        mp4.extend(100_008u32.to_be_bytes());
        mp4.extend(b"moov");
        mp4.extend(vec![3u8; 100_000]);
        mp4.extend(1u32.to_be_bytes());
        mp4.extend(b"mdat");
        mp4.extend((len as u64 + 16).to_be_bytes());
        mp4.extend(&payload);
        assert_eq!(audio_hash_of_bytes(&mp4), want, "mp4 {len}");
        // FLAC: STREAMINFO, a 100 KB picture block, then frames (and a stray ID3v1).
        let mut flac = b"fLaC\x00\x00\x00\x22".to_vec();
        flac.extend([0u8; 34]);
        flac.push(0x86);
        flac.extend(&100_000u32.to_be_bytes()[1..]);
        flac.extend(vec![5u8; 100_000]);
        flac.extend(&payload);
        flac.extend(id3v1());
        assert_eq!(audio_hash_of_bytes(&flac), want, "flac {len}");
        // Sizes that claim more than the file holds are cut at its end.
        let mut lying = wav.clone();
        lying[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let cut = &lying[44..];
        assert_eq!(
            audio_hash_of_bytes(&lying),
            Some(expected(cut)),
            "wav {len}"
        );
    }
}

/// Mutants of every template and of the corpus formats the templates lack: never a
/// panic, and the same answer from the whole file and from any bytes held.
#[test]
fn mutants_give_a_hash_or_none_and_never_panic() {
    let mut sources: Vec<PathBuf> = files_under(&repo().join("fixtures/templates"));
    sources.retain(|f| ext(f) != "jpg" && ext(f) != "png");
    for rel in [
        "beets/full.ape",
        "beets/full.wv",
        "beets/full.mpc",
        "beets/full.dsf",
        "lofty/assets/minimal/full_test.aac",
        "lofty/assets/minimal/full_test.spx",
        "lofty/assets/flac_with_id3v2.flac",
    ] {
        sources.push(corpus_files().join(rel));
    }
    let mut rng = Rng::with_seed(17);
    let mut outcomes: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for src in &sources {
        let data = fs::read(src).unwrap();
        for _ in 0..80 {
            let (m, kind) = mutate::mutate(&mut rng, &data);
            let whole = audio_hash_of_bytes(&m);
            assert_eq!(
                from_random_segments(&m, &mut rng),
                whole,
                "{} {kind}",
                src.display()
            );
            *outcomes.entry((ext(src), whole.is_some())).or_default() += 1;
        }
    }
    // Random bytes behind every magic the module knows: structure made of noise.
    let magics: [&[u8]; 10] = [
        b"fLaC",
        b"OggS\0\x02",
        b"\0\0\0\x10ftypM4A ",
        b"RIFF\0\0\0\0WAVE",
        b"RF64\0\0\0\0WAVE",
        b"FORM\0\0\0\0AIFF",
        b"DSD \x1c\0\0\0\0\0\0\0",
        b"ID3\x04\0\0\0\0\0\x10",
        b"MAC ",
        b"\xff\xfb\x90\x64",
    ];
    for magic in magics {
        for _ in 0..200 {
            let mut d = magic.to_vec();
            let n = rng.usize(0..3000);
            // Small numbers are what size fields and lacing values are made of.
            d.extend((0..n).map(|_| if rng.bool() { rng.u8(..) } else { rng.u8(0..4) }));
            let whole = audio_hash_of_bytes(&d);
            assert_eq!(from_random_segments(&d, &mut rng), whole, "{magic:?}");
        }
    }
    // Most mutants keep a findable payload; some lose it.
    let found: usize = outcomes.iter().filter(|(k, _)| k.1).map(|(_, n)| n).sum();
    assert!(found > sources.len() * 40, "{outcomes:?}");
}

/// The robustness suite's pathological files: bounded reads whatever they claim, and the
/// right answer where there is one.
#[test]
fn pathological_files_cost_bounded_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let limit = 2 * budget::DEFAULT_MAX_TAG_BYTES + (4 << 20);
    let template_ogg = audio_hash_of_file(&repo().join("fixtures/templates/template.ogg")).unwrap();
    for (i, case) in mutate::CASES.iter().enumerate() {
        for f in mutate::write_case(&tmp.path().join(case), case, i as u64).unwrap() {
            let file = File::open(&f).unwrap();
            let size = file.metadata().unwrap().len();
            let mut read = 0u64;
            let got = drive(size, &mut Vec::new(), |off, buf| {
                read += buf.len() as u64;
                file.read_exact_at(buf, off)
            })
            .unwrap();
            assert!(read <= limit, "{}: read {read}", f.display());
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            match name.as_str() {
                // 3 GiB of silence after a 44-byte header.
                "valid-wav-3g.wav" => {
                    assert_eq!(got, Some(md5_hex(&[&vec![0u8; 2 * PART as usize]])));
                }
                // The same packets as the template, behind 100,000 empty pages.
                "ogg-100k-empty-pages.ogg" => assert_eq!(got, template_ogg),
                "flac-zero-blocks-1g.flac"
                | "flac-hole-at-42.flac"
                | "all-ff.mp3"
                | "all-ff.flac" => assert_eq!(got, None, "{name}"),
                n if n.starts_with("id3-declares-256m") => assert_eq!(got, None, "{name}"),
                _ => {}
            }
            fs::remove_file(&f).unwrap();
        }
    }
}

/// Ogg pages for `packets` of stream `serial`: each of the first `headers` packets ends
/// its page; audio packets fill pages of up to `per_page` segments. Sequence numbers and
/// CRCs as the specification says.
fn ogg_pages(serial: u32, packets: &[Vec<u8>], headers: usize, per_page: usize) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut lacing: Vec<u8> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut seq = 0u32;
    let mut flush = |lacing: &mut Vec<u8>, body: &mut Vec<u8>, pages: &mut Vec<Vec<u8>>| {
        let mut p = b"OggS\0".to_vec();
        p.push(if seq == 0 { 2 } else { 0 });
        p.extend(0u64.to_le_bytes());
        p.extend(serial.to_le_bytes());
        p.extend(seq.to_le_bytes());
        p.extend([0u8; 4]);
        p.push(lacing.len() as u8);
        p.extend(lacing.iter());
        p.extend(body.iter());
        let mut crc = 0u32;
        for &b in &p {
            crc = (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize];
        }
        p[22..26].copy_from_slice(&crc.to_le_bytes());
        pages.push(p);
        seq += 1;
        lacing.clear();
        body.clear();
    };
    for (i, packet) in packets.iter().enumerate() {
        let mut rest = packet.as_slice();
        loop {
            if lacing.len() == per_page.min(255) {
                flush(&mut lacing, &mut body, &mut pages);
            }
            let n = rest.len().min(255);
            lacing.push(n as u8);
            body.extend(&rest[..n]);
            rest = &rest[n..];
            if n < 255 {
                break;
            }
        }
        if i < headers {
            flush(&mut lacing, &mut body, &mut pages);
        }
    }
    if !lacing.is_empty() {
        flush(&mut lacing, &mut body, &mut pages);
    }
    pages
}

/// FLAC frames in Ogg (both ways of counting the header packets), with comments of any
/// size and a second stream multiplexed in: the audio hash is that of the same frames
/// in a native FLAC file.
#[test]
fn flac_in_ogg_hashes_the_frames_of_the_native_file() {
    let native = fs::read(repo().join("fixtures/templates/template.flac")).unwrap();
    let Located::Found(p) = payload_of(&native) else {
        panic!("template.flac")
    };
    let frames = native[p.start as usize..p.end as usize].to_vec();
    let streaminfo = &native[4..42];
    let mut rng = Rng::with_seed(99);
    for (repeat, comment_len, counted, muxed) in [
        (1, 100, true, false),
        (1, 100_000, false, false),
        (6, 40, true, true),
        (6, 200_000, false, true),
    ] {
        let audio: Vec<u8> = frames.repeat(repeat);
        let mut first = b"\x7fFLAC\x01\x00".to_vec();
        first.extend(if counted { 1u16 } else { 0 }.to_be_bytes());
        first.extend(b"fLaC");
        let mut si = streaminfo.to_vec();
        si[0] &= 0x7f;
        first.extend(&si);
        // A VORBIS_COMMENT block, flagged last.
        let mut comment = vec![0x84];
        comment.extend(&(comment_len as u32).to_be_bytes()[1..]);
        comment.extend((0..comment_len).map(|_| rng.u8(..)));
        let mut packets = vec![first, comment];
        let mut at = 0;
        while at < audio.len() {
            let n = rng.usize(100..6000).min(audio.len() - at);
            packets.push(audio[at..at + n].to_vec());
            at += n;
        }
        let ours = ogg_pages(0x1234, &packets, 2, rng.usize(4..60));
        let other = ogg_pages(
            0x9999,
            &[b"\x01vorbis other".to_vec(), vec![1; 70_000]],
            1,
            20,
        );
        let mut file = Vec::new();
        let mut others = other.into_iter();
        for (i, page) in ours.into_iter().enumerate() {
            file.extend(page);
            // The other stream's pages come after our first (BOS) page.
            if muxed
                && i % 3 == 0
                && let Some(o) = others.next()
            {
                file.extend(o);
            }
        }
        let got = audio_hash_of_bytes(&file);
        assert_eq!(
            got,
            Some(expected(&audio)),
            "{repeat} {comment_len} {counted} {muxed}"
        );
        let Located::Found(p) = payload_of(&file) else {
            panic!("{repeat}")
        };
        // The length is known where the whole stream was walked.
        let known = (audio.len() as u64) < 2 * PART;
        assert_eq!(p.len, known.then_some(audio.len() as u64), "{repeat}");
        let mut rng2 = Rng::with_seed(repeat as u64);
        assert_eq!(from_random_segments(&file, &mut rng2), got);
        if repeat == 1 {
            assert_eq!(got, audio_hash_of_bytes(&native));
        }
    }
}

/// The batched hashes equal the one-by-one hashes, whatever the mix of formats (Ogg's
/// many pieces among them) and of payloads not fully held.
#[test]
fn batched_hashes_equal_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = generated(tmp.path());
    let mut files = files_under(&repo().join("fixtures/library"));
    files.extend(files_under(&lib));
    let mut held = Vec::new();
    for f in &files {
        let data = fs::read(f).unwrap();
        if let Located::Found(p) = payload_of(&data) {
            let size = data.len() as u64;
            // Every third file holds its first 64 KiB only: its hash may not be ready.
            let keep = if held.len() % 3 == 2 {
                data.len().min(CHUNK as usize)
            } else {
                data.len()
            };
            held.push((
                p,
                size,
                vec![Segment {
                    offset: 0,
                    data: data[..keep].to_vec(),
                }],
            ));
        }
    }
    assert!(held.len() > 60, "{}", held.len());
    let items: Vec<(&Payload, u64, &[Segment])> =
        held.iter().map(|(p, n, h)| (p, *n, h.as_slice())).collect();
    let one_by_one: Vec<Option<String>> = items.iter().map(|(p, n, h)| p.hash(*n, h)).collect();
    assert!(one_by_one.iter().filter(|h| h.is_none()).count() > 3);
    assert_eq!(hashes(&items), one_by_one);
}

/// The documented limit: different PCM between silent ends of 64 KiB or more hashes alike;
/// the payload length tells recordings of different lengths apart.
#[test]
fn silent_ends_hash_alike_and_the_length_tells_them_apart() {
    let wav = |middle: &[u8]| {
        let mut payload = vec![0u8; PART as usize];
        payload.extend(middle);
        payload.extend(vec![0u8; PART as usize]);
        let mut w = b"RIFF\0\0\0\0WAVEdata".to_vec();
        w.extend((payload.len() as u32).to_le_bytes());
        w.extend(&payload);
        w
    };
    let (a, b, c) = (wav(&[1; 5000]), wav(&[2; 5000]), wav(&[1; 7000]));
    assert_eq!(audio_hash_of_bytes(&a), audio_hash_of_bytes(&b));
    assert_eq!(audio_hash_of_bytes(&a), audio_hash_of_bytes(&c));
    let len = |d: &[u8]| match payload_of(d) {
        Located::Found(p) => p.len,
        _ => None,
    };
    assert_eq!(len(&a), len(&b));
    assert_ne!(len(&a), len(&c));
}

/// What `--metrics` counts as the audio hash's extra bytes: only what lies outside the
/// head and tail (or the whole small file) the parallel engines read first.
#[test]
fn bytes_beyond_the_first_reads() {
    let c = CHUNK;
    assert_eq!(beyond_head_and_tail(100, 0, 100), 0);
    assert_eq!(beyond_head_and_tail(2 * c - 1, c, c - 1), 0);
    let size = 10 * c;
    assert_eq!(beyond_head_and_tail(size, 0, c), 0);
    assert_eq!(beyond_head_and_tail(size, c - 10, 30), 20);
    assert_eq!(beyond_head_and_tail(size, size - c - 5, 10), 5);
    assert_eq!(beyond_head_and_tail(size, 3 * c, c), c);
    assert_eq!(beyond_head_and_tail(size, 0, size), size - 2 * c);
}
