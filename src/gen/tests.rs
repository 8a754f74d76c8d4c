use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lofty::file::{AudioFile, FileType, TaggedFileExt};
use lofty::tag::{Accessor, ItemKey};

use super::*;

fn opts(files: usize, seed: u64, mix: Mix) -> GenOptions {
    GenOptions {
        files,
        seed,
        mix,
        threads: 2,
    }
}

fn lofty_type(format: Format) -> FileType {
    match format {
        Format::Mp3 => FileType::Mpeg,
        Format::Flac => FileType::Flac,
        Format::M4a => FileType::Mp4,
        Format::Ogg => FileType::Vorbis,
        Format::Opus => FileType::Opus,
        Format::Wav => FileType::Wav,
        Format::Aiff => FileType::Aiff,
    }
}

/// Every planned file parses with lofty with the planned tags, picture and a duration that
/// fits its size; every corrupt file fails to parse.
fn check_with_lofty(root: &Path, specs: &[FileSpec], mix: Mix) {
    for spec in specs {
        let path = root.join(&spec.path);
        let parsed = lofty::read_from_path(&path);
        if spec.corrupt.is_some() {
            assert!(
                parsed.is_err(),
                "{} ({:?}) parsed",
                path.display(),
                spec.corrupt
            );
            continue;
        }
        let file = parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            file.file_type(),
            lofty_type(spec.format),
            "{}",
            path.display()
        );
        let tag = file
            .primary_tag()
            .unwrap_or_else(|| panic!("{}: no primary tag", path.display()));
        let t = &spec.tags;
        let ctx = path.display();
        assert_eq!(tag.artist().as_deref(), Some(t.artist.as_str()), "{ctx}");
        assert_eq!(tag.title().as_deref(), Some(t.title.as_str()), "{ctx}");
        assert_eq!(tag.album().as_deref(), Some(t.album.as_str()), "{ctx}");
        assert_eq!(tag.genre().as_deref(), Some(t.genre.as_str()), "{ctx}");
        assert_eq!(
            tag.get_string(ItemKey::AlbumArtist),
            Some(t.album_artist.as_str()),
            "{ctx}"
        );
        assert_eq!(tag.track(), Some(t.track), "{ctx}");
        assert_eq!(tag.track_total(), Some(t.track_total), "{ctx}");
        assert_eq!(tag.date().map(|d| u32::from(d.year)), Some(t.year), "{ctx}");
        assert_eq!(
            tag.pictures().len(),
            usize::from(spec.cover.is_some() && mix != Mix::Tiny),
            "{ctx}"
        );
        if let Some(c) = spec.cover.filter(|_| mix != Mix::Tiny) {
            let pic = &tag.pictures()[0];
            let want = match mix {
                Mix::Music => c.bytes,
                Mix::Small | Mix::Tiny => c.bytes.min(spec.target_bytes as usize / 3),
            };
            // The template image is the floor for tiny requests.
            assert!(
                pic.data().len().abs_diff(want) <= 12 || pic.data().len() < 8 << 10,
                "{ctx}: picture {} bytes, wanted {want}",
                pic.data().len()
            );
        }

        let size = fs::metadata(&path).unwrap().len();
        let secs = file.properties().duration().as_secs_f64();
        assert!(secs > 0.0, "{ctx}: zero duration");
        if mix == Mix::Music {
            // Duration must follow the apparent size: a plausible overall bitrate.
            let kbps = size as f64 * 8.0 / secs / 1000.0;
            assert!((64.0..=3000.0).contains(&kbps), "{ctx}: {kbps:.0} kbps");
        }
    }
}

#[test]
fn plan_is_deterministic_unique_and_well_mixed() {
    let a = plan(&opts(20_000, 7, Mix::Small));
    let b = plan(&opts(20_000, 7, Mix::Small));
    assert_eq!(a.len(), 20_000);
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.path == y.path && x.seed == y.seed)
    );
    let c = plan(&opts(200, 8, Mix::Small));
    assert_ne!(
        a[..200].iter().map(|s| &s.path).collect::<Vec<_>>(),
        c.iter().map(|s| &s.path).collect::<Vec<_>>()
    );

    let paths: HashSet<_> = a.iter().map(|s| &s.path).collect();
    assert_eq!(paths.len(), a.len(), "paths are unique");
    let songs: HashSet<_> = a.iter().map(|s| (&s.tags.artist, &s.tags.title)).collect();
    assert_eq!(songs.len(), a.len(), "(artist, title) is unique");

    let share = |f: Format| a.iter().filter(|s| s.format == f).count() as f64 / a.len() as f64;
    assert!((0.42..0.48).contains(&share(Format::Mp3)));
    assert!((0.25..0.31).contains(&share(Format::Flac)));
    assert!((0.13..0.17).contains(&share(Format::M4a)));
    for f in Format::ALL {
        assert!(share(f) > 0.01, "{f:?} present");
    }
    let corrupt = a.iter().filter(|s| s.corrupt.is_some()).count() as f64 / a.len() as f64;
    assert!((0.006..0.014).contains(&corrupt), "corrupt share {corrupt}");
    let covers = a.iter().filter(|s| s.cover.is_some()).count() as f64 / a.len() as f64;
    assert!((0.5..0.7).contains(&covers), "cover share {covers}");
    assert!(
        a.iter().any(|s| !s.path.to_str().unwrap().is_ascii()),
        "some non-ASCII paths"
    );
}

