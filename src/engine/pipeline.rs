//! The per-file pipeline of the `threads` and `uring` engines, written once: decide from
//! the stat → first reads → hash in batches → parse, fetching what the parse asks for →
//! the audio payload's reads, if the first ones did not hold it → its hash, in batches →
//! record.
//!
//! It does no I/O. A backend (blocking syscalls in [`super::threads`], io_uring chains in
//! [`super::uring`]) moves the bytes a [`Job`] asks for and reports how that went; the
//! job says what comes next. So every decision that shapes a row (which error a file
//! gets, when it falls back to the reference path, when it parses from the file) is
//! made here, and the two backends cannot drift apart.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::{Counters, EngineContext};
use crate::media::audio_hash::{self, Located};
use crate::media::budget::Limits;
use crate::media::hash::{self, CHUNK};
use crate::media::problem::Problem;
use crate::media::record::Stat;
use crate::media::reference::{parse_file, read_reference, read_reference_file};
use crate::media::sparse::{self, Attempt, Segment};
use crate::media::tags::Parsed;
use crate::media::{FileRecord, md5x8};
use crate::store::KnownFile;
use crate::store::writer::Change;

/// Files hashed together: the lanes of one MD5 kernel.
pub const HASH_BATCH: usize = md5x8::LANES;
/// Rounds of reads the audio hash may ask for after the parse (fixtures need at most 3);
/// beyond them the file itself is read for it, as the reference does.
const AUDIO_ROUNDS: u32 = 8;

/// Whether a file must be read again. One definition for all engines. A file whose last
/// read failed (stat, open, read) is read again whatever its size and mtime.
pub fn decide(known: Option<&KnownFile>, stat: Stat, full: bool) -> Option<KnownFile> {
    match known {
        Some(k) if !full && !k.retry && k.size == stat.size && k.mtime_ns == stat.mtime_ns => {
            Some(*k)
        }
        _ => None,
    }
}

/// What to do with a file once stat'ed: either a finished change, or read it.
pub enum Triage {
    Done(Change),
    Read(Job),
}

/// The decision once the stat is in, however it was made. A file listed a moment ago and
/// gone now gets an error row, not a crash.
pub fn triage(
    ctx: &EngineContext,
    path: PathBuf,
    known: Option<KnownFile>,
    stat: io::Result<Stat>,
) -> Triage {
    match stat {
        Err(e) => Triage::Done(Change::Record {
            record: Box::new(FileRecord::failed(
                path,
                Stat {
                    size: 0,
                    mtime_ns: 0,
                },
                Problem::stat(&e),
            )),
            known,
        }),
        Ok(stat) => match decide(known.as_ref(), stat, ctx.full) {
            Some(k) => Triage::Done(Change::Unchanged { known: k }),
            None => Triage::Read(Job::new(path, stat, known, ctx.limits)),
        },
    }
}

/// How the reads a job asked for went, as the backend saw them.
pub enum Reads {
    /// Every read complete, one segment per range asked for.
    Done(Vec<Segment>),
    /// The file could not be opened.
    OpenFailed(io::Error),
    /// A read failed or came up short: the file changed since its stat.
    Short,
    /// The backend had no room for them (the allocator refused, a cap on what it holds,
    /// a chain its queue cannot take); nothing was read.
    NoRoom,
}

/// What a job needs next.
pub enum Next {
    /// Read these `(offset, len)` ranges and report with [`Job::reads_done`].
    Read(Vec<(u64, usize)>),
    /// First reads in: hash with others ([`hash_together`]), then [`Job::parse`].
    Hash,
    /// Parsed, and the audio payload's bytes held: hash with others
    /// ([`hash_audio_together`]), then [`Job::audio_hashed`].
    AudioHash,
    /// Parse from the file itself: [`Job::from_file`].
    FromFile,
    /// Record the file the reference engine's way: [`Job::reference`].
    Reference,
    /// The file's record.
    Done(Box<FileRecord>),
}

/// One file the pipeline reads.
pub struct Job {
    pub path: PathBuf,
    pub stat: Stat,
    pub known: Option<KnownFile>,
    /// Bytes held, sorted by offset.
    segments: Vec<Segment>,
    content: Option<String>,
    /// Parse attempts that asked for more bytes; 0 while the first reads are out.
    round: u32,
    limits: Limits,
    /// The tags, once parsed: the audio hash may still need reads.
    parsed: Option<Box<Result<Parsed, String>>>,
    /// The audio hash and payload length once known (`Some((None, None))`: none).
    audio: Option<(Option<String>, Option<u64>)>,
    /// Where the payload lies, once found: the answer depends only on the file's bytes,
    /// so it holds whatever is read later, and is never looked for twice.
    payload: Option<Box<audio_hash::Payload>>,
    audio_rounds: u32,
    /// Bytes read for the audio hash beyond the first reads.
    audio_bytes: u64,
}

