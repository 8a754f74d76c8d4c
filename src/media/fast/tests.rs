//! The differential contract of [`super::read`]: over real and generated files and their
//! mutants, held whole and as head and tail only, with the default budget and with tiny
//! ones, every answer equals lofty's strict parse. And each reader answers for the files
//! it claims, so a reader that silently declines everything fails too.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use fastrand::Rng;

use super::*;
use crate::r#gen::{self, GenOptions, Mix, mutate};
use crate::media::budget::Budgeted;
use crate::media::hash::{self, CHUNK};
use crate::media::tags::{self, Parsed};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("MUSICDEX_SHARED")
        .map_or_else(|| repo().join("../shared"), PathBuf::from)
        .join("corpus/files")
}

/// What lofty says of the whole file in memory: the truth the fast readers must match.
fn lofty(data: &[u8], path: &Path, limits: Limits) -> Result<Parsed, String> {
    tags::parse(&mut Budgeted::new(data, data.len() as u64, limits), path)
}

/// The segments an engine holds after its first reads: the head and the tail chunk.
fn head_tail(data: &[u8]) -> Vec<Segment> {
    let len = data.len() as u64;
    let head = data[..data.len().min(CHUNK as usize)].to_vec();
    let mut segs = vec![Segment {
        offset: 0,
        data: head,
    }];
    if let Some(off) = hash::tail_offset(len) {
        segs.push(Segment {
            offset: off,
            data: data[off as usize..].to_vec(),
        });
    }
    segs
}

/// How one file went: which reader's extension, and whether it answered.
#[derive(Default)]
pub(super) struct Tally {
    files: usize,
    answered: BTreeMap<String, (usize, usize)>,
}

impl Tally {
    /// Check one file in every way it can be held; record whether the whole-file read
    /// answered.
    pub(super) fn check(&mut self, data: &[u8], path: &Path) {
        self.files += 1;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let len = data.len() as u64;
        let whole = vec![Segment {
            offset: 0,
            data: data.to_vec(),
        }];
        let limits = [
            Limits::default(),
            Limits { max_tag_bytes: 0 },
            Limits {
                max_tag_bytes: 1000,
            },
        ];
        let mut answered = false;
        for (i, limits) in limits.into_iter().enumerate() {
            let truth = lofty(data, path, limits);
            for (j, segs) in [whole.clone(), head_tail(data)].iter().enumerate() {
                let Some(got) = read(&Held::new(len, segs), path, limits) else {
                    continue;
                };
                if i == 0 && j == 0 {
                    answered = true;
                }
                let want = Ok(Parsed {
                    info: got.clone(),
                    error: None,
                });
                assert_eq!(
                    truth,
                    want,
                    "{}: the fast reader answered {got:?} with limits {limits:?}, held {}; \
                     lofty says {truth:?}",
                    path.display(),
                    if j == 0 { "whole" } else { "head and tail" },
                );
            }
        }
        let e = self.answered.entry(ext).or_default();
        e.0 += 1;
        e.1 += usize::from(answered);
    }

    pub(super) fn check_file(&mut self, path: &Path) {
        let data = fs::read(path).unwrap();
        self.check(&data, path);
    }

    /// The share of files with extension `ext` that a reader answered for.
    pub(super) fn share(&self, ext: &str) -> f64 {
        let (n, a) = self.answered.get(ext).copied().unwrap_or_default();
        if n == 0 { 0.0 } else { a as f64 / n as f64 }
    }
}

/// The least share of generated (valid, tagged) files each reader must answer for. A
/// reader's owner raises its line when the reader lands.
const MIN_SHARE: &[(&str, f64)] = &[
    ("mp3", 0.98),
    ("flac", 0.0),
    ("ogg", 0.0),
    ("opus", 0.0),
    ("m4a", 0.0),
];

#[test]
fn generated_libraries_agree_with_lofty() {
    let mut tally = Tally::default();
    for (mix, files, seed) in [
        (Mix::Tiny, 300, 3),
        (Mix::Tiny, 300, 17),
        (Mix::Small, 150, 5),
        (Mix::Music, 60, 7),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenOptions {
            files,
            seed,
            mix,
            threads: 0,
        };
        r#gen::generate(dir.path(), &opts).unwrap();
        for f in mutate::files_under(dir.path()) {
            tally.check_file(&f);
        }
    }
    for (ext, min) in MIN_SHARE {
        let share = tally.share(ext);
        assert!(
            share >= *min,
            "the {ext} reader answered for {share:.3} of the generated {ext} files (at least {min})"
        );
    }
}

#[test]
fn the_corpus_and_fixtures_agree_with_lofty() {
    let mut tally = Tally::default();
    let corpus = corpus_dir();
    assert!(
        corpus.is_dir(),
        "the shared corpus is missing at {} (set MUSICDEX_SHARED)",
        corpus.display()
    );
    for root in [corpus, repo().join("fixtures")] {
        for f in mutate::files_under(&root) {
            tally.check_file(&f);
        }
    }
    assert!(tally.files >= 180, "only {} files", tally.files);
}

#[test]
fn mutants_agree_with_lofty() {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        files: 120,
        seed: 23,
        mix: Mix::Tiny,
        threads: 0,
    };
    r#gen::generate(dir.path(), &opts).unwrap();
    let mut sources = mutate::files_under(dir.path());
    sources.extend(mutate::files_under(&corpus_dir()));
    sources.sort();
    let mut rng = Rng::with_seed(41);
    let mut tally = Tally::default();
    for i in 0..1500 {
        let src = &sources[rng.usize(0..sources.len())];
        let data = fs::read(src).unwrap();
        let (bytes, _) = mutate::mutate(&mut rng, &data);
        // The mutant keeps its source's name: lofty's guess starts from the extension.
        let name = PathBuf::from(format!(
            "m{i}.{}",
            src.extension()
                .map_or("mp3".into(), |e| e.to_string_lossy())
        ));
        tally.check(&bytes, &name);
    }
}
