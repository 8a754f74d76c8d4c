//! Which files are music, and the reference directory walk.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

pub mod identity;
pub mod parallel;

/// Audio extensions indexed by default (matched case-insensitively).
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "mp3", "flac", "m4a", "mp4", "m4b", "aac", "wav", "ogg", "oga", "opus", "aiff", "aif", "aifc",
    "ape", "wv", "mpc", "spx",
];

#[derive(Clone, Debug)]
pub struct ExtFilter {
    exts: HashSet<Vec<u8>>,
    /// `--ext '*'`: every regular file, for trees of unlabelled files.
    all: bool,
    /// `--hidden`: take names starting with `.` too (dot-files, macOS `._*` AppleDouble
    /// companions, hidden folders). Off by default, as in fd: they are never music.
    hidden: bool,
    /// Files never taken whatever their name (the database and its companions), as
    /// (folder, name) so the per-entry check compares a name first.
    excluded: Vec<(PathBuf, Vec<u8>)>,
}

impl Default for ExtFilter {
    fn default() -> Self {
        ExtFilter {
            exts: DEFAULT_EXTENSIONS
                .iter()
                .map(|e| e.as_bytes().to_vec())
                .collect(),
            all: false,
            hidden: false,
            excluded: Vec::new(),
        }
    }
}

/// The files SQLite keeps beside a database.
pub const DB_COMPANIONS: &[&str] = &["", "-wal", "-shm", "-journal"];

impl ExtFilter {
    /// `--ext` syntax: `mp3,flac` restricts to exactly those; `+dsf` adds to the default
    /// set and `-wav` removes from it; plain and signed items may be mixed; `*` alone
    /// takes every file.
    ///
    /// Anything else is refused with a one-line error rather than indexing nothing: an
    /// extension is 1 to 8 ASCII letters or digits (an optional leading `.` is dropped),
    /// items are separated by commas only, and `*` cannot be mixed with other items.
    pub fn parse(spec: &str) -> Result<ExtFilter> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            bail!("--ext needs at least one extension, e.g. `mp3,flac` or `+dsf,-wav`");
        }
        if items == ["*"] {
            return Ok(ExtFilter {
                exts: HashSet::new(),
                all: true,
                ..ExtFilter::default()
            });
        }
        if items.contains(&"*") {
            bail!("--ext '{spec}': `*` takes every file and cannot be combined with extensions");
        }
        let plain = items.iter().any(|i| !i.starts_with(['+', '-']));
        let mut f = if plain {
            ExtFilter {
                exts: HashSet::new(),
                ..ExtFilter::default()
            }
        } else {
            ExtFilter::default()
        };
        for item in items {
            let (op, ext) = match item.as_bytes()[0] {
                b'+' | b'-' => (item.as_bytes()[0], &item[1..]),
                _ => (b'+', item),
            };
            let ext = ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase();
            // Names longer than 8 never match (see `matches_name`), so refuse them here.
            if ext.is_empty() || ext.len() > 8 || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!(
                    "--ext '{spec}': '{item}' is not an extension (1 to 8 letters or digits; \
                     separate items with commas)"
                );
            }
            if op == b'+' {
                f.exts.insert(ext.into_bytes());
            } else {
                f.exts.remove(ext.as_bytes());
            }
        }
        Ok(f)
    }

    /// With `yes`, hidden names are taken too.
    pub fn with_hidden(mut self, yes: bool) -> ExtFilter {
        self.hidden = yes;
        self
    }

    /// Never take the database at `db` nor its `-wal`, `-shm` and `-journal` files, even
    /// under `--ext '*'` with the database inside a root. Walks report real paths, so the
    /// folder is resolved the same way (a folder not made yet holds nothing to skip).
    pub fn excluding_db(mut self, db: &Path) -> ExtFilter {
        let Some(name) = db.file_name() else {
            return self;
        };
        let parent = match db.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("."),
        };
        let dir = fs::canonicalize(&parent).unwrap_or(parent);
        for suffix in DB_COMPANIONS {
            let mut n = name.as_bytes().to_vec();
            n.extend_from_slice(suffix.as_bytes());
            self.excluded.push((dir.clone(), n));
        }
        self
    }

    /// Whether a walk descends into a folder of this name (not asked of roots).
    pub fn walks_dir(&self, name: &[u8]) -> bool {
        self.hidden || !name.starts_with(b".")
    }

    /// Whether `name` in folder `dir` is one of the excluded files.
    pub fn is_excluded(&self, dir: &Path, name: &[u8]) -> bool {
        self.excluded
            .iter()
            .any(|(d, n)| n.as_slice() == name && d == dir)
    }

    /// Matches on the raw bytes of the name, so non-UTF-8 names are filtered too.
    /// Excluded files are checked by the caller, which knows the folder.
    pub fn matches_name(&self, name: &[u8]) -> bool {
        if !self.hidden && name.starts_with(b".") {
            return false;
        }
        if self.all {
            return true;
        }
        let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
            return false;
        };
        let ext = &name[dot + 1..];
        if dot == 0 || ext.is_empty() || ext.len() > 8 {
            return false;
        }
        let lower: Vec<u8> = ext.iter().map(u8::to_ascii_lowercase).collect();
        self.exts.contains(&lower)
    }

    pub fn matches(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| {
            self.matches_name(n.as_bytes())
                && !self.is_excluded(path.parent().unwrap_or(Path::new("")), n.as_bytes())
        })
    }
}

