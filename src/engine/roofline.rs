//! The roofline: what reading the hashed bytes and hashing them costs on this machine,
//! with nothing else (no stat decisions, no tags, no database). The bench gates quote the
//! engines against it: the gap is what the rest of the work costs.
//!
//! It bounds the read-and-hash work of a full index, warm or cold, as long as its reader
//! count suits the cache: many blocking readers keep a disk busy on a cold cache, but on
//! a warm one they only contend for the cores (64 threads on 2 cores took longer than the
//! engine on 100k small files). Unless told, it probes whether the library is in the page
//! cache (reads that may not wait for the disk) and runs one reader per core when it is.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::media::hash::{self, CHUNK};
use crate::media::md5x8;
use crate::scan::WalkOptions;
use crate::scan::parallel::walk_parallel;

#[derive(Debug, Serialize)]
pub struct Roofline {
    pub files: u64,
    pub bytes: u64,
    pub secs: f64,
    pub files_per_sec: f64,
    pub io_threads: usize,
    /// The probe found the sampled files in the page cache.
    pub warm: bool,
}

/// Readers for a cold cache: deep enough to keep a disk busy.
pub const COLD_IO_THREADS: usize = 64;

/// Whether (a sample of) the files is in the page cache: a read flagged RWF_NOWAIT
/// fails with EAGAIN instead of waiting for the disk.
pub fn probe_warm(files: &[PathBuf]) -> bool {
    let step = (files.len() / 64).max(1);
    let mut buf = [0u8; 4096];
    files.iter().step_by(step).take(64).all(|p| {
        let Ok(f) = File::open(p) else { return true };
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: one iovec over a buffer we own, on a descriptor we hold open.
        let n = unsafe {
            libc::preadv2(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                &iov,
                1,
                0,
                libc::RWF_NOWAIT,
            )
        };
        n >= 0
    })
}

/// Walk `roots` on `cores` threads, then read head and tail of every file with
/// `io_threads` blocking threads (default: one per core on a warm cache,
/// [`COLD_IO_THREADS`] on a cold one) and MD5 them, as the engines do.
pub fn run(
    roots: &[PathBuf],
    opts: &WalkOptions,
    cores: usize,
    io_threads: Option<usize>,
) -> Roofline {
    let started = Instant::now();
    let files = Mutex::new(Vec::new());
    walk_parallel(roots, opts, cores, |p| {
        files.lock().unwrap_or_else(|e| e.into_inner()).push(p)
    });
    let files = files.into_inner().unwrap_or_else(|e| e.into_inner());
    let warm = probe_warm(&files);
    let io_threads = io_threads.unwrap_or(if warm { cores } else { COLD_IO_THREADS });
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..io_threads.max(1) {
            s.spawn(|| {
                // One hash batch of buffers, reused: hashed eight at a time, as the engines
                // hash, and no allocation per file.
                let chunk = vec![0u8; CHUNK as usize];
                let mut bufs = vec![(chunk.clone(), chunk); md5x8::LANES];
                // Per buffer pair in use: the head's length, and whether a tail was read.
                let mut held: Vec<(usize, bool)> = Vec::with_capacity(md5x8::LANES);
                let hash_held = |bufs: &[(Vec<u8>, Vec<u8>)], held: &mut Vec<(usize, bool)>| {
                    let inputs: Vec<_> = held
                        .iter()
                        .zip(bufs)
                        .map(|(&(h, t), (head, tail))| (&head[..h], t.then_some(&tail[..])))
                        .collect();
                    std::hint::black_box(hash::content_hashes(&inputs));
                    held.clear();
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let Ok(f) = File::open(path) else { continue };
                    let Ok(size) = f.metadata().map(|m| m.len()) else {
                        continue;
                    };
                    let (head, tail) = &mut bufs[held.len()];
                    let h = &mut head[..hash::head_len(size)];
                    if f.read_exact_at(h, 0).is_err() {
                        continue;
                    }
                    let has_tail = hash::tail_offset(size)
                        .is_some_and(|off| f.read_exact_at(tail, off).is_ok());
                    let read = h.len() + if has_tail { tail.len() } else { 0 };
                    bytes.fetch_add(read as u64, Ordering::Relaxed);
                    held.push((h.len(), has_tail));
                    if held.len() == md5x8::LANES {
                        hash_held(&bufs, &mut held);
                    }
                }
                hash_held(&bufs, &mut held);
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    Roofline {
        files: files.len() as u64,
        bytes: bytes.into_inner(),
        secs,
        files_per_sec: files.len() as f64 / secs.max(1e-9),
        io_threads,
        warm,
    }
}