impl Job {
    pub fn new(path: PathBuf, stat: Stat, known: Option<KnownFile>, limits: Limits) -> Job {
        Job {
            path,
            stat,
            known,
            segments: Vec::with_capacity(2),
            content: None,
            round: 0,
            limits,
            parsed: None,
            audio: None,
            payload: None,
            audio_rounds: 0,
            audio_bytes: 0,
        }
    }

    /// The first reads: the head, and the tail when the hash covers one. A file under two
    /// chunks is read whole in one go, so its tags never need a second read.
    pub fn first_reads(&self) -> Vec<(u64, usize)> {
        let size = self.stat.size;
        let head = if size < 2 * CHUNK { size } else { CHUNK };
        std::iter::once((0, head as usize))
            .chain(hash::tail_offset(size).map(|o| (o, CHUNK as usize)))
            .collect()
    }

    /// Whether the reads out (or about to be) are the first ones.
    pub fn first(&self) -> bool {
        self.round == 0 && self.content.is_none()
    }

    /// Take in what the backend reports for the reads this job asked for.
    pub fn reads_done(&mut self, reads: Reads) -> Next {
        let first = self.first();
        match reads {
            Reads::Done(segments) => {
                for seg in segments {
                    sparse::add_segment(&mut self.segments, seg);
                }
                if first {
                    Next::Hash
                } else if self.parsed.is_some() {
                    self.audio()
                } else {
                    self.parse()
                }
            }
            Reads::OpenFailed(e) if first => Next::Done(Box::new(FileRecord::failed(
                std::mem::take(&mut self.path),
                self.stat,
                Problem::open(&e),
            ))),
            // Opened a moment ago and gone or changed now: the reference path records it
            // exactly as the reference engine would.
            Reads::OpenFailed(_) | Reads::Short => Next::Reference,
            // At most two chunks: if even that cannot be had, the reference path says so.
            Reads::NoRoom if first => Next::Reference,
            // The same parse, with the missing bytes read from the file as it goes.
            Reads::NoRoom => Next::FromFile,
        }
    }

    /// Parse the tags from the bytes held; ask for more if the parse needs them.
    pub fn parse(&mut self) -> Next {
        match sparse::attempt(
            self.stat.size,
            &self.segments,
            &self.path,
            self.round,
            self.limits,
        ) {
            Attempt::Parsed(parsed) => {
                self.parsed = Some(Box::new(parsed));
                self.audio()
            }
            Attempt::Fetch(plan) => {
                self.round += 1;
                Next::Read(plan)
            }
            Attempt::Stream => Next::FromFile,
        }
    }

    /// After the parse: the reads the audio hash needs, or (payload held) its turn in a
    /// batch ([`Next::AudioHash`]), or the record.
    fn audio(&mut self) -> Next {
        if self.audio.is_none() {
            let size = self.stat.size;
            let payload = match self.payload.take() {
                Some(p) => p,
                None => match audio_hash::locate(size, &self.segments) {
                    Located::None => {
                        self.audio = Some((None, None));
                        return self.done();
                    }
                    Located::Need(plan) => return self.audio_reads(plan),
                    Located::Found(p) => Box::new(p),
                },
            };
            let missing = payload.missing(size, &self.segments);
            self.payload = Some(payload);
            return if missing.is_empty() {
                Next::AudioHash
            } else {
                self.audio_reads(missing)
            };
        }
        self.done()
    }

    /// Reads for the audio hash, counted; past [`AUDIO_ROUNDS`] the file is read instead.
    fn audio_reads(&mut self, plan: Vec<(u64, usize)>) -> Next {
        if self.audio_rounds >= AUDIO_ROUNDS {
            return Next::FromFile;
        }
        self.audio_rounds += 1;
        let size = self.stat.size;
        self.audio_bytes += plan
            .iter()
            .map(|&(o, l)| audio_hash::beyond_head_and_tail(size, o, l as u64))
            .sum::<u64>();
        Next::Read(plan)
    }

    /// Its audio hash in (from [`hash_audio_together`]): the record.
    pub fn audio_hashed(&mut self) -> Next {
        debug_assert!(self.audio.is_some(), "hashed by hash_audio_together");
        self.done()
    }

    fn done(&mut self) -> Next {
        let parsed = self.parsed.take().expect("parsed before the audio hash");
        Next::Done(Box::new(self.record(*parsed)))
    }