#[test]
fn music_mix_is_sparse_sized_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(250, 3, Mix::Music);
    let report = generate(dir.path(), &o).unwrap();
    let specs = plan(&o);
    assert_eq!(report.files, o.files);
    assert!(report.corrupt >= 1, "seed 3 plans corrupt files");
    for spec in specs.iter().filter(|s| s.corrupt.is_none()) {
        let meta = fs::metadata(dir.path().join(&spec.path)).unwrap();
        // Exact, except PCM payloads, which end on a whole sample frame.
        assert!(
            meta.len().abs_diff(spec.target_bytes) < 8,
            "{}: {} bytes, target {}",
            spec.path.display(),
            meta.len(),
            spec.target_bytes
        );
        assert!((3_000_000..=40_000_000).contains(&meta.len()));
        // Real head and tail (and cover) only: well under a megabyte on disk.
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "{} not sparse",
            spec.path.display()
        );
    }
    assert!(report.disk_bytes * 20 < report.apparent_bytes);
    check_with_lofty(dir.path(), &specs, Mix::Music);
}

#[test]
fn small_mix_is_dense_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(400, 5, Mix::Small);
    let report = generate(dir.path(), &o).unwrap();
    let specs = plan(&o);
    assert!(report.corrupt >= 1, "seed 5 plans corrupt files");
    for spec in specs.iter().filter(|s| s.corrupt.is_none()) {
        let meta = fs::metadata(dir.path().join(&spec.path)).unwrap();
        assert!(
            meta.blocks() * 512 >= meta.len() / 4096 * 4096,
            "{} sparse",
            spec.path.display()
        );
        assert!(
            meta.len() <= 310 << 10,
            "{}: {}",
            spec.path.display(),
            meta.len()
        );
    }
    assert!(report.disk_bytes >= report.apparent_bytes / 2);
    check_with_lofty(dir.path(), &specs, Mix::Small);
}

#[test]
fn tiny_mix_is_a_few_kib_tagged_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(300, 11, Mix::Tiny);
    let report = generate(dir.path(), &o).unwrap();
    let specs = plan(&o);
    let mut total = 0;
    for spec in specs.iter().filter(|s| s.corrupt.is_none()) {
        let len = fs::metadata(dir.path().join(&spec.path)).unwrap().len();
        assert!(len <= 16 << 10, "{}: {len} bytes", spec.path.display());
        total += len;
    }
    let mean = total / specs.iter().filter(|s| s.corrupt.is_none()).count() as u64;
    assert!(mean <= 10 << 10, "mean {mean} bytes");
    assert_eq!(report.files, 300);
    check_with_lofty(dir.path(), &specs, Mix::Tiny);
}

/// Size and every allocated (data) region of a file, found with SEEK_DATA/SEEK_HOLE, so a
/// sparse file can be compared without reading its holes.
fn data_regions(path: &Path) -> (u64, Vec<(u64, Vec<u8>)>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut regions = Vec::new();
    let mut at = 0i64;
    while (at as u64) < len {
        // SAFETY: lseek on a descriptor we own; it only moves the file offset.
        let data = unsafe { libc::lseek(f.as_raw_fd(), at, libc::SEEK_DATA) };
        if data < 0 {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) };
        assert!(hole > data);
        let mut buf = vec![0; (hole - data) as usize];
        f.read_exact_at(&mut buf, data as u64).unwrap();
        regions.push((data as u64, buf));
        at = hole;
    }
    (len, regions)
}

fn listing(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_gives_identical_trees() {
    for (mix, files) in [(Mix::Small, 150), (Mix::Music, 60)] {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(a.path(), &opts(files, 11, mix)).unwrap();
        // Thread count must not change the output.
        generate(
            b.path(),
            &GenOptions {
                threads: 1,
                ..opts(files, 11, mix)
            },
        )
        .unwrap();
        let la = listing(a.path());
        assert_eq!(la, listing(b.path()));
        for rel in la.iter().filter(|p| a.path().join(p).is_file()) {
            let (x, y) = (a.path().join(rel), b.path().join(rel));
            match mix {
                Mix::Small | Mix::Tiny => assert_eq!(
                    fs::read(&x).unwrap(),
                    fs::read(&y).unwrap(),
                    "{}",
                    rel.display()
                ),
                // Reading whole sparse files would mean gigabytes of zeros: compare the
                // size and the allocated regions instead.
                Mix::Music => {
                    let (ra, rb) = (data_regions(&x), data_regions(&y));
                    if ra.0 > 1 << 20 {
                        assert!(ra.1.len() >= 2, "{} has a hole", rel.display());
                    }
                    assert!(ra == rb, "{}", rel.display());
                }
            }
        }
    }
}

#[test]
fn refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("keep.txt"), b"x").unwrap();
    let err = generate(dir.path(), &opts(5, 1, Mix::Small)).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}
