//! The `threads` backend of the pipeline: the parallel walk, and per thread blocking
//! statx, pread of what the pipeline asks for, MD5 and the tag parse. The fallback where
//! io_uring is refused.

use std::ffi::CStr;
use std::fs::File;
use std::sync::atomic::Ordering;

use anyhow::Result;
use crossbeam_channel::Sender;

use super::file::{open_for_read, read_ranges, triage};
use super::pipeline::{self, HASH_BATCH, Job, Next, Reads, Triage};
use super::{Batcher, Counters, EngineContext};
use crate::media::FileRecord;
use crate::scan::WalkProblems;
use crate::scan::parallel::{Dir, DirBuf, Next as Walked, ParallelWalk};
use crate::store::writer::Change;

pub fn run(ctx: &EngineContext, tx: Sender<Vec<Change>>) -> Result<WalkProblems> {
    super::run_pool(ctx, tx, "read", |walk, tx| worker(ctx, walk, tx))
}

/// One blocking reader; also what a uring thread falls back to when its ring is refused.
pub(super) fn worker(
    ctx: &EngineContext,
    walk: &ParallelWalk,
    tx: Sender<Vec<Change>>,
) -> Result<()> {
    let mut out = Batcher::new(tx, ctx.stop);
    let mut buf = DirBuf::default();
    let mut hashing: Vec<Opened> = Vec::with_capacity(HASH_BATCH);
    loop {
        // Never sit on read files while waiting for other threads to list directories.
        let next = match walk.next(false, &mut buf) {
            Walked::Empty => {
                finish_batch(&mut hashing, ctx.counters, &mut out)?;
                walk.next(true, &mut buf)
            }
            n => n,
        };
        let Walked::Batch(batch) = next else { break };
        for name in &batch.names {
            match triage(ctx, &batch.dir, name) {
                Triage::Done(c) => out.push(c)?,
                Triage::Read(job) => match first_reads(ctx, &batch.dir, name, job) {
                    Ok(opened) => {
                        hashing.push(opened);
                        if hashing.len() == HASH_BATCH {
                            finish_batch(&mut hashing, ctx.counters, &mut out)?;
                        }
                    }
                    Err(change) => out.push(change)?,
                },
            }
        }
    }
    finish_batch(&mut hashing, ctx.counters, &mut out)?;
    out.flush()
}

/// A job whose first reads are in, with its file still open for what the parse needs.
pub(super) struct Opened {
    job: Job,
    file: Option<File>,
}

/// Open a file and make its first reads. A file that cannot be opened, or changed since
/// its stat, comes back as its finished change.
pub(super) fn first_reads(
    ctx: &EngineContext,
    dir: &Dir,
    name: &CStr,
    mut job: Job,
) -> Result<Opened, Change> {
    ctx.counters.read.fetch_add(1, Ordering::Relaxed);
    let (file, next) = match open_for_read(dir, name) {
        Ok(file) => {
            let plan = job.first_reads();
            (Some(file), Next::Read(plan))
        }
        Err(e) => (None, job.reads_done(Reads::OpenFailed(e))),
    };
    let mut opened = Opened { job, file };
    match drive(&mut opened, next, ctx.counters) {
        None => Ok(opened),
        Some(record) => Err(opened.job.change(record, ctx.counters)),
    }
}

/// Carry a job as far as blocking syscalls take it: to a hash done with others (`None`:
/// the content hash after the first reads, the audio hash after the parse), or to its
/// record.
fn drive(o: &mut Opened, mut next: Next, counters: &Counters) -> Option<Box<FileRecord>> {
    loop {
        next = match next {
            Next::Read(plan) => {
                let file = o.file.as_ref().expect("reads only after the open");
                o.job.reads_done(read_ranges(file, &plan, counters))
            }
            Next::Hash | Next::AudioHash => return None,
            Next::FromFile => return Some(o.job.from_file(o.file.as_ref())),
            Next::Reference => return Some(o.job.reference(o.file.take())),
            Next::Done(record) => return Some(record),
        }
    }
}