    fn record(&mut self, parsed: Result<Parsed, String>) -> FileRecord {
        let mut record = FileRecord::assemble(
            std::mem::take(&mut self.path),
            self.stat,
            Ok(self.content.take().expect("hashed before parsed")),
            parsed,
        );
        if let Some((hash, len)) = self.audio.take() {
            record.audio_hash = hash;
            record.audio_len = len;
        }
        record
    }

    /// The parse that reads what it lacks from the file itself, for a file whose parse
    /// needs more than a backend holds for it. Same bytes, same budget, so the same row
    /// as a parse from memory. `file` is the file reopened (or kept open); if it is gone,
    /// the reference path says what it finds.
    pub fn from_file(&mut self, file: Option<&File>) -> Box<FileRecord> {
        let path = std::mem::take(&mut self.path);
        Box::new(match (file, self.content.take()) {
            (Some(file), Some(content)) => {
                let parsed = match self.parsed.take() {
                    Some(p) => *p,
                    None => parse_file(file, self.stat.size, &self.segments, &path, self.limits),
                };
                let mut record = FileRecord::assemble(path, self.stat, Ok(content), parsed);
                (record.audio_hash, record.audio_len) = match self.audio.take() {
                    Some(known) => known,
                    None => {
                        let (h, len, extra) =
                            audio_hash::of_file(file, self.stat.size, &mut self.segments);
                        self.audio_bytes += extra;
                        (h, len)
                    }
                };
                record
            }
            _ => read_reference(path, self.stat, self.limits),
        })
    }

    /// The reference engine's record, from the file if the backend holds it open.
    pub fn reference(&mut self, file: Option<File>) -> Box<FileRecord> {
        let path = std::mem::take(&mut self.path);
        Box::new(match file {
            Some(file) => read_reference_file(file, path, self.stat, self.limits),
            None => read_reference(path, self.stat, self.limits),
        })
    }

    /// The finished change for the writer; the audio hash's reads go to `counters`.
    pub fn change(&self, record: Box<FileRecord>, counters: &Counters) -> Change {
        counters.add(&counters.audio_bytes, self.audio_bytes);
        Change::Record {
            record,
            known: self.known,
        }
    }

    /// The buffers this job holds, for a backend that reuses them.
    pub fn take_buffers(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.segments.drain(..).map(|s| s.data)
    }
}

/// Hash jobs whose first reads are in together, in the lanes of one MD5 kernel.
pub fn hash_together<'a>(jobs: impl IntoIterator<Item = &'a mut Job>) {
    let mut jobs: Vec<&mut Job> = jobs.into_iter().collect();
    let inputs: Vec<_> = jobs
        .iter()
        .map(|j| {
            let size = j.stat.size;
            let head = &j.segments[0].data[..hash::head_len(size)];
            let tail = hash::tail_offset(size).map(|_| j.segments[1].data.as_slice());
            (head, tail)
        })
        .collect();
    let hashes = hash::content_hashes(&inputs);
    for (j, h) in jobs.iter_mut().zip(hashes) {
        j.content = Some(h);
    }
    // The audio hash of every file whose payload the first reads hold (small tags: most
    // files), in the same lanes; the others finish it after the parse
    // ([`hash_audio_together`]), with the payload found here kept for them.
    for j in jobs.iter_mut() {
        match audio_hash::locate(j.stat.size, &j.segments) {
            Located::None => j.audio = Some((None, None)),
            Located::Found(p) => j.payload = Some(Box::new(p)),
            Located::Need(_) => {}
        }
    }
    hash_audio_together(jobs.into_iter().filter(|j| {
        j.payload
            .as_ref()
            .is_some_and(|p| p.missing(j.stat.size, &j.segments).is_empty())
    }));
}

/// Hash the audio payloads of jobs whose payload is found and held (those that reached
/// [`Next::AudioHash`], or the first batch's), together, in the lanes of one MD5 kernel:
/// the same hash [`audio_hash::step`] gives one file at a time. A job after the parse
/// then goes on with [`Job::audio_hashed`].
pub fn hash_audio_together<'a>(jobs: impl IntoIterator<Item = &'a mut Job>) {
    let mut jobs: Vec<&mut Job> = jobs.into_iter().collect();
    if jobs.is_empty() {
        return;
    }
    let items: Vec<(&audio_hash::Payload, u64, &[Segment])> = jobs
        .iter()
        .map(|j| {
            let p = j.payload.as_ref().expect("a payload found before its hash");
            (&**p, j.stat.size, j.segments.as_slice())
        })
        .collect();
    let audio = audio_hash::hashes(&items);
    for (j, h) in jobs.iter_mut().zip(audio) {
        let p = j.payload.take().expect("a payload found before its hash");
        let len = h.as_ref().and(p.len);
        j.audio = Some((h, len));
    }
}