/// How far a walk has got, for the progress line: files listed so far, and whether the
/// listing is over (then `listed` is the total and an ETA can be given).
#[derive(Debug, Default)]
pub struct WalkTally {
    pub listed: std::sync::atomic::AtomicU64,
    pub done: std::sync::atomic::AtomicBool,
}

#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    pub follow_symlinks: bool,
    pub filter: ExtFilter,
}

/// What a walk could not read. Files below a skipped directory are not known to be gone,
/// so the index keeps them as they were.
#[derive(Debug, Default)]
pub struct WalkProblems {
    pub skipped_dirs: Vec<PathBuf>,
    pub errors: u64,
}

impl WalkProblems {
    pub fn report(&mut self, path: &Path, what: &str, e: &io::Error, is_dir: bool) {
        eprintln!("musicdex: {what} {}: {e}", path.display());
        self.errors += 1;
        if is_dir {
            self.skipped_dirs.push(path.to_path_buf());
        }
    }

    pub fn merge(&mut self, other: WalkProblems) {
        self.skipped_dirs.extend(other.skipped_dirs);
        self.errors += other.errors;
    }
}

/// The reference walk: one thread, std::fs, depth first. Calls `on_file` for every
/// matching file, until it returns `false`. Roots must come from
/// [`identity::resolve_roots`]; symlinks are taken only when followed, by the rules of
/// [`identity`], so every file comes once, under the same path as in the parallel walk.
pub fn walk_sequential(
    roots: &[PathBuf],
    opts: &WalkOptions,
    mut on_file: impl FnMut(PathBuf) -> bool,
) -> WalkProblems {
    let mut problems = WalkProblems::default();
    let mut rules = identity::LinkRules::new(roots);
    let mut stack: Vec<PathBuf> = Vec::new();
    let mut links: Vec<PathBuf> = Vec::new();
    for root in roots.iter().rev() {
        match fs::metadata(root) {
            Ok(m) if m.is_file() => {
                if opts.filter.matches(root) && !on_file(root.clone()) {
                    return problems;
                }
            }
            Ok(_) => stack.push(root.clone()),
            Err(e) => problems.report(root, "cannot read", &e, true),
        }
    }
    loop {
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    problems.report(&dir, "cannot read directory", &e, true);
                    continue;
                }
            };
            let mut subdirs = Vec::new();
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        problems.report(&dir, "cannot read directory", &e, true);
                        break;
                    }
                };
                let path = entry.path();
                let ft = match entry.file_type() {
                    Ok(t) => t,
                    Err(e) => {
                        problems.report(&path, "cannot stat", &e, false);
                        continue;
                    }
                };
                if ft.is_dir() {
                    if !opts.filter.walks_dir(entry.file_name().as_bytes()) {
                        continue;
                    }
                    if opts.follow_symlinks
                        && let Ok(m) = entry.metadata()
                        && rules.skip_subdir(m.dev(), m.ino())
                    {
                        continue;
                    }
                    subdirs.push(path);
                } else if ft.is_file() {
                    if opts.filter.matches(&path) && !on_file(path) {
                        return problems;
                    }
                } else if ft.is_symlink() && opts.follow_symlinks {
                    links.push(path);
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        if links.is_empty() && !rules.has_pending() {
            return problems;
        }
        let round = std::mem::take(&mut links);
        for extra in rules
            .resolve(round, &opts.filter, &mut problems)
            .into_iter()
            .rev()
        {
            match extra {
                identity::Extra::Dir(d) => stack.push(d),
                identity::Extra::File(f) => {
                    if !on_file(f) {
                        return problems;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_filter() {
        let d = ExtFilter::default();
        assert!(d.matches(Path::new("/a/B.MP3")));
        assert!(d.matches(Path::new("x.Flac")));
        assert!(!d.matches(Path::new("cover.jpg")));
        assert!(!d.matches(Path::new(".mp3")));
        assert!(!d.matches(Path::new("noext")));
        let only = ExtFilter::parse("mp3").unwrap();
        assert!(only.matches(Path::new("a.mp3")));
        assert!(!only.matches(Path::new("a.flac")));
        let plus = ExtFilter::parse("+dsf,-wav").unwrap();
        assert!(plus.matches(Path::new("a.dsf")));
        assert!(plus.matches(Path::new("a.flac")));
        assert!(!plus.matches(Path::new("a.wav")));
        assert!(ExtFilter::parse(" , ").is_err());
    }
}