/// Hash the files read together, then parse each; the audio payloads the first reads
/// did not hold are read, then hashed together too, before the records go out.
pub(super) fn finish_batch(
    batch: &mut Vec<Opened>,
    counters: &Counters,
    out: &mut Batcher,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    pipeline::hash_together(batch.iter_mut().map(|o| &mut o.job));
    let mut audio = Vec::new();
    for mut o in batch.drain(..) {
        let next = o.job.parse();
        match drive(&mut o, next, counters) {
            Some(record) => out.push(o.job.change(record, counters))?,
            None => audio.push(o),
        }
    }
    pipeline::hash_audio_together(audio.iter_mut().map(|o| &mut o.job));
    for mut o in audio {
        let next = o.job.audio_hashed();
        let record = drive(&mut o, next, counters).expect("hashed once");
        out.push(o.job.change(record, counters))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TestRun;
    use crate::media::reference::read_reference;
    use crate::scan::WalkOptions;
    use rustix::fs::{Mode, OFlags};

    #[test]
    fn a_file_changed_after_its_stat_is_recorded_as_the_reference_records_it() {
        let tmp = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/library/Daft Punk/Discovery/02 Aerodynamic.flac");
        let bytes = std::fs::read(src).unwrap();
        let mut big = bytes.clone();
        while big.len() < 300_000 {
            big.extend_from_slice(&bytes);
        }
        let dir = Dir {
            fd: rustix::fs::open(
                tmp.path(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap(),
            path: tmp.path().to_path_buf(),
        };
        let test = TestRun::new(tmp.path().to_path_buf(), WalkOptions::default());
        let (ctx, counters) = (test.ctx(), &test.counters);
        for (name, data, cut) in [
            ("small.flac", &bytes, bytes.len() / 2),
            ("big.flac", &big, 100_000),
            ("big2.flac", &big, 10),
            ("gone.flac", &big, usize::MAX),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, data).unwrap();
            let cname = std::ffi::CString::new(name).unwrap();
            let Triage::Read(job) = triage(&ctx, &dir, &cname) else {
                panic!("{name}: a new file is read");
            };
            let stat = job.stat;
            if cut == usize::MAX {
                std::fs::remove_file(&path).unwrap();
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(cut as u64)
                    .unwrap();
            }
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut out = Batcher::new(tx, ctx.stop);
            match first_reads(&ctx, &dir, &cname, job) {
                Ok(opened) => finish_batch(&mut vec![opened], counters, &mut out).unwrap(),
                Err(change) => out.push(change).unwrap(),
            }
            out.flush().unwrap();
            let changes: Vec<Change> = rx.try_iter().flatten().collect();
            let [Change::Record { record, .. }] = &changes[..] else {
                panic!("{name}: one record: {changes:?}");
            };
            assert_eq!(
                **record,
                read_reference(path, stat, Default::default()),
                "{name}"
            );
            assert!(record.error.is_some(), "{name}: {record:?}");
        }
    }

    /// An ID3v2.3 tag with a title and a picture of `picture` seeded bytes.
    fn id3_with_picture(title: &str, picture: usize, seed: u64) -> Vec<u8> {
        let frame = |id: &[u8; 4], body: Vec<u8>| {
            let mut f = id.to_vec();
            f.extend((body.len() as u32).to_be_bytes());
            f.extend([0, 0]);
            f.extend(body);
            f
        };
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut apic = b"\0image/jpeg\0\x03\0\xff\xd8\xff\xe0".to_vec();
        apic.extend((0..picture).map(|_| rng.u8(..)));
        let mut body = frame(b"TIT2", [b"\x03", title.as_bytes()].concat());
        body.extend(frame(b"APIC", apic));
        let n = body.len() as u32;
        let mut tag = b"ID3\x03\0\0".to_vec();
        tag.extend([n >> 21, n >> 14, n >> 7, n].map(|b| (b & 0x7f) as u8));
        tag.extend(body);
        tag
    }

    /// A mono 16-bit WAV of `pcm` seeded bytes with a LIST INFO chunk after the audio.
    fn wav_with_info(pcm: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut info = b"INFOINAM\x0c\0\0\0Tail title\0\0".to_vec();
        info.extend(b"IART\x0c\0\0\0Tail artis\0\0");
        let mut w =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x44\xac\0\0\x88\x58\x01\0\x02\0\x10\0data"
                .to_vec();
        w.extend((pcm as u32).to_le_bytes());
        w.extend((0..pcm).map(|_| rng.u8(..)));
        w.extend(b"LIST");
        w.extend((info.len() as u32).to_le_bytes());
        w.extend(info);
        let riff = (w.len() - 8) as u32;
        w[4..8].copy_from_slice(&riff.to_le_bytes());
        w
    }

    /// One batch: music-mix files whose cover pushes the audio payload past the head
    /// read (their audio hash needs reads after the parse, then is hashed with the
    /// others), a small file whose payload follows a big cover, a WAV whose payload ends
    /// just before the tail read, files with no audio hash, and files cut short after
    /// their first reads (the parse's reads, or the audio hash's, come up short). Every
    /// record is the reference's, and every audio hash the module's reference.
    #[test]
    fn one_batch_mixes_payloads_beyond_the_head_with_files_without_an_audio_hash() {
        use crate::media::audio_hash::{Located, audio_hash_of_file, locate};
        use crate::media::hash::CHUNK;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = tempfile::tempdir().unwrap();
        let generated = tmp.path().join("gen");
        crate::r#gen::generate(
            &generated,
            &crate::r#gen::GenOptions {
                files: 9,
                seed: 4,
                mix: crate::r#gen::Mix::Music,
                threads: 1,
            },
        )
        .unwrap();
        let lib = tmp.path().join("lib");
        std::fs::create_dir(&lib).unwrap();
        let mut names = Vec::new();
        for (i, p) in crate::r#gen::mutate::files_under(&generated)
            .iter()
            .enumerate()
        {
            let ext = p.extension().unwrap().to_str().unwrap();
            let name = format!("gen{i:02}.{ext}");
            std::fs::rename(p, lib.join(&name)).unwrap();
            names.push(name);
        }
        assert_eq!(names.len(), 9);
        let mp3 = std::fs::read(root.join("fixtures/templates/template.mp3")).unwrap();
        // The template starts with its first frame: no tag of its own.
        let frames = &mp3[..];
        for (name, seed) in [("cover.mp3", 1), ("cover-cut.mp3", 2)] {
            let mut f = id3_with_picture(name, 150_000, seed);
            f.extend_from_slice(frames);
            std::fs::write(lib.join(name), f).unwrap();
            names.push(name.into());
        }
        for (name, seed) in [("tail.wav", 3), ("tail-cut.wav", 4)] {
            std::fs::write(lib.join(name), wav_with_info(300_000, seed)).unwrap();
            names.push(name.into());
        }
        let mut rng = fastrand::Rng::with_seed(5);
        let noise: Vec<u8> = (0..200_000).map(|_| rng.u8(..)).collect();
        std::fs::write(lib.join("noise.mp3"), noise).unwrap();
        std::fs::write(lib.join("empty.flac"), b"").unwrap();
        std::fs::copy(
            root.join("fixtures/templates/template.ogg"),
            lib.join("small.ogg"),
        )
        .unwrap();
        names.extend(["noise.mp3".into(), "empty.flac".into(), "small.ogg".into()]);
        assert_eq!(names.len(), HASH_BATCH);

        // What the batch is made of, by the module's own reference.
        let (mut beyond, mut none) = (0, Vec::new());
        for name in &names {
            let data = std::fs::read(lib.join(name)).unwrap();
            let size = data.len() as u64;
            let held = [crate::media::sparse::Segment {
                offset: 0,
                data: data.clone(),
            }];
            match locate(size, &held) {
                Located::Found(p) if p.start > CHUNK && size > 2 * CHUNK => beyond += 1,
                Located::Found(_) => {}
                _ => none.push(name.as_str()),
            }
        }
        assert!(beyond >= 4, "payloads past the head: {beyond}");
        // With the noise and the empty file, the music mix's corrupt AIFF.
        assert!(
            none.len() >= 3 && none.contains(&"noise.mp3") && none.contains(&"empty.flac"),
            "{none:?}"
        );

        let dir = Dir {
            fd: rustix::fs::open(&lib, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            path: lib.clone(),
        };
        let test = TestRun::new(lib.clone(), WalkOptions::default());
        let (ctx, counters) = (test.ctx(), &test.counters);
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut out = Batcher::new(tx, ctx.stop);
        let mut batch = Vec::new();
        let mut stats = std::collections::BTreeMap::new();
        for name in &names {
            let cname = std::ffi::CString::new(name.as_str()).unwrap();
            let Triage::Read(job) = triage(&ctx, &dir, &cname) else {
                panic!("{name}: a new file is read");
            };
            stats.insert(lib.join(name), job.stat);
            match first_reads(&ctx, &dir, &cname, job) {
                Ok(opened) => batch.push(opened),
                Err(change) => out.push(change).unwrap(),
            }
        }
        // Cut after the first reads: what the parse (cover-cut.mp3) or the audio hash
        // alone (tail-cut.wav) reads next is gone.
        for (name, len) in [("cover-cut.mp3", 100_000), ("tail-cut.wav", 200_000)] {
            std::fs::OpenOptions::new()
                .write(true)
                .open(lib.join(name))
                .unwrap()
                .set_len(len)
                .unwrap();
        }
        assert!(batch.len() >= 15, "{}", batch.len());
        finish_batch(&mut batch, counters, &mut out).unwrap();
        out.flush().unwrap();
        let records: Vec<FileRecord> = rx
            .try_iter()
            .flatten()
            .map(|c| match c {
                Change::Record { record, .. } => *record,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(records.len(), names.len());
        let mut hashed = 0;
        for r in &records {
            let name = r.path.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                *r,
                read_reference(r.path.clone(), stats[&r.path], Default::default()),
                "{name}"
            );
            if name.contains("cut") {
                assert!(r.error.is_some(), "{name}: {r:?}");
                continue;
            }
            let want = audio_hash_of_file(&r.path).unwrap();
            assert_eq!(r.audio_hash, want, "{name}");
            hashed += usize::from(want.is_some());
        }
        assert_eq!(hashed, names.len() - 2 - none.len());
        assert!(counters.audio_bytes.load(Ordering::Relaxed) > 0);
    }
}
