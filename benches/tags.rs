//! Tags and properties of a generated tiny library held in memory, per format: lofty's
//! parse (what the reference engine does per file) against what the fast engines do
//! (`sparse::attempt`: the fast readers of `media::fast`, lofty when they decline), over
//! the same files, and the readers alone against lofty over the files they answer for.
//! Which readers answer is printed per format before the timings.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use musicdex::r#gen::{self, GenOptions, Mix, mutate};
use musicdex::media::budget::{Budgeted, Limits};
use musicdex::media::fast::{self, Held};
use musicdex::media::sparse::{self, Segment};
use musicdex::media::tags;

struct File {
    path: PathBuf,
    segments: Vec<Segment>,
    len: u64,
}

fn library() -> BTreeMap<String, Vec<File>> {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        files: 1400,
        seed: 3,
        mix: Mix::Tiny,
        threads: 0,
    };
    r#gen::generate(dir.path(), &opts).unwrap();
    let mut by_ext: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for path in mutate::files_under(dir.path()) {
        let data = std::fs::read(&path).unwrap();
        let ext = path.extension().unwrap().to_string_lossy().into_owned();
        by_ext.entry(ext).or_default().push(File {
            path,
            len: data.len() as u64,
            segments: vec![Segment { offset: 0, data }],
        });
    }
    by_ext
}

fn tags_per_format(c: &mut Criterion) {
    let lib = library();
    let limits = Limits::default();
    for (ext, files) in &lib {
        let answered = files
            .iter()
            .filter(|f| fast::read(&Held::new(f.len, &f.segments), &f.path, limits).is_some())
            .count();
        eprintln!(
            "tags: {ext}: the fast readers answer {answered} of {} files",
            files.len()
        );
        let mut group = c.benchmark_group(format!("tags_{ext}"));
        group.throughput(Throughput::Elements(files.len() as u64));
        group.bench_function("lofty", |b| {
            b.iter(|| {
                for f in files {
                    let data = &f.segments[0].data[..];
                    let mut r = Budgeted::new(data, f.len, limits);
                    black_box(tags::parse(&mut r, &f.path).ok());
                }
            })
        });
        group.bench_function("engines", |b| {
            b.iter(|| {
                for f in files {
                    black_box(sparse::attempt(f.len, &f.segments, &f.path, 0, limits));
                }
            })
        });
        // The readers alone, over the files they answer for: lofty's parse of the few
        // they decline (corrupt files, mostly, where lofty searches byte by byte) is the
        // larger share of "engines" for some formats.
        let answered: Vec<&File> = files
            .iter()
            .filter(|f| fast::read(&Held::new(f.len, &f.segments), &f.path, limits).is_some())
            .collect();
        if !answered.is_empty() {
            group.throughput(Throughput::Elements(answered.len() as u64));
            group.bench_function("fast_answered", |b| {
                b.iter(|| {
                    for f in &answered {
                        black_box(fast::read(&Held::new(f.len, &f.segments), &f.path, limits));
                    }
                })
            });
            group.bench_function("lofty_answered", |b| {
                b.iter(|| {
                    for f in &answered {
                        let mut r = Budgeted::new(&f.segments[0].data[..], f.len, limits);
                        black_box(tags::parse(&mut r, &f.path).ok());
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, tags_per_format);
criterion_main!(benches);
