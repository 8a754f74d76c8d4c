//! The roofline: what reading the hashed bytes and hashing them costs on this machine,
//! with nothing else (no stat decisions, no tags, no database). The bench gate quotes the
//! engines against it: the gap is what the rest of the work costs.

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
}

/// Walk `roots` on `cores` threads, then read head and tail of every file with
/// `io_threads` blocking threads (deep enough to keep a disk busy on a cold cache) and
/// MD5 them, as the engines do.
pub fn run(roots: &[PathBuf], opts: &WalkOptions, cores: usize, io_threads: usize) -> Roofline {
    let started = Instant::now();
    let files = Mutex::new(Vec::new());
    walk_parallel(roots, opts, cores, |p| {
        files.lock().unwrap_or_else(|e| e.into_inner()).push(p)
    });
    let files = files.into_inner().unwrap_or_else(|e| e.into_inner());
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..io_threads.max(1) {
            s.spawn(|| {
                // Hashed eight at a time, as the engines hash.
                let mut held: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
                let hash_held = |held: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>| {
                    let inputs: Vec<_> = held.iter().map(|(h, t)| (&h[..], t.as_deref())).collect();
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
                    let mut head = vec![0u8; hash::head_len(size)];
                    if f.read_exact_at(&mut head, 0).is_err() {
                        continue;
                    }
                    let tail = hash::tail_offset(size).and_then(|off| {
                        let mut t = vec![0u8; CHUNK as usize];
                        f.read_exact_at(&mut t, off).is_ok().then_some(t)
                    });
                    bytes.fetch_add(
                        (head.len() + tail.as_ref().map_or(0, Vec::len)) as u64,
                        Ordering::Relaxed,
                    );
                    held.push((head, tail));
                    if held.len() == md5x8::LANES {
                        hash_held(&mut held);
                    }
                }
                hash_held(&mut held);
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
    }
}
